//! The compare view's conversation model at the service level, against the
//! mock providers and a real SQLite file: panes keep their identity through
//! "Continue with this", added and removed panes and a restart; each model
//! is sent its own thread (or the chosen one), never another pane's
//! answers; asserted on what the mock providers received.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use switchboard_engine::service::ChatService;
use switchboard_engine::{DataDir, KeyStore};
use switchboard_mock::{MockServer, Scenario};
use switchboard_protocol::{
    AskRequest, PaneLayout, PaneSpec, RecordAt, SavePanes, SavedConversation, StartRound, Turn,
    TurnRole, fork_for_new_pane,
};
use switchboard_tests::{mock_home, request_turns};

const OA: &str = "oa:oa-model";
const AN: &str = "an:an-model";
const GM: &str = "gm:gm-model";

fn open_service(home: &Path) -> Arc<ChatService> {
    Arc::new(ChatService::new(
        DataDir::at(home).unwrap(),
        KeyStore::with_service("switchboard-test-conversation"),
    ))
}

fn spec(key: &str, target: &str) -> PaneSpec {
    PaneSpec::new(key, target)
}

fn model_of(target: &str) -> &str {
    target.split_once(':').unwrap().1
}

/// The conversation as the app would show it after a restart.
fn reopen(home: &Path, conversation: i64) -> SavedConversation {
    open_service(home).open_conversation(conversation).unwrap()
}

/// One round as the compare view sends it: record the prompt with the
/// layout, then ask every pane with the thread [`SavedConversation::thread`]
/// gives it, recording each answer under its pane. Returns what each model
/// received.
async fn round(
    svc: &Arc<ChatService>,
    server: &MockServer,
    conversation: Option<i64>,
    prompt: &str,
    layout: &PaneLayout,
    answers: &[(&str, &str)],
) -> (i64, Vec<(String, Vec<(String, String)>)>) {
    let ids = svc
        .start_round(&StartRound {
            conversation,
            prompt: prompt.into(),
            attachments: Vec::new(),
            layout: Some(layout.clone()),
        })
        .unwrap();
    let saved = svc.open_conversation(ids.conversation).unwrap();
    let this_round = saved.rounds.len() - 1;
    let before = server.requests().len();
    for (i, (key, text)) in answers.iter().enumerate() {
        let pane = layout.panes.iter().find(|p| p.key == *key).unwrap();
        server.script(
            model_of(&pane.target),
            Scenario::default().with_text(&[text]),
        );
        let mut turns = saved.thread(key, this_round);
        turns.push(Turn {
            role: TurnRole::User,
            content: prompt.into(),
            attachments: Vec::new(),
        });
        let summary = svc
            .ask(
                AskRequest {
                    stream_id: 1000 + i as u64,
                    target: pane.target.clone(),
                    turns,
                    params: pane.params.clone(),
                    record: Some(RecordAt {
                        conversation: ids.conversation,
                        user_message: ids.user_message,
                        pane: (*key).into(),
                    }),
                },
                |_| true,
            )
            .await;
        assert!(summary.error.is_none(), "{key}: {:?}", summary.error);
    }
    let received = server.requests()[before..]
        .iter()
        .filter_map(|r| r.body.as_ref())
        .map(|b| {
            let model = b
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| "gm-model".into());
            (model, request_turns(b))
        })
        .collect();
    (ids.conversation, received)
}

fn turns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(r, t)| ((*r).to_owned(), (*t).to_owned()))
        .collect()
}

