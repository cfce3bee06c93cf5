//! Running one request through the engine's router.
//!
//! A request is a future ([`Running`]) whose output (stream bytes, the
//! serving target, how it ended) is shared with its response. A whole
//! answer is driven by the HTTP exchange itself: the handler polls it to
//! the end, with no task hop. A streamed answer runs on a task of its own
//! so the upstream is read and encoded while the response writes; pieces
//! are encoded by the router's own callback straight into the response's
//! buffer (no channel, no allocation per piece), and the response is woken
//! only when it waits for bytes, so pieces that arrive while it writes
//! leave together in its next frame.
//!
//! The request outlives the HTTP exchange if it must: a client that goes
//! away drops the response, and [`Running`]'s drop cancels the request's
//! token (never aborts it), handing a driven request to a task of its
//! own; the router then ends the running attempt as `stopped` through its
//! settling code (ledger row at the running target's price, hold
//! released, partial text kept, in history too when the token records
//! history).
//!
//! Ledger writes and the response: see the batch writer
//! ([`switchboard_engine::store::BatchWriter`]). The attempt goes upstream
//! without waiting for its hold to be committed; the response's first
//! byte does wait for it ([`Running::hold_written`], normally long done by
//! then), so every request a client saw a byte of is in the ledger or
//! found by crash recovery. The settle is queued without waking the
//! writer, and the writer is woken when the response is done (the drop of
//! [`Running`]), so the last bytes and `[DONE]` go out before the settle's
//! commit.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use switchboard_engine::hooks::SpendContext;
use switchboard_engine::routing::{Route, RouteEvent, RouteOutcome};
use switchboard_engine::store::{Answer, BatchWriter, PaneRef, title_of};
use switchboard_engine::{
    ChatRequest, ConversationId, ErrorKind, MessageId, Role, StreamEvent, Usage,
};
use tokio_util::sync::CancellationToken;

use crate::body::{Encoder, StreamEncoder, StreamFormat};
use crate::errors::attempt_word;
use crate::state::{Generation, State};

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
    /// Stream the answer in this format (`None`: answer it whole).
    pub stream: Option<StreamFormat>,
    /// Save the request and its answer in history, as this target label.
    pub record_as: Option<String>,
}

/// What a running request has produced for its response so far.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Stream bytes not handed to the response yet.
    pub bytes: Vec<u8>,
    /// A streamed answer: the attempts that ended before any token, then
    /// the serving target as `running` (`provider:model`, word).
    pub attempts: Vec<(String, String)>,
    /// A streamed answer: the target that serves it, from its first token.
    pub serving: Option<String>,
    /// How it ended, when nothing was streamed (a whole answer, or an end
    /// before any token).
    pub finished: Option<Box<Finished>>,
    /// Writes queued when its last attempt was sent (its hold among them),
    /// and when its first event came back (the checkpoint marking it sent
    /// among them): what the response waits for.
    hold_seq: u64,
    /// The request has ended (and settled); nothing more comes.
    ended: bool,
    /// The response, waiting for more (a request on a task of its own).
    waiting: Option<Waker>,
    /// The response is gone before the end.
    abandoned: bool,
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A request being run (see the module docs).
pub(crate) struct Running {
    /// The request, when the response drives it (a whole answer); `None`
    /// once it ended, or when it runs on a task of its own (a stream).
    task: Option<Task>,
    output: Arc<Mutex<Output>>,
    cancel: CancellationToken,
    writer: BatchWriter,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("driven", &self.task.is_some())
            .finish_non_exhaustive()
    }
}

fn lock(output: &Mutex<Output>) -> MutexGuard<'_, Output> {
    output.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Running {
    fn drop(&mut self) {
        let ended = {
            let mut out = lock(&self.output);
            out.waiting = None;
            out.abandoned = !out.ended;
            out.ended
        };
        if !ended {
            // The client is gone before the end: stop the request and let
            // it settle on its own.
            self.cancel.cancel();
            if let Some(task) = self.task.take()
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                runtime.spawn(task);
            }
        }
        // The response is out: its settle need not wait for the next batch.
        self.writer.kick();
    }
}

impl Running {
    /// Start `job`, stopped by `cancel`. A streamed answer runs on a task
    /// of its own, so on two cores the upstream is read, parsed and encoded
    /// while the response is written (a 2,000-piece answer ended 3–5 ms
    /// later when one task did both); a whole answer runs as it is polled,
    /// with no task hop.
    pub(crate) fn start(
        state: &Arc<State>,
        generation: Arc<Generation>,
        job: Job,
        cancel: CancellationToken,
    ) -> Self {
        let output = Arc::new(Mutex::new(Output::default()));
        let own_task = job.stream.is_some();
        let task = run(
            Arc::clone(state),
            generation,
            job,
            cancel.clone(),
            Arc::clone(&output),
        );
        let task: Option<Task> = if own_task {
            tokio::spawn(task);
            None
        } else {
            Some(Box::pin(task))
        };
        Self {
            task,
            output,
            cancel,
            writer: state.writer.clone(),
        }
    }

