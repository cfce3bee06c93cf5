//! `switchboard-cli ask` stopped the ways people stop it: Ctrl-C (a real
//! SIGINT to the real binary) at a random point, SIGTERM, a second Ctrl-C
//! while the first is still settling; and what a model with no known price
//! does to the ledger and to a hard budget. Mock providers over loopback
//! HTTP, a real SQLite file in a temporary `SWITCHBOARD_HOME`.
//!
//! Each text piece the mock streams is four ASCII characters, so `n`
//! pieces are exactly `n` estimated output tokens, and the mock counts the
//! pieces it wrote: a stopped answer's ledger row is checked against what
//! was really delivered.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_mock::{Fault, MockServer, Protocol, Scenario};
use switchboard_tests::{Rng, collect_output, pieces};

fn scenario(pieces: &[String], gap_ms: u64) -> Scenario {
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    Scenario::default()
        .with_text(&refs)
        .with_gap(Duration::from_millis(gap_ms))
}

/// A data directory whose `oa` provider (a server on this machine) sells
/// `slow` at $1 / $2 per Mtok.
fn home_for(server: &MockServer, extra: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [[providers.oa.models]]\nid = \"slow\"\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n{extra}",
        server.base_url(Protocol::OpenAi)
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    home
}

/// A running `switchboard-cli` whose stdout is collected as it comes.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn spawn(home: &std::path::Path, args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(args)
        .env("SWITCHBOARD_HOME", home)
        .env("SWITCHBOARD_KEY_HOSTED", "k-hosted")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect_output(child.stdout.take().unwrap());
    let stderr = collect_output(child.stderr.take().unwrap());
    Running {
        child,
        stdout,
        stderr,
    }
}

