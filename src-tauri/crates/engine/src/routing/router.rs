//! Running a request through a route: the [`Router`].
//!
//! For each target in the [plan](super::strategy) order:
//!
//! 1. **Policy**: a forbidden target is skipped (`skipped`, kind `policy`);
//!    so is one that cannot take the request's images or PDFs (kind
//!    `unsupported`: the model does not take them, or the provider's size
//!    limits refuse them), which is never sent the prompt without them.
//! 2. **Cooldown**: a target cooling down is skipped (kind `cooldown`)
//!    while anything else can be tried; when nothing else is left, the one
//!    whose cooldown ends first is tried as a probe. A half-open target's
//!    next attempt is its probe, and it holds the target for other requests
//!    while it runs.
//! 3. **Budget**: before every attempt, retries and fallbacks included, the
//!    most it can cost ([`PlanEntry::reserve`]) is reserved with the
//!    [`BudgetGate`]; a refusal skips the target (kind `budget`), and so
//!    does a hard budget facing a model whose price is unknown. While the
//!    attempt streams it is checkpointed with the gate, and it is settled
//!    with its actual cost right after it, however it ended (`None` when
//!    the provider never accepted it; an unknown price still bills the
//!    request and its tokens).
//! 4. **The attempt**, with its three timers ([`run_attempt_until`]).
//! 5. **What next**, from the error's classification, never its text:
//!    - success: done;
//!    - failed after the first token: done. Tokens have reached the user,
//!      so nothing is switched silently: the partial text is kept and the
//!      outcome names the next target for an explicit retry;
//!    - [`ProviderError::allows_fallback`] false (`bad_request`): done, the
//!      request would fail anywhere;
//!    - [`ProviderError::is_retryable`] and retries left: wait (exponential
//!      backoff with jitter, and never less than `Retry-After`) and retry
//!      the same target — unless `Retry-After` is longer than the route's
//!      `max_backoff`, or the target has just entered its cooldown: then
//!      move on;
//!    - otherwise the next target.
//!
//! Every attempt and skip is recorded in order ([`RouteOutcome::attempts`],
//! [`RouteOutcome::trace`]), and every attempt that ran updates the
//! target's health ([`HealthStore`]) unless its failure says nothing about
//! the target ([`counts_for_health`]).
//!
//! **Stopping** ([`Router::run_until`]): a cancelled token ends the request
//! wherever it is. Before a send nothing is sent or billed; a running
//! attempt ends as `stopped` through the same settling as any other (its
//! text kept, its cost at the price of the target that was running, its
//! hold released, its health untouched); a backoff wait ends at once.
//! Nothing falls back after a stop.
//!
//! Storage calls (the gate, health writes) block on SQLite, so they run on
//! tokio's blocking threads: a database held by another process delays
//! only this request's bookkeeping, never other streams. A gate or health
//! store that only queues its writes (the batch writer behind the Local
//! API) is called directly, and its reservations are awaited, not
//! blocked on.
//!
//! The router knows nothing of where keys, health and budgets are kept:
//! it takes them as [`KeyResolver`], [`HealthStore`] and [`BudgetGate`]
//! trait objects, so the CLI, the app and the tests plug in their own.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::attempt::Accumulator;
use crate::catalog::Catalog;
use crate::chat::{AttemptCost, AttemptResult, ChatRequest};
use crate::client::{Client, Timed};
use crate::error::{ErrorKind, ProviderError};
use crate::hooks::{
    AttemptOutcome, AttemptRecord, BudgetDenied, BudgetGate, CooldownState, HealthSample,
    HealthStore, RequestTrace, Reservation, SettledCost, SpendContext, sum_costs,
};
use crate::keys::Secret;
use crate::provider::ProviderConfig;
use crate::runner::{AttemptEvent, run_attempt_until};

use super::config::{RetrySettings, Route};
use super::health::{Phase, after_failure, after_success, claim_probe, counts_for_health, phase};
use super::policy::Policy;
use super::strategy::{Plan, PlanEntry, RequestShape, plan};

/// The kind of a skip in the trace.
pub const SKIP_POLICY: &str = "policy";
/// The kind of a skip in the trace.
pub const SKIP_BUDGET: &str = "budget";
/// The kind of a skip in the trace.
pub const SKIP_COOLDOWN: &str = "cooldown";
/// The kind of a skip in the trace: the target cannot take the request's
/// attachments.
pub const SKIP_UNSUPPORTED: &str = "unsupported";

/// Where the router gets each provider's key. Called on the async task for
/// every target it runs: implementations must not block (look keys up
/// beforehand, as [`StaticKeys`] does).
pub trait KeyResolver: Send + Sync + Debug {
    /// The key for `provider`: `Ok(None)` when it needs none (local
    /// servers), `Err` (kind `auth`) when one is needed and missing.
    fn key(&self, provider: &ProviderConfig) -> Result<Option<Secret>, ProviderError>;

