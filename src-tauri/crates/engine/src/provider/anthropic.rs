//! Anthropic Messages. `system` is a top-level field, `max_tokens` is
//! required, and the stream is `event:` + `data:` pairs: message_start,
//! content_block_start/delta/stop, message_delta, message_stop, with `ping`
//! anywhere and new event types to be ignored. `message_delta.usage` is
//! cumulative (assign, never add); `input_tokens` excludes cached tokens, so
//! cache reads and writes are added back to get all prompt tokens.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ErrorBody, Protocol, ProviderConfig, StreamParser, finish_reason, interrupted, malformed,
    stream_error,
};
use crate::attach::{Attachment, MediaKind};
use crate::catalog::{ModelInfo, PriceSource};
use crate::chat::{ChatRequest, DEFAULT_MAX_TOKENS, Message, Role, StreamEvent, Usage};
use crate::error::ProviderError;
use crate::sse::SseEvent;

/// The API version Switchboard speaks.
pub const API_VERSION: &str = "2023-06-01";

/// The Anthropic Messages protocol.
#[derive(Debug, Clone, Copy)]
pub struct Anthropic;

impl Protocol for Anthropic {
    fn auth_headers(&self, key: Option<&str>) -> Vec<(String, String)> {
        let mut headers = vec![("anthropic-version".to_owned(), API_VERSION.to_owned())];
        if let Some(k) = key {
            headers.push(("x-api-key".to_owned(), k.to_owned()));
        }
        headers
    }

    fn chat_request(
        &self,
        provider: &ProviderConfig,
        req: &ChatRequest,
        stream: bool,
    ) -> (String, Value) {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({ "role": role, "content": content(m) })
            })
            .collect();
        let p = &req.params;
        let mut body = json!({
            "model": req.model,
            "max_tokens": p.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            "messages": messages,
            "stream": stream,
        });
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            body["system"] = json!(system);
        }
        if let Some(t) = p.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(t) = p.top_p {
            body["top_p"] = json!(t);
        }
        if !p.stop.is_empty() {
            body["stop_sequences"] = json!(p.stop);
        }
        (format!("{}/v1/messages", provider.base_url), body)
    }

    fn parser(&self, provider: &ProviderConfig) -> StreamParser {
        StreamParser::Anthropic(Parser::new(provider.id.clone()))
    }

    fn parse_response(
        &self,
        _provider: &ProviderConfig,
        body: &str,
    ) -> Result<Vec<StreamEvent>, serde_json::Error> {
        parse_response(body)
    }

    fn error_body(&self, body: &str) -> ErrorBody {
        error_body(body)
    }

    fn models_url(&self, provider: &ProviderConfig) -> String {
        format!("{}/v1/models?limit=1000", provider.base_url)
    }

    /// `{"data": [{"id", "display_name"}]}`.
    fn parse_models(&self, doc: &Value) -> Vec<ModelInfo> {
        let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        doc.get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| {
                Some(ModelInfo {
                    id: str_of(item, "id")?,
                    name: str_of(item, "display_name"),
                    context_window: None,
                    max_output_tokens: None,
                    price: None,
                    accepts: None,
                    source: PriceSource::Live,
                })
            })
            .collect()
    }
}

/// A message's `content`: the plain string for text alone, else blocks:
/// each attachment (`image` or `document`, a base64 source with its media
/// type), then the text.
fn content(m: &Message) -> Value {
    if m.attachments.is_empty() {
        return json!(m.content);
    }
    let mut blocks: Vec<Value> = m.attachments.iter().map(attachment_block).collect();
    if !m.content.is_empty() {
        blocks.push(json!({ "type": "text", "text": m.content }));
    }
    Value::Array(blocks)
}

fn attachment_block(a: &Attachment) -> Value {
    let kind = match a.kind() {
        MediaKind::Image => "image",
        MediaKind::Pdf => "document",
    };
    json!({
        "type": kind,
        "source": { "type": "base64", "media_type": a.media_type.mime(), "data": a.base64() },
    })
}

/// A `content_block_delta` event, its strings borrowed from the event's
/// data when they hold no escapes.
#[derive(Deserialize)]
struct DeltaEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<DeltaBody<'a>>,
}

#[derive(Deserialize, Default)]
struct DeltaBody<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    /// Cache writes by lifetime, when the request used a one-hour TTL.
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize, Default)]
struct CacheCreation {
    ephemeral_5m_input_tokens: Option<u64>,
    ephemeral_1h_input_tokens: Option<u64>,
}

