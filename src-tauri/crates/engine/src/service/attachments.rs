//! The app's attachments: storing a file the user added (bytes pasted or
//! dropped, or a path), reading one back for a thumbnail, and saying before
//! sending whether each pane's target can take a request's attachments.
//! Requests name attachments by id; the bytes are loaded here, from the
//! data directory, when a request is prepared.

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

impl ChatService {
    /// Store a file the user added (its bytes), once; what it is comes from
    /// the bytes, `name` is for display.
    pub fn store_attachment(
        &self,
        bytes: Vec<u8>,
        name: Option<&str>,
    ) -> Result<AttachmentRef, StoreError> {
        let a =
            Attachment::from_bytes(bytes, name).map_err(|e| StoreError::invalid(e.to_string()))?;
        let stored = self.store()?.put_attachment(&a)?;
        Ok(attachment_ref(&stored))
    }

    /// The bytes of attachment `id` and its MIME type (checked against its
    /// hash).
    pub fn attachment_data(&self, id: &str) -> Result<(Vec<u8>, String), StoreError> {
        let a = self.store()?.attachment(id, None)?;
        Ok((a.data.to_vec(), a.media_type.mime().to_owned()))
    }

    /// Forget an attachment removed before sending (kept when a message
    /// uses it); true when it was deleted.
    pub fn discard_attachment(&self, id: &str) -> Result<bool, StoreError> {
        self.store()?.discard_attachment(id)
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
            let store = self
                .store()
                .map_err(|e| ProviderError::new(ErrorKind::BadRequest, "", e.to_string()))?;
            let a = store.attachment(&r.id, r.name.as_deref()).map_err(|e| {
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
