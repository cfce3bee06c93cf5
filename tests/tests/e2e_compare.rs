//! The compare view end to end: the real app under Xvfb, three panes on
//! three mock providers (one per wire protocol), answers streaming side by
//! side with their own text, tokens and exact cost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Duration;

use switchboard_mock::{MockServer, MockUsage, Protocol, Scenario};
use switchboard_protocol::format_usd;
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::mock_providers_config;

/// Exact cost in nano-dollars for prices given in micro-dollars per Mtok.
fn nanos(u: MockUsage, input_micro: u64, output_micro: u64) -> i64 {
    i64::try_from((u.input * input_micro + u.output * output_micro + 500) / 1000).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_panes_stream_their_own_answers_with_tokens_and_cost() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let usage = |input, output| MockUsage {
        input,
        cached_input: 0,
        output,
        reasoning: 0,
    };
    let (oa, an, gm) = (usage(120, 30), usage(140, 45), usage(90, 60));
    let gap = Duration::from_millis(15);
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["**OpenAI** ", "says ", "bonjour"])
            .with_usage(oa)
            .with_gap(gap),
    );
    server.script(
        "an-model",
        Scenario::default()
            .with_text(&["Anthropic ", "says ", "hallo ", "🎉"])
            .with_usage(an)
            .with_gap(gap),
    );
    server.script(
        "gm-model",
        Scenario::default()
            .with_text(&["Gemini ", "says ", "ciao"])
            .with_usage(gm)
            .with_gap(gap),
    );
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        mock_providers_config(&server),
    )?;

    let app = App::launch(Launch::new("compare").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.click("#add-pane").await?;
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        app.pick_model(3, "gm-model").await?;
        app.type_into("#composer", "Say hello\u{E007}").await?;

        let expect = [
            (
                "OpenAI says bonjour",
                "oa/oa-model",
                oa,
                nanos(oa, 2_500_000, 10_000_000),
            ),
            (
                "Anthropic says hallo 🎉",
                "an/an-model",
                an,
                nanos(an, 3_000_000, 15_000_000),
            ),
            (
                "Gemini says ciao",
                "gm/gm-model",
                gm,
                nanos(gm, 300_000, 2_500_000),
            ),
        ];
        for (i, (text, served, u, cost)) in expect.iter().enumerate() {
            let base = format!(".pane:nth-of-type({}) .answer-card", i + 1);
            app.wait_for(&format!("{base}[data-status=\"done\"]"))
                .await?;
            assert_eq!(
                app.text(&format!("{base} .answer-text")).await?,
                *text,
                "pane {}",
                i + 1
            );
            assert_eq!(app.text(&format!("{base} .ro-served")).await?, *served);
            assert_eq!(
                app.text(&format!("{base} [data-ro=tokens]")).await?,
                format!("{} in / {} out", u.input, u.output)
            );
            assert_eq!(
                app.text(&format!("{base} [data-ro=cost]")).await?,
                format_usd(*cost)
            );
            let ttft = app.text(&format!("{base} [data-ro=ttft]")).await?;
            assert!(ttft.starts_with("TTFT ") && ttft.ends_with(" ms"), "{ttft}");
        }
        // Markdown is rendered once the answer is complete.
        app.wait_for(".pane:nth-of-type(1) .answer-text strong")
            .await?;
        let total: i64 = expect.iter().map(|e| e.3).sum();
        assert_eq!(
            app.text("#conversation-total").await?,
            format!("Conversation: {}", format_usd(total))
        );
        app.screenshot("three-panes").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_and_script_in_a_reply_render_as_inert_text() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let payload = [
        "<script>window.__pwned_script = 1</script>\n\n",
        "Inline <img src=\"x\" onerror=\"window.__pwned_img = 1\"> image\n\n",
        "A [click me](javascript:window.__pwned_link=1) link\n\n",
        "<a href=\"https://example.com\">out</a>",
    ];
    server.script("oa-model", Scenario::default().with_text(&payload));
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        mock_providers_config(&server),
    )?;
    let app = App::launch(Launch::new("inert").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Reply with HTML\u{E007}").await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for(&format!("{card}[data-status=\"done\"]")).await?;
        let shown = app.text(&format!("{card} .answer-text")).await?;
        assert!(shown.contains("<script>window.__pwned_script = 1</script>"), "{shown}");
        assert!(shown.contains("<img src=\"x\""), "{shown}");
        let probe = "const done = arguments[arguments.length - 1]; setTimeout(() => { \
            const a = document.querySelector('.pane .answer-text'); \
            done({ script: window.__pwned_script === 1, img: window.__pwned_img === 1, \
                   elements: a.querySelectorAll('script, img, iframe, [onerror]').length, \
                   hrefs: a.querySelectorAll('a[href]').length }); }, 500);";
        let result = app.run_async(probe).await?;
        assert_eq!(result["script"], false);
        assert_eq!(result["img"], false);
        assert_eq!(result["elements"], 0, "no live elements from the reply");
        assert_eq!(result["hrefs"], 0, "no link can navigate the app");
        app.click(&format!("{card} .md-link")).await?;
        let probe = "const done = arguments[arguments.length - 1]; done(window.__pwned_link === 1 || !document.getElementById('compare'));";
        assert_eq!(app.run_async(probe).await?, false, "clicking a link changed nothing");
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_provider_streams_every_piece_once_and_in_order() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let pieces: Vec<String> = (0..4000).map(|i| format!("{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    server.script(
        "oa-model",
        Scenario::default().with_text(&refs).with_usage(MockUsage {
            input: 10,
            cached_input: 0,
            output: 4000,
            reasoning: 0,
        }),
    );
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        mock_providers_config(&server),
    )?;
    let app = App::launch(Launch::new("fast").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Count\u{E007}").await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for(&format!("{card}[data-status=\"done\"]"))
            .await?;
        let shown = app.text(&format!("{card} .answer-text")).await?;
        assert_eq!(
            shown,
            pieces.concat().trim_end(),
            "text lost, doubled or reordered"
        );
        let tps = app.text(&format!("{card} [data-ro=tps]")).await?;
        let rate: f64 = tps.trim_end_matches(" tok/s").parse()?;
        assert!(rate > 1000.0, "the provider streamed at {tps}");
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_without_keys_finds_the_local_server_and_chats() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "llama3.2",
        Scenario::default().with_text(&["Hi from ", "a local model"]),
    );
    let home = tempfile::tempdir()?;
    // Ollama, as a user would have it, but on the mock's port.
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[providers.ollama]\nbase_url = \"{}\"\n",
            server.base_url(Protocol::OpenAi)
        ),
    )?;
    let app = App::launch(Launch::new("first-run").data_dir(home.path())).await?;
    app.check(async {
        let found = app.wait_for_text("#local-found", |t| !t.is_empty()).await?;
        assert!(
            found.contains("Ollama at http://127.0.0.1:") && found.contains("1 models"),
            "{found}"
        );
        assert!(
            app.text("#onboarding").await?.contains("Settings"),
            "explains how to add a key"
        );
        app.click("#local-found .use-local").await?;
        app.wait_for_content(".pane:nth-of-type(1) .picker-label", |t| {
            t == "ollama:llama3.2"
        })
        .await?;
        app.type_into("#composer", "Hello\u{E007}").await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for(&format!("{card}[data-status=\"done\"]"))
            .await?;
        assert_eq!(
            app.text(&format!("{card} .answer-text")).await?,
            "Hi from a local model"
        );
        assert!(
            app.text_content(".pane-error").await?.is_none(),
            "nothing errors"
        );
        app.screenshot("answered").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_first_target_falls_back_and_the_trail_shows_it() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_fault(switchboard_mock::Fault::Status {
            code: 401,
            retry_after_s: None,
        }),
    );
    server.script(
        "an-model",
        Scenario::default().with_text(&["Answer from ", "the fallback"]),
    );
    let home = tempfile::tempdir()?;
    let routes = "\n[routes.resilient]\nstrategy = \"ordered\"\ntargets = [\"oa:oa-model\", \"an:an-model\"]\n";
    std::fs::write(
        home.path().join("config.toml"),
        mock_providers_config(&server) + routes,
    )?;
    let app = App::launch(Launch::new("fallback").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "@resilient").await?;
        app.type_into("#composer", "Hello\u{E007}").await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for(&format!("{card}[data-status=\"done\"]"))
            .await?;
        assert_eq!(
            app.text(&format!("{card} .answer-text")).await?,
            "Answer from the fallback"
        );
        assert_eq!(
            app.text(&format!("{card} .ro-served")).await?,
            "an/an-model"
        );
        assert_eq!(
            app.text(&format!("{card} .ro-trail")).await?,
            "oa/oa-model → an/an-model"
        );
        assert_eq!(server.hits("oa-model"), 1, "an auth error is not retried");
        app.screenshot("trail").await?;
        Ok(())
    })
    .await?;
    app.close().await
}
