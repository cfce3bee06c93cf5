//! The Gemini `generateContent` protocol: bare `data:` lines with no terminator,
//! and `usageMetadata` as a running total in every chunk.

use serde::Serialize;
use serde_json::Value;

use crate::http::{JsonReply, Request};
use crate::routes::Dialect;
use crate::scenario::{Finish, MockUsage, Scenario};
use crate::sse::{Plan, Step, to_json};

/// The Gemini dialect.
#[derive(Debug)]
pub(crate) struct Gemini;

impl Dialect for Gemini {
    fn precheck(request: &Request) -> Option<JsonReply> {
        let streaming = request.path().ends_with(":streamGenerateContent");
        let sse = request.query().split('&').any(|pair| pair == "alt=sse");
        // Without alt=sse Gemini streams one big JSON array; the mock refuses
        // rather than hide a client that forgot to ask for SSE.
        (streaming && !sse).then(|| {
            Self::error(
                400,
                "switchboard-mock only streams with ?alt=sse (a JSON array stream is not mocked)",
            )
        })
    }

    fn has_key(request: &Request, key: &str) -> bool {
        request.header("x-goog-api-key") == Some(key)
    }

    /// Gemini answers a bad key with 400, not 401.
    fn auth_error() -> JsonReply {
        let body = ErrorBody {
            error: ErrorDetail {
                code: 400,
                message: "API key not valid. Please pass a valid API key.",
                status: "INVALID_ARGUMENT",
                details: Some(vec![ErrorInfo {
                    kind: "type.googleapis.com/google.rpc.ErrorInfo",
                    reason: "API_KEY_INVALID",
                    domain: "googleapis.com",
                }]),
            },
        };
        JsonReply::new(400, to_json(&body))
    }

    fn not_found(model: &str) -> JsonReply {
        let message = format!(
            "models/{model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."
        );
        Self::error(404, &message)
    }

    fn error(status: u16, message: &str) -> JsonReply {
        JsonReply::new(status, to_json(&error_body(status, message)))
    }

    fn status_error(status: u16) -> JsonReply {
        let message = match status {
            403 => "The caller does not have permission",
            404 => "Requested entity was not found.",
            429 => "Resource has been exhausted (e.g. check quota).",
            503 => "The model is overloaded. Please try again later.",
            504 => "Deadline expired before operation could complete.",
            500..=599 => {
                "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
            }
            _ => "Request contains an invalid argument.",
        };
        Self::error(status, message)
    }

    fn check_attachments(body: &Value) -> Result<(), String> {
        crate::attachments::check_gemini(body)
    }

    fn context_too_long() -> JsonReply {
        Self::error(
            400,
            "The input token count (1050000) exceeds the maximum number of tokens allowed (1048576).",
        )
    }

    fn overloaded() -> JsonReply {
        Self::status_error(503)
    }

    fn stream(model: &str, scenario: &Scenario, _request: Option<&Value>) -> Vec<Step> {
        let mut plan = Plan::new(scenario);
        let chunk =
            |parts, finish_reason, usage| Chunk::new(model, scenario, parts, finish_reason, usage);
        plan.sleep(scenario.ttft);
        for piece in &scenario.reasoning {
            plan.piece();
            plan.data(&chunk(
                vec![Part::thought(piece)],
                None,
                UsageMetadata::thinking(scenario.usage),
            ));
        }
        let pieces = scenario.text.len();
        for sent in 0..=pieces {
            let flow = plan.inject(scenario.mid_stream_fault(sent), |plan| {
                plan.data(&error_body(503, "The model is overloaded."));
            });
            if flow.is_break() {
                return plan.into_steps();
            }
            if let Some(piece) = scenario.text.get(sent) {
                plan.piece();
                let usage = UsageMetadata::running(scenario.usage, sent + 1, pieces);
                plan.data(&chunk(vec![Part::text(piece)], None, usage));
            }
        }
        let finish = Some(finish_reason(scenario.finish));
        plan.data(&chunk(
            vec![Part::text("")],
            finish,
            UsageMetadata::total(scenario.usage),
        ));
        plan.into_steps()
    }

    fn complete(model: &str, scenario: &Scenario) -> Vec<u8> {
        let text = scenario.full_text();
        let reasoning = scenario.full_reasoning();
        let mut parts = Vec::new();
        if !reasoning.is_empty() {
            parts.push(Part::thought(&reasoning));
        }
        parts.push(Part::text(&text));
        let finish = Some(finish_reason(scenario.finish));
        let response = Chunk::new(
            model,
            scenario,
            parts,
            finish,
            UsageMetadata::total(scenario.usage),
        );
        to_json(&response).into_bytes()
    }

    fn model_list(models: &[String]) -> Vec<u8> {
        let list = ModelList {
            models: models
                .iter()
                .map(|id| Model {
                    name: format!("models/{id}"),
                    display_name: id,
                    input_token_limit: 1_048_576,
                    output_token_limit: 65_536,
                    supported_generation_methods: &["generateContent"],
                })
                .collect(),
        };
        to_json(&list).into_bytes()
    }
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "STOP",
        Finish::Length => "MAX_TOKENS",
    }
}

