//! The store against a real SQLite file in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::chat::{AttemptCost, AttemptResult, CostSource, FinishReason, Timing, Usage};
use crate::config::{Budget, BudgetPeriod, BudgetScope};
use crate::error::{ErrorKind, ProviderError};
use crate::hooks::{
    AttemptOutcome, AttemptRecord, BudgetGate, CooldownState, HealthSample, RequestTrace,
    SettledCost, SpendContext,
};
use crate::money::Cost;

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_at(&tmp.path().join("db.sqlite3")).unwrap();
    (tmp, store)
}

fn answer(provider: &str, model: &str, text: &str, nanos: i64) -> AttemptResult {
    AttemptResult {
        provider: provider.into(),
        model: model.into(),
        text: text.into(),
        reasoning: String::new(),
        finish_reason: Some(FinishReason::Stop),
        usage: Usage {
            input_tokens: Some(12),
            output_tokens: Some(34),
            cache_write_tokens: Some(5),
            cache_write_1h_tokens: Some(2),
            ..Usage::default()
        },
        cost: Some(AttemptCost {
            total: Cost::from_nanos(nanos),
            source: CostSource::Computed,
        }),
        billed: Some(Usage {
            input_tokens: Some(12),
            output_tokens: Some(34),
            cache_write_tokens: Some(5),
            cache_write_1h_tokens: Some(2),
            ..Usage::default()
        }),
        timing: Timing {
            ttft: Some(Duration::from_millis(120)),
            first_token: Some(Duration::from_millis(40)),
            thinking: Some(Duration::from_millis(80)),
            total: Duration::from_millis(900),
            tokens_per_s: Some(42.5),
        },
        error: None,
    }
}

fn count(store: &Store, table: &str) -> i64 {
    store
        .conn()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_conversation_is_recorded_as_rows_with_its_trace() {
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let conv = rec
        .start_conversation("SSE", &["work".into(), " acme ".into(), "work".into()])
        .unwrap();
    let q = rec.add_user_message(conv, None, "Explain SSE").unwrap();
    let trace = RequestTrace {
        route: Some("fast".into()),
        attempts: vec![
            AttemptRecord {
                provider: "groq".into(),
                model: "llama".into(),
                started_unix_ms: 1_000,
                ttft_ms: None,
                thinking_ms: None,
                total_ms: 30.0,
                outcome: AttemptOutcome::Error {
                    kind: ErrorKind::RateLimited,
                    message: "slow down".into(),
                },
                usage: Usage::default(),
                cost: None,
            },
            AttemptRecord {
                provider: "openai".into(),
                model: "gpt-x".into(),
                started_unix_ms: 1_030,
                ttft_ms: Some(120.0),
                thinking_ms: Some(80.0),
                total_ms: 900.0,
                outcome: AttemptOutcome::Ok,
                usage: Usage {
                    input_tokens: Some(12),
                    output_tokens: Some(34),
                    cache_write_tokens: Some(5),
                    cache_write_1h_tokens: Some(2),
                    ..Usage::default()
                },
                cost: Some(AttemptCost {
                    total: Cost::from_nanos(5_000),
                    source: CostSource::Computed,
                }),
            },
        ],
    };
    let a = rec
        .add_answer(
            conv,
            q,
            0,
            "fast",
            &answer("openai", "gpt-x", "Server-sent events.", 5_000),
            &trace,
        )
        .unwrap();
    let b = rec
        .add_answer(
            conv,
            q,
            1,
            "anthropic:claude",
            &answer("anthropic", "claude", "A one-way stream.", 7_000),
            &RequestTrace::default(),
        )
        .unwrap();

    let c = store.conversation(conv).unwrap();
    assert_eq!(c.tags, vec!["acme", "work"]);
    assert_eq!(c.message_count, 3);
    assert_eq!(c.cost.nanos(), 12_000);
    let m = store.message(a).unwrap();
    assert_eq!(m.parent, Some(q));
    assert_eq!(
        (m.pane, m.target.as_deref(), m.route.as_deref()),
        (Some(0), Some("fast"), Some("fast"))
    );
    assert_eq!(m.usage.output_tokens, Some(34));
    assert_eq!(
        (m.usage.cache_write_tokens, m.usage.cache_write_1h_tokens),
        (Some(5), Some(2)),
        "cache writes round-trip"
    );
    assert_eq!(m.ttft_ms, Some(120.0));
    assert_eq!(m.thinking_ms, Some(80.0));
    assert_eq!(m.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        store.attempts(a).unwrap(),
        trace.attempts,
        "the trace round-trips"
    );
    // Without a trace, the answer still gets its one attempt.
    let derived = store.attempts(b).unwrap();
    assert_eq!(derived.len(), 1);
    assert_eq!(derived[0].provider, "anthropic");
    assert_eq!(derived[0].outcome, AttemptOutcome::Ok);
    // A parent from another conversation is refused.
    let other = rec.start_conversation("other", &[]).unwrap();
    assert!(rec.add_user_message(other, Some(q), "x").is_err());
}

#[test]
fn failed_answers_keep_their_partial_text_and_error() {
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let conv = rec.start_conversation("t", &[]).unwrap();
    let q = rec.add_user_message(conv, None, "q").unwrap();
    let mut r = answer("oa", "m", "partial", 10);
    r.error = Some(ProviderError::new(
        ErrorKind::Interrupted,
        "oa",
        "connection reset",
    ));
    let id = rec
        .add_answer(conv, q, 0, "oa:m", &r, &RequestTrace::default())
        .unwrap();
    let m = store.message(id).unwrap();
    assert_eq!(m.content, "partial");
    assert_eq!(m.error_kind, Some(ErrorKind::Interrupted));
    assert_eq!(m.error_message.as_deref(), Some("connection reset"));
    assert!(matches!(
        store.attempts(id).unwrap()[0].outcome,
        AttemptOutcome::Error {
            kind: ErrorKind::Interrupted,
            ..
        }
    ));
}

#[test]
fn incognito_writes_nothing() {
    let (tmp, store) = store();
    let before: Vec<i64> = ["conversations", "messages", "attempts", "messages_fts"]
        .iter()
        .map(|t| count(&store, t))
        .collect();
    let rec = store.recorder(true);
    assert!(rec.is_incognito());
    let conv = rec
        .start_conversation("secret plans", &["x".into()])
        .unwrap();
    let q = rec
        .add_user_message(conv, None, "the secret plans")
        .unwrap();
    let a = rec
        .add_answer(
            conv,
            q,
            0,
            "oa:m",
            &answer("oa", "m", "noted", 1),
            &RequestTrace::default(),
        )
        .unwrap();
    assert_ne!(q, a, "ids are still handed out");
    assert_eq!(
        rec.spend_context(conv, "oa", "m", None, &[]).conversation,
        None
    );
    let after: Vec<i64> = ["conversations", "messages", "attempts", "messages_fts"]
        .iter()
        .map(|t| count(&store, t))
        .collect();
    assert_eq!(before, after);
    drop(store);
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            // The lock folder: empty once the store is closed.
            assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0, "{path:?}");
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        assert!(!bytes.windows(12).any(|w| w == b"secret plans"));
    }
}

#[test]
fn listings_are_paginated_pinned_first_then_newest() {
    let (_tmp, store) = store();
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(
            store
                .create_conversation(&format!("c{i}"), &[], 1_000 + i)
                .unwrap(),
        );
    }
    store.set_pinned(ids[3], true).unwrap();
    store.set_archived(ids[24], true).unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store.conversations(after.as_deref(), 7, false).unwrap();
        assert!(page.items.len() <= 7);
        seen.extend(page.items.iter().map(|c| c.id));
        pages += 1;
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let mut expected = vec![ids[3]];
    expected.extend(ids[..24].iter().rev().filter(|id| **id != ids[3]));
    assert_eq!(
        seen, expected,
        "pinned first, then newest; archived left out"
    );
    let all = store.conversations(None, 100, true).unwrap();
    assert_eq!(all.items.len(), 25);
    assert!(store.conversations(Some("garbage"), 10, false).is_err());

    // Messages page in order.
    let rec = store.recorder(false);
    let mut parent = None;
    for i in 0..11 {
        parent = Some(
            rec.add_user_message(ids[0], parent, &format!("m{i}"))
                .unwrap(),
        );
    }
    let first = store.messages(ids[0], None, 5).unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>(),
        ["m0", "m1", "m2", "m3", "m4"]
    );
    let second = store.messages(ids[0], first.next.as_deref(), 5).unwrap();
    assert_eq!(second.items[0].content, "m5");
    let third = store.messages(ids[0], second.next.as_deref(), 5).unwrap();
    assert_eq!(third.items.len(), 1);
    assert!(third.next.is_none());
}

