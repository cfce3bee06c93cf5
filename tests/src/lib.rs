//! Test harnesses shared by Switchboard's workspace-level tests.
//!
//! - [`e2e::App`]: the real app binary in a private Xvfb display, driven
//!   through tauri-driver and WebKitWebDriver, with PNG screenshots on
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
