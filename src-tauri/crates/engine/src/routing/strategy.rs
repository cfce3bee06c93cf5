//! Ordering a route's targets for one request, and saying why.
//!
//! [`plan`] is a pure function of the route, the request's size, the
//! catalog's prices, the policy and the health history at one instant. The
//! router runs its order, and `switchboard-cli routes show` prints the very
//! same [`Plan`] — so what the CLI explains is what a request would do.
//!
//! - `ordered`: as written.
//! - `cheapest`: by the estimated cost of this request (estimated input
//!   tokens × input price + expected output tokens × output price); targets
//!   without a known price go last, in route order.
//! - `fastest`: by the estimated time to a full answer, `TTFT p50 +
//!   expected output tokens ÷ tokens/s p50`, from the last
//!   [`HEALTH_WINDOW`](super::health::HEALTH_WINDOW) attempts. Targets with
//!   no measurement yet go after the measured ones, in route order: the
//!   order stays predictable and explainable, and a new target gets
//!   measured whenever it runs (as a fallback, or asked for directly with
//!   `ask -m provider:model`) rather than by sending real requests to it
//!   at random.
//! - `balanced`: by `(w_cost × cost/max cost + w_latency × time/max time) /
//!   (w_cost + w_latency)` over the route's targets; an unknown cost or time
//!   counts as the worst (1).
//!
//! Expected output tokens are the request's `max_tokens`, else the
//! target's, else [`EXPECTED_OUTPUT_TOKENS`]. Policy and cooldown do not
//! change the order; they decide at run time whether a target is skipped,
//! and the plan carries them so the explanation can say so.
//!
//! Images and PDFs count by each vendor's rule ([`crate::attach::tokens`])
//! at the target's protocol, in the estimate and in the hold.
//!
//! What a budget holds for an attempt ([`PlanEntry::reserve`]) is not that
//! estimate but the most the request can cost: every byte of the prompt
//! as a token (no tokenizer makes more) plus a chat-template allowance per
//! message, attachments at the most their vendor's rule can count them,
//! and the output limit actually sent — the request's or the
//! target's `max_tokens`, Anthropic's [`DEFAULT_MAX_TOKENS`] when none (the
//! protocol requires one), else the model's output limit from the catalog,
//! else its context window, else [`UNBOUNDED_OUTPUT_TOKENS`].
//!
//! A server on this machine or the LAN (`local`) whose model has no price
//! costs nothing: it is priced at zero unless the config gives a price.

use std::cmp::Ordering;

use serde::Serialize;

use crate::attempt::estimate_tokens;
use crate::catalog::{Catalog, ModelInfo, ModelPrice};
use crate::chat::{ChatRequest, DEFAULT_MAX_TOKENS};
use crate::hooks::{CooldownState, HealthStore};
use crate::money::Cost;
use crate::money::Price;
use crate::provider::ProviderKind;

use super::config::{Route, RouteTarget, Strategy};
use super::health::{HealthStats, Phase, phase};
use super::policy::{Policy, PolicyViolation};

/// Output tokens assumed when neither the request nor the target sets
/// `max_tokens` (for cost and time estimates and budget reservations).
pub const EXPECTED_OUTPUT_TOKENS: u64 = 1024;

/// Output tokens a budget holds for when nothing bounds the output: no
/// `max_tokens` sent and no output limit or context window in the catalog.
pub const UNBOUNDED_OUTPUT_TOKENS: u64 = 32_768;

/// Chat-template tokens allowed per message (and for the system prompt)
/// in the upper bound of a prompt's size.
pub const TEMPLATE_TOKENS_PER_MESSAGE: u64 = 8;

/// The size of a request, for estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestShape {
    /// Estimated input tokens of the text.
    pub input_tokens: u64,
    /// The most input tokens the text can be: one per byte plus
    /// [`TEMPLATE_TOKENS_PER_MESSAGE`] per message (what budgets hold).
    pub max_input_tokens: u64,
    /// The request's own output limit.
    pub max_tokens: Option<u32>,
    /// Its attachments' tokens at each protocol's vendor.
    #[serde(skip)]
    pub attachments: AttachmentTokens,
}

