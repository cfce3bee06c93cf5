//! The mock over real loopback TCP, read by a raw client: what these tests see
//! is exactly what an HTTP client under test would receive.

// Clippy only exempts `#[test]` functions; the helpers here are test code too.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration-test helpers: a failed unwrap is a failed test"
)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{RawClient, RawRequest, RawResponse, SseEvent};
use switchboard_mock::{Fault, MockServer, MockUsage, Protocol, Scenario, Wire};

const PROTOCOLS: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini];

async fn server_with(model: &str, scenario: Scenario) -> MockServer {
    let server = MockServer::start().await.unwrap();
    server.script(model, scenario);
    server
}

async fn call(server: &MockServer, request: &RawRequest) -> RawResponse {
    let mut client = RawClient::connect(server.addr()).await.unwrap();
    client.request(request).await.unwrap()
}

async fn stream(server: &MockServer, protocol: Protocol, model: &str) -> RawResponse {
    call(server, &RawRequest::generate(protocol, model, true)).await
}

/// The text a correct client would show, from a streamed body.
fn streamed_text(protocol: Protocol, events: &[SseEvent]) -> String {
    let pieces = events
        .iter()
        .filter(|event| event.data != "[DONE]")
        .map(SseEvent::json);
    pieces
        .map(|data| {
            let piece = match protocol {
                Protocol::OpenAi => &data["choices"][0]["delta"]["content"],
                Protocol::Anthropic => &data["delta"]["text"],
                Protocol::Gemini => &data["candidates"][0]["content"]["parts"][0]["text"],
            };
            piece.as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn openai_stream_is_byte_exact() {
    let server = server_with("gpt-mock", Scenario::default()).await;
    let response = stream(&server, Protocol::OpenAi, "gpt-mock").await;

    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert!(response.complete);
    let head =
        r#"{"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1,"model":"gpt-mock","#;
    let expected = [
        format!(r#"data: {head}"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":null}}]}}"#),
        format!(r#"data: {head}"choices":[{{"index":0,"delta":{{"content":"Hello"}},"finish_reason":null}}]}}"#),
        format!(r#"data: {head}"choices":[{{"index":0,"delta":{{"content":" world"}},"finish_reason":null}}]}}"#),
        format!(r#"data: {head}"choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}"#),
        format!(
            r#"data: {head}"choices":[],"usage":{{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0}}}}}}"#
        ),
        "data: [DONE]".to_owned(),
    ]
    .map(|event| event + "\n\n")
    .concat();
    assert_eq!(response.text(), expected);
    assert_eq!(response.chunks.len(), 6, "one HTTP chunk per event");
}

#[tokio::test]
async fn every_protocol_streams_the_scripted_text_and_terminates() {
    for protocol in PROTOCOLS {
        let server = server_with("m", Scenario::default().with_text(&["Hé", "llo ", "🌍"])).await;
        let response = stream(&server, protocol, "m").await;
        assert_eq!(response.status, 200, "{protocol:?}");
        assert!(response.complete, "{protocol:?}");
        assert_eq!(
            streamed_text(protocol, &response.events()),
            "Héllo 🌍",
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn anthropic_output_tokens_are_cumulative_not_deltas() {
    let server = server_with("claude-mock", Scenario::default()).await;
    let events = stream(&server, Protocol::Anthropic, "claude-mock")
        .await
        .events();

    let names: Vec<&str> = events
        .iter()
        .filter_map(|event| event.event.as_deref())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = events[0].json();
    assert_eq!(start["message"]["usage"]["output_tokens"], 1);
    assert_eq!(start["message"]["usage"]["input_tokens"], 12);
    let delta = events[5].json();
    assert_eq!(delta["usage"]["output_tokens"], 2);
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
}

#[tokio::test]
async fn anthropic_pings_and_unknown_events_when_enabled() {
    let wire = Wire {
        pings: true,
        ..Wire::default()
    };
    let server = server_with("claude-mock", Scenario::default().with_wire(wire)).await;
    let events = stream(&server, Protocol::Anthropic, "claude-mock")
        .await
        .events();
    let count = |name: &str| {
        events
            .iter()
            .filter(|event| event.event.as_deref() == Some(name))
            .count()
    };
    assert!(count("ping") >= 2, "{events:?}");
    assert_eq!(count("future_event_type"), 1);
    assert_eq!(streamed_text(Protocol::Anthropic, &events), "Hello world");

    let plain = server_with("claude-mock", Scenario::default()).await;
    let events = stream(&plain, Protocol::Anthropic, "claude-mock")
        .await
        .events();
    assert!(
        events
            .iter()
            .all(|event| event.event.as_deref() != Some("ping"))
    );
}

#[tokio::test]
async fn anthropic_requires_the_version_header() {
    let server = server_with("claude-mock", Scenario::default()).await;
    let mut request = RawRequest::generate(Protocol::Anthropic, "claude-mock", true);
    request
        .headers
        .retain(|(name, _)| name != "anthropic-version");
    let response = call(&server, &request).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn gemini_usage_is_a_running_total() {
    let usage = MockUsage {
        input: 100,
        cached_input: 30,
        output: 40,
        reasoning: 10,
    };
    let scenario = Scenario::default()
        .with_text(&["a", "b", "c", "d"])
        .with_reasoning(&["think"])
        .with_usage(usage);
    let server = server_with("gemini-mock", scenario).await;
    let response = stream(&server, Protocol::Gemini, "gemini-mock").await;
    assert!(response.complete);
    let events = response.events();
    assert!(
        events.iter().all(|event| event.event.is_none()),
        "no event names"
    );
    assert!(!response.text().contains("[DONE]"));

    let usages: Vec<Value> = events
        .iter()
        .map(|event| event.json()["usageMetadata"].clone())
        .collect();
    assert!(usages.iter().all(|usage| usage["promptTokenCount"] == 100));
    let summed: u64 = usages
        .iter()
        .map(|usage| usage["totalTokenCount"].as_u64().unwrap())
        .sum();
    let last = usages.last().unwrap();
    assert_eq!(last["candidatesTokenCount"], 30);
    assert_eq!(last["thoughtsTokenCount"], 10);
    assert_eq!(last["cachedContentTokenCount"], 30);
    assert_eq!(last["totalTokenCount"], 140);
    assert!(summed > 4 * 140, "summing chunks inflates usage: {summed}");

    let candidates: Vec<u64> = usages
        .iter()
        .filter_map(|usage| usage["candidatesTokenCount"].as_u64())
        .collect();
    // Four text chunks growing towards 40 - 10 = 30, then the finish chunk.
    assert_eq!(candidates, [7, 15, 22, 30, 30]);
    let final_chunk = events.last().unwrap().json();
    assert_eq!(final_chunk["candidates"][0]["finishReason"], "STOP");
    let first = events[0].json();
    assert_eq!(
        first["candidates"][0]["content"]["parts"][0]["thought"],
        true
    );
}

#[tokio::test]
async fn gemini_rejects_a_bad_key_with_400_api_key_invalid() {
    let server = server_with("gemini-mock", Scenario::default().with_key("sekrit")).await;
    let request = RawRequest::generate(Protocol::Gemini, "gemini-mock", true);

    for request in [
        request.clone(),
        request.clone().key(Protocol::Gemini, "wrong"),
    ] {
        let response = call(&server, &request).await;
        assert_eq!(response.status, 400);
        let error = &response.json()["error"];
        assert_eq!(error["status"], "INVALID_ARGUMENT");
        assert_eq!(error["details"][0]["reason"], "API_KEY_INVALID");
    }
    let response = call(&server, &request.key(Protocol::Gemini, "sekrit")).await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn openai_and_anthropic_reject_a_bad_key_with_401() {
    for (protocol, error_type) in [
        (Protocol::OpenAi, "invalid_request_error"),
        (Protocol::Anthropic, "authentication_error"),
    ] {
        let server = server_with("m", Scenario::default().with_key("sekrit")).await;
        let wrong = RawRequest::generate(protocol, "m", true).key(protocol, "wrong");
        let response = call(&server, &wrong).await;
        assert_eq!(response.status, 401, "{protocol:?}");
        assert_eq!(response.json()["error"]["type"], error_type);

        let right = RawRequest::generate(protocol, "m", true).key(protocol, "sekrit");
        assert_eq!(call(&server, &right).await.status, 200, "{protocol:?}");
    }
}

#[tokio::test]
async fn crlf_mode_ends_every_line_in_crlf() {
    let wire = Wire {
        crlf: true,
        ..Wire::default()
    };
    for protocol in PROTOCOLS {
        let server = server_with("m", Scenario::default().with_wire(wire.clone())).await;
        let text = stream(&server, protocol, "m").await.text();
        assert!(text.contains("\r\n\r\n"), "{protocol:?}");
        assert_eq!(
            text.matches('\n').count(),
            text.matches("\r\n").count(),
            "{protocol:?}: {text:?}"
        );
        assert_eq!(
            streamed_text(protocol, &support::parse_sse(&text)),
            "Hello world"
        );
    }
}

#[tokio::test]
async fn split_every_sends_many_small_chunks_of_the_same_bytes() {
    let text = ["Grüß", " dich", " 🌍"];
    for protocol in PROTOCOLS {
        let whole = server_with("m", Scenario::default().with_text(&text)).await;
        let expected = stream(&whole, protocol, "m").await;

        let wire = Wire {
            split_every: Some(3),
            ..Wire::default()
        };
        let split = server_with("m", Scenario::default().with_text(&text).with_wire(wire)).await;
        let response = stream(&split, protocol, "m").await;

        assert!(response.complete, "{protocol:?}");
        assert_eq!(response.body, expected.body, "{protocol:?}");
        // Pieces cross event boundaries: only the very last one may be short.
        let (last, rest) = response.chunks.split_last().unwrap();
        assert!(
            rest.iter().all(|size| *size == 3),
            "{protocol:?}: {:?}",
            response.chunks
        );
        assert!(*last <= 3);
        assert!(
            response.chunks.len() > expected.chunks.len() * 5,
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn cut_after_omits_the_terminator_and_the_final_chunk() {
    for protocol in PROTOCOLS {
        let server = server_with("m", Scenario::default().with_fault(Fault::CutAfter(1))).await;
        let mut client = RawClient::connect(server.addr()).await.unwrap();
        let response = client
            .request(&RawRequest::generate(protocol, "m", true))
            .await
            .unwrap();

        assert_eq!(response.status, 200, "{protocol:?}");
        assert!(!response.complete, "{protocol:?}: no zero-length chunk");
        assert!(
            !response.timed_out,
            "{protocol:?}: the server closed the connection"
        );
        let text = response.text();
        let events = response.events();
        assert_eq!(streamed_text(protocol, &events), "Hello", "{protocol:?}");
        assert!(!text.contains("[DONE]"));
        assert!(!text.contains("message_stop"));
        assert!(!text.contains("finish_reason\":\"stop") && !text.contains("finishReason"));
        assert!(client.is_closed(Duration::from_millis(200)).await);
    }
}

#[tokio::test]
async fn stall_after_keeps_the_connection_open_and_silent() {
    let server = server_with("m", Scenario::default().with_fault(Fault::StallAfter(1))).await;
    let mut client = RawClient::connect(server.addr()).await.unwrap();
    client
        .send(&RawRequest::generate(Protocol::OpenAi, "m", true))
        .await
        .unwrap();
    let response = client.response(Duration::from_millis(150)).await.unwrap();

    assert!(response.timed_out);
    assert!(!response.complete);
    assert_eq!(streamed_text(Protocol::OpenAi, &response.events()), "Hello");
}

#[tokio::test]
async fn garbage_after_sends_a_broken_line_then_carries_on() {
    let server = server_with("m", Scenario::default().with_fault(Fault::GarbageAfter(1))).await;
    let response = stream(&server, Protocol::OpenAi, "m").await;
    assert!(response.complete);
    let text = response.text();
    let garbage = text.find("data: {not json\n\n").unwrap();
    assert!(garbage < text.find(" world").unwrap());
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn error_event_after_ends_the_stream_with_the_protocols_error() {
    for protocol in PROTOCOLS {
        let server = server_with(
            "m",
            Scenario::default().with_fault(Fault::ErrorEventAfter(1)),
        )
        .await;
        let response = stream(&server, protocol, "m").await;
        assert_eq!(response.status, 200, "{protocol:?}");
        assert!(response.complete, "{protocol:?}");
        let last = response.events().pop().unwrap();
        let data = last.json();
        match protocol {
            Protocol::OpenAi => {
                assert_eq!(data["error"]["message"], "Upstream provider error");
                assert_eq!(data["choices"][0]["finish_reason"], "error");
            }
            Protocol::Anthropic => {
                assert_eq!(last.event.as_deref(), Some("error"));
                assert_eq!(data["error"]["type"], "overloaded_error");
            }
            Protocol::Gemini => assert_eq!(data["error"]["status"], "UNAVAILABLE"),
        }
    }
}

#[tokio::test]
async fn status_fault_sends_the_protocols_error_and_retry_after() {
    let cases = [
        (Protocol::OpenAi, 429, "rate_limit_exceeded"),
        (Protocol::Anthropic, 529, "overloaded_error"),
        (Protocol::Gemini, 503, "UNAVAILABLE"),
    ];
    for (protocol, code, kind) in cases {
        let fault = Fault::Status {
            code,
            retry_after_s: Some(7),
        };
        let server = server_with("m", Scenario::default().with_fault(fault)).await;
        for streaming in [true, false] {
            let response = call(&server, &RawRequest::generate(protocol, "m", streaming)).await;
            assert_eq!(response.status, code, "{protocol:?}");
            assert_eq!(response.header("retry-after"), Some("7"), "{protocol:?}");
            assert_eq!(response.header("content-type"), Some("application/json"));
            let body = response.json();
            let found = match protocol {
                Protocol::OpenAi => &body["error"]["code"],
                Protocol::Anthropic => &body["error"]["type"],
                Protocol::Gemini => &body["error"]["status"],
            };
            assert_eq!(found, kind, "{protocol:?}: {body}");
        }
    }
}

#[tokio::test]
async fn raw_faults_are_sent_verbatim_and_clear_after_their_count() {
    let body = r#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#;
    let fault = Fault::Raw {
        code: 400,
        headers: vec![("retry-after-ms".into(), "250".into())],
        body: body.into(),
    };
    let server = server_with(
        "m",
        Scenario::default().with_fault(fault).with_fault_times(2),
    )
    .await;
    for _ in 0..2 {
        let response = stream(&server, Protocol::Gemini, "m").await;
        assert_eq!(response.status, 400);
        assert_eq!(response.header("retry-after-ms"), Some("250"));
        assert_eq!(response.text(), body, "byte for byte");
    }
    let response = stream(&server, Protocol::Gemini, "m").await;
    assert_eq!(response.status, 200, "the third request is answered");
    assert_eq!(
        streamed_text(Protocol::Gemini, &response.events()),
        "Hello world"
    );
    assert_eq!(server.hits("m"), 3);
}

#[tokio::test]
async fn echo_headers_returns_every_request_header_like_a_leaky_proxy() {
    let server = server_with(
        "m",
        Scenario::default().with_fault(Fault::EchoHeaders { code: 502 }),
    )
    .await;
    let request =
        RawRequest::generate(Protocol::OpenAi, "m", true).key(Protocol::OpenAi, "sk-echo");
    let response = call(&server, &request).await;
    assert_eq!(response.status, 502);
    let body = response.json();
    assert_eq!(
        body["error"]["request"]["headers"]["authorization"],
        "Bearer sk-echo"
    );
}

#[tokio::test]
async fn context_too_long_speaks_each_protocol() {
    let server = server_with("m", Scenario::default().with_fault(Fault::ContextTooLong)).await;
    for protocol in PROTOCOLS {
        let response = call(&server, &RawRequest::generate(protocol, "m", true)).await;
        assert_eq!(response.status, 400);
        let body = response.json();
        match protocol {
            Protocol::OpenAi => assert_eq!(body["error"]["code"], "context_length_exceeded"),
            Protocol::Anthropic => {
                assert_eq!(
                    body["error"]["message"],
                    "prompt is too long: 210000 tokens > 200000 maximum"
                );
            }
            Protocol::Gemini => {
                assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("1048576")
                );
            }
        }
        assert!(response.header("retry-after").is_none());
    }
}

#[tokio::test]
async fn unknown_model_is_the_protocols_404() {
    let server = MockServer::start().await.unwrap();
    for protocol in PROTOCOLS {
        let response = call(&server, &RawRequest::generate(protocol, "nope", true)).await;
        assert_eq!(response.status, 404, "{protocol:?}");
        let body = response.json();
        match protocol {
            Protocol::OpenAi => assert_eq!(body["error"]["code"], "model_not_found"),
            Protocol::Anthropic => assert_eq!(body["error"]["type"], "not_found_error"),
            Protocol::Gemini => assert_eq!(body["error"]["status"], "NOT_FOUND"),
        }
    }
    assert_eq!(server.hits("nope"), 3);
}

#[tokio::test]
async fn non_streaming_answers_use_content_length() {
    let scenario = Scenario::default().with_reasoning(&["Think"]);
    for protocol in PROTOCOLS {
        let server = server_with("m", scenario.clone()).await;
        let response = call(&server, &RawRequest::generate(protocol, "m", false)).await;
        assert_eq!(response.status, 200);
        assert!(response.complete && response.chunks.is_empty());
        let body = response.json();
        let (text, reasoning) = match protocol {
            Protocol::OpenAi => {
                let message = &body["choices"][0]["message"];
                (&message["content"], &message["reasoning_content"])
            }
            Protocol::Anthropic => (&body["content"][1]["text"], &body["content"][0]["thinking"]),
            Protocol::Gemini => {
                let parts = &body["candidates"][0]["content"]["parts"];
                (&parts[1]["text"], &parts[0]["text"])
            }
        };
        assert_eq!(text, "Hello world", "{protocol:?}");
        assert_eq!(reasoning, "Think", "{protocol:?}");
    }
}

#[tokio::test]
async fn requests_are_recorded_in_order() {
    let server = server_with("m", Scenario::default()).await;
    let before = Instant::now();
    let request = RawRequest::generate(Protocol::Anthropic, "m", true).header("X-Custom", "Yes");
    call(&server, &request).await;
    call(&server, &RawRequest::generate(Protocol::Gemini, "m", false)).await;
    call(&server, &RawRequest::new("GET", "/v1/models")).await;

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(first.header("x-custom"), Some("Yes"));
    assert_eq!(first.header("X-CUSTOM"), Some("Yes"));
    assert!(
        first
            .headers
            .iter()
            .any(|(name, _)| name == "anthropic-version")
    );
    assert_eq!(first.body.as_ref().unwrap()["max_tokens"], 64);
    assert!(first.at >= before);
    assert_eq!(requests[1].path, "/v1beta/models/m:generateContent");
    assert!(requests[1].at >= first.at);
    assert!(requests[2].body.is_none());
    assert_eq!(server.hits("m"), 2);
}

#[tokio::test]
async fn keep_alive_serves_sequential_requests_on_one_connection() {
    let server = server_with("m", Scenario::default()).await;
    let mut client = RawClient::connect(server.addr()).await.unwrap();
    let first = client
        .request(&RawRequest::generate(Protocol::OpenAi, "m", true))
        .await
        .unwrap();
    let second = client
        .request(&RawRequest::generate(Protocol::OpenAi, "m", false))
        .await
        .unwrap();
    let third = client
        .request(&RawRequest::generate(Protocol::Gemini, "m", true))
        .await
        .unwrap();

    assert!(first.complete && second.complete && third.complete);
    assert!(first.header("connection").is_none());
    assert_eq!(
        second.json()["choices"][0]["message"]["content"],
        "Hello world"
    );
    assert_eq!(server.hits("m"), 3);

    let closing = RawRequest::generate(Protocol::OpenAi, "m", false).header("Connection", "close");
    let last = client.request(&closing).await.unwrap();
    assert_eq!(last.header("connection"), Some("close"));
    assert!(client.is_closed(Duration::from_millis(200)).await);
}

#[tokio::test]
async fn chunked_request_bodies_are_accepted() {
    let server = server_with("m", Scenario::default()).await;
    let body = json!({ "model": "m", "messages": [] }).to_string();
    let (head, tail) = body.split_at(5);
    let raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
        head.len(),
        tail.len()
    );
    let mut client = RawClient::connect(server.addr()).await.unwrap();
    client.send_bytes(raw.as_bytes()).await.unwrap();
    let response = client.response(support::PATIENCE).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(server.requests()[0].body.as_ref().unwrap()["model"], "m");
}

#[tokio::test]
async fn model_lists_name_every_scripted_model() {
    let server = MockServer::start().await.unwrap();
    server.script("alpha", Scenario::default());
    server.script("beta", Scenario::default());

    let openai = call(&server, &RawRequest::new("GET", "/v1/models"))
        .await
        .json();
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][1]["id"], "beta");

    let anthropic = RawRequest::new("GET", "/v1/models").header("anthropic-version", "2023-06-01");
    let anthropic = call(&server, &anthropic).await.json();
    assert_eq!(anthropic["data"][0]["type"], "model");
    assert_eq!(anthropic["last_id"], "beta");

    let gemini = call(&server, &RawRequest::new("GET", "/v1beta/models"))
        .await
        .json();
    assert_eq!(gemini["models"][0]["name"], "models/alpha");

    server.script("gamma", Scenario::default().with_key("k"));
    let denied = call(&server, &RawRequest::new("GET", "/v1/models")).await;
    assert_eq!(denied.status, 401);
    let allowed = RawRequest::new("GET", "/v1beta/models").key(Protocol::Gemini, "k");
    assert_eq!(
        call(&server, &allowed).await.json()["models"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn ttft_delays_the_body_but_not_the_headers() {
    let ttft = Duration::from_millis(80);
    let server = server_with("m", Scenario::default().with_ttft(ttft)).await;
    let mut client = RawClient::connect(server.addr()).await.unwrap();
    client
        .send(&RawRequest::generate(Protocol::OpenAi, "m", true))
        .await
        .unwrap();

    let early = client.response(Duration::from_millis(40)).await.unwrap();
    assert_eq!(early.status, 200, "headers arrive before the first token");
    assert!(early.body.is_empty() && early.timed_out);

    let mut client = RawClient::connect(server.addr()).await.unwrap();
    let sent = Instant::now();
    let response = client
        .request(&RawRequest::generate(Protocol::OpenAi, "m", true))
        .await
        .unwrap();
    assert!(sent.elapsed() >= ttft);
    assert!(response.complete);
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let server = MockServer::start().await.unwrap();
    let addr = server.addr();
    drop(server);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(RawClient::connect(addr).await.is_err());
}
