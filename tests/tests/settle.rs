//! Every request settles: the chat service behind the app's compare view,
//! against a mock provider over real HTTP and a real SQLite file, stopped
//! the ways people stop answers (Stop at a random moment, Stop pressed
//! right after Send, the window going away, the app closing), and run
//! while another process holds the database's write lock. A judge stopped
//! mid-verdict, or whose caller went away, settles the same way, and one
//! whose verdict cannot be saved leaves history and the ledger agreeing.
//!
//! Each text piece the mock streams is four ASCII characters, so the
//! engine's estimate for `n` pieces is exactly `n` output tokens, and the
//! mock counts the pieces it wrote ([`MockServer::pieces_sent`]): a stopped
//! answer's ledger row can be checked against what was really delivered.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_engine::hooks::AttemptOutcome;
use switchboard_engine::service::{ChatService, StreamHub};
use switchboard_engine::{DataDir, KeyStore, MessageId, Store};
use switchboard_mock::{Fault, MockServer, Protocol, Scenario};
use switchboard_protocol::{
    AnswerSummary, AskRequest, PaneEvent, RecordAt, StartRound, StreamMessage,
};
use switchboard_tests::Rng;
use switchboard_tests::{ask_request, pieces};

/// Prices of the mock's models, USD per million tokens: input, output.
const PRICES: &[(&str, &str, &str)] = &[("slow", "1", "2"), ("other", "3", "7")];

fn service(server: &MockServer, extra: &str) -> (tempfile::TempDir, Arc<ChatService>) {
    let home = tempfile::tempdir().unwrap();
    let mut config = format!(
        "[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\n",
        server.base_url(Protocol::OpenAi)
    );
    for (model, input, output) in PRICES {
        config.push_str(&format!(
            "[[providers.oa.models]]\nid = \"{model}\"\ninput_usd_per_mtok = \"{input}\"\noutput_usd_per_mtok = \"{output}\"\n"
        ));
    }
    config.push_str(extra);
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let dir = DataDir::at(home.path()).unwrap();
    let svc = Arc::new(ChatService::new(
        dir,
        KeyStore::with_service("switchboard-test-settle"),
    ));
    (home, svc)
}

fn scenario(pieces: &[String], gap_ms: u64) -> Scenario {
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    Scenario::default()
        .with_text(&refs)
        .with_gap(Duration::from_millis(gap_ms))
}

/// A request recorded in a new conversation of `svc`.
fn recorded(svc: &ChatService, stream_id: u64, target: &str) -> AskRequest {
    let ids = svc
        .start_round(&StartRound {
            conversation: None,
            prompt: "go".into(),
            attachments: Vec::new(),
            layout: None,
        })
        .unwrap();
    AskRequest {
        record: Some(RecordAt {
            conversation: ids.conversation,
            user_message: ids.user_message,
            pane: "p-0".into(),
        }),
        ..ask_request(stream_id, target)
    }
}

/// What a pane showed: the text of its deltas, with arrival times.
#[derive(Default)]
struct Shown {
    text: String,
    arrivals: Vec<Instant>,
    finished: bool,
}

