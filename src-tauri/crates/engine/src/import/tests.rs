//! Importing hand-made exports shaped like the vendors' published formats
//! (`tests/fixtures/import/`): branches, edited prompts, regenerated
//! answers, tools, hidden context, attachments the export leaves out.

use switchboard_protocol::{ImportProgress, ImportSource};

use super::*;
use crate::chat::Role;
use crate::store::{ConversationId, Store, StoredMessage};

const CHATGPT: &str =
    include_str!("../../../../../tests/fixtures/import/chatgpt-conversations.json");
const CLAUDE: &str = include_str!("../../../../../tests/fixtures/import/claude-conversations.json");

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_at(&tmp.path().join("db.sqlite3")).unwrap();
    (tmp, store)
}

fn count(store: &Store, table: &str) -> i64 {
    store
        .conn()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn quiet(_: ImportProgress) {}

fn by_title(store: &Store, title: &str) -> (ConversationId, Vec<StoredMessage>) {
    let page = store.conversations(None, 100, true).unwrap();
    let c = page
        .items
        .iter()
        .find(|c| c.title == title)
        .unwrap_or_else(|| panic!("no conversation {title:?}"));
    (c.id, store.messages(c.id, None, 500).unwrap().items)
}

fn find<'a>(messages: &'a [StoredMessage], start: &str) -> &'a StoredMessage {
    messages
        .iter()
        .find(|m| m.content.starts_with(start))
        .unwrap_or_else(|| panic!("no message starting {start:?}"))
}

#[test]
fn a_chatgpt_export_keeps_titles_times_models_and_branches() {
    let (_tmp, store) = store();
    let summary = import_text(&store, CHATGPT, &mut quiet).unwrap();
    assert_eq!(summary.source, ImportSource::Chatgpt);
    assert_eq!((summary.conversations, summary.added), (3, 3));
    assert_eq!(summary.messages, 7 + 4 + 2);
    // Custom instructions (hidden), a tool call and the tool's answer.
    assert_eq!(summary.skipped_messages, 3);
    assert_eq!(summary.missing_attachments, 2);
    assert_eq!(summary.missing_examples, vec!["whiteboard.jpg", "plan.pdf"]);

    let (id, m) = by_title(&store, "Lisbon with kids");
    let conv = store.conversation(id).unwrap();
    // create_time 1714550400.0 s, update_time 130 s later.
    assert_eq!(conv.created_at_ms, 1_714_550_400_000);
    assert_eq!(conv.updated_at_ms, 1_714_550_530_000);
    assert_eq!(m.len(), 7);
    let first = find(&m, "Plan three days");
    let edited = find(&m, "Plan four days");
    // The edit is a branch beside the original prompt, not after it.
    assert_eq!(first.parent, None);
    assert_eq!(edited.parent, None);
    assert_eq!(first.created_at_ms, 1_714_550_410_000);
    let answer = find(&m, "Day 1: Alfama");
    assert_eq!(answer.parent, Some(first.id));
    assert_eq!(answer.model.as_deref(), Some("gpt-4o"));
    assert_eq!(answer.provider.as_deref(), Some("openai"));
    assert_eq!(answer.target.as_deref(), Some("openai:gpt-4o"));
    // Two answers to the edited prompt (a regeneration, another model).
    let v1 = find(&m, "Day 1: Oceanário");
    let v2 = find(&m, "Four kid-friendly days");
    assert_eq!(v1.parent, Some(edited.id));
    assert_eq!(v2.parent, Some(edited.id));
    assert_eq!(v2.model.as_deref(), Some("o3"));
    // The follow-up continues the regenerated answer; the answer after the
    // tool call hangs from it directly.
    let rain = find(&m, "What if it rains?");
    assert_eq!(rain.parent, Some(v2.id));
    let after_tool = find(&m, "On a rainy day");
    assert_eq!(after_tool.parent, Some(rain.id));
    assert!(
        m.iter().all(|x| !x.content.contains("search(")),
        "no tool call"
    );
    assert!(
        m.iter().all(|x| !x.content.contains("Porto")),
        "no hidden context"
    );
    assert_eq!(m.iter().filter(|x| x.role == Role::User).count(), 3);

    let (_, m) = by_title(&store, "Whiteboard photo");
    let photo = find(&m, "Transcribe this whiteboard.");
    assert!(
        photo
            .content
            .contains("[Attachment not included in the export: whiteboard.jpg (1536×1152 image)]"),
        "{}",
        photo.content
    );
    assert_eq!(
        photo.content.matches("whiteboard.jpg").count(),
        1,
        "noted once"
    );
    assert!(
        find(&m, "Compare it with the plan")
            .content
            .contains("plan.pdf")
    );

    // No title: the first prompt; no create_time: the conversation's.
    let (id, m) = by_title(&store, "hello there");
    assert_eq!(
        m[0].created_at_ms,
        store.conversation(id).unwrap().created_at_ms
    );
    assert_eq!(m[1].model.as_deref(), Some("gpt-4o-mini"));

    // Searchable at once.
    let hits = store.search("tile museum", 10, 0).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].title, "Lisbon with kids");
}

