//! `kill -9` mid-answer, over and over: three `switchboard-cli ask`
//! processes, each streaming two answers from a slow mock provider into one
//! data directory, are SIGKILLed at random moments, round after round. A
//! killed process settles nothing, so what it leaves must be settled by
//! the processes that start after it (the next round's CLIs, racing each
//! other to do it). At the end every partial answer must be in history,
//! marked interrupted, with the text its checkpoints saved; each must have
//! exactly one ledger row with its estimated cost; no hold may be left; and
//! the database must be sound.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_mock::{MockServer, Protocol, Scenario};
use switchboard_tests::{Rng, collect_output, pieces};

const ROUNDS: usize = 16;
const PROCESSES: usize = 3;
const TARGETS: [&str; 2] = ["oa:left", "oa:right"];

struct Cli {
    child: Child,
    prompt: String,
    stdout: Arc<Mutex<String>>,
}

fn spawn(home: &std::path::Path, prompt: &str) -> Cli {
    let mut args = vec!["ask".to_owned()];
    for t in TARGETS {
        args.extend(["-m".to_owned(), t.to_owned()]);
    }
    args.push(prompt.to_owned());
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(&args)
        .env("SWITCHBOARD_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = collect_output(child.stdout.take().unwrap());
    Cli {
        child,
        prompt: prompt.to_owned(),
        stdout,
    }
}

// A test that fails mid-round leaves no `switchboard-cli` running.
impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cli {
    /// The text shown for `target` so far (its labelled lines).
    fn shown(&self, target: &str) -> String {
        let prefix = format!("{target} │ ");
        self.stdout
            .lock()
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_mid_answer_loses_no_answer_and_bills_each_once() {
    let mut rng = Rng::new();
    let seed = rng.seed();
    let server = MockServer::start().await.unwrap();
    // Each piece a whole line (`007\n`): the labelled printer shows every
    // piece as soon as it arrives.
    let all = pieces(300, '\n');
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    for model in ["left", "right"] {
        server.script(
            model,
            Scenario::default()
                .with_text(&refs)
                .with_gap(Duration::from_millis(25)),
        );
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\n\
             [[providers.oa.models]]\nid = \"left\"\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n\
             [[providers.oa.models]]\nid = \"right\"\ninput_usd_per_mtok = \"3\"\noutput_usd_per_mtok = \"5\"\n",
            server.base_url(Protocol::OpenAi)
        ),
    )
    .unwrap();

    // What each killed run had shown, by prompt and target.
    let mut shown: HashMap<(String, &str), String> = HashMap::new();
    for round in 0..ROUNDS {
        let clis: Vec<Cli> = (0..PROCESSES)
            .map(|p| spawn(home.path(), &format!("round {round} process {p}")))
            .collect();
        // Mid-answer: every answer has started streaming...
        let deadline = Instant::now() + Duration::from_secs(20);
        while !clis
            .iter()
            .all(|c| TARGETS.iter().all(|t| !c.shown(t).is_empty()))
        {
            assert!(Instant::now() < deadline, "round {round}: no text came");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // ...and has streamed for a random while longer.
        tokio::time::sleep(Duration::from_millis(900 + rng.below(900))).await;
        for mut c in clis {
            c.child.kill().unwrap(); // SIGKILL
            c.child.wait().unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            for t in TARGETS {
                shown.insert((c.prompt.clone(), t), c.shown(t));
            }
        }
    }
    // The last round's leftovers are settled by the next process to start,
    // whatever it is; starting more settles nothing twice.
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
            .args(["history", "list", "--json"])
            .env("SWITCHBOARD_HOME", home.path())
            .output()
            .unwrap();
        assert!(out.status.success());
    }

    let conn = rusqlite::Connection::open(home.path().join("switchboard.sqlite3")).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let holds: i64 = conn
        .query_row("SELECT count(*) FROM reservations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(holds, 0, "no hold is left");
    let mut stmt = conn
        .prepare(
            "SELECT m.id, c.title, m.pane, m.content, m.error_kind, m.live_owner, m.cost_nanos,
                    m.cost_source, m.model
             FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.role = 'assistant' ORDER BY m.id",
        )
        .unwrap();
    #[allow(clippy::type_complexity, reason = "one row, as read")]
    let answers: Vec<(
        i64,
        String,
        u32,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
    )> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        answers.len(),
        ROUNDS * PROCESSES * TARGETS.len(),
        "every answer of every killed run is in history (seed {seed})"
    );
    let mut lost_text = 0usize;
    let mut kept_chars = 0usize;
    for (id, title, pane, content, kind, owner, cost, source, model) in &answers {
        let target = TARGETS[*pane as usize];
        let on_screen = &shown[&(title.clone(), target)];
        assert_eq!(kind.as_deref(), Some("interrupted"), "answer {id}");
        assert_eq!(owner, &None, "answer {id} is final");
        assert!(
            on_screen.starts_with(content.as_str()),
            "answer {id}: saved {content:?} is not what was shown {on_screen:?}"
        );
        if content.is_empty() {
            lost_text += 1;
        }
        kept_chars += content.len();
        // Exactly one ledger row, naming it, for the text that was saved.
        let rows: Vec<(i64, bool, Option<i64>, Option<i64>)> = conn
            .prepare(
                "SELECT cost_nanos, estimated, input_tokens, output_tokens FROM ledger
                 WHERE message = ?1",
            )
            .unwrap()
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 1, "answer {id}: {rows:?}");
        let (nanos, estimated, input, output) = rows[0];
        assert!(estimated, "answer {id}");
        assert_eq!(output, Some((content.len() / 4) as i64), "answer {id}");
        // Nano-dollars per token: $1 / $2 per Mtok for left, $3 / $5 for right.
        let (per_in, per_out) = match model.as_deref() {
            Some("left") => (1000, 2000),
            _ => (3000, 5000),
        };
        let expected = input.unwrap() * per_in + output.unwrap() * per_out;
        assert_eq!(nanos, expected, "answer {id}");
        assert_eq!(*cost, Some(nanos), "answer {id}: history and ledger agree");
        assert_eq!(source.as_deref(), Some("estimated"));
    }
    // Checkpoints come at least once a second: a run killed after 0.9 s of
    // streaming or more has its text saved.
    assert_eq!(lost_text, 0, "answers saved without any text (seed {seed})");
    assert!(kept_chars > 0);
    let ledger_rows: i64 = conn
        .query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ledger_rows as usize, answers.len(), "nothing billed twice");
    // Every lock file of a dead process was cleared by its recovery.
    assert_eq!(
        std::fs::read_dir(home.path().join("locks"))
            .unwrap()
            .count(),
        0
    );
}
