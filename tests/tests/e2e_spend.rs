//! Spend and budgets end to end: the real app under Xvfb, answers from
//! mock providers with known usage and prices, then the spend page (totals
//! equal to the exact sum of the answers' costs, the table, tags, both
//! themes), a budget set in its editor that stops the next request, and
//! an answer stopped mid-way, billed once and kept.

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

fn usage(input: u64, output: u64) -> MockUsage {
    MockUsage {
        input,
        cached_input: 0,
        output,
        reasoning: 0,
    }
}

/// Exact cost in nano-dollars for prices given in micro-dollars per Mtok.
fn nanos(u: MockUsage, input_micro: u64, output_micro: u64) -> i64 {
    i64::try_from((u.input * input_micro + u.output * output_micro + 500) / 1000).unwrap()
}

/// Nano-dollars as the decimal a user types (`0.001234567`).
fn decimal(n: i64) -> String {
    format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)
}

/// Send `prompt` and wait until every pane's answer to it is done.
async fn ask_and_wait(app: &App, prompt: &str, panes: usize, round: usize) -> anyhow::Result<()> {
    app.type_into("#composer", &format!("{prompt}\u{E007}"))
        .await?;
    for p in 1..=panes {
        app.wait_for(&format!(
            ".pane:nth-of-type({p}) .answer-card:nth-of-type({round})[data-status=\"done\"]"
        ))
        .await?;
    }
    Ok(())
}