#[test]
fn a_claude_export_keeps_branches_reasoning_and_extracted_files() {
    let (_tmp, store) = store();
    let summary = import_text(&store, CLAUDE, &mut quiet).unwrap();
    assert_eq!(summary.source, ImportSource::Claude);
    assert_eq!((summary.added, summary.messages), (2, 10));
    assert_eq!(summary.missing_examples, vec!["compiler-error.png"]);

    let (id, m) = by_title(&store, "Rust lifetimes");
    let conv = store.conversation(id).unwrap();
    assert_eq!(conv.updated_at_ms - conv.created_at_ms, 330_250);
    let question = find(&m, "Why does this not compile?");
    assert!(
        question
            .content
            .contains("[Attachment: main.rs]\n```\nfn longest")
    );
    assert!(
        question
            .content
            .contains("[Attachment not included in the export: compiler-error.png]")
    );
    let answer = find(&m, "The return type needs a lifetime");
    assert_eq!(answer.parent, Some(question.id));
    assert_eq!(answer.provider.as_deref(), Some("anthropic"));
    assert_eq!(
        answer.reasoning.as_deref(),
        Some("Two borrowed inputs, one borrowed output: elision cannot pick.")
    );
    assert_eq!(find(&m, "Thanks!").parent, Some(answer.id));

    // An empty name: titled by the first prompt. The edit is a branch.
    let (_, m) = by_title(&store, "Name a prime between 10 and 20.");
    let first = find(&m, "Name a prime");
    let edit = find(&m, "Name two primes");
    assert_eq!((first.parent, edit.parent), (None, None));
    let both = find(&m, "11 and 13.");
    assert_eq!(both.parent, Some(edit.id));
    let largest = find(&m, "And the largest?");
    assert_eq!(largest.parent, Some(both.id));
    assert_eq!(find(&m, "19.").content, "19.", "tool blocks left out");
}

#[test]
fn importing_the_same_file_again_adds_nothing_and_a_newer_export_adds_only_what_is_new() {
    let (_tmp, store) = store();
    import_text(&store, CHATGPT, &mut quiet).unwrap();
    import_text(&store, CLAUDE, &mut quiet).unwrap();
    let (conversations, messages) = (count(&store, "conversations"), count(&store, "messages"));
    let again = import_text(&store, CHATGPT, &mut quiet).unwrap();
    assert_eq!(
        (again.added, again.updated, again.unchanged, again.messages),
        (0, 0, 3, 0)
    );
    assert_eq!(again.latest, None);
    import_text(&store, CLAUDE, &mut quiet).unwrap();
    assert_eq!(count(&store, "conversations"), conversations);
    assert_eq!(count(&store, "messages"), messages);

    // The same account exported later: one conversation went on.
    let mut doc: serde_json::Value = serde_json::from_str(CHATGPT).unwrap();
    let mapping = doc[2]["mapping"].as_object_mut().unwrap();
    mapping["z"]["children"] = serde_json::json!(["z2"]);
    mapping.insert(
        "z2".into(),
        serde_json::json!({"id": "z2", "parent": "z", "children": [], "message": {
            "id": "z2", "author": {"role": "user"}, "create_time": 1719792100.5,
            "content": {"content_type": "text", "parts": ["You are a bold one."]},
            "recipient": "all", "metadata": {}}}),
    );
    let newer = import_text(&store, &doc.to_string(), &mut quiet).unwrap();
    assert_eq!(
        (newer.added, newer.updated, newer.unchanged, newer.messages),
        (0, 1, 2, 1)
    );
    let (id, m) = by_title(&store, "hello there");
    assert_eq!(newer.latest, Some(id.0));
    let bold = find(&m, "You are a bold one.");
    assert_eq!(bold.parent, Some(find(&m, "General Kenobi.").id));
    assert_eq!(count(&store, "messages"), messages + 1);

    // A deleted conversation comes back when imported again.
    let (lisbon, _) = by_title(&store, "Lisbon with kids");
    store.delete_conversation(lisbon).unwrap();
    let back = import_text(&store, CHATGPT, &mut quiet).unwrap();
    assert_eq!(back.added, 1);
    assert_eq!(by_title(&store, "Lisbon with kids").1.len(), 7);
}

