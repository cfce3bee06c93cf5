//! The compare view: one prompt to 1–8 panes, each with its own model,
//! answers streaming side by side with readouts under each (who served it,
//! time to first token, tokens/s, total time, tokens, cost), and a running
//! total for the conversation.
//!
//! Streamed text is appended to the DOM as it arrives (no re-render of the
//! whole answer per token); the finished answer is rendered once as
//! sanitized Markdown.

use std::sync::atomic::{AtomicU64, Ordering};

use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{
    AnswerSummary, AskRequest, CatalogView, PaneError, PaneEvent, PaneParams, RecordAt, RoundIds,
    SavedConversation, TokenCounts, Turn, TurnRole, format_usd, usd_to_nanos,
};
use wasm_bindgen::JsCast;

use crate::components::ModelPicker;
use crate::ipc;
use crate::markdown;

/// Most panes side by side.
pub const MAX_PANES: usize = 8;

thread_local! {
    /// The owner the compare state was made under (the app's). Panes and
    /// answers outlive the compare page (switching to another page and
    /// back keeps them), so their signals belong to it, not to whichever
    /// page or handler happened to create them: those are disposed when
    /// the page goes, and a later read would panic.
    static STATE_OWNER: std::cell::RefCell<Option<Owner>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` under the compare state's owner.
fn owned<T>(f: impl FnOnce() -> T) -> T {
    match STATE_OWNER.with(|o| o.borrow().clone()) {
        Some(owner) => owner.with(f),
        None => f(),
    }
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Where an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Streaming,
    Done,
    Failed,
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

/// One pane's answer in one round.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub stream_id: RwSignal<u64>,
    pub target: RwSignal<String>,
    pub text: RwSignal<String>,
    pub reasoning: RwSignal<String>,
    pub status: RwSignal<Status>,
    pub live: RwSignal<Live>,
    pub summary: RwSignal<Option<AnswerSummary>>,
    pub node: NodeRef<html::Div>,
    pub chosen: RwSignal<bool>,
    /// The stored message, for answers reopened from history.
    pub message: RwSignal<Option<i64>>,
}

impl Answer {
    fn new(target: String) -> Self {
        owned(|| Self {
            stream_id: RwSignal::new(next_id()),
            target: RwSignal::new(target),
            text: RwSignal::new(String::new()),
            reasoning: RwSignal::new(String::new()),
            status: RwSignal::new(Status::Streaming),
            live: RwSignal::new(Live::default()),
            summary: RwSignal::new(None),
            node: NodeRef::new(),
            chosen: RwSignal::new(false),
            message: RwSignal::new(None),
        })
    }

    fn reset(&self) {
        self.stream_id.set(next_id());
        self.text.set(String::new());
        self.reasoning.set(String::new());
        self.live.set(Live::default());
        self.summary.set(None);
        self.status.set(Status::Streaming);
        if let Some(el) = self.node.get_untracked() {
            el.set_text_content(None);
        }
    }
}

/// One prompt and the answers of the panes it went to.
#[derive(Debug, Clone)]
pub struct Round {
    pub id: u64,
    pub prompt: String,
    pub answers: Vec<(u64, Answer)>,
    /// Where the round is recorded in history (none when incognito).
    pub ids: RwSignal<Option<RoundIds>>,
}

/// A column: a target and its settings.
#[derive(Debug, Clone, Copy)]
pub struct Pane {
    pub id: u64,
    pub target: RwSignal<String>,
    pub system: RwSignal<String>,
    pub temperature: RwSignal<Option<f32>>,
    pub max_tokens: RwSignal<Option<u32>>,
    pub show_settings: RwSignal<bool>,
}

impl Pane {
    fn new(target: String) -> Self {
        owned(|| Self {
            id: next_id(),
            target: RwSignal::new(target),
            system: RwSignal::new(String::new()),
            temperature: RwSignal::new(None),
            max_tokens: RwSignal::new(None),
            show_settings: RwSignal::new(false),
        })
    }

    fn params(&self) -> PaneParams {
        let system = self.system.get_untracked();
        PaneParams {
            system: (!system.trim().is_empty()).then_some(system),
            temperature: self.temperature.get_untracked(),
            max_tokens: self.max_tokens.get_untracked(),
        }
    }
}

/// Everything the compare view shares with its parts (and the sidebar,
/// which opens conversations into it).
#[derive(Debug, Clone, Copy)]
pub struct CompareState {
    pub panes: RwSignal<Vec<Pane>>,
    pub rounds: RwSignal<Vec<Round>>,
    pub expanded: RwSignal<Option<u64>>,
    pub sync_scroll: RwSignal<bool>,
    pub catalog: RwSignal<Option<CatalogView>>,
    /// The conversation being shown, once recorded.
    pub conversation: RwSignal<Option<i64>>,
    pub title: RwSignal<String>,
    /// Record nothing.
    pub incognito: RwSignal<bool>,
    /// Bumped when history changed (the sidebar reloads).
    pub history_version: RwSignal<u64>,
    /// Bumped when spend or budgets may have changed (an answer ended,
    /// recorded or not; a budget was saved): the status bar reads them again.
    pub spend_changed: RwSignal<u64>,
    /// A message for the user (history off, export written, ...).
    pub notice: RwSignal<Option<String>>,
    /// The conversation's tags (spend is attributed to them).
    pub tags: RwSignal<Vec<String>>,
}

impl Default for CompareState {
    fn default() -> Self {
        Self::new()
    }
}

impl CompareState {
    pub fn new() -> Self {
        if let Some(owner) = Owner::current() {
            STATE_OWNER.with(|o| *o.borrow_mut() = Some(owner));
        }
        Self {
            panes: RwSignal::new(vec![Pane::new(String::new()), Pane::new(String::new())]),
            rounds: RwSignal::new(Vec::new()),
            expanded: RwSignal::new(None),
            sync_scroll: RwSignal::new(false),
            catalog: RwSignal::new(None),
            conversation: RwSignal::new(None),
            title: RwSignal::new(String::new()),
            incognito: RwSignal::new(false),
            history_version: RwSignal::new(0),
            spend_changed: RwSignal::new(0),
            notice: RwSignal::new(None),
            tags: RwSignal::new(Vec::new()),
        }
    }

    /// Start over with the same panes.
    pub fn new_conversation(&self) {
        self.stop_all();
        self.rounds.set(Vec::new());
        self.conversation.set(None);
        self.title.set(String::new());
        self.tags.set(Vec::new());
    }

    /// Show a stored conversation: its panes' targets and every round.
    pub fn load(&self, saved: SavedConversation) {
        self.stop_all();
        let mut targets = saved.panes.clone();
        if targets.is_empty() {
            targets.push(String::new());
        }
        let panes: Vec<Pane> = targets.into_iter().take(MAX_PANES).map(Pane::new).collect();
        let rounds = saved
            .rounds
            .into_iter()
            .map(|r| Round {
                id: next_id(),
                prompt: r.prompt,
                answers: r
                    .answers
                    .into_iter()
                    .filter_map(|a| {
                        let pane = panes.get(a.pane as usize)?;
                        let answer = Answer::new(a.target);
                        answer.text.set(a.text);
                        answer.reasoning.set(a.reasoning);
                        answer.message.set(Some(a.message));
                        let failed = a.summary.error.is_some();
                        answer.summary.set(Some(a.summary));
                        answer
                            .status
                            .set(if failed { Status::Failed } else { Status::Done });
                        Some((pane.id, answer))
                    })
                    .collect(),
                ids: owned(|| {
                    RwSignal::new(Some(RoundIds {
                        conversation: saved.id,
                        user_message: r.user_message,
                    }))
                }),
            })
            .collect();
        self.expanded.set(None);
        self.panes.set(panes);
        self.rounds.set(rounds);
        self.conversation.set(Some(saved.id));
        self.title.set(saved.title);
        self.tags.set(saved.tags);
    }

    /// Set the conversation's tags (saved at once when it is recorded,
    /// else with its first prompt).
    pub fn set_tags(&self, tags: Vec<String>) {
        self.tags.set(tags.clone());
        let Some(id) = self.conversation.get_untracked() else {
            return;
        };
        if self.incognito.get_untracked() {
            return;
        }
        let state = *self;
        spawn_local(async move {
            match ipc::set_tags(id, &tags).await {
                Ok(stored) => {
                    state.tags.set(stored);
                    state.history_version.update(|v| *v += 1);
                }
                Err(e) => state
                    .notice
                    .set(Some(format!("Tags not saved: {}", e.message))),
            }
        });
    }

    fn pane_index(&self, pane: u64) -> u32 {
        self.panes
            .get_untracked()
            .iter()
            .position(|p| p.id == pane)
            .unwrap_or(0) as u32
    }

    fn answer_of(&self, round: &Round, pane: u64) -> Option<Answer> {
        round
            .answers
            .iter()
            .find(|(p, _)| *p == pane)
            .map(|(_, a)| *a)
    }

    /// The pane's conversation before `until_round` (exclusive).
    fn history(&self, pane: u64, until_round: u64) -> Vec<Turn> {
        let mut turns = Vec::new();
        for round in self
            .rounds
            .get_untracked()
            .iter()
            .take_while(|r| r.id != until_round)
        {
            let Some(a) = self.answer_of(round, pane) else {
                continue;
            };
            if a.status.get_untracked() != Status::Done {
                continue;
            }
            turns.push(Turn {
                role: TurnRole::User,
                content: round.prompt.clone(),
            });
            turns.push(Turn {
                role: TurnRole::Assistant,
                content: a.text.get_untracked(),
            });
        }
        turns
    }

    fn streaming(&self) -> Vec<Answer> {
        self.rounds
            .get_untracked()
            .iter()
            .flat_map(|r| r.answers.iter().map(|(_, a)| *a))
            .filter(|a| a.status.get_untracked() == Status::Streaming)
            .collect()
    }

    /// Run `answer` for `pane` as the answer to `round`'s prompt, recorded
    /// under `ids` in history when given.
    fn start(
        &self,
        pane: Pane,
        round_id: u64,
        prompt: String,
        answer: Answer,
        ids: Option<RoundIds>,
    ) {
        let request = self.request(pane, round_id, prompt, answer, ids);
        let (history, done) = (self.history_version, self.spend_changed);
        spawn_local(async move {
            let result = ipc::ask(&request, move |event| on_event(answer, event)).await;
            if let Err(e) = result {
                answer
                    .summary
                    .set(Some(bridge_failure(&request.target, e.message)));
                answer.status.set(Status::Failed);
            }
            if request.record.is_some() {
                history.update(|v| *v += 1);
            }
            done.update(|v| *v += 1);
        });
    }

    /// The request for `answer` in `pane`.
    fn request(
        &self,
        pane: Pane,
        round_id: u64,
        prompt: String,
        answer: Answer,
        ids: Option<RoundIds>,
    ) -> AskRequest {
        let mut turns = self.history(pane.id, round_id);
        turns.push(Turn {
            role: TurnRole::User,
            content: prompt,
        });
        AskRequest {
            stream_id: answer.stream_id.get_untracked(),
            target: answer.target.get_untracked(),
            turns,
            params: pane.params(),
            record: ids.map(|i| RecordAt {
                conversation: i.conversation,
                user_message: i.user_message,
                pane: self.pane_index(pane.id),
            }),
        }
    }

    /// Say which panes budgets would stop (or move to a fallback) before
    /// the requests go out; the router enforces them either way.
    async fn announce_budgets(&self, requests: Vec<(usize, AskRequest)>) {
        let Ok(checks) =
            ipc::check_budgets(&requests.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()).await
        else {
            return;
        };
        let lines: Vec<String> = checks
            .iter()
            .filter(|c| !c.message.is_empty() || !c.warnings.is_empty())
            .map(|c| {
                let pane = requests
                    .iter()
                    .find(|(_, r)| r.stream_id == c.stream_id)
                    .map_or(0, |(i, _)| i + 1);
                let mut parts = Vec::new();
                if !c.message.is_empty() {
                    parts.push(c.message.clone());
                }
                parts.extend(c.warnings.iter().cloned());
                format!("Pane {pane} ({}): {}", c.target, parts.join("; "))
            })
            .collect();
        if !lines.is_empty() {
            self.notice
                .set(Some(format!("Budget: {}.", lines.join(". "))));
        }
    }

    /// Send `prompt` to every pane (or only to `only`).
    pub fn send(&self, prompt: String, only: Option<u64>) {
        let panes: Vec<Pane> = self
            .panes
            .get_untracked()
            .into_iter()
            .filter(|p| only.is_none_or(|o| o == p.id))
            .filter(|p| !p.target.get_untracked().is_empty())
            .collect();
        if panes.is_empty() {
            return;
        }
        let round = Round {
            id: next_id(),
            prompt: prompt.clone(),
            answers: panes
                .iter()
                .map(|p| (p.id, Answer::new(p.target.get_untracked())))
                .collect(),
            ids: owned(|| RwSignal::new(None)),
        };
        let starts: Vec<(Pane, Answer)> = panes
            .iter()
            .copied()
            .zip(round.answers.iter().map(|(_, a)| *a))
            .collect();
        let (round_id, round_ids) = (round.id, round.ids);
        self.rounds.update(|r| r.push(round));
        let state = *self;
        spawn_local(async move {
            // Record the prompt first, so each answer can be filed under it.
            let ids = if state.incognito.get_untracked() {
                None
            } else {
                match ipc::start_round(state.conversation.get_untracked(), &prompt).await {
                    Ok(ids) => {
                        if state.conversation.get_untracked().is_none() {
                            state
                                .title
                                .set(prompt.split_whitespace().collect::<Vec<_>>().join(" "));
                            // Tags typed before the first prompt: saved
                            // before any request, so its spend counts them.
                            let tags = state.tags.get_untracked();
                            if !tags.is_empty() {
                                let _ = ipc::set_tags(ids.conversation, &tags).await;
                            }
                        }
                        state.conversation.set(Some(ids.conversation));
                        state.history_version.update(|v| *v += 1);
                        Some(ids)
                    }
                    Err(e) => {
                        state
                            .notice
                            .set(Some(format!("Not saved to history: {}", e.message)));
                        None
                    }
                }
            };
            round_ids.set(ids);
            let all = state.panes.get_untracked();
            let requests = starts
                .iter()
                .map(|(pane, answer)| {
                    let index = all.iter().position(|p| p.id == pane.id).unwrap_or(0);
                    (
                        index,
                        state.request(*pane, round_id, prompt.clone(), *answer, ids),
                    )
                })
                .collect();
            state.announce_budgets(requests).await;
            for (pane, answer) in starts {
                state.start(pane, round_id, prompt.clone(), answer, ids);
            }
        });
    }

    /// Ask the pane's current target again for `round`.
    pub fn regenerate(&self, pane: Pane, round: &Round) {
        let Some(answer) = self.answer_of(round, pane.id) else {
            return;
        };
        if answer.status.get_untracked() == Status::Streaming {
            return;
        }
        answer.target.set(pane.target.get_untracked());
        answer.reset();
        self.start(
            pane,
            round.id,
            round.prompt.clone(),
            answer,
            round.ids.get_untracked(),
        );
    }

    /// Ask `target` instead for `round` in `pane` (a route's next target,
    /// after a failure mid-answer).
    pub fn retry_with(&self, pane: Pane, round: &Round, target: String) {
        let Some(answer) = self.answer_of(round, pane.id) else {
            return;
        };
        if answer.status.get_untracked() == Status::Streaming {
            return;
        }
        answer.target.set(target);
        answer.reset();
        self.start(
            pane,
            round.id,
            round.prompt.clone(),
            answer,
            round.ids.get_untracked(),
        );
    }

    /// Stop every running stream.
    pub fn stop_all(&self) {
        for a in self.streaming() {
            stop(a);
        }
    }

    /// Keep only `pane`, marking `answer` as the chosen one.
    pub fn continue_with(&self, pane: u64, answer: Answer) {
        answer.chosen.set(true);
        self.panes.update(|ps| ps.retain(|p| p.id == pane));
        self.expanded.set(None);
    }
}

fn stop(answer: Answer) {
    let id = answer.stream_id.get_untracked();
    spawn_local(async move {
        let _ = ipc::stop_stream(id).await;
    });
}

fn bridge_failure(target: &str, message: String) -> AnswerSummary {
    let (provider, model) = target.split_once(':').unwrap_or((target, ""));
    AnswerSummary {
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
            kind: "internal".into(),
            message,
            status: None,
            retry_after_s: None,
        }),
        trail: Vec::new(),
        next_target: None,
    }
}

fn on_event(answer: Answer, event: PaneEvent) {
    match event {
        PaneEvent::Attempt { provider, model } => {
            answer.live.update(|l| l.trail.push((provider, model)))
        }
        PaneEvent::Delta { text } => {
            if let Some(el) = answer.node.get_untracked() {
                let _ = el.append_with_str_1(&text);
            }
            let n = text.chars().count();
            answer.text.update_untracked(|t| t.push_str(&text));
            answer.live.update(|l| l.chars += n);
        }
        PaneEvent::Reasoning { text } => answer.reasoning.update(|r| r.push_str(&text)),
        PaneEvent::Progress {
            ttft_ms,
            elapsed_ms,
            tokens,
        } => answer.live.update(|l| {
            l.ttft_ms = ttft_ms;
            l.elapsed_ms = elapsed_ms;
            l.tokens = tokens;
        }),
        PaneEvent::Finished(summary) => {
            let failed = summary.error.is_some();
            answer.summary.set(Some(*summary));
            answer.text.notify();
            answer
                .status
                .set(if failed { Status::Failed } else { Status::Done });
        }
    }
}

/// Readout numbers.
fn ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

fn tokens(v: Option<u64>) -> String {
    v.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

#[component]
fn Readouts(answer: Answer) -> impl IntoView {
    move || {
        let live = answer.live.get();
        let summary = answer.summary.get();
        let (provider, model, trail) = match &summary {
            Some(s) => (
                s.provider.clone(),
                s.model.clone(),
                s.trail
                    .iter()
                    .map(|t| format!("{}/{}", t.provider, t.model))
                    .collect::<Vec<_>>(),
            ),
            None => {
                let (p, m) = live.trail.last().cloned().unwrap_or_else(|| {
                    let t = answer.target.get();
                    let (p, m) = t.split_once(':').unwrap_or((&t, ""));
                    (p.to_owned(), m.to_owned())
                });
                (
                    p,
                    m,
                    live.trail.iter().map(|(p, m)| format!("{p}/{m}")).collect(),
                )
            }
        };
        let served = format!("{provider}/{model}");
        let trail_text = (trail.len() > 1).then(|| trail.join(" → "));
        let ttft = summary.as_ref().and_then(|s| s.ttft_ms).or(live.ttft_ms);
        let thinking = summary.as_ref().and_then(|s| s.thinking_ms);
        let total = summary.as_ref().map_or(live.elapsed_ms, |s| s.total_ms);
        let tps = match &summary {
            Some(s) => s.tokens_per_s.map(|t| format!("{t:.1} tok/s")),
            None => match (live.ttft_ms, live.tokens.output) {
                (Some(first), Some(out)) if live.elapsed_ms > first => Some(format!(
                    "{:.1} tok/s",
                    out.saturating_sub(live.tokens.reasoning.unwrap_or(0)) as f64
                        / ((live.elapsed_ms - first) / 1000.0)
                )),
                (Some(first), None) if live.elapsed_ms > first && live.chars > 0 => Some(format!(
                    "≈{:.0} tok/s",
                    (live.chars as f64 / 4.0) / ((live.elapsed_ms - first) / 1000.0)
                )),
                _ => None,
            },
        };
        let counts = summary.as_ref().map_or(live.tokens, |s| s.tokens);
        let cost = summary.as_ref().and_then(|s| {
            s.cost_usd.as_deref().and_then(usd_to_nanos).map(|n| {
                if s.cost_estimated {
                    format!("est. {}", format_usd(n))
                } else {
                    format_usd(n)
                }
            })
        });
        view! {
            <div class="readouts">
                <span class="ro-served" title="Who served this answer">{served}</span>
                {trail_text.map(|t| view! { <span class="ro-trail" title="Targets tried, in order">{t}</span> })}
                {thinking.map(|t| view! { <span class="ro" data-ro="thinking" title="Streamed thinking before the answer (first reasoning token to first answer token)">{format!("thought {}", ms(t))}</span> })}
                <span class="ro" data-ro="ttft" title="Time to the first answer token (thinking included, reasoning text not counted)">{ttft.map_or_else(|| "TTFT …".to_owned(), |t| format!("TTFT {}", ms(t)))}</span>
                <span class="ro" data-ro="tps" title="Answer tokens per second (reasoning excluded)">{tps.unwrap_or_else(|| "– tok/s".to_owned())}</span>
                <span class="ro" data-ro="total" title="Total time">{ms(total)}</span>
                <span class="ro" data-ro="tokens" title="Input / output tokens">{format!("{} in / {} out", tokens(counts.input), tokens(counts.output))}</span>
                <span class="ro ro-cost" data-ro="cost" title="Cost of this answer">{cost.unwrap_or_else(|| "cost –".to_owned())}</span>
            </div>
        }
    }
}

#[component]
fn ErrorCard(
    error: PaneError,
    on_retry: Callback<()>,
    next_target: Option<String>,
    on_next: Callback<String>,
) -> impl IntoView {
    let status = error
        .status
        .map(|s| format!(" · HTTP {s}"))
        .unwrap_or_default();
    let wait = error
        .retry_after_s
        .map(|s| format!(" · retry after {s:.0} s"))
        .unwrap_or_default();
    view! {
        <div class="pane-error" role="alert">
            <div class="pane-error-head">
                <span class="error-kind">{error.kind.clone()}</span>
                <span class="dim">{format!("{status}{wait}")}</span>
            </div>
            <div class="pane-error-message">{error.message.clone()}</div>
            <div class="pane-error-actions">
                <button class="small retry" on:click=move |_| on_retry.run(())>"Retry"</button>
                {next_target.map(|t| {
                    let label = format!("Try next target: {t}");
                    view! { <button class="small next-target" on:click=move |_| on_next.run(t.clone())>{label}</button> }
                })}
            </div>
        </div>
    }
}

#[component]
fn AnswerCard(state: CompareState, pane: Pane, round: Round, answer: Answer) -> impl IntoView {
    let round_for_retry = round.clone();
    let retry = Callback::new(move |_| state.regenerate(pane, &round_for_retry));
    let round_for_next = round.clone();
    let next = Callback::new(move |t: String| state.retry_with(pane, &round_for_next, t));
    let round_for_regen = round.clone();
    let body = move || {
        match answer.status.get() {
        Status::Streaming => view! {
            <div class="answer-text streaming" node_ref=answer.node>{answer.text.get_untracked()}</div>
        }
        .into_any(),
        Status::Done | Status::Failed => {
            let html = markdown::render(&answer.text.get_untracked());
            let summary = answer.summary.get_untracked();
            let next_target = summary.as_ref().and_then(|s| s.next_target.clone());
            let error = summary.and_then(|s| s.error);
            view! {
                <div class="answer-text markdown" inner_html=html></div>
                {error.map(|e| view! { <ErrorCard error=e on_retry=retry next_target=next_target.clone() on_next=next /> })}
            }
            .into_any()
        }
    }
    };
    let can_continue = move || answer.status.get() == Status::Done && state.panes.get().len() >= 2;
    let reasoning = move || {
        let r = answer.reasoning.get();
        (!r.is_empty()).then(|| view! { <details class="reasoning"><summary>"Reasoning"</summary><div class="reasoning-text">{r}</div></details> })
    };
    view! {
        <article class="answer-card" class:chosen=move || answer.chosen.get()
            data-status=move || format!("{:?}", answer.status.get()).to_lowercase()
            data-message=move || answer.message.get().map(|m| m.to_string())
            data-user-message=move || round.ids.get().map(|i| i.user_message.to_string())>
            <div class="prompt-bubble">{round.prompt.clone()}</div>
            {reasoning}
            {body}
            <footer class="answer-footer">
                <Readouts answer=answer />
                <div class="answer-actions">
                    <Show when=move || answer.status.get() == Status::Streaming>
                        <button class="small" title="Stop this answer" on:click=move |_| stop(answer)>"Stop"</button>
                    </Show>
                    <Show when=move || answer.status.get() != Status::Streaming>
                        {
                            let round = round_for_regen.clone();
                            view! {
                                <button class="small" title="Ask this pane's model again" on:click=move |_| state.regenerate(pane, &round)>"Regenerate"</button>
                            }
                        }
                        <Show when=can_continue>
                            <button class="small" title="Keep this model and continue the conversation with it" on:click=move |_| state.continue_with(pane.id, answer)>"Continue with this"</button>
                        </Show>
                    </Show>
                </div>
            </footer>
        </article>
    }
}

/// Copy buttons inside rendered Markdown: one listener per pane.
fn on_pane_click(ev: web_sys::MouseEvent) {
    let Some(target) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    let Ok(Some(button)) = target.closest(".copy-btn") else {
        return;
    };
    let Some(code) = button
        .closest(".code-block")
        .ok()
        .flatten()
        .and_then(|b| b.query_selector("code").ok().flatten())
    else {
        return;
    };
    let text = code.text_content().unwrap_or_default();
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(&text);
        button.set_text_content(Some("Copied"));
    }
}

fn sync_scroll_from(state: CompareState, source: &web_sys::Element) {
    if !state.sync_scroll.get_untracked() {
        return;
    }
    let max = (source.scroll_height() - source.client_height()).max(1);
    let ratio = f64::from(source.scroll_top()) / f64::from(max);
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(list) = doc.query_selector_all(".pane-body") else {
        return;
    };
    for i in 0..list.length() {
        if let Some(el) = list
            .item(i)
            .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
        {
            if el == *source {
                continue;
            }
            let m = (el.scroll_height() - el.client_height()).max(0);
            let want = (ratio * f64::from(m)).round() as i32;
            if (el.scroll_top() - want).abs() > 1 {
                el.set_scroll_top(want);
            }
        }
    }
}

#[component]
fn PaneColumn(state: CompareState, pane: Pane) -> impl IntoView {
    let remove = move |_| {
        state.panes.update(|ps| {
            if ps.len() > 1 {
                ps.retain(|p| p.id != pane.id);
            }
        });
        if state.expanded.get_untracked() == Some(pane.id) {
            state.expanded.set(None);
        }
    };
    let alone = move || state.panes.get().len() < 2;
    let toggle_expand = move |_| {
        state.expanded.update(|e| {
            *e = if *e == Some(pane.id) {
                None
            } else {
                Some(pane.id)
            }
        })
    };
    let hidden = move || state.expanded.get().is_some_and(|e| e != pane.id);
    let rounds = move || {
        state
            .rounds
            .get()
            .into_iter()
            .filter_map(|r| state.answer_of(&r, pane.id).map(|a| (r, a)))
            .collect::<Vec<_>>()
    };
    view! {
        <section class="pane" class:hidden=hidden data-pane=pane.id.to_string()>
            <header class="pane-head">
                <ModelPicker target=pane.target catalog=state.catalog />
                <div class="pane-tools">
                    <button class="icon" title="Pane settings" on:click=move |_| pane.show_settings.update(|s| *s = !*s)>"⚙"</button>
                    <button class="icon" title="Expand to full width" on:click=toggle_expand>{move || if state.expanded.get() == Some(pane.id) { "⤡" } else { "⤢" }}</button>
                    <button class="icon" title="Remove pane" on:click=remove disabled=alone>"×"</button>
                </div>
            </header>
            <Show when=move || pane.show_settings.get()>
                <div class="pane-settings">
                    <label>"System prompt"
                        <textarea rows="2" prop:value=move || pane.system.get() on:input=move |ev| pane.system.set(event_target_value(&ev))></textarea>
                    </label>
                    <div class="pane-settings-row">
                        <label>"Temperature"
                            <input type="number" step="0.1" min="0" max="2" placeholder="default"
                                prop:value=move || pane.temperature.get().map(|t| t.to_string()).unwrap_or_default()
                                on:change=move |ev| pane.temperature.set(event_target_value(&ev).parse().ok()) />
                        </label>
                        <label>"Max tokens"
                            <input type="number" step="1" min="1" placeholder="default"
                                prop:value=move || pane.max_tokens.get().map(|t| t.to_string()).unwrap_or_default()
                                on:change=move |ev| pane.max_tokens.set(event_target_value(&ev).parse().ok()) />
                        </label>
                    </div>
                </div>
            </Show>
            <div class="pane-body" on:click=on_pane_click
                on:scroll=move |ev| {
                    if let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
                        sync_scroll_from(state, &el);
                    }
                }>
                <For each=rounds key=|(r, a)| (r.id, a.stream_id.get_untracked()) let:item>
                    <AnswerCard state=state pane=pane round=item.0 answer=item.1 />
                </For>
            </div>
        </section>
    }
}

#[component]
pub fn ComparePage() -> impl IntoView {
    let state = use_context::<CompareState>().unwrap_or_default();
    let draft = RwSignal::new(String::new());
    let only = RwSignal::new(None::<u64>);

    // Load the catalog, and give empty panes a usable model.
    spawn_local(async move {
        if let Ok(view) = ipc::list_catalog().await {
            let usable: Vec<String> = view
                .models
                .iter()
                .filter(|m| {
                    view.providers.iter().any(|p| {
                        p.id == m.provider
                            && !p.local
                            && matches!(
                                p.key,
                                switchboard_protocol::KeyState::Keychain { .. }
                                    | switchboard_protocol::KeyState::Environment { .. }
                            )
                    })
                })
                .map(|m| m.target())
                .collect();
            for (pane, target) in state.panes.get_untracked().iter().zip(usable) {
                if pane.target.get_untracked().is_empty() {
                    pane.target.set(target);
                }
            }
            state.catalog.set(Some(view));
        }
    });

    let send = move || {
        let text = draft.get_untracked();
        if text.trim().is_empty() || !state.streaming().is_empty() {
            return;
        }
        draft.set(String::new());
        state.send(text, only.get_untracked());
    };
    let on_key = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };
    let _esc = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            state.stop_all();
        }
    });
    let full = move || state.panes.get().len() >= MAX_PANES;
    let add_pane = move |_| {
        state.panes.update(|ps| {
            if ps.len() < MAX_PANES {
                ps.push(Pane::new(String::new()));
            }
        })
    };
    let total = move || {
        let mut nanos = 0i64;
        let mut estimated = false;
        let mut any = false;
        for r in state.rounds.get() {
            for (_, a) in &r.answers {
                if let Some(s) = a.summary.get()
                    && let Some(n) = s.cost_usd.as_deref().and_then(usd_to_nanos)
                {
                    nanos += n;
                    any = true;
                    estimated |= s.cost_estimated;
                }
            }
        }
        any.then(|| {
            if estimated {
                format!("{} (incl. est.)", format_usd(nanos))
            } else {
                format_usd(nanos)
            }
        })
    };
    let streaming_any = move || {
        state.rounds.get().iter().any(|r| {
            r.answers
                .iter()
                .any(|(_, a)| a.status.get() == Status::Streaming)
        })
    };
    let columns = move || {
        let n = if state.expanded.get().is_some() {
            1
        } else {
            state.panes.get().len().max(1)
        };
        format!("grid-template-columns: repeat({n}, minmax(0, 1fr))")
    };
    // First run: which local servers answer right now (they need no key).
    let local = RwSignal::new(None::<Vec<switchboard_protocol::LocalServer>>);
    spawn_local(async move {
        local.set(Some(ipc::detect_local().await.unwrap_or_default()));
    });
    let onboarding = move || {
        let no_targets = state.panes.get().iter().all(|p| p.target.get().is_empty());
        (no_targets && state.rounds.get().is_empty()).then(|| {
            let found = match local.get() {
                None => view! { <p class="dim">"Looking for local model servers…"</p> }.into_any(),
                Some(list) if list.is_empty() => view! {
                    <p class="dim" id="no-local">"No local server answered (Ollama on 11434, LM Studio on 1234, llama.cpp on 8080, vLLM on 8000)."</p>
                }
                .into_any(),
                Some(list) => view! {
                    <ul id="local-found">
                        {list.into_iter().map(|s| {
                            let first = s.models.first().map(|m| format!("{}:{m}", s.provider));
                            view! {
                                <li>
                                    {format!("{} at {} — {} models", s.name, s.base_url, s.models.len())}
                                    {first.map(|t| {
                                        let label = format!("Use {t}");
                                        view! { <button class="small use-local" on:click=move |_| {
                                            if let Some(p) = state.panes.get_untracked().first() { p.target.set(t.clone()) }
                                        }>{label}</button> }
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }
                .into_any(),
            };
            view! {
                <div class="onboarding" id="onboarding">
                    <h2>"Pick a model in each pane to start comparing"</h2>
                    <p>"Local servers need no key:"</p>
                    {found}
                    <p>"Hosted providers (OpenAI, Anthropic, Gemini, OpenRouter, Groq, …) need an API key: add one in Settings (it is kept in your OS keychain), or start the app with SWITCHBOARD_KEY_<PROVIDER> set."</p>
                </div>
            }
        })
    };

    view! {
        <section class="compare" id="compare">
            <div class="compare-toolbar">
                <button class="small" id="add-pane" on:click=add_pane disabled=full>"+ Pane"</button>
                <label class="toggle"><input type="checkbox" id="sync-scroll" prop:checked=move || state.sync_scroll.get() on:change=move |ev| state.sync_scroll.set(event_target_checked(&ev)) />"Sync scroll"</label>
                <label class="toggle" title="Nothing of this conversation is written to disk"><input type="checkbox" id="incognito" prop:checked=move || state.incognito.get() on:change=move |ev| state.incognito.set(event_target_checked(&ev)) />"Incognito"</label>
                <button class="small" id="new-conversation" on:click=move |_| state.new_conversation()>"New"</button>
                <span class="conversation-title" id="conversation-title">{move || state.title.get()}</span>
                <input class="tags-input" id="conversation-tags" type="text" placeholder="tags (client, project…)"
                    title="Tags of this conversation, comma-separated: spend is broken down by them"
                    prop:value=move || state.tags.get().join(", ")
                    on:change=move |ev| state.set_tags(
                        event_target_value(&ev)
                            .split(',')
                            .map(|t| t.trim().to_owned())
                            .filter(|t| !t.is_empty())
                            .collect(),
                    ) />
                <span class="spacer"></span>
                <span class="conversation-total" id="conversation-total" title="Cost of every answer in this conversation">
                    {move || total().map(|t| format!("Conversation: {t}")).unwrap_or_default()}
                </span>
                <Show when=streaming_any>
                    <button class="small danger" id="stop-all" on:click=move |_| state.stop_all() title="Stop all (Esc)">"Stop all"</button>
                </Show>
            </div>
            {move || state.notice.get().map(|n| view! {
                <div class="notice" role="status">{n}<button class="icon" on:click=move |_| state.notice.set(None)>"×"</button></div>
            })}
            {onboarding}
            <div class="panes" style=columns>
                <For each=move || state.panes.get() key=|p| p.id let:pane>
                    <PaneColumn state=state pane=pane />
                </For>
            </div>
            <div class="composer compare-composer">
                <textarea id="composer" rows="2" placeholder="Ask every pane… (Enter sends, Shift+Enter for a new line, Esc stops)"
                    prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev)) on:keydown=on_key></textarea>
                <div class="composer-side">
                    <select id="send-to" on:change=move |ev| only.set(event_target_value(&ev).parse().ok())>
                        <option value="all">"All panes"</option>
                        {move || state.panes.get().into_iter().enumerate().map(|(i, p)| {
                            let id = p.id;
                            view! { <option value=id.to_string()>{move || format!("Pane {}: {}", i + 1, p.target.get())}</option> }
                        }).collect_view()}
                    </select>
                    <button id="send" class="primary" on:click=move |_| send() disabled=streaming_any>"Send"</button>
                </div>
            </div>
        </section>
    }
}
