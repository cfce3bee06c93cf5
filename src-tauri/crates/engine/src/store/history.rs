//! Conversations and messages: written as they happen through a
//! [`Recorder`], read back a page at a time. Listings use keyset
//! pagination (an opaque cursor), so the thousandth page costs what the
//! first does and nothing ever loads a whole history.

use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};
use serde::{Deserialize, Serialize};
use switchboard_protocol::PaneLayout;

use super::panes::{PaneRef, apply_layout, follows, pane_for_answer};
use super::time::now_ms;
use super::{ConversationId, MessageId, Store, StoreError, from_sql_u64, to_sql_u64};
use crate::chat::{AttemptCost, AttemptResult, CostSource, FinishReason, Role, Usage};
use crate::error::ErrorKind;
use crate::hooks::{AttemptOutcome, AttemptRecord, RequestTrace, SpendContext};
use crate::money::Cost;

/// Most items one page may hold.
pub const MAX_PAGE: usize = 500;

/// A conversation's title made from its first prompt: one line, at most 60
/// characters, cut at a word boundary.
pub fn title_of(prompt: &str) -> String {
    let line = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= 60 {
        return line;
    }
    let cut: String = line.chars().take(60).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A conversation as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Its title.
    pub title: String,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Created (Unix ms).
    pub created_at_ms: i64,
    /// Last message or change (Unix ms).
    pub updated_at_ms: i64,
    /// Shown first in listings.
    pub pinned: bool,
    /// Hidden from listings unless asked for.
    pub archived: bool,
    /// How many messages it has.
    pub message_count: u64,
    /// What its answers cost, summed exactly.
    pub cost: Cost,
}

/// One stored message. Answers carry how their request ended; the
/// attempts behind them come from [`Store::attempts`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMessage {
    /// Its id.
    pub id: MessageId,
    /// Its conversation.
    pub conversation: ConversationId,
    /// The message it follows (an answer's question; a branch's start).
    pub parent: Option<MessageId>,
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// The model's reasoning text, when it streamed any.
    pub reasoning: Option<String>,
    /// Written (Unix ms).
    pub created_at_ms: i64,
    /// The position of the pane that showed the answer when it was
    /// recorded (0-based; not an identity: see `pane_id`).
    pub pane: Option<u32>,
    /// The row of the pane that showed the answer ([`Store::panes`]).
    pub pane_id: Option<i64>,
    /// The target as the user named it (`openai:gpt-x`, a route name).
    pub target: Option<String>,
    /// The route the request went through, if any.
    pub route: Option<String>,
    /// The provider that answered.
    pub provider: Option<String>,
    /// The model that answered.
    pub model: Option<String>,
    /// Why the model stopped.
    pub finish_reason: Option<FinishReason>,
    /// Why the request failed, when it did.
    pub error_kind: Option<ErrorKind>,
    /// The failure's message.
    pub error_message: Option<String>,
    /// Token counts as reported.
    pub usage: Usage,
    /// What the answer cost.
    pub cost: Option<AttemptCost>,
    /// Time to the first visible (answer-text) token.
    pub ttft_ms: Option<f64>,
    /// Streamed thinking before the answer.
    pub thinking_ms: Option<f64>,
    /// Total time.
    pub total_ms: Option<f64>,
    /// Visible output tokens per second.
    pub tokens_per_s: Option<f64>,
}

/// A stored attempt is exactly what the router traced.
pub type StoredAttempt = AttemptRecord;

/// One answer to record: which pane showed it, under which target label,
/// the final result and the trace of attempts that led to it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The pane.
    pub pane: PaneRef<'a>,
    /// The target as the user named it.
    pub target: &'a str,
    /// The final attempt's result (text, usage, cost, timing, error).
    pub result: &'a AttemptResult,
    /// Every attempt, in order; when empty, one is derived from `result`.
    pub trace: &'a RequestTrace,
}

/// One pane's answer to begin (see [`Recorder::begin_answers`]).
#[derive(Debug, Clone, Copy)]
pub struct AnswerStart<'a> {
    /// The conversation.
    pub conversation: ConversationId,
    /// The prompt answered.
    pub question: MessageId,
    /// The pane.
    pub pane: PaneRef<'a>,
    /// The target as the user named it.
    pub target: &'a str,
}

impl<'a> AnswerStart<'a> {
    /// The answer's row as it starts: empty, under the prompt.
    fn row(&self) -> NewMessage<'a> {
        NewMessage {
            parent: Some(self.question),
            target: Some(self.target),
            ..NewMessage::base(self.conversation, Role::Assistant, "", now_ms())
        }
    }
}

/// Writes one conversation as it happens. The incognito recorder
/// ([`Store::recorder`] with `true`) accepts the same calls, hands out ids
/// that exist only in memory, and writes nothing.
#[derive(Debug)]
pub struct Recorder {
    store: Option<Store>,
    next_id: AtomicI64,
}

