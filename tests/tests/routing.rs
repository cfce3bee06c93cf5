//! The router against mock providers over real loopback HTTP, with faults
//! injected: each test asserts the exact sequence of attempts a user would
//! see in the trace (target, outcome, error kind or skip kind), and what the
//! mock received.
//!
//! Targets are `a:a-model`, `b:b-model`, ... on one mock server, speaking
//! different wire protocols, so fallbacks cross protocols. Backoffs,
//! cooldowns and timers are milliseconds so the suite stays fast.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_engine::hooks::{
    AttemptOutcome, BudgetDenied, BudgetGate, CooldownState, HealthStore, MemoryHealth, NoBudgets,
    Reservation, SettledCost, SpendContext,
};
use switchboard_engine::routing::{
    CooldownSettings, DirectRetries, Policy, PolicyViolation, RetrySettings, Route, RouteOutcome,
    RouteTarget, Router, StaticKeys, Strategy, Weights, now_unix_ms,
};
use switchboard_engine::{
    Catalog, ChatRequest, Config, Cost, ErrorKind, Price, ProviderConfig, ProviderKind, Secret,
    Store, StreamEvent, Timeouts,
};
use switchboard_mock::{Fault, MockServer, Protocol, Scenario};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn kind_of(p: Protocol) -> ProviderKind {
    match p {
        Protocol::OpenAi => ProviderKind::OpenAi,
        Protocol::Anthropic => ProviderKind::Anthropic,
        Protocol::Gemini => ProviderKind::Gemini,
    }
}

/// Provider `id` on the mock, speaking `protocol`; its model is `<id>-model`.
fn target(server: &MockServer, id: &str, protocol: Protocol) -> RouteTarget {
    let provider = ProviderConfig::custom(id, kind_of(protocol), &server.base_url(protocol));
    let mut t = RouteTarget::new(provider, format!("{id}-model"));
    t.retries = 0;
    t
}

/// a: OpenAI, b: Anthropic, c: Gemini, d: OpenAI, e: Anthropic.
fn targets(server: &MockServer, ids: &[&str]) -> Vec<RouteTarget> {
    ids.iter()
        .map(|id| {
            let protocol = match *id {
                "a" | "d" => Protocol::OpenAi,
                "b" | "e" => Protocol::Anthropic,
                _ => Protocol::Gemini,
            };
            target(server, id, protocol)
        })
        .collect()
}

fn route(strategy: Strategy, targets: Vec<RouteTarget>) -> Route {
    Route {
        name: Some("r".into()),
        strategy,
        targets,
        retry: RetrySettings {
            backoff: Duration::from_millis(4),
            max_backoff: Duration::from_secs(2),
        },
        cooldown: CooldownSettings {
            after_failures: 3,
            base: Duration::from_millis(300),
            max: Duration::from_secs(5),
        },
        weights: Weights::default(),
    }
}

fn router(health: Arc<dyn HealthStore>, budget: Arc<dyn BudgetGate>) -> Router {
    Router::new(Catalog::new(), health, budget, Arc::new(StaticKeys::new()))
}

fn memory_router() -> (Router, Arc<MemoryHealth>) {
    let health = Arc::new(MemoryHealth::default());
    (
        router(health.clone(), Arc::new(NoBudgets::default())),
        health,
    )
}

/// A catalog with config prices: `(provider, model, input, output)` per Mtok.
fn priced(prices: &[(&str, &str, &str)]) -> Catalog {
    let mut text = String::new();
    for (id, input, output) in prices {
        text.push_str(&format!(
            "[providers.{id}]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n[[providers.{id}.models]]\nid = \"{id}-model\"\ninput_usd_per_mtok = \"{input}\"\noutput_usd_per_mtok = \"{output}\"\n"
        ));
    }
    Config::parse(std::path::Path::new("/t/config.toml"), &text)
        .unwrap()
        .catalog()
}

fn request() -> ChatRequest {
    ChatRequest::new("", "Say hello")
}

async fn run(router: &Router, route: &Route) -> RouteOutcome {
    router
        .run(route, &request(), &SpendContext::default(), |_| {})
        .await
}

/// The trace as `target outcome`: `a:a-model ok`, `a:a-model error
/// overloaded`, `b:b-model skipped budget`.
fn seq(o: &RouteOutcome) -> Vec<String> {
    o.attempts
        .iter()
        .map(|a| match &a.record.outcome {
            AttemptOutcome::Ok => format!("{} ok", a.target),
            AttemptOutcome::Stopped => format!("{} stopped", a.target),
            AttemptOutcome::Error { kind, .. } => format!("{} error {kind}", a.target),
            AttemptOutcome::Skipped { kind, .. } => format!("{} skipped {kind}", a.target),
        })
        .collect()
}

fn skip_reason(o: &RouteOutcome, i: usize) -> String {
    match &o.attempts[i].record.outcome {
        AttemptOutcome::Skipped { reason, .. } => reason.clone(),
        other => panic!("attempt {i} was not skipped: {other:?}"),
    }
}

/// Arrival times of the generation requests naming `model`.
fn arrivals(server: &MockServer, model: &str) -> Vec<Instant> {
    server
        .requests()
        .into_iter()
        .filter(|r| {
            r.path.contains(model)
                || r.body
                    .as_ref()
                    .and_then(|b| b.get("model"))
                    .and_then(|m| m.as_str())
                    == Some(model)
        })
        .map(|r| r.at)
        .collect()
}

