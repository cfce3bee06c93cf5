//! The chat service behind the compare view, without a window: events
//! arrive in order, fast streams are coalesced without losing a character,
//! and stopping a pane keeps what arrived.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_engine::service::ChatService;
use switchboard_engine::{DataDir, KeyStore};
use switchboard_mock::{MockServer, MockUsage, Protocol, Scenario};
use switchboard_protocol::PaneEvent;
use switchboard_tests::ask_request;

fn service(server: &MockServer) -> (tempfile::TempDir, Arc<ChatService>) {
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[[providers.oa.models]]\nid = \"fast\"\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n",
        server.base_url(Protocol::OpenAi)
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let dir = DataDir::at(home.path()).unwrap();
    let svc = Arc::new(ChatService::new(
        dir,
        KeyStore::with_service("switchboard-test-service"),
    ));
    (home, svc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_tokens_a_second_arrive_whole_in_few_messages() {
    let server = MockServer::start().await.unwrap();
    let pieces: Vec<String> = (0..3000).map(|i| format!("t{i}·")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    server.script(
        "fast",
        Scenario::default().with_text(&refs).with_usage(MockUsage {
            input: 5,
            cached_input: 0,
            output: 3000,
            reasoning: 0,
        }),
    );
    let (_home, svc) = service(&server);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = Arc::clone(&events);
    let summary = svc
        .ask(ask_request(1, "oa:fast"), move |e| {
            sink_events.lock().unwrap().push(e);
            true
        })
        .await;
    assert!(summary.error.is_none(), "{:?}", summary.error);
    let events = events.lock().unwrap();
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            PaneEvent::Update { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, pieces.concat(), "no piece lost, doubled or reordered");
    let deltas = events
        .iter()
        .filter(|e| matches!(e, PaneEvent::Update { .. }))
        .count();
    assert!(
        deltas < 1000,
        "{deltas} messages for 3000 pieces: deltas are not coalesced"
    );
    assert!(matches!(events.last(), Some(PaneEvent::Finished(_))));
    assert_eq!(summary.tokens.output, Some(3000));
    assert_eq!(summary.cost_usd.as_deref(), Some("0.006005"));
    assert!(
        summary.tokens_per_s.unwrap() > 1000.0,
        "{:?}",
        summary.tokens_per_s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_pane_keeps_what_arrived() {
    let server = MockServer::start().await.unwrap();
    let pieces: Vec<String> = (0..100).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    server.script(
        "fast",
        Scenario::default()
            .with_text(&refs)
            .with_gap(Duration::from_millis(20)),
    );
    let (_home, svc) = service(&server);
    let svc2 = Arc::clone(&svc);
    let got = Arc::new(Mutex::new(String::new()));
    let sink_got = Arc::clone(&got);
    let run = tokio::spawn(async move {
        svc2.ask(ask_request(7, "oa:fast"), move |e| {
            if let PaneEvent::Update { text, .. } = e {
                sink_got.lock().unwrap().push_str(&text);
            }
            true
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(svc.stop(7), "the stream was running");
    let summary = tokio::time::timeout(Duration::from_secs(2), run)
        .await
        .unwrap()
        .unwrap();
    let error = summary.error.expect("a stopped answer says so");
    assert_eq!(error.kind, "stopped");
    let shown = got.lock().unwrap().clone();
    assert!(
        !shown.is_empty() && shown.len() < pieces.concat().len(),
        "{shown}"
    );
    assert!(pieces.concat().starts_with(&shown));
    assert!(!svc.stop(7), "nothing left to stop");
}

#[tokio::test]
async fn unknown_targets_and_missing_keys_fail_in_the_pane() {
    let server = MockServer::start().await.unwrap();
    let (_home, svc) = service(&server);
    let s = svc.ask(ask_request(2, "nope:model"), |_| true).await;
    assert_eq!(s.error.unwrap().kind, "not_found");
    let s = svc.ask(ask_request(3, "no-colon"), |_| true).await;
    assert_eq!(s.error.unwrap().kind, "bad_request");
    // A hosted preset with no key anywhere: a clear auth error, nothing sent.
    let s = svc.ask(ask_request(4, "groq:some-model"), |_| true).await;
    let e = s.error.unwrap();
    assert_eq!(e.kind, "auth");
    assert!(e.message.contains("SWITCHBOARD_KEY_GROQ"), "{}", e.message);
}

#[tokio::test]
async fn a_disabled_provider_gets_no_request_and_its_key_is_never_read() {
    let server = MockServer::start().await.unwrap();
    server.script("fast", Scenario::default().with_text(&["from ", "on"]));
    let home = tempfile::tempdir().unwrap();
    let base = server.base_url(Protocol::OpenAi);
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[providers.oa]\nkind = \"openai\"\nbase_url = \"{base}\"\nenabled = false\n\n[providers.on]\nkind = \"openai\"\nbase_url = \"{base}\"\n\n[routes.r]\ntargets = [\"oa:fast\", \"on:fast\"]\n"
        ),
    )
    .unwrap();
    let keys = KeyStore::with_service("switchboard-test-service");
    let svc = Arc::new(ChatService::new(
        DataDir::at(home.path()).unwrap(),
        keys.clone(),
    ));
    let before = keys.reads();
    let s = svc.ask(ask_request(1, "oa:fast"), |_| true).await;
    let e = s.error.unwrap();
    assert_eq!(e.kind, "policy");
    assert!(e.message.contains("disabled in config"), "{}", e.message);
    assert_eq!(server.hits("fast"), 0, "nothing sent");
    assert_eq!(keys.reads(), before, "its key was not even looked up");

    let s = svc.ask(ask_request(2, "@r"), |_| true).await;
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(s.provider, "on");
    assert_eq!(
        (s.trail[0].outcome.as_str(), s.trail[0].detail.as_deref()),
        ("skipped", Some("policy"))
    );
    assert_eq!(
        server.hits("fast"),
        1,
        "only the enabled provider was called"
    );
    assert_eq!(
        keys.reads(),
        before + 1,
        "only the enabled provider's key was read"
    );
    assert!(
        server.requests().iter().all(|r| !r.path.contains("models")),
        "no model list fetched either"
    );
}
