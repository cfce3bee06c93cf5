//! Settings → Import in the real window: a 5,000-conversation ChatGPT
//! export imported with progress shown as it goes, the window usable
//! meanwhile (the compare view opened and typed into mid-import), the
//! conversations in the sidebar and found by search afterwards; the same
//! file again adds nothing; a file that is not an export is refused with
//! the reason.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::{Duration, Instant};

use switchboard_mock::MockServer;
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::history_gen::chatgpt_export;
use switchboard_tests::mock_home;

const CONVERSATIONS: u64 = 5_000;

async fn start_import(app: &App, path: &std::path::Path) -> anyhow::Result<()> {
    let input = app.wait_for("#import-path").await?;
    input.clear().await?;
    input.send_keys(path.to_str().unwrap()).await?;
    app.click("#import-start").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_imports_with_progress_while_the_window_stays_usable() -> anyhow::Result<()>
{
    let server = MockServer::start().await?;
    let home = mock_home(&server)?;
    let export = home.path().join("conversations.json");
    std::fs::write(&export, chatgpt_export(CONVERSATIONS as usize, 5))?;
    let bad = home.path().join("notes.json");
    std::fs::write(&bad, "{\"notes\": []}")?;
    let app = App::launch(Launch::new("import").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.open_settings().await?;
        start_import(&app, &export).await?;

        // Progress while it runs: part of the file done, not all.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen_midway = None;
        while seen_midway.is_none() {
            anyhow::ensure!(Instant::now() < deadline, "no progress shown mid-import");
            let done = app
                .client()
                .execute(
                    "const p = document.querySelector('#import-progress'); \
                     return p ? [Number(p.dataset.done), Number(p.dataset.total)] : null",
                    vec![],
                )
                .await?;
            if let Some([d, t]) = serde_json::from_value::<Option<[u64; 2]>>(done)? {
                assert_eq!(t, CONVERSATIONS);
                if d > 0 && d < t {
                    seen_midway = Some(d);
                }
            }
            anyhow::ensure!(
                app.text_content("#import-result").await?.is_none(),
                "the import ended before any progress was seen"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.screenshot("importing").await?;

        // The window answers meanwhile: another page, typing, and back.
        app.click("#nav-compare").await?;
        app.type_into("#composer", "typed during the import")
            .await?;
        let typed = app
            .client()
            .execute("return document.querySelector('#composer').value", vec![])
            .await?;
        assert_eq!(typed, "typed during the import");
        app.click("#nav-settings").await?;

        let result = app
            .wait_for_text("#import-result", |t| !t.is_empty())
            .await?;
        assert!(
            result.contains(
                "Imported ChatGPT export: 5000 conversations (5000 new, 0 updated, 0 unchanged)"
            ),
            "{result} (progress seen at {seen_midway:?})"
        );
        // The newest imported conversation leads the sidebar, and search
        // finds one by a word only it contains.
        app.wait_for_content("#history-list .history-item", |t| {
            t.contains("Generated conversation 4999")
        })
        .await?;
        app.type_into("#history-search", "marker4321").await?;
        app.wait_for_content("#search-results", |t| {
            t.contains("Generated conversation 4321")
        })
        .await?;

        // Again: nothing added twice.
        start_import(&app, &export).await?;
        let again = app
            .wait_for_text("#import-result", |t| t.contains("unchanged"))
            .await?;
        assert!(
            again.contains("(0 new, 0 updated, 5000 unchanged)"),
            "{again}"
        );

        // Not an export: refused with the reason.
        start_import(&app, &bad).await?;
        let refused = app
            .wait_for_text("#import-result", |t| t.contains("Not imported"))
            .await?;
        assert!(
            refused.contains("not a ChatGPT or Claude export"),
            "{refused}"
        );
        Ok(())
    })
    .await?;
    app.close().await
}
