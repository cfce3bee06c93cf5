//! Google Gemini generateContent / streamGenerateContent. The key goes in
//! `x-goog-api-key`; the stream (`?alt=sse`) is bare `data:` lines with no
//! end marker (a stream that ends without a `finishReason` was cut); lines
//! may end in CRLF. `usageMetadata` is a running total in every chunk: the
//! last one counts, never the sum. Output tokens are candidates + thoughts.
//! A bad key is HTTP 400 with reason `API_KEY_INVALID`, not 401.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ErrorBody, Protocol, ProviderConfig, StreamParser, finish_reason, interrupted, malformed,
    stream_error,
};
use crate::attach::Attachment;
use crate::catalog::{ModelInfo, PriceSource};
use crate::chat::{ChatRequest, FinishReason, Message, Role, StreamEvent, Usage};
use crate::error::{ProviderError, parse_proto_duration};
use crate::sse::SseEvent;

/// The Gemini `generateContent` protocol.
#[derive(Debug, Clone, Copy)]
pub struct Gemini;

impl Protocol for Gemini {
    fn auth_headers(&self, key: Option<&str>) -> Vec<(String, String)> {
        key.map(|k| ("x-goog-api-key".to_owned(), k.to_owned()))
            .into_iter()
            .collect()
    }

    fn chat_request(
        &self,
        provider: &ProviderConfig,
        req: &ChatRequest,
        stream: bool,
    ) -> (String, Value) {
        let contents: Vec<Value> = req
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "model",
                };
                json!({ "role": role, "parts": parts(m) })
            })
            .collect();
        let mut body = json!({ "contents": contents });
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            body["systemInstruction"] = json!({ "parts": [{ "text": system }] });
        }
        let p = &req.params;
        let mut config = serde_json::Map::new();
        if let Some(t) = p.temperature {
            config.insert("temperature".into(), json!(t));
        }
        if let Some(t) = p.top_p {
            config.insert("topP".into(), json!(t));
        }
        if let Some(n) = p.max_tokens {
            config.insert("maxOutputTokens".into(), json!(n));
        }
        if !p.stop.is_empty() {
            config.insert("stopSequences".into(), json!(p.stop));
        }
        if !config.is_empty() {
            body["generationConfig"] = Value::Object(config);
        }
        let method = if stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        (
            format!("{}/v1beta/models/{}:{method}", provider.base_url, req.model),
            body,
        )
    }

    fn parser(&self, provider: &ProviderConfig) -> StreamParser {
        StreamParser::Gemini(Parser::new(provider.id.clone()))
    }

    fn parse_response(
        &self,
        provider: &ProviderConfig,
        body: &str,
    ) -> Result<Vec<StreamEvent>, serde_json::Error> {
        parse_response(&provider.id, body)
    }

    fn error_body(&self, body: &str) -> ErrorBody {
        error_body(body)
    }

    fn models_url(&self, provider: &ProviderConfig) -> String {
        format!("{}/v1beta/models?pageSize=1000", provider.base_url)
    }

    /// `{"models": [{"name": "models/x", "displayName", "inputTokenLimit",
    /// "outputTokenLimit", "supportedGenerationMethods"}]}`; models that
    /// cannot generate content are left out.
    fn parse_models(&self, doc: &Value) -> Vec<ModelInfo> {
        let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut out = Vec::new();
        for item in doc
            .get("models")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = str_of(item, "name") else {
                continue;
            };
            let methods = item
                .get("supportedGenerationMethods")
                .and_then(Value::as_array);
            if methods.is_some_and(|m| !m.iter().any(|x| x == "generateContent")) {
                continue;
            }
            out.push(ModelInfo {
                id: name.trim_start_matches("models/").to_owned(),
                name: str_of(item, "displayName"),
                context_window: item.get("inputTokenLimit").and_then(Value::as_u64),
                max_output_tokens: item.get("outputTokenLimit").and_then(Value::as_u64),
                price: None,
                accepts: None,
                source: PriceSource::Live,
            });
        }
        out
    }
}

/// A message's parts: each attachment as `inlineData` (its MIME type and
/// base64 data), then the text.
fn parts(m: &Message) -> Vec<Value> {
    let mut parts: Vec<Value> = m.attachments.iter().map(inline_data).collect();
    if !m.content.is_empty() || parts.is_empty() {
        parts.push(json!({ "text": m.content }));
    }
    parts
}

fn inline_data(a: &Attachment) -> Value {
    json!({ "inlineData": { "mimeType": a.media_type.mime(), "data": a.base64() } })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    usage_metadata: Option<WireUsage>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
}

