//! `switchboard-cli ask` end to end: the real binary, a real config file in
//! a temporary `SWITCHBOARD_HOME`, and mock providers speaking the three
//! wire protocols over loopback HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::time::Duration;

use serde_json::Value;
use switchboard_mock::{Fault, MockServer, MockUsage, Protocol, Scenario};

mod common;
use common::cli;

/// A data directory whose config points three providers at the mock.
fn home_for(server: &MockServer) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
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
cached_input_usd_per_mtok = 0.3

[providers.gm]
kind = "gemini"
base_url = "{gm}"

[[providers.gm.models]]
id = "gm-model"
input_usd_per_mtok = "0.30"
output_usd_per_mtok = "2.50"
cached_input_usd_per_mtok = "0.075"
"#,
        oa = server.base_url(Protocol::OpenAi),
        an = server.base_url(Protocol::Anthropic),
        gm = server.base_url(Protocol::Gemini),
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    home
}

const KEYS: &[(&str, &str)] = &[
    ("SWITCHBOARD_KEY_OA", "k-oa"),
    ("SWITCHBOARD_KEY_AN", "k-an"),
    ("SWITCHBOARD_KEY_GM", "k-gm"),
];

/// Exact cost in nano-dollars: prices in micro-dollars per million tokens.
fn nanos(u: MockUsage, input_micro: u64, output_micro: u64, cached_micro: u64) -> i64 {
    let pico = (u.input - u.cached_input) * input_micro
        + u.cached_input * cached_micro
        + u.output * output_micro;
    i64::try_from((pico + 500) / 1000).unwrap()
}

