//! OpenAI Chat Completions, in and out, as the official SDKs read it.
//!
//! In: `model` (or `models: [...]`, a fallback chain), `messages` with
//! `system`/`developer`/`user`/`assistant` roles and string or text-part
//! content, `stream`, `stream_options.include_usage`, `temperature`,
//! `top_p`, `max_tokens`/`max_completion_tokens`, `stop`. What the engine
//! cannot carry (tools, images, `n` > 1, JSON modes, logprobs) is refused
//! with a 400 rather than silently dropped: a tool that expects a tool
//! call or JSON would otherwise get prose. Other knobs are ignored.
//!
//! Out: `chat.completion`, or `chat.completion.chunk` events ending with
//! `data: [DONE]`; with `include_usage`, every chunk has `"usage": null`
//! and a last chunk with `"choices": []` carries the usage. `model` is the
//! `provider:model` that answered. `usage` has the exact token counts the
//! provider reported and `cost` (USD, exact decimal) as OpenRouter does:
//! what the ledger holds for the request, failed attempts it was billed
//! for included (`cost_estimated` says when any part was estimated).
//! Reasoning text travels as `reasoning`, as OpenRouter sends it. An error
//! after the first token is a chunk with a top-level `error` and
//! `finish_reason: "error"` (OpenRouter's shape; the SDKs raise on it).

use serde::Deserialize;
use switchboard_engine::{ChatRequest, Message};

use crate::body::{Encoder, parse_json};
use crate::errors::ApiError;
use crate::run::Finished;
use crate::wire::{Counts, cost_fields, json_str, json_u64, new_id, openai_finish, unix_secs};

/// A request, as the engine will run it.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// `model`, then `models`, deduplicated: tried in this order.
    pub names: Vec<String>,
    pub chat: ChatRequest,
    pub stream: bool,
    pub include_usage: bool,
    /// Anthropic: the caller asked for thinking blocks.
    pub thinking: bool,
}

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    messages: Option<Vec<InMessage>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    tools: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    functions: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    response_format: Option<serde_json::Value>,
    #[serde(default)]
    logprobs: Option<bool>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
pub(crate) struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl Content {
    /// The text of the content; parts of a kind in `skip` are left out,
    /// and any other part that is not text is refused.
    pub(crate) fn text(self, where_: &str, skip: &[&str]) -> Result<String, ApiError> {
        match self {
            Content::Text(t) => Ok(t),
            Content::Parts(parts) => {
                let mut text = String::new();
                for p in parts {
                    match (p.kind.as_str(), p.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        (kind, _) if skip.contains(&kind) => {}
                        (kind, _) => {
                            return Err(ApiError::bad_request(
                                "unsupported_content",
                                format!(
                                    "{where_}: content of type \"{kind}\" is not supported by the \
                                     Local API (text only)"
                                ),
                            ));
                        }
                    }
                }
                Ok(text)
            }
        }
    }
}

fn unsupported(what: &str) -> ApiError {
    ApiError::bad_request(
        "unsupported_parameter",
        format!("{what} is not supported by the Local API yet"),
    )
}