#[test]
fn malformed_and_unknown_files_are_refused_with_the_reason_and_nothing_written() {
    let (_tmp, store) = store();
    let refused = |text: &str| {
        let before = (count(&store, "conversations"), count(&store, "import_runs"));
        let err = import_text(&store, text, &mut quiet)
            .unwrap_err()
            .to_string();
        assert_eq!(
            (count(&store, "conversations"), count(&store, "import_runs")),
            before,
            "{err}"
        );
        err
    };
    assert!(refused("{not json").contains("not JSON"));
    assert!(refused("[]").contains("holds no conversations"));
    assert!(refused(r#"{"hello": "world"}"#).contains("not a ChatGPT or Claude export"));
    assert!(refused(r#"[{"id": 1}]"#).contains("neither `mapping`"));
    // One broken conversation among good ones: nothing of the file lands.
    let mut doc: serde_json::Value = serde_json::from_str(CHATGPT).unwrap();
    doc[1]["mapping"] = serde_json::json!("not a tree");
    let err = refused(&doc.to_string());
    assert!(
        err.contains("conversation 2 (\"Whiteboard photo\")"),
        "{err}"
    );
    let mut doc: serde_json::Value = serde_json::from_str(CLAUDE).unwrap();
    doc[0]["chat_messages"][1]
        .as_object_mut()
        .unwrap()
        .remove("sender");
    let err = refused(&doc.to_string());
    assert!(
        err.contains("Rust lifetimes") && err.contains("sender"),
        "{err}"
    );
}

/// A ChatGPT export of `n` conversations of four messages each; the word
/// `marker<i>` appears only in conversation `i`.
pub fn generated_chatgpt(n: usize) -> String {
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let t = 1_700_000_000.0 + i as f64 * 60.0;
        let node = |id: String,
                    role: &str,
                    text: String,
                    parent: Option<String>,
                    child: Option<String>,
                    dt: f64| {
            serde_json::json!({"id": id, "parent": parent, "children": child.into_iter().collect::<Vec<_>>(),
                "message": {"id": id, "author": {"role": role}, "create_time": t + dt,
                    "content": {"content_type": "text", "parts": [text]},
                    "recipient": "all", "metadata": {"model_slug": "gpt-4o"}}})
        };
        let ids: Vec<String> = (0..4).map(|k| format!("g{i}-{k}")).collect();
        let mut mapping = serde_json::Map::new();
        for k in 0..4 {
            let role = if k % 2 == 0 { "user" } else { "assistant" };
            let text = format!("message {k} of conversation {i} about marker{i} and the weather");
            let parent = (k > 0).then(|| ids[k - 1].clone());
            let child = ids.get(k + 1).cloned();
            mapping.insert(
                ids[k].clone(),
                node(ids[k].clone(), role, text, parent, child, k as f64),
            );
        }
        items.push(
            serde_json::json!({"title": format!("Generated {i}"), "create_time": t,
            "update_time": t + 3.0, "mapping": mapping, "current_node": ids[3],
            "conversation_id": format!("gen-{i}"), "id": format!("gen-{i}")}),
        );
    }
    serde_json::Value::Array(items).to_string()
}

#[test]
fn progress_is_reported_per_batch_and_a_failed_batch_undoes_the_whole_import() {
    let (_tmp, store) = store();
    let n = crate::store::IMPORT_BATCH * 2 + 10;
    let text = generated_chatgpt(n);
    // A write that fails in the third batch, as a full disk would.
    store
        .conn()
        .execute_batch(&format!(
            "CREATE TEMP TRIGGER fail_late BEFORE INSERT ON conversations
             WHEN NEW.title = 'Generated {}' BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            n - 1
        ))
        .unwrap();
    let mut seen: Vec<ImportProgress> = Vec::new();
    let err = import_text(&store, &text, &mut |p| seen.push(p)).unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(seen.iter().any(|p| p.done > 0), "batches had landed");
    for table in ["conversations", "messages", "import_sources", "import_runs"] {
        assert_eq!(count(&store, table), 0, "{table} after the undo");
    }
    assert!(store.search("weather", 5, 0).unwrap().is_empty());

    store
        .conn()
        .execute_batch("DROP TRIGGER fail_late")
        .unwrap();
    let mut seen: Vec<ImportProgress> = Vec::new();
    let summary = import_text(&store, &text, &mut |p| seen.push(p)).unwrap();
    assert_eq!(summary.added as usize, n);
    let done: Vec<u64> = seen.iter().map(|p| p.done).collect();
    assert_eq!(done, vec![0, 250, 500, n as u64]);
    assert!(seen.iter().all(|p| p.total == n as u64));
    let hits = store.search(&format!("marker{}", n - 1), 5, 0).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].title, format!("Generated {}", n - 1));
}

#[test]
fn an_import_cut_off_mid_way_is_removed_when_its_store_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db.sqlite3");
    let text = generated_chatgpt(crate::store::IMPORT_BATCH + 5);
    {
        let store = Store::open_at(&path).unwrap();
        // The import panics after the first batch landed: it never ends.
        // (A process killed outright is the CLI's test: `cli/tests/import.rs`.)
        let cut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            import_text(&store, &text, &mut |p| {
                assert!(p.done < crate::store::IMPORT_BATCH as u64, "cut off");
            })
        }));
        assert!(cut.is_err());
        assert_eq!(
            count(&store, "conversations"),
            crate::store::IMPORT_BATCH as i64,
            "the first batch was written"
        );
        drop(store);
    }
    let reopened = Store::open_at(&path).unwrap();
    for table in ["conversations", "messages", "import_sources", "import_runs"] {
        assert_eq!(count(&reopened, table), 0, "{table} after recovery");
    }
    // And the file imports cleanly afterwards.
    let summary = import_text(&reopened, &text, &mut quiet).unwrap();
    assert_eq!(summary.added as usize, crate::store::IMPORT_BATCH + 5);
}
