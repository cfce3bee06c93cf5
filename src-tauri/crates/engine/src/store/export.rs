//! A conversation out of the database and back in: Markdown for people,
//! JSON for machines and backups (every message with its model, usage,
//! cost, timings and the trace of attempts). Import gives everything new
//! ids and keeps the content and the tree of replies.
//!
//! Attachments travel inside the JSON (base64, with their SHA-256, media
//! type, size and name), so one file is the whole conversation; importing
//! it stores each once again (checked against its hash). Markdown links
//! them: to their files in the data directory, or wherever the caller
//! puts copies ([`markdown_with`]).
//!
//! Exports are built only from history rows, and history never holds a
//! key (keys live in the OS keychain), so no export can contain one.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::attachments::{AttachmentRef, StoredAttachment, reference_tx};
use super::decide::{Judgment, checked_vote, insert_judgment, insert_vote};
use super::history::{NewMessage, insert_attempts, insert_message, set_tags_tx};
use super::time::format_datetime;
use super::{ConversationId, MessageId, Store, StoreError};
use crate::attach::{Attachment, MediaKind, MediaType};
use crate::chat::{AttemptCost, FinishReason, Role, Usage};
use crate::error::ErrorKind;
use crate::hooks::{AttemptOutcome, AttemptRecord};
use crate::money::Cost;
use switchboard_protocol::Vote;

/// The `format` field of a JSON export.
pub const EXPORT_FORMAT: &str = "switchboard.conversation";
/// The newest export version this build reads. Version 2 added
/// attachments; an export without any is still written as version 1, so
/// older Switchboards read it.
pub const EXPORT_VERSION: u32 = 2;

/// One attempt in an export: the router's record as is.
pub type ExportedAttempt = AttemptRecord;

/// A conversation as exported to JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationExport {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// [`EXPORT_VERSION`] when written.
    pub version: u32,
    /// Title.
    pub title: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Created (Unix ms).
    pub created_at_ms: i64,
    /// Last updated (Unix ms).
    pub updated_at_ms: i64,
    /// Pinned.
    #[serde(default)]
    pub pinned: bool,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
    /// What the answers cost, in USD (exact decimal; informational).
    #[serde(default)]
    pub cost_usd: String,
    /// The messages, oldest first.
    pub messages: Vec<ExportedMessage>,
    /// Votes on rounds; ids are message ids inside this file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Vote>,
    /// What judges said about rounds (`round` is a message id inside this
    /// file); their cost is in `cost_usd`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judgments: Vec<Judgment>,
}

/// A failure as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedError {
    /// Its kind.
    pub kind: ErrorKind,
    /// Its message.
    pub message: String,
}

/// One message as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedMessage {
    /// Its id inside this file (parents refer to it); new on import.
    pub id: i64,
    /// The id (inside this file) of the message it follows.
    #[serde(default)]
    pub parent: Option<i64>,
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// Reasoning text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Written (Unix ms).
    pub created_at_ms: i64,
    /// Pane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pane: Option<u32>,
    /// Target label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Provider id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why the model stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Why the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ExportedError>,
    /// Token counts.
    #[serde(default)]
    pub usage: Usage,
    /// Cost: nano-dollars and where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<AttemptCost>,
    /// The same cost as an exact USD decimal, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<String>,
    /// Time to the first visible token (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Streamed thinking before the answer (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_ms: Option<f64>,
    /// Total time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    /// Output tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// The attempts behind an answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<ExportedAttempt>,
    /// Images and PDFs the message carried, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<ExportedAttachment>,
}

/// An attachment as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedAttachment {
    /// SHA-256 of the bytes (hex).
    pub sha256: String,
    /// Its name in the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// MIME type.
    pub media_type: String,
    /// Bytes.
    pub size: u64,
    /// The bytes, base64 (absent in exports made for Markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl ExportedAttachment {
    /// Its file relative to the data directory.
    pub fn relative_path(&self) -> Option<std::path::PathBuf> {
        let t = MediaType::from_mime(&self.media_type)?;
        Some(
            StoredAttachment {
                id: self.sha256.clone(),
                media_type: t,
                size: self.size,
                name: None,
                info: crate::attach::MediaInfo::Pdf { pages: None },
            }
            .relative_path(),
        )
    }

    /// The name to show.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let ext = MediaType::from_mime(&self.media_type).map_or("bin", MediaType::extension);
            format!("{}.{ext}", &self.sha256[..12.min(self.sha256.len())])
        })
    }
}

impl Store {
    /// A conversation with every message, trace and attachment (its bytes
    /// in base64), for export.
    pub fn export(&self, id: ConversationId) -> Result<ConversationExport, StoreError> {
        self.export_with(id, true)
    }

