//! Images and PDFs in prompts: what a file is, how big it is for a model,
//! and whether a target may take it.
//!
//! - [`Attachment`]: a file's bytes with what was read from them: its
//!   [`MediaType`] detected from the bytes (magic numbers, never the
//!   name), its SHA-256 (the id it is stored under, once, in the data
//!   directory), and its [`MediaInfo`] (an image's width and height from
//!   its header; a PDF's page count). Cheap to clone: the bytes are shared.
//! - [`tokens`]: each vendor's published rule for what an image or a PDF
//!   page costs in input tokens, for estimates and budget holds.
//! - [`AttachmentLimits`] and [`check`]: what a provider accepts (sizes,
//!   pages) and what a model accepts ([`Accepts`], from the catalog),
//!   checked before anything is sent: a target that cannot take a
//!   request's attachments is refused with a reason, never sent the prompt
//!   without them.
//!
//! Part order on the wire is the same for every protocol: a user turn's
//! attachments first, in the order they were added, then its text. The
//! vendors recommend it (Anthropic: images before the question; Gemini:
//! a PDF before the prompt), and one order everywhere makes the requests of
//! a comparison the same.

mod media;
pub mod tokens;

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use media::{image_dimensions, pdf_pages};

use crate::provider::ProviderKind;

/// The file types a prompt may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaType {
    /// `image/png`
    #[serde(rename = "image/png")]
    Png,
    /// `image/jpeg`
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// `image/webp`
    #[serde(rename = "image/webp")]
    Webp,
    /// `image/gif`
    #[serde(rename = "image/gif")]
    Gif,
    /// `application/pdf`
    #[serde(rename = "application/pdf")]
    Pdf,
}

/// What a model may be sent besides text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// PNG, JPEG, WebP and GIF images.
    Image,
    /// PDF documents.
    Pdf,
}

impl MediaKind {
    /// The name used in config files and messages (`image`, `pdf`).
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Pdf => "pdf",
        }
    }
}

impl MediaType {
    /// Every type, for messages that list them.
    pub const ALL: [MediaType; 5] = [
        MediaType::Png,
        MediaType::Jpeg,
        MediaType::Webp,
        MediaType::Gif,
        MediaType::Pdf,
    ];

    /// The MIME type as the protocols write it.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Webp => "image/webp",
            MediaType::Gif => "image/gif",
            MediaType::Pdf => "application/pdf",
        }
    }

    /// The MIME type read back; `None` for anything else.
    pub fn from_mime(mime: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.mime() == mime)
    }

    /// The file extension the stored copy gets.
    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Png => "png",
            MediaType::Jpeg => "jpg",
            MediaType::Webp => "webp",
            MediaType::Gif => "gif",
            MediaType::Pdf => "pdf",
        }
    }

    /// Image or PDF.
    pub fn kind(self) -> MediaKind {
        match self {
            MediaType::Pdf => MediaKind::Pdf,
            MediaType::Png | MediaType::Jpeg | MediaType::Webp | MediaType::Gif => MediaKind::Image,
        }
    }

    /// What `bytes` are, from their first bytes (the name a file was given
    /// is never trusted). `None` for any other kind of file.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(MediaType::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(MediaType::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(MediaType::Gif)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(MediaType::Webp)
        } else if media::pdf_header_at(bytes).is_some() {
            Some(MediaType::Pdf)
        } else {
            None
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

/// What was read from a file's header: an image's size in pixels, a PDF's
/// pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MediaInfo {
    /// An image.
    Image {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A PDF.
    Pdf {
        /// Its page count, when the file shows it (`None`: not countable
        /// without rendering; estimates then assume [`PDF_BYTES_PER_PAGE`]).
        pages: Option<u32>,
    },
}

/// Bytes per page assumed for a PDF whose page count could not be read.
pub const PDF_BYTES_PER_PAGE: u64 = 100_000;

impl MediaInfo {
    /// The pages a PDF is counted as (at least one), from its page count,
    /// else from its size.
    pub fn pdf_pages_or_estimate(&self, size: u64) -> u32 {
        match self {
            MediaInfo::Pdf { pages: Some(p) } => (*p).max(1),
            MediaInfo::Pdf { pages: None } => {
                u32::try_from(size.div_ceil(PDF_BYTES_PER_PAGE).max(1)).unwrap_or(u32::MAX)
            }
            MediaInfo::Image { .. } => 0,
        }
    }
}

/// Why bytes could not become an attachment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// Not a PNG, JPEG, WebP, GIF or PDF file.
    #[error(
        "{name} is not a PNG, JPEG, WebP or GIF image or a PDF document (judged by its content, \
         not its name)"
    )]
    Unsupported {
        /// The file's name, or "the file".
        name: String,
    },
    /// An image whose header is cut or damaged.
    #[error("{name} looks like {media_type} but its size cannot be read: the file is damaged")]
    Damaged {
        /// The file's name, or "the file".
        name: String,
        /// What it looked like.
        media_type: MediaType,
    },
    /// An empty file.
    #[error("{name} is empty")]
    Empty {
        /// The file's name, or "the file".
        name: String,
    },
}