// ---------------------------------------------------------------------------
// Retries, Retry-After, fallbacks
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_then_the_same_target_answers() {
    let server = Arc::new(MockServer::start().await.unwrap());
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::Status {
            code: 429,
            retry_after_s: Some(1),
        }),
    );
    server.script("b-model", Scenario::default());
    let (router, _) = memory_router();
    let mut ts = targets(&server, &["a", "b"]);
    ts[0].retries = 1;
    let r = route(Strategy::Ordered, ts);
    let task = tokio::spawn(async move { run(&router, &r).await });
    // The 429 arrives at once; the mock is healthy again before the retry.
    while server.hits("a-model") == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.script(
        "a-model",
        Scenario::default().with_text(&["second ", "try"]),
    );
    let o = task.await.unwrap();

    assert_eq!(
        seq(&o),
        vec!["a:a-model error rate_limited", "a:a-model ok"]
    );
    assert_eq!(o.result.text, "second try");
    let first = o.attempts[0].error.as_ref().unwrap();
    assert_eq!(first.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(o.attempts[1].retry, 1);
    assert!(o.attempts[1].waited >= Duration::from_secs(1));
    let at = arrivals(&server, "a-model");
    assert_eq!(at.len(), 2);
    let gap = at[1] - at[0];
    assert!(
        gap >= Duration::from_secs(1),
        "the retry came {gap:?} after the 429, before its Retry-After"
    );
    assert!(
        gap < Duration::from_millis(1500),
        "waited far too long: {gap:?}"
    );
    assert_eq!(
        server.hits("b-model"),
        0,
        "no fallback when the retry works"
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_moves_on_and_holds_the_target() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::Status {
            code: 429,
            retry_after_s: Some(30),
        }),
    );
    server.script("b-model", Scenario::default());
    let (router, health) = memory_router();
    let mut ts = targets(&server, &["a", "b"]);
    ts[0].retries = 3;
    let r = route(Strategy::Ordered, ts);
    let started = Instant::now();
    let o = run(&router, &r).await;
    assert_eq!(
        seq(&o),
        vec!["a:a-model error rate_limited", "b:b-model ok"]
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "did not wait 30 s"
    );
    assert_eq!(
        server.hits("a-model"),
        1,
        "no retry against a 30 s Retry-After"
    );
    // The provider asked for 30 s: the next request skips it.
    let until = health.cooldown("a", "a-model").until_unix_ms.unwrap();
    assert!(until - now_unix_ms() > 28_000);
    let o = run(&router, &r).await;
    assert_eq!(seq(&o), vec!["a:a-model skipped cooldown", "b:b-model ok"]);
}

#[tokio::test]
async fn three_overloaded_answers_fall_back_to_the_second_target() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::Status {
            code: 503,
            retry_after_s: None,
        }),
    );
    server.script("b-model", Scenario::default().with_text(&["from ", "b"]));
    let (router, health) = memory_router();
    let mut ts = targets(&server, &["a", "b"]);
    ts[0].retries = 2;
    let r = route(Strategy::Ordered, ts);
    let o = run(&router, &r).await;
    assert_eq!(
        seq(&o),
        vec![
            "a:a-model error overloaded",
            "a:a-model error overloaded",
            "a:a-model error overloaded",
            "b:b-model ok",
        ]
    );
    assert!(o.is_ok());
    assert_eq!(
        (o.result.provider.as_str(), o.result.text.as_str()),
        ("b", "from b")
    );
    assert_eq!(o.attempts[0].error.as_ref().unwrap().status, Some(503));
    assert_eq!(
        o.attempts.iter().map(|a| a.retry).collect::<Vec<_>>(),
        vec![0, 1, 2, 0]
    );
    // Exponential backoff with equal jitter: [b/2, b], then [b, 2b].
    let (w1, w2) = (o.attempts[1].waited, o.attempts[2].waited);
    assert!(
        (Duration::from_millis(2)..=Duration::from_millis(4)).contains(&w1),
        "{w1:?}"
    );
    assert!(
        (Duration::from_millis(4)..=Duration::from_millis(8)).contains(&w2),
        "{w2:?}"
    );
    assert_eq!((server.hits("a-model"), server.hits("b-model")), (3, 1));
    // Three failures in a row: a is cooling down.
    let cd = health.cooldown("a", "a-model");
    assert_eq!(cd.consecutive_failures, 3);
    assert!(cd.until_unix_ms.unwrap() > now_unix_ms());
    assert_eq!(o.next_target, None);
    // The trace for storage carries the same attempts in the same order.
    let trace = o.trace();
    assert_eq!(trace.route.as_deref(), Some("r"));
    assert_eq!(trace.attempts.len(), 4);
    assert_eq!(trace.attempts[3].outcome, AttemptOutcome::Ok);
    assert!(trace.attempts[3].ttft_ms.is_some());
    assert_eq!(
        trace.attempts[3].cost.map(|c| c.total),
        Some(Cost::ZERO),
        "a server on this machine with no price in the catalog costs nothing"
    );
}

#[tokio::test]
async fn an_auth_error_falls_back_at_once_without_a_retry() {
    let server = MockServer::start().await.unwrap();
    server.script("a-model", Scenario::default().with_key("the-right-key"));
    server.script("b-model", Scenario::default());
    let (router, _) = memory_router();
    let mut ts = targets(&server, &["a", "b"]);
    ts[0].retries = 3;
    let o = run(&router, &route(Strategy::Ordered, ts)).await;
    assert_eq!(seq(&o), vec!["a:a-model error auth", "b:b-model ok"]);
    assert_eq!(o.attempts[1].waited, Duration::ZERO);
    assert_eq!(server.hits("a-model"), 1);
}

#[tokio::test]
async fn a_bad_request_ends_the_route_and_does_not_count_against_health() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::Status {
            code: 400,
            retry_after_s: None,
        }),
    );
    server.script("b-model", Scenario::default());
    let (router, health) = memory_router();
    let mut ts = targets(&server, &["a", "b"]);
    ts[0].retries = 3;
    let o = run(&router, &route(Strategy::Ordered, ts)).await;
    assert_eq!(seq(&o), vec!["a:a-model error bad_request"]);
    assert_eq!(o.result.error.as_ref().unwrap().kind, ErrorKind::BadRequest);
    assert_eq!(
        server.hits("b-model"),
        0,
        "the same request would fail anywhere"
    );
    assert!(health.recent("a", "a-model", 10).is_empty());
    assert_eq!(health.cooldown("a", "a-model"), CooldownState::default());
}

#[tokio::test]
async fn a_context_too_long_error_falls_back_without_hurting_health() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::ContextTooLong),
    );
    server.script("b-model", Scenario::default());
    let (router, health) = memory_router();
    let o = run(
        &router,
        &route(Strategy::Ordered, targets(&server, &["a", "b"])),
    )
    .await;
    assert_eq!(
        seq(&o),
        vec!["a:a-model error context_too_long", "b:b-model ok"]
    );
    assert!(health.recent("a", "a-model", 10).is_empty());
    assert_eq!(health.recent("b", "b-model", 10).len(), 1);
}

