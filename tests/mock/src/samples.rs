//! Small, well-formed sample files for attachment tests, made in code so
//! every test can choose their size: PNG (a real, decodable image), JPEG,
//! GIF and WebP headers, and PDFs with a given page count, plain or with
//! their pages in a compressed object stream. Also [`media_type`], the
//! mock providers' own check of what bytes are, written apart from the
//! engine's so that a test compares two readings.

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for x in bytes {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A zlib stream of stored (uncompressed) deflate blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
}

/// A valid RGB PNG of `width`×`height` pixels, each pixel a colour made
/// from `seed` and its position (so two seeds give different bytes).
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    let mut raw = Vec::with_capacity((width as usize * 3 + 1) * height as usize);
    for y in 0..height {
        raw.push(0);
        for x in 0..width {
            raw.extend_from_slice(&[
                seed.wrapping_add(x as u8),
                seed.wrapping_mul(3).wrapping_add(y as u8),
                seed ^ ((x ^ y) as u8),
            ]);
        }
    }
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A JPEG header (SOI, JFIF APP0, a comment, SOF0 with the size, EOI):
/// enough for anything that reads the size, not a decodable image.
pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    out.extend_from_slice(&[
        0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    out.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x07, b'm', b'o', b'c', b'k', b'!']);
    out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 8]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A GIF89a with one empty frame.
pub fn gif(width: u16, height: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0x3B]);
    out
}

/// How a WebP sample is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebpKind {
    /// `VP8 ` (lossy).
    Lossy,
    /// `VP8L` (lossless).
    Lossless,
    /// `VP8X` (extended).
    Extended,
}

/// A WebP header of the given kind and size.
pub fn webp(kind: WebpKind, width: u32, height: u32) -> Vec<u8> {
    let mut chunk = Vec::new();
    let fourcc: &[u8; 4] = match kind {
        WebpKind::Lossy => {
            chunk.extend_from_slice(&[0x30, 0x01, 0x00, 0x9D, 0x01, 0x2A]);
            chunk.extend_from_slice(&(width as u16 & 0x3FFF).to_le_bytes());
            chunk.extend_from_slice(&(height as u16 & 0x3FFF).to_le_bytes());
            chunk.extend_from_slice(&[0; 8]);
            b"VP8 "
        }
        WebpKind::Lossless => {
            let bits = ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14);
            chunk.push(0x2F);
            chunk.extend_from_slice(&bits.to_le_bytes());
            chunk.extend_from_slice(&[0; 6]);
            b"VP8L"
        }
        WebpKind::Extended => {
            chunk.extend_from_slice(&[0x10, 0, 0, 0]);
            chunk.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
            chunk.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
            b"VP8X"
        }
    };
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(
        &u32::try_from(4 + 8 + chunk.len())
            .unwrap_or(0)
            .to_le_bytes(),
    );
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&u32::try_from(chunk.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&chunk);
    out
}

/// A PDF of `pages` pages (each saying "Page N" and `text`), with its
/// objects written plainly.
pub fn pdf(pages: u32, text: &str) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 3 + i * 2)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {pages} >>",
        kids.join(" ")
    ));
    for i in 0..pages {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R >>",
            4 + i * 2
        ));
        let content = format!("BT /F1 12 Tf 72 720 Td (Page {} {text}) Tj ET", i + 1);
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF 1.5 whose page tree and pages sit in a zlib-compressed object
/// stream, as most PDF writers produce today: nothing about its pages is
/// readable without inflating it.
pub fn pdf_compressed(pages: u32) -> Vec<u8> {
    let mut inner: Vec<String> = Vec::new();
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 3 + i)).collect();
    inner.push(format!(
        "<</Type/Pages/Kids[{}]/Count {pages}>>",
        kids.join(" ")
    ));
    for _ in 0..pages {
        inner.push("<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>".into());
    }
    let mut header = String::new();
    let mut body = String::new();
    for (i, o) in inner.iter().enumerate() {
        header.push_str(&format!("{} {} ", 2 + i, body.len()));
        body.push_str(o);
        body.push(' ');
    }
    let plain = format!("{header}{body}");
    let packed = zlib_stored(plain.as_bytes());
    let mut out = b"%PDF-1.5\n".to_vec();
    out.extend_from_slice(b"1 0 obj\n<</Type/Catalog/Pages 2 0 R>>\nendobj\n");
    out.extend_from_slice(
        format!(
            "{} 0 obj\n<</Type/ObjStm/N {}/First {}/Filter/FlateDecode/Length {}>>\nstream\n",
            3 + pages,
            inner.len(),
            header.len(),
            packed.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&packed);
    out.extend_from_slice(b"\nendstream\nendobj\n%%EOF\n");
    out
}

/// What the mock providers take `bytes` to be, by magic number: the MIME
/// type, or `None`.
pub fn media_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF8") {
        Some("image/gif")
    } else if bytes.len() > 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"%PDF") {
        Some("application/pdf")
    } else {
        None
    }
}

/// Standard base64 decoding, strict (padding required, no whitespace), as
/// the providers' APIs decode attachments.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, q) in b.chunks(4).enumerate() {
        let last = i == b.len() / 4 - 1;
        let pad = q.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for c in &q[..4 - pad] {
            n = (n << 6) | val(*c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// Standard base64 encoding with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        assert!(base64_decode("TWE").is_none());
        assert!(base64_decode("TW=u").is_none());
    }

    #[test]
    fn samples_are_what_they_say() {
        assert_eq!(media_type(&png(3, 2, 1)), Some("image/png"));
        assert_eq!(media_type(&jpeg(3, 2)), Some("image/jpeg"));
        assert_eq!(media_type(&gif(3, 2)), Some("image/gif"));
        assert_eq!(media_type(&webp(WebpKind::Lossy, 3, 2)), Some("image/webp"));
        assert_eq!(media_type(&pdf(2, "x")), Some("application/pdf"));
        assert_eq!(media_type(b"hello"), None);
    }
}
