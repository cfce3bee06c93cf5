//! Providers are a closed set of wire protocols ([`ProviderKind`]),
//! dispatched from one place ([`protocol`]). Vendors that speak a protocol
//! (OpenRouter, Groq, Ollama, ...) are configuration: a [`ProviderConfig`]
//! built from a preset in `data/presets.toml` and the user's `config.toml`.
//!
//! Every protocol module has the same shape, the [`Protocol`] trait: the
//! headers that authenticate a key (used for chat and for model lists
//! alike), a chat request's URL and body (attachments included), a
//! streaming parser and a complete-response parser, its error bodies read
//! into an [`ErrorBody`], and its model list. What they share lives here:
//! building the HTTP request around a protocol's parts ([`build_request`],
//! [`models_request`]), turning an error body into a classified
//! [`ProviderError`] ([`classify_http`] before a stream, [`stream_error`]
//! inside one), and finish reasons. A fourth protocol (OpenAI's Responses
//! API, say) is one new module, a [`ProviderKind`] variant and one arm in
//! [`protocol`] and [`StreamParser`].

pub mod anthropic;
pub mod gemini;
pub mod openai;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::attach::{Accepts, AttachmentLimits};
use crate::catalog::ModelInfo;
use crate::chat::{ChatRequest, FinishReason, StreamEvent};
use crate::error::{ErrorKind, ProviderError, retry_hint, truncate};
use crate::sse::SseEvent;

/// The wire protocols Switchboard speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    /// OpenAI chat completions, and every compatible server.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Google Gemini generateContent.
    #[serde(rename = "gemini")]
    Gemini,
}

impl ProviderKind {
    /// The name used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }
}

/// Which field carries the output limit (OpenAI's newer models want
/// `max_completion_tokens`; most compatible servers know only `max_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    /// `max_tokens`
    #[default]
    MaxTokens,
    /// `max_completion_tokens`
    MaxCompletionTokens,
}

/// A vendor preset, as written in `data/presets.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Display name.
    pub name: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Base URL as the vendor's SDK writes it; `None` for `custom`.
    pub base_url: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Ask for usage in streams (`stream_options.include_usage`).
    #[serde(default)]
    pub stream_usage: Option<bool>,
    /// Which field carries the output limit.
    #[serde(default)]
    pub max_tokens_field: MaxTokensField,
    /// A server on this machine or LAN; no key needed.
    #[serde(default)]
    pub local: bool,
    /// Where to get a key.
    #[serde(default)]
    pub key_url: Option<String>,
    /// The model list carries prices (OpenRouter).
    #[serde(default)]
    pub live_prices: bool,
    /// Usage reports `reasoning_tokens` beside `completion_tokens` rather
    /// than inside it (xAI); they are billed as output all the same.
    #[serde(default)]
    pub reasoning_outside_completion: bool,
    /// What the vendor accepts in one request: attachment sizes, pages.
    #[serde(default)]
    pub limits: AttachmentLimits,
    /// What a model of this preset that the catalog does not list takes
    /// besides text (every current Claude and Gemini model reads images
    /// and PDFs); a listed model's own `accepts` wins.
    #[serde(default)]
    pub accepts: Option<Accepts>,
}

/// Every bundled preset, by id.
pub fn presets() -> &'static BTreeMap<String, Preset> {
    static PRESETS: OnceLock<BTreeMap<String, Preset>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        // The file ships inside the binary and a unit test parses it, so a
        // failure here cannot reach a user; an empty table is the fallback.
        toml::from_str(include_str!("../../data/presets.toml")).unwrap_or_default()
    })
}

