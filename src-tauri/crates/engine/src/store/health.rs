//! Provider health in SQLite, so a provider cooling down in one CLI run
//! is still cooling down in the next and the app sees the same numbers.
//! Only the newest [`KEEP_SAMPLES`] samples per target are kept: routing
//! looks at recent behaviour, and the table must not grow forever.
//!
//! [`HealthStore`] cannot return errors: health is advice to the router,
//! so a failed write loses one sample and a failed read looks like a
//! target with no history, rather than failing a request. Reads go through
//! the store's reader connection: the router makes them on async threads,
//! and they must not wait behind a write held up by another process.

use rusqlite::{OptionalExtension, params};

use super::Store;
use super::history::enum_from;
use crate::error::ErrorKind;
use crate::hooks::{CooldownState, HealthSample, HealthStore};

/// Samples kept per provider and model.
pub const KEEP_SAMPLES: usize = 200;

/// The [`HealthStore`] over the database.
#[derive(Debug, Clone)]
pub struct SqliteHealth {
    store: Store,
}

impl SqliteHealth {
    /// Health kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn try_record(
        &self,
        provider: &str,
        model: &str,
        s: &HealthSample,
    ) -> Result<(), rusqlite::Error> {
        let mut conn = self.store.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        record_in(&tx, provider, model, s)?;
        trim_in(&tx, provider, model)?;
        tx.commit()
    }

    fn try_recent(
        &self,
        provider: &str,
        model: &str,
        limit: usize,
    ) -> Result<Vec<HealthSample>, rusqlite::Error> {
        let conn = self.store.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT at, ok, error_kind, ttft_ms, tokens_per_s FROM health_samples
             WHERE provider = ?1 AND model = ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        stmt.query_map(
            params![provider, model, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(HealthSample {
                    at_unix_ms: r.get(0)?,
                    ok: r.get(1)?,
                    error_kind: enum_from(r.get(2)?),
                    ttft_ms: r.get(3)?,
                    tokens_per_s: r.get(4)?,
                })
            },
        )?
        .collect()
    }

    fn try_cooldown(&self, provider: &str, model: &str) -> Result<CooldownState, rusqlite::Error> {
        let conn = self.store.reader();
        let state = conn
            .prepare_cached(
                "SELECT consecutive_failures, until_at, level FROM health_cooldowns
                 WHERE provider = ?1 AND model = ?2",
            )?
            .query_row(params![provider, model], |r| {
                Ok(CooldownState {
                    consecutive_failures: r.get(0)?,
                    until_unix_ms: r.get(1)?,
                    level: r.get(2)?,
                })
            })
            .optional()?;
        Ok(state.unwrap_or_default())
    }
}

impl HealthStore for SqliteHealth {
    fn record(&self, provider: &str, model: &str, sample: &HealthSample) {
        let _ = self.try_record(provider, model, sample);
    }

    fn recent(&self, provider: &str, model: &str, limit: usize) -> Vec<HealthSample> {
        self.try_recent(provider, model, limit).unwrap_or_default()
    }

    fn cooldown(&self, provider: &str, model: &str) -> CooldownState {
        self.try_cooldown(provider, model).unwrap_or_default()
    }

    fn set_cooldown(&self, provider: &str, model: &str, state: CooldownState) {
        let _ = set_cooldown_in(&self.store.conn(), provider, model, state);
    }
}

/// Add one sample, inside the caller's write transaction.
pub(crate) fn record_in(
    conn: &rusqlite::Connection,
    provider: &str,
    model: &str,
    s: &HealthSample,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO health_samples (provider, model, at, ok, error_kind, ttft_ms, tokens_per_s)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        provider,
        model,
        s.at_unix_ms,
        s.ok,
        s.error_kind.map(ErrorKind::as_str),
        s.ttft_ms,
        s.tokens_per_s
    ])?;
    Ok(())
}

/// Drop all but the newest [`KEEP_SAMPLES`] samples of a target.
pub(crate) fn trim_in(
    conn: &rusqlite::Connection,
    provider: &str,
    model: &str,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "DELETE FROM health_samples WHERE provider = ?1 AND model = ?2 AND id <= (
             SELECT id FROM health_samples WHERE provider = ?1 AND model = ?2
             ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![provider, model, KEEP_SAMPLES as i64])?;
    Ok(())
}

/// Replace a target's cooldown state.
pub(crate) fn set_cooldown_in(
    conn: &rusqlite::Connection,
    provider: &str,
    model: &str,
    state: CooldownState,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO health_cooldowns (provider, model, consecutive_failures, until_at, level)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (provider, model) DO UPDATE SET
             consecutive_failures = excluded.consecutive_failures,
             until_at = excluded.until_at, level = excluded.level",
    )?
    .execute(params![
        provider,
        model,
        state.consecutive_failures,
        state.until_unix_ms,
        state.level
    ])?;
    Ok(())
}
