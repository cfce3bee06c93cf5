//! The chat service behind the desktop app's compare view: resolve a
//! pane's target, find its key and price, run the attempt, and stream
//! [`PaneEvent`]s that the UI can draw without falling behind. Text is
//! gathered on a short tick, so a provider sending 1,000+ tokens/s costs
//! the UI ~60 messages a second, not a thousand, and the panes of one
//! window share those messages ([`StreamHub`]); nothing is dropped, the
//! text is only grouped. It lives here, not in the Tauri crate, so it is
//! tested without a window.
//!
//! Stopping a pane ([`ChatService::stop`], the window going away, the app
//! closing: [`ChatService::shutdown`]) cancels the request's token; the
//! router then ends the running attempt as `stopped` and settles it like
//! any other, on the request's own task, so one place accounts for an
//! attempt. A stop that arrives before its `ask` is remembered briefly.
//! A recorded answer's history row is begun while the request is prepared,
//! before it is sent, and checkpointed while it streams, so even a crash
//! leaves it in history.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use switchboard_protocol::{
    AnswerSummary, AskRequest, CatalogModel, CatalogView, HistoryEntry, HistoryPage, KeyState,
    LocalServer, NewProvider, PaneError, PaneEvent, ProviderCheck, ProviderSummary, RecordAt,
    RoundIds, RouteSummary, SavePanes, SaveRoute, SavedAnswer, SavedConversation, SavedRound,
    SearchResult, StartRound, StreamMessage, TokenCounts, TrailStep, TurnRole, ViewLayout,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::attempt::Accumulator;
use crate::catalog::Catalog;
use crate::catalog::list_models;
use crate::chat::{AttemptResult, ChatRequest, Message, Usage};
use crate::client::{Client, Timed};
use crate::config::{Config, ConfigError};
use crate::error::{ErrorKind, ProviderError};
use crate::hooks::{
    AttemptOutcome, BudgetGate, HealthStore, MemoryHealth, NoBudgets, SpendContext,
};
use crate::keys::{KeyCache, KeyError, KeySource, KeyStore, Secret};
use crate::paths::DataDir;
use crate::provider::{ProviderConfig, presets};
use crate::routing::{Route, RouteEvent, RouteOutcome, RouteTarget, Router, RoutingConfig};
use crate::settings;
use crate::store::{
    Answer, AnswerStart, ConversationId, GroupCommit, MessageId, PaneRef, Store, StoreError,
};

mod attachments;
mod decide;
mod hub;
mod import;
mod loaded;
mod spend;

pub use attachments::attachment_ref;
use hub::Opened;
pub use hub::StreamHub;

/// How often buffered deltas are sent to the UI while tokens stream.
pub const FLUSH_EVERY: Duration = Duration::from_millis(16);

/// Runs the panes' requests.
#[derive(Debug)]
pub struct ChatService {
    client: Client,
    /// Keys for the requests, read from the keychain once, not per request.
    keys: Arc<KeyCache>,
    data_dir: DataDir,
    config: RwLock<(Config, Vec<String>)>,
    streams: Mutex<Streams>,
    /// Parent of every stream's stop token: cancelled at shutdown.
    shutdown: CancellationToken,
    store: Result<Store, String>,
    /// Attachments in memory: unrecorded rounds' files, recent reads.
    loaded: loaded::Loaded,
    /// Answer rows waiting to be begun together.
    starts: GroupCommit<PendingStart, Option<MessageId>>,
}

impl ChatService {
    /// A service over `data_dir`, reading its config.toml. A broken config
    /// is reported in [`CatalogView::config_problems`], not fatal.
    pub fn new(data_dir: DataDir, keys: KeyStore) -> Self {
        // History is optional to chatting: a database that cannot be used
        // (written by a newer version, a full disk) is reported, not fatal.
        let store = Store::open(&data_dir).map_err(|e| e.to_string());
        let keys = Arc::new(KeyCache::new(match &store {
            Ok(s) => keys.with_index(s.key_index()),
            Err(_) => keys,
        }));
        let service = Self {
            client: Client::new(),
            keys,
            data_dir,
            config: RwLock::new((Config::default(), Vec::new())),
            streams: Mutex::new(Streams::default()),
            shutdown: CancellationToken::new(),
            store,
            loaded: loaded::Loaded::default(),
            starts: GroupCommit::new(write_starts),
        };
        service.reload_config();
        service
    }

    /// Read config.toml again.
    pub fn reload_config(&self) {
        let path = self.data_dir.config_file();
        let loaded = match Config::load(&path) {
            Ok(c) => {
                let warnings = c.warnings.clone();
                (c, warnings)
            }
            Err(e) => (
                Config {
                    path,
                    ..Config::default()
                },
                vec![e.to_string()],
            ),
        };
        if let Ok(mut cfg) = self.config.write() {
            *cfg = loaded;
        }
    }

    fn config(&self) -> Config {
        self.config.read().map(|c| c.0.clone()).unwrap_or_default()
    }

    fn catalog(&self, config: &Config) -> Catalog {
        let mut catalog = config.catalog();
        catalog.load_live_cache(&self.data_dir.path().join("cache").join("models"));
        catalog
    }

