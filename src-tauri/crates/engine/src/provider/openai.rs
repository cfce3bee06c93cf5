//! OpenAI chat completions, as spoken by OpenAI and every compatible server
//! (OpenRouter, Groq, Mistral, DeepSeek, xAI, Together, Fireworks, Ollama,
//! LM Studio, llama.cpp, vLLM).
//!
//! Stream: `data: {chunk}` lines ending with `data: [DONE]`. Usage arrives
//! in a last chunk with `choices: []` when `stream_options.include_usage` is
//! set, but some servers put it on a chunk that still has choices, after the
//! finish chunk, or with `choices: null`; all are read. OpenRouter adds
//! comment lines, `usage.cost` (read from the JSON number's own text, so
//! `1.2e-7` is exact; with the user's own key, `cost_details.
//! upstream_inference_cost` is what was billed), and mid-stream errors as a
//! chunk with a top-level `error` and `finish_reason: "error"`. xAI counts
//! `reasoning_tokens` beside `completion_tokens`: a preset quirk flag
//! ([`ProviderConfig::reasoning_outside_completion`]) adds them back.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{
    ErrorBody, MaxTokensField, Protocol, ProviderConfig, StreamParser, finish_reason, interrupted,
    malformed, stream_error,
};
use crate::attach::{Accepts, Attachment, MediaKind};
use crate::catalog::{ModelInfo, ModelPrice, PriceSource};
use crate::chat::{ChatRequest, FinishReason, Message, Role, StreamEvent, Usage};
use crate::error::ProviderError;
use crate::money::{Cost, Price};
use crate::sse::SseEvent;

/// The OpenAI chat completions protocol.
#[derive(Debug, Clone, Copy)]
pub struct OpenAi;

impl Protocol for OpenAi {
    fn auth_headers(&self, key: Option<&str>) -> Vec<(String, String)> {
        key.map(|k| ("authorization".to_owned(), format!("Bearer {k}")))
            .into_iter()
            .collect()
    }

    fn chat_request(
        &self,
        provider: &ProviderConfig,
        req: &ChatRequest,
        stream: bool,
    ) -> (String, Value) {
        let mut messages = Vec::with_capacity(req.messages.len() + 1);
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(json!({ "role": "system", "content": system }));
        }
        for m in &req.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({ "role": role, "content": content(m) }));
        }
        let mut body = json!({ "model": req.model, "messages": messages, "stream": stream });
        if stream && provider.stream_usage {
            body["stream_options"] = json!({ "include_usage": true });
        }
        let p = &req.params;
        if let Some(t) = p.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(t) = p.top_p {
            body["top_p"] = json!(t);
        }
        if let Some(n) = p.max_tokens {
            let field = match provider.max_tokens_field {
                MaxTokensField::MaxTokens => "max_tokens",
                MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            };
            body[field] = json!(n);
        }
        if !p.stop.is_empty() {
            body["stop"] = json!(p.stop);
        }
        (format!("{}/chat/completions", provider.base_url), body)
    }

    fn parser(&self, provider: &ProviderConfig) -> StreamParser {
        StreamParser::OpenAi(Parser::new(
            provider.id.clone(),
            provider.reasoning_outside_completion,
        ))
    }

    fn parse_response(
        &self,
        provider: &ProviderConfig,
        body: &str,
    ) -> Result<Vec<StreamEvent>, serde_json::Error> {
        parse_response(provider.reasoning_outside_completion, body)
    }

    fn error_body(&self, body: &str) -> ErrorBody {
        error_body(body)
    }

    fn models_url(&self, provider: &ProviderConfig) -> String {
        format!("{}/models", provider.base_url)
    }

    fn parse_models(&self, doc: &Value) -> Vec<ModelInfo> {
        parse_models(doc)
    }
}

/// A message's `content`: the plain string for text alone (what every
/// compatible server takes), else parts: each attachment (an `image_url`
/// data URL, or a `file` part with `file_data` for a PDF), then the text.
fn content(m: &Message) -> Value {
    if m.attachments.is_empty() {
        return json!(m.content);
    }
    let mut parts: Vec<Value> = m.attachments.iter().map(attachment_part).collect();
    if !m.content.is_empty() {
        parts.push(json!({ "type": "text", "text": m.content }));
    }
    Value::Array(parts)
}

