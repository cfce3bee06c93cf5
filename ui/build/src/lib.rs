//! Builds Switchboard's wasm UI into `ui/dist`, the folder the app embeds.
//!
//! It does what trunk did for this project, with nothing to install but the
//! `wasm32-unknown-unknown` target: [`build`] runs `cargo build -p
//! switchboard-ui --target wasm32-unknown-unknown`, runs wasm-bindgen (target
//! `web`) on the module through the `wasm-bindgen-cli-support` library, and
//! lays out `dist/` next to the page, its stylesheet and icon. The tool itself
//! is an ordinary workspace binary, so after its first build it is cached in
//! `target/` and a UI rebuild costs only the UI's own compile.
//!
//! ```no_run
//! use switchboard_uibuild::{Profile, build};
//! # fn main() -> anyhow::Result<()> {
//! let report = build(std::path::Path::new("."), Profile::Release)?;
//! assert!(report.dist.join("index.html").is_file());
//! # Ok(())
//! # }
//! ```
//!
//! Two rules the output keeps:
//! - **No inline script.** The page loads `boot.js`, a separate module that
//!   imports the generated bindings and starts them with the `.wasm` URL, so
//!   the strict CSP in `tauri.conf.json` (`script-src 'self'
//!   'wasm-unsafe-eval'`) needs no hash or nonce.
//! - **All or nothing.** Everything is written to a staging folder beside
//!   `dist/` and swapped in by renames at the end: a failed build leaves the
//!   previous `dist/` as it was, never half of a new one.
//!
//! The wasm-bindgen library must be the very version the UI links
//! (`wasm-bindgen` in `Cargo.lock`): generated glue from another version does
//! not match the module. [`check_wasm_bindgen_versions`] refuses to build
//! otherwise, before compiling anything.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The UI crate (and its binary target).
const UI_PACKAGE: &str = "switchboard-ui";
/// Name of the generated files: `switchboard-ui.js`, `switchboard-ui_bg.wasm`.
const OUT_NAME: &str = "switchboard-ui";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Files copied into `dist/` as they are: (path from the workspace root, name in `dist/`).
const STATIC_FILES: &[(&str, &str)] = &[
    ("ui/index.html", "index.html"),
    ("ui/style.css", "style.css"),
    ("icons/32x32.png", "32x32.png"),
];

/// Which cargo profile the UI is compiled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `cargo build`: quick to compile, an ~12 MB module.
    Debug,
    /// `cargo build --release`: what users run.
    Release,
}

