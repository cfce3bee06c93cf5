//! What does the Local API add to a request? One run measures a fast local
//! upstream (the mock provider: no generation delay) called directly and
//! through the Local API (`switchboard-gateway`, with its ledger, holds
//! and health written as in production), non-streaming and streaming, at
//! 1, 16 and 64 concurrent clients, and prints them side by side: latency
//! p50/p99 of both, the difference (what the Local API adds), requests per
//! second, and for streams the time to the first body byte; then when a
//! 2,000-piece streamed answer ends, directly and through the Local API.
//!
//! Then the engine's own cost per streamed piece: recorded SSE bytes of a
//! 2,000-piece answer replayed through the decoder, the protocol parser
//! and the accumulator, per protocol (no network).
//!
//! Goals (printed beside the figures, not asserted): added p50 ≤ 0.2 ms
//! and p99 ≤ 1 ms at c = 1 and 16; ≥ 5,000 non-streaming requests/s at
//! c = 64 with the ledger on; first streamed byte within 1 ms of the
//! upstream's; a 2,000-piece answer ending within 2 ms of the upstream's;
//! ≤ 1 µs of parsing and accounting per streamed piece.
//!
//! The load generator, the mock and the Local API share this machine's
//! cores (the Local API on a runtime of its own): the numbers are what one
//! machine does with all three on it. Under each row, what each of them
//! used of the cores meanwhile (CPU time per thread from /proc): a load
//! generator or mock that took most of them would starve what it measures,
//! and a gateway row whose parts add up to well under 100% waited for
//! something other than the CPU.
//!
//! Run with `make bench` (release build); `cargo bench -p switchboard-tests
//! --bench gateway_load -- load long pieces` runs only the sections named
//! (the load table, the 2,000-piece answer, the per-piece cost).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark binary"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_engine::provider::StreamParser;
use switchboard_engine::sse::SseDecoder;
use switchboard_engine::store::NewToken;
use switchboard_engine::{
    Accumulator, DataDir, KeyStore, ProviderConfig, ProviderKind, Store, Timed,
};
use switchboard_gateway::{Gateway, GatewayOptions};
use switchboard_mock::{MockServer, MockUsage, Protocol, Scenario};

/// How long each cell runs (after a warm-up).
const RUN: Duration = Duration::from_secs(3);
const WARM: Duration = Duration::from_millis(500);
/// Text pieces of a streamed answer.
const STREAM_PIECES: usize = 20;
/// Text pieces of the long streamed answer.
const LONG_PIECES: usize = 2000;

#[derive(Default)]
struct Cell {
    latencies: Vec<Duration>,
    first_bytes: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
    /// What each part used of the machine's cores meanwhile.
    cpu: String,
}

