//! The Switchboard desktop app: a thin Tauri shell. Each command decodes its
//! arguments, calls `switchboard-engine`, and maps the result to the types of
//! `switchboard-protocol`; nothing here is worth testing without a window.
//! When the app ends (its window closed, or SIGTERM) it asks the engine to
//! stop and settle whatever still streams ([`ChatService::shutdown`]).
//! On Linux the window's WebKit view is set up for one local page rather
//! than for browsing (`webkit.rs`: cache model, page cache, compositing,
//! and no GTK GL without a GPU).

use std::sync::Arc;

use switchboard_engine::service::{ChatService, StreamHub};
use switchboard_engine::{DataDir, KeyError, KeyStore};
use switchboard_gateway::{LocalApi, LocalApiError};
use switchboard_protocol::{
    AnswerSummary, AppInfo, AskRequest, CatalogView, HistoryPage, IpcError, IpcErrorKind, KeyState,
    KeychainStatus, LocalServer, ProviderCheck, RoundIds, SavePanes, SavedConversation,
    SearchResult, Sequenced, SetKeyRequest, StartRound, StreamMessage,
};
use switchboard_protocol::{AttachmentCheck, AttachmentRef, ImportProgress, ImportSummary};
use switchboard_protocol::{BudgetCheck, BudgetInput, SpendOverview, SpendQuery, SpendStatus};
use switchboard_protocol::{
    CastVote, JudgeRequest, JudgeVerdict, Leaderboard, LeaderboardQuery, Vote,
};
use switchboard_protocol::{CreatedClientToken, LocalApiInput, LocalApiStatus, NewClientToken};
use switchboard_protocol::{NewProvider, SaveRoute};
use tauri::Manager;
use tauri::ipc::Channel;

#[cfg(target_os = "linux")]
mod webkit;

/// What every command can reach.
#[derive(Debug)]
struct AppState {
    data_dir: DataDir,
    keys: KeyStore,
    chat: Arc<ChatService>,
    local_api: Arc<LocalApi>,
    /// Each window's stream hub, by window label (see `attach_streams`).
    hubs: std::sync::Mutex<std::collections::HashMap<String, Arc<WindowHub>>>,
    /// Woken when a window attaches its channel: a page sends its first
    /// stream right after attaching, without waiting for the reply.
    hub_attached: tokio::sync::Notify,
}

fn internal(message: impl Into<String>) -> IpcError {
    IpcError {
        kind: IpcErrorKind::Internal,
        message: message.into(),
    }
}

#[tauri::command]
async fn app_info(state: tauri::State<'_, AppState>) -> Result<AppInfo, IpcError> {
    let keys = state.keys.clone();
    // The keychain may sit behind a D-Bus round trip: keep it off the IPC thread.
    let probe = tokio::task::spawn_blocking(move || keys.probe())
        .await
        .map_err(|e| internal(format!("keychain probe failed: {e}")))?;
    let keychain = match probe {
        Ok(()) => KeychainStatus::Available,
        Err(e @ (KeyError::Unavailable { .. } | KeyError::Platform { .. })) => {
            KeychainStatus::Unavailable {
                reason: e.to_string(),
            }
        }
        Err(e) => return Err(internal(e.to_string())),
    };
    Ok(AppInfo {
        version: switchboard_engine::VERSION.to_owned(),
        version_line: switchboard_engine::VERSION_LINE.to_owned(),
        data_dir: state.data_dir.path().display().to_string(),
        keychain,
        keychain_backend: switchboard_engine::KEYCHAIN_BACKEND.to_owned(),
        key_service: switchboard_engine::KEY_SERVICE.to_owned(),
    })
}

#[tauri::command]
async fn list_catalog(state: tauri::State<'_, AppState>) -> Result<CatalogView, IpcError> {
    let chat = Arc::clone(&state.chat);
    // Key states come from the keychain: keep it off the IPC thread.
    tokio::task::spawn_blocking(move || chat.catalog_view())
        .await
        .map_err(|e| internal(format!("could not list models: {e}")))
}

/// A window's streams: the engine batches them, this only sends.
type WindowHub = StreamHub<Box<dyn FnMut(Vec<StreamMessage>) -> bool + Send>>;