#[test]
fn search_ranks_the_right_conversation_first_with_a_highlighted_snippet() {
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let mk = |title: &str, texts: &[&str]| {
        let c = rec.start_conversation(title, &[]).unwrap();
        let mut parent = None;
        for t in texts {
            parent = Some(rec.add_user_message(c, parent, t).unwrap());
        }
        c
    };
    let _noise = mk(
        "cooking",
        &[
            "How long do I boil an egg?",
            "Seven minutes for a jammy yolk.",
        ],
    );
    let weak = mk(
        "misc",
        &["I once read about a kubernetes operator, unrelated to this."],
    );
    let target = mk(
        "k8s",
        &[
            "How do I write a Kubernetes operator in Rust?",
            "Use kube-rs: a Kubernetes operator watches resources and reconciles them.",
        ],
    );
    let hits = store.search("kubernetes operators", 10, 0).unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0].conversation, target, "{hits:?}");
    assert_eq!(hits[0].matching_messages, 2);
    assert_eq!(hits[1].conversation, weak);
    let marked = hits[0].snippet_marked("**", "**");
    assert!(marked.contains("**Kubernetes** **operator**"), "{marked}");
    assert!(hits[0].snippet.iter().any(|p| p.highlighted));
    // Stemming and diacritics: "boiling" finds "boil", "crème" finds "creme".
    assert_eq!(store.search("boiling", 10, 0).unwrap().len(), 1);
    mk("dessert", &["crème brûlée"]);
    assert_eq!(store.search("creme brulee", 10, 0).unwrap().len(), 1);
    // Syntax in the input is not FTS syntax.
    for q in ["\"unbalanced", "a:b", "C++ NOT (", "-x", "***"] {
        store.search(q, 10, 0).unwrap();
    }
    // Pages.
    assert_eq!(
        store.search("kubernetes", 1, 1).unwrap()[0].conversation,
        weak
    );
    // Edits and deletions reach the index.
    store.delete_conversation(target).unwrap();
    assert_eq!(store.search("reconciles", 10, 0).unwrap().len(), 0);
}

#[test]
fn export_and_import_round_trip_and_markdown_reads_well() {
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let conv = rec.start_conversation("Compare", &["eval".into()]).unwrap();
    let q = rec.add_user_message(conv, None, "Say hi").unwrap();
    let mut r = answer("openai", "gpt-x", "Hi!", 185_100);
    r.reasoning = "greet".into();
    rec.add_answer(conv, q, 0, "openai:gpt-x", &r, &RequestTrace::default())
        .unwrap();
    let mut est = answer("ollama", "llama3", "Hello.", 12);
    est.cost = Some(AttemptCost {
        total: Cost::from_nanos(12),
        source: CostSource::Estimated,
    });
    rec.add_answer(conv, q, 1, "ollama:llama3", &est, &RequestTrace::default())
        .unwrap();

    let json = store.export_json(conv).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["format"], EXPORT_FORMAT);
    assert_eq!(doc["messages"][1]["model"], "gpt-x");
    assert_eq!(doc["messages"][1]["cost"]["total"], 185_100);
    assert_eq!(doc["messages"][1]["cost_usd"], "0.0001851");
    assert_eq!(doc["messages"][1]["ttft_ms"], 120.0);
    assert_eq!(
        doc["messages"][1]["attempts"][0]["outcome"]["outcome"],
        "ok"
    );
    assert_eq!(doc["cost_usd"], "0.000185112");

    let copy = store.import_json(&json).unwrap();
    assert_ne!(copy, conv);
    let a = store.export(conv).unwrap();
    let b = store.export(copy).unwrap();
    assert_eq!(a.title, b.title);
    assert_eq!(a.tags, b.tags);
    assert_eq!(a.messages.len(), b.messages.len());
    for (x, y) in a.messages.iter().zip(&b.messages) {
        assert_ne!(x.id, y.id, "new ids");
        assert_eq!(
            (
                &x.content,
                x.role,
                &x.model,
                x.cost,
                &x.attempts,
                x.usage,
                x.pane
            ),
            (
                &y.content,
                y.role,
                &y.model,
                y.cost,
                &y.attempts,
                y.usage,
                y.pane
            )
        );
    }
    // The reply structure survives: both answers reply to the question.
    assert_eq!(b.messages[1].parent, Some(b.messages[0].id));
    assert_eq!(b.messages[2].parent, Some(b.messages[0].id));
    assert_eq!(count(&store, "ledger"), 0, "imports are history, not spend");

    let md = store.export_markdown(conv).unwrap();
    assert!(md.starts_with("# Compare\n"), "{md}");
    assert!(md.contains("- Tags: eval"), "{md}");
    assert!(md.contains("### 2. openai:gpt-x · pane 1"), "{md}");
    assert!(
        md.contains("### 3. ollama:llama3 · pane 2 — replying to 1"),
        "{md}"
    );
    assert!(md.contains("$0.0001851"), "{md}");
    assert!(md.contains("$0.000000012 est."), "{md}");
    assert!(md.contains("120 ms to first token"), "{md}");
    assert!(md.contains("> greet"), "{md}");

    for bad in [
        "{}",
        "not json",
        r#"{"format":"other","version":1,"title":"t","created_at_ms":0,"updated_at_ms":0,"messages":[]}"#,
        r#"{"format":"switchboard.conversation","version":99,"title":"t","created_at_ms":0,"updated_at_ms":0,"messages":[]}"#,
        r#"{"format":"switchboard.conversation","version":1,"title":"t","created_at_ms":0,"updated_at_ms":0,"messages":[{"id":1,"parent":7,"role":"user","content":"x","created_at_ms":0}]}"#,
    ] {
        let before = count(&store, "conversations");
        assert!(store.import_json(bad).is_err(), "{bad}");
        assert_eq!(
            count(&store, "conversations"),
            before,
            "a failed import leaves nothing"
        );
    }
}

fn budget(name: &str, scope: BudgetScope, period: BudgetPeriod, usd: &str, hard: bool) -> Budget {
    Budget {
        name: name.into(),
        scope,
        period,
        limit: Cost::from_usd(usd).unwrap(),
        warn_at_bp: 8_000,
        hard,
    }
}

fn ctx(provider: &str, route: Option<&str>, tags: &[&str]) -> SpendContext {
    SpendContext {
        provider: provider.into(),
        model: "m".into(),
        route: route.map(str::to_owned),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        conversation: None,
        message: None,
    }
}

fn settled(nanos: i64) -> Option<SettledCost> {
    Some(SettledCost {
        cost: Some(Cost::from_nanos(nanos)),
        estimated: false,
        input_tokens: Some(10),
        output_tokens: Some(5),
    })
}

#[test]
fn hard_budgets_refuse_with_numbers_and_soft_ones_never_do() {
    let (_tmp, store) = store();
    let gate = SqliteBudgetGate::new(
        store.clone(),
        vec![
            budget(
                "openai-daily",
                BudgetScope::Provider("openai".into()),
                BudgetPeriod::Daily,
                "1",
                true,
            ),
            budget(
                "acme",
                BudgetScope::Tag("acme".into()),
                BudgetPeriod::Monthly,
                "0.5",
                true,
            ),
            budget(
                "watch",
                BudgetScope::Global,
                BudgetPeriod::Monthly,
                "0.01",
                false,
            ),
        ],
    );
    let usd = |s: &str| Cost::from_usd(s).unwrap();
    // Another provider is not counted by the openai budget.
    let r = gate
        .reserve(&ctx("anthropic", None, &[]), Some(usd("5")))
        .unwrap();
    gate.settle(r, settled(usd("5").nanos()));
    let r = gate
        .reserve(&ctx("openai", None, &[]), Some(usd("0.7")))
        .unwrap();
    let denied = gate
        .reserve(&ctx("openai", None, &[]), Some(usd("0.4")))
        .unwrap_err();
    assert_eq!(denied.budget, "openai-daily");
    assert!(denied.message.contains("$1.00"), "{denied}");
    assert!(denied.message.contains("$0.70 held"), "{denied}");
    assert!(denied.message.contains("$0.40"), "{denied}");
    // Settling for less frees the difference.
    gate.settle(r, settled(usd("0.5").nanos()));
    let r = gate
        .reserve(&ctx("openai", None, &[]), Some(usd("0.4")))
        .unwrap();
    gate.settle(r, None);
    // Tags: only attempts carrying the tag count.
    let r = gate
        .reserve(&ctx("x", None, &["acme"]), Some(usd("0.5")))
        .unwrap();
    gate.settle(r, settled(usd("0.5").nanos()));
    assert!(
        gate.reserve(&ctx("x", None, &["acme", "y"]), Some(Cost::from_nanos(1)))
            .is_err()
    );
    assert!(
        gate.reserve(&ctx("x", None, &["other"]), Some(Cost::from_nanos(1)))
            .is_ok()
    );

    let status = gate.status().unwrap();
    let acme = status.iter().find(|s| s.budget.name == "acme").unwrap();
    assert_eq!(acme.spent, usd("0.5"));
    assert_eq!(acme.state, BudgetState::Exceeded);
    let watch = status.iter().find(|s| s.budget.name == "watch").unwrap();
    assert_eq!(watch.spent, usd("6"));
    assert_eq!(
        watch.state,
        BudgetState::Exceeded,
        "warn-only budgets report, never refuse"
    );
    assert_eq!(gate.pending_settles(), 0);
}

