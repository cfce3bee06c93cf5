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
    fn start(home: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
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
            if let Some(url) = text
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
            {
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

    /// Run SDK actions (see client.py) with `token`; one result each.
    fn sdk(&self, token: &str, actions: Value) -> Vec<Value> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/client.py");
        let out = Command::new(python())
            .arg(script)
            .arg(actions.to_string())
            .env("SB_BASE", &self.base)
            .env("SB_TOKEN", token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "client.py failed: {}\nserve said: {}",
            String::from_utf8_lossy(&out.stderr),
            self.stderr.lock().unwrap()
        );
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    }

    /// SIGTERM, and the exit code.
    fn stop(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
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
        Scenario::default().with_text(&["Bonjour", " !"]).with_usage(MockUsage {
            input: 40,
            cached_input: 0,
            output: 7,
            reasoning: 0,
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
    assert_eq!(whole["cost_text"], "0.00645", "the cost is an exact decimal");
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
    assert_eq!(translated["usage"], Value::Null, "no usage chunk unless asked");
    // 40 × $3/M + 7 × $15/M = $0.000225
    assert_eq!(r[3]["cost_text"], "0.000225");
    assert_eq!(r[3]["usage"]["prompt_tokens"], 40);

    // Every request is one ledger row, tagged with the token's name and tag.
    let rows = ledger_rows(home.path(), 4);
    assert_eq!(rows.len(), 4, "{rows:?}");
    let oa: Vec<&Row> = rows.iter().filter(|r| r.0 == "oa").collect();
    assert_eq!(oa.len(), 2);
    for row in &oa {
        assert_eq!((row.2, row.3, row.4, row.5), (6_450_000, false, Some(1200), Some(345)));
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
    assert_eq!(cursor["requests"], 4);
    assert_eq!(cursor["cost_nanos"], 2 * 6_450_000 + 2 * 225_000);
    assert_eq!(served.stop(), Some(0));
}
