//! `uibuild [--release]`: build the wasm UI into `ui/dist` (see the library
//! docs). Run it through cargo from anywhere in the workspace, as the
//! Makefile does: `cargo run -q -p switchboard-uibuild -- --release`.

#![allow(clippy::print_stderr, reason = "a command-line tool reports on stderr")]

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use switchboard_uibuild::{Profile, build};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uibuild: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut profile = Profile::Debug;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--release" => profile = Profile::Release,
            "--debug" => profile = Profile::Debug,
            other => bail!("unknown argument {other:?} (usage: uibuild [--release | --debug])"),
        }
    }
    let root = workspace_root()?;
    let report = build(&root, profile)?;
    let kb = |bytes: u64| bytes.div_ceil(1024);
    eprintln!(
        "uibuild: {} UI in {}: {} KiB wasm ({} KiB from rustc), {} KiB JS; \
         cargo {:.1}s, wasm-bindgen and dist {:.1}s",
        profile.name(),
        report.dist.display(),
        kb(report.wasm_bytes),
        kb(report.rustc_wasm_bytes),
        kb(report.js_bytes),
        report.cargo_time.as_secs_f64(),
        report.bindgen_time.as_secs_f64(),
    );
    Ok(())
}

/// The workspace root, as cargo sees it from the current directory.
fn workspace_root() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output()
        .context("could not run cargo locate-project")?;
    if !out.status.success() {
        bail!(
            "cargo locate-project failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let manifest = PathBuf::from(String::from_utf8(out.stdout)?.trim());
    manifest
        .parent()
        .map(PathBuf::from)
        .context("cargo returned a manifest path without a folder")
}
