//! One provider suite, run against every wire protocol: each behaviour below
//! is an `async fn(Protocol)`, and [`provider_tests!`] turns it into a module
//! with one test per protocol (`streams_text_usage_cost_and_timing::openai`,
//! `::anthropic`, `::gemini`).
//!
//! Everything goes through the real engine (`Client`, `run_attempt`, the
//! catalog's model list) over real loopback HTTP to `switchboard_mock`, which
//! speaks each vendor's wire format and can split, stall, cut or corrupt the
//! stream. A fresh mock per test and one model name per behaviour keep the
//! tests independent. Assertions are about what a user would see: the text,
//! the token counts, the cost and its source, the timings, and how a failure
//! is classified.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_engine::Attachment;
use switchboard_engine::{
    Accumulator, AttemptResult, ChatRequest, Client, CostSource, ErrorKind, FinishReason, Message,
    ModelPrice, Params, Price, ProviderConfig, ProviderKind, Secret, StreamEvent, Timeouts, Usage,
    catalog::list_models, run_attempt,
};
use switchboard_mock::samples;
use switchboard_mock::{Fault, MockServer, MockUsage, OpenAiUsage, Protocol, Scenario, Wire};

/// For each behaviour `async fn name(p: Protocol)`, a module `name` with one
/// `#[tokio::test]` per protocol.
macro_rules! provider_tests {
    ($($behaviour:ident),+ $(,)?) => {
        $(
            mod $behaviour {
                use switchboard_mock::Protocol;

                #[tokio::test]
                async fn openai() {
                    super::$behaviour(Protocol::OpenAi).await;
                }

                #[tokio::test]
                async fn anthropic() {
                    super::$behaviour(Protocol::Anthropic).await;
                }

                #[tokio::test]
                async fn gemini() {
                    super::$behaviour(Protocol::Gemini).await;
                }
            }
        )+
    };
}

provider_tests! {
    streams_text_usage_cost_and_timing,
    utf8_and_lines_split_at_every_byte,
    crlf_line_endings,
    tolerates_pings_comments_and_unknown_fields,
    reasoning_is_kept_apart,
    cut_mid_stream_is_interrupted_with_text_kept,
    stall_hits_the_idle_timeout,
    no_first_token_hits_the_first_token_timeout,
    garbage_line_is_malformed_with_text_kept,
    mid_stream_error_event,
    http_errors_are_classified,
    wrong_key_is_auth,
    system_prompt_and_turns_reach_the_right_place,
    non_streaming_complete,
    model_list,
    dropping_the_stream_cancels,
    image_and_pdf_reach_the_wire_byte_for_byte,
    a_wrongly_typed_attachment_is_refused_like_the_provider_would,
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

/// The key every scenario requires (unless a test says otherwise).
const KEY: &str = "sk-test";

/// The user's prompt: 20 characters, so an estimate of 5 input tokens at the
/// engine's documented 4 characters per token.
const PROMPT: &str = "Say hi in German pls";

/// Text with multi-byte characters (2-byte `ü`/`ß`, 4-byte emoji), so a
/// split anywhere in a character would show as garbage.
const PIECES: [&str; 4] = ["Grüße", ", Welt", " 🎉", "!"];

/// Ground truth: 1000 prompt tokens of which 400 cached; 300 output tokens
/// of which 50 reasoning. Non-zero everywhere, so "reported" and "not
/// reported" cannot be confused.
const USAGE: MockUsage = MockUsage {
    input: 1000,
    cached_input: 400,
    output: 300,
    reasoning: 50,
};

/// `USAGE` at `price()`, by hand, in nano-dollars ($1 = 1e9 nanos; $X/Mtok =
/// X*1000 nanos per token):
/// (1000 - 400) * 2000 + 400 * 500 + 300 * 8000
/// = 1_200_000 + 200_000 + 2_400_000.
const USAGE_COST_NANOS: i64 = 3_800_000;

/// Generous limits for tests that are not about timeouts.
const RELAXED: Timeouts = Timeouts {
    first_token: Duration::from_secs(5),
    idle: Duration::from_secs(5),
    total: Duration::from_secs(10),
};

/// $2 per Mtok input, $8 output, $0.50 cached input.
fn price() -> ModelPrice {
    ModelPrice::new(
        Price::from_usd_per_mtok("2").unwrap(),
        Price::from_usd_per_mtok("8").unwrap(),
        Some(Price::from_usd_per_mtok("0.5").unwrap()),
    )
}

fn kind_of(p: Protocol) -> ProviderKind {
    match p {
        Protocol::OpenAi => ProviderKind::OpenAi,
        Protocol::Anthropic => ProviderKind::Anthropic,
        Protocol::Gemini => ProviderKind::Gemini,
    }
}

/// The scripted answer most behaviours start from.
fn scenario() -> Scenario {
    Scenario::default()
        .with_text(&PIECES)
        .with_usage(USAGE)
        .with_key(KEY)
}

/// `USAGE` as each protocol reports it once normalized. Anthropic has no
/// reasoning count (its thinking tokens are only inside `output_tokens`).
fn reported(p: Protocol, usage: MockUsage) -> Usage {
    Usage {
        input_tokens: Some(usage.input),
        output_tokens: Some(usage.output),
        cached_input_tokens: Some(usage.cached_input),
        reasoning_tokens: match p {
            Protocol::Anthropic => None,
            Protocol::OpenAi | Protocol::Gemini => Some(usage.reasoning),
        },
        // Anthropic reports cache writes (none here); the others do not.
        cache_write_tokens: match p {
            Protocol::Anthropic => Some(0),
            Protocol::OpenAi | Protocol::Gemini => None,
        },
        cache_write_1h_tokens: None,
    }
}

/// A fresh mock server, and the engine's view of it in one protocol.
struct Harness {
    server: MockServer,
    provider: ProviderConfig,
    client: Client,
    key: Option<Secret>,
}

impl Harness {
    async fn start(protocol: Protocol) -> Self {
        let server = MockServer::start().await.unwrap();
        let kind = kind_of(protocol);
        let id = format!("mock-{}", kind.as_str());
        let provider = ProviderConfig::custom(&id, kind, &server.base_url(protocol));
        Self {
            server,
            provider,
            client: Client::new(),
            key: Some(Secret::new(KEY)),
        }
    }

    /// A fresh mock with `model` scripted.
    async fn with(protocol: Protocol, model: &str, scenario: Scenario) -> Self {
        let harness = Self::start(protocol).await;
        harness.server.script(model, scenario);
        harness
    }

    async fn run(&self, request: &ChatRequest, timeouts: Timeouts) -> AttemptResult {
        let price = price();
        run_attempt(
            &self.client,
            &self.provider,
            self.key.as_ref(),
            request,
            Some(&price),
            timeouts,
            |_| {},
        )
        .await
    }

    /// One attempt at `model` with the default prompt and relaxed limits.
    async fn ask(&self, model: &str) -> AttemptResult {
        self.run(&ChatRequest::new(model, PROMPT), RELAXED).await
    }

    /// The last generation request the server received.
    fn last_generation(&self) -> switchboard_mock::RecordedRequest {
        self.server
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.method == "POST")
            .expect("a generation request reached the server")
    }
}