impl Cell {
    fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// One HTTP/1.1 keep-alive connection sending the same request again and
/// again, by hand: a load generator light enough that it does not starve
/// what it measures (reqwest costs several times more per request).
struct Conn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// What one exchange took.
struct Exchange {
    ok: bool,
    first_byte: Duration,
    total: Duration,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    async fn fill(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Send `request` and read the whole response (content-length or
    /// chunked); `None` when the connection broke.
    async fn exchange(&mut self, request: &[u8]) -> Option<Exchange> {
        use tokio::io::AsyncWriteExt;
        let start = Instant::now();
        self.stream.write_all(request).await.ok()?;
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let ok = head.starts_with("http/1.1 2");
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        // The first body byte (a chunk size line counts: it came with data).
        while self.buf.len() == head_end {
            if !self.fill().await {
                return None;
            }
        }
        let first_byte = start.elapsed();
        match length {
            Some(n) => {
                while self.buf.len() < head_end + n {
                    if !self.fill().await {
                        return None;
                    }
                }
            }
            None => {
                while !self.buf.ends_with(b"0\r\n\r\n") {
                    if !self.fill().await {
                        return None;
                    }
                }
            }
        }
        Some(Exchange {
            ok,
            first_byte,
            total: start.elapsed(),
        })
    }
}

/// `concurrency` clients sending `body` to `addr` + `path` back to back for `RUN`.
async fn load(
    addr: std::net::SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &serde_json::Value,
    concurrency: usize,
) -> Cell {
    let body = serde_json::to_vec(body).unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        request.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);
    let run = |until: Instant, record: bool| {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let request = Arc::clone(&request);
                tokio::spawn(async move {
                    let mut cell = Cell::default();
                    let mut conn = Conn::open(addr).await;
                    while Instant::now() < until {
                        match conn.exchange(&request).await {
                            Some(e) if e.ok => {
                                if record {
                                    cell.latencies.push(e.total);
                                    cell.first_bytes.push(e.first_byte);
                                }
                            }
                            Some(_) => cell.errors += 1,
                            None => {
                                cell.errors += 1;
                                conn = Conn::open(addr).await;
                            }
                        }
                    }
                    cell
                })
            })
            .collect();
        async move {
            let mut all = Cell::default();
            for t in tasks {
                let c = t.await.unwrap();
                all.latencies.extend(c.latencies);
                all.first_bytes.extend(c.first_bytes);
                all.errors += c.errors;
            }
            all
        }
    };
    run(Instant::now() + WARM, false).await;
    let cpu = CpuUse::now();
    let start = Instant::now();
    let mut cell = run(start + RUN, true).await;
    cell.elapsed = start.elapsed();
    cell.cpu = CpuUse::now().since(&cpu, cell.elapsed);
    cell
}

/// CPU time (user + system) used so far by this process's threads, summed
/// by what they are: the load generator and the mock (their runtime), the
/// Local API (its runtime's workers and blocking threads), its ledger
/// writer threads, and anything else.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    load_and_mock: Duration,
    local_api: Duration,
    floor: Duration,
    writer: Duration,
    other: Duration,
}

impl CpuUse {
    fn now() -> Self {
        let mut cpu = CpuUse::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
            let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
            let (Some(user), Some(system)) = (ticks(11), ticks(12)) else {
                continue;
            };
            // Clock ticks: 100 per second.
            let used = Duration::from_millis((user + system) * 10);
            let slot = if name.starts_with("load-and-mock") {
                &mut cpu.load_and_mock
            } else if name.starts_with("local-api") {
                &mut cpu.local_api
            } else if name.starts_with("floor-proxy") {
                &mut cpu.floor
            } else if name.starts_with("switchboard-") {
                &mut cpu.writer
            } else {
                &mut cpu.other
            };
            *slot += used;
        }
        cpu
    }

    /// Each part's share of the machine's cores since `before`, over
    /// `elapsed` (a thread that ended meanwhile is not counted).
    fn since(&self, before: &CpuUse, elapsed: Duration) -> String {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let share = |now: Duration, then: Duration| {
            100.0 * now.saturating_sub(then).as_secs_f64() / elapsed.as_secs_f64() / cores
        };
        format!(
            "load+mock {:.0}%, Local API {:.0}% + its ledger writer {:.0}%, bare proxy {:.0}%, other {:.0}%",
            share(self.load_and_mock, before.load_and_mock),
            share(self.local_api, before.local_api),
            share(self.writer, before.writer),
            share(self.floor, before.floor),
            share(self.other, before.other),
        )
    }
}

/// The floor: a bare pass-through proxy on the Local API's own HTTP stack
/// (a hyper HTTP/1.1 server with keep-alive and `TCP_NODELAY`, and a
/// pooled reqwest client built as the engine builds its own), on a runtime
/// of its own with as many workers as the Local API's. It reads the
/// request body whole and POSTs it unchanged to the same path upstream;
/// a whole answer (one with a length) is read whole and sent back with
/// its length, a streamed one is passed on chunk by chunk as it arrives.
/// It does not look at the bytes: no authentication, no JSON parsing, no
/// routing or model mapping, no translation, no accounting, no ledger, no
/// health, no headers of its own. What it adds is what any proxy on this
/// stack adds here: two more loopback hops and the wake-ups of another
/// runtime's threads.
mod floor {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use futures::TryStreamExt;
    use http_body_util::combinators::BoxBody;
    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::body::{Frame, Incoming};
    use hyper::header::{CONTENT_TYPE, HeaderValue};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::{TokioIo, TokioTimer};