/// A provider ready to be called: a preset merged with the user's settings.
/// Its `Debug` hides the values of credential headers.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The id the user refers to it by (`openai`, `work-llm`, ...).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// The preset it is based on, if any.
    pub preset: Option<String>,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Ask for usage in streams (OpenAI protocol).
    pub stream_usage: bool,
    /// Which field carries the output limit (OpenAI protocol).
    pub max_tokens_field: MaxTokensField,
    /// A local server: a key is optional.
    pub local: bool,
    /// The model list carries prices.
    pub live_prices: bool,
    /// Usage reports reasoning tokens beside the completion count (xAI).
    pub reasoning_outside_completion: bool,
    /// `false` when config.toml says `enabled = false`: the provider is
    /// never called and its key never read; every target naming it is
    /// skipped with kind `policy`.
    pub enabled: bool,
    /// What the provider accepts in one request (attachment sizes, pages),
    /// from its preset; checked before sending.
    pub limits: AttachmentLimits,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("preset", &self.preset)
            .field("base_url", &self.base_url)
            .field("headers", &crate::redact::Headers(&self.headers))
            .field("stream_usage", &self.stream_usage)
            .field("max_tokens_field", &self.max_tokens_field)
            .field("local", &self.local)
            .field("live_prices", &self.live_prices)
            .field(
                "reasoning_outside_completion",
                &self.reasoning_outside_completion,
            )
            .field("enabled", &self.enabled)
            .field("limits", &self.limits)
            .finish()
    }
}

impl ProviderConfig {
    /// A provider straight from a bundled preset (`openai`, `ollama`, ...).
    pub fn from_preset(id: &str) -> Option<Self> {
        let p = presets().get(id)?;
        Some(Self {
            id: id.to_owned(),
            name: p.name.clone(),
            kind: p.kind,
            preset: Some(id.to_owned()),
            base_url: p.base_url.clone()?.trim_end_matches('/').to_owned(),
            headers: p
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            stream_usage: p.stream_usage.unwrap_or(p.kind == ProviderKind::OpenAi),
            max_tokens_field: p.max_tokens_field,
            local: p.local,
            live_prices: p.live_prices,
            reasoning_outside_completion: p.reasoning_outside_completion,
            enabled: true,
            limits: p.limits,
        })
    }

    /// A provider of `kind` at `base_url` with default quirks (tests, custom servers).
    pub fn custom(id: &str, kind: ProviderKind, base_url: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: id.to_owned(),
            kind,
            preset: None,
            base_url: base_url.trim_end_matches('/').to_owned(),
            headers: Vec::new(),
            stream_usage: kind == ProviderKind::OpenAi,
            max_tokens_field: MaxTokensField::MaxTokens,
            local: is_local_url(base_url),
            live_prices: false,
            reasoning_outside_completion: false,
            enabled: true,
            limits: AttachmentLimits::default(),
        }
    }

    /// The error for any use of a provider that is disabled in config.
    pub fn disabled_error(&self) -> ProviderError {
        ProviderError::new(
            ErrorKind::Policy,
            &self.id,
            format!(
                "provider \"{}\" is disabled in config (enabled = false in [providers.{}])",
                self.id, self.id
            ),
        )
    }

    /// The id whose bundled prices apply: the preset, else the provider id.
    pub fn price_key(&self) -> &str {
        self.preset.as_deref().unwrap_or(&self.id)
    }

    /// What a model of this provider's preset that the catalog does not
    /// list takes besides text, when the preset says.
    pub fn default_accepts(&self) -> Option<Accepts> {
        presets().get(self.price_key())?.accepts.clone()
    }
}

/// True for loopback and private-network hosts (local model servers).
pub fn is_local_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".local") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback() || (ip.segments()[0] & 0xfe00) == 0xfc00,
        Err(_) => false,
    }
}

/// An HTTP request, before it is handed to the HTTP client. Its `Debug`
/// hides credential headers: the key never reaches a log through it.
#[derive(Clone, PartialEq)]
pub struct WireRequest {
    /// Full URL.
    pub url: String,
    /// Headers, secrets included (never logged).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: serde_json::Value,
}

impl std::fmt::Debug for WireRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireRequest")
            .field("url", &self.url)
            .field("headers", &crate::redact::Headers(&self.headers))
            .field("body", &self.body)
            .finish()
    }
}

