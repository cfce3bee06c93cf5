//! The two interfaces between the routing engine and local storage, so each
//! can be built and tested without the other: [`HealthStore`] keeps
//! per-target health (persisted in SQLite so a provider cooling down in one
//! CLI run is still cooling down in the next, and the app sees it too), and
//! [`BudgetGate`] accounts for every attempt in the spend ledger: a hold
//! before it is sent, checkpoints while it streams (so a crash loses at
//! most a second of it), and the settled cost when it ends, stopped ones
//! included. In-memory implementations serve tests and incognito use.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::money::Cost;
use crate::routing::{HEALTH_WINDOW, HealthStats};

/// One finished attempt, as health statistics see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSample {
    /// When it ended, in Unix milliseconds (wall clock: survives restarts).
    pub at_unix_ms: i64,
    /// It produced a complete answer.
    pub ok: bool,
    /// Why it failed, when it did.
    pub error_kind: Option<ErrorKind>,
    /// Time to the first visible (answer-text) token, when one came.
    pub ttft_ms: Option<f64>,
    /// Visible output tokens per second (reasoning excluded), when measured.
    pub tokens_per_s: Option<f64>,
}

/// Cooldown of one target after repeated failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CooldownState {
    /// Failures in a row since the last success.
    pub consecutive_failures: u32,
    /// Skip the target until then (Unix ms); `None` when not cooling down.
    pub until_unix_ms: Option<i64>,
    /// How many cooldowns in a row (the period grows with it).
    pub level: u32,
}

/// Where health statistics live. `provider` is the provider id, `model` the
/// model id. Implementations must be safe to share between threads.
pub trait HealthStore: Send + Sync + Debug {
    /// Remember one attempt.
    fn record(&self, provider: &str, model: &str, sample: &HealthSample);
    /// The most recent samples, newest first, at most `limit`.
    fn recent(&self, provider: &str, model: &str, limit: usize) -> Vec<HealthSample>;
    /// The statistics of the last [`HEALTH_WINDOW`] samples.
    fn stats(&self, provider: &str, model: &str) -> HealthStats {
        HealthStats::from_samples(&self.recent(provider, model, HEALTH_WINDOW))
    }
    /// The cooldown state (default when never set).
    fn cooldown(&self, provider: &str, model: &str) -> CooldownState;
    /// Replace the cooldown state.
    fn set_cooldown(&self, provider: &str, model: &str, state: CooldownState);
    /// True when `record` and `set_cooldown` only queue the write and
    /// return at once (and reads never block): the router then calls them
    /// on its own thread instead of handing each to a blocking thread.
    fn queues_writes(&self) -> bool {
        false
    }
}

/// Health kept in memory only (tests, incognito).
#[derive(Debug, Default)]
pub struct MemoryHealth {
    samples: Mutex<HashMap<(String, String), Vec<HealthSample>>>,
    cooldowns: Mutex<HashMap<(String, String), CooldownState>>,
}

fn key(provider: &str, model: &str) -> (String, String) {
    (provider.to_owned(), model.to_owned())
}

impl HealthStore for MemoryHealth {
    fn record(&self, provider: &str, model: &str, sample: &HealthSample) {
        if let Ok(mut m) = self.samples.lock() {
            m.entry(key(provider, model))
                .or_default()
                .push(sample.clone());
        }
    }

    fn recent(&self, provider: &str, model: &str, limit: usize) -> Vec<HealthSample> {
        self.samples
            .lock()
            .ok()
            .and_then(|m| m.get(&key(provider, model)).cloned())
            .map(|v| v.into_iter().rev().take(limit).collect())
            .unwrap_or_default()
    }

    fn cooldown(&self, provider: &str, model: &str) -> CooldownState {
        self.cooldowns
            .lock()
            .ok()
            .and_then(|m| m.get(&key(provider, model)).copied())
            .unwrap_or_default()
    }

    fn set_cooldown(&self, provider: &str, model: &str, state: CooldownState) {
        if let Ok(mut m) = self.cooldowns.lock() {
            m.insert(key(provider, model), state);
        }
    }
}

/// What an attempt is spent on, for budgets and the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendContext {
    /// Provider id of the target that runs.
    pub provider: String,
    /// Model id of the target that runs.
    pub model: String,
    /// The route it runs under, if any.
    pub route: Option<String>,
    /// Tags of the conversation (client, project, ...).
    pub tags: Vec<String>,
    /// The conversation, when recorded in history.
    pub conversation: Option<String>,
    /// The answer being written in history (its message id), when
    /// recorded: its ledger rows name it, checkpoints update its text, and
    /// crash recovery finishes it.
    #[serde(default)]
    pub message: Option<i64>,
}

/// Money held for an attempt in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Identifies the hold inside its gate.
    pub id: u64,
    /// What is held.
    pub amount: Cost,
    /// What it was held for.
    pub context: SpendContext,
}

/// A refused reservation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("budget \"{budget}\": {message}")]
pub struct BudgetDenied {
    /// The budget's name, as the user named it.
    pub budget: String,
    /// Why, with the numbers (spent, held, limit).
    pub message: String,
}

/// What an attempt turned out to cost, for the ledger. Every attempt the
/// provider accepted is billed, even when its price is unknown: the ledger
/// counts the request and its tokens with no amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledCost {
    /// The amount; `None` when the model's price is unknown.
    pub cost: Option<Cost>,
    /// From estimated tokens.
    pub estimated: bool,
    /// Prompt tokens, as reported or else estimated.
    pub input_tokens: Option<u64>,
    /// Output tokens, as reported or else estimated.
    pub output_tokens: Option<u64>,
}