pub(crate) fn enum_name<T: Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

pub(crate) fn enum_from<T: for<'de> Deserialize<'de>>(name: Option<String>) -> Option<T> {
    name.and_then(|n| serde_json::from_value(serde_json::Value::String(n)).ok())
}

fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut t: Vec<String> = tags
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    t.sort();
    t.dedup();
    t
}

impl Recorder {
    pub(crate) fn new(store: Option<Store>) -> Self {
        Self {
            store,
            next_id: AtomicI64::new(1),
        }
    }

    /// True when nothing is written.
    pub fn is_incognito(&self) -> bool {
        self.store.is_none()
    }

    fn memory_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Start a conversation.
    pub fn start_conversation(
        &self,
        title: &str,
        tags: &[String],
    ) -> Result<ConversationId, StoreError> {
        let Some(store) = &self.store else {
            return Ok(ConversationId(self.memory_id()));
        };
        store.create_conversation(title, tags, now_ms())
    }

    /// Add the user's message; `parent` is the message it follows (the
    /// answer chosen to continue from), `None` for the first.
    pub fn add_user_message(
        &self,
        conversation: ConversationId,
        parent: Option<MessageId>,
        content: &str,
    ) -> Result<MessageId, StoreError> {
        let Some(store) = &self.store else {
            return Ok(MessageId(self.memory_id()));
        };
        let message = NewMessage {
            parent,
            ..NewMessage::base(conversation, Role::User, content, now_ms())
        };
        insert_one(store, message, None, false)
    }

    /// Add the user's message of a new round, and save `layout` as the
    /// conversation's panes in the same transaction (when it is newer than
    /// the saved one). The message follows the answer chosen with "Continue
    /// with this" in the round before, when there is one. `attachments`
    /// (stored already, by [`Store::put_attachment`]) are referenced from
    /// it, in order, in the same transaction.
    pub fn add_round(
        &self,
        conversation: ConversationId,
        content: &str,
        attachments: &[super::AttachmentRef],
        layout: Option<&PaneLayout>,
    ) -> Result<MessageId, StoreError> {
        let Some(store) = &self.store else {
            return Ok(MessageId(self.memory_id()));
        };
        let mut conn = store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(layout) = layout {
            apply_layout(&tx, conversation, layout)?;
        }
        let message = NewMessage {
            parent: follows(&tx, conversation)?,
            ..NewMessage::base(conversation, Role::User, content, now_ms())
        };
        let id = insert_message(&tx, &message)?;
        super::attachments::reference_tx(store, &tx, id, attachments)?;
        touch(&tx, conversation, message.created_at_ms)?;
        tx.commit()?;
        Ok(id)
    }

    /// [`Recorder::add_user_message`] carrying `attachments` (stored
    /// already, by [`Store::put_attachment`]), in order, in the same
    /// transaction. Incognito: a memory id, nothing written.
    pub fn add_user_message_with(
        &self,
        conversation: ConversationId,
        parent: Option<MessageId>,
        content: &str,
        attachments: &[super::AttachmentRef],
    ) -> Result<MessageId, StoreError> {
        let Some(store) = &self.store else {
            return Ok(MessageId(self.memory_id()));
        };
        let message = NewMessage {
            parent,
            ..NewMessage::base(conversation, Role::User, content, now_ms())
        };
        let mut conn = store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id = insert_message(&tx, &message)?;
        super::attachments::reference_tx(store, &tx, id, attachments)?;
        touch(&tx, conversation, message.created_at_ms)?;
        tx.commit()?;
        Ok(id)
    }

