//! Test harnesses shared by Switchboard's workspace-level tests.
//!
//! - [`e2e::App`]: the real app binary in a private Xvfb display, driven
//!   over WebDriver by WebKitWebDriver, with PNG screenshots on
//!   failure and on request.
//! - [`keychain::SecretService`]: a private D-Bus session with an unlocked
//!   gnome-keyring, so keychain tests never touch the user's real keyring and
//!   work where no D-Bus session exists.
//!
//! Both start their own helper processes in their own process groups and
//! stop them when dropped, so a failing test leaves nothing running.

#![allow(clippy::print_stderr, reason = "the harness reports to the test log")]

pub mod e2e;
pub mod keychain;
mod process;
pub mod store_child;

use std::path::PathBuf;

/// A `config.toml` with three providers on `server`, one per wire
/// protocol, with known prices (USD per million input / output tokens):
/// `oa` (OpenAI protocol, model `oa-model`, 2.50 / 10), `an` (Anthropic,
/// `an-model`, 3 / 15) and `gm` (Gemini, `gm-model`, 0.30 / 2.50).
pub fn mock_providers_config(server: &switchboard_mock::MockServer) -> String {
    use switchboard_mock::Protocol;
    let provider = |id: &str, kind: &str, protocol, model: &str, input: &str, output: &str| {
        format!(
            "[providers.{id}]\nkind = \"{kind}\"\nbase_url = \"{}\"\n[[providers.{id}.models]]\nid = \"{model}\"\ninput_usd_per_mtok = \"{input}\"\noutput_usd_per_mtok = \"{output}\"\n\n",
            server.base_url(protocol)
        )
    };
    [
        provider("oa", "openai", Protocol::OpenAi, "oa-model", "2.50", "10"),
        provider(
            "an",
            "anthropic",
            Protocol::Anthropic,
            "an-model",
            "3",
            "15",
        ),
        provider("gm", "gemini", Protocol::Gemini, "gm-model", "0.30", "2.50"),
    ]
    .concat()
}

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Where tests save what a person should look at (screenshots):
/// `$SWITCHBOARD_ARTIFACTS`, else `artifacts/` at the repository root.
pub fn artifacts_dir() -> PathBuf {
    match std::env::var_os("SWITCHBOARD_ARTIFACTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("artifacts"),
    }
}

/// The directory holding the binaries of the current build profile
/// (`target/debug` when the tests run from `target/debug/deps`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let deps = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("test binary has no directory"))?;
    let dir = if deps.ends_with("deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}
