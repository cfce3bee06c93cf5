//! Typed access to the backend. Every IPC call of the UI goes through this
//! file: `invoke` for commands, a Tauri `Channel` for streams. The JS side is
//! reached through `window.__TAURI__` (the app sets `withGlobalTauri`).
//!
//! Every answer and judge of the page streams over one channel
//! ([`attach_streams`]): a message carries a tick's events of all of them,
//! each under its stream id, and [`Streams`] hands each event to the call
//! that asked for that stream. One message per tick for six panes instead
//! of two per pane: each message is a script the webview runs on the UI
//! thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;
use js_sys::{Array, Function, Object, Promise, Reflect};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::{
    AnswerSummary, AppInfo, AskRequest, CatalogView, HistoryPage, IpcError, IpcErrorKind, KeyState,
    LocalServer, PaneEvent, ProviderCheck, RoundIds, SavePanes, SavedConversation, SearchResult,
    SequenceBuffer, Sequenced, SetKeyRequest, StartRound, StreamMessage, commands,
};
use switchboard_protocol::{
    AttachmentCheck, AttachmentRef, ImportProgress, ImportSummary, NewProvider, SaveRoute,
};
use switchboard_protocol::{BudgetCheck, BudgetInput, SpendOverview, SpendQuery, SpendStatus};
use switchboard_protocol::{CreatedClientToken, LocalApiInput, LocalApiStatus, NewClientToken};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

fn bridge_error(message: impl Into<String>) -> IpcError {
    IpcError {
        kind: IpcErrorKind::Internal,
        message: message.into(),
    }
}

fn describe(value: &JsValue) -> String {
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// `window.__TAURI__.core`, or a clear error when the page runs outside the app.
fn tauri_core() -> Result<JsValue, IpcError> {
    let window = web_sys::window().ok_or_else(|| bridge_error("no window"))?;
    let tauri = Reflect::get(&window, &"__TAURI__".into())
        .ok()
        .filter(|v| v.is_object())
        .ok_or_else(|| {
            bridge_error("the Tauri bridge is missing: open Switchboard as the desktop app")
        })?;
    Reflect::get(&tauri, &"core".into()).map_err(|e| bridge_error(describe(&e)))
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, IpcError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| bridge_error(format!("could not encode arguments: {e}")))
}

fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, IpcError> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| bridge_error(format!("unexpected reply from the backend: {e}")))
}

/// A rejected `invoke`: our commands reject with a tagged [`IpcError`]; Tauri
/// itself (e.g. a command the capability does not allow) with a string.
fn rejection(value: JsValue) -> IpcError {
    serde_wasm_bindgen::from_value::<IpcError>(value.clone())
        .unwrap_or_else(|_| bridge_error(describe(&value)))
}

async fn invoke<T: DeserializeOwned>(cmd: &str, args: &Object) -> Result<T, IpcError> {
    from_js(invoke_raw(cmd, args, None).await?)
}

/// `invoke` returning the reply as it came (an `ArrayBuffer` for raw
/// bytes); `options` are Tauri's (e.g. request headers).
async fn invoke_raw(
    cmd: &str,
    args: &JsValue,
    options: Option<&Object>,
) -> Result<JsValue, IpcError> {
    JsFuture::from(send_invoke(cmd, args, options)?)
        .await
        .map_err(rejection)
}

/// Send `cmd` to the app now; the promise is its reply.
fn send_invoke(cmd: &str, args: &JsValue, options: Option<&Object>) -> Result<Promise, IpcError> {
    let core = tauri_core()?;
    let invoke: Function = Reflect::get(&core, &"invoke".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| bridge_error("window.__TAURI__.core.invoke is missing"))?;
    let called = match options {
        Some(options) => invoke.call3(&core, &cmd.into(), args, options),
        None => invoke.call2(&core, &cmd.into(), args),
    };
    called
        .map_err(rejection)?
        .dyn_into()
        .map_err(|_| bridge_error("invoke did not return a promise"))
}

fn set(obj: &Object, key: &str, value: &JsValue) -> Result<(), IpcError> {
    Reflect::set(obj, &key.into(), value)
        .map(|_| ())
        .map_err(|e| bridge_error(describe(&e)))
}

/// Facts about the backend for the status bar.
pub async fn app_info() -> Result<AppInfo, IpcError> {
    invoke(commands::APP_INFO, &Object::new()).await
}

/// How long a stream's last channel message may trail the command's reply.
const LAST_MESSAGE_GRACE_MS: i32 = 2_000;