/// The window's channel for every stream it asks for (`ask`,
/// `judge_round`). Each message is numbered (channel messages can overtake
/// each other; the page puts them back in order); a send that fails (the
/// window is gone) stops the window's streams. Called again (the page
/// loaded anew), the new channel replaces the old one and the streams
/// sent to the old one stop.
#[tauri::command]
fn attach_streams(
    window: tauri::WebviewWindow,
    state: tauri::State<'_, AppState>,
    on_events: Channel<Sequenced<Vec<StreamMessage>>>,
) {
    let mut seq = 0u64;
    let send = move |body: Vec<StreamMessage>| {
        let msg = Sequenced { seq, body };
        seq += 1;
        on_events.send(msg).is_ok()
    };
    let hub: Arc<WindowHub> = Arc::new(StreamHub::new(Box::new(send)));
    let old = state
        .hubs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(window.label().to_owned(), hub);
    state.hub_attached.notify_waiters();
    if let Some(old) = old {
        old.close();
    }
}

/// How long a stream waits for its window's `attach_streams`: the page
/// sends both at once, and the two calls may be taken in either order.
const ATTACH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The calling window's stream hub, once it has attached one.
async fn hub_of(
    state: &AppState,
    window: &tauri::WebviewWindow,
) -> Result<Arc<WindowHub>, IpcError> {
    let deadline = tokio::time::Instant::now() + ATTACH_WAIT;
    loop {
        let attached = state.hub_attached.notified();
        tokio::pin!(attached);
        // Registered before the look-up, so an attach in between wakes it.
        attached.as_mut().enable();
        if let Some(hub) = state
            .hubs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(window.label())
        {
            return Ok(Arc::clone(hub));
        }
        if tokio::time::timeout_at(deadline, attached).await.is_err() {
            return Err(internal(
                "this window has no stream channel: attach_streams first",
            ));
        }
    }
}

#[tauri::command]
async fn ask(
    window: tauri::WebviewWindow,
    state: tauri::State<'_, AppState>,
    request: AskRequest,
) -> Result<AnswerSummary, IpcError> {
    let hub = hub_of(&state, &window).await?;
    Ok(state.chat.ask_in(request, &hub).await)
}

#[tauri::command]
fn stop_stream(state: tauri::State<'_, AppState>, stream_id: u64) -> bool {
    state.chat.stop(stream_id)
}

fn key_error(e: KeyError) -> IpcError {
    let kind = match e {
        KeyError::InvalidId { .. } | KeyError::Empty => IpcErrorKind::InvalidInput,
        KeyError::Unavailable { .. } | KeyError::Platform { .. } | KeyError::Index { .. } => {
            IpcErrorKind::Internal
        }
    };
    IpcError {
        kind,
        message: e.to_string(),
    }
}

#[tauri::command]
async fn set_key(
    state: tauri::State<'_, AppState>,
    request: SetKeyRequest,
) -> Result<KeyState, IpcError> {
    let chat = Arc::clone(&state.chat);
    tokio::task::spawn_blocking(move || chat.set_key(&request.provider, &request.key))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(key_error)
}

#[tauri::command]
async fn remove_key(
    state: tauri::State<'_, AppState>,
    provider: String,
) -> Result<KeyState, IpcError> {
    let chat = Arc::clone(&state.chat);
    tokio::task::spawn_blocking(move || chat.remove_key(&provider))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(key_error)
}

#[tauri::command]
async fn test_provider(
    state: tauri::State<'_, AppState>,
    provider: String,
) -> Result<ProviderCheck, IpcError> {
    Ok(state.chat.test_provider(&provider).await)
}

#[tauri::command]
async fn detect_local(state: tauri::State<'_, AppState>) -> Result<Vec<LocalServer>, IpcError> {
    Ok(state.chat.detect_local().await)
}

fn history_error(e: switchboard_engine::StoreError) -> IpcError {
    internal(e.to_string())
}

/// Runs a blocking store call off the IPC thread, its error told as `error`
/// says.
async fn off_ipc_thread<T: Send + 'static>(
    state: &tauri::State<'_, AppState>,
    f: impl FnOnce(&ChatService) -> Result<T, switchboard_engine::StoreError> + Send + 'static,
    error: fn(switchboard_engine::StoreError) -> IpcError,
) -> Result<T, IpcError> {
    let chat = Arc::clone(&state.chat);
    tokio::task::spawn_blocking(move || f(&chat))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(error)
}