    /// What the keychain has for `provider` now (read past the cache, and
    /// kept in it: Settings show what is there, and requests use it).
    fn key_state(&self, provider: &ProviderConfig) -> KeyState {
        match self.keys.lookup(&provider.id) {
            Ok(Some((k, KeySource::Keychain))) => KeyState::Keychain { last4: k.last4() },
            Ok(Some((k, KeySource::Environment))) => KeyState::Environment { last4: k.last4() },
            Ok(None) if provider.local => KeyState::NotNeeded,
            Ok(None) => KeyState::Missing,
            Err(_) if provider.local => KeyState::NotNeeded,
            Err(e) => KeyState::Unknown {
                reason: e.to_string(),
            },
        }
    }

    /// Providers (configured ones, then every preset) and their models.
    pub fn catalog_view(&self) -> CatalogView {
        let config = self.config();
        let catalog = self.catalog(&config);
        let mut ids: Vec<String> = config.providers.keys().cloned().collect();
        ids.extend(
            presets()
                .keys()
                .filter(|k| {
                    *k != "custom"
                        && !config.providers.contains_key(*k)
                        && !config.disabled.contains_key(*k)
                })
                .cloned(),
        );
        let mut view = CatalogView {
            config_problems: self.config.read().map(|c| c.1.clone()).unwrap_or_default(),
            ..CatalogView::default()
        };
        if let Err(e) = &self.store {
            view.config_problems.push(format!("history is off: {e}"));
        }
        // A `[ui]` table that does not parse made the whole config fail to
        // load (reported above): the default layout stands then.
        if let Ok(ui) = config.ui_settings() {
            view.layout = match ui.layout {
                crate::config::PaneLayout::Columns => ViewLayout::Columns,
                crate::config::PaneLayout::Rows => ViewLayout::Rows,
                crate::config::PaneLayout::Grid => ViewLayout::Grid,
            };
        }
        match RoutingConfig::from_config(&config) {
            Ok(routing) => {
                view.routes = routing
                    .routes
                    .iter()
                    .map(|(name, r)| {
                        let mut summary = route_summary(&config, name);
                        summary.strategy = r.strategy.as_str().to_owned();
                        summary.targets = r.targets.iter().map(RouteTarget::label).collect();
                        summary
                    })
                    .collect();
            }
            Err(e) => {
                view.config_problems.push(e.to_string());
                // As written, so the routes editor can still fix them.
                view.routes = config
                    .routes
                    .keys()
                    .map(|name| route_summary(&config, name))
                    .collect();
            }
        }
        for (id, provider) in &config.disabled {
            view.disabled.push(ProviderSummary {
                id: id.clone(),
                name: provider.name.clone(),
                kind: provider.kind.as_str().to_owned(),
                base_url: provider.base_url.clone(),
                local: provider.local,
                key: KeyState::NotNeeded,
                key_url: None,
            });
        }
        for id in ids {
            let Some(provider) = config.provider(&id) else {
                continue;
            };
            for m in catalog.models(&provider) {
                view.models.push(CatalogModel {
                    provider: provider.id.clone(),
                    model: m.id.clone(),
                    name: m.name.clone(),
                    context_window: m.context_window,
                    input_usd_per_mtok: m.price.as_ref().map(|p| p.input.usd_per_mtok()),
                    output_usd_per_mtok: m.price.as_ref().map(|p| p.output.usd_per_mtok()),
                });
            }
            view.providers.push(ProviderSummary {
                id: provider.id.clone(),
                name: provider.name.clone(),
                kind: provider.kind.as_str().to_owned(),
                base_url: provider.base_url.clone(),
                local: provider.local,
                key: self.key_state(&provider),
                key_url: provider
                    .preset
                    .as_deref()
                    .and_then(|p| presets().get(p))
                    .and_then(|p| p.key_url.clone()),
            });
        }
        view
    }

    fn provider(&self, id: &str) -> Result<ProviderConfig, KeyError> {
        self.config()
            .provider(id)
            .ok_or_else(|| KeyError::InvalidId { id: id.to_owned() })
    }

    /// Store `key` for `provider` in the OS keychain; the reply names only
    /// its last four characters.
    pub fn set_key(&self, provider: &str, key: &str) -> Result<KeyState, KeyError> {
        let p = self.provider(provider)?;
        self.keys.store().set(&p.id, &Secret::new(key))?;
        Ok(self.key_state(&p))
    }

    /// Apply a settings edit to config.toml (atomically, only if the result
    /// loads), then use the new configuration.
    fn edit_config(
        &self,
        edit: impl FnOnce(&std::path::Path) -> Result<Config, ConfigError>,
    ) -> Result<(), ConfigError> {
        edit(&self.data_dir.config_file())?;
        self.reload_config();
        Ok(())
    }

    /// Turn a provider on or off in config.toml.
    pub fn set_provider_enabled(&self, provider: &str, enabled: bool) -> Result<(), ConfigError> {
        self.edit_config(|path| settings::set_provider_enabled(path, provider, enabled))
    }

    /// Change a provider's base URL in config.toml.
    pub fn set_provider_base_url(&self, provider: &str, base_url: &str) -> Result<(), ConfigError> {
        self.edit_config(|path| settings::set_provider_base_url(path, provider, base_url))
    }

    /// Add a custom OpenAI-compatible provider to config.toml.
    pub fn add_provider(&self, new: &NewProvider) -> Result<(), ConfigError> {
        self.edit_config(|path| settings::add_provider(path, new))
    }

    /// Create, change or rename a `[routes.<name>]` table.
    pub fn save_route(&self, request: &SaveRoute) -> Result<(), ConfigError> {
        self.edit_config(|path| settings::save_route(path, request))
    }

