//! Stamps the engine with the source it was built from, once, for every
//! binary that shows a version (the app's About panel, `switchboard-cli
//! --version`): `SWITCHBOARD_BUILD` = `git abc1234, 2026-12-02`.

#![allow(
    clippy::print_stdout,
    reason = "cargo reads a build script's instructions from stdout"
)]

#[path = "build_stamp.rs"]
mod build_stamp;

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let stamp_file = dir.join("build-stamp.txt");
    println!("cargo:rerun-if-changed={}", stamp_file.display());
    let archive = std::fs::read_to_string(&stamp_file).unwrap_or_default();
    let log = git(&dir, &["log", "-1", "--format=%h %cs"]);

    // Stamp again when HEAD moves (a commit, a checkout), and only then: the
    // files git changes for that, found through git itself so that worktrees
    // and packed refs work. A path that does not exist would make cargo run
    // this script on every build, so only existing ones are named.
    if log.is_some() {
        let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
        if let Some(head_ref) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            watched.push(head_ref);
        }
        for name in watched {
            if let Some(path) = git(
                &dir,
                &["rev-parse", "--path-format=absolute", "--git-path", &name],
            ) && Path::new(&path).exists()
            {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!(
        "cargo:rustc-env=SWITCHBOARD_BUILD={}",
        build_stamp::describe(&archive, log.as_deref())
    );
}