/// A complete, correct answer: the exact text, a normal stop, the usage the
/// protocol reported and the cost computed from it to the nano-dollar.
fn assert_full_answer(p: Protocol, result: &AttemptResult, expected_text: &str) {
    assert!(
        result.error.is_none(),
        "unexpected error: {:?}",
        result.error
    );
    assert_eq!(result.text, expected_text);
    assert_eq!(result.finish_reason, Some(FinishReason::Stop));
    assert_eq!(result.usage, reported(p, USAGE));
    let cost = result.cost.expect("a priced model has a cost");
    assert_eq!(cost.source, CostSource::Computed);
    assert_eq!(cost.total.nanos(), USAGE_COST_NANOS);
}

fn error_of(result: &AttemptResult) -> &switchboard_engine::ProviderError {
    result
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("expected a failure, got {result:?}"))
}

// ---------------------------------------------------------------------------
// Behaviours, run against every protocol
// ---------------------------------------------------------------------------

async fn streams_text_usage_cost_and_timing(p: Protocol) {
    let model = "m-streams_text_usage_cost_and_timing";
    let ttft = Duration::from_millis(120);
    // Pieces 150 ms apart: a time to first token that took in the rest of
    // the stream would be late by at least that much, a loaded machine by
    // far less.
    let gap = Duration::from_millis(150);
    let h = Harness::with(p, model, scenario().with_ttft(ttft).with_gap(gap)).await;

    let result = h.ask(model).await;

    assert_full_answer(p, &result, "Grüße, Welt 🎉!");
    assert_eq!(result.provider, h.provider.id);
    assert_eq!(result.model, model);
    assert!(result.reasoning.is_empty());

    let timing = result.timing;
    let measured = timing.ttft.expect("a first token arrived");
    assert!(
        measured >= ttft && measured < ttft + Duration::from_millis(120),
        "ttft {measured:?}, the server waited {ttft:?}"
    );
    // Three gaps separate the four pieces: the generation phase has a length.
    assert!(
        timing.total >= measured + 3 * gap,
        "total {:?} vs ttft {measured:?}",
        timing.total
    );
    let tps = timing.tokens_per_s.expect("tokens/s is measured");
    let ceiling = USAGE.output as f64 / (3 * gap).as_secs_f64();
    assert!(tps > 0.0 && tps <= ceiling, "tokens/s {tps}");
}

async fn utf8_and_lines_split_at_every_byte(p: Protocol) {
    let model = "m-utf8_and_lines_split_at_every_byte";
    let wire = Wire {
        split_every: Some(1),
        ..Wire::default()
    };
    let h = Harness::with(p, model, scenario().with_wire(wire)).await;
    assert_full_answer(p, &h.ask(model).await, "Grüße, Welt 🎉!");
}