/// Wait until `card` has failed, and say how (its error kind).
async fn failed_as(app: &App, card: &str) -> anyhow::Result<Option<String>> {
    app.wait_for(&format!("{card}[data-status=\"failed\"]"))
        .await?;
    app.text_content(&format!("{card} .error-kind")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spend_page_adds_up_the_answers_exactly_in_both_themes() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let (oa, an) = (usage(1234, 567), usage(2222, 333));
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["OpenAI ", "answer"])
            .with_usage(oa),
    );
    server.script(
        "an-model",
        Scenario::default()
            .with_text(&["Anthropic ", "answer"])
            .with_usage(an),
    );
    let (oa_cost, an_cost) = (
        nanos(oa, 2_500_000, 10_000_000),
        nanos(an, 3_000_000, 15_000_000),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("spend").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        // Tags typed before the first prompt are saved with the conversation.
        app.type_into("#conversation-tags", "acme\u{E004}").await?;
        ask_and_wait(&app, "First question", 2, 1).await?;
        ask_and_wait(&app, "Second question", 2, 2).await?;
        let total = 2 * (oa_cost + an_cost);
        assert_eq!(
            app.text("#conversation-total").await?,
            format!("Conversation: {}", format_usd(total))
        );

        app.click("#nav-spend").await?;
        for card in ["#spend-today", "#spend-week", "#spend-month"] {
            let shown = app
                .wait_for_content(&format!("{card} .spend-amount"), |t| !t.is_empty())
                .await?;
            assert_eq!(shown, format_usd(total), "{card}");
        }
        assert!(
            app.text("#spend-today .spend-card-meta")
                .await?
                .starts_with("4 requests"),
        );
        // The table, by provider (the default): exact per-provider sums,
        // tokens, and performance from the answers' traces.
        let row = |key: &str, col: &str| format!("#spend-table tr[data-key=\"{key}\"] td[data-col=\"{col}\"]");
        assert_eq!(app.text(&row("oa", "cost")).await?, format_usd(2 * oa_cost));
        assert_eq!(app.text(&row("an", "cost")).await?, format_usd(2 * an_cost));
        assert_eq!(app.text(&row("oa", "requests")).await?, "2");
        assert_eq!(app.text(&row("oa", "input")).await?, "2468");
        assert_eq!(app.text(&row("an", "output")).await?, "666");
        assert_eq!(app.text(&row("oa", "avg-cost")).await?, format_usd(oa_cost));
        assert_eq!(app.text(&row("oa", "errors")).await?, "0.0%");
        assert!(app.text(&row("oa", "ttft")).await?.ends_with(" ms"));
        // The chart has a bar segment per provider today, with tooltips.
        let segments = app
            .run_async(
                "const done = arguments[arguments.length - 1]; \
                 done([...document.querySelectorAll('#spend-chart svg rect.seg title')].map(t => t.textContent));",
            )
            .await?;
        let segments: Vec<String> = serde_json::from_value(segments)?;
        assert_eq!(segments.len(), 2, "{segments:?}");
        assert!(
            segments.iter().any(|s| s.ends_with(&format!("oa: {}", format_usd(2 * oa_cost)))),
            "{segments:?}"
        );
        // Clicking a row filters the chart to that group.
        app.click("#spend-table tr[data-key=\"an\"] td.group").await?;
        app.wait_for_content("#chart-filter", |t| t.contains("Showing only an"))
            .await?;
        let shown = app
            .run_async(
                "const done = arguments[arguments.length - 1]; \
                 done(document.querySelectorAll('#spend-chart svg rect.seg').length);",
            )
            .await?;
        assert_eq!(shown, 1, "only the selected group is drawn");
        app.screenshot("dark").await?;
        // By tag: the conversation's tag carries all of it.
        app.click("#by-tag").await?;
        app.wait_for_content(&row("acme", "cost"), |t| t == format_usd(total))
            .await?;
        app.click("#by-provider").await?;
        app.wait_for("#spend-table tr[data-key=\"oa\"]").await?;
        // The status bar refreshes on its own tick: it catches up.
        let today = format!("Today {}", format_usd(total));
        app.wait_for_content("#status-spend", |t| t == today).await?;

        app.click("#theme-toggle").await?;
        app.wait_for(":root[data-theme=\"light\"]").await?;
        app.screenshot("light").await?;

        // The ledger as CSV for today.
        app.click("#export-csv").await?;
        let saved = app.wait_for_content("#export-path", |t| t.starts_with("Saved to ")).await?;
        let path = saved.trim_start_matches("Saved to ");
        assert!(path.starts_with(&home.path().join("exports").display().to_string()), "{path}");
        let csv = std::fs::read_to_string(path)?;
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5, "a header and four answers: {csv}");
        let sum: i64 = lines[1..]
            .iter()
            .map(|l| l.split(',').nth(9).unwrap().parse::<i64>().unwrap())
            .sum();
        assert_eq!(sum, total);
        assert!(lines[1..].iter().all(|l| l.contains(",acme,")), "{csv}");

        // The tags come back with the conversation.
        app.click("#nav-compare").await?;
        app.click("#new-conversation").await?;
        app.wait_for_content("#conversation-total", str::is_empty)
            .await?;
        app.run_async(
            "const done = arguments[arguments.length - 1]; \
             document.querySelector('#history-list .history-open').click(); done(1);",
        )
        .await?;
        app.wait_for(".pane:nth-of-type(2) .answer-card:nth-of-type(2)[data-status=\"done\"]")
            .await?;
        let tags = app
            .run_async(
                "const done = arguments[arguments.length - 1]; \
                 done(document.querySelector('#conversation-tags').value);",
            )
            .await?;
        assert_eq!(tags, "acme");
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_set_in_the_editor_blocks_the_next_request_over_it() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let oa = usage(1000, 200);
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["Within ", "budget"])
            .with_usage(oa),
    );
    let cost = nanos(oa, 2_500_000, 10_000_000);
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("budget").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        ask_and_wait(&app, "Hello", 1, 1).await?;

        // A daily budget with a tenth of a cent of room: the next request
        // may cost about a cent (1,024 output tokens at $10/Mtok).
        app.click("#nav-spend").await?;
        app.wait_for_content("#spend-today .spend-amount", |t| t == format_usd(cost))
            .await?;
        app.type_into("#budget-name", "daily-cap").await?;
        app.wait_for("#budget-period")
            .await?
            .select_by_value("daily")
            .await?;
        app.type_into("#budget-limit", &decimal(cost + 1_000_000))
            .await?;
        app.click("#budget-save").await?;
        let card = ".budget[data-budget=\"daily-cap\"]";
        let summary = app
            .wait_for_content(&format!("{card} .budget-summary"), |t| !t.is_empty())
            .await?;
        assert!(
            summary.starts_with(&format!(
                "{} of {}",
                format_usd(cost),
                format_usd(cost + 1_000_000)
            )),
            "{summary}"
        );
        assert!(
            summary.ends_with(&format!("{} left", format_usd(1_000_000))),
            "{summary}"
        );
        assert!(
            app.text(&format!("{card} .budget-effect"))
                .await?
                .starts_with("Hard stop")
        );
        let saved = std::fs::read_to_string(home.path().join("config.toml"))?;
        assert!(saved.contains("[budgets.daily-cap]"), "{saved}");
        assert!(saved.contains("period = \"daily\""), "{saved}");
        app.wait_for_content("#status-budget", |t| t.contains("daily-cap"))
            .await?;

        app.click("#nav-compare").await?;
        // The budget is named before anything is sent, and the user decides.
        app.type_into("#composer", "One more\u{E007}").await?;
        let notice = app
            .wait_for_content("#budget-confirm", |t| t.contains("daily-cap"))
            .await?;
        assert!(notice.contains("Pane 1 (oa:oa-model)"), "{notice}");
        assert!(notice.contains("blocked"), "{notice}");
        app.click("#send-cancel").await?;
        let kept = app
            .client()
            .execute("return document.querySelector('#composer').value", vec![])
            .await?;
        assert_eq!(
            kept,
            serde_json::json!("One more"),
            "a cancelled prompt stays"
        );
        assert!(
            app.text_content(".pane:nth-of-type(1) .answer-card:nth-of-type(2)")
                .await?
                .is_none(),
            "nothing was sent"
        );
        app.click("#send").await?;
        app.wait_for_content("#budget-confirm", |t| t.contains("daily-cap"))
            .await?;
        app.click("#send-anyway").await?;
        let second = ".pane:nth-of-type(1) .answer-card:nth-of-type(2)";
        assert_eq!(failed_as(&app, second).await?.as_deref(), Some("budget"));
        let message = app
            .text_content(&format!("{second} .pane-error-message"))
            .await?
            .unwrap_or_default();
        assert!(message.contains("\"daily-cap\""), "{message}");
        assert_eq!(
            server.hits("oa-model"),
            1,
            "the refused request was never sent"
        );
        app.screenshot("blocked").await?;

        // Deleting the budget asks first.
        app.click("#nav-spend").await?;
        app.click(&format!("{card} .budget-delete")).await?;
        app.wait_for(&format!("{card} .confirm-yes")).await?;
        let still = std::fs::read_to_string(home.path().join("config.toml"))?;
        assert!(
            still.contains("[budgets.daily-cap]"),
            "not deleted before Yes"
        );
        app.click(&format!("{card} .confirm-yes")).await?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(home.path().join("config.toml"))?
            .contains("[budgets.daily-cap]")
        {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the budget was not deleted"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    })
    .await?;
    app.close().await
}

