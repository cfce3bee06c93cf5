//! Client tokens of the Local API: what a script, an editor or an agent
//! on this machine presents to use Switchboard's keys, routes and budgets.
//!
//! A token is random (192 bits), shown once when it is made, and kept
//! only as its SHA-256 hash plus its last four characters for listings:
//! a copy of the database does not let anyone call the Local API. A
//! presented token is checked against every live hash in constant time
//! ([`TokenHash::matches`]). Revoking keeps the row (with its name) so the
//! ledger's tags still say whose spend they were.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::time::now_ms;
use super::{Store, StoreError};
use crate::keys::Secret;

/// What every token starts with, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "sb-";

/// The longest token name (and tag) accepted.
pub const MAX_TOKEN_NAME: usize = 64;

/// The SHA-256 of a token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(••••)")
    }
}

impl TokenHash {
    /// The hash of `token` as presented.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Does `presented` (already hashed) equal this one? Constant time, so
    /// the time a wrong token takes says nothing about the right one.
    pub fn matches(&self, presented: &TokenHash) -> bool {
        self.0.ct_eq(&presented.0).into()
    }
}

/// One token, as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientToken {
    /// Row id.
    pub id: i64,
    /// The name it was made with: the tag its requests carry in the ledger.
    pub name: String,
    /// A second tag its requests carry (a project, a client), if any.
    pub tag: Option<String>,
    /// The budget it is bound to, if any.
    pub budget: Option<String>,
    /// Its requests are saved in history (else only the ledger sees them).
    pub record_history: bool,
    /// The last four characters, for telling tokens apart.
    pub last4: String,
    /// When it was made (Unix ms).
    pub created_at_ms: i64,
    /// When it was revoked (Unix ms), if it was.
    pub revoked_at_ms: Option<i64>,
    /// When a request last used it (Unix ms, to the minute), if ever.
    pub last_used_at_ms: Option<i64>,
    /// Its hash, for checking presented tokens.
    pub hash: TokenHash,
}

impl ClientToken {
    /// The ledger tags of its requests: its name, then its tag.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![self.name.clone()];
        if let Some(t) = self.tag.as_ref().filter(|t| **t != self.name) {
            tags.push(t.clone());
        }
        tags
    }
}

/// What a new token is made with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewToken {
    /// Its name (letters, digits, `.`, `_`, `-`; at most [`MAX_TOKEN_NAME`]).
    pub name: String,
    /// An extra ledger tag.
    pub tag: Option<String>,
    /// A budget to bind it to (checked by the caller against the config).
    pub budget: Option<String>,
    /// Save its requests in history.
    pub record_history: bool,
}

/// Why `name` cannot name a token (or be its tag), if it cannot.
pub fn check_token_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_TOKEN_NAME {
        return Err(StoreError::invalid(format!(
            "a token {what} has 1 to {MAX_TOKEN_NAME} characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(StoreError::invalid(format!(
            "token {what} {name:?}: use letters, digits, '.', '_' and '-' only"
        )));
    }
    Ok(())
}

/// A fresh token: the prefix and 24 random bytes in hex.
fn generate() -> Result<String, StoreError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::invalid(format!("no randomness for a new token: {e}")))?;
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 48);
    token.push_str(TOKEN_PREFIX);
    for b in bytes {
        token.push_str(&format!("{b:02x}"));
    }
    Ok(token)
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClientToken> {
    let hash: Vec<u8> = r.get(9)?;
    let hash: [u8; 32] = hash.try_into().unwrap_or([0u8; 32]);
    Ok(ClientToken {
        id: r.get(0)?,
        name: r.get(1)?,
        tag: r.get(2)?,
        budget: r.get(3)?,
        record_history: r.get(4)?,
        last4: r.get(5)?,
        created_at_ms: r.get(6)?,
        revoked_at_ms: r.get(7)?,
        last_used_at_ms: r.get(8)?,
        hash: TokenHash(hash),
    })
}

const TOKEN_COLUMNS: &str =
    "id, name, tag, budget, record_history, last4, created_at, revoked_at, last_used_at, hash";