/// One wire protocol. Each protocol module implements it on a unit type;
/// [`protocol`] is the one place a [`ProviderKind`] is mapped to it.
pub trait Protocol: Sync {
    /// The headers that authenticate `key`, with any the protocol wants on
    /// every call (Anthropic's version). Chat and model lists use the same.
    fn auth_headers(&self, key: Option<&str>) -> Vec<(String, String)>;
    /// The URL and JSON body of a chat request. A user turn's attachments
    /// are sent before its text, in the order they were added.
    fn chat_request(
        &self,
        provider: &ProviderConfig,
        req: &ChatRequest,
        stream: bool,
    ) -> (String, serde_json::Value);
    /// A streaming parser for one response.
    fn parser(&self, provider: &ProviderConfig) -> StreamParser;
    /// A complete (non-streaming) response body as events.
    fn parse_response(
        &self,
        provider: &ProviderConfig,
        body: &str,
    ) -> Result<Vec<StreamEvent>, serde_json::Error>;
    /// What an error body of this protocol says.
    fn error_body(&self, body: &str) -> ErrorBody;
    /// Where the model list is.
    fn models_url(&self, provider: &ProviderConfig) -> String;
    /// The models of a model list document.
    fn parse_models(&self, doc: &serde_json::Value) -> Vec<ModelInfo>;
}

/// The protocol `kind` names.
pub fn protocol(kind: ProviderKind) -> &'static dyn Protocol {
    match kind {
        ProviderKind::OpenAi => &openai::OpenAi,
        ProviderKind::Anthropic => &anthropic::Anthropic,
        ProviderKind::Gemini => &gemini::Gemini,
    }
}

/// Build the HTTP request for `req` in `provider`'s protocol: its URL and
/// body, the key's headers, then the provider's own headers.
pub fn build_request(
    provider: &ProviderConfig,
    key: Option<&str>,
    req: &ChatRequest,
    stream: bool,
) -> WireRequest {
    let p = protocol(provider.kind);
    let (url, body) = p.chat_request(provider, req, stream);
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    headers.extend(p.auth_headers(key));
    headers.extend(provider.headers.iter().cloned());
    WireRequest { url, headers, body }
}

/// The GET request for `provider`'s model list, authenticated like a chat
/// request (the cheapest call that tells whether a key works).
pub fn models_request(provider: &ProviderConfig, key: Option<&str>) -> WireRequest {
    let p = protocol(provider.kind);
    let mut headers = provider.headers.clone();
    headers.extend(p.auth_headers(key));
    WireRequest {
        url: p.models_url(provider),
        headers,
        body: serde_json::Value::Null,
    }
}

/// The streaming parser of one protocol, fed decoded SSE events.
#[derive(Debug)]
pub enum StreamParser {
    /// OpenAI chat completions.
    OpenAi(openai::Parser),
    /// Anthropic Messages.
    Anthropic(anthropic::Parser),
    /// Gemini.
    Gemini(gemini::Parser),
}

impl StreamParser {
    /// A parser for `provider`'s protocol.
    pub fn new(provider: &ProviderConfig) -> Self {
        protocol(provider.kind).parser(provider)
    }

    /// Turn one SSE event into stream events. An `Err` ends the stream.
    pub fn on_event(
        &mut self,
        ev: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        match self {
            Self::OpenAi(p) => p.on_event(ev, out),
            Self::Anthropic(p) => p.on_event(ev, out),
            Self::Gemini(p) => p.on_event(ev, out),
        }
    }

    /// The body ended cleanly: `Err(interrupted)` when the protocol's own
    /// end marker never came.
    pub fn on_end(&mut self) -> Result<(), ProviderError> {
        match self {
            Self::OpenAi(p) => p.on_end(),
            Self::Anthropic(p) => p.on_end(),
            Self::Gemini(p) => p.on_end(),
        }
    }
}

/// Parse a complete (non-streaming) response body into events.
pub fn parse_response(
    provider: &ProviderConfig,
    body: &str,
) -> Result<Vec<StreamEvent>, ProviderError> {
    protocol(provider.kind)
        .parse_response(provider, body)
        .map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                &provider.id,
                format!(
                    "the response is not valid {} JSON: {e}",
                    provider.kind.as_str()
                ),
            )
            .with_raw(body)
        })
}

