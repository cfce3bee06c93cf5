//! `switchboard-cli ask --attach` end to end: images and PDFs from files on
//! disk, through the real binary, to mock providers of all three protocols
//! that check them as the vendors do; refused before sending where the
//! model or the provider cannot take them; stored once with the
//! conversation, exported and deleted with it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchboard_mock::{MockServer, MockUsage, Protocol, Scenario, samples};

mod common;
use common::Run;

/// The CLI with every mock provider's key in its environment.
async fn cli(home: &Path, args: &[&str]) -> Run {
    common::cli(
        home,
        &[
            ("SWITCHBOARD_KEY_OA", "k-oa"),
            ("SWITCHBOARD_KEY_AN", "k-an"),
            ("SWITCHBOARD_KEY_GM", "k-gm"),
            ("SWITCHBOARD_KEY_WORK", "k-an"),
        ],
        args,
    )
    .await
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

/// Providers of the three protocols at the mock; `vision` models take
/// images and PDFs, `text-only` lists none, `local` (a LAN server) takes
/// images only and has no price; `work` is the Anthropic preset (its size
/// limits) pointed at the mock.
fn home_for(server: &MockServer, extra: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[providers.oa]
kind = "openai"
base_url = "{oa}"
[[providers.oa.models]]
id = "vision"
accepts = ["image", "pdf"]
input_usd_per_mtok = "2"
output_usd_per_mtok = "8"
[[providers.oa.models]]
id = "text-only"
input_usd_per_mtok = "1"
output_usd_per_mtok = "1"

[providers.an]
kind = "anthropic"
base_url = "{an}"
[[providers.an.models]]
id = "vision"
accepts = ["image", "pdf"]
input_usd_per_mtok = "10"
output_usd_per_mtok = "10"

[providers.gm]
kind = "gemini"
base_url = "{gm}"
[[providers.gm.models]]
id = "vision"
accepts = ["image", "pdf"]
input_usd_per_mtok = "1"
output_usd_per_mtok = "1"

[providers.lan]
kind = "openai"
base_url = "{oa}"
[[providers.lan.models]]
id = "llava"
accepts = ["image"]

[providers.work]
preset = "anthropic"
base_url = "{an}"
{extra}
"#,
        oa = server.base_url(Protocol::OpenAi),
        an = server.base_url(Protocol::Anthropic),
        gm = server.base_url(Protocol::Gemini),
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    home
}

fn scenario(text: &str) -> Scenario {
    Scenario::default()
        .with_text(&[text])
        .with_usage(MockUsage {
            input: 1500,
            cached_input: 0,
            output: 20,
            reasoning: 0,
        })
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Where `needle` starts in `hay`.
fn at(hay: &[u8], needle: &str) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("not in the request: {}…", &needle[..needle.len().min(40)]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_and_a_pdf_reach_three_protocols_and_stay_with_the_conversation() {
    let server = MockServer::start().await.unwrap();
    server.script("vision", scenario("It matches."));
    server.script("text-only", scenario("never sent"));
    let home = home_for(&server, "");
    let files = tempfile::tempdir().unwrap();
    let png = samples::png(120, 80, 7);
    let pdf = samples::pdf(3, "quarterly report");
    // Misleading names: the type comes from the bytes.
    let photo = write(files.path(), "chart.png", &png);
    let report = write(files.path(), "report.pdf", &pdf);

    let run = cli(
        home.path(),
        &[
            "ask",
            "--json",
            "-m",
            "oa:vision",
            "-m",
            "an:vision",
            "-m",
            "gm:vision",
            "-m",
            "oa:text-only",
            "--attach",
            photo.to_str().unwrap(),
            "--attach",
            report.to_str().unwrap(),
            "Does the chart match the report?",
        ],
    )
    .await;
    // One target could not take them: exit 1, the others answered.
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let results = json(&run);
    for r in &results.as_array().unwrap()[..3] {
        assert_eq!(r["outcome"], "ok", "{r}");
        assert_eq!(r["text"], "It matches.");
        assert_eq!(r["usage"]["input_tokens"], 1500);
    }
    let refused = &results[3];
    assert_eq!(refused["outcome"], "error");
    assert_eq!(refused["error"]["kind"], "unsupported");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("chart.png not sent"), "{message}");
    assert!(
        message.contains("accepts = [\"image\", \"pdf\"]"),
        "{message}"
    );
    assert_eq!(server.hits("text-only"), 0, "nothing was sent to it");

    // Each protocol got the bytes intact, image then PDF then the text.
    let (png64, pdf64) = (samples::base64_encode(&png), samples::base64_encode(&pdf));
    let generations: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(generations.len(), 3);
    for r in &generations {
        let raw = &r.raw_body;
        let (i, p, t) = (
            at(raw, &png64),
            at(raw, &pdf64),
            at(raw, "Does the chart match"),
        );
        assert!(i < p && p < t, "{}: order {i} {p} {t}", r.path);
        let body = String::from_utf8_lossy(raw);
        if r.path.starts_with("/v1/chat") {
            assert!(body.contains("\"filename\":\"report.pdf\""));
        }
        assert!(body.contains("application/pdf") && body.contains("image/png"));
    }

    // Stored once in the data directory, with the conversation.
    let stored = files_under(&home.path().join("attachments"));
    assert_eq!(stored.len(), 2, "{stored:?}");
    let list = json(&cli(home.path(), &["history", "list", "--json"]).await);
    let id = list["conversations"][0]["id"].to_string();
    let export = cli(home.path(), &["history", "export", &id, "--format", "json"]).await;
    let doc = json(&export);
    let attached = &doc["messages"][0]["attachments"];
    assert_eq!(attached[0]["name"], "chart.png");
    assert_eq!(attached[0]["media_type"], "image/png");
    assert_eq!(attached[1]["media_type"], "application/pdf");
    assert_eq!(attached[1]["data"], pdf64.as_str());
    let md = cli(home.path(), &["history", "export", &id]).await.stdout;
    assert!(md.contains("![chart.png]("), "{md}");
    assert!(md.contains("[report.pdf]("), "{md}");

    // Deleted with the conversation (the JSON export brings them back).
    let exported = write(files.path(), "conv.json", export.stdout.as_bytes());
    let store =
        switchboard_engine::Store::open(&switchboard_engine::DataDir::at(home.path()).unwrap())
            .unwrap();
    store
        .delete_conversation(switchboard_engine::ConversationId(id.parse().unwrap()))
        .unwrap();
    drop(store);
    assert!(files_under(&home.path().join("attachments")).is_empty());
    let back = cli(
        home.path(),
        &["history", "import", exported.to_str().unwrap()],
    )
    .await;
    assert_eq!(back.code, Some(0), "{}", back.stderr);
    assert_eq!(files_under(&home.path().join("attachments")).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_capabilities_are_checked_before_anything_is_sent() {
    let server = MockServer::start().await.unwrap();
    server.script("llava", scenario("A cat."));
    server.script("claude-big", scenario("never sent"));
    let home = home_for(&server, "[[providers.work.models]]\nid = \"claude-big\"\n");
    let files = tempfile::tempdir().unwrap();
    let small = write(files.path(), "cat.png", &samples::png(32, 32, 1));
    let pdf = write(files.path(), "doc.pdf", &samples::pdf(1, "x"));
    // 1500×1200 RGB, stored uncompressed: about 5.4 MB, over Anthropic's 5 MB.
    let big = write(files.path(), "poster.png", &samples::png(1500, 1200, 2));
    let text = write(
        files.path(),
        "notes.png",
        b"plain text, named like an image",
    );

    // A local server's model that says it takes images gets them, for free.
    let run = cli(
        home.path(),
        &[
            "ask",
            "--json",
            "-m",
            "lan:llava",
            "--attach",
            small.to_str().unwrap(),
            "What is it?",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(json(&run)[0]["cost_usd"], 0.0);
    // ...but not a PDF, which it does not say it takes.
    let run = cli(
        home.path(),
        &[
            "ask",
            "--json",
            "-m",
            "lan:llava",
            "--attach",
            pdf.to_str().unwrap(),
            "Read it",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1));
    let r = &json(&run)[0];
    assert_eq!(r["error"]["kind"], "unsupported");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lists lan:llava as not taking PDF documents"),
        "{r}"
    );
    assert_eq!(server.hits("llava"), 1);

    // The Anthropic preset's 5 MB image limit, before sending. (Its
    // models take images by the preset's default.)
    let run = cli(
        home.path(),
        &[
            "ask",
            "--json",
            "-m",
            "work:claude-big",
            "--attach",
            big.to_str().unwrap(),
            "Hi",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r = &json(&run)[0];
    assert_eq!(r["error"]["kind"], "unsupported", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("poster.png is 5.2 MB"), "{message}");
    assert!(
        message.contains("takes images of at most 5 MB"),
        "{message}"
    );
    assert_eq!(server.hits("claude-big"), 0);

    // Not an image or a PDF, whatever its name: a usage error.
    let run = cli(
        home.path(),
        &[
            "ask",
            "-m",
            "lan:llava",
            "--attach",
            text.to_str().unwrap(),
            "Hi",
        ],
    )
    .await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("notes.png is not a PNG, JPEG, WebP or GIF image or a PDF")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_holds_for_what_the_attachments_can_cost() {
    let server = MockServer::start().await.unwrap();
    server.script("vision", scenario("ok"));
    // $10 per Mtok in and out at `an`; the budget has $0.05 of room.
    let budget = "[budgets.tight]\nscope = \"global\"\nperiod = \"daily\"\nlimit_usd = \"0.05\"\n";
    let home = home_for(&server, budget);
    let files = tempfile::tempdir().unwrap();
    // Ten pages: at most 4,600 tokens each at Anthropic, 46,000 × $10/Mtok = $0.46.
    let pdf = write(files.path(), "long.pdf", &samples::pdf(10, "page"));
    let run = cli(
        home.path(),
        &[
            "ask",
            "--json",
            "--max-tokens",
            "100",
            "-m",
            "an:vision",
            "Hi",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "text alone fits: {}", run.stderr);
    let run = cli(
        home.path(),
        &[
            "ask",
            "--json",
            "--max-tokens",
            "100",
            "-m",
            "an:vision",
            "--attach",
            pdf.to_str().unwrap(),
            "Hi",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1));
    let r = &json(&run)[0];
    assert_eq!(r["error"]["kind"], "budget", "{r}");
    assert_eq!(
        server.hits("vision"),
        1,
        "only the text-only request was sent"
    );
}
