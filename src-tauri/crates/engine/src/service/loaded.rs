//! Attachments the app keeps in memory, of two kinds:
//!
//! - *Held*: the files of rounds history does not keep (incognito, or a
//!   round history refused). Memory is their only copy: a file added with
//!   Incognito on is never written to the data directory, and one stored
//!   before loses its copy there when the round is sent (unless a recorded
//!   message uses it). So while the conversation is on screen a regenerate,
//!   a retry or the next prompt of its thread sends them again, and when it
//!   is left ([`crate::service::ChatService::release_attachments`]), the
//!   window closes or the app crashes, nothing of them is left on disk.
//! - *Recent*: files read from the data directory, with the size and
//!   modification time their file had then. The check before sending and
//!   each pane's request reuse those bytes while the file is unchanged,
//!   so a send reads and hashes each file once, not once per pane and
//!   again for the check. Unused for [`RECENT_FOR`] they are dropped, the
//!   least recently used first beyond [`RECENT_BYTES`]; a file's row and
//!   file are looked up on every use, so a deleted attachment is never
//!   served from here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::attach::Attachment;
use crate::store::{Store, StoreError};

/// How long a file read from the data directory stays in memory unused.
pub const RECENT_FOR: Duration = Duration::from_secs(60);

/// Most bytes of recently read files kept at once.
pub const RECENT_BYTES: u64 = 128 * 1024 * 1024;

/// What a file on disk looked like when it was read: a different size or
/// modification time means it must be read (and its hash checked) again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

#[derive(Debug)]
struct Recent {
    attachment: Attachment,
    stamp: FileStamp,
    used: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    held: HashMap<String, Attachment>,
    recent: HashMap<String, Recent>,
    /// Files read from disk (and hashed) so far.
    disk_reads: u64,
}

impl Inner {
    /// Drop what went unused too long, then the least recently used until
    /// the rest fits in `budget` bytes.
    fn prune(&mut self, now: Instant, budget: u64) {
        self.recent
            .retain(|_, r| now.saturating_duration_since(r.used) < RECENT_FOR);
        let mut total: u64 = self.recent.values().map(|r| r.attachment.size()).sum();
        while total > budget {
            let Some(oldest) = self
                .recent
                .iter()
                .min_by_key(|(_, r)| r.used)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            if let Some(r) = self.recent.remove(&oldest) {
                total = total.saturating_sub(r.attachment.size());
            }
        }
    }
}

/// The app's attachments in memory (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    inner: Mutex<Inner>,
}

fn named(mut a: Attachment, name: Option<&str>) -> Attachment {
    a.name = name.map(str::to_owned).filter(|n| !n.trim().is_empty());
    a
}

impl Loaded {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep `a` in memory until [`Loaded::release`] (its name is per use).
    pub(crate) fn hold(&self, a: Attachment) {
        let a = named(a, None);
        self.lock().held.insert(a.id.clone(), a);
    }

    /// The held copy of `id`, if any.
    pub(crate) fn held(&self, id: &str) -> Option<Attachment> {
        self.lock().held.get(id).cloned()
    }

    /// Forget held file `id`; true when it was held.
    pub(crate) fn forget(&self, id: &str) -> bool {
        self.lock().held.remove(id).is_some()
    }

    /// Forget every held file but those in `keep`; how many went.
    pub(crate) fn release(&self, keep: &[String]) -> usize {
        let mut inner = self.lock();
        let before = inner.held.len();
        inner.held.retain(|id, _| keep.contains(id));
        before - inner.held.len()
    }