#[test]
fn budgets_start_over_at_utc_period_boundaries_and_dead_holds_expire() {
    let (_tmp, store) = store();
    let day = budget("d", BudgetScope::Global, BudgetPeriod::Daily, "1", true);
    let month = budget("m", BudgetScope::Global, BudgetPeriod::Monthly, "10", true);
    let gate = SqliteBudgetGate::new(store.clone(), vec![day.clone(), month.clone()])
        .with_hold(Duration::from_secs(60));
    let t0 = time::parse_date("2026-01-31").unwrap() + 23 * 3_600_000; // 23:00 UTC
    // Spend 0.9 on Jan 31 (ledger rows at explicit times).
    store
        .conn()
        .execute(
            "INSERT INTO ledger (at, provider, model, cost_nanos, estimated) VALUES (?1, 'p', 'm', 900000000, 0)",
            [t0],
        )
        .unwrap();
    let c = ctx("p", None, &[]);
    assert!(
        gate.reserve_at(&c, Some(Cost::from_usd("0.2").unwrap()), t0)
            .unwrap()
            .is_err()
    );
    // One hour later it is Feb 1: both the day and the month start over.
    let feb = t0 + 3_600_000;
    let status = store.budget_status_at(&[day, month], feb).unwrap();
    assert!(status.iter().all(|s| s.spent == Cost::ZERO), "{status:?}");
    let held = gate
        .reserve_at(&c, Some(Cost::from_usd("0.9").unwrap()), feb)
        .unwrap()
        .unwrap();
    assert!(held.id > 0);
    // The hold blocks more...
    assert!(
        gate.reserve_at(&c, Some(Cost::from_usd("0.2").unwrap()), feb + 1_000)
            .unwrap()
            .is_err()
    );
    // ...until it expires (its process died and never settled).
    assert!(
        gate.reserve_at(&c, Some(Cost::from_usd("0.2").unwrap()), feb + 61_000)
            .unwrap()
            .is_ok()
    );
}

#[test]
fn spend_totals_are_exact_and_grouped() {
    let (_tmp, store) = store();
    let gate = SqliteBudgetGate::new(store.clone(), Vec::new());
    let costs: Vec<(&str, Option<&str>, &[&str], i64)> = vec![
        ("openai", Some("fast"), &["acme"], 185_100),
        ("openai", None, &["acme", "beta"], 1),
        ("anthropic", Some("fast"), &[], 999_999_999),
        ("gemini", None, &["beta"], 100_000_001),
    ];
    let mut expected = 0i64;
    for (p, route, tags, nanos) in &costs {
        let r = gate
            .reserve(&ctx(p, *route, tags), Some(Cost::from_nanos(*nanos)))
            .unwrap();
        gate.settle(r, settled(*nanos));
        expected += nanos;
    }
    // An attempt that was not billed leaves no row.
    let r = gate
        .reserve(&ctx("openai", None, &[]), Some(Cost::from_nanos(5)))
        .unwrap();
    gate.settle(r, None);
    let total = store.spend_total(None).unwrap();
    assert_eq!(total.cost.nanos(), expected);
    assert_eq!(total.requests, 4);
    assert_eq!(total.input_tokens, 40);
    let by_provider = store.spend(SpendGrouping::Provider, None).unwrap();
    assert_eq!(
        by_provider[0].key.as_deref(),
        Some("anthropic"),
        "most expensive first"
    );
    assert_eq!(
        by_provider.iter().map(|g| g.cost.nanos()).sum::<i64>(),
        expected
    );
    let openai = by_provider
        .iter()
        .find(|g| g.key.as_deref() == Some("openai"))
        .unwrap();
    assert_eq!((openai.cost.nanos(), openai.requests), (185_101, 2));
    let by_route = store.spend(SpendGrouping::Route, None).unwrap();
    assert_eq!(
        by_route
            .iter()
            .find(|g| g.key.is_none())
            .unwrap()
            .cost
            .nanos(),
        100_000_002
    );
    let by_tag = store.spend(SpendGrouping::Tag, None).unwrap();
    let tag = |k: Option<&str>| {
        by_tag
            .iter()
            .find(|g| g.key.as_deref() == k)
            .unwrap()
            .cost
            .nanos()
    };
    assert_eq!(tag(Some("acme")), 185_101);
    assert_eq!(tag(Some("beta")), 100_000_002);
    assert_eq!(tag(None), 999_999_999);
    let by_model = store.spend(SpendGrouping::Model, None).unwrap();
    assert!(
        by_model
            .iter()
            .any(|g| g.key.as_deref() == Some("gemini:m"))
    );
    let today = time::format_date(time::now_ms());
    let by_day = store.spend(SpendGrouping::Day, None).unwrap();
    assert_eq!(by_day.len(), 1);
    assert_eq!(by_day[0].key.as_deref(), Some(today.as_str()));
    assert_eq!(by_day[0].cost.nanos(), expected);
    assert_eq!(
        store.spend(SpendGrouping::Month, None).unwrap()[0]
            .cost
            .nanos(),
        expected
    );
    // --since tomorrow: nothing.
    let tomorrow = time::day_start(time::now_ms()) + 86_400_000;
    assert_eq!(store.spend_total(Some(tomorrow)).unwrap().requests, 0);
}

#[test]
fn weeks_start_on_monday_utc() {
    let (_tmp, store) = store();
    // 2026-05-03 is a Sunday, 2026-05-04 a Monday.
    for (date, nanos) in [("2026-05-03", 1), ("2026-05-04", 10), ("2026-05-10", 100)] {
        let at = time::parse_date(date).unwrap() + 43_200_000;
        store
            .conn()
            .execute(
                "INSERT INTO ledger (at, provider, model, cost_nanos, estimated) VALUES (?1, 'p', 'm', ?2, 0)",
                [at, nanos],
            )
            .unwrap();
    }
    let weeks = store.spend(SpendGrouping::Week, None).unwrap();
    let got: Vec<(Option<&str>, i64)> = weeks
        .iter()
        .map(|g| (g.key.as_deref(), g.cost.nanos()))
        .collect();
    assert_eq!(
        got,
        vec![(Some("2026-04-27"), 1), (Some("2026-05-04"), 110)]
    );
}

#[test]
fn a_hundred_concurrent_reservations_never_overspend() {
    let (_tmp, store) = store();
    let limit = Cost::from_usd("1").unwrap();
    let gate = Arc::new(SqliteBudgetGate::new(
        store.clone(),
        vec![budget(
            "cap",
            BudgetScope::Global,
            BudgetPeriod::Daily,
            "1",
            true,
        )],
    ));
    let estimate = Cost::from_usd("0.03").unwrap();
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                let c = ctx("p", None, &[]);
                match gate.reserve(&c, Some(estimate)) {
                    Ok(r) => {
                        std::thread::sleep(Duration::from_millis(i % 7));
                        gate.settle(r, settled(estimate.nanos()));
                        true
                    }
                    Err(_) => false,
                }
            })
        })
        .collect();
    let admitted = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    let spent = store.spend_total(None).unwrap().cost;
    assert!(spent <= limit, "spent {spent} over {limit}");
    // Every admitted attempt cost its estimate, so exactly floor(1 / 0.03) fit.
    assert_eq!(admitted, 33);
    assert_eq!(spent, Cost::from_nanos(33 * estimate.nanos()));
    assert_eq!(count(&store, "reservations"), 0, "every hold was released");
}

#[test]
fn overruns_are_bounded_by_what_was_in_flight() {
    let (_tmp, store) = store();
    let gate = Arc::new(SqliteBudgetGate::new(
        store.clone(),
        vec![budget(
            "cap",
            BudgetScope::Global,
            BudgetPeriod::Daily,
            "1",
            true,
        )],
    ));
    let estimate = Cost::from_usd("0.05").unwrap();
    // Each attempt ends up costing 50% more than estimated.
    let actual = Cost::from_usd("0.075").unwrap();
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                gate.reserve(&ctx("p", None, &[]), Some(estimate))
                    .map(|r| gate.settle(r, settled(actual.nanos())))
                    .is_ok()
            })
        })
        .collect();
    let admitted = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count() as i64;
    let spent = store.spend_total(None).unwrap().cost.nanos();
    let overrun_per_attempt = actual.nanos() - estimate.nanos();
    assert!(admitted >= 1);
    assert!(
        spent <= Cost::from_usd("1").unwrap().nanos() + admitted * overrun_per_attempt,
        "spent {spent} with {admitted} admitted"
    );
    // Once the ledger shows the limit reached, nothing more gets in.
    assert!(gate.reserve(&ctx("p", None, &[]), Some(estimate)).is_err());
}

#[test]
fn health_persists_across_reopening_and_keeps_only_recent_samples() {
    let (tmp, store) = store();
    let health = store.health();
    for i in 0..(health::KEEP_SAMPLES as i64 + 20) {
        health.record(
            "oa",
            "m",
            &HealthSample {
                at_unix_ms: i,
                ok: i % 3 != 0,
                error_kind: (i % 3 == 0).then_some(ErrorKind::Overloaded),
                ttft_ms: Some(i as f64),
                tokens_per_s: None,
            },
        );
    }
    health.record(
        "other",
        "m",
        &HealthSample {
            at_unix_ms: 5,
            ok: true,
            error_kind: None,
            ttft_ms: None,
            tokens_per_s: Some(80.0),
        },
    );
    health.set_cooldown(
        "oa",
        "m",
        CooldownState {
            consecutive_failures: 3,
            until_unix_ms: Some(99),
            level: 2,
        },
    );
    drop(health);
    drop(store);
    let store = Store::open_at(&tmp.path().join("db.sqlite3")).unwrap();
    let health = store.health();
    let recent = health.recent("oa", "m", 3);
    assert_eq!(
        recent.iter().map(|s| s.at_unix_ms).collect::<Vec<_>>(),
        vec![219, 218, 217]
    );
    assert_eq!(recent[0].error_kind, Some(ErrorKind::Overloaded));
    assert_eq!(recent[1].error_kind, None);
    assert_eq!(health.recent("oa", "m", 1000).len(), health::KEEP_SAMPLES);
    assert_eq!(health.recent("other", "m", 10).len(), 1);
    assert_eq!(health.cooldown("oa", "m").until_unix_ms, Some(99));
    assert_eq!(health.cooldown("oa", "m").level, 2);
    assert_eq!(health.cooldown("nobody", "m"), CooldownState::default());
}

