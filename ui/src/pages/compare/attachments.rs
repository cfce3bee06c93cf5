//! Images and PDFs in the composer: added with the file button, dropped on
//! the composer or pasted into it; each is stored once by the backend
//! (which tells what it is from its bytes and refuses anything else, or a
//! file too large, with the reason), shown as a thumbnail with a remove
//! button, and checked against every pane's model before sending, so a
//! pane that cannot take it says so instead of being sent the prompt
//! without it. Sent prompts show theirs in each answer card, reopened
//! conversations too. With Incognito on, a file is kept in the backend's
//! memory only, and an incognito round's files stay there while its
//! conversation is on screen (see `controller.rs`).
//!
//! Thumbnails are object URLs of the bytes, made once per attachment and
//! kept for the window's life (a conversation shows the same image in every
//! pane).

use std::cell::RefCell;
use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_protocol::{AskRequest, AttachmentRef};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::state::CompareState;
use crate::ipc;

/// What the file button offers (the backend decides from the bytes).
pub const ACCEPT: &str = "image/png,image/jpeg,image/webp,image/gif,application/pdf";

thread_local! {
    /// Attachment id -> object URL of its bytes.
    static URLS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

fn object_url(bytes: &js_sys::Uint8Array, media_type: &str) -> Option<String> {
    let parts = js_sys::Array::of1(bytes);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(media_type);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

/// The thumbnail URL of an image attachment, read from the backend once.
fn thumbnail(r: &AttachmentRef) -> RwSignal<Option<String>> {
    let url = RwSignal::new(URLS.with(|u| u.borrow().get(&r.id).cloned()));
    if url.get_untracked().is_none() && r.is_image() {
        let (id, media_type) = (r.id.clone(), r.media_type.clone());
        spawn_local(async move {
            if let Ok(bytes) = ipc::attachment_data(&id).await
                && let Some(made) = object_url(&bytes, &media_type)
            {
                URLS.with(|u| u.borrow_mut().insert(id, made.clone()));
                let _ = url.try_set(Some(made));
            }
        });
    }
    url
}

/// "1.2 MB", "340 KB".
fn size_label(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{} KB", bytes.div_ceil(1_000))
    }
}

/// What a chip says about its file.
fn describe(r: &AttachmentRef) -> String {
    let name = r.name.clone().unwrap_or_else(|| {
        if r.is_image() {
            "pasted image".to_owned()
        } else {
            "document".to_owned()
        }
    });
    let detail = match (r.width, r.height, r.pages) {
        (Some(w), Some(h), _) => format!("{w}×{h}, {}", size_label(r.size)),
        (_, _, Some(p)) => format!(
            "{p} page{}, {}",
            if p == 1 { "" } else { "s" },
            size_label(r.size)
        ),
        _ => size_label(r.size),
    };
    format!("{name} ({detail})")
}

/// One attachment: a thumbnail (images) or a PDF badge, and its name.
#[component]
pub fn AttachmentChip(
    attachment: AttachmentRef,
    /// Shown in the composer: a remove button.
    #[prop(optional)]
    on_remove: Option<Callback<()>>,
) -> impl IntoView {
    let url = thumbnail(&attachment);
    let label = describe(&attachment);
    let kind = if attachment.is_image() {
        "image"
    } else {
        "pdf"
    };
    let name = attachment.name.clone().unwrap_or_default();
    let alt = label.clone();
    view! {
        <span class="attachment-chip" data-kind=kind data-id=attachment.id.clone()
            data-name=name title=label>
            {move || match url.get() {
                Some(src) => view! { <img class="attachment-thumb" src=src alt=alt.clone() /> }.into_any(),
                None => view! { <span class="attachment-badge">{if kind == "pdf" { "PDF" } else { "IMG" }}</span> }.into_any(),
            }}
            <span class="attachment-name">{attachment.name.clone().unwrap_or_else(|| kind.to_uppercase())}</span>
            {on_remove.map(|f| view! {
                <button class="attachment-remove" title="Remove" aria-label="Remove attachment"
                    on:click=move |_| f.run(())>"×"</button>
            })}
        </span>
    }
}

/// A prompt's attachments, in an answer card.
#[component]
pub fn PromptAttachments(attachments: Vec<AttachmentRef>) -> impl IntoView {
    (!attachments.is_empty()).then(|| {
        view! {
            <div class="prompt-attachments">
                {attachments.into_iter().map(|a| view! { <AttachmentChip attachment=a /> }).collect_view()}
            </div>
        }
    })
}

impl CompareState {
    /// Store `files` (from the button, a drop or a paste) and attach them,
    /// in order; a refused file is named in a notice with the reason.
    pub fn add_files(&self, files: Vec<web_sys::File>) {
        if files.is_empty() {
            return;
        }
        let state = *self;
        state.attaching.update(|n| *n += 1);
        // With Incognito on, nothing of the prompt touches the disk.
        let in_memory = state.incognito.get_untracked();
        spawn_local(async move {
            let mut refused = Vec::new();
            for file in files {
                let name = file.name();
                let stored = match JsFuture::from(file.array_buffer()).await {
                    Ok(buffer) => {
                        let bytes = js_sys::Uint8Array::new(&buffer);
                        match ipc::store_attachment(&bytes, &name, in_memory).await {
                            Ok(r) => {
                                // Set once the backend holds it: a release
                                // while the call ran did not know of it.
                                if in_memory {
                                    state.files_held.set_value(true);
                                }
                                // The thumbnail from the bytes at hand.
                                if r.is_image()
                                    && let Some(url) = object_url(&bytes, &r.media_type)
                                {
                                    URLS.with(|u| {
                                        u.borrow_mut().entry(r.id.clone()).or_insert(url);
                                    });
                                }
                                Ok(r)
                            }
                            Err(e) => Err(e.message),
                        }
                    }
                    Err(_) => Err(format!("{name} could not be read")),
                };
                match stored {
                    Ok(r) => state.attached.update(|list| {
                        if !list.iter().any(|a| a.id == r.id) {
                            list.push(r);
                        }
                    }),
                    Err(why) => refused.push(why),
                }
            }
            state.attaching.update(|n| *n = n.saturating_sub(1));
            if !refused.is_empty() {
                state
                    .notice
                    .set(Some(format!("Not attached: {}", refused.join("; "))));
            }
        });
    }

    /// Remove an attachment before sending.
    pub fn remove_attachment(&self, id: &str) {
        self.attached.update(|list| list.retain(|a| a.id != id));
        // A round on screen that sent it may send it again (regenerate, the
        // next prompt); the backend keeps what a recorded message uses,
        // but an incognito round's copy is this window's to keep.
        if self
            .rounds
            .with_untracked(|rs| rs.iter().any(|r| r.attachments.iter().any(|a| a.id == id)))
        {
            return;
        }
        let id = id.to_owned();
        spawn_local(async move {
            let _ = ipc::discard_attachment(&id).await;
        });
    }

    /// Check what is attached against every open pane's model (run when
    /// either changes): the panes that cannot take it, in words.
    pub async fn check_attached(&self) {
        // Checks can finish out of order (models changed quickly): only the
        // latest one's answer is shown.
        let seq = self.attach_check_seq.get_value() + 1;
        self.attach_check_seq.set_value(seq);
        let attached = self.attached.get_untracked();
        let panes = self.panes.get_untracked();
        if attached.is_empty() {
            self.attach_refusals.set(Vec::new());
            return;
        }
        let requests: Vec<AskRequest> = panes
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.target.get_untracked().is_empty())
            .map(|(i, p)| AskRequest {
                stream_id: i as u64,
                target: p.target.get_untracked(),
                turns: vec![switchboard_protocol::Turn {
                    role: switchboard_protocol::TurnRole::User,
                    content: String::new(),
                    attachments: attached.clone(),
                }],
                params: p.params(),
                record: None,
            })
            .collect();
        let lines = match ipc::check_attachments(&requests).await {
            Ok(checks) => checks
                .into_iter()
                .filter_map(|c| {
                    let why = c.refused?;
                    Some(format!("Pane {} ({}): {why}", c.stream_id + 1, c.target))
                })
                .collect(),
            Err(e) => vec![format!(
                "The attachments could not be checked: {}",
                e.message
            )],
        };
        if self.attach_check_seq.get_value() == seq {
            self.attach_refusals.set(lines);
        }
    }
}

fn list(files: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    files.map_or_else(Vec::new, |f| {
        (0..f.length()).filter_map(|i| f.get(i)).collect()
    })
}

/// The files of a drop or a paste (none for text).
pub fn files_of(transfer: Option<web_sys::DataTransfer>) -> Vec<web_sys::File> {
    list(transfer.and_then(|t| t.files()))
}

/// The files chosen with the file button; the input is emptied so the
/// same file can be chosen again after a remove.
pub fn input_files(ev: &web_sys::Event) -> Vec<web_sys::File> {
    let Some(input) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return Vec::new();
    };
    let files = list(input.files());
    input.set_value("");
    files
}