/// Parse a Chat Completions request body.
pub(crate) fn parse(body: &[u8]) -> Result<Parsed, ApiError> {
    let r: Request = parse_json(body, "Chat Completions")?;
    let Some(messages) = r.messages else {
        return Err(ApiError::bad_request(
            "missing_messages",
            "`messages` is required: a list of {role, content}",
        ));
    };
    if messages.is_empty() {
        return Err(ApiError::bad_request(
            "missing_messages",
            "`messages` is empty: send at least one message",
        ));
    }
    if r.tools.as_ref().is_some_and(|t| !t.is_empty())
        || r.functions.as_ref().is_some_and(|t| !t.is_empty())
    {
        return Err(unsupported("tool calling (`tools`)"));
    }
    if r.n.is_some_and(|n| n > 1) {
        return Err(unsupported("more than one choice (`n` > 1)"));
    }
    if r.logprobs == Some(true) {
        return Err(unsupported("`logprobs`"));
    }
    if let Some(f) = &r.response_format
        && f.get("type").and_then(serde_json::Value::as_str) != Some("text")
    {
        return Err(unsupported("`response_format` other than text"));
    }
    let mut chat = ChatRequest::new("", "");
    chat.messages.clear();
    let mut system: Vec<String> = Vec::new();
    for (i, m) in messages.into_iter().enumerate() {
        let where_ = format!("messages[{i}]");
        let text = match m.content {
            Some(c) => c.text(&where_, &[])?,
            None => String::new(),
        };
        match m.role.as_str() {
            "system" | "developer" => system.push(text),
            "user" => chat.messages.push(Message::user(text)),
            "assistant" => chat.messages.push(Message::assistant(text)),
            other => {
                return Err(ApiError::bad_request(
                    "unsupported_role",
                    format!(
                        "{where_}: role \"{other}\" is not supported by the Local API (system, \
                         developer, user, assistant)"
                    ),
                ));
            }
        }
    }
    chat.system = (!system.is_empty()).then(|| system.join("\n\n"));
    chat.params.temperature = r.temperature;
    chat.params.top_p = r.top_p;
    chat.params.max_tokens = r.max_completion_tokens.or(r.max_tokens);
    chat.params.stop = match r.stop {
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
        None => Vec::new(),
    };
    let mut names: Vec<String> = r.model.into_iter().collect();
    for m in r.models.unwrap_or_default() {
        if !names.contains(&m) {
            names.push(m);
        }
    }
    Ok(Parsed {
        names,
        chat,
        stream: r.stream.unwrap_or(false),
        include_usage: r
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        thinking: false,
    })
}

/// The `usage` object of an outcome.
fn usage(out: &mut Vec<u8>, f: &Finished) {
    let c = Counts::of(&f.outcome);
    let cost = f.outcome.cost();
    out.extend_from_slice(b"{\"prompt_tokens\":");
    json_u64(out, c.input);
    out.extend_from_slice(b",\"completion_tokens\":");
    json_u64(out, c.output);
    out.extend_from_slice(b",\"total_tokens\":");
    json_u64(out, c.input + c.output);
    out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    json_u64(out, c.cached);
    if c.cache_write > 0 {
        out.extend_from_slice(b",\"cache_write_tokens\":");
        json_u64(out, c.cache_write);
    }
    out.extend_from_slice(b"},\"completion_tokens_details\":{\"reasoning_tokens\":");
    json_u64(out, c.reasoning);
    out.extend_from_slice(b"},");
    cost_fields(out, cost);
    out.push(b'}');
}

/// The whole (non-streamed) answer.
pub(crate) fn completion(f: &Finished) -> Vec<u8> {
    let r = &f.outcome.result;
    let mut out = Vec::with_capacity(512 + r.text.len());
    out.extend_from_slice(b"{\"id\":");
    json_str(&mut out, &new_id("chatcmpl-"));
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    json_u64(&mut out, unix_secs());
    out.extend_from_slice(b",\"model\":");
    json_str(&mut out, &format!("{}:{}", r.provider, r.model));
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    json_str(&mut out, &r.text);
    out.extend_from_slice(b",\"refusal\":null");
    if !r.reasoning.is_empty() {
        out.extend_from_slice(b",\"reasoning\":");
        json_str(&mut out, &r.reasoning);
    }
    out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
    json_str(&mut out, openai_finish(r.finish_reason));
    out.extend_from_slice(b"}],\"usage\":");
    usage(&mut out, f);
    out.extend_from_slice(b",\"system_fingerprint\":null}");
    out
}

/// A streamed answer's chunks.
#[derive(Debug)]
pub(crate) struct ChunkStream {
    /// `data: {"id":..,"object":..,"created":..,"model":..,"choices":[`
    prefix: Vec<u8>,
    include_usage: bool,
}