impl SettledCost {
    /// What `result` bills, or `None` when the provider never accepted it
    /// (nothing to bill).
    pub fn of(result: &crate::chat::AttemptResult) -> Option<Self> {
        result.billed.map(|usage| SettledCost {
            cost: result.cost.map(|c| c.total),
            estimated: result.cost.is_some_and(|c| c.estimated()),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
        })
    }
}

/// The spend ledger's admission control and bookkeeping: the router
/// reserves an estimate before every attempt (fallback targets included),
/// checkpoints it while it streams, and settles it with the actual cost
/// afterwards, however it ended (answered, failed, stopped), so concurrent
/// requests cannot overspend beyond what is in flight and no billed
/// attempt is missing from the ledger.
///
/// The methods block (the SQLite gate writes to disk): the router calls
/// them from a blocking thread, never from an async worker.
pub trait BudgetGate: Send + Sync + Debug {
    /// Hold `estimate` (the most this attempt can cost) for an attempt, or
    /// refuse when a hard budget would be exceeded by what is spent plus
    /// what is held plus `estimate`. `None`: the price is unknown, so no
    /// hard budget covering the attempt can bound it and each one refuses.
    fn reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied>;
    /// What the attempt has streamed and would cost if it ended now
    /// (estimated), at least once a second while it runs: what crash
    /// recovery bills and shows if the process dies before `settle`.
    fn checkpoint(&self, reservation: &Reservation, progress: &crate::chat::AttemptResult) {
        let _ = (reservation, progress);
    }
    /// Release the hold and record what the attempt cost (`None`: not billed).
    fn settle(&self, reservation: Reservation, actual: Option<SettledCost>);
    /// True when `checkpoint` and `settle` only queue the write and return
    /// at once: the router then calls them on its own thread.
    fn queues_writes(&self) -> bool {
        false
    }
    /// [`BudgetGate::reserve`] answered later without blocking a thread,
    /// when the gate can (`None`: call `reserve` on a blocking thread).
    fn reserve_queued(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Option<PendingReservation> {
        let _ = (ctx, estimate);
        None
    }
}

/// The answer to [`BudgetGate::reserve_queued`], when it comes.
pub type PendingReservation = tokio::sync::oneshot::Receiver<Result<Reservation, BudgetDenied>>;

/// A gate with no budgets: every reservation succeeds, nothing is recorded.
#[derive(Debug, Default)]
pub struct NoBudgets {
    next: std::sync::atomic::AtomicU64,
}

impl BudgetGate for NoBudgets {
    fn reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied> {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Reservation {
            id,
            amount: estimate.unwrap_or(Cost::ZERO),
            context: ctx.clone(),
        })
    }

    fn settle(&self, _reservation: Reservation, _actual: Option<SettledCost>) {}
}

/// How one attempt of a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// A complete answer.
    Ok,
    /// It was stopped on purpose while it ran (Stop, Ctrl-C, closing the
    /// window): what arrived is kept and billed, and the target's health is
    /// not blamed.
    Stopped,
    /// It ran and failed.
    Error {
        /// The classified kind.
        kind: ErrorKind,
        /// What went wrong.
        message: String,
    },
    /// It was not run.
    Skipped {
        /// The kind of reason: `budget`, `policy`, or `cooldown`.
        kind: String,
        /// Why, for people (names the budget or policy).
        reason: String,
    },
}

/// One attempt in a request's trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Provider id.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// When it started (Unix ms).
    pub started_unix_ms: i64,
    /// Time to the first visible (answer-text) token, when one came.
    pub ttft_ms: Option<f64>,
    /// Streamed thinking before the answer (first reasoning token to first
    /// text token), when the model streamed any.
    #[serde(default)]
    pub thinking_ms: Option<f64>,
    /// From start to end (0 for skipped attempts).
    pub total_ms: f64,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Token counts as reported.
    pub usage: crate::chat::Usage,
    /// What it cost, when known.
    pub cost: Option<crate::chat::AttemptCost>,
}

/// Every attempt of one request, in order: what the router did and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestTrace {
    /// The route, when the request named one.
    pub route: Option<String>,
    /// The attempts in the order they were made (or skipped).
    pub attempts: Vec<AttemptRecord>,
}

/// The cost of a request: the sum of its attempts' known costs (retries
/// and billed failures included), estimated when any part is, reported
/// when every part is; `None` when no attempt had a known cost.
pub fn sum_costs<'a>(
    attempts: impl IntoIterator<Item = &'a AttemptRecord>,
) -> Option<crate::chat::AttemptCost> {
    use crate::chat::{AttemptCost, CostSource};
    attempts
        .into_iter()
        .filter_map(|a| a.cost)
        .reduce(|sum, c| AttemptCost {
            total: sum.total + c.total,
            source: match (sum.source, c.source) {
                (CostSource::Estimated, _) | (_, CostSource::Estimated) => CostSource::Estimated,
                (CostSource::Reported, CostSource::Reported) => CostSource::Reported,
                _ => CostSource::Computed,
            },
        })
}

impl RequestTrace {
    /// What the request cost: see [`sum_costs`].
    pub fn cost(&self) -> Option<crate::chat::AttemptCost> {
        sum_costs(&self.attempts)
    }
}