/// Runs a blocking history call off the IPC thread.
async fn on_store<T: Send + 'static>(
    state: &tauri::State<'_, AppState>,
    f: impl FnOnce(&ChatService) -> Result<T, switchboard_engine::StoreError> + Send + 'static,
) -> Result<T, IpcError> {
    off_ipc_thread(state, f, history_error).await
}

#[tauri::command]
async fn start_round(
    state: tauri::State<'_, AppState>,
    request: StartRound,
) -> Result<RoundIds, IpcError> {
    on_store(&state, move |c| c.start_round(&request)).await
}

#[tauri::command]
async fn list_conversations(
    state: tauri::State<'_, AppState>,
    after: Option<String>,
) -> Result<HistoryPage, IpcError> {
    on_store(&state, move |c| c.list_conversations(after.as_deref())).await
}

#[tauri::command]
async fn search_history(
    state: tauri::State<'_, AppState>,
    query: String,
) -> Result<Vec<SearchResult>, IpcError> {
    on_store(&state, move |c| c.search_history(&query)).await
}

#[tauri::command]
async fn open_conversation(
    state: tauri::State<'_, AppState>,
    id: i64,
) -> Result<SavedConversation, IpcError> {
    on_store(&state, move |c| c.open_conversation(id)).await
}

#[tauri::command]
async fn save_panes(
    state: tauri::State<'_, AppState>,
    request: SavePanes,
) -> Result<bool, IpcError> {
    on_store(&state, move |c| c.save_panes(&request)).await
}

#[tauri::command]
async fn rename_conversation(
    state: tauri::State<'_, AppState>,
    id: i64,
    title: String,
) -> Result<(), IpcError> {
    on_store(&state, move |c| c.rename_conversation(id, &title)).await
}

#[tauri::command]
async fn delete_conversation(state: tauri::State<'_, AppState>, id: i64) -> Result<(), IpcError> {
    on_store(&state, move |c| c.delete_conversation(id)).await
}

#[tauri::command]
async fn export_conversation(
    state: tauri::State<'_, AppState>,
    id: i64,
    format: String,
) -> Result<String, IpcError> {
    on_store(&state, move |c| c.export_conversation(id, &format)).await
}

/// A file that is not an attachment (not a PNG, JPEG, WebP, GIF or PDF,
/// unreadable) is bad input; anything else is the backend's.
fn attachment_error(e: switchboard_engine::StoreError) -> IpcError {
    match e {
        switchboard_engine::StoreError::Invalid { message } => IpcError {
            kind: IpcErrorKind::InvalidInput,
            message,
        },
        other => internal(other.to_string()),
    }
}

/// Runs a blocking attachment call off the IPC thread.
async fn on_attachments<T: Send + 'static>(
    state: &tauri::State<'_, AppState>,
    f: impl FnOnce(&ChatService) -> Result<T, switchboard_engine::StoreError> + Send + 'static,
) -> Result<T, IpcError> {
    off_ipc_thread(state, f, attachment_error).await
}

/// The file's raw bytes are the request body; its name, percent-encoded,
/// is the `x-attachment-name` header. With `x-attachment-memory: 1` (added
/// with Incognito on) it is kept in memory only, never in the data
/// directory.
#[tauri::command]
async fn store_attachment(
    state: tauri::State<'_, AppState>,
    request: tauri::ipc::Request<'_>,
) -> Result<AttachmentRef, IpcError> {
    let tauri::ipc::InvokeBody::Raw(bytes) = request.body() else {
        return Err(IpcError {
            kind: IpcErrorKind::InvalidInput,
            message: "store_attachment takes the file's bytes as the raw request body".into(),
        });
    };
    let bytes = bytes.clone();
    let name = request
        .headers()
        .get("x-attachment-name")
        .and_then(|v| v.to_str().ok())
        .map(switchboard_engine::attach::percent_decode);
    let in_memory = request
        .headers()
        .get("x-attachment-memory")
        .is_some_and(|v| v.as_bytes() == b"1");
    on_attachments(&state, move |c| {
        if in_memory {
            c.keep_attachment_in_memory(bytes, name.as_deref())
        } else {
            c.store_attachment(bytes, name.as_deref())
        }
    })
    .await
}

