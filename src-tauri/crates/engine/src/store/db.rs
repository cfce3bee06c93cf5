//! Opening the database: refuse a file written by a newer Switchboard
//! before touching it, then WAL, a busy timeout, foreign keys, and the
//! numbered migrations, each applied once, in order, inside one
//! `BEGIN IMMEDIATE` transaction so two processes starting at the same time
//! cannot both migrate.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;

/// The migrations, in order: `(version, sql)`. Version N is the file
/// `migrations/000N_*.sql`. Append only; never edit a shipped one.
pub(crate) const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_pricing.sql")),
    (3, include_str!("migrations/0003_settle.sql")),
    (PANES_MIGRATION, include_str!("migrations/0004_panes.sql")),
    (5, include_str!("migrations/0005_gateway.sql")),
    (6, include_str!("migrations/0006_attachments_imports.sql")),
    (7, include_str!("migrations/0007_votes.sql")),
    (8, include_str!("migrations/0008_judgment_labels.sql")),
];

/// The migration that gave panes rows; conversations written before it get
/// theirs derived from their answers in the same transaction.
const PANES_MIGRATION: u32 = 4;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a writer waits for another process's transaction to finish.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema version of the database at `path`, read without writing
/// anything (0 for a missing or empty file).
fn peek_version(path: &Path) -> Result<u32, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > 0 => {}
        Ok(_) => return Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(StoreError::Open {
                path: path.to_owned(),
                message: e.to_string(),
            });
        }
    }
    let open_err = |e: rusqlite::Error| StoreError::from_open(path, e);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    Ok(u32::try_from(version).unwrap_or(u32::MAX))
}

/// Open (creating if missing) and migrate the database at `path`.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let too_new = |found: u32| StoreError::TooNew {
        path: path.to_owned(),
        found,
        known: SCHEMA_VERSION,
    };
    // Checked on a read-only connection first: even switching the journal
    // mode would write to a newer version's file.
    let found = peek_version(path)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(found));
    }
    let open_err = |e: rusqlite::Error| StoreError::from_open(path, e);
    let is_new = !path.exists();
    let mut conn = Connection::open(path).map_err(open_err)?;
    // History is private: the file (and so its -wal and -shm, which SQLite
    // creates with the same mode) is readable by its owner only.
    #[cfg(unix)]
    if is_new {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = is_new;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // WAL: readers never block the writer and a crash at any moment leaves
    // the last committed transaction intact. FULL sync: a committed answer
    // or ledger row survives a power cut too (one fsync per write
    // transaction, a few per answer).
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open {
            path: path.to_owned(),
            message: format!("cannot use write-ahead logging (journal mode is {mode})"),
        });
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(open_err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = u32::try_from(current).unwrap_or(u32::MAX);
    if current > SCHEMA_VERSION {
        // Another, newer process migrated it in between: leave it alone.
        return Err(too_new(current));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(|e| StoreError::Migration {
            version: *version,
            message: e.to_string(),
        })?;
        if *version == PANES_MIGRATION {
            super::panes::derive_panes(&tx, None).map_err(|e| StoreError::Migration {
                version: *version,
                message: e.to_string(),
            })?;
        }
    }
    if current < SCHEMA_VERSION {
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    tx.commit()?;
    Ok(conn)
}

/// A second connection to the migrated database at `path`, for reads on
/// latency-sensitive paths (health lookups while routing): in WAL mode a
/// reader never waits for a writer, so another process holding the write
/// lock cannot stall them.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::from_open(path, e);
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.execute_batch("PRAGMA query_only = ON;")
        .map_err(open_err)?;
    Ok(conn)
}

/// A second write connection to the migrated database at `path`, for
/// the batch writer ([`super::BatchWriter`]): `synchronous = NORMAL`, so a
/// commit costs no fsync (in WAL mode a process crash still loses
/// nothing committed), and no automatic checkpoint (which would stall a
/// commit on two fsyncs now and then): the writer's own thread syncs and
/// checkpoints the log on a schedule, which bounds what a power cut can
/// take.
pub(crate) fn open_batch_writer(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::from_open(path, e);
    let conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a, to notice an edited migration without a hashing dependency.
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    #[test]
    fn migrations_are_numbered_files_in_order_and_never_edited() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files.len(),
            MIGRATIONS.len(),
            "every file is listed: {files:?}"
        );
        for (i, (name, (version, sql))) in files.iter().zip(MIGRATIONS).enumerate() {
            assert_eq!(*version as usize, i + 1);
            assert!(name.starts_with(&format!("{version:04}_")), "{name}");
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), *sql);
        }
        // Shipped migrations are frozen: a change goes in a new file. If
        // this fails, revert the edit instead of updating the hash.
        let shipped: &[(u32, u64)] = &[(1, SHIPPED_0001)];
        for (version, hash) in shipped {
            let sql = MIGRATIONS[*version as usize - 1].1;
            assert_eq!(
                fnv1a(sql.as_bytes()),
                *hash,
                "migration {version} was edited"
            );
        }
    }

    const SHIPPED_0001: u64 = 0x8b7b_5b6c_e677_4e50;

    #[test]
    fn a_new_database_is_migrated_in_wal_mode_and_reopening_is_a_no_op() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let conn = open(&path).unwrap();
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "history is private");
        }
        conn.execute(
            "INSERT INTO conversations (title, created_at, updated_at) VALUES ('t', 1, 1)",
            [],
        )
        .unwrap();
        drop(conn);
        let conn = open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "reopening keeps the data and migrates nothing again");
    }

    fn assert_refused_untouched(path: &Path) {
        let before = std::fs::read(path).unwrap();
        let err = open(path).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("newer version of Switchboard"), "{msg}");
        assert!(msg.contains("99"), "{msg}");
        assert_eq!(std::fs::read(path).unwrap(), before, "file bytes unchanged");
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused_and_left_byte_for_byte_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        // Rollback-journal file.
        let path = tmp.path().join("newer.sqlite3");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
                .unwrap();
        }
        assert_refused_untouched(&path);
        assert!(!tmp.path().join("newer.sqlite3-wal").exists());
        // A WAL file, as a newer Switchboard would leave it.
        let path = tmp.path().join("newer-wal.sqlite3");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE future (x); \
                 INSERT INTO future VALUES (1); PRAGMA user_version = 99;",
            )
            .unwrap();
        }
        assert_refused_untouched(&path);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        std::fs::write(
            &path,
            b"this is not a database, it is a note to self\n".repeat(100),
        )
        .unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = open(&path).unwrap_err();
        assert!(
            err.to_string().contains("not a Switchboard database"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