    /// [`Store::export`]; `with_data`: include the attachments' bytes.
    pub fn export_with(
        &self,
        id: ConversationId,
        with_data: bool,
    ) -> Result<ConversationExport, StoreError> {
        let conv = self.conversation(id)?;
        let mut attached = self.conversation_attachments(id)?;
        let mut messages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.messages(id, after.as_deref(), super::history::MAX_PAGE)?;
            for m in page.items {
                let attempts = if m.role == Role::Assistant {
                    self.attempts(m.id)?
                } else {
                    Vec::new()
                };
                messages.push(ExportedMessage {
                    id: m.id.0,
                    parent: m.parent.map(|p| p.0),
                    role: m.role,
                    content: m.content,
                    reasoning: m.reasoning,
                    created_at_ms: m.created_at_ms,
                    pane: m.pane,
                    target: m.target,
                    route: m.route,
                    provider: m.provider,
                    model: m.model,
                    finish_reason: m.finish_reason,
                    error: m.error_kind.map(|kind| ExportedError {
                        kind,
                        message: m.error_message.unwrap_or_default(),
                    }),
                    usage: m.usage,
                    cost: m.cost,
                    cost_usd: m.cost.map(|c| c.total.usd()),
                    ttft_ms: m.ttft_ms,
                    thinking_ms: m.thinking_ms,
                    total_ms: m.total_ms,
                    tokens_per_s: m.tokens_per_s,
                    attempts,
                    attachments: attached
                        .remove(&m.id)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|a| self.exported_attachment(a, with_data))
                        .collect::<Result<_, _>>()?,
                });
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let has_attachments = messages.iter().any(|m| !m.attachments.is_empty());
        Ok(ConversationExport {
            format: EXPORT_FORMAT.to_owned(),
            version: if has_attachments { 2 } else { 1 },
            title: conv.title,
            tags: conv.tags,
            created_at_ms: conv.created_at_ms,
            updated_at_ms: conv.updated_at_ms,
            pinned: conv.pinned,
            archived: conv.archived,
            cost_usd: conv.cost.usd(),
            messages,
            votes: self.votes(id)?,
            judgments: self.judgments(id)?,
        })
    }

    /// The conversation as pretty JSON.
    pub fn export_json(&self, id: ConversationId) -> Result<String, StoreError> {
        let doc = self.export(id)?;
        serde_json::to_string_pretty(&doc).map_err(|e| StoreError::invalid(e.to_string()))
    }

    fn exported_attachment(
        &self,
        a: StoredAttachment,
        with_data: bool,
    ) -> Result<ExportedAttachment, StoreError> {
        let data = if with_data {
            Some(self.attachment(&a.id, a.name.as_deref())?.base64())
        } else {
            None
        };
        Ok(ExportedAttachment {
            sha256: a.id,
            name: a.name,
            media_type: a.media_type.mime().to_owned(),
            size: a.size,
            data,
        })
    }

    /// The conversation as Markdown, attachments linked to their files in
    /// the data directory by absolute path.
    pub fn export_markdown(&self, id: ConversationId) -> Result<String, StoreError> {
        let root = self.data_root().to_owned();
        let doc = self.export_with(id, false)?;
        Ok(markdown_with(&doc, &|a| {
            a.relative_path()
                .map(|p| root.join(p).display().to_string())
                .unwrap_or_default()
        }))
    }

    /// Import a JSON export as a new conversation; returns its id.
    pub fn import_json(&self, json: &str) -> Result<ConversationId, StoreError> {
        let doc: ConversationExport =
            serde_json::from_str(json).map_err(|e| StoreError::Import {
                message: format!("not a Switchboard conversation export: {e}"),
            })?;
        self.import(&doc)
    }