#[test]
fn the_key_index_holds_ids_and_last_four_only() {
    let (_tmp, store) = store();
    let index = store.key_index();
    index.put("openai", "abcd").unwrap();
    index.put("anthropic", "wxyz").unwrap();
    index.put("openai", "efgh").unwrap();
    assert_eq!(index.ids().unwrap(), vec!["anthropic", "openai"]);
    index.remove("anthropic").unwrap();
    assert_eq!(index.ids().unwrap(), vec!["openai"]);
    let last4: String = store
        .conn()
        .query_row("SELECT last4 FROM key_index", [], |r| r.get(0))
        .unwrap();
    assert_eq!(last4, "efgh");
}

#[test]
fn integrity_check_notices_a_search_index_out_of_step_with_the_messages() {
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let conv = rec.start_conversation("t", &[]).unwrap();
    rec.add_user_message(conv, None, "indexed words").unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    // Change a message behind the index's back (no trigger).
    store
        .conn()
        .execute_batch(
            "DROP TRIGGER messages_fts_update; UPDATE messages SET content = 'other words';",
        )
        .unwrap();
    let report = store.integrity_check().unwrap();
    assert!(report.contains("search index"), "{report}");
}

#[test]
fn spend_by_day_stacks_groups_per_utc_day_exactly() {
    let (_tmp, store) = store();
    let d1 = time::parse_date("2026-05-03").unwrap();
    let d2 = time::parse_date("2026-05-04").unwrap();
    let rows: [(i64, &str, i64); 4] = [
        (d1 + 1_000, "openai", 100),
        (d1 + 86_399_999, "openai", 23),
        (d2, "anthropic", 7),
        (d2 + 5, "openai", 1),
    ];
    for (at, p, nanos) in rows {
        store
            .conn()
            .execute(
                "INSERT INTO ledger (at, provider, model, cost_nanos, estimated) VALUES (?1, ?2, 'm', ?3, 0)",
                rusqlite::params![at, p, nanos],
            )
            .unwrap();
    }
    let cells = store.spend_by_day(SpendGrouping::Provider, d1).unwrap();
    let got: Vec<(&str, Option<&str>, i64, u64)> = cells
        .iter()
        .map(|c| (c.day.as_str(), c.key.as_deref(), c.cost.nanos(), c.requests))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-05-03", Some("openai"), 123, 2),
            ("2026-05-04", Some("anthropic"), 7, 1),
            ("2026-05-04", Some("openai"), 1, 1),
        ]
    );
    assert_eq!(
        store
            .spend_by_day(SpendGrouping::Provider, d2)
            .unwrap()
            .len(),
        2,
        "since a day leaves out the days before"
    );
}

fn traced(
    provider: &str,
    outcome: AttemptOutcome,
    ttft: Option<f64>,
    total: f64,
    out: u64,
) -> AttemptRecord {
    AttemptRecord {
        provider: provider.into(),
        model: "m".into(),
        started_unix_ms: time::now_ms(),
        ttft_ms: ttft,
        thinking_ms: None,
        total_ms: total,
        outcome,
        usage: Usage {
            input_tokens: Some(10),
            output_tokens: Some(out),
            ..Usage::default()
        },
        cost: None,
    }
}

#[test]
fn performance_counts_attempts_errors_ttft_and_tokens_per_second() {
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let conv = rec.start_conversation("perf", &["acme".into()]).unwrap();
    let q = rec.add_user_message(conv, None, "hi").unwrap();
    let err = AttemptOutcome::Error {
        kind: ErrorKind::Overloaded,
        message: "busy".into(),
    };
    let skip = AttemptOutcome::Skipped {
        kind: "budget".into(),
        reason: "over".into(),
    };
    // A route: oa fails, an is skipped, gm answers (100 tokens in 0.5 s).
    let trace = RequestTrace {
        route: Some("fast".into()),
        attempts: vec![
            traced("oa", err, None, 50.0, 0),
            traced("an", skip, None, 0.0, 0),
            traced("gm", AttemptOutcome::Ok, Some(100.0), 600.0, 100),
        ],
    };
    rec.add_answer(conv, q, 0, "@fast", &answer("gm", "m", "x", 5), &trace)
        .unwrap();
    // A direct answer on gm: 50 tokens in 0.25 s, TTFT 300 ms.
    let trace = RequestTrace {
        route: None,
        // 150 output tokens of which 100 reasoning: 50 visible over 250 ms.
        attempts: vec![AttemptRecord {
            usage: Usage {
                reasoning_tokens: Some(100),
                ..traced("gm", AttemptOutcome::Ok, None, 0.0, 150).usage
            },
            ..traced("gm", AttemptOutcome::Ok, Some(300.0), 550.0, 150)
        }],
    };
    rec.add_answer(conv, q, 1, "gm:m", &answer("gm", "m", "y", 5), &trace)
        .unwrap();
    let since = time::day_start(time::now_ms());
    let by_provider = store.performance(SpendGrouping::Provider, since).unwrap();
    let of = |k: &str| {
        by_provider
            .iter()
            .find(|g| g.key.as_deref() == Some(k))
            .unwrap()
    };
    assert!(
        by_provider.iter().all(|g| g.key.as_deref() != Some("an")),
        "a skip is not an attempt"
    );
    assert_eq!((of("oa").attempts, of("oa").errors), (1, 1));
    assert_eq!(of("oa").error_rate(), Some(1.0));
    assert_eq!(of("oa").avg_ttft_ms, None);
    let gm = of("gm");
    assert_eq!((gm.attempts, gm.errors), (2, 0));
    assert_eq!(gm.avg_ttft_ms, Some(200.0));
    assert_eq!(gm.avg_tokens_per_s, Some(200.0));
    let by_route = store.performance(SpendGrouping::Route, since).unwrap();
    let fast = by_route
        .iter()
        .find(|g| g.key.as_deref() == Some("fast"))
        .unwrap();
    assert_eq!((fast.attempts, fast.errors), (2, 1));
    let by_tag = store.performance(SpendGrouping::Tag, since).unwrap();
    assert_eq!(by_tag.len(), 1);
    assert_eq!(by_tag[0].key.as_deref(), Some("acme"));
    assert_eq!(by_tag[0].attempts, 3);
    let tomorrow = since + 86_400_000;
    assert!(
        store
            .performance(SpendGrouping::Provider, tomorrow)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_ledger_exports_as_csv_for_a_period_with_exact_amounts() {
    let (_tmp, store) = store();
    let d1 = time::parse_date("2026-05-03").unwrap();
    let d2 = time::parse_date("2026-05-04").unwrap();
    for (at, route, nanos) in [
        (d1 + 3_723_004, Some("a,b"), 1_234_567_891i64),
        (d2, None, 5),
    ] {
        store
            .conn()
            .execute(
                "INSERT INTO ledger (at, provider, model, route, conversation, cost_nanos, estimated, input_tokens, output_tokens)
                 VALUES (?1, 'openai', 'gpt \"x\"', ?2, '7', ?3, 1, 10, 20)",
                rusqlite::params![at, route, nanos],
            )
            .unwrap();
        let id = store.conn().last_insert_rowid();
        for tag in ["zeta", "acme"] {
            store
                .conn()
                .execute(
                    "INSERT INTO ledger_tags (entry_id, tag) VALUES (?1, ?2)",
                    rusqlite::params![id, tag],
                )
                .unwrap();
        }
    }
    let (csv, n) = store.ledger_csv(d1, d2).unwrap();
    assert_eq!(n, 1, "the end of the period is exclusive");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], LEDGER_CSV_HEADER);
    assert_eq!(
        lines[1],
        "2026-05-03T01:02:03.004Z,openai,\"gpt \"\"x\"\"\",\"a,b\",7,acme;zeta,10,20,1.234567891,1234567891,true"
    );
    let (csv, n) = store.ledger_csv(d1, d2 + 86_400_000).unwrap();
    assert_eq!((n, csv.lines().count()), (2, 3));
}

/// What the router checkpoints for an attempt that has streamed `text`:
/// 1 input and `text.len() / 4` output tokens, costing `nanos` (estimated).
fn progress(text: &str, nanos: i64) -> AttemptResult {
    let usage = Usage {
        input_tokens: Some(1),
        output_tokens: Some((text.len() / 4) as u64),
        ..Usage::default()
    };
    AttemptResult {
        provider: "p".into(),
        model: "m".into(),
        text: text.into(),
        reasoning: String::new(),
        finish_reason: None,
        usage: Usage::default(),
        cost: Some(AttemptCost {
            total: Cost::from_nanos(nanos),
            source: CostSource::Estimated,
        }),
        billed: Some(usage),
        timing: Timing {
            ttft: Some(Duration::from_millis(50)),
            first_token: Some(Duration::from_millis(50)),
            thinking: None,
            total: Duration::from_millis(700),
            tokens_per_s: None,
        },
        error: Some(ProviderError::new(ErrorKind::Interrupted, "p", "cut")),
    }
}

