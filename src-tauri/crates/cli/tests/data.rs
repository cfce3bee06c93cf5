//! `history`, `spend` and `budget` end to end: the real binary on a real
//! SQLite file in a temporary `SWITCHBOARD_HOME`, with answers produced by
//! real attempts against the mock providers and recorded through the same
//! engine API that `ask` uses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::path::Path;

use serde_json::Value;
use switchboard_engine::hooks::{RequestTrace, SettledCost};
use switchboard_engine::{
    AttemptResult, ChatRequest, Client, Config, Cost, DataDir, Secret, Store, Timeouts, run_attempt,
};
use switchboard_mock::{MockServer, MockUsage, Protocol, Scenario};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn cli(home: &Path, args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard-cli"))
        .args(args)
        .env("SWITCHBOARD_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(run: &Run) -> Value {
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn config_for(server: &MockServer) -> String {
    format!(
        r#"# my providers
[providers.oa]
kind = "openai"
base_url = "{oa}"

[[providers.oa.models]]
id = "oa-model"
input_usd_per_mtok = "2.50"
output_usd_per_mtok = "10"
cached_input_usd_per_mtok = "1.25"

[providers.an]
kind = "anthropic"
base_url = "{an}"

[[providers.an.models]]
id = "an-model"
input_usd_per_mtok = 3
output_usd_per_mtok = 15
"#,
        oa = server.base_url(Protocol::OpenAi),
        an = server.base_url(Protocol::Anthropic),
    )
}

/// Ask `prompt` of both mock targets the way `ask` does: reserve through
/// the budget gate, run the attempt, settle with its cost, record the
/// conversation. Returns the results.
async fn ask_and_record(
    home: &Path,
    title: &str,
    tags: &[&str],
    prompt: &str,
) -> Vec<AttemptResult> {
    let dir = DataDir::at(home).unwrap();
    let config = Config::load(&dir.config_file()).unwrap();
    let store = Store::open(&dir).unwrap();
    let gate = store.budget_gate(&config).unwrap();
    let rec = store.recorder(false);
    let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    let conv = rec.start_conversation(title, &tags).unwrap();
    let q = rec.add_user_message(conv, None, prompt).unwrap();
    let client = Client::new();
    let mut results = Vec::new();
    for (pane, (provider_id, model, key)) in
        [("oa", "oa-model", "k-oa"), ("an", "an-model", "k-an")]
            .into_iter()
            .enumerate()
    {
        let provider = config.provider(provider_id).unwrap();
        let price = config.catalog().price(&provider, model);
        let request = ChatRequest::new(model, prompt);
        let ctx = rec.spend_context(conv, provider_id, model, None, &tags);
        let hold = gate
            .reserve(&ctx, Some(Cost::from_usd("0.01").unwrap()))
            .unwrap();
        let r = run_attempt(
            &client,
            &provider,
            Some(&Secret::new(key)),
            &request,
            price.as_ref(),
            Timeouts::default(),
            |_| {},
        )
        .await;
        assert!(r.is_ok(), "{:?}", r.error);
        gate.settle(hold, SettledCost::of(&r));
        rec.add_answer(
            conv,
            q,
            pane as u32,
            &format!("{provider_id}:{model}"),
            &r,
            &RequestTrace::default(),
        )
        .unwrap();
        results.push(r);
    }
    results
}

async fn mock() -> MockServer {
    let server = MockServer::start().await.unwrap();
    let usage = |input, cached, output| MockUsage {
        input,
        cached_input: cached,
        output,
        reasoning: 0,
    };
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["The borrow checker ", "enforces ownership."])
            .with_usage(usage(1234, 200, 321))
            .with_key("k-oa"),
    );
    server.script(
        "an-model",
        Scenario::default()
            .with_text(&["Lifetimes describe ", "how long references live."])
            .with_usage(usage(5000, 0, 777))
            .with_key("k-an"),
    );
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_totals_equal_the_sum_of_the_answers_costs_to_the_nano_dollar() {
    let server = mock().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), config_for(&server)).unwrap();
    let mut results = Vec::new();
    results
        .extend(ask_and_record(home.path(), "Rust", &["acme"], "Explain the borrow checker").await);
    results.extend(ask_and_record(home.path(), "More Rust", &[], "Explain lifetimes").await);
    let sum: i64 = results.iter().map(|r| r.cost.unwrap().total.nanos()).sum();
    // 1234 in (200 cached) + 321 out at 2.5/1.25/10 and 5000 in + 777 out at 3/15, per Mtok.
    let per_pair = (1034 * 2_500_000 + 200 * 1_250_000 + 321 * 10_000_000 + 500) / 1000
        + (5000 * 3_000_000 + 777 * 15_000_000 + 500) / 1000;
    assert_eq!(sum, 2 * per_pair, "the mock's usage priced exactly");

    let by_provider = json(&cli(home.path(), &["spend", "--by", "provider", "--json"]));
    assert_eq!(by_provider["total"]["cost_nanos"], sum);
    assert_eq!(by_provider["total"]["requests"], 4);
    assert_eq!(by_provider["total"]["input_tokens"], 2 * (1234 + 5000));
    let groups = by_provider["groups"].as_array().unwrap();
    let group = |k: &str| groups.iter().find(|g| g["group"] == k).unwrap().clone();
    let oa: i64 = results
        .iter()
        .filter(|r| r.provider == "oa")
        .map(|r| r.cost.unwrap().total.nanos())
        .sum();
    assert_eq!(group("oa")["cost_nanos"], oa);
    assert_eq!(group("oa")["requests"], 2);
    assert_eq!(group("an")["cost_nanos"], sum - oa);
    // cost_usd is the exact amount as a JSON number.
    assert_eq!(
        (group("oa")["cost_usd"].as_f64().unwrap() * 1e9).round() as i64,
        oa
    );

    let by_day = json(&cli(home.path(), &["spend", "--json"]));
    assert_eq!(by_day["by"], "day");
    assert_eq!(by_day["groups"].as_array().unwrap().len(), 1);
    assert_eq!(by_day["groups"][0]["cost_nanos"], sum);
    let by_tag = json(&cli(home.path(), &["spend", "--by", "tag", "--json"]));
    let tagged = by_tag["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "acme")
        .unwrap()
        .clone();
    assert_eq!(tagged["cost_nanos"], sum / 2);
    let future = json(&cli(
        home.path(),
        &["spend", "--since", "2999-01-01", "--json"],
    ));
    assert_eq!(future["total"]["requests"], 0);
    let bad = cli(home.path(), &["spend", "--since", "last tuesday"]);
    assert_eq!(bad.code, Some(2));

    // The text table ends with the exact total.
    let text = cli(home.path(), &["spend", "--by", "model"]);
    assert!(text.stdout.contains("oa:oa-model"), "{}", text.stdout);
    let total_line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap();
    assert!(
        total_line.contains(&Cost::from_nanos(sum).to_string()),
        "{total_line}"
    );

    // History shows the same money per conversation.
    let list = json(&cli(home.path(), &["history", "list", "--json"]));
    let convs = list["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 2);
    assert_eq!(convs[0]["title"], "More Rust", "newest first");
    assert_eq!(
        convs[0]["cost_nanos"].as_i64().unwrap() + convs[1]["cost_nanos"].as_i64().unwrap(),
        sum
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_search_export_and_import_through_the_cli() {
    let server = mock().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), config_for(&server)).unwrap();
    ask_and_record(home.path(), "Cooking", &[], "How long to boil an egg?").await;
    ask_and_record(
        home.path(),
        "Ownership",
        &["rust"],
        "Explain the borrow checker and ownership",
    )
    .await;
    ask_and_record(home.path(), "Misc", &[], "Random question").await;

    let hits = json(&cli(
        home.path(),
        &["history", "search", "borrow checker ownership", "--json"],
    ));
    let hits = hits.as_array().unwrap();
    assert_eq!(hits[0]["title"], "Ownership", "{hits:?}");
    let snippet = hits[0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("**borrow** **checker**"), "{snippet}");
    let id = hits[0]["conversation"].as_i64().unwrap().to_string();
    let text = cli(home.path(), &["history", "search", "borrow"]);
    assert!(text.stdout.contains("Ownership"), "{}", text.stdout);
    assert!(
        cli(home.path(), &["history", "search", "zebra", "--json"])
            .stdout
            .trim()
            == "[]"
    );

    // Pages.
    let first = json(&cli(
        home.path(),
        &["history", "list", "--limit", "2", "--json"],
    ));
    assert_eq!(first["conversations"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap().to_owned();
    let second = json(&cli(
        home.path(),
        &[
            "history", "list", "--limit", "2", "--after", &next, "--json",
        ],
    ));
    assert_eq!(second["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(second["conversations"][0]["title"], "Cooking");
    assert!(second["next"].is_null());

    let md = cli(home.path(), &["history", "export", &id, "--format", "md"]);
    assert_eq!(md.code, Some(0), "{}", md.stderr);
    assert!(md.stdout.starts_with("# Ownership"), "{}", md.stdout);
    assert!(
        md.stdout.contains("The borrow checker enforces ownership."),
        "{}",
        md.stdout
    );
    assert!(md.stdout.contains("oa:oa-model · pane 1"), "{}", md.stdout);

    let file = home.path().join("export.json");
    let exported = cli(
        home.path(),
        &[
            "history",
            "export",
            &id,
            "--json",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(exported.code, Some(0), "{}", exported.stderr);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["messages"][1]["model"], "oa-model");
    assert!(doc["messages"][1]["cost"]["total"].as_i64().unwrap() > 0);
    assert!(doc["messages"][1]["total_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["messages"][1]["usage"]["input_tokens"], 1234);

    let imported = json(&cli(
        home.path(),
        &["history", "import", file.to_str().unwrap(), "--json"],
    ));
    let new_id = imported["id"].as_i64().unwrap().to_string();
    assert_ne!(new_id, id);
    let again = cli(
        home.path(),
        &["history", "export", &new_id, "--format", "json"],
    );
    let copy: Value = serde_json::from_str(&again.stdout).unwrap();
    let content = |d: &Value| -> Vec<Value> {
        d["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].clone())
            .collect()
    };
    assert_eq!(content(&copy), content(&doc));
    assert_eq!(copy["title"], "Ownership");

    let bad = home.path().join("bad.json");
    std::fs::write(&bad, "{\"format\":\"something else\"}").unwrap();
    let run = cli(home.path(), &["history", "import", bad.to_str().unwrap()]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("cannot import"), "{}", run.stderr);
    assert_eq!(
        cli(home.path(), &["history", "export", "999"]).code,
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_are_edited_in_place_and_enforced_on_the_ledger() {
    let server = mock().await;
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("config.toml");
    let original = config_for(&server);
    std::fs::write(&path, &original).unwrap();

    let set = cli(
        home.path(),
        &[
            "budget",
            "set",
            "tiny",
            "--scope",
            "provider:oa",
            "--period",
            "daily",
            "--limit-usd",
            "0.01",
        ],
    );
    assert_eq!(set.code, Some(0), "{}", set.stderr);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with(&original),
        "the rest of the file is kept:\n{text}"
    );
    assert!(
        text.contains("[budgets.tiny]\nscope = \"provider:oa\""),
        "{text}"
    );
    assert!(
        text.contains("limit_usd = \"0.01\""),
        "exact decimal as a string: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("config.toml.bak")).unwrap(),
        original
    );

    // Refused edits leave the file as it was.
    for args in [
        &[
            "budget",
            "set",
            "x",
            "--scope",
            "planet:mars",
            "--limit-usd",
            "1",
        ][..],
        &["budget", "set", "x", "--limit-usd", "lots"][..],
        &["budget", "set", "x", "--limit-usd", "1", "--warn-at", "7"][..],
        &["budget", "set", "bad name", "--limit-usd", "1"][..],
        &["budget", "rm", "nope"][..],
    ] {
        let run = cli(home.path(), args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stdout);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{args:?}");
    }

    // The first ask costs more than the budget's remaining room for the second.
    let results = ask_and_record(home.path(), "t", &[], "hi").await;
    let oa_cost = results[0].cost.unwrap().total;
    let status = json(&cli(home.path(), &["budget", "list", "--json"]));
    assert_eq!(status[0]["name"], "tiny");
    assert_eq!(status[0]["spent_nanos"], oa_cost.nanos());
    assert_eq!(status[0]["state"], "ok");
    let dir = DataDir::at(home.path()).unwrap();
    let store = Store::open(&dir).unwrap();
    let gate = store.budget_gate(&Config::load(&path).unwrap()).unwrap();
    let ctx = store.recorder(false).spend_context(
        switchboard_engine::ConversationId(1),
        "oa",
        "oa-model",
        None,
        &[],
    );
    let denied = gate
        .reserve(&ctx, Some(Cost::from_usd("0.01").unwrap()))
        .unwrap_err();
    assert_eq!(denied.budget, "tiny");
    // Another provider is not limited by it.
    let mut other = ctx.clone();
    other.provider = "an".into();
    assert!(
        gate.reserve(&other, Some(Cost::from_usd("0.01").unwrap()))
            .is_ok()
    );

    let listed = cli(home.path(), &["budget", "list"]);
    assert!(listed.stdout.contains("tiny"), "{}", listed.stdout);
    assert!(listed.stdout.contains("provider:oa"), "{}", listed.stdout);
    let rm = cli(home.path(), &["budget", "rm", "tiny"]);
    assert_eq!(rm.code, Some(0), "{}", rm.stderr);
    assert!(!std::fs::read_to_string(&path).unwrap().contains("tiny"));
    assert_eq!(
        json(&cli(home.path(), &["budget", "list", "--json"])),
        Value::Array(Vec::new())
    );
}

#[test]
fn a_database_from_a_newer_version_is_refused_untouched_by_every_command() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("switchboard.sqlite3");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1); PRAGMA user_version = 42;")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for args in [
        &["history", "list"][..],
        &["history", "search", "x"][..],
        &["spend"][..],
        &["budget", "list"][..],
        &["keys", "list"][..],
    ] {
        let run = cli(home.path(), args);
        assert_eq!(run.code, Some(2), "{args:?}");
        assert!(
            run.stderr.contains("newer version of Switchboard"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("left untouched"), "{}", run.stderr);
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }
}
