//! The compare view's model: panes (identified by a stable key, saved with
//! their answers), rounds (a prompt and the answers of the panes it went
//! to), and the conversation around them.
//!
//! Panes, rounds and answers hold reference-counted signals
//! (`ArcRwSignal`): they live exactly as long as something holds them (the
//! conversation shown, a card on screen, a request streaming into one) and
//! are freed with the last holder. Nothing is kept alive by a global owner:
//! opening another conversation drops the previous one's rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use leptos::prelude::*;
use switchboard_protocol::{
    AnswerSummary, AttachmentRef, CatalogView, PaneFork, PaneParams, PaneSpec, RoundIds,
    ThreadSource, TokenCounts, Turn,
};

/// Most panes side by side.
pub const MAX_PANES: usize = 8;

/// A number unique in this window (stream ids, round and answer ids).
pub fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A new pane key: unique within a conversation, across sessions too.
pub fn new_pane_key() -> String {
    let now = js_sys::Date::now() as u64;
    let salt = (js_sys::Math::random() * 4_294_967_296.0) as u64;
    format!("p-{now:x}-{:x}-{salt:x}", next_id())
}

/// Milliseconds on the page's monotonic clock.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Where an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Streaming,
    Done,
    Failed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Streaming => "streaming",
            Status::Done => "done",
            Status::Failed => "failed",
        }
    }
}

/// Readouts while streaming.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub trail: Vec<(String, String)>,
    pub ttft_ms: Option<f64>,
    pub elapsed_ms: f64,
    pub tokens: TokenCounts,
    pub chars: usize,
}

/// One pane's answer to one round.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Stable for the card (a regenerated answer keeps it).
    pub id: u64,
    /// The key of the pane that asked.
    pub pane: String,
    /// The running request's id; a new one for each (re)generation.
    pub stream_id: ArcRwSignal<u64>,
    pub target: ArcRwSignal<String>,
    pub text: ArcRwSignal<String>,
    pub reasoning: ArcRwSignal<String>,
    pub status: ArcRwSignal<Status>,
    pub live: ArcRwSignal<Live>,
    pub summary: ArcRwSignal<Option<AnswerSummary>>,
    /// The stored message, for answers reopened from history.
    pub message: ArcRwSignal<Option<i64>>,
    /// Stop was asked for, perhaps before the request went out.
    pub stop_asked: Arc<AtomicBool>,
    /// When the request was sent ([`now_ms`]).
    pub sent_at: ArcRwSignal<Option<f64>>,
    /// From the send to the moment its whole text was on screen (ms).
    pub drawn_ms: ArcRwSignal<Option<f64>>,
    /// From the send to the moment its first text was on screen (ms).
    pub first_ms: ArcRwSignal<Option<f64>>,
}

impl Answer {
    pub fn new(pane: &str, target: String) -> Self {
        Self {
            id: next_id(),
            pane: pane.to_owned(),
            stream_id: ArcRwSignal::new(next_id()),
            target: ArcRwSignal::new(target),
            text: ArcRwSignal::new(String::new()),
            reasoning: ArcRwSignal::new(String::new()),
            status: ArcRwSignal::new(Status::Streaming),
            live: ArcRwSignal::new(Live::default()),
            summary: ArcRwSignal::new(None),
            message: ArcRwSignal::new(None),
            stop_asked: Arc::new(AtomicBool::new(false)),
            sent_at: ArcRwSignal::new(None),
            drawn_ms: ArcRwSignal::new(None),
            first_ms: ArcRwSignal::new(None),
        }
    }

    /// Ask again: a new stream id, nothing shown yet.
    pub fn reset(&self) {
        self.stop_asked.store(false, Ordering::Relaxed);
        self.stream_id.set(next_id());
        self.text.set(String::new());
        self.reasoning.set(String::new());
        self.live.set(Live::default());
        self.summary.set(None);
        self.message.set(None);
        self.sent_at.set(None);
        self.drawn_ms.set(None);
        self.first_ms.set(None);
        self.status.set(Status::Streaming);
    }

    pub fn is_streaming(&self) -> bool {
        self.status.try_get_untracked() == Some(Status::Streaming)
    }
}

/// One prompt and the answers of the panes it went to.
#[derive(Debug, Clone)]
pub struct Round {
    pub id: u64,
    pub prompt: String,
    /// The prompt's images and PDFs, in order (sent with every later turn
    /// of each pane's thread).
    pub attachments: Vec<AttachmentRef>,
    pub answers: Vec<Answer>,
    /// Where the round is recorded in history (none when incognito).
    pub ids: ArcRwSignal<Option<RoundIds>>,
    /// The stored answer this round continued from, if any.
    pub follows: Option<i64>,
}

