//! What Settings → Local API shows and sends: whether the Local API runs
//! and where, its counters, and its client tokens (never a token itself,
//! except once, in the reply that made it).

use serde::{Deserialize, Serialize};

/// The Local API as Settings shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalApiStatus {
    /// It is listening.
    pub running: bool,
    /// The base URL to give an OpenAI SDK, while it runs
    /// (`http://127.0.0.1:4141/v1`).
    pub base_url: Option<String>,
    /// The port from `[local_api]` (used at the next start).
    pub port: u16,
    /// The app starts it when it opens.
    pub start_with_app: bool,
    /// Requests answered since it started (any status).
    pub requests: u64,
    /// Of which answered with an error.
    pub errors: u64,
    /// Running right now.
    pub in_flight: u64,
    /// What its requests cost today (UTC), as an exact USD decimal.
    pub spend_today_usd: String,
    /// The client tokens that can call it.
    pub tokens: Vec<ClientTokenInfo>,
    /// Why it is not running (it failed to start), or why config.toml was
    /// not reloaded.
    pub problem: Option<String>,
}

/// One client token, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTokenInfo {
    /// Its name: the ledger tag of its requests.
    pub name: String,
    /// A second ledger tag, if any.
    pub tag: Option<String>,
    /// The budget it is bound to, if any.
    pub budget: Option<String>,
    /// Its requests are saved in history.
    pub record_history: bool,
    /// The token's last four characters.
    pub last4: String,
    /// When it was made (Unix ms).
    pub created_at_ms: i64,
    /// When a request last used it (Unix ms, to the minute).
    pub last_used_at_ms: Option<i64>,
}

/// Turn the Local API on or off, and its settings (saved to
/// `[local_api]` of config.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalApiInput {
    /// Listen now.
    pub enabled: bool,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// Start it when the app opens.
    pub start_with_app: bool,
}

/// A token to make.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewClientToken {
    /// Its name (letters, digits, '.', '_', '-').
    pub name: String,
    /// A second ledger tag.
    pub tag: Option<String>,
    /// A budget (from config.toml) it must stay within.
    pub budget: Option<String>,
    /// Save its requests in history.
    pub record_history: bool,
}

/// A token just made: the only time the token itself is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedClientToken {
    /// The token, to copy into a tool's settings.
    pub token: String,
    /// How it is listed from now on.
    pub info: ClientTokenInfo,
}

impl std::fmt::Debug for CreatedClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedClientToken")
            .field("token", &"••••")
            .field("info", &self.info)
            .finish()
    }
}