fn cost_nanos(v: &Value) -> i64 {
    // cost_usd is printed from an exact nano-dollar amount.
    let s = v["cost_usd"].to_string();
    let f: f64 = s.parse().unwrap();
    (f * 1e9).round() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_reports_ground_truth_usage_cost_and_ttft_for_three_protocols() {
    let server = MockServer::start().await.unwrap();
    let usage = |input, cached, output, reasoning| MockUsage {
        input,
        cached_input: cached,
        output,
        reasoning,
    };
    let oa = usage(1234, 200, 321, 40);
    let an = usage(5000, 4000, 777, 0);
    let gm = usage(987, 500, 654, 54);
    let ttft = Duration::from_millis(200);
    // Pieces arrive 150 ms apart, so a time to first token that wrongly
    // included the rest of the stream would be off by at least that much,
    // while a loaded machine's few tens of milliseconds of lateness are not.
    let gap = Duration::from_millis(150);
    let scenario = |u: MockUsage, key: &str, text: &[&str]| {
        Scenario::default()
            .with_text(text)
            .with_usage(u)
            .with_ttft(ttft)
            .with_gap(gap)
            .with_key(key)
    };
    server.script(
        "oa-model",
        scenario(oa, "k-oa", &["Bonjour", ", ", "monde ✓"]),
    );
    server.script("an-model", scenario(an, "k-an", &["Hallo ", "Welt 🎉"]));
    server.script("gm-model", scenario(gm, "k-gm", &["Ciao ", "mondo"]));
    let home = home_for(&server);

    let run = cli(
        home.path(),
        KEYS,
        &[
            "ask",
            "--json",
            "-m",
            "oa:oa-model",
            "-m",
            "an:an-model",
            "-m",
            "gm:gm-model",
            "--system",
            "Be brief.",
            "--max-tokens",
            "100",
            "Say hello",
        ],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let results: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(results.len(), 3);
    let expect = [
        (
            "oa:oa-model",
            "oa",
            "Bonjour, monde ✓",
            oa,
            nanos(oa, 2_500_000, 10_000_000, 1_250_000),
            Some(40),
        ),
        (
            "an:an-model",
            "an",
            "Hallo Welt 🎉",
            an,
            nanos(an, 3_000_000, 15_000_000, 300_000),
            None,
        ),
        (
            "gm:gm-model",
            "gm",
            "Ciao mondo",
            gm,
            nanos(gm, 300_000, 2_500_000, 75_000),
            Some(54),
        ),
    ];
    for (r, (target, provider, text, u, cost, reasoning)) in results.iter().zip(expect) {
        assert_eq!(r["target"], target);
        assert_eq!(r["provider"], provider);
        assert_eq!(r["text"], text);
        assert_eq!(r["finish_reason"], "stop");
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["usage"]["input_tokens"], u.input, "{target}");
        assert_eq!(
            r["usage"]["cached_input_tokens"], u.cached_input,
            "{target}"
        );
        assert_eq!(r["usage"]["output_tokens"], u.output, "{target}");
        assert_eq!(
            r["usage"]["reasoning_tokens"].as_u64(),
            reasoning,
            "{target}"
        );
        assert_eq!(cost_nanos(r), cost, "{target}: {}", r["cost_usd"]);
        assert_eq!(r["cost_nanos"], cost, "{target}: exact");
        assert_eq!(r["cost_estimated"], false);
        // Measured at the first token: not before the mock's 200 ms delay,
        // and (next) a whole gap before the end. No upper bound of its own:
        // a loaded machine may add any delay to the first token.
        let measured = r["ttft_ms"].as_f64().unwrap();
        assert!(
            measured >= 200.0,
            "{target}: ttft {measured} ms for a 200 ms delay"
        );
        assert!(
            r["total_ms"].as_f64().unwrap() >= measured + 150.0,
            "{target}: the rest of the answer came at least one gap later"
        );
        assert!(r["tokens_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(r["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(r["attempts"][0]["outcome"], "ok");
    }
    // Each request carried its own key and the system prompt.
    let reqs = server.requests();
    assert_eq!(
        reqs.iter()
            .find(|r| r.path.starts_with("/v1/chat"))
            .unwrap()
            .header("authorization"),
        Some("Bearer k-oa")
    );
    let an_req = reqs.iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(an_req.header("x-api-key"), Some("k-an"));
    assert_eq!(an_req.body.as_ref().unwrap()["system"], "Be brief.");
    assert_eq!(
        reqs.iter()
            .find(|r| r.path.contains(":streamGenerateContent"))
            .unwrap()
            .header("x-goog-api-key"),
        Some("k-gm")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_exits_1_and_reports_its_classified_error() {
    let server = MockServer::start().await.unwrap();
    server.script("oa-model", Scenario::default().with_text(&["fine"]));
    server.script(
        "an-model",
        // Longer than a direct target waits (60 s): reported, not retried.
        Scenario::default().with_fault(Fault::Status {
            code: 429,
            retry_after_s: Some(120),
        }),
    );
    server.script(
        "gm-model",
        Scenario::default()
            .with_text(&["one ", "two ", "three"])
            .with_fault(Fault::CutAfter(2)),
    );
    let home = home_for(&server);
    let run = cli(
        home.path(),
        KEYS,
        &[
            "ask",
            "--json",
            "-m",
            "oa:oa-model",
            "-m",
            "an:an-model",
            "-m",
            "gm:gm-model",
            "hi",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert!(r[0]["error"].is_null());
    assert_eq!(r[1]["error"]["kind"], "rate_limited");
    assert_eq!(r[1]["error"]["status"], 429);
    assert_eq!(r[1]["error"]["retry_after_s"], 120.0);
    assert_eq!(server.hits("an-model"), 1);
    assert!(
        r[1]["cost_usd"].is_null(),
        "a rejected request is not billed"
    );
    assert_eq!(r[2]["error"]["kind"], "interrupted");
    assert_eq!(
        r[2]["text"], "one two ",
        "what arrived before the cut is kept"
    );
    assert_eq!(r[2]["attempts"][0]["outcome"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_mode_streams_labelled_answers_and_a_summary() {
    let server = MockServer::start().await.unwrap();
    server.script(
        "oa-model",
        Scenario::default().with_text(&["line one\n", "line two"]),
    );
    server.script("gm-model", Scenario::default().with_text(&["ciao"]));
    let home = home_for(&server);
    let run = cli(
        home.path(),
        KEYS,
        &["ask", "-m", "oa:oa-model", "-m", "gm:gm-model", "hi"],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("oa:oa-model │ line one\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("oa:oa-model │ line two\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("gm:gm-model │ ciao\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("── oa:oa-model · "), "{}", run.stdout);
    assert!(run.stdout.contains("ms to first token"), "{}", run.stdout);
}

#[tokio::test]
async fn a_missing_key_says_both_ways_to_provide_one() {
    let server = MockServer::start().await.unwrap();
    server.script("oa-model", Scenario::default().with_key("k-oa"));
    let home = home_for(&server);
    // As a hosted provider: nothing is sent without a key.
    let config = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    let hosted = config.replacen("kind = \"openai\"", "kind = \"openai\"\nlocal = false", 1);
    std::fs::write(home.path().join("config.toml"), hosted).unwrap();
    let run = cli(
        home.path(),
        &[],
        &["ask", "--json", "-m", "oa:oa-model", "hi"],
    )
    .await;
    assert_eq!(run.code, Some(1));
    let r: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r[0]["error"]["kind"], "auth");
    let msg = r[0]["error"]["message"].as_str().unwrap();
    assert!(msg.contains("keychain"), "{msg}");
    assert!(msg.contains("SWITCHBOARD_KEY_OA"), "{msg}");
    assert_eq!(server.hits("oa-model"), 0, "nothing is sent without a key");

    // As a local server (loopback), the request goes out without a key and
    // the server's refusal comes back with the same hint.
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let run = cli(
        home.path(),
        &[],
        &["ask", "--json", "-m", "oa:oa-model", "hi"],
    )
    .await;
    assert_eq!(run.code, Some(1));
    let r: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r[0]["error"]["kind"], "auth");
    assert_eq!(r[0]["error"]["status"], 401);
    assert!(
        r[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SWITCHBOARD_KEY_OA"),
        "{}",
        r[0]
    );
    assert_eq!(server.hits("oa-model"), 1);
}

#[tokio::test]
async fn usage_and_config_errors_exit_2_with_file_line_and_field() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "[providers.lab]\nkind = \"openai\"\nbase_url = \"ftp://x\"\n",
    )
    .unwrap();
    let run = cli(home.path(), &[], &["ask", "-m", "lab:m", "hi"]).await;
    assert_eq!(run.code, Some(2));
    let path = home.path().join("config.toml");
    assert!(
        run.stderr
            .contains(&format!("{}:3: providers.lab.base_url:", path.display())),
        "{}",
        run.stderr
    );

    std::fs::write(home.path().join("config.toml"), "").unwrap();
    let run = cli(home.path(), &[], &["ask", "-m", "nope:m", "hi"]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("unknown provider \"nope\""),
        "{}",
        run.stderr
    );
    let run = cli(home.path(), &[], &["ask", "-m", "no-colon", "hi"]).await;
    assert_eq!(run.code, Some(2));
    let run = cli(home.path(), &[], &["ask", "hi"]).await;
    assert_eq!(run.code, Some(2));
    let run = cli(home.path(), &[], &["ask", "--bogus-flag", "hi"]).await;
    assert_eq!(run.code, Some(2));
}

#[tokio::test]
async fn models_lists_the_catalog_and_refreshes_from_the_provider() {
    let server = MockServer::start().await.unwrap();
    server.script("oa-model", Scenario::default());
    server.script("live-only-model", Scenario::default());
    let home = home_for(&server);
    let run = cli(home.path(), KEYS, &["models", "oa", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let list: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "oa-model");
    assert_eq!(list[0]["input_usd_per_mtok"], "2.5");
    assert_eq!(list[0]["source"], "config");

    let run = cli(home.path(), KEYS, &["models", "oa", "--refresh", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let list: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let ids: Vec<&str> = list.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["live-only-model", "oa-model"]);
    assert_eq!(list[0]["source"], "live");
    assert!(
        list[0]["input_usd_per_mtok"].is_null(),
        "no price is invented"
    );
    // The fetched list is cached for the next run, without a network call.
    let before = server.requests().len();
    let run = cli(home.path(), KEYS, &["models", "oa", "--json"]).await;
    let list: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(server.requests().len(), before);
    // Bundled presets list their models without any configuration.
    let run = cli(home.path(), &[], &["models", "anthropic", "--json"]).await;
    let list: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        list.len() >= 3 && list.iter().all(|m| m["source"] == "bundled"),
        "{list:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_target_is_retried_after_its_retry_after_like_the_sdks() {
    let server = MockServer::start().await.unwrap();
    // A 429 asking for a second, then the answer.
    server.script(
        "oa-model",
        Scenario::default()
            .with_text(&["after ", "a wait"])
            .with_fault(Fault::Status {
                code: 429,
                retry_after_s: Some(1),
            })
            .with_fault_times(1),
    );
    let home = home_for(&server);
    let started = std::time::Instant::now();
    let run = cli(
        home.path(),
        KEYS,
        &["ask", "--json", "-m", "oa:oa-model", "hi"],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(took >= Duration::from_secs(1), "answered after {took:?}");
    let r: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r[0]["text"], "after a wait");
    let attempts = r[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["error"]["kind"], "rate_limited");
    assert_eq!(attempts[0]["error"]["retry_after_s"], 1.0);
    assert_eq!(
        (
            attempts[1]["outcome"].as_str(),
            attempts[1]["retry"].as_u64()
        ),
        (Some("ok"), Some(1))
    );
    assert!(attempts[1]["waited_ms"].as_f64().unwrap() >= 1000.0);
    let at: Vec<_> = server.requests().into_iter().map(|q| q.at).collect();
    assert!(
        at[1] - at[0] >= Duration::from_secs(1),
        "{:?}",
        at[1] - at[0]
    );

    // Text mode says why it waits.
    server.script(
        "oa-model",
        Scenario::default()
            .with_fault(Fault::Status {
                code: 429,
                retry_after_s: Some(1),
            })
            .with_fault_times(server.hits("oa-model") + 1),
    );
    let run = cli(home.path(), KEYS, &["ask", "-m", "oa:oa-model", "hi"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("retrying oa:oa-model in") && run.stderr.contains("Retry-After"),
        "{}",
        run.stderr
    );

    // `[retries] max = 0`: no retry, the 429 is the answer.
    let config = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!("[retries]\nmax = 0\n{config}"),
    )
    .unwrap();
    server.script(
        "oa-model",
        Scenario::default().with_fault(Fault::Status {
            code: 429,
            retry_after_s: Some(1),
        }),
    );
    let before = server.hits("oa-model");
    let run = cli(
        home.path(),
        KEYS,
        &["ask", "--json", "-m", "oa:oa-model", "hi"],
    )
    .await;
    assert_eq!(run.code, Some(1));
    let r: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r[0]["error"]["kind"], "rate_limited");
    assert_eq!(server.hits("oa-model"), before + 1);
}

#[tokio::test]
async fn a_disabled_provider_receives_nothing_and_its_key_is_not_sent() {
    let server = MockServer::start().await.unwrap();
    server.script("off-model", Scenario::default());
    server.script("oa-model", Scenario::default().with_text(&["from oa"]));
    let home = home_for(&server);
    let config = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "{config}\n[providers.off]\nkind = \"openai\"\nbase_url = \"{}\"\nlocal = false\nenabled = false\n\n[providers.groq]\nenabled = false\n\n[routes.r]\ntargets = [\"off:off-model\", \"oa:oa-model\"]\n",
            server.base_url(Protocol::OpenAi)
        ),
    )
    .unwrap();
    let env = [
        KEYS,
        &[
            ("SWITCHBOARD_KEY_OFF", "k-off-secret"),
            ("SWITCHBOARD_KEY_GROQ", "gsk-secret"),
        ],
    ]
    .concat();
    // Named directly: a policy error, nothing sent.
    let run = cli(
        home.path(),
        &env,
        &["ask", "--json", "-m", "off:off-model", "hi"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r[0]["error"]["kind"], "policy");
    let msg = r[0]["error"]["message"].as_str().unwrap();
    assert!(msg.contains("disabled in config"), "{msg}");
    // The issue's case: a disabled preset is not called at its vendor URL.
    let started = std::time::Instant::now();
    let run = cli(
        home.path(),
        &env,
        &["ask", "--json", "-m", "groq:llama-3.3-70b", "hi"],
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r[0]["error"]["kind"], "policy", "{}", r[0]);
    assert!(started.elapsed() < Duration::from_secs(5));
    // In a route: skipped with the reason, the next target answers.
    let run = cli(home.path(), &env, &["ask", "--json", "-m", "@r", "hi"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(r[0]["text"], "from oa");
    let a = &r[0]["attempts"][0];
    assert_eq!(
        (a["outcome"].as_str(), a["skip"]["kind"].as_str()),
        (Some("skipped"), Some("policy"))
    );
    assert!(
        a["skip"]["reason"]
            .as_str()
            .unwrap()
            .contains("disabled in config"),
        "{a}"
    );
    // `keys test` does not call it either.
    let run = cli(home.path(), &env, &["keys", "test", "off"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("disabled in config"), "{}", run.stderr);

    assert_eq!(
        server.hits("off-model"),
        0,
        "the disabled provider received nothing"
    );
    for q in server.requests() {
        assert!(
            q.headers.iter().all(|(_, v)| !v.contains("k-off-secret")),
            "the disabled provider's key was sent: {q:?}"
        );
    }
}

#[tokio::test]
async fn a_key_echoed_by_a_proxy_never_reaches_output_or_history() {
    let key = "sk-proxy-echo-abcdef0123456789";
    let server = MockServer::start().await.unwrap();
    server.script(
        "oa-model",
        Scenario::default().with_fault(Fault::EchoHeaders { code: 502 }),
    );
    let home = home_for(&server);
    let config = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!("[retries]\nmax = 0\n{config}"),
    )
    .unwrap();
    let env = [("SWITCHBOARD_KEY_OA", key)];
    let json = cli(
        home.path(),
        &env,
        &["ask", "--json", "-m", "oa:oa-model", "hi"],
    )
    .await;
    let text = cli(home.path(), &env, &["ask", "-m", "oa:oa-model", "hi"]).await;
    assert_eq!(json.code, Some(1));
    // The proxy echoed it, so the engine had it in hand...
    assert!(
        server
            .requests()
            .iter()
            .all(|q| q.header("authorization") == Some(&*format!("Bearer {key}")))
    );
    let r: Vec<Value> = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(r[0]["error"]["kind"], "overloaded");
    // ...and it reached neither the output nor the database.
    let mut seen = vec![json.stdout, json.stderr, text.stdout, text.stderr];
    let history = cli(
        home.path(),
        &[],
        &["history", "export", "1", "--format", "json"],
    )
    .await;
    seen.push(history.stdout);
    for entry in std::fs::read_dir(home.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            seen.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned());
        }
    }
    for s in &seen {
        assert!(
            !s.contains(key) && !s.contains("abcdef0123456789"),
            "the key leaked: {s}"
        );
    }
}