    /// Drive the request if the response does, then look at its output
    /// with `ready`; `Pending` (woken when there is more) until it says.
    fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        ready: impl FnOnce(&mut Output) -> Option<T>,
    ) -> Poll<T> {
        if let Some(task) = self.task.as_mut()
            && task.as_mut().poll(cx).is_ready()
        {
            self.task = None;
        }
        let mut out = lock(&self.output);
        if let Some(v) = ready(&mut out) {
            return Poll::Ready(v);
        }
        if self.task.is_none()
            && !out
                .waiting
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            out.waiting = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The next stream bytes (everything produced since the last call), or
    /// `None` once it has ended and every byte was taken.
    pub(crate) fn poll_bytes(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        self.poll_with(cx, |out| {
            if !out.bytes.is_empty() {
                Some(Some(std::mem::take(&mut out.bytes)))
            } else if out.ended {
                Some(None)
            } else {
                None
            }
        })
    }

    /// Run it until its response can begin: the first streamed token, or
    /// the end.
    pub(crate) async fn until_response(&mut self) {
        std::future::poll_fn(|cx| {
            self.poll_with(cx, |out| (out.ended || out.serving.is_some()).then_some(()))
        })
        .await;
    }

    /// Wait until the crash record of its last attempt (the hold, marked
    /// sent) is committed; normally already done.
    pub(crate) fn hold_written(&self) -> impl Future<Output = ()> + Send + 'static {
        let seq = lock(&self.output).hold_seq;
        let writer = self.writer.clone();
        async move { writer.written(seq).await }
    }

    /// What it produced so far.
    pub(crate) fn output(&self) -> MutexGuard<'_, Output> {
        lock(&self.output)
    }

    /// It has ended and every byte was taken.
    pub(crate) fn is_over(&self) -> bool {
        let out = lock(&self.output);
        out.ended && out.bytes.is_empty()
    }
}

/// The request itself.
async fn run(
    state: Arc<State>,
    generation: Arc<Generation>,
    job: Job,
    cancel: CancellationToken,
    output: Arc<Mutex<Output>>,
) {
    let _in_flight = state.stats.begin();
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
    let mut encoder: Option<StreamEncoder> = None;
    let mut usage = Usage::default();
    // An attempt was sent and nothing of it has come back yet.
    let mut just_sent = false;
    let outcome = router
        .run_until(&route, &chat, &spend, &cancel, |ev| match ev {
            RouteEvent::Sending { .. } => {
                usage = Usage::default();
                just_sent = true;
                // Its hold is queued by now.
                let seq = state.writer.queued();
                lock(&output).hold_seq = seq;
            }
            RouteEvent::Stream { target, event } => {
                if std::mem::take(&mut just_sent) {
                    // The checkpoint that marks it sent (billed if the
                    // process dies) is queued by now too.
                    let seq = state.writer.queued();
                    lock(&output).hold_seq = seq;
                }
                let (text, reasoning) = match &event.event {
                    StreamEvent::TextDelta(t) => (t.as_str(), false),
                    StreamEvent::ReasoningDelta(t) => (t.as_str(), true),
                    StreamEvent::Usage { usage: u, .. } => {
                        usage.merge_latest(*u);
                        return;
                    }
                    StreamEvent::Finish(_) | StreamEvent::Error(_) => return,
                };
                let Some(format) = stream else {
                    return;
                };
                let mut guard = lock(&output);
                let out = &mut *guard;
                let encoder = encoder.get_or_insert_with(|| {
                    out.attempts.push((target.to_owned(), "running".into()));
                    out.serving = Some(target.to_owned());
                    format.start(target, usage, &mut out.bytes)
                });
                if reasoning {
                    encoder.reasoning(text, &mut out.bytes);
                } else {
                    encoder.text(text, &mut out.bytes);
                }
                // Only a response that waits for bytes is woken: pieces
                // that come while it writes join the next frame.
                let waiting = out.waiting.take();
                drop(guard);
                if let Some(waiting) = waiting {
                    waiting.wake();
                }
            }
            RouteEvent::Finished(a) => {
                if stream.is_some() && encoder.is_none() {
                    lock(&output)
                        .attempts
                        .push((a.target.clone(), attempt_word(a)));
                }
            }
            RouteEvent::Waiting { .. } => {}
        })
        .await;
    state.stats.settled(&outcome);
    // A provider that refused its key has it looked up again next
    // time, whether another target then served (streamed or not) or not.
    for provider in refused_keys(&outcome) {
        state.keys.forget(provider);
    }
    if encoder.is_some() && !outcome.is_ok() {
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
    let finished = Finished { outcome, budgets };
    let mut out = lock(&output);
    match &mut encoder {
        Some(encoder) => encoder.end(&finished, &mut out.bytes),
        None => out.finished = Some(Box::new(finished)),
    }
    out.ended = true;
    let (waiting, abandoned) = (out.waiting.take(), out.abandoned);
    drop(out);
    if let Some(waiting) = waiting {
        waiting.wake();
    }
    if abandoned {
        // Its response is long gone: nothing to wait for before writing.
        state.writer.kick();
    }
}

/// The providers whose key was refused (401/403) by their last attempt in
/// `outcome`: one whose refusal was followed by an attempt the provider
/// did not refuse (the router's retry with the keychain's newer key) holds
/// a good key again, and keeps it.
fn refused_keys(outcome: &RouteOutcome) -> Vec<&str> {
    let mut refused: Vec<&str> = Vec::new();
    for a in &outcome.attempts {
        if a.skip_kind().is_some() {
            // Not sent: no key was used.
            continue;
        }
        let provider = a.record.provider.as_str();
        let auth = a
            .error
            .as_ref()
            .is_some_and(|e| e.kind == ErrorKind::Auth && e.status.is_some());
        refused.retain(|p| *p != provider);
        if auth {
            refused.push(provider);
        }
    }
    refused
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
