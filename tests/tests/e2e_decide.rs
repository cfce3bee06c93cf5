//! Deciding between answers in the real window: "Diff with…" marks the
//! word that changed between two panes' answers, inline and side by side,
//! in both themes, and again after the conversation is reopened from
//! history; a blind round, its vote and the leaderboard; a judge's verdict
//! and its cost; a reopened conversation with its vote and verdict. With
//! `SWITCHBOARD_README_SCREENSHOTS=1` (`make screenshots`) the diff, blind
//! mode and the leaderboard, in both themes, replace the README's pictures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_mock::{MockServer, Scenario};
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::mock_home;

async fn diff_with_pane_2(app: &App) -> anyhow::Result<()> {
    let select = ".pane:nth-of-type(1) .answer-card select.diff-with";
    app.wait_for(select).await?;
    // Chosen as the page sees a choice (value, then `change`): WebKitWebDriver
    // does not always click an <option> of a select below a code block.
    let chosen = app
        .client()
        .execute(
            "const s = document.querySelector(arguments[0]); \
             const key = document.querySelector('.pane:nth-of-type(2)').dataset.pane; \
             s.value = key; s.dispatchEvent(new Event('change', {bubbles: true})); return s.value === key;",
            vec![serde_json::Value::String(select.to_owned())],
        )
        .await?;
    anyhow::ensure!(
        chosen == serde_json::json!(true),
        "pane 2 is not offered under \"Diff with…\""
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_highlights_the_changed_word_inline_and_side_by_side() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_text(&["The sky is ", "blue today.\n\n```\nlet x = 1;\n```\n"]),
    );
    server.script(
        "an-model",
        Scenario::default().with_text(&["The sky is ", "grey today.\n\n```\nlet x = 2;\n```\n"]),
    );
    server.script(
        "gm-model",
        Scenario::default().with_text(&["The sky is blue today."]),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("decide-diff").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.type_into("#composer", "What colour is the sky?\u{E007}")
            .await?;
        for n in 1..=2 {
            app.wait_for(&format!(
                ".pane:nth-of-type({n}) .answer-card[data-status=\"done\"]"
            ))
            .await?;
        }
        diff_with_pane_2(&app).await?;
        let panel = ".pane:nth-of-type(1) .diff-panel";
        app.wait_for_text(&format!("{panel} .diff-inline del.diff-del"), |t| t == "blue")
            .await?;
        assert_eq!(
            app.text(&format!("{panel} .diff-inline ins.diff-ins")).await?,
            "grey"
        );
        // The code line is marked as a whole line, monospaced.
        let code = app
            .client()
            .execute(
                "return [...document.querySelectorAll('.pane:nth-of-type(1) .diff-panel .diff-code')]\
                 .filter(e => e.tagName !== 'CODE').map(e => e.textContent)",
                vec![],
            )
            .await
            .map_err(|e| anyhow::anyhow!("reading the code segments: {e}"))?;
        assert_eq!(code, serde_json::json!(["let x = 1;\n", "let x = 2;\n"]));
        app.screenshot("diff-inline-dark").await?;

        app.click(&format!("{panel} .diff-side-btn")).await?;
        app.wait_for_text(&format!("{panel} .diff-left del.diff-del"), |t| t == "blue")
            .await?;
        assert_eq!(
            app.text(&format!("{panel} .diff-right ins.diff-ins")).await?,
            "grey"
        );
        let left_has_ins = app
            .client()
            .execute(
                "return document.querySelector('.pane:nth-of-type(1) .diff-left ins') !== null",
                vec![],
            )
            .await?;
        assert_eq!(left_has_ins, serde_json::json!(false));
        app.readme_screenshot("diff-side-dark").await?;
        app.click("#theme-toggle").await?;
        app.readme_screenshot("diff-side-light").await?;
        app.click(&format!("{panel} .diff-close")).await?;

        // Reopened from history, the same diff.
        app.click("#new-conversation").await?;
        app.click("#history-list .history-item .history-open").await?;
        app.wait_for(".pane:nth-of-type(2) .answer-card[data-status=\"done\"]")
            .await?;
        diff_with_pane_2(&app).await?;
        app.wait_for_text(&format!("{panel} del.diff-del"), |t| t == "blue")
            .await?;
        app.screenshot("diff-reopened-light").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_answers_say_so() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    for m in ["oa-model", "an-model"] {
        server.script(m, Scenario::default().with_text(&["Same ", "words."]));
    }
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("decide-identical").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.type_into("#composer", "Say it\u{E007}").await?;
        for n in 1..=2 {
            app.wait_for(&format!(
                ".pane:nth-of-type({n}) .answer-card[data-status=\"done\"]"
            ))
            .await?;
        }
        diff_with_pane_2(&app).await?;
        app.wait_for_text(".pane:nth-of-type(1) .diff-panel .diff-identical", |t| {
            t == "The answers are identical."
        })
        .await?;
        Ok(())
    })
    .await?;
    app.close().await
}