impl Round {
    pub fn answer(&self, pane: &str) -> Option<&Answer> {
        self.answers.iter().find(|a| a.pane == pane)
    }
}

/// A column: a target, its settings and its own thread.
#[derive(Debug, Clone)]
pub struct Pane {
    pub key: String,
    /// This pane object, as opposed to its key: two conversations can hold
    /// panes with the same key (the panes kept by "New"), and the view of
    /// one must not stay bound to the other's signals when it is opened.
    pub instance: u64,
    pub target: ArcRwSignal<String>,
    pub system: ArcRwSignal<String>,
    pub temperature: ArcRwSignal<Option<f32>>,
    pub max_tokens: ArcRwSignal<Option<u32>>,
    pub fork: ArcRwSignal<Option<PaneFork>>,
    pub chosen_round: ArcRwSignal<Option<u32>>,
    pub show_settings: ArcRwSignal<bool>,
}

impl Pane {
    pub fn new(target: String) -> Self {
        Self::from_spec(&PaneSpec::new(new_pane_key(), target))
    }

    pub fn from_spec(spec: &PaneSpec) -> Self {
        Self {
            key: spec.key.clone(),
            instance: next_id(),
            target: ArcRwSignal::new(spec.target.clone()),
            system: ArcRwSignal::new(spec.params.system.clone().unwrap_or_default()),
            temperature: ArcRwSignal::new(spec.params.temperature),
            max_tokens: ArcRwSignal::new(spec.params.max_tokens),
            fork: ArcRwSignal::new(spec.fork.clone()),
            chosen_round: ArcRwSignal::new(spec.chosen_round),
            show_settings: ArcRwSignal::new(false),
        }
    }

    pub fn params(&self) -> PaneParams {
        let system = self.system.get_untracked();
        PaneParams {
            system: (!system.trim().is_empty()).then_some(system),
            temperature: self.temperature.get_untracked(),
            max_tokens: self.max_tokens.get_untracked(),
        }
    }

    /// The pane as saved; `tracked` subscribes the caller to every field.
    pub fn spec(&self, tracked: bool) -> PaneSpec {
        if tracked {
            self.target.track();
            self.system.track();
            self.temperature.track();
            self.max_tokens.track();
            self.fork.track();
            self.chosen_round.track();
        }
        PaneSpec {
            key: self.key.clone(),
            target: self.target.get_untracked(),
            params: self.params(),
            fork: self.fork.get_untracked(),
            chosen_round: self.chosen_round.get_untracked(),
        }
    }
}

/// How the panes are laid out: side by side (scrolling sideways past the
/// minimum width), one above the other, or in rows of up to three. The
/// view opens in config.toml's `[ui] layout`.
pub use switchboard_protocol::ViewLayout as Layout;

/// A prompt waiting for "Send anyway" because budgets would stop or move
/// some of its panes.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSend {
    pub prompt: String,
    pub only: Option<String>,
    pub lines: Vec<String>,
}

