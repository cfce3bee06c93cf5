//! Settings that write config.toml, end to end: a route built in the
//! routes editor falls back from a failing target and is saved as
//! `[routes.<name>]`; a provider turned off leaves the pane picker; a bad
//! base URL is refused inline and the file is left byte for byte as it was.
//! And the sidebar: a pinned conversation moves to the top of a long,
//! virtualized list. And `[ui] layout`: the compare view opens in it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::{Duration, Instant};

use switchboard_engine::{DataDir, Store};
use switchboard_mock::{Fault, MockServer, Scenario};
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::mock_providers_config;

/// Poll `check` (a page script returning a boolean) until it holds.
async fn eventually(app: &App, what: &str, check: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = app.client().execute(check, Vec::new()).await?;
        if v.as_bool() == Some(true) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("{what}: never became true ({check})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_made_in_the_editor_falls_back_and_is_saved() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_fault(Fault::Status {
            code: 401,
            retry_after_s: None,
        }),
    );
    server.script(
        "an-model",
        Scenario::default().with_text(&["Answer from ", "the second target"]),
    );
    let home = tempfile::tempdir()?;
    let path = home.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "# written by the test; comments must survive edits\n{}",
            mock_providers_config(&server)
        ),
    )?;
    let app = App::launch(Launch::new("routes-editor").data_dir(home.path())).await?;
    app.check(async {
        app.open_settings().await?;
        app.click("#new-route").await?;
        app.type_into("#route-name", "backup").await?;
        // One target typed, one from the catalog picker, then reordered.
        app.type_into("#route-target-input", "an:an-model").await?;
        app.click("#route-target-add").await?;
        app.click("#route-form .picker-button").await?;
        app.type_into("#route-form .picker-search", "oa-model")
            .await?;
        app.click("#route-form .picker-item").await?;
        app.wait_for_content(".route-target[data-index=\"1\"] .route-target-label", |t| {
            t == "2. oa:oa-model"
        })
        .await?;
        app.click(".route-target[data-index=\"1\"] .target-up")
            .await?;
        app.wait_for_content(".route-target[data-index=\"0\"] .route-target-label", |t| {
            t == "1. oa:oa-model"
        })
        .await?;
        // Below the fold of the settings page: bring it into view first.
        app.client()
            .execute(
                "document.getElementById('route-save').scrollIntoView({ block: 'center' });",
                Vec::new(),
            )
            .await?;
        app.type_into("#route-first-token", "5000").await?;
        app.type_into("#route-total", "60000").await?;
        app.screenshot("routes-editor").await?;
        app.click("#route-save").await?;
        let row = app
            .wait_for_content(".route-row[data-route=\"backup\"] .route-summary", |t| {
                !t.is_empty()
            })
            .await?;
        assert_eq!(row, "ordered · oa:oa-model → an:an-model");

        let text = std::fs::read_to_string(&path)?;
        assert!(text.starts_with("# written by the test"), "{text}");
        assert!(text.contains("[routes.backup]\n"), "{text}");
        assert!(
            text.contains("targets = [\"oa:oa-model\", \"an:an-model\"]"),
            "{text}"
        );
        assert!(text.contains("first_token_timeout_ms = 5000"), "{text}");
        assert!(text.contains("total_timeout_ms = 60000"), "{text}");
        assert!(!text.contains("idle_timeout_ms"), "{text}");

        // A target the config does not know is refused inline; nothing written.
        app.click(".route-row[data-route=\"backup\"] .route-edit")
            .await?;
        app.type_into("#route-target-input", "ghost:model").await?;
        app.click("#route-target-add").await?;
        app.click("#route-save").await?;
        let err = app
            .wait_for_content("#route-error", |t| !t.is_empty())
            .await?;
        assert!(
            err.contains("config.toml:")
                && err.contains("routes.backup.targets")
                && err.contains("ghost"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path)?, text, "nothing was written");
        app.click("#route-cancel").await?;

        // The route is in the pane picker and falls back.
        app.click("#nav-compare").await?;
        app.pick_model(1, "@backup").await?;
        assert_eq!(
            app.first_answer_to("Hello").await?,
            "Answer from the second target"
        );
        let card = ".pane:nth-of-type(1) .answer-card";
        assert_eq!(
            app.text(&format!("{card} .ro-served")).await?,
            "an/an-model"
        );
        assert_eq!(
            app.text(&format!("{card} .ro-trail")).await?,
            "oa/oa-model → an/an-model"
        );
        assert_eq!(server.hits("oa-model"), 1);
        app.screenshot("route-fallback").await?;

        // Deleting the route asks first.
        app.open_settings().await?;
        let row = ".route-row[data-route=\"backup\"]";
        app.click(&format!("{row} .route-delete")).await?;
        app.wait_for(&format!("{row} .confirm-yes")).await?;
        assert!(
            std::fs::read_to_string(&path)?.contains("[routes.backup]"),
            "nothing is deleted before Yes"
        );
        app.click(&format!("{row} .confirm-yes")).await?;
        eventually(
            &app,
            "the route is deleted",
            "return !document.querySelector('.route-row[data-route=\"backup\"]')",
        )
        .await?;
        assert!(!std::fs::read_to_string(&path)?.contains("[routes.backup]"));
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_provider_leaves_the_picker_and_a_bad_base_url_changes_nothing()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let home = tempfile::tempdir()?;
    let path = home.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "# written by the test; comments must survive edits\n{}",
            mock_providers_config(&server)
        ),
    )?;
    let app = App::launch(Launch::new("providers-config").data_dir(home.path())).await?;
    let picker_offers = |model: &str| {
        format!(
            "return [...document.querySelectorAll('.pane:nth-of-type(1) .picker-item .pi-provider')].some(e => e.textContent.includes('{model}'));"
        )
    };
    app.check(async {
        // Offered at first.
        app.click(".pane:nth-of-type(1) .picker-button").await?;
        app.type_into(".pane:nth-of-type(1) .picker-search", "model").await?;
        eventually(&app, "oa-model offered", &picker_offers("oa-model")).await?;

        app.open_settings().await?;
        let oa = "[data-provider=\"oa\"]";
        app.click(&format!("{oa} .provider-enabled")).await?;
        app.wait_for(&format!("{oa}.disabled")).await?;
        let text = std::fs::read_to_string(&path)?;
        assert!(text.contains("[providers.oa]\nkind = \"openai\"") && text.contains("enabled = false"), "{text}");
        assert!(text.starts_with("# written by the test"), "{text}");

        // A bad base URL: refused inline with file, line and field.
        let an = "[data-provider=\"an\"]";
        let before = std::fs::read(&path)?;
        app.type_into(&format!("{an} .base-url-input"), "ftp://x").await?;
        app.click(&format!("{an} .base-url-save")).await?;
        let err = app
            .wait_for_content(&format!("{an} .config-error"), |t| !t.is_empty())
            .await?;
        assert!(err.contains("config.toml:"), "names the file and line: {err}");
        assert!(err.contains("providers.an.base_url"), "names the field: {err}");
        assert!(err.contains("not an http(s) URL"), "{err}");
        app.screenshot("bad-base-url").await?;
        assert_eq!(std::fs::read(&path)?, before, "config.toml is unchanged");

        // Gone from the pane picker; the other provider is still there.
        app.click("#nav-compare").await?;
        app.click(".pane:nth-of-type(1) .picker-button").await?;
        app.type_into(".pane:nth-of-type(1) .picker-search", "model").await?;
        eventually(&app, "an-model offered", &picker_offers("an-model")).await?;
        let offered = app.client().execute(&picker_offers("oa-model"), Vec::new()).await?;
        assert_eq!(offered, serde_json::Value::Bool(false), "a disabled provider is not offered");

        // And back on.
        app.open_settings().await?;
        app.click(&format!("{oa} .provider-enabled")).await?;
        eventually(
            &app,
            "oa enabled",
            "const r = document.querySelector('[data-provider=\"oa\"]'); return !!r && !r.classList.contains('disabled');",
        )
        .await?;
        assert!(!std::fs::read_to_string(&path)?.contains("enabled = false"));
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_conversation_moves_to_the_top_of_a_virtualized_list() -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    {
        let store = Store::open(&DataDir::at(home.path())?)?;
        let recorder = store.recorder(false);
        for i in 1..=600 {
            recorder.start_conversation(&format!("Conversation {i:04}"), &[])?;
        }
    }
    let app = App::launch(Launch::new("sidebar-pin").data_dir(home.path())).await?;
    app.check(async {
        let first = "#history-list .history-item .history-title";
        app.wait_for_content(first, |t| t == "Conversation 0600").await?;
        // Only the rows in view (plus a margin) are in the page.
        let rows = "return document.querySelectorAll('#history-list .history-item').length;";
        let shown = app.client().execute(rows, Vec::new()).await?.as_u64().unwrap_or(0);
        assert!((10..=45).contains(&shown), "{shown} rows in the page");

        // Scrolling near the end loads the next pages, still few rows in the page.
        eventually(
            &app,
            "more pages loaded",
            "const s = document.getElementById('history-scroll'); s.scrollTop = s.scrollHeight; \
             return Number(document.getElementById('history-list').dataset.total) >= 200;",
        )
        .await?;
        let shown = app.client().execute(rows, Vec::new()).await?.as_u64().unwrap_or(0);
        assert!(shown <= 45, "{shown} rows in the page after scrolling");
        eventually(
            &app,
            "the rows at the end are drawn",
            "return [...document.querySelectorAll('#history-list .history-title')].some(e => Number(e.textContent.slice(-4)) <= 420);",
        )
        .await?;

        // Pin one from far down the list: it moves to the top.
        let pin = "const item = [...document.querySelectorAll('#history-list .history-item')].find(e => e.querySelector('.history-title').textContent === 'Conversation 0410'); \
                   if (!item) return false; item.querySelector('.history-pin').click(); return true;";
        eventually(&app, "pinning 0410", pin).await?;
        eventually(
            &app,
            "0410 on top",
            "const s = document.getElementById('history-scroll'); s.scrollTop = 0; \
             const t = document.querySelector('#history-list .history-item .history-title'); \
             return !!t && t.textContent === 'Conversation 0410';",
        )
        .await?;
        app.wait_for_content("#history-list .history-item .history-meta", |t| t.contains("📌")).await?;
        app.wait_for_content("#history-list .history-item:nth-child(3) .history-title", |t| {
            t == "Conversation 0600"
        })
        .await?;
        app.screenshot("pinned").await?;

        // Unpinned, it goes back to its place.
        let unpin = "document.querySelector('#history-list .history-item .history-pin').click(); return true;";
        app.client().execute(unpin, Vec::new()).await?;
        app.wait_for_content(first, |t| t == "Conversation 0600").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_view_opens_in_the_layout_of_the_ui_table() -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    std::fs::write(home.path().join("config.toml"), "[ui]\nlayout = \"grid\"\n")?;
    let app = App::launch(Launch::new("ui-layout").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare .panes.grid").await?;
        eventually(
            &app,
            "the layout picker shows the grid",
            "return document.querySelector('#layout').value === 'grid';",
        )
        .await?;
        // Changed in the view, the layout stays for the session: coming
        // back from Settings does not bring config.toml's back.
        app.client()
            .execute(
                "const s = document.querySelector('#layout'); s.value = 'rows'; \
                 s.dispatchEvent(new Event('change')); return true;",
                Vec::new(),
            )
            .await?;
        app.wait_for("#compare .panes.rows").await?;
        app.open_settings().await?;
        app.click("#nav-compare").await?;
        app.wait_for("#compare .panes.rows").await?;
        assert!(
            app.client()
                .execute(
                    "return document.querySelector('#compare .panes.grid') === null \
                     && document.querySelector('#layout').value === 'rows';",
                    Vec::new(),
                )
                .await?
                .as_bool()
                == Some(true),
            "the layout chosen in the view was replaced"
        );
        Ok(())
    })
    .await?;
    app.close().await
}
