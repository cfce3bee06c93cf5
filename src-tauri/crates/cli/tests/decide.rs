//! `ask --judge` and `leaderboard` end to end: the real binary, mock
//! providers over loopback HTTP, and the real SQLite file that the app
//! shares (votes are cast through the engine, as the app casts them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use switchboard_engine::service::ChatService;
use switchboard_engine::{ConversationId, DataDir, KeyStore, MessageId, Store};
use switchboard_mock::{MockServer, MockUsage, Scenario};
use switchboard_protocol::{Verdict, Vote};
use switchboard_tests::mock_home;

mod common;
use common::Run;

/// The CLI with every mock provider's key in its environment.
async fn cli(home: &Path, args: &[&str]) -> Run {
    common::cli(
        home,
        &[
            ("SWITCHBOARD_KEY_OA", "k-oa"),
            ("SWITCHBOARD_KEY_AN", "k-an"),
            ("SWITCHBOARD_KEY_GM", "k-gm"),
        ],
        args,
    )
    .await
}

fn usage(input: u64, output: u64) -> MockUsage {
    MockUsage {
        input,
        cached_input: 0,
        output,
        reasoning: 0,
    }
}

fn script(server: &MockServer) {
    let s = |text: &[&str], u: MockUsage, key: &str| {
        Scenario::default()
            .with_text(text)
            .with_usage(u)
            .with_ttft(Duration::from_millis(30))
            .with_key(key)
    };
    server.script(
        "oa-model",
        s(&["Bonjour ", "le monde"], usage(100, 20), "k-oa"),
    );
    server.script("an-model", s(&["Hallo ", "Welt"], usage(100, 40), "k-an"));
    server.script(
        "gm-model",
        s(
            &["Verdict: Answer A\n", "- It is French.\n"],
            usage(300, 50),
            "k-gm",
        ),
    );
}

// Exact costs in nano-dollars at `mock_home`'s prices (micro-dollars per
// million tokens / 1000).
const OA_NANOS: i64 = (100 * 2_500_000 + 20 * 10_000_000) / 1000;
const AN_NANOS: i64 = (100 * 3_000_000 + 40 * 15_000_000) / 1000;
const JUDGE_NANOS: i64 = (300 * 300_000 + 50 * 2_500_000) / 1000;

/// `ask` for two answers and a judge, with `options` (text mode without
/// `--json`).
fn ask_judged<'a>(options: &[&'a str], prompt: &'a str) -> Vec<&'a str> {
    let mut args = vec!["ask"];
    args.extend_from_slice(options);
    args.extend([
        "-m",
        "oa:oa-model",
        "-m",
        "an:an-model",
        "--judge",
        "gm:gm-model",
        prompt,
    ]);
    args
}