#[tokio::test]
async fn failures_before_the_first_token_fall_back() {
    let server = MockServer::start().await.unwrap();
    // A mid-stream error event before any token (OpenRouter's HTTP 200 error).
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::ErrorEventAfter(0)),
    );
    // No first token within the first-token timeout.
    server.script(
        "b-model",
        Scenario::default().with_ttft(Duration::from_millis(500)),
    );
    server.script("c-model", Scenario::default().with_text(&["c answers"]));
    let (router, _) = memory_router();
    let mut ts = targets(&server, &["a", "b", "c"]);
    ts[1].timeouts = Timeouts {
        first_token: Duration::from_millis(60),
        ..Timeouts::default()
    };
    let o = run(&router, &route(Strategy::Ordered, ts)).await;
    let s = seq(&o);
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(s[0].starts_with("a:a-model error "), "{s:?}");
    assert_eq!(s[1..], ["b:b-model error timeout", "c:c-model ok"]);
    assert_eq!(o.result.text, "c answers");
    assert!(
        o.attempts[1].record.total_ms < 400.0,
        "{}",
        o.attempts[1].record.total_ms
    );
}

// ---------------------------------------------------------------------------
// Commit on first token
// ---------------------------------------------------------------------------

#[tokio::test]
async fn no_fallback_and_no_retry_ever_happens_after_the_first_token() {
    let faults = [
        (Fault::CutAfter(1), ErrorKind::Interrupted),
        (Fault::StallAfter(1), ErrorKind::Timeout),
        (Fault::GarbageAfter(1), ErrorKind::Malformed),
        (Fault::ErrorEventAfter(1), ErrorKind::Overloaded),
    ];
    for protocol in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini] {
        for (fault, kind) in &faults {
            let server = MockServer::start().await.unwrap();
            server.script(
                "a-model",
                Scenario::default()
                    .with_text(&["Hello", " world", "!"])
                    .with_fault(fault.clone()),
            );
            server.script("b-model", Scenario::default());
            let (router, _) = memory_router();
            let mut a = target(&server, "a", protocol);
            a.retries = 3;
            a.timeouts.idle = Duration::from_millis(80);
            let r = route(
                Strategy::Ordered,
                vec![a, targets(&server, &["b"]).remove(0)],
            );
            let mut shown = String::new();
            let o = router
                .run(&r, &request(), &SpendContext::default(), |ev| {
                    if let switchboard_engine::routing::RouteEvent::Stream { event, .. } = ev
                        && let StreamEvent::TextDelta(t) = &event.event
                    {
                        shown.push_str(t);
                    }
                })
                .await;
            let case = format!("{protocol:?} {fault:?}");
            assert_eq!(o.attempts.len(), 1, "{case}: {:?}", seq(&o));
            let err = o
                .result
                .error
                .as_ref()
                .unwrap_or_else(|| panic!("{case}: ok"));
            // Overloaded is retryable and allows fallback before a token:
            // only the commit rule keeps it from either.
            assert_eq!(err.kind, *kind, "{case}");
            assert_eq!(o.result.text, "Hello", "{case}: the partial answer is kept");
            assert_eq!(shown, "Hello", "{case}: only the committed target streamed");
            assert_eq!(o.next_target.as_deref(), Some("b:b-model"), "{case}");
            assert_eq!(server.hits("a-model"), 1, "{case}: no retry after a token");
            assert_eq!(server.hits("b-model"), 0, "{case}: no silent fallback");
        }
    }
}

// ---------------------------------------------------------------------------
// Budgets and policy
// ---------------------------------------------------------------------------

/// A budget gate that refuses one provider and logs every call.
#[derive(Debug)]
struct RefusingGate {
    refuse: String,
    log: Mutex<Vec<String>>,
    next: AtomicU64,
}