/// Everything the compare view shares with its parts (and the sidebar,
/// which opens conversations into it). A handful of signals made once with
/// the app; what they hold comes and goes with the conversation.
#[derive(Debug, Clone, Copy)]
pub struct CompareState {
    /// The open panes, left to right.
    pub panes: RwSignal<Vec<Pane>>,
    /// Closed panes: their answers stay in history and a pane added after
    /// "Continue with this" may continue one's thread.
    pub closed: RwSignal<Vec<Pane>>,
    pub rounds: RwSignal<Vec<Round>>,
    pub expanded: RwSignal<Option<String>>,
    pub sync_scroll: RwSignal<bool>,
    pub layout: RwSignal<Layout>,
    pub catalog: RwSignal<Option<CatalogView>>,
    /// The conversation being shown, once recorded.
    pub conversation: RwSignal<Option<i64>>,
    pub title: RwSignal<String>,
    /// Record nothing.
    pub incognito: RwSignal<bool>,
    /// Bumped when history changed (the sidebar reloads).
    pub history_version: RwSignal<u64>,
    /// Bumped when spend or budgets may have changed: the status bar reads
    /// them again.
    pub spend_changed: RwSignal<u64>,
    /// A message for the user (history off, export written, ...).
    pub notice: RwSignal<Option<String>>,
    /// The conversation's tags (spend is attributed to them).
    pub tags: RwSignal<Vec<String>>,
    /// The composer's text (kept while other pages are shown).
    pub draft: RwSignal<String>,
    /// The images and PDFs the next prompt carries, stored already.
    pub attached: RwSignal<Vec<AttachmentRef>>,
    /// Files being read and stored (Send waits for them).
    pub attaching: RwSignal<u32>,
    /// Panes that cannot take what is attached, in words, checked before
    /// sending.
    pub attach_refusals: RwSignal<Vec<String>>,
    /// The latest attachment check started: an older one that answers
    /// after it is ignored.
    pub attach_check_seq: StoredValue<u64>,
    /// Send to this pane only (`None`: every pane).
    pub only: RwSignal<Option<String>>,
    /// Budgets were checked and warn: the user decides.
    pub pending: RwSignal<Option<PendingSend>>,
    /// A send is being checked against budgets.
    pub checking: RwSignal<bool>,
    /// Which send the budget check running now belongs to: a check that
    /// was cancelled (Esc) and then overtaken by a new Send must not send too.
    pub check_seq: StoredValue<u64>,
    /// The revision of the last layout sent to history.
    pub layout_rev: StoredValue<u64>,
    /// The backend may hold files in memory for this window (incognito
    /// ones): only then is there anything for [`Self::release_files`] to
    /// release. True at first: a page loaded afresh does not know.
    pub files_held: StoredValue<bool>,
    /// The layout history has, to save only changes.
    pub saved_layout: StoredValue<Vec<PaneSpec>>,
    /// Bumped by each layout change; a save runs once changes settle.
    pub layout_tick: StoredValue<u64>,
    /// Blind mode: names, readouts and costs hidden, panes shuffled, until
    /// the round is voted on.
    pub blind: RwSignal<bool>,
    /// The shuffled order of the pane keys while blind.
    pub blind_order: RwSignal<Vec<String>>,
    /// Rounds voted on (round id, verdict name): in this window, or
    /// stored with a reopened conversation.
    pub voted: RwSignal<Vec<(u64, &'static str)>>,
    /// The pane picked best, per round voted "best".
    pub voted_best: RwSignal<Vec<(u64, String)>>,
    /// The round whose vote is being changed ("Change vote"): its cards
    /// offer the vote buttons again.
    pub revoting: RwSignal<Option<u64>>,
    /// What judges said (round id, verdict), reopened ones included.
    pub judged: RwSignal<Vec<(u64, switchboard_protocol::JudgeVerdict)>>,
    /// The stream id of the judge running now, so Esc, a new conversation
    /// or opening another one stops it like the answers.
    pub judging: StoredValue<Option<u64>>,
}

impl Default for CompareState {
    fn default() -> Self {
        Self::new()
    }
}

impl CompareState {
    pub fn new() -> Self {
        Self {
            panes: RwSignal::new(vec![Pane::new(String::new()), Pane::new(String::new())]),
            closed: RwSignal::new(Vec::new()),
            rounds: RwSignal::new(Vec::new()),
            expanded: RwSignal::new(None),
            sync_scroll: RwSignal::new(false),
            layout: RwSignal::new(Layout::Columns),
            catalog: RwSignal::new(None),
            conversation: RwSignal::new(None),
            title: RwSignal::new(String::new()),
            incognito: RwSignal::new(false),
            history_version: RwSignal::new(0),
            spend_changed: RwSignal::new(0),
            notice: RwSignal::new(None),
            tags: RwSignal::new(Vec::new()),
            draft: RwSignal::new(String::new()),
            attached: RwSignal::new(Vec::new()),
            attaching: RwSignal::new(0),
            attach_refusals: RwSignal::new(Vec::new()),
            attach_check_seq: StoredValue::new(0),
            only: RwSignal::new(None),
            pending: RwSignal::new(None),
            checking: RwSignal::new(false),
            check_seq: StoredValue::new(0),
            layout_rev: StoredValue::new(0),
            files_held: StoredValue::new(true),
            saved_layout: StoredValue::new(Vec::new()),
            layout_tick: StoredValue::new(0),
            blind: RwSignal::new(false),
            blind_order: RwSignal::new(Vec::new()),
            voted: RwSignal::new(Vec::new()),
            voted_best: RwSignal::new(Vec::new()),
            revoting: RwSignal::new(None),
            judged: RwSignal::new(Vec::new()),
            judging: StoredValue::new(None),
        }
    }

