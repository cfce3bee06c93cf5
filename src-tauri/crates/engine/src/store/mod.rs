//! Everything Switchboard remembers, in one SQLite file in the data
//! directory ([`DataDir::database_file`]): conversations and their messages
//! (rows, not blobs), the trace of attempts behind every answer, the spend
//! ledger and the reservations that budgets count, provider health, an
//! index of which providers have a key in the OS keychain (never the key),
//! and the hashes of the Local API's client tokens.
//!
//! Why one file and SQLite: the app and any number of `switchboard-cli`
//! processes share it safely (WAL, a busy timeout, and `BEGIN IMMEDIATE`
//! for every write transaction: a deferred one that read first could not
//! wait for another process's write and would fail at once), a crash at any
//! moment loses at most the transaction in flight, and full-text search
//! (FTS5) comes with it.
//!
//! Attempts in flight survive a crash too: each open store owns a lock
//! file (`locks/<owner>.lock` beside the database), the holds and streaming answers it writes carry that
//! owner, and they are checkpointed while they stream. When a store opens,
//! the rows of owners whose process is gone are settled once
//! ([`Store::recover`]): billed at their last checkpoint's estimate, holds
//! released, answers marked `interrupted` with the text saved.
//!
//! Main types:
//! - [`Store`]: the open database; cheap to clone, safe to share between
//!   threads (one connection for writes behind a mutex, other processes
//!   waiting on the busy timeout; a second one for the reads routing does,
//!   which in WAL mode never wait for a writer). Calls are short (one small
//!   transaction each) and blocking: from async code, run them on a
//!   blocking thread (`tokio::task::spawn_blocking`), as the router does.
//! - [`Recorder`]: writes a conversation as it happens; the incognito one
//!   writes nothing.
//! - [`SqliteBudgetGate`]: the [`BudgetGate`](crate::hooks::BudgetGate) that enforces the budgets of
//!   `config.toml` against the ledger; [`SqliteHealth`]: the
//!   [`HealthStore`] the router keeps its statistics in.
//! - [`BatchWriter`]: the same ledger and health writes, group-committed
//!   by one thread for request rates in the thousands per second (the
//!   Local API), with [`BatchedGate`] and [`CachedHealth`] over it.
//! - [`ClientToken`]: the Local API's client tokens, kept as hashes.
//! - [`Conversation`], [`StoredMessage`], [`SearchHit`], [`Page`]: what
//!   history listings return, a page at a time.
//! - [`ConversationExport`]: the JSON export/import format (votes and
//!   judgments included).
//! - [`Store::record_vote`], [`Judgment`] and [`Store::leaderboard`]:
//!   deciding which model is best from the user's own blind votes.
//! - [`StoredAttachment`]: an image or PDF a message carries; its bytes
//!   are a file in the data directory named by their SHA-256, stored once
//!   however many messages use it ([`Store::put_attachment`],
//!   [`Recorder::add_user_message_with`]), deleted with the last
//!   conversation that uses it.
//!
//! # Recording a request (what `ask` does)
//!
//! ```no_run
//! # fn demo(result: switchboard_engine::AttemptResult,
//! #         trace: switchboard_engine::hooks::RequestTrace)
//! #   -> Result<(), Box<dyn std::error::Error>> {
//! use switchboard_engine::{Config, DataDir, Store};
//! use switchboard_engine::hooks::SpendContext;
//! let dir = DataDir::resolve()?;
//! let config = Config::load(&dir.config_file())?;
//! let store = Store::open(&dir)?;
//! let health = store.health(); // Arc<dyn HealthStore> for the router
//! let gate = store.budget_gate(&config)?; // Arc<dyn BudgetGate> for the router
//!
//! let incognito = false;
//! let rec = store.recorder(incognito);
//! let conv = rec.start_conversation("Explain SSE", &["work".to_owned()])?;
//! let question = rec.add_user_message(conv, None, "Explain SSE in one sentence")?;
//! // The router reserves and settles through `gate` for every attempt, with
//! // `rec.spend_context(conv, provider, model, route, tags)` as the context.
//! let ctx: SpendContext = rec.spend_context(conv, "openai", "gpt-x", None, &[]);
//! # let _ = (ctx, gate, health);
//! // Then each pane's final answer, with its trace:
//! rec.add_answer(conv, question, 0, "openai:gpt-x", &result, &trace)?;
//! # Ok(()) }
//! ```
//!
//! To keep an answer through a crash, start its row before the request
//! ([`Recorder::begin_answer`]), name it in the spend context
//! (`SpendContext::message`) so the gate's checkpoints update it, and
//! write the final answer into it ([`Recorder::finish_answer`]).
//!
//! With `incognito = true` the same calls succeed and return ids, but
//! nothing reaches the disk, and `spend_context` names no conversation.
//! The ledger still records what incognito requests cost (provider, model,
//! amount; no text, no conversation): a hard budget is a promise about
//! money, and incognito must not be a way around it.
//!
//! Times are Unix milliseconds; budget periods and spend groups use UTC
//! boundaries (see [`time`]).

