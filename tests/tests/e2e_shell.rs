//! The app window end to end: the real binary under Xvfb, driven over
//! WebDriver, with the UI → Rust → UI round trip over an IPC channel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_engine::echo;
use switchboard_tests::e2e::{App, Launch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_renders_and_echo_streams_back_over_the_channel() -> anyhow::Result<()> {
    let app = App::launch(Launch::new("shell")).await?;
    app.check(async {
        // The shell is Leptos-rendered and the status bar got its facts over IPC.
        app.wait_for("#sidebar").await?;
        let engine = app
            .wait_for_text("#status-engine", |t| t.starts_with("Engine "))
            .await?;
        assert_eq!(engine, format!("Engine {}", switchboard_engine::VERSION));
        let data_dir = app.text("#status-data-dir").await?;
        assert_eq!(data_dir, app.data_dir().display().to_string());
        // No keychain was given to this app: it says so instead of failing.
        let keychain = app.text("#status-keychain").await?;
        assert_eq!(keychain, "No keychain");

        app.click("#nav-diagnostics").await?;
        let text = "Grüße, Switchboard: 12 pieces ✓ stream back in order, exactly once!";
        app.type_into("#echo-input", text).await?;
        app.click("#echo-send").await?;
        let summary = app
            .wait_for_text("#echo-summary", |t| {
                t.contains("total") || t.contains("rror")
            })
            .await?;
        let pieces = echo::pieces(text).len();
        assert!(
            summary.starts_with(&format!("{pieces} pieces · {} bytes", text.len())),
            "{summary}"
        );
        assert_eq!(app.text("#echo-output").await?, text);
        app.screenshot("echo").await?;
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_can_call_only_the_apps_own_commands_and_no_inline_script() -> anyhow::Result<()> {
    let app = App::launch(Launch::new("security")).await?;
    app.check(async {
        let call = |cmd: &str, args: &str| {
            format!(
                "const done = arguments[arguments.length - 1]; \
                 window.__TAURI__.core.invoke('{cmd}', {args}) \
                   .then(() => done('allowed'), (e) => done('denied: ' + JSON.stringify(e)));"
            )
        };
        // The app's own command is allowed ...
        assert_eq!(app.run_async(&call("app_info", "{}")).await?, "allowed");
        // ... core plugin commands are not: the capability lists only ours.
        let title = app
            .run_async(&call("plugin:window|set_title", "{ value: 'pwned' }"))
            .await?;
        assert!(
            title.as_str().unwrap_or_default().starts_with("denied"),
            "{title}"
        );
        let exit = app.run_async(&call("plugin:app|version", "{}")).await?;
        assert!(
            exit.as_str().unwrap_or_default().starts_with("denied"),
            "{exit}"
        );

        // The CSP blocks inline event handlers injected into the page.
        let probe = "const done = arguments[arguments.length - 1]; \
            const d = document.createElement('div'); \
            d.innerHTML = '<img src=\"missing.png\" onerror=\"window.__inline_ran = true\">'; \
            document.body.appendChild(d); \
            setTimeout(() => done(window.__inline_ran === true), 800);";
        assert_eq!(
            app.run_async(probe).await?,
            false,
            "inline script ran despite the CSP"
        );
        Ok(())
    })
    .await?;
    app.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_sends_and_the_theme_toggle_switches_and_persists() -> anyhow::Result<()> {
    let app = App::launch(Launch::new("theme")).await?;
    app.check(async {
        let root_theme = || async {
            let v = app
                .client()
                .execute(
                    "return document.documentElement.getAttribute('data-theme')",
                    vec![],
                )
                .await?;
            anyhow::Ok(v.as_str().unwrap_or_default().to_owned())
        };
        assert_eq!(root_theme().await?, "dark");
        app.click("#theme-toggle").await?;
        assert_eq!(root_theme().await?, "light");
        app.screenshot("light").await?;

        // Enter in the composer sends, like the Send button.
        app.click("#nav-diagnostics").await?;
        app.type_into("#echo-input", "typed then Enter\u{E007}")
            .await?;
        let out = app
            .wait_for_text("#echo-summary", |t| t.contains("total"))
            .await?;
        assert!(out.starts_with("3 pieces"), "{out}");
        assert_eq!(app.text("#echo-output").await?, "typed then Enter");

        app.client().refresh().await?;
        app.wait_for("#compare").await?;
        assert_eq!(root_theme().await?, "light", "the theme survives a reload");
        Ok(())
    })
    .await?;
    app.close().await
}