impl WireUsage {
    /// `input_tokens` counts only what follows the last cache breakpoint:
    /// the prompt is input + cache reads + cache writes.
    fn normalized(&self) -> Usage {
        let by_ttl = self.cache_creation.as_ref();
        let written = self.cache_creation_input_tokens.or_else(|| {
            let c = by_ttl?;
            match (c.ephemeral_5m_input_tokens, c.ephemeral_1h_input_tokens) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            }
        });
        let input = self
            .input_tokens
            .map(|i| i + self.cache_read_input_tokens.unwrap_or(0) + written.unwrap_or(0));
        Usage {
            input_tokens: input,
            output_tokens: self.output_tokens,
            cached_input_tokens: self.cache_read_input_tokens,
            reasoning_tokens: None,
            cache_write_tokens: written,
            cache_write_1h_tokens: by_ttl.and_then(|c| c.ephemeral_1h_input_tokens),
        }
    }
}

/// Reads `{"type":"error","error":{"type":..,"message":..}}`.
fn error_body(body: &str) -> ErrorBody {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return ErrorBody::default();
    };
    error_value(v.get("error").unwrap_or(&v))
}

fn error_value(e: &Value) -> ErrorBody {
    let message = e.get("message").and_then(Value::as_str).map(str::to_owned);
    let mut codes: Vec<String> = e
        .get("type")
        .and_then(Value::as_str)
        .map(|t| vec![t.to_ascii_lowercase()])
        .unwrap_or_default();
    // An empty account is an `invalid_request_error` like a malformed
    // request; only the message tells them apart, so it gets a code here.
    if codes.iter().any(|c| c == "invalid_request_error")
        && message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("credit balance is too low"))
    {
        codes.push("credit_balance_too_low".into());
    }
    ErrorBody {
        message,
        codes,
        retry_after: None,
    }
}

/// Streaming parser state.
#[derive(Debug)]
pub struct Parser {
    provider: String,
    usage: Usage,
    stopped: bool,
}

impl Parser {
    fn new(provider: String) -> Self {
        Self {
            provider,
            usage: Usage::default(),
            stopped: false,
        }
    }

    fn push_usage(&mut self, u: &WireUsage, out: &mut Vec<StreamEvent>) {
        // message_delta may carry only output_tokens: keep what message_start said.
        self.usage.merge_latest(u.normalized());
        out.push(StreamEvent::Usage {
            usage: self.usage,
            reported_cost: None,
        });
    }

    pub(super) fn on_event(
        &mut self,
        ev: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        // Nearly every event of an answer is a content_block_delta: read it
        // into borrowed fields rather than a JSON tree (a map and a string
        // allocated per field). Anything else, or a delta of a shape this
        // does not know, takes the general path below.
        if (ev.event.is_empty() || ev.event == "content_block_delta")
            && let Ok(e) = serde_json::from_str::<DeltaEvent<'_>>(&ev.data)
            && (!ev.event.is_empty() || e.kind.as_deref() == Some("content_block_delta"))
        {
            let d = e.delta.unwrap_or_default();
            let (text, reasoning) = match d.kind.as_deref() {
                Some("text_delta") => (d.text, None),
                Some("thinking_delta") => (None, d.thinking),
                // signature_delta, input_json_delta, citations and future kinds.
                _ => (None, None),
            };
            if let Some(t) = text.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta(t.into_owned()));
            }
            if let Some(t) = reasoning.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::ReasoningDelta(t.into_owned()));
            }
            return Ok(());
        }
        let data: Value =
            serde_json::from_str(&ev.data).map_err(|e| malformed(&self.provider, &ev.data, &e))?;
        let kind = if ev.event.is_empty() {
            data.get("type").and_then(Value::as_str).unwrap_or("")
        } else {
            ev.event.as_str()
        };
        match kind {
            "message_start" => {
                if let Some(u) = data.pointer("/message/usage") {
                    let mut u = WireUsage::deserialize(u).unwrap_or_default();
                    // A placeholder (usually 1) until message_delta brings the
                    // real count: a stream cut before that has no output count.
                    u.output_tokens = None;
                    self.push_usage(&u, out);
                }
            }
            "content_block_start" => {
                let block = data.get("content_block");
                let text = |k: &str| {
                    block
                        .and_then(|b| b.get(k))
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                };
                if let Some(t) = text("text") {
                    out.push(StreamEvent::TextDelta(t.to_owned()));
                }
                if let Some(t) = text("thinking") {
                    out.push(StreamEvent::ReasoningDelta(t.to_owned()));
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta");
                let field = |k: &str| delta.and_then(|d| d.get(k)).and_then(Value::as_str);
                match field("type") {
                    Some("text_delta") => {
                        if let Some(t) = field("text").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta(t.to_owned()));
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = field("thinking").filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::ReasoningDelta(t.to_owned()));
                        }
                    }
                    // signature_delta, input_json_delta, citations and future kinds.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    out.push(StreamEvent::Finish(finish_reason(r)));
                }
                if let Some(u) = data.get("usage") {
                    let u = WireUsage::deserialize(u).unwrap_or_default();
                    self.push_usage(&u, out);
                }
            }
            "message_stop" => self.stopped = true,
            "error" => {
                let e = data.get("error").unwrap_or(&data);
                return Err(stream_error(&self.provider, None, error_value(e), &ev.data));
            }
            // ping, content_block_stop, and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    pub(super) fn on_end(&mut self) -> Result<(), ProviderError> {
        if self.stopped {
            Ok(())
        } else {
            Err(interrupted(&self.provider, "message_stop"))
        }
    }
}

