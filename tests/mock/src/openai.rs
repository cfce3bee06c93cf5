//! The OpenAI chat completions protocol, with the variations of the servers
//! that imitate it: OpenRouter's comments, cost and mid-stream errors, vLLM's
//! `"choices": null`, usage on the finish chunk.

use serde::Serialize;
use serde_json::Value;

use crate::http::{JsonReply, Request};
use crate::routes::Dialect;
use crate::scenario::{Finish, OpenAiUsage, Scenario};
use crate::sse::{Plan, Step, to_json};

/// The OpenAI dialect.
#[derive(Debug)]
pub(crate) struct OpenAi;

const PROCESSING: &str = "OPENROUTER PROCESSING";

impl Dialect for OpenAi {
    fn has_key(request: &Request, key: &str) -> bool {
        request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            == Some(key)
    }

    fn auth_error() -> JsonReply {
        error(
            401,
            "Incorrect API key provided",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        )
    }

    fn not_found(model: &str) -> JsonReply {
        let message =
            format!("The model `{model}` does not exist or you do not have access to it.");
        error(
            404,
            &message,
            "invalid_request_error",
            None,
            Some("model_not_found"),
        )
    }

    fn error(status: u16, message: &str) -> JsonReply {
        let kind = if status >= 500 {
            "server_error"
        } else {
            "invalid_request_error"
        };
        error(status, message, kind, None, None)
    }

    fn status_error(status: u16) -> JsonReply {
        match status {
            401 => Self::auth_error(),
            429 => error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            ),
            503 => Self::error(503, "The server is overloaded or not ready yet."),
            500..=599 => Self::error(
                status,
                "The server had an error while processing your request.",
            ),
            _ => Self::error(status, "Invalid request."),
        }
    }

    fn check_attachments(body: &Value) -> Result<(), String> {
        crate::attachments::check_openai(body)
    }

    fn context_too_long() -> JsonReply {
        error(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            Some("messages"),
            Some("context_length_exceeded"),
        )
    }

    fn overloaded() -> JsonReply {
        Self::error(502, "Upstream provider error")
    }

    fn stream(model: &str, scenario: &Scenario, request: Option<&Value>) -> Vec<Step> {
        let include_usage = request
            .and_then(|body| body.pointer("/stream_options/include_usage")?.as_bool())
            == Some(true);
        Stream::new(model, scenario, include_usage).render()
    }

    fn complete(model: &str, scenario: &Scenario) -> Vec<u8> {
        let text = scenario.full_text();
        let reasoning = scenario.full_reasoning();
        let completion = Completion {
            id: ID,
            object: "chat.completion",
            created: 1,
            model,
            choices: vec![CompletionChoice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: &text,
                    reasoning_content: (!reasoning.is_empty()).then_some(reasoning.as_str()),
                },
                finish_reason: finish_reason(scenario.finish),
            }],
            usage: Usage::of(scenario),
        };
        to_json(&completion).into_bytes()
    }

    fn model_list(models: &[String]) -> Vec<u8> {
        let list = ModelList {
            object: "list",
            data: models
                .iter()
                .map(|id| Model {
                    id,
                    object: "model",
                    created: 1,
                    owned_by: "mock",
                })
                .collect(),
        };
        to_json(&list).into_bytes()
    }
}

const ID: &str = "chatcmpl-mock";

/// Renders one streaming response.
struct Stream<'a> {
    plan: Plan,
    model: &'a str,
    scenario: &'a Scenario,
    include_usage: bool,
}

impl<'a> Stream<'a> {
    fn new(model: &'a str, scenario: &'a Scenario, include_usage: bool) -> Self {
        Self {
            plan: Plan::new(scenario),
            model,
            scenario,
            include_usage,
        }
    }

