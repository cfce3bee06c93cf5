//! Anthropic Messages, in and out, so tools written for the Anthropic SDK
//! use Switchboard too; the request may be answered by any target its
//! route allows (the wire format is translated both ways).
//!
//! In: `model`, `messages` (text content, as a string or text blocks;
//! thinking blocks of earlier turns are dropped), `system` (a string or
//! text blocks), `max_tokens` (required, as Anthropic requires it),
//! `stream`, `temperature`, `top_p`, `stop_sequences`, `thinking`. Tools,
//! images and documents are refused with a 400.
//!
//! Out: a `message`, or the event stream message_start,
//! content_block_start / content_block_delta / content_block_stop,
//! message_delta (stop reason and usage), message_stop. Usage follows
//! Anthropic's meaning: `input_tokens` excludes the prompt tokens read
//! from a cache (`cache_read_input_tokens`) and written to one
//! (`cache_creation_input_tokens`); `message_delta.usage` carries
//! the final counts, input included, and `cost` (USD, exact decimal, what
//! the ledger holds). Reasoning becomes `thinking` blocks when the request
//! asked for thinking, and is left out otherwise. An error after the first
//! token is an `error` event.

use serde::Deserialize;
use switchboard_engine::{ChatRequest, DEFAULT_MAX_TOKENS, Message, Usage};

use crate::body::{Encoder, parse_json};
use crate::errors::ApiError;
use crate::openai::{Content, Parsed};
use crate::run::Finished;
use crate::wire::{Counts, anthropic_stop, cost_fields, json_str, json_u64, new_id};

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Option<Vec<InMessage>>,
    #[serde(default)]
    system: Option<Content>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    tools: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    thinking: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    content: Content,
}

/// Parse a Messages request body.
pub(crate) fn parse(body: &[u8]) -> Result<Parsed, ApiError> {
    let r: Request = parse_json(body, "Messages")?;
    let Some(messages) = r.messages.filter(|m| !m.is_empty()) else {
        return Err(ApiError::bad_request(
            "missing_messages",
            "messages: field required (a non-empty list of {role, content})",
        ));
    };
    let Some(max_tokens) = r.max_tokens else {
        return Err(ApiError::bad_request(
            "missing_max_tokens",
            format!("max_tokens: field required (e.g. {DEFAULT_MAX_TOKENS})"),
        ));
    };
    if r.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::bad_request(
            "unsupported_parameter",
            "tool use (`tools`) is not supported by the Local API yet",
        ));
    }
    let mut chat = ChatRequest::new("", "");
    chat.messages.clear();
    for (i, m) in messages.into_iter().enumerate() {
        let where_ = format!("messages.{i}");
        let text = m
            .content
            .text(&where_, &["thinking", "redacted_thinking"])?;
        match m.role.as_str() {
            "user" => chat.messages.push(Message::user(text)),
            "assistant" => chat.messages.push(Message::assistant(text)),
            other => {
                return Err(ApiError::bad_request(
                    "unsupported_role",
                    format!("{where_}.role: \"{other}\" is not user or assistant"),
                ));
            }
        }
    }
    chat.system = match r.system {
        Some(s) => Some(s.text("system", &[])?).filter(|s| !s.is_empty()),
        None => None,
    };
    chat.params.max_tokens = Some(max_tokens);
    chat.params.temperature = r.temperature;
    chat.params.top_p = r.top_p;
    chat.params.stop = r.stop_sequences.unwrap_or_default();
    let thinking = r
        .thinking
        .as_ref()
        .and_then(|t| t.get("type"))
        .and_then(serde_json::Value::as_str)
        == Some("enabled");
    Ok(Parsed {
        names: r.model.into_iter().collect(),
        chat,
        stream: r.stream.unwrap_or(false),
        include_usage: true,
        thinking,
    })
}

/// Anthropic's usage fields for counts: input without the prompt tokens
/// read from or written to a cache, which have fields of their own.
fn usage_fields(out: &mut Vec<u8>, c: &Counts) {
    out.extend_from_slice(b"\"input_tokens\":");
    json_u64(out, c.input.saturating_sub(c.cached + c.cache_write));
    out.extend_from_slice(b",\"cache_creation_input_tokens\":");
    json_u64(out, c.cache_write);
    out.extend_from_slice(b",\"cache_read_input_tokens\":");
    json_u64(out, c.cached);
    out.extend_from_slice(b",\"output_tokens\":");
    json_u64(out, c.output);
}

fn final_usage(out: &mut Vec<u8>, f: &Finished) {
    let cost = f.outcome.cost();
    out.push(b'{');
    usage_fields(out, &Counts::of(&f.outcome));
    out.push(b',');
    cost_fields(out, cost);
    out.push(b'}');
}