impl WireUsage {
    fn normalized(&self) -> Usage {
        let output = match (self.candidates_token_count, self.thoughts_token_count) {
            (None, None) => None,
            (c, t) => Some(c.unwrap_or(0) + t.unwrap_or(0)),
        };
        Usage {
            input_tokens: self.prompt_token_count,
            output_tokens: output,
            cached_input_tokens: self.cached_content_token_count,
            reasoning_tokens: self.thoughts_token_count,
            ..Usage::default()
        }
    }
}

/// Reads `{"error":{"code","message","status","details":[{"reason"}]}}`.
fn error_body(body: &str) -> ErrorBody {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return ErrorBody::default();
    };
    // Some proxies wrap the error in a one-element array.
    let v = v.as_array().and_then(|a| a.first()).cloned().unwrap_or(v);
    error_value(v.get("error").unwrap_or(&v))
}

fn error_value(e: &Value) -> ErrorBody {
    let mut codes = Vec::new();
    if let Some(s) = e.get("status").and_then(Value::as_str) {
        codes.push(s.to_ascii_lowercase());
    }
    let mut retry_after = None;
    for d in e
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = d.get("reason").and_then(Value::as_str) {
            codes.push(r.to_ascii_lowercase());
        }
        // google.rpc.RetryInfo: {"@type": ".../google.rpc.RetryInfo", "retryDelay": "13s"}
        if let Some(delay) = d.get("retryDelay").and_then(Value::as_str) {
            retry_after = retry_after.or_else(|| parse_proto_duration(delay));
        }
    }
    let message = e.get("message").and_then(Value::as_str).map(str::to_owned);
    if message
        .as_deref()
        .is_some_and(|m| m.contains("API key not valid"))
    {
        codes.push("api_key_invalid".into());
    }
    ErrorBody {
        message,
        codes,
        retry_after,
    }
}

fn push_chunk(
    provider: &str,
    chunk: Chunk,
    raw: &str,
    finished: &mut bool,
    out: &mut Vec<StreamEvent>,
) -> Result<(), ProviderError> {
    if let Some(e) = &chunk.error {
        let status = e
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok());
        return Err(stream_error(provider, status, error_value(e), raw));
    }
    for cand in chunk.candidates.into_iter().take(1) {
        for part in cand.content.map(|c| c.parts).unwrap_or_default() {
            match part.text.filter(|t| !t.is_empty()) {
                Some(t) if part.thought => out.push(StreamEvent::ReasoningDelta(t)),
                Some(t) => out.push(StreamEvent::TextDelta(t)),
                None => {}
            }
        }
        if let Some(r) = cand
            .finish_reason
            .filter(|r| r != "FINISH_REASON_UNSPECIFIED")
        {
            *finished = true;
            out.push(StreamEvent::Finish(finish_reason(&r)));
        }
    }
    if chunk.prompt_feedback.and_then(|f| f.block_reason).is_some() {
        *finished = true;
        out.push(StreamEvent::Finish(FinishReason::ContentFilter));
    }
    if let Some(u) = chunk.usage_metadata {
        // A running total: the event replaces what came before.
        out.push(StreamEvent::Usage {
            usage: u.normalized(),
            reported_cost: None,
        });
    }
    Ok(())
}

/// Streaming parser state.
#[derive(Debug)]
pub struct Parser {
    provider: String,
    finished: bool,
}

impl Parser {
    fn new(provider: String) -> Self {
        Self {
            provider,
            finished: false,
        }
    }

    pub(super) fn on_event(
        &mut self,
        ev: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        if ev.data.trim().is_empty() {
            return Ok(());
        }
        let chunk: Chunk =
            serde_json::from_str(&ev.data).map_err(|e| malformed(&self.provider, &ev.data, &e))?;
        push_chunk(&self.provider, chunk, &ev.data, &mut self.finished, out)
    }

    pub(super) fn on_end(&mut self) -> Result<(), ProviderError> {
        if self.finished {
            Ok(())
        } else {
            Err(interrupted(&self.provider, "a finishReason"))
        }
    }
}