impl ChunkStream {
    /// The stream of an answer served by `target`; appends its first
    /// chunk (the assistant role) to `out`.
    pub(crate) fn start(target: &str, include_usage: bool, out: &mut Vec<u8>) -> Self {
        let mut prefix = Vec::with_capacity(128);
        prefix.extend_from_slice(b"data: {\"id\":");
        json_str(&mut prefix, &new_id("chatcmpl-"));
        prefix.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        json_u64(&mut prefix, unix_secs());
        prefix.extend_from_slice(b",\"model\":");
        json_str(&mut prefix, target);
        prefix.extend_from_slice(b",\"system_fingerprint\":null,\"choices\":[");
        let s = Self {
            prefix,
            include_usage,
        };
        s.chunk(
            out,
            b"{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}",
            None,
        );
        s
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: &[u8], finish: Option<&str>) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":");
        out.extend_from_slice(delta);
        self.chunk_end(out, finish);
    }

    fn chunk_end(&self, out: &mut Vec<u8>, finish: Option<&str>) {
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        match finish {
            Some(f) => json_str(out, f),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]");
        if self.include_usage {
            out.extend_from_slice(b",\"usage\":null");
        }
        out.extend_from_slice(b"}\n\n");
    }

    fn piece(&self, out: &mut Vec<u8>, field: &str, text: &str) {
        out.reserve(self.prefix.len() + text.len() + 96);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{\"");
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\":");
        json_str(out, text);
        out.push(b'}');
        self.chunk_end(out, None);
    }

    fn finish(&self, out: &mut Vec<u8>, f: &Finished) {
        let r = &f.outcome.result;
        match &r.error {
            None => self.chunk(out, b"{}", Some(openai_finish(r.finish_reason))),
            Some(e) => {
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(
                    b"{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"error\"}],\"error\":{\"message\":",
                );
                json_str(out, &e.message);
                out.extend_from_slice(b",\"type\":\"server_error\",\"code\":");
                json_str(out, e.kind.as_str());
                out.extend_from_slice(b"}}\n\n");
            }
        }
        if self.include_usage {
            out.extend_from_slice(&self.prefix);
            // Replace the opened `choices` array by an empty one.
            out.truncate(out.len() - 1);
            out.extend_from_slice(b"[],\"usage\":");
            usage(out, f);
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

impl Encoder for ChunkStream {
    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.piece(out, "content", text);
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        self.piece(out, "reasoning", text);
    }

    fn end(&mut self, f: &Finished, out: &mut Vec<u8>) {
        self.finish(out, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_unsupported_features_are_refused_by_name() {
        let p = parse(
            br#"{"model":"oa:m","models":["oa:m","@fast"],"messages":[
                {"role":"system","content":"Be brief."},
                {"role":"developer","content":[{"type":"text","text":"No lists."}]},
                {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],
                "stream":true,"stream_options":{"include_usage":true},"max_tokens":5,
                "max_completion_tokens":7,"stop":"END","temperature":0.5,"seed":3}"#,
        )
        .unwrap();
        assert_eq!(p.names, vec!["oa:m", "@fast"]);
        assert_eq!(p.chat.system.as_deref(), Some("Be brief.\n\nNo lists."));
        assert_eq!(p.chat.messages, vec![Message::user("Hi there")]);
        assert_eq!(p.chat.params.max_tokens, Some(7));
        assert_eq!(p.chat.params.stop, vec!["END"]);
        assert!(p.stream && p.include_usage);
        // What a text answer can carry anyway is accepted.
        assert!(
            parse(br#"{"model":"x","messages":[{"role":"user","content":"a"}],"n":1,"logprobs":false,"response_format":{"type":"text"}}"#)
                .is_ok()
        );
        for (body, code) in [
            (&b"{nope"[..], "invalid_json"),
            (br#"{"model":"x"}"#, "missing_messages"),
            (br#"{"model":"x","messages":"hi"}"#, "invalid_json"),
            (
                br#"{"model":"x","messages":[{"role":"user","content":"a"}],"tools":[{}]}"#,
                "unsupported_parameter",
            ),
            (
                br#"{"model":"x","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
                "unsupported_content",
            ),
            (
                br#"{"model":"x","messages":[{"role":"tool","content":"a"}]}"#,
                "unsupported_role",
            ),
            (
                br#"{"model":"x","messages":[{"role":"user","content":"a"}],"n":2}"#,
                "unsupported_parameter",
            ),
            (
                br#"{"model":"x","messages":[{"role":"user","content":"a"}],"logprobs":true}"#,
                "unsupported_parameter",
            ),
            (
                br#"{"model":"x","messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_object"}}"#,
                "unsupported_parameter",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.code, code, "{}", String::from_utf8_lossy(body));
        }
    }
}