/// Start `request` on its own task; the pane's text grows in the result.
fn start(
    svc: &Arc<ChatService>,
    request: AskRequest,
) -> (Arc<Mutex<Shown>>, tokio::task::JoinHandle<AnswerSummary>) {
    let shown = Arc::new(Mutex::new(Shown::default()));
    let sink_shown = Arc::clone(&shown);
    let svc = Arc::clone(svc);
    let task = tokio::spawn(async move {
        svc.ask(request, move |e| {
            let mut s = sink_shown.lock().unwrap();
            match e {
                PaneEvent::Update { text, .. } if !text.is_empty() => {
                    s.text.push_str(&text);
                    s.arrivals.push(Instant::now());
                }
                PaneEvent::Finished(_) => s.finished = true,
                _ => {}
            }
            true
        })
        .await
    });
    (shown, task)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One ledger row, as the database has it.
#[derive(Debug, Clone, PartialEq)]
struct LedgerRow {
    provider: String,
    model: String,
    cost_nanos: i64,
    estimated: bool,
    priced: bool,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    message: Option<i64>,
}

fn db(home: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(home.path().join("switchboard.sqlite3")).unwrap()
}

fn ledger(home: &tempfile::TempDir) -> Vec<LedgerRow> {
    let conn = db(home);
    let mut stmt = conn
        .prepare(
            "SELECT provider, model, cost_nanos, estimated, priced, input_tokens, output_tokens,
                    message FROM ledger ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(LedgerRow {
            provider: r.get(0)?,
            model: r.get(1)?,
            cost_nanos: r.get(2)?,
            estimated: r.get(3)?,
            priced: r.get(4)?,
            input_tokens: r.get(5)?,
            output_tokens: r.get(6)?,
            message: r.get(7)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn count(home: &tempfile::TempDir, sql: &str) -> i64 {
    db(home).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every answer is settled: `rows` ledger rows, no hold left, no answer
/// still owned by a running stream.
fn assert_settled(home: &tempfile::TempDir, rows: usize) {
    assert_eq!(ledger(home).len(), rows);
    assert_eq!(count(home, "SELECT count(*) FROM reservations"), 0);
    assert_eq!(
        count(
            home,
            "SELECT count(*) FROM messages WHERE live_owner IS NOT NULL"
        ),
        0
    );
}

/// The conversation's total as history has it (answers and judges).
fn conversation_nanos(home: &tempfile::TempDir, conversation: i64) -> i64 {
    let store = Store::open_at(&home.path().join("switchboard.sqlite3")).unwrap();
    store
        .conversation(switchboard_engine::ConversationId(conversation))
        .unwrap()
        .cost
        .nanos()
}

/// The id of the answer recorded for `request`.
fn answer_id(svc: &ChatService, request: &AskRequest) -> MessageId {
    let at = request.record.as_ref().unwrap();
    let saved = svc.open_conversation(at.conversation).unwrap();
    MessageId(saved.rounds[0].answers[0].message)
}

/// Exact cost in nano-dollars of `input` and `output` tokens at prices
/// given in nano-dollars per token ($1 per Mtok is 1,000 per token).
fn nanos(input: i64, output: i64, input_per_token: i64, output_per_token: i64) -> i64 {
    input * input_per_token + output * output_per_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_at_a_random_point_bills_exactly_what_was_delivered() {
    let mut rng = Rng::new();
    let seed = rng.seed();
    let server = MockServer::start().await.unwrap();
    let all = pieces(40, ' ');
    // The model sends k pieces, then goes quiet mid-answer (a slow model
    // thinking): Stop lands at a random moment after the k-th.
    let k = 3 + rng.below(30) as usize;
    server.script("slow", scenario(&all, 10).with_fault(Fault::StallAfter(k)));
    let (home, svc) = service(&server, "");
    let request = recorded(&svc, 7, "oa:slow");
    let (shown, task) = start(&svc, request.clone());
    wait_for("k pieces on screen", || {
        shown.lock().unwrap().text.len() == 4 * k
    })
    .await;
    tokio::time::sleep(Duration::from_millis(rng.below(150))).await;
    // Mid-stream, the answer is already in history with a hold in flight.
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 1);
    assert!(svc.stop(7), "the stream was running (seed {seed})");
    let summary = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();

    let delivered = server.pieces_sent("slow");
    assert_eq!(delivered, vec![k], "seed {seed}");
    let error = summary.error.as_ref().unwrap();
    assert_eq!(error.kind, "stopped");
    assert_eq!(summary.trail[0].outcome, "stopped");
    // Exactly one ledger row, for what the mock delivered: k pieces are k
    // output tokens (estimated: the stream's usage never came).
    let rows = ledger(&home);
    let id = answer_id(&svc, &request);
    assert_eq!(rows.len(), 1, "{rows:?} (seed {seed})");
    let row = &rows[0];
    assert_eq!((row.provider.as_str(), row.model.as_str()), ("oa", "slow"));
    assert_eq!(row.output_tokens, Some(k as i64), "seed {seed}");
    assert!(row.estimated && row.priced);
    assert_eq!(row.message, Some(id.0));
    // "go" is 2 characters: 1 estimated input token; $1 and $2 per Mtok.
    assert_eq!(row.cost_nanos, nanos(1, k as i64, 1000, 2000));
    // The pane, history and the ledger say the same.
    assert_eq!(
        summary.cost_usd.as_deref(),
        Some(
            switchboard_engine::Cost::from_nanos(row.cost_nanos)
                .usd()
                .as_str()
        )
    );
    assert!(summary.cost_estimated);
    let store = Store::open_at(&home.path().join("switchboard.sqlite3")).unwrap();
    let m = store.message(id).unwrap();
    assert_eq!(m.content, all[..k].concat());
    assert_eq!(m.content, shown.lock().unwrap().text);
    assert_eq!(m.error_kind.map(|k| k.as_str()), Some("stopped"));
    assert_eq!(m.cost.unwrap().total.nanos(), row.cost_nanos);
    let trace = store.attempts(id).unwrap();
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].outcome, AttemptOutcome::Stopped);
    // The hold is gone, and a stop says nothing about the provider's health.
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 0);
    assert_eq!(count(&home, "SELECT count(*) FROM health_samples"), 0);
    assert_eq!(
        count(
            &home,
            "SELECT count(*) FROM messages WHERE live_owner IS NOT NULL"
        ),
        0
    );
    assert!(!svc.stop(7), "nothing left to stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_while_tokens_flow_bills_the_text_that_was_shown() {
    let mut rng = Rng::new();
    let seed = rng.seed();
    let server = MockServer::start().await.unwrap();
    let all = pieces(200, ' ');
    server.script("slow", scenario(&all, 8));
    let (home, svc) = service(&server, "");
    let request = recorded(&svc, 8, "oa:slow");
    let (shown, task) = start(&svc, request.clone());
    wait_for("the first piece", || !shown.lock().unwrap().text.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(50 + rng.below(600))).await;
    assert!(svc.stop(8));
    let summary = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.error.unwrap().kind, "stopped", "seed {seed}");
    let text = shown.lock().unwrap().text.clone();
    let received = text.len() / 4;
    assert!(
        received > 0 && received < all.len(),
        "seed {seed}: {received}"
    );
    assert!(all.concat().starts_with(&text));
    let rows = ledger(&home);
    assert_eq!(rows.len(), 1);
    // Billed for exactly the text that reached the pane (and history)...
    assert_eq!(rows[0].output_tokens, Some(received as i64), "seed {seed}");
    let id = answer_id(&svc, &request);
    let store = Store::open_at(&home.path().join("switchboard.sqlite3")).unwrap();
    assert_eq!(store.message(id).unwrap().content, text);
    // ...which is what the mock wrote, but for a piece in flight when the
    // connection closed.
    let sent = server.pieces_sent("slow")[0];
    assert!(
        (received..=received + 2).contains(&sent),
        "seed {seed}: sent {sent}, received {received}"
    );
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_pressed_before_the_request_starts_sends_and_bills_nothing() {
    let server = MockServer::start().await.unwrap();
    server.script("slow", scenario(&pieces(10, ' '), 5));
    let (home, svc) = service(&server, "");
    // Stop arrives before `ask` registers the stream (Send, then Stop at
    // once): remembered, not lost.
    assert!(!svc.stop(11), "not running yet");
    let request = recorded(&svc, 11, "oa:slow");
    let (_shown, task) = start(&svc, request.clone());
    let summary = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.error.unwrap().kind, "stopped");
    assert_eq!(summary.cost_usd, None);
    assert_eq!(server.hits("slow"), 0, "nothing was sent");
    assert!(ledger(&home).is_empty(), "nothing was billed");
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 0);
    // The answer is in history, as stopped, with no text.
    let store = Store::open_at(&home.path().join("switchboard.sqlite3")).unwrap();
    let m = store.message(answer_id(&svc, &request)).unwrap();
    assert_eq!(m.error_kind.map(|k| k.as_str()), Some("stopped"));
    assert!(m.content.is_empty());
    // The early stop was used up: the same id later runs normally.
    let again = svc
        .ask(
            AskRequest {
                record: None,
                ..request
            },
            |_| true,
        )
        .await;
    assert!(again.error.is_none(), "{:?}", again.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_that_was_running_is_billed_at_its_own_price_and_history_agrees() {
    let server = MockServer::start().await.unwrap();
    // The route's first target fails after answering (billed for its
    // prompt, no text), the second streams until it is stopped.
    server.script(
        "other",
        Scenario::default().with_fault(Fault::ErrorEventAfter(0)),
    );
    let all = pieces(40, ' ');
    server.script("slow", scenario(&all, 10).with_fault(Fault::StallAfter(12)));
    let (home, svc) = service(
        &server,
        "[routes.r]\nstrategy = \"ordered\"\ntargets = [\"oa:other\", \"oa:slow\"]\nretries = 0\n",
    );
    let request = recorded(&svc, 21, "@r");
    let (shown, task) = start(&svc, request.clone());
    wait_for("12 pieces", || shown.lock().unwrap().text.len() == 48).await;
    assert!(svc.stop(21));
    let summary = task.await.unwrap();
    assert_eq!(summary.error.as_ref().unwrap().kind, "stopped");
    assert_eq!(
        (summary.provider.as_str(), summary.model.as_str()),
        ("oa", "slow")
    );
    let rows = ledger(&home);
    let by_model = |m: &str| rows.iter().find(|r| r.model == m).unwrap().clone();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The stopped attempt at its own price ($1/$2), not the route's first
    // target's ($3/$7).
    let slow = by_model("slow");
    assert_eq!(slow.output_tokens, Some(12));
    assert_eq!(slow.cost_nanos, nanos(1, 12, 1000, 2000));
    let other = by_model("other");
    assert!(other.estimated);
    // The answer costs both billed attempts, in the pane and in history,
    // and that is what the ledger holds for it.
    let total: i64 = rows.iter().map(|r| r.cost_nanos).sum();
    let id = answer_id(&svc, &request);
    assert!(rows.iter().all(|r| r.message == Some(id.0)));
    let store = Store::open_at(&home.path().join("switchboard.sqlite3")).unwrap();
    assert_eq!(
        store.message(id).unwrap().cost.unwrap().total.nanos(),
        total
    );
    assert_eq!(
        summary.cost_usd.as_deref(),
        Some(switchboard_engine::Cost::from_nanos(total).usd().as_str())
    );
    let outcomes: Vec<String> = summary.trail.iter().map(|t| t.outcome.clone()).collect();
    assert_eq!(outcomes, vec!["error", "stopped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_stops_listening_stops_and_settles_the_stream() {
    let server = MockServer::start().await.unwrap();
    server.script("slow", scenario(&pieces(300, ' '), 10));
    let (home, svc) = service(&server, "");
    let request = recorded(&svc, 31, "oa:slow");
    let shown = Arc::new(Mutex::new(String::new()));
    let sink_shown = Arc::clone(&shown);
    let summary = tokio::time::timeout(
        Duration::from_secs(10),
        svc.ask(request.clone(), move |e| {
            let mut s = sink_shown.lock().unwrap();
            if let PaneEvent::Update { text, .. } = e {
                s.push_str(&text);
            }
            // The window closes once a few pieces are on screen.
            s.len() < 40
        }),
    )
    .await
    .expect("a closed window does not leave the stream running");
    assert_eq!(summary.error.unwrap().kind, "stopped");
    let rows = ledger(&home);
    assert_eq!(rows.len(), 1);
    let store = Store::open_at(&home.path().join("switchboard.sqlite3")).unwrap();
    let m = store.message(answer_id(&svc, &request)).unwrap();
    assert!(m.content.len() >= 40, "{}", m.content);
    assert_eq!(rows[0].output_tokens, Some((m.content.len() / 4) as i64));
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_loads_anew_stops_and_settles_every_pane_of_its_window() {
    let server = MockServer::start().await.unwrap();
    server.script("slow", scenario(&pieces(300, ' '), 10));
    server.script("other", scenario(&pieces(300, ' '), 10));
    let (home, svc) = service(&server, "");
    let (a, b) = (
        recorded(&svc, 51, "oa:slow"),
        recorded(&svc, 52, "oa:other"),
    );
    // Both panes stream over the window's one channel, as in the app.
    let shown: Arc<Mutex<[String; 2]>> = Arc::default();
    let log = Arc::clone(&shown);
    let hub = Arc::new(StreamHub::new(move |message: Vec<StreamMessage>| {
        let mut shown = log.lock().unwrap();
        for m in message {
            if let PaneEvent::Update { text, .. } = m.event {
                shown[usize::from(m.stream == 52)].push_str(&text);
            }
        }
        true
    }));
    let run = |request: AskRequest| {
        let (svc, hub) = (Arc::clone(&svc), Arc::clone(&hub));
        tokio::spawn(async move { svc.ask_in(request, &hub).await })
    };
    let tasks = [run(a.clone()), run(b.clone())];
    wait_for("both streams", || {
        shown.lock().unwrap().iter().all(|t| t.len() >= 20)
    })
    .await;
    // The page loaded anew: its new channel replaces this one (what the
    // app's attach_streams does), and both panes' streams stop.
    hub.close();
    for task in tasks {
        let summary = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a replaced channel does not leave its streams running")
            .unwrap();
        assert_eq!(summary.error.unwrap().kind, "stopped");
    }
    // Each is billed once, for what it saved, and nothing is left held.
    assert_settled(&home, 2);
    let store = Store::open_at(&home.path().join("switchboard.sqlite3")).unwrap();
    let shown = shown.lock().unwrap();
    for (req, shown) in [(&a, &shown[0]), (&b, &shown[1])] {
        let saved = store.message(answer_id(&svc, req)).unwrap().content;
        // What reached the page is kept; what was gathered for the next
        // message when the channel went is kept too (the reloaded page
        // reads it from history).
        assert!(saved.starts_with(shown.as_str()), "{saved:?} / {shown:?}");
        assert!(saved.len() < 1200, "stopped early: {} chars", saved.len());
    }
    let billed: i64 = ledger(&home).iter().map(|r| r.output_tokens.unwrap()).sum();
    let saved_tokens: usize = [&a, &b]
        .iter()
        .map(|r| store.message(answer_id(&svc, r)).unwrap().content.len() / 4)
        .sum();
    assert_eq!(billed, saved_tokens as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_app_stops_every_stream_and_each_one_settles() {
    let server = MockServer::start().await.unwrap();
    server.script("slow", scenario(&pieces(300, ' '), 10));
    server.script("other", scenario(&pieces(300, ' '), 10));
    let (home, svc) = service(&server, "");
    let a = recorded(&svc, 41, "oa:slow");
    let b = recorded(&svc, 42, "oa:other");
    let (shown_a, task_a) = start(&svc, a.clone());
    let (shown_b, task_b) = start(&svc, b.clone());
    wait_for("both streams", || {
        shown_a.lock().unwrap().text.len() >= 20 && shown_b.lock().unwrap().text.len() >= 20
    })
    .await;
    let began = Instant::now();
    svc.shutdown(Duration::from_secs(5)).await;
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    // When shutdown returns, both answers are settled and saved.
    assert_settled(&home, 2);
    for task in [task_a, task_b] {
        assert_eq!(task.await.unwrap().error.unwrap().kind, "stopped");
    }
    let store = Store::open_at(&home.path().join("switchboard.sqlite3")).unwrap();
    for (req, shown) in [(&a, &shown_a), (&b, &shown_b)] {
        let m = store.message(answer_id(&svc, req)).unwrap();
        assert_eq!(m.content, shown.lock().unwrap().text);
    }
    // Nothing starts once the app is closing.
    let late = svc.ask(AskRequest { stream_id: 43, ..a }, |_| true).await;
    assert_eq!(late.error.unwrap().kind, "stopped");
    assert_eq!(server.hits("slow"), 1);
}

/// Start `store-child` holding the write lock of `db` for `hold_ms`; returns
/// once it holds it.
fn lock_database(db: &std::path::Path, hold_ms: u64) -> std::process::Child {
    use switchboard_tests::store_child::{DB, ROLE, TAG};
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-child"))
        .env(ROLE, "locker")
        .env(DB, db)
        .env(TAG, hold_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("locked end"), "{line}");
    child
}

// One runtime thread: anything that blocked it on SQLite would stop every
// stream (and the mock) outright.
#[tokio::test(flavor = "current_thread")]
async fn a_process_holding_the_write_lock_does_not_freeze_a_stream() {
    let server = MockServer::start().await.unwrap();
    let all = pieces(150, ' ');
    server.script("slow", scenario(&all, 20));
    // A hard budget: every attempt takes a hold and is checkpointed.
    let (home, svc) = service(
        &server,
        "[budgets.cap]\nscope = \"global\"\nperiod = \"daily\"\nlimit_usd = \"5\"\n",
    );
    let request = recorded(&svc, 51, "oa:slow");
    let (shown, task) = start(&svc, request.clone());
    wait_for("the stream to start", || {
        shown.lock().unwrap().text.len() >= 40
    })
    .await;
    let db_path = home.path().join("switchboard.sqlite3");
    let hold = Duration::from_millis(1500);
    let mut locker = tokio::task::spawn_blocking({
        let db_path = db_path.clone();
        move || lock_database(&db_path, hold.as_millis() as u64)
    })
    .await
    .unwrap();
    let locked_at = Instant::now();
    tokio::time::sleep(hold - Duration::from_millis(200)).await;
    let during: Vec<Instant> = shown
        .lock()
        .unwrap()
        .arrivals
        .iter()
        .copied()
        .filter(|t| *t >= locked_at)
        .collect();
    // Pieces every 20 ms, flushed every 16 ms: deltas keep coming while
    // checkpoints wait for the lock.
    assert!(during.len() >= 20, "{} deltas while locked", during.len());
    let worst = during
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        worst < Duration::from_millis(300),
        "a delta waited {worst:?} while another process held the lock"
    );
    tokio::task::spawn_blocking(move || locker.wait().unwrap())
        .await
        .unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap();
    assert!(summary.error.is_none(), "{:?}", summary.error);
    assert_eq!(shown.lock().unwrap().text, all.concat());
    // Once the lock is released, the bookkeeping catches up.
    assert_eq!(ledger(&home).len(), 1);
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 0);
    let store = Store::open_at(&db_path).unwrap();
    assert_eq!(
        store.message(answer_id(&svc, &request)).unwrap().content,
        all.concat()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_stopped_mid_verdict_keeps_its_text_and_settles_its_cost() {
    let mut rng = Rng::new();
    let seed = rng.seed();
    let server = MockServer::start().await.unwrap();
    let all = pieces(200, ' ');
    server.script("other", Scenario::default().with_text(&["Fine."]));
    server.script("slow", scenario(&all, 8));
    let (home, svc) = service(&server, "");
    let (at, request) = judged_round(&svc, "oa:slow", 77).await;
    let judge = {
        let svc = Arc::clone(&svc);
        tokio::spawn(async move { svc.judge_round(request, |_| true).await })
    };
    wait_for("the judge's first pieces", || {
        server.pieces_sent("slow").first().is_some_and(|n| *n > 2)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
    assert!(svc.stop(77), "the judge was not running");
    let verdict = tokio::time::timeout(Duration::from_secs(5), judge)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(verdict.error.is_some(), "seed {seed}: {verdict:?}");
    // The partial verdict is kept...
    let received = verdict.text.len() / 4;
    assert!(
        received > 0 && received < all.len(),
        "seed {seed}: {received}"
    );
    assert!(all.concat().starts_with(&verdict.text), "seed {seed}");
    let kind: String = db(&home)
        .query_row("SELECT error_kind FROM judgments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kind, "stopped");
    // ...and billed for what arrived, in the ledger and the total.
    let rows = ledger(&home);
    assert_eq!(rows.len(), 3);
    let row = &rows[2];
    assert_eq!(row.model, "slow");
    assert_eq!(row.output_tokens, Some(received as i64), "seed {seed}");
    assert!(row.cost_nanos > 0);
    assert_eq!(verdict.cost_nanos, Some(row.cost_nanos));
    let total: i64 = rows.iter().map(|r| r.cost_nanos).sum();
    assert_eq!(conversation_nanos(&home, at.conversation), total);
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 0);
    // Reopened, the round shows the stopped verdict with its cost, and
    // which pane each answer was, as it did live.
    let saved = svc.open_conversation(at.conversation).unwrap();
    assert_eq!(
        verdict.labels,
        [("A".into(), "p-0".into()), ("B".into(), "p-1".into())]
    );
    assert_eq!(saved.rounds[0].judgments, vec![verdict]);
}

/// A round of `svc` answered by two panes ("p-0", "p-1"), and a request
/// for a judge of it.
async fn judged_round(
    svc: &Arc<ChatService>,
    judge: &str,
    stream_id: u64,
) -> (RecordAt, switchboard_protocol::JudgeRequest) {
    let first = recorded(svc, stream_id * 10, "oa:other");
    let at = first.record.clone().unwrap();
    let mut second = first.clone();
    second.stream_id = stream_id * 10 + 1;
    second.record = Some(RecordAt {
        pane: "p-1".into(),
        ..at.clone()
    });
    for request in [first, second] {
        let summary = svc.ask(request, |_| true).await;
        assert!(summary.error.is_none());
    }
    let request = switchboard_protocol::JudgeRequest {
        round: at.user_message,
        panes: vec!["p-0".into(), "p-1".into()],
        target: judge.into(),
        task: switchboard_protocol::JudgeTask::Verdict,
        prompt: None,
        stream_id,
    };
    (at, request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_streams_its_text_and_a_caller_that_goes_away_still_settles_it() {
    let server = MockServer::start().await.unwrap();
    let all = pieces(400, ' ');
    server.script("other", Scenario::default().with_text(&["Fine."]));
    server.script("slow", scenario(&all, 10));
    let (home, svc) = service(&server, "");
    let (at, request) = judged_round(&svc, "oa:slow", 81).await;
    let shown = Arc::new(Mutex::new(String::new()));
    let judge = {
        let (svc, shown) = (Arc::clone(&svc), Arc::clone(&shown));
        tokio::spawn(async move {
            svc.judge_round(request, move |e| {
                if let PaneEvent::Update { text, .. } = e {
                    shown.lock().unwrap().push_str(&text);
                }
                true
            })
            .await
        })
    };
    // Its text arrives while it runs, not only at the end.
    wait_for("the judge's text to stream", || {
        shown.lock().unwrap().len() >= 40
    })
    .await;
    let so_far = shown.lock().unwrap().clone();
    assert!(all.concat().starts_with(&so_far), "{so_far:?}");
    assert!(so_far.len() < all.concat().len(), "it is still running");
    assert_eq!(count(&home, "SELECT count(*) FROM judgments"), 0);
    // The window goes away: the IPC future is dropped mid-verdict.
    judge.abort();
    assert!(judge.await.unwrap_err().is_cancelled());
    // The judge stops and still lands in history with its cost.
    wait_for("the dropped judge to be recorded", || {
        count(&home, "SELECT count(*) FROM judgments") == 1
    })
    .await;
    let (kind, text, cost): (String, String, i64) = db(&home)
        .query_row(
            "SELECT error_kind, content, cost_nanos FROM judgments",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(kind, "stopped");
    assert!(text.len() >= so_far.len() && all.concat().starts_with(&text));
    assert!(
        text.len() < all.concat().len(),
        "it was stopped, not finished"
    );
    let rows = ledger(&home);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!((rows[2].model.as_str(), rows[2].cost_nanos), ("slow", cost));
    assert_eq!(rows[2].output_tokens, Some((text.len() / 4) as i64));
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 0);
    // And it ends: no longer registered as running.
    wait_for("the judge to end", || !svc.stop(81)).await;
    let total: i64 = rows.iter().map(|r| r.cost_nanos).sum();
    assert_eq!(conversation_nanos(&home, at.conversation), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_that_cannot_be_saved_leaves_history_and_ledger_agreeing() {
    let server = MockServer::start().await.unwrap();
    server.script("other", Scenario::default().with_text(&["Fine."]));
    server.script(
        "slow",
        Scenario::default().with_text(&["Verdict: ", "Answer A"]),
    );
    let (home, svc) = service(&server, "");
    let (at, request) = judged_round(&svc, "oa:slow", 91).await;
    let attributed = |home: &tempfile::TempDir| -> i64 {
        db(home)
            .query_row(
                "SELECT coalesce(sum(cost_nanos), 0) FROM ledger WHERE conversation = ?1",
                [at.conversation.to_string()],
                |r| r.get(0),
            )
            .unwrap()
    };
    let before = conversation_nanos(&home, at.conversation);
    assert_eq!(before, attributed(&home));
    // The verdict's write fails (after the judge ran and was billed).
    db(&home)
        .execute_batch(
            "CREATE TRIGGER refuse_verdicts BEFORE INSERT ON judgments
             BEGIN SELECT RAISE(ABORT, 'forced failure'); END;",
        )
        .unwrap();
    let err = svc
        .judge_round(request.clone(), |_| true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("could not be saved") && err.contains("forced failure"),
        "{err}"
    );
    assert!(err.contains("spend ledger"), "{err}");
    // Nothing half-written: no verdict, and no ledger row of it counted in
    // the conversation, whose total still matches its ledger rows...
    assert_eq!(count(&home, "SELECT count(*) FROM judgments"), 0);
    assert_eq!(conversation_nanos(&home, at.conversation), before);
    assert_eq!(attributed(&home), before);
    // ...while the money it cost is in the spend, once, and no hold is left.
    let rows = ledger(&home);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[2].model, "slow");
    assert!(rows[2].cost_nanos > 0);
    assert_eq!(count(&home, "SELECT count(*) FROM reservations"), 0);

    // Once the database takes it, verdict and cost land together.
    db(&home)
        .execute_batch("DROP TRIGGER refuse_verdicts;")
        .unwrap();
    let verdict = svc.judge_round(request, |_| true).await.unwrap();
    assert_eq!(verdict.text, "Verdict: Answer A");
    let rows = ledger(&home);
    assert_eq!(rows.len(), 4);
    assert_eq!(verdict.cost_nanos, Some(rows[3].cost_nanos));
    let after = conversation_nanos(&home, at.conversation);
    assert_eq!(after, before + rows[3].cost_nanos);
    assert_eq!(attributed(&home), after);
}