    /// Start one pane's answer to `question` before its request runs: the
    /// row exists from now on, empty and marked as streaming by this
    /// process, so the gate's checkpoints (through
    /// [`SpendContext::message`]) keep its text as it streams and a crash
    /// leaves it in history as `interrupted`. Write the final answer with
    /// [`Recorder::finish_answer`]. Incognito: a memory id, nothing written.
    /// `pane`: a [`PaneRef`], or a position (`0`) for a layout that never
    /// changes.
    pub fn begin_answer<'p>(
        &self,
        conversation: ConversationId,
        question: MessageId,
        pane: impl Into<PaneRef<'p>>,
        target: &str,
    ) -> Result<MessageId, StoreError> {
        let Some(store) = &self.store else {
            return Ok(MessageId(self.memory_id()));
        };
        let start = AnswerStart {
            conversation,
            question,
            pane: pane.into(),
            target,
        };
        insert_one(store, start.row(), Some(start.pane), true)
    }

    /// [`Recorder::begin_answer`] for several panes in one transaction, so
    /// the panes of a round that start together cost one commit (one disk
    /// sync) instead of one each. The answers are in `starts`' order; when
    /// one of them cannot be written, nothing of the batch is kept and each
    /// is written on its own, so a bad pane never costs the others theirs.
    /// Incognito: memory ids.
    pub fn begin_answers(&self, starts: &[AnswerStart<'_>]) -> Vec<Result<MessageId, StoreError>> {
        let Some(store) = &self.store else {
            return starts
                .iter()
                .map(|_| Ok(MessageId(self.memory_id())))
                .collect();
        };
        let together = || -> Result<Vec<MessageId>, StoreError> {
            let mut conn = store.conn();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let ids = starts
                .iter()
                .map(|start| insert_in(&tx, store, start.row(), Some(start.pane), true))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(ids)
        };
        match together() {
            Ok(ids) => ids.into_iter().map(Ok).collect(),
            Err(_) => starts
                .iter()
                .map(|start| insert_one(store, start.row(), Some(start.pane), true))
                .collect(),
        }
    }

    /// Write the final answer into the row [`Recorder::begin_answer`]
    /// started (text, usage, cost, timings, error, trace), and mark it
    /// final. Incognito: nothing.
    pub fn finish_answer(&self, id: MessageId, answer: &Answer<'_>) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let now = now_ms();
        let attempts = answer_attempts(answer, now);
        let m = answer_message(ConversationId(0), MessageId(0), answer, &attempts, now);
        let mut conn = store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let conversation: Option<i64> = tx
            .query_row(
                "SELECT conversation_id FROM messages WHERE id = ?1",
                [id.0],
                |r| r.get(0),
            )
            .optional()?;
        let Some(conversation) = conversation else {
            return Err(StoreError::NotFound {
                what: "message",
                id: id.0,
            });
        };
        let outcome = outcome_columns(&m);
        let set: Vec<String> = outcome.iter().map(|(c, _)| format!("{c} = ?")).collect();
        let mut values: Vec<Value> = outcome.into_iter().map(|(_, v)| v).collect();
        values.push(Value::from(id.0));
        tx.prepare_cached(&format!(
            "UPDATE messages SET {}, live_owner = NULL WHERE id = ?",
            set.join(", ")
        ))?
        .execute(params_from_iter(values))?;
        tx.execute("DELETE FROM attempts WHERE message_id = ?1", [id.0])?;
        insert_attempts(&tx, id, &attempts)?;
        touch(&tx, ConversationId(conversation), now)?;
        tx.commit()?;
        Ok(())
    }

    /// Add the answer of the pane at position `pane` of a layout that never
    /// changes (the command line's) to `question`, with its trace.
    pub fn add_answer(
        &self,
        conversation: ConversationId,
        question: MessageId,
        pane: u32,
        target: &str,
        result: &AttemptResult,
        trace: &RequestTrace,
    ) -> Result<MessageId, StoreError> {
        self.record_answer(
            conversation,
            question,
            &Answer {
                pane: PaneRef::Position(pane),
                target,
                result,
                trace,
            },
        )
    }

    /// [`Recorder::add_answer`] taking an [`Answer`].
    pub fn record_answer(
        &self,
        conversation: ConversationId,
        question: MessageId,
        answer: &Answer<'_>,
    ) -> Result<MessageId, StoreError> {
        let Some(store) = &self.store else {
            return Ok(MessageId(self.memory_id()));
        };
        let now = now_ms();
        let attempts = answer_attempts(answer, now);
        let mut message = answer_message(conversation, question, answer, &attempts, now);
        let mut conn = store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (pane_id, position) = pane_for_answer(&tx, conversation, answer.pane, answer.target)?;
        message.pane = position;
        message.pane_id = Some(pane_id);
        let id = insert_message(&tx, &message)?;
        insert_attempts(&tx, id, &attempts)?;
        touch(&tx, conversation, now)?;
        tx.commit()?;
        Ok(id)
    }

    /// The [`SpendContext`] for an attempt of this conversation: names the
    /// conversation only when it is recorded.
    pub fn spend_context(
        &self,
        conversation: ConversationId,
        provider: &str,
        model: &str,
        route: Option<&str>,
        tags: &[String],
    ) -> SpendContext {
        SpendContext {
            provider: provider.to_owned(),
            model: model.to_owned(),
            route: route.map(str::to_owned),
            tags: clean_tags(tags),
            conversation: self.store.as_ref().map(|_| conversation.to_string()),
            message: None,
        }
    }
}

/// Insert `message` and touch its conversation, in one transaction; an
/// answer's `pane` is found (or made) in the same transaction. `live`: it
/// is an answer this store is about to stream.
fn insert_one(
    store: &Store,
    message: NewMessage<'_>,
    pane: Option<PaneRef<'_>>,
    live: bool,
) -> Result<MessageId, StoreError> {
    let mut conn = store.conn();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let id = insert_in(&tx, store, message, pane, live)?;
    tx.commit()?;
    Ok(id)
}

