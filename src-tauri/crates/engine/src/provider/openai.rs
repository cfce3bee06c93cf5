//! OpenAI chat completions, as spoken by OpenAI and every compatible server
//! (OpenRouter, Groq, Mistral, DeepSeek, xAI, Together, Fireworks, Ollama,
//! LM Studio, llama.cpp, vLLM).
//!
//! Stream: `data: {chunk}` lines ending with `data: [DONE]`. Usage arrives
//! in a last chunk with `choices: []` when `stream_options.include_usage` is
//! set, but some servers put it on a chunk that still has choices, after the
//! finish chunk, or with `choices: null`; all are read. OpenRouter adds
//! comment lines, `usage.cost`, and mid-stream errors as a chunk with a
//! top-level `error` and `finish_reason: "error"`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ErrorBody, ProviderConfig, WireRequest, classify, finish_reason, interrupted, malformed,
};
use crate::chat::{ChatRequest, FinishReason, Role, StreamEvent, Usage};
use crate::error::ProviderError;
use crate::money::Cost;
use crate::sse::SseEvent;

pub(super) fn build_request(
    provider: &ProviderConfig,
    key: Option<&str>,
    req: &ChatRequest,
    stream: bool,
) -> WireRequest {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(json!({ "role": "system", "content": system }));
    }
    for m in &req.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({ "role": role, "content": m.content }));
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
            super::MaxTokensField::MaxTokens => "max_tokens",
            super::MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        };
        body[field] = json!(n);
    }
    if !p.stop.is_empty() {
        body["stop"] = json!(p.stop);
    }
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(k) = key {
        headers.push(("authorization".to_owned(), format!("Bearer {k}")));
    }
    WireRequest {
        url: format!("{}/chat/completions", provider.base_url),
        headers,
        body,
    }
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
    /// OpenRouter: USD.
    #[serde(default)]
    cost: Option<serde_json::Number>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

fn usage_event(u: WireUsage) -> StreamEvent {
    let usage = Usage {
        input_tokens: u.prompt_tokens,
        output_tokens: u.completion_tokens,
        cached_input_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
        reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens),
    };
    let reported_cost = u.cost.and_then(|n| Cost::from_usd(&n.to_string()).ok());
    StreamEvent::Usage {
        usage,
        reported_cost,
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
pub(super) fn error_body(body: &str) -> ErrorBody {
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
    ErrorBody { message, codes }
}

fn stream_error(provider: &str, e: &Value, raw: &str) -> ProviderError {
    let body = error_value(e);
    // OpenRouter puts the upstream HTTP status in `code`.
    let status = e
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok());
    let kind = classify(status.unwrap_or(0), &body);
    let mut err = ProviderError::new(
        kind,
        provider,
        body.message
            .unwrap_or_else(|| "the provider reported an error mid-stream".into()),
    )
    .with_raw(raw);
    err.status = status;
    err
}

/// Streaming parser state.
#[derive(Debug)]
pub struct Parser {
    provider: String,
    done: bool,
    finished: bool,
}

impl Parser {
    pub(super) fn new(provider: String) -> Self {
        Self {
            provider,
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
            return Err(stream_error(&self.provider, e, data));
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
            out.push(usage_event(u));
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

pub(super) fn parse_response(
    _provider: &str,
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
        out.push(usage_event(u));
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
    use crate::chat::{Message, Params};
    use crate::error::ErrorKind;
    use crate::provider::ProviderKind;

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
        let w = build_request(&provider(), Some("sk-1"), &req, true);
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
        p.max_tokens_field = super::super::MaxTokensField::MaxCompletionTokens;
        p.stream_usage = false;
        let w = build_request(&p, None, &req, true);
        assert_eq!(w.body["max_completion_tokens"], 64);
        assert!(w.body.get("stream_options").is_none());
        assert!(!w.headers.iter().any(|(k, _)| k == "authorization"));
    }

    #[test]
    fn non_streaming_response() {
        let body = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        let events = parse_response("oa", body).unwrap();
        assert_eq!(text(&events), "Hello!");
        assert!(events.contains(&StreamEvent::Finish(FinishReason::Stop)));
        assert_eq!(last_usage(&events).unwrap().0.output_tokens, Some(2));
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
