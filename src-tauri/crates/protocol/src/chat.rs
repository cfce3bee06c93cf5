//! The chat surface: what the compare view sends (one [`AskRequest`] per
//! pane) and what streams back ([`PaneEvent`]s ending in an
//! [`AnswerSummary`]), and the catalog it picks targets from.
//!
//! Money crosses as exact decimal strings (`"0.000123"`), never floats, so
//! what the UI adds up is what the engine computed.

use serde::{Deserialize, Serialize};

use crate::conversation::RecordAt;

/// Whether and how a provider has a key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KeyState {
    /// A key is stored in the OS keychain.
    Keychain {
        /// Its last four characters.
        last4: String,
    },
    /// `SWITCHBOARD_KEY_<ID>` provides one for this process.
    Environment {
        /// Its last four characters.
        last4: String,
    },
    /// No key, and the provider needs one.
    Missing,
    /// A local server: no key needed.
    NotNeeded,
    /// The keychain could not be asked; `reason` says why.
    Unknown {
        /// What went wrong.
        reason: String,
    },
}

/// A provider as the UI lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSummary {
    /// Id used in targets (`openai`, `lab`, ...).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Wire protocol (`openai`, `anthropic`, `gemini`).
    pub kind: String,
    /// Base URL.
    pub base_url: String,
    /// A server on this machine or LAN.
    pub local: bool,
    /// Key status.
    pub key: KeyState,
    /// Where to get a key.
    pub key_url: Option<String>,
}

/// One model a pane can pick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogModel {
    /// Provider id.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// Display name.
    pub name: Option<String>,
    /// Context window in tokens.
    pub context_window: Option<u64>,
    /// USD per million input tokens.
    pub input_usd_per_mtok: Option<String>,
    /// USD per million output tokens.
    pub output_usd_per_mtok: Option<String>,
}

impl CatalogModel {
    /// The target string (`provider:model`).
    pub fn target(&self) -> String {
        format!("{}:{}", self.provider, self.model)
    }
}

/// A route from config.toml, as the picker lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSummary {
    /// Its name (the target is `@name`).
    pub name: String,
    /// `ordered`, `cheapest`, `fastest` or `balanced`.
    pub strategy: String,
    /// Its targets (`provider:model`), as configured.
    pub targets: Vec<String>,
    /// `first_token_timeout_ms` of the route, when config.toml sets it.
    #[serde(default)]
    pub first_token_timeout_ms: Option<u64>,
    /// `idle_timeout_ms` of the route, when config.toml sets it.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    /// `total_timeout_ms` of the route, when config.toml sets it.
    #[serde(default)]
    pub total_timeout_ms: Option<u64>,
}

/// A route as the routes editor saves it to `[routes.<name>]`. Settings
/// the editor does not show (retries, weights, per-target tables) are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// Its name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// `ordered`, `cheapest`, `fastest` or `balanced`.
    pub strategy: String,
    /// Its targets (`provider:model`), in order.
    pub targets: Vec<String>,
    /// Per attempt, from the send to the first token (ms); `None`: default.
    pub first_token_timeout_ms: Option<u64>,
    /// Longest silence once tokens flow (ms); `None`: default.
    pub idle_timeout_ms: Option<u64>,
    /// The whole attempt (ms); `None`: default.
    pub total_timeout_ms: Option<u64>,
}

/// Save a route: create it, or replace `previous` (which may have another
/// name: a rename).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveRoute {
    /// The route's name before this edit; `None` for a new route.
    pub previous: Option<String>,
    /// The route as it should be.
    pub route: RouteSpec,
}

/// A custom OpenAI-compatible provider to add to config.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProvider {
    /// Its id, used in targets (`lab` in `lab:qwen3`).
    pub id: String,
    /// Its base URL, as the vendor's SDK writes it (`http://10.0.0.5:8000/v1`).
    pub base_url: String,
}

/// Everything the model picker needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogView {
    /// Routes from config.toml.
    #[serde(default)]
    pub routes: Vec<RouteSummary>,
    /// Providers: configured ones and every preset.
    pub providers: Vec<ProviderSummary>,
    /// Providers turned off in config.toml (`enabled = false`): listed so
    /// settings can turn them back on; their models are not in `models`.
    #[serde(default)]
    pub disabled: Vec<ProviderSummary>,
    /// Their models.
    pub models: Vec<CatalogModel>,
    /// Problems with config.toml (the app keeps running on defaults).
    pub config_problems: Vec<String>,
    /// How the compare view lays its panes out when it opens
    /// (`[ui] layout` in config.toml).
    #[serde(default)]
    pub layout: ViewLayout,
}