    /// Remove a `[routes.<name>]` table.
    pub fn delete_route(&self, name: &str) -> Result<(), ConfigError> {
        self.edit_config(|path| settings::delete_route(path, name))
    }

    /// Remove `provider`'s key from the OS keychain.
    pub fn remove_key(&self, provider: &str) -> Result<KeyState, KeyError> {
        let p = self.provider(provider)?;
        self.keys.store().delete(&p.id)?;
        Ok(self.key_state(&p))
    }

    /// Call the provider's cheapest authenticated endpoint (its model list)
    /// with its key and report the classified result.
    pub async fn test_provider(&self, provider: &str) -> ProviderCheck {
        let check = |ok, models, kind: Option<ErrorKind>, message: String| ProviderCheck {
            provider: provider.to_owned(),
            ok,
            models,
            kind: kind.map(|k| k.as_str().to_owned()),
            message,
        };
        let p = match self.provider(provider) {
            Ok(p) => p,
            Err(e) => return check(false, None, Some(ErrorKind::NotFound), e.to_string()),
        };
        let key = match self.keys.fresh(&p).await {
            Ok(k) => k,
            Err(e) => return check(false, None, Some(e.kind), e.message),
        };
        match list_models(&self.client, &p, key.as_ref()).await {
            Ok(models) => {
                let n = models.len() as u64;
                check(
                    true,
                    Some(n),
                    None,
                    format!("{} answered: {n} models available", p.name),
                )
            }
            Err(e) => check(false, None, Some(e.kind), e.message),
        }
    }

