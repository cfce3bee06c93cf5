//! `history`: past conversations, a page at a time (`list`), full-text
//! search with highlighted snippets (`search`), and export to Markdown or
//! JSON / import from JSON. Exports hold history only, never a key.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use switchboard_engine::store::time::format_datetime;
use switchboard_engine::store::{Conversation, SearchHit};
use switchboard_engine::{ConversationId, DataDir, Store};

use crate::UsageError;
use crate::output::out;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    command: HistoryCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Markdown, for people.
    Md,
    /// JSON, with models, usage, cost, timings and attempts; `import` reads it.
    Json,
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// Conversations, pinned first, then most recent.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Continue after this cursor (printed at the end of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// Include archived conversations.
        #[arg(long)]
        archived: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over every message; best match first.
    Search {
        /// Words to find (all must match; `word*` matches a prefix).
        query: String,
        /// How many.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Skip this many results.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a conversation as Markdown or JSON.
    Export {
        /// The conversation id (from `history list`).
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Md)]
        format: Format,
        /// Same as `--format json`.
        #[arg(long)]
        json: bool,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import a JSON export as a new conversation (`-` reads stdin).
    Import {
        /// The file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The data directory's database, or an error that exits 2.
pub fn open_store() -> Result<Store, UsageError> {
    let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
    Store::open(&dir).map_err(|e| UsageError(e.to_string()))
}

fn print_json(v: &Value) {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(v).unwrap_or_default()
    ));
}

fn conversation_json(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "title": c.title,
        "tags": c.tags,
        "pinned": c.pinned,
        "archived": c.archived,
        "messages": c.message_count,
        "cost_usd": c.cost.as_f64(),
        "cost_nanos": c.cost.nanos(),
        "created_at_ms": c.created_at_ms,
        "updated_at_ms": c.updated_at_ms,
    })
}

fn hit_json(h: &SearchHit) -> Value {
    json!({
        "conversation": h.conversation,
        "title": h.title,
        "message": h.message,
        "role": h.role,
        "model": h.model,
        "snippet": h.snippet_marked("**", "**"),
        "snippet_parts": h.snippet,
        "matching_messages": h.matching_messages,
        "score": h.score,
    })
}

fn parse_id(id: &str) -> Result<ConversationId, UsageError> {
    id.parse().map_err(|_| {
        UsageError(format!(
            "{id:?} is not a conversation id (see `history list`)"
        ))
    })
}

pub fn run(args: HistoryArgs) -> Result<bool, UsageError> {
    let store = open_store()?;
    let fail = |e: switchboard_engine::StoreError| UsageError(e.to_string());
    match args.command {
        HistoryCommand::List {
            limit,
            after,
            archived,
            json,
        } => {
            let page = store
                .conversations(after.as_deref(), limit, archived)
                .map_err(fail)?;
            if json {
                print_json(&json!({
                    "conversations": page.items.iter().map(conversation_json).collect::<Vec<_>>(),
                    "next": page.next,
                }));
            } else if page.items.is_empty() {
                out("No conversations.\n");
            } else {
                for c in &page.items {
                    let tags = if c.tags.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", c.tags.join(", "))
                    };
                    out(&format!(
                        "{:>6} {} {:<40} {:>4} msgs {:>12}  {}{tags}{}\n",
                        c.id,
                        if c.pinned { "★" } else { " " },
                        c.title,
                        c.message_count,
                        c.cost.to_string(),
                        format_datetime(c.updated_at_ms),
                        if c.archived { "  (archived)" } else { "" },
                    ));
                }
                if let Some(next) = page.next {
                    out(&format!("more: history list --after {next}\n"));
                }
            }
            Ok(true)
        }
        HistoryCommand::Search {
            query,
            limit,
            offset,
            json,
        } => {
            let hits = store.search(&query, limit, offset).map_err(fail)?;
            if json {
                print_json(&Value::Array(hits.iter().map(hit_json).collect()));
            } else if hits.is_empty() {
                out(&format!("Nothing matches {query:?}.\n"));
            } else {
                for h in &hits {
                    out(&format!(
                        "{:>6}  {}  ({} matching message{})\n        {}\n",
                        h.conversation,
                        h.title,
                        h.matching_messages,
                        if h.matching_messages == 1 { "" } else { "s" },
                        h.snippet_marked("**", "**").replace('\n', " ")
                    ));
                }
            }
            Ok(true)
        }
        HistoryCommand::Export {
            id,
            format,
            json,
            output,
        } => {
            let id = parse_id(&id)?;
            let text = if json || format == Format::Json {
                store.export_json(id).map(|mut t| {
                    t.push('\n');
                    t
                })
            } else {
                store.export_markdown(id)
            }
            .map_err(fail)?;
            match output {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?,
                None => out(&text),
            }
            Ok(true)
        }
        HistoryCommand::Import { file, json } => {
            let text = if file.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                    .map_err(|e| UsageError(format!("cannot read stdin: {e}")))?;
                t
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?
            };
            let id = store.import_json(&text).map_err(fail)?;
            if json {
                print_json(&json!({ "id": id }));
            } else {
                out(&format!("Imported as conversation {id}.\n"));
            }
            Ok(true)
        }
    }
}
