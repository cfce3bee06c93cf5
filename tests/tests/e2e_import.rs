//! Settings → Import in the real window: a 5,000-conversation ChatGPT
//! export imported with progress shown as it goes, the window usable
//! meanwhile (the compare view opened and typed into mid-import), the
//! conversations in the sidebar and found by search afterwards; the same
//! file again adds nothing; a file that is not an export is refused with
//! the reason. "Choose file…" opens the real GTK file chooser (driven with
//! xdotool, as a keyboard would): the path picked shows in the form and
//! imports; Cancel changes nothing; the window answers while it is open.

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

/// The file chooser's title (a regular expression for xdotool).
const CHOOSER: &str = "^Choose an export to import$";

/// What `script` returns in the page.
async fn in_page(app: &App, script: &str) -> anyhow::Result<serde_json::Value> {
    Ok(app.client().execute(script, vec![]).await?)
}

/// The value of the typed-path field.
async fn path_field(app: &App) -> anyhow::Result<String> {
    let v = in_page(app, "return document.querySelector('#import-path').value").await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Whether the "Choose file…" button can be pressed (it cannot while its
/// chooser is open).
async fn choose_enabled(app: &App) -> anyhow::Result<bool> {
    let v = in_page(
        app,
        "return !document.querySelector('#import-choose').disabled",
    )
    .await?;
    Ok(v.as_bool().unwrap_or(false))
}

async fn wait_choose_enabled(app: &App) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !choose_enabled(app).await? {
        anyhow::ensure!(Instant::now() < deadline, "the chooser never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_chosen_in_the_native_file_chooser_imports_and_cancel_changes_nothing()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let home = mock_home(&server)?;
    // Alone in its folder, so the chooser's completion has nothing to add.
    let folder = home.path().join("chatgpt-export");
    std::fs::create_dir(&folder)?;
    let export = folder.join("conversations.json");
    std::fs::write(&export, chatgpt_export(40, 11))?;
    let export = export.to_str().unwrap().to_owned();
    let app = App::launch(Launch::new("import-chooser").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.open_settings().await?;
        let typed = "/somewhere/typed-by-hand.json";
        app.type_into("#import-path", typed).await?;

        // Cancel: the chooser closes and the form is as it was.
        app.click("#import-choose").await?;
        app.focus_native_window(CHOOSER).await?;
        assert!(!choose_enabled(&app).await?, "open: not pressed twice");
        // The window answers while the chooser is open: a script, and a
        // command's reply through IPC.
        assert_eq!(path_field(&app).await?, typed);
        let info = app
            .run_async(
                "const done = arguments[arguments.length - 1]; \
                 window.__TAURI__.core.invoke('app_info').then(i => done(i.version), e => done('error: ' + e));",
            )
            .await?;
        assert_eq!(info.as_str(), Some(env!("CARGO_PKG_VERSION")), "{info:?}");
        app.screenshot("chooser-open").await?;
        app.xdotool(&["key", "Escape"]).await?;
        app.wait_native_window_gone(CHOOSER).await?;
        wait_choose_enabled(&app).await?;
        assert_eq!(path_field(&app).await?, typed, "Cancel changed nothing");
        assert!(app.text_content("#import-result").await?.is_none());

        // Choose: the location field (Ctrl+L), the full path, Enter.
        app.click("#import-choose").await?;
        app.focus_native_window(CHOOSER).await?;
        app.xdotool(&["key", "ctrl+l"]).await?;
        app.xdotool(&["type", "--delay", "15", &export]).await?;
        // Whatever completion was proposed past the typed text goes.
        app.xdotool(&["key", "Delete", "Return"]).await?;
        app.wait_native_window_gone(CHOOSER).await?;
        wait_choose_enabled(&app).await?;
        assert_eq!(path_field(&app).await?, export, "the chosen path shows in the form");

        app.click("#import-start").await?;
        let result = app
            .wait_for_text("#import-result", |t| !t.is_empty())
            .await?;
        assert!(
            result.contains("Imported ChatGPT export: 40 conversations (40 new, 0 updated, 0 unchanged)"),
            "{result}"
        );
        app.wait_for_content("#history-list .history-item", |t| {
            t.contains("Generated conversation 39")
        })
        .await?;
        Ok(())
    })
    .await?;
    app.close().await
}