    /// Local model servers (Ollama, LM Studio, llama.cpp, vLLM) answering
    /// at their usual addresses right now.
    pub async fn detect_local(&self) -> Vec<LocalServer> {
        let config = self.config();
        let candidates: Vec<ProviderConfig> = presets()
            .iter()
            .filter(|(_, p)| p.local)
            .filter_map(|(id, _)| config.provider(id))
            .filter(|p| p.enabled)
            .collect();
        let probes = candidates.iter().map(|p| async move {
            let listed = tokio::time::timeout(
                Duration::from_millis(1500),
                list_models(&self.client, p, None),
            )
            .await;
            match listed {
                Ok(Ok(models)) => Some(LocalServer {
                    provider: p.id.clone(),
                    name: p.name.clone(),
                    base_url: p.base_url.clone(),
                    models: models.into_iter().map(|m| m.id).collect(),
                }),
                _ => None,
            }
        });
        futures::future::join_all(probes)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Stop the stream `stream_id`: it ends as `stopped`, keeping and
    /// billing what arrived (see [`ChatService::ask`]). True when it was
    /// running. A stop that arrives before its `ask` (Stop pressed right
    /// after Send) is remembered for [`PRE_STOP_FOR`], so that `ask` stops
    /// at once without sending anything; it returns false.
    pub fn stop(&self, stream_id: u64) -> bool {
        let mut streams = self.streams();
        if let Some(token) = streams.running.get(&stream_id) {
            token.cancel();
            return true;
        }
        streams.remember_stopped(stream_id, std::time::Instant::now());
        false
    }

    /// Stop every running stream and wait (at most `wait`) until each has
    /// settled: its cost in the ledger, its answer in history. For the
    /// app's exit; streams asked for afterwards stop at once.
    pub async fn shutdown(&self, wait: Duration) {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + wait;
        while !self.streams().running.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Run one pane's request (a `provider:model` target or an `@route`).
    /// `sink` receives the events in order and returns false when the UI
    /// stopped listening (which stops the stream). The last event is always
    /// [`PaneEvent::Finished`] with the summary that is also returned. The
    /// answer is recorded in history when the request says where: its row
    /// exists from the start and is checkpointed while it streams.
    ///
    /// `request.stream_id` is chosen by the caller, so [`ChatService::stop`]
    /// can name the stream before (or while) this is called. Stopped, the
    /// answer ends as `stopped` through the same bookkeeping as any other:
    /// its text kept, its cost (estimated for what arrived) in the ledger at
    /// the price of the target that was running, its budget hold released.
    /// Dropping the returned future stops the stream the same way.
    pub async fn ask(
        self: &Arc<Self>,
        request: AskRequest,
        sink: impl FnMut(PaneEvent) -> bool + Send,
    ) -> AnswerSummary {
        let hub = StreamHub::new(deliver(sink));
        self.ask_in(request, &hub).await
    }

    /// [`ChatService::ask`] with the events sent through `hub`, under
    /// `request.stream_id`, together with those of the hub's other
    /// streams (the desktop window's panes share one).
    pub async fn ask_in<S>(
        self: &Arc<Self>,
        request: AskRequest,
        hub: &StreamHub<S>,
    ) -> AnswerSummary
    where
        S: FnMut(Vec<StreamMessage>) -> bool + Send,
    {
        let stream = Registered::new(self, request.stream_id);
        let opened = hub.open(request.stream_id, stream.cancel.clone());
        let outcome = self.run(&request, &stream.cancel, &opened).await;
        drop(stream);
        let summary = summarize_outcome(&outcome);
        opened.finish(PaneEvent::Finished(Box::new(summary.clone())));
        summary
    }

    fn store(&self) -> Result<&Store, StoreError> {
        self.store
            .as_ref()
            .map_err(|e| StoreError::invalid(format!("history is off: {e}")))
    }

    /// Record the user's prompt, in a new conversation when none is given
    /// (titled after the prompt), with the panes it is sent to.
    pub fn start_round(&self, request: &StartRound) -> Result<RoundIds, StoreError> {
        let store = self.store()?;
        // Files added with Incognito on live in memory only; a prompt that
        // is recorded after all stores them now, as any other.
        for r in &request.attachments {
            if let Some(a) = self.loaded.held(&r.id) {
                store.put_attachment(&a)?;
            }
        }
        let recorder = store.recorder(false);
        let conversation = match request.conversation {
            Some(id) => ConversationId(id),
            None => recorder.start_conversation(&crate::store::title_of(&request.prompt), &[])?,
        };
        let user_message = recorder.add_round(
            conversation,
            &request.prompt,
            &attachments::store_refs(&request.attachments),
            request.layout.as_ref(),
        )?;
        Ok(RoundIds {
            conversation: conversation.0,
            user_message: user_message.0,
        })
    }

    /// A page of conversations, pinned first, then most recent.
    pub fn list_conversations(&self, after: Option<&str>) -> Result<HistoryPage, StoreError> {
        let page = self.store()?.conversations(after, 50, false)?;
        Ok(HistoryPage {
            items: page
                .items
                .into_iter()
                .map(|c| HistoryEntry {
                    id: c.id.0,
                    title: c.title,
                    tags: c.tags,
                    updated_at_ms: c.updated_at_ms,
                    pinned: c.pinned,
                    message_count: c.message_count,
                    cost_usd: c.cost.usd(),
                })
                .collect(),
            next: page.next,
        })
    }

    /// Full-text search over every message, best conversations first.
    pub fn search_history(&self, query: &str) -> Result<Vec<SearchResult>, StoreError> {
        let hits = self.store()?.search(query, 30, 0)?;
        Ok(hits
            .into_iter()
            .map(|h| SearchResult {
                conversation: h.conversation.0,
                title: h.title,
                message: h.message.0,
                snippet: h
                    .snippet
                    .into_iter()
                    .map(|p| (p.text, p.highlighted))
                    .collect(),
            })
            .collect())
    }

    /// Save the panes of a recorded conversation (order, targets, settings,
    /// forks, chosen answers); false when `request` is older than the saved
    /// layout and was ignored.
    pub fn save_panes(&self, request: &SavePanes) -> Result<bool, StoreError> {
        self.store()?
            .save_layout(ConversationId(request.conversation), &request.layout)
    }

    /// A conversation as it was left: its panes (by identity, in order) and
    /// its rounds, each with every pane's latest answer.
    pub fn open_conversation(&self, id: i64) -> Result<SavedConversation, StoreError> {
        let store = self.store()?;
        let conversation = store.conversation(ConversationId(id))?;
        let stored = store.panes(ConversationId(id))?;
        let key_of: HashMap<i64, &str> =
            stored.iter().map(|p| (p.id, p.pane.key.as_str())).collect();
        let mut attached = store.conversation_attachments(ConversationId(id))?;
        let mut attempts = store.conversation_attempts(ConversationId(id))?;
        // Where each round is, by its prompt's id.
        let mut round_of: HashMap<i64, usize> = HashMap::new();
        // The pane of every answer, replaced ones included (a verdict may
        // have judged an answer regenerated since).
        let mut pane_of: HashMap<i64, String> = HashMap::new();
        let mut rounds: Vec<SavedRound> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.messages(ConversationId(id), after.as_deref(), 200)?;
            for m in page.items {
                match m.role {
                    crate::chat::Role::User => {
                        round_of.insert(m.id.0, rounds.len());
                        rounds.push(SavedRound {
                            user_message: m.id.0,
                            prompt: m.content,
                            attachments: attached
                                .remove(&m.id)
                                .unwrap_or_default()
                                .iter()
                                .map(attachment_ref)
                                .collect(),
                            answers: Vec::new(),
                            follows: m.parent.map(|p| p.0),
                            vote: None,
                            judgments: Vec::new(),
                        });
                    }
                    crate::chat::Role::Assistant => {
                        let Some(round) = m
                            .parent
                            .and_then(|p| round_of.get(&p.0))
                            .and_then(|i| rounds.get_mut(*i))
                        else {
                            continue;
                        };
                        // Every answer has a pane row (derived for older
                        // conversations when the schema gained them).
                        let Some(pane) = m.pane_id.and_then(|p| key_of.get(&p)) else {
                            continue;
                        };
                        pane_of.insert(m.id.0, (*pane).to_owned());
                        let target = m.target.clone().unwrap_or_default();
                        let trail = attempts
                            .remove(&m.id)
                            .unwrap_or_default()
                            .iter()
                            .map(trail_step)
                            .collect();
                        let answer = SavedAnswer {
                            pane: (*pane).to_owned(),
                            target,
                            text: m.content.clone(),
                            reasoning: m.reasoning.clone().unwrap_or_default(),
                            summary: saved_summary(&m, trail),
                            message: m.id.0,
                        };
                        // A regenerated answer replaces the earlier one.
                        round.answers.retain(|a| a.pane != *pane);
                        round.answers.push(answer);
                    }
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        // Votes and judges' verdicts are kept by round, so a reopened
        // round shows what was decided and the total includes the judges.
        for vote in store.votes(ConversationId(id))? {
            if let Some(round) = round_of.get(&vote.round).and_then(|i| rounds.get_mut(*i)) {
                round.vote = Some(vote);
            }
        }
        // A verdict says which pane each of its labels stood for, as live.
        for j in store.judgments(ConversationId(id))? {
            if let Some(round) = round_of.get(&j.round).and_then(|i| rounds.get_mut(*i)) {
                let labels = j
                    .labels
                    .iter()
                    .filter_map(|(l, m)| Some((l.clone(), pane_of.get(m)?.clone())))
                    .collect();
                round.judgments.push(j.into_verdict(labels));
            }
        }
        Ok(SavedConversation {
            id,
            title: conversation.title,
            panes: stored.iter().map(|p| p.pane.clone()).collect(),
            rounds,
            tags: conversation.tags,
            layout_rev: store.layout_rev(ConversationId(id))?,
        })
    }

    /// Pin a conversation (listed first) or unpin it.
    pub fn set_pinned(&self, id: i64, pinned: bool) -> Result<(), StoreError> {
        self.store()?.set_pinned(ConversationId(id), pinned)
    }

    /// Rename a conversation.
    pub fn rename_conversation(&self, id: i64, title: &str) -> Result<(), StoreError> {
        self.store()?.rename(ConversationId(id), title)
    }

    /// Delete a conversation and its messages.
    pub fn delete_conversation(&self, id: i64) -> Result<(), StoreError> {
        self.store()?.delete_conversation(ConversationId(id))
    }

    /// Write a conversation as Markdown (`md`) or JSON (`json`) under
    /// `<data dir>/exports/`; returns the file's path. Exports carry no keys.
    pub fn export_conversation(&self, id: i64, format: &str) -> Result<String, StoreError> {
        let store = self.store()?;
        let (text, ext) = match format {
            "md" | "markdown" => (store.export_markdown(ConversationId(id))?, "md"),
            "json" => (store.export_json(ConversationId(id))?, "json"),
            other => {
                return Err(StoreError::invalid(format!(
                    "unknown export format {other:?} (md or json)"
                )));
            }
        };
        let dir = self.data_dir.path().join("exports");
        let write = || -> std::io::Result<std::path::PathBuf> {
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("conversation-{id}.{ext}"));
            let tmp = dir.join(format!(".conversation-{id}.{ext}.tmp"));
            std::fs::write(&tmp, text.as_bytes())?;
            std::fs::rename(&tmp, &path)?;
            Ok(path)
        };
        write()
            .map(|p| p.display().to_string())
            .map_err(|e| StoreError::invalid(format!("could not write the export: {e}")))
    }

    async fn run<S>(
        self: &Arc<Self>,
        request: &AskRequest,
        cancel: &CancellationToken,
        stream: &Opened<'_, S>,
    ) -> RouteOutcome
    where
        S: FnMut(Vec<StreamMessage>) -> bool + Send,
    {
        // The answer's history row is begun while the request is prepared
        // (the row is a synced write, and a key not yet in the cache comes
        // from the keychain: each takes milliseconds, and with several
        // panes they add up before anything is sent); both are done before
        // the request goes out.
        let (prepared, answer) = tokio::join!(self.prepare(request), self.begin_answer(request));
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                let outcome = failed_outcome(request, e);
                self.finish_answer(request, answer, &outcome).await;
                return outcome;
            }
        };
        // The request runs on its own task, so it settles and is recorded
        // even if this future is dropped; a stop reaches it through
        // `cancel`, never as an abort.
        let work = {
            let cancel = cancel.clone();
            let service = Arc::clone(self);
            let request = request.clone();
            move |tx: mpsc::UnboundedSender<Progress>| async move {
                let Prepared {
                    router,
                    route,
                    chat,
                    spend,
                } = prepared;
                let spend = SpendContext {
                    message: answer.map(|m| m.0),
                    ..spend
                };
                let outcome = router
                    .run_until(&route, &chat, &spend, &cancel, |ev| report(&tx, &ev))
                    .await;
                service.finish_answer(&request, answer, &outcome).await;
                outcome
            }
        };
        drive(stream, work).await.unwrap_or_else(|e| {
            failed_outcome(
                request,
                ProviderError::new(
                    ErrorKind::Malformed,
                    "",
                    format!("the request failed inside Switchboard: {e}"),
                ),
            )
        })
    }

    /// Resolve the pane's target, make its keys ready (from the cache; the
    /// keychain only for a key missing, old or changed) and build the
    /// router.
    async fn prepare(self: &Arc<Self>, request: &AskRequest) -> Result<Prepared, ProviderError> {
        self.prepare_with(request, |gate| gate).await
    }

    /// [`ChatService::prepare`] with the budget gate passed through `gate`
    /// (the judge defers its settles to write them with its verdict).
    async fn prepare_with(
        self: &Arc<Self>,
        request: &AskRequest,
        gate: impl FnOnce(Arc<dyn BudgetGate>) -> Arc<dyn BudgetGate>,
    ) -> Result<Prepared, ProviderError> {
        let config = self.config();
        let bad_config = |e: crate::config::ConfigError| {
            ProviderError::new(ErrorKind::BadRequest, "", format!("config.toml: {e}"))
        };
        let routing = RoutingConfig::from_config(&config).map_err(bad_config)?;
        let loaded = {
            let (service, request) = (Arc::clone(self), request.clone());
            tokio::task::spawn_blocking(move || service.load_attachments(&request))
                .await
                .map_err(|e| {
                    ProviderError::new(
                        ErrorKind::BadRequest,
                        "",
                        format!("reading attachments: {e}"),
                    )
                })??
        };
        let (route, chat) = resolve(&config, &routing, request, &loaded)?;
        let providers: Vec<ProviderConfig> =
            route.targets.iter().map(|t| t.provider.clone()).collect();
        self.keys.ensure(&providers).await;
        let (health, budget): (Arc<dyn HealthStore>, Arc<dyn BudgetGate>) = match &self.store {
            Ok(store) => (
                store.health(),
                store.budget_gate(&config).map_err(bad_config)?,
            ),
            Err(_) => (
                Arc::new(MemoryHealth::default()),
                Arc::new(NoBudgets::default()),
            ),
        };
        let router = Router::new(
            self.catalog(&config),
            health,
            gate(budget),
            Arc::clone(&self.keys) as _,
        )
        .with_policy(routing.policy.clone())
        .with_client(self.client.clone());
        Ok(Prepared {
            router,
            route,
            chat,
            spend: self.spend_context(request),
        })
    }

    /// Start the answer's row in history, when the request is recorded.
    ///
    /// The panes of a round start together, and each row is a synced
    /// commit: one after another they added up to tens of milliseconds
    /// before the last pane's request could leave. So rows are group
    /// committed: the first pane to arrive writes its row on a blocking
    /// thread, and the panes that arrive meanwhile are written together
    /// in the next transaction. Each pane still waits for its own row's
    /// commit before its request goes out.
    async fn begin_answer(&self, request: &AskRequest) -> Option<MessageId> {
        let (Ok(store), Some(at)) = (&self.store, request.record.clone()) else {
            return None;
        };
        let start = PendingStart {
            at,
            target: request.target.clone(),
        };
        let runtime = tokio::runtime::Handle::current();
        // A writer that failed leaves the pane without a row: its answer
        // is recorded when it ends.
        self.starts
            .submit(store, &runtime, start)
            .await
            .ok()
            .flatten()
    }

    /// Write the final answer and its trace to history: into the row begun
    /// for it, else as a new one. (Its cost reaches the spend ledger
    /// through the budget gate as each attempt settles.)
    async fn finish_answer(
        &self,
        request: &AskRequest,
        started: Option<MessageId>,
        outcome: &RouteOutcome,
    ) {
        let (Ok(store), Some(at)) = (&self.store, request.record.clone()) else {
            return;
        };
        let (store, target, outcome) = (store.clone(), request.target.clone(), outcome.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let trace = outcome.trace();
            let answer = Answer {
                pane: PaneRef::Key(&at.pane),
                target: &target,
                result: &outcome.result,
                trace: &trace,
            };
            let recorder = store.recorder(false);
            match started {
                Some(id) => recorder.finish_answer(id, &answer).map(|()| id),
                None => recorder.record_answer(
                    ConversationId(at.conversation),
                    MessageId(at.user_message),
                    &answer,
                ),
            }
        })
        .await;
    }

