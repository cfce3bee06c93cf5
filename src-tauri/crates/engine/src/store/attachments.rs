//! Attachment files: each stored once in the data directory, named by its
//! SHA-256 (`attachments/ab/cdef….png`), described by a row, referenced
//! from the messages that carry it, and deleted with the last conversation
//! that uses it.
//!
//! Files and rows are kept in step under SQLite's write lock: a file is
//! written (if missing) inside the transaction that inserts or references
//! its row, and removed inside the transaction that deletes the row. So one
//! process deleting an attachment and another adding the same bytes again
//! cannot leave a row without its file: whichever transaction comes second
//! sees the first one's result. A file stored for a prompt not yet sent has
//! a lease ([`PENDING_LEASE`]) that keeps it until a message references it.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::time::now_ms;
use super::{MessageId, Store, StoreError, from_sql_u64};
use crate::attach::{Attachment, MediaInfo, MediaType, is_attachment_id, sha256_hex};

/// How long a stored attachment that no message references yet is kept
/// (added to a prompt not sent yet; an incognito round's files are taken
/// out of the data directory when it is sent).
pub const PENDING_LEASE_MS: i64 = 24 * 3_600_000;
/// [`PENDING_LEASE_MS`] as a duration.
pub const PENDING_LEASE: std::time::Duration =
    std::time::Duration::from_millis(PENDING_LEASE_MS as u64);

/// An attachment as history holds it: what it is, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredAttachment {
    /// SHA-256 of the bytes (hex): its id.
    pub id: String,
    /// What the bytes are.
    pub media_type: MediaType,
    /// Bytes.
    pub size: u64,
    /// The name it was added under, in this message.
    pub name: Option<String>,
    /// Width and height, or pages.
    pub info: MediaInfo,
}

impl StoredAttachment {
    /// What `a` is, as stored.
    pub fn of(a: &Attachment) -> Self {
        Self {
            id: a.id.clone(),
            media_type: a.media_type,
            size: a.size(),
            name: a.name.clone(),
            info: a.info,
        }
    }

    /// Its file, relative to the data directory
    /// (`attachments/ab/cdef….png`).
    pub fn relative_path(&self) -> PathBuf {
        relative_path(&self.id, self.media_type)
    }

    /// The name to show.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!(
                "{}.{}",
                &self.id[..12.min(self.id.len())],
                self.media_type.extension()
            )
        })
    }
}

/// An attachment to reference from a message: stored already (its id), with
/// the name it has in this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRef {
    /// Its id (SHA-256 hex).
    pub id: String,
    /// Its name in this message.
    pub name: Option<String>,
}

impl From<&Attachment> for AttachmentRef {
    fn from(a: &Attachment) -> Self {
        Self {
            id: a.id.clone(),
            name: a.name.clone(),
        }
    }
}

fn relative_path(id: &str, media_type: MediaType) -> PathBuf {
    let (head, tail) = id.split_at(2.min(id.len()));
    Path::new("attachments")
        .join(head)
        .join(format!("{tail}.{}", media_type.extension()))
}

fn info_columns(info: MediaInfo) -> (Option<u32>, Option<u32>, Option<u32>) {
    match info {
        MediaInfo::Image { width, height } => (Some(width), Some(height), None),
        MediaInfo::Pdf { pages } => (None, None, pages),
    }
}

fn info_from(
    media_type: MediaType,
    width: Option<u32>,
    height: Option<u32>,
    pages: Option<u32>,
) -> MediaInfo {
    match media_type {
        MediaType::Pdf => MediaInfo::Pdf { pages },
        _ => MediaInfo::Image {
            width: width.unwrap_or(0),
            height: height.unwrap_or(0),
        },
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::invalid(format!("could not {what} {}: {e}", path.display()))
}

/// Write `bytes` to `path` unless a file of that size is there already:
/// a temporary file, synced, then renamed, so a crash never leaves a cut
/// file under the final name.
fn write_once(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, &e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error("write", path, &e)
    })
}

impl Store {
    /// The data directory this store's database sits in.
    pub fn data_root(&self) -> &Path {
        self.path().parent().unwrap_or(Path::new("."))
    }

