//! Routing: when a provider fails the user still gets an answer, and the
//! choice of provider follows cost and measured speed — OpenRouter's core,
//! done on the user's machine.
//!
//! The pieces, and why they are apart:
//! - [`config`]: `[routes.<name>]`, `[policy]` and `[retries]` (targets named
//!   directly) from `config.toml`, typed
//!   and checked with located errors. Kept out of [`Config`](crate::Config)
//!   so providers load without knowing about routing.
//! - [`policy`]: which targets may run at all ([`Policy`]).
//! - [`health`]: rolling statistics and the cooldown state machine, as pure
//!   functions over a [`HealthStore`](crate::hooks::HealthStore) (SQLite in
//!   the app and the CLI, in memory in tests).
//! - [`strategy`]: ordering a route's targets ([`plan`]) — pure, so the CLI's
//!   `routes show` prints exactly what a request would do.
//! - [`router`]: the [`Router`] that runs a request through a route:
//!   retries, backoff, `Retry-After`, timeouts, fallbacks, commit on first
//!   token, budget reservations and the trace; stopped at any point by a
//!   cancellation token ([`Router::run_until`]), still settling.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use switchboard_engine::hooks::{MemoryHealth, NoBudgets, SpendContext};
//! use switchboard_engine::routing::{RoutingConfig, Router, StaticKeys};
//! use switchboard_engine::{ChatRequest, Config, DataDir};
//!
//! let config = Config::load(&DataDir::resolve()?.config_file())?;
//! let routing = RoutingConfig::from_config(&config)?;
//! let route = routing.route("fast").ok_or("no route \"fast\"")?;
//! let router = Router::new(
//!     config.catalog(),
//!     Arc::new(MemoryHealth::default()),
//!     Arc::new(NoBudgets::default()),
//!     Arc::new(StaticKeys::new()),
//! )
//! .with_policy(routing.policy.clone());
//! let request = ChatRequest::new("", "Hello!");
//! let outcome = router.run(route, &request, &SpendContext::default(), |_| {}).await;
//! for attempt in &outcome.attempts {
//!     println!("{}: {:?}", attempt.target, attempt.record.outcome);
//! }
//! # Ok(()) }
//! ```

pub mod config;
pub mod health;
pub mod policy;
pub mod router;
pub mod strategy;

pub use config::{
    CooldownSettings, DirectRetries, RetrySettings, Route, RouteTarget, RoutingConfig, Strategy,
    TargetError, Weights,
};
pub use health::{HEALTH_WINDOW, HealthStats, Phase, counts_for_health};
pub use policy::{Policy, PolicyViolation};
pub use router::{
    KeyResolver, RouteAttempt, RouteEvent, RouteOutcome, Router, SKIP_UNSUPPORTED, StaticKeys,
    attachment_refusal, backoff_delay, now_unix_ms,
};
pub use strategy::{
    AttachmentTokens, EXPECTED_OUTPUT_TOKENS, Plan, PlanEntry, RequestShape,
    TEMPLATE_TOKENS_PER_MESSAGE, UNBOUNDED_OUTPUT_TOKENS, estimate_cost, plan, target_price,
};
