//! A ChatGPT data export's `conversations.json`: a list of conversations,
//! each a tree of nodes (`mapping`: node id → `{message, parent,
//! children}`) with a `current_node`. A node's `message` has an
//! `author.role`, a `create_time` (Unix seconds), `content.content_type`
//! and `content.parts`, a `recipient`, and `metadata` (`model_slug`,
//! `attachments`, `is_visually_hidden_from_conversation`).
//!
//! What is kept: the user's and the assistant's visible messages (text,
//! and the text of multimodal ones), as a tree: an edited prompt is a
//! sibling of the original, a regenerated answer a sibling of the first.
//! What is left out, counted: system messages, tool messages, assistant
//! messages addressed to a tool (`recipient` other than `all`), hidden ones
//! (custom instructions, context the app injected), and non-text content
//! (browsing displays, code output, thoughts). A left-out node's children
//! hang from its nearest kept ancestor. Images and files (`image_asset_pointer`
//! parts, `metadata.attachments`) are not in `conversations.json`: each is
//! noted in its message's text.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::Value;
use switchboard_protocol::ImportSource;

use super::{ImportedConversation, ImportedMessage, ParsedExport, fallback_title, missing_note};
use crate::chat::Role;
use crate::store::StoreError;

#[derive(Deserialize)]
struct Conversation {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    update_time: Option<f64>,
    mapping: HashMap<String, Node>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    default_model_slug: Option<String>,
}

#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    children: Vec<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Option<String>,
    author: Author,
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct Author {
    role: String,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    parts: Vec<Value>,
    /// `code` content keeps its text here.
    #[serde(default)]
    text: Option<String>,
}

fn ms(seconds: Option<f64>) -> Option<i64> {
    seconds
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| (s * 1000.0).round() as i64)
}

/// Read the export (a JSON list already parsed).
pub fn parse(doc: Value) -> Result<ParsedExport, StoreError> {
    let Value::Array(items) = doc else {
        return Err(StoreError::Import {
            message: "a ChatGPT export is a list of conversations".into(),
        });
    };
    let mut out = ParsedExport {
        source: ImportSource::Chatgpt,
        conversations: Vec::with_capacity(items.len()),
        skipped_messages: 0,
        missing_attachments: Vec::new(),
    };
    for (i, item) in items.into_iter().enumerate() {
        let title = item
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let conversation: Conversation =
            serde_json::from_value(item).map_err(|e| StoreError::Import {
                message: format!(
                    "conversation {} ({title:?}) is not in ChatGPT's export format: {e}",
                    i + 1
                ),
            })?;
        out.conversations.push(conversation_of(
            conversation,
            i,
            &mut out.skipped_messages,
            &mut out.missing_attachments,
        )?);
    }
    Ok(out)
}

/// What a kept message says: its text, with notes for missing files.
fn text_of(message: &Message, missing: &mut Vec<String>) -> Option<String> {
    let content = message.content.as_ref()?;
    let kind = content.content_type.as_deref().unwrap_or("text");
    let mut text: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut noted: HashSet<String> = HashSet::new();
    // Files the message names, by id, with their names.
    let attachments: Vec<(String, String)> = message
        .metadata
        .as_ref()
        .and_then(|m| m.get("attachments"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| {
            let id = a.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
            let name = a
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| id.clone(), str::to_owned);
            (id, name)
        })
        .collect();
    match kind {
        "text" | "multimodal_text" => {
            for part in &content.parts {
                match part {
                    Value::String(s) => text.push(s.clone()),
                    Value::Object(o) => {
                        let pointer = o.get("asset_pointer").and_then(Value::as_str).unwrap_or("");
                        let id = pointer.rsplit('/').next().unwrap_or(pointer).to_owned();
                        let name = attachments
                            .iter()
                            .find(|(aid, _)| !aid.is_empty() && *aid == id)
                            .map_or_else(|| id.clone(), |(_, n)| n.clone());
                        let size = match (
                            o.get("width").and_then(Value::as_u64),
                            o.get("height").and_then(Value::as_u64),
                        ) {
                            (Some(w), Some(h)) => format!(" ({w}×{h} image)"),
                            _ => String::new(),
                        };
                        let label = if name.is_empty() {
                            "an image".to_owned()
                        } else {
                            name
                        };
                        if noted.insert(label.clone()) {
                            missing.push(label.clone());
                            notes.push(missing_note(&format!("{label}{size}")));
                        }
                    }
                    _ => {}
                }
            }
        }
        "code" => text.push(content.text.clone().unwrap_or_default()),
        _ => return None,
    }
    for (_, name) in &attachments {
        if noted.insert(name.clone()) {
            missing.push(name.clone());
            notes.push(missing_note(name));
        }
    }
    let mut all = text.join("\n");
    for n in notes {
        if !all.is_empty() {
            all.push_str("\n\n");
        }
        all.push_str(&n);
    }
    Some(all)
}

