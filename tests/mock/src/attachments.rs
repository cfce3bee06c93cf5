//! What the real providers check about images and PDFs in a request before
//! answering, so a client that sends them wrong is refused here as it
//! would be there: the base64 must decode (strictly), the declared media
//! type must be one the protocol takes and must match the bytes, and the
//! parts must have the protocol's shape.

use serde_json::Value;

use crate::samples::{base64_decode, media_type};

const IMAGES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];

/// `data` (base64) decodes and its bytes are `declared`, one of `allowed`.
fn check_data(declared: &str, data: &str, allowed: &[&str]) -> Result<(), String> {
    if !allowed.contains(&declared) {
        return Err(format!(
            "media type {declared:?} is not supported here (one of {})",
            allowed.join(", ")
        ));
    }
    let bytes = base64_decode(data).ok_or("the data is not valid base64")?;
    match media_type(&bytes) {
        Some(actual) if actual == declared => Ok(()),
        Some(actual) => Err(format!(
            "the data does not match the provided media type {declared} (it is {actual})"
        )),
        None => Err(format!("the data is not a valid {declared} file")),
    }
}

fn data_url(url: &str, allowed: &[&str]) -> Result<(), String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or("only data URLs are accepted by the mock")?;
    let (mime, data) = rest
        .split_once(";base64,")
        .ok_or("a data URL must be base64 (data:<type>;base64,<data>)")?;
    check_data(mime, data, allowed)
}

fn messages<'a>(body: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    body.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// OpenAI chat completions: `content` is a string or parts of type `text`,
/// `image_url` (`{url}`), or `file` (`{filename, file_data}` for a PDF).
pub(crate) fn check_openai(body: &Value) -> Result<(), String> {
    for m in messages(body, "messages") {
        let Some(parts) = m.get("content").and_then(Value::as_array) else {
            continue;
        };
        for p in parts {
            match p.get("type").and_then(Value::as_str) {
                Some("text") if p.get("text").is_some_and(Value::is_string) => {}
                Some("image_url") => {
                    let url = p
                        .pointer("/image_url/url")
                        .and_then(Value::as_str)
                        .ok_or("image_url.url is required")?;
                    data_url(url, IMAGES)?;
                }
                Some("file") => {
                    let file = p.get("file").ok_or("file is required")?;
                    if !file.get("filename").is_some_and(Value::is_string) {
                        return Err("file.filename is required with file_data".into());
                    }
                    let data = file
                        .get("file_data")
                        .and_then(Value::as_str)
                        .ok_or("file.file_data is required")?;
                    data_url(data, &["application/pdf"])?;
                }
                other => return Err(format!("invalid content part type {other:?}")),
            }
        }
    }
    Ok(())
}

/// Anthropic Messages: blocks `text`, `image` and `document` with a
/// `{"type": "base64", "media_type", "data"}` source.
pub(crate) fn check_anthropic(body: &Value) -> Result<(), String> {
    for m in messages(body, "messages") {
        let Some(blocks) = m.get("content").and_then(Value::as_array) else {
            continue;
        };
        for b in blocks {
            let allowed: &[&str] = match b.get("type").and_then(Value::as_str) {
                Some("text") if b.get("text").is_some_and(Value::is_string) => continue,
                Some("image") => IMAGES,
                Some("document") => &["application/pdf"],
                other => return Err(format!("messages: unknown content block type {other:?}")),
            };
            let source = b.get("source").ok_or("source: Field required")?;
            if source.get("type").and_then(Value::as_str) != Some("base64") {
                return Err("source.type: only base64 is accepted by the mock".into());
            }
            let declared = source
                .get("media_type")
                .and_then(Value::as_str)
                .ok_or("source.media_type: Field required")?;
            let data = source
                .get("data")
                .and_then(Value::as_str)
                .ok_or("source.data: Field required")?;
            check_data(declared, data, allowed)?;
        }
    }
    Ok(())
}

/// Gemini: parts with `text` or `inlineData` (`inline_data` too, as the
/// REST API accepts both) `{mimeType, data}`.
pub(crate) fn check_gemini(body: &Value) -> Result<(), String> {
    for c in messages(body, "contents") {
        for p in c
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(inline) = p.get("inlineData").or_else(|| p.get("inline_data")) else {
                if p.get("text").is_some_and(Value::is_string) {
                    continue;
                }
                return Err("a part needs text or inlineData".into());
            };
            let mime = inline
                .get("mimeType")
                .or_else(|| inline.get("mime_type"))
                .and_then(Value::as_str)
                .ok_or("inlineData.mimeType is required")?;
            let data = inline
                .get("data")
                .and_then(Value::as_str)
                .ok_or("inlineData.data is required")?;
            let mut allowed = IMAGES.to_vec();
            allowed.push("application/pdf");
            check_data(mime, data, &allowed)?;
        }
    }
    Ok(())
}