/// A promise that resolves after `ms` milliseconds.
async fn sleep_ms(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// What a stream's events go to.
type OnEvent = Rc<RefCell<dyn FnMut(PaneEvent)>>;

/// The page's one channel for every stream it asks for, and who listens
/// to which stream.
struct Streams {
    /// `attach_streams`' reply.
    attached: Promise,
    order: SequenceBuffer<Vec<StreamMessage>>,
    listeners: HashMap<u64, OnEvent>,
    _listener: Listener,
}

thread_local! {
    static STREAMS: RefCell<Option<Streams>> = const { RefCell::new(None) };
}

/// A new `window.__TAURI__.core.Channel`.
fn new_channel(core: &JsValue) -> Result<Object, IpcError> {
    let ctor: Function = Reflect::get(core, &"Channel".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| bridge_error("window.__TAURI__.core.Channel is missing"))?;
    Ok(Reflect::construct(&ctor, &Array::new())
        .map_err(|e| bridge_error(describe(&e)))?
        .unchecked_into())
}

/// Give the backend the page's stream channel, once (the first stream asks
/// for it). The stream is asked for at once, without waiting for the
/// reply: the backend waits for the channel (each call from the page to
/// the app takes a turn of the app's busy main thread, and the first
/// answers of a round would start that much later). A channel the backend
/// refused is forgotten, so the next stream attaches again.
fn attach_streams() -> Result<(), IpcError> {
    if STREAMS.with_borrow(Option::is_some) {
        return Ok(());
    }
    let core = tauri_core()?;
    let channel = new_channel(&core)?;
    let handler = Closure::<dyn FnMut(JsValue)>::new(|raw: JsValue| {
        let Ok(msg) = serde_wasm_bindgen::from_value::<Sequenced<Vec<StreamMessage>>>(raw) else {
            return;
        };
        // Take what is ready, then call the listeners with nothing
        // borrowed: a listener may start or end a stream.
        let ready: Vec<(OnEvent, PaneEvent)> = STREAMS.with_borrow_mut(|s| {
            let Some(s) = s.as_mut() else {
                return Vec::new();
            };
            let batches = s.order.push(msg);
            batches
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    // A stream nobody listens to any more: its late
                    // messages are dropped.
                    s.listeners.get(&m.stream).map(|l| (Rc::clone(l), m.event))
                })
                .collect()
        });
        for (listener, event) in ready {
            (listener.borrow_mut())(event);
        }
    });
    let listener = Listener::attach(&channel, handler)?;
    let args = Object::new();
    set(&args, "onEvents", &channel)?;
    let attached = send_invoke(commands::ATTACH_STREAMS, &args, None)?;
    STREAMS.with_borrow_mut(|s| {
        *s = Some(Streams {
            attached: attached.clone(),
            order: SequenceBuffer::new(),
            listeners: HashMap::new(),
            _listener: listener,
        });
    });
    wasm_bindgen_futures::spawn_local(async move {
        if JsFuture::from(attached.clone()).await.is_err() {
            STREAMS.with_borrow_mut(|s| {
                if s.as_ref()
                    .is_some_and(|s| Object::is(&s.attached, &attached))
                {
                    *s = None;
                }
            });
        }
    });
    Ok(())
}

/// A stream's listener, registered for as long as this value lives.
struct Listening {
    stream: u64,
    on_event: OnEvent,
}

impl Listening {
    fn new(stream: u64, on_event: OnEvent) -> Self {
        STREAMS.with_borrow_mut(|s| {
            if let Some(s) = s.as_mut() {
                s.listeners.insert(stream, Rc::clone(&on_event));
            }
        });
        Self { stream, on_event }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        STREAMS.with_borrow_mut(|s| {
            if let Some(s) = s.as_mut()
                && s.listeners
                    .get(&self.stream)
                    .is_some_and(|l| Rc::ptr_eq(l, &self.on_event))
            {
                s.listeners.remove(&self.stream);
            }
        });
    }
}

