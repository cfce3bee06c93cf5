//! The types that cross the IPC boundary between the Switchboard backend
//! (the Tauri app crate) and the Leptos UI compiled to wasm.
//!
//! Nothing but plain serde types lives here, so both sides compile the same
//! definitions and a change to one side breaks the build of the other instead
//! of failing at run time. Main types:
//!
//! - [`AppInfo`]: what the status bar and the About panel show about the
//!   running backend.
//! - [`Sequenced`]: an envelope with a sequence number for every message sent
//!   over a `tauri::ipc::Channel`, because large channel messages can overtake
//!   each other and the UI must put them back in order.
//! - [`SequenceBuffer`]: the UI side of [`Sequenced`], releasing messages in
//!   order.
//! - [`IpcError`]: the tagged `{ kind, message }` every command returns on
//!   failure.
//! - [`LocalApiStatus`] and [`ClientTokenInfo`]: Settings → Local API.
//! - [`AttachmentRef`]: an image or PDF stored in the data directory, named
//!   by its SHA-256 in turns, rounds and history; [`ImportProgress`] and
//!   [`ImportSummary`]: importing ChatGPT and Claude exports.
//!
//! - [`SavedConversation`] and [`thread`]: a conversation's panes by
//!   identity, and what each pane's model is sent.
//! - [`Vote`], [`JudgeTask`] and [`Leaderboard`]: deciding which model is
//!   best from the user's own blind votes.
//!
//! ```
//! use switchboard_protocol::{AnswerSummary, PaneEvent, Sequenced};
//! let msg = Sequenced { seq: 0, body: PaneEvent::Finished(Box::new(
//!     AnswerSummary::failure("lab:m", "stopped", "stopped".into()),
//! )) };
//! let json = serde_json::to_string(&msg).unwrap();
//! assert!(json.starts_with(r#"{"seq":0,"body":{"type":"finished","#));
//! ```

use serde::{Deserialize, Serialize};

mod attachments;
mod chat;
mod conversation;
mod decide;
mod local_api;

pub use attachments::{
    AttachmentCheck, AttachmentRef, ImportProgress, ImportSource, ImportSummary,
};
pub use chat::{
    AnswerSummary, AskRequest, CatalogModel, CatalogView, HistoryEntry, HistoryPage, KeyState,
    LocalServer, PaneError, PaneEvent, PaneParams, ProviderCheck, ProviderSummary, RouteSummary,
    SearchResult, SetKeyRequest, StreamMessage, TokenCounts, TrailStep, Turn, TurnRole, ViewLayout,
    format_usd, usd_to_nanos,
};
pub use chat::{
    BudgetCheck, BudgetInput, BudgetView, SpendCell, SpendOverview, SpendQuery, SpendRow,
    SpendStatus, SpendTotalView,
};
pub use chat::{NewProvider, RouteSpec, SaveRoute};
pub use conversation::{
    PaneFork, PaneLayout, PaneSpec, RecordAt, RoundIds, SavePanes, SavedAnswer, SavedConversation,
    SavedPane, SavedRound, StartRound, ThreadSource, answerer, fork_for_new_pane, thread,
    valid_pane_key,
};
pub use decide::{
    CastVote, DEFAULT_MERGE_PROMPT, DEFAULT_VERDICT_PROMPT, JudgeRequest, JudgeTask, JudgeVerdict,
    Leaderboard, LeaderboardQuery, LeaderboardRow, Verdict, Vote,
};
pub use local_api::{
    ClientTokenInfo, CreatedClientToken, LocalApiInput, LocalApiStatus, NewClientToken,
};