fn attachment_part(a: &Attachment) -> Value {
    match a.kind() {
        MediaKind::Image => json!({ "type": "image_url", "image_url": { "url": a.data_url() } }),
        MediaKind::Pdf => json!({
            "type": "file",
            "file": { "filename": a.file_name(), "file_data": a.data_url() },
        }),
    }
}

/// An OpenAI-style model list (`{"data": [{"id": ...}]}`). OpenRouter's
/// entries also carry `pricing` per token, `context_length`, and the
/// input modalities each model takes (`architecture.input_modalities`:
/// `image`, `file` for PDFs).
fn parse_models(doc: &Value) -> Vec<ModelInfo> {
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let per_token = |v: &Value, k: &str| {
        v.pointer(&format!("/pricing/{k}"))
            .and_then(Value::as_str)
            .and_then(|s| Price::from_usd_per_token(s).ok())
    };
    let mut out = Vec::new();
    for item in doc
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = str_of(item, "id") else {
            continue;
        };
        let price = match (per_token(item, "prompt"), per_token(item, "completion")) {
            (Some(input), Some(output)) => Some(ModelPrice {
                cache_write: per_token(item, "input_cache_write"),
                ..ModelPrice::new(input, output, per_token(item, "input_cache_read"))
            }),
            _ => None,
        };
        let accepts = item
            .pointer("/architecture/input_modalities")
            .and_then(Value::as_array)
            .map(|mods| {
                let mut kinds = Vec::new();
                if mods.iter().any(|m| m == "image") {
                    kinds.push(MediaKind::Image);
                }
                if mods.iter().any(|m| m == "file") {
                    kinds.push(MediaKind::Pdf);
                }
                Accepts(kinds)
            });
        out.push(ModelInfo {
            name: str_of(item, "name"),
            context_window: item.get("context_length").and_then(Value::as_u64),
            max_output_tokens: item
                .pointer("/top_provider/max_completion_tokens")
                .and_then(Value::as_u64),
            price,
            accepts,
            source: PriceSource::Live,
            id,
        });
    }
    out
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Content>,
    #[serde(default)]
    message: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    content: Option<String>,
    /// DeepSeek, vLLM, LM Studio.
    #[serde(default)]
    reasoning_content: Option<String>,
    /// OpenRouter, Groq.
    #[serde(default)]
    reasoning: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// OpenRouter: USD, as the JSON number's own text (`1.2e-7` included),
    /// so it is read exactly rather than through a float.
    #[serde(default)]
    cost: Option<Box<RawValue>>,
    /// OpenRouter: the request ran on the user's own provider key.
    #[serde(default)]
    is_byok: Option<bool>,
    #[serde(default)]
    cost_details: Option<CostDetails>,
}

#[derive(Deserialize)]
struct CostDetails {
    /// What the upstream provider charged (for BYOK, charged to the
    /// user's own key rather than to OpenRouter credits).
    #[serde(default)]
    upstream_inference_cost: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

fn usage_event(u: WireUsage, reasoning_outside_completion: bool) -> StreamEvent {
    let reasoning = u
        .completion_tokens_details
        .as_ref()
        .and_then(|d| d.reasoning_tokens);
    // xAI counts reasoning beside the completion (total = prompt +
    // completion + reasoning); everywhere else it is part of it.
    let output = if reasoning_outside_completion {
        u.completion_tokens.map(|c| c + reasoning.unwrap_or(0))
    } else {
        u.completion_tokens
    };
    let usage = Usage {
        input_tokens: u.prompt_tokens,
        output_tokens: output,
        cached_input_tokens: u
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens),
        reasoning_tokens: reasoning,
        ..Usage::default()
    };
    StreamEvent::Usage {
        usage,
        reported_cost: reported_cost(&u),
    }
}

/// What OpenRouter says the request cost the user. Normally `cost` (its
/// credits, upstream included). With the user's own key (BYOK) the
/// provider bills that key for `upstream_inference_cost` and `cost` is only
/// OpenRouter's fee (often 0): the charge is the sum.
fn reported_cost(u: &WireUsage) -> Option<Cost> {
    let amount = |raw: &Option<Box<RawValue>>| {
        raw.as_deref()
            .and_then(|r| Cost::from_usd(r.get()).ok())
            .filter(|c| *c >= Cost::ZERO)
    };
    let cost = amount(&u.cost);
    let upstream = u
        .cost_details
        .as_ref()
        .and_then(|d| amount(&d.upstream_inference_cost));
    match (cost, upstream) {
        (fee, Some(up)) if u.is_byok == Some(true) => Some(fee.unwrap_or(Cost::ZERO) + up),
        (Some(fee), Some(up)) if fee == Cost::ZERO => Some(up),
        (fee, _) => fee,
    }
}

