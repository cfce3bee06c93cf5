//! What the compare view does: send a prompt (after a budget check the
//! user can overrule), stream each pane's answer into its card, stop,
//! regenerate, "Continue with this", add and remove panes, open a saved
//! conversation, and save the pane layout to history when it changes.
//!
//! Every request carries the thread the shared rule
//! ([`switchboard_protocol::thread`]) gives its pane, so what a model is
//! sent never depends on where its pane sits.

use std::sync::atomic::Ordering;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{
    AnswerSummary, AskRequest, AttachmentRef, PaneEvent, PaneFork, PaneLayout, PaneSpec, RecordAt,
    RoundIds, SavePanes, SavedConversation, StartRound, Turn, TurnRole, fork_for_new_pane,
};

use super::live;
use super::state::{
    Answer, CompareState, MAX_PANES, Pane, PendingSend, Round, Status, new_pane_key, next_id,
    now_ms,
};
use crate::ipc;

/// How long layout changes must settle before they are saved.
const LAYOUT_SAVE_DELAY: Duration = Duration::from_millis(250);

impl CompareState {
    /// Start over with the same panes (and models).
    pub fn new_conversation(&self) {
        self.stop_all();
        for p in self.panes.get_untracked() {
            p.fork.set(None);
            p.chosen_round.set(None);
        }
        self.closed.set(Vec::new());
        self.rounds.set(Vec::new());
        self.judged.set(Vec::new());
        self.revoting.set(None);
        self.conversation.set(None);
        self.title.set(String::new());
        self.tags.set(Vec::new());
        self.pending.set(None);
        self.layout_rev.set_value(0);
        self.saved_layout.set_value(Vec::new());
        self.release_files();
    }

    /// Show a stored conversation exactly as it was left: its open panes in
    /// order (with their settings), the closed ones kept for their threads,
    /// and every round.
    pub fn load(&self, saved: SavedConversation) {
        self.stop_all();
        let mut open: Vec<Pane> = saved
            .open_panes()
            .take(MAX_PANES)
            .map(|p| Pane::from_spec(&p.spec()))
            .collect();
        if open.is_empty() {
            open.push(Pane::new(String::new()));
        }
        let closed: Vec<Pane> = saved
            .panes
            .iter()
            .filter(|p| !p.open)
            .map(|p| Pane::from_spec(&p.spec()))
            .collect();
        // What was decided on each round, keyed by the rounds' new ids.
        let mut voted = Vec::new();
        let mut voted_best = Vec::new();
        let mut judged = Vec::new();
        let rounds: Vec<Round> = saved
            .rounds
            .into_iter()
            .map(|r| {
                let id = next_id();
                if let Some(vote) = &r.vote {
                    voted.push((id, vote.verdict.as_str()));
                    if let Some(pane) = vote
                        .winner
                        .and_then(|w| r.answers.iter().find(|a| a.message == w))
                    {
                        voted_best.push((id, pane.pane.clone()));
                    }
                }
                judged.extend(r.judgments.iter().cloned().map(|j| (id, j)));
                Round {
                    id,
                    prompt: r.prompt,
                    attachments: r.attachments,
                    answers: r
                        .answers
                        .into_iter()
                        .map(|a| {
                            let answer = Answer::new(&a.pane, a.target);
                            answer.text.set(a.text);
                            answer.reasoning.set(a.reasoning);
                            answer.message.set(Some(a.message));
                            let failed = a.summary.error.is_some();
                            answer.summary.set(Some(a.summary));
                            answer
                                .status
                                .set(if failed { Status::Failed } else { Status::Done });
                            answer
                        })
                        .collect(),
                    ids: ArcRwSignal::new(Some(RoundIds {
                        conversation: saved.id,
                        user_message: r.user_message,
                    })),
                    follows: r.follows,
                }
            })
            .collect();
        self.saved_layout
            .set_value(open.iter().map(|p| p.spec(false)).collect());
        self.layout_rev.set_value(saved.layout_rev);
        self.expanded.set(None);
        self.only.set(None);
        self.pending.set(None);
        self.checking.set(false);
        self.panes.set(open);
        self.closed.set(closed);
        self.voted.set(voted);
        self.voted_best.set(voted_best);
        self.revoting.set(None);
        self.rounds.set(rounds);
        self.judged.set(judged);
        self.conversation.set(Some(saved.id));
        self.title.set(saved.title);
        self.tags.set(saved.tags);
        self.release_files();
    }

