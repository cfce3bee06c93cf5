//! Settings end to end: a key typed into the real app goes to a real Secret
//! Service, is used for the provider's requests, and is never shown again
//! in full nor written under the data directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_mock::{MockServer, Protocol, Scenario};
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::keychain::SecretService;

const KEY: &str = "sk-e2e-secret-key-7788";

fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                hits.push(path);
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_entered_in_settings_is_used_and_never_shown_again() -> anyhow::Result<()> {
    let keyring = SecretService::start()?;
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["Authenticated ", "answer"])
            .with_key(KEY),
    );
    let home = tempfile::tempdir()?;
    let config = format!(
        "[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\n# Treated as a hosted provider: a key is required.\nlocal = false\n\n[[providers.oa.models]]\nid = \"oa-model\"\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n",
        server.base_url(Protocol::OpenAi)
    );
    std::fs::write(home.path().join("config.toml"), config)?;
    let mut launch = Launch::new("settings").data_dir(home.path());
    for (k, v) in keyring.env() {
        launch = launch.env(k, v);
    }
    let app = App::launch(launch).await?;
    app.check(async {
        app.wait_for_text("#status-keychain", |t| t == "Keychain ready").await?;
        app.open_settings().await?;
        let row = "[data-provider=\"oa\"]";
        app.wait_for_text(&format!("{row} .key-state"), |t| t == "no key").await?;
        app.type_into(&format!("{row} .key-input"), KEY).await?;
        app.click(&format!("{row} .key-save")).await?;
        app.wait_for_text(&format!("{row} .key-state"), |t| t == "••••7788 (keychain)").await?;
        app.click(&format!("{row} .key-test")).await?;
        let check = app.wait_for_text(&format!("{row} .check"), |t| !t.is_empty()).await?;
        assert!(check.contains("models available"), "{check}");
        app.screenshot("keys").await?;

        // Nowhere in the page, not even in an input's value.
        let page = app
            .client()
            .execute("return document.documentElement.outerHTML + [...document.querySelectorAll('input,textarea')].map(e => e.value).join(' ')", vec![])
            .await?;
        assert!(!page.as_str().unwrap_or_default().contains(KEY), "the key is visible in the page");

        // The compare view uses it.
        app.click("#nav-compare").await?;
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "Hello\u{E007}").await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        app.wait_for(&format!("{card}[data-status=\"done\"]")).await?;
        assert_eq!(app.text(&format!("{card} .answer-text")).await?, "Authenticated answer");
        let sent = server.requests();
        let last = sent.iter().rev().find(|r| r.path.ends_with("/chat/completions")).expect("a chat request");
        assert_eq!(last.header("authorization"), Some(format!("Bearer {KEY}").as_str()));

        // Removing the key asks first; Cancel keeps it, Yes removes it.
        app.open_settings().await?;
        app.click(&format!("{row} .key-remove")).await?;
        app.click(&format!("{row} .confirm-no")).await?;
        app.wait_for_text(&format!("{row} .key-state"), |t| t == "••••7788 (keychain)").await?;
        app.click(&format!("{row} .key-remove")).await?;
        let question = app.text(&format!("{row} .confirm-question")).await?;
        assert!(question.contains("oa"), "{question}");
        app.click(&format!("{row} .confirm-yes")).await?;
        app.wait_for_text(&format!("{row} .key-state"), |t| t == "no key").await?;
        Ok(())
    })
    .await?;
    app.close().await?;
    let leaked = files_containing(home.path(), KEY.as_bytes());
    assert!(leaked.is_empty(), "the key was written to {leaked:?}");
    Ok(())
}
