//! Deciding between models: votes on rounds, judges' verdicts, and the
//! personal leaderboard.
//!
//! A vote is stored with its round (the user message the answers reply
//! to) and names the answers it compared, so a later regenerate or a
//! closed pane does not change what was judged. One vote per round: voting
//! again replaces it (the latest vote counts), and the replacement is as
//! blind as the round's first vote was. Only blind votes count on the
//! leaderboard. Every vote written, from the window or from an imported
//! export, is checked the same way ([`checked_vote`]).
//!
//! A judge's output is a row of `judgments`, not a message: it is no
//! pane's answer and no vote, but its cost is in the conversation's total
//! and in the ledger like any answer's; the app writes its ledger rows in
//! the transaction that writes it ([`Store::record_judgment`]), so one is
//! never without the other. It keeps which answer each of its anonymous
//! labels stood for.
//!
//! The leaderboard fits ratings to blind votes ([`crate::rating`]) and
//! joins per-model numbers from the ledger: the median cost of an answer
//! (the sum of its ledger rows, fallbacks included; priced answers only),
//! and the median time to first token and tokens per second of those
//! answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use switchboard_protocol::{
    JudgeTask, Leaderboard, LeaderboardQuery, LeaderboardRow, Verdict, Vote,
};

use super::history::cost_source_name;
use super::ledger::{PendingSettle, settle_in};
use super::time::now_ms;
use super::{ConversationId, MessageId, Store, StoreError, to_sql_u64};
use crate::chat::AttemptResult;
use crate::hooks::{
    BudgetDenied, BudgetGate, PendingReservation, Reservation, SettledCost, SpendContext,
};
use crate::money::Cost;
use crate::rating::{self, Game, MIN_VOTES};

/// A judge's verdict or merged answer, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Judgment {
    /// Its id.
    #[serde(default)]
    pub id: i64,
    /// The round it judged (its user message id).
    pub round: i64,
    /// Verdict or merge.
    pub task: JudgeTask,
    /// The instructions it was given (before the answers).
    pub prompt: String,
    /// Written (Unix ms).
    pub created_at_ms: i64,
    /// The judge as the user named it.
    pub target: String,
    /// The provider that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The verdict or merged answer.
    pub content: String,
    /// Why the request failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// What it cost (nano-dollars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_nanos: Option<i64>,
    /// Whether that cost is an estimate.
    #[serde(default)]
    pub cost_estimated: bool,
    /// Time to first token (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Total time (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    /// Which answer each label stood for: `("A", answer message id)`
    /// (empty for verdicts recorded before labels were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, i64)>,
}

/// What a judge said about a round, to record ([`Store::record_judgment`]).
#[derive(Debug, Clone, Copy)]
pub struct NewJudgment<'a> {
    /// The round (its user message).
    pub round: MessageId,
    /// Verdict or merge.
    pub task: JudgeTask,
    /// The instructions it was given.
    pub prompt: &'a str,
    /// The judge as the user named it.
    pub target: &'a str,
    /// How it went, its cost being that of all its billed attempts.
    pub result: &'a AttemptResult,
    /// Which answer each label stood for: `("A", answer message id)`.
    pub labels: &'a [(String, i64)],
}

impl Judgment {
    /// As the compare view shows it; `labels` says which pane each answer
    /// label stood for (the caller maps [`Judgment::labels`]' answers to
    /// their panes).
    pub fn into_verdict(self, labels: Vec<(String, String)>) -> switchboard_protocol::JudgeVerdict {
        switchboard_protocol::JudgeVerdict {
            target: self.target,
            task: self.task,
            text: self.content,
            cost_nanos: self.cost_nanos,
            cost_estimated: self.cost_estimated,
            error: self.error,
            labels,
        }
    }
}

fn is_answer_of(conn: &rusqlite::Connection, answer: i64, round: i64) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM messages WHERE id = ?1 AND parent_id = ?2 AND role = 'assistant'",
            params![answer, round],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Check `vote` against the database inside the transaction that writes