/// [`insert_one`]'s writes, inside the caller's transaction.
fn insert_in(
    tx: &Transaction<'_>,
    store: &Store,
    mut message: NewMessage<'_>,
    pane: Option<PaneRef<'_>>,
    live: bool,
) -> Result<MessageId, StoreError> {
    if let Some(pane) = pane {
        let target = message.target.unwrap_or_default();
        let (pane_id, position) = pane_for_answer(tx, message.conversation, pane, target)?;
        message.pane = position;
        message.pane_id = Some(pane_id);
    }
    let id = insert_message(tx, &message)?;
    if live {
        tx.execute(
            "UPDATE messages SET live_owner = ?2 WHERE id = ?1",
            params![id.0, store.owner_id()],
        )?;
    }
    touch(tx, message.conversation, message.created_at_ms)?;
    Ok(id)
}

/// The attempts behind an answer: its trace, or the one its result
/// describes when the caller traced none.
fn answer_attempts(answer: &Answer<'_>, now: i64) -> Vec<AttemptRecord> {
    if answer.trace.attempts.is_empty() {
        vec![attempt_from_result(answer.result, now)]
    } else {
        answer.trace.attempts.clone()
    }
}

/// An answer's row. Its cost is the sum of its billed attempts (retries
/// and failures that were billed included), which is what the ledger holds
/// for it.
fn answer_message<'a>(
    conversation: ConversationId,
    question: MessageId,
    answer: &Answer<'a>,
    attempts: &[AttemptRecord],
    now: i64,
) -> NewMessage<'a> {
    let r = answer.result;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    NewMessage {
        conversation,
        parent: Some(question),
        role: Role::Assistant,
        content: &r.text,
        reasoning: (!r.reasoning.is_empty()).then_some(r.reasoning.as_str()),
        created_at_ms: now,
        // Found in the transaction that writes it.
        pane: None,
        pane_id: None,
        target: Some(answer.target),
        route: answer.trace.route.as_deref(),
        provider: Some(&r.provider),
        model: Some(&r.model),
        finish_reason: r.finish_reason,
        error_kind: r.error.as_ref().map(|e| e.kind),
        error_message: r.error.as_ref().map(|e| e.message.as_str()),
        usage: r.usage,
        cost: crate::hooks::sum_costs(attempts),
        ttft_ms: r.timing.ttft.map(ms),
        thinking_ms: r.timing.thinking.map(ms),
        total_ms: Some(ms(r.timing.total)),
        tokens_per_s: r.timing.tokens_per_s,
    }
}

/// The one attempt behind a result when the caller traced none.
fn attempt_from_result(r: &AttemptResult, now: i64) -> AttemptRecord {
    let total_ms = r.timing.total.as_secs_f64() * 1000.0;
    AttemptRecord {
        provider: r.provider.clone(),
        model: r.model.clone(),
        started_unix_ms: now - total_ms.round() as i64,
        ttft_ms: r.timing.ttft.map(|d| d.as_secs_f64() * 1000.0),
        thinking_ms: r.timing.thinking.map(|d| d.as_secs_f64() * 1000.0),
        total_ms,
        outcome: match &r.error {
            None => AttemptOutcome::Ok,
            Some(e) if e.kind == ErrorKind::Stopped => AttemptOutcome::Stopped,
            Some(e) => AttemptOutcome::Error {
                kind: e.kind,
                message: e.message.clone(),
            },
        },
        usage: r.usage,
        cost: r.cost,
    }
}

#[derive(Debug)]
pub(crate) struct NewMessage<'a> {
    pub conversation: ConversationId,
    pub parent: Option<MessageId>,
    pub role: Role,
    pub content: &'a str,
    pub reasoning: Option<&'a str>,
    pub created_at_ms: i64,
    pub pane: Option<u32>,
    pub pane_id: Option<i64>,
    pub target: Option<&'a str>,
    pub route: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub finish_reason: Option<FinishReason>,
    pub error_kind: Option<ErrorKind>,
    pub error_message: Option<&'a str>,
    pub usage: Usage,
    pub cost: Option<AttemptCost>,
    pub ttft_ms: Option<f64>,
    pub thinking_ms: Option<f64>,
    pub total_ms: Option<f64>,
    pub tokens_per_s: Option<f64>,
}