/// The tokens a request's attachments count for at each protocol's
/// vendor: `(estimate, most)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachmentTokens {
    /// At OpenAI-compatible servers.
    pub openai: (u64, u64),
    /// At Anthropic.
    pub anthropic: (u64, u64),
    /// At Gemini.
    pub gemini: (u64, u64),
}

impl AttachmentTokens {
    /// No attachments.
    pub const NONE: AttachmentTokens = AttachmentTokens {
        openai: (0, 0),
        anthropic: (0, 0),
        gemini: (0, 0),
    };

    /// The tokens of `request`'s attachments.
    pub fn of(request: &ChatRequest) -> Self {
        let at = |kind: ProviderKind| {
            request.attachments().fold((0, 0), |(e, m), a| {
                (e + a.estimated_tokens(kind), m + a.max_tokens(kind))
            })
        };
        Self {
            openai: at(ProviderKind::OpenAi),
            anthropic: at(ProviderKind::Anthropic),
            gemini: at(ProviderKind::Gemini),
        }
    }

    fn at(&self, kind: ProviderKind) -> (u64, u64) {
        match kind {
            ProviderKind::OpenAi => self.openai,
            ProviderKind::Anthropic => self.anthropic,
            ProviderKind::Gemini => self.gemini,
        }
    }
}

impl RequestShape {
    /// Estimated input tokens at a provider speaking `kind`.
    pub fn input_tokens_at(&self, kind: ProviderKind) -> u64 {
        self.input_tokens + self.attachments.at(kind).0
    }

    /// The most input tokens at a provider speaking `kind`.
    pub fn max_input_tokens_at(&self, kind: ProviderKind) -> u64 {
        self.max_input_tokens + self.attachments.at(kind).1
    }

    /// The shape of `request`.
    pub fn of(request: &ChatRequest) -> Self {
        let bytes = request.system.as_deref().map_or(0, str::len)
            + request
                .messages
                .iter()
                .map(|m| m.content.len())
                .sum::<usize>();
        let messages = request.messages.len() as u64 + u64::from(request.system.is_some());
        Self {
            input_tokens: estimate_tokens(request.input_chars()),
            max_input_tokens: bytes as u64 + TEMPLATE_TOKENS_PER_MESSAGE * messages,
            max_tokens: request.params.max_tokens,
            attachments: AttachmentTokens::of(request),
        }
    }

    /// Expected output tokens at `target`.
    pub fn output_tokens(&self, target: &RouteTarget) -> u64 {
        self.max_tokens
            .or(target.params.max_tokens)
            .map_or(EXPECTED_OUTPUT_TOKENS, u64::from)
    }

    /// The most output tokens the request can produce at `target` (model
    /// `info` from the catalog): the limit that is sent, else the model's.
    pub fn max_output_tokens(&self, target: &RouteTarget, info: Option<&ModelInfo>) -> u64 {
        if let Some(n) = self.max_tokens.or(target.params.max_tokens) {
            return u64::from(n);
        }
        if target.provider.kind == ProviderKind::Anthropic {
            return u64::from(DEFAULT_MAX_TOKENS);
        }
        info.and_then(|i| i.max_output_tokens.or(i.context_window))
            .unwrap_or(UNBOUNDED_OUTPUT_TOKENS)
    }
}

/// The price of `target`'s model: the catalog's, else zero for a server on
/// this machine or the LAN, else unknown.
pub fn target_price(catalog: &Catalog, target: &RouteTarget) -> Option<ModelPrice> {
    catalog.price(&target.provider, &target.model).or_else(|| {
        target
            .provider
            .local
            .then(|| ModelPrice::new(Price::ZERO, Price::ZERO, None))
    })
}

pub use crate::attempt::estimate_cost;