    fn render(mut self) -> Vec<Step> {
        // OpenRouter keeps the connection warm while the upstream thinks.
        if self.scenario.wire.comments {
            self.plan.comment(PROCESSING);
        }
        self.plan.sleep(self.scenario.ttft);
        self.send_delta(Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Delta::default()
        });
        let scenario = self.scenario;
        for piece in &scenario.reasoning {
            self.plan.piece();
            self.send_delta(Delta {
                reasoning_content: Some(piece),
                ..Delta::default()
            });
        }
        for sent in 0..=scenario.text.len() {
            let fault = scenario.mid_stream_fault(sent);
            let model = self.model;
            let flow = self
                .plan
                .inject(fault, |plan| plan.data(&error_chunk(model)));
            if flow.is_break() {
                return self.plan.into_steps();
            }
            if let Some(piece) = scenario.text.get(sent) {
                self.plan.piece();
                self.send_delta(Delta {
                    content: Some(piece),
                    ..Delta::default()
                });
            }
        }
        self.finish();
        self.plan.into_steps()
    }

    /// The finish chunk, usage where the wire puts it, then `[DONE]`.
    fn finish(&mut self) {
        let finish = ChunkChoice {
            index: 0,
            delta: Delta::default(),
            finish_reason: Some(finish_reason(self.scenario.finish)),
        };
        let usage = self.include_usage.then(|| Usage::of(self.scenario));
        match (usage, self.scenario.wire.openai_usage) {
            (None, _) => self.send(Some(vec![finish]), None),
            (Some(usage), OpenAiUsage::OnFinishChunk) => self.send(Some(vec![finish]), Some(usage)),
            (Some(usage), OpenAiUsage::FinalEmptyChunk) => {
                self.send(Some(vec![finish]), None);
                self.send(Some(Vec::new()), Some(usage));
            }
            (Some(usage), OpenAiUsage::ChoicesNull) => {
                self.send(Some(vec![finish]), None);
                self.send(None, Some(usage));
            }
        }
        if self.scenario.wire.done_marker {
            self.comment_between();
            self.plan.raw_data("[DONE]");
        }
    }

    fn send_delta(&mut self, delta: Delta<'a>) {
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason: None,
        };
        self.send(Some(vec![choice]), None);
    }

    fn send(&mut self, choices: Option<Vec<ChunkChoice<'a>>>, usage: Option<Usage>) {
        let extra = self.scenario.wire.extra_fields;
        let usage = match usage {
            Some(usage) => Some(Some(usage)),
            // Real OpenAI sends `"usage": null` on every other chunk.
            None if extra && self.include_usage => Some(None),
            None => None,
        };
        let chunk = Chunk {
            id: ID,
            object: "chat.completion.chunk",
            created: 1,
            model: self.model,
            system_fingerprint: extra.then_some("fp_mock"),
            error: None,
            choices,
            usage,
            obfuscation: extra.then_some("x"),
        };
        self.comment_between();
        self.plan.data(&chunk);
    }

    fn comment_between(&mut self) {
        if self.scenario.wire.comments {
            self.plan.comment(PROCESSING);
        }
    }
}

/// OpenRouter's mid-stream failure: HTTP 200 already sent, so the error rides
/// in a chunk with `finish_reason: "error"`.
fn error_chunk(model: &str) -> Chunk<'_> {
    Chunk {
        id: ID,
        object: "chat.completion.chunk",
        created: 1,
        model,
        system_fingerprint: None,
        error: Some(StreamError {
            code: 502,
            message: "Upstream provider error",
        }),
        choices: Some(vec![ChunkChoice {
            index: 0,
            delta: Delta {
                content: Some(""),
                ..Delta::default()
            },
            finish_reason: Some("error"),
        }]),
        usage: None,
        obfuscation: None,
    }
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
    }
}

