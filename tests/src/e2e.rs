//! End-to-end harness: the real Switchboard binary in a private Xvfb
//! display, driven over WebDriver by WebKitWebDriver (WebKitGTK's own driver,
//! which starts the app; no tauri-driver in between).
//!
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! use switchboard_tests::e2e::{App, Launch};
//! let app = App::launch(Launch::new("shell")).await?;
//! app.check(async {
//!     app.pick_model(1, "oa-model").await?;
//!     app.type_into("#composer", "Hello\u{E007}").await?;
//!     app.wait_for(".pane:nth-of-type(1) .answer-card[data-status=\"done\"]").await?;
//!     Ok(())
//! })
//! .await?;
//! app.close().await
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;

use crate::dbus::PrivateBus;
use crate::process::{Group, free_port, wait_for_port};

/// How long UI waits give up after, by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(20);
/// Longest a test body may run before it fails (instead of hanging CI).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// What to start the app with.
#[derive(Debug, Clone)]
pub struct Launch {
    name: String,
    env: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
    binary: Option<PathBuf>,
    ready: String,
}

impl Launch {
    /// A launch named after the test (used in screenshot file names).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            env: Vec::new(),
            data_dir: None,
            binary: None,
            ready: "#status-bar".to_owned(),
        }
    }

    /// Consider the window started once `css` matches (by default the
    /// Leptos shell's status bar), e.g. for a binary that is not the app.
    pub fn ready_when(mut self, css: impl Into<String>) -> Self {
        self.ready = css.into();
        self
    }

    /// Start this app binary instead of [`app_binary`] (e.g. the one
    /// unpacked from the `.deb`).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Set an environment variable for the app.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Use this data directory (`SWITCHBOARD_HOME`) instead of a fresh one,
    /// e.g. to restart the app on the same data.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
}

/// What Settings → About shows.
#[derive(Debug, Clone)]
pub struct About {
    /// The version line: `0.1.0 (git abc1234, 2026-12-02)`.
    pub version: String,
    /// The data directory in use.
    pub data_dir: String,
    /// Where keys are kept, in words.
    pub keys: String,
    /// Whether the keychain answered.
    pub keychain: String,
}

/// The running app and the WebDriver session that drives it.
#[derive(Debug)]
pub struct App {
    name: String,
    client: Client,
    data_dir: PathBuf,
    display: String,
    // Dropped in this order: the driver (and with it the app), the app's
    // session bus, then the display.
    _driver: Group,
    _bus: Option<PrivateBus>,
    _display: Group,
    _home: tempfile::TempDir,
}

/// The app binary: `$SWITCHBOARD_APP`, else `switchboard` beside the test's
/// build profile directory.
pub fn app_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("SWITCHBOARD_APP") {
        return Ok(PathBuf::from(p));
    }
    let bin = crate::bin_dir()?.join("switchboard");
    if !bin.is_file() {
        bail!(
            "the app binary {} does not exist: build it first with `cargo build -p switchboard-app` \
             (after `make ui`), or run `make test`",
            bin.display()
        );
    }
    Ok(bin)
}