mod attachments;
mod batch;
mod db;
mod decide;
mod export;
mod group;
mod health;
mod history;
mod imports;
mod keyindex;
mod ledger;
mod owner;
mod panes;
mod recovery;
mod search;
pub mod time;
mod tokens;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::hooks::HealthStore;
use crate::paths::DataDir;

pub use attachments::{AttachmentRef, PENDING_LEASE, StoredAttachment};
pub use batch::{BatchWriter, BatchedGate, CachedHealth, HEALTH_TTL, MAX_BATCH, SYNC_EVERY};
pub use db::SCHEMA_VERSION;
pub use decide::{DeferredSettles, Judgment, NewJudgment};
pub use export::{
    ConversationExport, EXPORT_FORMAT, EXPORT_VERSION, ExportedAttachment, ExportedAttempt,
    ExportedError, ExportedMessage, markdown, markdown_with,
};
pub(crate) use group::GroupCommit;
pub use health::SqliteHealth;
pub use history::{
    Answer, AnswerStart, Conversation, Page, Recorder, StoredAttempt, StoredMessage, title_of,
};
pub use imports::{IMPORT_BATCH, imported_counts};
pub use keyindex::SqliteKeyIndex;
pub use ledger::{
    BudgetState, BudgetStatus, DEFAULT_HOLD, DaySpend, GroupPerformance, LEDGER_CSV_HEADER,
    PendingSettle, SpendGroup, SpendGrouping, SpendTotal, SqliteBudgetGate, period_start,
};
pub use panes::{PaneRef, StoredPane};
pub use recovery::Recovered;
pub use search::{SearchHit, SnippetPart};
pub use tokens::{
    ClientToken, MAX_TOKEN_NAME, NewToken, TOKEN_PREFIX, TokenHash, check_token_name,
};

/// Why the store could not do something. Messages never contain keys (the
/// store has none).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file was written by a newer Switchboard; it was not modified.
    #[error(
        "{} was written by a newer version of Switchboard (schema {found}; this version knows up \
         to {known}). It was left untouched: upgrade Switchboard, or set SWITCHBOARD_HOME to \
         another directory.",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The newest this build knows.
        known: u32,
    },
    /// The file exists but is not a SQLite database; it was not modified.
    #[error(
        "{} is not a Switchboard database (not SQLite, or damaged); it was left untouched — move \
         it away to start a new one",
        path.display()
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be opened.
    #[error("cannot open {}: {message}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A migration failed; the database is as it was before it.
    #[error("migration {version} failed (nothing was changed): {message}")]
    Migration {
        /// The migration's number.
        version: u32,
        /// SQLite's message.
        message: String,
    },
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No such conversation or message.
    #[error("no {what} with id {id}")]
    NotFound {
        /// `conversation` or `message`.
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// An import file is not a Switchboard export.
    #[error("cannot import: {message}")]
    Import {
        /// What is wrong with it.
        message: String,
    },
    /// An argument is out of range (an empty title, a bad cursor).
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    fn from_open(path: &Path, e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotADatabase {
                path: path.to_owned(),
            },
            _ => StoreError::Open {
                path: path.to_owned(),
                message: e.to_string(),
            },
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        StoreError::Invalid {
            message: message.into(),
        }
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map($name)
            }
        }
    };
}

