//! History at scale: a real database of about a million messages with
//! Zipf-distributed words (20,000 conversations of 50 messages, plus one of
//! 5,000), and the figures a user feels: search p50/p95 for any kind of
//! query (a rare word, words in about 2% and 8% of messages, the stopword
//! "the", a prefix, a common and a rare phrase), listing conversations,
//! opening the 5,000-message one, and importing a 5,000-conversation
//! ChatGPT export with progress. The goals are printed beside the figures,
//! not asserted (ranking is asserted by ordinary tests). Search and listing
//! are also timed, in the same run on the same file, with the queries they
//! replaced (BM25 over every match; listing sorted without an index), and
//! the ratio printed: the baseline is what `history search` did before.
//! Each search is followed by the part of it that decides how to rank the
//! query, timed now and as it was decided before (every word counted to
//! 50,001, repeats too, then the whole query), with both decisions checked
//! equal.
//!
//! The database is generated once (a minute or two) and kept under
//! `target/bench-history/`; delete it to generate it again. Run with
//! `make bench` (release build).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark binary"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use switchboard_engine::service::ChatService;
use switchboard_engine::{ConversationId, DataDir, KeyStore, Store};
use switchboard_tests::Rng;
use switchboard_tests::history_gen::{Zipf, chatgpt_export};

const CONVERSATIONS: usize = 20_000;
const PER_CONVERSATION: usize = 50;
const BIG_CONVERSATION: usize = 5_000;
/// Bump when the generator or the schema changes, so an old cached file is
/// not reused.
const GENERATOR: u32 = 5;
const RUNS: usize = 25;
/// The baseline takes seconds per common query: its median of a few runs.
const BASELINE_RUNS: usize = 3;

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-history")
        .join(format!("v{GENERATOR}"))
}