/// The raw bytes (an `ArrayBuffer` in the UI), for a thumbnail.
#[tauri::command]
async fn attachment_data(
    state: tauri::State<'_, AppState>,
    id: String,
) -> Result<tauri::ipc::Response, IpcError> {
    let (bytes, _) = on_attachments(&state, move |c| c.attachment_data(&id)).await?;
    Ok(tauri::ipc::Response::new(bytes))
}

#[tauri::command]
async fn discard_attachment(
    state: tauri::State<'_, AppState>,
    id: String,
) -> Result<bool, IpcError> {
    on_attachments(&state, move |c| c.discard_attachment(&id)).await
}

#[tauri::command]
async fn hold_attachments(
    state: tauri::State<'_, AppState>,
    ids: Vec<String>,
) -> Result<(), IpcError> {
    on_attachments(&state, move |c| c.hold_attachments(&ids)).await
}

#[tauri::command]
fn release_attachments(state: tauri::State<'_, AppState>, keep: Vec<String>) -> usize {
    state.chat.release_attachments(&keep)
}

#[tauri::command]
async fn check_attachments(
    state: tauri::State<'_, AppState>,
    requests: Vec<switchboard_protocol::AskRequest>,
) -> Result<Vec<AttachmentCheck>, IpcError> {
    let chat = Arc::clone(&state.chat);
    tokio::task::spawn_blocking(move || chat.check_attachments(&requests))
        .await
        .map_err(|e| internal(e.to_string()))
}

/// Import a ChatGPT or Claude `conversations.json` (or a Switchboard JSON
/// export) from `path`, reporting progress on `on_progress`.
#[tauri::command]
async fn import_history(
    state: tauri::State<'_, AppState>,
    path: String,
    on_progress: Channel<Sequenced<ImportProgress>>,
) -> Result<ImportSummary, IpcError> {
    let chat = Arc::clone(&state.chat);
    tokio::task::spawn_blocking(move || {
        let mut seq = 0;
        chat.import_history(std::path::Path::new(&path), &mut |body| {
            let _ = on_progress.send(Sequenced { seq, body });
            seq += 1;
        })
    })
    .await
    .map_err(|e| internal(e.to_string()))?
    .map_err(attachment_error)
}

/// Settings → Import's "Choose file…": the native file chooser, over the
/// window; the path picked, or `None` when it was cancelled. The command
/// is async and waits on a channel, so the chooser runs on the GTK main
/// loop while other IPC calls keep being answered.
#[tauri::command]
async fn choose_import_file(window: tauri::WebviewWindow) -> Result<Option<String>, IpcError> {
    use tauri::Manager as _;
    use tauri_plugin_dialog::DialogExt as _;
    // Exports are downloaded: start there (else at home), not in GTK's
    // "Recent" view, where a typed path is not taken.
    let paths = window.path();
    let start = [paths.download_dir(), paths.home_dir()]
        .into_iter()
        .flatten()
        .find(|d| d.is_dir());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut chooser = window.dialog().file();
    if let Some(dir) = start {
        chooser = chooser.set_directory(dir);
    }
    chooser
        .set_parent(&window)
        .set_title("Choose an export to import")
        .add_filter("Exports (.json)", &["json"])
        .add_filter("All files", &["*"])
        .pick_file(move |picked| {
            let _ = tx.send(picked);
        });
    let picked = rx
        .await
        .map_err(|_| internal("the file chooser closed without an answer"))?;
    picked
        .map(|p| {
            p.into_path()
                .map(|p| p.display().to_string())
                .map_err(|e| internal(format!("the chosen file has no path: {e}")))
        })
        .transpose()
}

/// A refused config.toml edit: the message names the file, line and field.
fn config_error(e: switchboard_engine::ConfigError) -> IpcError {
    IpcError {
        kind: IpcErrorKind::InvalidConfig,
        message: e.to_string(),
    }
}

/// Runs a blocking config.toml edit off the IPC thread.
async fn on_config(
    state: &tauri::State<'_, AppState>,
    f: impl FnOnce(&ChatService) -> Result<(), switchboard_engine::ConfigError> + Send + 'static,
) -> Result<(), IpcError> {
    let chat = Arc::clone(&state.chat);
    tokio::task::spawn_blocking(move || f(&chat))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(config_error)
}

#[tauri::command]
async fn set_provider_enabled(
    state: tauri::State<'_, AppState>,
    provider: String,
    enabled: bool,
) -> Result<(), IpcError> {
    on_config(&state, move |c| c.set_provider_enabled(&provider, enabled)).await
}