async fn crlf_line_endings(p: Protocol) {
    let model = "m-crlf_line_endings";
    let wire = Wire {
        crlf: true,
        ..Wire::default()
    };
    let h = Harness::with(p, model, scenario().with_wire(wire)).await;
    assert_full_answer(p, &h.ask(model).await, "Grüße, Welt 🎉!");
}

async fn tolerates_pings_comments_and_unknown_fields(p: Protocol) {
    let model = "m-tolerates_pings_comments_and_unknown_fields";
    // Each flag matters to some protocols only; all are set for all.
    let wire = Wire {
        pings: true,
        comments: true,
        extra_fields: true,
        crlf: true,
        split_every: Some(7),
        ..Wire::default()
    };
    let h = Harness::with(p, model, scenario().with_wire(wire)).await;
    assert_full_answer(p, &h.ask(model).await, "Grüße, Welt 🎉!");
}

async fn reasoning_is_kept_apart(p: Protocol) {
    let model = "m-reasoning_is_kept_apart";
    let thinking = ["The user wants ", "a greeting… ", "in German."];
    let gap = Duration::from_millis(40);
    let h = Harness::with(p, model, scenario().with_reasoning(&thinking).with_gap(gap)).await;

    let result = h.ask(model).await;

    // Thinking is timed apart: TTFT is to the first answer token, three
    // gaps after the first reasoning token.
    let t = result.timing;
    let first = t.first_token.expect("the first reasoning token arrived");
    let ttft = t.ttft.expect("the first answer token arrived");
    assert!(
        ttft >= first + 3 * gap,
        "ttft {ttft:?}, first token {first:?}"
    );
    assert_eq!(t.thinking, Some(ttft - first));
    // Tokens/s counts the answer's tokens over the answer's time: visible
    // tokens over at least the three gaps between the four text pieces.
    let visible = match p {
        // No reasoning count: the text's share of the streamed characters.
        Protocol::Anthropic => {
            let text = PIECES.concat().chars().count() as u64;
            let thought = thinking.concat().chars().count() as u64;
            USAGE.output * text / (text + thought)
        }
        Protocol::OpenAi | Protocol::Gemini => USAGE.output - USAGE.reasoning,
    };
    let tps = t.tokens_per_s.expect("tokens/s is measured");
    let ceiling = visible as f64 / (3 * gap).as_secs_f64();
    let floor = visible as f64 / (3 * gap + Duration::from_millis(300)).as_secs_f64();
    assert!(
        tps <= ceiling && tps >= floor,
        "{tps} tok/s, not in {floor}..{ceiling}"
    );

    assert_full_answer(p, &result, "Grüße, Welt 🎉!");
    assert_eq!(result.reasoning, thinking.concat());
    assert!(
        !result.text.contains("greeting"),
        "reasoning leaked into text"
    );
    let expected_reasoning_tokens = match p {
        Protocol::Anthropic => None,
        Protocol::OpenAi | Protocol::Gemini => Some(USAGE.reasoning),
    };
    assert_eq!(result.usage.reasoning_tokens, expected_reasoning_tokens);
}

async fn cut_mid_stream_is_interrupted_with_text_kept(p: Protocol) {
    let model = "m-cut_mid_stream_is_interrupted_with_text_kept";
    let h = Harness::with(p, model, scenario().with_fault(Fault::CutAfter(2))).await;

    let result = h.ask(model).await;

    assert_eq!(error_of(&result).kind, ErrorKind::Interrupted);
    assert_eq!(result.text, "Grüße, Welt", "the text that arrived is kept");
    assert_eq!(result.finish_reason, None);
    let cost = result.cost.expect("a cut answer still costs something");
    // Estimates: 20 prompt characters -> 5 tokens; "Grüße, Welt" is 11
    // characters -> 3 tokens (4 characters per token, rounded up).
    match p {
        Protocol::OpenAi => {
            // Usage comes only in the last chunk, which never came.
            assert_eq!(result.usage, Usage::default());
            assert_eq!(cost.source, CostSource::Estimated);
            // 5 * 2000 + 3 * 8000
            assert_eq!(cost.total.nanos(), 34_000);
        }
        Protocol::Anthropic => {
            // message_start reported the input (and a placeholder output of
            // 1); the real output count comes in message_delta, which never
            // came: input is known, output must be estimated.
            assert_eq!(result.usage.input_tokens, Some(USAGE.input));
            assert_eq!(result.usage.cached_input_tokens, Some(USAGE.cached_input));
            assert_eq!(
                cost.source,
                CostSource::Estimated,
                "output tokens were never reported (usage {:?})",
                result.usage
            );
            // 600 * 2000 + 400 * 500 + 3 * 8000
            assert_eq!(cost.total.nanos(), 1_424_000);
        }
        Protocol::Gemini => {
            // Every chunk carries running totals: after 2 of 4 pieces, half
            // the 250 visible tokens, plus the 50 thought tokens.
            let running = Usage {
                output_tokens: Some(125 + 50),
                ..reported(p, USAGE)
            };
            assert_eq!(result.usage, running);
            assert_eq!(cost.source, CostSource::Computed);
            // 600 * 2000 + 400 * 500 + 175 * 8000
            assert_eq!(cost.total.nanos(), 2_800_000);
        }
    }
}

