//! The store under other processes: a writer killed with SIGKILL at random
//! moments, over and over, and two processes competing for one budget.
//!
//! The child processes are `store-child` (see
//! `switchboard_tests::store_child`), which uses the real `Store` API on the
//! real file, exactly as the app and the CLI do.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_engine::{MessageId, Store};
use switchboard_tests::Rng;
use switchboard_tests::store_child::{DB, ESTIMATE_NANOS, ROLE, TAG, answer_text, budget};

fn spawn_child(role: &str, db: &Path, tag: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_store-child"))
        .env(ROLE, role)
        .env(DB, db)
        .env(TAG, tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The fields of a `word ... end` record in a child's output line (libtest
/// may print its own text before it on the same line).
fn record<'a>(line: &'a str, word: &str) -> Option<Vec<&'a str>> {
    let start = line.find(&format!("{word} "))?;
    let fields: Vec<&str> = line[start..].split(' ').skip(1).collect();
    (fields.last() == Some(&"end")).then(|| fields[..fields.len() - 1].to_vec())
}

#[test]
fn kill_dash_nine_at_random_moments_never_corrupts_or_loses_a_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("switchboard.sqlite3");
    let mut rng = Rng::new();
    let mut committed: Vec<(i64, String)> = Vec::new();
    for round in 0..16 {
        let tag = format!("r{round}");
        let mut child = spawn_child("writer", &db, &tag);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        // Early rounds may die while creating and migrating the database.
        std::thread::sleep(Duration::from_millis(5 + rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            if let Some(fields) = record(&line, "committed")
                && let [id, i] = fields[..]
            {
                committed.push((id.parse().unwrap(), answer_text(&tag, i.parse().unwrap())));
            }
        }
        // Between kills, the file must always open and be sound.
        let store = Store::open_at(&db).unwrap();
        assert_eq!(
            store.integrity_check().unwrap(),
            "ok",
            "after round {round}"
        );
    }
    assert!(
        committed.len() >= 20,
        "the writer committed too little to prove anything: {}",
        committed.len()
    );
    let store = Store::open_at(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    for (id, text) in &committed {
        let m = store
            .message(MessageId(*id))
            .unwrap_or_else(|e| panic!("committed answer {id} lost: {e}"));
        assert_eq!(&m.content, text);
        assert_eq!(store.attempts(MessageId(*id)).unwrap().len(), 1);
    }
    // The full-text index kept up with the rows it indexes.
    let (id, text) = committed.last().unwrap();
    let word = text.split(' ').nth(1).unwrap().trim_end_matches(':');
    let hits = store.search(word, 5, 0).unwrap();
    let conv = store.message(MessageId(*id)).unwrap().conversation;
    assert!(
        hits.iter()
            .any(|h| h.conversation == conv && h.matching_messages == 2),
        "the last committed answer is searchable: {hits:?}"
    );
}

#[test]
fn two_processes_cannot_both_pass_a_budget_with_room_for_one() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("switchboard.sqlite3");
    drop(Store::open_at(&db).unwrap()); // migrate once, so both children start at once
    let children: Vec<Child> = (0..2)
        .map(|i| spawn_child("reserver", &db, &format!("p{i}")))
        .collect();
    let mut admitted = 0;
    for mut child in children {
        let stdout = child.stdout.take().unwrap();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(fields) = record(&line, "admitted")
                && let [n] = fields[..]
            {
                admitted += n.parse::<i64>().unwrap();
            }
        }
        assert!(child.wait().unwrap().success());
    }
    let store = Store::open_at(&db).unwrap();
    let spent = store.spend_total(None).unwrap();
    // 100 attempts of $0.03 against $1: exactly 33 fit, whichever process ran them.
    assert_eq!(admitted, 33);
    assert_eq!(spent.requests, 33);
    assert_eq!(spent.cost.nanos(), 33 * ESTIMATE_NANOS);
    assert!(spent.cost <= budget().limit);
}