/// Names of the IPC commands, shared so the UI cannot misspell one.
pub mod commands {
    /// `app_info() -> AppInfo`
    pub const APP_INFO: &str = "app_info";
    /// `list_catalog() -> CatalogView`
    pub const LIST_CATALOG: &str = "list_catalog";
    /// `attach_streams(on_events: Channel<Sequenced<Vec<StreamMessage>>>)`: the channel
    /// every stream of the calling window is sent on (`ask`, `judge_round`), a tick's
    /// updates of all of them in one message; a later call (the page loaded again)
    /// replaces it and stops the streams of the one before
    pub const ATTACH_STREAMS: &str = "attach_streams";
    /// `ask(request: AskRequest) -> AnswerSummary` (its events go to the window's
    /// `attach_streams` channel under `request.stream_id`)
    pub const ASK: &str = "ask";
    /// `stop_stream(stream_id: u64) -> bool` (false when it had already ended)
    pub const STOP_STREAM: &str = "stop_stream";
    /// `set_key(request: SetKeyRequest) -> KeyState`
    pub const SET_KEY: &str = "set_key";
    /// `remove_key(provider: String) -> KeyState`
    pub const REMOVE_KEY: &str = "remove_key";
    /// `test_provider(provider: String) -> ProviderCheck`
    pub const TEST_PROVIDER: &str = "test_provider";
    /// `detect_local() -> Vec<LocalServer>`
    pub const DETECT_LOCAL: &str = "detect_local";
    /// `start_round(request: StartRound) -> RoundIds`
    pub const START_ROUND: &str = "start_round";
    /// `list_conversations(after: Option<String>) -> HistoryPage`
    pub const LIST_CONVERSATIONS: &str = "list_conversations";
    /// `search_history(query: String) -> Vec<SearchResult>`
    pub const SEARCH_HISTORY: &str = "search_history";
    /// `open_conversation(id: i64) -> SavedConversation`
    pub const OPEN_CONVERSATION: &str = "open_conversation";
    /// `save_panes(request: SavePanes) -> bool` (false: an older layout, ignored)
    pub const SAVE_PANES: &str = "save_panes";
    /// `rename_conversation(id: i64, title: String) -> ()`
    pub const RENAME_CONVERSATION: &str = "rename_conversation";
    /// `delete_conversation(id: i64) -> ()`
    pub const DELETE_CONVERSATION: &str = "delete_conversation";
    /// `export_conversation(id: i64, format: String) -> String` (the saved file's path)
    pub const EXPORT_CONVERSATION: &str = "export_conversation";
    /// `set_provider_enabled(provider: String, enabled: bool) -> ()` (writes config.toml)
    pub const SET_PROVIDER_ENABLED: &str = "set_provider_enabled";
    /// `set_provider_base_url(provider: String, base_url: String) -> ()` (writes config.toml)
    pub const SET_PROVIDER_BASE_URL: &str = "set_provider_base_url";
    /// `add_provider(request: NewProvider) -> ()` (writes config.toml)
    pub const ADD_PROVIDER: &str = "add_provider";
    /// `save_route(request: SaveRoute) -> ()` (writes `[routes.<name>]` in config.toml)
    pub const SAVE_ROUTE: &str = "save_route";
    /// `delete_route(name: String) -> ()` (writes config.toml)
    pub const DELETE_ROUTE: &str = "delete_route";
    /// `set_pinned(id: i64, pinned: bool) -> ()`
    pub const SET_PINNED: &str = "set_pinned";
    /// `spend_overview(request: SpendQuery) -> SpendOverview`
    pub const SPEND_OVERVIEW: &str = "spend_overview";
    /// `spend_status() -> SpendStatus` (today's spend, the tightest budget)
    pub const SPEND_STATUS: &str = "spend_status";
    /// `save_budget(request: BudgetInput) -> ()` (writes `[budgets.<name>]` in config.toml)
    pub const SAVE_BUDGET: &str = "save_budget";
    /// `remove_budget(name: String) -> ()` (writes config.toml)
    pub const REMOVE_BUDGET: &str = "remove_budget";
    /// `check_budgets(requests: Vec<AskRequest>) -> Vec<BudgetCheck>`
    pub const CHECK_BUDGETS: &str = "check_budgets";
    /// `export_spend(from: String, to: String) -> String` (the CSV's path; dates `YYYY-MM-DD`, inclusive)
    pub const EXPORT_SPEND: &str = "export_spend";
    /// `set_tags(id: i64, tags: Vec<String>) -> Vec<String>` (the tags as stored)
    pub const SET_TAGS: &str = "set_tags";
    /// `local_api_status() -> LocalApiStatus`
    pub const LOCAL_API_STATUS: &str = "local_api_status";
    /// `set_local_api(request: LocalApiInput) -> LocalApiStatus` (starts or stops it; writes `[local_api]`)
    pub const SET_LOCAL_API: &str = "set_local_api";
    /// `create_client_token(request: NewClientToken) -> CreatedClientToken`
    pub const CREATE_CLIENT_TOKEN: &str = "create_client_token";
    /// `revoke_client_token(name: String) -> ()`
    pub const REVOKE_CLIENT_TOKEN: &str = "revoke_client_token";
    /// `store_attachment` with the file's raw bytes as the request body and
    /// its name percent-encoded in the `x-attachment-name` header ->
    /// `AttachmentRef` (kind `invalid_input` for a file that is not a PNG,
    /// JPEG, WebP, GIF or PDF); with `x-attachment-memory: 1` (Incognito)
    /// kept in memory only, never written to the data directory
    pub const STORE_ATTACHMENT: &str = "store_attachment";
    /// `attachment_data(id: String)` -> the raw bytes (an `ArrayBuffer`), for thumbnails
    pub const ATTACHMENT_DATA: &str = "attachment_data";
    /// `discard_attachment(id: String) -> bool` (removed before sending; kept if a message uses it)
    pub const DISCARD_ATTACHMENT: &str = "discard_attachment";
    /// `hold_attachments(ids: Vec<String>) -> ()` (an unrecorded round's files: kept in memory
    /// while its conversation is on screen, their data-directory copies removed unless a
    /// recorded message uses them)
    pub const HOLD_ATTACHMENTS: &str = "hold_attachments";
    /// `release_attachments(keep: Vec<String>) -> usize` (the conversation was left: forget the
    /// files held in memory for it, except `keep`; how many went)
    pub const RELEASE_ATTACHMENTS: &str = "release_attachments";
    /// `check_attachments(requests: Vec<AskRequest>) -> Vec<AttachmentCheck>` (before sending)
    pub const CHECK_ATTACHMENTS: &str = "check_attachments";
    /// `import_history(path: String, on_progress: Channel<Sequenced<ImportProgress>>) -> ImportSummary`
    pub const IMPORT_HISTORY: &str = "import_history";
    /// `choose_import_file() -> Option<String>` (the native file chooser; `None` when cancelled)
    pub const CHOOSE_IMPORT_FILE: &str = "choose_import_file";
    /// `record_vote(vote: CastVote) -> Vote` (as stored; a re-vote replaces the round's vote
    /// and is as blind as its first one)
    pub const RECORD_VOTE: &str = "record_vote";
    /// `judge_round(request: JudgeRequest) -> JudgeVerdict` (its text streams as a pane's
    /// does, on the `attach_streams` channel; recorded with the round; never a vote)
    pub const JUDGE_ROUND: &str = "judge_round";
    /// `leaderboard(query: LeaderboardQuery) -> Leaderboard`
    pub const LEADERBOARD: &str = "leaderboard";
}

