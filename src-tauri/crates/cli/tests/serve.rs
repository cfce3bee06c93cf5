//! `switchboard-cli serve`, the Local API, driven by the official OpenAI and
//! Anthropic Python SDKs (`tests/sdk/client.py`, installed by `.ci/setup
//! test` into `target/sdk-venv`) against mock providers over loopback
//! HTTP, with a real SQLite file in a temporary `SWITCHBOARD_HOME`: what
//! a tool pointed at the Local API sees, and what the ledger keeps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_mock::{Fault, MockServer, MockUsage, Protocol, Scenario};
use switchboard_tests::{collect_output, mock_providers_config, pieces};

/// The SDKs' Python, as `.ci/setup test` installs it.
fn python() -> PathBuf {
    let p = switchboard_tests::workspace_root().join("target/sdk-venv/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run `.ci/setup test` (it installs the openai and anthropic SDKs)",
        p.display()
    );
    p
}

fn cli(home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(args)
        .env("SWITCHBOARD_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Make a client token; returns it.
fn token(home: &Path, args: &[&str]) -> String {
    let mut all = vec!["tokens", "create"];
    all.extend_from_slice(args);
    let (code, out, err) = cli(home, &all);
    assert_eq!(code, Some(0), "tokens create failed: {err}");
    let t = out.trim().to_owned();
    assert!(t.starts_with("sb-"), "{out}");
    t
}

/// A running `switchboard-cli serve`.
struct Served {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// `serve` with `args` (on a free port unless `args` or the config name
    /// one: pass `--config-port` to use `[local_api] port`).
    fn start(home: &Path, args: &[&str]) -> Self {
        let from_config = args.contains(&"--config-port");
        let args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != "--config-port")
            .collect();
        let port: &[&str] = if from_config { &[] } else { &["--port", "0"] };
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
            .arg("serve")
            .args(port)
            .args(&args)
            .env("SWITCHBOARD_HOME", home)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect_output(child.stdout.take().unwrap());
        let stderr = collect_output(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        let base = loop {
            let text = stdout.lock().unwrap().clone();
            if let Some(url) = text.split_whitespace().find(|w| w.starts_with("http://")) {
                break url.to_owned();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "serve exited ({status}): {}",
                    stderr.lock().unwrap().clone()
                );
            }
            assert!(Instant::now() < deadline, "serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            base,
            stderr,
        }
    }

    fn client(&self, token: &str, actions: &Value) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/client.py");
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .arg(actions.to_string())
            .env("SB_BASE", &self.base)
            .env("SB_TOKEN", token);
        cmd
    }

    /// Run SDK actions (see client.py) with `token`; one result each.
    fn sdk(&self, token: &str, actions: Value) -> Vec<Value> {
        let out = self.client(token, &actions).output().unwrap();
        assert!(
            out.status.success(),
            "client.py failed: {}\nserve said: {}",
            String::from_utf8_lossy(&out.stderr),
            self.stderr.lock().unwrap()
        );
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    }

    /// SIGTERM, and the exit code.
    fn stop(self) -> Option<i32> {
        self.signal("TERM")
    }

    /// Send `signal` (`TERM`, `KILL`), and the exit code.
    fn signal(mut self, signal: &str) -> Option<i32> {
        let _ = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(Instant::now() < deadline, "serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `GET /v1/models` with `token`, over plain HTTP: the status and the
/// body. Nothing is sent upstream, so it can be repeated freely.
fn get_models(base: &str, token: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches("/v1");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /v1/models HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Start a streamed chat over plain HTTP and read until its first piece
/// of text (`000`) has arrived; the connection is left open.
fn stream_until_first_text(base: &str, token: &str, model: &str) -> std::net::TcpStream {
    let addr = base.trim_start_matches("http://").trim_end_matches("/v1");
    let body = json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": "Say hello"}],
    })
    .to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"content\":\"000") {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "the stream ended: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

/// Wait until `seen` holds: a change of config.toml or of the tokens is
/// seen within a second or so; a generous bound keeps a loaded machine
/// from failing the test, and the test goes on as soon as it holds.
fn eventually(what: &str, mut seen: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The mock providers' config plus `extra`.
fn home_with(server: &MockServer, extra: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!("{}{extra}", mock_providers_config(server)),
    )
    .unwrap();
    home
}

fn db(home: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(home.join("switchboard.sqlite3")).unwrap()
}

/// Ledger rows: (provider, model, cost_nanos, estimated, input, output, tags).
type Row = (String, String, i64, bool, Option<i64>, Option<i64>, String);

fn ledger(home: &Path) -> Vec<Row> {
    let c = db(home);
    let mut stmt = c
        .prepare(
            "SELECT provider, model, cost_nanos, estimated, input_tokens, output_tokens,
                    coalesce((SELECT group_concat(tag, ',') FROM
                        (SELECT tag FROM ledger_tags WHERE entry_id = l.id ORDER BY tag)), '')
             FROM ledger l ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Wait until the ledger has `n` rows (writes are batched a moment after
/// the answer).
fn ledger_rows(home: &Path, n: usize) -> Vec<Row> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = ledger(home);
        if rows.len() >= n || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn header<'a>(v: &'a Value, name: &str) -> &'a str {
    v["headers"][name].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_gets_answers_with_exact_usage_and_cost() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["Hello", " from", " the", " mock"])
            .with_usage(MockUsage {
                input: 1200,
                cached_input: 0,
                output: 345,
                reasoning: 0,
            }),
    );
    server.script(
        "an-model",
        Scenario::default()
            .with_reasoning(&["Thinking", " briefly."])
            .with_text(&["Bonjour", " !"])
            .with_usage(MockUsage {
                input: 40,
                cached_input: 0,
                output: 7,
                reasoning: 3,
            }),
    );
    let home = home_with(&server, "");
    let t = token(home.path(), &["cursor", "--tag", "work"]);
    let served = Served::start(home.path(), &[]);
    let r = served.sdk(
        &t,
        json!([
            ["openai_chat", {"model": "oa:oa-model"}],
            ["openai_chat", {"model": "oa:oa-model", "stream": true, "include_usage": true}],
            ["openai_chat", {"model": "an:an-model", "stream": true}],
            ["openai_chat", {"model": "an:an-model"}],
            ["openai_chat", {"model": "oa-model"}],
        ]),
    );
    // 1200 × $2.50/M + 345 × $10/M = $0.003 + $0.00345 = $0.00645, exactly.
    let whole = &r[0];
    assert_eq!(whole["text"], "Hello from the mock", "{whole}");
    assert_eq!(whole["model"], "oa:oa-model");
    assert_eq!(whole["finish"], "stop");
    assert_eq!(whole["usage"]["prompt_tokens"], 1200);
    assert_eq!(whole["usage"]["completion_tokens"], 345);
    assert_eq!(whole["usage"]["total_tokens"], 1545);
    assert_eq!(
        whole["cost_text"], "0.00645",
        "the cost is an exact decimal"
    );
    assert_eq!(whole["usage"]["cost"].as_f64(), Some(0.00645));
    assert_eq!(header(whole, "x-switchboard-target"), "oa:oa-model");
    assert_eq!(header(whole, "x-switchboard-attempts"), "oa:oa-model=ok");
    assert_eq!(header(whole, "x-switchboard-cost"), "0.00645");

    let streamed = &r[1];
    assert_eq!(streamed["text"], "Hello from the mock", "{streamed}");
    assert_eq!(streamed["finish"], "stop");
    assert_eq!(streamed["usage"]["prompt_tokens"], 1200);
    assert_eq!(streamed["usage"]["completion_tokens"], 345);
    assert_eq!(streamed["usage"]["cost"].as_f64(), Some(0.00645));
    // The usage chunk is last and has no choices, as OpenAI sends it.
    let choices: Vec<u64> = streamed["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(choices.last(), Some(&0));
    assert!(choices[..choices.len() - 1].iter().all(|c| *c == 1));
    assert_eq!(streamed["models"], json!(["oa:oa-model"]));
    assert_eq!(header(streamed, "content-type"), "text/event-stream");
    assert_eq!(header(streamed, "x-switchboard-target"), "oa:oa-model");

    // An Anthropic-protocol provider behind the OpenAI wire format.
    let translated = &r[2];
    assert_eq!(translated["text"], "Bonjour !", "{translated}");
    assert_eq!(
        translated["reasoning"], "Thinking briefly.",
        "reasoning travels as `reasoning`"
    );
    assert_eq!(
        translated["usage"],
        Value::Null,
        "no usage chunk unless asked"
    );
    // 40 × $3/M + 7 × $15/M = $0.000225
    assert_eq!(r[3]["cost_text"], "0.000225");
    assert_eq!(r[3]["usage"]["prompt_tokens"], 40);

    // A bare model id that one provider's catalog has.
    assert_eq!(r[4]["model"], "oa:oa-model", "{}", r[4]);
    assert_eq!(r[4]["text"], "Hello from the mock");

    // Every request is one ledger row, tagged with the token's name and tag.
    let rows = ledger_rows(home.path(), 5);
    assert_eq!(rows.len(), 5, "{rows:?}");
    let oa: Vec<&Row> = rows.iter().filter(|r| r.0 == "oa").collect();
    assert_eq!(oa.len(), 3);
    for row in &oa {
        assert_eq!(
            (row.2, row.3, row.4, row.5),
            (6_450_000, false, Some(1200), Some(345))
        );
        assert_eq!(row.6, "cursor,work");
    }
    let (code, out, _) = cli(home.path(), &["spend", "--by", "tag", "--json"]);
    assert_eq!(code, Some(0));
    let spend: Value = serde_json::from_str(&out).unwrap();
    let cursor = spend["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "cursor")
        .unwrap_or_else(|| panic!("{spend}"));
    assert_eq!(cursor["requests"], 5);
    assert_eq!(cursor["cost_nanos"], 3 * 6_450_000 + 2 * 225_000);
    // The token's listing says when it was last used, never the token.
    let (code, out, _) = cli(home.path(), &["tokens", "list", "--json"]);
    assert_eq!(code, Some(0));
    assert!(!out.contains(&t), "the token itself is listed");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["name"], "cursor");
    assert_eq!(listed[0]["tag"], "work");
    assert_eq!(listed[0]["last4"], &t[t.len() - 4..]);
    assert!(listed[0]["last_used_at_ms"].is_i64(), "{listed}");
    // Without --record-history only the ledger sees the requests.
    let conversations: i64 = db(home.path())
        .query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(conversations, 0);
    assert_eq!(served.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_gets_messages_from_any_protocol() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "an-model",
        Scenario::default()
            .with_reasoning(&["Let me", " think."])
            .with_text(&["Hi", " there"])
            .with_usage(MockUsage {
                input: 1000,
                cached_input: 400,
                output: 50,
                reasoning: 10,
            }),
    );
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["From", " OpenAI"])
            .with_usage(MockUsage {
                input: 20,
                cached_input: 0,
                output: 4,
                reasoning: 0,
            }),
    );
    let home = home_with(&server, "");
    let t = token(home.path(), &["claude-tool"]);
    let served = Served::start(home.path(), &[]);
    let r = served.sdk(
        &t,
        json!([
            ["anthropic_message", {"model": "an:an-model"}],
            ["anthropic_message", {"model": "an:an-model", "stream": true, "thinking": true}],
            ["anthropic_message", {"model": "oa:oa-model", "stream": true}],
            ["anthropic_message", {"model": "oa:oa-model"}],
        ]),
    );
    let whole = &r[0];
    assert_eq!(whole["text"], "Hi there", "{whole}");
    assert_eq!(whole["thinking"], "", "no thinking unless asked for");
    assert_eq!(whole["model"], "an:an-model");
    assert_eq!(whole["stop_reason"], "end_turn");
    // Anthropic's meaning: input_tokens leaves out the cached part.
    assert_eq!(whole["usage"]["input_tokens"], 600);
    assert_eq!(whole["usage"]["cache_read_input_tokens"], 400);
    assert_eq!(whole["usage"]["output_tokens"], 50);
    // 600 × $3/M + 400 cache reads × $0.30/M (Anthropic's 0.1× input) +
    // 50 × $15/M = $0.00267
    assert_eq!(whole["usage"]["cost"].as_f64(), Some(0.00267), "{whole}");
    assert_eq!(header(whole, "x-switchboard-target"), "an:an-model");

    let streamed = &r[1];
    assert_eq!(streamed["streamed"], "Hi there", "{streamed}");
    assert_eq!(streamed["text"], "Hi there");
    assert_eq!(streamed["thinking"], "Let me think.");
    assert_eq!(streamed["usage"]["input_tokens"], 600);
    assert_eq!(streamed["usage"]["output_tokens"], 50);
    // The cost travels in message_delta's usage, with the final counts.
    assert_eq!(streamed["delta_usage"]["cost"].as_f64(), Some(0.00267));
    assert_eq!(streamed["delta_usage"]["input_tokens"], 600);
    assert_eq!(streamed["stop_reason"], "end_turn");

    // An OpenAI-protocol provider behind the Anthropic wire format.
    for translated in &r[2..] {
        assert_eq!(translated["text"], "From OpenAI", "{translated}");
        assert_eq!(translated["model"], "oa:oa-model");
        assert_eq!(translated["usage"]["input_tokens"], 20);
        assert_eq!(translated["usage"]["output_tokens"], 4);
    }
    // 20 × $2.50/M + 4 × $10/M = $0.00009
    assert_eq!(r[2]["delta_usage"]["cost"].as_f64(), Some(0.00009));
    assert_eq!(r[3]["usage"]["cost"].as_f64(), Some(0.00009));
    // The request went upstream in the provider's own protocol.
    let sent = server.requests();
    assert!(sent.iter().any(|q| q.path == "/v1/chat/completions"));
    assert!(sent.iter().any(|q| q.path == "/v1/messages"));
    let rows = ledger_rows(home.path(), 4);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.6 == "claude-tool"), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_falls_back_behind_one_model_name_and_failures_get_their_status() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "oa-model",
        Scenario::default().with_text(&["Fallback", " answer"]),
    );
    for down in ["down-a", "down-b", "down-c", "down-d"] {
        server.script(
            down,
            Scenario::default().with_fault(Fault::Status {
                code: 503,
                retry_after_s: None,
            }),
        );
    }
    server.script(
        "limited",
        Scenario::default().with_fault(Fault::Status {
            code: 429,
            retry_after_s: Some(7),
        }),
    );
    let routes = "\n[routes.safe]\nstrategy = \"ordered\"\nretries = 0\ntargets = [\"oa:down-a\", \"oa:oa-model\"]\n\
                  [routes.dead]\nretries = 0\ntargets = [\"oa:down-c\", \"an:down-d\"]\n";
    let home = home_with(&server, routes);
    let t = token(home.path(), &["agent"]);
    let served = Served::start(home.path(), &[]);
    let r = served.sdk(
        &t,
        json!([
            ["openai_chat", {"model": "@safe"}],
            ["openai_chat", {"model": "@safe", "stream": true}],
            ["anthropic_message", {"model": "@safe", "stream": true}],
            ["openai_chat", {"extra": {"models": ["oa:down-b", "oa:oa-model"]}, "model": "oa:down-a"}],
            ["openai_chat", {"model": "@dead"}],
            ["anthropic_message", {"model": "@dead"}],
            ["openai_chat", {"model": "oa:limited"}],
        ]),
    );
    for answered in &r[..3] {
        assert_eq!(answered["text"], "Fallback answer", "{answered}");
        assert_eq!(header(answered, "x-switchboard-target"), "oa:oa-model");
        assert_eq!(header(answered, "x-switchboard-route"), "safe");
        let attempts = header(answered, "x-switchboard-attempts");
        assert!(
            attempts.starts_with("oa:down-a=error/overloaded, oa:oa-model="),
            "{attempts}"
        );
    }
    // `models` is a fallback chain after `model`.
    let chained = &r[3];
    assert_eq!(chained["text"], "Fallback answer", "{chained}");
    assert_eq!(
        header(chained, "x-switchboard-attempts"),
        "oa:down-a=error/overloaded, oa:down-b=error/overloaded, oa:oa-model=ok"
    );
    // Every target failed: 503 (overloaded), each attempt in the body, in
    // both dialects.
    let dead = &r[4];
    assert_eq!(dead["status"], 503, "{dead}");
    assert_eq!(dead["error"], "InternalServerError");
    let attempts = dead["body"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{dead}");
    assert_eq!(attempts[0]["target"], "oa:down-c");
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[1]["target"], "an:down-d");
    assert_eq!(r[5]["status"], 503, "{}", r[5]);
    assert_eq!(r[5]["body"]["error"]["type"], "overloaded_error");
    // Every target rate-limited: 429 and the provider's Retry-After.
    let limited = &r[6];
    assert_eq!(limited["status"], 429, "{limited}");
    assert_eq!(limited["error"], "RateLimitError");
    assert_eq!(header(limited, "retry-after"), "7");
    assert_eq!(
        server.hits("limited"),
        1,
        "named directly: tried once, the SDK retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_list_has_the_catalog_and_the_routes() {
    let server = MockServer::start().await.unwrap();
    let routes = format!(
        "\n[routes.fast]\nstrategy = \"fastest\"\ntargets = [\"oa:oa-model\", \"an:an-model\"]\n\
         [routes.wide]\ntargets = [\"big:big-model\", \"big:small-model\"]\n\
         [providers.big]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [[providers.big.models]]\nid = \"big-model\"\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\ncontext_window = 200000\n\
         [[providers.big.models]]\nid = \"small-model\"\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\ncontext_window = 32768\n",
        server.base_url(Protocol::OpenAi)
    );
    let home = home_with(&server, &routes);
    let t = token(home.path(), &["lister"]);
    let served = Served::start(home.path(), &[]);
    let r = served.sdk(&t, json!([["openai_models", {}], ["anthropic_models", {}]]));
    let ids = r[0]["ids"].as_array().unwrap();
    for id in ["oa:oa-model", "an:an-model", "gm:gm-model", "@fast"] {
        assert!(ids.contains(&json!(id)), "{id} missing from {ids:?}");
    }
    let data = r[0]["raw"]["data"].as_array().unwrap();
    let oa = data.iter().find(|m| m["id"] == "oa:oa-model").unwrap();
    assert_eq!(oa["object"], "model");
    assert_eq!(oa["owned_by"], "oa");
    assert_eq!(oa["pricing"]["prompt"], "0.0000025");
    assert_eq!(oa["pricing"]["completion"], "0.00001");
    // Context windows: the catalog's, and a route's is its smallest.
    let window = |id: &str| data.iter().find(|m| m["id"] == id).unwrap()["context_length"].clone();
    assert_eq!(window("big:big-model"), json!(200000));
    assert_eq!(window("big:small-model"), json!(32768));
    assert_eq!(window("@wide"), json!(32768));
    let fast = data.iter().find(|m| m["id"] == "@fast").unwrap();
    assert_eq!(
        fast["route"]["targets"],
        json!(["oa:oa-model", "an:an-model"])
    );
    assert!(
        r[1]["ids"]
            .as_array()
            .unwrap()
            .contains(&json!("an:an-model")),
        "{}",
        r[1]
    );

    // An edit of config.toml applies without a restart, within a second.
    let path = home.path().join("config.toml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str("\n[routes.late]\ntargets = [\"oa:oa-model\"]\n");
    std::fs::write(&path, config).unwrap();
    eventually("the new route is listed", || {
        get_models(&served.base, &t).1.contains("\"@late\"")
    });
    let r = served.sdk(&t, json!([["openai_models", {}]]));
    assert!(
        r[0]["ids"].as_array().unwrap().contains(&json!("@late")),
        "{}",
        r[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_stream_leaves_one_settled_ledger_row() {
    let server = MockServer::start().await.unwrap();
    let text = pieces(200, ' ');
    let refs: Vec<&str> = text.iter().map(String::as_str).collect();
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(Duration::from_millis(20)),
    );
    let home = home_with(&server, "");
    let t = token(home.path(), &["notebook", "--record-history"]);
    let served = Served::start(home.path(), &[]);
    let r = served.sdk(
        &t,
        json!([["openai_disconnect", {"model": "oa:oa-model", "keep": 3}]]),
    );
    assert_eq!(r[0]["got"], "000 001 002 ", "{}", r[0]);
    // The upstream request is cancelled: the mock stops writing long
    // before the 200th piece.
    let rows = ledger_rows(home.path(), 1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let sent_then = server.pieces_sent("oa-model")[0];
    std::thread::sleep(Duration::from_millis(300));
    let sent = server.pieces_sent("oa-model")[0];
    assert_eq!(sent, sent_then, "the upstream stream kept going");
    assert!((3..100).contains(&sent), "{sent} pieces written");
    // One row: billed at the model's price for what streamed (estimated),
    // tagged with the token.
    let (provider, model, cost, estimated, input, output, tags) = rows[0].clone();
    assert_eq!((provider.as_str(), model.as_str()), ("oa", "oa-model"));
    assert!(estimated);
    let output = output.unwrap() as usize;
    assert!(
        (3..=sent).contains(&output),
        "{output} tokens billed, {sent} sent"
    );
    // Input is estimated from the prompt; output at $10/M.
    assert_eq!(cost, input.unwrap() * 2_500 + output as i64 * 10_000);
    assert_eq!(tags, "notebook");
    let c = db(home.path());
    let held: i64 = c
        .query_row("SELECT count(*) FROM reservations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(held, 0, "the hold is released");
    // The token records history: the answer is there, stopped, with the
    // text that streamed.
    let (content, kind): (String, Option<String>) = c
        .query_row(
            "SELECT content, error_kind FROM messages WHERE role = 'assistant'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(content.starts_with("000 001 002 "), "{content}");
    assert_eq!(kind.as_deref(), Some("stopped"));
    let outcome: String = c
        .query_row("SELECT outcome FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(outcome, "stopped", "the attempt settled as stopped");
    let tag: String = c
        .query_row("SELECT tag FROM conversation_tags", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        tag, "notebook",
        "the conversation is tagged like its ledger row"
    );
    drop(c);

    // A client that stops waiting for a whole (non-streamed) answer hangs
    // up too: that request is stopped and settled the same way.
    let r = served.sdk(
        &t,
        json!([["openai_give_up", {"model": "oa:oa-model", "seconds": 0.5}]]),
    );
    assert_eq!(r[0]["gave_up"], true, "{}", r[0]);
    let rows = ledger_rows(home.path(), 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let sent_then = server.pieces_sent("oa-model")[1];
    std::thread::sleep(Duration::from_millis(300));
    let sent = server.pieces_sent("oa-model")[1];
    assert_eq!(sent, sent_then, "the upstream stream kept going");
    assert!(sent < 100, "{sent} pieces written");
    assert!(rows[1].3, "billed as estimated for what streamed");

    // Still serving.
    server.script("oa-model", Scenario::default().with_text(&["again"]));
    let again = served.sdk(&t, json!([["openai_chat", {"model": "oa:oa-model"}]]));
    assert_eq!(again[0]["text"], "again", "{}", again[0]);
    let before = ledger_rows(home.path(), 3).len();
    assert_eq!(before, 3);

    // Stopped (SIGTERM) with a stream running: it settles before the exit.
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(Duration::from_millis(20)),
    );
    let streams = server.pieces_sent("oa-model").len();
    let mut reader = served
        .client(
            &t,
            &json!([["openai_chat", {"model": "oa:oa-model", "stream": true}]]),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The mock counts the pieces of each stream it serves, in order.
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .pieces_sent("oa-model")
        .get(streams)
        .is_none_or(|n| *n < 5)
    {
        assert!(Instant::now() < deadline, "the stream never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(served.stop(), Some(0));
    let _ = reader.wait();
    let rows = ledger(home.path());
    assert_eq!(rows.len(), before + 1, "settled before the exit: {rows:?}");
    assert!(rows[before].3, "billed as estimated for what streamed");

    // Killed (-9) with a stream running: the next Switchboard process to
    // open the data directory settles it.
    let served = Served::start(home.path(), &[]);
    let mut reader = served
        .client(
            &t,
            &json!([["openai_chat", {"model": "oa:oa-model", "stream": true}]]),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .pieces_sent("oa-model")
        .get(streams + 1)
        .is_none_or(|n| *n < 5)
    {
        assert!(
            Instant::now() < deadline,
            "the stream never started: {:?}",
            server.pieces_sent("oa-model")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let its checkpoints reach the database.
    std::thread::sleep(Duration::from_millis(700));
    served.signal("KILL");
    let _ = reader.wait();
    assert_eq!(
        ledger(home.path()).len(),
        before + 1,
        "nothing settled it yet"
    );
    let recovered = recovered_row(home.path(), before + 2);
    assert!(
        recovered.5.unwrap() >= 5,
        "billed for what streamed: {recovered:?}"
    );

    // Killed the moment its first piece reached the client, with no time
    // for later checkpoints: the request did not wait for its hold before
    // going upstream, but the client's first byte did, so it is found.
    let served = Served::start(home.path(), &[]);
    let reader = stream_until_first_text(&served.base, &t, "oa:oa-model");
    served.signal("KILL");
    drop(reader);
    recovered_row(home.path(), before + 3);
}

/// Open the data directory with another process (which recovers what a
/// killed one left): the ledger then has `rows` rows, the last one billed
/// as estimated for the notebook token, and no hold is left.
fn recovered_row(home: &Path, rows: usize) -> Row {
    let (code, _, err) = cli(home, &["spend", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let all = ledger(home);
    assert_eq!(all.len(), rows, "{all:?}");
    let recovered = all[rows - 1].clone();
    assert!(recovered.3, "estimated");
    assert_eq!(recovered.6, "notebook");
    let held: i64 = db(home)
        .query_row("SELECT count(*) FROM reservations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(held, 0);
    recovered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_hard_budgets_answer_402_and_open_binds_need_a_token() {
    let server = MockServer::start().await.unwrap();
    server.script("oa-model", Scenario::default().with_text(&["ok"]));
    let budgets = "\n[budgets.tiny]\nscope = \"tag:capped\"\nperiod = \"daily\"\nlimit_usd = \"0.000001\"\nhard = true\n";
    let home = home_with(&server, budgets);
    // A binding is checked when the token is made.
    let (code, _, err) = cli(
        home.path(),
        &["tokens", "create", "loose", "--budget", "nope"],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("budget \"nope\" is not defined"), "{err}");
    let capped = token(home.path(), &["capped", "--budget", "tiny"]);
    let free = token(home.path(), &["free"]);
    let served = Served::start(home.path(), &[]);
    let r = served.sdk(
        &free,
        json!([
            ["openai_chat", {"model": "oa:oa-model", "token": "sb-not-a-token"}],
            ["anthropic_message", {"model": "oa:oa-model", "token": "sb-not-a-token"}],
            ["raw_post", {"path": "/chat/completions", "token": "", "body": {"model": "oa:oa-model", "messages": [{"role": "user", "content": "hi"}]}}],
            ["openai_chat", {"model": "oa:oa-model", "token": capped}],
            ["anthropic_message", {"model": "oa:oa-model", "token": capped}],
            ["openai_chat", {"model": "oa:oa-model"}],
        ]),
    );
    assert_eq!(r[0]["status"], 401, "{}", r[0]);
    assert_eq!(r[0]["error"], "AuthenticationError");
    assert!(r[0]["message"].as_str().unwrap().contains("tokens create"));
    assert_eq!(r[1]["status"], 401, "{}", r[1]);
    assert_eq!(r[1]["body"]["error"]["type"], "authentication_error");
    assert_eq!(r[2]["status"], 401, "{}", r[2]);
    // The hard budget refuses before anything is sent, naming itself.
    let refused = &r[3];
    assert_eq!(refused["status"], 402, "{refused}");
    assert_eq!(refused["body"]["code"], "budget_exceeded");
    assert_eq!(refused["body"]["budgets"], json!(["tiny"]));
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("budget \"tiny\""),
        "{refused}"
    );
    assert_eq!(r[4]["status"], 402, "{}", r[4]);
    assert_eq!(r[4]["body"]["error"]["type"], "billing_error");
    assert_eq!(r[5]["text"], "ok", "{}", r[5]);
    assert_eq!(
        server.hits("oa-model"),
        1,
        "only the free token's request was sent"
    );

    // The budget a token is bound to disappears: the token stops spending.
    let (code, _, err) = cli(home.path(), &["budget", "rm", "tiny"]);
    assert_eq!(code, Some(0), "{err}");
    let mut r = Vec::new();
    eventually("the removed budget is seen", || {
        r = served.sdk(&capped, json!([["openai_chat", {"model": "oa:oa-model"}]]));
        r[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("is not defined"))
    });
    assert_eq!(r[0]["status"], 402, "{}", r[0]);
    assert!(
        r[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"tiny\" is not defined"),
        "{}",
        r[0]
    );
    // Revoked while serving: refused within a second.
    let (code, out, _) = cli(home.path(), &["tokens", "revoke", "free"]);
    assert_eq!((code, out.trim()), (Some(0), "revoked token \"free\""));
    eventually("the revoked token is refused", || {
        get_models(&served.base, &free).0 == 401
    });
    let r = served.sdk(&free, json!([["openai_chat", {"model": "oa:oa-model"}]]));
    assert_eq!(r[0]["status"], 401, "{}", r[0]);
    assert_eq!(server.hits("oa-model"), 1);
    drop(served);

    // Anything but loopback needs a token; with one it starts.
    let bare = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(bare.path(), &["serve", "--bind", "0.0.0.0", "--port", "0"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without a client token"),
        "{err}"
    );
    let lan = token(bare.path(), &["lan"]);
    let open = Served::start(bare.path(), &["--bind", "0.0.0.0"]);
    assert!(open.base.starts_with("http://0.0.0.0:"), "{}", open.base);
    assert_eq!(open.stop(), Some(0));

    // The port from `[local_api]`, and a smaller body limit.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        bare.path().join("config.toml"),
        format!("[local_api]\nport = {port}\n"),
    )
    .unwrap();
    let small = Served::start(bare.path(), &["--config-port", "--max-body", "1000"]);
    assert_eq!(small.base, format!("http://127.0.0.1:{port}/v1"));
    let r = small.sdk(
        &lan,
        json!([["raw_post", {"path": "/chat/completions", "size": 2000}]]),
    );
    assert_eq!(r[0]["status"], 413, "{}", r[0]);
    assert!(
        r[0]["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000 bytes")
    );
    assert_eq!(small.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "oa-model",
        Scenario::default().with_text(&["still", " here"]),
    );
    // A disabled provider and one the policy does not allow, both on the
    // same mock.
    let base = server.base_url(Protocol::OpenAi);
    let extra = format!(
        "\n[providers.off]\nkind = \"openai\"\nbase_url = \"{base}\"\nenabled = false\n\
         [providers.other]\nkind = \"openai\"\nbase_url = \"{base}\"\n\
         [providers.hosted]\nkind = \"openai\"\nbase_url = \"{base}\"\nlocal = false\n\
         [policy]\nallowed_providers = [\"oa\", \"an\", \"gm\", \"off\", \"hosted\"]\n"
    );
    let home = home_with(&server, &extra);
    let t = token(home.path(), &["tool"]);
    let served = Served::start(home.path(), &[]);
    let ok = json!(["openai_chat", {"model": "oa:oa-model"}]);
    let r = served.sdk(
        &t,
        json!([
            ["raw_post", {"path": "/chat/completions", "text": "{\"model\": \"oa:oa-model\", \"messages\": ["}],
            ok,
            ["raw_post", {"path": "/chat/completions", "body": {"model": "oa:oa-model"}}],
            ok,
            ["openai_chat", {"model": "oa-modle"}],
            ok,
            ["raw_post", {"path": "/chat/completions", "size": 5 * 1024 * 1024}],
            ok,
            ["raw_post", {"path": "/messages", "body": {"model": "oa:oa-model", "messages": [{"role": "user", "content": "hi"}]}}],
            ["anthropic_message", {"model": "nope:model"}],
            ok,
            ["openai_chat", {"model": "off:oa-model"}],
            ["openai_chat", {"model": "other:oa-model"}],
            ["openai_chat", {"model": "oa:no-such-model"}],
            ["openai_chat", {"model": "hosted:oa-model"}],
            ["raw_post", {"path": "/chat/completions", "headers": {"origin": "https://web.example"}, "body": {"model": "oa:oa-model", "messages": [{"role": "user", "content": "hi"}]}}],
        ]),
    );
    let malformed = &r[0];
    assert_eq!(malformed["status"], 400, "{malformed}");
    assert_eq!(malformed["body"]["error"]["code"], "invalid_json");
    assert!(
        malformed["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not valid JSON"),
        "{malformed}"
    );
    let missing = &r[2];
    assert_eq!(missing["status"], 400, "{missing}");
    assert!(
        missing["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`messages` is required")
    );
    let unknown = &r[4];
    assert_eq!(unknown["status"], 400, "{unknown}");
    assert_eq!(unknown["error"], "BadRequestError");
    let message = unknown["message"].as_str().unwrap();
    assert!(message.contains("unknown model \"oa-modle\""), "{message}");
    assert!(message.contains("nearest known: oa:oa-model"), "{message}");
    let oversized = &r[6];
    assert_eq!(oversized["status"], 413, "{oversized}");
    assert!(
        oversized["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4194304 bytes")
    );
    // Anthropic's dialect on /v1/messages.
    assert_eq!(r[8]["status"], 400, "{}", r[8]);
    assert_eq!(r[8]["body"]["type"], "error");
    assert_eq!(r[8]["body"]["error"]["type"], "invalid_request_error");
    assert!(
        r[8]["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
    assert_eq!(r[9]["status"], 400, "{}", r[9]);
    assert!(
        r[9]["message"]
            .as_str()
            .unwrap()
            .contains("unknown provider \"nope\"")
    );
    // Disabled providers stay disabled, and the policy applies, as in the app.
    assert_eq!(r[11]["status"], 403, "{}", r[11]);
    assert!(
        r[11]["message"].as_str().unwrap().contains("disabled"),
        "{}",
        r[11]
    );
    assert_eq!(r[12]["status"], 403, "{}", r[12]);
    assert_eq!(r[12]["error"], "PermissionDeniedError");
    // A model the provider does not have: its 404, in the caller's dialect.
    assert_eq!(r[13]["status"], 404, "{}", r[13]);
    assert_eq!(r[13]["error"], "NotFoundError");
    // A hosted provider without a key: nothing was sent; 502, and why.
    assert_eq!(r[14]["status"], 502, "{}", r[14]);
    assert!(
        r[14]["message"].as_str().unwrap().contains("no API key"),
        "{}",
        r[14]
    );
    assert_eq!(
        r[14]["body"]["attempts"][0]["target"], "hosted:oa-model",
        "{}",
        r[14]
    );
    // No CORS headers, whatever the origin: a web page cannot read answers.
    let cors = &r[15];
    assert_eq!(cors["status"], 200, "{cors}");
    let headers = cors["headers"].as_object().unwrap();
    assert!(
        headers.keys().all(|k| !k.starts_with("access-control-")),
        "{headers:?}"
    );
    for (i, answer) in r
        .iter()
        .enumerate()
        .filter(|(i, _)| [1, 3, 5, 7, 10].contains(i))
    {
        assert_eq!(answer["text"], "still here", "request {i}: {answer}");
    }
    assert_eq!(
        server.hits("oa-model"),
        6,
        "no bad request reached the provider"
    );
}

/// `serve` over `oa-model` streaming `n` numbered pieces 50 ms apart and
/// reporting `(input, output)` tokens, with a client token named `name`.
fn serving_pieces(
    server: &MockServer,
    n: usize,
    (input, output): (u64, u64),
    name: &str,
) -> (tempfile::TempDir, String, Served) {
    let text = pieces(n, ' ');
    let refs: Vec<&str> = text.iter().map(String::as_str).collect();
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(Duration::from_millis(50))
            .with_usage(MockUsage {
                input,
                cached_input: 0,
                output,
                reasoning: 0,
            }),
    );
    let home = home_with(server, "");
    let t = token(home.path(), &[name]);
    let served = Served::start(home.path(), &[]);
    (home, t, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_streams_at_once_all_answer_and_settle_exactly() {
    const STREAMS: usize = 200;
    let server = MockServer::start().await.unwrap();
    server.set_recording(false);
    // Each answer streams for about three seconds, so all of them must be
    // running through `serve` at the same time to finish in time.
    let (home, t, served) = serving_pieces(&server, 60, (10, 60), "swarm");
    let url = format!("{}/chat/completions", served.base);
    let http = reqwest::Client::new();
    let body = json!({
        "model": "oa:oa-model",
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hi"}],
    });
    let start = Instant::now();
    let tasks: Vec<_> = (0..STREAMS)
        .map(|_| {
            let (http, url, t, body) = (http.clone(), url.clone(), t.clone(), body.clone());
            tokio::spawn(async move {
                let mut r = http
                    .post(&url)
                    .bearer_auth(&t)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let mut got = Vec::new();
                let mut first = None;
                while let Some(chunk) = r.chunk().await.unwrap() {
                    if first.is_none() && chunk.windows(12).any(|w| w == b"\"content\":\"0") {
                        first = Some(start.elapsed());
                    }
                    got.extend_from_slice(&chunk);
                }
                (
                    first.unwrap(),
                    start.elapsed(),
                    String::from_utf8(got).unwrap(),
                )
            })
        })
        .collect();
    let mut results = Vec::with_capacity(STREAMS);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let last_first = results.iter().map(|r| r.0).max().unwrap();
    let first_end = results.iter().map(|r| r.1).min().unwrap();
    assert!(
        last_first < first_end,
        "every stream was running at once: the last began at {last_first:?}, \
         the first ended at {first_end:?}"
    );
    let want: String = pieces(60, ' ').concat();
    for (_, _, sse) in &results {
        assert!(sse.ends_with("data: [DONE]\n\n"), "{sse}");
        let mut answer = String::new();
        let mut usage = Value::Null;
        for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
            if line == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(line).unwrap();
            if let Some(piece) = v["choices"][0]["delta"]["content"].as_str() {
                answer.push_str(piece);
            }
            if !v["usage"].is_null() {
                usage = v["usage"].clone();
            }
        }
        assert_eq!(answer, want);
        // 10 × $2.50/M + 60 × $10/M = $0.000625
        assert_eq!(usage["cost"].as_f64(), Some(0.000625), "{usage}");
        assert_eq!(usage["completion_tokens"], 60);
    }
    // One ledger row each, exact, and every hold released.
    let rows = ledger_rows(home.path(), STREAMS);
    assert_eq!(rows.len(), STREAMS);
    assert!(
        rows.iter()
            .all(|r| r.2 == 625_000 && !r.3 && r.6 == "swarm")
    );
    let (total, held): (i64, i64) = db(home.path())
        .query_row(
            "SELECT (SELECT sum(cost_nanos) FROM ledger), (SELECT count(*) FROM reservations)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((total, held), (STREAMS as i64 * 625_000, 0));
    assert_eq!(served.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_row_is_committed_after_the_client_has_the_whole_answer() {
    let server = MockServer::start().await.unwrap();
    let (home, t, served) = serving_pieces(&server, 8, (12, 8), "settle");
    let mut stream = stream_until_first_text(&served.base, &t, "oa:oa-model");
    // From the first piece on, another process holds the database's write
    // lock: nothing Switchboard writes can commit until it lets go.
    let lock = db(home.path());
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let locked_at = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("data: [DONE]") {
        let n = stream.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "the rest of the answer waited for the database ({e}): {}",
                String::from_utf8_lossy(&seen)
            )
        });
        assert!(
            n > 0,
            "the stream ended: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let got = String::from_utf8_lossy(&seen);
    assert!(got.contains("\"content\":\"007 "), "{got}");
    // The client has the whole answer, and its settle is not committed:
    // the commit came after the last byte, not before it.
    assert!(ledger(home.path()).is_empty());
    assert!(locked_at.elapsed() < Duration::from_secs(5));
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    // Once the database is free, it is: one row, exactly billed.
    let rows = ledger_rows(home.path(), 1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (_, model, cost, estimated, input, output, tags) = rows[0].clone();
    assert_eq!(model, "oa-model");
    assert!(!estimated);
    assert_eq!((input, output), (Some(12), Some(8)));
    assert_eq!(cost, 12 * 2_500 + 8 * 10_000);
    assert_eq!(tags, "settle");
    let held: i64 = db(home.path())
        .query_row("SELECT count(*) FROM reservations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(held, 0, "the hold is released");
    drop(stream);

    // A client that hangs up while the database is busy: its row is
    // committed once it is free, billed for what streamed.
    let stream = stream_until_first_text(&served.base, &t, "oa:oa-model");
    let lock = db(home.path());
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    drop(stream);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ledger(home.path()).len(), 1);
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    let rows = ledger_rows(home.path(), 2);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[1].3, "billed as estimated for what streamed");
    assert_eq!(rows[1].6, "settle");
}