/// One target in a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    /// Where it is written in the route (0-based).
    pub position: usize,
    /// The target.
    pub target: RouteTarget,
    /// Its price, when known.
    pub price: Option<ModelPrice>,
    /// Expected output tokens.
    pub output_tokens: u64,
    /// Estimated cost of the request here, when the price is known.
    pub est_cost: Option<Cost>,
    /// The most output tokens the request can produce here.
    pub max_output_tokens: u64,
    /// The most the request can cost here (what a budget holds), when the
    /// price is known.
    pub reserve: Option<Cost>,
    /// Recent health.
    pub stats: HealthStats,
    /// Estimated time to a full answer (ms), when measured.
    pub est_time_ms: Option<f64>,
    /// The `balanced` score (lower is better).
    pub score: Option<f64>,
    /// Stored cooldown state.
    pub cooldown: CooldownState,
    /// Its phase at planning time.
    pub phase: Phase,
    /// Why policy forbids it, if it does.
    pub policy: Option<PolicyViolation>,
    /// Why it cannot take the request's attachments, if it cannot (set by
    /// the router, which has the request: [`crate::attach::check`]).
    pub unsupported: Option<crate::attach::Refusal>,
    /// Why it sits where it does, for people.
    pub why: String,
}

/// A route's targets in the order a request would try them.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The strategy that ordered them.
    pub strategy: Strategy,
    /// The request size the estimates assume.
    pub shape: RequestShape,
    /// When it was made (Unix ms).
    pub now_unix_ms: i64,
    /// The targets, first to try first.
    pub entries: Vec<PlanEntry>,
}

/// Order `route`'s targets for a request of `shape` at `now_ms`.
pub fn plan(
    route: &Route,
    shape: RequestShape,
    catalog: &Catalog,
    policy: &Policy,
    health: &dyn HealthStore,
    now_ms: i64,
) -> Plan {
    let mut entries: Vec<PlanEntry> = route
        .targets
        .iter()
        .enumerate()
        .map(|(position, target)| {
            let price = target_price(catalog, target);
            let output_tokens = shape.output_tokens(target);
            let max_output_tokens = shape.max_output_tokens(
                target,
                catalog.lookup(&target.provider, &target.model).as_ref(),
            );
            let stats = HealthStats::of(health, &target.provider.id, &target.model);
            let cooldown = health.cooldown(&target.provider.id, &target.model);
            let kind = target.provider.kind;
            PlanEntry {
                position,
                policy: policy
                    .check(
                        &target.provider,
                        &target.model,
                        price
                            .as_ref()
                            .map(|p| p.rates_for(shape.input_tokens_at(kind)))
                            .as_ref(),
                    )
                    .err(),
                unsupported: None,
                est_cost: price
                    .as_ref()
                    .map(|p| estimate_cost(p, shape.input_tokens_at(kind), output_tokens)),
                reserve: price
                    .as_ref()
                    .map(|p| estimate_cost(p, shape.max_input_tokens_at(kind), max_output_tokens)),
                max_output_tokens,
                price,
                output_tokens,
                stats,
                est_time_ms: None,
                score: None,
                cooldown,
                phase: phase(&cooldown, now_ms),
                target: target.clone(),
                why: String::new(),
            }
        })
        .collect();

    // Throughput not measured is assumed as slow as the slowest measured
    // target of the route, so a missing number never looks like a fast one.
    let slowest_tps = entries
        .iter()
        .filter_map(|e| e.stats.tps_p50)
        .min_by(f64::total_cmp);
    for e in &mut entries {
        e.est_time_ms = e.stats.ttft_p50_ms.map(|ttft| {
            let tps = e.stats.tps_p50.or(slowest_tps).filter(|t| *t > 0.0);
            ttft + tps.map_or(0.0, |t| e.output_tokens as f64 / t * 1000.0)
        });
    }

    match route.strategy {
        Strategy::Ordered => {
            for e in &mut entries {
                e.why = format!("position {} in the route", e.position + 1);
            }
        }
        Strategy::Cheapest => {
            entries.sort_by(|a, b| none_last(a.est_cost, b.est_cost, Ord::cmp));
            for e in &mut entries {
                e.why = match (e.est_cost, &e.price) {
                    (Some(c), Some(p)) => {
                        let input = shape.input_tokens_at(e.target.provider.kind);
                        let r = p.rates_for(input);
                        format!(
                            "est. {c} for this request ({input} in + {} out tokens at {} in / {} out)",
                            e.output_tokens, r.input, r.output
                        )
                    }
                    _ => "price unknown: after the priced targets".to_owned(),
                };
            }
        }
        Strategy::Fastest => {
            entries.sort_by(|a, b| none_last(a.est_time_ms, b.est_time_ms, f64::total_cmp));
            for e in &mut entries {
                e.why = fastest_why(e, slowest_tps);
            }
        }
        Strategy::Balanced => {
            let max_cost = entries.iter().filter_map(|e| e.est_cost).max();
            let max_time = entries
                .iter()
                .filter_map(|e| e.est_time_ms)
                .max_by(f64::total_cmp);
            let (wc, wl) = (route.weights.cost, route.weights.latency);
            for e in &mut entries {
                let cost_n = match (e.est_cost, max_cost) {
                    (Some(c), Some(m)) if m.nanos() > 0 => c.nanos() as f64 / m.nanos() as f64,
                    (Some(_), Some(_)) => 0.0,
                    _ => 1.0,
                };
                let time_n = match (e.est_time_ms, max_time) {
                    (Some(t), Some(m)) if m > 0.0 => t / m,
                    (Some(_), Some(_)) => 0.0,
                    _ => 1.0,
                };
                let score = (wc * cost_n + wl * time_n) / (wc + wl);
                e.score = Some(score);
                e.why = format!(
                    "score {score:.3} = (cost {cost_n:.3}{} × {wc} + latency {time_n:.3}{} × {wl}) / {}",
                    if e.est_cost.is_none() {
                        " (unknown)"
                    } else {
                        ""
                    },
                    if e.est_time_ms.is_none() {
                        " (unmeasured)"
                    } else {
                        ""
                    },
                    wc + wl
                );
            }
            entries.sort_by(|a, b| none_last(a.score, b.score, f64::total_cmp));
        }
    }
    Plan {
        strategy: route.strategy,
        shape,
        now_unix_ms: now_ms,
        entries,
    }
}