fn parse_response(body: &str) -> Result<Vec<StreamEvent>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Block {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        thinking: Option<String>,
    }
    #[derive(Deserialize)]
    struct Msg {
        content: Vec<Block>,
        stop_reason: Option<String>,
        #[serde(default)]
        usage: Option<WireUsage>,
    }
    let msg: Msg = serde_json::from_str(body)?;
    let mut out = Vec::new();
    for b in msg.content {
        match (b.kind.as_str(), b.text, b.thinking) {
            ("text", Some(t), _) => out.push(StreamEvent::TextDelta(t)),
            ("thinking", _, Some(t)) => out.push(StreamEvent::ReasoningDelta(t)),
            _ => {}
        }
    }
    if let Some(r) = msg.stop_reason {
        out.push(StreamEvent::Finish(finish_reason(&r)));
    }
    if let Some(u) = msg.usage {
        out.push(StreamEvent::Usage {
            usage: u.normalized(),
            reported_cost: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::fixture::{self, text};

    fn last_usage(events: &[StreamEvent]) -> Usage {
        fixture::last_usage(events)
            .map(|(u, _)| u)
            .unwrap_or_default()
    }

    fn replay(f: &str, size: usize) -> (Vec<StreamEvent>, Result<(), ProviderError>) {
        fixture::replay(ProviderKind::Anthropic, f, size)
    }
    use crate::chat::{FinishReason, Params};
    use crate::error::ErrorKind;
    use crate::provider::{ProviderKind, classify};

    const FULL: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"usage\":{\"input_tokens\":20,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":0,\"output_tokens\":1}}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"abc\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Héllo \"}}\n\n\
event: some_future_event\ndata: {\"type\":\"some_future_event\",\"x\":1}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"wörld\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn full_stream_with_thinking_pings_and_unknown_events() {
        for size in [1, 3, 17, FULL.len()] {
            let (events, end) = replay(FULL, size);
            end.unwrap();
            assert_eq!(text(&events), "Héllo wörld");
            assert!(events.contains(&StreamEvent::ReasoningDelta("hmm".into())));
            assert!(events.contains(&StreamEvent::Finish(FinishReason::Stop)));
            let u = last_usage(&events);
            // input_tokens excludes cached ones: 20 + 100 cache reads.
            assert_eq!(u.input_tokens, Some(120));
            assert_eq!(u.cached_input_tokens, Some(100));
            // Cumulative: 15, not 1 + 15.
            assert_eq!(u.output_tokens, Some(15));
        }
    }

    #[test]
    fn deltas_read_the_same_without_event_lines_with_escapes_and_in_odd_shapes() {
        // The same answer with its `event:` lines dropped (as some proxies
        // forward it): each event's kind comes from its data's `type`.
        let bare: String = FULL
            .split_inclusive('\n')
            .filter(|line| !line.starts_with("event:"))
            .collect();
        for size in [1, 7, bare.len()] {
            let (events, end) = replay(&bare, size);
            end.unwrap();
            assert_eq!(text(&events), "Héllo wörld");
            assert!(events.contains(&StreamEvent::ReasoningDelta("hmm".into())));
            assert_eq!(last_usage(&events).output_tokens, Some(15));
        }
        // Escaped text is unescaped; a delta whose text is not a string, or
        // that has no delta at all, adds nothing and is no error.
        let f = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a \\\"q\\\"\\n\\u00e9 \\ud83c\\udf89\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":7}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0}\n\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let (events, end) = replay(f, 5);
        end.unwrap();
        assert_eq!(text(&events), "a \"q\"\né 🎉!");
        // A delta that is not JSON is still refused by name.
        let broken = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\n\n";
        let (_, end) = replay(broken, 4);
        assert_eq!(end.unwrap_err().kind, ErrorKind::Malformed);
    }

    #[test]
    fn mid_stream_overloaded_error_keeps_the_text() {
        let f = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"part\"}}\n\n\
event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let (events, end) = replay(f, 9);
        assert_eq!(text(&events), "part");
        let e = end.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert_eq!(e.message, "Overloaded");
    }

    #[test]
    fn a_stream_without_message_stop_is_interrupted() {
        let cut = &FULL[..FULL.find("event: message_delta").unwrap()];
        let (events, end) = replay(cut, 11);
        assert_eq!(text(&events), "Héllo wörld");
        assert_eq!(end.unwrap_err().kind, ErrorKind::Interrupted);
    }

    #[test]
    fn attachments_are_base64_image_and_document_blocks_before_the_text() {
        use switchboard_mock::samples;
        let p = ProviderConfig::custom("an", ProviderKind::Anthropic, "http://127.0.0.1:9");
        let gif = crate::attach::Attachment::from_bytes(samples::gif(4, 4), None).unwrap();
        let pdf = crate::attach::Attachment::from_bytes(samples::pdf(1, "x"), None).unwrap();
        let mut req = ChatRequest::new("claude-x", "");
        req.messages = vec![crate::chat::Message::user_with(
            "summarize",
            vec![pdf.clone(), gif.clone()],
        )];
        let w = crate::provider::build_request(&p, Some("k"), &req, false);
        let content = &w.body["messages"][0]["content"];
        assert_eq!(
            content[0],
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf.base64()}})
        );
        assert_eq!(
            content[1],
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": gif.base64()}})
        );
        assert_eq!(content[2], json!({"type": "text", "text": "summarize"}));
        // The model list is authenticated the same way.
        let m = crate::provider::models_request(&p, Some("k"));
        assert!(m.headers.contains(&("x-api-key".into(), "k".into())));
        assert!(
            m.headers
                .contains(&("anthropic-version".into(), API_VERSION.into()))
        );
    }

    #[test]
    fn requests_put_system_at_the_top_and_always_send_max_tokens() {
        let p = ProviderConfig::custom("an", ProviderKind::Anthropic, "http://127.0.0.1:9");
        let mut req = ChatRequest::new("claude-x", "hi");
        req.system = Some("sys".into());
        req.params = Params {
            stop: vec!["X".into()],
            ..Params::default()
        };
        let w = crate::provider::build_request(&p, Some("k"), &req, true);
        assert_eq!(w.url, "http://127.0.0.1:9/v1/messages");
        assert_eq!(w.body["system"], "sys");
        assert_eq!(w.body["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(w.body["messages"].as_array().unwrap().len(), 1);
        assert_eq!(w.body["stop_sequences"], json!(["X"]));
        assert!(
            w.headers
                .contains(&("anthropic-version".into(), API_VERSION.into()))
        );
        assert!(w.headers.contains(&("x-api-key".into(), "k".into())));
    }

    /// The usage of Anthropic's prompt-caching documentation ("1-hour cache
    /// duration": `cache_creation` broken down by lifetime), in a stream.
    const CACHE_WRITES: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01CacheWrites\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-5-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":2048,\"cache_creation_input_tokens\":248,\"cache_read_input_tokens\":1800,\"cache_creation\":{\"ephemeral_5m_input_tokens\":148,\"ephemeral_1h_input_tokens\":100},\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Cached.\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":503}}\n\n\
