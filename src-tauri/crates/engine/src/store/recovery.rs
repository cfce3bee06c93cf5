//! Crash recovery: what a process that died (a crash, `kill -9`, a power
//! cut) left in flight, settled once by the next store to open.
//!
//! A dead owner's holds are billed at their last checkpoint (an estimate
//! for the text that had streamed, marked as such; no ledger row when the
//! request had not been sent) and released; its streaming answers keep the
//! text saved by their last checkpoint and are marked `interrupted`, with
//! the cost of their ledger rows. All of one owner's rows change in one
//! transaction, and the owner's lock file is removed only after it
//! commits: a recovery cut short is redone, never doubled.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::history::{ATTEMPT_INSERT, cost_source_name};
use super::ledger::insert_ledger;
use super::{Store, StoreError, owner};
use crate::chat::CostSource;
use crate::error::ErrorKind;
use crate::hooks::{SettledCost, SpendContext};
use crate::money::Cost;

/// What an interrupted answer says.
pub const INTERRUPTED_MESSAGE: &str = "Switchboard stopped (it crashed or was killed) while this \
answer streamed; the text saved up to then is kept, and its cost is estimated";

/// What a recovery settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Answers marked interrupted.
    pub answers: u64,
    /// Ledger rows written for attempts cut mid-way.
    pub billed: u64,
    /// Holds released.
    pub released: u64,
}

impl Store {
    /// Settle the rows of every owner whose process is gone (see the
    /// module docs). Runs when a store opens; safe to call at any time, by
    /// any number of processes at once.
    pub fn recover(&self) -> Result<Recovered, StoreError> {
        let dir = owner::lock_dir(self.path());
        let mut total = Recovered::default();
        for dead in owner::dead_owners(&dir, self.owner_id()) {
            let done = settle_owner(&mut self.conn(), &dead.id)?;
            total.answers += done.answers;
            total.billed += done.billed;
            total.released += done.released;
            dead.remove();
        }
        Ok(total)
    }
}

/// One hold of a dead owner.
struct Hold {
    id: i64,
    created_at: i64,
    provider: String,
    model: String,
    route: Option<String>,
    conversation: Option<String>,
    message: Option<i64>,
    billed: bool,
    cost_nanos: Option<i64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    progress_at: Option<i64>,
}

/// Settle every row `owner` left in flight, in one transaction.
pub(crate) fn settle_owner(conn: &mut Connection, owner: &str) -> Result<Recovered, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut done = Recovered::default();
    let holds = {
        let mut stmt = tx.prepare(
            "SELECT id, created_at, provider, model, route, conversation, message, billed,
                    cost_nanos, input_tokens, output_tokens, progress_at
             FROM reservations WHERE owner = ?1 ORDER BY id",
        )?;
        stmt.query_map([owner], |r| {
            Ok(Hold {
                id: r.get(0)?,
                created_at: r.get(1)?,
                provider: r.get(2)?,
                model: r.get(3)?,
                route: r.get(4)?,
                conversation: r.get(5)?,
                message: r.get(6)?,
                billed: r.get(7)?,
                cost_nanos: r.get(8)?,
                input_tokens: r.get(9)?,
                output_tokens: r.get(10)?,
                progress_at: r.get(11)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?
    };
    for h in holds {
        if h.billed {
            let tags: Vec<String> = tx
                .prepare_cached("SELECT tag FROM reservation_tags WHERE reservation_id = ?1")?
                .query_map([h.id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let ctx = SpendContext {
                provider: h.provider.clone(),
                model: h.model.clone(),
                route: h.route.clone(),
                tags,
                conversation: h.conversation.clone(),
                message: h.message,
            };
            let input = h.input_tokens.and_then(|n| u64::try_from(n).ok());
            let output = h.output_tokens.and_then(|n| u64::try_from(n).ok());
            let cost = SettledCost {
                cost: h.cost_nanos.map(Cost::from_nanos),
                estimated: true,
                input_tokens: input,
                output_tokens: output,
            };
            let at = h.progress_at.unwrap_or(h.created_at);
            insert_ledger(&tx, &ctx, &cost, at)?;
            done.billed += 1;
            if let Some(message) = h.message {
                trace_interrupted(&tx, message, owner, &h, at)?;
            }
        }
        tx.execute("DELETE FROM reservations WHERE id = ?1", [h.id])?;
        done.released += 1;
    }
    // An answer costs what its ledger rows do (every billed attempt).
    let answers = tx.execute(
        "UPDATE messages SET
             error_kind = ?2,
             error_message = ?3,
             cost_nanos = (SELECT CASE WHEN sum(priced) > 0 THEN sum(cost_nanos) END
                           FROM ledger WHERE ledger.message = messages.id),
             cost_source = (SELECT CASE WHEN sum(priced) > 0 THEN
                                CASE WHEN max(estimated) = 1 THEN ?4 ELSE ?5 END END
                            FROM ledger WHERE ledger.message = messages.id),
             live_owner = NULL
         WHERE live_owner = ?1",
        params![
            owner,
            ErrorKind::Interrupted.as_str(),
            INTERRUPTED_MESSAGE,
            cost_source_name(CostSource::Estimated),
            cost_source_name(CostSource::Computed),
        ],
    )?;
    done.answers = answers as u64;
    // An import the owner was running when it died is removed whole.
    super::imports::undo_runs_of(&tx, owner)?;
    tx.commit()?;
    Ok(done)
}

/// Append the cut attempt to the trace of the answer it was streaming.
fn trace_interrupted(
    tx: &rusqlite::Transaction<'_>,
    message: i64,
    owner: &str,
    h: &Hold,
    at: i64,
) -> Result<(), StoreError> {
    let live: Option<i64> = tx
        .query_row(
            "SELECT id FROM messages WHERE id = ?1 AND live_owner = ?2",
            params![message, owner],
            |r| r.get(0),
        )
        .optional()?;
    if live.is_none() {
        return Ok(());
    }
    let seq: i64 = tx.query_row(
        "SELECT coalesce(max(seq) + 1, 0) FROM attempts WHERE message_id = ?1",
        [message],
        |r| r.get(0),
    )?;
    tx.prepare_cached(ATTEMPT_INSERT)?.execute(params![
        message,
        seq,
        h.provider,
        h.model,
        h.created_at,
        Option::<f64>::None,
        (at - h.created_at).max(0) as f64,
        "error",
        ErrorKind::Interrupted.as_str(),
        Option::<&str>::None,
        INTERRUPTED_MESSAGE,
        h.input_tokens,
        h.output_tokens,
        Option::<i64>::None,
        Option::<i64>::None,
        h.cost_nanos,
        h.cost_nanos
            .map(|_| cost_source_name(CostSource::Estimated)),
        Option::<i64>::None,
        Option::<i64>::None,
        Option::<f64>::None,
    ])?;
    Ok(())
}