/// The whole (non-streamed) answer.
pub(crate) fn message(f: &Finished, thinking: bool) -> Vec<u8> {
    let r = &f.outcome.result;
    let mut out = Vec::with_capacity(512 + r.text.len());
    out.extend_from_slice(b"{\"id\":");
    json_str(&mut out, &new_id("msg_"));
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    json_str(&mut out, &format!("{}:{}", r.provider, r.model));
    out.extend_from_slice(b",\"content\":[");
    let mut first = true;
    if thinking && !r.reasoning.is_empty() {
        out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
        json_str(&mut out, &r.reasoning);
        out.extend_from_slice(b",\"signature\":\"\"}");
        first = false;
    }
    if !r.text.is_empty() {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        json_str(&mut out, &r.text);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"stop_reason\":");
    json_str(&mut out, anthropic_stop(r.finish_reason));
    out.extend_from_slice(b",\"stop_sequence\":null,\"usage\":");
    final_usage(&mut out, f);
    out.push(b'}');
    out
}

/// Which kind of content block is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
}

/// A streamed answer's events.
#[derive(Debug)]
pub(crate) struct EventStream {
    thinking: bool,
    open: Option<Block>,
    /// The index of the open block, or of the next one.
    index: u64,
}

fn event(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

impl EventStream {
    /// The stream of an answer served by `target` (with the counts its
    /// provider reported so far); appends message_start to `out`.
    pub(crate) fn start(target: &str, usage: Usage, thinking: bool, out: &mut Vec<u8>) -> Self {
        let mut data = Vec::with_capacity(256);
        data.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":");
        json_str(&mut data, &new_id("msg_"));
        data.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        json_str(&mut data, target);
        data.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{",
        );
        let counts = Counts {
            input: usage.input_tokens.unwrap_or(0),
            output: 0,
            cached: usage.cached_input_tokens.unwrap_or(0),
            cache_write: usage.cache_write_tokens.unwrap_or(0),
            reasoning: 0,
        };
        usage_fields(&mut data, &counts);
        data.extend_from_slice(b"}}}");
        event(out, "message_start", &data);
        Self {
            thinking,
            open: None,
            index: 0,
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            let mut data = Vec::with_capacity(48);
            data.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
            json_u64(&mut data, self.index);
            data.push(b'}');
            event(out, "content_block_stop", &data);
            self.index += 1;
        }
    }

    fn delta(&mut self, out: &mut Vec<u8>, block: Block, text: &str) {
        if self.open != Some(block) {
            self.close(out);
            let start: &[u8] = match block {
                Block::Thinking => b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}",
                Block::Text => b"{\"type\":\"text\",\"text\":\"\"}",
            };
            let mut data = Vec::with_capacity(96);
            data.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
            json_u64(&mut data, self.index);
            data.extend_from_slice(b",\"content_block\":");
            data.extend_from_slice(start);
            data.push(b'}');
            event(out, "content_block_start", &data);
            self.open = Some(block);
        }
        // Written in place: this is the event of every piece.
        out.reserve(text.len() + 128);
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        json_u64(out, self.index);
        match block {
            Block::Thinking => {
                out.extend_from_slice(b",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":")
            }
            Block::Text => out.extend_from_slice(b",\"delta\":{\"type\":\"text_delta\",\"text\":"),
        }
        json_str(out, text);
        out.extend_from_slice(b"}}\n\n");
    }

    fn finish(&mut self, out: &mut Vec<u8>, f: &Finished) {
        self.close(out);
        let r = &f.outcome.result;
        if let Some(e) = &r.error {
            let mut data = Vec::with_capacity(128);
            data.extend_from_slice(
                b"{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":",
            );
            json_str(&mut data, &e.message);
            data.extend_from_slice(b"}}");
            event(out, "error", &data);
            return;
        }
        let mut data = Vec::with_capacity(256);
        data.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
        json_str(&mut data, anthropic_stop(r.finish_reason));
        data.extend_from_slice(b",\"stop_sequence\":null},\"usage\":");
        final_usage(&mut data, f);
        data.push(b'}');
        event(out, "message_delta", &data);
        event(out, "message_stop", b"{\"type\":\"message_stop\"}");
    }
}

impl Encoder for EventStream {
    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.delta(out, Block::Text, text);
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        // Thinking blocks only for a caller that asked for them.
        if self.thinking {
            self.delta(out, Block::Thinking, text);
        }
    }

    fn end(&mut self, f: &Finished, out: &mut Vec<u8>) {
        self.finish(out, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_anthropic_defines_them() {
        let p = parse(
            br#"{"model":"an:m","max_tokens":64,"system":[{"type":"text","text":"Terse."}],
                "messages":[{"role":"user","content":"Hi"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"Hello"}]},
                {"role":"user","content":[{"type":"text","text":"More"}]}],
                "stream":true,"thinking":{"type":"enabled","budget_tokens":1024},"top_k":3}"#,
        )
        .unwrap();
        assert_eq!(p.names, vec!["an:m"]);
        assert_eq!(p.chat.system.as_deref(), Some("Terse."));
        assert_eq!(
            p.chat.messages,
            vec![
                Message::user("Hi"),
                Message::assistant("Hello"),
                Message::user("More")
            ]
        );
        assert_eq!(p.chat.params.max_tokens, Some(64));
        assert!(p.stream && p.thinking);
        let e =
            parse(br#"{"model":"an:m","messages":[{"role":"user","content":"x"}]}"#).unwrap_err();
        assert_eq!(e.code, "missing_max_tokens");
        let e = parse(
            br#"{"model":"an:m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "unsupported_content");
    }
}