id_type!(
    /// A conversation's id (its row id; shown to users, e.g. `history export 12`).
    ConversationId
);
id_type!(
    /// A message's id.
    MessageId
);

/// The open database. Clones share one connection.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// `None` when no lock file could be made (a read-only directory):
    /// then rows in flight have no owner and only expire.
    owner: Option<owner::OwnerLock>,
    /// Holds asked for by the budget gates over this store, decided
    /// together when they come together.
    holds: GroupCommit<ledger::QueuedHold, ledger::HoldDecision>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Whatever this store left in flight (a request dropped mid-way)
        // is settled now, as a crash would be on the next start.
        if let Some(owner) = &mut self.owner {
            let conn = self
                .conn
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if recovery::settle_owner(conn, owner.id()).is_err() {
                owner.leave_for_recovery();
            }
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open the database of `dir` (creating and migrating it as needed).
    pub fn open(dir: &DataDir) -> Result<Self, StoreError> {
        Self::open_at(&dir.database_file())
    }

    /// Open the database file at `path`, and settle what processes that
    /// died left in flight ([`Store::recover`]).
    pub fn open_at(path: &Path) -> Result<Self, StoreError> {
        let conn = db::open(path)?;
        let reader = db::open_reader(path)?;
        let store = Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                conn: Mutex::new(conn),
                reader: Mutex::new(reader),
                owner: owner::OwnerLock::acquire(&owner::lock_dir(path)).ok(),
                holds: GroupCommit::new(ledger::decide_holds),
            }),
        };
        // Recovery is housekeeping: a database too busy for it now is
        // recovered by the next process that opens it. So are attachments
        // whose lease ran out unused, and imports a dead process left half
        // done.
        let _ = store.recover();
        let _ = store.sweep_attachments();
        Ok(store)
    }

    /// The budget holds waiting to be decided together.
    fn holds(&self) -> &GroupCommit<ledger::QueuedHold, ledger::HoldDecision> {
        &self.inner.holds
    }

    /// The owner name of the rows this store writes for attempts in
    /// flight: its lock file is `locks/<owner>.lock` beside the database.
    pub fn owner_id(&self) -> Option<&str> {
        self.inner.owner.as_ref().map(owner::OwnerLock::id)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The connection. A panic while it was held leaves nothing half done
    /// (an open transaction rolls back when dropped), so a poisoned lock
    /// is taken over rather than propagated.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection for reads that must not wait behind a write (a
    /// write waiting for another process's lock holds [`Store::conn`]).
    pub(crate) fn reader(&self) -> MutexGuard<'_, Connection> {
        self.inner
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `PRAGMA integrity_check` plus FTS5's own check that the search
    /// index matches the messages: `"ok"` for a sound file.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let mut lines = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        if let Err(e) = conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        ) {
            lines.retain(|l| l != "ok");
            lines.push(format!("search index: {e}"));
        }
        Ok(lines.join("\n"))
    }

    /// Health statistics for the router, persisted here.
    pub fn health(&self) -> Arc<dyn HealthStore> {
        Arc::new(SqliteHealth::new(self.clone()))
    }

    /// The index of provider ids with a keychain key, for
    /// [`crate::KeyStore::with_index`].
    pub fn key_index(&self) -> Arc<dyn crate::keys::KeyIndex> {
        Arc::new(SqliteKeyIndex::new(self.clone()))
    }

    /// A recorder for one conversation's worth of writes; `incognito`
    /// makes it write nothing.
    pub fn recorder(&self, incognito: bool) -> Recorder {
        Recorder::new(if incognito { None } else { Some(self.clone()) })
    }

    /// The budget gate enforcing `config`'s budgets (parsed here, so a bad
    /// budget is reported with its file, line and field).
    pub fn budget_gate(
        &self,
        config: &crate::config::Config,
    ) -> Result<Arc<dyn crate::hooks::BudgetGate>, crate::config::ConfigError> {
        Ok(Arc::new(SqliteBudgetGate::new(
            self.clone(),
            config.budget_list()?,
        )))
    }
}

/// Convert an optional `u64` count for SQLite (which stores `i64`).
pub(crate) fn to_sql_u64(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// Read back an optional count.
pub(crate) fn from_sql_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

#[cfg(test)]
mod tests;