    /// `provider` refused `refused`, the key [`KeyResolver::key`] gave:
    /// another key to send the request with, if the keychain now has one
    /// (a key held in memory may have been replaced by another process).
    /// May block; the router calls it off the async threads.
    fn replacement(&self, provider: &ProviderConfig, refused: Option<&Secret>) -> Option<Secret> {
        let _ = (provider, refused);
        None
    }
}

/// Keys looked up in advance, by provider id. A provider not in the map
/// gets no key when it is local and an `auth` error otherwise.
#[derive(Debug, Default, Clone)]
pub struct StaticKeys {
    keys: HashMap<String, Result<Option<Secret>, ProviderError>>,
}

impl StaticKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set what `provider_id`'s lookup gave.
    pub fn insert(&mut self, provider_id: &str, key: Result<Option<Secret>, ProviderError>) {
        self.keys.insert(provider_id.to_owned(), key);
    }

    /// With `provider_id`'s key.
    pub fn with(mut self, provider_id: &str, key: Secret) -> Self {
        self.insert(provider_id, Ok(Some(key)));
        self
    }
}

impl KeyResolver for StaticKeys {
    fn key(&self, provider: &ProviderConfig) -> Result<Option<Secret>, ProviderError> {
        match self.keys.get(&provider.id) {
            Some(found) => found.clone(),
            None if provider.local => Ok(None),
            None => Err(ProviderError::new(
                ErrorKind::Auth,
                &provider.id,
                format!("no API key for provider \"{}\"", provider.id),
            )),
        }
    }
}

/// One attempt (or skip) of a routed request.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteAttempt {
    /// `provider:model`.
    pub target: String,
    /// What storage keeps: timings, outcome, usage, cost.
    pub record: AttemptRecord,
    /// The full error of an attempt that ran and failed (status,
    /// `Retry-After`, raw body).
    pub error: Option<ProviderError>,
    /// 0 for the first try at this target, 1 for the first retry, ...
    pub retry: u32,
    /// How long the router waited before it (backoff, `Retry-After`).
    pub waited: Duration,
    /// Sent to a target that was cooling down or half-open.
    pub probe: bool,
    /// For a `budget` skip: the budget that refused it.
    pub refused_by: Option<String>,
}

impl RouteAttempt {
    /// The kind of a skip (`policy`, `budget`, `cooldown`), when skipped.
    pub fn skip_kind(&self) -> Option<&str> {
        match &self.record.outcome {
            AttemptOutcome::Skipped { kind, .. } => Some(kind),
            AttemptOutcome::Ok | AttemptOutcome::Stopped | AttemptOutcome::Error { .. } => None,
        }
    }
}

/// What a routed request came to.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteOutcome {
    /// The route's name (`None` for a single target named directly).
    pub route: Option<String>,
    /// The attempt that answered; else the one that ended the request (the
    /// last that ran); else, when no target could run, a `policy` or
    /// `budget` error naming every reason.
    pub result: AttemptResult,
    /// Every attempt and skip, in order.
    pub attempts: Vec<RouteAttempt>,
    /// When an attempt failed after its first token: the next target of the
    /// plan, for the user to retry on explicitly.
    pub next_target: Option<String>,
}

impl RouteOutcome {
    /// True when a target answered completely.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// True when it was stopped on purpose.
    pub fn is_stopped(&self) -> bool {
        self.result.is_stopped()
    }

    /// What the request cost: the sum of its billed attempts (retries and
    /// failed attempts that were billed included), as the ledger has it;
    /// `None` when no attempt had a known cost.
    pub fn cost(&self) -> Option<AttemptCost> {
        let records: Vec<AttemptRecord> = self.attempts.iter().map(|a| a.record.clone()).collect();
        sum_costs(&records).or(if self.attempts.is_empty() {
            self.result.cost
        } else {
            None
        })
    }

    /// The trace, as history stores it.
    pub fn trace(&self) -> RequestTrace {
        RequestTrace {
            route: self.route.clone(),
            attempts: self.attempts.iter().map(|a| a.record.clone()).collect(),
        }
    }
}

/// What happens while a request runs, for live display.
#[derive(Debug)]
pub enum RouteEvent<'a> {
    /// An attempt is being sent.
    Sending {
        /// `provider:model`.
        target: &'a str,
        /// Retry number (0: first try).
        retry: u32,
        /// To a target cooling down or half-open.
        probe: bool,
    },
    /// A stream event of the current attempt.
    Stream {
        /// `provider:model`.
        target: &'a str,
        /// The event.
        event: &'a Timed,
    },
    /// A retryable failure: the same target is tried again after `wait`.
    Waiting {
        /// `provider:model`.
        target: &'a str,
        /// What failed.
        error: &'a ProviderError,
        /// How long until the retry.
        wait: Duration,
    },
    /// An attempt ended or a target was skipped.
    Finished(&'a RouteAttempt),
}