impl Running {
    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Wait for the exit (at most `within`); the exit code.
    async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the readers take the last bytes.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "still running after {within:?}; stderr: {}",
                    self.stderr.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn cli(home: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(args)
        .env("SWITCHBOARD_HOME", home)
        .env("SWITCHBOARD_KEY_HOSTED", "k-hosted")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn db(home: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(home.join("switchboard.sqlite3")).unwrap()
}

/// `(model, cost_nanos, estimated, priced, output_tokens, message)` of
/// every ledger row.
type Row = (String, i64, bool, bool, Option<i64>, Option<i64>);

fn ledger(home: &std::path::Path) -> Vec<Row> {
    let conn = db(home);
    let mut stmt = conn
        .prepare(
            "SELECT model, cost_nanos, estimated, priced, output_tokens, message
             FROM ledger ORDER BY id",
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
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn count(home: &std::path::Path, sql: &str) -> i64 {
    db(home).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// `(id, content, error_kind)` of the answers.
fn answers(home: &std::path::Path) -> Vec<(i64, String, Option<String>)> {
    let conn = db(home);
    let mut stmt = conn
        .prepare(
            "SELECT id, content, error_kind FROM messages WHERE role = 'assistant' ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Exact cost in nano-dollars of `input` and `output` tokens at $1 / $2
/// per Mtok (1,000 and 2,000 nano-dollars per token).
fn slow_nanos(input: i64, output: i64) -> i64 {
    input * 1000 + output * 2000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_a_random_point_prints_saves_and_bills_what_arrived_and_exits_130() {
    let mut rng = Rng::new();
    let seed = rng.seed();
    let server = MockServer::start().await.unwrap();
    let all = pieces(50, ' ');
    // k pieces, then the model goes quiet mid-answer; Ctrl-C lands at a
    // random moment after the k-th is on screen.
    let k = 2 + rng.below(40) as usize;
    server.script("slow", scenario(&all, 8).with_fault(Fault::StallAfter(k)));
    let home = home_for(&server, "");
    let mut run = spawn(home.path(), &["ask", "-m", "oa:slow", "go"]);
    let expected = all[..k].concat();
    wait_for("k pieces on the terminal", || run.stdout() == expected).await;
    tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
    run.signal("INT");
    let code = run.exit_code(Duration::from_secs(10)).await;
    assert_eq!(code, Some(130), "seed {seed}");

    let out = run.stdout();
    assert!(out.starts_with(&expected), "{out}");
    let summary = out.lines().last().unwrap();
    assert!(summary.starts_with("── oa:slow · stopped"), "{summary}");
    assert!(summary.contains("est."), "{summary}");
    // What the mock delivered is what the ledger bills: one row, k output
    // tokens (estimated, the usage never came), at the model's price.
    assert_eq!(server.pieces_sent("slow"), vec![k], "seed {seed}");
    let rows = ledger(home.path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (model, nanos, estimated, priced, output, message) = rows[0].clone();
    assert_eq!(model, "slow");
    assert_eq!(output, Some(k as i64), "seed {seed}");
    assert!(estimated && priced);
    assert_eq!(nanos, slow_nanos(1, k as i64));
    assert!(summary.contains(&switchboard_engine::Cost::from_nanos(nanos).to_string()));
    // The partial answer is in history, stopped, and is what the ledger
    // row paid for; no hold is left.
    let saved = answers(home.path());
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].1, expected);
    assert_eq!(saved[0].2.as_deref(), Some("stopped"));
    assert_eq!(message, Some(saved[0].0));
    assert_eq!(
        count(
            home.path(),
            "SELECT count(*) FROM attempts WHERE outcome = 'stopped'"
        ),
        1
    );
    assert_eq!(count(home.path(), "SELECT count(*) FROM reservations"), 0);
    assert_eq!(
        std::fs::read_dir(home.path().join("locks"))
            .unwrap()
            .count(),
        0,
        "the process removed its lock file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_tokens_flow_exits_143_with_json_outcome_stopped() {
    let mut rng = Rng::new();
    let seed = rng.seed();
    let server = MockServer::start().await.unwrap();
    let all = pieces(400, ' ');
    server.script("slow", scenario(&all, 8));
    let home = home_for(&server, "");
    let mut run = spawn(home.path(), &["ask", "--json", "-m", "oa:slow", "go"]);
    wait_for("the stream", || {
        server.pieces_sent("slow").first().is_some_and(|n| *n >= 3)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(rng.below(800))).await;
    run.signal("TERM");
    assert_eq!(
        run.exit_code(Duration::from_secs(10)).await,
        Some(143),
        "seed {seed}"
    );
    let json: Value = serde_json::from_str(&run.stdout()).unwrap();
    let answer = &json[0];
    assert_eq!(answer["outcome"], "stopped");
    assert_eq!(answer["error"]["kind"], "stopped");
    assert_eq!(answer["attempts"][0]["outcome"], "stopped");
    assert_eq!(answer["cost_estimated"], true);
    let text = answer["text"].as_str().unwrap();
    let received = text.len() / 4;
    assert!(
        received > 0 && all.concat().starts_with(text),
        "seed {seed}: {text}"
    );
    let rows = ledger(home.path());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].4, Some(received as i64), "seed {seed}");
    let nanos = rows[0].1;
    assert_eq!(
        (answer["cost_usd"].as_f64().unwrap() * 1e9).round() as i64,
        nanos
    );
    // The mock wrote what was received, plus at most what was in flight
    // when the connection closed.
    let sent = server.pieces_sent("slow")[0];
    assert!(
        (received..=received + 2).contains(&sent),
        "seed {seed}: sent {sent}, received {received}"
    );
    assert_eq!(answers(home.path())[0].1, text);
    assert_eq!(count(home.path(), "SELECT count(*) FROM reservations"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_exits_at_once_and_the_next_run_settles_what_it_left() {
    let server = MockServer::start().await.unwrap();
    let all = pieces(400, ' ');
    server.script("slow", scenario(&all, 8));
    let home = home_for(&server, "");
    let mut run = spawn(home.path(), &["ask", "-m", "oa:slow", "go"]);
    // Long enough for checkpoints to have saved some of it.
    wait_for("a second of text", || run.stdout().len() >= 4 * 100).await;
    // Another process holds the database: the first Ctrl-C's bookkeeping
    // has to wait for it...
    let locker = db(home.path());
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    run.signal("INT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(run.child.try_wait().unwrap().is_none(), "still settling");
    // ...and the second one does not.
    let second = Instant::now();
    run.signal("INT");
    assert_eq!(run.exit_code(Duration::from_secs(5)).await, Some(130));
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "{:?}",
        second.elapsed()
    );
    locker.execute_batch("COMMIT").unwrap();
    let shown = run.stdout();
    assert!(ledger(home.path()).is_empty(), "it could not settle");
    assert_eq!(count(home.path(), "SELECT count(*) FROM reservations"), 1);

    // The next Switchboard process to start settles it, once.
    for _ in 0..2 {
        let (code, _, err) = cli(home.path(), &["spend", "--json"]);
        assert_eq!(code, Some(0), "{err}");
    }
    let rows = ledger(home.path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    let saved = answers(home.path());
    assert_eq!(saved.len(), 1);
    let (id, text, kind) = &saved[0];
    assert_eq!(kind.as_deref(), Some("interrupted"));
    assert!(
        !text.is_empty() && shown.starts_with(text.as_str()),
        "{text}"
    );
    // Billed for the text its last checkpoint saved, as an estimate.
    let (_, nanos, estimated, _, output, message) = rows[0].clone();
    assert!(estimated);
    assert_eq!(output, Some((text.len() / 4) as i64));
    assert_eq!(message, Some(*id));
    let cost: Option<i64> = db(home.path())
        .query_row("SELECT cost_nanos FROM messages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(cost, Some(nanos), "history and the ledger agree");
    assert_eq!(count(home.path(), "SELECT count(*) FROM reservations"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpriced_model_is_counted_in_the_ledger_and_refused_by_a_hard_budget() {
    let server = MockServer::start().await.unwrap();
    server.script("m-unpriced", Scenario::default());
    server.script("m-free", Scenario::default());
    // A hosted provider without a price for its model, and a server on
    // this machine (free unless the config says otherwise).
    let extra = format!(
        "[providers.hosted]\nkind = \"openai\"\nbase_url = \"{0}\"\nlocal = false\n\
         [providers.lan]\nkind = \"openai\"\nbase_url = \"{0}\"\n",
        server.base_url(Protocol::OpenAi)
    );
    let home = home_for(&server, &extra);
    for _ in 0..3 {
        let (code, out, err) = cli(home.path(), &["ask", "-m", "hosted:m-unpriced", "hi"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            out.contains("cost unknown (no price for this model)"),
            "{out}"
        );
    }
    let (_, out, _) = cli(home.path(), &["spend", "--json"]);
    let spend: Value = serde_json::from_str(&out).unwrap();
    // Every request is counted, with its tokens (the mock reports 12 in /
    // 2 out), but no amount.
    assert_eq!(spend["total"]["requests"], 3);
    assert_eq!(spend["total"]["unknown_price_requests"], 3);
    assert_eq!(spend["total"]["input_tokens"], 36);
    assert_eq!(spend["total"]["output_tokens"], 6);
    assert_eq!(spend["total"]["cost_nanos"], 0);
    let (_, text, _) = cli(home.path(), &["spend", "--by", "model"]);
    assert!(text.contains("3 requests with unknown price"), "{text}");
    assert!(text.contains("hosted:m-unpriced"), "{text}");

    // A hard budget of a millionth of a dollar: the unknown price is
    // refused before anything is sent, with the fix.
    let (code, _, err) = cli(
        home.path(),
        &[
            "budget",
            "set",
            "cap",
            "--scope",
            "global",
            "--period",
            "daily",
            "--limit-usd",
            "0.000001",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = cli(
        home.path(),
        &["ask", "--json", "-m", "hosted:m-unpriced", "hi"],
    );
    assert_eq!(code, Some(1));
    let json: Value = serde_json::from_str(&out).unwrap();
    let error = &json[0]["error"];
    assert_eq!(error["kind"], "budget");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("budget \"cap\""), "{message}");
    assert!(
        message.contains("price of hosted:m-unpriced is unknown"),
        "{message}"
    );
    assert!(
        message.contains("add input_usd_per_mtok and output_usd_per_mtok for model \"m-unpriced\""),
        "{message}"
    );
    assert_eq!(
        server.hits("m-unpriced"),
        3,
        "the refused request was not sent"
    );
    // The local server's model costs nothing: the budget lets it through.
    let (code, out, err) = cli(home.path(), &["ask", "-m", "lan:m-free", "hi"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let rows = ledger(home.path());
    assert_eq!(rows.len(), 4);
    assert_eq!((rows[3].1, rows[3].3), (0, true), "priced at zero");
    let (_, out, _) = cli(home.path(), &["spend", "--json"]);
    let spend: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(spend["total"]["requests"], 4);
    assert_eq!(spend["total"]["unknown_price_requests"], 3);
}
