//! Provider keys live in the OS keychain (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows) and nowhere else on disk. On a
//! headless machine without a keychain, `SWITCHBOARD_KEY_<ID>` provides one
//! for the process. A key is held as a [`Secret`], which never prints.
//!
//! The keychain API cannot list entries, so a [`KeyStore`] can keep a
//! [`KeyIndex`] of which provider ids have a key (the store's `key_index`
//! table: the id and the last four characters, never the key) to answer
//! [`KeyStore::list`].
//!
//! Reading a key costs a keychain round trip (over D-Bus on Linux), too
//! slow to pay on every request: a [`KeyCache`] keeps the keys requests
//! use in memory, for the app's panes and the Local API alike.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

mod cache;

pub use cache::{INDEX_CHECK, KEY_TTL, KeyCache, MISSING_TTL};

/// Keychain service name under which every provider key is stored.
pub const SERVICE: &str = "switchboard";

/// The keychain this build keeps keys in, named the way a person finds it on
/// their system (the About panel shows it).
pub const KEYCHAIN_BACKEND: &str = if cfg!(target_os = "macos") {
    "macOS Keychain"
} else if cfg!(windows) {
    "Windows Credential Manager"
} else {
    "Secret Service over D-Bus (GNOME Keyring, KWallet or KeePassXC)"
};

/// An API key in memory. `Debug` and `Display` never show it; the bytes are
/// wiped when it is dropped.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wrap a key. Surrounding whitespace (a pasted newline) is removed.
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        let trimmed = value.trim();
        if trimmed.len() == value.len() {
            Self(Zeroizing::new(value))
        } else {
            let owned = trimmed.to_owned();
            drop(Zeroizing::new(value));
            Self(Zeroizing::new(owned))
        }
    }

    /// The key itself, for the one place that needs it: the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The last four characters, for masked display (`••••abcd`).
    pub fn last4(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let start = chars.len().saturating_sub(4);
        chars[start..].iter().collect()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(••••)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("••••")
    }
}

/// Where a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The `SWITCHBOARD_KEY_<ID>` environment variable.
    Environment,
    /// The OS keychain.
    Keychain,
}

/// Why a key could not be stored or read. Messages never contain the key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// The provider id cannot name a keychain entry.
    #[error(
        "invalid provider id {id:?}: use letters, digits, '-', '_' or '.' (at most 64 characters)"
    )]
    InvalidId {
        /// The rejected id.
        id: String,
    },
    /// No keychain could be reached on this machine.
    #[error(
        "the OS keychain is not reachable ({reason}); start a Secret Service (e.g. gnome-keyring) \
         or set {env_var} for this process"
    )]
    Unavailable {
        /// What the platform said.
        reason: String,
        /// The environment variable that can provide the key instead.
        env_var: String,
    },
    /// The keychain answered with an error.
    #[error("the OS keychain refused the operation: {reason}")]
    Platform {
        /// What the platform said.
        reason: String,
    },
    /// An empty key was given.
    #[error("the key is empty")]
    Empty,
    /// The key reached the keychain, but the list of ids that have one
    /// could not be updated.
    #[error("the list of providers with keys could not be updated: {reason}")]
    Index {
        /// What went wrong.
        reason: String,
    },
}

/// Remembers which provider ids have a key in the keychain, with the last
/// four characters shown in listings. Never holds a key.
pub trait KeyIndex: Send + Sync + fmt::Debug {
    /// `provider_id` has a key ending in `last4`.
    fn put(&self, provider_id: &str, last4: &str) -> Result<(), KeyError>;
    /// `provider_id` has no key any more.
    fn remove(&self, provider_id: &str) -> Result<(), KeyError>;
    /// Every provider id known to have a key.
    fn ids(&self) -> Result<Vec<String>, KeyError>;
    /// What the index holds for `provider_id` now: changes whenever any
    /// process sets or removes its key through an index on the same data.
    fn stamp(&self, provider_id: &str) -> Result<KeyStamp, KeyError>;
}