impl RefusingGate {
    fn new(refuse: &str) -> Self {
        Self {
            refuse: refuse.into(),
            log: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
        }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl BudgetGate for RefusingGate {
    fn reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied> {
        let estimate = estimate.unwrap_or(Cost::ZERO);
        if ctx.provider == self.refuse {
            self.log
                .lock()
                .unwrap()
                .push(format!("refuse {}", ctx.provider));
            return Err(BudgetDenied {
                budget: "monthly".into(),
                message: "spent $9.99 + held $0.00 + this $0.02 > limit $10.00".into(),
            });
        }
        self.log.lock().unwrap().push(format!(
            "reserve {}:{} {} route={:?}",
            ctx.provider,
            ctx.model,
            estimate.nanos(),
            ctx.route
        ));
        Ok(Reservation {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            amount: estimate,
            context: ctx.clone(),
        })
    }

    fn settle(&self, reservation: Reservation, actual: Option<SettledCost>) {
        self.log.lock().unwrap().push(format!(
            "settle {} {:?}",
            reservation.context.provider,
            actual.map(|a| (a.cost.map(Cost::nanos), a.input_tokens, a.output_tokens))
        ));
    }
}

/// A gate on a busy disk: its first checkpoint write takes `slow`. It logs
/// the text of every checkpoint written, and the settle.
#[derive(Debug)]
struct SlowFirstCheckpoint {
    slow: Duration,
    log: Mutex<Vec<String>>,
}

impl BudgetGate for SlowFirstCheckpoint {
    fn reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied> {
        Ok(Reservation {
            id: 1,
            amount: estimate.unwrap_or(Cost::ZERO),
            context: ctx.clone(),
        })
    }

    fn checkpoint(&self, _reservation: &Reservation, progress: &switchboard_engine::AttemptResult) {
        if self.log.lock().unwrap().is_empty() {
            std::thread::sleep(self.slow);
        }
        self.log
            .lock()
            .unwrap()
            .push(format!("checkpoint {:?}", progress.text));
    }

    fn settle(&self, _reservation: Reservation, _actual: Option<SettledCost>) {
        self.log.lock().unwrap().push("settle".into());
    }
}

// The race behind an answer saved without text after `kill -9`: the
// checkpoint at the send (no text yet) is slow to write, and the
// checkpoints that come meanwhile, the first ones with text, must be
// written after it, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_that_come_during_a_slow_write_are_written_after_it() {
    let server = MockServer::start().await.unwrap();
    let pieces: Vec<String> = (0..40).map(|i| format!("{i:03} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    // About a second of text, all of it during the slow first write.
    server.script(
        "a-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(Duration::from_millis(25)),
    );
    let gate = Arc::new(SlowFirstCheckpoint {
        slow: Duration::from_secs(4),
        log: Mutex::new(Vec::new()),
    });
    let router = router(Arc::new(MemoryHealth::default()), gate.clone());
    let outcome = run(&router, &route(Strategy::Ordered, targets(&server, &["a"]))).await;
    assert_eq!(seq(&outcome), ["a:a-model ok"]);
    let log = gate.log.lock().unwrap().clone();
    assert_eq!(
        log.first().map(String::as_str),
        Some("checkpoint \"\""),
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("settle"), "{log:?}");
    // What streamed meanwhile was saved as soon as the slow write ended
    // (the newest of it, in one write), before the settle.
    assert!(log.len() >= 3, "{log:?}");
    assert!(log[1].starts_with("checkpoint \"000 001 "), "{log:?}");
}

#[tokio::test]
async fn budget_refusals_are_skipped_and_every_attempt_is_reserved_then_settled() {
    let server = MockServer::start().await.unwrap();
    for m in ["a-model", "c-model"] {
        server.script(m, Scenario::default());
    }
    server.script(
        "b-model",
        Scenario::default().with_fault(Fault::Status {
            code: 503,
            retry_after_s: None,
        }),
    );
    let gate = Arc::new(RefusingGate::new("a"));
    let catalog = priced(&[("a", "1", "1"), ("b", "2", "8"), ("c", "3", "15")]);
    let router = Router::new(
        catalog,
        Arc::new(MemoryHealth::default()),
        gate.clone(),
        Arc::new(StaticKeys::new()),
    );
    let mut ts = targets(&server, &["a", "b", "c"]);
    ts[1].retries = 1;
    let r = route(Strategy::Ordered, ts);
    let mut req = request();
    req.params.max_tokens = Some(200);
    let o = router.run(&r, &req, &SpendContext::default(), |_| {}).await;
    assert_eq!(
        seq(&o),
        vec![
            "a:a-model skipped budget",
            "b:b-model error overloaded",
            "b:b-model error overloaded",
            "c:c-model ok",
        ]
    );
    assert!(
        skip_reason(&o, 0).contains("budget \"monthly\": spent $9.99"),
        "{}",
        skip_reason(&o, 0)
    );
    assert_eq!(server.hits("a-model"), 0);
    // What is held is the most the request can cost: "Say hello" is 9
    // bytes, so at most 9 tokens plus 8 for the chat template, and 200
    // output tokens (max_tokens).
    // b: 17 × $2/M + 200 × $8/M = $0.001634; c: 17 × $3/M + 200 × $15/M = $0.003051.
    // The mock reports 12 input and 2 output tokens: c cost 12 × $3/M + 2 × $15/M.
    assert_eq!(o.result.cost.unwrap().total.nanos(), 66_000);
    assert_eq!(
        gate.log(),
        vec![
            "refuse a",
            "reserve b:b-model 1634000 route=Some(\"r\")",
            "settle b None",
            "reserve b:b-model 1634000 route=Some(\"r\")",
            "settle b None",
            "reserve c:c-model 3051000 route=Some(\"r\")",
            "settle c Some((Some(66000), Some(12), Some(2)))",
        ],
        "every attempt, retries and fallbacks included, is reserved and settled"
    );

    // When the budget refuses the only target, the request fails as `budget`.
    let only_a = route(Strategy::Ordered, targets(&server, &["a"]));
    let o = run(&router, &only_a).await;
    assert_eq!(seq(&o), vec!["a:a-model skipped budget"]);
    assert_eq!(o.result.error.as_ref().unwrap().kind, ErrorKind::Budget);
}

#[tokio::test]
async fn policy_skips_name_the_rule_and_nothing_is_sent() {
    let server = MockServer::start().await.unwrap();
    for m in ["a-model", "b-model", "c-model", "d-model", "e-model"] {
        server.script(m, Scenario::default());
    }
    let catalog = priced(&[("b", "1", "1"), ("c", "1", "10"), ("e", "0.5", "4")]);
    let mut ts = targets(&server, &["a", "b", "c", "d", "e"]);
    ts[1].provider.local = false; // b: a hosted provider, as far as policy knows
    let policy = Policy {
        allowed_providers: Some(vec!["b".into(), "c".into(), "d".into(), "e".into()]),
        local_only: true,
        max_usd_per_mtok: Some(Price::from_usd_per_mtok("5").unwrap()),
    };
    let router = Router::new(
        catalog,
        Arc::new(MemoryHealth::default()),
        Arc::new(NoBudgets::default()),
        Arc::new(StaticKeys::new().with("b", Secret::new("kb"))),
    )
    .with_policy(policy.clone());
    let o = run(&router, &route(Strategy::Ordered, ts.clone())).await;
    // d has no price, but it is a local server: it costs nothing.
    assert_eq!(
        seq(&o),
        vec![
            "a:a-model skipped policy",
            "b:b-model skipped policy",
            "c:c-model skipped policy",
            "d:d-model ok",
        ]
    );
    let expect = [
        PolicyViolation::NotAllowed {
            provider: "a".into(),
            allowed: policy.allowed_providers.clone().unwrap(),
        }
        .to_string(),
        PolicyViolation::NotLocal {
            provider: "b".into(),
            base_url: ts[1].provider.base_url.clone(),
        }
        .to_string(),
        "output price $10/Mtok is above policy.max_usd_per_mtok ($5/Mtok)".into(),
    ];
    for (i, reason) in expect.iter().enumerate() {
        assert_eq!(&skip_reason(&o, i), reason);
    }
    for m in ["a-model", "b-model", "c-model"] {
        assert_eq!(server.hits(m), 0, "{m} was sent despite the policy");
    }
    // A hosted model with no known price is refused by the price cap.
    let mut hosted = targets(&server, &["d"]);
    hosted[0].provider.local = false;
    let capped = Router::new(
        Catalog::new(),
        Arc::new(MemoryHealth::default()),
        Arc::new(NoBudgets::default()),
        Arc::new(StaticKeys::new().with("d", Secret::new("kd"))),
    )
    .with_policy(Policy {
        local_only: false,
        ..policy.clone()
    });
    let o = run(&capped, &route(Strategy::Ordered, hosted)).await;
    assert_eq!(seq(&o), vec!["d:d-model skipped policy"]);
    assert_eq!(
        skip_reason(&o, 0),
        "the price of d:d-model is unknown and policy.max_usd_per_mtok is $5/Mtok"
    );
    assert_eq!(server.hits("d-model"), 1, "only the local run reached d");

    // Nothing allowed: the request fails as `policy`, with every reason.
    let o = run(&router, &route(Strategy::Ordered, ts[..2].to_vec())).await;
    let err = o.result.error.unwrap();
    assert_eq!(err.kind, ErrorKind::Policy);
    assert!(
        err.message
            .starts_with("no target of @r could run: a:a-model: provider \"a\""),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("b:b-model: policy.local_only"),
        "{}",
        err.message
    );
}

// ---------------------------------------------------------------------------
// Health and cooldown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn cooldown_is_entered_skipped_then_left_after_a_successful_probe() {
    let server = MockServer::start().await.unwrap();
    let failing = Scenario::default().with_fault(Fault::Status {
        code: 503,
        retry_after_s: None,
    });
    server.script("a-model", failing);
    server.script("b-model", Scenario::default());
    let (router, health) = memory_router();
    let mut r = route(Strategy::Ordered, targets(&server, &["a", "b"]));
    r.cooldown.after_failures = 2;
    // Failure 1: still closed.
    let o = run(&router, &r).await;
    assert_eq!(seq(&o), vec!["a:a-model error overloaded", "b:b-model ok"]);
    assert_eq!(health.cooldown("a", "a-model").until_unix_ms, None);
    // Failure 2: cooling down for the base period.
    let o = run(&router, &r).await;
    assert_eq!(seq(&o), vec!["a:a-model error overloaded", "b:b-model ok"]);
    let cd = health.cooldown("a", "a-model");
    assert_eq!((cd.consecutive_failures, cd.level), (2, 1));
    // Skipped while cooling down, with the reason.
    let o = run(&router, &r).await;
    assert_eq!(seq(&o), vec!["a:a-model skipped cooldown", "b:b-model ok"]);
    assert!(
        skip_reason(&o, 0).contains("after 2 failures in a row"),
        "{}",
        skip_reason(&o, 0)
    );
    assert_eq!(server.hits("a-model"), 2);
    // After the cooldown one probe goes through; its success clears it.
    server.script("a-model", Scenario::default().with_text(&["back"]));
    tokio::time::sleep(Duration::from_millis(320)).await;
    let o = run(&router, &r).await;
    assert_eq!(seq(&o), vec!["a:a-model ok"]);
    assert!(
        o.attempts[0].probe,
        "the first attempt after a cooldown is a probe"
    );
    assert_eq!(health.cooldown("a", "a-model"), CooldownState::default());
    let o = run(&router, &r).await;
    assert_eq!(seq(&o), vec!["a:a-model ok"]);
    assert!(!o.attempts[0].probe);
    // Success rate over the window: 2 failures, 2 successes.
    let stats = switchboard_engine::routing::HealthStats::of(health.as_ref(), "a", "a-model");
    assert_eq!((stats.samples, stats.success_rate), (4, Some(0.5)));
}

#[tokio::test]
async fn a_failed_probe_doubles_the_cooldown() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::Status {
            code: 503,
            retry_after_s: None,
        }),
    );
    server.script("b-model", Scenario::default());
    let (router, health) = memory_router();
    let mut r = route(Strategy::Ordered, targets(&server, &["a", "b"]));
    r.cooldown.after_failures = 1;
    r.cooldown.base = Duration::from_millis(150);
    run(&router, &r).await;
    let first = health.cooldown("a", "a-model");
    assert_eq!(first.level, 1);
    tokio::time::sleep(Duration::from_millis(170)).await;
    let o = run(&router, &r).await;
    assert_eq!(seq(&o), vec!["a:a-model error overloaded", "b:b-model ok"]);
    assert!(o.attempts[0].probe);
    let second = health.cooldown("a", "a-model");
    assert_eq!(second.level, 2);
    let failed_at = o.attempts[0].record.started_unix_ms + o.attempts[0].record.total_ms as i64;
    let period = second.until_unix_ms.unwrap() - failed_at;
    assert!(
        (295..=305).contains(&period),
        "the second cooldown should last 2 × 150 ms, not {period} ms"
    );
}

