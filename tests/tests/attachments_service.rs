//! The app's attachment and import commands, through the chat service
//! without a window (the Tauri commands only decode arguments and call
//! these): a file stored once and named by id in two panes' requests, the
//! bytes each protocol receives, a pane refused before sending, the
//! reopened conversation showing what the prompt carried, and an import
//! with progress. Incognito files kept in memory only while their
//! conversation is on screen; a send to three panes reading each file once.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::Arc;

use switchboard_engine::service::ChatService;
use switchboard_engine::{DataDir, KeyStore};
use switchboard_mock::{MockServer, MockUsage, Protocol, Scenario, samples};
use switchboard_protocol::{
    AskRequest, AttachmentRef, ImportSource, PaneLayout, PaneParams, PaneSpec, RecordAt,
    StartRound, Turn, TurnRole,
};

fn service(server: &MockServer) -> (tempfile::TempDir, Arc<ChatService>) {
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "[providers.oa]\nkind = \"openai\"\nbase_url = \"{oa}\"\n\
         [[providers.oa.models]]\nid = \"vision\"\naccepts = [\"image\", \"pdf\"]\n\
         input_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n\
         [[providers.oa.models]]\nid = \"text-only\"\ninput_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n\
         [providers.gm]\nkind = \"gemini\"\nbase_url = \"{gm}\"\n\
         [[providers.gm.models]]\nid = \"vision\"\naccepts = [\"image\", \"pdf\"]\n\
         input_usd_per_mtok = \"1\"\noutput_usd_per_mtok = \"2\"\n\
         [routes.any]\ntargets = [\"oa:text-only\", \"gm:vision\"]\n",
        oa = server.base_url(Protocol::OpenAi),
        gm = server.base_url(Protocol::Gemini),
    );
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let svc = Arc::new(ChatService::new(
        DataDir::at(home.path()).unwrap(),
        KeyStore::with_service("switchboard-test-attachments"),
    ));
    (home, svc)
}

fn turn(content: &str, attachments: Vec<AttachmentRef>) -> Turn {
    Turn {
        role: TurnRole::User,
        content: content.into(),
        attachments,
    }
}

