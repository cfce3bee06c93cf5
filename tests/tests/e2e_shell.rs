//! The app window end to end: the real binary under Xvfb, driven over
//! WebDriver: the shell, its status bar filled over IPC, navigation, the
//! security boundary of the page, the composer's Enter and the theme.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_mock::{MockServer, Scenario};
use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::mock_home;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_renders_with_its_status_bar_and_navigates() -> anyhow::Result<()> {
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

        // Every page of the navigation opens; there is no developer page.
        let nav = app
            .client()
            .execute(
                "return [...document.querySelectorAll('#sidebar .nav-item')].map(e => e.id)",
                vec![],
            )
            .await?;
        assert_eq!(
            nav,
            serde_json::json!([
                "nav-compare",
                "nav-spend",
                "nav-leaderboard",
                "nav-settings"
            ])
        );
        app.open_settings().await?;
        app.click("#nav-spend").await?;
        app.wait_for("#spend").await?;
        app.click("#nav-leaderboard").await?;
        app.wait_for("#leaderboard-page").await?;
        app.click("#nav-compare").await?;
        app.wait_for("#compare #composer").await?;
        app.screenshot("shell").await?;
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
    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_text(&["Hello ", "from the ", "mock."]),
    );
    let home = mock_home(&server)?;
    let app = App::launch(Launch::new("theme").data_dir(home.path())).await?;
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

        // Enter in the composer sends, like the Send button, and the
        // prompt leaves the composer once it is sent.
        app.pick_model(1, "oa-model").await?;
        app.type_into("#composer", "typed then Enter\u{E007}")
            .await?;
        let answer = ".pane:nth-of-type(1) .answer-card[data-status=\"done\"]";
        app.wait_for(answer).await?;
        assert_eq!(
            app.text(&format!("{answer} .prompt-bubble")).await?,
            "typed then Enter"
        );
        assert_eq!(
            app.text(&format!("{answer} .answer-text")).await?,
            "Hello from the mock."
        );
        let left = app
            .client()
            .execute("return document.querySelector('#composer').value", vec![])
            .await?;
        assert_eq!(
            left,
            serde_json::json!(""),
            "a sent prompt leaves the composer"
        );

        app.client().refresh().await?;
        app.wait_for("#compare").await?;
        assert_eq!(root_theme().await?, "light", "the theme survives a reload");
        Ok(())
    })
    .await?;
    app.close().await
}

/// Whether process `pid` has a library whose file name starts with `name`
/// mapped.
fn maps_library(pid: i32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|maps| {
        maps.lines().any(|l| {
            l.rsplit('/')
                .next()
                .is_some_and(|file| l.contains('/') && file.starts_with(name))
        })
    })
}

/// Threads of process `pid` whose name starts with `prefix`.
fn threads_named(pid: i32, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .count()
}

/// Without a GPU (no DRM render node, as on a VM, a remote desktop or this
/// test machine) the window does not start Mesa's software rasterizer for
/// GTK's GL, which the app never uses: no `llvmpipe` thread in the app or
/// its web process (the two cost about 7 MB). The app's own process loads
/// no EGL driver either (Mesa's, with the LLVM under it, is about 20 MB
/// there), while its web process, which needs EGL, still gets Mesa's
/// and does not inherit the setting that kept it from the app. The page is
/// drawn as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_gpu_no_software_gl_is_started_for_gtk() -> anyhow::Result<()> {
    let has_render_node = std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    if has_render_node {
        // With a GPU, GTK and WebKit keep their GL: nothing to check here.
        return Ok(());
    }
    let app = App::launch(Launch::new("no-gpu-gl")).await?;
    app.check(async {
        app.wait_for("#compare #composer").await?;
        let processes: Vec<(i32, String)> = app
            .processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("switchboard") || cmd.contains("WebKitWebProcess"))
            .collect();
        assert!(
            processes
                .iter()
                .any(|(_, c)| c.contains("WebKitWebProcess"))
                && processes.iter().any(|(_, c)| !c.contains("WebKit")),
            "the app and its web process run: {processes:?}"
        );
        for (pid, cmd) in &processes {
            assert_eq!(
                threads_named(*pid, "llvmpipe"),
                0,
                "{cmd} started Mesa's software rasterizer"
            );
            let mesa_egl = maps_library(*pid, "libEGL_mesa");
            if cmd.contains("WebKitWebProcess") {
                assert!(mesa_egl, "the web process has Mesa's EGL driver: {cmd}");
                let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
                assert!(
                    !environ
                        .split(|b| *b == 0)
                        .any(|v| v.starts_with(b"__EGL_VENDOR_LIBRARY")),
                    "the web process inherited an EGL driver list: {cmd}"
                );
            } else {
                assert!(
                    !mesa_egl,
                    "the app's own process loaded Mesa's EGL driver: {cmd}"
                );
            }
        }
        app.screenshot("no-gpu-gl").await?;
        Ok(())
    })
    .await?;
    app.close().await
}
