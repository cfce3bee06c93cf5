//! Full-text search over every message (FTS5, Porter stemming, diacritics
//! folded), ranked by BM25 summed over each conversation's matching
//! messages, one hit per conversation with a highlighted snippet of its
//! best-matching message.
//!
//! What the user types is searched as words, not as FTS5 syntax: each word
//! is quoted, so `C++`, `don't` or `a:b` never produce a syntax error; a
//! trailing `*` keeps its prefix meaning (`stream*`).

use rusqlite::params;
use serde::Serialize;

use super::{ConversationId, MessageId, Store, StoreError};
use crate::chat::Role;

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
    /// about the subject beats one that mentions it once.
    pub score: f64,
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

/// Turn what the user typed into an FTS5 query: every word a quoted
/// phrase (all must match), `word*` a prefix. `None` when nothing is left.
pub(crate) fn fts_query(input: &str) -> Option<String> {
    let terms: Vec<String> = input
        .split_whitespace()
        .filter_map(|w| {
            let (word, prefix) = match w.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (w, false),
            };
            // Words made only of punctuation match nothing the tokenizer keeps.
            if !word.chars().any(char::is_alphanumeric) {
                return None;
            }
            let quoted = format!("\"{}\"", word.replace('"', "\"\""));
            Some(if prefix { format!("{quoted}*") } else { quoted })
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
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

impl Store {
    /// Conversations whose messages match `query`, best first, `limit` per
    /// page from `offset`. Archived conversations are included.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let Some(fts) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let limit = limit.clamp(1, super::history::MAX_PAGE);
        let conn = self.conn();
        // Rank conversations by their best message first, without snippets;
        // snippets are then made only for the page returned.
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
             SELECT r.conv, c.title, r.mid, m.role, m.model, r.n, r.total
             FROM ranked r
             JOIN conversations c ON c.id = r.conv
             JOIN messages m ON m.id = r.mid
             WHERE r.rn = 1
             ORDER BY r.total, r.score, c.updated_at DESC, r.conv DESC
             LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt
            .query_map(params![fts, limit as i64, offset as i64], |r| {
                let role: String = r.get(3)?;
                Ok(SearchHit {
                    conversation: ConversationId(r.get(0)?),
                    title: r.get(1)?,
                    message: MessageId(r.get(2)?),
                    role: if role == "assistant" {
                        Role::Assistant
                    } else {
                        Role::User
                    },
                    model: r.get(4)?,
                    snippet: Vec::new(),
                    matching_messages: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                    score: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut snip = conn.prepare_cached(
            "SELECT snippet(messages_fts, 0, ?3, ?4, '…', 16)
             FROM messages_fts WHERE messages_fts MATCH ?1 AND rowid = ?2",
        )?;
        let mut hits = rows;
        for hit in &mut hits {
            let raw: String = snip.query_row(
                params![fts, hit.message.0, OPEN.to_string(), CLOSE.to_string()],
                |r| r.get(0),
            )?;
            hit.snippet = split_snippet(&raw);
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_input_is_quoted_not_parsed() {
        assert_eq!(fts_query("rust sse").as_deref(), Some("\"rust\" \"sse\""));
        assert_eq!(fts_query("stream*").as_deref(), Some("\"stream\"*"));
        assert_eq!(
            fts_query("say \"hi\"").as_deref(),
            Some("\"say\" \"\"\"hi\"\"\"")
        );
        assert_eq!(fts_query("  -- ** "), None);
        assert_eq!(
            fts_query("C++ AND NOT x").as_deref(),
            Some("\"C++\" \"AND\" \"NOT\" \"x\"")
        );
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
