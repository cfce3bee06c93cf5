//! The compare view end to end: the real app under Xvfb, three panes on
//! three mock providers (one per wire protocol), answers streaming side by
//! side with their own text, tokens and exact cost; Markdown drawn while it
//! streams; the view following a long stream; six legible panes.

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
use switchboard_tests::{mock_home, mock_models_config, mock_providers_config, request_turns};

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
    let home = mock_home(&server)?;

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
    let home = mock_home(&server)?;
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
    let home = mock_home(&server)?;
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

/// A page that draws no frames (a hidden or minimized window: WebKit runs
/// no animation frames for it) still takes in an answer's end: the end
/// waits for the next frame only so long, then the card says done and
/// shows the whole answer, formatted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_ends_in_a_window_that_draws_no_frames() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["Hello ", "**world**", ", again."])
            .with_usage(MockUsage {
                input: 10,
                cached_input: 0,
                output: 5,
                reasoning: 0,
            }),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("no-frames").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "oa-model").await?;
        // From here on no animation frame comes.
        app.client()
            .execute("window.requestAnimationFrame = () => 0;", vec![])
            .await?;
        app.type_into("#composer", "Greet\u{E007}").await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for(&format!("{card}[data-status=\"done\"]"))
            .await?;
        assert_eq!(
            app.text(&format!("{card} .answer-text")).await?,
            "Hello world, again."
        );
        assert_eq!(
            app.text(&format!("{card} .answer-text strong")).await?,
            "world"
        );
        Ok(())
    })
    .await?;
    app.close().await
}

