//! The app ending while an answer streams: the real app under Xvfb, a slow
//! mock provider, and the data directory read afterwards.
//!
//! - Asked to end (SIGTERM: a logout, a shutdown, `kill`), the app stops
//!   the stream and settles it before it exits: the answer is in history as
//!   `stopped` with the text that arrived, billed once, no hold left.
//! - Killed outright (SIGKILL), nothing can settle; the next launch of the
//!   app finds the answer, marks it `interrupted` with the text its
//!   checkpoints saved, and bills it once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use switchboard_mock::{MockServer, Scenario};
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::{mock_providers_config, pieces};

/// A home whose `oa-model` streams 4-character pieces every 20 ms for 12 s.
async fn slow_home() -> anyhow::Result<(MockServer, tempfile::TempDir, Vec<String>)> {
    let server = MockServer::start().await?;
    let all = pieces(600, ' ');
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(Duration::from_millis(20)),
    );
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        mock_providers_config(&server),
    )?;
    Ok((server, home, all))
}

/// Send a prompt to pane 1 and wait until `chars` characters are shown.
async fn stream_until(app: &App, chars: usize) -> anyhow::Result<String> {
    let shown = std::sync::Mutex::new(String::new());
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "go\u{E007}").await?;
        let text = app
            .wait_for_content(".pane:nth-of-type(1) .answer-text", |t| t.len() >= chars)
            .await?;
        *shown.lock().unwrap() = text;
        Ok(())
    })
    .await?;
    Ok(shown.into_inner().unwrap())
}

/// The pid of the app process running on `home` (the only process whose
/// environment names that temporary directory and whose name is the app's).
fn app_pid(home: &Path) -> Option<i32> {
    let needle = home.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        let env = std::fs::read(e.path().join("environ")).ok()?;
        (comm.trim() == "switchboard" && env.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .then(|| e.file_name().to_str()?.parse().ok())
            .flatten()
    })
}

/// The one answer: `(id, content, error_kind)`.
type Answer = (i64, String, Option<String>);

/// The one answer, its ledger rows `(count, output tokens)`, and the holds
/// left.
fn saved(home: &Path) -> anyhow::Result<(Answer, (i64, Option<i64>), i64)> {
    let conn = rusqlite::Connection::open(home.join("switchboard.sqlite3"))?;
    let answer: Answer = conn.query_row(
        "SELECT id, content, error_kind FROM messages WHERE role = 'assistant'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let ledger: (i64, Option<i64>) = conn.query_row(
        "SELECT count(*), max(output_tokens) FROM ledger WHERE message = ?1",
        [answer.0],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let holds: i64 = conn.query_row("SELECT count(*) FROM reservations", [], |r| r.get(0))?;
    Ok((answer, ledger, holds))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_asked_to_end_mid_answer_stops_and_settles_it() -> anyhow::Result<()> {
    let (_server, home, all) = slow_home().await?;
    let app = App::launch(Launch::new("settle-sigterm").data_dir(home.path())).await?;
    let shown = stream_until(&app, 80).await?;
    let pid = app_pid(home.path()).expect("the app is running");
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app_pid(home.path()).is_some() {
        assert!(Instant::now() < deadline, "the app did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.close().await.ok();

    let ((_, content, kind), (rows, output), holds) = saved(home.path())?;
    assert_eq!(kind.as_deref(), Some("stopped"), "{content}");
    assert!(content.starts_with(shown.trim()), "{content:?} / {shown:?}");
    assert!(all.concat().starts_with(&content));
    assert_eq!(rows, 1, "billed once");
    assert_eq!(output, Some((content.len() / 4) as i64));
    assert_eq!(holds, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_killed_mid_answer_finds_it_on_the_next_launch() -> anyhow::Result<()> {
    let (_server, home, all) = slow_home().await?;
    let app = App::launch(Launch::new("settle-killed").data_dir(home.path())).await?;
    // A second and a half of text: checkpoints have saved some of it.
    let shown = stream_until(&app, 300).await?;
    let pid = app_pid(home.path()).expect("the app is running");
    let ok = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?
        .success();
    assert!(ok);
    app.close().await.ok();
    let ((_, content, kind), (rows, _), holds) = saved(home.path())?;
    assert_eq!(kind, None, "nothing settled it: {content}");
    assert_eq!((rows, holds), (0, 1));

    // The next launch settles what the killed one left.
    let again = App::launch(Launch::new("settle-relaunch").data_dir(home.path())).await?;
    let ((_, content, kind), (rows, output), holds) = saved(home.path())?;
    again.close().await?;
    assert_eq!(kind.as_deref(), Some("interrupted"));
    assert!(!content.is_empty() && all.concat().starts_with(&content));
    assert!(
        shown.trim().len() <= content.len() || shown.starts_with(&content),
        "{content:?} / {shown:?}"
    );
    assert_eq!(rows, 1, "billed once");
    assert_eq!(output, Some((content.len() / 4) as i64));
    assert_eq!(holds, 0);
    Ok(())
}
