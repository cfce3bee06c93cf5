//! Full-text search over every message (FTS5, Porter stemming, diacritics
//! folded, prefix indexes for prefixes of up to 3 characters), one hit per
//! conversation with a highlighted snippet of its best-matching message,
//! in bounded time however many messages a query matches.
//!
//! What the user types is searched as words, not as FTS5 syntax: each word
//! is quoted, so `C++`, `don't` or `a:b` never produce a syntax error; a
//! trailing `*` keeps its prefix meaning (`stream*`), and words in double
//! quotes are a phrase (`"borrow checker"`).
//!
//! Ranking. A query that matches at most [`RANK_WINDOW`] messages, none of
//! its words common (in more than [`COMMON_WORD`] messages), is ranked by
//! relevance: BM25 summed over each conversation's matching messages, so a
//! conversation about the subject beats one that mentions it once.
//! Relevance needs each word's frequency over the whole history, which
//! costs time in proportion to it, and it is flat for common words anyway:
//! every other query is ranked among its newest [`RANK_WINDOW`] matches, by
//! how many of them each conversation has, then by recency
//! ([`SearchHit::recent_only`]). Those newest matches are found newest
//! first in growing slices of the history and the search stops after
//! [`SCAN_BUDGET`] (a phrase of common words that rarely occur together has
//! to look at many messages), keeping what it found: the slice running
//! then is interrupted (SQLite's progress handler watches the clock), so a
//! busy machine does not stretch the budget.
//! Snippets are made only for the page returned.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{ConversationId, MessageId, Store, StoreError};
use crate::chat::Role;

/// A query matching at most this many messages is ranked by relevance
/// over all of them; one matching more is ranked among its newest this
/// many matches.
pub const RANK_WINDOW: usize = 2_000;

/// A word found in more messages than this is common: relevance over it
/// costs more than it tells, so the query is ranked among its newest
/// matches.
pub const COMMON_WORD: usize = 50_000;

/// How long the search for a query's newest matches may look before it
/// ranks what it found.
pub const SCAN_BUDGET: Duration = Duration::from_millis(25);

/// Marks the start and end of a match inside a raw snippet. Private-use
/// characters, so text that contains brackets or HTML is never confused
/// with a highlight.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// A piece of a snippet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnippetPart {
    /// The text (untrusted: escape it when rendering).
    pub text: String,
    /// True for the words that matched.
    pub highlighted: bool,
}

/// One conversation that matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// The conversation.
    pub conversation: ConversationId,
    /// Its title.
    pub title: String,
    /// Its best-matching message.
    pub message: MessageId,
    /// Who wrote that message.
    pub role: Role,
    /// The model that wrote it, for answers.
    pub model: Option<String>,
    /// Around the matches in that message, matches highlighted.
    pub snippet: Vec<SnippetPart>,
    /// How many of the conversation's messages matched.
    pub matching_messages: u64,
    /// The conversation's relevance: the sum of its matching messages'
    /// BM25 scores (lower is better, as SQLite ranks), so a conversation
    /// about the subject beats one that mentions it once. When
    /// `recent_only`: minus its number of matching messages.
    pub score: f64,
    /// The query matched too many messages (or too common words) to rank
    /// them all: this hit was ranked among the query's newest matches, and
    /// `matching_messages` counts those only.
    pub recent_only: bool,
}