async fn stall_hits_the_idle_timeout(p: Protocol) {
    let model = "m-stall_hits_the_idle_timeout";
    let h = Harness::with(p, model, scenario().with_fault(Fault::StallAfter(1))).await;
    let timeouts = Timeouts {
        idle: Duration::from_millis(300),
        ..RELAXED
    };

    let result = h.run(&ChatRequest::new(model, PROMPT), timeouts).await;

    let error = error_of(&result);
    assert_eq!(error.kind, ErrorKind::Timeout);
    assert!(error.is_retryable());
    assert_eq!(result.text, "Grüße");
    let first = result.timing.ttft.expect("the first piece arrived");
    let silence = result.timing.total.saturating_sub(first);
    assert!(
        silence >= Duration::from_millis(300) && silence <= Duration::from_millis(800),
        "gave up {silence:?} after the first token; the idle limit is 300 ms"
    );
}

async fn no_first_token_hits_the_first_token_timeout(p: Protocol) {
    let model = "m-no_first_token_hits_the_first_token_timeout";
    let h = Harness::with(p, model, scenario().with_ttft(Duration::from_secs(2))).await;
    let timeouts = Timeouts {
        first_token: Duration::from_millis(300),
        ..RELAXED
    };

    let started = Instant::now();
    let result = h.run(&ChatRequest::new(model, PROMPT), timeouts).await;
    let waited = started.elapsed();

    assert_eq!(error_of(&result).kind, ErrorKind::Timeout);
    assert_eq!(result.text, "");
    assert_eq!(result.timing.ttft, None);
    assert!(
        result.timing.total >= Duration::from_millis(300),
        "{:?}",
        result.timing.total
    );
    assert!(
        result.timing.total < Duration::from_millis(1500) && waited < Duration::from_millis(1500),
        "took {waited:?} (measured {:?}); the first-token limit is 300 ms",
        result.timing.total
    );
}

async fn garbage_line_is_malformed_with_text_kept(p: Protocol) {
    let model = "m-garbage_line_is_malformed_with_text_kept";
    let h = Harness::with(p, model, scenario().with_fault(Fault::GarbageAfter(1))).await;

    let result = h.ask(model).await;

    let error = error_of(&result);
    assert_eq!(error.kind, ErrorKind::Malformed);
    assert_eq!(error.raw.as_deref(), Some("{not json"));
    assert_eq!(result.text, "Grüße");
}

async fn mid_stream_error_event(p: Protocol) {
    let model = "m-mid_stream_error_event";
    let h = Harness::with(p, model, scenario().with_fault(Fault::ErrorEventAfter(1))).await;

    let result = h.ask(model).await;

    // OpenRouter: `error.code` 502; Anthropic: overloaded_error; Gemini:
    // an error object with status UNAVAILABLE.
    let error = error_of(&result);
    assert_eq!(error.kind, ErrorKind::Overloaded, "{error:?}");
    assert!(error.allows_fallback());
    assert!(!error.message.is_empty());
    match p {
        Protocol::OpenAi => assert_eq!(error.status, Some(502)),
        Protocol::Gemini => assert_eq!(error.status, Some(503)),
        Protocol::Anthropic => {}
    }
    assert_eq!(result.text, "Grüße", "the text before the error is kept");
}