event: message_stop\n\
data: {\"type\":\"message_stop\"}\n\n";

    fn sonnet(
        cache_write: Option<&str>,
        cache_write_1h: Option<&str>,
    ) -> crate::catalog::ModelPrice {
        use crate::money::Price;
        let p = |s: &str| Price::from_usd_per_mtok(s).unwrap();
        crate::catalog::ModelPrice {
            cache_write: cache_write.map(p),
            cache_write_1h: cache_write_1h.map(p),
            ..crate::catalog::ModelPrice::new(p("3"), p("15"), Some(p("0.30")))
        }
    }

    #[test]
    fn cache_writes_by_lifetime_are_priced_at_the_write_rates() {
        for size in [1, 7, CACHE_WRITES.len()] {
            let (events, end) = replay(CACHE_WRITES, size);
            end.unwrap();
            assert_eq!(text(&events), "Cached.");
            let u = last_usage(&events);
            // input_tokens excludes both cache reads and writes: 2048 + 1800 + 248.
            assert_eq!(u.input_tokens, Some(4096));
            assert_eq!(u.cached_input_tokens, Some(1800));
            assert_eq!(u.cache_write_tokens, Some(248));
            assert_eq!(u.cache_write_1h_tokens, Some(100));
            assert_eq!(u.output_tokens, Some(503));
            // At $3 in / $15 out / $0.30 cache reads, writes at the
            // multipliers (1.25x = $3.75, 2x = $6), in pico-dollars:
            //   2048 × 3_000_000 = 6_144_000_000   input after the breakpoints
            //   1800 ×   300_000 =   540_000_000   cache reads
            //    148 × 3_750_000 =   555_000_000   5-minute writes
            //    100 × 6_000_000 =   600_000_000   1-hour writes
            //    503 × 15_000_000 = 7_545_000_000  output
            //                     = 15_384_000_000 p$ = 15_384_000 n$ ($0.015384)
            let cost = crate::attempt::cost_of(&u, &sonnet(None, None)).unwrap();
            assert_eq!(cost.nanos(), 15_384_000);
            // The price table wins over the multipliers: writes at $4 / $5:
            //   148 × 4_000_000 = 592_000_000; 100 × 5_000_000 = 500_000_000
            //   6_144 + 540 + 592 + 500 + 7_545 = 15_321 (× 10^6 p$)
            let cost = crate::attempt::cost_of(&u, &sonnet(Some("4"), Some("5"))).unwrap();
            assert_eq!(cost.nanos(), 15_321_000);
        }
    }

    #[test]
    fn cache_writes_without_a_breakdown_are_five_minute_writes() {
        // The non-streaming response of the prompt-caching docs' first call.
        let body = r#"{"id":"msg_01","type":"message","role":"assistant","content":[{"type":"text","text":"ok"}],"model":"claude-sonnet-5-5","stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":21,"cache_creation_input_tokens":188086,"cache_read_input_tokens":0,"output_tokens":393}}"#;
        let ev = parse_response(body).unwrap();
        let u = last_usage(&ev);
        assert_eq!(u.input_tokens, Some(21 + 188_086));
        assert_eq!(u.cache_write_tokens, Some(188_086));
        assert_eq!(u.cache_write_1h_tokens, None, "not reported is not zero");
        //     21 ×  3_000_000 =        63_000_000
        // 188086 ×  3_750_000 =   705_322_500_000
        //    393 × 15_000_000 =     5_895_000_000
        //                     =   711_280_500_000 p$ = 711_280_500 n$
        let cost = crate::attempt::cost_of(&u, &sonnet(None, None)).unwrap();
        assert_eq!(cost.nanos(), 711_280_500);
    }

    #[test]
    fn credit_balance_too_low_is_billing_and_other_invalid_requests_are_not() {
        let p = ProviderConfig::custom("an", ProviderKind::Anthropic, "http://127.0.0.1:9");
        let classify = |status, body| fixture::classify_body(&p, status, body);
        let e = classify(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Billing);
        assert!(e.allows_fallback() && !e.is_retryable());
        let e = classify(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate between "user" and "assistant""}}"#,
        );
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(!e.allows_fallback());
    }

    #[test]
    fn non_streaming_and_error_bodies() {
        let body = r#"{"id":"m","type":"message","role":"assistant","content":[{"type":"text","text":"Hi!"}],"stop_reason":"max_tokens","usage":{"input_tokens":3,"output_tokens":9}}"#;
        let ev = parse_response(body).unwrap();
        assert_eq!(text(&ev), "Hi!");
        assert!(ev.contains(&StreamEvent::Finish(FinishReason::Length)));
        assert_eq!(last_usage(&ev).output_tokens, Some(9));
        let e = error_body(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(classify(529, &e), ErrorKind::Overloaded);
        let e = error_body(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
        );
        assert_eq!(classify(400, &e), ErrorKind::ContextTooLong);
    }
}
