//! Provider keys kept in memory for the requests that use them. A keychain
//! read is a round trip to another process (the Secret Service over
//! D-Bus on Linux: a new connection and a key exchange each time), which
//! cost each of the app's panes tens of milliseconds before its request
//! could leave; the app's panes and the Local API both read keys through
//! a [`KeyCache`] instead.
//!
//! A key found is used for [`KEY_TTL`]; "no key" is believed for
//! [`MISSING_TTL`], so one added by another process is found within
//! seconds. A key past its time that would still let the request go (a
//! key, or none for a local server) is used once more while one lookup
//! runs in the background: otherwise every request running when it
//! expires would wait on the keychain at once.
//!
//! A key held can go out of date in two ways, each caught:
//! - set or removed through the [`KeyStore`] the cache reads (or a clone
//!   of it: the app's Settings and the Local API it runs share one): every
//!   key is read again before the next request uses it;
//! - set or removed by another process (`switchboard-cli keys set` or
//!   `keys rm`): every process that changes a key updates the key
//!   index in the shared database (see [`KeyIndex`](super::KeyIndex)), so
//!   at most every [`INDEX_CHECK`] the cache compares the index's entry
//!   for each key it holds with the one it saw when it read the key (one
//!   small database read, before the request that finds it due uses the
//!   key) and reads the key again if it changed: a key removed elsewhere
//!   is not sent by any request after that, even to a provider that would
//!   still accept it;
//! - changed by another process without the index (another tool writing
//!   the keychain): when a provider refuses the key held, the router asks
//!   for the keychain's key again ([`KeyResolver::replacement`]) and, if
//!   it is another one, sends the request once more with it; a key that
//!   still works is replaced within [`KEY_TTL`].
//!
//! Keys are held as [`Secret`]s: the cache's `Debug` output shows none.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{KeyError, KeySource, KeyStamp, KeyStore, Secret, request_key};
use crate::error::{ErrorKind, ProviderError};
use crate::provider::ProviderConfig;
use crate::routing::KeyResolver;

/// How long a key found is used before it is looked up again.
pub const KEY_TTL: Duration = Duration::from_secs(60);
/// How long "no key" (or a keychain that did not answer) is believed.
pub const MISSING_TTL: Duration = Duration::from_secs(3);
/// How often a key held is checked against the key index (for a change
/// made by another process).
pub const INDEX_CHECK: Duration = Duration::from_secs(1);

/// What the keychain (or the environment) gave for a provider id.
type Looked = Result<Option<(Secret, KeySource)>, KeyError>;

/// One provider's lookup: when, after how many changes of the store, and
/// what the key index said of it then.
#[derive(Debug)]
struct Held {
    at: Instant,
    changes: u64,
    looked: Looked,
    /// The index's entry, read just before the key (`None`: no index, or
    /// it could not be read).
    stamp: Option<KeyStamp>,
    /// When the index was last found unchanged (or read with the key).
    checked: Instant,
}

impl Held {
    /// A key from the environment is this process's own choice: another
    /// process's change to the keychain does not concern it.
    fn follows_index(&self) -> bool {
        !matches!(self.looked, Ok(Some((_, KeySource::Environment))))
    }
}

/// Keys by provider id, looked up through one [`KeyStore`].
#[derive(Debug)]
pub struct KeyCache {
    store: KeyStore,
    keys: RwLock<HashMap<String, Held>>,
    /// Providers whose key is being looked up (or checked against the key
    /// index) in the background.
    refreshing: Mutex<HashSet<String>>,
}

/// What the cache holds for a provider.
#[derive(Debug, PartialEq, Eq)]
enum Cached {
    /// Within its time.
    Fresh,
    /// Within its time, but due to be checked against the key index.
    Unchecked,
    /// Past its time, but usable while it is looked up again.
    Usable,
    /// Nothing, a key changed since, or a failed lookup past its time:
    /// look it up now.
    Missing,
}

impl KeyCache {
    /// An empty cache over `store` (whose clones' changes it follows).
    pub fn new(store: KeyStore) -> Self {
        Self {
            store,
            keys: RwLock::new(HashMap::new()),
            refreshing: Mutex::new(HashSet::new()),
        }
    }