    type Body = BoxBody<Bytes, reqwest::Error>;

    /// Start it (on the current runtime), forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = reqwest::Client::builder()
            .user_agent("Switchboard/floor")
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let client = client.clone();
                let service = service_fn(move |req| forward(client.clone(), upstream, req));
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        addr
    }

    fn full(status: StatusCode, content_type: Option<HeaderValue>, body: Bytes) -> Response<Body> {
        let mut r = Response::new(Full::new(body).map_err(|e: Infallible| match e {}).boxed());
        *r.status_mut() = status;
        if let Some(ct) = content_type {
            r.headers_mut().insert(CONTENT_TYPE, ct);
        }
        r
    }

    async fn forward(
        client: reqwest::Client,
        upstream: SocketAddr,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let url = format!("http://{upstream}{}", req.uri().path());
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let Ok(body) = req.into_body().collect().await else {
            return Ok(full(StatusCode::BAD_REQUEST, None, Bytes::new()));
        };
        let mut rb = client.post(url).body(body.to_bytes());
        if let Some(ct) = content_type {
            rb = rb.header(CONTENT_TYPE, ct);
        }
        let Ok(answer) = rb.send().await else {
            return Ok(full(StatusCode::BAD_GATEWAY, None, Bytes::new()));
        };
        let status = answer.status();
        let content_type = answer.headers().get(CONTENT_TYPE).cloned();
        if answer.content_length().is_some() {
            return Ok(match answer.bytes().await {
                Ok(bytes) => full(status, content_type, bytes),
                Err(_) => full(StatusCode::BAD_GATEWAY, None, Bytes::new()),
            });
        }
        let stream = StreamBody::new(answer.bytes_stream().map_ok(Frame::data));
        let mut r = Response::new(BodyExt::boxed(stream));
        *r.status_mut() = status;
        if let Some(ct) = content_type {
            r.headers_mut().insert(CONTENT_TYPE, ct);
        }
        Ok(r)
    }
}

/// The SSE bytes of an answer of `n` pieces, as `kind`'s providers send it.
fn recorded_stream(kind: ProviderKind, n: usize) -> String {
    let mut s = String::new();
    match kind {
        ProviderKind::OpenAi => {
            for i in 0..n {
                s.push_str(&format!(
                    "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token{i} \"}},\"finish_reason\":null}}]}}\n\n"
                ));
            }
            s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
            s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":2000,\"total_tokens\":2050}}\n\ndata: [DONE]\n\n");
        }
        ProviderKind::Anthropic => {
            s.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":50,\"output_tokens\":1}}}\n\n");
            s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
            for i in 0..n {
                s.push_str(&format!(
                    "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"token{i} \"}}}}\n\n"
                ));
            }
            s.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
            s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2000}}\n\n");
            s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        }
        ProviderKind::Gemini => {
            for i in 0..n {
                s.push_str(&format!(
                    "data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"token{i} \"}}],\"role\":\"model\"}},\"index\":0}}],\"usageMetadata\":{{\"promptTokenCount\":50,\"candidatesTokenCount\":{i},\"totalTokenCount\":{}}}}}\r\n\r\n",
                    50 + i
                ));
            }
            s.push_str(&format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"\"}}],\"role\":\"model\"}},\"finishReason\":\"STOP\",\"index\":0}}],\"usageMetadata\":{{\"promptTokenCount\":50,\"candidatesTokenCount\":{n},\"totalTokenCount\":{}}}}}\r\n\r\n", 50 + n));
        }
    }
    s
}