/// A file in a prompt. Its `Debug` shows what it is, never its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Attachment {
    /// SHA-256 of the bytes, lower-case hex: the id it is stored under.
    pub id: String,
    /// What the bytes are.
    pub media_type: MediaType,
    /// The name it was added under (display only; never trusted for type).
    pub name: Option<String>,
    /// What its header says.
    pub info: MediaInfo,
    /// The bytes.
    pub data: Bytes,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("id", &self.id)
            .field("media_type", &self.media_type)
            .field("name", &self.name)
            .field("info", &self.info)
            .field("size", &self.data.len())
            .finish()
    }
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0xF), 16).unwrap_or('0'));
    }
    hex
}

/// True for a string that can be an attachment id (64 lower-case hex digits).
pub fn is_attachment_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Attachment {
    /// Read `data`: its type from its bytes, its size from its header, its
    /// hash. `name` is kept for display only.
    pub fn from_bytes(data: impl Into<Bytes>, name: Option<&str>) -> Result<Self, AttachmentError> {
        let data: Bytes = data.into();
        let label = name.map_or_else(|| "the file".to_owned(), str::to_owned);
        if data.is_empty() {
            return Err(AttachmentError::Empty { name: label });
        }
        let media_type = MediaType::detect(&data).ok_or(AttachmentError::Unsupported {
            name: label.clone(),
        })?;
        let info = match media_type.kind() {
            MediaKind::Image => {
                let (width, height) =
                    image_dimensions(media_type, &data).ok_or(AttachmentError::Damaged {
                        name: label,
                        media_type,
                    })?;
                MediaInfo::Image { width, height }
            }
            MediaKind::Pdf => MediaInfo::Pdf {
                pages: pdf_pages(&data),
            },
        };
        Ok(Self {
            id: sha256_hex(&data),
            media_type,
            name: name.map(str::to_owned).filter(|n| !n.trim().is_empty()),
            info,
            data,
        })
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// Image or PDF.
    pub fn kind(&self) -> MediaKind {
        self.media_type.kind()
    }

    /// The name to show: the one it was added under, else its type and id.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!(
                "{}.{}",
                &self.id[..12.min(self.id.len())],
                self.media_type.extension()
            )
        })
    }

    /// A file name for protocols that want one (OpenAI's `file` part):
    /// the given name, else one made from the id.
    pub fn file_name(&self) -> String {
        self.display_name()
    }

    /// The bytes in standard base64 (what every protocol sends).
    pub fn base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&self.data)
    }

    /// The length of [`Attachment::base64`], without encoding.
    pub fn base64_len(&self) -> u64 {
        self.size().div_ceil(3) * 4
    }

    /// `data:<mime>;base64,<data>`, as OpenAI-compatible servers take images
    /// and files.
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.media_type.mime(), self.base64())
    }

    /// Input tokens this file is estimated at for `kind`'s vendor.
    pub fn estimated_tokens(&self, kind: ProviderKind) -> u64 {
        tokens::estimate(kind, self.info, self.size()).estimate
    }

    /// The most input tokens this file can count for at `kind`'s vendor.
    pub fn max_tokens(&self, kind: ProviderKind) -> u64 {
        tokens::estimate(kind, self.info, self.size()).max
    }
}

/// Serde for the bytes of an attachment inside a [`crate::ChatRequest`]:
/// base64, like the wire protocols.
impl Serialize for Attachment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Attachment", 3)?;
        st.serialize_field("media_type", &self.media_type)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("data", &self.base64())?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Attachment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            name: Option<String>,
            data: String,
        }
        let w = Wire::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(w.data.as_bytes())
            .map_err(serde::de::Error::custom)?;
        Attachment::from_bytes(bytes, w.name.as_deref()).map_err(serde::de::Error::custom)
    }
}

/// Which attachments a model takes, as the catalog lists it
/// (`accepts = ["image", "pdf"]`). Text is always accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Accepts(pub Vec<MediaKind>);

impl Accepts {
    /// Images and PDFs.
    pub fn all() -> Self {
        Self(vec![MediaKind::Image, MediaKind::Pdf])
    }

    /// Does it take `kind`?
    pub fn takes(&self, kind: MediaKind) -> bool {
        self.0.contains(&kind)
    }
}