    /// The store keys are read from (and set and removed through).
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    fn cached(&self, provider: &ProviderConfig) -> Cached {
        let Ok(keys) = self.keys.read() else {
            return Cached::Missing;
        };
        let Some(held) = keys.get(&provider.id) else {
            return Cached::Missing;
        };
        if held.changes != self.store.changes() {
            return Cached::Missing;
        }
        let ttl = match held.looked {
            Ok(Some(_)) => KEY_TTL,
            Ok(None) | Err(_) => MISSING_TTL,
        };
        if held.at.elapsed() < ttl {
            if held.follows_index() && held.checked.elapsed() >= INDEX_CHECK {
                Cached::Unchecked
            } else {
                Cached::Fresh
            }
        } else if request_key(provider, &held.looked).is_ok() {
            Cached::Usable
        } else {
            Cached::Missing
        }
    }

    /// Read `provider_id`'s key now, past the cache (blocking: the
    /// keychain), keep what was read and return it.
    pub fn lookup(&self, provider_id: &str) -> Result<Option<(Secret, KeySource)>, KeyError> {
        // Counted before reading: a key set while the read runs leaves
        // this one out of date, to be read again.
        let changes = self.store.changes();
        // The index before the key, as other processes write them in the
        // other order: a change made meanwhile leaves this stamp old, so
        // the key is read again at the next check, never kept stale.
        let stamp = self.store.stamp(provider_id);
        let looked = self.store.get(provider_id);
        if let Ok(mut keys) = self.keys.write() {
            let now = Instant::now();
            keys.insert(
                provider_id.to_owned(),
                Held {
                    at: now,
                    changes,
                    looked: looked.clone(),
                    stamp,
                    checked: now,
                },
            );
        }
        looked
    }

    /// Compare what the key index says of `provider_id`'s key now with
    /// what it said when the key was read (blocking: a database read); read
    /// the key again if it changed.
    fn check_index(&self, provider_id: &str) {
        let now = self.store.stamp(provider_id);
        let changed = {
            let Ok(mut keys) = self.keys.write() else {
                return;
            };
            let Some(held) = keys.get_mut(provider_id) else {
                return;
            };
            // An index that cannot be read now proves nothing; one that
            // could not be read with the key is read with it again.
            let changed = now.is_some() && held.stamp != now;
            if !changed {
                held.checked = Instant::now();
            }
            changed
        };
        if changed {
            let _ = self.lookup(provider_id);
        }
    }

    /// [`KeyCache::lookup`] off the async threads.
    async fn lookup_blocking(self: &Arc<Self>, provider_id: &str) -> Looked {
        let (cache, id) = (Arc::clone(self), provider_id.to_owned());
        tokio::task::spawn_blocking(move || cache.lookup(&id))
            .await
            .unwrap_or_else(|e| {
                Err(KeyError::Platform {
                    reason: e.to_string(),
                })
            })
    }

    /// Make the keys of `providers` ready for [`KeyResolver::key`]: looked
    /// up now (together) when there is none to use, again in the background
    /// when the one held is old. A disabled provider's key is never read.
    pub async fn ensure<'a>(
        self: &Arc<Self>,
        providers: impl IntoIterator<Item = &'a ProviderConfig>,
    ) {
        let (mut now, mut check): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
        for p in providers.into_iter().filter(|p| p.enabled) {
            match self.cached(p) {
                Cached::Fresh => {}
                // Checked before this request uses the key (one small
                // database read, at most once a second per provider): a
                // key removed elsewhere is not sent even once after it.
                Cached::Unchecked if !check.contains(&p.id.as_str()) => check.push(&p.id),
                Cached::Unchecked => {}
                Cached::Usable => self.refresh_in_background(&p.id),
                Cached::Missing if !now.contains(&p.id.as_str()) => now.push(&p.id),
                Cached::Missing => {}
            }
        }
        let checks = check.into_iter().map(|id| self.check_blocking(id));
        let lookups = now.into_iter().map(|id| async move {
            let _ = self.lookup_blocking(id).await;
        });
        futures::future::join(
            futures::future::join_all(checks),
            futures::future::join_all(lookups),
        )
        .await;
    }

    /// [`KeyCache::check_index`] off the async threads.
    async fn check_blocking(self: &Arc<Self>, provider_id: &str) {
        let (cache, id) = (Arc::clone(self), provider_id.to_owned());
        let _ = tokio::task::spawn_blocking(move || cache.check_index(&id)).await;
    }

    /// The key a request to `provider` carries, read now (past the cache)
    /// and kept: for an explicit check of a provider, where a key changed
    /// elsewhere a moment ago must count.
    pub async fn fresh(
        self: &Arc<Self>,
        provider: &ProviderConfig,
    ) -> Result<Option<Secret>, ProviderError> {
        if !provider.enabled {
            return Err(provider.disabled_error());
        }
        request_key(provider, &self.lookup_blocking(&provider.id).await)
    }

    /// Look `provider_id`'s key up again on a task of its own, unless that
    /// (or a check) is already under way.
    fn refresh_in_background(self: &Arc<Self>, provider_id: &str) {
        self.in_background(provider_id, |cache, id| {
            let _ = cache.lookup(id);
        });
    }

    fn in_background(
        self: &Arc<Self>,
        provider_id: &str,
        work: impl FnOnce(&KeyCache, &str) + Send + 'static,
    ) {
        let first = self
            .refreshing
            .lock()
            .is_ok_and(|mut r| r.insert(provider_id.to_owned()));
        if !first {
            return;
        }
        let (cache, id) = (Arc::clone(self), provider_id.to_owned());
        tokio::task::spawn_blocking(move || {
            work(&cache, &id);
            if let Ok(mut r) = cache.refreshing.lock() {
                r.remove(&id);
            }
        });
    }

    /// Forget `provider_id`'s key: it is looked up before the next request.
    pub fn forget(&self, provider_id: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.remove(provider_id);
        }
    }

    /// Forget every key.
    pub fn clear(&self) {
        if let Ok(mut keys) = self.keys.write() {
            keys.clear();
        }
    }
}

