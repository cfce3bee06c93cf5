//! The child process of the store's multi-process tests
//! (`tests/store_processes.rs`): the real `Store` API on a real file, in a
//! process the test can SIGKILL at any moment or race against another.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support process: any failure should crash it loudly"
)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchboard_engine::hooks::{BudgetGate, RequestTrace, SettledCost, SpendContext};
use switchboard_engine::{
    AttemptCost, AttemptResult, Budget, BudgetPeriod, BudgetScope, Cost, CostSource, FinishReason,
    Store, Timing, Usage,
};

pub const ROLE: &str = "SWITCHBOARD_TEST_CHILD_ROLE";
pub const DB: &str = "SWITCHBOARD_TEST_CHILD_DB";
pub const TAG: &str = "SWITCHBOARD_TEST_CHILD_TAG";

pub fn answer_text(tag: &str, i: u64) -> String {
    format!(
        "answer {tag}-{i}: {}",
        "lorem ipsum dolor sit amet ".repeat((i % 40) as usize)
    )
}

pub fn cost_for(i: u64) -> Cost {
    Cost::from_nanos(1_000 + i as i64 * 7)
}

pub fn budget() -> Budget {
    Budget {
        name: "cap".into(),
        scope: BudgetScope::Global,
        period: BudgetPeriod::Daily,
        limit: Cost::from_usd("1").unwrap(),
        warn_at_bp: 8_000,
        hard: true,
    }
}

pub const ESTIMATE_NANOS: i64 = 30_000_000; // $0.03

/// The child's work, chosen by the role in the environment: `writer`
/// records answers forever, printing a line after each commit; `reserver`
/// races 50 threads for one budget and prints how many were admitted;
/// `locker` holds the database's write lock for `TAG` milliseconds (as
/// another Switchboard process in a long write would), printing `locked`
/// once it has it and `released` after.
pub fn run() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let db = PathBuf::from(std::env::var(DB).unwrap());
    let tag = std::env::var(TAG).unwrap();
    let mut stdout = std::io::stdout();
    if role == "locker" {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        writeln!(stdout, "locked end").unwrap();
        stdout.flush().unwrap();
        std::thread::sleep(Duration::from_millis(tag.parse().unwrap()));
        conn.execute_batch("COMMIT").unwrap();
        writeln!(stdout, "released end").unwrap();
        stdout.flush().unwrap();
        return;
    }
    let store = Store::open_at(&db).unwrap();
    match role.as_str() {
        "writer" => {
            let rec = store.recorder(false);
            for i in 0.. {
                let conv = rec
                    .start_conversation(&format!("conv {tag}-{i}"), &["crash".into()])
                    .unwrap();
                let q = rec
                    .add_user_message(conv, None, &format!("question {tag}-{i}"))
                    .unwrap();
                let text = answer_text(&tag, i);
                let result = AttemptResult {
                    provider: "p".into(),
                    model: "m".into(),
                    text: text.clone(),
                    reasoning: String::new(),
                    finish_reason: Some(FinishReason::Stop),
                    usage: Usage::default(),
                    cost: Some(AttemptCost {
                        total: cost_for(i),
                        source: CostSource::Computed,
                    }),
                    billed: Some(Usage::default()),
                    timing: Timing {
                        total: Duration::from_millis(5),
                        ..Timing::default()
                    },
                    error: None,
                };
                let a = rec
                    .add_answer(conv, q, 0, "p:m", &result, &RequestTrace::default())
                    .unwrap();
                store
                    .record_spend(
                        &rec.spend_context(conv, "p", "m", None, &[]),
                        &SettledCost {
                            cost: Some(cost_for(i)),
                            estimated: false,
                            input_tokens: None,
                            output_tokens: None,
                        },
                    )
                    .unwrap();
                // Printed only after the commits: a line is a promise.
                writeln!(stdout, "committed {} {i} end", a.0).unwrap();
                stdout.flush().unwrap();
            }
        }
        "reserver" => {
            let gate = Arc::new(switchboard_engine::SqliteBudgetGate::new(
                store,
                vec![budget()],
            ));
            let threads: Vec<_> = (0..50)
                .map(|i| {
                    let gate = Arc::clone(&gate);
                    std::thread::spawn(move || {
                        let ctx = SpendContext {
                            provider: "p".into(),
                            model: "m".into(),
                            ..SpendContext::default()
                        };
                        match gate.reserve(&ctx, Some(Cost::from_nanos(ESTIMATE_NANOS))) {
                            Ok(r) => {
                                std::thread::sleep(Duration::from_millis(i % 5));
                                gate.settle(
                                    r,
                                    Some(SettledCost {
                                        cost: Some(Cost::from_nanos(ESTIMATE_NANOS)),
                                        estimated: false,
                                        input_tokens: Some(1),
                                        output_tokens: Some(1),
                                    }),
                                );
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
                .filter(|a| *a)
                .count();
            writeln!(stdout, "admitted {admitted} end").unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}
