//! Writing an imported export (see [`crate::import`]): conversations and
//! messages in batches of [`IMPORT_BATCH`] conversations, one write
//! transaction each, so the app and other processes are never locked out
//! for long and progress can be shown. The whole import is one run
//! (`import_runs`): if it fails, or its process dies, everything the run
//! wrote is removed again (by the run itself, or by the next store to
//! open, as with attempts in flight), so an import lands whole or not at
//! all. Every conversation and message remembers its source id
//! (`import_sources`): what an earlier import brought is never added twice.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use switchboard_protocol::{ImportProgress, ImportSummary};

use super::history::{NewMessage, insert_message};
use super::time::now_ms;
use super::{ConversationId, MessageId, Store, StoreError};
use crate::import::{ImportedConversation, ParsedExport, source_name};

/// Conversations written per transaction.
pub const IMPORT_BATCH: usize = 250;

/// How one conversation went.
enum Outcome {
    Added,
    Updated,
    Unchanged,
}

impl Store {
    /// Write `parsed` (see the module docs), calling `progress` after each
    /// batch. On failure everything this import wrote is removed again.
    pub fn import_conversations(
        &self,
        parsed: &ParsedExport,
        progress: &mut dyn FnMut(ImportProgress),
    ) -> Result<ImportSummary, StoreError> {
        let source = source_name(parsed.source);
        let run = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO import_runs (source, owner, started_at) VALUES (?1, ?2, ?3)",
                params![source, self.owner_id(), now_ms()],
            )?;
            conn.last_insert_rowid()
        };
        let total = parsed.conversations.len() as u64;
        let mut summary = ImportSummary {
            source: parsed.source,
            conversations: total,
            added: 0,
            updated: 0,
            unchanged: 0,
            messages: 0,
            skipped_messages: parsed.skipped_messages,
            missing_attachments: parsed.missing_attachments.len() as u64,
            missing_examples: parsed.missing_attachments.iter().take(5).cloned().collect(),
            latest: None,
        };
        let mut latest: Option<(i64, i64)> = None;
        progress(ImportProgress {
            source: parsed.source,
            done: 0,
            total,
            added: 0,
        });
        let written = (|| -> Result<(), StoreError> {
            let mut done = 0;
            for batch in parsed.conversations.chunks(IMPORT_BATCH) {
                let mut conn = self.conn();
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                for c in batch {
                    let (id, outcome, messages) = write_conversation(&tx, source, run, c)?;
                    summary.messages += messages;
                    match outcome {
                        Outcome::Added => summary.added += 1,
                        Outcome::Updated => summary.updated += 1,
                        Outcome::Unchanged => summary.unchanged += 1,
                    }
                    if !matches!(outcome, Outcome::Unchanged)
                        && latest.is_none_or(|(at, _)| c.updated_at_ms > at)
                    {
                        latest = Some((c.updated_at_ms, id.0));
                    }
                }
                tx.commit()?;
                drop(conn);
                done += batch.len() as u64;
                progress(ImportProgress {
                    source: parsed.source,
                    done,
                    total,
                    added: summary.added,
                });
            }
            Ok(())
        })();
        match written {
            Ok(()) => {
                self.conn().execute(
                    "UPDATE import_runs SET finished_at = ?2, owner = NULL WHERE id = ?1",
                    params![run, now_ms()],
                )?;
                summary.latest = latest.map(|(_, id)| id);
                Ok(summary)
            }
            Err(e) => {
                let mut conn = self.conn();
                if let Ok(tx) = conn.transaction_with_behavior(TransactionBehavior::Immediate) {
                    let _ = undo_run(&tx, run).and_then(|()| tx.commit().map_err(Into::into));
                }
                Err(e)
            }
        }
    }
}

