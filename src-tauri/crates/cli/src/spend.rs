//! `spend`: what the ledger recorded, grouped. Every sum is an exact
//! integer count of nano-dollars; days, weeks (Monday to Sunday) and months
//! are UTC. Requests to a model with no known price are counted (requests,
//! tokens) but have no amount: the listing says how many.

use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use switchboard_engine::store::time::parse_date;
use switchboard_engine::store::{SpendGroup, SpendGrouping};

use crate::UsageError;
use crate::history::open_store;
use crate::output::out;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum By {
    Day,
    Week,
    Month,
    Provider,
    Model,
    Route,
    Tag,
}

#[derive(Debug, Args)]
pub struct SpendArgs {
    /// How to group.
    #[arg(long, value_enum, default_value_t = By::Day)]
    by: By,
    /// Only from this day on (YYYY-MM-DD, from 00:00 UTC).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn group_json(g: &SpendGroup) -> Value {
    json!({
        "group": g.key,
        "cost_usd": g.cost.as_f64(),
        "cost_nanos": g.cost.nanos(),
        "requests": g.requests,
        "estimated_requests": g.estimated_requests,
        "unknown_price_requests": g.unpriced_requests,
        "input_tokens": g.input_tokens,
        "output_tokens": g.output_tokens,
    })
}

pub fn run(args: SpendArgs) -> Result<bool, UsageError> {
    let since = args
        .since
        .as_deref()
        .map(|d| {
            parse_date(d)
                .ok_or_else(|| UsageError(format!("--since {d:?} is not a date (YYYY-MM-DD)")))
        })
        .transpose()?;
    let (grouping, name) = match args.by {
        By::Day => (SpendGrouping::Day, "day"),
        By::Week => (SpendGrouping::Week, "week"),
        By::Month => (SpendGrouping::Month, "month"),
        By::Provider => (SpendGrouping::Provider, "provider"),
        By::Model => (SpendGrouping::Model, "model"),
        By::Route => (SpendGrouping::Route, "route"),
        By::Tag => (SpendGrouping::Tag, "tag"),
    };
    let store = open_store()?;
    let fail = |e: switchboard_engine::StoreError| UsageError(e.to_string());
    let groups = store.spend(grouping, since).map_err(fail)?;
    let total = store.spend_total(since).map_err(fail)?;
    if args.json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "by": name,
                "since": args.since,
                "timezone": "UTC",
                "groups": groups.iter().map(group_json).collect::<Vec<_>>(),
                "total": group_json(&total),
            }))
            .unwrap_or_default()
        ));
        return Ok(true);
    }
    let none = match args.by {
        By::Route => "(no route)",
        By::Tag => "(untagged)",
        _ => "-",
    };
    out(&format!(
        "{:<32} {:>16} {:>9} {:>12} {:>12}\n",
        format!("{name} (UTC)"),
        "cost",
        "requests",
        "in tokens",
        "out tokens"
    ));
    for g in &groups {
        let est = if g.estimated_requests > 0 {
            " est."
        } else {
            ""
        };
        out(&format!(
            "{:<32} {:>16} {:>9} {:>12} {:>12}\n",
            g.key.as_deref().unwrap_or(none),
            format!("{}{est}", g.cost),
            g.requests,
            g.input_tokens,
            g.output_tokens
        ));
    }
    out(&format!(
        "{:<32} {:>16} {:>9} {:>12} {:>12}\n",
        "total",
        total.cost.to_string(),
        total.requests,
        total.input_tokens,
        total.output_tokens
    ));
    if args.by == By::Tag {
        out("(an answer with several tags counts under each)\n");
    }
    if total.unpriced_requests > 0 {
        out(&format!(
            "{} request{} with unknown price (not in the cost; add input_usd_per_mtok and \
             output_usd_per_mtok for the model in config.toml)\n",
            total.unpriced_requests,
            if total.unpriced_requests == 1 {
                ""
            } else {
                "s"
            }
        ));
    }
    Ok(true)
}
