//! `history`: past conversations, a page at a time (`list`), full-text
//! search with highlighted snippets (`search`), export to Markdown (images
//! and PDFs linked to their files in the data directory) or JSON (with
//! them, base64), and `import`: a Switchboard JSON export, or a ChatGPT or
//! Claude data export's `conversations.json` (told apart by content), with
//! progress on stderr. Exports hold history only, never a key.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use switchboard_engine::store::time::format_datetime;
use switchboard_engine::store::{Conversation, SearchHit};
use switchboard_engine::{ConversationId, DataDir, Store};
use switchboard_protocol::{ImportProgress, ImportSource, ImportSummary};

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
    /// Import a Switchboard JSON export, or a ChatGPT or Claude data
    /// export's conversations.json (`-` reads stdin); importing the same
    /// export again adds nothing twice.
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
        "recent_only": h.recent_only,
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
                        "{:>6}  {}  ({} matching message{}{})\n        {}\n",
                        h.conversation,
                        h.title,
                        h.matching_messages,
                        if h.matching_messages == 1 { "" } else { "s" },
                        if h.recent_only {
                            " among the newest matches"
                        } else {
                            ""
                        },
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
            let mut progress = Progress::new();
            let summary = switchboard_engine::import::import_text(&store, &text, &mut |p| {
                progress.show(&p);
            });
            progress.end();
            let summary = summary.map_err(fail)?;
            if json {
                print_json(&summary_json(&summary));
            } else {
                out(&summary_text(&summary));
            }
            Ok(true)
        }
    }
}

/// Import progress on stderr: one line rewritten in place at a terminal,
/// a line per batch otherwise (logs, tests).
struct Progress {
    terminal: bool,
    shown: bool,
}

impl Progress {
    fn new() -> Self {
        use std::io::IsTerminal;
        Self {
            terminal: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(&mut self, p: &ImportProgress) {
        use std::io::Write;
        // A single conversation (a Switchboard export) needs no progress.
        if p.total <= 1 {
            return;
        }
        let line = format!(
            "importing {}: {}/{} conversations ({} new)",
            source_label(p.source),
            p.done,
            p.total,
            p.added
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.shown = true;
    }

    fn end(&mut self) {
        if self.terminal && self.shown {
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock());
        }
    }
}

fn source_label(source: ImportSource) -> &'static str {
    match source {
        ImportSource::Chatgpt => "ChatGPT export",
        ImportSource::Claude => "Claude export",
        ImportSource::Switchboard => "Switchboard export",
    }
}

fn summary_json(s: &ImportSummary) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    // What the command printed before imports of other apps existed.
    if s.source == ImportSource::Switchboard {
        v["id"] = json!(s.latest);
    }
    v
}

fn summary_text(s: &ImportSummary) -> String {
    if s.source == ImportSource::Switchboard {
        return format!(
            "Imported as conversation {}.\n",
            s.latest.map(|id| id.to_string()).unwrap_or_default()
        );
    }
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut text = format!(
        "Imported {} from the {}: {} new, {} with new messages, {} already imported; {} written",
        plural(s.conversations, "conversation", "conversations"),
        source_label(s.source),
        s.added,
        s.updated,
        s.unchanged,
        plural(s.messages, "message", "messages"),
    );
    if s.skipped_messages > 0 {
        text.push_str(&format!(
            ", {} left out (system prompts, tool calls and results, hidden context)",
            s.skipped_messages
        ));
    }
    text.push_str(".\n");
    if s.missing_attachments > 0 {
        text.push_str(&format!(
            "{} not in the export (noted in their messages): {}{}\n",
            plural(s.missing_attachments, "attachment is", "attachments are"),
            s.missing_examples.join(", "),
            if s.missing_attachments > s.missing_examples.len() as u64 {
                ", …"
            } else {
                ""
            }
        ));
    }
    if let Some(id) = s.latest {
        text.push_str(&format!(
            "Latest: conversation {id} (history export {id}).\n"
        ));
    }
    text
}