    /// Import an export as a new conversation (new ids, same content; not
    /// added to the spend ledger, which records money actually spent).
    pub fn import(&self, doc: &ConversationExport) -> Result<ConversationId, StoreError> {
        if doc.format != EXPORT_FORMAT {
            return Err(StoreError::Import {
                message: format!("format is {:?}, expected {EXPORT_FORMAT:?}", doc.format),
            });
        }
        if doc.version > EXPORT_VERSION {
            return Err(StoreError::Import {
                message: format!(
                    "export version {} is newer than this Switchboard reads ({EXPORT_VERSION})",
                    doc.version
                ),
            });
        }
        // Every attachment is decoded and checked before anything is written.
        let mut files: HashMap<i64, Vec<Attachment>> = HashMap::new();
        for m in &doc.messages {
            for a in &m.attachments {
                files
                    .entry(m.id)
                    .or_default()
                    .push(imported_attachment(m.id, a)?);
            }
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO conversations (title, created_at, updated_at, pinned, archived)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                doc.title,
                doc.created_at_ms,
                doc.updated_at_ms,
                doc.pinned,
                doc.archived
            ],
        )?;
        let conv = ConversationId(tx.last_insert_rowid());
        set_tags_tx(&tx, conv, &doc.tags)?;
        let mut ids: HashMap<i64, MessageId> = HashMap::new();
        for m in &doc.messages {
            let parent = match m.parent {
                Some(p) => Some(*ids.get(&p).ok_or_else(|| StoreError::Import {
                    message: format!(
                        "message {} follows message {p}, which does not come before it",
                        m.id
                    ),
                })?),
                None => None,
            };
            let new = NewMessage {
                parent,
                reasoning: m.reasoning.as_deref(),
                pane: m.pane,
                target: m.target.as_deref(),
                route: m.route.as_deref(),
                provider: m.provider.as_deref(),
                model: m.model.as_deref(),
                finish_reason: m.finish_reason,
                error_kind: m.error.as_ref().map(|e| e.kind),
                error_message: m.error.as_ref().map(|e| e.message.as_str()),
                usage: m.usage,
                cost: m.cost,
                ttft_ms: m.ttft_ms,
                thinking_ms: m.thinking_ms,
                total_ms: m.total_ms,
                tokens_per_s: m.tokens_per_s,
                ..NewMessage::base(conv, m.role, &m.content, m.created_at_ms)
            };
            let id = insert_message(&tx, &new)?;
            insert_attempts(&tx, id, &m.attempts)?;
            if let Some(attached) = files.get(&m.id) {
                for a in attached {
                    self.put_tx(&tx, a, None)?;
                }
                let refs: Vec<AttachmentRef> = attached.iter().map(AttachmentRef::from).collect();
                reference_tx(self, &tx, id, &refs)?;
            }
            if ids.insert(m.id, id).is_some() {
                return Err(StoreError::Import {
                    message: format!("message id {} appears twice", m.id),
                });
            }
        }
        let local = |id: i64, what: &str| {
            ids.get(&id).map(|m| m.0).ok_or_else(|| StoreError::Import {
                message: format!("{what} names message {id}, which is not in the file"),
            })
        };
        for v in &doc.votes {
            let round = local(v.round, "a vote")?;
            let answers = v
                .answers
                .iter()
                .map(|a| local(*a, "a vote"))
                .collect::<Result<Vec<_>, _>>()?;
            let winner = v.winner.map(|w| local(w, "a vote")).transpose()?;
            let vote = Vote {
                round,
                answers,
                winner,
                ..v.clone()
            };
            // Checked as a vote cast in the window is: an edited or
            // hand-made file cannot count a vote on answers of another
            // round, or a winner it did not compare.
            let (checked_conv, answers) =
                checked_vote(&tx, &vote).map_err(|e| StoreError::Import {
                    message: format!("the vote on round {}: {e}", v.round),
                })?;
            if checked_conv != conv {
                return Err(StoreError::Import {
                    message: format!("the vote on round {} is not in this conversation", v.round),
                });
            }
            insert_vote(&tx, conv, &Vote { answers, ..vote })?;
        }
        for j in &doc.judgments {
            let round = local(j.round, "a judgment")?;
            let source = j.cost_nanos.map(|_| {
                if j.cost_estimated {
                    "estimated"
                } else {
                    "computed"
                }
            });
            let labels = j
                .labels
                .iter()
                .map(|(l, a)| Ok((l.clone(), local(*a, "a judgment's label")?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            insert_judgment(
                &tx,
                conv,
                &Judgment {
                    round,
                    labels,
                    ..j.clone()
                },
                None,
                source,
                None,
            )?;
        }
        // Exports name panes by position; the panes are derived from the
        // answers as for conversations older than pane rows.
        super::panes::derive_panes(&tx, Some(conv))?;
        tx.commit()?;
        Ok(conv)
    }
}

/// An exported attachment decoded and checked against its hash.
fn imported_attachment(message: i64, a: &ExportedAttachment) -> Result<Attachment, StoreError> {
    use base64::Engine as _;
    let bad = |why: String| StoreError::Import {
        message: format!(
            "attachment {} of message {message}: {why}",
            a.display_name()
        ),
    };
    let data = a
        .data
        .as_deref()
        .ok_or_else(|| bad("its data is missing from the file".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| bad(format!("its data is not base64 ({e})")))?;
    let attachment =
        Attachment::from_bytes(bytes, a.name.as_deref()).map_err(|e| bad(e.to_string()))?;
    if attachment.id != a.sha256 {
        return Err(bad(
            "its data does not match its sha256 (the file was altered or cut)".into(),
        ));
    }
    Ok(attachment)
}

fn ms_text(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

fn attempt_line(i: usize, a: &AttemptRecord) -> String {
    let what = match &a.outcome {
        AttemptOutcome::Ok => "ok".to_owned(),
        AttemptOutcome::Stopped => "stopped".to_owned(),
        AttemptOutcome::Error { kind, message } => format!("{kind}: {message}"),
        AttemptOutcome::Skipped { kind, reason } => format!("skipped ({kind}): {reason}"),
    };
    let cost = a
        .cost
        .map(|c| format!(" · {}{}", c.total, if c.estimated() { " est." } else { "" }))
        .unwrap_or_default();
    format!(
        "{}. {}/{} — {what} · {}{cost}",
        i + 1,
        a.provider,
        a.model,
        ms_text(a.total_ms)
    )
}

/// Render an export as Markdown, attachments linked by their path
/// relative to the data directory.
pub fn markdown(doc: &ConversationExport) -> String {
    markdown_with(doc, &|a| {
        a.relative_path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    })
}

/// Render an export as Markdown; `link` gives each attachment's link
/// target (images are embedded, PDFs linked).
pub fn markdown_with(
    doc: &ConversationExport,
    link: &dyn Fn(&ExportedAttachment) -> String,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", doc.title);
    let _ = writeln!(
        md,
        "- Created {} · updated {}",
        format_datetime(doc.created_at_ms),
        format_datetime(doc.updated_at_ms)
    );
    if !doc.tags.is_empty() {
        let _ = writeln!(md, "- Tags: {}", doc.tags.join(", "));
    }
    let total: Cost = doc
        .messages
        .iter()
        .filter_map(|m| m.cost.map(|c| c.total))
        .sum();
    let answers = doc
        .messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .count();
    let _ = writeln!(md, "- Cost: {total} for {answers} answer(s)\n");
    let mut previous: Option<i64> = None;
    let mut position: HashMap<i64, usize> = HashMap::new();
    for (i, m) in doc.messages.iter().enumerate() {
        position.insert(m.id, i + 1);
        let _ = writeln!(md, "---\n");
        let who = match m.role {
            Role::User => "You".to_owned(),
            Role::Assistant => {
                let label = m.target.clone().unwrap_or_else(|| {
                    format!(
                        "{}:{}",
                        m.provider.as_deref().unwrap_or("?"),
                        m.model.as_deref().unwrap_or("?")
                    )
                });
                let mut who = label;
                if let (Some(p), Some(model)) = (&m.provider, &m.model)
                    && !who.contains(model.as_str())
                {
                    let _ = write!(who, " ({p}/{model})");
                }
                if let Some(pane) = m.pane {
                    let _ = write!(who, " · pane {}", pane + 1);
                }
                who
            }
        };
        let _ = write!(md, "### {}. {who}", i + 1);
        // Say what a message answers when it is not simply the one above
        // (several panes answering one question, or a branch).
        if let Some(parent) = m.parent
            && Some(parent) != previous
            && let Some(pos) = position.get(&parent)
        {
            let _ = write!(md, " — replying to {pos}");
        }
        let _ = writeln!(md, "\n");
        if let Some(r) = &m.reasoning {
            for line in r.lines() {
                let _ = writeln!(md, "> {line}");
            }
            let _ = writeln!(md);
        }
        for a in &m.attachments {
            let bang = match MediaType::from_mime(&a.media_type).map(MediaType::kind) {
                Some(MediaKind::Image) => "!",
                Some(MediaKind::Pdf) | None => "",
            };
            let _ = writeln!(
                md,
                "{bang}[{}]({})\n",
                a.display_name().replace(['[', ']'], ""),
                link(a).replace(' ', "%20")
            );
        }
        let _ = writeln!(md, "{}\n", m.content.trim_end());
        if m.role == Role::Assistant {
            let mut facts = Vec::new();
            if let Some(e) = &m.error {
                facts.push(format!("error {}: {}", e.kind, e.message));
            }
            if let Some(t) = m.thinking_ms {
                facts.push(format!("thought {}", ms_text(t)));
            }
            if let Some(t) = m.ttft_ms {
                facts.push(format!("{} to first token", ms_text(t)));
            }
            if let Some(t) = m.tokens_per_s {
                facts.push(format!("{t:.1} tok/s"));
            }
            if let Some(t) = m.total_ms {
                facts.push(format!("{} total", ms_text(t)));
            }
            if let (Some(i), Some(o)) = (m.usage.input_tokens, m.usage.output_tokens) {
                facts.push(format!("{i} in / {o} out tokens"));
            }
            match m.cost {
                Some(c) if c.estimated() => facts.push(format!("{} est.", c.total)),
                Some(c) => facts.push(c.total.to_string()),
                None => facts.push("cost unknown".into()),
            }
            let _ = writeln!(md, "_{}_\n", facts.join(" · "));
            if m.attempts.len() > 1 {
                let _ = writeln!(md, "Attempts:\n");
                for (i, a) in m.attempts.iter().enumerate() {
                    let _ = writeln!(md, "{}", attempt_line(i, a));
                }
                let _ = writeln!(md);
            }
        }
        previous = Some(m.id);
    }
    md
}
