//! One attempt at one target, start to finish: start the stream, enforce
//! the three timers (first token, idle gap, total), collect the events into
//! an [`AttemptResult`], and pass each event to the caller as it arrives
//! (the terminal, the UI's channel). Giving up on a timer drops the stream,
//! which cancels the HTTP request.
//!
//! Stopping is a value, not an abort: [`run_attempt_until`] watches a
//! [`CancellationToken`] while it connects and while it streams, and a
//! stop ends the attempt through the same code as every other ending
//! (outcome [`ErrorKind::Stopped`], the text kept, usage estimated for what
//! arrived). While it streams it also hands out
//! [`AttemptEvent::Checkpoint`]s, at least once a second, so the caller can
//! save what a crash would otherwise lose.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::attempt::Accumulator;
use crate::catalog::ModelPrice;
use crate::chat::{AttemptResult, ChatRequest};
use crate::client::{Client, Timed};
use crate::error::{ErrorKind, ProviderError};
use crate::keys::Secret;
use crate::provider::ProviderConfig;

/// How often a streaming attempt hands out a checkpoint (when something
/// arrived since the last one).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The three time limits of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the send to the first text or reasoning token.
    pub first_token: Duration,
    /// Longest silence between two chunks once tokens flow.
    pub idle: Duration,
    /// The whole attempt.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            first_token: Duration::from_secs(60),
            idle: Duration::from_secs(30),
            total: Duration::from_secs(600),
        }
    }
}

/// What a running attempt reports to its caller.
#[derive(Debug)]
pub enum AttemptEvent<'a> {
    /// A stream event, as it arrived.
    Stream(&'a Timed),
    /// What the attempt has come to so far, as if it were cut now: its text
    /// and reasoning, usage and cost estimated for them. One when the
    /// request is sent, then one every [`CHECKPOINT_EVERY`] while
    /// something arrives.
    Checkpoint(&'a AttemptResult),
}

/// Run one streaming attempt. Never fails: a failure is the result's `error`.
pub async fn run_attempt(
    client: &Client,
    provider: &ProviderConfig,
    key: Option<&Secret>,
    request: &ChatRequest,
    price: Option<&ModelPrice>,
    timeouts: Timeouts,
    mut on_event: impl FnMut(&Timed),
) -> AttemptResult {
    run_attempt_until(
        client,
        provider,
        key,
        request,
        price,
        timeouts,
        &CancellationToken::new(),
        |event| {
            if let AttemptEvent::Stream(t) = event {
                on_event(t);
            }
        },
    )
    .await
}

/// [`run_attempt`] that stops when `cancel` is cancelled: before the send
/// (nothing is sent or billed), while connecting, or mid-stream (the text
/// that arrived is kept and billed, usage estimated for it). Checkpoints
/// come through `on_event` too.
#[allow(
    clippy::too_many_arguments,
    reason = "run_attempt's arguments plus the stop signal"
)]
pub async fn run_attempt_until(
    client: &Client,
    provider: &ProviderConfig,
    key: Option<&Secret>,
    request: &ChatRequest,
    price: Option<&ModelPrice>,
    timeouts: Timeouts,
    cancel: &CancellationToken,
    mut on_event: impl FnMut(AttemptEvent<'_>),
) -> AttemptResult {
    let mut acc = Accumulator::new(&provider.id, &request.model);
    let start = Instant::now();
    let input_tokens = request.estimated_input_tokens(provider.kind);
    if cancel.is_cancelled() {
        acc.stop();
        return acc.finish(Duration::ZERO, price, input_tokens);
    }
    let total_deadline = start + timeouts.total;
    let first_deadline = (start + timeouts.first_token).min(total_deadline);
    let timeout = |what: String| ProviderError::new(ErrorKind::Timeout, &provider.id, what);

    acc.mark_sent();
    on_event(AttemptEvent::Checkpoint(&acc.progress(
        Duration::ZERO,
        price,
        input_tokens,
    )));
    let connected = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        connected = timeout_at(first_deadline, client.stream(provider, key, request)) => Some(connected),
    };
    let mut stream = match connected {
        None => {
            acc.stop();
            return acc.finish(start.elapsed(), price, input_tokens);
        }
        Some(Ok(Ok(stream))) => stream,
        Some(Ok(Err(e))) => {
            acc.fail(e);
            return acc.finish(start.elapsed(), price, input_tokens);
        }
        Some(Err(_)) => {
            acc.fail(timeout(format!(
                "no answer within {}",
                secs(timeouts.first_token)
            )));
            return acc.finish(start.elapsed(), price, input_tokens);
        }
    };
    let mut last_arrival = Instant::now();
    let mut next_checkpoint = last_arrival + CHECKPOINT_EVERY;
    let mut changed = false;
    // The timers are armed once and moved only when they fire: re-arming
    // them for every piece would cost more than reading the piece. The
    // deadline timer then checks the real deadline (the idle one moves
    // with every arrival) and sleeps on when it has not passed. A piece
    // that is ready wins over a deadline that passed meanwhile, as it did
    // when each read had its own timeout.
    let deadline_of = |acc: &Accumulator, last_arrival: Instant| {
        if acc.has_first_token() {
            (last_arrival + timeouts.idle).min(total_deadline)
        } else {
            first_deadline
        }
    };
    let deadline_timer = sleep_until(deadline_of(&acc, last_arrival));
    let checkpoint_timer = sleep_until(next_checkpoint);
    let cancelled = cancel.cancelled();
    tokio::pin!(deadline_timer, checkpoint_timer, cancelled);
    loop {
        tokio::select! {
            biased;
            () = &mut cancelled => {
                acc.stop();
                break;
            }
            () = &mut checkpoint_timer => {
                next_checkpoint = Instant::now() + CHECKPOINT_EVERY;
                checkpoint_timer.as_mut().reset(next_checkpoint);
                if std::mem::take(&mut changed) {
                    on_event(AttemptEvent::Checkpoint(
                        &acc.progress(stream.elapsed(), price, input_tokens),
                    ));
                }
            }
            next = stream.next() => match next {
                Some(event) => {
                    last_arrival = Instant::now();
                    let waiting_for_first = !acc.has_first_token();
                    on_event(AttemptEvent::Stream(&event));
                    acc.push(&event);
                    changed = true;
                    if waiting_for_first && acc.has_first_token() {
                        // From the first token on, the (shorter) idle limit.
                        deadline_timer.as_mut().reset(deadline_of(&acc, last_arrival));
                    }
                }
                None => break,
            },
            () = &mut deadline_timer => {
                let deadline = deadline_of(&acc, last_arrival);
                if Instant::now() < deadline {
                    deadline_timer.as_mut().reset(deadline);
                    continue;
                }
                let why = if Instant::now() >= total_deadline {
                    format!("the answer took longer than {}", secs(timeouts.total))
                } else if acc.has_first_token() {
                    format!("no data for {} mid-answer", secs(timeouts.idle))
                } else {
                    format!("no first token within {}", secs(timeouts.first_token))
                };
                // Tokens already shown stay: the attempt is cut, not erased.
                let event = Timed {
                    at: stream.elapsed(),
                    event: crate::chat::StreamEvent::Error(timeout(why)),
                };
                on_event(AttemptEvent::Stream(&event));
                acc.push(&event);
                break;
            }
        }
    }
    let total = stream.elapsed();
    drop(stream);
    acc.finish(total, price, input_tokens)
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