fn error(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> JsonReply {
    let body = ErrorBody {
        error: ErrorDetail {
            message,
            kind,
            param,
            code,
        },
    };
    JsonReply::new(status, to_json(&body))
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'static str,
    object: &'static str,
    created: u64,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_fingerprint: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<StreamError>,
    /// `None` renders vLLM's `"choices": null`.
    choices: Option<Vec<ChunkChoice<'a>>>,
    /// `Some(None)` renders `"usage": null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    obfuscation: Option<&'static str>,
}

#[derive(Serialize)]
struct StreamError {
    code: u16,
    message: &'static str,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
}

impl Usage {
    fn of(scenario: &Scenario) -> Self {
        let usage = scenario.usage;
        Self {
            prompt_tokens: usage.input,
            completion_tokens: usage.output,
            total_tokens: usage.input.saturating_add(usage.output),
            prompt_tokens_details: PromptDetails {
                cached_tokens: usage.cached_input,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: usage.reasoning,
            },
            cost: scenario
                .cost_usd
                .as_deref()
                .and_then(|cost| cost.trim().parse::<f64>().ok())
                .filter(|cost| cost.is_finite()),
        }
    }
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'static str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<CompletionChoice<'a>>,
    usage: Usage,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<Model<'a>>,
}

#[derive(Serialize)]
struct Model<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Fault, Wire};

    fn sse(scenario: &Scenario, include_usage: bool) -> String {
        Stream::new("m", scenario, include_usage)
            .render()
            .iter()
            .map(|step| match step {
                Step::Data(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Step::Piece => String::new(),
                other => format!("<{other:?}>"),
            })
            .collect()
    }

    fn data_lines(text: &str) -> Vec<Value> {
        text.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    #[test]
    fn usage_placements() {
        let on_finish = Scenario::default().with_wire(Wire {
            openai_usage: OpenAiUsage::OnFinishChunk,
            ..Wire::default()
        });
        let chunks = data_lines(&sse(&on_finish, true));
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert_eq!(last["usage"]["completion_tokens"], 2);

        let null = Scenario::default().with_wire(Wire {
            openai_usage: OpenAiUsage::ChoicesNull,
            ..Wire::default()
        });
        let chunks = data_lines(&sse(&null, true));
        let last = chunks.last().unwrap();
        assert!(last["choices"].is_null());
        assert_eq!(last["usage"]["prompt_tokens"], 12);
    }

    #[test]
    fn no_usage_unless_asked_for() {
        let text = sse(&Scenario::default(), false);
        assert!(!text.contains("usage"), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn reasoning_cost_and_extra_fields() {
        let scenario = Scenario::default()
            .with_reasoning(&["Hmm"])
            .with_cost("0.00042")
            .with_wire(Wire {
                extra_fields: true,
                ..Wire::default()
            });
        let chunks = data_lines(&sse(&scenario, true));
        assert_eq!(chunks[1]["choices"][0]["delta"]["reasoning_content"], "Hmm");
        assert!(chunks.iter().all(|chunk| chunk["obfuscation"] == "x"));
        assert!(chunks[0]["usage"].is_null());
        assert_eq!(chunks.last().unwrap()["usage"]["cost"], 0.00042);
    }

    #[test]
    fn comments_before_and_between_events() {
        let scenario = Scenario::default().with_wire(Wire {
            comments: true,
            ..Wire::default()
        });
        let text = sse(&scenario, false);
        assert!(text.starts_with(": OPENROUTER PROCESSING\n\n"));
        let events = text
            .split("\n\n")
            .filter(|event| event.starts_with("data: "))
            .count();
        let comments = text.matches(": OPENROUTER PROCESSING\n\n").count();
        assert!(comments > events, "{text}");
    }

    #[test]
    fn error_event_ends_the_stream_without_done() {
        let scenario = Scenario::default().with_fault(Fault::ErrorEventAfter(1));
        let text = sse(&scenario, true);
        let chunks = data_lines(&text);
        let last = chunks.last().unwrap();
        assert_eq!(last["error"]["code"], 502);
        assert_eq!(last["choices"][0]["finish_reason"], "error");
        assert!(!text.contains("[DONE]"));
        assert!(!text.contains(" world"));
    }

    #[test]
    fn non_streaming_completion() {
        let body = OpenAi::complete("m", &Scenario::default().with_finish(Finish::Length));
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["object"], "chat.completion");
        assert_eq!(value["choices"][0]["message"]["content"], "Hello world");
        assert_eq!(value["choices"][0]["finish_reason"], "length");
        assert_eq!(value["usage"]["total_tokens"], 14);
    }
}
