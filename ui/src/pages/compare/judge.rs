//! "Ask a judge" and "Merge": a chosen model reads the newest round's
//! answers (as "Answer A", "Answer B"…, never by model) and gives a verdict
//! with reasons, or writes one answer from the best parts. Its instructions
//! are editable. What it says is shown beside the panes with its cost,
//! which the conversation's total includes; it is never counted as the
//! user's vote. "Stop" ends a running judge: what it wrote so far is
//! kept and billed. The judge's text is model output: shown as text only.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{DEFAULT_VERDICT_PROMPT, JudgeRequest, JudgeTask, format_usd};

use super::state::{CompareState, Status, next_id};
use crate::ipc;

#[component]
pub fn JudgePanel(state: CompareState) -> impl IntoView {
    let target = RwSignal::new(String::new());
    let prompt = RwSignal::new(DEFAULT_VERDICT_PROMPT.to_owned());
    let busy = RwSignal::new(false);
    // The running judge's stream id, for Stop.
    let running = RwSignal::new(None::<u64>);
    let error = RwSignal::new(None::<String>);
    // The newest round, when it is recorded and every answer is in (and
    // blind mode no longer hides it).
    let ready = move || {
        state.rounds.with(|rs| {
            rs.last().is_some_and(|r| {
                r.answers.len() >= 2
                    && r.ids.get().is_some()
                    && r.answers
                        .iter()
                        .all(|a| a.status.get() != Status::Streaming)
            })
        }) && !state.hides(None)
    };
    let run = move |task: JudgeTask| {
        let Some(round) = state.rounds.with_untracked(|rs| rs.last().cloned()) else {
            return;
        };
        let Some(ids) = round.ids.get_untracked() else {
            return;
        };
        let mut judge = target.get_untracked().trim().to_owned();
        if judge.is_empty() {
            judge = round
                .answers
                .first()
                .map(|a| a.target.get_untracked())
                .unwrap_or_default();
            target.set(judge.clone());
        }
        let instructions = prompt.get_untracked();
        let request = JudgeRequest {
            round: ids.user_message,
            panes: round.answers.iter().map(|a| a.pane.clone()).collect(),
            target: judge,
            task,
            prompt: (task == JudgeTask::Verdict || instructions != DEFAULT_VERDICT_PROMPT)
                .then_some(instructions),
            stream_id: next_id(),
        };
        running.set(Some(request.stream_id));
        state.judging.set_value(Some(request.stream_id));
        busy.set(true);
        error.set(None);
        let round_id = round.id;
        spawn_local(async move {
            let result = ipc::judge_round(&request).await;
            let _ = busy.try_set(false);
            let _ = running.try_set(None);
            if state.judging.get_value() == Some(request.stream_id) {
                state.judging.set_value(None);
            }
            match result {
                // Its round is still on screen: the verdict goes beside it
                // (else it is in history, with the conversation it judged).
                Ok(v) if state.holds_round(round_id) => {
                    state.judged.update(|j| j.push((round_id, v)));
                    state.spend_changed.update(|n| *n += 1);
                }
                Ok(_) => state.spend_changed.update(|n| *n += 1),
                Err(e) => {
                    let _ = error.try_set(Some(e.message));
                }
            }
        });
    };
    let pane_name = move |key: &str| {
        state
            .panes
            .with(|ps| ps.iter().position(|p| p.key == key))
            .map_or_else(|| "a closed pane".to_owned(), |i| format!("pane {}", i + 1))
    };
    let results = move || {
        state
            .judged
            .get()
            .into_iter()
            .map(|(_, v)| {
                let cost = v.cost_nanos.map_or_else(
                    || "cost unknown".to_owned(),
                    |n| format!("{}{}", format_usd(n), if v.cost_estimated { " est." } else { "" }),
                );
                let what = match v.task {
                    JudgeTask::Verdict => "verdict",
                    JudgeTask::Merge => "merged answer",
                };
                let labels = v
                    .labels
                    .iter()
                    .map(|(l, k)| format!("Answer {l} = {}", pane_name(k)))
                    .collect::<Vec<_>>()
                    .join(" · ");
                view! {
                    <article class="judge-result" data-task=what>
                        <header class="judge-result-head">
                            <span class="judge-who">{format!("Judge {} · {what}", v.target)}</span>
                            <span class="judge-cost" data-ro="cost">{cost}</span>
                        </header>
                        {v.error.clone().map(|e| view! { <p class="pane-error" role="alert">{e}</p> })}
                        <div class="judge-text">{v.text.clone()}</div>
                        <p class="dim judge-labels">{labels}</p>
                    </article>
                }
            })
            .collect_view()
    };
    view! {
        <Show when=ready>
            <details class="judge-panel" id="judge-panel">
                <summary>"Ask a judge about this round (not counted as your vote)"</summary>
                <div class="judge-form">
                    <input type="text" id="judge-target" placeholder="judge model, e.g. openai:gpt-6-luna (default: pane 1's)"
                        aria-label="Judge model" prop:value=move || target.get()
                        on:change=move |ev| target.set(event_target_value(&ev)) />
                    <textarea id="judge-prompt" rows="3" aria-label="Judging instructions"
                        prop:value=move || prompt.get()
                        on:change=move |ev| prompt.set(event_target_value(&ev))></textarea>
                    <div class="judge-actions">
                        <button class="small" id="judge-ask" disabled=move || busy.get()
                            on:click=move |_| run(JudgeTask::Verdict)>"Ask a judge"</button>
                        <button class="small" id="judge-merge" disabled=move || busy.get()
                            title="Write one answer from the best parts of all of them"
                            on:click=move |_| run(JudgeTask::Merge)>"Merge"</button>
                        {move || busy.get().then(|| view! {
                            <span class="dim">"Judging…"</span>
                            <button class="small" id="judge-stop" title="Stop the judge (what it wrote so far is kept and billed)"
                                on:click=move |_| {
                                    if let Some(id) = running.get_untracked() {
                                        spawn_local(async move {
                                            let _ = ipc::stop_stream(id).await;
                                        });
                                    }
                                }>"Stop"</button>
                        })}
                    </div>
                    {move || error.get().map(|e| view! { <p class="pane-error" role="alert">{e}</p> })}
                </div>
            </details>
        </Show>
        <div class="judge-results" id="judge-results">{results}</div>
    }
}