/// Facts about the running backend, shown in the status bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    /// The app's version number (`0.1.0`).
    pub version: String,
    /// Version and build, exactly as `switchboard-cli --version` prints it
    /// after the program name: `0.1.0 (git abc1234, 2026-12-02)`.
    pub version_line: String,
    /// The data directory in use (`SWITCHBOARD_HOME` or the OS data dir).
    pub data_dir: String,
    /// Whether the OS keychain answered when the app started.
    pub keychain: KeychainStatus,
    /// Which keychain keeps the keys on this system (e.g. the Secret Service).
    pub keychain_backend: String,
    /// The keychain service name the keys are stored under (`switchboard`).
    pub key_service: String,
}

/// Whether keys can be stored in the OS keychain on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KeychainStatus {
    /// The keychain answered.
    Available,
    /// No keychain could be reached; `reason` says why and what to do.
    Unavailable {
        /// Human-readable cause, with the `SWITCHBOARD_KEY_<ID>` alternative.
        reason: String,
    },
}

/// A channel message with its position in the stream.
///
/// `seq` starts at 0 and grows by one per message of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequenced<T> {
    /// Position of this message in its stream.
    pub seq: u64,
    /// The message itself.
    pub body: T,
}

/// The error every command returns: a kind to branch on and a message to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpcError {
    /// What went wrong, for the UI to decide how to present it.
    pub kind: IpcErrorKind,
    /// A message for the user; never contains a secret.
    pub message: String,
}

/// The kinds of [`IpcError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpcErrorKind {
    /// The arguments were rejected (bad input from the UI).
    InvalidInput,
    /// Something failed in the backend; the message says what.
    Internal,
    /// A change to config.toml was refused because the file would not load
    /// with it (nothing was written); the message names the file, the line
    /// and the field (`/home/me/config.toml:3: providers.lab.base_url: ...`).
    InvalidConfig,
}

/// Puts channel messages back in order: messages pushed out of order are
/// held until the gap before them is filled, then released in `seq` order.
/// A message whose `seq` was already released is dropped, so nothing is
/// shown twice.
#[derive(Debug)]
pub struct SequenceBuffer<T> {
    next: u64,
    pending: std::collections::BTreeMap<u64, T>,
}

impl<T> Default for SequenceBuffer<T> {
    fn default() -> Self {
        Self {
            next: 0,
            pending: std::collections::BTreeMap::new(),
        }
    }
}

impl<T> SequenceBuffer<T> {
    /// An empty buffer expecting `seq` 0 first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept one message; returns every message now ready, in order.
    pub fn push(&mut self, msg: Sequenced<T>) -> Vec<T> {
        if msg.seq < self.next {
            return Vec::new();
        }
        self.pending.insert(msg.seq, msg.body);
        let mut ready = Vec::new();
        while let Some(body) = self.pending.remove(&self.next) {
            ready.push(body);
            self.next += 1;
        }
        ready
    }

    /// Messages received but still waiting for an earlier one.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }
}

impl std::fmt::Display for IpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for IpcError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_buffer_restores_order_and_drops_repeats() {
        let mut buf = SequenceBuffer::new();
        let m = |seq, body: &'static str| Sequenced { seq, body };
        assert_eq!(buf.push(m(1, "b")), Vec::<&str>::new());
        assert_eq!(buf.push(m(2, "c")), Vec::<&str>::new());
        assert_eq!(buf.waiting(), 2);
        assert_eq!(buf.push(m(0, "a")), vec!["a", "b", "c"]);
        assert_eq!(buf.push(m(1, "b again")), Vec::<&str>::new());
        assert_eq!(buf.push(m(3, "d")), vec!["d"]);
        assert_eq!(buf.waiting(), 0);
    }

    #[test]
    fn errors_are_tagged_for_the_ui() {
        let err = IpcError {
            kind: IpcErrorKind::InvalidInput,
            message: "empty".into(),
        };
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"kind":"invalid_input","message":"empty"}"#
        );
    }

    #[test]
    fn keychain_status_says_why_it_is_unavailable() {
        let s = KeychainStatus::Unavailable {
            reason: "no D-Bus".into(),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"state":"unavailable","reason":"no D-Bus"}"#
        );
    }
}
