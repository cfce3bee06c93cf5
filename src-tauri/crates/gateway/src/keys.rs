//! Provider keys for the Local API's requests, looked up once (off the
//! async threads: the keychain blocks, often behind a D-Bus round trip)
//! and kept in memory for [`KEY_TTL`], so a request costs no keychain
//! call. A key that is missing is looked up again sooner ([`MISSING_TTL`]),
//! so one added in Settings is used within seconds, and a provider that
//! answers `auth` has its key looked up again on the next request.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use switchboard_engine::routing::KeyResolver;
use switchboard_engine::{
    ErrorKind, KeyStore, ProviderConfig, ProviderError, Secret, provider_key,
};

/// How long a key found is used before it is looked up again.
pub const KEY_TTL: Duration = Duration::from_secs(60);
/// How long "no key" is believed.
pub const MISSING_TTL: Duration = Duration::from_secs(3);

type Looked = Result<Option<Secret>, ProviderError>;

/// Keys by provider id, with when they were looked up.
#[derive(Debug)]
pub(crate) struct KeyCache {
    store: KeyStore,
    keys: RwLock<HashMap<String, (Instant, Looked)>>,
}

impl KeyCache {
    pub(crate) fn new(store: KeyStore) -> Self {
        Self {
            store,
            keys: RwLock::new(HashMap::new()),
        }
    }

    fn fresh(&self, id: &str) -> bool {
        self.keys.read().is_ok_and(|k| {
            k.get(id).is_some_and(|(at, looked)| {
                let ttl = match looked {
                    Ok(Some(_)) => KEY_TTL,
                    Ok(None) | Err(_) => MISSING_TTL,
                };
                at.elapsed() < ttl
            })
        })
    }

    /// Look up the keys of `providers` that are not fresh.
    pub(crate) async fn ensure(&self, providers: &[ProviderConfig]) {
        for p in providers {
            if self.fresh(&p.id) {
                continue;
            }
            let looked = provider_key(&self.store, p).await;
            if let Ok(mut keys) = self.keys.write() {
                keys.insert(p.id.clone(), (Instant::now(), looked));
            }
        }
    }

    /// Forget `id`'s key (the provider refused it).
    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(id);
        }
    }

    /// Forget every key.
    pub(crate) fn clear(&self) {
        if let Ok(mut keys) = self.keys.write() {
            keys.clear();
        }
    }
}

impl KeyResolver for KeyCache {
    fn key(&self, provider: &ProviderConfig) -> Result<Option<Secret>, ProviderError> {
        if let Ok(keys) = self.keys.read()
            && let Some((_, looked)) = keys.get(&provider.id)
        {
            return looked.clone();
        }
        if provider.local {
            return Ok(None);
        }
        Err(ProviderError::new(
            ErrorKind::Auth,
            &provider.id,
            format!("no API key for provider \"{}\" was looked up", provider.id),
        ))
    }
}
