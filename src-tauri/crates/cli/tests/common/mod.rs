//! What the CLI's integration tests share: running the real binary.

use std::path::Path;

/// What one run of `switchboard-cli` left: its exit code and its output.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the real `switchboard-cli` with `home` as its data directory and
/// `env` added; without a session bus, so no keychain is reached and keys
/// come from the `SWITCHBOARD_KEY_*` variables the test passes.
pub async fn cli(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-cli"));
    cmd.args(args)
        .env("SWITCHBOARD_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