/// Fill `path` (a fresh Switchboard database) with the history.
fn generate(path: &Path) {
    let started = Instant::now();
    drop(Store::open_at(path).unwrap());
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .unwrap();
    let vocab = Zipf::new(50_000, 1.07);
    let mut rng = Rng::seeded(2026);
    // Two years of history, oldest first.
    let start_ms: i64 = 1_700_000_000_000;
    let span_ms: i64 = 2 * 365 * 86_400_000;
    let mut written = 0usize;
    let total = CONVERSATIONS * PER_CONVERSATION + BIG_CONVERSATION;
    let mut tx = conn.transaction().unwrap();
    for c in 0..=CONVERSATIONS {
        let messages = if c == 0 {
            BIG_CONVERSATION
        } else {
            PER_CONVERSATION
        };
        let t0 = start_ms + span_ms * c as i64 / CONVERSATIONS as i64;
        let title = format!("{} {}", vocab.text(&mut rng, 3), c);
        tx.execute(
            "INSERT INTO conversations (title, created_at, updated_at) VALUES (?1, ?2, ?3)",
            params![title, t0, t0 + messages as i64 * 30_000],
        )
        .unwrap();
        let conv = tx.last_insert_rowid();
        let mut parent: Option<i64> = None;
        for m in 0..messages {
            let user = m % 2 == 0;
            let words = if user { 15 } else { 45 };
            let text = vocab.text(&mut rng, words);
            let at = t0 + m as i64 * 30_000;
            if user {
                tx.prepare_cached(
                    "INSERT INTO messages (conversation_id, parent_id, role, content, created_at)
                     VALUES (?1, ?2, 'user', ?3, ?4)",
                )
                .unwrap()
                .execute(params![conv, parent, text, at])
                .unwrap();
            } else {
                tx.prepare_cached(
                    "INSERT INTO messages (conversation_id, parent_id, role, content, created_at,
                        pane, target, provider, model, input_tokens, output_tokens, cost_nanos,
                        cost_source, ttft_ms, total_ms, tokens_per_s, finish_reason)
                     VALUES (?1, ?2, 'assistant', ?3, ?4, 0, 'openai:gpt-6-luna', 'openai',
                        'gpt-6-luna', 900, 300, 250000, 'computed', 320.0, 2400.0, 140.0, 'stop')",
                )
                .unwrap()
                .execute(params![conv, parent, text, at])
                .unwrap();
                let id = tx.last_insert_rowid();
                tx.prepare_cached(
                    "INSERT INTO attempts (message_id, seq, provider, model, started_at, ttft_ms,
                        total_ms, outcome, input_tokens, output_tokens, cost_nanos, cost_source)
                     VALUES (?1, 0, 'openai', 'gpt-6-luna', ?2, 320.0, 2400.0, 'ok', 900, 300,
                        250000, 'computed')",
                )
                .unwrap()
                .execute(params![id, at])
                .unwrap();
            }
            parent = Some(tx.last_insert_rowid());
            written += 1;
            if written.is_multiple_of(100_000) {
                tx.commit().unwrap();
                println!(
                    "  generating: {written}/{total} messages ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
                tx = conn.transaction().unwrap();
            }
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('optimize'); VACUUM;")
        .unwrap();
    println!(
        "  generated {written} messages in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Time `f` over [`RUNS`] runs (after one warm-up): (p50, p95).
fn measure(f: impl FnMut()) -> (Duration, Duration) {
    measure_n(RUNS, f)
}

/// Time `f` over `runs` runs (after one warm-up): (p50, p95).
fn measure_n(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

fn line(what: &str, (p50, p95): (Duration, Duration), goal_ms: f64) {
    println!(
        "{what:<64} p50 {:>8.1} ms   p95 {:>8.1} ms   goal p95 < {goal_ms:.0} ms {}",
        ms(p50),
        ms(p95),
        if ms(p95) < goal_ms { "ok" } else { "MISSED" }
    );
}

/// Print the baseline's median beside `now`'s, and how many times faster.
fn against(baseline: (Duration, Duration), now: (Duration, Duration)) {
    println!(
        "{:<64} p50 {:>8.1} ms   (median of {BASELINE_RUNS} runs)   baseline/new p50 = {:.1}",
        "    baseline (before)",
        ms(baseline.0),
        ms(baseline.0) / ms(now.0).max(0.001)
    );
}

/// The search query this replaced: every match ranked by BM25, summed per
/// conversation, then one snippet per hit of the page. (It runs on the new
/// index, whose prefix indexes make its prefix queries faster than they
/// were.)
fn baseline_search(conn: &Connection, query: &str) -> usize {
    let fts = if query.starts_with('"') {
        query.to_owned()
    } else {
        query
            .split_whitespace()
            .map(|w| match w.strip_suffix('*') {
                Some(stem) => format!("\"{stem}\"*"),
                None => format!("\"{w}\""),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut stmt = conn
        .prepare_cached(
            "WITH hits AS (
                 SELECT m.conversation_id AS conv, f.rowid AS mid, bm25(messages_fts) AS score
                 FROM messages_fts f JOIN messages m ON m.id = f.rowid
                 WHERE messages_fts MATCH ?1
             ),
             ranked AS (
                 SELECT conv, mid, score,
                        row_number() OVER (PARTITION BY conv ORDER BY score, mid) AS rn,
                        count(*) OVER (PARTITION BY conv) AS n,
                        sum(score) OVER (PARTITION BY conv) AS total
                 FROM hits
             )
             SELECT r.mid FROM ranked r JOIN conversations c ON c.id = r.conv
             WHERE r.rn = 1
             ORDER BY r.total, r.score, c.updated_at DESC, r.conv DESC
             LIMIT 30",
        )
        .unwrap();
    let mids: Vec<i64> = stmt
        .query_map([&fts], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut snip = conn
        .prepare_cached(
            "SELECT snippet(messages_fts, 0, '[', ']', '…', 16)
             FROM messages_fts WHERE messages_fts MATCH ?1 AND rowid = ?2",
        )
        .unwrap();
    for mid in &mids {
        let _: String = snip.query_row(params![fts, mid], |r| r.get(0)).unwrap();
    }
    mids.len()
}

/// How many messages `expr` matches, counted up to `cap`.
fn count_up_to(conn: &Connection, expr: &str, cap: usize) -> usize {
    conn.prepare_cached(
        "SELECT count(*) FROM (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ?1 LIMIT ?2)",
    )
    .unwrap()
    .query_row(params![expr, cap as i64], |r| r.get::<_, i64>(0))
    .unwrap() as usize
}

/// How the search decided between relevance and newest matches before it
/// counted each distinct word once and stopped at the first common one:
/// every word of the query (repeats too) counted up to 50,001, then the
/// whole query up to 2,001 (the first page's window).
fn ranking_decision_before(conn: &Connection, query: &str) -> bool {
    let quote = |w: &str| format!("\"{w}\"");
    let parts: Vec<String> = if query.starts_with('"') {
        vec![query.to_owned()]
    } else {
        query
            .split_whitespace()
            .map(|w| match w.strip_suffix('*') {
                Some(stem) => format!("{}*", quote(stem)),
                None => quote(w),
            })
            .collect()
    };
    let mut rare_words = true;
    for part in &parts {
        let words: Vec<String> = if part.ends_with('*') {
            vec![part.clone()]
        } else {
            part.trim_matches('"').split(' ').map(quote).collect()
        };
        for word in words {
            if count_up_to(conn, &word, 50_001) > 50_000 {
                rare_words = false;
            }
        }
    }
    rare_words && count_up_to(conn, &parts.join(" "), 2_001) <= 2_000
}

/// The word whose message count is nearest `share` of all messages.
fn word_near(conn: &Connection, messages: f64, share: f64) -> (String, i64) {
    conn.query_row(
        "SELECT term, doc FROM bench_vocab WHERE term GLOB '[a-z]*'
         ORDER BY abs(doc - ?1) LIMIT 1",
        [messages * share],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// A word in a handful of messages.
fn queries_rare_word(conn: &Connection) -> String {
    conn.query_row(
        "SELECT term FROM bench_vocab WHERE doc BETWEEN 3 AND 30 AND term GLOB '[a-z]*'
         ORDER BY term DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn main() {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("switchboard.sqlite3");
    if !db.exists() {
        println!(
            "generating the benchmark history in {} (once)...",
            dir.display()
        );
        let tmp = dir.join("generating.sqlite3");
        let _ = std::fs::remove_file(&tmp);
        generate(&tmp);
        std::fs::rename(&tmp, &db).unwrap();
    }
    let store = Store::open_at(&db).unwrap();
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.bench_vocab USING fts5vocab(main, messages_fts, row)",
    )
    .unwrap();
    let messages: f64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    let conversations: i64 = conn
        .query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))
        .unwrap();
    println!(
        "history: {messages} messages in {conversations} conversations ({})",
        db.display()
    );

    let (rare, rare_n) = conn
        .query_row(
            "SELECT term, doc FROM bench_vocab WHERE doc BETWEEN 3 AND 30 AND term GLOB '[a-z]*'
             ORDER BY term LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
        )
        .unwrap();
    let (two, two_n) = word_near(&conn, messages, 0.02);
    let (eight, eight_n) = word_near(&conn, messages, 0.08);
    let the_n: i64 = conn
        .query_row("SELECT doc FROM bench_vocab WHERE term = 'the'", [], |r| {
            r.get(0)
        })
        .unwrap();
    // A prefix shared by many made-up words.
    let prefix = "ka*";
    // A phrase as it occurs in one message: two adjacent words that are
    // each in 0.1% to 2% of messages (so the phrase itself is rare).
    let doc_count = |w: &str| -> i64 {
        conn.query_row("SELECT doc FROM bench_vocab WHERE term = ?1", [w], |r| {
            r.get(0)
        })
        .unwrap_or(0)
    };
    let mid = |n: i64| (1_000..=20_000).contains(&n);
    let mut rare_phrase = String::new();
    for id in (1..).map(|k| 500_000 + k * 7) {
        let text: String = conn
            .query_row("SELECT content FROM messages WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        if let Some(pair) = words
            .windows(2)
            .find(|p| p[0] != p[1] && mid(doc_count(p[0])) && mid(doc_count(p[1])))
        {
            rare_phrase = format!("\"{} {}\"", pair[0], pair[1]);
            break;
        }
    }
    let queries: Vec<(String, String)> = vec![
        (format!("rare word ({rare_n} messages)"), rare),
        (
            format!(
                "word in {:.1}% of messages",
                two_n as f64 / messages * 100.0
            ),
            two,
        ),
        (
            format!(
                "word in {:.1}% of messages",
                eight_n as f64 / messages * 100.0
            ),
            eight,
        ),
        (
            format!(
                "\"the\" ({:.0}% of messages)",
                the_n as f64 / messages * 100.0
            ),
            "the".into(),
        ),
        ("prefix".into(), prefix.into()),
        ("short prefix".into(), "k*".into()),
        ("common phrase".into(), "\"of the\"".into()),
        ("rare phrase".into(), rare_phrase),
        ("rare phrase of stopwords".into(), "\"the of the\"".into()),
        ("two common words".into(), "time people".into()),
        (
            "a stopword and a rare word".into(),
            format!("the {}", queries_rare_word(&conn)),
        ),
    ];
    println!("\nsearch (30 results, the sidebar's page):");
    for (what, q) in &queries {
        let hits = store.search(q, 30, 0).unwrap();
        let how = if hits.first().is_some_and(|h| h.recent_only) {
            "newest matches"
        } else {
            "relevance"
        };
        let now = measure(|| {
            store.search(q, 30, 0).unwrap();
        });
        line(
            &format!("  {what}: {q} → {} hits, {how}", hits.len()),
            now,
            50.0,
        );
        against(
            measure_n(BASELINE_RUNS, || {
                baseline_search(&conn, q);
            }),
            now,
        );
        // The part of the search this run's change touched, before and
        // after, on the same file: deciding how to rank.
        let decided = store.search_ranks_by_relevance(q, 30).unwrap();
        assert_eq!(decided, ranking_decision_before(&conn, q), "{q}");
        let before = measure(|| {
            ranking_decision_before(&conn, q);
        });
        let after = measure(|| {
            store.search_ranks_by_relevance(q, 30).unwrap();
        });
        println!(
            "{:<64} p50 {:>8.1} ms   p95 {:>8.1} ms   (before: p50 {:.1} ms, p95 {:.1} ms)",
            "    of which deciding how to rank",
            ms(after.0),
            ms(after.1),
            ms(before.0),
            ms(before.1)
        );
    }

    println!("\nlisting and opening:");
    let now = measure(|| {
        store.conversations(None, 50, true).unwrap();
    });
    line(
        "  list conversations, archived included (first page of 50)",
        now,
        100.0,
    );
    // Before: the page sorted from the whole table (no index in this order).
    against(
        measure_n(BASELINE_RUNS, || {
            let ids: Vec<i64> = conn
                .prepare_cached(
                    "SELECT c.id FROM conversations c NOT INDEXED WHERE (?1 OR c.archived = 0)
                     ORDER BY c.pinned DESC, c.updated_at DESC, c.id DESC LIMIT 50",
                )
                .unwrap()
                .query_map([true], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(ids.len(), 50);
        }),
        now,
    );
    line(
        "  list conversations (first page of 50)",
        measure(|| {
            store.conversations(None, 50, false).unwrap();
        }),
        100.0,
    );
    let page = store.conversations(None, 50, false).unwrap();
    let cursor = page.next.unwrap();
    line(
        "  list conversations (a later page)",
        measure(|| {
            store.conversations(Some(&cursor), 50, false).unwrap();
        }),
        100.0,
    );
    let big = ConversationId(1);
    let dir_for_service = DataDir::at(&dir).unwrap();
    let service = ChatService::new(dir_for_service, KeyStore::new());
    let opened = service.open_conversation(big.0).unwrap();
    line(
        &format!(
            "  open a conversation of {} messages",
            store.conversation(big).unwrap().message_count
        ),
        measure(|| {
            service.open_conversation(big.0).unwrap();
        }),
        100.0,
    );
    assert_eq!(opened.rounds.len(), BIG_CONVERSATION / 2);

    println!("\nimport:");
    let text = chatgpt_export(5_000, 99);
    let tmp = tempfile::tempdir().unwrap();
    let fresh = Store::open_at(&tmp.path().join("import.sqlite3")).unwrap();
    let started = Instant::now();
    let mut updates = 0;
    let summary =
        switchboard_engine::import::import_text(&fresh, &text, &mut |_| updates += 1).unwrap();
    println!(
        "  import a ChatGPT export of {} conversations ({} messages, {:.1} MB): {:.2} s, {} progress updates",
        summary.added,
        summary.messages,
        text.len() as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        updates
    );
}