#[tokio::test]
async fn when_every_target_is_cooling_down_the_one_ending_first_is_probed() {
    let server = MockServer::start().await.unwrap();
    server.script("a-model", Scenario::default());
    server.script("b-model", Scenario::default().with_text(&["b probe"]));
    let (router, health) = memory_router();
    let now = now_unix_ms();
    let cooling = |ms: i64| CooldownState {
        consecutive_failures: 3,
        until_unix_ms: Some(now + ms),
        level: 1,
    };
    health.set_cooldown("a", "a-model", cooling(10_000));
    health.set_cooldown("b", "b-model", cooling(5_000));
    let o = run(
        &router,
        &route(Strategy::Ordered, targets(&server, &["a", "b"])),
    )
    .await;
    assert_eq!(
        seq(&o),
        vec![
            "a:a-model skipped cooldown",
            "b:b-model skipped cooldown",
            "b:b-model ok",
        ]
    );
    assert!(o.attempts[2].probe);
    assert_eq!(o.result.text, "b probe");
    assert_eq!(server.hits("a-model"), 0);
    assert_eq!(health.cooldown("b", "b-model"), CooldownState::default());
}

#[tokio::test]
async fn a_cooldown_survives_a_new_process_through_the_health_file() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::Status {
            code: 503,
            retry_after_s: None,
        }),
    );
    server.script("b-model", Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.sqlite3");
    let mut ts = targets(&server, &["a", "b"]);
    ts[0].retries = 2;
    let mut r = route(Strategy::Ordered, ts);
    r.cooldown.base = Duration::from_secs(30);
    {
        let first = router(
            Store::open_at(&path).unwrap().health(),
            Arc::new(NoBudgets::default()),
        );
        let o = run(&first, &r).await;
        assert_eq!(o.attempts.len(), 4, "{:?}", seq(&o));
    }
    // A new router over a new store reading the same file: a new process.
    let second = router(
        Store::open_at(&path).unwrap().health(),
        Arc::new(NoBudgets::default()),
    );
    let o = run(&second, &r).await;
    assert_eq!(seq(&o), vec!["a:a-model skipped cooldown", "b:b-model ok"]);
    assert_eq!(server.hits("a-model"), 3);
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn fastest_follows_measured_history_and_cheapest_follows_prices() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_ttft(Duration::from_millis(120)),
    );
    server.script(
        "b-model",
        Scenario::default().with_ttft(Duration::from_millis(5)),
    );
    server.script("c-model", Scenario::default());
    let health = Arc::new(MemoryHealth::default());
    let catalog = priced(&[("a", "0.1", "0.2"), ("b", "5", "20")]);
    let router = Router::new(
        catalog,
        health.clone(),
        Arc::new(NoBudgets::default()),
        Arc::new(StaticKeys::new()),
    );
    // Seed the history: each target asked for directly, twice.
    for t in targets(&server, &["a", "b"]) {
        for _ in 0..2 {
            let o = run(&router, &Route::single(t.clone())).await;
            assert!(o.is_ok());
        }
    }
    let fastest = route(Strategy::Fastest, targets(&server, &["c", "a", "b"]));
    let plan = router.plan(&fastest, &request());
    let order: Vec<String> = plan.entries.iter().map(|e| e.target.label()).collect();
    assert_eq!(order, vec!["b:b-model", "a:a-model", "c:c-model"]);
    let (b, a) = (&plan.entries[0], &plan.entries[1]);
    assert_eq!(b.stats.samples, 2);
    assert!(
        (5.0..100.0).contains(&b.stats.ttft_p50_ms.unwrap()),
        "{:?}",
        b.stats
    );
    assert!(
        (120.0..300.0).contains(&a.stats.ttft_p50_ms.unwrap()),
        "{:?}",
        a.stats
    );
    assert!(b.why.contains("TTFT p50"), "{}", b.why);
    assert!(plan.entries[2].why.starts_with("no measurements yet"));
    let o = run(&router, &fastest).await;
    assert_eq!(seq(&o), vec!["b:b-model ok"]);

    let mut unpriced = targets(&server, &["c", "b", "a"]);
    // c: hosted and unpriced (a local one would cost nothing, and go first).
    unpriced[0].provider.local = false;
    let cheapest = route(Strategy::Cheapest, unpriced);
    let o = run(&router, &cheapest).await;
    assert_eq!(seq(&o), vec!["a:a-model ok"]);
    let order: Vec<String> = router
        .plan(&cheapest, &request())
        .entries
        .iter()
        .map(|e| e.target.label())
        .collect();
    assert_eq!(order, vec!["a:a-model", "b:b-model", "c:c-model"]);
}