    /// Tags and conversation of the request, for budgets and the ledger.
    fn spend_context(&self, request: &AskRequest) -> SpendContext {
        let Some(at) = &request.record else {
            return SpendContext::default();
        };
        let tags = self
            .store
            .as_ref()
            .ok()
            .and_then(|s| s.conversation(ConversationId(at.conversation)).ok())
            .map(|c| c.tags)
            .unwrap_or_default();
        SpendContext {
            tags,
            conversation: Some(at.conversation.to_string()),
            ..SpendContext::default()
        }
    }
}

/// One pane's answer row to begin.
#[derive(Debug)]
struct PendingStart {
    at: RecordAt,
    target: String,
}

/// Begin a batch of answer rows in one transaction (see [`GroupCommit`]).
fn write_starts(store: &Store, batch: &[PendingStart]) -> Vec<Option<MessageId>> {
    let rows: Vec<AnswerStart<'_>> = batch
        .iter()
        .map(|p| AnswerStart {
            conversation: ConversationId(p.at.conversation),
            question: MessageId(p.at.user_message),
            pane: PaneRef::Key(&p.at.pane),
            target: &p.target,
        })
        .collect();
    // A pane whose `ask` was dropped meanwhile no longer waits; its row is
    // left live and settled by recovery like any interrupted one.
    store
        .recorder(false)
        .begin_answers(&rows)
        .into_iter()
        .map(Result::ok)
        .collect()
}