#[test]
fn a_dead_processs_attempts_are_settled_once_and_a_live_ones_are_left_alone() {
    let (tmp, store) = store();
    let rec = store.recorder(false);
    let conv = rec.start_conversation("t", &["acme".into()]).unwrap();
    let q = rec.add_user_message(conv, None, "go").unwrap();
    let gate = SqliteBudgetGate::new(store.clone(), vec![]);
    let mut streams = Vec::new();
    for pane in 0..2 {
        let id = rec.begin_answer(conv, q, pane, "p:m").unwrap();
        let ctx = SpendContext {
            message: Some(id.0),
            ..rec.spend_context(conv, "p", "m", None, &["acme".into()])
        };
        let hold = gate
            .reserve(&ctx, Some(Cost::from_nanos(1_000_000)))
            .unwrap();
        gate.checkpoint(&hold, &progress("000 001 002 ", 5_000));
        streams.push((id, hold));
    }
    // Both answers exist from the start, with their text so far.
    let live = store.message(streams[1].0).unwrap();
    assert_eq!(live.content, "000 001 002 ");
    assert_eq!(live.usage.output_tokens, Some(3));
    // The first one's process dies: its rows belong to an owner whose lock
    // file nobody holds any more.
    let dead = streams[0].0;
    {
        let conn = store.conn();
        conn.execute(
            "UPDATE reservations SET owner = 'ghost' WHERE message = ?1",
            [dead.0],
        )
        .unwrap();
        conn.execute(
            "UPDATE messages SET live_owner = 'ghost' WHERE id = ?1",
            [dead.0],
        )
        .unwrap();
    }
    std::fs::write(tmp.path().join("locks").join("ghost.lock"), b"").unwrap();
    assert_eq!(
        store.recover().unwrap(),
        Recovered {
            answers: 1,
            billed: 1,
            released: 1
        }
    );
    // Billed once, at its last checkpoint, naming the answer and its tags.
    let rows: Vec<(i64, bool, Option<i64>, Option<i64>)> = store
        .conn()
        .prepare("SELECT cost_nanos, estimated, output_tokens, message FROM ledger")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, vec![(5_000, true, Some(3), Some(dead.0))]);
    assert_eq!(
        store.spend(SpendGrouping::Tag, None).unwrap()[0]
            .key
            .as_deref(),
        Some("acme")
    );
    let m = store.message(dead).unwrap();
    assert_eq!(m.error_kind, Some(ErrorKind::Interrupted));
    assert_eq!(m.content, "000 001 002 ");
    assert_eq!(
        m.cost,
        Some(AttemptCost {
            total: Cost::from_nanos(5_000),
            source: CostSource::Estimated
        })
    );
    let trace = store.attempts(dead).unwrap();
    assert_eq!(trace.len(), 1);
    assert!(matches!(
        trace[0].outcome,
        AttemptOutcome::Error {
            kind: ErrorKind::Interrupted,
            ..
        }
    ));
    assert!(!tmp.path().join("locks").join("ghost.lock").exists());
    // Recovering again finds nothing; the live answer was left alone.
    assert_eq!(store.recover().unwrap(), Recovered::default());
    assert_eq!(count(&store, "ledger"), 1);
    assert_eq!(count(&store, "reservations"), 1);
    assert_eq!(store.message(streams[1].0).unwrap().error_kind, None);
    // Another store on the same file (another process, as far as the rows
    // go) does not take it for dead either.
    let other = Store::open_at(&tmp.path().join("db.sqlite3")).unwrap();
    assert_eq!(other.recover().unwrap(), Recovered::default());
    // The live one ends normally: settled, and final in history.
    let (id, hold) = streams.pop().unwrap();
    let mut result = answer("p", "m", "000 001 002 003 ", 9_000);
    result.billed = result.billed.map(|u| Usage {
        output_tokens: Some(4),
        ..u
    });
    gate.settle(hold, SettledCost::of(&result));
    rec.finish_answer(
        id,
        &Answer {
            pane: PaneRef::Position(1),
            target: "p:m",
            result: &result,
            trace: &RequestTrace::default(),
        },
    )
    .unwrap();
    assert_eq!(count(&store, "reservations"), 0);
    let done = store.message(id).unwrap();
    assert_eq!(done.content, "000 001 002 003 ");
    assert_eq!(done.cost.unwrap().total.nanos(), 9_000);
    let live: i64 = store
        .conn()
        .query_row(
            "SELECT count(*) FROM messages WHERE live_owner IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(live, 0);
}

#[test]
fn a_store_that_closes_settles_what_it_left_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db.sqlite3");
    let store = Store::open_at(&path).unwrap();
    let rec = store.recorder(false);
    let conv = rec.start_conversation("t", &[]).unwrap();
    let q = rec.add_user_message(conv, None, "go").unwrap();
    let id = rec.begin_answer(conv, q, 0, "p:m").unwrap();
    let gate = SqliteBudgetGate::new(store.clone(), vec![]);
    let ctx = SpendContext {
        message: Some(id.0),
        ..rec.spend_context(conv, "p", "m", None, &[])
    };
    let hold = gate.reserve(&ctx, Some(Cost::from_nanos(10))).unwrap();
    gate.checkpoint(&hold, &progress("000 ", 7));
    // The request was dropped mid-way (its hold never settled).
    drop((hold, gate, rec));
    drop(store);
    let store = Store::open_at(&path).unwrap();
    assert_eq!(count(&store, "reservations"), 0);
    assert_eq!(store.spend_total(None).unwrap().cost.nanos(), 7);
    assert_eq!(
        store.message(id).unwrap().error_kind,
        Some(ErrorKind::Interrupted)
    );
}

#[test]
fn unpriced_requests_are_ledger_rows_and_hard_budgets_refuse_unknown_prices() {
    let (_tmp, store) = store();
    let cap = budget("cap", BudgetScope::Global, BudgetPeriod::Daily, "100", true);
    let gate = SqliteBudgetGate::new(store.clone(), vec![cap]);
    let denied = gate.reserve(&ctx("p", None, &[]), None).unwrap_err();
    assert_eq!(denied.budget, "cap");
    assert!(
        denied.message.contains("price of p:m is unknown"),
        "{denied}"
    );
    assert_eq!(count(&store, "reservations"), 0, "nothing held");
    // Without a hard budget it runs, and its request is counted.
    let gate = SqliteBudgetGate::new(store.clone(), vec![]);
    let hold = gate.reserve(&ctx("p", None, &[]), None).unwrap();
    assert_eq!(hold.amount, Cost::ZERO);
    gate.settle(
        hold,
        Some(SettledCost {
            cost: None,
            estimated: false,
            input_tokens: Some(10),
            output_tokens: Some(5),
        }),
    );
    gate.settle(
        gate.reserve(&ctx("q", None, &[]), Some(Cost::from_nanos(40)))
            .unwrap(),
        settled(40),
    );
    let total = store.spend_total(None).unwrap();
    assert_eq!(
        (total.requests, total.unpriced_requests, total.cost.nanos()),
        (2, 1, 40)
    );
    assert_eq!(total.input_tokens, 20);
    let by_provider = store.spend(SpendGrouping::Provider, None).unwrap();
    let p = by_provider
        .iter()
        .find(|g| g.key.as_deref() == Some("p"))
        .unwrap();
    assert_eq!((p.requests, p.unpriced_requests), (1, 1));
    // In the CSV export its amount is blank, not zero.
    let (csv, n) = store.ledger_csv(0, i64::MAX).unwrap();
    assert_eq!(n, 2);
    let line = csv.lines().find(|l| l.contains(",p,")).unwrap();
    assert!(line.ends_with(",10,5,,,false"), "{line}");
}

#[test]
fn checkpoints_keep_a_live_hold_counted_past_its_first_expiry() {
    let (_tmp, store) = store();
    let cap = budget(
        "cap",
        BudgetScope::Global,
        BudgetPeriod::Monthly,
        "10",
        true,
    );
    let gate =
        SqliteBudgetGate::new(store.clone(), vec![cap.clone()]).with_hold(Duration::from_secs(60));
    let t0 = time::parse_date("2026-03-10").unwrap();
    let hold = gate
        .reserve_at(&ctx("p", None, &[]), Some(Cost::from_usd("1").unwrap()), t0)
        .unwrap()
        .unwrap();
    let held = |at| {
        store
            .budget_status_at(std::slice::from_ref(&cap), at)
            .unwrap()[0]
            .held
    };
    assert_eq!(held(t0 + 59_000), Cost::from_usd("1").unwrap());
    // A long answer still streaming: its checkpoints keep the hold alive.
    gate.checkpoint_at(&hold, &progress("000 ", 3), t0 + 50_000)
        .unwrap();
    assert_eq!(held(t0 + 100_000), Cost::from_usd("1").unwrap());
    assert_eq!(held(t0 + 111_000), Cost::ZERO);
}