/// Write one conversation (or what is new in it); its id, what happened,
/// and how many messages were written.
fn write_conversation(
    tx: &Transaction<'_>,
    source: &str,
    run: i64,
    c: &ImportedConversation,
) -> Result<(ConversationId, Outcome, u64), StoreError> {
    let mut find = tx.prepare_cached(
        "SELECT conversation_id, message_id FROM import_sources
         WHERE source = ?1 AND source_id = ?2",
    )?;
    let mut remember = tx.prepare_cached(
        "INSERT INTO import_sources (source, source_id, run_id, conversation_id, message_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let known: Option<Option<i64>> = find
        .query_row(params![source, c.source_id], |r| r.get(0))
        .optional()?;
    let (conversation, existed) = match known.flatten() {
        Some(id) => (ConversationId(id), true),
        None => {
            // A row whose conversation was deleted since: import it afresh.
            tx.execute(
                "DELETE FROM import_sources WHERE source = ?1 AND source_id = ?2",
                params![source, c.source_id],
            )?;
            tx.execute(
                "INSERT INTO conversations (title, created_at, updated_at) VALUES (?1, ?2, ?3)",
                params![c.title, c.created_at_ms, c.updated_at_ms],
            )?;
            let id = tx.last_insert_rowid();
            remember.execute(params![source, c.source_id, run, id, Option::<i64>::None])?;
            (ConversationId(id), false)
        }
    };
    let mut ids: Vec<Option<MessageId>> = Vec::with_capacity(c.messages.len());
    let mut written = 0u64;
    let mut newest = 0;
    for m in &c.messages {
        let known: Option<i64> = if existed {
            find.query_row(params![source, m.source_id], |r| r.get::<_, Option<i64>>(1))
                .optional()?
                .flatten()
        } else {
            None
        };
        if let Some(id) = known {
            ids.push(Some(MessageId(id)));
            continue;
        }
        let parent = m.parent.and_then(|i| ids.get(i).copied().flatten());
        let target = match (&m.provider, &m.model) {
            (Some(p), Some(model)) => Some(format!("{p}:{model}")),
            _ => None,
        };
        let new = NewMessage {
            parent,
            reasoning: m.reasoning.as_deref(),
            provider: m.provider.as_deref(),
            model: m.model.as_deref(),
            target: target.as_deref(),
            pane: (m.role == crate::chat::Role::Assistant).then_some(0),
            ..NewMessage::base(conversation, m.role, &m.content, m.created_at_ms)
        };
        let id = insert_message(tx, &new)?;
        tx.execute(
            "DELETE FROM import_sources WHERE source = ?1 AND source_id = ?2",
            params![source, m.source_id],
        )?;
        remember.execute(params![source, m.source_id, run, Option::<i64>::None, id.0])?;
        ids.push(Some(id));
        written += 1;
        newest = newest.max(m.created_at_ms);
    }
    let outcome = match (existed, written) {
        (false, _) => Outcome::Added,
        (true, 0) => Outcome::Unchanged,
        (true, _) => {
            tx.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?2) WHERE id = ?1",
                params![conversation.0, newest.max(c.updated_at_ms)],
            )?;
            Outcome::Updated
        }
    };
    Ok((conversation, outcome, written))
}

/// Remove everything import run `run` wrote, and the run.
pub(crate) fn undo_run(tx: &Transaction<'_>, run: i64) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM conversations WHERE id IN (
             SELECT conversation_id FROM import_sources
             WHERE run_id = ?1 AND conversation_id IS NOT NULL)",
        [run],
    )?;
    tx.execute(
        "DELETE FROM messages WHERE id IN (
             SELECT message_id FROM import_sources WHERE run_id = ?1 AND message_id IS NOT NULL)",
        [run],
    )?;
    tx.execute("DELETE FROM import_sources WHERE run_id = ?1", [run])?;
    tx.execute("DELETE FROM import_runs WHERE id = ?1", [run])?;
    Ok(())
}

/// Undo the unfinished import runs of a dead `owner` (see
/// [`Store::recover`]).
pub(crate) fn undo_runs_of(tx: &Transaction<'_>, owner: &str) -> Result<u64, StoreError> {
    let runs: Vec<i64> = tx
        .prepare_cached("SELECT id FROM import_runs WHERE owner = ?1 AND finished_at IS NULL")?
        .query_map([owner], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for run in &runs {
        undo_run(tx, *run)?;
    }
    Ok(runs.len() as u64)
}

/// How many conversations each source has brought, for tests and listings.
pub fn imported_counts(store: &Store) -> Result<HashMap<String, u64>, StoreError> {
    let conn = store.conn();
    let mut stmt = conn.prepare(
        "SELECT source, count(*) FROM import_sources WHERE conversation_id IS NOT NULL
         GROUP BY source",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(s, n)| (s, u64::try_from(n).unwrap_or(0)))
        .collect())
}