fn push_content(c: Content, out: &mut Vec<StreamEvent>) {
    if let Some(r) = c
        .reasoning_content
        .or(c.reasoning)
        .filter(|r| !r.is_empty())
    {
        out.push(StreamEvent::ReasoningDelta(r));
    }
    if let Some(t) = c.content.filter(|t| !t.is_empty()) {
        out.push(StreamEvent::TextDelta(t));
    }
}

/// Reads the error object of an OpenAI-style body (`{"error": {...}}`, or a
/// bare `{"message": ...}` as some compatible servers send).
fn error_body(body: &str) -> ErrorBody {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return ErrorBody::default();
    };
    error_value(v.get("error").unwrap_or(&v))
}

fn error_value(e: &Value) -> ErrorBody {
    let text = |k: &str| {
        e.get(k).and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
    };
    let mut codes = Vec::new();
    for k in ["code", "type", "status"] {
        if let Some(c) = text(k) {
            codes.push(c.to_ascii_lowercase());
        }
    }
    let message = match e {
        Value::String(s) => Some(s.clone()),
        _ => text("message"),
    };
    ErrorBody {
        message,
        codes,
        retry_after: None,
    }
}

/// OpenRouter's mid-stream error chunk; it puts the upstream HTTP status
/// in `code`.
fn chunk_error(provider: &str, e: &Value, raw: &str) -> ProviderError {
    let status = e
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok());
    stream_error(provider, status, error_value(e), raw)
}

/// Streaming parser state.
#[derive(Debug)]
pub struct Parser {
    provider: String,
    reasoning_outside_completion: bool,
    done: bool,
    finished: bool,
}

impl Parser {
    fn new(provider: String, reasoning_outside_completion: bool) -> Self {
        Self {
            provider,
            reasoning_outside_completion,
            done: false,
            finished: false,
        }
    }

    pub(super) fn on_event(
        &mut self,
        ev: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Chunk =
            serde_json::from_str(data).map_err(|e| malformed(&self.provider, data, &e))?;
        if let Some(e) = &chunk.error {
            return Err(chunk_error(&self.provider, e, data));
        }
        for choice in chunk.choices.into_iter().flatten() {
            if let Some(c) = choice.delta.or(choice.message) {
                push_content(c, out);
            }
            if let Some(r) = choice.finish_reason {
                self.finished = true;
                out.push(StreamEvent::Finish(finish_reason(&r)));
            }
        }
        if let Some(u) = chunk.usage {
            out.push(usage_event(u, self.reasoning_outside_completion));
        }
        Ok(())
    }

    pub(super) fn on_end(&mut self) -> Result<(), ProviderError> {
        // A server that finished its answer but skipped `[DONE]` is accepted.
        if self.done || self.finished {
            Ok(())
        } else {
            Err(interrupted(&self.provider, "a finish reason or [DONE]"))
        }
    }
}