/// it, and return its round's conversation and its answers (sorted, each
/// once). Every path that writes a vote goes through here (the window's
/// vote, an imported export): a vote compares at least two answers, all of
/// them answers of its own round, and only a "best" vote names a winner,
/// one of them.
pub(crate) fn checked_vote(
    conn: &rusqlite::Connection,
    vote: &Vote,
) -> Result<(ConversationId, Vec<i64>), StoreError> {
    let mut answers = vote.answers.clone();
    answers.sort_unstable();
    answers.dedup();
    if answers.len() < 2 {
        return Err(StoreError::invalid("a vote compares at least two answers"));
    }
    match (vote.verdict, vote.winner) {
        (Verdict::Best, Some(w)) if answers.contains(&w) => {}
        (Verdict::Best, _) => {
            return Err(StoreError::invalid(
                "a \"best\" vote names one of the compared answers as the winner",
            ));
        }
        (_, Some(_)) => {
            return Err(StoreError::invalid("only a \"best\" vote has a winner"));
        }
        (_, None) => {}
    }
    let conversation = Store::round_conversation(conn, vote.round)?;
    for a in &answers {
        if !is_answer_of(conn, *a, vote.round)? {
            return Err(StoreError::invalid(format!(
                "message {a} is not an answer of round {}",
                vote.round
            )));
        }
    }
    Ok((conversation, answers))
}

/// Write a checked vote (see [`checked_vote`]) and its answers.
pub(crate) fn insert_vote(
    tx: &rusqlite::Transaction<'_>,
    conversation: ConversationId,
    vote: &Vote,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO votes (conversation_id, round_id, at, blind, verdict, winner_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            conversation.0,
            vote.round,
            vote.at_ms,
            vote.blind,
            vote.verdict.as_str(),
            vote.winner
        ],
    )?;
    let id = tx.last_insert_rowid();
    for a in &vote.answers {
        tx.execute(
            "INSERT INTO vote_answers (vote_id, message_id) VALUES (?1, ?2)",
            params![id, a],
        )?;
    }
    Ok(id)
}