async fn displayed(app: &App, css: &str) -> anyhow::Result<bool> {
    let v = app
        .client()
        .execute(
            "const e = document.querySelector(arguments[0]); \
             if (!e) return false; const s = getComputedStyle(e); \
             return e.getClientRects().length > 0 && s.visibility !== 'hidden';",
            vec![serde_json::Value::String(css.to_owned())],
        )
        .await?;
    Ok(v == serde_json::json!(true))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_round_hides_names_until_the_vote_and_the_leaderboard_shows_the_winner()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_text(&["Answer ", "one."]),
    );
    server.script(
        "an-model",
        Scenario::default().with_text(&["Answer ", "two."]),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("decide-blind").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.click("#blind-toggle").await?;
        // Names are hidden before the prompt is even sent.
        assert!(!displayed(&app, ".pane:nth-of-type(1) .pane-head .picker").await?);
        assert!(displayed(&app, ".pane:nth-of-type(1) .blind-name").await?);
        app.type_into("#composer", "Which is better?\u{E007}")
            .await?;
        for n in 1..=2 {
            app.wait_for(&format!(
                ".pane:nth-of-type({n}) .answer-card[data-status=\"done\"]"
            ))
            .await?;
        }
        app.wait_for(".pane:nth-of-type(1) .vote-best").await?;
        for n in 1..=2 {
            let card = format!(".pane:nth-of-type({n}) .answer-card");
            assert!(
                !displayed(&app, &format!("{card} .readouts")).await?,
                "pane {n}"
            );
            assert!(!displayed(&app, &format!(".pane:nth-of-type({n}) .pane-head .picker")).await?);
        }
        assert!(!displayed(&app, "#conversation-total").await?);
        let visible = app.text(".panes").await?;
        assert!(
            !visible.contains("oa-model") && !visible.contains("an-model"),
            "no model name on screen: {visible}"
        );
        app.readme_screenshot("blind-dark").await?;
        app.click("#theme-toggle").await?;
        assert!(!displayed(&app, ".pane:nth-of-type(1) .answer-card .readouts").await?);
        app.readme_screenshot("blind-light").await?;
        app.click("#theme-toggle").await?;

        // Vote: the first pane's answer (oa-model) is best. Then all is revealed.
        app.click(".pane:nth-of-type(1) .vote-best").await?;
        app.wait_for_text(".pane:nth-of-type(1) .vote-result", |t| {
            t == "Your pick: best"
        })
        .await?;
        assert!(displayed(&app, ".pane:nth-of-type(1) .answer-card .readouts").await?);
        assert_eq!(
            app.text(".pane:nth-of-type(1) .ro-served").await?,
            "oa/oa-model"
        );
        assert!(displayed(&app, ".pane:nth-of-type(2) .pane-head .picker").await?);
        assert!(displayed(&app, "#conversation-total").await?);
        assert!(!displayed(&app, ".pane:nth-of-type(2) .vote-best").await?);
        app.screenshot("blind-revealed-dark").await?;

        // The vote is stored with the round, blind.
        let store = switchboard_engine::Store::open_at(&home.path().join("switchboard.sqlite3"))?;
        let votes = store.votes(switchboard_engine::ConversationId(1))?;
        assert_eq!(votes.len(), 1);
        assert!(votes[0].blind);
        assert_eq!(votes[0].verdict, switchboard_protocol::Verdict::Best);
        let winner = store.message(switchboard_engine::MessageId(votes[0].winner.unwrap()))?;
        assert_eq!(winner.model.as_deref(), Some("oa-model"));
        drop(store);

        // The leaderboard shows the winner first, marked as too few votes.
        app.click("#nav-leaderboard").await?;
        let first = leaderboard_first(&app).await?;
        assert_eq!(first, serde_json::json!("oa:oa-model"));
        assert_eq!(app.text("#leaderboard tr.lb-row .lb-wins").await?, "1");
        assert_eq!(
            app.text("#leaderboard tr.lb-row .lb-winrate").await?,
            "100%"
        );
        assert!(displayed(&app, "#leaderboard tr.lb-row .lb-few").await?);
        assert_eq!(
            app.text("#leaderboard-votes").await?,
            "1 blind vote counted"
        );
        app.readme_screenshot("leaderboard-dark").await?;
        app.click("#theme-toggle").await?;
        app.readme_screenshot("leaderboard-light").await?;
        // A tag no conversation has: nothing counted.
        app.type_into("#lb-tag", "nope\u{E007}").await?;
        app.wait_for("#leaderboard-empty").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

/// The model on the leaderboard's first row, once it shows one.
async fn leaderboard_first(app: &App) -> anyhow::Result<serde_json::Value> {
    app.wait_for("#leaderboard tr.lb-row").await?;
    Ok(app
        .client()
        .execute(
            "return document.querySelector('#leaderboard tr.lb-row').dataset.model",
            vec![],
        )
        .await?)
}

/// Exact cost in nano-dollars for prices in micro-dollars per Mtok.
fn nanos(input: u64, output: u64, input_micro: u64, output_micro: u64) -> i64 {
    i64::try_from((input * input_micro + output * output_micro + 500) / 1000).unwrap()
}

/// Pane 1 on oa-model and pane 2 on an-model answer `prompt`.
async fn two_answers(app: &App, prompt: &str) -> anyhow::Result<()> {
    app.wait_for("#compare").await?;
    app.pick_model(1, "oa-model").await?;
    app.pick_model(2, "an-model").await?;
    app.type_into("#composer", &format!("{prompt}\u{E007}"))
        .await?;
    for n in 1..=2 {
        app.wait_for(&format!(
            ".pane:nth-of-type({n}) .answer-card[data-status=\"done\"]"
        ))
        .await?;
    }
    Ok(())
}

/// Ask gm-model for a verdict on the newest round.
async fn start_gm_judge(app: &App) -> anyhow::Result<()> {
    app.click("#judge-panel summary").await?;
    app.type_into("#judge-target", "gm:gm-model").await?;
    app.click("#judge-ask").await?;
    Ok(())
}

/// Ask gm-model for a verdict on the newest round and wait for it.
async fn ask_gm_to_judge(app: &App) -> anyhow::Result<()> {
    start_gm_judge(app).await?;
    app.wait_for_text(".judge-result .judge-text", |t| {
        t.starts_with("Verdict: Answer A")
    })
    .await?;
    Ok(())
}

/// A mock where oa-model answers "Paris.", an-model "Lyon." and gm-model
/// (the judge) picks Answer A, all priced; returns the three costs.
async fn judge_scenario() -> anyhow::Result<(MockServer, i64, i64, i64)> {
    use switchboard_mock::MockUsage;
    let usage = |input, output| MockUsage {
        input,
        cached_input: 0,
        output,
        reasoning: 0,
    };
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["Paris."])
            .with_usage(usage(100, 10)),
    );
    server.script(
        "an-model",
        Scenario::default()
            .with_text(&["Lyon."])
            .with_usage(usage(100, 10)),
    );
    server.script(
        "gm-model",
        Scenario::default()
            .with_text(&["Verdict: Answer A\n", "- Paris is the capital."])
            .with_usage(usage(400, 20)),
    );
    let oa = nanos(100, 10, 2_500_000, 10_000_000);
    let an = nanos(100, 10, 3_000_000, 15_000_000);
    let judge = nanos(400, 20, 300_000, 2_500_000);
    Ok((server, oa, an, judge))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judges_verdict_shows_beside_the_panes_with_its_cost_in_the_total() -> anyhow::Result<()>
{
    use switchboard_protocol::format_usd;
    let (server, oa, an, judge) = judge_scenario().await?;
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("decide-judge").data_dir(home.path())).await?;
    app.check(async {
        two_answers(&app, "Capital of France?").await?;
        app.wait_for_text("#conversation-total", |t| {
            t == format!("Conversation: {}", format_usd(oa + an))
        })
        .await?;
        ask_gm_to_judge(&app).await?;
        assert_eq!(
            app.text(".judge-result .judge-cost").await?,
            format_usd(judge)
        );
        assert!(
            app.text(".judge-result .judge-labels")
                .await?
                .contains("Answer A = pane 1")
        );
        app.wait_for_text("#conversation-total", |t| {
            t == format!("Conversation: {}", format_usd(oa + an + judge))
        })
        .await?;
        app.screenshot("judge-dark").await?;
        // The judge was sent labels, not model names.
        let sent = server
            .requests()
            .iter()
            .filter(|r| r.path.contains("gm-model"))
            .filter_map(|r| r.body.as_ref().map(ToString::to_string))
            .collect::<Vec<_>>();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].contains("Answer A") && sent[0].contains("Paris."));
        assert!(!sent[0].contains("oa-model"));
        // Recorded with the round, in the conversation's total, not a vote.
        let store = switchboard_engine::Store::open_at(&home.path().join("switchboard.sqlite3"))?;
        let c = switchboard_engine::ConversationId(1);
        assert_eq!(store.judgments(c)?.len(), 1);
        assert!(store.votes(c)?.is_empty());
        assert_eq!(store.conversation(c)?.cost.nanos(), oa + an + judge);
        Ok(())
    })
    .await?;
    app.close().await
}

