//! Who is calling: the client token a request presents, as
//! `Authorization: Bearer <token>` (what OpenAI SDKs send) or
//! `x-api-key: <token>` (what Anthropic SDKs send), checked against the
//! hashes of the live tokens. Every live hash is compared, in constant
//! time, whatever matched first: how long a check takes says nothing about
//! which tokens exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hyper::HeaderMap;
use switchboard_engine::store::{ClientToken, TokenHash};
use switchboard_engine::{Store, StoreError};

/// How often a token's "last used" time is written.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The live tokens, as last read from the database.
#[derive(Debug)]
pub(crate) struct Tokens {
    live: RwLock<Arc<Vec<ClientToken>>>,
    touched: Mutex<HashMap<i64, Instant>>,
}

impl Tokens {
    pub(crate) fn load(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            live: RwLock::new(Arc::new(store.tokens(false)?)),
            touched: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let fresh = store.tokens(false)?;
        if let Ok(mut live) = self.live.write()
            && **live != fresh
        {
            *live = Arc::new(fresh);
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<ClientToken>> {
        self.live
            .read()
            .map(|l| Arc::clone(&l))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner()))
    }

    pub(crate) fn count(&self) -> usize {
        self.snapshot().len()
    }

    /// The token `headers` present, when it is a live one.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Option<ClientToken> {
        let presented = presented(headers)?;
        let hash = TokenHash::of(presented);
        let mut found = None;
        for t in self.snapshot().iter() {
            if t.hash.matches(&hash) {
                found = Some(t.clone());
            }
        }
        found
    }

    /// True when `id`'s use should be written now.
    pub(crate) fn should_touch(&self, id: i64) -> bool {
        let Ok(mut touched) = self.touched.lock() else {
            return false;
        };
        let now = Instant::now();
        match touched.get(&id) {
            Some(at) if now.duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                touched.insert(id, now);
                true
            }
        }
    }
}

/// The token in `Authorization: Bearer ...` or `x-api-key`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(hyper::header::AUTHORIZATION)
        && let Ok(v) = v.to_str()
    {
        let v = v.trim();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !token.is_empty() {
            return Some(token);
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
