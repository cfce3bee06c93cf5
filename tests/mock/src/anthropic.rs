//! The Anthropic Messages protocol: named events, content blocks, cumulative
//! `output_tokens`, pings and event types a client has never heard of.

use serde::Serialize;
use serde_json::Value;

use crate::http::{JsonReply, Request};
use crate::routes::Dialect;
use crate::scenario::{Finish, Scenario};
use crate::sse::{Plan, Step, to_json};

/// The Anthropic dialect.
#[derive(Debug)]
pub(crate) struct Anthropic;

const ID: &str = "msg_mock";
const SIGNATURE: &str = "mock-signature";

impl Dialect for Anthropic {
    fn precheck(request: &Request) -> Option<JsonReply> {
        request.header("anthropic-version").is_none().then(|| {
            error(
                400,
                "invalid_request_error",
                "anthropic-version: header is required",
            )
        })
    }

    fn has_key(request: &Request, key: &str) -> bool {
        request.header("x-api-key") == Some(key)
    }

    fn auth_error() -> JsonReply {
        error(401, "authentication_error", "invalid x-api-key")
    }

    fn not_found(model: &str) -> JsonReply {
        error(404, "not_found_error", &format!("model: {model}"))
    }

    fn error(status: u16, message: &str) -> JsonReply {
        error(status, error_type(status), message)
    }

    fn status_error(status: u16) -> JsonReply {
        let message = match status {
            401 => "invalid x-api-key",
            403 => "Your API key does not have permission to use the specified resource.",
            404 => "Not found",
            413 => "Request exceeds the maximum allowed number of bytes.",
            429 => {
                "This request would exceed the rate limit for your organization. Please try again later."
            }
            529 => "Overloaded",
            500..=599 => "Internal server error",
            _ => "Invalid request",
        };
        Self::error(status, message)
    }

    fn check_attachments(body: &Value) -> Result<(), String> {
        crate::attachments::check_anthropic(body)
    }

    fn context_too_long() -> JsonReply {
        error(
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
        )
    }

    fn overloaded() -> JsonReply {
        Self::status_error(529)
    }

    fn stream(model: &str, scenario: &Scenario, _request: Option<&Value>) -> Vec<Step> {
        Stream {
            plan: Plan::new(scenario),
            scenario,
        }
        .render(model)
    }

    fn complete(model: &str, scenario: &Scenario) -> Vec<u8> {
        let text = scenario.full_text();
        let reasoning = scenario.full_reasoning();
        let mut content = Vec::new();
        if !reasoning.is_empty() {
            content.push(Block::Thinking {
                thinking: &reasoning,
                signature: SIGNATURE,
            });
        }
        content.push(Block::Text { text: &text });
        let message = Message {
            stop_reason: Some(stop_reason(scenario.finish)),
            ..Message::new(model, content, Usage::of(scenario, scenario.usage.output))
        };
        to_json(&message).into_bytes()
    }

    fn model_list(models: &[String]) -> Vec<u8> {
        let list = ModelList {
            data: models
                .iter()
                .map(|id| Model {
                    kind: "model",
                    id,
                    display_name: id,
                    created_at: "2025-01-01T00:00:00Z",
                })
                .collect(),
            has_more: false,
            first_id: models.first().map(String::as_str),
            last_id: models.last().map(String::as_str),
        };
        to_json(&list).into_bytes()
    }
}

/// Renders one streaming response.
struct Stream<'a> {
    plan: Plan,
    scenario: &'a Scenario,
}

impl Stream<'_> {
    fn render(mut self, model: &str) -> Vec<Step> {
        let scenario = self.scenario;
        self.plan.sleep(scenario.ttft);
        // `output_tokens` starts at 1 and message_delta carries the final
        // cumulative total: a client that adds instead of assigning is off by one.
        self.send(&Event::MessageStart {
            message: Message::new(model, Vec::new(), Usage::of(scenario, 1)),
        });
        self.ping();
        if scenario.wire.pings {
            self.send(&Event::FutureEventType {
                detail: "clients must ignore event types they do not know",
            });
        }

        let mut index = 0;
        if !scenario.reasoning.is_empty() {
            self.thinking_block(index);
            index += 1;
        }
        self.send(&Event::ContentBlockStart {
            index,
            content_block: Block::Text { text: "" },
        });
        for sent in 0..=scenario.text.len() {
            let flow = self.plan.inject(scenario.mid_stream_fault(sent), |plan| {
                let error = Event::Error {
                    error: ErrorDetail {
                        kind: "overloaded_error",
                        message: "Overloaded",
                    },
                };
                plan.event(error.name(), &error);
            });
            if flow.is_break() {
                return self.plan.into_steps();
            }
            if let Some(piece) = scenario.text.get(sent) {
                self.plan.piece();
                self.send(&Event::ContentBlockDelta {
                    index,
                    delta: Delta::Text { text: piece },
                });
                self.ping();
            }
        }
        self.send(&Event::ContentBlockStop { index });
        self.send(&Event::MessageDelta {
            delta: StopInfo {
                stop_reason: stop_reason(scenario.finish),
                stop_sequence: None,
            },
            usage: OutputUsage {
                output_tokens: scenario.usage.output,
            },
        });
        self.send(&Event::MessageStop);
        self.plan.into_steps()
    }

    fn thinking_block(&mut self, index: usize) {
        self.send(&Event::ContentBlockStart {
            index,
            content_block: Block::Thinking {
                thinking: "",
                signature: "",
            },
        });
        for piece in &self.scenario.reasoning {
            self.plan.piece();
            self.send(&Event::ContentBlockDelta {
                index,
                delta: Delta::Thinking { thinking: piece },
            });
            self.ping();
        }
        self.send(&Event::ContentBlockDelta {
            index,
            delta: Delta::Signature {
                signature: SIGNATURE,
            },
        });
        self.send(&Event::ContentBlockStop { index });
    }

    fn ping(&mut self) {
        if self.scenario.wire.pings {
            self.send(&Event::Ping);
        }
    }

    fn send(&mut self, event: &Event<'_>) {
        let name = event.name();
        if self.scenario.wire.extra_fields {
            let tolerant = WithUnknownField {
                event,
                future_field: "clients must tolerate unknown fields",
            };
            self.plan.event(name, &tolerant);
        } else {
            self.plan.event(name, event);
        }
    }
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
    }
}

fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

fn error(status: u16, kind: &str, message: &str) -> JsonReply {
    let body = Event::Error {
        error: ErrorDetail { kind, message },
    };
    JsonReply::new(status, to_json(&body))
}

/// Every event type; the SSE event name is the `type` tag.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: Message<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block<'a>,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: StopInfo,
        usage: OutputUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorDetail<'a>,
    },
    FutureEventType {
        detail: &'static str,
    },
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
            Self::FutureEventType { .. } => "future_event_type",
        }
    }
}

#[derive(Serialize)]
struct WithUnknownField<'a> {
    #[serde(flatten)]
    event: &'a Event<'a>,
    future_field: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: Usage,
}

impl<'a> Message<'a> {
    fn new(model: &'a str, content: Vec<Block<'a>>, usage: Usage) -> Self {
        Self {
            id: ID,
            kind: "message",
            role: "assistant",
            model,
            content,
            stop_reason: None,
            stop_sequence: None,
            usage,
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    Text {
        text: &'a str,
    },
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

#[derive(Serialize)]
struct Usage {
    /// Excludes cached tokens, unlike OpenAI's `prompt_tokens`.
    input_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
    output_tokens: u64,
}

impl Usage {
    fn of(scenario: &Scenario, output_tokens: u64) -> Self {
        Self {
            input_tokens: scenario.usage.uncached_input(),
            cache_read_input_tokens: scenario.usage.cached_input,
            cache_creation_input_tokens: 0,
            output_tokens,
        }
    }
}

#[derive(Serialize)]
struct StopInfo {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct ModelList<'a> {
    data: Vec<Model<'a>>,
    has_more: bool,
    first_id: Option<&'a str>,
    last_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Model<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    display_name: &'a str,
    created_at: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Fault, MockUsage, Wire};

    /// `(event name, data)` pairs of a rendered stream.
    fn events(scenario: &Scenario) -> Vec<(String, Value)> {
        let text: String = Anthropic::stream("claude-x", scenario, None)
            .iter()
            .filter_map(|step| match step {
                Step::Data(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
                _ => None,
            })
            .collect();
        text.split("\n\n")
            .filter(|event| !event.is_empty())
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                let data = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                (name, data)
            })
            .collect()
    }

    #[test]
    fn event_names_match_their_types() {
        for (name, data) in events(&Scenario::default()) {
            assert_eq!(data["type"], name.as_str());
        }
    }

    #[test]
    fn thinking_block_comes_first_and_usage_is_cumulative() {
        let scenario = Scenario::default()
            .with_reasoning(&["Let me", " think"])
            .with_usage(MockUsage {
                input: 100,
                cached_input: 40,
                output: 30,
                reasoning: 20,
            });
        let events = events(&scenario);
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        let usage = &events[0].1["message"]["usage"];
        assert_eq!(usage["input_tokens"], 60);
        assert_eq!(usage["cache_read_input_tokens"], 40);
        assert_eq!(usage["output_tokens"], 1);
        assert_eq!(events[1].1["content_block"]["type"], "thinking");
        assert_eq!(events[2].1["delta"]["thinking"], "Let me");
        assert_eq!(events[6].1["index"], 1);
        assert_eq!(events[10].1["usage"]["output_tokens"], 30);
    }

    #[test]
    fn error_event_replaces_the_rest_of_the_stream() {
        let scenario = Scenario::default().with_fault(Fault::ErrorEventAfter(0));
        let events = events(&scenario);
        let (name, data) = events.last().unwrap();
        assert_eq!(name, "error");
        assert_eq!(data["error"]["type"], "overloaded_error");
        assert!(events.iter().all(|(name, _)| name != "message_stop"));
    }

    #[test]
    fn unknown_fields_are_added_to_every_event() {
        let scenario = Scenario::default().with_wire(Wire {
            extra_fields: true,
            ..Wire::default()
        });
        assert!(
            events(&scenario)
                .iter()
                .all(|(_, data)| data["future_field"].is_string())
        );
    }

    #[test]
    fn non_streaming_message() {
        let body = Anthropic::complete("claude-x", &Scenario::default().with_reasoning(&["r"]));
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["content"][0]["type"], "thinking");
        assert_eq!(value["content"][1]["text"], "Hello world");
        assert_eq!(value["stop_reason"], "end_turn");
        assert_eq!(value["usage"]["output_tokens"], 2);
    }
}
