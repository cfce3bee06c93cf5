//! The app's attachments: storing a file the user added (bytes pasted,
//! dropped or chosen), reading one back for a thumbnail, and saying before
//! sending whether each pane's target can take a request's attachments.
//! Requests name attachments by id; the bytes are loaded here when a
//! request is prepared, from memory when a recent read or an unrecorded
//! round has them ([`super::loaded`]), else from the data directory.
//!
//! Incognito: a file added with it on is kept in memory only
//! ([`ChatService::keep_attachment_in_memory`]); one stored before that is
//! sent incognito moves there ([`ChatService::hold_attachments`]). They
//! stay while the conversation is on screen and go when it is left
//! ([`ChatService::release_attachments`]) or the app ends, so nothing of
//! an incognito conversation is ever left in the data directory.

use std::collections::HashMap;

use switchboard_protocol::{AskRequest, AttachmentCheck, AttachmentRef};

use super::{ChatService, resolve};
use crate::attach::{Attachment, MediaInfo};
use crate::error::{ErrorKind, ProviderError};
use crate::routing::{RoutingConfig, attachment_refusal};
use crate::store::{StoreError, StoredAttachment};

/// An attachment as the UI sees it.
pub fn attachment_ref(a: &StoredAttachment) -> AttachmentRef {
    let (width, height, pages) = match a.info {
        MediaInfo::Image { width, height } => (Some(width), Some(height), None),
        MediaInfo::Pdf { pages } => (None, None, pages),
    };
    AttachmentRef {
        id: a.id.clone(),
        media_type: a.media_type.mime().to_owned(),
        size: a.size,
        name: a.name.clone(),
        width,
        height,
        pages,
    }
}

/// The refs a message names, for the recorder.
pub fn store_refs(refs: &[AttachmentRef]) -> Vec<crate::store::AttachmentRef> {
    refs.iter()
        .map(|r| crate::store::AttachmentRef {
            id: r.id.clone(),
            name: r.name.clone(),
        })
        .collect()
}

/// A file the user added: what it is comes from the bytes, `name` is for
/// display; anything but an image or a PDF is refused with the reason.
fn added(bytes: Vec<u8>, name: Option<&str>) -> Result<Attachment, StoreError> {
    Attachment::from_bytes(bytes, name).map_err(|e| StoreError::invalid(e.to_string()))
}

impl ChatService {
    /// Store a file the user added (its bytes), once; what it is comes from
    /// the bytes, `name` is for display.
    pub fn store_attachment(
        &self,
        bytes: Vec<u8>,
        name: Option<&str>,
    ) -> Result<AttachmentRef, StoreError> {
        let a = added(bytes, name)?;
        let stored = self.store()?.put_attachment(&a)?;
        Ok(attachment_ref(&stored))
    }

    /// Keep a file the user added with Incognito on in memory only (never
    /// in the data directory) until [`ChatService::release_attachments`];
    /// what it is comes from the bytes, `name` is for display.
    pub fn keep_attachment_in_memory(
        &self,
        bytes: Vec<u8>,
        name: Option<&str>,
    ) -> Result<AttachmentRef, StoreError> {
        let a = added(bytes, name)?;
        let r = attachment_ref(&StoredAttachment::of(&a));
        self.loaded.hold(a);
        Ok(r)
    }