fn body_text(v: &Value) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judge_sees_labels_not_names_and_its_cost_is_recorded_but_never_a_vote() {
    let server = MockServer::start().await.unwrap();
    script(&server);
    let home = mock_home(&server).unwrap();
    let args = ask_judged(&["--json", "--tag", "greetings"], "Say hello");
    let run = cli(home.path(), &args).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let answers = doc["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["cost_nanos"], OA_NANOS);
    let judge = &doc["judge"];
    assert_eq!(judge["target"], "gm:gm-model");
    assert_eq!(judge["task"], "verdict");
    assert_eq!(judge["text"], "Verdict: Answer A\n- It is French.\n");
    assert_eq!(judge["cost_nanos"], JUDGE_NANOS);
    assert_eq!(judge["answers"][0]["label"], "A");
    assert_eq!(judge["answers"][0]["target"], "oa:oa-model");
    assert_eq!(judge["answers"][1]["target"], "an:an-model");

    // The judge was sent both answers under labels, and no model name.
    let sent: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path.contains("gm-model"))
        .filter_map(|r| r.body.as_ref().map(body_text))
        .collect();
    assert_eq!(sent.len(), 1);
    for needle in [
        "Answer A",
        "Bonjour le monde",
        "Answer B",
        "Hallo Welt",
        "Say hello",
    ] {
        assert!(sent[0].contains(needle), "{needle}: {}", sent[0]);
    }
    assert!(!sent[0].contains("oa-model") && !sent[0].contains("an-model"));

    // Recorded: the judgment with its cost, in the conversation's total and
    // the ledger, and no vote.
    let store = Store::open(&DataDir::at(home.path()).unwrap()).unwrap();
    let conv = ConversationId(1);
    let judged = store.judgments(conv).unwrap();
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].cost_nanos, Some(JUDGE_NANOS));
    assert_eq!(judged[0].target, "gm:gm-model");
    assert_eq!(
        store.conversation(conv).unwrap().cost.nanos(),
        OA_NANOS + AN_NANOS + JUDGE_NANOS
    );
    assert!(store.votes(conv).unwrap().is_empty());
    let total = store.spend_total(None).unwrap();
    assert_eq!(total.cost.nanos(), OA_NANOS + AN_NANOS + JUDGE_NANOS);
    let board = cli(home.path(), &["leaderboard", "--json"]).await;
    let board: Value = serde_json::from_str(&board.stdout).unwrap();
    assert_eq!(board["votes"], 0, "a verdict is not a vote");

    // In text mode the verdict streams labelled, then says who was who.
    let run = cli(home.path(), &ask_judged(&[], "Hi")).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("judge gm:gm-model │ Verdict: Answer A"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Answer A = oa:oa-model"),
        "{}",
        run.stdout
    );
    // Incognito: no verdict is kept, but what the judge cost is in the
    // spend like the answers', and no hold is left.
    let spent = |store: &Store| store.spend_total(None).unwrap().cost.nanos();
    let before = spent(&store);
    let run = cli(home.path(), &ask_judged(&["--incognito"], "Hi")).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(spent(&store) - before, OA_NANOS + AN_NANOS + JUDGE_NANOS);
    let db = rusqlite::Connection::open(home.path().join("switchboard.sqlite3")).unwrap();
    let holds: i64 = db
        .query_row("SELECT count(*) FROM reservations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(holds, 0);
    let verdicts: i64 = db
        .query_row("SELECT count(*) FROM judgments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        verdicts, 2,
        "the two recorded runs' verdicts, not the incognito one"
    );
    // A judge needs something to compare.
    let run = cli(
        home.path(),
        &["ask", "-m", "oa:oa-model", "--judge", "gm:gm-model", "Hi"],
    )
    .await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("at least two targets"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_from_the_cli_reopens_in_the_app_saying_which_pane_each_label_was() {
    let server = MockServer::start().await.unwrap();
    script(&server);
    // Three targets, the second of which refuses its key: it has no text,
    // so the judge sees the first and third answers, as "Answer A" and
    // "Answer B".
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["unseen"])
            .with_key("another-key"),
    );
    let home = mock_home(&server).unwrap();
    let run = cli(
        home.path(),
        &ask_judged(&["-m", "gm:gm-model"], "Say hello"),
    )
    .await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    for said in ["Answer A = gm:gm-model", "Answer B = an:an-model"] {
        assert!(run.stdout.contains(said), "{said}: {}", run.stdout);
    }

    // Reopened as the app reopens it: the verdict names the panes.
    let app = ChatService::new(
        DataDir::at(home.path()).unwrap(),
        KeyStore::with_service("switchboard-test-cli-decide"),
    );
    let saved = app.open_conversation(1).unwrap();
    let pane = |target: &str| {
        saved
            .panes
            .iter()
            .find(|p| p.target == target)
            .unwrap()
            .key
            .clone()
    };
    let verdicts = &saved.rounds[0].judgments;
    assert_eq!(verdicts.len(), 1);
    assert_eq!(
        verdicts[0].labels,
        [
            ("A".to_owned(), pane("gm:gm-model")),
            ("B".to_owned(), pane("an:an-model")),
        ]
    );
    // And in history, by answer.
    let store = Store::open(&DataDir::at(home.path()).unwrap()).unwrap();
    let answer = |target: &str| {
        let saved = saved.rounds[0].answers.iter().find(|a| a.target == target);
        saved.unwrap().message
    };
    assert_eq!(
        store.judgments(ConversationId(1)).unwrap()[0].labels,
        [
            ("A".to_owned(), answer("gm:gm-model")),
            ("B".to_owned(), answer("an:an-model")),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaderboard_ranks_the_blind_winner_with_exact_median_cost() {
    let server = MockServer::start().await.unwrap();
    script(&server);
    let home = mock_home(&server).unwrap();
    for i in 0..6 {
        let tag = if i < 5 { "greetings" } else { "other" };
        let run = cli(
            home.path(),
            &[
                "ask",
                "--json",
                "-m",
                "oa:oa-model",
                "-m",
                "an:an-model",
                "--tag",
                tag,
                "Say hello",
            ],
        )
        .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    // Vote as the app does: blind, "oa" best in each greeting; a tie in the other.
    let store = Store::open(&DataDir::at(home.path()).unwrap()).unwrap();
    for c in 1..=6 {
        let msgs = store.messages(ConversationId(c), None, 10).unwrap().items;
        let q = msgs[0].id;
        let answers: Vec<MessageId> = msgs[1..].iter().map(|m| m.id).collect();
        assert_eq!(answers.len(), 2);
        let oa = msgs[1..]
            .iter()
            .find(|m| m.provider.as_deref() == Some("oa"))
            .unwrap()
            .id;
        store
            .record_vote(&Vote {
                round: q.0,
                answers: answers.iter().map(|a| a.0).collect(),
                verdict: if c <= 5 { Verdict::Best } else { Verdict::Tie },
                winner: (c <= 5).then_some(oa.0),
                blind: true,
                at_ms: 0,
            })
            .unwrap();
    }
    drop(store);

    let run = cli(home.path(), &["leaderboard", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let board: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(board["votes"], 6);
    let rows = board["rows"].as_array().unwrap();
    assert_eq!(rows[0]["model"], "oa:oa-model");
    assert_eq!(rows[0]["rank"], 1);
    assert_eq!(rows[0]["votes"], 6);
    assert_eq!(rows[0]["wins"], 5);
    assert_eq!(rows[0]["ties"], 1);
    assert_eq!(rows[0]["too_few_votes"], false);
    assert_eq!(rows[0]["median_cost_nanos"], OA_NANOS);
    assert_eq!(rows[1]["model"], "an:an-model");
    assert_eq!(rows[1]["median_cost_nanos"], AN_NANOS);
    let (lo, hi) = (
        rows[0]["rating_low"].as_f64().unwrap(),
        rows[0]["rating_high"].as_f64().unwrap(),
    );
    assert!(lo < rows[0]["rating"].as_f64().unwrap() && rows[0]["rating"].as_f64().unwrap() < hi);
    assert!(rows[0]["median_ttft_ms"].as_f64().unwrap() >= 30.0);

    // By tag: the one tie in "other" is too few votes to rank anyone.
    let run = cli(home.path(), &["leaderboard", "--tag", "other", "--json"]).await;
    let other: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(other["votes"], 1);
    let rows = other["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .all(|r| r["too_few_votes"] == true && r["rank"].is_null())
    );
    let an = rows.iter().find(|r| r["model"] == "an:an-model").unwrap();
    assert_eq!(
        an["median_cost_nanos"], AN_NANOS,
        "one answer, its exact cost"
    );
    assert_eq!(an["ties"], 1);

    // Text: the same numbers, the winner's line first.
    let run = cli(home.path(), &["leaderboard", "--tag", "greetings"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("5 blind votes tagged greetings"),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].trim_start().starts_with("1  oa:oa-model"),
        "{}",
        run.stdout
    );
    assert!(lines[1].contains("100% wins"), "{}", run.stdout);
    assert!(
        lines[2].contains("an:an-model") && lines[2].contains("0% wins"),
        "{}",
        run.stdout
    );
    // A bad date is a usage error.
    let run = cli(home.path(), &["leaderboard", "--since", "yesterday"]).await;
    assert_eq!(run.code, Some(2));
}