/// The streams of a service: running ones, and stops that came first.
#[derive(Debug, Default)]
struct Streams {
    running: HashMap<u64, CancellationToken>,
    /// Stream ids stopped before their `ask` registered, oldest first.
    stopped_early: VecDeque<(u64, std::time::Instant)>,
}

/// How long a stop for a stream that has not started is remembered.
pub const PRE_STOP_FOR: Duration = Duration::from_secs(60);

/// Most early stops remembered at once (the oldest is forgotten first).
const PRE_STOP_LIMIT: usize = 256;

impl Streams {
    fn forget_old(&mut self, now: std::time::Instant) {
        while self
            .stopped_early
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > PRE_STOP_FOR)
        {
            self.stopped_early.pop_front();
        }
    }

    fn remember_stopped(&mut self, id: u64, now: std::time::Instant) {
        self.forget_old(now);
        if self.stopped_early.len() >= PRE_STOP_LIMIT {
            self.stopped_early.pop_front();
        }
        self.stopped_early.push_back((id, now));
    }

    /// Was `id` stopped before it started? (Forgets it.)
    fn take_stopped(&mut self, id: u64, now: std::time::Instant) -> bool {
        self.forget_old(now);
        match self.stopped_early.iter().position(|(s, _)| *s == id) {
            Some(i) => {
                self.stopped_early.remove(i);
                true
            }
            None => false,
        }
    }
}