/// A provider's entry in a [`KeyIndex`] as it was when read: when its key
/// was last set and the key's last four characters, or no entry. Two
/// stamps differ when the key was set or removed in between (by any
/// process), so a key held in memory can be checked against the index
/// without reading the keychain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStamp(pub Option<(i64, String)>);

/// One key as listings show it: never the key, only its last four characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListing {
    /// The provider id.
    pub provider_id: String,
    /// The key's last four characters.
    pub last4: String,
    /// Where it is.
    pub source: KeySource,
}

/// The environment variable that provides `provider_id`'s key:
/// `SWITCHBOARD_KEY_` and the id upper-cased, other characters as `_`.
pub fn env_var_for(provider_id: &str) -> String {
    let mut name = String::from("SWITCHBOARD_KEY_");
    name.extend(provider_id.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    name
}

/// How to provide a key for `provider_id`, for messages about a missing one.
pub fn key_hint(provider_id: &str) -> String {
    format!(
        "store one in the OS keychain (service \"{SERVICE}\", account \"{provider_id}\") or set {}",
        env_var_for(provider_id)
    )
}

fn validate_id(id: &str) -> Result<(), KeyError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidId { id: id.to_owned() })
    }
}

/// Reads and writes provider keys in the OS keychain, one entry per provider
/// id under the service `switchboard`.
#[derive(Debug, Clone)]
pub struct KeyStore {
    service: String,
    index: Option<Arc<dyn KeyIndex>>,
    /// Keys looked up through this store and its clones (environment or
    /// keychain), for diagnostics: proof that a provider's key was not read.
    reads: Arc<AtomicU64>,
    /// Keys set or removed through this store and its clones: a
    /// [`KeyCache`] over any of them looks its keys up again after one.
    changes: Arc<AtomicU64>,
}

impl Default for KeyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyStore {
    /// The store every Switchboard process uses.
    pub fn new() -> Self {
        Self::with_service(SERVICE)
    }

