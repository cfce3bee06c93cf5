//! `routes list` and `routes show NAME`: how each route would order its
//! targets right now, and why — the very plan the router would run
//! (strategy, estimated cost, measured TTFT and tokens/s, success rate,
//! cooldowns, policy skips). Nothing is sent to any provider.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use switchboard_engine::routing::{
    Phase, Plan, PlanEntry, RequestShape, Route, RoutingConfig, now_unix_ms, plan,
};
use switchboard_engine::{Config, DataDir, Store};

use crate::UsageError;
use crate::output::{out, warning};

#[derive(Debug, Args)]
pub struct RoutesArgs {
    #[command(subcommand)]
    command: RoutesCommand,
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Every route, with the order it would try its targets now.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One route: its settings, and how and why it would order its targets now.
    Show {
        /// The route's name (with or without the `@`).
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Input tokens of the request the estimates assume.
        #[arg(long, default_value_t = 1000)]
        prompt_tokens: u64,
        /// Output limit of the request the estimates assume.
        #[arg(long)]
        max_tokens: Option<u32>,
    },
}

pub async fn run(args: RoutesArgs) -> Result<bool, UsageError> {
    let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
    let config = Config::load(&dir.config_file()).map_err(|e| UsageError(e.to_string()))?;
    for w in &config.warnings {
        warning(&format!("{}: {w}", config.path.display()));
    }
    let routing = RoutingConfig::from_config(&config).map_err(|e| UsageError(e.to_string()))?;
    for w in &routing.warnings {
        warning(w);
    }
    let mut catalog = config.catalog();
    catalog.load_live_cache(&crate::models::cache_dir(&dir));
    // Health as the app and every CLI run see it: the data directory's database.
    let store = Store::open(&dir).map_err(|e| UsageError(e.to_string()))?;
    let health = store.health();
    let plan_of = |route: &Route, shape: RequestShape| {
        plan(
            route,
            shape,
            &catalog,
            &routing.policy,
            health.as_ref(),
            now_unix_ms(),
        )
    };
    match args.command {
        RoutesCommand::List { json } => {
            let shape = RequestShape {
                input_tokens: 1000,
                max_input_tokens: 1000,
                max_tokens: None,
                attachments: Default::default(),
            };
            let plans: Vec<(&Route, Plan)> = routing
                .routes
                .values()
                .map(|r| (r, plan_of(r, shape)))
                .collect();
            if json {
                let list: Vec<Value> = plans.iter().map(|(r, p)| plan_json(r, p)).collect();
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                ));
            } else if plans.is_empty() {
                out(&format!(
                    "no routes: add [routes.<name>] to {}\n",
                    config.path.display()
                ));
            } else {
                for (r, p) in &plans {
                    let order: Vec<String> = p
                        .entries
                        .iter()
                        .map(|e| match status(e) {
                            ("ready", _) => e.target.label(),
                            (s, _) => format!("{} ({s})", e.target.label()),
                        })
                        .collect();
                    out(&format!(
                        "{:<16} {:<9} {}\n",
                        r.label(),
                        r.strategy,
                        order.join(" → ")
                    ));
                }
            }
            Ok(true)
        }
        RoutesCommand::Show {
            name,
            json,
            prompt_tokens,
            max_tokens,
        } => {
            let bare = name.trim_start_matches('@');
            let route = routing.route(bare).ok_or_else(|| {
                let known: Vec<String> = routing.routes.keys().map(|k| format!("@{k}")).collect();
                UsageError(format!(
                    "unknown route \"@{bare}\" (known: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            let p = plan_of(
                route,
                RequestShape {
                    input_tokens: prompt_tokens,
                    max_input_tokens: prompt_tokens,
                    max_tokens,
                    attachments: Default::default(),
                },
            );
            if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&plan_json(route, &p)).unwrap_or_default()
                ));
            } else {
                out(&show_text(route, &p));
            }
            Ok(true)
        }
    }
}

