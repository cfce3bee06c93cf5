//! Images and PDFs in the composer of the real window (mock providers): an
//! image dropped on the composer goes to the two panes whose models take
//! images (exact bytes in each protocol's request), the text-only pane
//! says so before sending and is sent nothing, the answer cards and the
//! reopened conversation show it, and the next prompt sends it again; a
//! PDF pasted and an image chosen with the file button show as thumbnails
//! that can be removed, and a file that is neither is refused with the
//! reason. An incognito conversation's files never stay in the data
//! directory, yet regenerate and the next prompt send them again until the
//! conversation is left; killed, the app leaves none behind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use serde_json::Value;
use switchboard_mock::{MockServer, Scenario, samples};
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::{mock_providers_config, request_turns};

/// Build a `DataTransfer` holding a file of `b64` bytes in the page, as a
/// drop or a paste from another app carries one.
const MAKE_TRANSFER: &str = "const [b64, name, type] = arguments; \
    const bin = atob(b64); const bytes = new Uint8Array(bin.length); \
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i); \
    const dt = new DataTransfer(); dt.items.add(new File([bytes], name, {type})); ";

/// Hand the page a file the way `how` does: `drop` (on the composer),
/// `paste` (into it) or `choose` (the file button's dialog).
async fn give_file(
    app: &App,
    how: &str,
    bytes: &[u8],
    name: &str,
    mime: &str,
) -> anyhow::Result<()> {
    let deliver = match how {
        "drop" => {
            "document.querySelector('#composer-box').dispatchEvent(\
                   new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));"
        }
        "paste" => {
            "document.querySelector('#composer').dispatchEvent(\
                    new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));"
        }
        _ => {
            "const input = document.querySelector('#attach-input'); \
              input.files = dt.files; input.dispatchEvent(new Event('change', {bubbles: true}));"
        }
    };
    app.client()
        .execute(
            &format!("{MAKE_TRANSFER} {deliver}"),
            vec![
                Value::from(samples::base64_encode(bytes)),
                Value::from(name),
                Value::from(mime),
            ],
        )
        .await?;
    Ok(())
}

/// The mock providers, with the Anthropic and Gemini models marked as
/// taking images and PDFs (the OpenAI-compatible one stays text only) and
/// their vendors' limits.
fn vision_home(server: &MockServer) -> anyhow::Result<tempfile::TempDir> {
    let home = tempfile::tempdir()?;
    let mut config = mock_providers_config(server);
    // Their vendors' presets bring the vendors' documented size limits.
    for (id, preset) in [("an", "anthropic"), ("gm", "gemini")] {
        config = config.replace(
            &format!("[providers.{id}]\n"),
            &format!("[providers.{id}]\npreset = \"{preset}\"\n"),
        );
    }
    for model in ["an-model", "gm-model"] {
        config = config.replace(
            &format!("id = \"{model}\"\n"),
            &format!("id = \"{model}\"\naccepts = [\"image\", \"pdf\"]\n"),
        );
    }
    std::fs::write(home.path().join("config.toml"), config)?;
    Ok(home)
}