    /// A store under another service name (tests use their own).
    pub fn with_service(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            index: None,
            reads: Arc::default(),
            changes: Arc::default(),
        }
    }

    /// Keep `index` up to date on every `set` and `delete`, and use it in
    /// [`KeyStore::list`].
    pub fn with_index(mut self, index: Arc<dyn KeyIndex>) -> Self {
        self.index = Some(index);
        self
    }

    fn entry(&self, id: &str) -> Result<keyring::Entry, KeyError> {
        validate_id(id)?;
        keyring::Entry::new(&self.service, id).map_err(|e| map_err(id, e))
    }

    /// Store `secret` as `provider_id`'s key, replacing any previous one.
    pub fn set(&self, provider_id: &str, secret: &Secret) -> Result<(), KeyError> {
        if secret.is_empty() {
            return Err(KeyError::Empty);
        }
        let stored = self.entry(provider_id)?.set_password(secret.expose());
        self.changes.fetch_add(1, Ordering::Relaxed);
        stored.map_err(|e| map_err(provider_id, e))?;
        match &self.index {
            Some(index) => index.put(provider_id, &secret.last4()),
            None => Ok(()),
        }
    }

    /// The key stored in the keychain for `provider_id`, if any.
    pub fn get_stored(&self, provider_id: &str) -> Result<Option<Secret>, KeyError> {
        match self.entry(provider_id)?.get_password() {
            Ok(pw) => Ok(Some(Secret::new(pw))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(provider_id, e)),
        }
    }

    /// The key to use for `provider_id`: `SWITCHBOARD_KEY_<ID>` when set (an
    /// explicit choice for this process), else the keychain entry.
    pub fn get(&self, provider_id: &str) -> Result<Option<(Secret, KeySource)>, KeyError> {
        validate_id(provider_id)?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        if let Some(v) = std::env::var_os(env_var_for(provider_id)) {
            let secret = Secret::new(v.to_string_lossy().into_owned());
            if !secret.is_empty() {
                return Ok(Some((secret, KeySource::Environment)));
            }
        }
        Ok(self
            .get_stored(provider_id)?
            .map(|s| (s, KeySource::Keychain)))
    }

    /// Remove `provider_id`'s key; `false` when there was none.
    pub fn delete(&self, provider_id: &str) -> Result<bool, KeyError> {
        let deleted = self.entry(provider_id)?.delete_credential();
        self.changes.fetch_add(1, Ordering::Relaxed);
        let existed = match deleted {
            Ok(()) => true,
            Err(keyring::Error::NoEntry) => false,
            Err(e) => return Err(map_err(provider_id, e)),
        };
        if let Some(index) = &self.index {
            index.remove(provider_id)?;
        }
        Ok(existed)
    }

    /// The keys in the keychain for the indexed ids and for `candidates`
    /// (e.g. the configured providers and the presets, which may have
    /// entries made by other tools), sorted by id. The index is corrected
    /// on the way: ids found are added, ids whose entry is gone removed.
    pub fn list(&self, candidates: &[String]) -> Result<Vec<KeyListing>, KeyError> {
        let indexed: BTreeSet<String> = match &self.index {
            Some(index) => index.ids()?.into_iter().collect(),
            None => BTreeSet::new(),
        };
        let mut ids = indexed.clone();
        ids.extend(
            candidates
                .iter()
                .filter(|c| validate_id(c).is_ok())
                .cloned(),
        );
        let mut found = Vec::new();
        for id in ids {
            match self.get_stored(&id)? {
                Some(secret) => {
                    let last4 = secret.last4();
                    if let Some(index) = &self.index {
                        index.put(&id, &last4)?;
                    }
                    found.push(KeyListing {
                        provider_id: id,
                        last4,
                        source: KeySource::Keychain,
                    });
                }
                None => {
                    if let Some(index) = &self.index
                        && indexed.contains(&id)
                    {
                        index.remove(&id)?;
                    }
                }
            }
        }
        Ok(found)
    }

    /// The keys that `SWITCHBOARD_KEY_<ID>` provides to this process, for
    /// the ids in `candidates`.
    pub fn list_env(&self, candidates: &[String]) -> Vec<KeyListing> {
        let ids: BTreeSet<&String> = candidates.iter().collect();
        ids.into_iter()
            .filter_map(|id| {
                let v = std::env::var_os(env_var_for(id))?;
                let secret = Secret::new(v.to_string_lossy().into_owned());
                (!secret.is_empty()).then(|| KeyListing {
                    provider_id: id.clone(),
                    last4: secret.last4(),
                    source: KeySource::Environment,
                })
            })
            .collect()
    }

    /// The index's stamp of `provider_id`'s key ([`KeyIndex::stamp`]);
    /// `None` without an index, or when it cannot be read.
    pub fn stamp(&self, provider_id: &str) -> Option<KeyStamp> {
        self.index.as_ref()?.stamp(provider_id).ok()
    }

    /// How many keys [`KeyStore::get`] has looked up through this store
    /// (and its clones) so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// How many keys have been set or removed through this store (and its
    /// clones) so far.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Check that the keychain answers, without changing it.
    pub fn probe(&self) -> Result<(), KeyError> {
        self.get_stored("switchboard-probe").map(|_| ())
    }
}

fn map_err(id: &str, e: keyring::Error) -> KeyError {
    match e {
        keyring::Error::NoStorageAccess(inner) => KeyError::Unavailable {
            reason: inner.to_string(),
            env_var: env_var_for(id),
        },
        keyring::Error::PlatformFailure(inner) => {
            let reason = inner.to_string();
            // The Secret Service backend reports a missing D-Bus session or
            // service as a platform failure; that means "no keychain here".
            if reason.contains("D-Bus") || reason.contains("dbus") || reason.contains("DBus") {
                KeyError::Unavailable {
                    reason,
                    env_var: env_var_for(id),
                }
            } else {
                KeyError::Platform { reason }
            }
        }
        keyring::Error::Invalid(attr, why) => KeyError::Platform {
            reason: format!("invalid {attr}: {why}"),
        },
        other => KeyError::Platform {
            reason: other.to_string(),
        },
    }
}