fn status(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if code < 500 => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

fn error_body(code: u16, message: &str) -> ErrorBody<'_> {
    ErrorBody {
        error: ErrorDetail {
            code,
            message,
            status: status(code),
            details: None,
        },
    }
}

/// One streamed chunk, or the whole non-streaming response.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    candidates: Vec<Candidate<'a>>,
    usage_metadata: UsageMetadata,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    future_field: Option<&'static str>,
}

impl<'a> Chunk<'a> {
    fn new(
        model: &'a str,
        scenario: &Scenario,
        parts: Vec<Part<'a>>,
        finish_reason: Option<&'static str>,
        usage_metadata: UsageMetadata,
    ) -> Self {
        Self {
            candidates: vec![Candidate {
                content: Content {
                    parts,
                    role: "model",
                },
                finish_reason,
                index: 0,
            }],
            usage_metadata,
            model_version: model,
            future_field: scenario
                .wire
                .extra_fields
                .then_some("clients must tolerate unknown fields"),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: Vec<Part<'a>>,
    role: &'static str,
}

#[derive(Serialize)]
struct Part<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
}

impl<'a> Part<'a> {
    fn text(text: &'a str) -> Self {
        Self {
            text,
            thought: None,
        }
    }

    fn thought(text: &'a str) -> Self {
        Self {
            text,
            thought: Some(true),
        }
    }
}

/// Usage so far. Every chunk carries the running total, never a delta.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<u64>,
    total_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content_token_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
}

impl UsageMetadata {
    /// While thinking Gemini reports no `candidatesTokenCount` at all.
    fn thinking(usage: MockUsage) -> Self {
        Self::with_candidates(usage, None)
    }

    /// After `sent` of `pieces` text pieces: candidates grow towards the total.
    fn running(usage: MockUsage, sent: usize, pieces: usize) -> Self {
        let visible = u128::from(usage.visible_output());
        let share = visible * to_u128(sent) / to_u128(pieces.max(1));
        Self::with_candidates(usage, Some(u64::try_from(share).unwrap_or(u64::MAX)))
    }

    fn total(usage: MockUsage) -> Self {
        Self::with_candidates(usage, Some(usage.visible_output()))
    }

    fn with_candidates(usage: MockUsage, candidates: Option<u64>) -> Self {
        let thoughts = usage.reasoning;
        Self {
            prompt_token_count: usage.input,
            candidates_token_count: candidates,
            total_token_count: usage
                .input
                .saturating_add(candidates.unwrap_or(0))
                .saturating_add(thoughts),
            cached_content_token_count: (usage.cached_input > 0).then_some(usage.cached_input),
            thoughts_token_count: (thoughts > 0).then_some(thoughts),
        }
    }
}

fn to_u128(count: usize) -> u128 {
    u128::try_from(count).unwrap_or(u128::MAX)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: u16,
    message: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Vec<ErrorInfo>>,
}

#[derive(Serialize)]
struct ErrorInfo {
    #[serde(rename = "@type")]
    kind: &'static str,
    reason: &'static str,
    domain: &'static str,
}

#[derive(Serialize)]
struct ModelList<'a> {
    models: Vec<Model<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Model<'a> {
    name: String,
    display_name: &'a str,
    input_token_limit: u64,
    output_token_limit: u64,
    supported_generation_methods: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Fault;

    fn chunks(scenario: &Scenario) -> Vec<Value> {
        Gemini::stream("gemini-x", scenario, None)
            .iter()
            .filter_map(|step| match step {
                Step::Data(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .map(|event| {
                serde_json::from_str(event.trim().strip_prefix("data: ").unwrap()).unwrap()
            })
            .collect()
    }

    #[test]
    fn thoughts_come_first_without_candidate_counts() {
        let scenario = Scenario::default()
            .with_reasoning(&["hmm"])
            .with_usage(MockUsage {
                input: 10,
                cached_input: 4,
                output: 9,
                reasoning: 5,
            });
        let chunks = chunks(&scenario);
        let thought = &chunks[0];
        assert_eq!(
            thought["candidates"][0]["content"]["parts"][0]["thought"],
            true
        );
        assert!(
            thought["usageMetadata"]
                .get("candidatesTokenCount")
                .is_none()
        );
        let last = &chunks.last().unwrap()["usageMetadata"];
        assert_eq!(last["candidatesTokenCount"], 4);
        assert_eq!(last["thoughtsTokenCount"], 5);
        assert_eq!(last["cachedContentTokenCount"], 4);
        assert_eq!(last["totalTokenCount"], 19);
    }

    #[test]
    fn cut_before_the_finish_chunk() {
        let scenario = Scenario::default().with_fault(Fault::CutAfter(2));
        let steps = Gemini::stream("gemini-x", &scenario, None);
        assert_eq!(steps.last(), Some(&Step::Cut));
        assert!(
            chunks(&scenario)
                .iter()
                .all(|chunk| chunk["candidates"][0].get("finishReason").is_none())
        );
    }

    #[test]
    fn mid_stream_error_is_a_data_line() {
        let scenario = Scenario::default().with_fault(Fault::ErrorEventAfter(1));
        let last = chunks(&scenario).pop().unwrap();
        assert_eq!(last["error"]["status"], "UNAVAILABLE");
        assert_eq!(last["error"]["code"], 503);
    }
}