fn parse_response(provider: &str, body: &str) -> Result<Vec<StreamEvent>, serde_json::Error> {
    let chunk: Chunk = serde_json::from_str(body)?;
    let mut out = Vec::new();
    let mut finished = false;
    if let Err(e) = push_chunk(provider, chunk, body, &mut finished, &mut out) {
        out.push(StreamEvent::Error(e));
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
        fixture::replay(ProviderKind::Gemini, f, size)
    }
    use crate::error::ErrorKind;
    use crate::provider::ProviderKind;

    const STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"plan\",\"thought\":true}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 10,\"candidatesTokenCount\": 0,\"thoughtsTokenCount\": 4,\"totalTokenCount\": 14},\"modelVersion\": \"gemini-x\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Ciao \"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 10,\"candidatesTokenCount\": 2,\"thoughtsTokenCount\": 4,\"totalTokenCount\": 16}}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"mondo ✓\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 10,\"cachedContentTokenCount\": 6,\"candidatesTokenCount\": 5,\"thoughtsTokenCount\": 4,\"totalTokenCount\": 19}}\r\n\r\n";

    #[test]
    fn attachments_are_inline_data_parts_before_the_text() {
        use switchboard_mock::samples;
        let p = ProviderConfig::custom("g", ProviderKind::Gemini, "http://127.0.0.1:9");
        let webp = crate::attach::Attachment::from_bytes(
            samples::webp(samples::WebpKind::Lossless, 10, 10),
            None,
        )
        .unwrap();
        let mut req = ChatRequest::new("gemini-x", "");
        req.messages = vec![crate::chat::Message::user_with(
            "describe",
            vec![webp.clone()],
        )];
        let w = crate::provider::build_request(&p, Some("g"), &req, true);
        assert_eq!(
            w.body["contents"][0]["parts"],
            json!([
                {"inlineData": {"mimeType": "image/webp", "data": webp.base64()}},
                {"text": "describe"}
            ])
        );
        let m = crate::provider::models_request(&p, Some("g"));
        assert_eq!(m.url, "http://127.0.0.1:9/v1beta/models?pageSize=1000");
        assert!(m.headers.contains(&("x-goog-api-key".into(), "g".into())));
    }

    #[test]
    fn running_totals_take_the_last_and_thoughts_count_as_output() {
        for size in [1, 4, 33, STREAM.len()] {
            let (events, end) = replay(STREAM, size);
            end.unwrap();
            assert_eq!(text(&events), "Ciao mondo ✓");
            assert_eq!(events[0], StreamEvent::ReasoningDelta("plan".into()));
            let u = last_usage(&events);
            assert_eq!(u.input_tokens, Some(10));
            assert_eq!(
                u.output_tokens,
                Some(9),
                "5 candidates + 4 thoughts, not a sum of chunks"
            );
            assert_eq!(u.reasoning_tokens, Some(4));
            assert_eq!(u.cached_input_tokens, Some(6));
            assert!(events.contains(&StreamEvent::Finish(FinishReason::Stop)));
        }
    }

    #[test]
    fn a_stream_without_finish_reason_was_cut() {
        let cut = &STREAM[..STREAM.rfind("data:").unwrap()];
        let (events, end) = replay(cut, 7);
        assert_eq!(text(&events), "Ciao ");
        assert_eq!(end.unwrap_err().kind, ErrorKind::Interrupted);
    }

    #[test]
    fn mid_stream_error_chunk() {
        let f = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\ndata: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n";
        let (events, end) = replay(f, 6);
        assert_eq!(text(&events), "a");
        let e = end.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Overloaded);
        assert_eq!(e.status, Some(503));
    }

    #[test]
    fn missing_candidates_count_when_blocked() {
        let f = "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":7,\"totalTokenCount\":7}}\n\n";
        let (events, end) = replay(f, 5);
        end.unwrap();
        assert!(events.contains(&StreamEvent::Finish(FinishReason::ContentFilter)));
        let u = last_usage(&events);
        assert_eq!(u.input_tokens, Some(7));
        assert_eq!(u.output_tokens, None, "not reported is not zero");
    }

    #[test]
    fn bad_key_is_http_400_classified_as_auth() {
        let body = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        let p = ProviderConfig::custom("gm", ProviderKind::Gemini, "http://127.0.0.1:9");
        let e = fixture::classify_body(&p, 400, body);
        assert_eq!(e.kind, ErrorKind::Auth);
        assert_eq!(e.status, Some(400));
        assert!(e.message.starts_with("API key not valid"), "{}", e.message);
    }

    /// A long prompt to Gemini 2.5 Pro, usage as the API reference shows it.
    fn long_prompt(prompt: u64) -> String {
        format!(
            "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"Summary: \"}}],\"role\": \"model\"}},\"index\": 0}}],\"usageMetadata\": {{\"promptTokenCount\": {prompt},\"totalTokenCount\": {prompt},\"promptTokensDetails\": [{{\"modality\": \"TEXT\",\"tokenCount\": {prompt}}}]}},\"modelVersion\": \"gemini-2.5-pro\",\"responseId\": \"mock-long-1\"}}\r\n\r\n\
data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"text\": \"it is long.\"}}],\"role\": \"model\"}},\"finishReason\": \"STOP\",\"index\": 0}}],\"usageMetadata\": {{\"promptTokenCount\": {prompt},\"candidatesTokenCount\": 1000,\"totalTokenCount\": {total},\"promptTokensDetails\": [{{\"modality\": \"TEXT\",\"tokenCount\": {prompt}}}],\"thoughtsTokenCount\": 500}},\"modelVersion\": \"gemini-2.5-pro\",\"responseId\": \"mock-long-1\"}}\r\n\r\n",
            total = prompt + 1500
        )
    }

    #[test]
    fn prompts_over_200k_tokens_pay_the_long_context_tier() {
        let gemini = ProviderConfig::from_preset("gemini").unwrap();
        let price = crate::catalog::Catalog::new()
            .price(&gemini, "gemini-2.5-pro")
            .unwrap();
        let cost = |prompt: u64| {
            let f = long_prompt(prompt);
            let (events, end) = replay(&f, 29);
            end.unwrap();
            assert_eq!(text(&events), "Summary: it is long.");
            let u = last_usage(&events);
            assert_eq!(u.input_tokens, Some(prompt));
            assert_eq!(
                u.output_tokens,
                Some(1500),
                "1000 candidates + 500 thoughts"
            );
            crate::attempt::cost_of(&u, &price).unwrap().nanos()
        };
        // 200,000 prompt tokens: the base rates, $1.25 in / $10 out:
        //   200_000 × 1_250_000 p$ = 250_000_000 n$; 1500 × 10_000_000 p$ = 15_000_000 n$
        assert_eq!(cost(200_000), 265_000_000);
        // One more token and the whole request pays $2.50 in / $15 out:
        //   200_001 × 2_500_000 p$ = 500_002_500 n$; 1500 × 15_000_000 p$ = 22_500_000 n$
        assert_eq!(cost(200_001), 522_502_500);
        // 250,000: 625_000_000 + 22_500_000.
        assert_eq!(cost(250_000), 647_500_000);
        // Estimates (budget reservations, `cheapest`) use the tier too.
        assert_eq!(
            crate::attempt::estimate_cost(&price, 250_000, 1500).nanos(),
            647_500_000
        );
        assert_eq!(
            crate::attempt::estimate_cost(&price, 1000, 1500).nanos(),
            1_250_000 + 15_000_000
        );
    }

    #[test]
    fn retry_delay_and_unsupported_location_are_read_from_the_body() {
        let p = ProviderConfig::custom("gm", ProviderKind::Gemini, "http://127.0.0.1:9");
        let classify = |status, body| fixture::classify_body(&p, status, body);
        let quota = r#"{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
          {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"},
            "quotaValue": "5"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
      },
      {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "13s"
      }
    ]
  }
}"#;
        let e = classify(429, quota);
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(13)));
        // A header, when there is one, wins over the body.
        let e = super::super::classify_http(
            &p,
            429,
            super::super::RetryHeaders {
                retry_after: Some("2"),
                ..Default::default()
            },
            quota,
        );
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(2)));

        let e = classify(
            400,
            r#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.allows_fallback() && !e.is_retryable());
        let e = classify(
            400,
            r#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name "foo": Cannot find field.","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(e.kind, ErrorKind::BadRequest);
    }

    #[test]
    fn requests_use_system_instruction_and_model_role() {
        let p = ProviderConfig::custom("gm", ProviderKind::Gemini, "http://127.0.0.1:9");
        let mut req = ChatRequest::new("gemini-x", "hi");
        req.messages
            .insert(0, crate::chat::Message::assistant("earlier"));
        req.system = Some("sys".into());
        req.params.max_tokens = Some(10);
        let w = crate::provider::build_request(&p, Some("g"), &req, true);
        assert_eq!(
            w.url,
            "http://127.0.0.1:9/v1beta/models/gemini-x:streamGenerateContent?alt=sse"
        );
        assert_eq!(w.body["systemInstruction"]["parts"][0]["text"], "sys");
        assert_eq!(w.body["contents"][0]["role"], "model");
        assert_eq!(w.body["generationConfig"]["maxOutputTokens"], 10);
        assert!(w.headers.contains(&("x-goog-api-key".into(), "g".into())));
        let w = crate::provider::build_request(&p, None, &req, false);
        assert!(w.url.ends_with(":generateContent"));
    }
}
