//! `keys` end to end against a real Secret Service (a private D-Bus session
//! with gnome-keyring, from `switchboard_tests::keychain`), the real
//! binary, a real data directory and a mock provider that checks the key.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use switchboard_mock::{MockServer, Protocol, Scenario};
use switchboard_tests::keychain::SecretService;

/// Long and unique, so a search for it cannot hit by accident.
const KEY: &str = "sk-live-7f3c9a1e5b2d48c6a0e4f19d3b7c5a2e-wxyz";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn cli(home: &Path, env: &[(&'static str, String)], stdin: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"));
    cmd.args(args)
        .env("SWITCHBOARD_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("SWITCHBOARD_KEY_OA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stdout.contains(KEY) && !run.stderr.contains(KEY),
        "{args:?} printed the key"
    );
    run
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn assert_key_in_no_file(dir: &Path) {
    let needle = &KEY.as_bytes()[..24];
    let all = files(dir);
    assert!(
        all.iter().any(|p| p.ends_with("switchboard.sqlite3")),
        "{all:?}"
    );
    for path in all {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the key is in {}",
            path.display()
        );
    }
}

fn home_for(server: &MockServer) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[providers.an]\nkind = \"anthropic\"\nbase_url = \"{}\"\n",
            server.base_url(Protocol::OpenAi),
            server.base_url(Protocol::Anthropic)
        ),
    )
    .unwrap();
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_from_stdin_is_listed_by_its_last_four_works_and_is_written_nowhere() {
    let keyring = SecretService::start().unwrap();
    let env = keyring.env();
    let server = MockServer::start().await.unwrap();
    server.script(
        "oa-model",
        Scenario::default().with_text(&["hi"]).with_key(KEY),
    );
    let home = home_for(&server);
    let h = home.path();

    let set = cli(h, &env, Some(&format!("{KEY}\n")), &["keys", "set", "oa"]);
    assert_eq!(set.code, Some(0), "{}", set.stderr);
    assert!(set.stdout.contains("••••wxyz"), "{}", set.stdout);

    // A provider id that is not configured is still listed, through the index.
    let lab = cli(
        h,
        &env,
        Some("lab-secret-0001"),
        &["keys", "set", "lab-x", "--json"],
    );
    assert_eq!(lab.code, Some(0), "{}", lab.stderr);
    assert!(
        lab.stderr.contains("neither a preset nor configured"),
        "{}",
        lab.stderr
    );

    let list = json(&cli(h, &env, None, &["keys", "list", "--json"]));
    let mut listed: Vec<(String, String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["provider"].as_str().unwrap().to_owned(),
                k["last4"].as_str().unwrap().to_owned(),
                k["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("lab-x".into(), "0001".into(), "keychain".into()),
            ("oa".into(), "wxyz".into(), "keychain".into()),
        ]
    );
    let text = cli(h, &env, None, &["keys", "list"]);
    assert!(
        text.stdout.contains("oa") && text.stdout.contains("••••wxyz"),
        "{}",
        text.stdout
    );

    // The stored key is the one the provider accepts.
    let test = cli(h, &env, None, &["keys", "test", "oa", "--json"]);
    assert_eq!(test.code, Some(0), "{}\n{}", test.stdout, test.stderr);
    let report = json(&test);
    assert_eq!(report["ok"], true);
    assert_eq!(report["source"], "keychain");
    assert_eq!(report["models"], 1);
    let sent = server.requests();
    assert!(
        sent.iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {KEY}"))),
        "the key was sent as a bearer token"
    );

    // A wrong key is reported as an auth failure, with exit code 1.
    let wrong = cli(h, &env, Some("sk-wrong-1234"), &["keys", "set", "an"]);
    assert_eq!(wrong.code, Some(0));
    server.script("an-model", Scenario::default().with_key("sk-right-9999"));
    let test = cli(h, &env, None, &["keys", "test", "an", "--json"]);
    assert_eq!(test.code, Some(1), "{}", test.stdout);
    let report = json(&test);
    assert_eq!(report["ok"], false);
    assert_eq!(report["error"]["kind"], "auth");
    assert_eq!(report["last4"], "1234");

    // History and its exports never carry a key.
    let import = h.join("conv.json");
    std::fs::write(
        &import,
        r#"{"format":"switchboard.conversation","version":1,"title":"keys","created_at_ms":0,"updated_at_ms":0,
            "messages":[{"id":1,"role":"user","content":"which key do you use?","created_at_ms":0}]}"#,
    )
    .unwrap();
    assert_eq!(
        cli(
            h,
            &env,
            None,
            &["history", "import", import.to_str().unwrap()]
        )
        .code,
        Some(0)
    );
    for format in ["md", "json"] {
        let export = cli(
            h,
            &env,
            None,
            &["history", "export", "1", "--format", format],
        );
        assert_eq!(export.code, Some(0), "{}", export.stderr);
        assert!(export.stdout.contains("which key do you use?"));
    }
    assert_key_in_no_file(h);

    // Removing it removes it from the keychain and the listing.
    let rm = cli(h, &env, None, &["keys", "rm", "oa"]);
    assert_eq!(rm.code, Some(0), "{}", rm.stderr);
    let list = json(&cli(h, &env, None, &["keys", "list", "--json"]));
    assert!(!list.to_string().contains("wxyz"), "{list}");
    let test = cli(h, &env, None, &["keys", "test", "oa"]);
    assert_eq!(test.code, Some(1));
    assert!(
        test.stderr.contains("SWITCHBOARD_KEY_OA"),
        "{}",
        test.stderr
    );
    assert_eq!(
        cli(h, &env, None, &["keys", "rm", "oa"]).code,
        Some(1),
        "nothing left to remove"
    );
    assert_key_in_no_file(h);
}