/// A long paragraph in three panes, read while it streams: what each pane
/// shows is always the answer so far, word for word (new text is shown
/// plain between formattings of the paragraph, and must neither double
/// nor run into the formatted words).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_paragraph_reads_word_for_word_while_it_streams() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let pieces: Vec<String> = (0..1500).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let full = pieces.concat();
    for model in ["oa-model", "an-model", "gm-model"] {
        server.script(
            model,
            Scenario::default()
                .with_text(&refs)
                .with_gap(Duration::from_millis(2)),
        );
    }
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("paragraph").data_dir(home.path())).await?;
    app.check(async {
        app.click("#add-pane").await?;
        for (i, model) in ["oa-model", "an-model", "gm-model"].iter().enumerate() {
            app.pick_model(i + 1, model).await?;
        }
        app.type_into("#composer", "Go on\u{E007}").await?;
        let card = |i: usize| format!(".pane:nth-of-type({i}) .answer-card");
        let mut read = 0;
        for _ in 0..40 {
            // Each pane's state and text, read in one turn of the page.
            let panes = app
                .client()
                .execute(
                    "return [...document.querySelectorAll('.pane .answer-card')].map(c => \
                       [c.dataset.status, c.querySelector('.answer-text').innerText.trim()])",
                    vec![],
                )
                .await?;
            for (i, pane) in panes.as_array().into_iter().flatten().enumerate() {
                let (status, shown) = (pane[0].as_str(), pane[1].as_str().unwrap_or(""));
                if status != Some("streaming") || shown.is_empty() {
                    continue;
                }
                let words = shown.split_whitespace().count();
                assert!(
                    full.starts_with(&format!("{shown} ")),
                    "pane {} showed {words} words that are not the answer so far: …{}",
                    i + 1,
                    &shown[shown.len().saturating_sub(120)..]
                );
                read += 1;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        assert!(read >= 6, "only {read} readings while streaming");
        for i in 1..=3 {
            app.wait_for(&format!("{}[data-status=\"done\"]", card(i)))
                .await?;
            let shown = app.text(&format!("{} .answer-text", card(i))).await?;
            assert_eq!(shown, full.trim_end(), "pane {i} at the end");
        }
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
        app.wait_for_content(".pane:nth-of-type(1) .picker-model", |t| t == "llama3.2")
            .await?;
        assert_eq!(
            app.text_content(".pane:nth-of-type(1) .picker-provider")
                .await?
                .as_deref(),
            Some("ollama")
        );
        assert_eq!(app.first_answer_to("Hello").await?, "Hi from a local model");
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
        assert_eq!(
            app.first_answer_to("Hello").await?,
            "Answer from the fallback"
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
        assert_eq!(server.hits("oa-model"), 1, "an auth error is not retried");
        app.screenshot("trail").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_answer_shows_its_code_block_and_table_before_it_ends() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let mut pieces: Vec<String> = [
        "Here is code:\n\n",
        "```rust\n",
        "fn main() {\n",
        "    let answer = 42;\n",
        "}\n",
        "```\n\n",
        "| model | score |\n",
        "|---|---|\n",
        "| oa | 1 |\n\n",
    ]
    .map(str::to_owned)
    .to_vec();
    pieces.extend((0..150).map(|i| format!("more{i} ")));
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(Duration::from_millis(30)),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("live-markdown").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Code and a table\u{E007}")
            .await?;
        let live = ".pane:nth-of-type(1) .answer-card[data-status=\"streaming\"]";
        app.wait_for(&format!("{live} .answer-text pre code .hl-kw"))
            .await?;
        app.wait_for(&format!("{live} .answer-text table td"))
            .await?;
        // Once the next block has started they are final: drawn for good.
        let code = app
            .wait_for(&format!("{live} .md-blocks pre code .hl-kw"))
            .await?;
        let table = app.wait_for(&format!("{live} .md-blocks table td")).await?;
        assert_eq!(table.text().await?, "oa");
        assert!(
            app.text_content(live).await?.is_some(),
            "drawn as Markdown while still streaming"
        );
        app.screenshot("markdown-streaming").await?;
        let card = ".pane:nth-of-type(1) .answer-card[data-status=\"done\"]";
        app.wait_for(card).await?;
        // The finished blocks were drawn once and stayed: the same elements,
        // nothing re-rendered (no jump) at the end.
        let attached = app
            .client()
            .execute(
                "return arguments[0].isConnected && arguments[1].isConnected",
                vec![serde_json::to_value(&code)?, serde_json::to_value(&table)?],
            )
            .await?;
        assert_eq!(attached, serde_json::json!(true));
        let text = app.text(&format!("{card} .answer-text")).await?;
        assert!(text.ends_with("more149"), "{text}");
        Ok(())
    })
    .await?;
    app.close().await
}

/// `[scrollTop, scrollHeight, clientHeight]` of pane 1's body.
async fn scroll_of(app: &App) -> anyhow::Result<[i64; 3]> {
    let v = app
        .client()
        .execute(
            "const b = document.querySelector('.pane:nth-of-type(1) .pane-body'); \
             return [Math.round(b.scrollTop), b.scrollHeight, b.clientHeight];",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_follows_a_long_stream_until_the_user_scrolls_up() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let pieces: Vec<String> = (0..500)
        .map(|i| format!("Line {i} of a long answer.\n\n"))
        .collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&refs)
            .with_gap(Duration::from_millis(12)),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("follow").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Write a lot\u{E007}").await?;
        app.wait_for_content(".pane:nth-of-type(1) .answer-text", |t| {
            t.contains("Line 80")
        })
        .await?;
        // While it streams, the newest line stays in view.
        for _ in 0..4 {
            let [top, height, client] = scroll_of(&app).await?;
            assert!(
                height > client * 2,
                "the answer is long: {height} vs {client}"
            );
            assert!(
                height - top - client <= 80,
                "not following: top {top}, height {height}, view {client}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // The user scrolls up: the pane stays there and offers a way back.
        app.client()
            .execute(
                "document.querySelector('.pane:nth-of-type(1) .pane-body').scrollTop = 0",
                vec![],
            )
            .await?;
        app.wait_for(".pane:nth-of-type(1) .jump-latest").await?;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let [top, height, client] = scroll_of(&app).await?;
        assert!(top < 50, "the view was pulled down to {top} (of {height})");
        assert!(height - client > 500);
        app.click(".pane:nth-of-type(1) .jump-latest").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let [top, height, client] = scroll_of(&app).await?;
        assert!(height - top - client <= 80, "back at the newest line");
        app.wait_for(".pane:nth-of-type(1) .answer-card[data-status=\"done\"]")
            .await?;
        let [top, height, client] = scroll_of(&app).await?;
        assert!(height - top - client <= 80, "followed to the end");
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_panes_each_show_a_legible_model_name() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let models = [
        ("oa", "oa-model"),
        ("oa", "oa-mini-model"),
        ("an", "an-model"),
        ("an", "an-haiku-model"),
        ("gm", "gm-model"),
        ("gm", "gm-flash-model"),
    ];
    for (_, model) in models {
        server.script(model, Scenario::default().with_text(&[model, " answers"]));
    }
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        mock_models_config(&server, &models),
    )?;
    let app = App::launch(Launch::new("six-panes").data_dir(home.path())).await?;
    app.check(async {
        for _ in 0..4 {
            app.click("#add-pane").await?;
        }
        for (i, (_, model)) in models.iter().enumerate() {
            app.pick_model(i + 1, model).await?;
        }
        app.type_into("#composer", "Who are you?\u{E007}").await?;
        for i in 1..=6 {
            app.wait_for(&format!(".pane:nth-of-type({i}) .answer-card[data-status=\"done\"]"))
                .await?;
        }
        app.client()
            .execute("document.querySelector('.panes').scrollLeft = 0", vec![])
            .await?;
        app.screenshot("six-panes").await?;
        // Each header names its model in full: not cut, inside its pane, and
        // the pane no narrower than the minimum (the row scrolls instead).
        let v = app
            .client()
            .execute(
                "return [...document.querySelectorAll('.pane')].map(p => { \
                   const m = p.querySelector('.picker-model'); \
                   const r = m.getBoundingClientRect(), pr = p.getBoundingClientRect(); \
                   return { text: m.textContent, provider: p.querySelector('.picker-provider').textContent, \
                     clipped: m.scrollWidth > m.clientWidth + 1, inside: r.right <= pr.right + 1 && r.left >= pr.left - 1, \
                     width: pr.width, fontSize: parseFloat(getComputedStyle(m).fontSize) }; })",
                vec![],
            )
            .await?;
        let panes = v.as_array().unwrap();
        assert_eq!(panes.len(), 6);
        for (p, (id, model)) in panes.iter().zip(models) {
            assert_eq!(p["text"], *model, "{p}");
            assert_eq!(p["provider"], *id, "{p}");
            assert_eq!(p["clipped"], false, "{p}");
            assert_eq!(p["inside"], true, "{p}");
            assert!(p["width"].as_f64().unwrap() >= 319.0, "{p}");
            assert!(p["fontSize"].as_f64().unwrap() >= 12.0, "{p}");
        }
        // The grid layout puts them in rows of three, still legible.
        app.client()
            .execute(
                "const s = document.querySelector('#layout'); s.value = 'grid'; \
                 s.dispatchEvent(new Event('change'));",
                vec![],
            )
            .await?;
        app.wait_for(".panes.grid").await?;
        app.screenshot("six-panes-grid").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_view_works_from_the_keyboard_and_names_its_controls() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    for m in ["oa-model", "an-model", "gm-model"] {
        server.script(m, Scenario::default().with_text(&[m, " here"]));
    }
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("keyboard").data_dir(home.path())).await?;
    app.check(async {
        // No pane has a model: the prompt is not sent, not lost, and the
        // view says why.
        app.type_into("#composer", "Hello there\u{E007}").await?;
        let notice = app
            .wait_for_content(".notice", |t| t.contains("Pick a model"))
            .await?;
        assert!(notice.contains("kept"), "{notice}");
        let kept = app
            .client()
            .execute("return document.querySelector('#composer').value", vec![])
            .await?;
        assert_eq!(kept, serde_json::json!("Hello there"));
        assert!(app.text_content(".answer-card").await?.is_none());

        // The picker from the keyboard: Enter opens it, arrows move, Enter
        // picks; Escape closes it and gives the focus back to its button.
        let button = app.wait_for(".pane:nth-of-type(1) .picker-button").await?;
        button.send_keys("\u{E007}").await?;
        let search = app.wait_for(".pane:nth-of-type(1) .picker-search").await?;
        search.send_keys("model").await?;
        let first = app
            .wait_for_content(".pane:nth-of-type(1) .picker-item.active .pi-provider", |t| {
                !t.is_empty()
            })
            .await?;
        search.send_keys("\u{E015}").await?;
        let active = app
            .wait_for_content(".pane:nth-of-type(1) .picker-item.active .pi-provider", |t| {
                !t.is_empty() && t != first
            })
            .await?;
        let (provider, model) = active.split_once(" · ").unwrap();
        search.send_keys("\u{E007}").await?;
        app.wait_for_content(".pane:nth-of-type(1) .picker-model", |t| t == model)
            .await?;
        assert_eq!(
            app.text_content(".pane:nth-of-type(1) .picker-provider")
                .await?
                .as_deref(),
            Some(provider)
        );
        let button = app.wait_for(".pane:nth-of-type(1) .picker-button").await?;
        button.send_keys("\u{E007}").await?;
        let search = app.wait_for(".pane:nth-of-type(1) .picker-search").await?;
        search.send_keys("\u{E00C}").await?;
        let focus = app
            .client()
            .execute(
                "return [!document.querySelector('.picker-search'), \
                   document.activeElement === document.querySelector('.pane:nth-of-type(1) .picker-button')]",
                vec![],
            )
            .await?;
        assert_eq!(focus, serde_json::json!([true, true]), "closed, focus back");

        // Now it sends, and the answer is a live region.
        app.click("#send").await?;
        let card = ".pane:nth-of-type(1) .answer-card[data-status=\"done\"]";
        app.wait_for(card).await?;
        assert_eq!(
            app.text(&format!("{card} .answer-text")).await?,
            format!("{model} here")
        );
        let live = app
            .client()
            .execute(
                "return document.querySelector('.answer-card .answer-text').getAttribute('aria-live')",
                vec![],
            )
            .await?;
        assert_eq!(live, serde_json::json!("polite"));

        // Every field of the view has a name a screen reader can say.
        app.click(".pane:nth-of-type(1) [aria-label=\"Pane settings\"]")
            .await?;
        let unnamed = app
            .client()
            .execute(
                "return [...document.querySelectorAll('#compare input, #compare select, #compare textarea')] \
                   .filter(e => !(e.getAttribute('aria-label') || e.closest('label') || \
                                  (e.id && document.querySelector(`label[for='${e.id}']`)))) \
                   .map(e => e.outerHTML.slice(0, 80))",
                vec![],
            )
            .await?;
        assert_eq!(unnamed, serde_json::json!([]), "unlabelled fields");

        // "Send to" follows the panes: a removed pane is never its choice.
        let pane2 = app
            .client()
            .execute("return document.querySelector('.pane:nth-of-type(2)').dataset.pane", vec![])
            .await?;
        app.wait_for("#send-to")
            .await?
            .select_by_value(pane2.as_str().unwrap())
            .await?;
        app.click(".pane:nth-of-type(2) .remove-pane").await?;
        let chosen = app
            .client()
            .execute("return document.querySelector('#send-to').value", vec![])
            .await?;
        assert_eq!(chosen, serde_json::json!("all"));
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronized_scrolling_aligns_the_panes_by_round() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let lines = |who: &str, n: usize| -> Scenario {
        let pieces: Vec<String> = (0..n).map(|i| format!("{who} line {i}.\n\n")).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        Scenario::default().with_text(&refs)
    };
    // Pane 1 answers at length, pane 2 briefly: by scroll ratio their
    // rounds would not line up.
    server.script("oa-model", lines("long", 40));
    server.script("an-model", lines("short", 12));
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("sync-scroll").data_dir(home.path())).await?;
    app.check(async {
        app.pick_model(1, "oa-model").await?;
        app.pick_model(2, "an-model").await?;
        for round in 1..=3 {
            app.type_into("#composer", &format!("Round {round}\u{E007}"))
                .await?;
            for pane in 1..=2 {
                app.wait_for(&format!(
                    ".pane:nth-of-type({pane}) .answer-card:nth-of-type({round})[data-status=\"done\"]"
                ))
                .await?;
            }
        }
        app.click("#sync-scroll").await?;
        let offsets = "const b = [...document.querySelectorAll('.pane-body')]; \
            const top = (i, r) => b[i].querySelector(`.answer-card:nth-of-type(${r})`).offsetTop; \
            return [b[0].scrollTop, b[1].scrollTop, top(0, 2), top(1, 2), top(0, 3), top(1, 3)];";
        // The user scrolls pane 1 to the start of round 2.
        app.client()
            .execute(
                "const b = document.querySelector('.pane:nth-of-type(1) .pane-body'); \
                 b.scrollTop = b.querySelector('.answer-card:nth-of-type(2)').offsetTop;",
                vec![],
            )
            .await?;
        // The other pane follows on a later frame; a loaded machine may take
        // a while to paint it, so look until it has or five seconds pass.
        let aligned = |v: &[f64]| (v[0] - v[2]).abs() <= 2.0 && (v[1] - v[3]).abs() <= 2.0;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let v = loop {
            let v: Vec<f64> =
                serde_json::from_value(app.client().execute(offsets, vec![]).await?)?;
            if aligned(&v) || std::time::Instant::now() > deadline {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!((v[0] - v[2]).abs() <= 2.0, "pane 1 at round 2: {v:?}");
        assert!(
            (v[1] - v[3]).abs() <= 2.0,
            "pane 2 shows round 2 at the top too: {v:?}"
        );
        assert!(v[2] > v[3] + 100.0, "the rounds sit at different depths: {v:?}");
        app.screenshot("synced").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_on_a_finished_streams_channel_changes_nothing() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_text(&["Only ", "this"]),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("late-message").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "oa-model").await?;
        // Keep every channel the page makes, to speak on one later.
        app.replace_tauri_core(
            "core => { window.sbChannels = []; \
               class Kept extends core.Channel { \
                 constructor(...a) { super(...a); window.sbChannels.push(this); } } \
               return { Channel: Kept }; }",
        )
        .await?;
        assert_eq!(app.first_answer_to("Hello").await?, "Only this");
        let card = ".pane:nth-of-type(1) .answer-card";
        // Every stream of the page shares one channel, which stays: a
        // message that comes late (here: text for every stream id the
        // page could have used, at every position the channel could be
        // at) reaches the page's handler after the answer ended.
        let late = app
            .client()
            .execute(
                "const ch = window.sbChannels[window.sbChannels.length - 1]; \
                 if (!ch) return 'no channel'; \
                 const body = []; \
                 for (let stream = 0; stream < 256; stream++) \
                   body.push({stream, event: {type: 'update', text: ' LATE', ttft_ms: 1, \
                     elapsed_ms: 2, tokens: {input: null, output: null, cached_input: null, \
                     reasoning: null, cache_write: null}}}); \
                 try { \
                   for (let seq = 0; seq < 64; seq++) ch.onmessage({seq, body}); \
                   return 'delivered'; \
                 } catch (e) { return 'threw: ' + e; }",
                vec![],
            )
            .await?;
        assert_eq!(late, "delivered");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            app.text(&format!("{card} .answer-text")).await?,
            "Only this",
            "a finished answer takes no more text"
        );
        assert_eq!(app.text_content(".pane-error").await?, None);
        // Nor does the answer the next prompt sends as this model's turn:
        // it is the text that was shown, without the late words.
        server.script("oa-model", Scenario::default().with_text(&["Again"]));
        let before = server.requests().len();
        app.type_into("#composer", "And again\u{E007}").await?;
        // The second round's card: the first one is the last child, and
        // done, until the budget check before the send has answered.
        app.wait_for(".pane:nth-of-type(1) .answer-card:nth-of-type(2)[data-status=\"done\"]")
            .await?;
        let sent: Vec<Vec<(String, String)>> = server.requests()[before..]
            .iter()
            .filter_map(|r| r.body.as_ref().map(request_turns))
            .collect();
        let thread = [
            ("user", "Hello"),
            ("assistant", "Only this"),
            ("user", "And again"),
        ]
        .map(|(role, text)| (role.to_owned(), text.to_owned()));
        assert_eq!(sent, [thread.to_vec()]);
        Ok(())
    })
    .await?;
    app.close().await
}
