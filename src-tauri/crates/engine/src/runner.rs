//! One attempt at one target, start to finish: start the stream, enforce
//! the three timers (first token, idle gap, total), collect the events into
//! an [`AttemptResult`], and pass each event to the caller as it arrives
//! (the terminal, the UI's channel). Giving up on a timer drops the stream,
//! which cancels the HTTP request.

use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, timeout_at};

use crate::attempt::Accumulator;
use crate::catalog::ModelPrice;
use crate::chat::{AttemptResult, ChatRequest};
use crate::client::{Client, Timed};
use crate::error::{ErrorKind, ProviderError};
use crate::keys::Secret;
use crate::provider::ProviderConfig;

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
    let mut acc = Accumulator::new(&provider.id, &request.model);
    let start = Instant::now();
    let total_deadline = start + timeouts.total;
    let first_deadline = (start + timeouts.first_token).min(total_deadline);
    let timeout = |what: String| ProviderError::new(ErrorKind::Timeout, &provider.id, what);

    let mut stream = match timeout_at(first_deadline, client.stream(provider, key, request)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            acc.fail(e);
            return acc.finish(start.elapsed(), price, request.input_chars());
        }
        Err(_) => {
            acc.fail(timeout(format!(
                "no answer within {}",
                secs(timeouts.first_token)
            )));
            return acc.finish(start.elapsed(), price, request.input_chars());
        }
    };
    let mut last_arrival = Instant::now();
    loop {
        let deadline = if acc.has_first_token() {
            (last_arrival + timeouts.idle).min(total_deadline)
        } else {
            first_deadline
        };
        match timeout_at(deadline, stream.next()).await {
            Ok(Some(event)) => {
                last_arrival = Instant::now();
                on_event(&event);
                acc.push(&event);
            }
            Ok(None) => break,
            Err(_) => {
                let why = if Instant::now() >= total_deadline {
                    format!("the answer took longer than {}", secs(timeouts.total))
                } else if acc.has_first_token() {
                    format!("no data for {} mid-answer", secs(timeouts.idle))
                } else {
                    format!("no first token within {}", secs(timeouts.first_token))
                };
                // Tokens already shown stay: the attempt is cut, not erased.
                let kind_err = timeout(why);
                let event = Timed {
                    at: stream.elapsed(),
                    event: crate::chat::StreamEvent::Error(kind_err),
                };
                on_event(&event);
                acc.push(&event);
                break;
            }
        }
    }
    let total = stream.elapsed();
    drop(stream);
    acc.finish(total, price, request.input_chars())
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