async fn http_errors_are_classified(p: Protocol) {
    struct Case {
        fault: Fault,
        kind: ErrorKind,
        status: u16,
        retry_after: Option<Duration>,
        retryable: bool,
    }
    let status = |code, retry_after_s| Fault::Status {
        code,
        retry_after_s,
    };
    let cases = [
        Case {
            fault: status(429, Some(7)),
            kind: ErrorKind::RateLimited,
            status: 429,
            retry_after: Some(Duration::from_secs(7)),
            retryable: true,
        },
        Case {
            fault: status(503, None),
            kind: ErrorKind::Overloaded,
            status: 503,
            retry_after: None,
            retryable: true,
        },
        // Anthropic's "overloaded"; any 5xx means the same elsewhere.
        Case {
            fault: status(529, None),
            kind: ErrorKind::Overloaded,
            status: 529,
            retry_after: None,
            retryable: true,
        },
        Case {
            fault: status(401, None),
            kind: ErrorKind::Auth,
            status: 401,
            retry_after: None,
            retryable: false,
        },
        Case {
            fault: status(404, None),
            kind: ErrorKind::NotFound,
            status: 404,
            retry_after: None,
            retryable: false,
        },
        Case {
            fault: status(400, None),
            kind: ErrorKind::BadRequest,
            status: 400,
            retry_after: None,
            retryable: false,
        },
        Case {
            fault: Fault::ContextTooLong,
            kind: ErrorKind::ContextTooLong,
            status: 400,
            retry_after: None,
            retryable: false,
        },
    ];
    let h = Harness::start(p).await;
    for (i, case) in cases.iter().enumerate() {
        let model = format!("m-http_errors_are_classified-{i}");
        h.server
            .script(&model, scenario().with_fault(case.fault.clone()));

        let result = h.ask(&model).await;

        let what = &case.fault;
        let error = error_of(&result);
        assert_eq!(error.kind, case.kind, "{what:?}: {error:?}");
        assert_eq!(error.status, Some(case.status), "{what:?}");
        assert_eq!(error.retry_after, case.retry_after, "{what:?}");
        assert_eq!(error.is_retryable(), case.retryable, "{what:?}");
        assert_eq!(
            error.allows_fallback(),
            case.kind != ErrorKind::BadRequest,
            "{what:?}"
        );
        assert!(!error.message.trim().is_empty(), "{what:?}: no message");
        assert_eq!(error.provider, h.provider.id);
        assert_eq!(result.text, "", "{what:?}");
        assert_eq!(result.timing.ttft, None, "{what:?}");
        assert_eq!(
            result.cost, None,
            "{what:?}: a refused request is not billed"
        );
    }
}

async fn wrong_key_is_auth(p: Protocol) {
    let model = "m-wrong_key_is_auth";
    let mut h = Harness::with(p, model, scenario().with_key("right")).await;
    h.key = Some(Secret::new("wrong"));

    let result = h.ask(model).await;

    let error = error_of(&result);
    assert_eq!(error.kind, ErrorKind::Auth, "{error:?}");
    // Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID.
    let expected_status = match p {
        Protocol::Gemini => 400,
        Protocol::OpenAi | Protocol::Anthropic => 401,
    };
    assert_eq!(error.status, Some(expected_status));
    assert!(!error.is_retryable(), "the same key will fail again");
    assert!(error.allows_fallback(), "another key or provider may work");
    assert!(!error.message.is_empty());
    assert!(
        !error.message.contains("wrong") && !error.to_string().contains("wrong"),
        "the key must not be echoed: {error}"
    );
    assert_eq!(result.text, "");
    assert_eq!(result.cost, None);
}

async fn system_prompt_and_turns_reach_the_right_place(p: Protocol) {
    let model = "m-system_prompt_and_turns_reach_the_right_place";
    let h = Harness::with(p, model, scenario()).await;
    let request = ChatRequest {
        model: model.to_owned(),
        system: Some("Be terse.".to_owned()),
        messages: vec![
            Message::user("Hi"),
            Message::assistant("Hello."),
            Message::user("Say hi in German"),
        ],
        params: Params {
            temperature: Some(0.2),
            top_p: Some(0.9),
            max_tokens: Some(50),
            stop: vec!["END".to_owned()],
        },
    };

    let result = h.run(&request, RELAXED).await;
    assert_full_answer(p, &result, "Grüße, Welt 🎉!");

    let sent = h.last_generation();
    let body = sent.body.clone().expect("a JSON body");
    let approx = |v: &Value, expected: f64| {
        let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
        assert!((got - expected).abs() < 1e-6, "{got} != {expected}");
    };
    let turn = |role: &str, text: &str| json!({ "role": role, "content": text });
    match p {
        Protocol::OpenAi => {
            assert_eq!(sent.path, "/v1/chat/completions");
            assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
            assert_eq!(
                body["messages"],
                json!([
                    turn("system", "Be terse."),
                    turn("user", "Hi"),
                    turn("assistant", "Hello."),
                    turn("user", "Say hi in German"),
                ])
            );
            assert_eq!(body["model"], model);
            assert_eq!(body["stream"], true);
            assert_eq!(body["stream_options"]["include_usage"], true);
            assert_eq!(body["max_tokens"], 50);
            assert_eq!(body["stop"], json!(["END"]));
            approx(&body["temperature"], 0.2);
            approx(&body["top_p"], 0.9);
        }
        Protocol::Anthropic => {
            assert_eq!(sent.path, "/v1/messages");
            assert_eq!(sent.header("x-api-key"), Some("sk-test"));
            assert!(
                sent.header("anthropic-version")
                    .is_some_and(|v| !v.is_empty()),
                "anthropic-version header missing"
            );
            assert_eq!(sent.header("authorization"), None);
            assert_eq!(body["system"], "Be terse.");
            assert_eq!(
                body["messages"],
                json!([
                    turn("user", "Hi"),
                    turn("assistant", "Hello."),
                    turn("user", "Say hi in German"),
                ]),
                "the system prompt is not a message"
            );
            assert_eq!(body["model"], model);
            assert_eq!(body["stream"], true);
            assert_eq!(body["max_tokens"], 50);
            assert_eq!(body["stop_sequences"], json!(["END"]));
            approx(&body["temperature"], 0.2);
            approx(&body["top_p"], 0.9);
        }
        Protocol::Gemini => {
            assert_eq!(
                sent.path,
                format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
            );
            assert_eq!(sent.header("x-goog-api-key"), Some("sk-test"));
            assert!(!sent.path.contains("key="), "the key is not in the URL");
            assert_eq!(
                body["systemInstruction"],
                json!({ "parts": [{ "text": "Be terse." }] })
            );
            let part =
                |role: &str, text: &str| json!({ "role": role, "parts": [{ "text": text }] });
            assert_eq!(
                body["contents"],
                json!([
                    part("user", "Hi"),
                    part("model", "Hello."),
                    part("user", "Say hi in German"),
                ])
            );
            let config = &body["generationConfig"];
            assert_eq!(config["maxOutputTokens"], 50);
            assert_eq!(config["stopSequences"], json!(["END"]));
            approx(&config["temperature"], 0.2);
            approx(&config["topP"], 0.9);
        }
    }

    // Without a limit: Anthropic requires one and gets 4096; the others get
    // none and keep the provider's default.
    let plain = ChatRequest::new(model, PROMPT);
    assert!(h.run(&plain, RELAXED).await.is_ok());
    let body = h.last_generation().body.expect("a JSON body");
    match p {
        Protocol::Anthropic => {
            assert_eq!(body["max_tokens"], 4096);
            assert!(body.get("system").is_none());
        }
        Protocol::OpenAi => {
            assert!(body.get("max_tokens").is_none(), "{body}");
            assert_eq!(body["messages"], json!([turn("user", PROMPT)]));
        }
        Protocol::Gemini => {
            assert!(
                body.pointer("/generationConfig/maxOutputTokens").is_none(),
                "{body}"
            );
            assert!(body.get("systemInstruction").is_none());
        }
    }
}