#[test]
fn migration_2_keeps_every_row_of_a_version_1_file_and_allows_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db.sqlite3");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(db::MIGRATIONS[0].1).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO conversations (id, title, created_at, updated_at) VALUES (1, 't', 1, 1);
             INSERT INTO messages (id, conversation_id, role, content, created_at)
                 VALUES (1, 1, 'user', 'q', 1);
             INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at,
                 cost_nanos, cost_source) VALUES (2, 1, 1, 'assistant', 'a', 2, 42, 'computed');
             INSERT INTO attempts (message_id, seq, provider, model, started_at, total_ms,
                 outcome, cost_nanos, cost_source)
                 VALUES (2, 0, 'p', 'm', 2, 10.0, 'ok', 42, 'computed');
             INSERT INTO ledger (at, provider, model, cost_nanos, estimated) VALUES (2, 'p', 'm', 42, 0);
             INSERT INTO reservations (created_at, expires_at, provider, model, amount_nanos)
                 VALUES (2, 3, 'p', 'm', 5);",
        )
        .unwrap();
    }
    let store = Store::open_at(&path).unwrap();
    let trace = store.attempts(MessageId(2)).unwrap();
    assert_eq!(trace.len(), 1);
    assert_eq!(trace[0].outcome, AttemptOutcome::Ok);
    assert_eq!(trace[0].cost.unwrap().total.nanos(), 42);
    let total = store.spend_total(None).unwrap();
    assert_eq!((total.requests, total.unpriced_requests), (1, 0));
    let version: u32 = store
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    // The trace table takes the new outcome; its foreign key still holds.
    let conn = store.conn();
    conn.execute(
        "INSERT INTO attempts (message_id, seq, provider, model, started_at, total_ms, outcome)
         VALUES (2, 1, 'p', 'm', 3, 1.0, 'stopped')",
        [],
    )
    .unwrap();
    assert!(
        conn.execute(
            "INSERT INTO attempts (message_id, seq, provider, model, started_at, total_ms, outcome)
             VALUES (99, 0, 'p', 'm', 3, 1.0, 'ok')",
            [],
        )
        .is_err()
    );
    conn.execute("DELETE FROM messages WHERE id = 2", [])
        .unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "deleting the answer deletes its trace");
}

// ---------------------------------------------------------------------------
// Attachments

fn png_attachment(seed: u8, name: &str) -> crate::attach::Attachment {
    crate::attach::Attachment::from_bytes(switchboard_mock::samples::png(16, 8, seed), Some(name))
        .unwrap()
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn attachments_are_stored_once_by_content_and_read_back_verified() {
    let (tmp, store) = store();
    let photo = png_attachment(1, "photo.png");
    let same_bytes =
        crate::attach::Attachment::from_bytes(photo.data.clone(), Some("copy.png")).unwrap();
    let pdf = crate::attach::Attachment::from_bytes(
        switchboard_mock::samples::pdf(3, "minutes"),
        Some("minutes.pdf"),
    )
    .unwrap();
    for a in [&photo, &same_bytes, &pdf] {
        store.put_attachment(a).unwrap();
    }
    let rec = store.recorder(false);
    let c1 = rec.start_conversation("one", &[]).unwrap();
    let refs = vec![AttachmentRef::from(&photo), AttachmentRef::from(&pdf)];
    let m1 = rec.add_user_message_with(c1, None, "look", &refs).unwrap();
    let c2 = rec.start_conversation("two", &[]).unwrap();
    let m2 = rec
        .add_user_message_with(c2, None, "again", &[AttachmentRef::from(&same_bytes)])
        .unwrap();

    // One file per distinct content, at attachments/<2 hex>/<62 hex>.<ext>.
    let files = files_under(&tmp.path().join("attachments"));
    assert_eq!(files.len(), 2, "{files:?}");
    let photo_path = tmp
        .path()
        .join("attachments")
        .join(&photo.id[..2])
        .join(format!("{}.png", &photo.id[2..]));
    assert_eq!(std::fs::read(&photo_path).unwrap(), photo.data.to_vec());
    assert_eq!(count(&store, "attachments"), 2);

    // Read back in order, with the name each message gave it.
    let in_one = store.conversation_attachments(c1).unwrap();
    let listed = &in_one[&m1];
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, photo.id);
    assert_eq!(listed[0].name.as_deref(), Some("photo.png"));
    assert_eq!(
        listed[0].info,
        crate::attach::MediaInfo::Image {
            width: 16,
            height: 8
        }
    );
    assert_eq!(listed[1].media_type, crate::attach::MediaType::Pdf);
    assert_eq!(
        listed[1].info,
        crate::attach::MediaInfo::Pdf { pages: Some(3) }
    );
    let in_two = store.conversation_attachments(c2).unwrap();
    assert_eq!(in_two[&m2][0].name.as_deref(), Some("copy.png"));
    let back = store.attachment(&photo.id, Some("photo.png")).unwrap();
    assert_eq!(back, photo);

    // A file changed on disk is noticed, not sent.
    std::fs::write(&photo_path, b"\x89PNG\r\n\x1a\nsomething else entirely").unwrap();
    let err = store.attachment(&photo.id, None).unwrap_err();
    assert!(err.to_string().contains("changed on disk"), "{err}");
}

#[test]
fn attachments_go_with_the_last_conversation_that_uses_them() {
    let (tmp, store) = store();
    let shared = png_attachment(2, "shared.png");
    let own = png_attachment(3, "own.png");
    let pending = png_attachment(4, "not-sent-yet.png");
    for a in [&shared, &own, &pending] {
        store.put_attachment(a).unwrap();
    }
    let rec = store.recorder(false);
    let a = rec.start_conversation("a", &[]).unwrap();
    rec.add_user_message_with(
        a,
        None,
        "x",
        &[AttachmentRef::from(&shared), AttachmentRef::from(&own)],
    )
    .unwrap();
    let b = rec.start_conversation("b", &[]).unwrap();
    rec.add_user_message_with(b, None, "y", &[AttachmentRef::from(&shared)])
        .unwrap();
    let dir = tmp.path().join("attachments");
    assert_eq!(files_under(&dir).len(), 3);

    store.delete_conversation(a).unwrap();
    // `own` went with it; `shared` is still used by b; `pending` is leased.
    assert_eq!(files_under(&dir).len(), 2);
    assert!(store.attachment(&shared.id, None).is_ok());
    assert!(store.attachment(&own.id, None).is_err());
    assert_eq!(store.sweep_attachments().unwrap(), 0, "the lease holds");

    store.delete_conversation(b).unwrap();
    assert_eq!(files_under(&dir).len(), 1, "only the pending one is left");
    assert!(store.attachment(&shared.id, None).is_err());

    // Removed before sending: gone at once.
    assert!(store.discard_attachment(&pending.id).unwrap());
    assert!(files_under(&dir).is_empty());
    assert_eq!(count(&store, "attachments"), 0);

    // An expired lease is swept.
    store.put_attachment(&pending).unwrap();
    store
        .conn()
        .execute("UPDATE attachments SET lease_until = 1", [])
        .unwrap();
    assert_eq!(store.sweep_attachments().unwrap(), 1);
    assert!(files_under(&dir).is_empty());

    // Referencing something not stored is refused, and writes nothing.
    let c = rec.start_conversation("c", &[]).unwrap();
    let err = rec
        .add_user_message_with(c, None, "z", &[AttachmentRef::from(&own)])
        .unwrap_err();
    assert!(err.to_string().contains("not stored"), "{err}");
    assert_eq!(store.conversation(c).unwrap().message_count, 0);
}

#[test]
fn exports_carry_attachments_and_imports_restore_them() {
    let (_tmp, store) = store();
    let photo = png_attachment(5, "whiteboard.png");
    let doc = crate::attach::Attachment::from_bytes(
        switchboard_mock::samples::pdf(1, "spec"),
        Some("spec.pdf"),
    )
    .unwrap();
    store.put_attachment(&photo).unwrap();
    store.put_attachment(&doc).unwrap();
    let rec = store.recorder(false);
    let c = rec.start_conversation("diagram", &[]).unwrap();
    let q = rec
        .add_user_message_with(
            c,
            None,
            "Is the diagram right?",
            &[AttachmentRef::from(&photo), AttachmentRef::from(&doc)],
        )
        .unwrap();
    rec.add_answer(
        c,
        q,
        0,
        "p:m",
        &answer("p", "m", "Yes.", 10),
        &RequestTrace::default(),
    )
    .unwrap();

    let json = store.export_json(c).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["version"], 2);
    let exported = &parsed["messages"][0]["attachments"];
    assert_eq!(exported[0]["sha256"], photo.id.as_str());
    assert_eq!(exported[0]["media_type"], "image/png");
    assert_eq!(exported[0]["name"], "whiteboard.png");
    let data = exported[0]["data"].as_str().unwrap();
    assert_eq!(
        switchboard_mock::samples::base64_decode(data).unwrap(),
        photo.data.to_vec()
    );

    let md = store.export_markdown(c).unwrap();
    let path = store.attachment_path(&photo.id, photo.media_type);
    assert!(
        md.contains(&format!("![whiteboard.png]({})", path.display())),
        "{md}"
    );
    assert!(md.contains("[spec.pdf]("), "{md}");

    // Into another data directory: the files come back from the JSON alone.
    let (other_tmp, other) = store_in_new_dir();
    let imported = other.import_json(&json).unwrap();
    let back = other.conversation_attachments(imported).unwrap();
    let first = back.values().next().unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(other.attachment(&photo.id, None).unwrap().data, photo.data);
    assert!(
        other_tmp
            .path()
            .join("attachments")
            .join(&photo.id[..2])
            .is_dir()
    );

    // Altered bytes are refused before anything is written.
    let tampered = json.replacen(data, &data.replace('A', "B"), 1);
    let before = count(&other, "conversations");
    let err = other.import_json(&tampered).unwrap_err();
    assert!(err.to_string().contains("whiteboard.png"), "{err}");
    assert_eq!(count(&other, "conversations"), before);
}

fn store_in_new_dir() -> (tempfile::TempDir, Store) {
    store()
}

