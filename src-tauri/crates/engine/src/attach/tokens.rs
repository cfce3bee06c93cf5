//! What an image or a PDF costs in input tokens, by each vendor's published
//! rule, for the estimate shown before sending and for what a budget
//! holds. The exact figure comes afterwards from the provider's reported
//! usage, as for text.
//!
//! Images (the rules are exact for the size read from the header):
//! - **OpenAI** (high detail, the most `auto` can cost): the image is
//!   scaled to fit 2048×2048, then its shorter side to 768 px; it costs
//!   85 tokens plus 170 per 512-px tile.
//! - **Anthropic**: scaled so its long edge is at most 1,568 px, it costs
//!   width × height / 750 tokens, at most [`ANTHROPIC_IMAGE_CAP`] (larger
//!   images are scaled down to about that).
//! - **Gemini**: 258 tokens when both sides are at most 384 px, else 258
//!   per 768×768 tile.
//!
//! PDFs, per page (vendors publish no exact rule for text, so these are
//! estimates, labelled as such, with a higher bound for budget holds):
//! - **OpenAI** sends each page's text and an image of the page: 765
//!   tokens for a Letter or A4 page image by the tile rule, plus about 500
//!   for its text (at most 3,000).
//! - **Anthropic** does the same: 1,500 to 3,000 tokens of text per page
//!   by its documentation, plus the page image (at most 1,600): estimated
//!   at 2,350, at most 4,600.
//! - **Gemini** counts each page as an image: 258 tokens.

use crate::provider::ProviderKind;

use super::MediaInfo;

/// Estimated input tokens of an attachment, and the most it can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenEstimate {
    /// What the vendor's rule gives.
    pub estimate: u64,
    /// The most it can be (what a budget holds).
    pub max: u64,
}

/// The largest an Anthropic image counts for: bigger ones are scaled down.
pub const ANTHROPIC_IMAGE_CAP: u64 = 1_600;
/// OpenAI's tokens for any image, before tiles.
pub const OPENAI_IMAGE_BASE: u64 = 85;
/// OpenAI's tokens per 512-px tile.
pub const OPENAI_TILE: u64 = 170;
/// Gemini's tokens per small image or 768-px tile, and per PDF page.
pub const GEMINI_TILE: u64 = 258;

/// OpenAI per PDF page: the page image (765 by the tile rule) and its text.
pub const OPENAI_PDF_PAGE: TokenEstimate = TokenEstimate {
    estimate: 765 + 500,
    max: 765 + 3_000,
};
/// Anthropic per PDF page: 1,500 to 3,000 tokens of text plus the page image.
pub const ANTHROPIC_PDF_PAGE: TokenEstimate = TokenEstimate {
    estimate: 2_350,
    max: 3_000 + ANTHROPIC_IMAGE_CAP,
};
/// Gemini per PDF page.
pub const GEMINI_PDF_PAGE: TokenEstimate = TokenEstimate {
    estimate: GEMINI_TILE,
    max: GEMINI_TILE,
};

/// `(w, h)` scaled down (never up) so that neither side exceeds `side`.
fn fit(w: u64, h: u64, side: u64) -> (u64, u64) {
    let long = w.max(h);
    if long <= side {
        return (w, h);
    }
    ((w * side / long).max(1), (h * side / long).max(1))
}

/// OpenAI's high-detail rule.
pub fn openai_image(width: u32, height: u32) -> u64 {
    let (mut w, mut h) = fit(u64::from(width), u64::from(height), 2048);
    let short = w.min(h);
    if short > 768 {
        w = (w * 768 / short).max(1);
        h = (h * 768 / short).max(1);
    }
    OPENAI_IMAGE_BASE + OPENAI_TILE * w.div_ceil(512) * h.div_ceil(512)
}

/// Anthropic's pixel rule.
pub fn anthropic_image(width: u32, height: u32) -> u64 {
    let (w, h) = fit(u64::from(width), u64::from(height), 1568);
    (w * h).div_ceil(750).clamp(1, ANTHROPIC_IMAGE_CAP)
}

/// Gemini's tile rule.
pub fn gemini_image(width: u32, height: u32) -> u64 {
    let (w, h) = (u64::from(width), u64::from(height));
    if w <= 384 && h <= 384 {
        GEMINI_TILE
    } else {
        GEMINI_TILE * w.div_ceil(768) * h.div_ceil(768)
    }
}

/// The tokens of a file described by `info` (`size` bytes) at `kind`'s vendor.
pub fn estimate(kind: ProviderKind, info: MediaInfo, size: u64) -> TokenEstimate {
    match info {
        MediaInfo::Image { width, height } => {
            let n = match kind {
                ProviderKind::OpenAi => openai_image(width, height),
                ProviderKind::Anthropic => anthropic_image(width, height),
                ProviderKind::Gemini => gemini_image(width, height),
            };
            TokenEstimate {
                estimate: n,
                max: n,
            }
        }
        MediaInfo::Pdf { .. } => {
            let pages = u64::from(info.pdf_pages_or_estimate(size));
            let per = match kind {
                ProviderKind::OpenAi => OPENAI_PDF_PAGE,
                ProviderKind::Anthropic => ANTHROPIC_PDF_PAGE,
                ProviderKind::Gemini => GEMINI_PDF_PAGE,
            };
            TokenEstimate {
                estimate: per.estimate * pages,
                max: per.max * pages,
            }
        }
    }
}