impl Store {
    /// Make a token. Returns it as listed and the token itself, which is
    /// not kept anywhere: show it once.
    pub fn create_token(&self, new: &NewToken) -> Result<(ClientToken, Secret), StoreError> {
        check_token_name("name", &new.name)?;
        if let Some(tag) = &new.tag {
            check_token_name("tag", tag)?;
        }
        let token = generate()?;
        let hash = TokenHash::of(&token);
        let last4: String = token[token.len() - 4..].to_owned();
        let conn = self.conn();
        let taken: Option<i64> = conn
            .query_row(
                "SELECT id FROM gateway_tokens WHERE name = ?1 AND revoked_at IS NULL",
                [&new.name],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(StoreError::invalid(format!(
                "a token named {:?} exists: revoke it first, or pick another name",
                new.name
            )));
        }
        conn.execute(
            "INSERT INTO gateway_tokens (name, hash, last4, tag, budget, record_history, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                new.name,
                hash.0.as_slice(),
                last4,
                new.tag,
                new.budget,
                new.record_history,
                now_ms()
            ],
        )?;
        let id = conn.last_insert_rowid();
        let listed = conn.query_row(
            &format!("SELECT {TOKEN_COLUMNS} FROM gateway_tokens WHERE id = ?1"),
            [id],
            token_row,
        )?;
        Ok((listed, Secret::new(token)))
    }

    /// Tokens, oldest first; revoked ones too when `include_revoked`.
    pub fn tokens(&self, include_revoked: bool) -> Result<Vec<ClientToken>, StoreError> {
        // The reader: the Local API polls this while requests write.
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM gateway_tokens
             WHERE ?1 OR revoked_at IS NULL ORDER BY id"
        ))?;
        let rows = stmt
            .query_map([include_revoked], token_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Revoke the live token named `name`; false when there is none.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE gateway_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, now_ms()],
        )?;
        Ok(n > 0)
    }
}

/// Note that token `id` was used at `at` (Unix ms), within a write
/// transaction of the caller's.
pub(crate) fn touch_token(conn: &rusqlite::Connection, id: i64, at: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE gateway_tokens SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
    )?
    .execute(params![id, at])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_at(&dir.path().join("db.sqlite3")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_token_is_kept_only_as_its_hash_and_checks_in_constant_time() {
        let (dir, store) = store();
        let (listed, token) = store
            .create_token(&NewToken {
                name: "cursor".into(),
                tag: Some("work".into()),
                ..NewToken::default()
            })
            .unwrap();
        let token = token.expose().to_owned();
        assert!(
            token.starts_with(TOKEN_PREFIX) && token.len() == 51,
            "{token}"
        );
        assert_eq!(listed.last4, &token[47..]);
        assert_eq!(listed.tags(), vec!["cursor", "work"]);
        assert!(listed.hash.matches(&TokenHash::of(&token)));
        assert!(!listed.hash.matches(&TokenHash::of(&format!("{token}x"))));
        drop(store);
        // Nowhere on disk.
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if entry.path().is_file() {
                let bytes = std::fs::read(entry.path()).unwrap();
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                    "the token is in {}",
                    entry.path().display()
                );
            }
        }
    }

    #[test]
    fn names_are_checked_unique_among_live_tokens_and_revoking_frees_them() {
        let (_dir, store) = store();
        let new = NewToken {
            name: "agent".into(),
            ..NewToken::default()
        };
        store.create_token(&new).unwrap();
        let again = store.create_token(&new).unwrap_err().to_string();
        assert!(again.contains("exists"), "{again}");
        assert!(store.revoke_token("agent").unwrap());
        assert!(!store.revoke_token("agent").unwrap());
        let (second, _) = store.create_token(&new).unwrap();
        assert_eq!(store.tokens(false).unwrap(), vec![second]);
        assert_eq!(store.tokens(true).unwrap().len(), 2);
        for bad in ["", "has space", "é", &"x".repeat(65)] {
            let e = store
                .create_token(&NewToken {
                    name: bad.into(),
                    ..NewToken::default()
                })
                .unwrap_err();
            assert!(e.to_string().contains("token name"), "{bad:?}: {e}");
        }
    }
}
