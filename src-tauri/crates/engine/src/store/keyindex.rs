//! Which provider ids have a key in the OS keychain. The keychain API
//! (`keyring` v3) cannot list entries, so `keys list` needs this index; it
//! holds the id and the last four characters shown in listings, never the
//! key.

use rusqlite::{OptionalExtension, params};

use super::Store;
use super::time::now_ms;
use crate::keys::{KeyError, KeyIndex, KeyStamp};

/// The [`KeyIndex`] in the database's `key_index` table.
#[derive(Debug, Clone)]
pub struct SqliteKeyIndex {
    store: Store,
}

impl SqliteKeyIndex {
    /// The index kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn index_err(e: rusqlite::Error) -> KeyError {
    KeyError::Index {
        reason: e.to_string(),
    }
}

impl KeyIndex for SqliteKeyIndex {
    fn put(&self, provider_id: &str, last4: &str) -> Result<(), KeyError> {
        self.store
            .conn()
            .execute(
                "INSERT INTO key_index (provider_id, last4, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (provider_id) DO UPDATE SET
                     last4 = excluded.last4, updated_at = excluded.updated_at",
                params![provider_id, last4, now_ms()],
            )
            .map(|_| ())
            .map_err(index_err)
    }

    fn remove(&self, provider_id: &str) -> Result<(), KeyError> {
        self.store
            .conn()
            .execute(
                "DELETE FROM key_index WHERE provider_id = ?1",
                [provider_id],
            )
            .map(|_| ())
            .map_err(index_err)
    }

    fn ids(&self) -> Result<Vec<String>, KeyError> {
        let conn = self.store.conn();
        let mut stmt = conn
            .prepare("SELECT provider_id FROM key_index ORDER BY provider_id")
            .map_err(index_err)?;
        stmt.query_map([], |r| r.get(0))
            .map_err(index_err)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(index_err)
    }

    fn stamp(&self, provider_id: &str) -> Result<KeyStamp, KeyError> {
        // The reader: a check never waits behind a write.
        self.store
            .reader()
            .prepare_cached("SELECT updated_at, last4 FROM key_index WHERE provider_id = ?1")
            .and_then(|mut s| {
                s.query_row([provider_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map(KeyStamp)
            .map_err(index_err)
    }
}