/// The models of a model list document of `kind`'s protocol.
pub fn parse_model_list(kind: ProviderKind, doc: &serde_json::Value) -> Vec<ModelInfo> {
    protocol(kind).parse_models(doc)
}

/// What a protocol's error body says, normalized.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The human message.
    pub message: Option<String>,
    /// A machine code or type (`invalid_api_key`, `overloaded_error`,
    /// `RESOURCE_EXHAUSTED`, `API_KEY_INVALID`, ...), lower-cased. An
    /// adapter adds a code of its own where its vendor gives only a generic
    /// one and the message is the sole distinction (Anthropic's
    /// `credit_balance_too_low`).
    pub codes: Vec<String>,
    /// A wait the body asks for (Gemini's `RetryInfo.retryDelay`).
    pub retry_after: Option<std::time::Duration>,
}

/// The retry headers of an HTTP error response, as received.
#[derive(Debug, Default, Clone, Copy)]
pub struct RetryHeaders<'a> {
    /// `retry-after-ms` (OpenAI): milliseconds.
    pub retry_after_ms: Option<&'a str>,
    /// `Retry-After`: seconds or an HTTP date.
    pub retry_after: Option<&'a str>,
}

/// Classify an HTTP error response. The wait it asks for comes from its
/// headers (`retry-after-ms`, then `Retry-After`), else from its body.
pub fn classify_http(
    provider: &ProviderConfig,
    status: u16,
    retry: RetryHeaders<'_>,
    body: &str,
) -> ProviderError {
    let parsed = protocol(provider.kind).error_body(body);
    let kind = classify(status, &parsed);
    let message = parsed.message.clone().unwrap_or_else(|| {
        let text = body.trim();
        if text.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            format!("HTTP {status}: {}", truncate(text, 200))
        }
    });
    let mut err = ProviderError::new(kind, &provider.id, message)
        .with_status(status)
        .with_raw(body);
    err.retry_after = retry_hint(
        retry.retry_after_ms,
        retry.retry_after,
        crate::routing::now_unix_ms(),
    )
    .or(parsed.retry_after);
    if kind == ErrorKind::Auth && parsed.message.is_some() {
        err.message = format!(
            "{} (check the key for provider \"{}\")",
            err.message, provider.id
        );
    }
    err
}

/// An error a provider reported inside a stream (OpenRouter's error chunk,
/// Anthropic's `error` event, a Gemini chunk with an `error`), classified
/// like an HTTP error: `status` is the one the body carries, if any.
pub(crate) fn stream_error(
    provider: &str,
    status: Option<u16>,
    body: ErrorBody,
    raw: &str,
) -> ProviderError {
    let mut err = ProviderError::new(
        classify(status.unwrap_or(0), &body),
        provider,
        body.message
            .unwrap_or_else(|| "the provider reported an error mid-stream".into()),
    )
    .with_raw(raw);
    err.status = status;
    err.retry_after = body.retry_after;
    err
}

const CONTEXT_MARKERS: &[&str] = &[
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "exceeds the maximum number of tokens",
    "request_too_large",
];

fn mentions_context(body: &ErrorBody) -> bool {
    let msg = body.message.as_deref().unwrap_or("").to_ascii_lowercase();
    CONTEXT_MARKERS
        .iter()
        .any(|m| msg.contains(m) || body.codes.iter().any(|c| c.contains(m)))
}

