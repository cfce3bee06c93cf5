//! Test harnesses shared by Switchboard's workspace-level tests.
//!
//! - [`e2e::App`]: the real app binary in a private Xvfb display, driven
//!   over WebDriver by WebKitWebDriver, with PNG screenshots on
//!   failure and on request.
//! - [`keychain::SecretService`]: a private D-Bus session with an unlocked
//!   gnome-keyring, so keychain tests never touch the user's real keyring and
//!   work where no D-Bus session exists.
//!
//! - [`dbus::PrivateBus`]: a session bus on which nothing is activated, so
//!   no portal, accessibility bus or keyring starts behind a test's back.
//!
//! - [`history_gen`]: Zipf-distributed text and generated ChatGPT exports,
//!   for import tests and the history benchmark.
//!
//! The harnesses start their helper processes in their own process groups,
//! marked in their environment, and stop every process carrying the mark
//! when dropped, so a failing test leaves nothing running ([`process`]).

#![allow(clippy::print_stderr, reason = "the harness reports to the test log")]

pub mod dbus;
pub mod e2e;
pub mod history_gen;
pub mod keychain;
pub mod process;
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

/// A small xorshift generator seeded by the clock, so every run of a test
/// stops, kills or waits at other moments; put [`Rng::seed`] in failure
/// messages to tell runs apart.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded by the clock.
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self(seed | 1)
    }

    /// Seeded with `seed` (a run that can be repeated exactly).
    pub fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The current state (the seed, before the first draw).
    pub fn seed(&self) -> u64 {
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self::new()
    }
}

/// `n` text pieces of exactly four ASCII characters, three digits and
/// `end` (`000 `, `001 `, ... or `000\n`, ...): the engine estimates `n`
/// of them as exactly `n` tokens, so a bill can be checked against what a
/// mock provider delivered.
pub fn pieces(n: usize, end: char) -> Vec<String> {
    (0..n).map(|i| format!("{i:03}{end}")).collect()
}

/// What `from` (a child's stdout or stderr) writes, collected as it comes
/// by a thread of its own.
pub fn collect_output(
    mut from: impl std::io::Read + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let into = std::sync::Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut t) = into.lock() {
                t.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    text
}

/// A `config.toml` with the providers `oa` (OpenAI protocol), `an`
/// (Anthropic) and `gm` (Gemini) on `server`, serving `models`:
/// `(provider id, model id)` pairs, each priced 1 / 2 USD per million
/// input / output tokens.
pub fn mock_models_config(
    server: &switchboard_mock::MockServer,
    models: &[(&str, &str)],
) -> String {
    use switchboard_mock::Protocol;
    let mut out = String::new();
    for (id, kind, protocol) in [
        ("oa", "openai", Protocol::OpenAi),
        ("an", "anthropic", Protocol::Anthropic),
        ("gm", "gemini", Protocol::Gemini),
    ] {
        out += &format!(
            "[providers.{id}]\nkind = \"{kind}\"\nbase_url = \"{}\"\n",
            server.base_url(protocol)
        );
        for (_, model) in models.iter().filter(|(p, _)| *p == id) {
            out += &format!(
                "[[providers.{id}.models]]\nid = \"{model}\"\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n"
            );
        }
    }
    out
}

/// A temporary data directory whose `config.toml` is
/// [`mock_providers_config`] for `server`.
pub fn mock_home(server: &switchboard_mock::MockServer) -> std::io::Result<tempfile::TempDir> {
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        mock_providers_config(server),
    )?;
    Ok(home)
}

/// Write `conversations` saved conversations into the data directory
/// `home`, as the app records them: `rounds` rounds each, answered by
/// `panes` panes (model `oa:model-<pane>`), with `answer(conversation,
/// round, pane)` as each answer's text. Conversation `c` is titled
/// `Conversation c`; round `r`'s prompt is `Question r of c`.
pub fn seed_conversations(
    home: &std::path::Path,
    conversations: usize,
    rounds: usize,
    panes: u32,
    answer: impl Fn(usize, usize, u32) -> String,
) -> anyhow::Result<()> {
    use std::time::Duration;
    use switchboard_engine::hooks::RequestTrace;
    use switchboard_engine::{AttemptResult, DataDir, FinishReason, Store, Timing, Usage};

    let store = Store::open(&DataDir::at(home)?)?;
    let rec = store.recorder(false);
    for c in 0..conversations {
        let conv = rec.start_conversation(&format!("Conversation {c}"), &[])?;
        for r in 0..rounds {
            let q = rec.add_round(conv, &format!("Question {r} of {c}"), &[], None)?;
            for pane in 0..panes {
                let result = AttemptResult {
                    provider: "oa".into(),
                    model: format!("model-{pane}"),
                    text: answer(c, r, pane),
                    reasoning: String::new(),
                    finish_reason: Some(FinishReason::Stop),
                    usage: Usage {
                        input_tokens: Some(100),
                        output_tokens: Some(400),
                        ..Usage::default()
                    },
                    cost: None,
                    billed: None,
                    timing: Timing {
                        ttft: Some(Duration::from_millis(200)),
                        total: Duration::from_millis(1500),
                        tokens_per_s: Some(300.0),
                        ..Timing::default()
                    },
                    error: None,
                };
                rec.add_answer(
                    conv,
                    q,
                    pane,
                    &format!("oa:model-{pane}"),
                    &result,
                    &RequestTrace::default(),
                )?;
            }
        }
    }
    Ok(())
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

/// The `(role, text)` turns of a generation request body in any of the
/// three wire protocols (`assistant` for Gemini's `model`), system prompt
/// left out: what a mock provider was asked.
pub fn request_turns(body: &serde_json::Value) -> Vec<(String, String)> {
    use serde_json::Value;
    let text_of = |content: &Value| -> String {
        match content {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
            _ => String::new(),
        }
    };
    if let Some(contents) = body.get("contents").and_then(Value::as_array) {
        return contents
            .iter()
            .map(|c| {
                let role = match c["role"].as_str().unwrap_or("") {
                    "model" => "assistant",
                    other => other,
                };
                (role.to_owned(), text_of(&c["parts"]))
            })
            .collect();
    }
    body["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter(|m| m["role"] != "system")
                .map(|m| {
                    (
                        m["role"].as_str().unwrap_or("").to_owned(),
                        text_of(&m["content"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `switchboard-cli` binary: `$SWITCHBOARD_CLI`, else the one beside
/// the test's build profile directory.
pub fn cli_binary() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("SWITCHBOARD_CLI") {
        return Ok(PathBuf::from(p));
    }
    let bin = bin_dir()?.join("switchboard-cli");
    if !bin.is_file() {
        anyhow::bail!(
            "{} does not exist: build it first with `cargo build -p switchboard-cli`",
            bin.display()
        );
    }
    Ok(bin)
}

/// A one-turn request ("go") from a pane to `target`, not recorded in the
/// history (`record: None`): what the service tests ask the engine.
pub fn ask_request(stream_id: u64, target: &str) -> switchboard_protocol::AskRequest {
    use switchboard_protocol::{AskRequest, PaneParams, Turn, TurnRole};
    AskRequest {
        stream_id,
        target: target.into(),
        turns: vec![Turn {
            role: TurnRole::User,
            content: "go".into(),
            attachments: Vec::new(),
        }],
        params: PaneParams::default(),
        record: None,
    }
}
