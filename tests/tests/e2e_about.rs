//! Settings → About in the real app: the same version line as
//! `switchboard-cli --version` (one build stamp for both), the data
//! directory in use, and where the keys are kept.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use switchboard_tests::e2e::{App, Launch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn about_shows_the_cli_version_the_data_directory_and_the_keychain() -> anyhow::Result<()> {
    let cli = switchboard_tests::cli_binary()?;
    let out = std::process::Command::new(&cli).arg("--version").output()?;
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout)?;
    let cli_version = printed
        .trim()
        .strip_prefix("switchboard-cli ")
        .unwrap_or_else(|| panic!("unexpected --version output {printed:?}"))
        .to_owned();
    // `0.1.0 (git abc1234, 2026-12-02)`: the number and the commit.
    assert!(
        cli_version.starts_with(&format!("{} (git ", switchboard_engine::VERSION)),
        "{cli_version}"
    );

    let app = App::launch(Launch::new("about")).await?;
    app.check(async {
        let about = app.about().await?;
        assert_eq!(about.version, cli_version);
        assert_eq!(about.data_dir, app.data_dir().display().to_string());
        assert!(about.keys.contains("Secret Service"), "{}", about.keys);
        assert!(about.keys.contains("\"switchboard\""), "{}", about.keys);
        assert!(about.keys.contains("never writes"), "{}", about.keys);
        // This app was given a bus with no keyring on it.
        assert!(
            about.keychain.starts_with("not reachable"),
            "{}",
            about.keychain
        );
        app.screenshot("panel").await?;
        Ok(())
    })
    .await?;
    app.close().await
}