impl<'a> NewMessage<'a> {
    /// A message with only the fields every message has.
    pub(crate) fn base(
        conversation: ConversationId,
        role: Role,
        content: &'a str,
        created_at_ms: i64,
    ) -> Self {
        Self {
            conversation,
            parent: None,
            role,
            content,
            reasoning: None,
            created_at_ms,
            pane: None,
            pane_id: None,
            target: None,
            route: None,
            provider: None,
            model: None,
            finish_reason: None,
            error_kind: None,
            error_message: None,
            usage: Usage::default(),
            cost: None,
            ttft_ms: None,
            thinking_ms: None,
            total_ms: None,
            tokens_per_s: None,
        }
    }
}

pub(crate) fn cost_source_name(s: CostSource) -> &'static str {
    match s {
        CostSource::Reported => "reported",
        CostSource::Computed => "computed",
        CostSource::Estimated => "estimated",
    }
}

fn cost_from(nanos: Option<i64>, source: Option<String>) -> Option<AttemptCost> {
    let source = match source.as_deref()? {
        "reported" => CostSource::Reported,
        "computed" => CostSource::Computed,
        "estimated" => CostSource::Estimated,
        _ => return None,
    };
    Some(AttemptCost {
        total: Cost::from_nanos(nanos?),
        source,
    })
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

pub(crate) fn insert_message(
    tx: &Transaction<'_>,
    m: &NewMessage<'_>,
) -> Result<MessageId, StoreError> {
    if let Some(parent) = m.parent {
        let owner: Option<i64> = tx
            .query_row(
                "SELECT conversation_id FROM messages WHERE id = ?1",
                [parent.0],
                |r| r.get(0),
            )
            .optional()?;
        if owner != Some(m.conversation.0) {
            return Err(StoreError::invalid(format!(
                "message {parent} is not in conversation {}",
                m.conversation
            )));
        }
    }
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM conversations WHERE id = ?1",
            [m.conversation.0],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound {
            what: "conversation",
            id: m.conversation.0,
        });
    }
    let outcome = outcome_columns(m);
    let columns: Vec<&str> = outcome.iter().map(|(c, _)| *c).collect();
    let mut values: Vec<Value> = vec![
        Value::from(m.conversation.0),
        Value::from(m.parent.map(|p| p.0)),
        Value::from(role_name(m.role).to_owned()),
        Value::from(m.created_at_ms),
        Value::from(m.pane.map(i64::from)),
        Value::from(m.target.map(str::to_owned)),
        Value::from(m.pane_id),
    ];
    values.extend(outcome.into_iter().map(|(_, v)| v));
    tx.prepare_cached(&format!(
        "INSERT INTO messages (conversation_id, parent_id, role, created_at, pane, target, pane_id,
            {})
         VALUES ({})",
        columns.join(", "),
        vec!["?"; values.len()].join(", ")
    ))?
    .execute(params_from_iter(values))?;
    Ok(MessageId(tx.last_insert_rowid()))
}

/// How an answer turned out, as `(column, value)` pairs: what inserting a
/// new answer and finishing one begun earlier both write.
fn outcome_columns(m: &NewMessage<'_>) -> [(&'static str, Value); 20] {
    let text = |s: Option<&str>| Value::from(s.map(str::to_owned));
    let count = |n: Option<u64>| Value::from(to_sql_u64(n));
    [
        ("content", Value::from(m.content.to_owned())),
        ("reasoning", text(m.reasoning)),
        ("route", text(m.route)),
        ("provider", text(m.provider)),
        ("model", text(m.model)),
        (
            "finish_reason",
            Value::from(m.finish_reason.as_ref().and_then(enum_name)),
        ),
        ("error_kind", text(m.error_kind.map(ErrorKind::as_str))),
        ("error_message", text(m.error_message)),
        ("input_tokens", count(m.usage.input_tokens)),
        ("output_tokens", count(m.usage.output_tokens)),
        ("cached_input_tokens", count(m.usage.cached_input_tokens)),
        ("reasoning_tokens", count(m.usage.reasoning_tokens)),
        ("cost_nanos", Value::from(m.cost.map(|c| c.total.nanos()))),
        (
            "cost_source",
            text(m.cost.map(|c| cost_source_name(c.source))),
        ),
        ("ttft_ms", Value::from(m.ttft_ms)),
        ("total_ms", Value::from(m.total_ms)),
        ("tokens_per_s", Value::from(m.tokens_per_s)),
        ("cache_write_tokens", count(m.usage.cache_write_tokens)),
        (
            "cache_write_1h_tokens",
            count(m.usage.cache_write_1h_tokens),
        ),
        ("thinking_ms", Value::from(m.thinking_ms)),
    ]
}

/// Inserts one trace row; parameters in column order.
pub(crate) const ATTEMPT_INSERT: &str =
    "INSERT INTO attempts (message_id, seq, provider, model, started_at, ttft_ms, total_ms,
        outcome, error_kind, skip_kind, message, input_tokens, output_tokens,
        cached_input_tokens, reasoning_tokens, cost_nanos, cost_source,
        cache_write_tokens, cache_write_1h_tokens, thinking_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
        ?18, ?19, ?20)";