async fn non_streaming_complete(p: Protocol) {
    let model = "m-non_streaming_complete";
    let thinking = ["Hmm, ", "German."];
    let h = Harness::with(p, model, scenario().with_reasoning(&thinking)).await;
    let request = ChatRequest::new(model, PROMPT);

    let events = h
        .client
        .complete(&h.provider, h.key.as_ref(), &request)
        .await
        .unwrap();

    let mut acc = Accumulator::new(&h.provider.id, model);
    for event in &events {
        acc.push(event);
    }
    let price = price();
    let result = acc.finish(
        Duration::ZERO,
        Some(&price),
        request.estimated_input_tokens(h.provider.kind),
    );
    assert_full_answer(p, &result, "Grüße, Welt 🎉!");
    assert_eq!(result.reasoning, thinking.concat());

    let sent = h.last_generation();
    match p {
        Protocol::Gemini => {
            assert_eq!(sent.path, format!("/v1beta/models/{model}:generateContent"))
        }
        Protocol::OpenAi | Protocol::Anthropic => {
            assert_eq!(sent.body.expect("a JSON body")["stream"], false);
        }
    }
}

async fn model_list(p: Protocol) {
    let h = Harness::start(p).await;
    let ids = ["m-model_list-a", "m-model_list-b", "m-model_list-c"];
    for id in ids {
        h.server.script(id, scenario());
    }

    let models = list_models(&h.client, &h.provider, h.key.as_ref())
        .await
        .unwrap();

    let mut got: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, ids, "Gemini's `models/` prefix is stripped too");

    // The list is the cheapest authenticated call: a wrong key fails it.
    let wrong = Some(Secret::new("wrong"));
    let error = list_models(&h.client, &h.provider, wrong.as_ref())
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Auth, "{error:?}");
}

async fn dropping_the_stream_cancels(p: Protocol) {
    let slow = "m-dropping_the_stream_cancels-slow";
    let fast = "m-dropping_the_stream_cancels-fast";
    let h = Harness::start(p).await;
    let pieces = ["tick "; 20];
    // 19 more pieces 200 ms apart: about 4 s if the client kept reading.
    h.server.script(
        slow,
        scenario()
            .with_text(&pieces)
            .with_gap(Duration::from_millis(200)),
    );
    h.server.script(fast, scenario());

    let request = ChatRequest::new(slow, PROMPT);
    let mut stream = h
        .client
        .stream(&h.provider, h.key.as_ref(), &request)
        .await
        .unwrap();
    let first_text = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(timed) = stream.next().await {
            if let StreamEvent::TextDelta(text) = timed.event {
                return text;
            }
        }
        panic!("the stream ended before any text");
    })
    .await
    .expect("the first piece arrives at once");
    assert_eq!(first_text, "tick ");

    let dropped = Instant::now();
    drop(stream);
    assert!(
        dropped.elapsed() < Duration::from_millis(50),
        "dropping took {:?}",
        dropped.elapsed()
    );

    // The server is not tied up by the abandoned answer: a new request on
    // the same client and server is answered at once.
    let started = Instant::now();
    let result = h.ask(fast).await;
    assert_full_answer(p, &result, "Grüße, Welt 🎉!");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the next answer waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        h.server.hits(slow),
        1,
        "the dropped request was not retried"
    );
    // NOTE: `MockServer` exposes no per-connection state, so the server-side
    // disconnect itself cannot be asserted here; the engine closes the
    // connection by dropping the reqwest response (see client.rs).
}