impl SearchHit {
    /// The snippet as one string, matches wrapped in `open` … `close`
    /// (e.g. `**` … `**`).
    pub fn snippet_marked(&self, open: &str, close: &str) -> String {
        self.snippet
            .iter()
            .map(|p| {
                if p.highlighted {
                    format!("{open}{}{close}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }
}

/// Turn what the user typed into an FTS5 query: every word a quoted term
/// (all must match), `word*` a prefix, words between double quotes a
/// phrase. `None` when nothing is left.
#[cfg(test)]
pub(crate) fn fts_query(input: &str) -> Option<String> {
    query_parts(input).map(|parts| parts.join(" "))
}

/// The terms and phrases of [`fts_query`], each a valid FTS5 expression.
fn query_parts(input: &str) -> Option<Vec<String>> {
    let quote = |w: &str| format!("\"{}\"", w.replace('"', "\"\""));
    // Words made only of punctuation match nothing the tokenizer keeps.
    let wordy = |w: &str| w.chars().any(char::is_alphanumeric);
    let mut terms = Vec::new();
    for (i, chunk) in input.split('"').enumerate() {
        // Odd chunks were between quotes (an unbalanced quote opens a
        // phrase that runs to the end).
        if i % 2 == 1 {
            let words: Vec<&str> = chunk.split_whitespace().filter(|w| wordy(w)).collect();
            match words.len() {
                0 => {}
                1 => terms.push(quote(words[0])),
                _ => terms.push(quote(&words.join(" "))),
            }
            continue;
        }
        for w in chunk.split_whitespace() {
            let (word, prefix) = match w.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (w, false),
            };
            if !wordy(word) {
                continue;
            }
            let quoted = quote(word);
            terms.push(if prefix { format!("{quoted}*") } else { quoted });
        }
    }
    (!terms.is_empty()).then_some(terms)
}

/// How many messages `expr` matches, counted up to `cap` (no ranking work).
fn count_up_to(conn: &Connection, expr: &str, cap: usize) -> Result<usize, StoreError> {
    let n: i64 = conn.prepare_cached(
        "SELECT count(*) FROM (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ?1 LIMIT ?2)",
    )?
    .query_row(params![expr, cap as i64], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Whether the query of `parts` (joined: `fts`) is ranked by relevance:
/// none of its words common and at most `window` matches. Common words
/// are told first (cheap: counted up to a cap), so that a phrase of common
/// words is never scanned whole just to count it. Each distinct word is
/// counted once and the first common one decides (`"the of the"` costs one
/// count, not three); a query of one word or prefix is its own match
/// count, so it is counted once, only up to `window`.
fn ranks_by_relevance(
    conn: &Connection,
    parts: &[String],
    fts: &str,
    window: usize,
) -> Result<bool, StoreError> {
    if let [only] = parts
        && !only.contains(' ')
    {
        return Ok(count_up_to(conn, only, window + 1)? <= window);
    }
    let mut counted: Vec<String> = Vec::new();
    for part in parts {
        let words: Vec<String> = if part.ends_with('*') {
            vec![part.clone()]
        } else {
            part.trim_matches('"')
                .split(' ')
                .map(|w| format!("\"{w}\""))
                .collect()
        };
        for word in words {
            if counted.contains(&word) {
                continue;
            }
            if count_up_to(conn, &word, COMMON_WORD + 1)? > COMMON_WORD {
                return Ok(false);
            }
            counted.push(word);
        }
    }
    Ok(count_up_to(conn, fts, window + 1)? <= window)
}

/// A conversation found by a query, before its snippet.
struct Ranked {
    conversation: i64,
    message: i64,
    matching: u64,
    score: f64,
}

fn split_snippet(raw: &str) -> Vec<SnippetPart> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut highlighted = false;
    for c in raw.chars() {
        if c == OPEN || c == CLOSE {
            if !current.is_empty() {
                parts.push(SnippetPart {
                    text: std::mem::take(&mut current),
                    highlighted,
                });
            }
            highlighted = c == OPEN;
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        parts.push(SnippetPart {
            text: current,
            highlighted,
        });
    }
    parts
}

/// The window of the first page: how many newest matches a query that is
/// not ranked by relevance is ranked among.
fn window_for(limit: usize, offset: usize) -> usize {
    // Deeper pages widen the window, so they have matches to show.
    RANK_WINDOW.max((offset + limit) * 20)
}

impl Store {
    /// Whether [`Store::search`] ranks `query`'s first page (of `limit`)
    /// by relevance (else among its newest matches): what it decides
    /// before ranking, alone, for the history benchmark to time.
    pub fn search_ranks_by_relevance(&self, query: &str, limit: usize) -> Result<bool, StoreError> {
        let Some(parts) = query_parts(query) else {
            return Ok(false);
        };
        let limit = limit.clamp(1, super::history::MAX_PAGE);
        ranks_by_relevance(
            &self.reader(),
            &parts,
            &parts.join(" "),
            window_for(limit, 0),
        )
    }

    /// Conversations whose messages match `query`, best first (see the
    /// module docs), `limit` per page from `offset`. Archived conversations
    /// are included.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let Some(parts) = query_parts(query) else {
            return Ok(Vec::new());
        };
        let fts = parts.join(" ");
        let limit = limit.clamp(1, super::history::MAX_PAGE);
        // Reads never wait behind a write (WAL).
        let mut conn = self.reader();
        let window = window_for(limit, offset);
        let rare_words = ranks_by_relevance(&conn, &parts, &fts, window)?;
        let (ranked, recent_only) = if rare_words {
            (by_relevance(&conn, &fts, limit, offset)?, false)
        } else {
            (
                by_recent_matches(&mut conn, &fts, window, limit, offset, SCAN_BUDGET)?,
                true,
            )
        };
        let mut hits = Vec::with_capacity(ranked.len());
        let mut info = conn.prepare_cached(
            "SELECT c.title, m.role, m.model FROM messages m
             JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?1",
        )?;
        let mut snip = conn.prepare_cached(
            "SELECT snippet(messages_fts, 0, ?3, ?4, '…', 16)
             FROM messages_fts WHERE messages_fts MATCH ?1 AND rowid = ?2",
        )?;
        for r in ranked {
            let (title, role, model): (String, String, Option<String>) = info
                .query_row([r.message], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
            let raw: String = snip.query_row(
                params![fts, r.message, OPEN.to_string(), CLOSE.to_string()],
                |row| row.get(0),
            )?;
            hits.push(SearchHit {
                conversation: ConversationId(r.conversation),
                title,
                message: MessageId(r.message),
                role: if role == "assistant" {
                    Role::Assistant
                } else {
                    Role::User
                },
                model,
                snippet: split_snippet(&raw),
                matching_messages: r.matching,
                score: r.score,
                recent_only,
            });
        }
        Ok(hits)
    }
}

/// Every match ranked by BM25, summed per conversation (the query matches
/// few messages, of rare words: bounded work).
fn by_relevance(
    conn: &Connection,
    fts: &str,
    limit: usize,
    offset: usize,
) -> Result<Vec<Ranked>, StoreError> {
    let mut stmt = conn.prepare_cached(
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
         SELECT r.conv, r.mid, r.n, r.total
         FROM ranked r JOIN conversations c ON c.id = r.conv
         WHERE r.rn = 1
         ORDER BY r.total, r.score, c.updated_at DESC, r.conv DESC
         LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt
        .query_map(params![fts, limit as i64, offset as i64], |r| {
            Ok(Ranked {
                conversation: r.get(0)?,
                message: r.get(1)?,
                matching: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                score: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How many SQLite VM steps run between two looks at the scan's clock.
const CLOCK_EVERY_OPS: i32 = 256;

fn interrupted(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

/// The newest `window` matches, found newest first in growing slices of
/// the history within `budget` (the slice running when it ends is cut
/// short), ranked by how many of them each conversation has, then by its
/// newest match.
fn by_recent_matches(
    conn: &mut Connection,
    fts: &str,
    window: usize,
    limit: usize,
    offset: usize,
    budget: Duration,
) -> Result<Vec<Ranked>, StoreError> {
    let started = Instant::now();
    let newest: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
        r.get(0)
    })?;
    // Each slice is twice the last, and a busy machine slows it further:
    // checked only between slices, the budget was overrun by the last one.
    // SQLite's progress handler looks at the clock as the slice runs and
    // interrupts it when the budget is spent; the rows it gave are kept.
    conn.progress_handler(CLOCK_EVERY_OPS, Some(move || started.elapsed() >= budget))?;
    let found = newest_matches(conn, fts, newest, window, budget, started);
    conn.progress_handler(CLOCK_EVERY_OPS, None::<fn() -> bool>)?;
    let found = found?;
    let mut ranked: Vec<(i64, u64, i64)> = found
        .into_iter()
        .map(|(conversation, (n, newest))| (conversation, n, newest))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    let page: Vec<(i64, u64, i64)> = ranked.into_iter().skip(offset).take(limit).collect();
    // Each conversation's best message: its newest match.
    Ok(page
        .into_iter()
        .map(|(conversation, n, newest)| Ranked {
            conversation,
            message: newest,
            matching: n,
            score: -(n as f64),
        })
        .collect())
}

/// The newest `window` matches of `fts` (message ids up to `newest`), by
/// conversation: (matches, newest match).
fn newest_matches(
    conn: &Connection,
    fts: &str,
    newest: i64,
    window: usize,
    budget: Duration,
    started: Instant,
) -> Result<HashMap<i64, (u64, i64)>, StoreError> {
    let mut slice = i64::try_from(window).unwrap_or(i64::MAX).saturating_mul(8);
    let mut high = newest;
    // conversation -> (matches, newest match)
    let mut found: HashMap<i64, (u64, i64)> = HashMap::new();
    let mut total = 0usize;
    let mut stmt = conn.prepare_cached(
        "SELECT f.rowid, m.conversation_id FROM messages_fts f JOIN messages m ON m.id = f.rowid
         WHERE messages_fts MATCH ?1 AND f.rowid BETWEEN ?2 AND ?3
         ORDER BY f.rowid DESC LIMIT ?4",
    )?;
    'scan: while high >= 1 && total < window {
        let low = high.saturating_sub(slice - 1).max(1);
        let rows = match stmt.query_map(params![fts, low, high, (window - total) as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        }) {
            Ok(rows) => rows,
            Err(e) if interrupted(&e) => break,
            Err(e) => return Err(e.into()),
        };
        for row in rows {
            let (message, conversation) = match row {
                Ok(row) => row,
                Err(e) if interrupted(&e) => break 'scan,
                Err(e) => return Err(e.into()),
            };
            let entry = found.entry(conversation).or_insert((0, message));
            entry.0 += 1;
            entry.1 = entry.1.max(message);
            total += 1;
        }
        if started.elapsed() >= budget {
            break;
        }
        high = low - 1;
        slice = slice.saturating_mul(2);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_input_is_quoted_not_parsed() {
        assert_eq!(fts_query("rust sse").as_deref(), Some("\"rust\" \"sse\""));
        assert_eq!(fts_query("stream*").as_deref(), Some("\"stream\"*"));
        // Double quotes make a phrase; an unbalanced one runs to the end.
        assert_eq!(
            fts_query("say \"hi there\" now").as_deref(),
            Some("\"say\" \"hi there\" \"now\"")
        );
        assert_eq!(
            fts_query("\"borrow checker").as_deref(),
            Some("\"borrow checker\"")
        );
        assert_eq!(fts_query("\"hi\"").as_deref(), Some("\"hi\""));
        assert_eq!(fts_query("  -- ** "), None);
        assert_eq!(
            fts_query("C++ AND NOT x").as_deref(),
            Some("\"C++\" \"AND\" \"NOT\" \"x\"")
        );
    }

    #[test]
    fn a_scan_out_of_time_is_cut_mid_query_and_keeps_what_it_found() {
        #![allow(clippy::unwrap_used, reason = "test code")]
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id INTEGER);
             CREATE VIRTUAL TABLE messages_fts USING fts5 (content);",
        )
        .unwrap();
        // Two words in every message, next to each other in one of a
        // thousand: the phrase must look at every message's positions.
        let n = 60_000;
        {
            let tx = conn.unchecked_transaction().unwrap();
            for id in 1..=n {
                let text = if id % 1_000 == 0 {
                    "gamma beta alpha"
                } else {
                    "alpha beta gamma"
                };
                tx.execute("INSERT INTO messages VALUES (?1, ?1)", [id])
                    .unwrap();
                tx.execute(
                    "INSERT INTO messages_fts (rowid, content) VALUES (?1, ?2)",
                    params![id, text],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let phrase = "\"beta alpha\"";
        // One slice covers everything: only the interrupt can end it early.
        let all = by_recent_matches(
            &mut conn,
            phrase,
            1_000_000,
            100,
            0,
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(all.len(), 60);
        let started = Instant::now();
        let cut = by_recent_matches(
            &mut conn,
            phrase,
            1_000_000,
            100,
            0,
            Duration::from_millis(1),
        )
        .unwrap();
        let took = started.elapsed();
        assert!(cut.len() < 60, "{} found in {took:?}", cut.len());
        // The connection is usable again at once.
        assert_eq!(count_up_to(&conn, phrase, 1_000).unwrap(), 60);
    }

    #[test]
    fn snippets_split_on_the_private_markers() {
        let raw = format!("the {OPEN}fast{CLOSE} <b>fox</b> {OPEN}runs{CLOSE}");
        let parts = split_snippet(&raw);
        assert_eq!(parts.len(), 4);
        assert!(parts[1].highlighted && parts[1].text == "fast");
        assert!(!parts[2].highlighted && parts[2].text == " <b>fox</b> ");
    }
}