/// Each open pane's target and its answers, round by round ("" when it did
/// not answer that round).
fn columns(saved: &SavedConversation) -> Vec<(String, Vec<String>)> {
    saved
        .open_panes()
        .map(|p| {
            let texts = (0..saved.rounds.len())
                .map(|r| {
                    saved
                        .answer(r, &p.key)
                        .map(|a| a.text.clone())
                        .unwrap_or_default()
                })
                .collect();
            (p.target.clone(), texts)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_with_remove_and_reopen_keep_every_pane_on_its_own_thread() {
    let server = MockServer::start().await.unwrap();
    let home = mock_home(&server).unwrap();
    let svc = open_service(home.path());

    // Round 1: three panes, three models.
    let mut layout = PaneLayout {
        rev: 1,
        panes: vec![spec("p-oa", OA), spec("p-an", AN), spec("p-gm", GM)],
    };
    layout.panes[2].params.system = Some("You are Gemini.".into());
    let (conv, got) = round(
        &svc,
        &server,
        None,
        "q1",
        &layout,
        &[
            ("p-oa", "OpenAI r1"),
            ("p-an", "Anthropic r1"),
            ("p-gm", "Gemini r1"),
        ],
    )
    .await;
    for (_, t) in &got {
        assert_eq!(*t, turns(&[("user", "q1")]));
    }

    // "Continue with this" on Gemini's answer: only its pane stays.
    let mut gm = layout.panes[2].clone();
    gm.chosen_round = Some(0);
    layout = PaneLayout {
        rev: 2,
        panes: vec![gm.clone()],
    };
    assert!(
        svc.save_panes(&SavePanes {
            conversation: conv,
            layout: layout.clone()
        })
        .unwrap()
    );
    let saved = reopen(home.path(), conv);
    assert_eq!(
        columns(&saved),
        [(GM.to_owned(), vec!["Gemini r1".to_owned()])],
        "reopened right after Continue with this"
    );

    // Round 2 goes to Gemini with Gemini's own first answer.
    layout.rev = 3;
    let (_, got) = round(
        &svc,
        &server,
        Some(conv),
        "q2",
        &layout,
        &[("p-gm", "Gemini r2")],
    )
    .await;
    assert_eq!(
        got,
        [(
            "gm-model".to_owned(),
            turns(&[("user", "q1"), ("assistant", "Gemini r1"), ("user", "q2")])
        )]
    );

    // The app restarts; the conversation is opened from the sidebar.
    let svc = open_service(home.path());
    let saved = svc.open_conversation(conv).unwrap();
    assert_eq!(
        columns(&saved),
        [(
            GM.to_owned(),
            vec!["Gemini r1".to_owned(), "Gemini r2".to_owned()]
        )],
        "the pane is Gemini's, with Gemini's answers only"
    );
    let gm_pane = saved.open_panes().next().unwrap();
    assert_eq!(gm_pane.params.system.as_deref(), Some("You are Gemini."));
    assert_eq!(gm_pane.chosen_round, Some(0));
    assert_eq!(
        saved.rounds[1].follows,
        Some(saved.answer(0, "p-gm").unwrap().message),
        "round 2 continues from the chosen answer (an explicit branch)"
    );
    // The closed panes keep their own answers.
    assert_eq!(saved.answer(0, "p-oa").unwrap().text, "OpenAI r1");
    assert_eq!(saved.answer(0, "p-an").unwrap().text, "Anthropic r1");
    assert_eq!(saved.panes.iter().filter(|p| !p.open).count(), 2);

    // Two panes are added (they continue the chosen thread), then one is
    // removed.
    let open: Vec<(&str, Option<u32>)> = saved
        .open_panes()
        .map(|p| (p.key.as_str(), p.chosen_round))
        .collect();
    let fork = fork_for_new_pane(&open, saved.rounds.len() as u32);
    assert_eq!(fork.as_ref().map(|f| f.pane.as_str()), Some("p-gm"));
    let mut oa2 = spec("p-oa2", OA);
    oa2.fork = fork.clone();
    let mut an2 = spec("p-an2", AN);
    an2.fork = fork;
    let mut panes = saved.open_panes().map(|p| p.spec()).collect::<Vec<_>>();
    panes.extend([an2, oa2]);
    let rev = saved.layout_rev + 1;
    assert!(
        svc.save_panes(&SavePanes {
            conversation: conv,
            layout: PaneLayout {
                rev,
                panes: panes.clone()
            }
        })
        .unwrap()
    );
    panes.retain(|p| p.key != "p-an2");
    let layout = PaneLayout {
        rev: rev + 1,
        panes,
    };

    // Round 3: Gemini continues its thread; the new OpenAI pane starts from
    // the chosen (Gemini) thread, never from OpenAI's old round-1 answer.
    let (_, got) = round(
        &svc,
        &server,
        Some(conv),
        "q3",
        &layout,
        &[("p-gm", "Gemini r3"), ("p-oa2", "OpenAI r3")],
    )
    .await;
    let chosen = [
        ("user", "q1"),
        ("assistant", "Gemini r1"),
        ("user", "q2"),
        ("assistant", "Gemini r2"),
        ("user", "q3"),
    ];
    assert_eq!(
        got,
        [
            ("gm-model".to_owned(), turns(&chosen)),
            ("oa-model".to_owned(), turns(&chosen)),
        ]
    );

    // Reopen once more: two panes, each with its own label and answers.
    let saved = reopen(home.path(), conv);
    assert_eq!(
        columns(&saved),
        [
            (
                GM.to_owned(),
                vec![
                    "Gemini r1".to_owned(),
                    "Gemini r2".to_owned(),
                    "Gemini r3".to_owned()
                ]
            ),
            (
                OA.to_owned(),
                vec![String::new(), String::new(), "OpenAI r3".to_owned()]
            ),
        ]
    );
    for p in saved.open_panes() {
        for r in 0..saved.rounds.len() {
            if let Some(a) = saved.answer(r, &p.key) {
                assert_eq!(a.target, p.target, "pane {} round {r}", p.key);
            }
        }
    }
    let removed = saved.panes.iter().find(|p| p.key == "p-an2").unwrap();
    assert!(!removed.open, "the removed pane stays removed");

    // What the next prompt would carry, per pane.
    let texts = |key: &str| -> Vec<String> {
        saved
            .thread(key, saved.rounds.len())
            .into_iter()
            .map(|t| t.content)
            .collect()
    };
    assert_eq!(
        texts("p-gm"),
        ["q1", "Gemini r1", "q2", "Gemini r2", "q3", "Gemini r3"]
    );
    assert_eq!(
        texts("p-oa2"),
        ["q1", "Gemini r1", "q2", "Gemini r2", "q3", "OpenAI r3"]
    );
    assert_eq!(texts("p-oa"), ["q1", "OpenAI r1"], "a closed pane's own");

    // And the next round really sends that.
    let svc = open_service(home.path());
    let layout = PaneLayout {
        rev: saved.layout_rev + 1,
        panes: saved.open_panes().map(|p| p.spec()).collect(),
    };
    let (_, got) = round(
        &svc,
        &server,
        Some(conv),
        "q4",
        &layout,
        &[("p-gm", "Gemini r4"), ("p-oa2", "OpenAI r4")],
    )
    .await;
    assert_eq!(got[0].0, "gm-model");
    assert_eq!(
        got[0].1.last().unwrap(),
        &("user".to_owned(), "q4".to_owned())
    );
    assert_eq!(got[0].1[5].1, "Gemini r3");
    assert_eq!(got[1].0, "oa-model");
    assert_eq!(got[1].1[5].1, "OpenAI r3");
    assert_eq!(got[1].1[1].1, "Gemini r1");
    assert!(
        got.iter()
            .all(|(_, t)| !t.iter().any(|(_, text)| text.contains("Anthropic"))),
        "no model is sent a closed pane's answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_saved_late_does_not_undo_a_newer_one() {
    let server = MockServer::start().await.unwrap();
    let home = mock_home(&server).unwrap();
    let svc = open_service(home.path());
    let ids = svc
        .start_round(&StartRound {
            conversation: None,
            prompt: "q".into(),
            attachments: Vec::new(),
            layout: Some(PaneLayout {
                rev: 1,
                panes: vec![spec("a", OA), spec("b", AN)],
            }),
        })
        .unwrap();
    let save = |rev, panes| {
        svc.save_panes(&SavePanes {
            conversation: ids.conversation,
            layout: PaneLayout { rev, panes },
        })
        .unwrap()
    };
    assert!(save(3, vec![spec("b", AN)]));
    assert!(!save(2, vec![spec("a", OA), spec("b", AN)]), "overtaken");
    let saved = svc.open_conversation(ids.conversation).unwrap();
    let open: Vec<&str> = saved.open_panes().map(|p| p.key.as_str()).collect();
    assert_eq!(open, ["b"]);
    assert_eq!(saved.layout_rev, 3);
}
