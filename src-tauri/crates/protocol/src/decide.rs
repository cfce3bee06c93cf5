//! Deciding between models: a vote on a round, a judge's verdict, and the
//! personal leaderboard built from blind votes. Money is integer
//! nano-dollars; ratings are on the Elo scale (1000 = an average model).

use serde::{Deserialize, Serialize};

/// What the user said about a round's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// One answer is the best (`Vote::winner`).
    Best,
    /// They are as good as each other.
    Tie,
    /// None is any good (counted as a tie between them).
    AllBad,
}

impl Verdict {
    /// The stored name: `best`, `tie`, `all_bad`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Best => "best",
            Verdict::Tie => "tie",
            Verdict::AllBad => "all_bad",
        }
    }

    /// The verdict stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "best" => Some(Verdict::Best),
            "tie" => Some(Verdict::Tie),
            "all_bad" => Some(Verdict::AllBad),
            _ => None,
        }
    }
}

/// A vote on one round: the answers that were compared (message ids), the
/// verdict, the winner when there is one, and whether the user voted
/// without seeing which model wrote which answer. Only blind votes count
/// on the leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The round's question (its user message id).
    pub round: i64,
    /// The answers compared (message ids), at least two.
    pub answers: Vec<i64>,
    /// The verdict.
    pub verdict: Verdict,
    /// The best answer (one of `answers`) when the verdict is `best`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<i64>,
    /// Names, costs and speeds were hidden when the round was first voted
    /// on (a changed vote replaces the round's and keeps this).
    pub blind: bool,
    /// When it was cast (Unix ms); set by the store.
    #[serde(default)]
    pub at_ms: i64,
}

/// A vote as the compare view casts it: by pane key, since a live answer's
/// message id is the engine's to know. The engine turns it into a [`Vote`]
/// on each pane's latest answer to the round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CastVote {
    /// The round's question (its user message id).
    pub round: i64,
    /// The panes whose answers were compared.
    pub panes: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// The pane whose answer is best, when the verdict is `best`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<String>,
    /// Names were hidden until this vote.
    pub blind: bool,
}

/// What a judge was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeTask {
    /// A verdict on which answer is best, with reasons.
    Verdict,
    /// One answer written from the best parts of all of them.
    Merge,
}

impl JudgeTask {
    /// The stored name: `verdict` or `merge`.
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeTask::Verdict => "verdict",
            JudgeTask::Merge => "merge",
        }
    }

    /// The task stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "verdict" => Some(JudgeTask::Verdict),
            "merge" => Some(JudgeTask::Merge),
            _ => None,
        }
    }
}

/// Ask a judge about a round: which of the panes' answers is best (or to
/// merge them). The judge sees them as "Answer A", "Answer B"… in the order
/// of `panes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeRequest {
    /// The round's question (its user message id).
    pub round: i64,
    /// The panes whose answers it judges, in order.
    pub panes: Vec<String>,
    /// The judge: `provider:model` or a route name.
    pub target: String,
    /// Verdict or merge.
    pub task: JudgeTask,
    /// The instructions (`None`: the default for the task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// A stream id that stops it (`stop_stream`, like a pane's answer); 0:
    /// only the app's exit stops it.
    #[serde(default)]
    pub stream_id: u64,
}

/// What a judge said, for the view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeVerdict {
    /// The judge as named.
    pub target: String,
    /// Verdict or merge.
    pub task: JudgeTask,
    /// Its text (untrusted model output).
    pub text: String,
    /// What it cost (nano-dollars), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_nanos: Option<i64>,
    /// That cost is an estimate.
    #[serde(default)]
    pub cost_estimated: bool,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Which pane each label stood for: `("A", pane key)`.
    pub labels: Vec<(String, String)>,
}

/// The default instructions for a verdict.
pub const DEFAULT_VERDICT_PROMPT: &str = "You are judging answers to the same question, \
written by different assistants. Decide which answer is best for the person who asked: \
correct first, then complete, clear and concise. Start with one line \"Verdict: Answer X\" \
(or \"Verdict: tie\"), then give your reasons in a few short points, naming any mistakes.";

/// The default instructions for a merge.
pub const DEFAULT_MERGE_PROMPT: &str = "You are given answers to the same question, written \
by different assistants. Write one answer that keeps the best and correct parts of each, \
drops their mistakes, and reads as a single answer to the person who asked. Do not mention \
the other answers.";

/// Which votes and ledger rows a leaderboard counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderboardQuery {
    /// Only conversations with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// From this time (Unix ms, inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    /// Until this time (Unix ms, exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
}

/// One model on the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderboardRow {
    /// `provider:model`.
    pub model: String,
    /// 1-based rank; `None` while the model has too few votes to rank.
    pub rank: Option<u32>,
    /// Bradley–Terry rating on the Elo scale.
    pub rating: f64,
    /// The 95% confidence interval of the rating.
    pub rating_low: f64,
    /// Its upper end.
    pub rating_high: f64,
    /// Fewer blind votes than [`LeaderboardRow::rank`] needs.
    pub too_few_votes: bool,
    /// Blind votes on rounds it answered.
    pub votes: u32,
    /// Of those, rounds where its answer was picked best.
    pub wins: u32,
    /// Of those, ties and "all bad".
    pub ties: u32,
    /// `wins / votes`.
    pub win_rate: f64,
    /// Median of what one of its answers cost (nano-dollars, exact; priced
    /// answers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_cost_nanos: Option<i64>,
    /// Median time to first token (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_ttft_ms: Option<f64>,
    /// Median output tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_tokens_per_s: Option<f64>,
    /// Answers behind the cost and speed columns.
    pub answers: u32,
    /// Expected score against the other rated models (0..1) per dollar of
    /// a median answer; `None` when the cost is unknown or zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_per_usd: Option<f64>,
}

/// A leaderboard: ranked models first (best first), then the ones with too
/// few votes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Leaderboard {
    /// What it counts.
    pub query: LeaderboardQuery,
    /// Blind votes counted.
    pub votes: u32,
    /// The rows.
    pub rows: Vec<LeaderboardRow>,
}

impl Leaderboard {
    /// The rows in "best value" order: most expected score per dollar
    /// first, unknown-cost rows last (in rating order).
    pub fn by_value(&self) -> Vec<&LeaderboardRow> {
        let mut rows: Vec<&LeaderboardRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| match (a.value_per_usd, b.value_per_usd) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_tasks_round_trip_their_stored_names() {
        for v in [Verdict::Best, Verdict::Tie, Verdict::AllBad] {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
        for t in [JudgeTask::Verdict, JudgeTask::Merge] {
            assert_eq!(JudgeTask::parse(t.as_str()), Some(t));
        }
        assert_eq!(Verdict::parse("bestest"), None);
    }
}