    /// The conversation on screen changed (a new one, another opened): the
    /// files the backend holds in memory for unrecorded (incognito) rounds
    /// no longer on screen go; the composer's, which the next prompt still
    /// carries, and those of the rounds on screen stay.
    pub fn release_files(&self) {
        let mut keep: Vec<String> = self
            .attached
            .with_untracked(|a| a.iter().map(|r| r.id.clone()).collect());
        self.rounds.with_untracked(|rs| {
            keep.extend(
                rs.iter()
                    .flat_map(|r| r.attachments.iter().map(|a| a.id.clone())),
            );
        });
        // Nothing held in memory (no incognito file since the last
        // release): no call. What `keep` names may stay held.
        if !self.files_held.get_value() {
            return;
        }
        self.files_held.set_value(!keep.is_empty());
        spawn_local(async move {
            let _ = ipc::release_attachments(&keep).await;
        });
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

    /// Add a pane; after "Continue with this" (or next to a single pane) it
    /// continues that pane's thread.
    pub fn add_pane(&self) {
        if self.panes.with_untracked(Vec::len) >= MAX_PANES {
            return;
        }
        let open: Vec<(String, Option<u32>)> = self.panes.with_untracked(|ps| {
            ps.iter()
                .map(|p| (p.key.clone(), p.chosen_round.get_untracked()))
                .collect()
        });
        let refs: Vec<(&str, Option<u32>)> = open.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        let rounds = self.rounds.with_untracked(Vec::len) as u32;
        let pane = Pane::new(String::new());
        pane.fork.set(fork_for_new_pane(&refs, rounds));
        self.panes.update(|ps| ps.push(pane));
    }

    /// Close a pane; its answers stay in history.
    pub fn remove_pane(&self, key: &str) {
        if self.panes.with_untracked(Vec::len) < 2 {
            return;
        }
        let Some(pane) = self
            .panes
            .with_untracked(|ps| ps.iter().find(|p| p.key == key).cloned())
        else {
            return;
        };
        for a in self.streaming().iter().filter(|a| a.pane == key) {
            stop(a);
        }
        self.panes.update(|ps| ps.retain(|p| p.key != key));
        if !self.rounds.with_untracked(Vec::is_empty) {
            self.closed.update(|c| c.push(pane));
        }
        if self.expanded.get_untracked().as_deref() == Some(key) {
            self.expanded.set(None);
        }
        if self.only.get_untracked().as_deref() == Some(key) {
            self.only.set(None);
        }
    }

    /// Keep the model of pane `key` and go on from its answer to round
    /// `round` (an index). From its latest answer, the pane itself goes on;
    /// from an earlier one, a new pane continues the thread up to it (a
    /// branch) and the rounds after it stay in history.
    pub fn continue_with(&self, key: &str, round: usize) {
        let Some(pane) = self
            .panes
            .with_untracked(|ps| ps.iter().find(|p| p.key == key).cloned())
        else {
            return;
        };
        let answered_later = self
            .rounds
            .with_untracked(|rs| rs.iter().skip(round + 1).any(|r| r.answer(key).is_some()));
        pane.chosen_round.set(Some(round as u32));
        let keep = if answered_later {
            let branch = Pane::from_spec(&PaneSpec {
                key: new_pane_key(),
                target: pane.target.get_untracked(),
                params: pane.params(),
                fork: Some(PaneFork {
                    pane: key.to_owned(),
                    rounds: round as u32 + 1,
                }),
                chosen_round: None,
            });
            vec![branch]
        } else {
            vec![pane]
        };
        let kept: Vec<String> = keep.iter().map(|p| p.key.clone()).collect();
        let mut closing = Vec::new();
        self.panes.update(|ps| {
            closing = ps.drain(..).filter(|p| !kept.contains(&p.key)).collect();
            *ps = keep;
        });
        self.closed.update(|c| c.extend(closing));
        self.expanded.set(None);
        self.only.set(None);
    }

    /// The open panes a prompt would go to: all with a model, or `only`.
    fn targets(&self, only: Option<&str>) -> Result<Vec<Pane>, String> {
        let panes = self.panes.get_untracked();
        if let Some(key) = only {
            let Some((i, p)) = panes.iter().enumerate().find(|(_, p)| p.key == key) else {
                return Err("The pane chosen next to Send is gone: pick another.".into());
            };
            if p.target.get_untracked().is_empty() {
                return Err(format!(
                    "Pane {} has no model yet: pick one, or send to all panes.",
                    i + 1
                ));
            }
            return Ok(vec![p.clone()]);
        }
        let ready: Vec<Pane> = panes
            .into_iter()
            .filter(|p| !p.target.get_untracked().is_empty())
            .collect();
        if ready.is_empty() {
            return Err("Pick a model in a pane first: your prompt is kept.".into());
        }
        Ok(ready)
    }

    /// Send the composer's prompt: check budgets first, and ask the user
    /// when they would stop or move a pane. The prompt stays in the
    /// composer until it is really sent.
    pub fn request_send(&self) {
        let prompt = self.draft.get_untracked();
        if prompt.trim().is_empty()
            || self.attaching.get_untracked() > 0
            || self.checking.get_untracked()
            || self.pending.with_untracked(Option::is_some)
            || !self.streaming().is_empty()
        {
            return;
        }
        let only = self.only.get_untracked();
        let panes = match self.targets(only.as_deref()) {
            Ok(p) => p,
            Err(why) => {
                self.notice.set(Some(why));
                return;
            }
        };
        self.checking.set(true);
        let seq = self.check_seq.get_value() + 1;
        self.check_seq.set_value(seq);
        let state = *self;
        spawn_local(async move {
            let lines = state.budget_lines(&prompt, &panes).await;
            if !state.checking.get_untracked() || state.check_seq.get_value() != seq {
                return; // cancelled (Esc) while checking, maybe sent again since
            }
            state.checking.set(false);
            if lines.is_empty() {
                state.commit(prompt, only);
            } else {
                state.pending.set(Some(PendingSend {
                    prompt,
                    only,
                    lines,
                }));
            }
        });
    }

    /// "Send anyway" after a budget warning.
    pub fn send_anyway(&self) {
        if let Some(p) = self.pending.get_untracked() {
            self.pending.set(None);
            self.commit(p.prompt, p.only);
        }
    }

    /// Which panes budgets would refuse or move to a fallback, in words.
    async fn budget_lines(&self, prompt: &str, panes: &[Pane]) -> Vec<String> {
        let index = self.rounds.with_untracked(Vec::len);
        let conversation = self.conversation.get_untracked();
        let attached = self.attached.get_untracked();
        let requests: Vec<AskRequest> = panes
            .iter()
            .enumerate()
            .map(|(i, p)| AskRequest {
                stream_id: i as u64,
                target: p.target.get_untracked(),
                turns: self.turns(&p.key, index, prompt, &attached),
                params: p.params(),
                record: conversation.map(|c| RecordAt {
                    conversation: c,
                    user_message: 0,
                    pane: p.key.clone(),
                }),
            })
            .collect();
        let Ok(checks) = ipc::check_budgets(&requests).await else {
            return Vec::new();
        };
        let all = self.panes.get_untracked();
        checks
            .iter()
            .filter(|c| !c.message.is_empty() || !c.warnings.is_empty())
            .map(|c| {
                let pane = usize::try_from(c.stream_id)
                    .ok()
                    .and_then(|i| panes.get(i))
                    .and_then(|p| all.iter().position(|q| q.key == p.key))
                    .map_or(0, |i| i + 1);
                let mut parts = Vec::new();
                if !c.message.is_empty() {
                    parts.push(c.message.clone());
                }
                parts.extend(c.warnings.iter().cloned());
                format!("Pane {pane} ({}): {}", c.target, parts.join("; "))
            })
            .collect()
    }

    fn turns(
        &self,
        key: &str,
        before: usize,
        prompt: &str,
        attachments: &[AttachmentRef],
    ) -> Vec<Turn> {
        let mut turns = self.thread(key, before);
        turns.push(Turn {
            role: TurnRole::User,
            content: prompt.to_owned(),
            attachments: attachments.to_vec(),
        });
        turns
    }

    /// Send `prompt` now: the round appears (each pane can be stopped from
    /// this instant), is recorded with the pane layout, then each pane asks.
    fn commit(&self, prompt: String, only: Option<String>) {
        let panes = match self.targets(only.as_deref()) {
            Ok(p) => p,
            Err(why) => {
                self.notice.set(Some(why));
                return;
            }
        };
        self.draft.set(String::new());
        let attachments = self.attached.get_untracked();
        self.attached.set(Vec::new());
        let round = Round {
            id: next_id(),
            prompt: prompt.clone(),
            attachments: attachments.clone(),
            answers: panes
                .iter()
                .map(|p| Answer::new(&p.key, p.target.get_untracked()))
                .collect(),
            ids: ArcRwSignal::new(None),
            follows: None,
        };
        let starts: Vec<(Pane, Answer)> = panes.into_iter().zip(round.answers.clone()).collect();
        let (round_id, round_ids) = (round.id, round.ids.clone());
        self.rounds.update(|r| r.push(round));
        let state = *self;
        let layout = self.take_layout();
        let files: Vec<String> = attachments.iter().map(|a| a.id.clone()).collect();
        spawn_local(async move {
            // Record the prompt and the panes first, so each answer is filed
            // under its pane.
            let ids = if state.incognito.get_untracked() {
                None
            } else {
                let request = StartRound {
                    conversation: state.conversation.get_untracked(),
                    prompt: prompt.clone(),
                    attachments,
                    layout: Some(layout),
                };
                match ipc::start_round(&request).await {
                    // The user started a new conversation or opened another
                    // one while this round was being recorded (its answers
                    // were stopped then): the view's conversation is no
                    // longer this round's, so nothing here may change it.
                    Ok(ids) if !state.holds_round(round_id) => Some(ids),
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
            if ids.is_none() && !files.is_empty() {
                // History does not keep this round: its files are kept in
                // memory while the conversation is on screen (regenerate
                // and the next prompts send them again) and leave the data
                // directory now. Done before any pane reads them.
                let held = ipc::hold_attachments(&files).await;
                // Set after the call: a release while it ran (the user
                // left) did not know of these files, the one below must.
                state.files_held.set_value(true);
                if let Err(e) = held {
                    state.notice.set(Some(format!(
                        "The attachments could not be kept for this conversation: {}",
                        e.message
                    )));
                }
                if !state.holds_round(round_id) {
                    // Left meanwhile: nothing on screen sends them again.
                    state.release_files();
                }
            }
            round_ids.set(ids);
            for (pane, answer) in starts {
                state.start(&pane, round_id, &prompt, &answer, ids);
            }
        });
    }

    /// The layout to save with the next round, taking a revision for it.
    fn take_layout(&self) -> PaneLayout {
        let panes = self.layout_specs(false);
        let rev = self.layout_rev.get_value() + 1;
        self.layout_rev.set_value(rev);
        self.saved_layout.set_value(panes.clone());
        // A save waiting for changes to settle has nothing left to do.
        self.layout_tick.update_value(|t| *t += 1);
        PaneLayout { rev, panes }
    }

    /// Save the pane layout once changes settle (recorded conversations).
    pub fn save_layout_soon(&self) {
        self.layout_tick.update_value(|t| *t += 1);
        let tick = self.layout_tick.get_value();
        let state = *self;
        set_timeout(
            move || {
                if state.layout_tick.get_value() == tick {
                    state.save_layout_now();
                }
            },
            LAYOUT_SAVE_DELAY,
        );
    }

    fn save_layout_now(&self) {
        let (Some(conversation), false) = (
            self.conversation.get_untracked(),
            self.incognito.get_untracked(),
        ) else {
            return;
        };
        if self.layout_specs(false) == self.saved_layout.get_value() {
            return;
        }
        let layout = self.take_layout();
        let state = *self;
        spawn_local(async move {
            let request = SavePanes {
                conversation,
                layout,
            };
            if let Err(e) = ipc::save_panes(&request).await {
                state.notice.set(Some(format!(
                    "The panes of this conversation were not saved: {}",
                    e.message
                )));
            }
        });
    }

    /// Run `answer` for `pane` as the answer to round `round_id`, recorded
    /// under `ids` when given.
    fn start(
        &self,
        pane: &Pane,
        round_id: u64,
        prompt: &str,
        answer: &Answer,
        ids: Option<RoundIds>,
    ) {
        if answer.stop_asked.load(Ordering::Relaxed) {
            // Stopped between Send and now: nothing goes out.
            finish(answer, unsent(&answer.target.get_untracked()));
            return;
        }
        let (index, attachments) = self
            .rounds
            .with_untracked(|rs| {
                rs.iter()
                    .position(|r| r.id == round_id)
                    .map(|i| (i, rs[i].attachments.clone()))
            })
            .unwrap_or_default();
        let request = AskRequest {
            stream_id: answer.stream_id.get_untracked(),
            target: answer.target.get_untracked(),
            turns: self.turns(&pane.key, index, prompt, &attachments),
            params: pane.params(),
            record: ids.map(|i| RecordAt {
                conversation: i.conversation,
                user_message: i.user_message,
                pane: pane.key.clone(),
            }),
        };
        answer.sent_at.set(Some(now_ms()));
        let (history, spend) = (self.history_version, self.spend_changed);
        let answer = answer.clone();
        spawn_local(async move {
            let stream = request.stream_id;
            let sink = answer.clone();
            let result = ipc::ask(&request, move |event| on_event(&sink, stream, event)).await;
            // After the frame that draws what came before it (see
            // `on_event`'s end of an answer).
            live::after_frame().await;
            // The reply ends the answer even if its last channel message
            // was lost, so no pane stays "streaming".
            let current = answer.stream_id.try_get_untracked() == Some(stream);
            if current && answer.is_streaming() {
                let summary = match result {
                    Ok(summary) => summary,
                    Err(e) => bridge_failure(&request.target, e.message),
                };
                finish(&answer, summary);
            }
            if request.record.is_some() {
                history.update(|v| *v += 1);
            }
            spend.update(|v| *v += 1);
        });
    }

    /// Whether round `round_id` is still one of the rounds on screen (not
    /// cleared by a new conversation or replaced by an opened one).
    pub(super) fn holds_round(&self, round_id: u64) -> bool {
        self.rounds
            .with_untracked(|rs| rs.iter().any(|r| r.id == round_id))
    }

    /// Ask the pane's current model again for round `round_id`.
    pub fn regenerate(&self, key: &str, round_id: u64) {
        let Some(pane) = self.pane(key) else {
            return;
        };
        self.restart(&pane, round_id, pane.target.get_untracked());
    }

    /// Ask `target` instead (a route's next target after a failure
    /// mid-answer).
    pub fn retry_with(&self, key: &str, round_id: u64, target: String) {
        if let Some(pane) = self.pane(key) {
            self.restart(&pane, round_id, target);
        }
    }

    fn restart(&self, pane: &Pane, round_id: u64, target: String) {
        let Some(round) = self
            .rounds
            .with_untracked(|rs| rs.iter().find(|r| r.id == round_id).cloned())
        else {
            return;
        };
        let Some(answer) = round.answer(&pane.key).cloned() else {
            return;
        };
        if answer.is_streaming() {
            return;
        }
        answer.target.set(target);
        answer.reset();
        self.start(
            pane,
            round.id,
            &round.prompt,
            &answer,
            round.ids.get_untracked(),
        );
    }

    /// Stop every running stream, and a send still being checked.
    pub fn stop_all(&self) {
        self.checking.set(false);
        for a in self.streaming() {
            stop(&a);
        }
        if let Some(id) = self.judging.get_value() {
            spawn_local(async move {
                let _ = ipc::stop_stream(id).await;
            });
        }
    }
}

/// Stop one answer: at once if it has not been sent yet, else through the
/// engine (which keeps the text and settles what it cost).
pub fn stop(answer: &Answer) {
    answer.stop_asked.store(true, Ordering::Relaxed);
    let Some(id) = answer.stream_id.try_get_untracked() else {
        return;
    };
    spawn_local(async move {
        let _ = ipc::stop_stream(id).await;
    });
}

fn finish(answer: &Answer, summary: AnswerSummary) {
    let failed = summary.error.is_some();
    answer.summary.set(Some(summary));
    answer
        .status
        .set(if failed { Status::Failed } else { Status::Done });
}

fn bridge_failure(target: &str, message: String) -> AnswerSummary {
    AnswerSummary::failure(target, "internal", message)
}

fn unsent(target: &str) -> AnswerSummary {
    AnswerSummary::failure(
        target,
        "stopped",
        "stopped before it was sent; nothing was asked or spent".into(),
    )
}

fn on_event(answer: &Answer, stream: u64, event: PaneEvent) {
    // Events of an earlier generation of a regenerated answer are stale.
    if answer.stream_id.try_get_untracked() != Some(stream) {
        return;
    }
    match event {
        PaneEvent::Attempt { provider, model } => {
            answer.live.update(|l| l.trail.push((provider, model)))
        }
        PaneEvent::Update {
            text,
            reasoning,
            ttft_ms,
            elapsed_ms,
            tokens,
        } => {
            if !reasoning.is_empty() {
                answer.reasoning.update(|r| r.push_str(&reasoning));
            }
            let n = text.chars().count();
            if n > 0 {
                answer.text.update(|t| t.push_str(&text));
            }
            answer.live.update(|l| {
                l.chars += n;
                l.ttft_ms = ttft_ms;
                l.elapsed_ms = elapsed_ms;
                l.tokens = tokens;
            });
        }
        // An answer's end changes its card (final figures, its buttons)
        // and, with the reply, has the history and the spend read again:
        // work that would hold back the next frame, in which other panes
        // may be drawing their last words. It waits for that frame.
        PaneEvent::Finished(summary) => {
            let answer = answer.clone();
            spawn_local(async move {
                live::after_frame().await;
                if answer.stream_id.try_get_untracked() == Some(stream) && answer.is_streaming() {
                    finish(&answer, *summary);
                }
            });
        }
    }
}
