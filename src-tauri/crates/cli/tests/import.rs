//! `switchboard-cli history import` end to end: ChatGPT and Claude exports
//! shaped like the vendors' (hand-made fixtures in `tests/fixtures/import`,
//! and a generated 5,000-conversation file), progress on stderr, nothing
//! added twice, nothing half-written when the file is bad or the process
//! is killed mid-import.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn cli(home: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(args)
        .env("SWITCHBOARD_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok_json(run: &Run) -> Value {
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/import")
        .join(name)
}

fn conversation_count(home: &Path) -> usize {
    let list = ok_json(&cli(home, &["history", "list", "--json", "--limit", "500"]));
    list["conversations"].as_array().unwrap().len()
}

#[test]
fn chatgpt_and_claude_exports_import_once_with_their_titles_and_branches() {
    let home = tempfile::tempdir().unwrap();
    let chatgpt = fixture("chatgpt-conversations.json");
    let run = cli(
        home.path(),
        &["history", "import", chatgpt.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.starts_with(
            "Imported 3 conversations from the ChatGPT export: 3 new, 0 with new messages, 0 \
             already imported; 13 messages written, 3 left out"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("2 attachments are not in the export (noted in their messages): whiteboard.jpg, plan.pdf"),
        "{}",
        run.stdout
    );
    let claude = fixture("claude-conversations.json");
    let summary = ok_json(&cli(
        home.path(),
        &["history", "import", "--json", claude.to_str().unwrap()],
    ));
    assert_eq!(summary["source"], "claude");
    assert_eq!(summary["added"], 2);
    assert_eq!(summary["messages"], 10);
    assert_eq!(conversation_count(home.path()), 5);

    // The same files again: nothing twice.
    let again = ok_json(&cli(
        home.path(),
        &["history", "import", "--json", chatgpt.to_str().unwrap()],
    ));
    assert_eq!(
        (&again["added"], &again["unchanged"], &again["messages"]),
        (&Value::from(0), &Value::from(3), &Value::from(0))
    );
    assert_eq!(conversation_count(home.path()), 5);

    // Titles and models survive; the edit and the regeneration are branches.
    let hits = ok_json(&cli(
        home.path(),
        &["history", "search", "--json", "kid-friendly"],
    ));
    assert_eq!(hits[0]["title"], "Lisbon with kids");
    assert_eq!(hits[0]["model"], "o3");
    let id = hits[0]["conversation"].to_string();
    let doc = ok_json(&cli(
        home.path(),
        &["history", "export", &id, "--format", "json"],
    ));
    let messages = doc["messages"].as_array().unwrap();
    let id_of = |start: &str| {
        messages
            .iter()
            .find(|m| m["content"].as_str().unwrap().starts_with(start))
            .unwrap()["id"]
            .clone()
    };
    let parent_of = |start: &str| {
        messages
            .iter()
            .find(|m| m["content"].as_str().unwrap().starts_with(start))
            .unwrap()
            .get("parent")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(parent_of("Day 1: Oceanário"), id_of("Plan four days"));
    assert_eq!(parent_of("Four kid-friendly days"), id_of("Plan four days"));
    assert_eq!(
        parent_of("What if it rains?"),
        id_of("Four kid-friendly days")
    );
    assert_eq!(doc["created_at_ms"], 1_714_550_400_000_i64);
}

#[test]
fn a_bad_file_is_refused_with_the_reason_and_nothing_written() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (
            write("notes.txt", "just some notes"),
            "the file is not JSON",
        ),
        (
            write("other.json", r#"[{"foo": 1}]"#),
            "neither `mapping` (a ChatGPT export's conversations.json) nor `chat_messages`",
        ),
        (
            write(
                "broken.json",
                &std::fs::read_to_string(fixture("chatgpt-conversations.json"))
                    .unwrap()
                    .replacen("\"mapping\"", "\"mapping_gone\"", 2),
            ),
            "conversation 1 (\"Lisbon with kids\") is not in ChatGPT's export format",
        ),
    ];
    for (path, reason) in cases {
        let run = cli(home.path(), &["history", "import", path.to_str().unwrap()]);
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(
            run.stderr.contains(reason),
            "{}: {}",
            path.display(),
            run.stderr
        );
    }
    assert_eq!(conversation_count(home.path()), 0);
}

#[test]
fn five_thousand_conversations_import_with_progress_and_are_searchable() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conversations.json");
    std::fs::write(
        &file,
        switchboard_tests::history_gen::chatgpt_export(5_000, 42),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let run = cli(home.path(), &["history", "import", file.to_str().unwrap()]);
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Progress, one line per batch (stderr is not a terminal here).
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("importing ChatGPT export: "))
        .collect();
    assert_eq!(
        progress.first().copied(),
        Some("importing ChatGPT export: 0/5000 conversations (0 new)")
    );
    assert_eq!(
        progress.last().copied(),
        Some("importing ChatGPT export: 5000/5000 conversations (5000 new)")
    );
    assert_eq!(progress.len(), 1 + 5_000 / 250);
    assert!(run.stdout.contains("5000 new"), "{}", run.stdout);
    eprintln!("imported 5,000 conversations (20,000 messages) in {took:?} (debug build)");

    let hits = ok_json(&cli(
        home.path(),
        &["history", "search", "--json", "marker4321"],
    ));
    assert_eq!(hits.as_array().unwrap().len(), 1);
    assert_eq!(hits[0]["title"], "Generated conversation 4321");
    let hits = ok_json(&cli(home.path(), &["history", "search", "--json", "the"]));
    assert_eq!(
        hits.as_array().unwrap().len(),
        10,
        "a stopword finds plenty"
    );
}

#[test]
fn an_import_killed_mid_way_leaves_nothing_behind() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conversations.json");
    std::fs::write(
        &file,
        switchboard_tests::history_gen::chatgpt_export(3_000, 7),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(["history", "import", file.to_str().unwrap()])
        .env("SWITCHBOARD_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // SIGKILL once the first batches are committed.
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains("500/3000") {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before it finished");
    // The next Switchboard process removes what the dead import wrote.
    assert_eq!(conversation_count(home.path()), 0);
    let hits = ok_json(&cli(
        home.path(),
        &["history", "search", "--json", "marker12"],
    ));
    assert!(hits.as_array().unwrap().is_empty());
    // And the same file then imports whole.
    let run = cli(
        home.path(),
        &["history", "import", "--json", file.to_str().unwrap()],
    );
    assert_eq!(ok_json(&run)["added"], 3000);
}