fn fastest_why(e: &PlanEntry, slowest_tps: Option<f64>) -> String {
    let (Some(time), Some(ttft)) = (e.est_time_ms, e.stats.ttft_p50_ms) else {
        return "no measurements yet: after the measured targets, in route order".to_owned();
    };
    let n = e.stats.samples;
    match (e.stats.tps_p50, slowest_tps) {
        (Some(tps), _) => format!(
            "est. {:.0} ms = TTFT p50 {ttft:.0} ms + {} tok at {tps:.1} tok/s p50 ({n} samples)",
            time, e.output_tokens
        ),
        (None, Some(slow)) => format!(
            "est. {:.0} ms = TTFT p50 {ttft:.0} ms + {} tok at {slow:.1} tok/s (throughput not measured: the route's slowest) ({n} samples)",
            time, e.output_tokens
        ),
        (None, None) => format!(
            "est. {time:.0} ms = TTFT p50 {ttft:.0} ms (throughput not measured) ({n} samples)"
        ),
    }
}

/// Compare two optional keys, `None` after every `Some` (stable sorts keep
/// route order among equals).
fn none_last<T: Copy>(a: Option<T>, b: Option<T>, cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => cmp(&x, &y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ModelEntry;
    use crate::hooks::{HealthSample, MemoryHealth};
    use crate::money::Price;
    use crate::provider::{ProviderConfig, ProviderKind};
    use crate::routing::config::{CooldownSettings, RetrySettings, Weights};

    fn target(id: &str, model: &str) -> RouteTarget {
        RouteTarget::new(
            ProviderConfig::custom(id, ProviderKind::OpenAi, "https://api.example.com/v1"),
            model,
        )
    }

    fn route(strategy: Strategy, targets: Vec<RouteTarget>) -> Route {
        Route {
            name: Some("r".into()),
            strategy,
            targets,
            retry: RetrySettings::default(),
            cooldown: CooldownSettings::default(),
            weights: Weights::default(),
        }
    }

    fn catalog(prices: &[(&str, &str, &str, &str)]) -> Catalog {
        let mut c = Catalog::new();
        for (p, m, i, o) in prices {
            let e: ModelEntry = toml::from_str(&format!(
                "id = \"{m}\"\ninput_usd_per_mtok = \"{i}\"\noutput_usd_per_mtok = \"{o}\""
            ))
            .unwrap();
            c.add_config(p, &[e]);
        }
        c
    }

    fn seed(h: &MemoryHealth, p: &str, m: &str, ttft: f64, tps: Option<f64>, n: usize) {
        for _ in 0..n {
            h.record(
                p,
                m,
                &HealthSample {
                    at_unix_ms: 0,
                    ok: true,
                    error_kind: None,
                    ttft_ms: Some(ttft),
                    tokens_per_s: tps,
                },
            );
        }
    }

    fn order(p: &Plan) -> Vec<String> {
        p.entries.iter().map(|e| e.target.label()).collect()
    }

    const SHAPE: RequestShape = RequestShape {
        input_tokens: 1000,
        max_input_tokens: 4000,
        max_tokens: Some(1000),
        attachments: AttachmentTokens::NONE,
    };

    #[test]
    fn a_long_prompt_is_estimated_and_capped_at_its_tier() {
        let mut c = Catalog::new();
        let e: ModelEntry = toml::from_str(
            "id = \"m\"\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 2\n[[tiers]]\nabove_input_tokens = 1000\ninput_usd_per_mtok = 4\noutput_usd_per_mtok = 8\n",
        )
        .unwrap();
        c.add_config("a", &[e]);
        let r = route(Strategy::Cheapest, vec![target("a", "m")]);
        let policy = Policy {
            max_usd_per_mtok: Some(Price::from_usd_per_mtok("3").unwrap()),
            ..Policy::default()
        };
        let health = MemoryHealth::default();
        let shape = |input_tokens| RequestShape {
            input_tokens,
            max_input_tokens: input_tokens,
            max_tokens: Some(100),
            attachments: AttachmentTokens::NONE,
        };
        let short = plan(&r, shape(1000), &c, &policy, &health, 0);
        // 1000 × $1/M + 100 × $2/M = $0.0012
        assert_eq!(short.entries[0].est_cost, Some(Cost::from_nanos(1_200_000)));
        assert!(short.entries[0].policy.is_none());
        let long = plan(&r, shape(1001), &c, &policy, &health, 0);
        // 1001 × $4/M + 100 × $8/M = $0.004804
        assert_eq!(long.entries[0].est_cost, Some(Cost::from_nanos(4_804_000)));
        assert!(
            matches!(
                long.entries[0].policy,
                Some(PolicyViolation::AbovePriceCap { .. })
            ),
            "{:?}",
            long.entries[0].policy
        );
    }

    #[test]
    fn cheapest_orders_by_estimated_cost_with_unknown_prices_last() {
        let r = route(
            Strategy::Cheapest,
            vec![
                target("a", "unpriced"),
                target("b", "dear"),
                target("c", "cheap"),
            ],
        );
        let cat = catalog(&[("b", "dear", "3", "15"), ("c", "cheap", "0.5", "1")]);
        let p = plan(
            &r,
            SHAPE,
            &cat,
            &Policy::default(),
            &MemoryHealth::default(),
            0,
        );
        assert_eq!(order(&p), vec!["c:cheap", "b:dear", "a:unpriced"]);
        // 1000 × $0.5/M + 1000 × $1/M = $0.0015
        assert_eq!(p.entries[0].est_cost, Some(Cost::from_nanos(1_500_000)));
        assert!(p.entries[0].why.contains("$0.0015"), "{}", p.entries[0].why);
        assert_eq!(p.entries[2].est_cost, None);
    }

    #[test]
    fn fastest_orders_measured_targets_by_estimated_time_then_the_rest() {
        let r = route(
            Strategy::Fastest,
            vec![
                target("new", "m"),
                target("slow", "m"),
                target("quick", "m"),
                target("nothroughput", "m"),
            ],
        );
        let h = MemoryHealth::default();
        // 1000 tokens: slow = 100 + 1000/10 s = 100_100 ms; quick = 300 + 1000 ms.
        seed(&h, "slow", "m", 100.0, Some(10.0), 3);
        seed(&h, "quick", "m", 300.0, Some(1000.0), 2);
        // No throughput: assumed as slow as the slowest (10 tok/s).
        seed(&h, "nothroughput", "m", 50.0, None, 1);
        let p = plan(&r, SHAPE, &Catalog::new(), &Policy::default(), &h, 0);
        assert_eq!(
            order(&p),
            vec!["quick:m", "nothroughput:m", "slow:m", "new:m"]
        );
        assert_eq!(p.entries[0].est_time_ms, Some(1300.0));
        assert_eq!(p.entries[1].est_time_ms, Some(100_050.0));
        assert!(
            p.entries[0].why.contains("TTFT p50 300 ms")
                && p.entries[0].why.contains("1000.0 tok/s"),
            "{}",
            p.entries[0].why
        );
        assert!(p.entries[3].why.starts_with("no measurements yet"));
    }

    #[test]
    fn balanced_weighs_normalized_cost_against_latency() {
        let targets = vec![target("cheap", "slow"), target("dear", "fast")];
        let cat = catalog(&[("cheap", "slow", "0.1", "0.1"), ("dear", "fast", "1", "1")]);
        let h = MemoryHealth::default();
        seed(&h, "cheap", "slow", 2000.0, Some(1000.0), 1); // 3000 ms
        seed(&h, "dear", "fast", 100.0, Some(1000.0), 1); // 1100 ms
        let mut r = route(Strategy::Balanced, targets);
        r.weights = Weights {
            cost: 1.0,
            latency: 0.0,
        };
        let p = plan(&r, SHAPE, &cat, &Policy::default(), &h, 0);
        assert_eq!(order(&p), vec!["cheap:slow", "dear:fast"]);
        assert_eq!(p.entries[0].score, Some(0.1));
        r.weights = Weights {
            cost: 0.0,
            latency: 1.0,
        };
        let p = plan(&r, SHAPE, &cat, &Policy::default(), &h, 0);
        assert_eq!(order(&p), vec!["dear:fast", "cheap:slow"]);
        // Equal weights: cost 0.1 + time 1.0 vs cost 1.0 + time 0.367.
        r.weights = Weights::default();
        let p = plan(&r, SHAPE, &cat, &Policy::default(), &h, 0);
        assert_eq!(order(&p), vec!["cheap:slow", "dear:fast"]);
        assert!(
            p.entries[0].why.starts_with("score 0.550"),
            "{}",
            p.entries[0].why
        );
    }

    #[test]
    fn policy_and_cooldown_are_carried_not_reordered() {
        let r = route(Strategy::Ordered, vec![target("a", "m"), target("b", "m")]);
        let h = MemoryHealth::default();
        h.set_cooldown(
            "a",
            "m",
            CooldownState {
                consecutive_failures: 3,
                until_unix_ms: Some(5_000),
                level: 1,
            },
        );
        let policy = Policy {
            allowed_providers: Some(vec!["a".into()]),
            ..Policy::default()
        };
        let p = plan(&r, SHAPE, &Catalog::new(), &policy, &h, 1_000);
        assert_eq!(order(&p), vec!["a:m", "b:m"]);
        assert!(matches!(p.entries[0].phase, Phase::CoolingDown { .. }));
        assert!(p.entries[0].policy.is_none());
        assert!(matches!(
            p.entries[1].policy,
            Some(PolicyViolation::NotAllowed { .. })
        ));
        assert_eq!(p.entries[0].why, "position 1 in the route");
    }

    #[test]
    fn the_hold_covers_the_most_the_request_can_cost() {
        let mut request = ChatRequest::new("m", "héllo");
        request.system = Some("Be terse.".into());
        let shape = RequestShape::of(&request);
        // 6 bytes + 9 bytes, and two messages' template allowance.
        assert_eq!(
            shape.max_input_tokens,
            6 + 9 + 2 * TEMPLATE_TOKENS_PER_MESSAGE
        );
        assert!(shape.max_input_tokens >= shape.input_tokens);

        let cat = catalog(&[("a", "m", "1", "10")]);
        let info = |t: &RouteTarget| cat.lookup(&t.provider, &t.model);
        let mut openai = target("a", "m");
        // Nothing bounds it: neither a limit nor the catalog.
        assert_eq!(
            shape.max_output_tokens(&openai, info(&openai).as_ref()),
            UNBOUNDED_OUTPUT_TOKENS
        );
        // The catalog's output limit, then the context window.
        let limited = ModelInfo {
            max_output_tokens: Some(8192),
            context_window: Some(128_000),
            ..info(&openai).unwrap()
        };
        assert_eq!(shape.max_output_tokens(&openai, Some(&limited)), 8192);
        let windowed = ModelInfo {
            max_output_tokens: None,
            ..limited.clone()
        };
        assert_eq!(shape.max_output_tokens(&openai, Some(&windowed)), 128_000);
        // Anthropic always sends a limit: its default when none is set.
        let mut anthropic = openai.clone();
        anthropic.provider.kind = ProviderKind::Anthropic;
        assert_eq!(
            shape.max_output_tokens(&anthropic, Some(&limited)),
            u64::from(DEFAULT_MAX_TOKENS)
        );
        // A limit that is sent wins everywhere.
        openai.params.max_tokens = Some(300);
        assert_eq!(shape.max_output_tokens(&openai, Some(&limited)), 300);

        let r = route(Strategy::Ordered, vec![openai, anthropic]);
        let p = plan(
            &r,
            shape,
            &cat,
            &Policy::default(),
            &MemoryHealth::default(),
            0,
        );
        // 31 × $1/M + 300 × $10/M, then 31 × $1/M + 4096 × $10/M.
        assert_eq!(p.entries[0].reserve, Some(Cost::from_nanos(3_031_000)));
        assert_eq!(p.entries[1].reserve, Some(Cost::from_nanos(40_991_000)));
        assert!(p.entries[0].reserve >= p.entries[0].est_cost);
    }

    #[test]
    fn a_local_server_without_a_price_costs_nothing_and_a_hosted_one_is_unknown() {
        let local = RouteTarget::new(
            ProviderConfig::custom("lab", ProviderKind::OpenAi, "http://192.168.1.20:8000/v1"),
            "qwen",
        );
        let hosted = target("a", "qwen");
        let r = route(Strategy::Ordered, vec![local.clone(), hosted]);
        let p = plan(
            &r,
            SHAPE,
            &Catalog::new(),
            &Policy::default(),
            &MemoryHealth::default(),
            0,
        );
        assert_eq!(p.entries[0].reserve, Some(Cost::ZERO));
        assert_eq!(p.entries[0].est_cost, Some(Cost::ZERO));
        assert_eq!(p.entries[1].reserve, None, "unknown, not zero");
        // A price in the config wins over the zero.
        let cat = catalog(&[("lab", "qwen", "1", "1")]);
        assert_eq!(
            target_price(&cat, &local).map(|p| p.input),
            Some(Price::from_usd_per_mtok("1").unwrap())
        );
    }

    #[test]
    fn output_tokens_come_from_the_request_then_the_target() {
        let mut t = target("a", "m");
        let shape = RequestShape {
            input_tokens: 1,
            max_input_tokens: 1,
            max_tokens: None,
            attachments: AttachmentTokens::NONE,
        };
        assert_eq!(shape.output_tokens(&t), EXPECTED_OUTPUT_TOKENS);
        t.params.max_tokens = Some(300);
        assert_eq!(shape.output_tokens(&t), 300);
        assert_eq!(SHAPE.output_tokens(&t), 1000);
        let price = ModelPrice::new(
            Price::from_usd_per_mtok("2").unwrap(),
            Price::from_usd_per_mtok("8").unwrap(),
            None,
        );
        assert_eq!(
            estimate_cost(&price, 500, 300).nanos(),
            1_000_000 + 2_400_000
        );
    }
}
