//! History end to end: a conversation is saved as it happens, is listed in
//! the sidebar, survives an app restart, and is found by full-text search.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_mock::{MockServer, MockUsage, Scenario};
use switchboard_protocol::format_usd;
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::mock_home;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_reopens_after_a_restart_and_is_found_by_search() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let usage = MockUsage {
        input: 1000,
        cached_input: 0,
        output: 500,
        reasoning: 0,
    };
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["Quokkas are small ", "marsupials from ", "Rottnest Island."])
            .with_usage(usage),
    );
    let home = mock_home(&server)?;
    // 1000 × $2.50/M + 500 × $10/M = $0.0075
    let cost = format_usd(7_500_000);

    let app = App::launch(Launch::new("history-1").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#conversations-empty").await?;
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Tell me about quokkas\u{E007}")
            .await?;
        app.wait_for(".pane:nth-of-type(1) .answer-card[data-status=\"done\"]")
            .await?;
        // Listed once the answer is saved.
        app.wait_for_content("#history-list .history-title", |t| {
            t == "Tell me about quokkas"
        })
        .await?;
        app.wait_for_content("#history-list .history-meta", |t| {
            t.contains("2 messages") && t.contains(&cost)
        })
        .await?;
        Ok(())
    })
    .await?;
    app.close().await?;

    let app = App::launch(Launch::new("history-2").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for_content("#history-list .history-title", |t| {
            t == "Tell me about quokkas"
        })
        .await?;
        app.click("#history-list .history-open").await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for(&format!("{card}[data-status=\"done\"]"))
            .await?;
        assert_eq!(
            app.text(&format!("{card} .prompt-bubble")).await?,
            "Tell me about quokkas"
        );
        assert_eq!(
            app.text(&format!("{card} .answer-text")).await?,
            "Quokkas are small marsupials from Rottnest Island."
        );
        assert_eq!(app.text(&format!("{card} [data-ro=cost]")).await?, cost);
        assert_eq!(
            app.text(&format!("{card} [data-ro=tokens]")).await?,
            "1000 in / 500 out"
        );
        assert_eq!(
            app.text_content(".pane:nth-of-type(1) .picker-model")
                .await?
                .as_deref(),
            Some("oa-model")
        );
        assert_eq!(
            app.text_content(".pane:nth-of-type(1) .picker-provider")
                .await?
                .as_deref(),
            Some("oa")
        );

        // Full-text search finds it, with the match highlighted.
        app.type_into("#history-search", "marsupials").await?;
        let snippet = app
            .wait_for_content("#search-results .search-hit mark", |t| !t.is_empty())
            .await?;
        assert_eq!(snippet.to_lowercase(), "marsupials");
        app.click("#compare #new-conversation").await?;
        app.click("#search-results .search-hit .history-open")
            .await?;
        app.wait_for(&format!("{card}[data-status=\"done\"]"))
            .await?;
        app.screenshot("reopened").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incognito_conversations_leave_no_history() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_text(&["secret ", "plans"]),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("incognito").data_dir(home.path())).await?;
    app.check(async {
        app.click("#incognito").await?;
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Keep this between us\u{E007}")
            .await?;
        app.wait_for(".pane:nth-of-type(1) .answer-card[data-status=\"done\"]")
            .await?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(
            app.text_content("#history-list").await?.is_none(),
            "an incognito conversation was listed"
        );
        app.wait_for("#conversations-empty").await?;
        Ok(())
    })
    .await?;
    app.close().await?;
    let db = std::fs::read(home.path().join("switchboard.sqlite3")).unwrap_or_default();
    let wal = std::fs::read(home.path().join("switchboard.sqlite3-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(12).any(|w| w == b"secret plans"),
            "incognito text reached the database"
        );
    }
    Ok(())
}