    /// Attachment `id` with its bytes, named `name`: the held copy, else
    /// the stored file, read and checked against its hash only when it is
    /// not in memory from a recent read or changed on disk since.
    pub(crate) fn load(
        &self,
        store: Result<&Store, StoreError>,
        id: &str,
        name: Option<&str>,
    ) -> Result<Attachment, StoreError> {
        if let Some(a) = self.held(id) {
            return Ok(named(a, name));
        }
        let store = store?;
        let info = store.attachment_info(id)?;
        let path = store.attachment_path(id, info.media_type);
        let stamp = FileStamp::of(&path).map_err(|e| {
            StoreError::invalid(format!(
                "could not read the attachment {}: {e}",
                path.display()
            ))
        })?;
        let now = Instant::now();
        {
            let mut inner = self.lock();
            inner.prune(now, RECENT_BYTES);
            if let Some(r) = inner.recent.get_mut(id)
                && r.stamp == stamp
            {
                r.used = now;
                return Ok(named(r.attachment.clone(), name));
            }
        }
        // Read outside the lock: other panes' files are not held up by it.
        let a = store.attachment(id, name)?;
        let mut inner = self.lock();
        inner.disk_reads += 1;
        inner.recent.insert(
            id.to_owned(),
            Recent {
                attachment: a.clone(),
                stamp,
                used: now,
            },
        );
        inner.prune(now, RECENT_BYTES);
        Ok(a)
    }

    /// How many times a file was read from disk (and hashed).
    pub(crate) fn disk_reads(&self) -> u64 {
        self.lock().disk_reads
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::paths::DataDir;

    fn png(seed: u8) -> Attachment {
        let bytes = switchboard_mock::samples::png(4, 3, seed);
        Attachment::from_bytes(bytes, Some("x.png")).unwrap()
    }

    #[test]
    fn a_stored_file_is_read_once_while_unchanged_and_again_once_changed() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(&DataDir::at(home.path()).unwrap()).unwrap();
        let a = png(1);
        store.put_attachment(&a).unwrap();
        let loaded = Loaded::default();
        for name in ["first.png", "second.png", "third.png"] {
            let got = loaded.load(Ok(&store), &a.id, Some(name)).unwrap();
            assert_eq!(got.data, a.data);
            assert_eq!(got.name.as_deref(), Some(name), "named as used");
        }
        assert_eq!(loaded.disk_reads(), 1);

        // Changed on disk (other bytes, other length): read again, and the
        // hash check refuses it.
        let path = store.attachment_path(&a.id, a.media_type);
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nsomething else entirely").unwrap();
        let err = loaded.load(Ok(&store), &a.id, None).unwrap_err();
        assert!(err.to_string().contains("changed on disk"), "{err}");
        assert_eq!(loaded.disk_reads(), 1, "the read failed its check");

        // Deleted: never served from memory.
        std::fs::remove_file(&path).unwrap();
        assert!(loaded.load(Ok(&store), &a.id, None).is_err());
    }

    #[test]
    fn a_held_file_needs_no_data_directory_and_goes_when_released() {
        let loaded = Loaded::default();
        let (a, b) = (png(2), png(3));
        loaded.hold(a.clone());
        loaded.hold(b.clone());
        let history_off = || Err(StoreError::invalid("history is off"));
        let got = loaded.load(history_off(), &a.id, Some("a.png")).unwrap();
        assert_eq!(
            (got.data, got.name.as_deref()),
            (a.data.clone(), Some("a.png"))
        );
        assert_eq!(loaded.release(std::slice::from_ref(&b.id)), 1);
        assert!(loaded.load(history_off(), &a.id, None).is_err());
        assert!(loaded.load(history_off(), &b.id, None).is_ok(), "kept");
        assert!(loaded.forget(&b.id));
        assert!(loaded.load(history_off(), &b.id, None).is_err());
    }

    #[test]
    fn recent_files_beyond_the_byte_budget_go_least_recently_used_first() {
        let mut inner = Inner::default();
        let now = Instant::now();
        let budget = 2 * png(0).size();
        for (seed, age) in [(1u8, 3u64), (2, 2), (3, 1)] {
            let a = png(seed);
            inner.recent.insert(
                a.id.clone(),
                Recent {
                    attachment: a,
                    stamp: FileStamp {
                        len: 0,
                        modified: None,
                    },
                    used: now - Duration::from_secs(age),
                },
            );
        }
        inner.prune(now, budget);
        let mut kept: Vec<String> = inner.recent.keys().cloned().collect();
        kept.sort_unstable();
        let mut newest = vec![png(2).id, png(3).id];
        newest.sort_unstable();
        assert_eq!(kept, newest, "the least recently used went");
        inner.prune(now + RECENT_FOR, budget);
        assert!(inner.recent.is_empty(), "unused too long");
    }
}