// ---------------------------------------------------------------------------
// Targets named directly: retried like the official SDKs, every retry hint
// honoured, nonsense hints harmless
// ---------------------------------------------------------------------------

/// A target named directly with the default retries (2), or with fast
/// backoffs so a test measures the provider's hint and not the backoff.
fn direct(t: RouteTarget, fast: bool) -> Route {
    if fast {
        let mut d = DirectRetries::default();
        d.retry.backoff = Duration::from_millis(4);
        d.retry.max_backoff = Duration::from_secs(5);
        Route::direct(t, &d)
    } else {
        Route::single(t)
    }
}

/// `Retry-After` as an IMF-fixdate, `secs` seconds from now.
fn http_date_in(secs: i64) -> String {
    use switchboard_engine::store::time::civil_from_days;
    let at = now_unix_ms() / 1000 + secs;
    let (days, rem) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][m as usize - 1];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// OpenAI's 429 body; the hint is in the headers.
const OPENAI_429: &str = r#"{"error":{"message":"Rate limit reached for gpt-x in organization org-1 on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

fn raw(code: u16, headers: &[(&str, &str)], body: &str) -> Fault {
    Fault::Raw {
        code,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_target_retries_a_429_after_its_retry_after() {
    let server = MockServer::start().await.unwrap();
    // The 429 clears after one request.
    server.script(
        "a-model",
        Scenario::default()
            .with_text(&["answered ", "after the wait"])
            .with_fault(Fault::Status {
                code: 429,
                retry_after_s: Some(1),
            })
            .with_fault_times(1),
    );
    let (router, _) = memory_router();
    let t = target(&server, "a", Protocol::OpenAi);
    let started = Instant::now();
    let o = run(&router, &direct(t, false)).await;
    let took = started.elapsed();
    assert_eq!(
        seq(&o),
        vec!["a:a-model error rate_limited", "a:a-model ok"]
    );
    assert_eq!(o.result.text, "answered after the wait");
    assert!(took >= Duration::from_secs(1), "answered after {took:?}");
    let at = arrivals(&server, "a-model");
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_secs(1),
        "{:?}",
        at[1] - at[0]
    );
    assert!(o.attempts[1].waited >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_target_gives_up_after_two_retries() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::Status {
            code: 503,
            retry_after_s: None,
        }),
    );
    let (router, _) = memory_router();
    let o = run(
        &router,
        &direct(target(&server, "a", Protocol::OpenAi), true),
    )
    .await;
    assert_eq!(
        seq(&o),
        vec![
            "a:a-model error overloaded",
            "a:a-model error overloaded",
            "a:a-model error overloaded"
        ]
    );
    assert_eq!(server.hits("a-model"), 3, "one try and two retries");
    assert_eq!(o.result.error.as_ref().unwrap().kind, ErrorKind::Overloaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_hints_as_a_date_in_milliseconds_and_in_a_gemini_body_are_honoured() {
    let gemini_429 = r#"{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
    ]
  }
}"#;
    // An HTTP date has one-second resolution: a date 3 s ahead of now,
    // truncated to the second, is between 2 and 3 s away when it is made,
    // so even a slow machine that takes most of a second to answer leaves a
    // wait of at least 1 s, and never more than 3 s.
    let date = http_date_in(3);
    // (target, protocol, the 429, the shortest and the longest wait it asks for)
    let cases: Vec<(&str, Protocol, Fault, Duration, Duration)> = vec![
        (
            "a",
            Protocol::OpenAi,
            raw(429, &[("retry-after", &date)], OPENAI_429),
            Duration::from_secs(1),
            Duration::from_secs(3),
        ),
        // retry-after-ms wins over a longer Retry-After.
        (
            "d",
            Protocol::OpenAi,
            raw(
                429,
                &[("retry-after-ms", "700"), ("retry-after", "3")],
                OPENAI_429,
            ),
            Duration::from_millis(700),
            Duration::from_millis(700),
        ),
        (
            "c",
            Protocol::Gemini,
            raw(429, &[], gemini_429),
            Duration::from_secs(1),
            Duration::from_secs(1),
        ),
    ];
    for (id, protocol, fault, shortest, longest) in cases {
        let server = MockServer::start().await.unwrap();
        let model = format!("{id}-model");
        server.script(
            &model,
            Scenario::default().with_fault(fault).with_fault_times(1),
        );
        let (router, _) = memory_router();
        let o = run(&router, &direct(target(&server, id, protocol), true)).await;
        assert_eq!(
            seq(&o),
            vec![
                format!("{id}:{model} error rate_limited"),
                format!("{id}:{model} ok")
            ],
            "{id}"
        );
        let asked = o.attempts[0].error.as_ref().unwrap().retry_after.unwrap();
        assert!(
            asked >= shortest && asked <= longest,
            "{id}: asked to wait {asked:?}, expected {shortest:?}..={longest:?}"
        );
        let at = arrivals(&server, &model);
        let gap = at[1] - at[0];
        assert!(
            gap >= shortest,
            "{id}: retried after {gap:?}, asked for at least {shortest:?}"
        );
        assert!(gap < longest + Duration::from_millis(1500), "{id}: {gap:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_retry_hints_never_panic_and_never_stall() {
    let far = "Fri, 31 Dec 9999 23:59:59 GMT";
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(raw(429, &[("retry-after", far)], OPENAI_429)),
    );
    let (router, _) = memory_router();
    let started = Instant::now();
    let o = run(
        &router,
        &direct(target(&server, "a", Protocol::OpenAi), true),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for year 9999"
    );
    assert_eq!(
        server.hits("a-model"),
        1,
        "a wait beyond the cap is not retried"
    );
    let e = o.result.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(
        e.retry_after,
        Some(Duration::from_secs(86_400)),
        "capped at a day"
    );

    // Nonsense is no hint at all: the backoff applies and the retry comes.
    for nonsense in [
        "-5",
        "NaN",
        "soon",
        "1e999",
        "Fri, 31 Foo 2026 25:61:00 GMT",
    ] {
        let server = MockServer::start().await.unwrap();
        server.script(
            "a-model",
            Scenario::default()
                .with_fault(raw(
                    503,
                    &[("retry-after", nonsense), ("retry-after-ms", nonsense)],
                    "{}",
                ))
                .with_fault_times(1),
        );
        let o = run(
            &router,
            &direct(target(&server, "a", Protocol::OpenAi), true),
        )
        .await;
        assert_eq!(
            seq(&o),
            vec!["a:a-model error overloaded", "a:a-model ok"],
            "{nonsense}"
        );
        assert_eq!(
            o.attempts[0].error.as_ref().unwrap().retry_after,
            None,
            "{nonsense}"
        );
    }
}