/// The names on the composer's attachment chips.
async fn composer_chips(app: &App) -> anyhow::Result<Vec<String>> {
    let v = app
        .client()
        .execute(
            "return [...document.querySelectorAll('#composer-attachments .attachment-chip')] \
               .map(c => c.dataset.name)",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

/// Whether the image at `css` has been loaded and decoded (a real
/// thumbnail, not a broken image).
async fn image_loaded(app: &App, css: &str) -> anyhow::Result<bool> {
    let v = app
        .client()
        .execute(
            "const i = document.querySelector(arguments[0]); \
             return !!i && i.complete && i.naturalWidth > 0",
            vec![Value::from(css)],
        )
        .await?;
    Ok(v.as_bool().unwrap_or(false))
}

async fn wait_until<F, Fut>(what: &str, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f().await? {
        anyhow::ensure!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The bodies of the generation requests naming `model` (Gemini names it
/// in the path).
fn bodies_for(server: &MockServer, model: &str) -> Vec<Value> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .filter(|r| {
            r.path.contains(&format!("/models/{model}:"))
                || r.body
                    .as_ref()
                    .and_then(|b| b.get("model"))
                    .and_then(Value::as_str)
                    == Some(model)
        })
        .filter_map(|r| r.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_dropped_on_the_composer_reaches_two_panes_and_comes_back_reopened()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "an-model",
        Scenario::default().with_text(&["Claude sees a chart."]),
    );
    server.script(
        "gm-model",
        Scenario::default().with_text(&["Gemini sees a chart."]),
    );
    server.script("oa-model", Scenario::default().with_text(&["never sent"]));
    let home = vision_home(&server)?;
    let png = samples::png(64, 48, 7);
    let b64 = samples::base64_encode(&png);
    let app = App::launch(Launch::new("attach-drop").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.click("#add-pane").await?;
        // Anthropic and Gemini models take images; the OpenAI-compatible
        // one is text only.
        app.pick_model(1, "an-model").await?;
        app.pick_model(2, "gm-model").await?;
        app.pick_model(3, "oa-model").await?;

        give_file(&app, "drop", &png, "chart.png", "image/png").await?;
        let thumb = "#composer-attachments .attachment-chip[data-name=\"chart.png\"] img.attachment-thumb";
        app.wait_for(thumb).await?;
        wait_until("the composer thumbnail shows the image", || {
            image_loaded(&app, thumb)
        })
        .await?;
        // Before sending, the text-only pane says so.
        let refusals = app
            .wait_for_text("#attach-refusals", |t| t.contains("Pane 3"))
            .await?;
        assert!(refusals.contains("oa:oa-model"), "{refusals}");
        assert!(refusals.contains("chart.png"), "{refusals}");
        assert!(!refusals.contains("Pane 1") && !refusals.contains("Pane 2"), "{refusals}");
        app.screenshot("attached").await?;

        app.type_into("#composer", "What does the chart show?\u{E007}").await?;
        for pane in 1..=2 {
            app.wait_for(&format!(
                ".pane:nth-of-type({pane}) .answer-card[data-status=\"done\"]"
            ))
            .await?;
        }
        let failed = app
            .wait_for_text(
                ".pane:nth-of-type(3) .answer-card[data-status=\"failed\"]",
                |t| t.contains("chart.png"),
            )
            .await?;
        assert!(failed.contains("not sent"), "{failed}");
        assert_eq!(server.hits("oa-model"), 0, "the text-only pane sent nothing");
        assert!(composer_chips(&app).await?.is_empty(), "sent with the prompt");

        // The exact bytes, in each protocol's shape, image before text.
        let claude = bodies_for(&server, "an-model");
        assert_eq!(claude.len(), 1);
        let content = &claude[0]["messages"][0]["content"];
        assert_eq!(content[0]["type"], "image");
        assert_eq!(
            content[0]["source"],
            serde_json::json!({"type": "base64", "media_type": "image/png", "data": b64})
        );
        assert_eq!(content[1]["text"], "What does the chart show?");
        let gemini = bodies_for(&server, "gm-model");
        assert_eq!(gemini.len(), 1);
        assert_eq!(
            gemini[0]["contents"][0]["parts"][0]["inlineData"],
            serde_json::json!({"mimeType": "image/png", "data": b64})
        );

        // Each card shows the prompt's image.
        for pane in 1..=3 {
            app.wait_for(&format!(
                ".pane:nth-of-type({pane}) .prompt-attachments .attachment-chip[data-name=\"chart.png\"]"
            ))
            .await?;
        }

        // Reopened from history: the image comes back from the data
        // directory.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        app.click("#new-conversation").await?;
        wait_until("the cards are gone", || async {
            Ok(app.text_content(".answer-card").await?.is_none())
        })
        .await?;
        app.click("#history-list .history-item .history-open").await?;
        let reopened =
            ".pane:nth-of-type(1) .prompt-attachments .attachment-chip[data-name=\"chart.png\"] img";
        app.wait_for(reopened).await?;
        wait_until("the reopened thumbnail shows the image", || {
            image_loaded(&app, reopened)
        })
        .await?;
        app.screenshot("reopened").await?;

        // The next prompt sends the image again with the first turn.
        server.script("an-model", Scenario::default().with_text(&["Still a chart."]));
        server.script("gm-model", Scenario::default().with_text(&["Still a chart."]));
        app.type_into("#composer", "And the colours?\u{E007}").await?;
        wait_until("both panes asked again", || async {
            Ok(bodies_for(&server, "an-model").len() == 2
                && bodies_for(&server, "gm-model").len() == 2)
        })
        .await?;
        let claude = bodies_for(&server, "an-model");
        let messages = claude[1]["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(messages[0]["content"][0]["source"]["data"], b64.as_str());
        assert_eq!(
            request_turns(&claude[1]),
            [
                ("user".to_owned(), "What does the chart show?".to_owned()),
                ("assistant".to_owned(), "Claude sees a chart.".to_owned()),
                ("user".to_owned(), "And the colours?".to_owned()),
            ]
        );
        let gemini = bodies_for(&server, "gm-model");
        assert_eq!(
            gemini[1]["contents"][0]["parts"][0]["inlineData"]["data"],
            b64.as_str()
        );
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasted_and_chosen_files_show_as_thumbnails_that_can_be_removed() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let home = vision_home(&server)?;
    let app = App::launch(Launch::new("attach-paste").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "gm-model").await?;
        give_file(
            &app,
            "paste",
            &samples::pdf(3, "quarterly report"),
            "report.pdf",
            "application/pdf",
        )
        .await?;
        app.wait_for(
            "#composer-attachments .attachment-chip[data-kind=\"pdf\"][data-name=\"report.pdf\"]",
        )
        .await?;
        let title = app
            .client()
            .execute(
                "return document.querySelector('#composer-attachments .attachment-chip').title",
                vec![],
            )
            .await?;
        assert!(
            title.as_str().unwrap_or_default().contains("3 pages"),
            "{title:?}"
        );
        give_file(
            &app,
            "choose",
            &samples::jpeg(32, 32),
            "photo.jpg",
            "image/jpeg",
        )
        .await?;
        wait_until("two chips", || async {
            Ok(composer_chips(&app).await? == ["report.pdf", "photo.jpg"])
        })
        .await?;
        // A file that is neither an image nor a PDF is refused, whatever
        // its name says.
        give_file(&app, "choose", b"just some notes", "notes.png", "image/png").await?;
        let notice = app
            .wait_for_text(".notice", |t| t.contains("notes.png"))
            .await?;
        assert!(notice.contains("Not attached"), "{notice}");
        assert_eq!(composer_chips(&app).await?, ["report.pdf", "photo.jpg"]);

        app.click(
            "#composer-attachments .attachment-chip[data-name=\"report.pdf\"] .attachment-remove",
        )
        .await?;
        wait_until("the PDF removed", || async {
            Ok(composer_chips(&app).await? == ["photo.jpg"])
        })
        .await?;
        // Gemini takes both: nothing to warn about. Choosing the text-only
        // model in the second pane makes that pane say so at once.
        assert!(app.text_content("#attach-refusals").await?.is_none());
        app.pick_model(2, "oa-model").await?;
        let refusals = app
            .wait_for_text("#attach-refusals", |t| t.contains("Pane 2"))
            .await?;
        assert!(!refusals.contains("Pane 1"), "{refusals}");
        assert!(refusals.contains("photo.jpg not sent"), "{refusals}");
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_over_a_providers_size_limit_is_refused_in_that_pane_before_sending()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "gm-model",
        Scenario::default().with_text(&["A big picture."]),
    );
    let home = vision_home(&server)?;
    // 5.7 MB (5,880,000-odd bytes): over Anthropic's 5 MB per image, within Gemini's 20 MB.
    let big = samples::png(1400, 1400, 3);
    let app = App::launch(Launch::new("attach-size").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "an-model").await?;
        app.pick_model(2, "gm-model").await?;
        give_file(&app, "drop", &big, "big.png", "image/png").await?;
        let refusals = app
            .wait_for_text("#attach-refusals", |t| t.contains("Pane 1"))
            .await?;
        assert!(refusals.contains("big.png is 5.7 MB"), "{refusals}");
        assert!(refusals.contains("at most 5 MB"), "{refusals}");
        assert!(!refusals.contains("Pane 2"), "{refusals}");
        app.type_into("#composer", "Describe it\u{E007}").await?;
        app.wait_for(".pane:nth-of-type(2) .answer-card[data-status=\"done\"]")
            .await?;
        let failed = app
            .wait_for_text(
                ".pane:nth-of-type(1) .answer-card[data-status=\"failed\"]",
                |t| t.contains("big.png"),
            )
            .await?;
        assert!(failed.contains("at most 5 MB"), "{failed}");
        assert_eq!(server.hits("an-model"), 0, "nothing sent over the limit");
        assert_eq!(server.hits("gm-model"), 1);
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_for_a_model_no_longer_picked_does_not_overwrite_the_current_ones()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    let home = vision_home(&server)?;
    let app = App::launch(Launch::new("attach-stale-check").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "gm-model").await?;
        // The backend's answer to a check naming the text-only model is
        // held back until the test lets it go.
        app.replace_tauri_core(
            "core => { window.sbHeld = 0; window.sbChecked = 0; window.sbLate = false; \
               let release; const released = new Promise(r => release = r); \
               window.sbRelease = release; \
               return { invoke: async (cmd, args, options) => { \
                 if (cmd !== 'check_attachments') return core.invoke(cmd, args, options); \
                 const held = JSON.stringify(args).includes('oa:oa-model'); \
                 if (held) { window.sbHeld += 1; await released; } \
                 const reply = await core.invoke(cmd, args, options); \
                 setTimeout(() => held ? window.sbLate = true : window.sbChecked += 1, 0); \
                 return reply; } }; }",
        )
        .await?;
        give_file(
            &app,
            "drop",
            &samples::png(20, 20, 4),
            "photo.png",
            "image/png",
        )
        .await?;
        app.wait_for("#composer-attachments .attachment-chip[data-name=\"photo.png\"]")
            .await?;
        // The text-only model, checked (held back), then Gemini again,
        // checked at once: nothing to warn about.
        app.pick_model(1, "oa-model").await?;
        let held = || async {
            let v = app.client().execute("return window.sbHeld", vec![]).await?;
            Ok(v.as_u64() == Some(1))
        };
        wait_until("the check for oa-model held", held).await?;
        let checked = || async {
            let v = app
                .client()
                .execute("return window.sbChecked", vec![])
                .await?;
            anyhow::Ok(v.as_u64().unwrap_or(0))
        };
        let before = checked().await?;
        app.pick_model(1, "gm-model").await?;
        wait_until("the check for gm-model answered", || async {
            Ok(checked().await? > before)
        })
        .await?;
        assert!(app.text_content("#attach-refusals").await?.is_none());
        // Now the outdated check answers.
        app.client().execute("window.sbRelease()", vec![]).await?;
        wait_until("the outdated check answered", || async {
            let v = app.client().execute("return window.sbLate", vec![]).await?;
            Ok(v.as_bool() == Some(true))
        })
        .await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let refusals = app.text_content("#attach-refusals").await?;
        assert!(
            refusals.is_none(),
            "pane 1 runs gm-model, which takes images: {refusals:?}"
        );
        Ok(())
    })
    .await?;
    app.close().await
}

/// The files under the data directory's `attachments/`.
fn stored_files(home: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![home.join("attachments")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Ask the backend for attachment `id`'s bytes through the page's IPC, as
/// a thumbnail does: true when it still has them.
async fn backend_has(app: &App, id: &str) -> anyhow::Result<bool> {
    let v = app
        .client()
        .execute_async(
            "const [id, done] = arguments; \
             window.__TAURI__.core.invoke('attachment_data', {id}).then(() => done(true), () => done(false));",
            vec![Value::from(id)],
        )
        .await?;
    Ok(v.as_bool().unwrap_or(false))
}

/// The id of the composer's attachment chip named `name`.
async fn chip_id(app: &App, name: &str) -> anyhow::Result<String> {
    let css = format!("#composer-attachments .attachment-chip[data-name=\"{name}\"]");
    app.wait_for(&css).await?;
    let v = app
        .client()
        .execute(
            "return document.querySelector(arguments[0]).dataset.id",
            vec![Value::from(css)],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Regenerate pane 1's latest answer and wait until the model was asked
/// `asked` times in all and the answer is done.
async fn regenerate_first_pane(app: &App, server: &MockServer, asked: usize) -> anyhow::Result<()> {
    app.click(".pane:nth-of-type(1) .answer-card:last-of-type .regenerate")
        .await?;
    wait_until("the pane asked again", || async {
        Ok(bodies_for(server, "gm-model").len() == asked)
    })
    .await?;
    app.wait_for(".pane:nth-of-type(1) .answer-card:last-of-type[data-status=\"done\"]")
        .await?;
    Ok(())
}

/// A file sent in an incognito round is moved off disk into the backend's
/// memory while its conversation is on screen. When the user leaves before
/// that move has happened, the file must not stay in memory afterwards
/// (for as long as the window is open): the page releases it once the move
/// is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_kept_for_an_incognito_round_left_meanwhile_is_not_kept() -> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script("gm-model", Scenario::default().with_text(&["A photo."]));
    let home = vision_home(&server)?;
    let app = App::launch(Launch::new("attach-left-while-held").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "gm-model").await?;
        // Stored on disk (Incognito still off), then sent incognito.
        give_file(
            &app,
            "drop",
            &samples::jpeg(24, 24),
            "photo.jpg",
            "image/jpeg",
        )
        .await?;
        let photo = chip_id(&app, "photo.jpg").await?;
        assert_eq!(stored_files(home.path()).len(), 1);
        // The backend is asked to keep it only when the test lets it.
        app.replace_tauri_core(
            "core => { window.sbHeld = 0; window.sbKept = false; \
               let release; const released = new Promise(r => release = r); \
               window.sbRelease = release; \
               return { invoke: async (cmd, args, options) => { \
                 if (cmd !== 'hold_attachments') return core.invoke(cmd, args, options); \
                 window.sbHeld += 1; await released; \
                 try { return await core.invoke(cmd, args, options); } \
                 finally { setTimeout(() => window.sbKept = true, 0); } } }; }",
        )
        .await?;
        app.click("#incognito").await?;
        app.type_into("#composer", "And this?\u{E007}").await?;
        wait_until("the file is about to be kept", || async {
            let v = app.client().execute("return window.sbHeld", vec![]).await?;
            Ok(v.as_u64() == Some(1))
        })
        .await?;
        // Left before the backend keeps it.
        app.click("#new-conversation").await?;
        app.client().execute("window.sbRelease()", vec![]).await?;
        wait_until("the file was kept", || async {
            let v = app.client().execute("return window.sbKept", vec![]).await?;
            Ok(v.as_bool() == Some(true))
        })
        .await?;
        wait_until("the file is forgotten", || async {
            Ok(!backend_has(&app, &photo).await?)
        })
        .await?;
        assert!(stored_files(home.path()).is_empty(), "nor left on disk");
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incognito_conversations_files_stay_off_disk_and_are_sent_again_until_it_is_left()
-> anyhow::Result<()> {
    let server = MockServer::start().await?;
    server.script(
        "gm-model",
        Scenario::default().with_text(&["A small chart."]),
    );
    let home = vision_home(&server)?;
    let png = samples::png(20, 20, 1);
    let b64 = samples::base64_encode(&png);
    let jpeg = samples::jpeg(24, 24);
    let app = App::launch(Launch::new("attach-incognito").data_dir(home.path())).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.pick_model(1, "gm-model").await?;
        app.click("#incognito").await?;
        give_file(&app, "drop", &png, "chart.png", "image/png").await?;
        let chart = chip_id(&app, "chart.png").await?;
        assert!(
            stored_files(home.path()).is_empty(),
            "added incognito: never written"
        );
        app.type_into("#composer", "What is it?\u{E007}").await?;
        app.wait_for(".pane:nth-of-type(1) .answer-card[data-status=\"done\"]")
            .await?;
        assert_eq!(bodies_for(&server, "gm-model").len(), 1);

        // While the conversation is on screen: regenerate sends the image
        // again, and so does the next prompt of the thread.
        server.script(
            "gm-model",
            Scenario::default().with_text(&["Still a chart."]),
        );
        regenerate_first_pane(&app, &server, 2).await?;
        let card = app.text(".pane:nth-of-type(1) .answer-card").await?;
        assert!(card.contains("Still a chart."), "{card}");
        let again = &bodies_for(&server, "gm-model")[1];
        assert_eq!(
            again["contents"][0]["parts"][0]["inlineData"]["data"],
            b64.as_str()
        );
        server.script(
            "gm-model",
            Scenario::default().with_text(&["Blue and red."]),
        );
        app.type_into("#composer", "And the colours?\u{E007}")
            .await?;
        wait_until("the next prompt asked", || async {
            Ok(bodies_for(&server, "gm-model").len() == 3)
        })
        .await?;
        let next = &bodies_for(&server, "gm-model")[2];
        assert_eq!(
            next["contents"][0]["parts"][0]["inlineData"]["data"],
            b64.as_str()
        );
        app.wait_for(".pane:nth-of-type(1) .answer-card:last-of-type[data-status=\"done\"]")
            .await?;
        assert!(
            stored_files(home.path()).is_empty(),
            "nothing of it on disk"
        );
        assert!(backend_has(&app, &chart).await?);

        // A new conversation leaves it: its file is gone from memory too.
        app.click("#new-conversation").await?;
        wait_until("the file is forgotten", || async {
            Ok(!backend_has(&app, &chart).await?)
        })
        .await?;

        // A file stored before Incognito was turned on leaves the data
        // directory when the incognito round is sent, and still
        // regenerates.
        app.click("#incognito").await?;
        give_file(&app, "drop", &jpeg, "photo.jpg", "image/jpeg").await?;
        let photo = chip_id(&app, "photo.jpg").await?;
        assert_eq!(stored_files(home.path()).len(), 1, "stored to be sent");
        app.click("#incognito").await?;
        server.script("gm-model", Scenario::default().with_text(&["A photo."]));
        app.type_into("#composer", "And this?\u{E007}").await?;
        app.wait_for(".pane:nth-of-type(1) .answer-card[data-status=\"done\"]")
            .await?;
        assert!(
            stored_files(home.path()).is_empty(),
            "taken off disk when sent incognito"
        );
        regenerate_first_pane(&app, &server, 5).await?;
        assert!(backend_has(&app, &photo).await?);

        // Killed with that conversation on screen: nothing left behind,
        // and nothing after the next start either.
        let pid = app
            .processes()
            .into_iter()
            .find(|(_, cmd)| {
                cmd.split_whitespace()
                    .next()
                    .is_some_and(|c| c.ends_with("/switchboard"))
            })
            .map(|(pid, _)| pid)
            .expect("the app is running");
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?
            .success();
        assert!(killed);
        Ok(())
    })
    .await?;
    app.close().await.ok();
    assert!(stored_files(home.path()).is_empty());
    let again = App::launch(Launch::new("attach-incognito-restart").data_dir(home.path())).await?;
    again
        .check(async { again.wait_for("#compare").await.map(drop) })
        .await?;
    again.close().await?;
    assert!(
        stored_files(home.path()).is_empty(),
        "none after the next start"
    );
    let db = rusqlite::Connection::open(home.path().join("switchboard.sqlite3"))?;
    let count = |table: &str| -> rusqlite::Result<i64> {
        db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
    };
    assert_eq!(
        (count("conversations")?, count("attachments")?),
        (0, 0),
        "nothing of it in history"
    );
    Ok(())
}