impl Profile {
    /// `debug` or `release`, as cargo and the Makefile spell it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// What a build produced and how long its steps took.
#[derive(Debug)]
pub struct Report {
    /// The finished `ui/dist`.
    pub dist: PathBuf,
    /// Size of the module cargo produced, before wasm-bindgen.
    pub rustc_wasm_bytes: u64,
    /// Size of `dist/switchboard-ui_bg.wasm`.
    pub wasm_bytes: u64,
    /// Size of `dist/switchboard-ui.js`.
    pub js_bytes: u64,
    /// Time spent in `cargo build` for wasm32.
    pub cargo_time: Duration,
    /// Time spent in wasm-bindgen and writing `dist/`.
    pub bindgen_time: Duration,
}

/// Build the UI into `<root>/ui/dist`, `root` being the workspace root.
pub fn build(root: &Path, profile: Profile) -> anyhow::Result<Report> {
    let lock = fs::read_to_string(root.join("Cargo.lock"))
        .with_context(|| format!("could not read {}", root.join("Cargo.lock").display()))?;
    check_wasm_bindgen_versions(&lock)?;

    let started = Instant::now();
    let module = cargo_build_ui(root, profile)?;
    let cargo_time = started.elapsed();

    let started = Instant::now();
    let ui = root.join("ui");
    let staging = ui.join(".dist-new");
    let previous = ui.join(".dist-old");
    remove_dir_if_present(&staging)?;
    remove_dir_if_present(&previous)?;
    let filled = fill_dist(root, &module, &staging, profile);
    if let Err(e) = filled {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    let dist = ui.join("dist");
    swap_in(&staging, &dist, &previous)?;
    let bindgen_time = started.elapsed();

    Ok(Report {
        rustc_wasm_bytes: fs::metadata(&module)?.len(),
        wasm_bytes: fs::metadata(dist.join(format!("{OUT_NAME}_bg.wasm")))?.len(),
        js_bytes: fs::metadata(dist.join(format!("{OUT_NAME}.js")))?.len(),
        dist,
        cargo_time,
        bindgen_time,
    })
}

/// Check that `Cargo.lock` holds exactly one `wasm-bindgen` and one
/// `wasm-bindgen-cli-support`, of the same version; returns that version.
pub fn check_wasm_bindgen_versions(cargo_lock: &str) -> anyhow::Result<String> {
    let runtime = locked_versions(cargo_lock, "wasm-bindgen");
    let support = locked_versions(cargo_lock, "wasm-bindgen-cli-support");
    let [runtime] = runtime.as_slice() else {
        bail!("Cargo.lock should hold exactly one wasm-bindgen version, it holds {runtime:?}");
    };
    let [support] = support.as_slice() else {
        bail!(
            "Cargo.lock should hold exactly one wasm-bindgen-cli-support version, it holds {support:?}"
        );
    };
    if runtime != support {
        bail!(
            "the UI links wasm-bindgen {runtime} but this tool uses wasm-bindgen-cli-support \
             {support}: pin both to the same version (`wasm-bindgen` in the root Cargo.toml, \
             `wasm-bindgen-cli-support` in ui/build/Cargo.toml)"
        );
    }
    Ok(runtime.clone())
}

/// Every version of package `name` in a `Cargo.lock`.
fn locked_versions(cargo_lock: &str, name: &str) -> Vec<String> {
    let wanted = format!("name = \"{name}\"");
    let mut versions = Vec::new();
    let mut lines = cargo_lock.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != wanted {
            continue;
        }
        // In Cargo.lock, `version` is the line right after `name`.
        if let Some(version) = lines
            .next()
            .and_then(|l| l.strip_prefix("version = \""))
            .and_then(|l| l.strip_suffix('"'))
        {
            versions.push(version.to_owned());
        }
    }
    versions
}

/// `cargo build` the UI for wasm32; returns the path of the `.wasm` it wrote.
fn cargo_build_ui(root: &Path, profile: Profile) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--locked",
            "-p",
            UI_PACKAGE,
            "--target",
            WASM_TARGET,
        ])
        // Artifacts on stdout as JSON, diagnostics rendered on stderr as usual.
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let mut child = cmd.spawn().context("could not run cargo")?;
    let stdout = child.stdout.take().context("cargo has no stdout")?;
    let mut module = None;
    for line in BufReader::new(stdout).lines() {
        if let Some(path) = wasm_artifact(&line?) {
            module = Some(path);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo build of {UI_PACKAGE} for {WASM_TARGET} failed ({status})");
    }
    module.with_context(|| format!("cargo built {UI_PACKAGE} but reported no .wasm file"))
}

/// The `.wasm` file of the UI's binary target, if this cargo JSON message
/// announces it.
fn wasm_artifact(message: &str) -> Option<PathBuf> {
    let msg: serde_json::Value = serde_json::from_str(message).ok()?;
    if msg["reason"] != "compiler-artifact" || msg["target"]["name"] != UI_PACKAGE {
        return None;
    }
    msg["filenames"]
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// Write the whole `dist/` into `out`: bindings, page, boot script, assets.
fn fill_dist(root: &Path, module: &Path, out: &Path, profile: Profile) -> anyhow::Result<()> {
    let release = profile == Profile::Release;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(module)
        .out_name(OUT_NAME)
        .web(true)?
        .typescript(false)
        // The release profile keeps the `target_features` section for
        // wasm-bindgen (see the root Cargo.toml); names and producers are
        // dropped here instead. Debug builds keep names for readable panics.
        .remove_name_section(release)
        .remove_producers_section(release)
        .generate(out)
        .with_context(|| format!("wasm-bindgen failed on {}", module.display()))?;
    fs::write(out.join("boot.js"), boot_script())?;
    for (from, to) in STATIC_FILES {
        let from = root.join(from);
        fs::copy(&from, out.join(to))
            .with_context(|| format!("could not copy {}", from.display()))?;
    }
    let page = fs::read_to_string(out.join("index.html"))?;
    for reference in local_references(&page) {
        if !out.join(&reference).is_file() {
            bail!(
                "ui/index.html refers to {reference:?}, which the build does not produce \
                 (list it in STATIC_FILES in ui/build/src/lib.rs)"
            );
        }
    }
    Ok(())
}

/// The module `index.html` loads: start the generated bindings with the
/// module's URL (the bindings are generated without a default path).
fn boot_script() -> String {
    format!(
        "// Generated by switchboard-uibuild: starts the wasm UI.\n\
         import init from \"./{OUT_NAME}.js\";\n\
         init({{ module_or_path: new URL(\"{OUT_NAME}_bg.wasm\", import.meta.url) }})\n\
         \x20 .catch((e) => console.error(\"the Switchboard UI failed to start\", e));\n"
    )
}

/// Relative `href`/`src` targets in an HTML page (files it expects beside it).
fn local_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let Some(end) = rest.find('"') else { break };
            let value = &rest[..end];
            let external = value.contains(':') || value.starts_with(['/', '#']);
            if !value.is_empty() && !external {
                found.push(value.to_owned());
            }
        }
    }
    found
}

