//! Reading sizes from file headers without decoding anything: an image's
//! width and height (PNG IHDR, JPEG SOF, GIF screen descriptor, WebP
//! VP8/VP8L/VP8X), a PDF's page count (its page tree's `/Count`, or its
//! `/Type /Page` objects, looking inside compressed object streams too).

use super::MediaType;

/// Width and height in pixels from `bytes`' header; `None` when the header
/// is cut or damaged.
pub fn image_dimensions(media_type: MediaType, bytes: &[u8]) -> Option<(u32, u32)> {
    let dims = match media_type {
        MediaType::Png => png(bytes),
        MediaType::Jpeg => jpeg(bytes),
        MediaType::Gif => gif(bytes),
        MediaType::Webp => webp(bytes),
        MediaType::Pdf => None,
    }?;
    (dims.0 > 0 && dims.1 > 0).then_some(dims)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le_u24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | (u32::from(s[1]) << 8) | (u32::from(s[2]) << 16))
}

/// The IHDR chunk comes first: signature (8), length (4), "IHDR" (4),
/// width (4), height (4).
fn png(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    Some((be_u32(b, 16)?, be_u32(b, 20)?))
}

/// The logical screen descriptor: width and height, little-endian.
fn gif(b: &[u8]) -> Option<(u32, u32)> {
    Some((u32::from(le_u16(b, 6)?), u32::from(le_u16(b, 8)?)))
}

/// Walk the segments to the first start-of-frame marker (SOF0..SOF15 but
/// DHT, JPG and DAC), whose header holds height then width.
fn jpeg(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        // Markers may be padded with any number of 0xFF.
        while *b.get(i)? != 0xFF {
            i += 1;
        }
        while *b.get(i)? == 0xFF {
            i += 1;
        }
        let marker = *b.get(i)?;
        i += 1;
        match marker {
            // Standalone markers: no length.
            0x01 | 0xD0..=0xD7 => continue,
            // End of image, or start of scan before any frame header.
            0xD9 | 0xDA => return None,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let height = be_u16(b, i + 3)?;
                let width = be_u16(b, i + 5)?;
                return Some((u32::from(width), u32::from(height)));
            }
            _ => {
                let len = usize::from(be_u16(b, i)?);
                if len < 2 {
                    return None;
                }
                i += len;
            }
        }
    }
}

/// RIFF header (12 bytes), then the first chunk: `VP8 ` (lossy: a key
/// frame's 14-bit sizes), `VP8L` (lossless: 14-bit sizes minus one, bit
/// packed) or `VP8X` (extended: 24-bit canvas sizes minus one).
fn webp(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8 " => {
            if b.get(23..26)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            Some((
                u32::from(le_u16(b, 26)? & 0x3FFF),
                u32::from(le_u16(b, 28)? & 0x3FFF),
            ))
        }
        b"VP8L" => {
            if *b.get(20)? != 0x2F {
                return None;
            }
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => Some((le_u24(b, 24)? + 1, le_u24(b, 27)? + 1)),
        _ => None,
    }
}

/// Where `%PDF-` starts: at the beginning, or (as readers tolerate) within
/// the first kilobyte.
pub(super) fn pdf_header_at(bytes: &[u8]) -> Option<usize> {
    let head = &bytes[..bytes.len().min(1024)];
    find(head, b"%PDF-", 0)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() || from > hay.len() - needle.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn is_pdf_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b'\x0c' | b'\0')
}

/// Facts gathered from PDF object text.
#[derive(Debug, Default)]
struct PageFacts {
    /// `/Type /Page` objects seen.
    pages: u32,
    /// The largest `/Count` of a `/Type /Pages` node (the root's is the
    /// total).
    count: Option<u32>,
}

impl PageFacts {
    fn scan(&mut self, text: &[u8]) {
        let mut at = 0;
        while let Some(p) = find(text, b"/Type", at) {
            at = p + 5;
            let mut i = at;
            while text.get(i).copied().is_some_and(is_pdf_space) {
                i += 1;
            }
            if text.get(i..i + 5) != Some(b"/Page") {
                continue;
            }
            let after = text.get(i + 5).copied();
            if after == Some(b's') && !text.get(i + 6).is_some_and(u8::is_ascii_alphanumeric) {
                if let Some(n) = count_near(text, p) {
                    self.count = Some(self.count.map_or(n, |c| c.max(n)));
                }
            } else if !after.is_some_and(|c| c.is_ascii_alphanumeric()) {
                self.pages += 1;
            }
        }
    }
}

/// The `/Count N` of the dictionary around `at` (between its `<<` and
/// `>>`, looked for within a few hundred bytes either side).
fn count_near(text: &[u8], at: usize) -> Option<u32> {
    let start = at.saturating_sub(512);
    let end = (at + 512).min(text.len());
    let window = &text[start..end];
    let mut best = None;
    let mut from = 0;
    while let Some(p) = find(window, b"/Count", from) {
        from = p + 6;
        let digits: Vec<u8> = window[from..]
            .iter()
            .skip_while(|c| is_pdf_space(**c))
            .take_while(|c| c.is_ascii_digit())
            .copied()
            .collect();
        if let Ok(n) = std::str::from_utf8(&digits).unwrap_or("").parse::<u32>() {
            // The nearest /Count to the /Type belongs to its dictionary.
            let distance = (start + p).abs_diff(at);
            if best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, n));
            }
        }
    }
    best.map(|(_, n)| n)
}

/// Most bytes one compressed object stream may inflate to while counting.
const MAX_INFLATED: usize = 16 * 1024 * 1024;

/// The page count of a PDF: the root page tree's `/Count` when it can be
/// read, else the number of page objects; both are looked for in the plain
/// file and inside its compressed object streams (`/Type /ObjStm`,
/// `FlateDecode`). `None` when neither shows.
pub fn pdf_pages(bytes: &[u8]) -> Option<u32> {
    pdf_header_at(bytes)?;
    let mut facts = PageFacts::default();
    facts.scan(bytes);
    let mut at = 0;
    while let Some(p) = find(bytes, b"/ObjStm", at) {
        at = p + 7;
        let Some(stream) = stream_after(bytes, p) else {
            continue;
        };
        if let Ok(inflated) =
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(stream, MAX_INFLATED)
        {
            facts.scan(&inflated);
        }
    }
    facts
        .count
        .filter(|c| *c > 0)
        .or((facts.pages > 0).then_some(facts.pages))
}

/// The data of the stream whose dictionary contains `at`: from after the
/// `stream` keyword's line end to `endstream`.
fn stream_after(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let kw = find(bytes, b"stream", at)?;
    // `/Type /ObjStm` must be in this object's dictionary, not a later one.
    if find(&bytes[at..kw], b"endobj", 0).is_some() {
        return None;
    }
    let mut start = kw + 6;
    if bytes.get(start) == Some(&b'\r') {
        start += 1;
    }
    if bytes.get(start) == Some(&b'\n') {
        start += 1;
    }
    let end = find(bytes, b"endstream", start)?;
    bytes.get(start..end)
}
