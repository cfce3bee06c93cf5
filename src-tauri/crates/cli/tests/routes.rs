//! Routes end to end: the real `switchboard-cli` binary, a real config file
//! with `[routes.*]` and `[policy]` in a temporary `SWITCHBOARD_HOME`, and
//! mock providers with injected faults. Each test asserts the exact attempt
//! sequence the user sees in `ask --json`'s `attempts[]`, and what the mock
//! received. Health is kept in the data directory, so two runs sharing
//! `SWITCHBOARD_HOME` are two processes sharing it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_mock::{Fault, MockServer, Protocol, Scenario};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn command(home: &std::path::Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-cli"));
    cmd.args(args)
        .env("SWITCHBOARD_HOME", home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn finish(child: tokio::process::Child) -> Run {
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn cli(home: &std::path::Path, args: &[&str]) -> Run {
    finish(command(home, args).spawn().unwrap()).await
}

/// `ask --json` for one target: its object.
async fn ask(home: &std::path::Path, target: &str) -> (Option<i32>, Value) {
    let run = cli(home, &["ask", "--json", "-m", target, "hi"]).await;
    let v: Vec<Value> = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (run.code, v[0].clone())
}

/// Providers `a` (OpenAI), `b` (Anthropic), `c` (Gemini) on the mock, their
/// models `a-model`, ... priced, plus `extra` (routes, policy).
fn home_with(server: &MockServer, extra: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let mut config = String::new();
    for (id, protocol, input, output) in [
        ("a", Protocol::OpenAi, "1", "2"),
        ("b", Protocol::Anthropic, "3", "15"),
        ("c", Protocol::Gemini, "0.5", "1"),
    ] {
        let kind = match protocol {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
        };
        config.push_str(&format!(
            "[providers.{id}]\nkind = \"{kind}\"\nbase_url = \"{}\"\n\n[[providers.{id}.models]]\nid = \"{id}-model\"\ninput_usd_per_mtok = \"{input}\"\noutput_usd_per_mtok = \"{output}\"\n\n",
            server.base_url(protocol)
        ));
    }
    config.push_str(extra);
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    home
}

fn outcomes(v: &Value) -> Vec<String> {
    v["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let detail = match a["outcome"].as_str().unwrap() {
                "error" => format!(" {}", a["error"]["kind"].as_str().unwrap()),
                "skipped" => format!(" {}", a["skip"]["kind"].as_str().unwrap()),
                _ => String::new(),
            };
            format!(
                "{} {}{detail}",
                a["target"].as_str().unwrap(),
                a["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

fn overloaded() -> Scenario {
    Scenario::default().with_fault(Fault::Status {
        code: 503,
        retry_after_s: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_falls_back_and_reports_every_attempt_in_order() {
    let server = MockServer::start().await.unwrap();
    server.script("a-model", overloaded());
    server.script("b-model", Scenario::default().with_text(&["from ", "b"]));
    server.script("c-model", Scenario::default().with_text(&["plain c"]));
    let home = home_with(
        &server,
        "[routes.chain]\ntargets = [\"a:a-model\", \"b:b-model\"]\nretries = 2\nbackoff_ms = 5\n",
    );
    let run = cli(
        home.path(),
        &["ask", "--json", "-m", "@chain", "-m", "c:c-model", "hi"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let v: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let chain = &v[0];
    assert_eq!(chain["target"], "@chain");
    assert_eq!(chain["route"], "chain");
    assert_eq!(
        (chain["provider"].as_str(), chain["model"].as_str()),
        (Some("b"), Some("b-model"))
    );
    assert_eq!(chain["text"], "from b");
    assert!(chain["error"].is_null());
    assert!(chain["next_target"].is_null());
    assert_eq!(
        outcomes(chain),
        vec![
            "a:a-model error overloaded",
            "a:a-model error overloaded",
            "a:a-model error overloaded",
            "b:b-model ok",
        ]
    );
    let attempts = chain["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["error"]["status"], 503);
    assert_eq!(attempts[0]["provider"], "a");
    assert!(
        attempts[0]["cost_usd"].is_null(),
        "a refused request is not billed"
    );
    let retries: Vec<u64> = attempts
        .iter()
        .map(|a| a["retry"].as_u64().unwrap())
        .collect();
    assert_eq!(retries, vec![0, 1, 2, 0]);
    assert!(attempts[1]["waited_ms"].as_f64().unwrap() >= 2.5);
    let ok = &attempts[3];
    assert_eq!(ok["usage"]["input_tokens"], 12);
    // 12 × $3/M + 2 × $15/M = $0.000066
    assert_eq!(ok["cost_usd"], 0.000066);
    assert_eq!(chain["cost_usd"], 0.000066);
    assert!(ok["ttft_ms"].as_f64().unwrap() >= 0.0);
    assert!(
        ok["started_unix_ms"].as_i64().unwrap() >= attempts[0]["started_unix_ms"].as_i64().unwrap()
    );
    // A plain target keeps its plain shape, one attempt.
    let plain = &v[1];
    assert_eq!(plain["target"], "c:c-model");
    assert!(plain["route"].is_null());
    assert_eq!(outcomes(plain), vec!["c:c-model ok"]);
    assert_eq!((server.hits("a-model"), server.hits("b-model")), (3, 1));

    // Text mode: the answer streams under the route's label, the router's
    // retries and fallbacks are told on stderr, and the summary lists them.
    // (A fresh data directory: in this one, a is now cooling down.)
    let home = home_with(
        &server,
        "[routes.chain]\ntargets = [\"a:a-model\", \"b:b-model\"]\nretries = 2\nbackoff_ms = 5\n",
    );
    let run = cli(
        home.path(),
        &["ask", "-m", "@chain", "-m", "c:c-model", "hi"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("@chain │ from b\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("── @chain → b:b-model · "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("   4. b:b-model: ok"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("@chain: a:a-model: overloaded (HTTP 503)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("@chain: retrying a:a-model in "),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_before_the_retry() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default().with_fault(Fault::Status {
            code: 429,
            retry_after_s: Some(1),
        }),
    );
    server.script("b-model", Scenario::default());
    let home = home_with(
        &server,
        "[routes.r]\ntargets = [\"a:a-model\", \"b:b-model\"]\nretries = 1\nbackoff_ms = 1\n",
    );
    let child = command(home.path(), &["ask", "--json", "-m", "@r", "hi"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.hits("a-model") == 0 {
        assert!(Instant::now() < deadline, "the CLI never reached the mock");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.script(
        "a-model",
        Scenario::default().with_text(&["after the wait"]),
    );
    let run = finish(child).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let v: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        outcomes(&v[0]),
        vec!["a:a-model error rate_limited", "a:a-model ok"]
    );
    assert_eq!(v[0]["attempts"][0]["error"]["retry_after_s"], 1.0);
    assert_eq!(v[0]["text"], "after the wait");
    let at: Vec<Instant> = server
        .requests()
        .iter()
        .filter(|r| r.body.as_ref().is_some_and(|b| b["model"] == "a-model"))
        .map(|r| r.at)
        .collect();
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_secs(1),
        "retried {:?} after a 429 with Retry-After: 1",
        at[1] - at[0]
    );
    assert_eq!(server.hits("b-model"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_survives_a_restart_and_is_left_after_a_probe() {
    let server = MockServer::start().await.unwrap();
    server.script("a-model", overloaded());
    server.script("b-model", Scenario::default());
    let home = home_with(
        &server,
        "[routes.r]\ntargets = [\"a:a-model\", \"b:b-model\"]\nretries = 2\nbackoff_ms = 1\ncooldown_after = 3\ncooldown_ms = 1200\n",
    );
    // Run 1: three failures in a row, then the fallback answers.
    let (code, v) = ask(home.path(), "@r").await;
    assert_eq!(code, Some(0));
    assert_eq!(outcomes(&v).len(), 4, "{:?}", outcomes(&v));
    let entered = Instant::now();
    // Run 2, a new process: a is cooling down and skipped.
    let (code, v) = ask(home.path(), "@r").await;
    assert_eq!(code, Some(0));
    assert_eq!(
        outcomes(&v),
        vec!["a:a-model skipped cooldown", "b:b-model ok"]
    );
    let reason = v["attempts"][0]["skip"]["reason"].as_str().unwrap();
    assert!(reason.contains("after 3 failures in a row"), "{reason}");
    assert_eq!(server.hits("a-model"), 3, "nothing sent while cooling down");
    let show = cli(home.path(), &["routes", "show", "r", "--json"]).await;
    let plan: Value = serde_json::from_str(&show.stdout).unwrap();
    let a = &plan["targets"][0];
    assert_eq!(a["status"], "cooling_down");
    assert_eq!(a["consecutive_failures"], 3);
    assert!(a["cooldown_remaining_ms"].as_f64().unwrap() > 0.0);

    // The provider recovers; once the cooldown is over one probe goes
    // through, and its success clears the cooldown.
    server.script("a-model", Scenario::default().with_text(&["a is back"]));
    tokio::time::sleep(Duration::from_millis(1220).saturating_sub(entered.elapsed())).await;
    let show = cli(home.path(), &["routes", "show", "r", "--json"]).await;
    let plan: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(plan["targets"][0]["status"], "half_open");
    let (code, v) = ask(home.path(), "@r").await;
    assert_eq!(code, Some(0));
    assert_eq!(outcomes(&v), vec!["a:a-model ok"]);
    assert_eq!(v["attempts"][0]["probe"], true);
    let (_, v) = ask(home.path(), "@r").await;
    assert_eq!(outcomes(&v), vec!["a:a-model ok"]);
    assert_eq!(v["attempts"][0]["probe"], false);
    let show = cli(home.path(), &["routes", "show", "r", "--json"]).await;
    let plan: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(plan["targets"][0]["status"], "ready");
    assert_eq!(plan["targets"][0]["consecutive_failures"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_answer_is_kept_and_the_next_target_is_named_not_tried() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "a-model",
        Scenario::default()
            .with_text(&["Hello", " world"])
            .with_fault(Fault::CutAfter(1)),
    );
    server.script("b-model", Scenario::default());
    let home = home_with(
        &server,
        "[routes.r]\ntargets = [\"a:a-model\", \"b:b-model\"]\nretries = 2\n",
    );
    let (code, v) = ask(home.path(), "@r").await;
    assert_eq!(code, Some(1));
    assert_eq!(outcomes(&v), vec!["a:a-model error interrupted"]);
    assert_eq!(v["error"]["kind"], "interrupted");
    assert_eq!(v["text"], "Hello");
    assert_eq!(v["next_target"], "b:b-model");
    assert_eq!(
        server.hits("b-model"),
        0,
        "no silent switch after the first token"
    );
    assert_eq!(server.hits("a-model"), 1, "no retry after the first token");

    let run = cli(home.path(), &["ask", "-m", "@r", "hi"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.starts_with("Hello"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("to retry on the next target: -m b:b-model"),
        "{}",
        run.stdout
    );
    assert_eq!(server.hits("b-model"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_show_explains_a_fastest_ordering_with_the_measured_numbers() {
    let server = MockServer::start().await.unwrap();
    // Streams with a measurable generation phase, so tokens/s is measured.
    // b is faster on both counts: first token and generation.
    let paced = |ttft, gap| {
        Scenario::default()
            .with_text(&["one ", "two ", "three"])
            .with_ttft(Duration::from_millis(ttft))
            .with_gap(Duration::from_millis(gap))
    };
    server.script("a-model", paced(150, 12));
    server.script("b-model", paced(10, 3));
    server.script("c-model", Scenario::default());
    let home = home_with(
        &server,
        "[routes.fast]\nstrategy = \"fastest\"\ntargets = [\"c:c-model\", \"a:a-model\", \"b:b-model\"]\n\n[routes.cheap]\nstrategy = \"cheapest\"\ntargets = [\"b:b-model\", \"a:a-model\", \"c:c-model\"]\n",
    );
    // Before any history: route order, nothing measured.
    let show = cli(home.path(), &["routes", "show", "@fast", "--json"]).await;
    let plan: Value = serde_json::from_str(&show.stdout).unwrap();
    let order = |plan: &Value| -> Vec<String> {
        plan["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["target"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(order(&plan), vec!["c:c-model", "a:a-model", "b:b-model"]);
    assert!(plan["targets"][0]["health"]["ttft_p50_ms"].is_null());

    // Seed the history: a and b asked for directly, three times each.
    for _ in 0..3 {
        let run = cli(
            home.path(),
            &["ask", "--json", "-m", "a:a-model", "-m", "b:b-model", "hi"],
        )
        .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let show = cli(home.path(), &["routes", "show", "fast", "--json"]).await;
    assert_eq!(show.code, Some(0), "{}", show.stderr);
    let plan: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(plan["strategy"], "fastest");
    assert_eq!(order(&plan), vec!["b:b-model", "a:a-model", "c:c-model"]);
    let (b, a, c) = (
        &plan["targets"][0],
        &plan["targets"][1],
        &plan["targets"][2],
    );
    assert_eq!(b["health"]["samples"], 3);
    assert_eq!(b["health"]["success_rate"], 1.0);
    let ttft = |t: &Value| t["health"]["ttft_p50_ms"].as_f64().unwrap();
    assert!((10.0..120.0).contains(&ttft(b)), "b ttft {}", ttft(b));
    assert!((150.0..400.0).contains(&ttft(a)), "a ttft {}", ttft(a));
    assert!(b["health"]["tokens_per_s_p50"].as_f64().unwrap() > 0.0);
    assert!(b["est_time_ms"].as_f64().unwrap() < a["est_time_ms"].as_f64().unwrap());
    assert!(c["est_time_ms"].is_null());
    assert!(
        c["why"]
            .as_str()
            .unwrap()
            .starts_with("no measurements yet")
    );
    assert_eq!(b["rank"], 1);
    assert_eq!(b["position"], 3);

    // The text form shows the same order and numbers.
    let show = cli(home.path(), &["routes", "show", "fast"]).await;
    let text = &show.stdout;
    assert!(text.contains("@fast · strategy fastest"), "{text}");
    let b_line = text
        .find(" 1. b:b-model")
        .unwrap_or_else(|| panic!("{text}"));
    let a_line = text
        .find(" 2. a:a-model")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(b_line < a_line);
    assert!(
        text.contains(&format!("TTFT p50 {:.0} ms", ttft(b))),
        "{text}"
    );
    assert!(text.contains("100% ok of 3 samples"), "{text}");
    assert!(text.contains("why: est. "), "{text}");

    // A run of the route goes to the fastest target first.
    let (code, v) = ask(home.path(), "@fast").await;
    assert_eq!(code, Some(0));
    assert_eq!(outcomes(&v), vec!["b:b-model ok"]);

    // `routes list` gives every route's current order.
    let list = cli(home.path(), &["routes", "list"]).await;
    assert!(
        list.stdout.contains("c:c-model → a:a-model → b:b-model"),
        "cheapest: {}",
        list.stdout
    );
    assert!(
        list.stdout.contains("b:b-model → a:a-model → c:c-model"),
        "fastest: {}",
        list.stdout
    );
    let list = cli(home.path(), &["routes", "list", "--json"]).await;
    let all: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["route"], "cheap");
    // 1000 × $0.5/M + 1024 × $1/M
    assert_eq!(all[0]["targets"][0]["est_cost_usd"], 0.001524);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_in_the_config_skips_targets_and_refuses_plain_ones() {
    let server = MockServer::start().await.unwrap();
    for m in ["a-model", "b-model", "c-model"] {
        server.script(m, Scenario::default());
    }
    let home = home_with(
        &server,
        "[policy]\nallowed_providers = [\"b\", \"c\"]\nmax_usd_per_mtok = \"10\"\n\n[routes.r]\ntargets = [\"a:a-model\", \"b:b-model\", \"c:c-model\"]\n",
    );
    let (code, v) = ask(home.path(), "@r").await;
    assert_eq!(code, Some(0));
    // b's output price ($15/Mtok) is above the cap.
    assert_eq!(
        outcomes(&v),
        vec![
            "a:a-model skipped policy",
            "b:b-model skipped policy",
            "c:c-model ok"
        ]
    );
    assert_eq!(
        v["attempts"][0]["skip"]["reason"],
        "provider \"a\" is not in policy.allowed_providers (b, c)"
    );
    assert_eq!(
        v["attempts"][1]["skip"]["reason"],
        "output price $15/Mtok is above policy.max_usd_per_mtok ($10/Mtok)"
    );
    let (code, v) = ask(home.path(), "a:a-model").await;
    assert_eq!(code, Some(1));
    assert_eq!(v["error"]["kind"], "policy");
    assert_eq!(outcomes(&v), vec!["a:a-model skipped policy"]);
    assert_eq!((server.hits("a-model"), server.hits("b-model")), (0, 0));
}

#[tokio::test]
async fn route_config_errors_exit_2_with_file_line_and_field() {
    let server = MockServer::start().await.unwrap();
    let home = home_with(
        &server,
        "[routes.r]\nstrategy = \"quickest\"\ntargets = [\"a:a-model\"]\n",
    );
    let path = home.path().join("config.toml");
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("strategy"))
        .unwrap()
        + 1;
    for args in [&["ask", "-m", "@r", "hi"][..], &["routes", "list"][..]] {
        let run = cli(home.path(), args).await;
        assert_eq!(run.code, Some(2), "{args:?}");
        assert!(
            run.stderr.contains(&format!(
                "{}:{line}: routes.r.strategy: unknown strategy",
                path.display()
            )),
            "{}",
            run.stderr
        );
    }
    let home = home_with(
        &server,
        "[routes.r]\ntargets = [\"a:a-model\"]\nretires = 3\n",
    );
    let run = cli(home.path(), &["ask", "-m", "@nope", "hi"]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("unknown route \"@nope\" (known: @r)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("routes.r.retires: unknown key in a route is ignored"),
        "{}",
        run.stderr
    );
    let run = cli(home.path(), &["routes", "show", "nope"]).await;
    assert_eq!(run.code, Some(2));
}
