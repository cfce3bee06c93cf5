//! `make run` and `make package` say how long each build phase took: every
//! command that compiles or packs goes through `.ci/timed`, which prints
//! `==> NAME` before it and `==> NAME: Ns` (or `FAILED after Ns`) after it,
//! and keeps its exit status. Checked with `make -n` (which prints the
//! commands without running them) and by running `.ci/timed` itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::process::Command;

fn make_n(args: &[&str]) -> Vec<String> {
    let out = Command::new("make")
        .args(["-n", "--no-print-directory"])
        .args(args)
        .current_dir(switchboard_tests::workspace_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "make -n {args:?}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_build_phase_of_run_and_package_is_timed() {
    for (target, phases) in [
        (
            &["build", "PROFILE=release"][..],
            &["build ui (release)", "build app and cli (release)"][..],
        ),
        (
            &["build", "PROFILE=debug"][..],
            &["build ui (debug)", "build app and cli (debug)"][..],
        ),
        (
            &["package"][..],
            &["build app and cli (release)", "package (.deb)"][..],
        ),
    ] {
        let lines = make_n(target);
        for line in &lines {
            let builds = line.contains("cargo ") || line.contains("build-deb");
            assert!(
                !builds || line.starts_with(".ci/timed \""),
                "make {target:?} runs an untimed phase: {line}"
            );
        }
        for phase in phases {
            let timed = format!(".ci/timed \"{phase}\" ");
            assert!(
                lines.iter().any(|l| l.starts_with(&timed)),
                "make {target:?} has no phase {phase:?}: {lines:#?}"
            );
        }
    }
}

#[test]
fn a_timed_phase_prints_its_name_and_seconds_and_keeps_the_exit_status() {
    let timed = switchboard_tests::workspace_root().join(".ci/timed");
    let out = Command::new(&timed)
        .args(["a phase", "sh", "-c", "echo working; sleep 1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines[0], "==> a phase");
    assert_eq!(lines[1], "working");
    let secs: u64 = lines[2]
        .strip_prefix("==> a phase: ")
        .and_then(|s| s.strip_suffix('s'))
        .unwrap_or_else(|| panic!("{lines:?}"))
        .parse()
        .unwrap();
    assert!((1..=5).contains(&secs), "{lines:?}");

    let out = Command::new(&timed)
        .args(["broken", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("==> broken: FAILED after "), "{text}");
}