/// Decided in one sitting, reopened in the next: a voted round shows the
/// vote (names revealed, no vote buttons), the judge's verdict with its
/// cost and which pane each answer was, and a total that includes the
/// judge; the vote is then changed, and the leaderboard counts the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_conversation_shows_its_vote_and_verdict_and_counts_the_judge()
-> anyhow::Result<()> {
    use switchboard_protocol::format_usd;
    let (server, oa, an, judge) = judge_scenario().await?;
    let all = format!("Conversation: {}", format_usd(oa + an + judge));
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("decide-reopen").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.click("#blind-toggle").await?;
        app.type_into("#composer", "Capital of France?\u{E007}")
            .await?;
        app.wait_for(".pane:nth-of-type(1) .vote-best").await?;
        app.click(".pane:nth-of-type(1) .vote-best").await?;
        app.wait_for_text(".pane:nth-of-type(1) .vote-result", |t| {
            t == "Your pick: best"
        })
        .await?;
        ask_gm_to_judge(&app).await?;
        app.wait_for_text("#conversation-total", |t| t == all)
            .await?;

        // Start over (blind mode still on), then reopen from the sidebar.
        app.click("#new-conversation").await?;
        app.wait_for_content("#judge-results", str::is_empty)
            .await?;
        app.click("#history-list .history-item .history-open")
            .await?;
        app.wait_for(".pane:nth-of-type(2) .answer-card[data-status=\"done\"]")
            .await?;
        app.wait_for_text(".pane:nth-of-type(1) .vote-result", |t| {
            t == "Your pick: best"
        })
        .await?;
        for n in 1..=2 {
            assert!(
                !displayed(&app, &format!(".pane:nth-of-type({n}) .vote-best")).await?,
                "pane {n} offers a second vote"
            );
            assert!(
                displayed(
                    &app,
                    &format!(".pane:nth-of-type({n}) .answer-card .readouts")
                )
                .await?,
                "pane {n} still hides its readouts"
            );
        }
        assert!(displayed(&app, ".pane:nth-of-type(1) .pane-head .picker").await?);
        assert!(
            app.text(".judge-result .judge-text")
                .await?
                .starts_with("Verdict: Answer A")
        );
        assert_eq!(
            app.text(".judge-result .judge-cost").await?,
            format_usd(judge)
        );
        // Which pane (and model) each anonymous answer was, as it said live.
        assert_eq!(
            app.text(".judge-result .judge-labels").await?,
            "Answer A = pane 1 / oa-model · Answer B = pane 2 / an-model"
        );
        assert!(displayed(&app, "#conversation-total").await?);
        app.wait_for_text("#conversation-total", |t| t == all)
            .await?;
        // Reopening asked no model anything.
        assert_eq!(
            server
                .requests()
                .iter()
                .filter(|r| r.path.contains("gm-model"))
                .count(),
            1
        );

        // The vote is changed from the window: pane 2 was best after all.
        app.click(".pane:nth-of-type(1) .vote-change").await?;
        app.wait_for(".pane:nth-of-type(2) .vote-best").await?;
        app.click(".pane:nth-of-type(2) .vote-best").await?;
        app.wait_for_text(".pane:nth-of-type(2) .vote-result", |t| {
            t == "Your pick: best"
        })
        .await?;
        assert!(!displayed(&app, ".pane:nth-of-type(1) .vote-result").await?);
        assert!(!displayed(&app, ".pane:nth-of-type(1) .vote-best").await?);
        let store = switchboard_engine::Store::open_at(&home.path().join("switchboard.sqlite3"))?;
        let votes = store.votes(switchboard_engine::ConversationId(1))?;
        assert_eq!(votes.len(), 1);
        assert!(votes[0].blind, "the round was voted blind first");
        let winner = store.message(switchboard_engine::MessageId(votes[0].winner.unwrap()))?;
        assert_eq!(winner.model.as_deref(), Some("an-model"));
        // The leaderboard counts the latest vote, once.
        app.click("#nav-leaderboard").await?;
        let first = leaderboard_first(&app).await?;
        assert_eq!(first, serde_json::json!("an:an-model"));
        assert_eq!(
            app.text("#leaderboard-votes").await?,
            "1 blind vote counted"
        );
        Ok(())
    })
    .await?;
    app.close().await
}