fn start_display() -> anyhow::Result<(Group, String)> {
    let mut cmd = Command::new("Xvfb");
    cmd.args([
        "-displayfd",
        "1",
        "-screen",
        "0",
        "1280x800x24",
        "-nolisten",
        "tcp",
        "-noreset",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut xvfb = Group::spawn("Xvfb", &mut cmd)?;
    let line = xvfb.first_line()?;
    let n: u32 = line
        .parse()
        .with_context(|| format!("Xvfb printed {line:?}, not a display"))?;
    Ok((xvfb, format!(":{n}")))
}

impl App {
    /// Start a display, WebKitWebDriver and the app, and open a WebDriver session.
    pub async fn launch(launch: Launch) -> anyhow::Result<Self> {
        let app = match &launch.binary {
            Some(path) => path.clone(),
            None => app_binary()?,
        };
        let home = tempfile::Builder::new()
            .prefix("switchboard-e2e-")
            .tempdir()?;
        // Without a session bus of its own, WebKitGTK would autolaunch one
        // (with portals and an accessibility bus) that outlives the test. A
        // test that gives the app a bus (a keyring's) owns that one.
        let bus = if launch
            .env
            .iter()
            .any(|(k, _)| k == "DBUS_SESSION_BUS_ADDRESS")
        {
            None
        } else {
            Some(PrivateBus::start(home.path())?)
        };
        let data_dir = match &launch.data_dir {
            Some(d) => d.clone(),
            None => home.path().join("data"),
        };
        let (display, display_name) = start_display()?;

        let port = free_port()?;
        // WebKitWebDriver starts the app itself (the `binary` capability) and
        // passes its environment on. TAURI_WEBVIEW_AUTOMATION lets the app's
        // webview accept automation: what tauri-driver would set, without it.
        let mut cmd = Command::new("WebKitWebDriver");
        cmd.args([format!("--port={port}"), "--host=127.0.0.1".to_owned()])
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .env("DISPLAY", &display_name)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("xdg-data"))
            .env("XDG_CONFIG_HOME", home.path().join("xdg-config"))
            .env("XDG_CACHE_HOME", home.path().join("xdg-cache"))
            .env("SWITCHBOARD_HOME", &data_dir)
            // No accessibility bus, portals or GVfs daemons: the tests do
            // not use them, and each would be one more process to stop.
            .env("NO_AT_BRIDGE", "1")
            .env("GTK_A11Y", "none")
            .env("GTK_USE_PORTAL", "0")
            .env("GIO_USE_VFS", "local")
            .env("GSETTINGS_BACKEND", "memory")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // A window that must not reach a real keyring unless a test gives it
        // one: its own bus, with nothing on it.
        if let Some(bus) = &bus {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", bus.address());
        }
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let mut driver = Group::spawn("WebKitWebDriver", &mut cmd)?;
        wait_for_port(port, Duration::from_secs(30), "WebKitWebDriver").await?;
        driver.ensure_running()?;

        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "webkitgtk:browserOptions".into(),
            serde_json::json!({ "binary": app.to_string_lossy(), "args": [] }),
        );
        let mut builder = ClientBuilder::native();
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{port}");
        let client = tokio::time::timeout(Duration::from_secs(60), builder.connect(&url))
            .await
            .context("the app did not start within 60 s")?
            .context("could not open a WebDriver session with the app")?;
        let ready = launch.ready;
        let app = Self {
            name: launch.name,
            client,
            data_dir,
            display: display_name,
            _driver: driver,
            _bus: bus,
            _display: display,
            _home: home,
        };
        app.wait_for(&ready)
            .await
            .with_context(|| format!("the page did not show {ready}"))?;
        Ok(app)
    }

    /// Every process this app's test started that is still running (the
    /// display, the driver, the app and its web processes, its bus and
    /// whatever those started), as `(pid, command line)`.
    pub fn processes(&self) -> Vec<(i32, String)> {
        crate::process::running(&self.markers())
    }

    /// The markers of this app's process groups, to check after it is gone
    /// that nothing of it survived ([`crate::process::marked`]).
    pub fn markers(&self) -> Vec<String> {
        let mut markers = vec![
            self._driver.marker().to_owned(),
            self._display.marker().to_owned(),
        ];
        if let Some(bus) = &self._bus {
            markers.push(bus.marker().to_owned());
        }
        markers
    }

    /// The WebDriver client, for anything the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The app's data directory (`SWITCHBOARD_HOME`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Run `xdotool` (Debian package `xdotool`) on the app's display: keys
    /// and pointer as the X server sees a real keyboard and mouse (XTEST),
    /// for the native windows WebDriver cannot reach, such as the GTK file
    /// chooser. Its output, trimmed; `None` when it found nothing (exit 1,
    /// as `search` does).
    pub async fn xdotool(&self, args: &[&str]) -> anyhow::Result<Option<String>> {
        let out = tokio::process::Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .await
            .context("could not run xdotool (Debian package xdotool)")?;
        match out.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
            Some(1) if out.stderr.is_empty() => Ok(None),
            _ => bail!(
                "xdotool {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Wait until a native window whose title matches `title` (a regular
    /// expression, as `xdotool search --name` takes it) is shown, and give
    /// it the keyboard; its X window id.
    pub async fn focus_native_window(&self, title: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + DEFAULT_WAIT;
        loop {
            if let Some(ids) = self
                .xdotool(&["search", "--onlyvisible", "--name", title])
                .await?
                && let Some(id) = ids.lines().last()
            {
                // No window manager under Xvfb: focus is set directly.
                self.xdotool(&["windowfocus", id]).await?;
                // Mapped is not yet drawn: let it take the focus first.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Ok(id.to_owned());
            }
            if Instant::now() > deadline {
                bail!("no window titled {title:?} was shown");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until no native window whose title matches `title` is shown.
    pub async fn wait_native_window_gone(&self, title: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEFAULT_WAIT;
        while self
            .xdotool(&["search", "--onlyvisible", "--name", title])
            .await?
            .is_some()
        {
            if Instant::now() > deadline {
                bail!("the window titled {title:?} stayed open");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Run a test body; if it fails, panics or runs past [`TEST_TIMEOUT`],
    /// save a screenshot of the window (`<name>-failure.png`) before passing
    /// the failure on.
    pub async fn check<F>(&self, body: F) -> anyhow::Result<()>
    where
        F: Future<Output = anyhow::Result<()>>,
    {
        let body = async {
            tokio::time::timeout(TEST_TIMEOUT, body)
                .await
                .unwrap_or_else(|_| {
                    Err(anyhow::anyhow!(
                        "the test did not finish within {TEST_TIMEOUT:?}"
                    ))
                })
        };
        let outcome = AssertUnwindSafe(body).catch_unwind().await;
        if !matches!(outcome, Ok(Ok(()))) {
            match self.screenshot("failure").await {
                Ok(path) => eprintln!("screenshot of the failure: {}", path.display()),
                Err(e) => eprintln!("could not save a failure screenshot: {e:#}"),
            }
        }
        match outcome {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Save a PNG of the window as `<artifacts>/screenshots/<test>-<label>.png`.
    ///
    /// The picture is taken from the X display, i.e. what a person would
    /// see: WebKitGTK's own WebDriver snapshot can lag behind the page.
    pub async fn screenshot(&self, label: &str) -> anyhow::Result<PathBuf> {
        let dir = crate::artifacts_dir().join("screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}-{label}.png", self.name));
        // Let the last DOM change reach the screen: two animation frames,
        // then a moment for the compositor to present them.
        let frames = "const done = arguments[arguments.length - 1]; \
                      requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.client.execute_async(frames, Vec::new()),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let out = tokio::process::Command::new("import")
            .args(["-display", &self.display, "-window", "root"])
            .arg(format!("png:{}", path.display()))
            .output()
            .await
            .context("could not run `import` (package imagemagick)")?;
        if !out.status.success() {
            bail!("import failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let head = std::fs::read(&path)?;
        if !head.starts_with(b"\x89PNG") {
            bail!("{} is not a PNG", path.display());
        }
        Ok(path)
    }

    /// A picture for the README: the pointer parked on the logo (else the
    /// tooltip of whatever is under it would be in the picture), then
    /// [`App::screenshot`]; with `SWITCHBOARD_README_SCREENSHOTS=1` (`make
    /// screenshots`) it is also copied over `tests/screenshots/<label>.png`.
    pub async fn readme_screenshot(&self, label: &str) -> anyhow::Result<PathBuf> {
        use fantoccini::actions::{InputSource, MouseActions, PointerAction};
        let park = MouseActions::new("pointer".to_owned()).then(PointerAction::MoveTo {
            duration: None,
            x: 2.0,
            y: 2.0,
        });
        self.client.perform_actions(park).await?;
        let png = self.screenshot(label).await?;
        if std::env::var_os("SWITCHBOARD_README_SCREENSHOTS").is_some() {
            let dir = crate::workspace_root().join("tests/screenshots");
            std::fs::create_dir_all(&dir)?;
            std::fs::copy(&png, dir.join(format!("{label}.png")))?;
        }
        Ok(png)
    }

    /// Wait until an element matching `css` exists.
    ///
    /// While the page is still loading, WebKitWebDriver sometimes answers a
    /// lookup with "Could not parse element info" instead of "no such
    /// element" (seen right after the app started, in full runs); that
    /// answer is waited out like a missing element, within the same time.
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
        let deadline = std::time::Instant::now() + DEFAULT_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self
                .client
                .wait()
                .at_most(left)
                .for_element(Locator::Css(css))
                .await
            {
                Ok(el) => return Ok(el),
                Err(e) if e.to_string().contains("Could not parse") && !left.is_zero() => {
                    eprintln!("looking for {css:?}: {e}; looking again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("no element matches {css:?}")),
            }
        }
    }

    /// Click the element matching `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let el = self.wait_for(css).await?;
        self.center(css).await?;
        el.click()
            .await
            .with_context(|| format!("clicking {css:?}"))?;
        Ok(())
    }

    /// Scroll the first element matching `css` to the middle of its scroll
    /// area: WebKitWebDriver does not always scroll an element inside a
    /// nested scroll area far enough to interact with it.
    ///
    /// WebKitWebDriver now and then answers a script run in a page that is
    /// still settling with "Could not parse script result" (seen once in a
    /// full run, right after the app started); the scroll is tried again
    /// before that is reported.
    async fn center(&self, css: &str) -> anyhow::Result<()> {
        let script = "const e = document.querySelector(arguments[0]); \
                      if (e) e.scrollIntoView({block: 'center'}); return true;";
        let mut tries = 0;
        loop {
            tries += 1;
            match self
                .client
                .execute(script, vec![serde_json::Value::String(css.to_owned())])
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if tries < 3 => {
                    eprintln!("scrolling {css:?} into view failed ({e}); trying again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("scrolling {css:?} into view")),
            }
        }
    }

    /// Replace the value of the input or textarea matching `css` by typing `text`.
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let el = self.wait_for(css).await?;
        self.center(css).await?;
        el.clear()
            .await
            .with_context(|| format!("clearing {css:?}"))?;
        el.send_keys(text).await?;
        Ok(())
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        Ok(self.wait_for(css).await?.text().await?)
    }

    /// Open the settings page and wait until it has settled (the local
    /// server scan moves everything below it once it finishes).
    pub async fn open_settings(&self) -> anyhow::Result<()> {
        self.click("#nav-settings").await?;
        self.wait_for_content("#local-servers", |t| !t.contains("Looking for"))
            .await?;
        self.wait_for("#provider-list").await?;
        Ok(())
    }

    /// Open Settings → About and read what it says.
    pub async fn about(&self) -> anyhow::Result<About> {
        self.open_settings().await?;
        self.center("#about").await?;
        let version = self
            .wait_for_content("#about-version", |t| !t.trim().is_empty())
            .await?;
        Ok(About {
            version: version.trim().to_owned(),
            data_dir: self
                .text_content("#about-data-dir")
                .await?
                .unwrap_or_default(),
            keys: self.text_content("#about-keys").await?.unwrap_or_default(),
            keychain: self
                .text_content("#about-keychain")
                .await?
                .unwrap_or_default(),
        })
    }

    /// Choose a model (or `@route`) in pane `pane` (1-based) of the compare
    /// view through its picker: open it, search, click the first match.
    pub async fn pick_model(&self, pane: usize, search: &str) -> anyhow::Result<()> {
        let base = format!(".pane:nth-of-type({pane})");
        self.click(&format!("{base} .picker-button")).await?;
        self.type_into(&format!("{base} .picker-search"), search)
            .await?;
        self.click(&format!("{base} .picker-item")).await?;
        self.wait_for_content(&format!("{base} .picker-label"), |t| t.contains(search))
            .await?;
        Ok(())
    }

    /// The `textContent` of the first element matching `css` (all of its
    /// text, shown or clipped), or `None` when nothing matches.
    pub async fn text_content(&self, css: &str) -> anyhow::Result<Option<String>> {
        let v = self
            .client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![serde_json::Value::String(css.to_owned())],
            )
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Wait until the `textContent` of `css` satisfies `ok`; returns it.
    pub async fn wait_for_content(
        &self,
        css: &str,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + DEFAULT_WAIT;
        let mut last = None;
        loop {
            if let Some(t) = self.text_content(css).await? {
                if ok(&t) {
                    return Ok(t);
                }
                last = Some(t);
            }
            if Instant::now() > deadline {
                bail!("{css:?} never had the expected content; last seen: {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the text of `css` satisfies `ok`; returns that text.
    pub async fn wait_for_text(
        &self,
        css: &str,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + DEFAULT_WAIT;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await
                && let Ok(t) = el.text().await
            {
                if ok(&t) {
                    return Ok(t);
                }
                last = t;
            }
            if Instant::now() > deadline {
                bail!("{css:?} never showed the expected text; last seen: {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Run `script` (which must call its last argument with a result) in the
    /// page and return what it passed.
    pub async fn run_async(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.client.execute_async(script, Vec::new()).await?)
    }

    /// Send `prompt` from the composer, wait for the first pane's answer
    /// to end well, and return its text.
    pub async fn first_answer_to(&self, prompt: &str) -> anyhow::Result<String> {
        self.type_into("#composer", &format!("{prompt}\u{E007}"))
            .await?;
        let card = ".pane:nth-of-type(1) .answer-card";
        self.wait_for(&format!("{card}[data-status=\"done\"]"))
            .await?;
        self.text(&format!("{card} .answer-text")).await
    }

    /// Stand in for members of the page's `window.__TAURI__.core`, which
    /// the UI reads on every IPC call: `members` is a JS function taking
    /// the real `core` and returning the members to replace (e.g. an
    /// `invoke` that delays one command's reply). The rest of the page's
    /// bridge is left as it is.
    pub async fn replace_tauri_core(&self, members: &str) -> anyhow::Result<()> {
        let script = format!(
            "const t = window.__TAURI__; \
             const core = Object.assign({{}}, t.core, ({members})(t.core)); \
             window.__TAURI__ = Object.assign({{}}, t, {{core}}); \
             return window.__TAURI__.core === core;"
        );
        let replaced = self.client.execute(&script, Vec::new()).await?;
        anyhow::ensure!(
            replaced == serde_json::Value::Bool(true),
            "window.__TAURI__ could not be replaced: {replaced}"
        );
        Ok(())
    }

    /// End the WebDriver session (which closes the app) and stop the helpers.
    pub async fn close(self) -> anyhow::Result<()> {
        self.client
            .clone()
            .close()
            .await
            .context("closing the WebDriver session")?;
        Ok(())
    }
}