// ---------------------------------------------------------------------------
// Errors that are the account's or the model's, not the request's
// ---------------------------------------------------------------------------

#[tokio::test]
async fn provider_specific_400s_fall_through_the_route_without_retries() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "b-model",
        Scenario::default().with_fault(raw(
            400,
            &[],
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#,
        )),
    );
    server.script(
        "c-model",
        Scenario::default().with_fault(raw(
            400,
            &[],
            r#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#,
        )),
    );
    server.script(
        "a-model",
        Scenario::default().with_fault(raw(
            400,
            &[],
            r#"{"error":{"message":"Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.","type":"invalid_request_error","param":"temperature","code":"unsupported_value"}}"#,
        )),
    );
    server.script("d-model", Scenario::default().with_text(&["from ", "d"]));
    let (router, health) = memory_router();
    let mut ts = targets(&server, &["b", "c", "a", "d"]);
    for t in &mut ts {
        t.retries = 2;
    }
    let o = run(&router, &route(Strategy::Ordered, ts)).await;
    assert_eq!(
        seq(&o),
        vec![
            "b:b-model error billing",
            "c:c-model error unavailable",
            "a:a-model error unsupported",
            "d:d-model ok",
        ]
    );
    assert_eq!(o.result.text, "from d");
    for m in ["a-model", "b-model", "c-model"] {
        assert_eq!(server.hits(m), 1, "{m} was not retried");
    }
    // An unsupported parameter says nothing about the target's health.
    assert!(health.recent("a", "a-model", 10).is_empty());
    assert_eq!(health.recent("b", "b-model", 10).len(), 1);
}

#[tokio::test]
async fn insufficient_quota_is_not_retried_but_falls_through() {
    let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(raw(429, &[("retry-after", "1")], quota)),
    );
    server.script("b-model", Scenario::default());
    let (router, _) = memory_router();
    let mut ts = targets(&server, &["a", "b"]);
    ts[0].retries = 2;
    let started = Instant::now();
    let o = run(&router, &route(Strategy::Ordered, ts.clone())).await;
    assert_eq!(seq(&o), vec!["a:a-model error billing", "b:b-model ok"]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no wait for a quota"
    );
    // Named directly: one request, no retry, the billing error.
    let o = run(&router, &direct(ts[0].clone(), false)).await;
    assert_eq!(seq(&o), vec!["a:a-model error billing"]);
    assert_eq!(server.hits("a-model"), 2, "one request per run");
}