#[tauri::command]
async fn set_provider_base_url(
    state: tauri::State<'_, AppState>,
    provider: String,
    base_url: String,
) -> Result<(), IpcError> {
    on_config(&state, move |c| {
        c.set_provider_base_url(&provider, &base_url)
    })
    .await
}

#[tauri::command]
async fn add_provider(
    state: tauri::State<'_, AppState>,
    request: NewProvider,
) -> Result<(), IpcError> {
    on_config(&state, move |c| c.add_provider(&request)).await
}

#[tauri::command]
async fn save_route(state: tauri::State<'_, AppState>, request: SaveRoute) -> Result<(), IpcError> {
    on_config(&state, move |c| c.save_route(&request)).await
}

#[tauri::command]
async fn delete_route(state: tauri::State<'_, AppState>, name: String) -> Result<(), IpcError> {
    on_config(&state, move |c| c.delete_route(&name)).await
}

#[tauri::command]
async fn set_pinned(
    state: tauri::State<'_, AppState>,
    id: i64,
    pinned: bool,
) -> Result<(), IpcError> {
    on_store(&state, move |c| c.set_pinned(id, pinned)).await
}

fn budget_error(e: switchboard_engine::budgets::BudgetEditError) -> IpcError {
    use switchboard_engine::budgets::BudgetEditError;
    let kind = match e {
        BudgetEditError::Invalid { .. } => IpcErrorKind::InvalidInput,
        BudgetEditError::Config(_) => IpcErrorKind::InvalidConfig,
    };
    IpcError {
        kind,
        message: e.to_string(),
    }
}

#[tauri::command]
async fn spend_overview(
    state: tauri::State<'_, AppState>,
    request: SpendQuery,
) -> Result<SpendOverview, IpcError> {
    on_store(&state, move |c| c.spend_overview(&request)).await
}

#[tauri::command]
async fn spend_status(state: tauri::State<'_, AppState>) -> Result<SpendStatus, IpcError> {
    on_store(&state, move |c| c.spend_status()).await
}

#[tauri::command]
async fn save_budget(
    state: tauri::State<'_, AppState>,
    request: BudgetInput,
) -> Result<(), IpcError> {
    let chat = Arc::clone(&state.chat);
    tokio::task::spawn_blocking(move || chat.save_budget(&request))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(budget_error)
}

#[tauri::command]
async fn remove_budget(state: tauri::State<'_, AppState>, name: String) -> Result<(), IpcError> {
    let chat = Arc::clone(&state.chat);
    tokio::task::spawn_blocking(move || chat.remove_budget(&name))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(budget_error)
}

#[tauri::command]
async fn check_budgets(
    state: tauri::State<'_, AppState>,
    requests: Vec<AskRequest>,
) -> Result<Vec<BudgetCheck>, IpcError> {
    on_store(&state, move |c| Ok(c.check_budgets(&requests))).await
}

#[tauri::command]
async fn export_spend(
    state: tauri::State<'_, AppState>,
    from: String,
    to: String,
) -> Result<String, IpcError> {
    on_store(&state, move |c| c.export_spend(&from, &to)).await
}

#[tauri::command]
async fn set_tags(
    state: tauri::State<'_, AppState>,
    id: i64,
    tags: Vec<String>,
) -> Result<Vec<String>, IpcError> {
    on_store(&state, move |c| c.set_tags(id, &tags)).await
}

fn local_api_error(e: LocalApiError) -> IpcError {
    let kind = match e {
        LocalApiError::Invalid(_) => IpcErrorKind::InvalidInput,
        LocalApiError::Config(_) => IpcErrorKind::InvalidConfig,
        LocalApiError::Start(_) | LocalApiError::Store(_) => IpcErrorKind::Internal,
    };
    IpcError {
        kind,
        message: e.to_string(),
    }
}

#[tauri::command]
async fn local_api_status(state: tauri::State<'_, AppState>) -> Result<LocalApiStatus, IpcError> {
    Ok(state.local_api.status().await)
}

#[tauri::command]
async fn set_local_api(
    state: tauri::State<'_, AppState>,
    request: LocalApiInput,
) -> Result<LocalApiStatus, IpcError> {
    state
        .local_api
        .apply(&request)
        .await
        .map_err(local_api_error)
}