/// Run `cmd` with `request` as `request`, its events (stream
/// `stream_id`) going to `on_event` in order, over the page's stream
/// channel. Returns once the command has answered and, when it succeeded,
/// its [`PaneEvent::Finished`] has been delivered, or after a grace
/// period when that message was lost (the caller then has the reply,
/// which says the same).
async fn stream<Req, Res>(
    cmd: &str,
    request: &Req,
    stream_id: u64,
    mut on_event: impl FnMut(PaneEvent) + 'static,
) -> Result<Res, IpcError>
where
    Req: Serialize,
    Res: DeserializeOwned,
{
    let args = Object::new();
    set(&args, "request", &to_js(request)?)?;
    attach_streams()?;
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let mut done_tx = Some(done_tx);
    let listening = Listening::new(
        stream_id,
        Rc::new(RefCell::new(move |event: PaneEvent| {
            let last = matches!(event, PaneEvent::Finished(_));
            on_event(event);
            if last && let Some(tx) = done_tx.take() {
                let _ = tx.send(());
            }
        })),
    );
    let result: Result<Res, IpcError> = invoke(cmd, &args).await;
    if result.is_ok() {
        wait_for_last(done_rx).await;
    }
    drop(listening);
    result
}

/// Wait until `done` fires, but not longer than [`LAST_MESSAGE_GRACE_MS`]:
/// a command's reply can overtake its stream's last messages.
async fn wait_for_last(mut done: oneshot::Receiver<()>) {
    let mut grace = Box::pin(sleep_ms(LAST_MESSAGE_GRACE_MS));
    std::future::poll_fn(|cx| {
        use std::future::Future;
        use std::task::Poll;
        if std::pin::Pin::new(&mut done).poll(cx).is_ready() || grace.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// Run `cmd` with `args` and a fresh channel as argument `channel_arg`.
/// Channel messages are put back in order before `on_event` sees
/// them; the call returns once the command has answered and, when it
/// succeeded, its last event (`is_last`) has been delivered, or after a
/// grace period when that message was lost (the caller then has the reply,
/// which says the same).
async fn stream_with<Ev, Res>(
    cmd: &str,
    args: Object,
    channel_arg: &str,
    mut on_event: impl FnMut(Ev) + 'static,
    is_last: fn(&Ev) -> bool,
) -> Result<Res, IpcError>
where
    Ev: DeserializeOwned + 'static,
    Res: DeserializeOwned,
{
    let core = tauri_core()?;
    let channel = new_channel(&core)?;

    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done_tx = Rc::new(RefCell::new(Some(done_tx)));
    let mut order = SequenceBuffer::new();
    let handler = Closure::<dyn FnMut(JsValue)>::new(move |raw: JsValue| {
        let Ok(msg) = serde_wasm_bindgen::from_value::<Sequenced<Ev>>(raw) else {
            return;
        };
        for event in order.push(msg) {
            let last = is_last(&event);
            on_event(event);
            if last && let Some(tx) = done_tx.borrow_mut().take() {
                let _ = tx.send(());
            }
        }
    });
    let listener = Listener::attach(&channel, handler)?;

    set(&args, channel_arg, &channel)?;
    let result: Result<Res, IpcError> = invoke(cmd, &args).await;
    if result.is_ok() {
        wait_for_last(done_rx).await;
    }
    drop(listener);
    result
}

thread_local! {
    /// What a channel calls once its listener is gone: one no-op for the
    /// page's life, so a late message is dropped rather than calling a
    /// freed closure.
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}

/// A channel's `onmessage` handler and its owner: the handler lives as
/// long as this value (the stream call that made it, even when that call's
/// future is dropped mid-way), and is released only after the channel has
/// been pointed at [`IGNORE`]. Tauri keeps a channel registered after its
/// stream ends, so a message can still arrive after the call is over.
struct Listener {
    channel: Object,
    _handler: Closure<dyn FnMut(JsValue)>,
}

impl Listener {
    fn attach(channel: &Object, handler: Closure<dyn FnMut(JsValue)>) -> Result<Self, IpcError> {
        set(channel, "onmessage", handler.as_ref())?;
        Ok(Self {
            channel: channel.clone(),
            _handler: handler,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Detach first; the handler itself is freed after this returns.
        IGNORE.with(|ignore| {
            let _ = set(&self.channel, "onmessage", ignore.as_ref());
        });
    }
}

/// Providers and models for the picker.
pub async fn list_catalog() -> Result<CatalogView, IpcError> {
    invoke(commands::LIST_CATALOG, &Object::new()).await
}

/// Ask one target; `on_event` sees the pane's events in order.
pub async fn ask(
    request: &AskRequest,
    on_event: impl FnMut(PaneEvent) + 'static,
) -> Result<AnswerSummary, IpcError> {
    stream(commands::ASK, request, request.stream_id, on_event).await
}

/// Stop a running stream; false when it had already ended.
pub async fn stop_stream(stream_id: u64) -> Result<bool, IpcError> {
    let args = Object::new();
    set(&args, "streamId", &JsValue::from_f64(stream_id as f64))?;
    invoke(commands::STOP_STREAM, &args).await
}

fn provider_args(provider: &str) -> Result<Object, IpcError> {
    let args = Object::new();
    set(&args, "provider", &JsValue::from_str(provider))?;
    Ok(args)
}

/// Store a key in the OS keychain; the reply shows only its last four.
pub async fn set_key(provider: &str, key: &str) -> Result<KeyState, IpcError> {
    let args = Object::new();
    let request = SetKeyRequest {
        provider: provider.to_owned(),
        key: key.to_owned(),
    };
    set(&args, "request", &to_js(&request)?)?;
    invoke(commands::SET_KEY, &args).await
}

/// Remove a provider's key from the OS keychain.
pub async fn remove_key(provider: &str) -> Result<KeyState, IpcError> {
    invoke(commands::REMOVE_KEY, &provider_args(provider)?).await
}

/// Test a provider's key against its model list.
pub async fn test_provider(provider: &str) -> Result<ProviderCheck, IpcError> {
    invoke(commands::TEST_PROVIDER, &provider_args(provider)?).await
}

/// Local model servers answering now.
pub async fn detect_local() -> Result<Vec<LocalServer>, IpcError> {
    invoke(commands::DETECT_LOCAL, &Object::new()).await
}

/// Record a prompt and the panes it goes to (in a new conversation when
/// `request.conversation` is `None`).
pub async fn start_round(request: &StartRound) -> Result<RoundIds, IpcError> {
    let args = Object::new();
    set(&args, "request", &to_js(request)?)?;
    invoke(commands::START_ROUND, &args).await
}

/// Save the pane layout of a recorded conversation; false when a newer
/// one is already saved.
pub async fn save_panes(request: &SavePanes) -> Result<bool, IpcError> {
    let args = Object::new();
    set(&args, "request", &to_js(request)?)?;
    invoke(commands::SAVE_PANES, &args).await
}

/// A page of conversations.
pub async fn list_conversations(after: Option<String>) -> Result<HistoryPage, IpcError> {
    let args = Object::new();
    set(&args, "after", &to_js(&after)?)?;
    invoke(commands::LIST_CONVERSATIONS, &args).await
}

/// Full-text search over the history.
pub async fn search_history(query: &str) -> Result<Vec<SearchResult>, IpcError> {
    let args = Object::new();
    set(&args, "query", &JsValue::from_str(query))?;
    invoke(commands::SEARCH_HISTORY, &args).await
}

fn id_args(id: i64) -> Result<Object, IpcError> {
    let args = Object::new();
    set(&args, "id", &JsValue::from_f64(id as f64))?;
    Ok(args)
}

/// A stored conversation, to reopen.
pub async fn open_conversation(id: i64) -> Result<SavedConversation, IpcError> {
    invoke(commands::OPEN_CONVERSATION, &id_args(id)?).await
}

/// Rename a conversation.
pub async fn rename_conversation(id: i64, title: &str) -> Result<(), IpcError> {
    let args = id_args(id)?;
    set(&args, "title", &JsValue::from_str(title))?;
    invoke(commands::RENAME_CONVERSATION, &args).await
}

/// Delete a conversation.
pub async fn delete_conversation(id: i64) -> Result<(), IpcError> {
    invoke(commands::DELETE_CONVERSATION, &id_args(id)?).await
}

/// Export a conversation (`md` or `json`); returns the file written.
pub async fn export_conversation(id: i64, format: &str) -> Result<String, IpcError> {
    let args = id_args(id)?;
    set(&args, "format", &JsValue::from_str(format))?;
    invoke(commands::EXPORT_CONVERSATION, &args).await
}

/// Turn a provider on or off in config.toml.
pub async fn set_provider_enabled(provider: &str, enabled: bool) -> Result<(), IpcError> {
    let args = provider_args(provider)?;
    set(&args, "enabled", &JsValue::from_bool(enabled))?;
    invoke(commands::SET_PROVIDER_ENABLED, &args).await
}

/// Change a provider's base URL in config.toml.
pub async fn set_provider_base_url(provider: &str, base_url: &str) -> Result<(), IpcError> {
    let args = provider_args(provider)?;
    set(&args, "baseUrl", &JsValue::from_str(base_url))?;
    invoke(commands::SET_PROVIDER_BASE_URL, &args).await
}

/// Add a custom OpenAI-compatible provider to config.toml.
pub async fn add_provider(request: &NewProvider) -> Result<(), IpcError> {
    let args = Object::new();
    set(&args, "request", &to_js(request)?)?;
    invoke(commands::ADD_PROVIDER, &args).await
}

/// Create, change or rename a route in config.toml.
pub async fn save_route(request: &SaveRoute) -> Result<(), IpcError> {
    let args = Object::new();
    set(&args, "request", &to_js(request)?)?;
    invoke(commands::SAVE_ROUTE, &args).await
}

/// Remove a route from config.toml.
pub async fn delete_route(name: &str) -> Result<(), IpcError> {
    let args = Object::new();
    set(&args, "name", &JsValue::from_str(name))?;
    invoke(commands::DELETE_ROUTE, &args).await
}

/// Pin a conversation (listed first) or unpin it.
pub async fn set_pinned(id: i64, pinned: bool) -> Result<(), IpcError> {
    let args = id_args(id)?;
    set(&args, "pinned", &JsValue::from_bool(pinned))?;
    invoke(commands::SET_PINNED, &args).await
}

/// Spend totals, the chart's cells, the table and every budget.
pub async fn spend_overview(days: u32, by: &str) -> Result<SpendOverview, IpcError> {
    let args = Object::new();
    let request = SpendQuery {
        days,
        by: by.to_owned(),
    };
    set(&args, "request", &to_js(&request)?)?;
    invoke(commands::SPEND_OVERVIEW, &args).await
}

/// Today's spend and the tightest budget, for the status bar.
pub async fn spend_status() -> Result<SpendStatus, IpcError> {
    invoke(commands::SPEND_STATUS, &Object::new()).await
}

/// Add or replace a budget in config.toml.
pub async fn save_budget(request: &BudgetInput) -> Result<(), IpcError> {
    let args = Object::new();
    set(&args, "request", &to_js(request)?)?;
    invoke(commands::SAVE_BUDGET, &args).await
}

/// Remove a budget from config.toml.
pub async fn remove_budget(name: &str) -> Result<(), IpcError> {
    let args = Object::new();
    set(&args, "name", &JsValue::from_str(name))?;
    invoke(commands::REMOVE_BUDGET, &args).await
}

/// Which panes' requests budgets would refuse (or move on), before sending.
pub async fn check_budgets(requests: &[AskRequest]) -> Result<Vec<BudgetCheck>, IpcError> {
    let args = Object::new();
    set(&args, "requests", &to_js(&requests)?)?;
    invoke(commands::CHECK_BUDGETS, &args).await
}

/// Store an image or PDF's bytes once (by content) and get its reference;
/// a file that is not one, or too large, is refused with the reason.
/// `in_memory` (Incognito): kept in the backend's memory only, never
/// written to the data directory.
pub async fn store_attachment(
    bytes: &js_sys::Uint8Array,
    name: &str,
    in_memory: bool,
) -> Result<AttachmentRef, IpcError> {
    let headers = Object::new();
    let encoded: String = js_sys::encode_uri_component(name).into();
    set(&headers, "x-attachment-name", &JsValue::from_str(&encoded))?;
    if in_memory {
        set(&headers, "x-attachment-memory", &JsValue::from_str("1"))?;
    }
    let options = Object::new();
    set(&options, "headers", &headers)?;
    from_js(invoke_raw(commands::STORE_ATTACHMENT, bytes, Some(&options)).await?)
}

/// The stored bytes of an attachment (for a thumbnail).
pub async fn attachment_data(id: &str) -> Result<js_sys::Uint8Array, IpcError> {
    let args = Object::new();
    set(&args, "id", &JsValue::from_str(id))?;
    let value = invoke_raw(commands::ATTACHMENT_DATA, &args, None).await?;
    Ok(js_sys::Uint8Array::new(&value))
}

/// Forget an attachment removed before sending (kept if a message uses it).
pub async fn discard_attachment(id: &str) -> Result<bool, IpcError> {
    let args = Object::new();
    set(&args, "id", &JsValue::from_str(id))?;
    invoke(commands::DISCARD_ATTACHMENT, &args).await
}

/// Keep an unrecorded (incognito) round's files in memory while its
/// conversation is on screen; their data-directory copies go.
pub async fn hold_attachments(ids: &[String]) -> Result<(), IpcError> {
    let args = Object::new();
    set(&args, "ids", &to_js(&ids)?)?;
    invoke(commands::HOLD_ATTACHMENTS, &args).await
}

/// The conversation on screen was left: the files held in memory for it
/// go, except `keep` (the composer's).
pub async fn release_attachments(keep: &[String]) -> Result<usize, IpcError> {
    let args = Object::new();
    set(&args, "keep", &to_js(&keep)?)?;
    invoke(commands::RELEASE_ATTACHMENTS, &args).await
}

/// The native file chooser for an export: its path, or `None` when it was
/// cancelled.
pub async fn choose_import_file() -> Result<Option<String>, IpcError> {
    invoke(commands::CHOOSE_IMPORT_FILE, &Object::new()).await
}

/// Which requests' targets cannot take their attachments, before sending.
pub async fn check_attachments(requests: &[AskRequest]) -> Result<Vec<AttachmentCheck>, IpcError> {
    let args = Object::new();
    set(&args, "requests", &to_js(&requests)?)?;
    invoke(commands::CHECK_ATTACHMENTS, &args).await
}

/// Import a ChatGPT or Claude export (or a Switchboard JSON export) from
/// `path`; `on_progress` sees how far it is, in order.
pub async fn import_history(
    path: &str,
    on_progress: impl FnMut(ImportProgress) + 'static,
) -> Result<ImportSummary, IpcError> {
    let args = Object::new();
    set(&args, "path", &JsValue::from_str(path))?;
    stream_with(
        commands::IMPORT_HISTORY,
        args,
        "onProgress",
        on_progress,
        |p: &ImportProgress| p.done >= p.total,
    )
    .await
}

/// Write the ledger from `from` to `to` (`YYYY-MM-DD`, inclusive) as CSV;
/// returns the file written.
pub async fn export_spend(from: &str, to: &str) -> Result<String, IpcError> {
    let args = Object::new();
    set(&args, "from", &JsValue::from_str(from))?;
    set(&args, "to", &JsValue::from_str(to))?;
    invoke(commands::EXPORT_SPEND, &args).await
}

/// Replace a conversation's tags; returns them as stored.
pub async fn set_tags(id: i64, tags: &[String]) -> Result<Vec<String>, IpcError> {
    let args = id_args(id)?;
    set(&args, "tags", &to_js(&tags)?)?;
    invoke(commands::SET_TAGS, &args).await
}

/// Whether the Local API runs, where, its counters and its tokens.
pub async fn local_api_status() -> Result<LocalApiStatus, IpcError> {
    invoke(commands::LOCAL_API_STATUS, &Object::new()).await
}

/// Turn the Local API on or off (and save its port and start setting).
pub async fn set_local_api(request: &LocalApiInput) -> Result<LocalApiStatus, IpcError> {
    let args = Object::new();
    set(&args, "request", &to_js(request)?)?;
    invoke(commands::SET_LOCAL_API, &args).await
}

/// Make a client token; the reply is the only time it is shown.
pub async fn create_client_token(request: &NewClientToken) -> Result<CreatedClientToken, IpcError> {
    let args = Object::new();
    set(&args, "request", &to_js(request)?)?;
    invoke(commands::CREATE_CLIENT_TOKEN, &args).await
}

/// Revoke a client token.
pub async fn revoke_client_token(name: &str) -> Result<(), IpcError> {
    let args = Object::new();
    set(&args, "name", &JsValue::from_str(name))?;
    invoke(commands::REVOKE_CLIENT_TOKEN, &args).await
}

/// Record a vote on a round; returns it as stored.
pub async fn record_vote(
    vote: &switchboard_protocol::CastVote,
) -> Result<switchboard_protocol::Vote, IpcError> {
    let args = Object::new();
    set(&args, "vote", &to_js(vote)?)?;
    invoke(commands::RECORD_VOTE, &args).await
}

/// The personal leaderboard.
pub async fn leaderboard(
    query: &switchboard_protocol::LeaderboardQuery,
) -> Result<switchboard_protocol::Leaderboard, IpcError> {
    let args = Object::new();
    set(&args, "query", &to_js(query)?)?;
    invoke(commands::LEADERBOARD, &args).await
}

/// Ask a judge about a round; `on_event` sees its text as it streams (as a
/// pane's events), and its verdict is recorded with the round.
pub async fn judge_round(
    request: &switchboard_protocol::JudgeRequest,
    on_event: impl FnMut(PaneEvent) + 'static,
) -> Result<switchboard_protocol::JudgeVerdict, IpcError> {
    stream(commands::JUDGE_ROUND, request, request.stream_id, on_event).await
}
