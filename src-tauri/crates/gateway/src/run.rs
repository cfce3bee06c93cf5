//! Running one request through the engine's router, on a task of its own.
//!
//! The task outlives the HTTP exchange if it must: a client that goes
//! away cancels the request's token (never aborts the task), and the
//! router ends the running attempt as `stopped` through its settling code
//! (ledger row at the running target's price, hold released, partial text
//! kept, in history too when the token records history). What the
//! response needs arrives as [`Progress`] on a channel: the attempts that
//! failed before any token, the serving target at the first token, the
//! tokens, and the outcome.

use std::sync::Arc;

use switchboard_engine::hooks::SpendContext;
use switchboard_engine::routing::{Route, RouteEvent, RouteOutcome};
use switchboard_engine::store::{Answer, PaneRef, title_of};
use switchboard_engine::{
    ChatRequest, ConversationId, ErrorKind, MessageId, Role, StreamEvent, Usage,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::errors::attempt_word;
use crate::state::{Generation, State};

/// What a running request reports to its response.
#[derive(Debug)]
pub(crate) enum Progress {
    /// An attempt ended (failed or skipped) before any token came.
    Attempt {
        /// `provider:model`.
        target: String,
        /// `error/<kind>`, `skipped/<kind>`, ...
        word: String,
    },
    /// The first token came from `target`, which serves the answer.
    Serving {
        /// `provider:model`.
        target: String,
        /// The token counts its stream reported so far.
        usage: Usage,
    },
    /// Answer text.
    Text(String),
    /// Reasoning text.
    Reasoning(String),
    /// The request has ended and settled.
    Done(Box<Finished>),
}

/// How a request ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub outcome: RouteOutcome,
    /// The budgets that refused any of its attempts.
    pub budgets: Vec<String>,
}

/// A request, resolved and ready to run.
#[derive(Debug)]
pub(crate) struct Job {
    pub route: Route,
    pub chat: ChatRequest,
    /// Tags (the token's name and tag); provider, model and route are
    /// filled in per attempt by the router.
    pub spend: SpendContext,
    /// Send tokens as they come (a streamed response).
    pub stream: bool,
    /// Save the request and its answer in history, as this target label.
    pub record_as: Option<String>,
}

/// Start `job` on its own task; stopped by `cancel`.
pub(crate) fn spawn(
    state: &Arc<State>,
    generation: Arc<Generation>,
    job: Job,
    cancel: CancellationToken,
) -> mpsc::UnboundedReceiver<Progress> {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::clone(state);
    let in_flight = state.stats.begin();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        let Job {
            route,
            chat,
            mut spend,
            stream,
            record_as,
        } = job;
        let recorded = match &record_as {
            Some(target) => begin_history(&state, &chat, &spend.tags, target).await,
            None => None,
        };
        if let Some((conversation, message)) = recorded {
            spend.conversation = Some(conversation.to_string());
            spend.message = Some(message.0);
        }
        let router = &generation.router;
        let mut committed = false;
        let mut usage = Usage::default();
        let outcome = router
            .run_until(&route, &chat, &spend, &cancel, |ev| match ev {
                RouteEvent::Sending { .. } => usage = Usage::default(),
                RouteEvent::Stream { target, event } => {
                    let token = match &event.event {
                        StreamEvent::TextDelta(t) => Progress::Text(t.clone()),
                        StreamEvent::ReasoningDelta(t) => Progress::Reasoning(t.clone()),
                        StreamEvent::Usage { usage: u, .. } => {
                            usage.merge_latest(*u);
                            return;
                        }
                        StreamEvent::Finish(_) | StreamEvent::Error(_) => return,
                    };
                    if !stream {
                        return;
                    }
                    if !committed {
                        committed = true;
                        let _ = tx.send(Progress::Serving {
                            target: target.to_owned(),
                            usage,
                        });
                    }
                    let _ = tx.send(token);
                }
                RouteEvent::Finished(a) => {
                    if stream && !committed {
                        let _ = tx.send(Progress::Attempt {
                            target: a.target.clone(),
                            word: attempt_word(a),
                        });
                    }
                }
                RouteEvent::Waiting { .. } => {}
            })
            .await;
        state.stats.settled(&outcome);
        // A provider that refused its key has it looked up again next
        // time, whether another target then served (streamed or not) or not.
        for a in &outcome.attempts {
            if a.error
                .as_ref()
                .is_some_and(|e| e.kind == ErrorKind::Auth && e.status.is_some())
            {
                state.keys.forget(&a.record.provider);
            }
        }
        if committed && !outcome.is_ok() {
            state.stats.stream_failed();
        }
        let mut budgets: Vec<String> = Vec::new();
        for b in outcome
            .attempts
            .iter()
            .filter_map(|a| a.refused_by.as_ref())
        {
            if !budgets.contains(b) {
                budgets.push(b.clone());
            }
        }
        if let (Some((_, message)), Some(target)) = (recorded, &record_as) {
            finish_history(&state, message, target, &outcome).await;
        }
        let _ = tx.send(Progress::Done(Box::new(Finished { outcome, budgets })));
    });
    rx
}

/// Start the conversation and the answer's row in history (off the async
/// threads): the last user message is the question.
async fn begin_history(
    state: &Arc<State>,
    chat: &ChatRequest,
    tags: &[String],
    target: &str,
) -> Option<(ConversationId, MessageId)> {
    let question = chat
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.clone())
        .unwrap_or_default();
    let (store, tags, target) = (state.store.clone(), tags.to_vec(), target.to_owned());
    tokio::task::spawn_blocking(move || {
        let recorder = store.recorder(false);
        let conversation = recorder.start_conversation(&title_of(&question), &tags)?;
        let asked = recorder.add_user_message(conversation, None, &question)?;
        let answer = recorder.begin_answer(conversation, asked, 0, &target)?;
        Ok::<_, switchboard_engine::StoreError>((conversation, answer))
    })
    .await
    .ok()?
    .ok()
}

/// Write the final answer into its history row.
async fn finish_history(state: &Arc<State>, id: MessageId, target: &str, outcome: &RouteOutcome) {
    let (store, target, outcome) = (state.store.clone(), target.to_owned(), outcome.clone());
    let _ = tokio::task::spawn_blocking(move || {
        let trace = outcome.trace();
        store.recorder(false).finish_answer(
            id,
            &Answer {
                pane: PaneRef::Position(0),
                target: &target,
                result: &outcome.result,
                trace: &trace,
            },
        )
    })
    .await;
}