/// The status word of an entry, and a sentence about it.
fn status(e: &PlanEntry) -> (&'static str, String) {
    if let Some(v) = &e.policy {
        return ("policy", format!("skipped by policy: {v}"));
    }
    match e.phase {
        Phase::Closed => ("ready", "ready".to_owned()),
        Phase::CoolingDown { remaining } => (
            "cooling_down",
            format!(
                "cooling down for {:.1} s more ({} failures in a row): skipped while another target can answer",
                remaining.as_secs_f64(),
                e.cooldown.consecutive_failures
            ),
        ),
        Phase::HalfOpen => (
            "half_open",
            "cooldown over: the next request sends one probe".to_owned(),
        ),
    }
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// `250 ms`, `1.5 s`, `60 s`.
fn human(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn plan_json(route: &Route, p: &Plan) -> Value {
    let targets: Vec<Value> = p
        .entries
        .iter()
        .enumerate()
        .map(|(rank, e)| {
            let (status_word, _) = status(e);
            json!({
                "rank": rank + 1,
                "position": e.position + 1,
                "target": e.target.label(),
                "provider": e.target.provider.id,
                "model": e.target.model,
                "status": status_word,
                "why": e.why,
                "policy": e.policy.as_ref().map(ToString::to_string),
                "cooldown_remaining_ms": match e.phase {
                    Phase::CoolingDown { remaining } => Some(ms(remaining)),
                    Phase::Closed | Phase::HalfOpen => None,
                },
                "consecutive_failures": e.cooldown.consecutive_failures,
                "price": e.price.as_ref().map(|pr| json!({
                    "input_usd_per_mtok": pr.input.usd_per_mtok(),
                    "output_usd_per_mtok": pr.output.usd_per_mtok(),
                })),
                "output_tokens": e.output_tokens,
                "est_cost_usd": e.est_cost.map(|c| c.as_f64()),
                "est_time_ms": e.est_time_ms.map(round1),
                "score": e.score,
                "health": {
                    "samples": e.stats.samples,
                    "success_rate": e.stats.success_rate,
                    "ttft_p50_ms": e.stats.ttft_p50_ms,
                    "ttft_p90_ms": e.stats.ttft_p90_ms,
                    "tokens_per_s_p50": e.stats.tps_p50.map(round1),
                    "tokens_per_s_p10": e.stats.tps_p10.map(round1),
                },
            })
        })
        .collect();
    json!({
        "route": route.name,
        "strategy": route.strategy.as_str(),
        "request": {
            "input_tokens": p.shape.input_tokens,
            "max_tokens": p.shape.max_tokens,
        },
        "settings": settings_json(route),
        "targets": targets,
    })
}

fn settings_json(route: &Route) -> Value {
    json!({
        "backoff_ms": ms(route.retry.backoff),
        "max_backoff_ms": ms(route.retry.max_backoff),
        "cooldown_after": route.cooldown.after_failures,
        "cooldown_ms": ms(route.cooldown.base),
        "max_cooldown_ms": ms(route.cooldown.max),
        "weights": { "cost": route.weights.cost, "latency": route.weights.latency },
    })
}

fn show_text(route: &Route, p: &Plan) -> String {
    let mut s = format!(
        "{} · strategy {} · backoff {} (waits at most {}) · cooldown after {} failures in a row: {}, doubling up to {}\n",
        route.label(),
        route.strategy,
        human(route.retry.backoff),
        human(route.retry.max_backoff),
        route.cooldown.after_failures,
        human(route.cooldown.base),
        human(route.cooldown.max),
    );
    s.push_str(&format!(
        "estimates for a request of {} input tokens{}\n\n",
        p.shape.input_tokens,
        p.shape
            .max_tokens
            .map(|m| format!(" and at most {m} output tokens"))
            .unwrap_or_default()
    ));
    for (rank, e) in p.entries.iter().enumerate() {
        let t = &e.target;
        s.push_str(&format!(
            "{:>2}. {}  [{}]\n",
            rank + 1,
            t.label(),
            status(e).1
        ));
        s.push_str(&format!("    why: {}\n", e.why));
        let price = match (&e.price, e.est_cost) {
            (Some(pr), Some(c)) => format!("{} in / {} out · est. {c}", pr.input, pr.output),
            _ => "price unknown".to_owned(),
        };
        let st = &e.stats;
        let health = if st.samples == 0 {
            "no history yet".to_owned()
        } else {
            let opt = |v: Option<f64>, unit: &str| {
                v.map_or_else(|| "?".to_owned(), |v| format!("{v:.0}{unit}"))
            };
            format!(
                "TTFT p50 {} / p90 {} · {} tok/s p50 · {:.0}% ok of {} samples",
                opt(st.ttft_p50_ms, " ms"),
                opt(st.ttft_p90_ms, " ms"),
                st.tps_p50
                    .map_or_else(|| "?".to_owned(), |v| format!("{v:.1}")),
                st.success_rate.unwrap_or(0.0) * 100.0,
                st.samples
            )
        };
        s.push_str(&format!("    {price} · {health}\n"));
        s.push_str(&format!(
            "    timeouts: first token {}, idle {}, total {} · retries {}\n",
            human(t.timeouts.first_token),
            human(t.timeouts.idle),
            human(t.timeouts.total),
            t.retries
        ));
    }
    s
}