/// Nanoseconds per piece to decode, parse and accumulate `bytes` (fed in
/// network-sized chunks), best of several runs.
fn per_piece(kind: ProviderKind, bytes: &str, pieces: usize) -> f64 {
    let provider = ProviderConfig::custom("bench", kind, "http://127.0.0.1:9");
    let mut best = f64::INFINITY;
    for _ in 0..15 {
        let start = Instant::now();
        let mut decoder = SseDecoder::new();
        let mut parser = StreamParser::new(&provider);
        let mut acc = Accumulator::new("bench", "m");
        let (mut sse, mut events) = (Vec::new(), Vec::new());
        let t0 = Instant::now();
        // One network chunk per event, as the mock (and most providers) send them.
        for chunk in bytes.split_inclusive("\n\n") {
            decoder.feed(chunk.as_bytes(), &mut sse);
            for ev in sse.drain(..) {
                parser.on_event(&ev, &mut events).unwrap();
            }
            let at = t0.elapsed();
            for event in events.drain(..) {
                acc.push(&Timed { at, event });
            }
        }
        parser.on_end().unwrap();
        let r = acc.finish(t0.elapsed(), None, 100);
        assert!(r.is_ok() && r.text.len() > pieces);
        best = best.min(start.elapsed().as_nanos() as f64 / pieces as f64);
    }
    best
}

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let upstream = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load-and-mock")
        .enable_all()
        .build()
        .unwrap();
    // The Local API on a runtime of its own, as in its own process.
    let gateway_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("local-api")
        .enable_all()
        .build()
        .unwrap();
    // The floor (a bare pass-through proxy) the same way: a runtime of its own.
    let floor_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("floor-proxy")
        .enable_all()
        .build()
        .unwrap();
    let server = upstream.block_on(MockServer::start()).unwrap();
    server.set_recording(false);
    server.script(
        "fast",
        Scenario::default()
            .with_text(&["Hello", " world"])
            .with_usage(MockUsage {
                input: 12,
                cached_input: 0,
                output: 2,
                reasoning: 0,
            }),
    );
    let text: Vec<String> = (0..STREAM_PIECES).map(|i| format!("piece{i} ")).collect();
    let refs: Vec<&str> = text.iter().map(String::as_str).collect();
    server.script(
        "stream",
        Scenario::default().with_text(&refs).with_usage(MockUsage {
            input: 12,
            cached_input: 0,
            output: STREAM_PIECES as u64,
            reasoning: 0,
        }),
    );
    // A long answer: does the Local API keep up with 2,000 pieces?
    let long: Vec<String> = (0..LONG_PIECES).map(|i| format!("t{i} ")).collect();
    let refs: Vec<&str> = long.iter().map(String::as_str).collect();
    server.script(
        "long",
        Scenario::default().with_text(&refs).with_usage(MockUsage {
            input: 12,
            cached_input: 0,
            output: LONG_PIECES as u64,
            reasoning: 0,
        }),
    );
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\n\
             [[providers.mock.models]]\nid = \"fast\"\ninput_usd_per_mtok = \"2.50\"\noutput_usd_per_mtok = \"10\"\n\
             [[providers.mock.models]]\nid = \"stream\"\ninput_usd_per_mtok = \"2.50\"\noutput_usd_per_mtok = \"10\"\n\
             [[providers.mock.models]]\nid = \"long\"\ninput_usd_per_mtok = \"2.50\"\noutput_usd_per_mtok = \"10\"\n",
            server.base_url(Protocol::OpenAi)
        ),
    )
    .unwrap();
    let dir = DataDir::at(home.path()).unwrap();
    let token = {
        let store = Store::open(&dir).unwrap();
        let (_, t) = store
            .create_token(&NewToken {
                name: "bench".into(),
                ..NewToken::default()
            })
            .unwrap();
        t.expose().to_owned()
    };
    // Kept to count the keychain lookups the Local API makes.
    let keys = KeyStore::with_service("switchboard-bench");
    let gateway = gateway_rt
        .block_on(Gateway::start(
            dir.clone(),
            keys.clone(),
            GatewayOptions {
                port: 0,
                ..GatewayOptions::default()
            },
        ))
        .unwrap();
    let (direct, via) = (server.addr(), gateway.addr());
    let bare = floor_rt.block_on(floor::start(direct));

    println!(
        "Local API load: a fast local upstream directly vs through the Local API (ledger on), {} s per cell",
        RUN.as_secs()
    );
    println!(
        "  {:<6} {:>3}  {:>17}  {:>17}  {:>17}  {:>9} {:>9}",
        "mode",
        "c",
        "direct p50/p99 ms",
        "gateway p50/p99",
        "added p50/p99",
        "direct/s",
        "gateway/s"
    );
    let mut rps_64 = f64::NAN;
    let mut worst_added: Vec<Added> = Vec::new();
    let mut first_byte_added: Vec<(usize, f64)> = Vec::new();
    let tables: &[bool] = if run("load") { &[false, true] } else { &[] };
    for &stream in tables {
        for c in [1usize, 16, 64] {
            let model = if stream { "stream" } else { "fast" };
            let body = |m: &str| {
                serde_json::json!({
                    "model": m,
                    "messages": [{"role": "user", "content": "Benchmark prompt"}],
                    "stream": stream,
                })
            };
            let path = "/v1/chat/completions";
            let mut d = upstream.block_on(load(direct, path, None, &body(model), c));
            // The floor at c = 1 and 16, where the latency goals are.
            let mut f =
                (c <= 16).then(|| upstream.block_on(load(bare, path, None, &body(model), c)));
            let mut g = upstream.block_on(load(
                via,
                path,
                Some(&token),
                &body(&format!("mock:{model}")),
                c,
            ));

            let (dp50, dp99) = (pct(&mut d.latencies, 0.5), pct(&mut d.latencies, 0.99));
            let (gp50, gp99) = (pct(&mut g.latencies, 0.5), pct(&mut g.latencies, 0.99));
            let mode = if stream { "stream" } else { "whole" };
            println!(
                "  {mode:<6} {c:>3}  {dp50:>7.3} / {dp99:>7.3}  {gp50:>7.3} / {gp99:>7.3}  {:>+7.3} / {:>+7.3}  {:>9.0} {:>9.0}{}",
                gp50 - dp50,
                gp99 - dp99,
                d.rps(),
                g.rps(),
                if d.errors + g.errors > 0 {
                    format!("  ({} / {} errors)", d.errors, g.errors)
                } else {
                    String::new()
                }
            );
            println!("  {:<6} {c:>3}  CPU, direct: {}", "", d.cpu);
            println!("  {:<6} {c:>3}  CPU, gateway: {}", "", g.cpu);
            let floor_added = f.as_mut().map(|f| {
                let (fp50, fp99) = (pct(&mut f.latencies, 0.5), pct(&mut f.latencies, 0.99));
                println!(
                    "  {:<6} {c:>3}  bare proxy (floor): {fp50:.3} / {fp99:.3} ms, adds {:+.3} / {:+.3} ms, {:.0}/s{}; the Local API adds {:+.3} ms p50 over it",
                    "",
                    fp50 - dp50,
                    fp99 - dp99,
                    f.rps(),
                    if f.errors > 0 {
                        format!(" ({} errors)", f.errors)
                    } else {
                        String::new()
                    },
                    gp50 - fp50,
                );
                println!("  {:<6} {c:>3}  CPU, bare proxy: {}", "", f.cpu);
                (fp50 - dp50, fp99 - dp99)
            });
            if c <= 16 {
                worst_added.push(Added {
                    cell: format!("{mode} c={c}"),
                    p50: gp50 - dp50,
                    p99: gp99 - dp99,
                    floor: floor_added,
                });
            }
            if !stream && c == 64 {
                rps_64 = g.rps();
            }
            if stream {
                let df = pct(&mut d.first_bytes, 0.5);
                let gf = pct(&mut g.first_bytes, 0.5);
                let ff = f.as_mut().map_or(String::new(), |f| {
                    format!(" (bare proxy {:+.3} ms)", pct(&mut f.first_bytes, 0.5) - df)
                });
                println!(
                    "  {:<6} {c:>3}  first byte p50: direct {df:.3} ms, gateway {gf:.3} ms, added {:+.3} ms{ff}",
                    "",
                    gf - df
                );
                first_byte_added.push((c, gf - df));
            }
        }
    }
    // One long streamed answer at a time: when its last byte arrives.
    let long_body = |m: &str| {
        serde_json::json!({
            "model": m,
            "messages": [{"role": "user", "content": "Benchmark prompt"}],
            "stream": true,
        })
    };
    let path = "/v1/chat/completions";
    let mut long_added = f64::NAN;
    if run("long") {
        let mut d = upstream.block_on(load(direct, path, None, &long_body("long"), 1));
        let mut g = upstream.block_on(load(via, path, Some(&token), &long_body("mock:long"), 1));
        let (dl, gl) = (pct(&mut d.latencies, 0.5), pct(&mut g.latencies, 0.5));
        long_added = gl - dl;
        println!(
            "  stream   1  a {LONG_PIECES}-piece answer ends, p50: direct {dl:.3} ms, gateway {gl:.3} ms, added {long_added:+.3} ms"
        );
    }
    // The ledger kept every request.
    let store = Store::open(&dir).unwrap();
    upstream.block_on(gateway.stop(Duration::from_secs(10)));
    let total = store.spend_total(None).unwrap();
    println!(
        "  ledger: {} requests recorded, {} spent (exact); {} keychain lookups",
        total.requests,
        total.cost,
        keys.reads()
    );
    println!("goals:");
    for Added {
        cell,
        p50,
        p99,
        floor,
    } in &worst_added
    {
        println!(
            "  {cell:<12} added p50 {p50:+.3} ms (goal ≤ 0.2) {}   p99 {p99:+.3} ms (goal ≤ 1) {}{}",
            verdict(*p50 <= 0.2),
            verdict(*p99 <= 1.0),
            floor.map_or(String::new(), |(f50, f99)| format!(
                "   (a bare proxy adds {f50:+.3} / {f99:+.3})"
            ))
        );
    }
    if !rps_64.is_nan() {
        println!(
            "  whole c=64  {rps_64:.0} requests/s through the Local API (goal ≥ 5000) {}",
            verdict(rps_64 >= 5000.0)
        );
    }
    for (c, added) in &first_byte_added {
        println!(
            "  stream c={c:<3} first byte added {added:+.3} ms (goal ≤ 1) {}",
            verdict(*added <= 1.0)
        );
    }
    if !long_added.is_nan() {
        println!(
            "  stream c=1   a {LONG_PIECES}-piece answer ends {long_added:+.3} ms after the upstream's (goal ≤ 2) {}",
            verdict(long_added <= 2.0)
        );
    }
    if !run("pieces") {
        return;
    }
    println!(
        "engine cost per streamed piece (decode + parse + accumulate, 2,000 pieces, no network):"
    );
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
    ] {
        let bytes = recorded_stream(kind, 2000);
        let ns = per_piece(kind, &bytes, 2000);
        println!(
            "  {:<9} {:>7.0} ns per piece (goal ≤ 1000) {}",
            format!("{kind:?}"),
            ns,
            verdict(ns <= 1000.0)
        );
    }
}

/// What the Local API adds in one cell (ms), and what the floor adds.
struct Added {
    cell: String,
    p50: f64,
    p99: f64,
    /// The bare proxy's (p50, p99), where it was measured.
    floor: Option<(f64, f64)>,
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
