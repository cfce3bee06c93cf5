//! A Claude data export's `conversations.json`: a list of conversations
//! (`uuid`, `name`, `created_at`, `updated_at`, `chat_messages`), each
//! message with a `uuid`, a `sender` (`human` or `assistant`), `text`,
//! `content` blocks (`text`, `thinking`, `tool_use`, `tool_result`, ...),
//! `created_at`, `attachments` (files whose text was extracted:
//! `file_name`, `extracted_content`) and `files` (uploads the export does
//! not contain: `file_name` only). Times are RFC 3339.
//!
//! Messages follow `parent_message_uuid` when the export has it (an edited
//! prompt or a retried answer is then a branch), else the one before them.
//! Extracted attachment text is kept in the message (it is what the model
//! read), in a fenced block under the file's name; files without content
//! are noted. Tool calls and results are left out; thinking becomes the
//! answer's reasoning.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use switchboard_protocol::ImportSource;

use super::{ImportedConversation, ImportedMessage, ParsedExport, fallback_title, missing_note};
use crate::chat::Role;
use crate::store::StoreError;
use crate::store::time::parse_rfc3339;

/// The parent id Claude gives a conversation's first message.
const ROOT_PARENT: &str = "00000000-0000-4000-8000-000000000000";

#[derive(Deserialize)]
struct Conversation {
    uuid: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    model: Option<String>,
    chat_messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    uuid: String,
    sender: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    attachments: Vec<Value>,
    #[serde(default)]
    files: Vec<Value>,
    #[serde(default)]
    parent_message_uuid: Option<String>,
}

fn time(text: Option<&str>) -> Option<i64> {
    text.and_then(parse_rfc3339)
}

/// Read the export (a JSON list already parsed).
pub fn parse(doc: Value) -> Result<ParsedExport, StoreError> {
    let Value::Array(items) = doc else {
        return Err(StoreError::Import {
            message: "a Claude export is a list of conversations".into(),
        });
    };
    let mut out = ParsedExport {
        source: ImportSource::Claude,
        conversations: Vec::with_capacity(items.len()),
        skipped_messages: 0,
        missing_attachments: Vec::new(),
    };
    for (i, item) in items.into_iter().enumerate() {
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let c: Conversation = serde_json::from_value(item).map_err(|e| StoreError::Import {
            message: format!(
                "conversation {} ({name:?}) is not in Claude's export format: {e}",
                i + 1
            ),
        })?;
        let conversation = conversation_of(c, &mut out)?;
        out.conversations.push(conversation);
    }
    Ok(out)
}

fn file_name(v: &Value) -> String {
    v.get("file_name")
        .and_then(Value::as_str)
        .unwrap_or("a file")
        .to_owned()
}

fn conversation_of(
    c: Conversation,
    out: &mut ParsedExport,
) -> Result<ImportedConversation, StoreError> {
    let created = time(c.created_at.as_deref())
        .or_else(|| {
            c.chat_messages
                .iter()
                .find_map(|m| time(m.created_at.as_deref()))
        })
        .unwrap_or(0);
    let mut messages: Vec<ImportedMessage> = Vec::with_capacity(c.chat_messages.len());
    // The nearest kept message for every message seen, kept or not.
    let mut kept_at: HashMap<String, Option<usize>> = HashMap::new();
    let mut previous: Option<usize> = None;
    for m in c.chat_messages {
        let parent = match m.parent_message_uuid.as_deref() {
            Some(ROOT_PARENT) => None,
            Some(p) => match kept_at.get(p) {
                Some(found) => *found,
                None => previous,
            },
            None => previous,
        };
        let role = match m.sender.as_str() {
            "human" => Role::User,
            "assistant" => Role::Assistant,
            _ => {
                out.skipped_messages += 1;
                kept_at.insert(m.uuid, parent);
                continue;
            }
        };
        let mut text: Vec<String> = Vec::new();
        let mut reasoning: Vec<String> = Vec::new();
        for block in &m.content {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    if let Some(t) = block.get("text").and_then(Value::as_str) {
                        text.push(t.to_owned());
                    }
                }
                Some("thinking") => {
                    if let Some(t) = block.get("thinking").and_then(Value::as_str) {
                        reasoning.push(t.to_owned());
                    }
                }
                _ => {}
            }
        }
        let mut content = if text.is_empty() {
            m.text.clone().unwrap_or_default()
        } else {
            text.join("\n\n")
        };
        for a in &m.attachments {
            let name = file_name(a);
            match a.get("extracted_content").and_then(Value::as_str) {
                Some(extracted) if !extracted.is_empty() => {
                    content.push_str(&format!("\n\n[Attachment: {name}]\n```\n{extracted}\n```"));
                }
                _ => {
                    out.missing_attachments.push(name.clone());
                    content.push_str(&format!("\n\n{}", missing_note(&name)));
                }
            }
        }
        for f in &m.files {
            let name = file_name(f);
            out.missing_attachments.push(name.clone());
            content.push_str(&format!("\n\n{}", missing_note(&name)));
        }
        let content = content.trim_start().to_owned();
        if content.trim().is_empty() {
            out.skipped_messages += 1;
            kept_at.insert(m.uuid, parent);
            continue;
        }
        messages.push(ImportedMessage {
            source_id: m.uuid.clone(),
            parent,
            role,
            content,
            reasoning: (!reasoning.is_empty()).then(|| reasoning.join("\n\n")),
            created_at_ms: time(m.created_at.as_deref()).unwrap_or(created),
            provider: (role == Role::Assistant).then(|| "anthropic".to_owned()),
            model: if role == Role::Assistant {
                c.model.clone()
            } else {
                None
            },
        });
        let at = messages.len() - 1;
        kept_at.insert(m.uuid, Some(at));
        previous = Some(at);
    }
    let updated = time(c.updated_at.as_deref())
        .or_else(|| messages.iter().map(|m| m.created_at_ms).max())
        .unwrap_or(created)
        .max(created);
    Ok(ImportedConversation {
        source_id: c.uuid,
        title: fallback_title(c.name.as_deref(), &messages),
        created_at_ms: created,
        updated_at_ms: updated,
        messages,
    })
}
