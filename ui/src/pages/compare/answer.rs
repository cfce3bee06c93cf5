//! One answer card: the prompt, the answer drawn as Markdown while it
//! streams (see [`super::live`]), a failure with what can be done about it,
//! the readouts, and the card's actions (stop, regenerate, continue with
//! this). A card shown in a pane that continues another pane's thread is
//! "inherited": read-only, labelled with the model that wrote it.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::html;
use leptos::prelude::*;
use switchboard_protocol::PaneError;

use super::attachments::PromptAttachments;
use super::controller::stop;
use super::diff::DiffWith;
use super::live::{self, Renderer, SharedRenderer};
use super::readouts::Readouts;
use super::state::{Answer, CompareState, Round, Status};
use super::vote::VoteBar;

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

/// The answer's text as Markdown, drawn as it grows.
#[component]
fn AnswerBody(answer: Answer) -> impl IntoView {
    let blocks = NodeRef::<html::Div>::new();
    let tail = NodeRef::<html::Div>::new();
    let renderer: SharedRenderer = Rc::new(RefCell::new(None));
    {
        let answer = answer.clone();
        Effect::new(move |_| {
            let status = answer.status.get();
            answer.stream_id.track();
            answer.text.track();
            let (Some(b), Some(t)) = (blocks.get(), tail.get()) else {
                return;
            };
            if renderer.borrow().is_none() {
                *renderer.borrow_mut() = Some(Renderer::new(answer.clone(), b.into(), t.into()));
            }
            if status == Status::Streaming {
                live::schedule(&renderer);
            } else if let Ok(mut slot) = renderer.try_borrow_mut()
                && let Some(r) = slot.as_mut()
            {
                // The end is drawn as soon as the answer ends, in place
                // (it ends right after the frame that drew its last text,
                // see the controller's `on_event`).
                r.draw(true, true);
                r.follow();
            }
        });
    }
    let busy = {
        let status = answer.status.clone();
        move || (status.get() == Status::Streaming).to_string()
    };
    let empty = {
        let text = answer.text.clone();
        move || text.with(String::is_empty)
    };
    view! {
        <div class="answer-text markdown" aria-live="polite" aria-busy=busy class:empty=empty>
            <div class="md-blocks" node_ref=blocks></div>
            <div class="md-tail" node_ref=tail></div>
        </div>
    }
}

#[component]
pub fn AnswerCard(
    state: CompareState,
    round: Round,
    /// The round's place in the conversation.
    index: usize,
    answer: Answer,
    /// Shown in a pane that continues another pane's thread.
    inherited: bool,
) -> impl IntoView {
    let key = answer.pane.clone();
    let round_id = round.id;
    let chosen = state.pane(&key).map(|p| p.chosen_round);
    let is_chosen = move || {
        chosen
            .as_ref()
            .is_some_and(|c| c.get() == Some(index as u32))
    };
    let status = answer.status.clone();
    let summary = answer.summary.clone();
    let retry = {
        let key = key.clone();
        Callback::new(move |()| state.regenerate(&key, round_id))
    };
    let next = {
        let key = key.clone();
        Callback::new(move |t: String| state.retry_with(&key, round_id, t))
    };
    let error = {
        let (status, summary) = (status.clone(), summary.clone());
        move || {
            if status.get() != Status::Failed {
                return None;
            }
            let s = summary.get()?;
            let next_target = s.next_target.clone();
            let e = s.error?;
            Some(
                view! { <ErrorCard error=e on_retry=retry next_target=next_target on_next=next /> },
            )
        }
    };
    let reasoning = {
        let r = answer.reasoning.clone();
        move || {
            let r = r.get();
            (!r.is_empty()).then(|| view! { <details class="reasoning"><summary>"Reasoning"</summary><div class="reasoning-text">{r}</div></details> })
        }
    };
    let later_rounds = move || state.rounds.with(|rs| rs.len() > index + 1);
    let can_continue = {
        let status = status.clone();
        move || {
            !inherited
                && status.get() == Status::Done
                && (state.panes.with(Vec::len) >= 2 || later_rounds())
        }
    };
    let streaming = {
        let status = status.clone();
        move || status.get() == Status::Streaming
    };
    let actions = {
        let answer = answer.clone();
        let key = key.clone();
        let streaming = streaming.clone();
        move || {
            if inherited {
                return None;
            }
            let (a, k1, k2) = (answer.clone(), key.clone(), key.clone());
            Some(if streaming() {
                view! {
                    <button class="small stop" title="Stop this answer" on:click=move |_| stop(&a)>"Stop"</button>
                }
                .into_any()
            } else {
                view! {
                    <button class="small regenerate" title="Ask this pane's model again" on:click=move |_| state.regenerate(&k1, round_id)>"Regenerate"</button>
                    <Show when=can_continue.clone()>
                        {
                            let k = k2.clone();
                            view! { <button class="small continue" title="Keep this model and continue the conversation from this answer" on:click=move |_| state.continue_with(&k, index)>"Continue with this"</button> }
                        }
                    </Show>
                }
                .into_any()
            })
        }
    };
    let from = {
        let target = answer.target.clone();
        move || {
            inherited.then(
                || view! { <span class="inherited-from">{format!("from {}", target.get())}</span> },
            )
        }
    };
    let follows = round.follows.is_some() && !inherited;
    let data_status = {
        let status = status.clone();
        move || status.get().name()
    };
    let message = answer.message.clone();
    let drawn = answer.drawn_ms.clone();
    let first = answer.first_ms.clone();
    let sent = answer.sent_at.clone();
    let total = answer.summary.clone();
    let ttft = answer.summary.clone();
    let ids = round.ids.clone();
    let blind = move || state.hides(Some(round_id));
    view! {
        <article class="answer-card" class:chosen=is_chosen class:inherited=inherited class:blind=blind
            data-round=round.id.to_string() data-pane=key.clone()
            data-status=data_status
            data-message=move || message.get().map(|m| m.to_string())
            data-user-message=move || ids.get().map(|i| i.user_message.to_string())
            data-drawn-ms=move || drawn.get().map(|v| format!("{v:.1}"))
            data-first-ms=move || first.get().map(|v| format!("{v:.1}"))
            data-sent-at=move || sent.get().map(|v| format!("{v:.1}"))
            data-total-ms=move || total.get().map(|s| format!("{:.1}", s.total_ms))
            data-ttft-ms=move || ttft.get().and_then(|s| s.ttft_ms).map(|t| format!("{t:.1}"))>
            <div class="prompt-bubble">
                {follows.then(|| view! { <span class="follows" title="This prompt continued from the answer chosen with “Continue with this”">"↳ "</span> })}
                {round.prompt.clone()}
                <PromptAttachments attachments=round.attachments.clone() />
            </div>
            {from}
            {reasoning}
            <AnswerBody answer=answer.clone() />
            {error}
            <footer class="answer-footer">
                <Readouts answer=answer.clone() />
                <div class="answer-actions">{actions}</div>
            </footer>
            {(!inherited).then(|| view! { <VoteBar state=state round=round.clone() answer=answer.clone() /> })}
            {(!inherited).then(|| view! { <DiffWith state=state round=round.clone() answer=answer.clone() /> })}
        </article>
    }
}