// ---------------------------------------------------------------------------
// OpenAI protocol only
// ---------------------------------------------------------------------------

#[tokio::test]
async fn openai_usage_placements_give_the_same_usage() {
    for (i, placement) in [
        OpenAiUsage::FinalEmptyChunk,
        OpenAiUsage::OnFinishChunk,
        OpenAiUsage::ChoicesNull,
    ]
    .into_iter()
    .enumerate()
    {
        let model = format!("m-openai_usage_placement-{i}");
        let wire = Wire {
            openai_usage: placement,
            ..Wire::default()
        };
        let h = Harness::with(Protocol::OpenAi, &model, scenario().with_wire(wire)).await;
        let result = h.ask(&model).await;
        assert!(result.is_ok(), "{placement:?}: {:?}", result.error);
        assert_eq!(result.text, "Grüße, Welt 🎉!", "{placement:?}");
        assert_eq!(
            result.usage,
            reported(Protocol::OpenAi, USAGE),
            "{placement:?}"
        );
        let cost = result.cost.unwrap();
        assert_eq!(
            (cost.source, cost.total.nanos()),
            (CostSource::Computed, USAGE_COST_NANOS),
            "{placement:?}"
        );
    }
}

#[tokio::test]
async fn openai_reported_cost_wins_over_computed() {
    let model = "m-openai_reported_cost_wins_over_computed";
    let h = Harness::with(Protocol::OpenAi, model, scenario().with_cost("0.000123")).await;

    let result = h.ask(model).await;

    assert!(result.is_ok(), "{:?}", result.error);
    assert_eq!(result.usage, reported(Protocol::OpenAi, USAGE));
    let cost = result.cost.unwrap();
    assert_eq!(cost.source, CostSource::Reported);
    assert_eq!(cost.total.nanos(), 123_000, "$0.000123 exactly");
    assert_ne!(
        cost.total.nanos(),
        USAGE_COST_NANOS,
        "the fixture must make computed and reported differ"
    );
}

#[tokio::test]
async fn openai_without_done_marker_still_completes() {
    let model = "m-openai_without_done_marker_still_completes";
    let wire = Wire {
        done_marker: false,
        ..Wire::default()
    };
    let h = Harness::with(Protocol::OpenAi, model, scenario().with_wire(wire)).await;
    assert_full_answer(Protocol::OpenAi, &h.ask(model).await, "Grüße, Welt 🎉!");
}

// ---------------------------------------------------------------------------
// Attachments
// ---------------------------------------------------------------------------

/// The parts of the first user turn as the request's raw bytes carry them,
/// as `(kind, media type, decoded bytes or text)`; decoded with the mock's
/// own strict base64 reader, not the engine's.
fn first_turn_parts(p: Protocol, raw: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    let body: Value = serde_json::from_slice(raw).expect("the body is JSON");
    let decode = |s: &str| samples::base64_decode(s).expect("strict base64");
    let data_url = |url: &str| {
        let rest = url.strip_prefix("data:").expect("a data URL");
        let (mime, data) = rest.split_once(";base64,").expect("base64 data URL");
        (mime.to_owned(), decode(data))
    };
    let mut out = Vec::new();
    match p {
        Protocol::OpenAi => {
            for part in body["messages"][0]["content"].as_array().expect("parts") {
                match part["type"].as_str().unwrap() {
                    "image_url" => {
                        let (mime, bytes) = data_url(part["image_url"]["url"].as_str().unwrap());
                        out.push(("image_url".into(), mime, bytes));
                    }
                    "file" => {
                        let file = &part["file"];
                        assert_eq!(file["filename"], "report.pdf");
                        let (mime, bytes) = data_url(file["file_data"].as_str().unwrap());
                        out.push(("file".into(), mime, bytes));
                    }
                    "text" => out.push((
                        "text".into(),
                        String::new(),
                        part["text"].as_str().unwrap().as_bytes().to_vec(),
                    )),
                    other => panic!("unexpected part {other}"),
                }
            }
        }
        Protocol::Anthropic => {
            for block in body["messages"][0]["content"].as_array().expect("blocks") {
                let kind = block["type"].as_str().unwrap().to_owned();
                if kind == "text" {
                    let text = block["text"].as_str().unwrap().as_bytes().to_vec();
                    out.push((kind, String::new(), text));
                    continue;
                }
                assert_eq!(block["source"]["type"], "base64");
                out.push((
                    kind,
                    block["source"]["media_type"].as_str().unwrap().to_owned(),
                    decode(block["source"]["data"].as_str().unwrap()),
                ));
            }
        }
        Protocol::Gemini => {
            assert_eq!(body["contents"][0]["role"], "user");
            for part in body["contents"][0]["parts"].as_array().expect("parts") {
                if let Some(text) = part["text"].as_str() {
                    out.push(("text".into(), String::new(), text.as_bytes().to_vec()));
                    continue;
                }
                let inline = &part["inlineData"];
                out.push((
                    "inlineData".into(),
                    inline["mimeType"].as_str().unwrap().to_owned(),
                    decode(inline["data"].as_str().unwrap()),
                ));
            }
        }
    }
    out
}