#[test]
fn phrases_match_adjacent_words_only() {
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let near = rec.start_conversation("near", &[]).unwrap();
    rec.add_user_message(near, None, "the borrow checker rejects it")
        .unwrap();
    let apart = rec.start_conversation("apart", &[]).unwrap();
    rec.add_user_message(apart, None, "borrow a book; the checker is out")
        .unwrap();
    assert_eq!(store.search("borrow checker", 10, 0).unwrap().len(), 2);
    let hits = store.search("\"borrow checker\"", 10, 0).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].conversation, near);
    assert!(!hits[0].recent_only);
    assert_eq!(
        hits[0].snippet_marked("[", "]"),
        "the [borrow checker] rejects it"
    );
    // Prefixes of 2 and 3 characters (indexed) and longer ones.
    for q in ["bo*", "bor*", "borr*"] {
        assert_eq!(store.search(q, 10, 0).unwrap().len(), 2, "{q}");
    }
}

#[test]
fn a_query_matching_more_than_the_window_ranks_its_newest_matches_by_count_then_recency() {
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let add = |title: &str, texts: &[String]| {
        let c = rec.start_conversation(title, &[]).unwrap();
        for t in texts {
            rec.add_user_message(c, None, t).unwrap();
        }
        c
    };
    let many = |n: usize, text: &str| -> Vec<String> { (0..n).map(|_| text.to_owned()).collect() };
    // Old and all about it, but older than the newest 2,000 matches.
    let old = add("old", &many(40, "alpha alpha alpha"));
    for i in 0..(super::search::RANK_WINDOW / 3 + 1) {
        add(&format!("filler {i}"), &many(3, "alpha and other words"));
    }
    let light = add("recent light", &many(1, "alpha"));
    let heavy = add("recent heavy", &many(5, "alpha here"));
    let hits = store.search("alpha", 30, 0).unwrap();
    assert!(hits.iter().all(|h| h.recent_only));
    assert_eq!(hits[0].conversation, heavy, "most matches among the newest");
    assert_eq!(hits[0].matching_messages, 5);
    // Then three-match conversations, newest first.
    assert_eq!(
        hits[1].title,
        format!("filler {}", super::search::RANK_WINDOW / 3)
    );
    assert_eq!(hits[1].matching_messages, 3);
    assert!(
        hits.iter()
            .all(|h| h.conversation != old && h.conversation != light)
    );
    // A word found in few messages is still ranked by relevance.
    rec.add_user_message(old, None, "alpha zeta").unwrap();
    let rare = store.search("alpha zeta", 10, 0).unwrap();
    assert_eq!(rare.len(), 1);
    assert_eq!(rare[0].conversation, old);
    assert!(!rare[0].recent_only);
}

/// A round answered by `models` (provider `p`, model names given), each
/// answer in the ledger at `nanos` with timings; returns the question and
/// the answers' ids.
fn voted_round(
    store: &Store,
    conv: ConversationId,
    models: &[(&str, i64)],
) -> (MessageId, Vec<MessageId>) {
    let rec = store.recorder(false);
    let q = rec.add_user_message(conv, None, "Which is best?").unwrap();
    let mut ids = Vec::new();
    for (pane, (model, nanos)) in models.iter().enumerate() {
        let mut result = answer("p", model, &format!("{model} says hi"), *nanos);
        result.timing.ttft = Some(Duration::from_millis(100 * (pane as u64 + 1)));
        let id = rec
            .add_answer(
                conv,
                q,
                pane as u32,
                &format!("p:{model}"),
                &result,
                &RequestTrace::default(),
            )
            .unwrap();
        let spend = SpendContext {
            provider: "p".into(),
            model: (*model).into(),
            route: None,
            tags: Vec::new(),
            conversation: Some(conv.to_string()),
            message: Some(id.0),
        };
        store
            .record_spend(&spend, &settled(*nanos).unwrap())
            .unwrap();
        ids.push(id);
    }
    (q, ids)
}

/// A round: its question and its answers' ids.
type VotedRound = (MessageId, Vec<MessageId>);

/// A store holding a conversation of `N` rounds, each answered by models
/// "x" (5 nano-dollars) and "y" (7) as [`voted_round`] writes them.
fn rounds_to_vote_on<const N: usize>() -> (tempfile::TempDir, Store, ConversationId, [VotedRound; N])
{
    let (tmp, store) = store();
    let conv = store.recorder(false).start_conversation("t", &[]).unwrap();
    let rounds = std::array::from_fn(|_| voted_round(&store, conv, &[("x", 5), ("y", 7)]));
    (tmp, store, conv, rounds)
}

fn vote(
    round: MessageId,
    answers: &[MessageId],
    winner: Option<MessageId>,
    blind: bool,
) -> switchboard_protocol::Vote {
    switchboard_protocol::Vote {
        round: round.0,
        answers: answers.iter().map(|a| a.0).collect(),
        verdict: if winner.is_some() {
            switchboard_protocol::Verdict::Best
        } else {
            switchboard_protocol::Verdict::Tie
        },
        winner: winner.map(|w| w.0),
        blind,
        at_ms: 0,
    }
}

#[test]
fn blind_votes_rank_the_winner_first_with_the_ledgers_numbers() {
    use switchboard_protocol::LeaderboardQuery;
    let (_tmp, store) = store();
    let rec = store.recorder(false);
    let work = rec.start_conversation("work", &["work".into()]).unwrap();
    let other = rec.start_conversation("play", &[]).unwrap();
    // "strong" wins six blind rounds against "weak"; "mid" ties "weak" once.
    let costs = [
        (1_000, 3_000),
        (2_000, 3_000),
        (3_000, 3_000),
        (4_000, 3_000),
        (5_000, 3_000),
        (6_000, 3_000),
    ];
    for (strong_cost, weak_cost) in costs {
        let (q, a) = voted_round(
            &store,
            work,
            &[("strong", strong_cost), ("weak", weak_cost)],
        );
        store.record_vote(&vote(q, &a, Some(a[0]), true)).unwrap();
    }
    let (q, a) = voted_round(&store, other, &[("mid", 10), ("weak", 3_000)]);
    store.record_vote(&vote(q, &a, None, true)).unwrap();
    // Votes that saw the names count for nothing.
    for _ in 0..5 {
        let (q, a) = voted_round(&store, other, &[("strong", 7), ("weak", 7)]);
        store.record_vote(&vote(q, &a, Some(a[1]), false)).unwrap();
    }

    let board = store.leaderboard(&LeaderboardQuery::default()).unwrap();
    assert_eq!(board.votes, 7);
    let names: Vec<&str> = board.rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["p:strong", "p:weak", "p:mid"], "{board:#?}");
    let strong = &board.rows[0];
    assert_eq!(
        (strong.rank, strong.votes, strong.wins, strong.ties),
        (Some(1), 6, 6, 0)
    );
    assert_eq!(strong.win_rate, 1.0);
    assert!(strong.rating_low < strong.rating && strong.rating < strong.rating_high);
    assert!(strong.rating_low > board.rows[1].rating, "{board:#?}");
    // Median of 7 ×5 (unblind rounds still cost money) and 1000..6000:
    // the sixth of eleven, exact integer nanos.
    assert_eq!(strong.median_cost_nanos, Some(1_000));
    assert_eq!(strong.answers, 11);
    assert_eq!(strong.median_ttft_ms, Some(100.0));
    assert_eq!(strong.median_tokens_per_s, Some(42.5));
    let weak = &board.rows[1];
    assert_eq!(
        (weak.rank, weak.votes, weak.wins, weak.ties),
        (Some(2), 7, 0, 1)
    );
    let mid = &board.rows[2];
    assert!(
        mid.too_few_votes && mid.rank.is_none(),
        "one vote is not a ranking"
    );
    assert_eq!(mid.ties, 1);
    // Best value: "mid" answers for 10 nanos.
    let value: Vec<&str> = board.by_value().iter().map(|r| r.model.as_str()).collect();
    assert_eq!(value[0], "p:mid");

    // By tag: only the work conversation's votes and answers.
    let work_board = store
        .leaderboard(&LeaderboardQuery {
            tag: Some("work".into()),
            ..LeaderboardQuery::default()
        })
        .unwrap();
    assert_eq!(work_board.votes, 6);
    assert_eq!(work_board.rows.len(), 2);
    assert_eq!(work_board.rows[0].median_cost_nanos, Some(3_500));
    // By time: nothing before the votes were cast.
    let empty = store
        .leaderboard(&LeaderboardQuery {
            to_ms: Some(1),
            ..LeaderboardQuery::default()
        })
        .unwrap();
    assert!(empty.rows.is_empty() && empty.votes == 0);
}