pub(crate) fn insert_attempts(
    tx: &Transaction<'_>,
    message: MessageId,
    attempts: &[AttemptRecord],
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(ATTEMPT_INSERT)?;
    for (seq, a) in attempts.iter().enumerate() {
        let (outcome, error_kind, skip_kind, text) = match &a.outcome {
            AttemptOutcome::Ok => ("ok", None, None, None),
            AttemptOutcome::Stopped => ("stopped", None, None, None),
            AttemptOutcome::Error { kind, message } => {
                ("error", Some(kind.as_str()), None, Some(message.as_str()))
            }
            AttemptOutcome::Skipped { kind, reason } => {
                ("skipped", None, Some(kind.as_str()), Some(reason.as_str()))
            }
        };
        stmt.execute(params![
            message.0,
            seq as i64,
            a.provider,
            a.model,
            a.started_unix_ms,
            a.ttft_ms,
            a.total_ms,
            outcome,
            error_kind,
            skip_kind,
            text,
            to_sql_u64(a.usage.input_tokens),
            to_sql_u64(a.usage.output_tokens),
            to_sql_u64(a.usage.cached_input_tokens),
            to_sql_u64(a.usage.reasoning_tokens),
            a.cost.map(|c| c.total.nanos()),
            a.cost.map(|c| cost_source_name(c.source)),
            to_sql_u64(a.usage.cache_write_tokens),
            to_sql_u64(a.usage.cache_write_1h_tokens),
            a.thinking_ms,
        ])?;
    }
    Ok(())
}

fn touch(tx: &Transaction<'_>, conversation: ConversationId, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE conversations SET updated_at = max(updated_at, ?2) WHERE id = ?1",
        params![conversation.0, now],
    )?;
    Ok(())
}

const CONVERSATION_COLUMNS: &str =
    "c.id, c.title, c.created_at, c.updated_at, c.pinned, c.archived,
    (SELECT group_concat(tag, char(31)) FROM (SELECT tag FROM conversation_tags
        WHERE conversation_id = c.id ORDER BY tag)),
    (SELECT count(*) FROM messages WHERE conversation_id = c.id),
    (SELECT coalesce(sum(cost_nanos), 0) FROM messages WHERE conversation_id = c.id)
      + (SELECT coalesce(sum(cost_nanos), 0) FROM judgments WHERE conversation_id = c.id)";

fn conversation_row(r: &Row<'_>) -> rusqlite::Result<Conversation> {
    let tags: Option<String> = r.get(6)?;
    Ok(Conversation {
        id: ConversationId(r.get(0)?),
        title: r.get(1)?,
        created_at_ms: r.get(2)?,
        updated_at_ms: r.get(3)?,
        pinned: r.get(4)?,
        archived: r.get(5)?,
        tags: tags
            .map(|t| t.split('\u{1f}').map(str::to_owned).collect())
            .unwrap_or_default(),
        message_count: from_sql_u64(Some(r.get(7)?)).unwrap_or(0),
        cost: Cost::from_nanos(r.get(8)?),
    })
}

const MESSAGE_COLUMNS: &str =
    "id, conversation_id, parent_id, role, content, reasoning, created_at,
    pane, target, route, provider, model, finish_reason, error_kind, error_message,
    input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost_nanos, cost_source,
    ttft_ms, total_ms, tokens_per_s, cache_write_tokens, cache_write_1h_tokens, thinking_ms,
    pane_id";

fn message_row(r: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let role: String = r.get(3)?;
    Ok(StoredMessage {
        id: MessageId(r.get(0)?),
        conversation: ConversationId(r.get(1)?),
        parent: r.get::<_, Option<i64>>(2)?.map(MessageId),
        role: if role == "assistant" {
            Role::Assistant
        } else {
            Role::User
        },
        content: r.get(4)?,
        reasoning: r.get(5)?,
        created_at_ms: r.get(6)?,
        pane: r.get(7)?,
        target: r.get(8)?,
        route: r.get(9)?,
        provider: r.get(10)?,
        model: r.get(11)?,
        finish_reason: enum_from(r.get(12)?),
        error_kind: enum_from(r.get(13)?),
        error_message: r.get(14)?,
        usage: Usage {
            input_tokens: from_sql_u64(r.get(15)?),
            output_tokens: from_sql_u64(r.get(16)?),
            cached_input_tokens: from_sql_u64(r.get(17)?),
            reasoning_tokens: from_sql_u64(r.get(18)?),
            cache_write_tokens: from_sql_u64(r.get(24)?),
            cache_write_1h_tokens: from_sql_u64(r.get(25)?),
        },
        cost: cost_from(r.get(19)?, r.get(20)?),
        ttft_ms: r.get(21)?,
        thinking_ms: r.get(26)?,
        total_ms: r.get(22)?,
        tokens_per_s: r.get(23)?,
        pane_id: r.get(27)?,
    })
}