/// Map an HTTP status (0 for a mid-stream error without one) and an error
/// body to a kind: by its codes first (type, code, status), then by the
/// HTTP status. Errors that are the account's or the model's, not the
/// request's, get kinds of their own so a route moves on instead of
/// stopping (`billing`, `unavailable`, `unsupported`).
pub fn classify(status: u16, body: &ErrorBody) -> ErrorKind {
    let has = |code: &str| body.codes.iter().any(|c| c == code);
    if has("api_key_invalid")
        || has("invalid_api_key")
        || has("authentication_error")
        || has("permission_error")
        || has("unauthenticated")
        || has("permission_denied")
    {
        return ErrorKind::Auth;
    }
    // OpenAI sends `insufficient_quota` as HTTP 429: a rate limit in form,
    // but waiting does not refill an account.
    if has("insufficient_quota")
        || has("billing_error")
        || has("credit_balance_too_low")
        || has("billing_not_active")
        || status == 402
    {
        return ErrorKind::Billing;
    }
    if has("failed_precondition")
        || has("unsupported_country_region_territory")
        || has("user_location_not_supported")
    {
        return ErrorKind::Unavailable;
    }
    if has("unsupported_value") || has("unsupported_parameter") {
        return ErrorKind::Unsupported;
    }
    if mentions_context(body) {
        return ErrorKind::ContextTooLong;
    }
    if has("overloaded_error") || has("unavailable") || has("api_error") || has("internal") {
        return ErrorKind::Overloaded;
    }
    if has("rate_limit_error") || has("resource_exhausted") || has("rate_limit_exceeded") {
        return ErrorKind::RateLimited;
    }
    if has("not_found_error") || has("not_found") || has("model_not_found") {
        return ErrorKind::NotFound;
    }
    if has("deadline_exceeded") {
        return ErrorKind::Timeout;
    }
    match status {
        401..=403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        // A conflict (a lock held by another request) clears on its own:
        // the official SDKs retry it.
        409 => ErrorKind::Overloaded,
        413 => ErrorKind::ContextTooLong,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Overloaded,
        400..=499 => ErrorKind::BadRequest,
        _ => ErrorKind::Overloaded,
    }
}

/// Map a finish reason as a provider spells it.
pub fn finish_reason(raw: &str) -> FinishReason {
    match raw.to_ascii_lowercase().as_str() {
        "stop" | "end_turn" | "stop_sequence" | "eos" => FinishReason::Stop,
        "length" | "max_tokens" | "model_length" => FinishReason::Length,
        "content_filter" | "safety" | "recitation" | "blocklist" | "prohibited_content"
        | "spii" | "refusal" => FinishReason::ContentFilter,
        "tool_calls" | "function_call" | "tool_use" => FinishReason::ToolCalls,
        "error" => FinishReason::Error,
        _ => FinishReason::Other,
    }
}

/// The "stream ended without its end marker" error.
pub(crate) fn interrupted(provider: &str, what: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Interrupted,
        provider,
        format!("the stream ended without {what}; the text that arrived is kept"),
    )
}

/// The "not this protocol's JSON" error.
pub(crate) fn malformed(provider: &str, data: &str, e: &serde_json::Error) -> ProviderError {
    ProviderError::new(
        ErrorKind::Malformed,
        provider,
        format!("unreadable stream event: {e}"),
    )
    .with_raw(data)
}

/// Replaying recorded SSE fixtures through a protocol's parser, split into
/// chunks of any size, for the adapter tests at the bottom of each module.
#[cfg(test)]
pub(crate) mod fixture {
    use super::{ProviderConfig, ProviderKind, StreamParser};
    use crate::chat::{StreamEvent, Usage};
    use crate::error::ProviderError;
    use crate::money::Cost;
    use crate::sse::SseDecoder;

    /// Decode `fixture` fed in `size`-byte chunks; the events, and how the
    /// stream ended (`Err` for a parse error or a missing end marker).
    pub fn replay(
        kind: ProviderKind,
        fixture: &str,
        size: usize,
    ) -> (Vec<StreamEvent>, Result<(), ProviderError>) {
        replay_as(
            &ProviderConfig::custom("fx", kind, "http://127.0.0.1:9"),
            fixture,
            size,
        )
    }

    /// [`replay`] through `provider`'s parser (its quirk flags included).
    pub fn replay_as(
        provider: &ProviderConfig,
        fixture: &str,
        size: usize,
    ) -> (Vec<StreamEvent>, Result<(), ProviderError>) {
        let mut dec = SseDecoder::new();
        let mut parser = StreamParser::new(provider);
        let (mut sse, mut out) = (Vec::new(), Vec::new());
        let mut drain = |sse: &mut Vec<_>, out: &mut Vec<_>| {
            sse.drain(..).try_for_each(|ev| parser.on_event(&ev, out))
        };
        for chunk in fixture.as_bytes().chunks(size) {
            dec.feed(chunk, &mut sse);
            if let Err(e) = drain(&mut sse, &mut out) {
                return (out, Err(e));
            }
        }
        dec.finish(&mut sse);
        if let Err(e) = drain(&mut sse, &mut out) {
            return (out, Err(e));
        }
        let end = parser.on_end();
        (out, end)
    }

