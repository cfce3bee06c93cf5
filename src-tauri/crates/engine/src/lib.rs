//! Switchboard's engine: everything the app does that is worth testing
//! without a window. The Tauri crate is a thin shell over it, and the
//! headless CLI uses it directly, so this crate never depends on Tauri.
//!
//! Main types:
//! - [`DataDir`]: where Switchboard keeps its files (`SWITCHBOARD_HOME`, or the
//!   OS data directory); [`Config`]: its validated `config.toml`.
//! - [`KeyStore`] and [`Secret`]: provider keys in the OS keychain, held in
//!   memory as a type that never prints; [`KeyCache`]: the keys requests
//!   use, read once rather than per request.
//! - [`ProviderConfig`]: one provider (a wire protocol plus configuration);
//!   [`Client`]: sends a [`ChatRequest`] and streams [`Timed`]
//!   [`StreamEvent`]s back; [`Accumulator`]: turns them into one
//!   [`AttemptResult`] with usage, timings and cost.
//! - [`Catalog`]: models and prices, and what each model takes besides
//!   text; [`Price`] and [`Cost`]: exact money.
//! - [`Attachment`]: an image or PDF in a prompt, typed from its bytes,
//!   stored once by its SHA-256, counted in tokens by each vendor's rule
//!   and checked against what a target takes before sending ([`attach`]).
//! - [`ProviderError`] with an [`ErrorKind`]: every failure, classified,
//!   with the wait the provider asked for; [`redact`]: keys kept out of
//!   errors and `Debug` output.
//! - [`routing::Router`]: runs a request through a named route of targets
//!   (fallbacks, retries, cooldowns, policy, budget checks) and returns
//!   every attempt in order; a cancellation token stops it, and a stopped
//!   attempt settles like any other ([`run_attempt_until`]).
//! - [`Store`]: the SQLite database (history with full-text search, the
//!   spend ledger behind [`SqliteBudgetGate`], provider health in
//!   [`SqliteHealth`]); [`Recorder`] writes a conversation as it happens,
//!   and what a crashed process left in flight is settled when the next
//!   store opens ([`Store::recover`]).
//! - [`VERSION_LINE`]: the version and the commit it was built from, the
//!   same for the app and the CLI.
//! - [`rating`] and [`judge`]: a Bradley–Terry fit of the user's blind votes
//!   for the leaderboard ([`Store::leaderboard`]), and the prompt a judge
//!   model is sent.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use switchboard_engine::{Accumulator, ChatRequest, Client, Config, DataDir, KeyStore};
//! let dir = DataDir::resolve()?;
//! let config = Config::load(&dir.config_file())?;
//! let provider = config.provider("openai").ok_or("unknown provider")?;
//! let key = KeyStore::new().get("openai")?.map(|(k, _)| k);
//! let request = ChatRequest::new("gpt-x", "Hello!");
//! let mut stream = Client::new().stream(&provider, key.as_ref(), &request).await?;
//! let mut acc = Accumulator::new(&provider.id, &request.model);
//! while let Some(event) = stream.next().await {
//!     acc.push(&event);
//! }
//! let price = config.catalog().price(&provider, &request.model);
//! let result = acc.finish(stream.elapsed(), price.as_ref(), request.estimated_input_tokens(provider.kind));
//! # Ok(()) }
//! ```

pub mod attach;
mod attempt;
pub mod budgets;
pub mod catalog;
mod chat;
mod client;
mod config;
mod error;
pub mod hooks;
pub mod import;
pub mod judge;
mod keys;
mod money;
mod paths;
pub mod provider;
pub mod rating;
pub mod redact;
pub mod routing;
mod runner;
pub mod service;
pub mod settings;
pub mod sse;
pub mod store;

pub use attach::{Accepts, Attachment, AttachmentError, AttachmentLimits, MediaKind, MediaType};
pub use attempt::{Accumulator, attempt_cost, cost_of, estimate_cost, estimate_tokens};
pub use catalog::{Catalog, ModelInfo, ModelPrice, PriceSource, PriceTier, Rates};
pub use chat::{
    AttemptCost, AttemptResult, ChatRequest, CostSource, DEFAULT_MAX_TOKENS, FinishReason, Message,
    Params, Role, StreamEvent, Timing, Usage,
};
pub use client::{ChatStream, Client, Timed};
pub use config::{
    Budget, BudgetPeriod, BudgetScope, Config, ConfigError, PaneLayout, Theme, UiSettings,
};
pub use error::{ErrorKind, MAX_RETRY_HINT, ProviderError, retry_hint};
pub use keys::{
    INDEX_CHECK, KEY_TTL, KEYCHAIN_BACKEND, KeyCache, KeyError, KeyIndex, KeyListing, KeySource,
    KeyStamp, KeyStore, MISSING_TTL, SERVICE as KEY_SERVICE, Secret, env_var_for, key_hint,
    provider_key,
};
pub use money::{AmountError, Cost, Price};
pub use paths::{DataDir, DataDirError, HOME_ENV};
pub use provider::{ProviderConfig, ProviderKind};
pub use runner::{AttemptEvent, CHECKPOINT_EVERY, Timeouts, run_attempt, run_attempt_until};
pub use store::{
    ConversationId, MessageId, Recorder, Recovered, SqliteBudgetGate, SqliteHealth, Store,
    StoreError,
};

/// The engine's version number (`0.1.0`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which source this build came from: `git abc1234, 2026-12-02` (the
/// commit's short hash and date), worked out once by the engine's build
/// script, from git or, in a source tarball, from `build-stamp.txt`.
pub const BUILD: &str = env!("SWITCHBOARD_BUILD");

/// The version as every Switchboard binary reports it (`switchboard-cli
/// --version`, the app's About panel): `0.1.0 (git abc1234, 2026-12-02)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SWITCHBOARD_BUILD"),
    ")"
);

#[cfg(test)]
#[path = "../build_stamp.rs"]
mod build_stamp;

#[cfg(test)]
mod version_tests {
    use super::build_stamp::describe;

    #[test]
    fn a_checkout_is_described_by_git() {
        assert_eq!(
            describe("$Format:%h %cs$\n", Some("51371f7 2026-12-02")),
            "git 51371f7, 2026-12-02"
        );
    }

    #[test]
    fn a_tarball_is_described_by_its_stamp_even_inside_another_repository() {
        assert_eq!(
            describe("0a1b2c3d 2026-11-30\n", Some("fffffff 2027-01-01")),
            "git 0a1b2c3d, 2026-11-30"
        );
        assert_eq!(
            describe("0a1b2c3 2026-11-30", None),
            "git 0a1b2c3, 2026-11-30"
        );
    }

    #[test]
    fn without_git_or_stamp_the_build_says_so() {
        assert_eq!(describe("$Format:%h %cs$", None), "unknown commit");
        assert_eq!(
            describe("", Some("fatal: not a git repository")),
            "unknown commit"
        );
        assert_eq!(describe("garbage here", Some("")), "unknown commit");
    }

    #[test]
    fn the_version_line_carries_the_number_and_the_build() {
        assert!(super::VERSION_LINE.starts_with(&format!("{} (", super::VERSION)));
        assert!(super::VERSION_LINE.ends_with(&format!("{})", super::BUILD)));
    }
}
