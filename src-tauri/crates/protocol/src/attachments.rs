//! Images and PDFs in prompts, and importing history from other apps, as
//! they cross IPC. The bytes of an attachment do not travel inside these
//! types: the UI stores a file once (`store_attachment` with the raw bytes
//! of a dropped, pasted or chosen file), gets an [`AttachmentRef`] back, and names it by `id` from then on (in a
//! [`crate::Turn`], a [`crate::StartRound`]); `attachment_data` returns the
//! raw bytes for a thumbnail.

use serde::{Deserialize, Serialize};

/// An image or PDF stored in the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// SHA-256 of the bytes, hex: the id it is stored under.
    pub id: String,
    /// MIME type, detected from the bytes (`image/png`, `application/pdf`).
    pub media_type: String,
    /// Bytes.
    pub size: u64,
    /// The name it was added under (display only).
    #[serde(default)]
    pub name: Option<String>,
    /// An image's width in pixels.
    #[serde(default)]
    pub width: Option<u32>,
    /// An image's height in pixels.
    #[serde(default)]
    pub height: Option<u32>,
    /// A PDF's pages, when they could be counted.
    #[serde(default)]
    pub pages: Option<u32>,
}

impl AttachmentRef {
    /// True for images (thumbnails), false for PDFs.
    pub fn is_image(&self) -> bool {
        self.media_type.starts_with("image/")
    }
}

/// What a pane's request would do with its attachments, before sending
/// (`check_attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentCheck {
    /// The request's `stream_id`.
    pub stream_id: u64,
    /// The target (`provider:model` or `@route`).
    pub target: String,
    /// Why it would be refused (the model takes no images, a file is too
    /// large for the provider...), as the pane should say it; `None`: it
    /// can be sent.
    pub refused: Option<String>,
    /// Estimated input tokens of the attachments at the target that would
    /// run (by its vendor's rule), when it is known.
    pub attachment_tokens: Option<u64>,
}

/// Where an import came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportSource {
    /// A ChatGPT data export's `conversations.json`.
    Chatgpt,
    /// A Claude data export's `conversations.json`.
    Claude,
    /// A Switchboard JSON export of one conversation.
    Switchboard,
}

/// How far an import is (sent on the `import_history` channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProgress {
    /// What is being imported.
    pub source: ImportSource,
    /// Conversations handled so far.
    pub done: u64,
    /// Conversations in the file.
    pub total: u64,
    /// New conversations written so far.
    pub added: u64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// What was imported.
    pub source: ImportSource,
    /// Conversations in the file.
    pub conversations: u64,
    /// New conversations.
    pub added: u64,
    /// Conversations imported before that gained new messages.
    pub updated: u64,
    /// Conversations imported before, unchanged (nothing added twice).
    pub unchanged: u64,
    /// Messages written.
    pub messages: u64,
    /// Messages left out on purpose (system prompts, tool calls and
    /// results, hidden context).
    pub skipped_messages: u64,
    /// Attachments the export mentions but does not contain (ChatGPT and
    /// Claude exports leave files out): each noted in its message's text.
    pub missing_attachments: u64,
    /// The first few of their names, for the summary.
    pub missing_examples: Vec<String>,
    /// The newest conversation added or updated, to open after importing.
    pub latest: Option<i64>,
}