/// How the compare view lays its panes out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewLayout {
    /// Side by side.
    #[default]
    Columns,
    /// One above the other.
    Rows,
    /// A grid (at most three across).
    Grid,
}

/// Who wrote a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnRole {
    /// The person.
    User,
    /// The model.
    Assistant,
}

/// One turn of a pane's conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// Who wrote it.
    pub role: TurnRole,
    /// What was written.
    pub content: String,
    /// The images and PDFs a user turn carries, in the order they were
    /// added (sent before the text, and again with every later turn).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::AttachmentRef>,
}

/// Per-pane settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaneParams {
    /// System prompt.
    pub system: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Most output tokens.
    pub max_tokens: Option<u32>,
}

/// Ask one target for one answer, streamed to the pane `stream_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AskRequest {
    /// Chosen by the UI, unique per running stream; `stop_stream` names it.
    pub stream_id: u64,
    /// `provider:model`.
    pub target: String,
    /// The pane's conversation, ending with the new user turn.
    pub turns: Vec<Turn>,
    /// Per-pane settings.
    pub params: PaneParams,
    /// Record the answer here in history (`None`: do not record).
    #[serde(default)]
    pub record: Option<RecordAt>,
}

/// Token counts (absent when the provider did not report them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Prompt tokens, cached included.
    pub input: Option<u64>,
    /// Output tokens, reasoning included.
    pub output: Option<u64>,
    /// Cached prompt tokens.
    pub cached_input: Option<u64>,
    /// Reasoning tokens.
    pub reasoning: Option<u64>,
    /// Prompt tokens written to the provider's prompt cache (billed at the
    /// cache-write rate).
    #[serde(default)]
    pub cache_write: Option<u64>,
}

/// One attempt in the trail of targets a request went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailStep {
    /// Provider id.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// `ok`, `error`, `skipped` or `stopped`.
    pub outcome: String,
    /// The error kind or skip reason.
    pub detail: Option<String>,
}

/// A failure, as the pane shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaneError {
    /// The classified kind (`auth`, `rate_limited`, `interrupted`, ...;
    /// `stopped` when the user stopped it).
    pub kind: String,
    /// The provider's own words where it gave some.
    pub message: String,
    /// HTTP status.
    pub status: Option<u16>,
    /// Seconds the provider asked to wait.
    pub retry_after_s: Option<f64>,
}

/// The final readout of one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerSummary {
    /// Provider that answered (or failed last).
    pub provider: String,
    /// Model that answered.
    pub model: String,
    /// Why it stopped (`stop`, `length`, ...).
    pub finish_reason: Option<String>,
    /// Token counts.
    pub tokens: TokenCounts,
    /// Exact cost in USD, as a decimal string.
    pub cost_usd: Option<String>,
    /// The cost comes from estimated tokens.
    pub cost_estimated: bool,
    /// Time to the first visible token (ms): answer text, not reasoning.
    pub ttft_ms: Option<f64>,
    /// Streamed thinking before the answer (ms): from the first reasoning
    /// token to the first text token.
    #[serde(default)]
    pub thinking_ms: Option<f64>,
    /// Total time (ms).
    pub total_ms: f64,
    /// Visible output tokens (reasoning excluded) per second, from the
    /// first visible token to the end.
    pub tokens_per_s: Option<f64>,
    /// Why it failed, if it did.
    pub error: Option<PaneError>,
    /// Every target tried, in order.
    pub trail: Vec<TrailStep>,
    /// After a failure mid-answer on a route: the next target, for the user
    /// to try explicitly (a route never switches silently after text came).
    #[serde(default)]
    pub next_target: Option<String>,
}

impl AnswerSummary {
    /// An answer that failed before anything was measured: `target` is
    /// `provider:model` (or a route), `kind` a [`PaneError`] kind.
    pub fn failure(target: &str, kind: &str, message: String) -> Self {
        let (provider, model) = target.split_once(':').unwrap_or((target, ""));
        Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
            finish_reason: None,
            tokens: TokenCounts::default(),
            cost_usd: None,
            cost_estimated: false,
            ttft_ms: None,
            thinking_ms: None,
            total_ms: 0.0,
            tokens_per_s: None,
            error: Some(PaneError {
                kind: kind.into(),
                message,
                status: None,
                retry_after_s: None,
            }),
            trail: Vec::new(),
            next_target: None,
        }
    }
}