#[tauri::command]
async fn create_client_token(
    state: tauri::State<'_, AppState>,
    request: NewClientToken,
) -> Result<CreatedClientToken, IpcError> {
    state
        .local_api
        .create_token(&request)
        .await
        .map_err(local_api_error)
}

#[tauri::command]
async fn revoke_client_token(
    state: tauri::State<'_, AppState>,
    name: String,
) -> Result<(), IpcError> {
    state
        .local_api
        .revoke_token(&name)
        .await
        .map_err(local_api_error)
}

#[tauri::command]
async fn record_vote(state: tauri::State<'_, AppState>, vote: CastVote) -> Result<Vote, IpcError> {
    on_store(&state, move |c| c.record_vote(&vote)).await
}

#[tauri::command]
async fn judge_round(
    window: tauri::WebviewWindow,
    state: tauri::State<'_, AppState>,
    request: JudgeRequest,
) -> Result<JudgeVerdict, IpcError> {
    let hub = hub_of(&state, &window).await?;
    state
        .chat
        .judge_round_in(request, &hub)
        .await
        .map_err(history_error)
}

#[tauri::command]
async fn leaderboard(
    state: tauri::State<'_, AppState>,
    query: LeaderboardQuery,
) -> Result<Leaderboard, IpcError> {
    on_store(&state, move |c| c.leaderboard(&query)).await
}

/// How long the app waits, when it exits, for running answers to settle.
const SETTLE_ON_EXIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Start the app and block until its window closes.
pub fn run() -> Result<(), Box<dyn std::error::Error>> {
    // First, while this is the process's only thread (see webkit.rs).
    #[cfg(target_os = "linux")]
    webkit::before_gtk();
    let data_dir = DataDir::resolve()?;
    let keys = KeyStore::new();
    let chat = Arc::new(ChatService::new(data_dir.clone(), keys.clone()));
    let local_api = Arc::new(LocalApi::new(data_dir.clone(), keys.clone()));
    let exiting = Arc::clone(&chat);
    let exiting_api = Arc::clone(&local_api);
    let starting_api = Arc::clone(&local_api);
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .manage(AppState {
            data_dir,
            keys,
            chat,
            local_api,
            hubs: std::sync::Mutex::default(),
            hub_attached: tokio::sync::Notify::new(),
        })
        .setup(move |app| {
            // A browser's defaults cost memory for one local page (see webkit.rs).
            #[cfg(target_os = "linux")]
            if let Some(window) = app.get_webview_window("main") {
                window.with_webview(webkit::tune)?;
            }
            // `[local_api] start_with_app`: listen as soon as the app opens.
            tauri::async_runtime::spawn(async move { starting_api.start_with_app().await });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            app_info,
            list_catalog,
            attach_streams,
            ask,
            stop_stream,
            set_key,
            remove_key,
            test_provider,
            detect_local,
            start_round,
            list_conversations,
            search_history,
            open_conversation,
            save_panes,
            rename_conversation,
            delete_conversation,
            export_conversation,
            set_provider_enabled,
            set_provider_base_url,
            add_provider,
            save_route,
            delete_route,
            set_pinned,
            spend_overview,
            spend_status,
            save_budget,
            remove_budget,
            check_budgets,
            export_spend,
            set_tags,
            local_api_status,
            set_local_api,
            create_client_token,
            revoke_client_token,
            store_attachment,
            attachment_data,
            discard_attachment,
            hold_attachments,
            release_attachments,
            check_attachments,
            import_history,
            choose_import_file,
            record_vote,
            judge_round,
            leaderboard
        ])
        .build(tauri::generate_context!("../tauri.conf.json"))?;
    // SIGTERM (a logout, a system shutdown, `kill`) ends the app the way
    // closing its window does, so what streams still settles.
    #[cfg(unix)]
    {
        let handle = app.handle().clone();
        tauri::async_runtime::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate())
                && term.recv().await.is_some()
            {
                handle.exit(0);
            }
        });
    }
    app.run(move |_, event| {
        if let tauri::RunEvent::Exit = event {
            // Closing the window stops what still streams; each answer
            // settles (ledger, history) before the process ends. So do the
            // Local API's requests.
            tauri::async_runtime::block_on(async {
                exiting.shutdown(SETTLE_ON_EXIT).await;
                exiting_api.shutdown(SETTLE_ON_EXIT).await;
            });
        }
    });
    Ok(())
}