/// Is `message` one the user saw, and who wrote it?
fn kept_role(message: &Message) -> Option<Role> {
    let hidden = message
        .metadata
        .as_ref()
        .and_then(|m| m.get("is_visually_hidden_from_conversation"))
        .and_then(Value::as_bool)
        == Some(true);
    if hidden {
        return None;
    }
    let kind = message
        .content
        .as_ref()
        .and_then(|c| c.content_type.as_deref())
        .unwrap_or("text");
    match message.author.role.as_str() {
        "user" if kind != "user_editable_context" => Some(Role::User),
        "assistant" if message.recipient.as_deref().unwrap_or("all") == "all" => {
            matches!(kind, "text" | "multimodal_text" | "code").then_some(Role::Assistant)
        }
        _ => None,
    }
}

fn conversation_of(
    c: Conversation,
    index: usize,
    skipped: &mut u64,
    missing: &mut Vec<String>,
) -> Result<ImportedConversation, StoreError> {
    let source_id = c
        .conversation_id
        .clone()
        .or_else(|| c.id.clone())
        .ok_or_else(|| StoreError::Import {
            message: format!(
                "conversation {} ({:?}) has no id (conversation_id)",
                index + 1,
                c.title.as_deref().unwrap_or("")
            ),
        })?;
    let created = ms(c.create_time).unwrap_or(0);
    // Roots: nodes whose parent is not in the tree. Children are visited in
    // the order they were written (their create_time), so an edit comes
    // after the prompt it replaced.
    let mut roots: Vec<&String> = c
        .mapping
        .iter()
        .filter(|(_, n)| n.parent.as_ref().is_none_or(|p| !c.mapping.contains_key(p)))
        .map(|(id, _)| id)
        .collect();
    let time_of = |id: &String| {
        c.mapping
            .get(id)
            .and_then(|n| n.message.as_ref())
            .and_then(|m| m.create_time)
            .unwrap_or(0.0)
    };
    roots.sort_by(|a, b| time_of(a).total_cmp(&time_of(b)).then(a.cmp(b)));
    let mut messages: Vec<ImportedMessage> = Vec::new();
    let mut seen: HashSet<&String> = HashSet::new();
    // (node id, index of the nearest kept ancestor)
    let mut stack: Vec<(&String, Option<usize>)> =
        roots.into_iter().rev().map(|r| (r, None)).collect();
    while let Some((id, parent)) = stack.pop() {
        if !seen.insert(id) {
            continue; // a cycle or a node listed twice
        }
        let Some(node) = c.mapping.get(id) else {
            continue;
        };
        let mut here = parent;
        if let Some(m) = &node.message {
            let role = kept_role(m);
            let text = role.and_then(|_| text_of(m, missing));
            match (role, text) {
                (Some(role), Some(text)) if !text.trim().is_empty() => {
                    let model = (role == Role::Assistant).then(|| {
                        m.metadata
                            .as_ref()
                            .and_then(|md| md.get("model_slug"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .or_else(|| c.default_model_slug.clone())
                    });
                    messages.push(ImportedMessage {
                        source_id: m.id.clone().unwrap_or_else(|| id.clone()),
                        parent,
                        role,
                        content: text,
                        reasoning: None,
                        created_at_ms: ms(m.create_time).unwrap_or(created),
                        provider: (role == Role::Assistant).then(|| "openai".to_owned()),
                        model: model.flatten(),
                    });
                    here = Some(messages.len() - 1);
                }
                _ => {
                    // The empty root, system prompts, tools, hidden context.
                    let empty_placeholder = m.author.role == "system"
                        && m.content
                            .as_ref()
                            .is_none_or(|c| c.parts.iter().all(|p| p.as_str() == Some("")));
                    if !empty_placeholder {
                        *skipped += 1;
                    }
                }
            }
        }
        let mut children: Vec<&String> = node.children.iter().collect();
        children.sort_by(|a, b| time_of(a).total_cmp(&time_of(b)).then(a.cmp(b)));
        for child in children.into_iter().rev() {
            stack.push((child, here));
        }
    }
    let updated = ms(c.update_time)
        .or_else(|| messages.iter().map(|m| m.created_at_ms).max())
        .unwrap_or(created)
        .max(created);
    Ok(ImportedConversation {
        source_id,
        title: fallback_title(c.title.as_deref(), &messages),
        created_at_ms: created,
        updated_at_ms: updated,
        messages,
    })
}
