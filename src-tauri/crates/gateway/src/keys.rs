//! Provider keys for the Local API's requests, looked up once (off the
//! async threads: the keychain blocks, often behind a D-Bus round trip)
//! and kept in memory for [`KEY_TTL`], so a request costs no keychain
//! call. A key that is missing is looked up again sooner ([`MISSING_TTL`]),
//! so one added in Settings is used within seconds, and a provider that
//! answers `auth` has its key looked up again on the next request.
//!
//! A key that has outlived its time but would still let the request go
//! (a key, or none for a local server) is used once more while one
//! lookup runs in the background: otherwise every request running when
//! it expires would wait on the keychain at once, which is what the
//! Local API's tail latency was made of under load.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
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
    /// Providers whose key is being looked up in the background.
    refreshing: Mutex<HashSet<String>>,
}

/// What the cache holds for a provider.
enum Cached {
    /// Within its time.
    Fresh,
    /// Past its time, but usable while it is looked up again.
    Usable,
    /// Nothing, or a failed lookup past its time: look it up now.
    Missing,
}

impl KeyCache {
    pub(crate) fn new(store: KeyStore) -> Self {
        Self {
            store,
            keys: RwLock::new(HashMap::new()),
            refreshing: Mutex::new(HashSet::new()),
        }
    }

    fn cached(&self, id: &str) -> Cached {
        let Ok(keys) = self.keys.read() else {
            return Cached::Missing;
        };
        let Some((at, looked)) = keys.get(id) else {
            return Cached::Missing;
        };
        let ttl = match looked {
            Ok(Some(_)) => KEY_TTL,
            Ok(None) | Err(_) => MISSING_TTL,
        };
        if at.elapsed() < ttl {
            Cached::Fresh
        } else if looked.is_ok() {
            Cached::Usable
        } else {
            Cached::Missing
        }
    }

    fn insert(&self, id: &str, looked: Looked) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(id.to_owned(), (Instant::now(), looked));
        }
    }

    /// Make the keys of `providers` ready: looked up now when there is
    /// none to use, again in the background when the one held is old.
    pub(crate) async fn ensure(self: &Arc<Self>, providers: &[ProviderConfig]) {
        for p in providers {
            match self.cached(&p.id) {
                Cached::Fresh => {}
                Cached::Usable => self.refresh_in_background(p),
                Cached::Missing => {
                    let looked = provider_key(&self.store, p).await;
                    self.insert(&p.id, looked);
                }
            }
        }
    }

    /// Look `provider`'s key up again on a task of its own, unless that
    /// is already under way.
    fn refresh_in_background(self: &Arc<Self>, provider: &ProviderConfig) {
        let first = self
            .refreshing
            .lock()
            .is_ok_and(|mut r| r.insert(provider.id.clone()));
        if !first {
            return;
        }
        let (cache, provider) = (Arc::clone(self), provider.clone());
        tokio::spawn(async move {
            let looked = provider_key(&cache.store, &provider).await;
            cache.insert(&provider.id, looked);
            if let Ok(mut r) = cache.refreshing.lock() {
                r.remove(&provider.id);
            }
        });
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use switchboard_engine::ProviderKind;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_old_key_is_looked_up_once_in_the_background_while_requests_go_on() {
        let store = KeyStore::with_service("switchboard-gateway-keys-test");
        let cache = Arc::new(KeyCache::new(store.clone()));
        // A local server: no key needed, so "none" lets requests go.
        let local = ProviderConfig::custom("loc", ProviderKind::OpenAi, "http://127.0.0.1:9");
        let providers = vec![local.clone()];
        cache.ensure(&providers).await;
        assert_eq!(store.reads(), 1);
        // Its time runs out while requests keep coming.
        let old = Instant::now().checked_sub(MISSING_TTL * 2).unwrap();
        cache
            .keys
            .write()
            .unwrap()
            .insert("loc".into(), (old, Ok(None)));
        for _ in 0..20 {
            cache.ensure(&providers).await;
            assert!(cache.key(&local).is_ok(), "the old answer serves meanwhile");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(cache.cached("loc"), Cached::Fresh) {
            assert!(Instant::now() < deadline, "never looked up again");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(store.reads(), 2, "one lookup for twenty requests");
        // A key forgotten (the provider refused it) is looked up before
        // the next request goes.
        cache.forget("loc");
        cache.ensure(&providers).await;
        assert_eq!(store.reads(), 3);
    }
}
