//! The compare view's conversation in the real window (mock providers):
//! "Continue with this", an added and a removed pane, and a reopen from the
//! sidebar keep every pane on its own model and thread, down to what each
//! mock provider is sent; Esc is the compare view's own; Stop works from
//! the instant Send is pressed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_mock::{MockServer, Scenario};
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::{mock_home, request_turns};

fn turns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(r, t)| ((*r).to_owned(), (*t).to_owned()))
        .collect()
}

/// The model a recorded generation request named (Gemini names it in the
/// path).
fn model_of(r: &switchboard_mock::RecordedRequest) -> String {
    r.body
        .as_ref()
        .and_then(|b| b.get("model"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            r.path
                .split("/models/")
                .nth(1)
                .and_then(|p| p.split(':').next())
                .unwrap_or_default()
                .to_owned()
        })
}

/// The texts of the answer cards of pane `pane` (1-based), `own` ones or
/// inherited ones.
async fn card_texts(app: &App, pane: usize, inherited: bool) -> anyhow::Result<Vec<String>> {
    let v = app
        .client()
        .execute(
            "return [...document.querySelectorAll(`.pane:nth-of-type(${arguments[0]}) .answer-card`)] \
               .filter(c => c.classList.contains('inherited') === arguments[1]) \
               .map(c => c.querySelector('.answer-text').textContent.trim())",
            vec![Value::from(pane), Value::from(inherited)],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

async fn pane_count(app: &App) -> anyhow::Result<u64> {
    let v = app
        .client()
        .execute("return document.querySelectorAll('.pane').length", vec![])
        .await?;
    Ok(v.as_u64().unwrap_or(0))
}

async fn wait_for_panes(app: &App, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pane_count(app).await? != n {
        anyhow::ensure!(Instant::now() < deadline, "never {n} panes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn model_in(app: &App, pane: usize) -> anyhow::Result<String> {
    app.text(&format!(".pane:nth-of-type({pane}) .picker-model"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_with_a_removed_pane_and_a_reopen_keep_every_model_on_its_thread()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let script = |model: &str, text: &str| {
        server.script(model, Scenario::default().with_text(&[text]));
    };
    script("oa-model", "OpenAI one");
    script("an-model", "Anthropic one");
    script("gm-model", "Gemini one");
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("reopen").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.click("#add-pane").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.pick_model(3, "gm-model").await?;
        app.type_into("#composer", "First question\u{E007}").await?;
        for pane in 1..=3 {
            app.wait_for(&format!(
                ".pane:nth-of-type({pane}) .answer-card[data-status=\"done\"]"
            ))
            .await?;
        }

        // Continue with Gemini's answer: only its pane stays.
        app.click(".pane:nth-of-type(3) .answer-card .continue").await?;
        wait_for_panes(&app, 1).await?;
        assert_eq!(model_in(&app, 1).await?, "gm-model");
        assert!(
            app.text_content(".pane:nth-of-type(1) .answer-card.chosen")
                .await?
                .is_some(),
            "the chosen answer is marked"
        );
        script("gm-model", "Gemini two");
        app.type_into("#composer", "Second question\u{E007}").await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while card_texts(&app, 1, false).await? != ["Gemini one", "Gemini two"] {
            anyhow::ensure!(Instant::now() < deadline, "round two never ended");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Two panes added (they continue Gemini's thread), one removed.
        app.click("#add-pane").await?;
        app.pick_model(2, "an-model").await?;
        app.click("#add-pane").await?;
        app.pick_model(3, "oa-model").await?;
        app.click(".pane:nth-of-type(2) .remove-pane").await?;
        wait_for_panes(&app, 2).await?;
        // The layout is saved once changes settle.
        tokio::time::sleep(Duration::from_millis(800)).await;

        // Start over, then open the conversation from the sidebar.
        app.click("#new-conversation").await?;
        wait_for_panes(&app, 2).await?;
        assert!(card_texts(&app, 1, false).await?.is_empty());
        app.click("#history-list .history-item .history-open").await?;
        app.wait_for_content(".pane:nth-of-type(1) .answer-card", |_| true)
            .await?;
        wait_for_panes(&app, 2).await?;
        assert_eq!(model_in(&app, 1).await?, "gm-model");
        assert_eq!(model_in(&app, 2).await?, "oa-model");
        assert_eq!(
            card_texts(&app, 1, false).await?,
            ["Gemini one", "Gemini two"],
            "Gemini's pane shows Gemini's answers"
        );
        assert!(card_texts(&app, 2, false).await?.is_empty());
        assert_eq!(
            card_texts(&app, 2, true).await?,
            ["Gemini one", "Gemini two"],
            "the added pane shows the thread it continues, marked as inherited"
        );
        app.screenshot("reopened").await?;

        // The next prompt: each model is sent the chosen (Gemini) thread,
        // never OpenAI's or Anthropic's first answers.
        script("gm-model", "Gemini three");
        script("oa-model", "OpenAI three");
        let before = server.requests().len();
        app.type_into("#composer", "Third question\u{E007}").await?;
        for pane in 1..=2 {
            app.wait_for(&format!(
                ".pane:nth-of-type({pane}) .answer-card:not(.inherited):last-child[data-status=\"done\"]"
            ))
            .await?;
        }
        let thread = turns(&[
            ("user", "First question"),
            ("assistant", "Gemini one"),
            ("user", "Second question"),
            ("assistant", "Gemini two"),
            ("user", "Third question"),
        ]);
        let sent: Vec<(String, Vec<(String, String)>)> = server.requests()[before..]
            .iter()
            .filter_map(|r| r.body.as_ref().map(|b| (model_of(r), request_turns(b))))
            .collect();
        assert_eq!(sent.len(), 2, "{sent:?}");
        for model in ["gm-model", "oa-model"] {
            let got = sent.iter().find(|(m, _)| m == model).map(|(_, t)| t);
            assert_eq!(got, Some(&thread), "{model} was sent {got:?}");
        }
        assert_eq!(
            card_texts(&app, 1, false).await?,
            ["Gemini one", "Gemini two", "Gemini three"]
        );
        assert_eq!(card_texts(&app, 2, false).await?, ["OpenAI three"]);
        Ok(())
    })
    .await?;
    app.close().await
}

/// Open the conversation titled `title` from the sidebar, and wait until
/// the first pane shows its one answer, `answer`.
async fn open_titled(app: &App, title: &str, answer: &str) -> anyhow::Result<()> {
    app.wait_for("#history-list .history-item").await?;
    app.client()
        .execute(
            "[...document.querySelectorAll('#history-list .history-item')] \
               .find(i => i.querySelector('.history-title').textContent === arguments[0]) \
               .querySelector('.history-open').click()",
            vec![Value::from(title)],
        )
        .await?;
    app.wait_for_content("#conversation-title", |t| t == title)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while card_texts(app, 1, false).await? != [answer] {
        anyhow::ensure!(Instant::now() < deadline, "{title} never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// "New" keeps the panes (and their keys), so two conversations can hold
/// panes with the same key but different models: opening one after the
/// other must show, and send to, each one's own models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_sharing_pane_keys_each_reopen_with_their_own_models() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_text(&["OpenAI answer"]),
    );
    server.script(
        "an-model",
        Scenario::default().with_text(&["Anthropic answer"]),
    );
    server.script(
        "gm-model",
        Scenario::default().with_text(&["Gemini answer"]),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("same-keys").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.type_into("#composer", "Question A\u{E007}").await?;
        app.wait_for(".pane:nth-of-type(2) .answer-card[data-status=\"done\"]")
            .await?;
        app.wait_for(".pane:nth-of-type(1) .answer-card[data-status=\"done\"]")
            .await?;
        // A second conversation with the same panes, the first on Gemini.
        app.click("#new-conversation").await?;
        app.pick_model(1, "gm-model").await?;
        app.type_into("#composer", "Question B\u{E007}").await?;
        app.wait_for(".pane:nth-of-type(2) .answer-card[data-status=\"done\"]")
            .await?;
        app.wait_for(".pane:nth-of-type(1) .answer-card[data-status=\"done\"]")
            .await?;
        assert_eq!(card_texts(&app, 1, false).await?, ["Gemini answer"]);

        open_titled(&app, "Question A", "OpenAI answer").await?;
        assert_eq!(
            model_in(&app, 1).await?,
            "oa-model",
            "pane 1 names A's model"
        );
        assert_eq!(model_in(&app, 2).await?, "an-model");

        // The model picked in the header is the one asked.
        app.pick_model(1, "gm-model").await?;
        let before = server.requests().len();
        app.type_into("#composer", "Question A2\u{E007}").await?;
        // The second round's cards: until the budget check before the
        // send has answered, the first round's are the last, and done.
        for pane in 1..=2 {
            app.wait_for(&format!(
                ".pane:nth-of-type({pane}) .answer-card:nth-of-type(2)[data-status=\"done\"]"
            ))
            .await?;
        }
        let mut asked: Vec<String> = server.requests()[before..]
            .iter()
            .filter(|r| r.body.is_some())
            .map(model_of)
            .collect();
        asked.sort();
        assert_eq!(asked, ["an-model", "gm-model"]);

        open_titled(&app, "Question B", "Gemini answer").await?;
        assert_eq!(model_in(&app, 1).await?, "gm-model");
        assert_eq!(model_in(&app, 2).await?, "an-model");
        Ok(())
    })
    .await?;
    app.close().await
}

/// A slow answer: `n` pieces, `gap` apart.
fn slow(n: usize, gap: Duration) -> Scenario {
    let pieces: Vec<String> = (0..n).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    Scenario::default().with_text(&refs).with_gap(gap)
}

async fn statuses(app: &App) -> anyhow::Result<Vec<String>> {
    let v = app
        .client()
        .execute(
            "return [...document.querySelectorAll('.answer-card')].map(c => c.dataset.status)",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esc_in_the_history_search_leaves_streams_running_esc_in_the_composer_stops_them()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script("oa-model", slow(400, Duration::from_millis(25)));
    server.script("an-model", slow(400, Duration::from_millis(25)));
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("esc").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.type_into("#composer", "Stream slowly\u{E007}").await?;
        app.wait_for_content(".pane:nth-of-type(2) .answer-text", |t| t.contains("w3"))
            .await?;

        // Esc typed into the history search is the search box's.
        let search = app.wait_for("#history-search").await?;
        search.click().await?;
        search.send_keys("\u{E00C}").await?;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(statuses(&app).await?, ["streaming", "streaming"]);
        let shown = app
            .text_content(".pane:nth-of-type(1) .answer-text")
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_ne!(
            app.text_content(".pane:nth-of-type(1) .answer-text")
                .await?,
            shown,
            "still streaming"
        );

        // Esc in the composer stops both, keeping what arrived.
        let composer = app.wait_for("#composer").await?;
        composer.click().await?;
        composer.send_keys("\u{E00C}").await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while statuses(&app).await? != ["failed", "failed"] {
            anyhow::ensure!(Instant::now() < deadline, "Esc did not stop the streams");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for pane in 1..=2 {
            let base = format!(".pane:nth-of-type({pane}) .answer-card");
            assert_eq!(
                app.text_content(&format!("{base} .error-kind"))
                    .await?
                    .as_deref(),
                Some("stopped")
            );
            let kept = app
                .text_content(&format!("{base} .answer-text"))
                .await?
                .unwrap_or_default();
            assert!(kept.starts_with("w0 w1 w2"), "the text is kept: {kept}");
        }
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_right_after_send_stops_the_request() -> anyhow::Result<()> {
    // The first token is far away, so "stopped" can only come from Stop;
    // the bounds below are generous (a loaded machine is slow to draw and
    // click), what is asserted is the outcome a person sees.
    let first_token = Duration::from_secs(60);
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default()
            .with_ttft(first_token)
            .with_text(&["too ", "late"]),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("stop-early").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Never mind").await?;
        // Send, then Stop as soon as the pane's Stop button exists (the
        // same moment a person could press it).
        let clicked = app
            .run_async(
                "const done = arguments[arguments.length - 1]; \
                 document.querySelector('#send').click(); \
                 const t0 = performance.now(); \
                 (function poll() { \
                   const b = document.querySelector('.pane:nth-of-type(1) .answer-card .stop'); \
                   if (b) { b.click(); done(performance.now() - t0); } \
                   else if (performance.now() - t0 > 20000) done(-1); \
                   else setTimeout(poll, 0); \
                 })();",
            )
            .await?;
        let after_ms = clicked.as_f64().unwrap_or(-1.0);
        assert!(after_ms >= 0.0, "no Stop button within 20 s of Send");
        let started = Instant::now();
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for(&format!("{card}[data-status=\"failed\"]"))
            .await?;
        // Stopped, not timed out or answered: well before the first token.
        assert!(
            started.elapsed() < first_token / 2,
            "the request ran on for {:?}",
            started.elapsed()
        );
        assert_eq!(
            app.text_content(&format!("{card} .error-kind"))
                .await?
                .as_deref(),
            Some("stopped")
        );
        assert_eq!(
            app.text_content(&format!("{card} .answer-text"))
                .await?
                .unwrap_or_default(),
            "",
            "nothing arrived"
        );
        // The stream stopped for good: no Stop button, and nothing more
        // arrives in the card.
        assert!(
            app.client()
                .find_all(fantoccini::Locator::Css(&format!("{card} .stop")))
                .await?
                .is_empty(),
            "Stop is still offered"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            app.text_content(&format!("{card} .answer-text"))
                .await?
                .unwrap_or_default(),
            ""
        );
        Ok(())
    })
    .await?;
    app.close().await
}
