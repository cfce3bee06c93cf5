//! From a parsed request to a [`Reply`]: which protocol and model it names,
//! then keys, scripted faults and rendering, in the order real providers
//! check them.

use std::time::Instant;

use serde_json::Value;

use crate::anthropic::Anthropic;
use crate::gemini::Gemini;
use crate::http::{JsonReply, Reply, Request};
use crate::openai::OpenAi;
use crate::scenario::{Fault, Scenario};
use crate::server::{Protocol, RecordedRequest, Shared};
use crate::sse::{Step, to_json};

/// What one wire protocol says, and how.
///
/// Implemented by one unit type per protocol module and dispatched statically
/// from [`Protocol`], so routing and fault handling are written once.
pub(crate) trait Dialect {
    /// Rejects a request the real provider would refuse before looking at it
    /// (a missing mandatory header, an unsupported mode).
    fn precheck(_request: &Request) -> Option<JsonReply> {
        None
    }
    /// Whether the request carries `key` where this protocol expects it.
    fn has_key(request: &Request, key: &str) -> bool;
    /// The answer to a missing or wrong key.
    fn auth_error() -> JsonReply;
    /// The answer to a request naming a model that is not scripted.
    fn not_found(model: &str) -> JsonReply;
    /// An error response with this status and message.
    fn error(status: u16, message: &str) -> JsonReply;
    /// An error response with this status and the provider's usual message.
    fn status_error(status: u16) -> JsonReply;
    /// The answer to a prompt larger than the context window.
    fn context_too_long() -> JsonReply;
    /// What is wrong with the request's images and PDFs, as the provider
    /// would say it (`None`: nothing).
    fn check_attachments(_body: &Value) -> Result<(), String> {
        Ok(())
    }
    /// What a non-streaming request gets where a stream would carry the
    /// mid-stream error event.
    fn overloaded() -> JsonReply;
    /// The streaming response body.
    fn stream(model: &str, scenario: &Scenario, request: Option<&Value>) -> Vec<Step>;
    /// The non-streaming response body.
    fn complete(model: &str, scenario: &Scenario) -> Vec<u8>;
    /// The model list response body.
    fn model_list(models: &[String]) -> Vec<u8>;
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Generate {
        protocol: Protocol,
        model: Option<String>,
        stream: bool,
    },
    Models(Protocol),
    Unknown,
}

impl Endpoint {
    fn of(request: &Request, body: Option<&Value>) -> Self {
        let model_in_body = || body.and_then(|body| body.get("model")?.as_str().map(str::to_owned));
        let stream_in_body = || body.and_then(|body| body.get("stream")?.as_bool()) == Some(true);
        match (request.method.as_str(), request.path()) {
            ("POST", "/v1/chat/completions") => Self::Generate {
                protocol: Protocol::OpenAi,
                model: model_in_body(),
                stream: stream_in_body(),
            },
            ("POST", "/v1/messages") => Self::Generate {
                protocol: Protocol::Anthropic,
                model: model_in_body(),
                stream: stream_in_body(),
            },
            ("GET", "/v1/models") if request.header("anthropic-version").is_some() => {
                Self::Models(Protocol::Anthropic)
            }
            ("GET", "/v1/models") => Self::Models(Protocol::OpenAi),
            ("GET", "/v1beta/models") => Self::Models(Protocol::Gemini),
            ("POST", path) => Self::gemini_generate(path),
            _ => Self::Unknown,
        }
    }

    /// `/v1beta/models/{model}:generateContent` or `:streamGenerateContent`.
    fn gemini_generate(path: &str) -> Self {
        let Some((model, action)) = path
            .strip_prefix("/v1beta/models/")
            .and_then(|rest| rest.split_once(':'))
        else {
            return Self::Unknown;
        };
        let stream = match action {
            "generateContent" => false,
            "streamGenerateContent" => true,
            _ => return Self::Unknown,
        };
        Self::Generate {
            protocol: Protocol::Gemini,
            model: Some(model.to_owned()),
            stream,
        }
    }
}

/// Records `request` and decides the reply.
pub(crate) fn handle(shared: &Shared, request: &Request, at: Instant) -> Reply {
    let body: Option<Value> = serde_json::from_slice(&request.body).ok();
    shared.record(RecordedRequest {
        method: request.method.clone(),
        path: request.target.clone(),
        headers: request.headers.clone(),
        body: body.clone(),
        raw_body: request.body.clone(),
        at,
    });
    match Endpoint::of(request, body.as_ref()) {
        Endpoint::Generate {
            protocol,
            model,
            stream,
        } => {
            let generate = match protocol {
                Protocol::OpenAi => generate::<OpenAi>,
                Protocol::Anthropic => generate::<Anthropic>,
                Protocol::Gemini => generate::<Gemini>,
            };
            generate(shared, request, body.as_ref(), model, stream)
        }
        Endpoint::Models(protocol) => match protocol {
            Protocol::OpenAi => models::<OpenAi>(shared, request),
            Protocol::Anthropic => models::<Anthropic>(shared, request),
            Protocol::Gemini => models::<Gemini>(shared, request),
        }
        .into(),
        Endpoint::Unknown => {
            let message = format!(
                "switchboard-mock has no route for {} {}",
                request.method,
                request.path()
            );
            let body = serde_json::json!({ "error": { "message": message } });
            JsonReply::new(404, to_json(&body)).into()
        }
    }
}