#[test]
fn keys_come_only_from_stdin_and_empty_input_is_refused() {
    let keyring = SecretService::start().unwrap();
    let env = keyring.env();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let empty = cli(h, &env, Some("  \n"), &["keys", "set", "openai"]);
    assert_eq!(empty.code, Some(2));
    assert!(empty.stderr.contains("no key on stdin"), "{}", empty.stderr);
    let two = cli(
        h,
        &env,
        Some("sk-one\nsk-two\n"),
        &["keys", "set", "openai"],
    );
    assert_eq!(two.code, Some(2));
    // A key on the command line is a usage error, not a stored key.
    let argv = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(["keys", "set", "openai", "sk-on-the-command-line"])
        .env("SWITCHBOARD_HOME", h)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(argv.status.code(), Some(2));
    let list = json(&cli(h, &env, None, &["keys", "list", "--json"]));
    assert_eq!(list, Value::Array(Vec::new()));
}

#[test]
fn without_a_keychain_setting_a_key_fails_clearly_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let no_bus = [("XDG_RUNTIME_DIR", "/nonexistent".to_owned())];
    let set = cli(h, &no_bus, Some(KEY), &["keys", "set", "oa"]);
    assert_ne!(set.code, Some(0));
    assert!(
        set.stderr.contains("keychain is not reachable"),
        "{}",
        set.stderr
    );
    assert!(set.stderr.contains("SWITCHBOARD_KEY_OA"), "{}", set.stderr);
    assert_key_in_no_file(h);
    // The environment variable works, and is listed as such.
    let env_key = [
        ("XDG_RUNTIME_DIR", "/nonexistent".to_owned()),
        ("SWITCHBOARD_KEY_OPENAI", "sk-env-5678".to_owned()),
    ];
    let list = cli(h, &env_key, None, &["keys", "list", "--json"]);
    assert_eq!(
        list.code,
        Some(1),
        "the keychain part failed: {}",
        list.stderr
    );
    assert!(list.stderr.contains("SWITCHBOARD_KEY_"), "{}", list.stderr);
    let listed = json(&list);
    assert_eq!(listed[0]["provider"], "openai");
    assert_eq!(listed[0]["last4"], "5678");
    assert_eq!(listed[0]["source"], "environment");
}
