//! Bringing history from other apps: a ChatGPT data export's
//! `conversations.json` ([`chatgpt`]), a Claude data export's
//! `conversations.json` ([`claude`]), or Switchboard's own JSON export of a
//! conversation. The kind of file is told from its content.
//!
//! A vendor export is read whole and checked before anything is written: a
//! malformed or unknown file is refused with the reason, and nothing is
//! written. Its conversations keep their titles, times, models and branches
//! (every message's parent: an edited prompt or a regenerated answer is a
//! branch, as in the app it came from); system prompts, tool calls and
//! their results, and hidden context are left out; files the export
//! mentions but does not contain are noted in their message's text. Each
//! conversation and message remembers its id in the source, so importing
//! the same file again adds nothing, and a newer export of the same account
//! adds only what is new. The writing runs in batches with progress
//! ([`Store::import_conversations`]), undone as a whole if it fails.

pub mod chatgpt;
pub mod claude;

use std::path::Path;

use serde_json::Value;
use switchboard_protocol::{ImportProgress, ImportSource, ImportSummary};

use crate::chat::Role;
use crate::store::{ConversationExport, EXPORT_FORMAT, Store, StoreError};

/// One conversation read from an export.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedConversation {
    /// Its id in the source.
    pub source_id: String,
    /// Its title.
    pub title: String,
    /// Created (Unix ms).
    pub created_at_ms: i64,
    /// Last updated (Unix ms).
    pub updated_at_ms: i64,
    /// Its messages, each after its parent.
    pub messages: Vec<ImportedMessage>,
}

/// One message read from an export.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedMessage {
    /// Its id in the source.
    pub source_id: String,
    /// The index (in [`ImportedConversation::messages`]) of the message it
    /// follows: the nearest one kept above it in the source's tree.
    pub parent: Option<usize>,
    /// Who wrote it.
    pub role: Role,
    /// Its text (with a note for each file the export left out).
    pub content: String,
    /// The model's reasoning, when the export has it.
    pub reasoning: Option<String>,
    /// Written (Unix ms).
    pub created_at_ms: i64,
    /// The vendor (`openai`, `anthropic`) of an answer.
    pub provider: Option<String>,
    /// The model of an answer, when the export names it.
    pub model: Option<String>,
}

/// A vendor export, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedExport {
    /// Where it came from.
    pub source: ImportSource,
    /// Its conversations, in file order.
    pub conversations: Vec<ImportedConversation>,
    /// Messages left out on purpose (system, tool, hidden).
    pub skipped_messages: u64,
    /// Names of files mentioned but not contained.
    pub missing_attachments: Vec<String>,
}

/// What a file turned out to be.
#[derive(Debug)]
pub enum Parsed {
    /// A ChatGPT or Claude export.
    Vendor(ParsedExport),
    /// A Switchboard export of one conversation.
    Switchboard(Box<ConversationExport>),
}

/// The source's name in the `import_sources` table.
pub fn source_name(source: ImportSource) -> &'static str {
    match source {
        ImportSource::Chatgpt => "chatgpt",
        ImportSource::Claude => "claude",
        ImportSource::Switchboard => "switchboard",
    }
}

fn refuse(message: impl Into<String>) -> StoreError {
    StoreError::Import {
        message: message.into(),
    }
}

/// The note put in a message for a file its export mentions but does not
/// contain.
pub fn missing_note(what: &str) -> String {
    format!("[Attachment not included in the export: {what}]")
}

/// Tell what `text` is and read it; nothing is written.
pub fn parse(text: &str) -> Result<Parsed, StoreError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| refuse(format!("the file is not JSON ({e})")))?;
    match &doc {
        Value::Object(o) if o.contains_key("format") => {
            if o.get("format").and_then(Value::as_str) != Some(EXPORT_FORMAT) {
                return Err(refuse(format!(
                    "format is {}, not a Switchboard conversation export ({EXPORT_FORMAT:?})",
                    o.get("format").map(Value::to_string).unwrap_or_default()
                )));
            }
            let export: ConversationExport = serde_json::from_value(doc)
                .map_err(|e| refuse(format!("not a valid Switchboard conversation export: {e}")))?;
            Ok(Parsed::Switchboard(Box::new(export)))
        }
        Value::Array(items) => {
            if !items.iter().any(Value::is_object) {
                return Err(refuse(if items.is_empty() {
                    "the file is an empty list: it holds no conversations".to_owned()
                } else {
                    "the file is a list, but not of conversations".to_owned()
                }));
            }
            // Told apart by any entry, so that one broken conversation is
            // refused as such rather than the file as unknown.
            let any = |key: &str| items.iter().any(|v| v.get(key).is_some());
            if any("mapping") {
                chatgpt::parse(doc).map(Parsed::Vendor)
            } else if any("chat_messages") {
                claude::parse(doc).map(Parsed::Vendor)
            } else {
                Err(refuse(
                    "the file is a list, but its entries have neither `mapping` (a ChatGPT \
                     export's conversations.json) nor `chat_messages` (a Claude export's)",
                ))
            }
        }
        _ => Err(refuse(
            "not a ChatGPT or Claude export (their conversations.json is a list of \
             conversations) nor a Switchboard conversation export",
        )),
    }
}

/// Import the file at `path` into `store`, reporting progress.
pub fn import_file(
    store: &Store,
    path: &Path,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<ImportSummary, StoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))?;
    import_text(store, &text, progress)
}

/// Import `text` (a file's content) into `store`, reporting progress.
pub fn import_text(
    store: &Store,
    text: &str,
    progress: &mut dyn FnMut(ImportProgress),
) -> Result<ImportSummary, StoreError> {
    match parse(text)? {
        Parsed::Vendor(parsed) => store.import_conversations(&parsed, progress),
        Parsed::Switchboard(doc) => {
            let id = store.import(&doc)?;
            progress(ImportProgress {
                source: ImportSource::Switchboard,
                done: 1,
                total: 1,
                added: 1,
            });
            Ok(ImportSummary {
                source: ImportSource::Switchboard,
                conversations: 1,
                added: 1,
                updated: 0,
                unchanged: 0,
                messages: doc.messages.len() as u64,
                skipped_messages: 0,
                missing_attachments: 0,
                missing_examples: Vec::new(),
                latest: Some(id.0),
            })
        }
    }
}

/// A title from the first user message when the export has none.
pub(crate) fn fallback_title(title: Option<&str>, messages: &[ImportedMessage]) -> String {
    match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => t.to_owned(),
        None => messages
            .iter()
            .find(|m| m.role == Role::User && !m.content.trim().is_empty())
            .map(|m| crate::store::title_of(&m.content))
            .unwrap_or_else(|| "Untitled".to_owned()),
    }
}

#[cfg(test)]
mod tests;