impl Store {
    /// The conversation of the round `round` (a user message).
    fn round_conversation(
        conn: &rusqlite::Connection,
        round: i64,
    ) -> Result<ConversationId, StoreError> {
        conn.query_row(
            "SELECT conversation_id FROM messages WHERE id = ?1 AND role = 'user'",
            [round],
            |r| r.get(0).map(ConversationId),
        )
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "round",
            id: round,
        })
    }

    /// Record a vote on a round, replacing an earlier one: the latest vote
    /// of a round is the one that counts. A replacement is as blind as the
    /// round's first vote (changing one's mind after the reveal corrects
    /// the round's vote; it does not make a round blind that was not).
    /// Returns the vote as stored.
    pub fn record_vote(&self, vote: &Vote) -> Result<Vote, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (conversation, answers) = checked_vote(&tx, vote)?;
        let earlier: Option<bool> = tx
            .query_row(
                "SELECT blind FROM votes WHERE round_id = ?1 ORDER BY id LIMIT 1",
                [vote.round],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute("DELETE FROM votes WHERE round_id = ?1", [vote.round])?;
        let stored = Vote {
            round: vote.round,
            answers,
            verdict: vote.verdict,
            winner: vote.winner,
            blind: earlier.unwrap_or(vote.blind),
            at_ms: now_ms(),
        };
        insert_vote(&tx, conversation, &stored)?;
        tx.commit()?;
        Ok(stored)
    }

    /// The latest answer of the pane `key` to `round`, if it has one.
    pub fn answer_of_pane(
        &self,
        round: MessageId,
        key: &str,
    ) -> Result<Option<MessageId>, StoreError> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT m.id FROM messages m JOIN panes p ON p.id = m.pane_id
                 WHERE m.parent_id = ?1 AND m.role = 'assistant' AND p.key = ?2
                 ORDER BY m.id DESC LIMIT 1",
                params![round.0, key],
                |r| r.get(0).map(MessageId),
            )
            .optional()?)
    }

    /// The votes of a conversation, oldest round first.
    pub fn votes(&self, conversation: ConversationId) -> Result<Vec<Vote>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT v.id, v.round_id, v.at, v.blind, v.verdict, v.winner_id, va.message_id
             FROM votes v JOIN vote_answers va ON va.vote_id = v.id
             WHERE v.conversation_id = ?1 ORDER BY v.round_id, va.message_id",
        )?;
        let mut rows = stmt.query([conversation.0])?;
        let mut out: Vec<(i64, Vote)> = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let answer: i64 = r.get(6)?;
            if let Some((last, v)) = out.last_mut()
                && *last == id
            {
                v.answers.push(answer);
                continue;
            }
            let verdict: String = r.get(4)?;
            out.push((
                id,
                Vote {
                    round: r.get(1)?,
                    at_ms: r.get(2)?,
                    blind: r.get(3)?,
                    verdict: Verdict::parse(&verdict).unwrap_or(Verdict::Tie),
                    winner: r.get(5)?,
                    answers: vec![answer],
                },
            ));
        }
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }

    /// Record what a judge said about a round and, in the same
    /// transaction, settle its attempts into the ledger (`settles`: the
    /// holds the router settled for it, deferred until now). Either both
    /// are written or neither: the ledger never has a judge's row without
    /// its verdict in history. With no settles, its cost must already be
    /// in the ledger. Returns the stored row.
    pub fn record_judgment(
        &self,
        new: &NewJudgment<'_>,
        settles: &[PendingSettle],
    ) -> Result<Judgment, StoreError> {
        let NewJudgment {
            round,
            task,
            prompt,
            target,
            result,
            labels,
        } = *new;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let conversation = Self::round_conversation(&tx, round.0)?;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let j = Judgment {
            id: 0,
            round: round.0,
            task,
            prompt: prompt.to_owned(),
            created_at_ms: now_ms(),
            target: target.to_owned(),
            provider: Some(result.provider.clone()).filter(|p| !p.is_empty()),
            model: Some(result.model.clone()).filter(|m| !m.is_empty()),
            content: result.text.clone(),
            error: result.error.as_ref().map(|e| e.message.clone()),
            input_tokens: result.usage.input_tokens,
            output_tokens: result.usage.output_tokens,
            cost_nanos: result.cost.map(|c| c.total.nanos()),
            cost_estimated: result.cost.is_some_and(|c| c.estimated()),
            ttft_ms: result.timing.ttft.map(ms),
            total_ms: Some(ms(result.timing.total)),
            labels: labels.to_vec(),
        };
        for s in settles {
            settle_in(&tx, &s.reservation, s.actual.as_ref(), s.at)?;
        }
        let id = insert_judgment(
            &tx,
            conversation,
            &j,
            result.error.as_ref().map(|e| e.kind.as_str()),
            result.cost.map(|c| cost_source_name(c.source)),
            result.timing.tokens_per_s,
        )?;
        tx.execute(
            "UPDATE conversations SET updated_at = max(updated_at, ?2) WHERE id = ?1",
            params![conversation.0, j.created_at_ms],
        )?;
        tx.commit()?;
        Ok(Judgment { id, ..j })
    }

    /// Record a judge's verdict with the settles `deferred` kept for it
    /// (see [`Store::record_judgment`]), trying a busy database again.
    /// When the verdict cannot be written at all (its round was deleted
    /// meanwhile, the disk keeps failing), its cost is written alone, not
    /// attributed to the conversation: money spent is never dropped from
    /// the ledger, the conversation's total still matches its ledger rows,
    /// and the error says where the cost went.
    pub fn record_judged(
        &self,
        new: &NewJudgment<'_>,
        deferred: &DeferredSettles,
    ) -> Result<Judgment, StoreError> {
        let settles = deferred.take();
        let mut tries = 1;
        loop {
            match self.record_judgment(new, &settles) {
                Ok(j) => return Ok(j),
                // A busy or failing database may recover; a round that is
                // gone will not come back.
                Err(StoreError::Sqlite(_)) if tries < RECORD_TRIES => {
                    std::thread::sleep(RECORD_RETRY * 2u32.pow(tries - 1));
                    tries += 1;
                }
                Err(e) => {
                    let cost = new.result.cost.map_or_else(
                        || "an unknown amount".to_owned(),
                        |c| format!("${}", c.total.usd()),
                    );
                    deferred.settle_unattributed(settles);
                    return Err(StoreError::invalid(format!(
                        "the judge's verdict could not be saved ({e}); what it cost ({cost}) is \
                         in the spend ledger"
                    )));
                }
            }
        }
    }

    /// The judgments of a conversation, oldest first.
    pub fn judgments(&self, conversation: ConversationId) -> Result<Vec<Judgment>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, round_id, task, prompt, created_at, target, provider, model, content,
                    error_message, input_tokens, output_tokens, cost_nanos, cost_source,
                    ttft_ms, total_ms, labels
             FROM judgments WHERE conversation_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([conversation.0], |r| {
                let task: String = r.get(2)?;
                let source: Option<String> = r.get(13)?;
                Ok(Judgment {
                    id: r.get(0)?,
                    round: r.get(1)?,
                    task: JudgeTask::parse(&task).unwrap_or(JudgeTask::Verdict),
                    prompt: r.get(3)?,
                    created_at_ms: r.get(4)?,
                    target: r.get(5)?,
                    provider: r.get(6)?,
                    model: r.get(7)?,
                    content: r.get(8)?,
                    error: r.get(9)?,
                    input_tokens: super::from_sql_u64(r.get(10)?),
                    output_tokens: super::from_sql_u64(r.get(11)?),
                    cost_nanos: r.get(12)?,
                    cost_estimated: source.as_deref() == Some("estimated"),
                    ttft_ms: r.get(14)?,
                    total_ms: r.get(15)?,
                    // Unreadable labels only cost the "Answer A = …" line.
                    labels: r
                        .get::<_, Option<String>>(16)?
                        .and_then(|l| serde_json::from_str(&l).ok())
                        .unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The leaderboard for `query`: ratings from blind votes, with the
    /// ledger's numbers per model.
    pub fn leaderboard(&self, query: &LeaderboardQuery) -> Result<Leaderboard, StoreError> {
        let from = query.from_ms.unwrap_or(i64::MIN);
        let to = query.to_ms.unwrap_or(i64::MAX);
        let tag = query
            .tag
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let conn = self.reader();
        // (vote, verdict, winner answer, answer, model)
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT v.id, v.verdict, v.winner_id, va.message_id, {MODEL_KEY}
             FROM votes v
             JOIN vote_answers va ON va.vote_id = v.id
             JOIN messages m ON m.id = va.message_id
             WHERE v.blind = 1 AND v.at >= ?1 AND v.at < ?2 AND ({TAGGED})
             ORDER BY v.id, va.message_id",
            TAGGED = tagged("v.conversation_id")
        ))?;
        let mut rows = stmt.query(params![from, to, tag])?;
        struct Ballot {
            verdict: Verdict,
            winner: Option<String>,
            models: Vec<String>,
        }
        let mut ballots: Vec<(i64, Ballot)> = Vec::new();
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let verdict: String = r.get(1)?;
            let winner: Option<i64> = r.get(2)?;
            let answer: i64 = r.get(3)?;
            let model: String = r.get(4)?;
            if ballots.last().is_none_or(|(last, _)| *last != id) {
                ballots.push((
                    id,
                    Ballot {
                        verdict: Verdict::parse(&verdict).unwrap_or(Verdict::Tie),
                        winner: None,
                        models: Vec::new(),
                    },
                ));
            }
            if let Some((_, b)) = ballots.last_mut() {
                if winner == Some(answer) {
                    b.winner = Some(model.clone());
                }
                if !b.models.contains(&model) {
                    b.models.push(model);
                }
            }
        }
        drop(rows);
        drop(stmt);

        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (_, b) in &ballots {
            for m in &b.models {
                let next = index.len();
                index.entry(m.clone()).or_insert(next);
            }
        }
        let names: Vec<String> = {
            let mut v = vec![String::new(); index.len()];
            for (name, i) in &index {
                v[*i] = name.clone();
            }
            v
        };
        let mut games = Vec::new();
        let mut tally = vec![(0u32, 0u32, 0u32); names.len()]; // votes, wins, ties
        let mut counted = 0u32;
        for (_, b) in &ballots {
            if b.models.len() < 2 {
                // The same model twice: nothing to compare.
                continue;
            }
            counted += 1;
            let ids: Vec<usize> = b
                .models
                .iter()
                .filter_map(|m| index.get(m).copied())
                .collect();
            for i in &ids {
                tally[*i].0 += 1;
            }
            match (b.verdict, b.winner.as_ref().and_then(|w| index.get(w))) {
                (Verdict::Best, Some(w)) => {
                    tally[*w].1 += 1;
                    for other in ids.iter().filter(|o| *o != w) {
                        games.push(Game {
                            a: *w,
                            b: *other,
                            score_a: 1.0,
                        });
                    }
                }
                _ => {
                    for i in &ids {
                        tally[*i].2 += 1;
                    }
                    for (k, a) in ids.iter().enumerate() {
                        for b in &ids[k + 1..] {
                            games.push(Game {
                                a: *a,
                                b: *b,
                                score_a: 0.5,
                            });
                        }
                    }
                }
            }
        }
        let ratings = rating::fit(names.len(), &games);
        let ledger = answer_numbers(&conn, from, to, tag)?;

        let mut rows: Vec<LeaderboardRow> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let r = ratings[i];
                let (low, high) = r.elo_interval();
                let (votes, wins, ties) = tally[i];
                let numbers = ledger.get(name);
                let median_cost = numbers.and_then(|n| median_i64(&n.costs));
                let others: Vec<f64> = ratings
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, o)| r.p_beats(o))
                    .collect();
                let expected = if others.is_empty() {
                    0.5
                } else {
                    others.iter().sum::<f64>() / others.len() as f64
                };
                LeaderboardRow {
                    model: name.clone(),
                    rank: None,
                    rating: r.elo(),
                    rating_low: low,
                    rating_high: high,
                    too_few_votes: votes < MIN_VOTES,
                    votes,
                    wins,
                    ties,
                    win_rate: if votes == 0 {
                        0.0
                    } else {
                        f64::from(wins) / f64::from(votes)
                    },
                    median_cost_nanos: median_cost,
                    median_ttft_ms: numbers.and_then(|n| median_f64(&n.ttft)),
                    median_tokens_per_s: numbers.and_then(|n| median_f64(&n.tps)),
                    answers: numbers.map_or(0, |n| u32::try_from(n.answers).unwrap_or(u32::MAX)),
                    value_per_usd: median_cost
                        .filter(|c| *c > 0)
                        .map(|c| expected / (c as f64 / 1e9)),
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            a.too_few_votes
                .cmp(&b.too_few_votes)
                .then(b.rating.total_cmp(&a.rating))
                .then(a.model.cmp(&b.model))
        });
        let mut rank = 0;
        for row in rows.iter_mut().filter(|r| !r.too_few_votes) {
            rank += 1;
            row.rank = Some(rank);
        }
        Ok(Leaderboard {
            query: query.clone(),
            votes: counted,
            rows,
        })
    }
}

