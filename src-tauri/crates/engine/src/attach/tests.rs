use switchboard_mock::samples::{self, WebpKind};

use super::*;

fn att(bytes: Vec<u8>, name: &str) -> Attachment {
    Attachment::from_bytes(bytes, Some(name)).unwrap()
}

#[test]
fn types_come_from_the_bytes_not_the_name() {
    let cases: Vec<(Vec<u8>, MediaType)> = vec![
        (samples::png(4, 3, 1), MediaType::Png),
        (samples::jpeg(4, 3), MediaType::Jpeg),
        (samples::gif(4, 3), MediaType::Gif),
        (samples::webp(WebpKind::Lossy, 4, 3), MediaType::Webp),
        (samples::pdf(1, "x"), MediaType::Pdf),
    ];
    for (bytes, expected) in cases {
        // A misleading name changes nothing.
        let a = att(bytes, "holiday.txt");
        assert_eq!(a.media_type, expected);
        assert_eq!(a.name.as_deref(), Some("holiday.txt"));
    }
    let err = Attachment::from_bytes(b"just text, named like a picture".to_vec(), Some("cat.png"))
        .unwrap_err();
    assert!(matches!(err, AttachmentError::Unsupported { .. }));
    assert!(err.to_string().contains("cat.png"), "{err}");
    assert!(matches!(
        Attachment::from_bytes(Vec::<u8>::new(), None).unwrap_err(),
        AttachmentError::Empty { .. }
    ));
    // A PNG signature with its header cut off is damaged, not an image.
    let err = Attachment::from_bytes(b"\x89PNG\r\n\x1a\n\0\0".to_vec(), None).unwrap_err();
    assert!(matches!(err, AttachmentError::Damaged { .. }), "{err}");
}

#[test]
fn image_sizes_are_read_from_every_header_kind() {
    let dims = |bytes: Vec<u8>| match att(bytes, "x").info {
        MediaInfo::Image { width, height } => (width, height),
        MediaInfo::Pdf { .. } => panic!("not an image"),
    };
    assert_eq!(dims(samples::png(640, 480, 7)), (640, 480));
    assert_eq!(dims(samples::jpeg(1920, 1080)), (1920, 1080));
    assert_eq!(dims(samples::gif(320, 200)), (320, 200));
    assert_eq!(dims(samples::webp(WebpKind::Lossy, 1000, 750)), (1000, 750));
    assert_eq!(
        dims(samples::webp(WebpKind::Lossless, 16383, 2)),
        (16383, 2)
    );
    assert_eq!(
        dims(samples::webp(WebpKind::Extended, 20000, 9000)),
        (20000, 9000)
    );
}

#[test]
fn jpeg_size_is_found_past_other_segments_and_fill_bytes() {
    // APP1 (Exif-like) before the frame header, and 0xFF fill before SOF2.
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 1, 2, 3, 4, 5, 6];
    bytes.extend_from_slice(&[0xFF, 0xFF, 0xC2, 0x00, 0x11, 8, 0x02, 0x58, 0x03, 0x20]);
    bytes.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    assert_eq!(image_dimensions(MediaType::Jpeg, &bytes), Some((800, 600)));
    // A scan before any frame header: no size.
    assert_eq!(
        image_dimensions(MediaType::Jpeg, &[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]),
        None
    );
}

#[test]
fn pdf_pages_are_counted_plain_and_inside_compressed_object_streams() {
    assert_eq!(pdf_pages(&samples::pdf(1, "one")), Some(1));
    assert_eq!(pdf_pages(&samples::pdf(7, "seven")), Some(7));
    assert_eq!(pdf_pages(&samples::pdf_compressed(12)), Some(12));
    // Without a page tree count, the page objects are counted.
    let loose = b"%PDF-1.3\n1 0 obj << /Type /Page >> endobj\n2 0 obj <</Type/Page>> endobj\n\
                  3 0 obj <</Type /Pages /Kids [] >> endobj\n";
    assert_eq!(pdf_pages(loose), Some(2));
    // Nothing countable: the size decides (at least one page).
    let opaque = b"%PDF-1.7\n% nothing readable here\n".to_vec();
    let a = att(opaque, "scan.pdf");
    assert_eq!(a.info, MediaInfo::Pdf { pages: None });
    assert_eq!(a.info.pdf_pages_or_estimate(a.size()), 1);
    assert_eq!(
        MediaInfo::Pdf { pages: None }.pdf_pages_or_estimate(350_000),
        4
    );
}

#[test]
fn ids_are_sha256_of_the_bytes() {
    // The SHA-256 of "abc" (FIPS 180-2).
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let a = att(samples::png(2, 2, 1), "a.png");
    let b = att(samples::png(2, 2, 1), "b.png");
    let c = att(samples::png(2, 2, 2), "a.png");
    assert_eq!(a.id, b.id, "same bytes, same id, whatever the name");
    assert_ne!(a.id, c.id);
    assert!(is_attachment_id(&a.id));
    assert!(!is_attachment_id("../../etc/passwd"));
}