#[test]
fn a_vote_is_checked_replaced_and_travels_with_the_export() {
    let (_tmp, store, conv, [(q, a), (q2, b)]) = rounds_to_vote_on();
    // Malformed votes are refused with a reason and store nothing.
    for (bad, why) in [
        (vote(q, &a[..1], None, true), "at least two"),
        (vote(q, &a, Some(b[0]), true), "winner"),
        (vote(q, &[a[0], b[1]], None, true), "not an answer of round"),
        (vote(a[0], &a, None, true), "no round"),
    ] {
        let err = store.record_vote(&bad).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
    assert_eq!(count(&store, "votes"), 0);
    let first = store.record_vote(&vote(q, &a, Some(a[1]), true)).unwrap();
    assert!(first.blind);
    // Voting again (after the reveal, so the window says not blind)
    // replaces it, as blind as the round's first vote.
    let again = store.record_vote(&vote(q, &a, Some(a[0]), false)).unwrap();
    assert!(again.blind);
    store.record_vote(&vote(q2, &b, None, false)).unwrap();
    // A round first voted with the names shown stays so.
    assert!(!store.record_vote(&vote(q2, &b, None, true)).unwrap().blind);
    let votes = store.votes(conv).unwrap();
    assert_eq!(votes.len(), 2);
    assert_eq!(votes[0].winner, Some(a[0].0));
    assert!(votes[0].blind && !votes[1].blind);

    // A judge's verdict: its cost is in the conversation's total, not a vote.
    let before = store.conversation(conv).unwrap().cost;
    let j = store
        .record_judgment(
            &NewJudgment {
                round: q,
                task: switchboard_protocol::JudgeTask::Verdict,
                prompt: "Which answer is best?",
                target: "p:judge",
                result: &answer("p", "judge", "Answer A is best.", 900),
                labels: &[("A".into(), a[0].0), ("B".into(), a[1].0)],
            },
            &[],
        )
        .unwrap();
    assert_eq!(j.cost_nanos, Some(900));
    assert_eq!(
        store.conversation(conv).unwrap().cost.nanos(),
        before.nanos() + 900
    );
    assert_eq!(store.votes(conv).unwrap().len(), 2);

    // Exported and imported with new ids pointing at the same answers.
    let json = store.export_json(conv).unwrap();
    let copy = store.import_json(&json).unwrap();
    let copied = store.votes(copy).unwrap();
    assert_eq!(copied.len(), 2);
    let winner = store.message(MessageId(copied[0].winner.unwrap())).unwrap();
    assert_eq!(winner.content, "x says hi");
    assert_eq!(winner.conversation, copy);
    assert!(!copied[1].blind && copied[1].winner.is_none());
    let judged = store.judgments(copy).unwrap();
    assert_eq!(judged.len(), 1);
    assert_eq!(judged[0].content, "Answer A is best.");
    // Its labels name the copy's answers.
    let a_copy = store.message(MessageId(judged[0].labels[0].1)).unwrap();
    assert_eq!(
        (
            judged[0].labels[0].0.as_str(),
            a_copy.conversation,
            a_copy.content.as_str()
        ),
        ("A", copy, "x says hi")
    );
    assert_eq!(
        store.conversation(copy).unwrap().cost,
        store.conversation(conv).unwrap().cost
    );
    // Deleting the conversation deletes its votes.
    store.delete_conversation(conv).unwrap();
    assert_eq!(count(&store, "votes"), 2);
    assert_eq!(count(&store, "judgments"), 1);
}

#[test]
fn a_changed_vote_is_the_one_the_leaderboard_counts() {
    use switchboard_protocol::LeaderboardQuery;
    let (_tmp, store, _, [(q, a)]) = rounds_to_vote_on();
    store.record_vote(&vote(q, &a, Some(a[0]), true)).unwrap();
    let board = store.leaderboard(&LeaderboardQuery::default()).unwrap();
    let wins = |b: &switchboard_protocol::Leaderboard, m: &str| {
        b.rows.iter().find(|r| r.model == m).map(|r| r.wins)
    };
    assert_eq!((board.votes, wins(&board, "p:x")), (1, Some(1)));
    // Changed from the window after the reveal: the latest vote counts,
    // once, and the round is still a blind one.
    store.record_vote(&vote(q, &a, Some(a[1]), false)).unwrap();
    let board = store.leaderboard(&LeaderboardQuery::default()).unwrap();
    assert_eq!(board.votes, 1);
    assert_eq!(wins(&board, "p:x"), Some(0));
    assert_eq!(wins(&board, "p:y"), Some(1));
    assert_eq!(board.rows[0].model, "p:y", "{board:#?}");
    // And to a tie.
    store.record_vote(&vote(q, &a, None, false)).unwrap();
    let board = store.leaderboard(&LeaderboardQuery::default()).unwrap();
    assert_eq!(board.votes, 1);
    assert!(
        board.rows.iter().all(|r| r.wins == 0 && r.ties == 1),
        "{board:#?}"
    );
    assert_eq!(count(&store, "votes"), 1);
}

#[test]
fn an_imported_vote_is_checked_like_one_cast_in_the_window() {
    let (_tmp, store, conv, [(q, a), (q2, b)]) = rounds_to_vote_on();
    store.record_vote(&vote(q, &a, Some(a[0]), true)).unwrap();
    let good = store.export(conv).unwrap();
    type Edit = fn(&mut switchboard_protocol::Vote, &[MessageId], &[MessageId], MessageId);
    let edits: [(Edit, &str); 5] = [
        // An answer of the next round, and a winner among them.
        (
            |v, a, b, _| v.answers = vec![a[0].0, b[1].0],
            "is not an answer of round",
        ),
        // The next round's prompt as an answer.
        (
            |v, a, _, q2| v.answers = vec![a[0].0, q2.0],
            "is not an answer of round",
        ),
        // An answer named as the round.
        (|v, a, _, _| v.round = a[1].0, "round"),
        (|v, _, b, _| v.winner = Some(b[0].0), "winner"),
        (
            |v, a, _, _| v.answers = vec![a[0].0, a[0].0],
            "at least two",
        ),
    ];
    let before = count(&store, "conversations");
    for (edit, why) in edits {
        let mut doc = good.clone();
        edit(&mut doc.votes[0], &a, &b, q2);
        let err = store.import(&doc).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, StoreError::Import { .. }) && text.contains(why),
            "{text}"
        );
        assert!(
            text.contains(&format!("the vote on round {}", doc.votes[0].round)),
            "{text}"
        );
    }
    // Refused whole: nothing of a refused file is written.
    assert_eq!(count(&store, "conversations"), before);
    assert_eq!(count(&store, "votes"), 1);
    // The export as written still imports, its vote pointing at the copy.
    let copy = store.import(&good).unwrap();
    let votes = store.votes(copy).unwrap();
    assert_eq!(votes.len(), 1);
    let round = store.message(MessageId(votes[0].round)).unwrap();
    assert_eq!(round.conversation, copy);
}

#[test]
fn answers_begun_together_are_each_live_in_their_pane_and_a_bad_one_costs_the_others_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db.sqlite3");
    let store = Store::open_at(&path).unwrap();
    let rec = store.recorder(false);
    let conv = rec.start_conversation("t", &[]).unwrap();
    let q = rec.add_user_message(conv, None, "go").unwrap();
    let other = rec.start_conversation("u", &[]).unwrap();
    let start = |pane, target| AnswerStart {
        conversation: conv,
        question: q,
        pane: PaneRef::Key(pane),
        target,
    };
    let ids = rec.begin_answers(&[
        start("a", "p:one"),
        start("b", "p:two"),
        start("c", "p:three"),
    ]);
    let ids: Vec<MessageId> = ids.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids.len(), 3);
    let panes: Vec<(Option<String>, Option<i64>)> = ids
        .iter()
        .map(|id| {
            let m = store.message(*id).unwrap();
            (m.target, m.pane_id)
        })
        .collect();
    assert_eq!(panes[0].0.as_deref(), Some("p:one"));
    assert_eq!(panes[2].0.as_deref(), Some("p:three"));
    assert!(panes[0].1.is_some() && panes[0].1 != panes[1].1 && panes[1].1 != panes[2].1);
    // A prompt of another conversation is refused; the rest are written.
    let mixed = rec.begin_answers(&[
        start("a", "p:one"),
        AnswerStart {
            conversation: other,
            ..start("b", "p:two")
        },
    ]);
    assert!(mixed[0].is_ok());
    assert!(mixed[1].is_err());
    // The process dies while they stream: every one begun is in history,
    // interrupted, after the next start.
    drop((rec, store));
    let store = Store::open_at(&path).unwrap();
    for id in ids.iter().chain([mixed[0].as_ref().unwrap()]) {
        assert_eq!(
            store.message(*id).unwrap().error_kind,
            Some(ErrorKind::Interrupted)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_asked_for_together_are_decided_in_order_and_a_hard_budget_still_refuses() {
    let (_tmp, store) = store();
    // Room for two holds of 0.40 under a hard 1.00, not three.
    let cap = budget("cap", BudgetScope::Global, BudgetPeriod::Daily, "1", true);
    let gate = SqliteBudgetGate::new(store.clone(), vec![cap]);
    let pending: Vec<_> = (0..3)
        .map(|_| {
            gate.reserve_queued(&ctx("p", None, &[]), Some(Cost::from_nanos(400_000_000)))
                .unwrap()
        })
        .collect();
    let mut decided = Vec::new();
    for p in pending {
        decided.push(p.await.unwrap());
    }
    assert!(decided[0].is_ok() && decided[1].is_ok());
    let denied = decided[2].as_ref().unwrap_err();
    assert_eq!(denied.budget, "cap");
    // Both granted holds are committed before their answers come back.
    assert_eq!(count(&store, "reservations"), 2);
    for r in decided.into_iter().flatten() {
        gate.settle(r, settled(100));
    }
    assert_eq!(count(&store, "reservations"), 0);
    assert_eq!(store.spend_total(None).unwrap().cost.nanos(), 200);
    // Without a hard budget the next ones are held again.
    let free = SqliteBudgetGate::new(store.clone(), vec![]);
    let hold = free
        .reserve_queued(&ctx("p", None, &[]), Some(Cost::from_nanos(10)))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count(&store, "reservations"), 1);
    free.settle(hold, settled(10));
}