/// A stream registered as running, for as long as its `ask` runs. Dropped
/// early (the `ask` future dropped), it stops the stream, which still
/// settles and records on its own task.
struct Registered {
    service: Arc<ChatService>,
    id: u64,
    cancel: CancellationToken,
}

impl Registered {
    fn new(service: &Arc<ChatService>, id: u64) -> Self {
        let mut streams = service.streams();
        let cancel = service.shutdown.child_token();
        if streams.take_stopped(id, std::time::Instant::now()) {
            cancel.cancel();
        }
        streams.running.insert(id, cancel.clone());
        drop(streams);
        Self {
            service: Arc::clone(service),
            id,
            cancel,
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        // After a normal end this cancels a finished token: no effect.
        self.cancel.cancel();
        self.service.streams().running.remove(&self.id);
    }
}

/// Run `work` on its own task, so that it settles and records even if
/// this future is dropped (the window closed, the IPC call went away), and
/// pass what it reports to its stream in the hub, which sends it on the
/// [`FLUSH_EVERY`] tick (or at once, see [`StreamHub`]). A listener that
/// goes away cancels the stream's token: the work then ends as stopped,
/// through its own bookkeeping. Returns the work's output.
async fn drive<T, F, S>(
    stream: &Opened<'_, S>,
    work: impl FnOnce(mpsc::UnboundedSender<Progress>) -> F,
) -> Result<T, tokio::task::JoinError>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
    S: FnMut(Vec<StreamMessage>) -> bool + Send,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
    let task = tokio::spawn(work(tx));
    tokio::pin!(task);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(p) = rx.recv() => stream.take(p),
            _ = tick.tick() => stream.tick(),
            joined = &mut task => {
                // Everything the work sent is already in the channel.
                while let Ok(p) = rx.try_recv() {
                    stream.take(p);
                }
                return joined;
            }
        }
    }
}

/// Pass a router event on to [`drive`]'s loop.
fn report(tx: &mpsc::UnboundedSender<Progress>, ev: &RouteEvent<'_>) {
    match ev {
        RouteEvent::Sending { target, .. } => {
            let _ = tx.send(Progress::Attempt((*target).to_owned()));
        }
        RouteEvent::Stream { event, .. } => {
            let _ = tx.send(Progress::Event((*event).clone()));
        }
        RouteEvent::Waiting { .. } | RouteEvent::Finished(_) => {}
    }
}

/// A pane's request, ready to run.
struct Prepared {
    router: Router,
    route: Route,
    chat: ChatRequest,
    spend: SpendContext,
}

/// What the router reports while a pane's request runs.
pub(crate) enum Progress {
    /// An attempt at `provider:model` is being sent.
    Attempt(String),
    /// A stream event of the current attempt.
    Event(Timed),
}

/// A hub's `send` for one caller's `sink`: each message's events in
/// order; false once the sink said it no longer listens.
fn deliver(
    mut sink: impl FnMut(PaneEvent) -> bool + Send,
) -> impl FnMut(Vec<StreamMessage>) -> bool + Send {
    move |message| {
        // Every event is delivered, even after the sink said no.
        let mut listening = true;
        for m in message {
            listening &= sink(m.event);
        }
        listening
    }
}

fn counts(u: &Usage) -> TokenCounts {
    TokenCounts {
        input: u.input_tokens,
        output: u.output_tokens,
        cached_input: u.cached_input_tokens,
        reasoning: u.reasoning_tokens,
        cache_write: u.cache_write_tokens,
    }
}

/// Turn the pane's request into a route (a single target, or the named
/// `@route`) and a chat request.
fn resolve(
    config: &Config,
    routing: &RoutingConfig,
    request: &AskRequest,
    attachments: &HashMap<String, crate::attach::Attachment>,
) -> Result<(Route, ChatRequest), ProviderError> {
    let route = routing
        .target(config, &request.target)
        .map_err(|e| match &e {
            crate::routing::TargetError::UnknownRoute { .. } => {
                ProviderError::new(ErrorKind::NotFound, "", e.to_string())
            }
            crate::routing::TargetError::NotATarget { .. } => {
                ProviderError::new(ErrorKind::BadRequest, "", e.to_string())
            }
            crate::routing::TargetError::UnknownProvider { provider } => {
                ProviderError::new(ErrorKind::NotFound, provider, e.to_string())
            }
        })?;
    let mut messages: Vec<Message> = Vec::new();
    for t in request
        .turns
        .iter()
        .filter(|t| !t.content.is_empty() || !t.attachments.is_empty())
    {
        messages.push(match t.role {
            TurnRole::User => {
                let files = t
                    .attachments
                    .iter()
                    .map(|r| {
                        let mut a = attachments.get(&r.id).cloned().ok_or_else(|| {
                            ProviderError::new(
                                ErrorKind::BadRequest,
                                "",
                                format!("attachment {} was not loaded", r.id),
                            )
                        })?;
                        a.name.clone_from(&r.name);
                        Ok(a)
                    })
                    .collect::<Result<Vec<_>, ProviderError>>()?;
                Message::user_with(&t.content, files)
            }
            TurnRole::Assistant => Message::assistant(&t.content),
        });
    }
    if messages.last().map(|m| m.role) != Some(crate::chat::Role::User) {
        return Err(ProviderError::new(
            ErrorKind::BadRequest,
            "",
            "the conversation must end with a message from you",
        ));
    }
    let mut chat = ChatRequest::new("", "");
    chat.messages = messages;
    chat.system = request
        .params
        .system
        .clone()
        .filter(|s| !s.trim().is_empty());
    chat.params.temperature = request.params.temperature;
    chat.params.max_tokens = request.params.max_tokens;
    Ok((route, chat))
}