#[tokio::test]
async fn a_plain_malformed_request_still_stops_the_route() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(raw(
            400,
            &[],
            r#"{"error":{"message":"'messages' must contain at least one message","type":"invalid_request_error","param":"messages","code":null}}"#,
        )),
    );
    server.script("b-model", Scenario::default());
    let (router, _) = memory_router();
    let o = run(
        &router,
        &route(Strategy::Ordered, targets(&server, &["a", "b"])),
    )
    .await;
    assert_eq!(seq(&o), vec!["a:a-model error bad_request"]);
    assert_eq!(server.hits("b-model"), 0);
}

// ---------------------------------------------------------------------------
// Disabled providers and keys in errors
// ---------------------------------------------------------------------------

/// Keys for every provider, counting how often each is asked for.
#[derive(Debug, Default)]
struct CountingKeys {
    asked: Mutex<Vec<String>>,
}

impl switchboard_engine::routing::KeyResolver for CountingKeys {
    fn key(
        &self,
        provider: &ProviderConfig,
    ) -> Result<Option<Secret>, switchboard_engine::ProviderError> {
        self.asked.lock().unwrap().push(provider.id.clone());
        Ok(Some(Secret::new(format!("key-of-{}", provider.id))))
    }
}

#[tokio::test]
async fn a_disabled_provider_is_skipped_and_never_called_nor_its_key_read() {
    let server = MockServer::start().await.unwrap();
    server.script("a-model", Scenario::default());
    server.script("b-model", Scenario::default().with_text(&["from ", "b"]));
    let keys = Arc::new(CountingKeys::default());
    let router = Router::new(
        Catalog::new(),
        Arc::new(MemoryHealth::default()),
        Arc::new(NoBudgets::default()),
        keys.clone(),
    );
    let mut ts = targets(&server, &["a", "b"]);
    ts[0].provider.enabled = false;
    let o = run(&router, &route(Strategy::Ordered, ts.clone())).await;
    assert_eq!(seq(&o), vec!["a:a-model skipped policy", "b:b-model ok"]);
    assert!(
        skip_reason(&o, 0).contains("disabled in config"),
        "{}",
        skip_reason(&o, 0)
    );
    // Named directly: refused with the same reason, nothing sent.
    let o = run(&router, &direct(ts[0].clone(), false)).await;
    let e = o.result.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Policy);
    assert!(e.message.contains("disabled in config"), "{}", e.message);
    assert_eq!(
        server.hits("a-model"),
        0,
        "the disabled provider got no request"
    );
    assert_eq!(
        *keys.asked.lock().unwrap(),
        vec!["b".to_owned()],
        "only b's key was read"
    );
    // Even a client handed the disabled provider directly refuses it.
    let refused = switchboard_engine::Client::new()
        .stream(&ts[0].provider, None, &ChatRequest::new("a-model", "hi"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Policy);
    assert_eq!(server.hits("a-model"), 0);
}

#[tokio::test]
async fn a_key_echoed_in_an_error_body_is_scrubbed_before_anyone_sees_it() {
    let key = "sk-live-echo-0123456789abcdef";
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::EchoHeaders { code: 502 }),
    );
    let router = Router::new(
        Catalog::new(),
        Arc::new(MemoryHealth::default()),
        Arc::new(NoBudgets::default()),
        Arc::new(StaticKeys::new().with("a", Secret::new(key))),
    );
    let mut t = target(&server, "a", Protocol::OpenAi);
    t.retries = 0;
    let o = run(&router, &route(Strategy::Ordered, vec![t])).await;
    // The proxy did echo it...
    let sent = server.requests();
    assert_eq!(
        sent[0].header("authorization"),
        Some(&*format!("Bearer {key}"))
    );
    // ...and no part of what the engine reports carries it.
    let e = o.result.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Overloaded);
    let raw = e.raw.as_deref().unwrap();
    assert!(raw.contains("upstream gateway error"), "{raw}");
    assert!(raw.contains("[redacted]"), "{raw}");
    for shown in [
        format!("{o:?}"),
        e.to_string(),
        raw.to_owned(),
        serde_json::to_string(&o.trace()).unwrap(),
    ] {
        assert!(!shown.contains(key), "the key leaked: {shown}");
        assert!(
            !shown.contains("0123456789abcdef"),
            "part of the key leaked: {shown}"
        );
    }
}

// ---------------------------------------------------------------------------
// Honest speed
// ---------------------------------------------------------------------------

#[tokio::test]
async fn fastest_does_not_rank_a_thinking_model_first_for_its_hidden_tokens() {
    let server = MockServer::start().await.unwrap();
    // a thinks for ~300 ms (reasoning streams at once, the answer after);
    // b answers after 100 ms.
    server.script(
        "a-model",
        Scenario::default()
            .with_reasoning(&["hmm", " let", " me", " think", " hard", " now", "."])
            .with_gap(Duration::from_millis(50)),
    );
    server.script(
        "b-model",
        Scenario::default().with_ttft(Duration::from_millis(100)),
    );
    let (router, health) = memory_router();
    for t in targets(&server, &["a", "b"]) {
        for _ in 0..2 {
            let o = run(&router, &direct(t.clone(), false)).await;
            assert!(o.is_ok());
        }
    }
    let a = &health.recent("a", "a-model", 1)[0];
    assert!(
        a.ttft_ms.unwrap() >= 300.0,
        "{a:?}: TTFT is to the first answer token"
    );
    let fastest = route(Strategy::Fastest, targets(&server, &["a", "b"]));
    let order: Vec<String> = router
        .plan(&fastest, &request())
        .entries
        .iter()
        .map(|e| e.target.label())
        .collect();
    assert_eq!(order, vec!["b:b-model", "a:a-model"]);
    let o = run(&router, &fastest).await;
    assert_eq!(seq(&o), vec!["b:b-model ok"]);
    // The trace keeps the thinking apart.
    let o = run(&router, &direct(targets(&server, &["a"])[0].clone(), false)).await;
    let thinking = o.attempts[0].record.thinking_ms.unwrap();
    assert!(thinking >= 300.0, "{thinking}");
}
