//! `budget`: the `[budgets.<name>]` tables of config.toml. Edits go
//! through the engine's atomic writer, which keeps the rest of the file as
//! it was (comments included), refuses a change that would not load, and
//! keeps the previous file as `config.toml.bak`.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use switchboard_engine::budgets::{self, BudgetEdit, BudgetEditError};
use switchboard_engine::store::time::format_date;
use switchboard_engine::store::{BudgetState, BudgetStatus};
use switchboard_engine::{Config, Cost, DataDir};

use crate::UsageError;
use crate::history::open_store;
use crate::output::{out, warning};

#[derive(Debug, Args)]
pub struct BudgetArgs {
    #[command(subcommand)]
    command: BudgetCommand,
}

#[derive(Debug, Subcommand)]
enum BudgetCommand {
    /// Add or replace a budget.
    Set {
        /// Its name (letters, digits, '-', '_', '.').
        name: String,
        /// `global`, `provider:<id>`, `route:<name>` or `tag:<tag>`.
        #[arg(long, default_value = "global")]
        scope: String,
        /// `daily` or `monthly` (UTC).
        #[arg(long, default_value = "monthly")]
        period: String,
        /// The limit in USD, e.g. 10.00.
        #[arg(long = "limit-usd", value_name = "USD")]
        limit_usd: String,
        /// Warn from this fraction of the limit.
        #[arg(long = "warn-at", default_value_t = 0.8)]
        warn_at: f64,
        /// Only warn; never refuse a request.
        #[arg(long = "warn-only")]
        warn_only: bool,
    },
    /// Every budget with what its current period has spent.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a budget.
    Rm {
        /// Its name.
        name: String,
    },
}

fn status_json(s: &BudgetStatus) -> Value {
    let b = &s.budget;
    json!({
        "name": b.name,
        "scope": b.scope.to_string(),
        "period": b.period.as_str(),
        "limit_usd": b.limit.as_f64(),
        "warn_at": b.warn_at(),
        "hard": b.hard,
        "period_start": format_date(s.period_start_ms),
        "spent_usd": s.spent.as_f64(),
        "spent_nanos": s.spent.nanos(),
        "held_usd": s.held.as_f64(),
        "state": s.state,
    })
}

pub fn run(args: BudgetArgs) -> Result<bool, UsageError> {
    let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
    let path = dir.config_file();
    let cfg_err = |e: switchboard_engine::ConfigError| UsageError(e.to_string());
    match args.command {
        BudgetCommand::Set {
            name,
            scope,
            period,
            limit_usd,
            warn_at,
            warn_only,
        } => {
            // The same checks and writer as the app's budget editor; a bad
            // field is reported with the flag that set it.
            let edit = BudgetEdit {
                name: name.clone(),
                replaces: None,
                scope: scope.clone(),
                period: period.clone(),
                limit_usd: limit_usd.clone(),
                warn_at,
                hard: !warn_only,
            };
            let config = budgets::save_budget(&path, &edit).map_err(|e| match e {
                BudgetEditError::Invalid { field, message } => {
                    let flag = match field {
                        "limit_usd" => "--limit-usd".to_owned(),
                        "warn_at" => "--warn-at".to_owned(),
                        "name" => "NAME".to_owned(),
                        other => format!("--{other}"),
                    };
                    UsageError(format!("{flag}: {message}"))
                }
                BudgetEditError::Config(c) => cfg_err(c),
            })?;
            let limit = Cost::from_usd(&limit_usd).unwrap_or(Cost::ZERO);
            for w in &config.warnings {
                warning(&format!("{}: {w}", config.path.display()));
            }
            out(&format!(
                "Budget {name}: {} {period} limit ${} for {scope}, warning at {:.0}%{}. Saved to {}.\n",
                if warn_only { "warn-only" } else { "hard" },
                limit.usd(),
                warn_at * 100.0,
                if warn_only {
                    ""
                } else {
                    "; requests that would exceed it are refused"
                },
                path.display()
            ));
            Ok(true)
        }
        BudgetCommand::Rm { name } => {
            budgets::remove_budget(&path, &name).map_err(|e| match e {
                BudgetEditError::Config(c) => cfg_err(c),
                invalid @ BudgetEditError::Invalid { .. } => UsageError(invalid.to_string()),
            })?;
            out(&format!("Removed budget {name} from {}.\n", path.display()));
            Ok(true)
        }
        BudgetCommand::List { json } => {
            let config = Config::load(&path).map_err(cfg_err)?;
            let budgets = config.budget_list().map_err(cfg_err)?;
            let store = open_store()?;
            let status = store
                .budget_status(&budgets)
                .map_err(|e| UsageError(e.to_string()))?;
            if json {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&Value::Array(
                        status.iter().map(status_json).collect()
                    ))
                    .unwrap_or_default()
                ));
            } else if status.is_empty() {
                out("No budgets. Add one with: switchboard-cli budget set NAME --limit-usd 10\n");
            } else {
                for s in &status {
                    let b = &s.budget;
                    let pct = if b.limit.nanos() > 0 {
                        s.spent.nanos() as f64 * 100.0 / b.limit.nanos() as f64
                    } else {
                        0.0
                    };
                    let state = match s.state {
                        BudgetState::Ok => "ok",
                        BudgetState::Warning => "WARNING",
                        BudgetState::Exceeded => "EXCEEDED",
                    };
                    out(&format!(
                        "{:<20} {:<22} {:<8} {:>12} of {:<10} {:>5.1}%  {:<8} {}{}\n",
                        b.name,
                        b.scope.to_string(),
                        b.period.as_str(),
                        s.spent.to_string(),
                        b.limit.to_string(),
                        pct,
                        state,
                        if b.hard { "hard" } else { "warn-only" },
                        if s.held > Cost::ZERO {
                            format!(" ({} in flight)", s.held)
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            Ok(true)
        }
    }
}