    /// Turn blind mode on (shuffling the panes) or off.
    pub fn set_blind(&self, on: bool) {
        if on {
            let mut keys: Vec<String> = self
                .panes
                .with_untracked(|ps| ps.iter().map(|p| p.key.clone()).collect());
            // Fisher–Yates with the page's random numbers.
            for i in (1..keys.len()).rev() {
                let j = (js_sys::Math::random() * (i + 1) as f64) as usize;
                keys.swap(i, j.min(i));
            }
            self.blind_order.set(keys);
        }
        self.blind.set(on);
    }

    /// Whether names are hidden for round `round` (`None`: the newest
    /// round, or the empty view before the first).
    pub fn hides(&self, round: Option<u64>) -> bool {
        if !self.blind.get() {
            return false;
        }
        let round = round.or_else(|| self.rounds.with(|rs| rs.last().map(|r| r.id)));
        match round {
            Some(id) => !self.voted.with(|v| v.iter().any(|(r, _)| *r == id)),
            None => true,
        }
    }

    /// The verdict given on `round` in this window.
    pub fn verdict(&self, round: u64) -> Option<&'static str> {
        self.voted
            .with(|v| v.iter().find(|(r, _)| *r == round).map(|(_, v)| *v))
    }

    /// Every pane, open then closed.
    pub fn all_panes(&self) -> Vec<Pane> {
        let mut all = self.panes.get_untracked();
        all.extend(self.closed.get_untracked());
        all
    }

    pub fn pane(&self, key: &str) -> Option<Pane> {
        self.all_panes().into_iter().find(|p| p.key == key)
    }

    /// Every answer still streaming.
    pub fn streaming(&self) -> Vec<Answer> {
        self.rounds.with_untracked(|rounds| {
            rounds
                .iter()
                .flat_map(|r| r.answers.iter())
                .filter(|a| a.is_streaming())
                .cloned()
                .collect()
        })
    }

    /// Whether any answer streams (tracked).
    pub fn any_streaming(&self) -> bool {
        self.rounds.with(|rounds| {
            rounds
                .iter()
                .flat_map(|r| r.answers.iter())
                .any(|a| a.status.get() == Status::Streaming)
        })
    }

    /// The turns pane `key` sends before round `before` (an index).
    pub fn thread(&self, key: &str, before: usize) -> Vec<Turn> {
        let panes = self.all_panes();
        self.rounds.with_untracked(|rounds| {
            switchboard_protocol::thread(
                &Threads {
                    panes: &panes,
                    rounds,
                },
                key,
                before,
            )
        })
    }

    /// The pane whose answer to round `round` shows in pane `key`: the pane
    /// itself, or the one it continues for the rounds before its fork.
    pub fn answerer(&self, key: &str, round: usize) -> String {
        let panes = self.all_panes();
        self.rounds.with_untracked(|rounds| {
            switchboard_protocol::answerer(
                &Threads {
                    panes: &panes,
                    rounds,
                },
                key,
                round,
            )
        })
    }

    /// The open panes as saved.
    pub fn layout_specs(&self, tracked: bool) -> Vec<PaneSpec> {
        let read = |ps: &Vec<Pane>| ps.iter().map(|p| p.spec(tracked)).collect();
        if tracked {
            self.panes.with(read)
        } else {
            self.panes.with_untracked(read)
        }
    }
}

/// The conversation on screen as [`ThreadSource`], so the UI sends what
/// the shared rule says.
struct Threads<'a> {
    panes: &'a [Pane],
    rounds: &'a [Round],
}

impl ThreadSource for Threads<'_> {
    fn fork(&self, pane: &str) -> Option<PaneFork> {
        self.panes
            .iter()
            .find(|p| p.key == pane)?
            .fork
            .get_untracked()
    }

    fn prompt(&self, round: usize) -> Option<String> {
        self.rounds.get(round).map(|r| r.prompt.clone())
    }

    fn attachments(&self, round: usize) -> Vec<AttachmentRef> {
        self.rounds
            .get(round)
            .map(|r| r.attachments.clone())
            .unwrap_or_default()
    }

    fn answer(&self, round: usize, pane: &str) -> Option<String> {
        let a = self.rounds.get(round)?.answer(pane)?;
        (a.status.get_untracked() == Status::Done).then(|| a.text.get_untracked())
    }
}