/// A judge's text streams into its card; one that is taking too long is
/// stopped: what it wrote stays on screen, marked stopped, with the
/// (estimated) cost of what arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_running_judge_and_keeps_what_it_wrote() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script("oa-model", Scenario::default().with_text(&["Paris."]));
    server.script("an-model", Scenario::default().with_text(&["Lyon."]));
    let verdict = switchboard_tests::pieces(400, ' ');
    let refs: Vec<&str> = verdict.iter().map(String::as_str).collect();
    server.script(
        "gm-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(std::time::Duration::from_millis(25)),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("decide-judge-stop").data_dir(home.path())).await?;
    app.check(async {
        two_answers(&app, "Capital of France?").await?;
        start_gm_judge(&app).await?;
        app.wait_for("#judge-stop").await?;
        // Its text streams into its card while it runs.
        let streamed = app
            .wait_for_text("#judge-live .judge-text", |t| t.len() >= 12)
            .await?;
        assert!(verdict.concat().starts_with(&streamed), "{streamed:?}");
        assert!(displayed(&app, "#judge-stop").await?, "it is still running");
        assert!(!displayed(&app, ".judge-result").await?);
        app.click("#judge-stop").await?;
        let text = app
            .wait_for_text(".judge-result .judge-text", |t| !t.is_empty())
            .await?;
        assert!(verdict.concat().starts_with(&text));
        assert!(
            text.len() < verdict.concat().len(),
            "the judge ran to its end"
        );
        assert!(displayed(&app, ".judge-result .pane-error").await?);
        assert!(
            app.text(".judge-result .judge-cost")
                .await?
                .ends_with("est.")
        );
        assert!(
            app.text("#conversation-total")
                .await?
                .contains("(incl. est.)")
        );
        assert!(!displayed(&app, "#judge-stop").await?);
        let store = switchboard_engine::Store::open_at(&home.path().join("switchboard.sqlite3"))?;
        let judged = store.judgments(switchboard_engine::ConversationId(1))?;
        assert_eq!(judged.len(), 1);
        assert_eq!(judged[0].content, text);
        assert!(judged[0].cost_nanos.is_some_and(|n| n > 0));
        Ok(())
    })
    .await?;
    app.close().await
}
