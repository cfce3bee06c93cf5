//! The two interfaces between the routing engine and local storage, so each
//! can be built and tested without the other: [`HealthStore`] keeps
//! per-target health (persisted in SQLite so a provider cooling down in one
//! CLI run is still cooling down in the next, and the app sees it too), and
//! [`BudgetGate`] lets the router ask the spend ledger before every attempt.
//! In-memory implementations serve tests and incognito use.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::money::Cost;

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
    /// The cooldown state (default when never set).
    fn cooldown(&self, provider: &str, model: &str) -> CooldownState;
    /// Replace the cooldown state.
    fn set_cooldown(&self, provider: &str, model: &str, state: CooldownState);
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

/// What an attempt turned out to cost, for the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledCost {
    /// The amount.
    pub cost: Cost,
    /// From estimated tokens.
    pub estimated: bool,
    /// Prompt tokens, when reported.
    pub input_tokens: Option<u64>,
    /// Output tokens, when reported.
    pub output_tokens: Option<u64>,
}

/// The spend ledger's admission control: the router reserves an estimate
/// before every attempt (fallback targets included) and settles it with the
/// actual cost afterwards, so concurrent requests cannot overspend beyond
/// what is in flight.
pub trait BudgetGate: Send + Sync + Debug {
    /// Hold `estimate` for an attempt, or refuse when a hard budget would be
    /// exceeded by what is spent plus what is held plus `estimate`.
    fn reserve(&self, ctx: &SpendContext, estimate: Cost) -> Result<Reservation, BudgetDenied>;
    /// Release the hold and record what the attempt cost (`None`: not billed).
    fn settle(&self, reservation: Reservation, actual: Option<SettledCost>);
}

/// A gate with no budgets: every reservation succeeds, nothing is recorded.
#[derive(Debug, Default)]
pub struct NoBudgets {
    next: std::sync::atomic::AtomicU64,
}

impl BudgetGate for NoBudgets {
    fn reserve(&self, ctx: &SpendContext, estimate: Cost) -> Result<Reservation, BudgetDenied> {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Reservation {
            id,
            amount: estimate,
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
