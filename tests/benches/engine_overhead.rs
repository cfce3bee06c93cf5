//! How much time does the engine add to an answer? One run measures, for
//! the same mock provider over loopback, the time to first token and the
//! total time of (a) a raw reqwest client that only waits for bytes and
//! (b) the whole engine (request building, SSE decoding, protocol parsing,
//! accumulation), interleaved request by request, and prints the ratios and
//! the per-request overhead percentiles. Goal: ratio ≤ 1.01, p99 overhead
//! under 1 ms. A `floor` line compares the raw client's TTFT with a second
//! raw run of the same round: the noise any paired difference carries.
//!
//! Run with `make bench` (release build).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark binary"
)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_engine::{
    ChatRequest, Client, ProviderConfig, ProviderKind, Timeouts, run_attempt,
};
use switchboard_mock::{MockServer, MockUsage, Protocol, Scenario};

const ROUNDS: usize = 100;
const PIECES: usize = 200;

struct Sample {
    ttft: Duration,
    total: Duration,
}

async fn raw_once(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: &serde_json::Value,
) -> Sample {
    let start = Instant::now();
    let mut rb = http.post(url).json(body);
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.unwrap();
    let mut stream = resp.bytes_stream();
    let mut ttft = None;
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
        ttft.get_or_insert_with(|| start.elapsed());
    }
    Sample {
        ttft: ttft.unwrap(),
        total: start.elapsed(),
    }
}

async fn engine_once(client: &Client, provider: &ProviderConfig, req: &ChatRequest) -> Sample {
    let r = run_attempt(
        client,
        provider,
        None,
        req,
        None,
        Timeouts::default(),
        |_| {},
    )
    .await;
    assert!(r.is_ok(), "{:?}", r.error);
    Sample {
        ttft: r.timing.ttft.unwrap(),
        total: r.timing.total,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(label: &str, names: (&str, &str), raw: &[Duration], engine: &[Duration]) {
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let mean = |v: &[Duration]| v.iter().map(ms).sum::<f64>() / v.len() as f64;
    let mut overhead: Vec<f64> = raw.iter().zip(engine).map(|(r, e)| ms(e) - ms(r)).collect();
    overhead.sort_by(f64::total_cmp);
    println!(
        "  {label:<6} {:<6} {:>8.3} ms   {:<6} {:>8.3} ms   ratio {:.4}   overhead p50 {:+.3} ms  p99 {:+.3} ms",
        names.0,
        mean(raw),
        names.1,
        mean(engine),
        mean(engine) / mean(raw),
        percentile(&overhead, 0.5),
        percentile(&overhead, 0.99),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = MockServer::start().await.unwrap();
    let pieces: Vec<String> = (0..PIECES).map(|i| format!("token{i} ")).collect();
    let piece_refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let client = Client::new();
    let http = reqwest::Client::new();
    println!(
        "engine overhead: {ROUNDS} interleaved requests per protocol, {PIECES} pieces each, 20 ms to first token, pieces sent back to back; raw-vs-raw lines are the noise floor"
    );
    for (protocol, kind) in [
        (Protocol::OpenAi, ProviderKind::OpenAi),
        (Protocol::Anthropic, ProviderKind::Anthropic),
        (Protocol::Gemini, ProviderKind::Gemini),
    ] {
        let model = format!("bench-{kind:?}").to_lowercase();
        server.script(
            &model,
            Scenario::default()
                .with_text(&piece_refs)
                .with_ttft(Duration::from_millis(20))
                .with_usage(MockUsage {
                    input: 50,
                    cached_input: 0,
                    output: PIECES as u64,
                    reasoning: 0,
                }),
        );
        let provider = ProviderConfig::custom("bench", kind, &server.base_url(protocol));
        let req = ChatRequest::new(&model, "Benchmark prompt");
        let wire = switchboard_engine::provider::build_request(&provider, None, &req, true);
        // Warm both connection pools.
        raw_once(&http, &wire.url, &wire.headers, &wire.body).await;
        engine_once(&client, &provider, &req).await;
        let (mut raw_ttft, mut raw_total, mut eng_ttft, mut eng_total) =
            (vec![], vec![], vec![], vec![]);
        // A second raw run per round: raw vs raw is the noise floor the
        // engine's overhead is measured against.
        let (mut floor_ttft, mut floor_total) = (vec![], vec![]);
        for round in 0..ROUNDS {
            // Alternate who goes first so drift affects both alike.
            let (r, e) = if round % 2 == 0 {
                let r = raw_once(&http, &wire.url, &wire.headers, &wire.body).await;
                (r, engine_once(&client, &provider, &req).await)
            } else {
                let e = engine_once(&client, &provider, &req).await;
                (
                    raw_once(&http, &wire.url, &wire.headers, &wire.body).await,
                    e,
                )
            };
            let again = raw_once(&http, &wire.url, &wire.headers, &wire.body).await;
            floor_ttft.push(again.ttft);
            floor_total.push(again.total);
            raw_ttft.push(r.ttft);
            raw_total.push(r.total);
            eng_ttft.push(e.ttft);
            eng_total.push(e.total);
        }
        println!("{kind:?}:");
        report("ttft", ("raw", "engine"), &raw_ttft, &eng_ttft);
        report("total", ("raw", "engine"), &raw_total, &eng_total);
        let mut added: Vec<f64> = raw_total
            .iter()
            .zip(&eng_total)
            .map(|(r, e)| e.as_secs_f64() - r.as_secs_f64())
            .collect();
        added.sort_by(f64::total_cmp);
        println!(
            "  per piece: the engine's total time above the raw client's, p50 over {PIECES} pieces: {:+.2} µs (goal ≤ 1 µs)",
            percentile(&added, 0.5) * 1e6 / PIECES as f64
        );
        report("ttft", ("raw", "raw"), &raw_ttft, &floor_ttft);
        report("total", ("raw", "raw"), &raw_total, &floor_total);
    }
}
