//! Which process owns a row in flight, and whether it is still alive.
//!
//! Every open [`Store`](super::Store) holds an exclusive lock on a file of
//! its own, `locks/<owner>.lock` beside the database, for as long as it is
//! open; the rows it writes for attempts in flight (holds, answers being
//! streamed) carry that owner name. The operating system drops the lock
//! when the process ends, however it ends (`kill -9` included), so "its
//! lock can be taken" means exactly "its owner is gone" — whatever other
//! Switchboard processes (the app, several CLIs) share the database. A pid
//! would not do: pids are reused, and one process may open several stores.
//!
//! The lock is taken on a temporary name and only then renamed into place,
//! so another process never sees a lock file that is not locked yet.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The folder of lock files beside the database at `db`.
pub(crate) fn lock_dir(db: &Path) -> PathBuf {
    db.parent()
        .map_or_else(|| PathBuf::from("locks"), |d| d.join("locks"))
}

/// This store's lock: held until it is dropped, then removed.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    id: String,
    path: PathBuf,
    // Held for the lock; closing it releases the lock.
    _file: File,
    /// False when rows it owns could not be settled: the file stays, so
    /// the next process to start finds a dead owner and settles them.
    remove: bool,
}

impl OwnerLock {
    /// Create and lock a new owner file in `dir`.
    pub(crate) fn acquire(dir: &Path) -> io::Result<Self> {
        // Another process's recovery may remove a temporary file in the
        // instant between its creation and its lock: try again then.
        let mut tries = 0;
        loop {
            match Self::try_acquire(dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => tries += 1,
                done => return done,
            }
        }
    }

    fn try_acquire(dir: &Path) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!(
            "{}-{nanos:x}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = dir.join(format!(".{id}.tmp"));
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => io::Error::other("a new lock file was already locked"),
        })?;
        let path = dir.join(format!("{id}.lock"));
        std::fs::rename(&tmp, &path)?;
        Ok(Self {
            id,
            path,
            _file: file,
            remove: true,
        })
    }

    /// Leave the lock file behind when released, for recovery to find.
    pub(crate) fn leave_for_recovery(&mut self) {
        self.remove = false;
    }

    /// The owner name rows carry.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        // Removed while still locked: nobody mistakes it for a dead owner.
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A dead owner's lock, taken: recovery holds it while it settles the
/// owner's rows, then removes the file.
#[derive(Debug)]
pub(crate) struct DeadOwner {
    pub(crate) id: String,
    path: PathBuf,
    _file: File,
}

impl DeadOwner {
    /// Its rows are settled: forget it.
    pub(crate) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Every owner in `dir` whose process is gone (its lock could be taken),
/// except `me`. Stale temporary files of processes that died while
/// creating their lock are removed on the way (they own no rows yet).
pub(crate) fn dead_owners(dir: &Path, me: Option<&str>) -> Vec<DeadOwner> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (id, temporary) = if let Some(id) = name.strip_suffix(".lock") {
            (id.to_owned(), false)
        } else if let Some(id) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
            (id.to_owned(), true)
        } else {
            continue;
        };
        if Some(id.as_str()) == me {
            continue;
        }
        // Read access is enough to lock, and never creates the file again.
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) if temporary => {
                let _ = std::fs::remove_file(&path);
            }
            Ok(()) => dead.push(DeadOwner {
                id,
                path,
                _file: file,
            }),
            Err(_) => {}
        }
    }
    dead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_and_a_released_one_is_dead() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("locks");
        let a = OwnerLock::acquire(&dir).unwrap();
        let b = OwnerLock::acquire(&dir).unwrap();
        assert_ne!(a.id(), b.id());
        assert!(dead_owners(&dir, Some(a.id())).is_empty(), "b is alive");
        // A crashed process leaves its file behind, unlocked.
        let crashed = dir.join("4242-dead-0.lock");
        std::fs::write(&crashed, b"").unwrap();
        std::fs::write(dir.join(".4243-dead-0.tmp"), b"").unwrap();
        let dead = dead_owners(&dir, Some(a.id()));
        assert_eq!(
            dead.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            vec!["4242-dead-0"]
        );
        assert!(!dir.join(".4243-dead-0.tmp").exists(), "stale temp removed");
        // While one recovery holds it, another does not see it as dead.
        assert!(dead_owners(&dir, Some(a.id())).is_empty());
        for d in dead {
            d.remove();
        }
        assert!(!crashed.exists());
        let b_path = dir.join(format!("{}.lock", b.id()));
        drop(b);
        assert!(!b_path.exists(), "a store that closes removes its lock");
        drop(a);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }
}