fn parse_response(
    reasoning_outside_completion: bool,
    body: &str,
) -> Result<Vec<StreamEvent>, serde_json::Error> {
    let chunk: Chunk = serde_json::from_str(body)?;
    let mut out = Vec::new();
    for choice in chunk.choices.into_iter().flatten() {
        if let Some(c) = choice.message.or(choice.delta) {
            push_content(c, &mut out);
        }
        out.push(StreamEvent::Finish(
            choice
                .finish_reason
                .as_deref()
                .map_or(FinishReason::Other, finish_reason),
        ));
    }
    if let Some(u) = chunk.usage {
        out.push(usage_event(u, reasoning_outside_completion));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::fixture::{self, last_usage, text};

    fn replay(f: &str, size: usize) -> (Vec<StreamEvent>, Result<(), ProviderError>) {
        fixture::replay(ProviderKind::OpenAi, f, size)
    }
    use crate::chat::Params;
    use crate::error::ErrorKind;
    use crate::provider::{ProviderKind, classify};

    fn provider() -> ProviderConfig {
        ProviderConfig::custom("oa", ProviderKind::OpenAi, "http://127.0.0.1:9/v1/")
    }

    const STANDARD: &str = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Grüße \"},\"finish_reason\":null}],\"obfuscation\":\"x1\"}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"🎉 done\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17,\"prompt_tokens_details\":{\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n\
data: [DONE]\n\n";

    #[test]
    fn standard_stream_with_usage_only_final_chunk_at_every_split() {
        for size in [1, 2, 3, 7, 64, STANDARD.len()] {
            let (events, end) = replay(STANDARD, size);
            end.unwrap();
            assert_eq!(text(&events), "Grüße 🎉 done", "split {size}");
            let (u, cost) = last_usage(&events).unwrap();
            assert_eq!(u.input_tokens, Some(12));
            assert_eq!(u.output_tokens, Some(5));
            assert_eq!(u.cached_input_tokens, Some(4));
            assert_eq!(u.reasoning_tokens, Some(0));
            assert_eq!(cost, None);
            assert!(events.contains(&StreamEvent::Finish(FinishReason::Stop)));
        }
    }

    #[test]
    fn crlf_and_openrouter_comments_and_cost() {
        let fixture = ": OPENROUTER PROCESSING\r\n\r\n\
data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\r\n\r\n\
: OPENROUTER PROCESSING\r\n\r\n\
data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\r\n\r\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"cost\":0.0000123}}\r\n\r\n\
data: [DONE]\r\n\r\n";
        for size in [1, 5, fixture.len()] {
            let (events, end) = replay(fixture, size);
            end.unwrap();
            assert_eq!(text(&events), "Hi");
            assert!(events.contains(&StreamEvent::Finish(FinishReason::Length)));
            let (_, cost) = last_usage(&events).unwrap();
            assert_eq!(cost, Some(Cost::from_nanos(12_300)));
        }
    }

    #[test]
    fn usage_on_a_non_empty_chunk_and_choices_null() {
        let on_content = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        let (events, end) = replay(on_content, 4);
        end.unwrap();
        assert_eq!(text(&events), "a");
        assert_eq!(last_usage(&events).unwrap().0.input_tokens, Some(9));

        let vllm = "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":null,\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n";
        let (events, end) = replay(vllm, 3);
        end.unwrap();
        let u = last_usage(&events).unwrap().0;
        assert_eq!((u.input_tokens, u.output_tokens), (Some(2), Some(7)));
        assert_eq!(u.cached_input_tokens, None, "not reported is not zero");
    }

    #[test]
    fn reasoning_fields_are_read() {
        let f = "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"think\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"reasoning\":\"more\",\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let (events, end) = replay(f, 10);
        end.unwrap();
        assert_eq!(events[0], StreamEvent::ReasoningDelta("think".into()));
        assert_eq!(events[1], StreamEvent::ReasoningDelta("more".into()));
        assert_eq!(text(&events), "ok");
    }

    #[test]
    fn a_cut_stream_is_interrupted_and_keeps_its_text() {
        let cut = "data: {\"choices\":[{\"delta\":{\"content\":\"partial \"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"answer\"}}]}\n\n";
        let (events, end) = replay(cut, 8);
        assert_eq!(text(&events), "partial answer");
        assert_eq!(end.unwrap_err().kind, ErrorKind::Interrupted);
    }

    #[test]
    fn mid_stream_error_event_from_openrouter() {
        let f = "data: {\"choices\":[{\"delta\":{\"content\":\"so far\"}}]}\n\n\
data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"error\":{\"code\":502,\"message\":\"Upstream provider error\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n";
        let (events, end) = replay(f, 16);
        assert_eq!(text(&events), "so far");
        let err = end.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Overloaded);
        assert_eq!(err.status, Some(502));
        assert_eq!(err.message, "Upstream provider error");
    }

    #[test]
    fn a_garbage_line_is_malformed() {
        let f = "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: {not json\n\n";
        let (events, end) = replay(f, 5);
        assert_eq!(text(&events), "ok");
        let err = end.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        assert_eq!(err.raw.as_deref(), Some("{not json"));
    }

    #[test]
    fn requests_map_system_params_and_stop() {
        let mut req = ChatRequest::new("gpt-x", "hello");
        req.system = Some("be brief".into());
        req.messages.insert(0, Message::user("earlier"));
        req.messages.insert(1, Message::assistant("reply"));
        req.params = Params {
            temperature: Some(0.5),
            top_p: Some(0.9),
            max_tokens: Some(64),
            stop: vec!["END".into()],
        };
        let w = crate::provider::build_request(&provider(), Some("sk-1"), &req, true);
        assert_eq!(w.url, "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(
            w.body["messages"][0],
            json!({"role":"system","content":"be brief"})
        );
        assert_eq!(w.body["messages"][2]["role"], "assistant");
        assert_eq!(w.body["stream_options"]["include_usage"], true);
        assert_eq!(w.body["max_tokens"], 64);
        assert_eq!(w.body["stop"], json!(["END"]));
        assert_eq!(w.body["temperature"], 0.5);
        assert!(
            w.headers
                .contains(&("authorization".into(), "Bearer sk-1".into()))
        );
        let mut p = provider();
        p.max_tokens_field = MaxTokensField::MaxCompletionTokens;
        p.stream_usage = false;
        let w = crate::provider::build_request(&p, None, &req, true);
        assert_eq!(w.body["max_completion_tokens"], 64);
        assert!(w.body.get("stream_options").is_none());
        assert!(!w.headers.iter().any(|(k, _)| k == "authorization"));
    }

    #[test]
    fn attachments_go_before_the_text_as_data_urls() {
        use switchboard_mock::samples;
        let png =
            crate::attach::Attachment::from_bytes(samples::png(3, 2, 5), Some("a.png")).unwrap();
        let pdf =
            crate::attach::Attachment::from_bytes(samples::pdf(2, "x"), Some("r.pdf")).unwrap();
        let mut req = ChatRequest::new("gpt-x", "");
        req.messages = vec![
            crate::chat::Message::user_with("what is this?", vec![png.clone(), pdf.clone()]),
            crate::chat::Message::assistant("a chart"),
            crate::chat::Message::user("thanks"),
        ];
        let w = crate::provider::build_request(&provider(), None, &req, true);
        let first = &w.body["messages"][0]["content"];
        assert_eq!(
            first[0],
            json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", png.base64())}})
        );
        assert_eq!(
            first[1],
            json!({"type": "file", "file": {"filename": "r.pdf", "file_data": format!("data:application/pdf;base64,{}", pdf.base64())}})
        );
        assert_eq!(first[2], json!({"type": "text", "text": "what is this?"}));
        assert_eq!(first.as_array().unwrap().len(), 3);
        // Text-only turns stay plain strings, as every compatible server takes them.
        assert_eq!(w.body["messages"][1]["content"], "a chart");
        assert_eq!(w.body["messages"][2]["content"], "thanks");
    }

    #[test]
    fn model_lists_use_the_chat_auth_and_read_openrouter_modalities() {
        let w = crate::provider::models_request(&provider(), Some("sk-9"));
        assert_eq!(w.url, "http://127.0.0.1:9/v1/models");
        assert!(
            w.headers
                .contains(&("authorization".into(), "Bearer sk-9".into()))
        );
        let doc = json!({"data": [
            {"id": "a/vision", "architecture": {"input_modalities": ["text", "image", "file"]}},
            {"id": "b/text", "architecture": {"input_modalities": ["text"]}},
            {"id": "c/unknown"}
        ]});
        let models = crate::provider::parse_model_list(ProviderKind::OpenAi, &doc);
        assert_eq!(models[0].accepts, Some(crate::attach::Accepts::all()));
        assert_eq!(models[1].accepts, Some(crate::attach::Accepts(vec![])));
        assert_eq!(models[2].accepts, None);
    }

    #[test]
    fn non_streaming_response() {
        let body = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        let events = parse_response(false, body).unwrap();
        assert_eq!(text(&events), "Hello!");
        assert!(events.contains(&StreamEvent::Finish(FinishReason::Stop)));
        assert_eq!(last_usage(&events).unwrap().0.output_tokens, Some(2));
    }

    /// xAI's documented usage for a reasoning model: `reasoning_tokens`
    /// sit beside `completion_tokens` (32 + 9 + 94 = 135 = total_tokens).
    const XAI_REASONING: &str = "data: {\"id\":\"3d3e6b2c-1d2e-4e2a-9f55-1c8a6f0b7e11\",\"object\":\"chat.completion.chunk\",\"created\":1752000000,\"model\":\"grok-4.20-0309-reasoning\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\",\"role\":\"assistant\"}}],\"system_fingerprint\":\"fp_9a1b2c3d4e\"}\n\n\
data: {\"id\":\"3d3e6b2c-1d2e-4e2a-9f55-1c8a6f0b7e11\",\"object\":\"chat.completion.chunk\",\"created\":1752000000,\"model\":\"grok-4.20-0309-reasoning\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":32,\"completion_tokens\":9,\"total_tokens\":135,\"prompt_tokens_details\":{\"text_tokens\":32,\"audio_tokens\":0,\"image_tokens\":0,\"cached_tokens\":6},\"completion_tokens_details\":{\"reasoning_tokens\":94,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0},\"num_sources_used\":0},\"system_fingerprint\":\"fp_9a1b2c3d4e\"}\n\n\
data: [DONE]\n\n";

    #[test]
    fn xai_reasoning_outside_completion_is_billed_as_output() {
        use crate::catalog::Catalog;
        let xai = ProviderConfig::from_preset("xai").unwrap();
        assert!(xai.reasoning_outside_completion, "the preset's quirk flag");
        let price = Catalog::new()
            .price(&xai, "grok-4.20-0309-reasoning")
            .unwrap();
        for size in [1, 9, XAI_REASONING.len()] {
            let (events, end) = fixture::replay_as(&xai, XAI_REASONING, size);
            end.unwrap();
            assert_eq!(text(&events), "Hi there");
            let (u, cost) = last_usage(&events).unwrap();
            assert_eq!(cost, None);
            assert_eq!(u.output_tokens, Some(9 + 94), "every generated token");
            assert_eq!(u.reasoning_tokens, Some(94));
            assert_eq!(u.cached_input_tokens, Some(6));
            // At the bundled $1.25 in / $0.20 cached / $2.50 out, in p$:
            //    26 × 1_250_000 =  32_500_000   input, not cached
            //     6 ×   200_000 =   1_200_000   cached
            //   103 × 2_500_000 = 257_500_000   output, reasoning included
            //                   = 291_200_000 p$ = 291_200 n$
            assert_eq!(
                crate::attempt::cost_of(&u, &price).unwrap().nanos(),
                291_200
            );
        }
        // Read as any other OpenAI-compatible server would, the 94 reasoning
        // tokens would go unbilled: 9 × 2_500_000 → 56_200 n$.
        let (events, _) = replay(XAI_REASONING, 64);
        let (u, _) = last_usage(&events).unwrap();
        assert_eq!(u.output_tokens, Some(9));
        assert_eq!(crate::attempt::cost_of(&u, &price).unwrap().nanos(), 56_200);
    }

    /// An OpenRouter final chunk, as its usage-accounting docs show it,
    /// with `cost` as the JSON number `text`.
    fn openrouter_usage(usage: &str) -> String {
        format!(
            "data: {{\"id\":\"gen-1752000000-abc\",\"provider\":\"Anthropic\",\"model\":\"anthropic/claude-sonnet-5.5\",\"object\":\"chat.completion.chunk\",\"created\":1752000000,\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"ok\"}},\"finish_reason\":\"stop\",\"native_finish_reason\":\"stop\",\"logprobs\":null}}]}}\n\n\
: OPENROUTER PROCESSING\n\n\
data: {{\"id\":\"gen-1752000000-abc\",\"provider\":\"Anthropic\",\"model\":\"anthropic/claude-sonnet-5.5\",\"object\":\"chat.completion.chunk\",\"created\":1752000000,\"choices\":[],\"usage\":{usage}}}\n\n\
data: [DONE]\n\n"
        )
    }

    fn reported(usage: &str) -> Option<Cost> {
        let f = openrouter_usage(usage);
        let (events, end) = replay(&f, 13);
        end.unwrap();
        last_usage(&events).unwrap().1
    }

    #[test]
    fn openrouter_cost_in_any_json_number_form_is_read_exactly() {
        let u = |cost: &str| {
            format!(
                "{{\"prompt_tokens\":194,\"completion_tokens\":2,\"total_tokens\":196,\"cost\":{cost},\"is_byok\":false,\"prompt_tokens_details\":{{\"cached_tokens\":0,\"audio_tokens\":0}},\"cost_details\":{{\"upstream_inference_cost\":null}},\"completion_tokens_details\":{{\"reasoning_tokens\":0}}}}"
            )
        };
        // 1.2e-7 USD = 120 n$.
        assert_eq!(reported(&u("1.2e-7")), Some(Cost::from_nanos(120)));
        assert_eq!(reported(&u("1.2E-7")), Some(Cost::from_nanos(120)));
        assert_eq!(reported(&u("0.00000012")), Some(Cost::from_nanos(120)));
        // 0.000584 USD = 584_000 n$.
        assert_eq!(reported(&u("5.84e-4")), Some(Cost::from_nanos(584_000)));
        assert_eq!(reported(&u("0")), Some(Cost::ZERO), "a free model costs 0");
        // 1.249999999999999999e-8 USD = 12.49999… n$ → 12. A float cannot
        // hold it: it becomes 1.25e-8, which would round to 13.
        assert_eq!(
            reported(&u("0.00000001249999999999999999")),
            Some(Cost::from_nanos(12))
        );
        // 1.234567890123456789e-7 USD = 123.456… n$ → 123.
        assert_eq!(
            reported(&u("1.234567890123456789e-7")),
            Some(Cost::from_nanos(123))
        );
    }

    #[test]
    fn openrouter_byok_bills_the_upstream_cost() {
        // BYOK: OpenRouter's fee is `cost` (0 here); the provider billed the
        // user's own key 0.00019 USD = 190_000 n$.
        let byok = r#"{"prompt_tokens":194,"completion_tokens":2,"total_tokens":196,"cost":0,"is_byok":true,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"cost_details":{"upstream_inference_cost":0.00019,"upstream_inference_prompt_cost":0.000184,"upstream_inference_completions_cost":0.000006},"completion_tokens_details":{"reasoning_tokens":0}}"#;
        assert_eq!(reported(byok), Some(Cost::from_nanos(190_000)));
        // A BYOK fee on top: 9.5e-6 + 1.9e-4 = 0.0001995 USD = 199_500 n$.
        let with_fee = byok.replace("\"cost\":0,", "\"cost\":9.5e-6,");
        assert_eq!(reported(&with_fee), Some(Cost::from_nanos(199_500)));
        // No is_byok flag, but cost 0 beside an upstream charge: the upstream charge.
        let unflagged = byok.replace("\"is_byok\":true,", "");
        assert_eq!(reported(&unflagged), Some(Cost::from_nanos(190_000)));
        // Not BYOK: `cost` already includes what OpenRouter paid upstream.
        let credits = byok
            .replace("\"cost\":0,", "\"cost\":0.00019,")
            .replace("\"is_byok\":true", "\"is_byok\":false");
        assert_eq!(reported(&credits), Some(Cost::from_nanos(190_000)));
    }

    #[test]
    fn quota_billing_and_unsupported_parameters_are_classified_by_code() {
        let p = provider();
        let classify = |status, body| fixture::classify_body(&p, status, body);
        // HTTP 429 in form, but no wait refills an account.
        let e = classify(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Billing);
        assert!(!e.is_retryable() && e.allows_fallback());
        let e = classify(
            400,
            r#"{"error":{"message":"Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.","type":"invalid_request_error","param":"temperature","code":"unsupported_value"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Unsupported);
        assert!(e.allows_fallback());
        let e = classify(
            400,
            r#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Unsupported);
        let e = classify(
            403,
            r#"{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        // OpenRouter: out of credits.
        let e = classify(
            402,
            r#"{"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits","code":402}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Billing);
        // A plain malformed request still stops a route.
        let e = classify(
            400,
            r#"{"error":{"message":"'messages' must contain at least one message","type":"invalid_request_error","param":"messages","code":null}}"#,
        );
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(!e.allows_fallback());
        // 409 (a lock held elsewhere) and 408 are retried like the SDKs do.
        assert!(classify(409, "{}").is_retryable());
        assert!(classify(408, "").is_retryable());
    }

    #[test]
    fn error_bodies() {
        let e = error_body(
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        assert_eq!(e.message.as_deref(), Some("Incorrect API key provided"));
        assert_eq!(classify(401, &e), ErrorKind::Auth);
        let e = error_body(
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
        );
        assert_eq!(classify(400, &e), ErrorKind::ContextTooLong);
    }
}
