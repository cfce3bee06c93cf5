//! "Ask a judge" and "Merge": a chosen model reads the newest round's
//! answers (as "Answer A", "Answer B"…, never by model) and gives a verdict
//! with reasons, or writes one answer from the best parts. Its instructions
//! are editable. What it says is shown beside the panes with its cost,
//! which the conversation's total includes; it is never counted as the
//! user's vote. Its text streams into a card while it runs, like an
//! answer's; "Stop" ends a running judge: what it wrote so far is kept and
//! billed. Each card says which pane (and model) each anonymous answer
//! was, reopened verdicts too. The judge's text is model output: shown as
//! text only.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{
    DEFAULT_VERDICT_PROMPT, JudgeRequest, JudgeTask, JudgeVerdict, PaneEvent, format_usd,
};

use super::state::{CompareState, Status, next_id};
use crate::components::target_parts;
use crate::ipc;

#[component]
pub fn JudgePanel(state: CompareState) -> impl IntoView {
    let target = RwSignal::new(String::new());
    let prompt = RwSignal::new(DEFAULT_VERDICT_PROMPT.to_owned());
    let busy = RwSignal::new(false);
    // The running judge's stream id, for Stop.
    let running = RwSignal::new(None::<u64>);
    let error = RwSignal::new(None::<String>);
    // What the running judge was asked (its card), and its text so far:
    // apart, so a token redraws the text, not the card.
    let live = RwSignal::new(None::<(JudgeTask, String)>);
    let live_text = RwSignal::new(String::new());
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
        live_text.set(String::new());
        live.set(Some((task, request.target.clone())));
        let round_id = round.id;
        spawn_local(async move {
            let result = ipc::judge_round(&request, move |e| {
                if let PaneEvent::Update { text, .. } = e {
                    live_text.try_update(|shown| shown.push_str(&text));
                }
            })
            .await;
            let _ = live.try_set(None);
            let _ = live_text.try_set(String::new());
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
    let results = move || {
        state
            .judged
            .get()
            .into_iter()
            .map(|(round_id, v)| verdict_card(state, round_id, &v))
            .collect_view()
    };
    let streaming = move || {
        live.get().map(|(task, target)| {
            view! {
                <article class="judge-live" id="judge-live" data-task=task_name(task) aria-busy="true">
                    <header class="judge-result-head">
                        <span class="judge-who">{format!("Judge {target} · {}", task_name(task))}</span>
                        <span class="dim">"streaming…"</span>
                    </header>
                    <div class="judge-text">{move || live_text.get()}</div>
                </article>
            }
        })
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
        <div class="judge-results" id="judge-results">{results}{streaming}</div>
    }
}

fn task_name(task: JudgeTask) -> &'static str {
    match task {
        JudgeTask::Verdict => "verdict",
        JudgeTask::Merge => "merged answer",
    }
}

/// "pane 2 / gpt-6-luna": where the answer of pane `key` to round
/// `round_id` is now, and the model that wrote it.
fn pane_and_model(state: CompareState, round_id: u64, key: &str) -> String {
    let pane = state
        .panes
        .with(|ps| ps.iter().position(|p| p.key == key))
        .map_or_else(|| "a closed pane".to_owned(), |i| format!("pane {}", i + 1));
    let model = state.rounds.with(|rs| {
        let answer = rs
            .iter()
            .find(|r| r.id == round_id)?
            .answers
            .iter()
            .find(|a| a.pane == key)?
            .clone();
        // The model that answered (a route names its target), else the
        // one asked for.
        let answered = answer
            .summary
            .with(|s| s.as_ref().map(|s| s.model.clone()))
            .filter(|m| !m.is_empty());
        Some(answered.unwrap_or_else(|| target_parts(&answer.target.get()).0))
    });
    match model {
        Some(m) if !m.is_empty() => format!("{pane} / {m}"),
        _ => pane,
    }
}

/// A judge's finished verdict or merged answer, with its cost and which
/// pane each label stood for.
fn verdict_card(state: CompareState, round_id: u64, v: &JudgeVerdict) -> AnyView {
    let cost = v.cost_nanos.map_or_else(
        || "cost unknown".to_owned(),
        |n| {
            format!(
                "{}{}",
                format_usd(n),
                if v.cost_estimated { " est." } else { "" }
            )
        },
    );
    let what = task_name(v.task);
    let labels = v
        .labels
        .iter()
        .map(|(l, k)| format!("Answer {l} = {}", pane_and_model(state, round_id, k)))
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
    .into_any()
}