/// One event of a pane's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaneEvent {
    /// An attempt at a target started (a route may start several).
    Attempt {
        /// Provider id.
        provider: String,
        /// Model id.
        model: String,
    },
    /// What arrived since the last update, with the live readouts: one
    /// message per tick however many pieces the provider sent.
    Update {
        /// Answer text to append (may be empty).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
        /// Reasoning text to append (may be empty).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reasoning: String,
        /// Milliseconds from the send to the first visible (text) token.
        ttft_ms: Option<f64>,
        /// Milliseconds since the send.
        elapsed_ms: f64,
        /// Token counts so far (as reported).
        tokens: TokenCounts,
    },
    /// The answer ended (successfully or not); nothing follows.
    Finished(Box<AnswerSummary>),
}

/// An event of one of the streams a window listens to: every stream of a
/// window shares one channel, so a tick's updates of all the panes that
/// stream cross in one message (see `attach_streams`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamMessage {
    /// The stream's id (the request's `stream_id`).
    pub stream: u64,
    /// What happened in it.
    pub event: PaneEvent,
}

/// Parse an exact USD decimal (`"0.000123"`) into nano-dollars; `None`
/// when it is not one (more than 9 decimals, a sign, not a number).
pub fn usd_to_nanos(usd: &str) -> Option<i64> {
    let (int, frac) = usd.trim().split_once('.').unwrap_or((usd.trim(), ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i64 = format!("{frac:0<9}").parse().ok()?;
    int.checked_mul(1_000_000_000)?.checked_add(frac)
}

/// Show nano-dollars as `$0.000123` (at least two decimals, trailing zeros
/// beyond them dropped).
pub fn format_usd(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let mut frac = format!("{:09}", n % 1_000_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}${}.{frac}", n / 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_strings_round_trip_through_nanos() {
        assert_eq!(usd_to_nanos("0.000123"), Some(123_000));
        assert_eq!(usd_to_nanos("1.5"), Some(1_500_000_000));
        assert_eq!(usd_to_nanos("2"), Some(2_000_000_000));
        assert_eq!(usd_to_nanos("0.0000000001"), None);
        assert_eq!(usd_to_nanos("-1"), None);
        assert_eq!(format_usd(123_000), "$0.000123");
        assert_eq!(format_usd(1_500_000_000), "$1.50");
        assert_eq!(format_usd(0), "$0.00");
        let sum: i64 = ["0.1", "0.2"].iter().filter_map(|s| usd_to_nanos(s)).sum();
        let req = SetKeyRequest {
            provider: "openai".into(),
            key: "sk-secret-1234".into(),
        };
        assert!(!format!("{req:?}").contains("secret"), "a key never prints");
        assert_eq!(format_usd(sum), "$0.30");
    }
}

/// What testing a provider's key found out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderCheck {
    /// Provider id.
    pub provider: String,
    /// The key (or keyless local server) works.
    pub ok: bool,
    /// Models the provider listed, when it worked.
    pub models: Option<u64>,
    /// The classified error kind, when it did not.
    pub kind: Option<String>,
    /// What happened, for people.
    pub message: String,
}

/// A local model server found on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalServer {
    /// Provider (preset) id: `ollama`, `lmstudio`, `llamacpp`, `vllm`.
    pub provider: String,
    /// Display name.
    pub name: String,
    /// Where it answered.
    pub base_url: String,
    /// Model ids it serves.
    pub models: Vec<String>,
}

/// Store a key for a provider (the reply carries only its state). Its
/// `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetKeyRequest {
    /// Provider id.
    pub provider: String,
    /// The key; sent once, never returned.
    pub key: String,
}

impl std::fmt::Debug for SetKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetKeyRequest")
            .field("provider", &self.provider)
            .field("key", &"••••")
            .finish()
    }
}

/// A conversation in the sidebar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Its id.
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
    /// Shown first.
    pub pinned: bool,
    /// Messages in it.
    pub message_count: u64,
    /// What its answers cost (exact decimal USD).
    pub cost_usd: String,
}

/// One page of the sidebar's list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The conversations, pinned first, then newest.
    pub items: Vec<HistoryEntry>,
    /// Pass back to get the next page.
    pub next: Option<String>,
}

/// A search result: a conversation and the best matching passage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The conversation.
    pub conversation: i64,
    /// Its title.
    pub title: String,
    /// The matching message.
    pub message: i64,
    /// The passage: `(text, matched)` pieces (text is untrusted).
    pub snippet: Vec<(String, bool)>,
}

// ---------------------------------------------------------------------------
// Spend and budgets.

/// What the spend page asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendQuery {
    /// The chart's window: the last `days` UTC days, today included.
    pub days: u32,
    /// Stack and tabulate by `provider`, `model`, `route` or `tag`.
    pub by: String,
}