/// The key a request to `provider` carries, looked up off the async threads
/// (the keychain blocks): `Ok(None)` for a local server without one, else an
/// `auth` error that says how to add one. A provider disabled in config gets
/// a `policy` error and its key is not read at all. Both the app and the
/// CLI use it.
pub async fn provider_key(
    keys: &KeyStore,
    provider: &crate::provider::ProviderConfig,
) -> Result<Option<Secret>, crate::error::ProviderError> {
    if !provider.enabled {
        return Err(provider.disabled_error());
    }
    let (keys, id) = (keys.clone(), provider.id.clone());
    let looked_up = tokio::task::spawn_blocking(move || keys.get(&id))
        .await
        .unwrap_or_else(|e| {
            Err(KeyError::Platform {
                reason: e.to_string(),
            })
        });
    request_key(provider, &looked_up)
}

/// What a lookup of `provider`'s key means for a request to it: the key,
/// none for a local server, else an `auth` error that says how to add one.
fn request_key(
    provider: &crate::provider::ProviderConfig,
    looked_up: &Result<Option<(Secret, KeySource)>, KeyError>,
) -> Result<Option<Secret>, crate::error::ProviderError> {
    let no_key = |detail: String| {
        crate::error::ProviderError::new(
            crate::error::ErrorKind::Auth,
            &provider.id,
            format!("no API key for provider \"{}\": {detail}", provider.id),
        )
    };
    match looked_up {
        Ok(Some((key, _))) => Ok(Some(key.clone())),
        Ok(None) | Err(_) if provider.local => Ok(None),
        Ok(None) => Err(no_key(key_hint(&provider.id))),
        Err(e) => Err(no_key(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-live-1234567890abcd\n");
        assert_eq!(format!("{s:?}"), "Secret(••••)");
        assert_eq!(format!("{s}"), "••••");
        assert_eq!(s.expose(), "sk-live-1234567890abcd");
        assert_eq!(s.last4(), "abcd");
        assert_eq!(Secret::new("ab").last4(), "ab");
    }

    #[test]
    fn env_var_names_follow_the_documented_rule() {
        assert_eq!(env_var_for("openai"), "SWITCHBOARD_KEY_OPENAI");
        assert_eq!(env_var_for("my-lab.gpu"), "SWITCHBOARD_KEY_MY_LAB_GPU");
    }

    #[test]
    fn bad_ids_are_rejected_before_touching_the_keychain() {
        let store = KeyStore::with_service("switchboard-unit");
        assert!(matches!(store.get("a b"), Err(KeyError::InvalidId { .. })));
        assert!(matches!(store.delete(""), Err(KeyError::InvalidId { .. })));
    }

    #[tokio::test]
    async fn a_disabled_provider_gets_a_policy_error_without_a_key_lookup() {
        let store = KeyStore::with_service("switchboard-unit");
        let mut p = crate::provider::ProviderConfig::from_preset("groq").unwrap();
        p.enabled = false;
        let e = provider_key(&store, &p).await.unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::Policy);
        assert!(e.message.contains("disabled in config"), "{}", e.message);
        assert_eq!(store.reads(), 0, "the key was not looked up");
        p.enabled = true;
        let _ = provider_key(&store, &p).await;
        assert_eq!(store.clone().reads(), 1, "clones share the count");
    }

    #[test]
    fn empty_keys_are_refused() {
        let store = KeyStore::with_service("switchboard-unit");
        assert!(matches!(
            store.set("openai", &Secret::new("  ")),
            Err(KeyError::Empty)
        ));
    }
}
