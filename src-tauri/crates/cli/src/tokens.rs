//! `tokens`: client tokens of the Local API (`serve`). `create` prints the
//! token once, alone on stdout (so `TOKEN=$(switchboard-cli tokens create
//! cursor)` works); only its hash is kept. Each request made with a token
//! is tagged in the ledger with its name (and its `--tag`), so `spend --by
//! tag` breaks the Local API's spend down by tool.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use switchboard_engine::store::time::format_datetime;
use switchboard_engine::store::{ClientToken, NewToken};
use switchboard_engine::{Config, DataDir};
use switchboard_gateway::tokens::{self, TokenError};

use crate::UsageError;
use crate::history::open_store;
use crate::output::{error_line, out};

#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(subcommand)]
    command: TokensCommand,
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Make a token and print it (shown once; only its hash is kept).
    Create {
        /// Its name (letters, digits, '.', '_', '-'): its requests' ledger tag.
        name: String,
        /// A second ledger tag for its requests (a project, a client).
        #[arg(long)]
        tag: Option<String>,
        /// A budget (from config.toml) its requests must stay within; it
        /// must count them (scope global, or tag:NAME / tag:TAG).
        #[arg(long)]
        budget: Option<String>,
        /// Save its requests and answers in history (else only the ledger
        /// sees them).
        #[arg(long = "record-history")]
        record_history: bool,
    },
    /// The tokens (never the tokens themselves: their last four characters).
    List {
        /// Revoked ones too.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: a running Local API refuses it within a second.
    Revoke {
        /// Its name.
        name: String,
    },
}

fn token_json(t: &ClientToken) -> Value {
    json!({
        "name": t.name,
        "tag": t.tag,
        "budget": t.budget,
        "record_history": t.record_history,
        "last4": t.last4,
        "created_at_ms": t.created_at_ms,
        "revoked_at_ms": t.revoked_at_ms,
        "last_used_at_ms": t.last_used_at_ms,
    })
}

fn usage(e: TokenError) -> UsageError {
    UsageError(e.to_string())
}

pub fn run(args: TokensArgs) -> Result<bool, UsageError> {
    let store = open_store()?;
    match args.command {
        TokensCommand::Create {
            name,
            tag,
            budget,
            record_history,
        } => {
            let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
            let config = Config::load(&dir.config_file()).map_err(|e| UsageError(e.to_string()))?;
            let (made, token) = tokens::create(
                &store,
                &config,
                &NewToken {
                    name,
                    tag,
                    budget,
                    record_history,
                },
            )
            .map_err(usage)?;
            out(&format!("{}\n", token.expose()));
            error_line(&format!(
                "token \"{}\" made: shown once, only its hash is kept; send it as the API key to \
                 the Local API (switchboard-cli serve)",
                made.name
            ));
            Ok(true)
        }
        TokensCommand::List { all, json } => {
            let list = tokens::list(&store, all).map_err(usage)?;
            if json {
                let v: Vec<Value> = list.iter().map(token_json).collect();
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                ));
                return Ok(true);
            }
            if list.is_empty() {
                out("no tokens: make one with `switchboard-cli tokens create NAME`\n");
            }
            for t in &list {
                let mut parts = vec![format!("{}  ••••{}", t.name, t.last4)];
                if let Some(tag) = &t.tag {
                    parts.push(format!("tag {tag}"));
                }
                if let Some(b) = &t.budget {
                    parts.push(format!("budget {b}"));
                }
                if t.record_history {
                    parts.push("records history".into());
                }
                parts.push(format!("made {}", format_datetime(t.created_at_ms)));
                parts.push(match t.last_used_at_ms {
                    Some(at) => format!("last used {}", format_datetime(at)),
                    None => "never used".into(),
                });
                if let Some(at) = t.revoked_at_ms {
                    parts.push(format!("revoked {}", format_datetime(at)));
                }
                out(&format!("{}\n", parts.join(" · ")));
            }
            Ok(true)
        }
        TokensCommand::Revoke { name } => {
            if tokens::revoke(&store, &name).map_err(usage)? {
                out(&format!("revoked token \"{name}\"\n"));
                Ok(true)
            } else {
                Err(UsageError(format!("no live token named \"{name}\"")))
            }
        }
    }
}