/// Stop pressed mid-answer, then the money and the text checked the way a
/// user would: the card says stopped and shows an estimated cost for what
/// arrived; the Spend page has that request at exactly that cost; and the
/// conversation, reopened from history, still has the text and the stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_answer_is_billed_once_on_the_spend_page_and_kept_in_history()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    // Four characters a piece: the engine estimates each as one token.
    let pieces = switchboard_tests::pieces(400, ' ');
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(std::time::Duration::from_millis(25)),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("stop-then-spend").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Stream slowly\u{E007}").await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for_content(&format!("{card} .answer-text"), |t| t.contains("005 "))
            .await?;
        // Pressed in the page: the pane follows the stream, so a pointer
        // click aimed after scrolling the button into view can land on
        // the text that has moved under it.
        app.client()
            .execute(
                "document.querySelector(arguments[0]).click()",
                vec![serde_json::Value::String(format!("{card} .stop"))],
            )
            .await?;
        assert_eq!(failed_as(&app, card).await?.as_deref(), Some("stopped"));
        let kept = app.text(&format!("{card} .answer-text")).await?;
        assert!(kept.starts_with("000 001 002 003 004 005"), "{kept}");
        assert!(!kept.contains("399"), "stopped before the end: {kept}");
        // No usage came: the cost is an estimate for what arrived.
        let cost = app.text(&format!("{card} [data-ro=cost]")).await?;
        let amount = cost
            .strip_prefix("est. ")
            .unwrap_or_else(|| panic!("not labelled an estimate: {cost}"))
            .to_owned();
        assert_eq!(
            app.text("#conversation-total").await?,
            format!("Conversation: {amount} (incl. est.)")
        );

        // The ledger has it once, at that cost: one token a piece shown,
        // at the model's prices.
        app.click("#nav-spend").await?;
        let today = app
            .wait_for_content("#spend-today .spend-amount", |t| !t.is_empty())
            .await?;
        assert_eq!(today, amount, "the ledger has the card's cost");
        let row = |col: &str| format!("#spend-table tr[data-key=\"oa\"] td[data-col=\"{col}\"]");
        assert_eq!(app.text(&row("requests")).await?, "1", "billed once");
        let output: u64 = app.text(&row("output")).await?.parse()?;
        assert_eq!(output, kept.split_whitespace().count() as u64, "{kept}");
        let input: u64 = app.text(&row("input")).await?.parse()?;
        assert_eq!(
            amount,
            format_usd(nanos(usage(input, output), 2_500_000, 10_000_000))
        );

        app.click("#nav-compare").await?;
        app.click("#new-conversation").await?;
        app.click("#history-list .history-item .history-open")
            .await?;
        assert_eq!(failed_as(&app, card).await?.as_deref(), Some("stopped"));
        assert_eq!(app.text(&format!("{card} .answer-text")).await?, kept);
        assert_eq!(app.text(&format!("{card} [data-ro=cost]")).await?, cost);
        Ok(())
    })
    .await?;
    app.close().await
}