fn failed_outcome(request: &AskRequest, e: ProviderError) -> RouteOutcome {
    RouteOutcome {
        route: request.target.strip_prefix('@').map(str::to_owned),
        result: failed_target(request, e),
        attempts: Vec::new(),
        next_target: None,
    }
}

fn summarize_outcome(o: &RouteOutcome) -> AnswerSummary {
    let trail: Vec<TrailStep> = o.attempts.iter().map(|a| trail_step(&a.record)).collect();
    let mut summary = summarize(&o.result, &trail);
    summary.next_target = o.next_target.clone();
    // The answer costs what all its billed attempts did, as in the ledger.
    let cost = o.cost();
    summary.cost_usd = cost.map(|c| c.total.usd());
    summary.cost_estimated = cost.is_some_and(|c| c.estimated());
    summary
}

fn failed_target(request: &AskRequest, e: ProviderError) -> AttemptResult {
    let (provider, model) = request
        .target
        .split_once(':')
        .unwrap_or((&request.target, ""));
    let mut acc = Accumulator::new(provider, model);
    acc.fail(e);
    acc.finish(Duration::ZERO, None, 0)
}

/// A route as config.toml writes it (strategy, targets, timeouts).
fn route_summary(config: &Config, name: &str) -> RouteSummary {
    let table = config.routes.get(name);
    let get = |key: &str| table.and_then(|t| t.get(key));
    let ms = |key: &str| {
        get(key)
            .and_then(toml::Value::as_integer)
            .and_then(|v| u64::try_from(v).ok())
    };
    RouteSummary {
        name: name.to_owned(),
        strategy: get("strategy")
            .and_then(toml::Value::as_str)
            .unwrap_or("ordered")
            .to_owned(),
        targets: get("targets")
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| {
                        v.as_str()
                            .or_else(|| v.get("target").and_then(toml::Value::as_str))
                    })
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        first_token_timeout_ms: ms("first_token_timeout_ms"),
        idle_timeout_ms: ms("idle_timeout_ms"),
        total_timeout_ms: ms("total_timeout_ms"),
    }
}

fn trail_step(a: &crate::hooks::AttemptRecord) -> TrailStep {
    let (outcome, detail) = match &a.outcome {
        AttemptOutcome::Ok => ("ok", None),
        AttemptOutcome::Stopped => ("stopped", None),
        AttemptOutcome::Error { kind, .. } => ("error", Some(kind.as_str().to_owned())),
        AttemptOutcome::Skipped { kind, .. } => ("skipped", Some(kind.clone())),
    };
    TrailStep {
        provider: a.provider.clone(),
        model: a.model.clone(),
        outcome: outcome.into(),
        detail,
    }
}

fn saved_summary(m: &crate::store::StoredMessage, trail: Vec<TrailStep>) -> AnswerSummary {
    AnswerSummary {
        provider: m.provider.clone().unwrap_or_default(),
        model: m.model.clone().unwrap_or_default(),
        finish_reason: m
            .finish_reason
            .and_then(|f| serde_json::to_value(f).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
        tokens: counts(&m.usage),
        cost_usd: m.cost.map(|c| c.total.usd()),
        cost_estimated: m.cost.is_some_and(|c| c.estimated()),
        ttft_ms: m.ttft_ms,
        thinking_ms: m.thinking_ms,
        total_ms: m.total_ms.unwrap_or(0.0),
        tokens_per_s: m.tokens_per_s,
        error: m.error_kind.map(|k| PaneError {
            kind: k.as_str().to_owned(),
            message: m.error_message.clone().unwrap_or_default(),
            status: None,
            retry_after_s: None,
        }),
        trail,
        next_target: None,
    }
}

/// The UI's readout of a finished attempt.
pub fn summarize(r: &AttemptResult, trail: &[TrailStep]) -> AnswerSummary {
    let mut trail = trail.to_vec();
    if trail.is_empty() {
        trail.push(TrailStep {
            provider: r.provider.clone(),
            model: r.model.clone(),
            outcome: if r.is_ok() {
                "ok".into()
            } else if r.is_stopped() {
                "stopped".into()
            } else {
                "error".into()
            },
            detail: r.error.as_ref().map(|e| e.kind.as_str().to_owned()),
        });
    }
    AnswerSummary {
        provider: r.provider.clone(),
        model: r.model.clone(),
        finish_reason: r
            .finish_reason
            .and_then(|f| serde_json::to_value(f).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
        tokens: counts(&r.usage),
        cost_usd: r.cost.map(|c| c.total.usd()),
        cost_estimated: r.cost.is_some_and(|c| c.estimated()),
        ttft_ms: r.timing.ttft.map(|d| d.as_secs_f64() * 1000.0),
        thinking_ms: r.timing.thinking.map(|d| d.as_secs_f64() * 1000.0),
        total_ms: r.timing.total.as_secs_f64() * 1000.0,
        tokens_per_s: r.timing.tokens_per_s,
        error: r.error.as_ref().map(|e| PaneError {
            kind: e.kind.as_str().to_owned(),
            message: e.message.clone(),
            status: e.status,
            retry_after_s: e.retry_after.map(|d| d.as_secs_f64()),
        }),
        trail,
        next_target: None,
    }
}