#[test]
fn base64_and_data_urls_carry_the_bytes_intact() {
    let bytes = samples::png(5, 5, 9);
    let a = att(bytes.clone(), "p.png");
    let b64 = a.base64();
    assert_eq!(b64.len() as u64, a.base64_len());
    assert_eq!(samples::base64_decode(&b64).unwrap(), bytes);
    assert_eq!(a.data_url(), format!("data:image/png;base64,{b64}"));
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["media_type"], "image/png");
    let back: Attachment = serde_json::from_value(json).unwrap();
    assert_eq!(back, a);
}

#[test]
fn image_tokens_follow_each_vendors_published_rule() {
    use tokens::{anthropic_image, gemini_image, openai_image};
    // OpenAI's worked examples: 1024×1024 → 765; 2048×4096 → 1105.
    assert_eq!(openai_image(1024, 1024), 765);
    assert_eq!(openai_image(2048, 4096), 1105);
    assert_eq!(openai_image(512, 512), 85 + 170);
    // Anthropic: ≈ w×h/750; 1000×1000 → 1334, 1092×1092 → 1590; larger is capped.
    assert_eq!(anthropic_image(1000, 1000), 1334);
    assert_eq!(anthropic_image(1092, 1092), 1590);
    assert_eq!(anthropic_image(200, 200), 54);
    assert_eq!(anthropic_image(8000, 8000), tokens::ANTHROPIC_IMAGE_CAP);
    // Gemini: 258 up to 384×384, else 258 per 768-px tile.
    assert_eq!(gemini_image(384, 384), 258);
    assert_eq!(gemini_image(385, 100), 258);
    assert_eq!(gemini_image(1024, 1024), 4 * 258);
}

#[test]
fn pdf_tokens_count_pages_by_vendor() {
    let a = att(samples::pdf(3, "x"), "doc.pdf");
    assert_eq!(a.estimated_tokens(ProviderKind::Gemini), 3 * 258);
    assert_eq!(a.max_tokens(ProviderKind::Gemini), 3 * 258);
    assert_eq!(a.estimated_tokens(ProviderKind::Anthropic), 3 * 2_350);
    assert_eq!(a.max_tokens(ProviderKind::Anthropic), 3 * 4_600);
    assert_eq!(a.estimated_tokens(ProviderKind::OpenAi), 3 * 1_265);
    assert!(a.max_tokens(ProviderKind::OpenAi) > a.estimated_tokens(ProviderKind::OpenAi));
}

#[test]
fn checks_refuse_what_a_model_or_provider_cannot_take_and_say_why() {
    let image = att(samples::png(2000, 10, 1), "chart.png");
    let pdf = att(samples::pdf(3, "x"), "report.pdf");
    let images = Accepts(vec![MediaKind::Image]);
    let none = AttachmentLimits::default();
    assert_eq!(check("p", "m", None, &none, &[], 10), None);
    let r = check("lab", "tiny", None, &none, &[&image], 10).unwrap();
    assert!(r.reason.contains("chart.png not sent"), "{r}");
    assert!(
        r.reason.contains("does not say that lab:tiny takes images"),
        "{r}"
    );
    assert!(r.reason.contains("[[providers.lab.models]]"), "{r}");
    let r = check("lab", "vision", Some(&images), &none, &[&image, &pdf], 10).unwrap();
    assert!(r.reason.contains("report.pdf not sent"), "{r}");
    assert!(r.reason.contains("as not taking PDF documents"), "{r}");
    assert_eq!(
        check(
            "lab",
            "all",
            Some(&Accepts::all()),
            &none,
            &[&image, &pdf],
            10
        ),
        None
    );
    let small = AttachmentLimits {
        max_image_bytes: Some(1024),
        ..none
    };
    let r = check("anthropic", "m", Some(&images), &small, &[&image], 10).unwrap();
    assert!(r.reason.contains("takes images of at most 1 KB"), "{r}");
    let side = AttachmentLimits {
        max_image_side: Some(1500),
        ..none
    };
    let r = check("x", "m", Some(&images), &side, &[&image], 10).unwrap();
    assert!(r.reason.contains("2000×10 pixels"), "{r}");
    let pages = AttachmentLimits {
        max_pdf_pages: Some(2),
        ..none
    };
    let r = check("x", "m", Some(&Accepts::all()), &pages, &[&pdf], 10).unwrap();
    assert!(r.reason.contains("3 pages"), "{r}");
    // The request limit counts the text and the attachments as base64.
    let body = AttachmentLimits {
        max_request_bytes: Some(image.base64_len() + 100),
        ..none
    };
    assert_eq!(check("g", "m", Some(&images), &body, &[&image], 100), None);
    let r = check("g", "m", Some(&images), &body, &[&image], 101).unwrap();
    assert!(r.reason.contains("takes requests of at most"), "{r}");
}

#[test]
fn sizes_read_like_people_write_them() {
    assert_eq!(human_bytes(5 * 1024 * 1024), "5 MB");
    assert_eq!(human_bytes(7_654_321), "7.3 MB");
    assert_eq!(human_bytes(2048), "2 KB");
    assert_eq!(human_bytes(12), "12 bytes");
}