/// Replace `dist` by `staging`, keeping the old one until the new one is in place.
fn swap_in(staging: &Path, dist: &Path, previous: &Path) -> anyhow::Result<()> {
    let had_dist = dist.exists();
    if had_dist {
        fs::rename(dist, previous)
            .with_context(|| format!("could not move {} aside", dist.display()))?;
    }
    if let Err(e) = fs::rename(staging, dist) {
        if had_dist {
            let _ = fs::rename(previous, dist);
        }
        return Err(e)
            .with_context(|| format!("could not move the new build to {}", dist.display()));
    }
    remove_dir_if_present(previous)
}

fn remove_dir_if_present(dir: &Path) -> anyhow::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("could not remove {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[[package]]
name = "wasm-bindgen"
version = "0.2.130"
dependencies = [
 "wasm-bindgen-shared",
]

[[package]]
name = "wasm-bindgen-cli-support"
version = "0.2.130"
"#;

    #[test]
    fn the_workspace_lock_pins_one_wasm_bindgen_for_the_ui_and_this_tool() {
        let lock = include_str!("../../../Cargo.lock");
        let version = check_wasm_bindgen_versions(lock).unwrap();
        assert!(version.starts_with("0.2."), "{version}");
    }

    #[test]
    fn matching_versions_pass_and_a_mismatch_is_refused_with_both_versions() {
        assert_eq!(check_wasm_bindgen_versions(LOCK).unwrap(), "0.2.130");
        let bumped = LOCK.replacen("version = \"0.2.130\"", "version = \"0.2.131\"", 1);
        let err = check_wasm_bindgen_versions(&bumped)
            .unwrap_err()
            .to_string();
        assert!(err.contains("0.2.131") && err.contains("0.2.130"), "{err}");
        let without_tool = LOCK.replace("wasm-bindgen-cli-support", "something-else");
        assert!(check_wasm_bindgen_versions(&without_tool).is_err());
    }

    #[test]
    fn only_the_ui_binary_wasm_is_taken_from_cargo_messages() {
        let ui = r#"{"reason":"compiler-artifact","target":{"name":"switchboard-ui"},"filenames":["/t/wasm32-unknown-unknown/release/switchboard-ui.wasm"]}"#;
        let dep = r#"{"reason":"compiler-artifact","target":{"name":"leptos"},"filenames":["/t/libleptos.rlib"]}"#;
        assert_eq!(
            wasm_artifact(ui),
            Some(PathBuf::from(
                "/t/wasm32-unknown-unknown/release/switchboard-ui.wasm"
            ))
        );
        assert_eq!(wasm_artifact(dep), None);
        assert_eq!(
            wasm_artifact(r#"{"reason":"build-finished","success":true}"#),
            None
        );
    }

    #[test]
    fn the_page_references_only_files_the_build_writes() {
        let page = include_str!("../../index.html");
        let refs = local_references(page);
        assert!(refs.contains(&"boot.js".to_owned()), "{refs:?}");
        assert!(!page.contains("<script>"), "the CSP forbids inline scripts");
        for r in refs {
            let listed = STATIC_FILES.iter().any(|(_, to)| *to == r) || r == "boot.js";
            assert!(
                listed,
                "index.html refers to {r}, which no build step writes"
            );
        }
        let boot = boot_script();
        assert!(boot.contains("./switchboard-ui.js") && boot.contains("switchboard-ui_bg.wasm"));
    }

    #[test]
    fn a_failed_swap_source_keeps_the_previous_dist() {
        let dir = tempfile::tempdir().unwrap();
        let dist = dir.path().join("dist");
        fs::create_dir(&dist).unwrap();
        fs::write(dist.join("index.html"), "old").unwrap();
        let missing = dir.path().join(".dist-new");
        assert!(swap_in(&missing, &dist, &dir.path().join(".dist-old")).is_err());
        assert_eq!(fs::read_to_string(dist.join("index.html")).unwrap(), "old");

        fs::create_dir(&missing).unwrap();
        fs::write(missing.join("index.html"), "new").unwrap();
        swap_in(&missing, &dist, &dir.path().join(".dist-old")).unwrap();
        assert_eq!(fs::read_to_string(dist.join("index.html")).unwrap(), "new");
        assert!(!dir.path().join(".dist-old").exists() && !missing.exists());
    }
}
