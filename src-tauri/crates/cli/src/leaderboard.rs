//! `leaderboard`: which model wins your own blind votes, with a
//! Bradley–Terry rating and its 95% interval per model, and what its
//! answers cost and how fast they came (medians from the ledger). The same
//! numbers as the app's Leaderboard page: both call
//! [`Store::leaderboard`](switchboard_engine::Store::leaderboard).

use clap::Args;
use serde_json::json;
use switchboard_engine::Cost;
use switchboard_engine::rating::MIN_VOTES;
use switchboard_engine::store::time::parse_date;
use switchboard_protocol::{LeaderboardQuery, LeaderboardRow};

use crate::UsageError;
use crate::history::open_store;
use crate::output::out;

#[derive(Debug, Args)]
pub struct LeaderboardArgs {
    /// Only conversations with this tag.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Only votes and answers from this day on (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only votes and answers before this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Best value first: expected score per dollar of a median answer.
    #[arg(long)]
    value: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn date(flag: &str, d: Option<&str>) -> Result<Option<i64>, UsageError> {
    d.map(|d| {
        parse_date(d).ok_or_else(|| UsageError(format!("{flag} {d:?} is not a date (YYYY-MM-DD)")))
    })
    .transpose()
}

fn cost_text(nanos: Option<i64>) -> String {
    nanos.map_or_else(|| "—".to_owned(), |n| Cost::from_nanos(n).to_string())
}

fn opt(v: Option<f64>, unit: &str, digits: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{x:.digits$}{unit}"))
}

fn line(r: &LeaderboardRow) -> String {
    let rank = r.rank.map_or_else(|| "–".to_owned(), |n| n.to_string());
    let note = if r.too_few_votes {
        format!("  (too few votes: fewer than {MIN_VOTES})")
    } else {
        String::new()
    };
    format!(
        "{rank:>3}  {:<28} {:>6.0} [{:.0}–{:.0}]  {:>4} votes  {:>3.0}% wins  {:>12}/answer  TTFT {:>8}  {:>9}{note}\n",
        r.model,
        r.rating,
        r.rating_low,
        r.rating_high,
        r.votes,
        r.win_rate * 100.0,
        cost_text(r.median_cost_nanos),
        opt(r.median_ttft_ms, " ms", 0),
        opt(r.median_tokens_per_s, " tok/s", 1),
    )
}

pub fn run(args: LeaderboardArgs) -> Result<bool, UsageError> {
    let query = LeaderboardQuery {
        tag: args.tag.clone(),
        from_ms: date("--since", args.since.as_deref())?,
        to_ms: date("--until", args.until.as_deref())?,
    };
    let store = open_store()?;
    let board = store
        .leaderboard(&query)
        .map_err(|e| UsageError(e.to_string()))?;
    let rows: Vec<&LeaderboardRow> = if args.value {
        board.by_value()
    } else {
        board.rows.iter().collect()
    };
    if args.json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut v = json!(r);
                v["median_cost_usd"] =
                    json!(r.median_cost_nanos.map(|n| Cost::from_nanos(n).usd()));
                v
            })
            .collect();
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "tag": args.tag,
                "since": args.since,
                "until": args.until,
                "order": if args.value { "value" } else { "rating" },
                "votes": board.votes,
                "min_votes": MIN_VOTES,
                "rows": rows,
            }))
            .unwrap_or_default()
        ));
        return Ok(true);
    }
    if rows.is_empty() {
        out(
            "No blind votes yet: vote on a round in blind mode and the models you compared appear here.\n",
        );
        return Ok(true);
    }
    out(&format!(
        "{} blind vote{}{}; rating (95% interval), Bradley–Terry, 1000 = average\n",
        board.votes,
        if board.votes == 1 { "" } else { "s" },
        args.tag
            .as_deref()
            .map(|t| format!(" tagged {t}"))
            .unwrap_or_default()
    ));
    for r in rows {
        out(&line(r));
    }
    Ok(true)
}