    /// The file of attachment `id` of type `media_type`.
    pub fn attachment_path(&self, id: &str, media_type: MediaType) -> PathBuf {
        self.data_root().join(relative_path(id, media_type))
    }

    /// Store `a` (its file once, its row), leased for [`PENDING_LEASE`] until
    /// a message references it. Storing the same bytes again renews the
    /// lease and writes nothing new.
    pub fn put_attachment(&self, a: &Attachment) -> Result<StoredAttachment, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.put_tx(&tx, a, Some(now_ms() + PENDING_LEASE_MS))?;
        tx.commit()?;
        Ok(StoredAttachment::of(a))
    }

    /// Insert or renew `a`'s row and make sure its file exists, inside `tx`.
    /// `lease_until`: `None` when a message is about to reference it.
    pub(crate) fn put_tx(
        &self,
        tx: &Transaction<'_>,
        a: &Attachment,
        lease_until: Option<i64>,
    ) -> Result<(), StoreError> {
        write_once(&self.attachment_path(&a.id, a.media_type), &a.data)?;
        let (width, height, pages) = info_columns(a.info);
        tx.prepare_cached(
            "INSERT INTO attachments (id, media_type, size, width, height, pages, created_at,
                lease_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET lease_until = CASE
                 WHEN excluded.lease_until IS NULL THEN lease_until
                 ELSE max(coalesce(lease_until, 0), excluded.lease_until) END",
        )?
        .execute(params![
            a.id,
            a.media_type.mime(),
            a.size() as i64,
            width,
            height,
            pages,
            now_ms(),
            lease_until
        ])?;
        Ok(())
    }

    /// What attachment `id` is, without reading its file.
    pub fn attachment_info(&self, id: &str) -> Result<StoredAttachment, StoreError> {
        let not_found = || StoreError::invalid(format!("no stored attachment {id:?}"));
        if !is_attachment_id(id) {
            return Err(not_found());
        }
        let conn = self.reader();
        conn.query_row(
            "SELECT media_type, size, width, height, pages FROM attachments WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<u32>>(2)?,
                    r.get::<_, Option<u32>>(3)?,
                    r.get::<_, Option<u32>>(4)?,
                ))
            },
        )
        .optional()?
        .and_then(|(mime, size, w, h, p)| {
            let media_type = MediaType::from_mime(&mime)?;
            Some(StoredAttachment {
                id: id.to_owned(),
                media_type,
                size: from_sql_u64(Some(size)).unwrap_or(0),
                name: None,
                info: info_from(media_type, w, h, p),
            })
        })
        .ok_or_else(not_found)
    }

    /// Attachment `id` with its bytes, read back from its file and checked
    /// against its hash; `name` is the name it has where it is used.
    pub fn attachment(&self, id: &str, name: Option<&str>) -> Result<Attachment, StoreError> {
        let info = self.attachment_info(id)?;
        let path = self.attachment_path(id, info.media_type);
        let bytes = std::fs::read(&path).map_err(|e| io_error("read the attachment", &path, &e))?;
        if sha256_hex(&bytes) != id {
            return Err(StoreError::invalid(format!(
                "the attachment file {} was changed on disk (its content no longer matches its \
                 name); add the file again",
                path.display()
            )));
        }
        Attachment::from_bytes(bytes, name).map_err(|e| StoreError::invalid(e.to_string()))
    }

    /// The attachments of every message of `conversation` that has some,
    /// in order.
    pub fn conversation_attachments(
        &self,
        conversation: super::ConversationId,
    ) -> Result<HashMap<MessageId, Vec<StoredAttachment>>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT ma.message_id, a.id, a.media_type, a.size, a.width, a.height, a.pages, ma.name
             FROM messages m
             JOIN message_attachments ma ON ma.message_id = m.id
             JOIN attachments a ON a.id = ma.attachment_id
             WHERE m.conversation_id = ?1
             ORDER BY ma.message_id, ma.seq",
        )?;
        let mut out: HashMap<MessageId, Vec<StoredAttachment>> = HashMap::new();
        let rows = stmt.query_map([conversation.0], |r| {
            Ok((
                MessageId(r.get(0)?),
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<u32>>(4)?,
                r.get::<_, Option<u32>>(5)?,
                r.get::<_, Option<u32>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        for row in rows {
            let (message, id, mime, size, w, h, p, name) = row?;
            let Some(media_type) = MediaType::from_mime(&mime) else {
                continue;
            };
            out.entry(message).or_default().push(StoredAttachment {
                id,
                media_type,
                size: from_sql_u64(Some(size)).unwrap_or(0),
                name,
                info: info_from(media_type, w, h, p),
            });
        }
        Ok(out)
    }

    /// Delete attachment `id` if no message references it (a thumbnail
    /// removed before sending): true when it was deleted.
    pub fn discard_attachment(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = self.sweep_tx(&tx, Some(&[id.to_owned()]), i64::MAX)?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Delete every attachment no message references and no lease keeps;
    /// how many. (Run when a store opens, and after deletes.)
    pub fn sweep_attachments(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = self.sweep_tx(&tx, None, now_ms())?;
        tx.commit()?;
        Ok(n)
    }

    /// Delete the rows and files of unreferenced attachments among `ids`
    /// (all when `None`) whose lease ended before `now` (any lease when
    /// `now` is `i64::MAX`). Files go while the write lock is held.
    pub(crate) fn sweep_tx(
        &self,
        tx: &Transaction<'_>,
        ids: Option<&[String]>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let unreferenced = "NOT EXISTS (SELECT 1 FROM message_attachments ma
                                WHERE ma.attachment_id = a.id)
                            AND (a.lease_until IS NULL OR a.lease_until < ?1)";
        let mut doomed: Vec<(String, String)> = Vec::new();
        match ids {
            Some(ids) => {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT a.id, a.media_type FROM attachments a WHERE a.id = ?2 AND {unreferenced}"
                ))?;
                for id in ids {
                    if let Some(row) = stmt
                        .query_row(params![now, id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                    {
                        doomed.push(row);
                    }
                }
            }
            None => {
                let mut stmt = tx.prepare(&format!(
                    "SELECT a.id, a.media_type FROM attachments a WHERE {unreferenced}"
                ))?;
                doomed = stmt
                    .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
            }
        }
        let mut delete = tx.prepare_cached("DELETE FROM attachments WHERE id = ?1")?;
        for (id, mime) in &doomed {
            delete.execute([id])?;
            if let Some(t) = MediaType::from_mime(mime) {
                let path = self.attachment_path(id, t);
                // Already gone is as good as removed.
                if let Err(e) = std::fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(io_error("delete", &path, &e));
                }
                if let Some(dir) = path.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
        Ok(doomed.len())
    }
}

/// Reference `refs` from `message` (in order), inside `tx`; each must be
/// stored, with its file present. Their leases end: the message keeps them.
pub(crate) fn reference_tx(
    store: &Store,
    tx: &Transaction<'_>,
    message: MessageId,
    refs: &[AttachmentRef],
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO message_attachments (message_id, seq, attachment_id, name)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut lookup = tx.prepare_cached("SELECT media_type FROM attachments WHERE id = ?1")?;
    let mut unlease =
        tx.prepare_cached("UPDATE attachments SET lease_until = NULL WHERE id = ?1")?;
    for (seq, r) in refs.iter().enumerate() {
        let mime: Option<String> = lookup.query_row([&r.id], |row| row.get(0)).optional()?;
        let media_type = mime
            .as_deref()
            .and_then(MediaType::from_mime)
            .ok_or_else(|| {
                StoreError::invalid(format!(
                    "attachment {} is not stored (or was removed): add the file again",
                    r.name.as_deref().unwrap_or(&r.id)
                ))
            })?;
        if !store.attachment_path(&r.id, media_type).exists() {
            return Err(StoreError::invalid(format!(
                "the file of attachment {} is missing from the data directory: add it again",
                r.name.as_deref().unwrap_or(&r.id)
            )));
        }
        insert.execute(params![message.0, seq as i64, r.id, r.name])?;
        unlease.execute([&r.id])?;
    }
    Ok(())
}