/// An image and a PDF, then the question: each protocol's parts, in that
/// order, with the bytes intact and the media types right; sent again,
/// unchanged, with the next turn.
async fn image_and_pdf_reach_the_wire_byte_for_byte(p: Protocol) {
    let model = "m-vision";
    let h = Harness::with(p, model, scenario()).await;
    let png = samples::png(64, 48, 3);
    let pdf = samples::pdf(2, "quarterly numbers");
    let attachments = vec![
        Attachment::from_bytes(png.clone(), Some("chart.png")).unwrap(),
        Attachment::from_bytes(pdf.clone(), Some("report.pdf")).unwrap(),
    ];
    let mut request = ChatRequest::new(model, "");
    request.messages = vec![Message::user_with(
        "Does the chart match the report?",
        attachments,
    )];
    let result = h.run(&request, RELAXED).await;
    assert_full_answer(p, &result, "Grüße, Welt 🎉!");

    let (image_kind, pdf_kind) = match p {
        Protocol::OpenAi => ("image_url", "file"),
        Protocol::Anthropic => ("image", "document"),
        Protocol::Gemini => ("inlineData", "inlineData"),
    };
    let expected = vec![
        (image_kind.to_owned(), "image/png".to_owned(), png.clone()),
        (
            pdf_kind.to_owned(),
            "application/pdf".to_owned(),
            pdf.clone(),
        ),
        (
            "text".to_owned(),
            String::new(),
            b"Does the chart match the report?".to_vec(),
        ),
    ];
    let sent = h.last_generation();
    assert_eq!(first_turn_parts(p, &sent.raw_body), expected);
    // The base64 is in the bytes on the wire exactly as an independent
    // encoder writes it (no escaping, no line breaks).
    let wire = String::from_utf8(sent.raw_body.clone()).unwrap();
    assert!(wire.contains(&samples::base64_encode(&png)));
    assert!(wire.contains(&samples::base64_encode(&pdf)));

    // The next turn carries the same attachments again, before its text.
    request.messages.push(Message::assistant(&result.text));
    request.messages.push(Message::user("And page 2?"));
    let again = h.run(&request, RELAXED).await;
    assert!(again.is_ok(), "{:?}", again.error);
    let resent = h.last_generation();
    assert_eq!(first_turn_parts(p, &resent.raw_body), expected);
}

/// The mock refuses an image whose declared type is not its bytes' type,
/// as the providers do; the engine reports it as the provider's 400.
async fn a_wrongly_typed_attachment_is_refused_like_the_provider_would(p: Protocol) {
    let model = "m-mislabelled";
    let h = Harness::with(p, model, scenario()).await;
    let jpeg_as_png = samples::base64_encode(&samples::jpeg(10, 10));
    let (path, body) = match p {
        Protocol::OpenAi => (
            "/v1/chat/completions".to_owned(),
            json!({"model": model, "stream": false, "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{jpeg_as_png}")}},
                {"type": "text", "text": "hi"}]}]}),
        ),
        Protocol::Anthropic => (
            "/v1/messages".to_owned(),
            json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": jpeg_as_png}},
                {"type": "text", "text": "hi"}]}]}),
        ),
        Protocol::Gemini => (
            format!("/v1beta/models/{model}:generateContent"),
            json!({"contents": [{"role": "user", "parts": [
                {"inlineData": {"mimeType": "image/png", "data": jpeg_as_png}},
                {"text": "hi"}]}]}),
        ),
    };
    let auth = match p {
        Protocol::OpenAi => ("authorization", format!("Bearer {KEY}")),
        Protocol::Anthropic => ("x-api-key", KEY.to_owned()),
        Protocol::Gemini => ("x-goog-api-key", KEY.to_owned()),
    };
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", h.server.addr()))
        .header(auth.0, auth.1.clone())
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("does not match the provided media type image/png"),
        "{text}"
    );
    // Broken base64 is refused too.
    let broken = body.to_string().replace(&jpeg_as_png, "@@not base64@@");
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", h.server.addr()))
        .header(auth.0, auth.1)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(broken)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(h.server.hits(model), 2, "both reached the mock");
}