/// The columns [`attempt_row`] reads, in order, of `attempts a`.
const ATTEMPT_COLUMNS: &str = "a.provider, a.model, a.started_at, a.ttft_ms, a.total_ms,
    a.outcome, a.error_kind, a.skip_kind, a.message, a.input_tokens, a.output_tokens,
    a.cached_input_tokens, a.reasoning_tokens, a.cost_nanos, a.cost_source,
    a.cache_write_tokens, a.cache_write_1h_tokens, a.thinking_ms";

fn attempt_row(r: &Row<'_>) -> rusqlite::Result<AttemptRecord> {
    let outcome: String = r.get(5)?;
    let text: Option<String> = r.get(8)?;
    let outcome = match outcome.as_str() {
        "ok" => AttemptOutcome::Ok,
        "stopped" => AttemptOutcome::Stopped,
        "skipped" => AttemptOutcome::Skipped {
            kind: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            reason: text.unwrap_or_default(),
        },
        _ => AttemptOutcome::Error {
            kind: enum_from(r.get(6)?).unwrap_or(ErrorKind::Malformed),
            message: text.unwrap_or_default(),
        },
    };
    Ok(AttemptRecord {
        provider: r.get(0)?,
        model: r.get(1)?,
        started_unix_ms: r.get(2)?,
        ttft_ms: r.get(3)?,
        thinking_ms: r.get(17)?,
        total_ms: r.get(4)?,
        outcome,
        usage: Usage {
            input_tokens: from_sql_u64(r.get(9)?),
            output_tokens: from_sql_u64(r.get(10)?),
            cached_input_tokens: from_sql_u64(r.get(11)?),
            reasoning_tokens: from_sql_u64(r.get(12)?),
            cache_write_tokens: from_sql_u64(r.get(15)?),
            cache_write_1h_tokens: from_sql_u64(r.get(16)?),
        },
        cost: cost_from(r.get(13)?, r.get(14)?),
    })
}

fn clamp_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}

fn parse_cursor(after: &str) -> Result<(bool, i64, i64), StoreError> {
    let bad = || StoreError::invalid(format!("invalid page cursor {after:?}"));
    let mut parts = after.split(':');
    let pinned = parts.next().ok_or_else(bad)? == "1";
    let updated = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let id = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    Ok((pinned, updated, id))
}