impl KeyResolver for KeyCache {
    fn key(&self, provider: &ProviderConfig) -> Result<Option<Secret>, ProviderError> {
        if !provider.enabled {
            return Err(provider.disabled_error());
        }
        if let Ok(keys) = self.keys.read()
            && let Some(held) = keys.get(&provider.id)
        {
            return request_key(provider, &held.looked);
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

    fn replacement(&self, provider: &ProviderConfig, refused: Option<&Secret>) -> Option<Secret> {
        if !provider.enabled {
            return None;
        }
        let looked = self.lookup(&provider.id);
        match request_key(provider, &looked) {
            Ok(Some(key)) if refused.is_none_or(|r| r.expose() != key.expose()) => Some(key),
            Ok(_) | Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::keys::KeyIndex;
    use crate::provider::ProviderKind;

    fn cache() -> Arc<KeyCache> {
        Arc::new(KeyCache::new(KeyStore::with_service(
            "switchboard-engine-keycache-test",
        )))
    }

    /// A local server: no key needed, so "none" lets requests go.
    fn local() -> ProviderConfig {
        ProviderConfig::custom("loc", ProviderKind::OpenAi, "http://127.0.0.1:9")
    }

    fn age(cache: &KeyCache, id: &str, by: Duration) {
        let mut keys = cache.keys.write().unwrap();
        let held = keys.get_mut(id).unwrap();
        held.at = held.at.checked_sub(by).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_old_key_is_looked_up_once_in_the_background_while_requests_go_on() {
        let cache = cache();
        let providers = vec![local()];
        cache.ensure(&providers).await;
        assert_eq!(cache.store().reads(), 1);
        cache.ensure(&providers).await;
        assert_eq!(cache.store().reads(), 1, "a fresh lookup is not repeated");
        // Its time runs out while requests keep coming.
        age(&cache, "loc", MISSING_TTL * 2);
        for _ in 0..20 {
            cache.ensure(&providers).await;
            assert!(
                cache.key(&local()).is_ok(),
                "the old answer serves meanwhile"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while cache.cached(&local()) != Cached::Fresh {
            assert!(Instant::now() < deadline, "never looked up again");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(cache.store().reads(), 2, "one lookup for twenty requests");
        // A key forgotten is looked up before the next request goes.
        cache.forget("loc");
        cache.ensure(&providers).await;
        assert_eq!(cache.store().reads(), 3);
    }

    #[tokio::test]
    async fn a_key_set_or_removed_through_the_store_is_read_again_before_the_next_request() {
        let cache = cache();
        let providers = vec![local()];
        cache.ensure(&providers).await;
        assert_eq!(cache.store().reads(), 1);
        // Through a clone, as the app's Settings do while its Local API
        // holds the cache (refused here: this test has no keychain).
        let _ = cache.store().clone().delete("loc");
        assert_eq!(cache.cached(&local()), Cached::Missing);
        cache.ensure(&providers).await;
        assert_eq!(cache.store().reads(), 2);
        // Another store (another process) is not followed this way.
        let _ = KeyStore::with_service("switchboard-engine-keycache-test").delete("loc");
        cache.ensure(&providers).await;
        assert_eq!(cache.store().reads(), 2);
    }

    /// A key index in memory, changed by hand as another process would.
    #[derive(Debug, Default)]
    struct MemIndex(Mutex<HashMap<String, (i64, String)>>);

    impl KeyIndex for MemIndex {
        fn put(&self, provider_id: &str, last4: &str) -> Result<(), KeyError> {
            let mut m = self.0.lock().unwrap();
            let at = m.get(provider_id).map_or(1, |e| e.0 + 1);
            m.insert(provider_id.to_owned(), (at, last4.to_owned()));
            Ok(())
        }
        fn remove(&self, provider_id: &str) -> Result<(), KeyError> {
            self.0.lock().unwrap().remove(provider_id);
            Ok(())
        }
        fn ids(&self) -> Result<Vec<String>, KeyError> {
            Ok(self.0.lock().unwrap().keys().cloned().collect())
        }
        fn stamp(&self, provider_id: &str) -> Result<KeyStamp, KeyError> {
            Ok(KeyStamp(self.0.lock().unwrap().get(provider_id).cloned()))
        }
    }

    fn age_check(cache: &KeyCache, id: &str) {
        let mut keys = cache.keys.write().unwrap();
        let held = keys.get_mut(id).unwrap();
        held.checked = held.checked.checked_sub(INDEX_CHECK * 2).unwrap();
    }

    async fn settled(cache: &KeyCache) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while cache.cached(&local()) != Cached::Fresh
            || !cache.refreshing.lock().unwrap().is_empty()
        {
            assert!(Instant::now() < deadline, "the check never ended");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_changed_in_the_index_by_another_process_is_read_again_at_the_next_check() {
        let index = Arc::new(MemIndex::default());
        index.put("loc", "aaaa").unwrap();
        let cache = Arc::new(KeyCache::new(
            KeyStore::with_service("switchboard-engine-keycache-test").with_index(index.clone()),
        ));
        let providers = vec![local()];
        cache.ensure(&providers).await;
        assert_eq!(cache.store().reads(), 1);
        // Checked, and unchanged: the key held stays, nothing is read.
        age_check(&cache, "loc");
        assert_eq!(cache.cached(&local()), Cached::Unchecked);
        cache.ensure(&providers).await;
        settled(&cache).await;
        assert_eq!(cache.store().reads(), 1, "an unchanged index reads no key");
        // Another process removes the key (its index entry goes).
        index.remove("loc").unwrap();
        cache.ensure(&providers).await;
        assert_eq!(cache.store().reads(), 1, "not before the check is due");
        age_check(&cache, "loc");
        cache.ensure(&providers).await;
        settled(&cache).await;
        assert_eq!(cache.store().reads(), 2, "read again after the change");
        // And sets one: read again at the next check, once.
        index.put("loc", "bbbb").unwrap();
        age_check(&cache, "loc");
        for _ in 0..5 {
            cache.ensure(&providers).await;
        }
        settled(&cache).await;
        assert_eq!(cache.store().reads(), 3);
    }

    #[tokio::test]
    async fn a_disabled_provider_is_refused_without_a_lookup() {
        let cache = cache();
        let mut p = local();
        p.enabled = false;
        cache.ensure(std::slice::from_ref(&p)).await;
        assert_eq!(cache.store().reads(), 0);
        assert_eq!(cache.key(&p).unwrap_err().kind, ErrorKind::Policy);
        assert!(cache.replacement(&p, None).is_none());
        assert_eq!(cache.store().reads(), 0);
    }

    #[test]
    fn held_keys_never_print() {
        let cache = cache();
        cache.keys.write().unwrap().insert(
            "oa".into(),
            Held {
                at: Instant::now(),
                changes: 0,
                looked: Ok(Some((
                    Secret::new("sk-live-should-not-print-9876"),
                    KeySource::Keychain,
                ))),
                stamp: None,
                checked: Instant::now(),
            },
        );
        let shown = format!("{cache:?}");
        assert!(!shown.contains("should-not-print"), "{shown}");
        assert!(shown.contains("oa"), "{shown}");
    }
}