/// What a provider accepts in one request, as its vendor documents it
/// (`[<preset>.limits]` in `data/presets.toml`). `None`: no limit known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentLimits {
    /// Largest image file, in bytes.
    #[serde(default)]
    pub max_image_bytes: Option<u64>,
    /// Largest PDF file, in bytes.
    #[serde(default)]
    pub max_pdf_bytes: Option<u64>,
    /// Largest request body (text and base64 attachments), in bytes.
    #[serde(default)]
    pub max_request_bytes: Option<u64>,
    /// Most PDF pages in one request.
    #[serde(default)]
    pub max_pdf_pages: Option<u32>,
    /// Most images in one request.
    #[serde(default)]
    pub max_images: Option<u32>,
    /// Longest image side, in pixels.
    #[serde(default)]
    pub max_image_side: Option<u32>,
}

/// A file name sent percent-encoded (JavaScript's `encodeURIComponent`),
/// decoded; bytes that do not form UTF-8 are replaced.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Bytes as people read them: `5 MB`, `7.3 MB`, `120 KB`.
pub fn human_bytes(n: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if n >= MB {
        let tenths = (n * 10).div_ceil(MB);
        if tenths.is_multiple_of(10) {
            format!("{} MB", tenths / 10)
        } else {
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
    } else if n >= 1024 {
        format!("{} KB", n.div_ceil(1024))
    } else {
        format!("{n} bytes")
    }
}

/// Why a target cannot take a request's attachments, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// Can `model` at `provider` (which takes `accepts`, within `limits`) be
/// sent `attachments` in a request of `text_bytes` bytes of text? The
/// first problem found, said so a person can fix it; `None` when it can.
pub fn check(
    provider: &str,
    model: &str,
    accepts: Option<&Accepts>,
    limits: &AttachmentLimits,
    attachments: &[&Attachment],
    text_bytes: u64,
) -> Option<Refusal> {
    if attachments.is_empty() {
        return None;
    }
    let refuse = |reason: String| Some(Refusal { reason });
    let target = format!("{provider}:{model}");
    for a in attachments {
        let kind = a.kind();
        if !accepts.is_some_and(|acc| acc.takes(kind)) {
            let what = match kind {
                MediaKind::Image => "images",
                MediaKind::Pdf => "PDF documents",
            };
            let known = match accepts {
                Some(_) => format!("the catalog lists {target} as not taking {what}"),
                None => format!("the catalog does not say that {target} takes {what}"),
            };
            return refuse(format!(
                "{} not sent: {known}. If it does, add accepts = [\"image\", \"pdf\"] (the kinds \
                 it takes) to its [[providers.{provider}.models]] entry (id = \"{model}\") in \
                 config.toml",
                a.display_name()
            ));
        }
        let cap = match kind {
            MediaKind::Image => limits.max_image_bytes,
            MediaKind::Pdf => limits.max_pdf_bytes,
        };
        if let Some(cap) = cap
            && a.size() > cap
        {
            return refuse(format!(
                "{} is {}; {provider} takes {} of at most {}",
                a.display_name(),
                human_bytes(a.size()),
                if kind == MediaKind::Image {
                    "images"
                } else {
                    "PDFs"
                },
                human_bytes(cap)
            ));
        }
        if let (Some(side), MediaInfo::Image { width, height }) = (limits.max_image_side, a.info)
            && width.max(height) > side
        {
            return refuse(format!(
                "{} is {width}×{height} pixels; {provider} takes images of at most {side} pixels \
                 a side",
                a.display_name()
            ));
        }
    }
    let images = attachments
        .iter()
        .filter(|a| a.kind() == MediaKind::Image)
        .count();
    if let Some(max) = limits.max_images
        && images > max as usize
    {
        return refuse(format!(
            "the conversation has {images} images; {provider} takes at most {max} in one request"
        ));
    }
    let pages: u64 = attachments
        .iter()
        .filter(|a| a.kind() == MediaKind::Pdf)
        .map(|a| u64::from(a.info.pdf_pages_or_estimate(a.size())))
        .sum();
    if let Some(max) = limits.max_pdf_pages
        && pages > u64::from(max)
    {
        return refuse(format!(
            "the conversation's PDFs have {pages} pages; {provider} takes at most {max} in one \
             request"
        ));
    }
    let body = text_bytes + attachments.iter().map(|a| a.base64_len()).sum::<u64>();
    if let Some(max) = limits.max_request_bytes
        && body > max
    {
        return refuse(format!(
            "the request would be {} with its attachments encoded; {provider} takes requests of \
             at most {}",
            human_bytes(body),
            human_bytes(max)
        ));
    }
    None
}

#[cfg(test)]
mod tests;