/// An answer's model: `provider:model` as it answered, else the target.
const MODEL_KEY: &str = "CASE WHEN m.provider IS NOT NULL AND m.model IS NOT NULL
    THEN m.provider || ':' || m.model ELSE coalesce(m.target, '?') END";

/// The tag filter (`?3`, NULL for none) on a conversation id column.
fn tagged(column: &str) -> String {
    format!(
        "?3 IS NULL OR EXISTS (SELECT 1 FROM conversation_tags t
            WHERE t.conversation_id = {column} AND t.tag = ?3)"
    )
}

#[derive(Default)]
struct Numbers {
    answers: usize,
    costs: Vec<i64>,
    ttft: Vec<f64>,
    tps: Vec<f64>,
}

/// Per model, what its answers cost and how fast they came, from the
/// ledger rows that name an answer.
fn answer_numbers(
    conn: &rusqlite::Connection,
    from: i64,
    to: i64,
    tag: Option<&str>,
) -> Result<HashMap<String, Numbers>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MODEL_KEY}, sum(l.cost_nanos), min(l.priced), m.ttft_ms, m.tokens_per_s
         FROM ledger l JOIN messages m ON m.id = l.message
         WHERE l.at >= ?1 AND l.at < ?2 AND ({TAGGED})
         GROUP BY l.message",
        TAGGED = tagged("m.conversation_id")
    ))?;
    let mut out: HashMap<String, Numbers> = HashMap::new();
    let mut rows = stmt.query(params![from, to, tag])?;
    while let Some(r) = rows.next()? {
        let n = out.entry(r.get(0)?).or_default();
        n.answers += 1;
        let cost: i64 = r.get(1)?;
        let priced: bool = r.get(2)?;
        if priced {
            n.costs.push(cost);
        }
        if let Some(t) = r.get::<_, Option<f64>>(3)? {
            n.ttft.push(t);
        }
        if let Some(t) = r.get::<_, Option<f64>>(4)? {
            n.tps.push(t);
        }
    }
    Ok(out)
}

