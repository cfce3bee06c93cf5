//! A test leaves nothing running, pass or fail: the services the harnesses
//! start (display, WebDriver, the app and its web processes, private D-Bus
//! buses, gnome-keyring) are all gone once their guard is dropped, and the
//! app starts no portal, accessibility bus or keyring of its own.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::{Duration, Instant};

use switchboard_tests::e2e::{App, Launch};
use switchboard_tests::keychain::SecretService;
use switchboard_tests::process::running;

/// What a WebKitGTK app spawned behind the tests' backs before: none of it
/// may run as part of a test.
const STRAYS: [&str; 7] = [
    "dbus-launch",
    "xdg-desktop-portal",
    "xdg-document-portal",
    "xdg-permission-store",
    "at-spi",
    "fusermount",
    "gnome-keyring",
];

/// Processes still carrying `markers` a moment after their guard went (the
/// kernel takes a moment to reap a killed process).
fn survivors(markers: &[String]) -> Vec<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = running(markers);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_test_that_fails_leaves_no_process_behind() -> anyhow::Result<()> {
    let app = App::launch(Launch::new("cleanup")).await?;
    // Settings starts a keychain probe, a local-server scan and the About
    // panel's query: the app has done what makes services start.
    app.open_settings().await?;
    app.wait_for("#about-version").await?;
    let markers = app.markers();
    let during = app.processes();
    let names = |list: &[(i32, String)]| {
        list.iter()
            .map(|(_, c)| c.clone())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        during.iter().any(|(_, c)| c.contains("WebKitWebDriver")),
        "{}",
        names(&during)
    );
    assert!(
        during.iter().any(|(_, c)| c.contains("WebKitWebProcess")),
        "{}",
        names(&during)
    );
    assert!(
        during.iter().any(|(_, c)| c.contains("Xvfb")),
        "{}",
        names(&during)
    );
    for stray in STRAYS {
        assert!(
            !during.iter().any(|(_, c)| c.contains(stray)),
            "{stray} started:\n{}",
            names(&during)
        );
    }

    // A failing test body: the guard still stops everything.
    let failed = app
        .check(async { anyhow::bail!("a test that fails on purpose") })
        .await;
    assert!(failed.is_err());
    drop(app);
    let left = survivors(&markers);
    assert!(left.is_empty(), "still running:\n{}", names(&left));
    Ok(())
}

#[test]
fn a_private_keyring_stops_with_its_guard() -> anyhow::Result<()> {
    let keyring = SecretService::start()?;
    let markers = vec![keyring.marker()];
    let during = running(&markers);
    assert!(
        during.iter().any(|(_, c)| c.contains("dbus-daemon")),
        "{during:?}"
    );
    assert!(
        during
            .iter()
            .any(|(_, c)| c.contains("gnome-keyring-daemon")),
        "{during:?}"
    );
    drop(keyring);
    let left = survivors(&markers);
    assert!(left.is_empty(), "still running: {left:?}");
    Ok(())
}