/// Runs requests through routes. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Router {
    client: Client,
    catalog: Arc<Catalog>,
    policy: Policy,
    health: Arc<dyn HealthStore>,
    budget: Arc<dyn BudgetGate>,
    keys: Arc<dyn KeyResolver>,
    jitter: Arc<AtomicU64>,
}

/// How one target's turn ended.
enum TargetEnd {
    /// A complete answer.
    Answered(AttemptResult),
    /// Failed after its first token: no fallback.
    Committed(AttemptResult),
    /// Failed in a way no other target would fix.
    Stop(AttemptResult),
    /// Try the next target (with the last result, when one ran).
    Next(Option<AttemptResult>),
}

/// The current wall-clock time in Unix milliseconds.
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms_f64(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The backoff before retry number `retry` (1 for the first retry):
/// `backoff × 2^(retry-1)`, capped at `max_backoff`, before jitter.
pub fn backoff_delay(settings: &RetrySettings, retry: u32) -> Duration {
    let factor = 1u32
        .checked_shl(retry.saturating_sub(1).min(31))
        .unwrap_or(u32::MAX);
    settings
        .backoff
        .checked_mul(factor)
        .unwrap_or(settings.max_backoff)
        .min(settings.max_backoff)
}

impl Router {
    /// A router over `catalog` (prices), with no policy.
    pub fn new(
        catalog: Catalog,
        health: Arc<dyn HealthStore>,
        budget: Arc<dyn BudgetGate>,
        keys: Arc<dyn KeyResolver>,
    ) -> Self {
        Self {
            client: Client::new(),
            catalog: Arc::new(catalog),
            policy: Policy::default(),
            health,
            budget,
            keys,
            jitter: Arc::new(AtomicU64::new(RandomState::new().hash_one(now_unix_ms()))),
        }
    }

    /// With `policy`.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// With `budget` as its gate instead (a judge's router defers its
    /// settles to write them with its verdict: `store::DeferredSettles`).
    pub fn with_budget(mut self, budget: Arc<dyn BudgetGate>) -> Self {
        self.budget = budget;
        self
    }

    /// With a shared HTTP client.
    pub fn with_client(mut self, client: Client) -> Self {
        self.client = client;
        self
    }

    /// The health store.
    pub fn health(&self) -> &Arc<dyn HealthStore> {
        &self.health
    }

    /// How `route` would order its targets for `request` right now, with
    /// each target's refusal of the request's attachments, if any.
    pub fn plan(&self, route: &Route, request: &ChatRequest) -> Plan {
        let mut plan = plan(
            route,
            RequestShape::of(request),
            &self.catalog,
            &self.policy,
            self.health.as_ref(),
            now_unix_ms(),
        );
        let attachments: Vec<&crate::attach::Attachment> = request.attachments().collect();
        if !attachments.is_empty() {
            for e in &mut plan.entries {
                e.unsupported = attachment_refusal(&self.catalog, &e.target, &attachments, request);
            }
        }
        plan
    }

    /// Equal jitter: a uniformly random duration in `[d/2, d]`, so retries
    /// of concurrent requests spread out but never wait much less than the
    /// backoff.
    fn jittered(&self, d: Duration) -> Duration {
        // splitmix64 over a shared counter: no dependency, good enough to
        // spread retries.
        let mut z = self
            .jitter
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        d / 2 + (d / 2).mul_f64(unit)
    }

    /// Run `request` through `route`. Never fails: a failure is the
    /// outcome's `result.error`, with every attempt in `attempts`.
    /// `spend` carries the tags and conversation for budgets; its provider,
    /// model and route are filled in per attempt.
    pub async fn run(
        &self,
        route: &Route,
        request: &ChatRequest,
        spend: &SpendContext,
        on_event: impl FnMut(RouteEvent<'_>),
    ) -> RouteOutcome {
        self.run_until(route, request, spend, &CancellationToken::new(), on_event)
            .await
    }

    /// [`Router::run`] that stops when `cancel` is cancelled (see the
    /// module docs): the outcome is then `stopped`
    /// ([`RouteOutcome::is_stopped`]), with the text that arrived, and
    /// every attempt settled with the gate before it returns.
    pub async fn run_until(
        &self,
        route: &Route,
        request: &ChatRequest,
        spend: &SpendContext,
        cancel: &CancellationToken,
        mut on_event: impl FnMut(RouteEvent<'_>),
    ) -> RouteOutcome {
        let plan = self.plan(route, request);
        let mut attempts: Vec<RouteAttempt> = Vec::new();
        let mut last_ran: Option<AttemptResult> = None;
        let mut deferred: Vec<usize> = Vec::new();

        let finish = |result: AttemptResult,
                      attempts: Vec<RouteAttempt>,
                      next_target: Option<String>| RouteOutcome {
            route: route.name.clone(),
            result,
            attempts,
            next_target,
        };

        for (i, entry) in plan.entries.iter().enumerate() {
            if cancel.is_cancelled() {
                return finish(stopped_before(entry), attempts, None);
            }
            if let Some(violation) = &entry.policy {
                self.skip(
                    entry,
                    SKIP_POLICY,
                    violation.to_string(),
                    None,
                    &mut attempts,
                    &mut on_event,
                );
                continue;
            }
            if let Some(refusal) = &entry.unsupported {
                self.skip(
                    entry,
                    SKIP_UNSUPPORTED,
                    refusal.reason.clone(),
                    None,
                    &mut attempts,
                    &mut on_event,
                );
                continue;
            }
            if !route.is_explicit() {
                let state = self
                    .health
                    .cooldown(&entry.target.provider.id, &entry.target.model);
                if let Phase::CoolingDown { remaining } = phase(&state, now_unix_ms()) {
                    let reason = format!(
                        "cooling down for {:.1} s more after {} failures in a row; tried only if nothing else answers",
                        remaining.as_secs_f64(),
                        state.consecutive_failures
                    );
                    self.skip(
                        entry,
                        SKIP_COOLDOWN,
                        reason,
                        None,
                        &mut attempts,
                        &mut on_event,
                    );
                    deferred.push(i);
                    continue;
                }
            }
            match self
                .run_target(
                    route,
                    entry,
                    request,
                    spend,
                    false,
                    cancel,
                    &mut attempts,
                    &mut on_event,
                )
                .await
            {
                TargetEnd::Answered(r) | TargetEnd::Stop(r) => return finish(r, attempts, None),
                TargetEnd::Committed(r) => {
                    let next = self.next_target(&plan, i);
                    return finish(r, attempts, next);
                }
                TargetEnd::Next(r) => last_ran = r.or(last_ran),
            }
        }

        // Nothing answered: the cooling target whose cooldown ends first
        // gets one probe, as a last resort.
        let soonest = deferred.into_iter().min_by_key(|&i| {
            let t = &plan.entries[i].target;
            self.health
                .cooldown(&t.provider.id, &t.model)
                .until_unix_ms
                .unwrap_or(i64::MIN)
        });
        if let Some(i) = soonest {
            let entry = &plan.entries[i];
            if cancel.is_cancelled() {
                return finish(stopped_before(entry), attempts, None);
            }
            match self
                .run_target(
                    route,
                    entry,
                    request,
                    spend,
                    true,
                    cancel,
                    &mut attempts,
                    &mut on_event,
                )
                .await
            {
                TargetEnd::Answered(r) | TargetEnd::Stop(r) => return finish(r, attempts, None),
                TargetEnd::Committed(r) => {
                    let next = self.next_target(&plan, i);
                    return finish(r, attempts, next);
                }
                TargetEnd::Next(r) => last_ran = r.or(last_ran),
            }
        }

        let result = match last_ran {
            Some(r) => r,
            None => nothing_ran(route, &plan, &attempts),
        };
        finish(result, attempts, None)
    }

    /// The first target after plan position `i` that policy allows and
    /// that is not cooling down.
    fn next_target(&self, plan: &Plan, i: usize) -> Option<String> {
        let now = now_unix_ms();
        plan.entries.get(i + 1..)?.iter().find_map(|e| {
            let state = self.health.cooldown(&e.target.provider.id, &e.target.model);
            (e.policy.is_none()
                && e.unsupported.is_none()
                && !matches!(phase(&state, now), Phase::CoolingDown { .. }))
            .then(|| e.target.label())
        })
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "builds one record from the skip's parts"
    )]
    fn skip(
        &self,
        entry: &PlanEntry,
        kind: &str,
        reason: String,
        refused_by: Option<String>,
        attempts: &mut Vec<RouteAttempt>,
        on_event: &mut impl FnMut(RouteEvent<'_>),
    ) {
        let attempt = RouteAttempt {
            target: entry.target.label(),
            record: AttemptRecord {
                provider: entry.target.provider.id.clone(),
                model: entry.target.model.clone(),
                started_unix_ms: now_unix_ms(),
                ttft_ms: None,
                thinking_ms: None,
                total_ms: 0.0,
                outcome: AttemptOutcome::Skipped {
                    kind: kind.to_owned(),
                    reason,
                },
                usage: crate::chat::Usage::default(),
                cost: None,
            },
            error: None,
            retry: 0,
            waited: Duration::ZERO,
            probe: false,
            refused_by,
        };
        on_event(RouteEvent::Finished(&attempt));
        attempts.push(attempt);
    }

    /// Hold the most this attempt can cost: queued with a gate that can
    /// answer later, else on a blocking thread.
    /// A refusal gives the reason and the budget that refused.
    async fn reserve(
        &self,
        ctx: &SpendContext,
        entry: &PlanEntry,
    ) -> Result<Reservation, (String, Option<String>)> {
        let decided = match self.budget.reserve_queued(ctx, entry.reserve) {
            Some(pending) => pending
                .await
                .map_err(|_| "the budget check failed: the ledger writer stopped".to_owned()),
            None => {
                let (gate, ctx, estimate) = (Arc::clone(&self.budget), ctx.clone(), entry.reserve);
                tokio::task::spawn_blocking(move || gate.reserve(&ctx, estimate))
                    .await
                    .map_err(|e| format!("the budget check failed: {e}"))
            }
        };
        match decided {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(denied)) => Err((denied_reason(&denied, entry), Some(denied.budget))),
            Err(e) => Err((e, None)),
        }
    }

    /// Release a hold and record what the attempt cost (on a blocking
    /// thread unless the gate only queues the write).
    async fn settle(&self, reservation: Reservation, actual: Option<SettledCost>) {
        if self.budget.queues_writes() {
            self.budget.settle(reservation, actual);
            return;
        }
        let gate = Arc::clone(&self.budget);
        let _ = tokio::task::spawn_blocking(move || gate.settle(reservation, actual)).await;
    }

    /// Replace a target's cooldown state (on a blocking thread unless the
    /// store only queues the write).
    async fn set_cooldown(&self, provider: &str, model: &str, state: CooldownState) {
        if self.health.queues_writes() {
            self.health.set_cooldown(provider, model, state);
            return;
        }
        let (health, provider, model) = (
            Arc::clone(&self.health),
            provider.to_owned(),
            model.to_owned(),
        );
        let _ = tokio::task::spawn_blocking(move || health.set_cooldown(&provider, &model, state))
            .await;
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one private step of `run`, which owns every argument"
    )]
    async fn run_target(
        &self,
        route: &Route,
        entry: &PlanEntry,
        request: &ChatRequest,
        spend: &SpendContext,
        last_resort: bool,
        cancel: &CancellationToken,
        attempts: &mut Vec<RouteAttempt>,
        on_event: &mut impl FnMut(RouteEvent<'_>),
    ) -> TargetEnd {
        let target = &entry.target;
        let (pid, model) = (target.provider.id.as_str(), target.model.as_str());
        let label = target.label();
        let mut req = request.clone();
        req.model = target.model.clone();
        let p = &mut req.params;
        p.temperature = p.temperature.or(target.params.temperature);
        p.top_p = p.top_p.or(target.params.top_p);
        p.max_tokens = p.max_tokens.or(target.params.max_tokens);

        let mut key = match self.keys.key(&target.provider) {
            Ok(k) => k,
            Err(e) => {
                // Nothing was sent: the target's health is not in question.
                let mut acc = Accumulator::new(pid, model);
                acc.fail(e);
                let result = acc.finish(
                    Duration::ZERO,
                    entry.price.as_ref(),
                    req.estimated_input_tokens(entry.target.provider.kind),
                );
                self.push_ran(
                    &label,
                    &result,
                    now_unix_ms(),
                    0,
                    Duration::ZERO,
                    false,
                    attempts,
                    on_event,
                );
                return if result
                    .error
                    .as_ref()
                    .is_some_and(ProviderError::allows_fallback)
                {
                    TargetEnd::Next(Some(result))
                } else {
                    TargetEnd::Stop(result)
                };
            }
        };
        let ctx = SpendContext {
            provider: pid.to_owned(),
            model: model.to_owned(),
            route: route.name.clone(),
            ..spend.clone()
        };
        let mut waited = Duration::ZERO;
        let mut last: Option<AttemptResult> = None;
        // Once per target, a refused key may be replaced by a newer one
        // from the keychain: that attempt is not one of its retries.
        let mut rekeyed = false;
        let mut retry = 0;
        while retry <= target.retries + u32::from(rekeyed) {
            if cancel.is_cancelled() {
                return TargetEnd::Stop(stopped_before(entry));
            }
            let reservation = match self.reserve(&ctx, entry).await {
                Ok(r) => r,
                Err((reason, budget)) => {
                    self.skip(entry, SKIP_BUDGET, reason, budget, attempts, on_event);
                    return TargetEnd::Next(last);
                }
            };
            if cancel.is_cancelled() {
                // Stopped while the hold was being taken: nothing was sent.
                self.settle(reservation, None).await;
                return TargetEnd::Stop(stopped_before(entry));
            }
            let before = self.health.cooldown(pid, model);
            let start_phase = phase(&before, now_unix_ms());
            let probe = last_resort || !matches!(start_phase, Phase::Closed);
            if start_phase == Phase::HalfOpen {
                self.set_cooldown(
                    pid,
                    model,
                    claim_probe(before, now_unix_ms(), target.timeouts.first_token),
                )
                .await;
            }
            on_event(RouteEvent::Sending {
                target: &label,
                retry,
                probe,
            });
            let started = now_unix_ms();
            // At most one checkpoint write in flight; one that comes while
            // a write runs waits for it (the newest replacing an older one)
            // and is written as soon as it ends. Dropping it instead lost
            // text under load: the write at the send (no text yet) was slow,
            // the next checkpoint, the first with text, was skipped, and a
            // kill before the one after left an answer saved empty.
            let checkpoints = Arc::new(CheckpointSlot::default());
            let mut checkpoint: Option<tokio::task::JoinHandle<()>> = None;
            let result = run_attempt_until(
                &self.client,
                &target.provider,
                key.as_ref(),
                &req,
                entry.price.as_ref(),
                target.timeouts,
                cancel,
                |event| match event {
                    AttemptEvent::Stream(event) => on_event(RouteEvent::Stream {
                        target: &label,
                        event,
                    }),
                    AttemptEvent::Checkpoint(progress) => {
                        if self.budget.queues_writes() {
                            self.budget.checkpoint(&reservation, progress);
                        } else if checkpoints.offer(progress) {
                            let gate = Arc::clone(&self.budget);
                            let (held, slot) = (reservation.clone(), Arc::clone(&checkpoints));
                            checkpoint = Some(tokio::task::spawn_blocking(move || {
                                while let Some(progress) = slot.next() {
                                    gate.checkpoint(&held, &progress);
                                }
                            }));
                        }
                    }
                },
            )
            .await;
            if let Some(pending) = checkpoint {
                let _ = pending.await;
            }
            self.settle(reservation, SettledCost::of(&result)).await;
            let ended = now_unix_ms();

            let Some(err) = result.error.clone() else {
                self.record_health(pid, model, &result, ended, Some(after_success()))
                    .await;
                self.push_ran(
                    &label, &result, started, retry, waited, probe, attempts, on_event,
                );
                return TargetEnd::Answered(result);
            };

            // Decide before recording, so a Retry-After that will not be
            // waited for can hold the target in its cooldown state.
            // Reasoning shown to the user commits as much as text does.
            let committed = result.timing.first_token.is_some();
            if !committed
                && !rekeyed
                && err.kind == ErrorKind::Auth
                && err.status.is_some()
                && let Some(newer) = self.newer_key(&target.provider, key.as_ref()).await
            {
                // The key was out of date, not the target: its health is
                // not in question.
                if start_phase == Phase::HalfOpen {
                    self.set_cooldown(pid, model, before).await;
                }
                self.push_ran(
                    &label, &result, started, retry, waited, probe, attempts, on_event,
                );
                key = Some(newer);
                rekeyed = true;
                retry += 1;
                last = Some(result);
                continue;
            }
            let mut retry_wait = None;
            let mut hold_until = None;
            if !committed && err.allows_fallback() && err.is_retryable() {
                match err.retry_after {
                    Some(ra) if ra > route.retry.max_backoff => {
                        hold_until = Some(
                            ended.saturating_add(i64::try_from(ra.as_millis()).unwrap_or(i64::MAX)),
                        );
                    }
                    ra if retry < target.retries + u32::from(rekeyed) => {
                        let backoff = self.jittered(backoff_delay(&route.retry, retry + 1));
                        retry_wait = Some(ra.map_or(backoff, |ra| backoff.max(ra)));
                    }
                    _ => {}
                }
            }
            let counts = counts_for_health(err.kind);
            if counts {
                let cooled = after_failure(before, ended, &route.cooldown, hold_until);
                self.record_health(pid, model, &result, ended, Some(cooled))
                    .await;
            } else if start_phase == Phase::HalfOpen {
                // The probe proved nothing either way: release it.
                self.set_cooldown(pid, model, before).await;
            }
            self.push_ran(
                &label, &result, started, retry, waited, probe, attempts, on_event,
            );

            if err.kind == ErrorKind::Stopped {
                return TargetEnd::Stop(result);
            }
            if committed {
                return TargetEnd::Committed(result);
            }
            if !err.allows_fallback() {
                return TargetEnd::Stop(result);
            }
            let now_cooling = matches!(
                phase(&self.health.cooldown(pid, model), now_unix_ms()),
                Phase::CoolingDown { .. }
            );
            match retry_wait {
                // A target that has just entered its cooldown is left alone.
                Some(wait) if !(counts && now_cooling && !route.is_explicit()) => {
                    on_event(RouteEvent::Waiting {
                        target: &label,
                        error: &err,
                        wait,
                    });
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = cancel.cancelled() => return TargetEnd::Stop(stopped_before(entry)),
                    }
                    waited = wait;
                    last = Some(result);
                }
                _ => return TargetEnd::Next(Some(result)),
            }
            retry += 1;
        }
        TargetEnd::Next(last)
    }

    /// [`KeyResolver::replacement`] on a blocking thread.
    async fn newer_key(
        &self,
        provider: &ProviderConfig,
        refused: Option<&Secret>,
    ) -> Option<Secret> {
        let (keys, provider, refused) =
            (Arc::clone(&self.keys), provider.clone(), refused.cloned());
        tokio::task::spawn_blocking(move || keys.replacement(&provider, refused.as_ref()))
            .await
            .ok()
            .flatten()
    }

    /// Record the attempt in the target's health and set its cooldown, on
    /// a blocking thread.
    async fn record_health(
        &self,
        provider: &str,
        model: &str,
        r: &AttemptResult,
        ended: i64,
        cooldown: Option<CooldownState>,
    ) {
        let sample = HealthSample {
            at_unix_ms: ended,
            ok: r.is_ok(),
            error_kind: r.error.as_ref().map(|e| e.kind),
            ttft_ms: r.timing.ttft.map(ms_f64),
            tokens_per_s: r.timing.tokens_per_s,
        };
        if self.health.queues_writes() {
            self.health.record(provider, model, &sample);
            if let Some(state) = cooldown {
                self.health.set_cooldown(provider, model, state);
            }
            return;
        }
        let (health, provider, model) = (
            Arc::clone(&self.health),
            provider.to_owned(),
            model.to_owned(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            health.record(&provider, &model, &sample);
            if let Some(state) = cooldown {
                health.set_cooldown(&provider, &model, state);
            }
        })
        .await;
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "builds one record from the attempt's parts"
    )]
    fn push_ran(
        &self,
        label: &str,
        r: &AttemptResult,
        started: i64,
        retry: u32,
        waited: Duration,
        probe: bool,
        attempts: &mut Vec<RouteAttempt>,
        on_event: &mut impl FnMut(RouteEvent<'_>),
    ) {
        let attempt = RouteAttempt {
            target: label.to_owned(),
            record: AttemptRecord {
                provider: r.provider.clone(),
                model: r.model.clone(),
                started_unix_ms: started,
                ttft_ms: r.timing.ttft.map(ms_f64),
                thinking_ms: r.timing.thinking.map(ms_f64),
                total_ms: ms_f64(r.timing.total),
                outcome: match &r.error {
                    None => AttemptOutcome::Ok,
                    Some(e) if e.kind == ErrorKind::Stopped => AttemptOutcome::Stopped,
                    Some(e) => AttemptOutcome::Error {
                        kind: e.kind,
                        message: e.message.clone(),
                    },
                },
                usage: r.usage,
                cost: r.cost,
            },
            error: r.error.clone(),
            retry,
            waited,
            probe,
            refused_by: None,
        };
        on_event(RouteEvent::Finished(&attempt));
        attempts.push(attempt);
    }
}

/// The result of a request stopped before `entry` was sent: nothing was
/// sent, nothing is billed.
fn stopped_before(entry: &PlanEntry) -> AttemptResult {
    let mut acc = Accumulator::new(&entry.target.provider.id, &entry.target.model);
    acc.stop();
    acc.finish(Duration::ZERO, None, 0)
}

/// Why a budget refused `entry`, with the fix when its price is unknown.
fn denied_reason(denied: &BudgetDenied, entry: &PlanEntry) -> String {
    if entry.reserve.is_some() {
        return denied.to_string();
    }
    format!(
        "{denied}; add input_usd_per_mtok and output_usd_per_mtok for model \"{}\" under \
         [[providers.{}.models]] in config.toml",
        entry.target.model, entry.target.provider.id
    )
}

/// Why `target` cannot be sent `request`'s attachments, if it cannot:
/// what its model takes (the catalog) and what its provider accepts.
pub fn attachment_refusal(
    catalog: &Catalog,
    target: &super::RouteTarget,
    attachments: &[&crate::attach::Attachment],
    request: &ChatRequest,
) -> Option<crate::attach::Refusal> {
    crate::attach::check(
        &target.provider.id,
        &target.model,
        catalog.accepts(&target.provider, &target.model).as_ref(),
        &target.provider.limits,
        attachments,
        request.text_bytes(),
    )
}

/// The result when no target ran: every one was skipped. A budget refusal
/// is what the user can most easily change, so it names the kind; then a
/// target that cannot take the attachments.
fn nothing_ran(route: &Route, plan: &Plan, attempts: &[RouteAttempt]) -> AttemptResult {
    let skipped = |kind: &str| attempts.iter().any(|a| a.skip_kind() == Some(kind));
    let kind = if skipped(SKIP_BUDGET) {
        ErrorKind::Budget
    } else if skipped(SKIP_UNSUPPORTED) {
        ErrorKind::Unsupported
    } else {
        ErrorKind::Policy
    };
    let reasons: Vec<String> = attempts
        .iter()
        .filter_map(|a| match &a.record.outcome {
            AttemptOutcome::Skipped { reason, .. } => Some(format!("{}: {reason}", a.target)),
            AttemptOutcome::Ok | AttemptOutcome::Stopped | AttemptOutcome::Error { .. } => None,
        })
        .collect();
    let (provider, model) = plan
        .entries
        .first()
        .map(|e| (e.target.provider.id.clone(), e.target.model.clone()))
        .unwrap_or_default();
    let message = if route.is_explicit() {
        reasons.join("; ")
    } else {
        format!(
            "no target of {} could run: {}",
            route.label(),
            reasons.join("; ")
        )
    };
    let mut acc = Accumulator::new(&provider, &model);
    acc.fail(ProviderError::new(kind, &provider, message));
    acc.finish(Duration::ZERO, None, 0)
}

/// The checkpoint waiting to be written while another one is, and
/// whether a writer is running (it takes checkpoints until none is left).
#[derive(Debug, Default)]
struct CheckpointSlot(std::sync::Mutex<(Option<AttemptResult>, bool)>);

impl CheckpointSlot {
    /// Keep `progress` to be written; true when no writer is running, so
    /// the caller must start one.
    fn offer(&self, progress: &AttemptResult) -> bool {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.0 = Some(progress.clone());
        !std::mem::replace(&mut slot.1, true)
    }

    /// The writer's next checkpoint; `None` (and the writer is done) when
    /// none is waiting.
    fn next(&self) -> Option<AttemptResult> {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = slot.0.take();
        slot.1 = next.is_some();
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_offered_during_a_write_waits_for_it_and_only_the_newest_is_written() {
        let progress = |text: &str| {
            let mut acc = Accumulator::new("p", "m");
            acc.push(&Timed {
                at: Duration::ZERO,
                event: crate::chat::StreamEvent::TextDelta(text.into()),
            });
            acc.progress(Duration::ZERO, None, 1)
        };
        let slot = CheckpointSlot::default();
        // The first starts a writer, which takes it.
        assert!(slot.offer(&progress("")));
        assert_eq!(slot.next().map(|p| p.text), Some(String::new()));
        // While it writes, two more come: no second writer, and the newer
        // replaces the older.
        assert!(!slot.offer(&progress("000 ")));
        assert!(!slot.offer(&progress("000 001 ")));
        assert_eq!(slot.next().map(|p| p.text), Some("000 001 ".into()));
        // Nothing left: the writer ends, and the next offer starts one.
        assert!(slot.next().is_none());
        assert!(slot.offer(&progress("000 001 002 ")));
        assert_eq!(slot.next().map(|p| p.text), Some("000 001 002 ".into()));
        assert!(slot.next().is_none());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_in_the_upper_half() {
        let s = RetrySettings {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        let delays: Vec<u128> = (1..=4).map(|r| backoff_delay(&s, r).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 350, 350]);
        assert_eq!(backoff_delay(&s, 1000), Duration::from_millis(350));
        let router = Router::new(
            Catalog::new(),
            Arc::new(crate::hooks::MemoryHealth::default()),
            Arc::new(crate::hooks::NoBudgets::default()),
            Arc::new(StaticKeys::new()),
        );
        let d = Duration::from_millis(200);
        let samples: Vec<Duration> = (0..200).map(|_| router.jittered(d)).collect();
        assert!(samples.iter().all(|j| *j >= d / 2 && *j <= d));
        let distinct: std::collections::HashSet<_> = samples.iter().collect();
        assert!(distinct.len() > 100, "jitter varies");
    }

    #[test]
    fn static_keys_refuse_hosted_providers_without_a_key() {
        use crate::provider::ProviderKind;
        let keys = StaticKeys::new().with("a", Secret::new("k"));
        let hosted =
            ProviderConfig::custom("b", ProviderKind::OpenAi, "https://api.example.com/v1");
        let local = ProviderConfig::custom("c", ProviderKind::OpenAi, "http://127.0.0.1:1/v1");
        let a = ProviderConfig::custom("a", ProviderKind::OpenAi, "https://api.example.com/v1");
        assert_eq!(keys.key(&a).unwrap().unwrap().expose(), "k");
        assert_eq!(keys.key(&hosted).unwrap_err().kind, ErrorKind::Auth);
        assert!(keys.key(&local).unwrap().is_none());
    }
}