/// The median, exact: the mean of the middle two rounded down.
fn median_i64(v: &[i64]) -> Option<i64> {
    let mut v = v.to_vec();
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(
            i64::try_from((i128::from(v[n / 2 - 1]) + i128::from(v[n / 2])).div_euclid(2))
                .unwrap_or(i64::MAX),
        ),
    }
}

fn median_f64(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

pub(crate) fn insert_judgment(
    tx: &rusqlite::Transaction<'_>,
    conversation: ConversationId,
    j: &Judgment,
    error_kind: Option<&str>,
    cost_source: Option<&str>,
    tokens_per_s: Option<f64>,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO judgments (conversation_id, round_id, task, prompt, created_at, target,
            provider, model, content, error_kind, error_message, input_tokens, output_tokens,
            cost_nanos, cost_source, ttft_ms, total_ms, tokens_per_s, labels)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19)",
        params![
            conversation.0,
            j.round,
            j.task.as_str(),
            j.prompt,
            j.created_at_ms,
            j.target,
            j.provider,
            j.model,
            j.content,
            error_kind,
            j.error,
            to_sql_u64(j.input_tokens),
            to_sql_u64(j.output_tokens),
            j.cost_nanos,
            cost_source,
            j.ttft_ms,
            j.total_ms,
            tokens_per_s,
            (!j.labels.is_empty())
                .then(|| serde_json::to_string(&j.labels).ok())
                .flatten(),
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// How many times a verdict and its cost are offered to the database (a
/// busy or briefly failing one) before the cost is written alone.
const RECORD_TRIES: u32 = 3;

/// The wait before the second try, doubled for each one after.
const RECORD_RETRY: Duration = Duration::from_millis(100);

/// A budget gate for a judge's router: it holds and checkpoints through
/// `inner` but keeps the settles, for [`Store::record_judged`] to write
/// with the verdict. Settles nobody took (no verdict is recorded: an
/// incognito run) are written through `inner` when it is dropped.
#[derive(Debug)]
pub struct DeferredSettles {
    inner: Arc<dyn BudgetGate>,
    settled: Mutex<Vec<PendingSettle>>,
}

impl DeferredSettles {
    /// Defer the settles of `inner`.
    pub fn new(inner: Arc<dyn BudgetGate>) -> Self {
        Self {
            inner,
            settled: Mutex::new(Vec::new()),
        }
    }

    /// The settles kept so far (and forget them).
    fn take(&self) -> Vec<PendingSettle> {
        self.settled
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Write `settles` through the gate after all, each on its own, no
    /// longer attributed to the conversation: its history could not take
    /// the verdict, so its total and its ledger rows still agree, while
    /// the spend (and any budget's count, tags included) keeps the money.
    fn settle_unattributed(&self, settles: Vec<PendingSettle>) {
        for mut s in settles {
            s.reservation.context.conversation = None;
            self.inner.settle(s.reservation, s.actual);
        }
    }
}

impl Drop for DeferredSettles {
    fn drop(&mut self) {
        for s in self.take() {
            self.inner.settle(s.reservation, s.actual);
        }
    }
}

impl BudgetGate for DeferredSettles {
    fn reserve(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Result<Reservation, BudgetDenied> {
        self.inner.reserve(ctx, estimate)
    }

    fn checkpoint(&self, reservation: &Reservation, progress: &AttemptResult) {
        self.inner.checkpoint(reservation, progress);
    }

    fn settle(&self, reservation: Reservation, actual: Option<SettledCost>) {
        let kept = PendingSettle {
            reservation,
            actual,
            at: now_ms(),
        };
        match self.settled.lock() {
            Ok(mut s) => s.push(kept),
            // Never lose a settle: write it now instead.
            Err(_) => self.inner.settle(kept.reservation, kept.actual),
        }
    }

    fn queues_writes(&self) -> bool {
        self.inner.queues_writes()
    }

    fn reserve_queued(
        &self,
        ctx: &SpendContext,
        estimate: Option<Cost>,
    ) -> Option<PendingReservation> {
        self.inner.reserve_queued(ctx, estimate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_exact_for_money() {
        assert_eq!(median_i64(&[]), None);
        assert_eq!(median_i64(&[5, 1, 3]), Some(3));
        assert_eq!(median_i64(&[1, 4]), Some(2));
        assert_eq!(median_i64(&[i64::MAX, i64::MAX]), Some(i64::MAX));
        assert_eq!(median_f64(&[1.0, 4.0]), Some(2.5));
    }
}