impl Store {
    pub(crate) fn create_conversation(
        &self,
        title: &str,
        tags: &[String],
        now: i64,
    ) -> Result<ConversationId, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO conversations (title, created_at, updated_at) VALUES (?1, ?2, ?2)",
            params![title.trim(), now],
        )?;
        let id = ConversationId(tx.last_insert_rowid());
        set_tags_tx(&tx, id, tags)?;
        tx.commit()?;
        Ok(id)
    }

    /// Conversations, pinned first, then most recently updated; archived
    /// ones only when `include_archived`. `after` is the previous page's
    /// [`Page::next`].
    pub fn conversations(
        &self,
        after: Option<&str>,
        limit: usize,
        include_archived: bool,
    ) -> Result<Page<Conversation>, StoreError> {
        let limit = clamp_limit(limit);
        let cursor = after.map(parse_cursor).transpose()?;
        let conn = self.conn();
        // The page's ids first, straight from an index in listing order;
        // the counts and sums only for them.
        let archived = if include_archived {
            ""
        } else {
            "archived = 0 AND"
        };
        let after = if cursor.is_some() {
            "(pinned, updated_at, id) < (?1, ?2, ?3)"
        } else {
            "?1 IS NULL AND ?2 IS NULL AND ?3 IS NULL"
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM (
                 SELECT id FROM conversations WHERE {archived} {after}
                 ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT ?4
             ) AS page JOIN conversations c ON c.id = page.id
             ORDER BY c.pinned DESC, c.updated_at DESC, c.id DESC"
        ))?;
        let mut items = stmt
            .query_map(
                params![
                    cursor.map(|c| c.0),
                    cursor.map(|c| c.1),
                    cursor.map(|c| c.2),
                    (limit + 1) as i64
                ],
                conversation_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|c| format!("{}:{}:{}", u8::from(c.pinned), c.updated_at_ms, c.id.0))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// One conversation.
    pub fn conversation(&self, id: ConversationId) -> Result<Conversation, StoreError> {
        // Read before every request the app sends: never behind a write.
        let conn = self.reader();
        conn.query_row(
            &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations c WHERE c.id = ?1"),
            [id.0],
            conversation_row,
        )
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "conversation",
            id: id.0,
        })
    }

    /// A conversation's messages in the order they were written, a page
    /// at a time (`after`: the previous page's [`Page::next`]).
    pub fn messages(
        &self,
        conversation: ConversationId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<StoredMessage>, StoreError> {
        let limit = clamp_limit(limit);
        let after: i64 = match after {
            Some(a) => a
                .parse()
                .map_err(|_| StoreError::invalid(format!("invalid page cursor {a:?}")))?,
            None => 0,
        };
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE conversation_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        ))?;
        let mut items = stmt
            .query_map(
                params![conversation.0, after, (limit + 1) as i64],
                message_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|m| m.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// One message.
    pub fn message(&self, id: MessageId) -> Result<StoredMessage, StoreError> {
        let conn = self.conn();
        conn.query_row(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"),
            [id.0],
            message_row,
        )
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "message",
            id: id.0,
        })
    }

    /// The attempts behind an answer, in the order they were made.
    pub fn attempts(&self, message: MessageId) -> Result<Vec<AttemptRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a WHERE a.message_id = ?1 ORDER BY a.seq"
        ))?;
        let rows = stmt
            .query_map([message.0], attempt_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The attempts behind every answer of `conversation`, by answer, each
    /// in the order they were made (one query, for opening a long
    /// conversation).
    pub fn conversation_attempts(
        &self,
        conversation: ConversationId,
    ) -> Result<std::collections::HashMap<MessageId, Vec<AttemptRecord>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS}, a.message_id
             FROM messages m JOIN attempts a ON a.message_id = m.id
             WHERE m.conversation_id = ?1 ORDER BY a.message_id, a.seq"
        ))?;
        let mut out: std::collections::HashMap<MessageId, Vec<AttemptRecord>> =
            std::collections::HashMap::new();
        let rows = stmt.query_map([conversation.0], |r| {
            Ok((MessageId(r.get(18)?), attempt_row(r)?))
        })?;
        for row in rows {
            let (message, attempt) = row?;
            out.entry(message).or_default().push(attempt);
        }
        Ok(out)
    }

    fn update_conversation(
        &self,
        id: ConversationId,
        sql: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<(), StoreError> {
        let n = self.conn().execute(sql, params![id.0, value])?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "conversation",
                id: id.0,
            });
        }
        Ok(())
    }

    /// Pin or unpin.
    pub fn set_pinned(&self, id: ConversationId, pinned: bool) -> Result<(), StoreError> {
        self.update_conversation(
            id,
            "UPDATE conversations SET pinned = ?2 WHERE id = ?1",
            &pinned,
        )
    }

    /// Archive or restore.
    pub fn set_archived(&self, id: ConversationId, archived: bool) -> Result<(), StoreError> {
        self.update_conversation(
            id,
            "UPDATE conversations SET archived = ?2 WHERE id = ?1",
            &archived,
        )
    }

    /// Rename.
    pub fn rename(&self, id: ConversationId, title: &str) -> Result<(), StoreError> {
        self.update_conversation(
            id,
            "UPDATE conversations SET title = ?2 WHERE id = ?1",
            &title.trim(),
        )
    }

    /// Replace the tags.
    pub fn set_tags(&self, id: ConversationId, tags: &[String]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let exists: Option<i64> = tx
            .query_row("SELECT id FROM conversations WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound {
                what: "conversation",
                id: id.0,
            });
        }
        tx.execute(
            "DELETE FROM conversation_tags WHERE conversation_id = ?1",
            [id.0],
        )?;
        set_tags_tx(&tx, id, tags)?;
        tx.commit()?;
        Ok(())
    }

    /// Delete a conversation, its messages and their traces (its spend
    /// stays in the ledger: that money was spent), and the attachments no
    /// other conversation uses, files included.
    pub fn delete_conversation(&self, id: ConversationId) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let attached: Vec<String> = tx
            .prepare_cached(
                "SELECT DISTINCT ma.attachment_id FROM messages m
                 JOIN message_attachments ma ON ma.message_id = m.id
                 WHERE m.conversation_id = ?1",
            )?
            .query_map([id.0], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let n = tx.execute("DELETE FROM conversations WHERE id = ?1", [id.0])?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "conversation",
                id: id.0,
            });
        }
        self.sweep_tx(&tx, Some(&attached), now_ms())?;
        tx.commit()?;
        Ok(())
    }
}

pub(crate) fn set_tags_tx(
    tx: &Transaction<'_>,
    id: ConversationId,
    tags: &[String],
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO conversation_tags (conversation_id, tag) VALUES (?1, ?2)",
    )?;
    for tag in clean_tags(tags) {
        stmt.execute(params![id.0, tag])?;
    }
    Ok(())
}