fn ask(stream_id: u64, target: &str, turns: Vec<Turn>, record: Option<RecordAt>) -> AskRequest {
    AskRequest {
        stream_id,
        target: target.into(),
        turns,
        params: PaneParams::default(),
        record,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_stored_once_reaches_two_panes_and_comes_back_with_the_conversation() {
    let server = MockServer::start().await.unwrap();
    let answer = Scenario::default()
        .with_text(&["A bar chart."])
        .with_usage(MockUsage {
            input: 800,
            cached_input: 0,
            output: 4,
            reasoning: 0,
        });
    server.script("vision", answer.clone());
    server.script("text-only", answer);
    let (_home, svc) = service(&server);
    let png = samples::png(40, 30, 9);
    // Pasted bytes (no file name) and a dropped file: the same content.
    let pasted = svc
        .store_attachment(png.clone(), Some("chart.png"))
        .unwrap();
    let dropped = svc
        .store_attachment(png.clone(), Some("dropped.png"))
        .unwrap();
    assert_eq!(pasted.id, dropped.id, "stored once, by content");
    assert_eq!(
        (pasted.media_type.as_str(), pasted.width, pasted.height),
        ("image/png", Some(40), Some(30))
    );
    assert_eq!(
        svc.attachment_data(&pasted.id).unwrap(),
        (png.clone(), "image/png".into())
    );
    let err = svc
        .store_attachment(b"%!PS-Adobe-3.0 not a pdf".to_vec(), Some("doc.pdf"))
        .unwrap_err();
    assert!(err.to_string().contains("doc.pdf is not a PNG"), "{err}");

    // Before sending: the text-only pane says so; a route moves on to a
    // target that can take it.
    let turns = vec![turn("What does it show?", vec![pasted.clone()])];
    let checks = svc.check_attachments(&[
        ask(1, "oa:vision", turns.clone(), None),
        ask(2, "oa:text-only", turns.clone(), None),
        ask(3, "@any", turns.clone(), None),
        ask(4, "gm:vision", vec![turn("no files", vec![])], None),
    ]);
    assert_eq!(checks[0].refused, None);
    assert_eq!(
        checks[0].attachment_tokens,
        Some(85 + 170),
        "OpenAI tile rule"
    );
    let refused = checks[1].refused.as_deref().unwrap();
    assert!(refused.contains("chart.png not sent"), "{refused}");
    assert_eq!(checks[2].refused, None);
    assert_eq!(
        checks[2].attachment_tokens,
        Some(258),
        "Gemini, the route's second target"
    );
    assert_eq!(
        (checks[3].refused.clone(), checks[3].attachment_tokens),
        (None, None)
    );

    // Sent from two panes, recorded under them.
    let panes = [("left", "oa:vision"), ("right", "gm:vision")];
    let ids = svc
        .start_round(&StartRound {
            conversation: None,
            prompt: "What does it show?".into(),
            attachments: vec![pasted.clone()],
            layout: Some(PaneLayout {
                rev: 1,
                panes: panes
                    .iter()
                    .map(|(key, target)| PaneSpec::new(*key, *target))
                    .collect(),
            }),
        })
        .unwrap();
    for (i, (key, target)) in panes.into_iter().enumerate() {
        let record = RecordAt {
            conversation: ids.conversation,
            user_message: ids.user_message,
            pane: key.into(),
        };
        let summary = svc
            .ask(
                ask(10 + i as u64, target, turns.clone(), Some(record)),
                |_| true,
            )
            .await;
        assert!(summary.error.is_none(), "{target}: {:?}", summary.error);
    }
    let b64 = samples::base64_encode(&png);
    let bodies: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| String::from_utf8(r.raw_body.clone()).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0].contains(&format!("data:image/png;base64,{b64}")));
    let gemini: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(
        gemini["contents"][0]["parts"][0]["inlineData"],
        serde_json::json!({"mimeType": "image/png", "data": b64})
    );

    // The text-only pane was refused before sending.
    let summary = svc
        .ask(ask(20, "oa:text-only", turns, None), |_| true)
        .await;
    assert_eq!(summary.error.unwrap().kind, "unsupported");
    assert_eq!(server.hits("text-only"), 0);

    // Reopened: the prompt with its attachment, by reference.
    let saved = svc.open_conversation(ids.conversation).unwrap();
    assert_eq!(saved.rounds[0].attachments.len(), 1);
    assert_eq!(saved.rounds[0].attachments[0].id, pasted.id);
    assert_eq!(
        saved.rounds[0].attachments[0].name.as_deref(),
        Some("chart.png")
    );
    let answered: Vec<(&str, &str)> = saved.rounds[0]
        .answers
        .iter()
        .map(|a| (a.pane.as_str(), a.target.as_str()))
        .collect();
    assert_eq!(answered, panes);
    // Continuing in either pane sends the image again with the first turn.
    for (key, _) in panes {
        let thread = saved.thread(key, 1);
        assert_eq!(thread.len(), 2, "{key}");
        assert_eq!(thread[0].attachments, vec![pasted.clone()], "{key}");
        assert!(thread[1].attachments.is_empty());
    }

    // Discarding does not remove what a message uses; deleting the
    // conversation does.
    assert!(!svc.discard_attachment(&pasted.id).unwrap());
    svc.delete_conversation(ids.conversation).unwrap();
    assert!(svc.attachment_data(&pasted.id).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_reports_progress_and_lands_in_the_sidebar() {
    let server = MockServer::start().await.unwrap();
    let (home, svc) = service(&server);
    let file = home.path().join("conversations.json");
    std::fs::write(
        &file,
        switchboard_tests::history_gen::chatgpt_export(600, 3),
    )
    .unwrap();
    let mut seen = Vec::new();
    let summary = svc.import_history(&file, &mut |p| seen.push(p)).unwrap();
    assert_eq!(summary.source, ImportSource::Chatgpt);
    assert_eq!(summary.added, 600);
    assert_eq!(
        seen.iter().map(|p| p.done).collect::<Vec<_>>(),
        vec![0, 250, 500, 600]
    );
    let page = svc.list_conversations(None).unwrap();
    assert_eq!(page.items[0].id, summary.latest.unwrap());
    assert_eq!(page.items[0].title, "Generated conversation 599");
    let found = svc.search_history("marker17").unwrap();
    assert_eq!(found.len(), 1);
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let err = svc.import_history(&bad, &mut |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("not a ChatGPT or Claude export"),
        "{err}"
    );
}

/// The files under the data directory's `attachments/`.
fn files_on_disk(home: &std::path::Path) -> usize {
    let mut n = 0;
    let mut dirs = vec![home.join("attachments")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

/// The base64 data of the first part of the last Gemini request.
fn last_gemini_image(server: &MockServer) -> serde_json::Value {
    let body = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .filter_map(|r| r.body)
        .next_back()
        .unwrap();
    body["contents"][0]["parts"][0]["inlineData"]["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incognito_files_live_in_memory_while_their_conversation_is_on_screen() {
    let server = MockServer::start().await.unwrap();
    server.script("vision", Scenario::default().with_text(&["A chart."]));
    let (home, svc) = service(&server);
    let png = samples::png(16, 12, 4);
    let b64 = samples::base64_encode(&png);

    // Added with Incognito on: in memory only.
    let chart = svc
        .keep_attachment_in_memory(png.clone(), Some("chart.png"))
        .unwrap();
    assert_eq!(files_on_disk(home.path()), 0);
    assert_eq!(
        svc.attachment_data(&chart.id).unwrap().0,
        png,
        "its thumbnail"
    );
    let turns = vec![turn("What is it?", vec![chart.clone()])];
    assert_eq!(
        svc.check_attachments(&[ask(1, "gm:vision", turns.clone(), None)])[0].refused,
        None
    );
    // Sent, then regenerated: the same bytes both times.
    for stream in [2, 3] {
        let summary = svc
            .ask(ask(stream, "gm:vision", turns.clone(), None), |_| true)
            .await;
        assert!(summary.error.is_none(), "{:?}", summary.error);
        assert_eq!(last_gemini_image(&server), b64.as_str());
    }
    assert_eq!(files_on_disk(home.path()), 0);

    // A file stored before Incognito was turned on leaves the disk when
    // its round is sent incognito, and is still sent after that.
    let jpeg = samples::jpeg(20, 20);
    let photo = svc
        .store_attachment(jpeg.clone(), Some("photo.jpg"))
        .unwrap();
    assert_eq!(files_on_disk(home.path()), 1);
    svc.hold_attachments(std::slice::from_ref(&photo.id))
        .unwrap();
    assert_eq!(files_on_disk(home.path()), 0);
    let summary = svc
        .ask(
            ask(
                4,
                "gm:vision",
                vec![turn("And this?", vec![photo.clone()])],
                None,
            ),
            |_| true,
        )
        .await;
    assert!(summary.error.is_none(), "{:?}", summary.error);
    assert_eq!(
        last_gemini_image(&server),
        samples::base64_encode(&jpeg).as_str()
    );

    // The conversation is left, the composer still holding the photo: the
    // chart is gone, so regenerating now says so; the photo is kept.
    assert_eq!(svc.release_attachments(std::slice::from_ref(&photo.id)), 1);
    let summary = svc
        .ask(ask(5, "gm:vision", turns.clone(), None), |_| true)
        .await;
    let error = summary.error.unwrap();
    assert!(
        error.message.contains("chart.png cannot be sent"),
        "{error:?}"
    );
    assert_eq!(server.hits("vision"), 3, "nothing sent without it");

    // Sent with Incognito off after all: stored with the recorded prompt.
    let ids = svc
        .start_round(&StartRound {
            conversation: None,
            prompt: "Saved after all".into(),
            attachments: vec![photo.clone()],
            layout: None,
        })
        .unwrap();
    assert_eq!(files_on_disk(home.path()), 1);
    let saved = svc.open_conversation(ids.conversation).unwrap();
    assert_eq!(saved.rounds[0].attachments[0].id, photo.id);
    svc.delete_conversation(ids.conversation).unwrap();
    assert_eq!(files_on_disk(home.path()), 0);

    // The app ends (or crashes) with an incognito file held: the next
    // start finds nothing of it.
    svc.keep_attachment_in_memory(png, Some("again.png"))
        .unwrap();
    drop(svc);
    let restarted = ChatService::new(
        DataDir::at(home.path()).unwrap(),
        KeyStore::with_service("switchboard-test-attachments"),
    );
    assert_eq!(files_on_disk(home.path()), 0);
    assert!(restarted.attachment_data(&chart.id).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_to_three_panes_reads_and_hashes_each_file_once() {
    let server = MockServer::start().await.unwrap();
    server.script("vision", Scenario::default().with_text(&["Seen."]));
    let (_home, svc) = service(&server);
    let pdf = svc
        .store_attachment(samples::pdf(2, "report"), Some("report.pdf"))
        .unwrap();
    let png = svc
        .store_attachment(samples::png(30, 20, 2), Some("chart.png"))
        .unwrap();
    let turns = vec![turn("Compare them", vec![pdf.clone(), png.clone()])];
    let panes = ["oa:vision", "gm:vision", "@any"];
    let requests: Vec<AskRequest> = panes
        .iter()
        .enumerate()
        .map(|(i, t)| ask(i as u64, t, turns.clone(), None))
        .collect();
    let before = svc.attachment_disk_reads();
    // The check before sending, then every pane's request at once.
    let checks = svc.check_attachments(&requests);
    assert!(checks.iter().all(|c| c.refused.is_none()), "{checks:?}");
    let answers =
        futures::future::join_all(requests.into_iter().map(|r| svc.ask(r, |_| true))).await;
    for a in &answers {
        assert!(a.error.is_none(), "{:?}", a.error);
    }
    assert_eq!(server.hits("vision"), 3);
    assert_eq!(
        svc.attachment_disk_reads() - before,
        2,
        "two files, read once each"
    );
}