/// Spend over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendTotalView {
    /// Exact sum (decimal USD).
    pub cost_usd: String,
    /// Billed attempts.
    pub requests: u64,
    /// Of which priced from estimated tokens.
    pub estimated_requests: u64,
    /// Of which the model's price was unknown: counted, not in the sum.
    #[serde(default)]
    pub unknown_price_requests: u64,
    /// Input tokens reported.
    pub input_tokens: u64,
    /// Output tokens reported.
    pub output_tokens: u64,
}

/// One stacked segment of the chart: a group's spend on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendCell {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// The group (`None`: no route / no tag).
    pub key: Option<String>,
    /// Exact sum (decimal USD).
    pub cost_usd: String,
}

/// One line of the spend table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendRow {
    /// The group (`None`: no route / no tag).
    pub key: Option<String>,
    /// Spend, requests and tokens from the ledger.
    pub total: SpendTotalView,
    /// Cost per billed request (decimal USD).
    pub avg_cost_usd: Option<String>,
    /// Attempts that ran, from history (incognito ones leave no trace).
    pub attempts: u64,
    /// Of which failed.
    pub errors: u64,
    /// Failed over ran (0 to 1).
    pub error_rate: Option<f64>,
    /// Mean time to first token (ms).
    pub avg_ttft_ms: Option<f64>,
    /// Mean output tokens per second.
    pub avg_tokens_per_s: Option<f64>,
}

/// A budget and where its current period stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetView {
    /// Its name (`[budgets.<name>]`).
    pub name: String,
    /// `global`, `provider:<id>`, `route:<name>` or `tag:<tag>`.
    pub scope: String,
    /// `daily` or `monthly`.
    pub period: String,
    /// The limit (decimal USD).
    pub limit_usd: String,
    /// Warn from this fraction of the limit.
    pub warn_at: f64,
    /// Refuse requests that would exceed it (false: warn only).
    pub hard: bool,
    /// Spent this period (decimal USD).
    pub spent_usd: String,
    /// Held by requests in flight (decimal USD).
    pub held_usd: String,
    /// Limit minus spent and held, never below zero (decimal USD).
    pub remaining_usd: String,
    /// `ok`, `warning` or `exceeded`.
    pub state: String,
    /// First day of the period (`YYYY-MM-DD`, UTC).
    pub period_start: String,
    /// Last day of the period (`YYYY-MM-DD`, UTC).
    pub period_end: String,
    /// Spend at the end of the period at the pace so far (decimal USD).
    pub projected_usd: String,
    /// What happens when the limit is reached, in words.
    pub effect: String,
}

/// Everything the spend page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendOverview {
    /// Today (UTC).
    pub today: SpendTotalView,
    /// This week (Monday to Sunday, UTC).
    pub week: SpendTotalView,
    /// This month (UTC).
    pub month: SpendTotalView,
    /// The grouping used (`provider`, `model`, `route`, `tag`).
    pub by: String,
    /// Every day of the window, oldest first (`YYYY-MM-DD`).
    pub days: Vec<String>,
    /// Spend per day and group within the window.
    pub cells: Vec<SpendCell>,
    /// The table over the window, most expensive first.
    pub rows: Vec<SpendRow>,
    /// Every budget.
    pub budgets: Vec<BudgetView>,
    /// Problems reading budgets or the ledger.
    pub problems: Vec<String>,
}

/// A budget to add or replace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetInput {
    /// Its name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The budget it replaces, when renamed in the editor.
    #[serde(default)]
    pub replaces: Option<String>,
    /// `global`, `provider:<id>`, `route:<name>` or `tag:<tag>`.
    pub scope: String,
    /// `daily` or `monthly`.
    pub period: String,
    /// The limit (decimal USD, more than zero).
    pub limit_usd: String,
    /// Warn from this fraction of the limit (0 to 1).
    pub warn_at: f64,
    /// Refuse requests that would exceed it (false: warn only).
    pub hard: bool,
}

/// What the status bar shows about spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendStatus {
    /// Spent today (UTC, decimal USD).
    pub today_usd: String,
    /// The budget with the least room left, if any.
    pub tightest: Option<BudgetView>,
}

/// Whether budgets would let a pane's request run, checked before sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetCheck {
    /// The pane's stream id, as in the request.
    pub stream_id: u64,
    /// The pane's target.
    pub target: String,
    /// Names of the hard budgets that would refuse every target.
    pub blocked_by: Vec<String>,
    /// The target that would run instead of the first one, when budgets
    /// refuse the first but not a later one.
    pub fallback_to: Option<String>,
    /// Warn-only budgets this request would take past their limit or
    /// warning threshold.
    pub warnings: Vec<String>,
    /// In words, for the notice.
    pub message: String,
}