fn generate<D: Dialect>(
    shared: &Shared,
    request: &Request,
    body: Option<&Value>,
    model: Option<String>,
    stream: bool,
) -> Reply {
    if let Some(rejection) = D::precheck(request) {
        return rejection.into();
    }
    let Some(model) = model else {
        return D::error(400, "the request names no model").into();
    };
    let hits = shared.hit(&model);
    let Some(mut scenario) = shared.scenario(&model) else {
        return D::not_found(&model).into();
    };
    if scenario.fault_times.is_some_and(|n| hits > n) {
        scenario.fault = None;
    }
    if let Some(key) = &scenario.required_key
        && !D::has_key(request, key)
    {
        return D::auth_error().into();
    }
    if let Some(body) = body
        && let Err(message) = D::check_attachments(body)
    {
        return D::error(400, &message).into();
    }
    match scenario.fault {
        Some(Fault::Status {
            code,
            retry_after_s,
        }) => {
            return D::status_error(code)
                .retry_after(retry_after_s)
                .delayed(scenario.ttft)
                .into();
        }
        Some(Fault::ContextTooLong) => return D::context_too_long().delayed(scenario.ttft).into(),
        Some(Fault::Raw {
            code,
            ref headers,
            ref body,
        }) => {
            let reply = JsonReply {
                headers: headers.clone(),
                ..JsonReply::new(code, body.clone())
            };
            return reply.delayed(scenario.ttft).into();
        }
        Some(Fault::EchoHeaders { code }) => {
            let echoed: serde_json::Map<String, Value> = request
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let body = serde_json::json!({
                "error": {
                    "message": "upstream gateway error",
                    "request": { "headers": echoed }
                }
            });
            return JsonReply::new(code, to_json(&body))
                .delayed(scenario.ttft)
                .into();
        }
        _ => {}
    }
    if stream {
        Reply::Stream {
            steps: D::stream(&model, &scenario, body),
            split_every: scenario.wire.split_every,
            sent: shared.track_pieces(&model),
        }
    } else {
        complete::<D>(&model, &scenario)
    }
}

/// A non-streaming answer; mid-stream faults get their closest equivalent.
fn complete<D: Dialect>(model: &str, scenario: &Scenario) -> Reply {
    let body = D::complete(model, scenario);
    let reply = match scenario.fault {
        Some(Fault::StallAfter(_)) => return Reply::Hang,
        Some(Fault::CutAfter(_)) => JsonReply {
            cut_at: Some(body.len() / 2),
            ..JsonReply::new(200, body)
        },
        Some(Fault::GarbageAfter(_)) => JsonReply::new(200, "{not json"),
        Some(Fault::ErrorEventAfter(_)) => D::overloaded(),
        Some(
            Fault::Status { .. }
            | Fault::ContextTooLong
            | Fault::Raw { .. }
            | Fault::EchoHeaders { .. },
        )
        | None => JsonReply::new(200, body),
    };
    reply.delayed(scenario.generation_time()).into()
}

/// Lists the scripted models. If any scenario requires a key, the list
/// requires one of those keys.
fn models<D: Dialect>(shared: &Shared, request: &Request) -> JsonReply {
    let keys = shared.required_keys();
    if !keys.is_empty() && !keys.iter().any(|key| D::has_key(request, key)) {
        return D::auth_error();
    }
    JsonReply::new(200, D::model_list(&shared.models()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            body: Vec::new(),
            http10: false,
        }
    }

    #[test]
    fn model_lists_are_told_apart_by_the_anthropic_version_header() {
        let openai = request("GET", "/v1/models", &[]);
        let anthropic = request("GET", "/v1/models", &[("anthropic-version", "2023-06-01")]);
        assert_eq!(
            Endpoint::of(&openai, None),
            Endpoint::Models(Protocol::OpenAi)
        );
        assert_eq!(
            Endpoint::of(&anthropic, None),
            Endpoint::Models(Protocol::Anthropic)
        );
    }

    #[test]
    fn gemini_takes_the_model_from_the_path() {
        let stream = request(
            "POST",
            "/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
            &[],
        );
        assert_eq!(
            Endpoint::of(&stream, None),
            Endpoint::Generate {
                protocol: Protocol::Gemini,
                model: Some("gemini-x".to_owned()),
                stream: true
            }
        );
        let other = request("POST", "/v1beta/models/gemini-x:countTokens", &[]);
        assert_eq!(Endpoint::of(&other, None), Endpoint::Unknown);
    }

    #[test]
    fn openai_takes_model_and_stream_from_the_body() {
        let chat = request("POST", "/v1/chat/completions", &[]);
        let body = serde_json::json!({"model": "m", "stream": true});
        assert_eq!(
            Endpoint::of(&chat, Some(&body)),
            Endpoint::Generate {
                protocol: Protocol::OpenAi,
                model: Some("m".to_owned()),
                stream: true
            }
        );
    }
}