    /// `body` with HTTP `status` from `provider`, classified, no retry headers.
    pub fn classify_body(provider: &ProviderConfig, status: u16, body: &str) -> ProviderError {
        super::classify_http(provider, status, super::RetryHeaders::default(), body)
    }

    /// The answer text in `events`.
    pub fn text(events: &[StreamEvent]) -> String {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The last usage event and its reported cost.
    pub fn last_usage(events: &[StreamEvent]) -> Option<(Usage, Option<Cost>)> {
        events.iter().rev().find_map(|e| match e {
            StreamEvent::Usage {
                usage,
                reported_cost,
            } => Some((*usage, *reported_cost)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_has_a_usable_base_url() {
        let all = presets();
        for id in [
            "openai",
            "anthropic",
            "gemini",
            "openrouter",
            "groq",
            "mistral",
            "deepseek",
            "xai",
            "together",
            "fireworks",
            "ollama",
            "lmstudio",
            "llamacpp",
            "vllm",
            "custom",
        ] {
            assert!(all.contains_key(id), "preset {id} missing");
        }
        for (id, p) in all {
            if id == "custom" {
                assert!(p.base_url.is_none());
                assert!(ProviderConfig::from_preset(id).is_none());
                continue;
            }
            let cfg = ProviderConfig::from_preset(id).unwrap();
            assert!(cfg.base_url.starts_with("http"), "{id}");
            assert_eq!(
                cfg.local,
                is_local_url(&cfg.base_url),
                "{id}: local flag and URL disagree"
            );
        }
        let or = ProviderConfig::from_preset("openrouter").unwrap();
        assert!(or.headers.iter().any(|(k, _)| k == "X-Title"));
        assert!(!ProviderConfig::from_preset("mistral").unwrap().stream_usage);
    }

    #[test]
    fn local_urls_are_recognized() {
        for u in [
            "http://localhost:11434/v1",
            "http://127.0.0.1:8080",
            "http://192.168.1.5:1234/v1",
            "http://[::1]:8000",
            "http://gpu-box.local:8000",
        ] {
            assert!(is_local_url(u), "{u}");
        }
        for u in [
            "https://api.openai.com/v1",
            "https://8.8.8.8/v1",
            "https://openrouter.ai/api/v1",
        ] {
            assert!(!is_local_url(u), "{u}");
        }
    }

    #[test]
    fn statuses_and_codes_map_to_kinds() {
        let b = |codes: &[&str], msg: &str| ErrorBody {
            message: Some(msg.into()),
            codes: codes.iter().map(|s| s.to_string()).collect(),
            retry_after: None,
        };
        assert_eq!(
            classify(
                400,
                &b(
                    &["invalid_argument", "api_key_invalid"],
                    "API key not valid"
                )
            ),
            ErrorKind::Auth
        );
        assert_eq!(
            classify(
                400,
                &b(
                    &["invalid_request_error"],
                    "prompt is too long: 210000 tokens > 200000 maximum"
                )
            ),
            ErrorKind::ContextTooLong
        );
        assert_eq!(
            classify(400, &b(&["context_length_exceeded"], "x")),
            ErrorKind::ContextTooLong
        );
        assert_eq!(
            classify(529, &b(&["overloaded_error"], "Overloaded")),
            ErrorKind::Overloaded
        );
        assert_eq!(classify(429, &ErrorBody::default()), ErrorKind::RateLimited);
        assert_eq!(classify(503, &ErrorBody::default()), ErrorKind::Overloaded);
        assert_eq!(classify(404, &ErrorBody::default()), ErrorKind::NotFound);
        assert_eq!(classify(422, &ErrorBody::default()), ErrorKind::BadRequest);
        assert_eq!(
            classify(0, &b(&["resource_exhausted"], "quota")),
            ErrorKind::RateLimited
        );
    }
}