    /// The files of a round history does not keep (sent incognito): kept
    /// in memory from now on, for regenerating and for the next prompts of
    /// the conversation, and their copies in the data directory removed
    /// unless a recorded message uses them. Until
    /// [`ChatService::release_attachments`].
    pub fn hold_attachments(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            if self.loaded.held(id).is_some() {
                continue;
            }
            let a = self.loaded.load(self.store(), id, None)?;
            self.loaded.hold(a);
            self.store()?.discard_attachment(id)?;
        }
        Ok(())
    }

    /// The conversation on screen was left (a new one, another opened, the
    /// page loaded afresh): forget the files held for it, except `keep`
    /// (the composer's, still to be sent). How many were forgotten.
    pub fn release_attachments(&self, keep: &[String]) -> usize {
        self.loaded.release(keep)
    }

    /// The bytes of attachment `id` and its MIME type (checked against its
    /// hash).
    pub fn attachment_data(&self, id: &str) -> Result<(Vec<u8>, String), StoreError> {
        // A thumbnail is read once per window: not worth keeping in memory.
        let a = match self.loaded.held(id) {
            Some(a) => a,
            None => self.store()?.attachment(id, None)?,
        };
        Ok((a.data.to_vec(), a.media_type.mime().to_owned()))
    }

    /// Forget an attachment removed before sending (kept when a message
    /// uses it); true when it was deleted.
    pub fn discard_attachment(&self, id: &str) -> Result<bool, StoreError> {
        let held = self.loaded.forget(id);
        match self.store() {
            Ok(store) => Ok(store.discard_attachment(id)? || held),
            Err(_) if held => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The attachments `request`'s turns name, with their bytes, by id.
    pub(super) fn load_attachments(
        &self,
        request: &AskRequest,
    ) -> Result<HashMap<String, Attachment>, ProviderError> {
        let mut loaded = HashMap::new();
        let ids = request.turns.iter().flat_map(|t| &t.attachments);
        for r in ids {
            if loaded.contains_key(&r.id) {
                continue;
            }
            let a = self
                .loaded
                .load(self.store(), &r.id, r.name.as_deref())
                .map_err(|e| {
                    ProviderError::new(
                        ErrorKind::BadRequest,
                        "",
                        format!(
                            "{} cannot be sent: {e}",
                            r.name.as_deref().unwrap_or("an attachment")
                        ),
                    )
                })?;
            loaded.insert(r.id.clone(), a);
        }
        Ok(loaded)
    }

    /// How many times an attachment was read from the data directory (and
    /// hashed) by this service: once per file per send, whatever the
    /// number of panes.
    pub fn attachment_disk_reads(&self) -> u64 {
        self.loaded.disk_reads()
    }

    /// For each request, before it is sent: whether its target can take
    /// its attachments (the model's catalog entry, the provider's size
    /// limits), and what they would count for there. A route is refused
    /// only when none of its targets can take them.
    pub fn check_attachments(&self, requests: &[AskRequest]) -> Vec<AttachmentCheck> {
        let config = self.config();
        let catalog = self.catalog(&config);
        let routing = RoutingConfig::from_config(&config);
        requests
            .iter()
            .map(|request| {
                let mut check = AttachmentCheck {
                    stream_id: request.stream_id,
                    target: request.target.clone(),
                    refused: None,
                    attachment_tokens: None,
                };
                if request.turns.iter().all(|t| t.attachments.is_empty()) {
                    return check;
                }
                let routing = match &routing {
                    Ok(r) => r,
                    Err(e) => {
                        check.refused = Some(format!("config.toml: {e}"));
                        return check;
                    }
                };
                let prepared = self
                    .load_attachments(request)
                    .and_then(|loaded| resolve(&config, routing, request, &loaded));
                let (route, chat) = match prepared {
                    Ok(p) => p,
                    Err(e) => {
                        check.refused = Some(e.message);
                        return check;
                    }
                };
                let attachments: Vec<&Attachment> = chat.attachments().collect();
                let mut reasons = Vec::new();
                for t in &route.targets {
                    match attachment_refusal(&catalog, t, &attachments, &chat) {
                        None => {
                            check.attachment_tokens = Some(
                                attachments
                                    .iter()
                                    .map(|a| a.estimated_tokens(t.provider.kind))
                                    .sum(),
                            );
                            return check;
                        }
                        Some(r) => reasons.push((t.label(), r.reason)),
                    }
                }
                check.refused = Some(if route.is_explicit() || reasons.len() == 1 {
                    reasons
                        .into_iter()
                        .map(|(_, r)| r)
                        .collect::<Vec<_>>()
                        .join("; ")
                } else {
                    format!(
                        "no target of {} can take the attachments: {}",
                        route.label(),
                        reasons
                            .iter()
                            .map(|(t, r)| format!("{t}: {r}"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                });
                check
            })
            .collect()
    }
}
