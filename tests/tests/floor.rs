//! The memory benchmark's floor (`switchboard-floor`, src/bin) stands for
//! the app with nothing of its own: its configuration (floor/tauri.conf.json)
//! repeats the app's security settings, since its capabilities must not be
//! the app's, and it opens the app's own window from the app's
//! tauri.conf.json. A change to the app's settings must reach the floor.
//!
//! It is also the render rate's floor (`SWITCHBOARD_FLOOR_PAGE=stream`),
//! whose figures the benchmark prints beside the app's: it must stream the
//! whole answer, in order, into every pane. And it shows a given page
//! (`SWITCHBOARD_FLOOR_PAGE=copy`), the benchmark's static copy of the
//! app's page: that page, as it is.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use switchboard_tests::e2e::{App, Launch};
use tauri::utils::config::WindowConfig;

fn config(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn the_floor_has_the_apps_security_settings_and_window() {
    let app = config(include_str!("../../tauri.conf.json"));
    let floor = config(include_str!("../floor/tauri.conf.json"));
    for setting in [
        "/app/withGlobalTauri",
        "/app/security/csp",
        "/app/security/freezePrototype",
    ] {
        assert!(app.pointer(setting).is_some(), "{setting}");
        assert_eq!(
            app.pointer(setting),
            floor.pointer(setting),
            "floor/tauri.conf.json differs from the app's at {setting}"
        );
    }
    // The window the floor opens: the app's first, which the floor's
    // capability names.
    let window: WindowConfig =
        serde_json::from_value(app.pointer("/app/windows/0").unwrap().clone()).unwrap();
    assert_eq!(window.label, "main");
    assert_eq!(
        floor.pointer("/app/security/capabilities/0/windows"),
        Some(&serde_json::json!(["main"]))
    );
}

/// The answer the floor streams into each pane: 3,000 tokens, two a piece.
fn floor_answer() -> String {
    (0..3000)
        .map(|i| format!("t{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_render_floor_streams_the_whole_answer_in_order_into_six_panes() -> anyhow::Result<()> {
    let launch = Launch::new("floor-stream")
        .binary(PathBuf::from(env!("CARGO_BIN_EXE_switchboard-floor")))
        .env("SWITCHBOARD_FLOOR_PAGE", "stream")
        .ready_when("#floor-stream");
    let window = App::launch(launch).await?;
    window
        .check(async {
            let answer = floor_answer();
            let read = "return [...document.querySelectorAll('.pane')].map(p => ({ \
                          text: p.querySelector('.text').textContent.trim(), \
                          status: p.dataset.status || null, \
                          total: Number(p.dataset.totalMs), drawn: Number(p.dataset.drawnMs) }))";
            // Read while the panes stream: what is shown is always the
            // answer so far, and some reading catches it part way.
            let mut part_way = false;
            let panes = loop {
                let panes = window.client().execute(read, vec![]).await?;
                let panes = panes.as_array().unwrap().clone();
                assert_eq!(panes.len(), 6);
                for pane in &panes {
                    let text = pane["text"].as_str().unwrap();
                    assert!(
                        answer.starts_with(text),
                        "not the answer so far: …{}",
                        &text[text.len().saturating_sub(40)..]
                    );
                    part_way |= !text.is_empty() && text.len() < answer.len();
                }
                if panes.iter().all(|p| p["status"] == "done") {
                    break panes;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert!(part_way, "no reading caught a pane streaming");
            for pane in panes {
                assert_eq!(pane["text"].as_str().unwrap(), answer);
                // 1,499 sleeps of at least a millisecond between the pieces.
                let total = pane["total"].as_f64().unwrap();
                assert!(total >= 1499.0, "the stream took {total} ms");
                let drawn = pane["drawn"].as_f64().unwrap();
                assert!(drawn > 0.0 && drawn.is_finite(), "drawn after {drawn} ms");
            }
            Ok(())
        })
        .await?;
    window.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_shows_the_page_it_is_given_as_it_is() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("copy.html");
    std::fs::write(
        &page,
        "<!doctype html><html><head><style>#status-bar { width: 321px; }</style></head>\
         <body><div id=\"status-bar\">Engine 1.2.3</div></body></html>",
    )?;
    let launch = Launch::new("floor-copy")
        .binary(PathBuf::from(env!("CARGO_BIN_EXE_switchboard-floor")))
        .env("SWITCHBOARD_FLOOR_PAGE", "copy")
        .env("SWITCHBOARD_FLOOR_FILE", page.display().to_string())
        .ready_when("#status-bar");
    let window = App::launch(launch).await?;
    window
        .check(async {
            assert_eq!(window.text("#status-bar").await?, "Engine 1.2.3");
            // Its inline style applies: the copy carries the app's rules.
            let width = window
                .client()
                .execute(
                    "return document.querySelector('#status-bar').getBoundingClientRect().width",
                    vec![],
                )
                .await?;
            assert_eq!(width.as_f64(), Some(321.0));
            Ok(())
        })
        .await?;
    window.close().await
}
