//! A conversation of the compare view: its panes and its rounds, as saved
//! and reopened, and the rule that decides what each model is sent.
//!
//! A pane is an identity, not a position: it has a stable `key` (chosen by
//! the UI when the pane is made, saved with every answer it shows), a target,
//! its own settings, and its own thread. "Continue with this" and removing a
//! pane change the order of the panes, never whose answers are whose.
//!
//! The thread a pane sends is its own earlier rounds: each prompt it was sent
//! and its own answer to it. A pane added after "Continue with this" starts
//! from the chosen pane's thread instead (a [`PaneFork`]): for the rounds
//! before it was added it inherits that pane's prompts and answers, then it
//! goes on with its own. [`thread`] is that rule, shared by the engine (which
//! tests it on reopened conversations) and the UI (which builds requests with
//! it), so the two cannot disagree.
//!
//! ```
//! use switchboard_protocol::{PaneFork, ThreadSource, TurnRole, thread};
//! /// Round 0: two panes answered; pane "c" was added later, from "b".
//! struct Demo;
//! impl ThreadSource for Demo {
//!     fn fork(&self, pane: &str) -> Option<PaneFork> {
//!         (pane == "c").then(|| PaneFork { pane: "b".into(), rounds: 1 })
//!     }
//!     fn prompt(&self, _round: usize) -> Option<String> {
//!         Some("hi".into())
//!     }
//!     fn answer(&self, _round: usize, pane: &str) -> Option<String> {
//!         (pane != "c").then(|| format!("{pane} says hi"))
//!     }
//! }
//! let turns = thread(&Demo, "c", 1);
//! assert_eq!(turns.len(), 2);
//! assert_eq!(turns[1].role, TurnRole::Assistant);
//! assert_eq!(turns[1].content, "b says hi");
//! assert_eq!(thread(&Demo, "a", 1)[1].content, "a says hi");
//! ```

use serde::{Deserialize, Serialize};

use crate::chat::{AnswerSummary, PaneParams, Turn, TurnRole};

/// The longest chain of forks followed (a pane forked from a pane forked
/// from ...); a cycle, which the UI never makes, stops there.
const MAX_FORK_DEPTH: usize = 64;

/// Where a pane's first rounds come from: another pane's thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneFork {
    /// The pane it continues (its key).
    pub pane: String,
    /// How many rounds, from the first, come from that pane.
    pub rounds: u32,
}

/// A pane as the view lays it out: saved with [`PaneLayout`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaneSpec {
    /// Its stable id within the conversation (letters, digits, `-`, `_`,
    /// `:`, `#`, `.`; at most 64).
    pub key: String,
    /// `provider:model` or `@route` (empty until a model is picked).
    pub target: String,
    /// Its system prompt, temperature and max tokens.
    pub params: PaneParams,
    /// The thread it continues, when it was added after "Continue with this".
    #[serde(default)]
    pub fork: Option<PaneFork>,
    /// The round (0-based) whose answer in this pane was chosen with
    /// "Continue with this".
    #[serde(default)]
    pub chosen_round: Option<u32>,
}

impl PaneSpec {
    /// A pane with `key` and `target`, default settings, its own thread.
    pub fn new(key: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            target: target.into(),
            params: PaneParams::default(),
            fork: None,
            chosen_round: None,
        }
    }
}

/// The open panes of a conversation, in order. `rev` grows with every
/// change the view makes; a layout older than the saved one is ignored, so
/// saves that overtake each other cannot bring back an old layout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaneLayout {
    /// Revision: more than the last saved one (see [`SavedConversation::layout_rev`]).
    pub rev: u64,
    /// The open panes, left to right. Panes of the conversation that are
    /// not listed are closed (their answers stay in history).
    pub panes: Vec<PaneSpec>,
}

/// Save the pane layout of a recorded conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavePanes {
    /// The conversation.
    pub conversation: i64,
    /// Its panes.
    pub layout: PaneLayout,
}

/// Where to record a pane's answer in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordAt {
    /// The conversation.
    pub conversation: i64,
    /// The user message the answer replies to.
    pub user_message: i64,
    /// The key of the pane that shows it.
    pub pane: String,
}

/// Start a round: record the user's prompt (in a new conversation when
/// `conversation` is `None`) and the panes it goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRound {
    /// The conversation to continue, if any.
    pub conversation: Option<i64>,
    /// The prompt.
    pub prompt: String,
    /// The prompt's images and PDFs (stored already), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::AttachmentRef>,
    /// The panes as they are when the prompt is sent (saved first, so every
    /// answer of the round finds its pane).
    #[serde(default)]
    pub layout: Option<PaneLayout>,
}

/// The ids a round was recorded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundIds {
    /// The conversation.
    pub conversation: i64,
    /// The user's message.
    pub user_message: i64,
}

/// A pane's answer as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedAnswer {
    /// The key of the pane that showed it.
    pub pane: String,
    /// The target the pane used.
    pub target: String,
    /// The text.
    pub text: String,
    /// Reasoning text.
    pub reasoning: String,
    /// The readout.
    pub summary: AnswerSummary,
    /// The stored message's id (search results jump to it).
    pub message: i64,
}

/// A prompt and the answers it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRound {
    /// The user's message id.
    pub user_message: i64,
    /// The prompt.
    pub prompt: String,
    /// The prompt's images and PDFs, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::AttachmentRef>,
    /// The latest answer of each pane that answered it.
    pub answers: Vec<SavedAnswer>,
    /// The answer this round continued from (the one chosen with "Continue
    /// with this" in the round before), when there is one.
    #[serde(default)]
    pub follows: Option<i64>,
    /// The user's vote on this round, when there is one (a reopened
    /// round shows it instead of the vote buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote: Option<crate::Vote>,
    /// What judges said about this round, oldest first, with their costs
    /// (part of the conversation's total). Labels are not kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judgments: Vec<crate::JudgeVerdict>,
}

/// A pane as saved: open ones are shown, closed ones keep their answers
/// (and may be the start of another pane's thread).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPane {
    /// Its key, as in [`PaneSpec::key`] and [`SavedAnswer::pane`].
    pub key: String,
    /// Its target.
    pub target: String,
    /// Its settings.
    pub params: PaneParams,
    /// The thread it continues.
    pub fork: Option<PaneFork>,
    /// The round whose answer was chosen with "Continue with this".
    pub chosen_round: Option<u32>,
    /// Shown (in `panes` order) or closed.
    pub open: bool,
}

impl SavedPane {
    /// The same pane as a layout entry.
    pub fn spec(&self) -> PaneSpec {
        PaneSpec {
            key: self.key.clone(),
            target: self.target.clone(),
            params: self.params.clone(),
            fork: self.fork.clone(),
            chosen_round: self.chosen_round,
        }
    }
}

/// A conversation reopened from history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedConversation {
    /// Its id.
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Its panes: the open ones left to right, then the closed ones.
    pub panes: Vec<SavedPane>,
    /// Its rounds, oldest first.
    pub rounds: Vec<SavedRound>,
    /// Its tags (spend is attributed to them).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The revision of the saved layout; the next save uses more.
    #[serde(default)]
    pub layout_rev: u64,
}

impl SavedConversation {
    /// The open panes, left to right.
    pub fn open_panes(&self) -> impl Iterator<Item = &SavedPane> {
        self.panes.iter().filter(|p| p.open)
    }

    /// The answer of pane `key` to round `round`.
    pub fn answer(&self, round: usize, key: &str) -> Option<&SavedAnswer> {
        self.rounds
            .get(round)?
            .answers
            .iter()
            .find(|a| a.pane == key)
    }

    /// The turns pane `key` sends before round `before` (pass the number
    /// of rounds for the next prompt), that prompt excluded.
    pub fn thread(&self, key: &str, before: usize) -> Vec<Turn> {
        thread(self, key, before)
    }
}

impl ThreadSource for SavedConversation {
    fn fork(&self, pane: &str) -> Option<PaneFork> {
        self.panes.iter().find(|p| p.key == pane)?.fork.clone()
    }

    fn prompt(&self, round: usize) -> Option<String> {
        self.rounds.get(round).map(|r| r.prompt.clone())
    }

    fn attachments(&self, round: usize) -> Vec<crate::AttachmentRef> {
        self.rounds
            .get(round)
            .map(|r| r.attachments.clone())
            .unwrap_or_default()
    }

    fn answer(&self, round: usize, pane: &str) -> Option<String> {
        self.answer(round, pane)
            .filter(|a| a.summary.error.is_none())
            .map(|a| a.text.clone())
    }
}

/// What a thread is computed from: a saved conversation, or the one on
/// screen.
pub trait ThreadSource {
    /// The fork of pane `pane`, if it has one.
    fn fork(&self, pane: &str) -> Option<PaneFork>;
    /// The prompt of round `round` (0-based).
    fn prompt(&self, round: usize) -> Option<String>;
    /// The images and PDFs the prompt of round `round` carried, in order
    /// (every later turn sends them again).
    fn attachments(&self, _round: usize) -> Vec<crate::AttachmentRef> {
        Vec::new()
    }
    /// Pane `pane`'s answer to round `round`, when it has one that ended
    /// well (a failed or stopped answer is not part of any thread).
    fn answer(&self, round: usize, pane: &str) -> Option<String>;
}

/// The pane whose answer to `round` belongs to `pane`'s thread: the pane
/// itself, or for rounds before it was forked, the pane it continues.
pub fn answerer<S: ThreadSource + ?Sized>(source: &S, pane: &str, round: usize) -> String {
    let mut who = pane.to_owned();
    for _ in 0..MAX_FORK_DEPTH {
        match source.fork(&who) {
            Some(f) if round < f.rounds as usize && f.pane != who => who = f.pane,
            _ => break,
        }
    }
    who
}

/// The turns pane `pane` sends before round `before`: for each earlier
/// round, the prompt and the answer of [`answerer`], when that answer ended
/// well; a round without one is left out whole, so user and assistant turns
/// alternate.
pub fn thread<S: ThreadSource + ?Sized>(source: &S, pane: &str, before: usize) -> Vec<Turn> {
    let mut turns = Vec::new();
    for round in 0..before {
        let who = answerer(source, pane, round);
        let (Some(text), Some(prompt)) = (source.answer(round, &who), source.prompt(round)) else {
            continue;
        };
        turns.push(Turn {
            role: TurnRole::User,
            content: prompt,
            attachments: source.attachments(round),
        });
        turns.push(Turn {
            role: TurnRole::Assistant,
            content: text,
            attachments: Vec::new(),
        });
    }
    turns
}

/// The fork of a pane added now, after `rounds` rounds: it continues the
/// pane chosen with "Continue with this" (the last one, if several are
/// open), or the only open pane; with several open panes and none chosen it
/// starts its own thread. `open` lists the open panes as `(key, chosen_round)`.
pub fn fork_for_new_pane(open: &[(&str, Option<u32>)], rounds: u32) -> Option<PaneFork> {
    if rounds == 0 {
        return None;
    }
    let from = open
        .iter()
        .rev()
        .find(|(_, chosen)| chosen.is_some())
        .or_else(|| (open.len() == 1).then(|| &open[0]))?;
    Some(PaneFork {
        pane: from.0.to_owned(),
        rounds,
    })
}

/// Whether `key` is a usable pane key.
pub fn valid_pane_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '#' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(error: bool) -> AnswerSummary {
        let mut s = AnswerSummary::failure("p:m", "interrupted", String::new());
        if !error {
            s.error = None;
        }
        s
    }

    fn answer(pane: &str, text: &str, error: bool) -> SavedAnswer {
        SavedAnswer {
            pane: pane.into(),
            target: format!("{pane}:model"),
            text: text.into(),
            reasoning: String::new(),
            summary: summary(error),
            message: 0,
        }
    }

    fn pane(key: &str, open: bool, fork: Option<(&str, u32)>) -> SavedPane {
        SavedPane {
            key: key.into(),
            target: format!("{key}:model"),
            params: PaneParams::default(),
            fork: fork.map(|(p, rounds)| PaneFork {
                pane: p.into(),
                rounds,
            }),
            chosen_round: None,
            open,
        }
    }

    fn round(prompt: &str, answers: Vec<SavedAnswer>) -> SavedRound {
        SavedRound {
            user_message: 0,
            prompt: prompt.into(),
            attachments: Vec::new(),
            answers,
            follows: None,
            vote: None,
            judgments: Vec::new(),
        }
    }

    fn contents(turns: &[Turn]) -> Vec<&str> {
        turns.iter().map(|t| t.content.as_str()).collect()
    }

    #[test]
    fn each_pane_sends_only_its_own_answers_and_skips_rounds_it_failed() {
        let conv = SavedConversation {
            id: 1,
            title: String::new(),
            panes: vec![pane("a", true, None), pane("b", true, None)],
            rounds: vec![
                round(
                    "q1",
                    vec![answer("a", "a1", false), answer("b", "b1", false)],
                ),
                round(
                    "q2",
                    vec![answer("a", "a2", true), answer("b", "b2", false)],
                ),
                round("q3", vec![answer("b", "b3", false)]),
            ],
            tags: Vec::new(),
            layout_rev: 0,
        };
        assert_eq!(contents(&conv.thread("a", 3)), ["q1", "a1"]);
        assert_eq!(
            contents(&conv.thread("b", 3)),
            ["q1", "b1", "q2", "b2", "q3", "b3"]
        );
        assert_eq!(contents(&conv.thread("b", 1)), ["q1", "b1"], "regenerate");
        assert!(conv.thread("nobody", 3).is_empty());
        let roles: Vec<TurnRole> = conv.thread("b", 3).iter().map(|t| t.role).collect();
        assert_eq!(
            roles,
            [
                TurnRole::User,
                TurnRole::Assistant,
                TurnRole::User,
                TurnRole::Assistant,
                TurnRole::User,
                TurnRole::Assistant
            ]
        );
    }

    #[test]
    fn a_forked_pane_inherits_the_chosen_thread_then_goes_on_with_its_own() {
        // b was chosen after round 0 and answered round 1 alone; c was
        // added then (fork of b for 2 rounds); d was forked from c later.
        let conv = SavedConversation {
            id: 1,
            title: String::new(),
            panes: vec![
                pane("b", true, None),
                pane("c", true, Some(("b", 2))),
                pane("d", true, Some(("c", 3))),
                pane("a", false, None),
            ],
            rounds: vec![
                round(
                    "q1",
                    vec![answer("a", "a1", false), answer("b", "b1", false)],
                ),
                round("q2", vec![answer("b", "b2", false)]),
                round(
                    "q3",
                    vec![answer("b", "b3", false), answer("c", "c3", false)],
                ),
                round("q4", vec![answer("d", "d4", false)]),
            ],
            tags: Vec::new(),
            layout_rev: 0,
        };
        assert_eq!(
            contents(&conv.thread("c", 4)),
            ["q1", "b1", "q2", "b2", "q3", "c3"]
        );
        assert_eq!(
            contents(&conv.thread("d", 5)),
            ["q1", "b1", "q2", "b2", "q3", "c3", "q4", "d4"]
        );
        assert_eq!(contents(&conv.thread("a", 4)), ["q1", "a1"]);
        assert_eq!(answerer(&conv, "d", 0), "b");
        assert_eq!(answerer(&conv, "d", 2), "c");
        assert_eq!(answerer(&conv, "d", 3), "d");
    }

    #[test]
    fn a_fork_cycle_ends_instead_of_looping() {
        let conv = SavedConversation {
            id: 1,
            title: String::new(),
            panes: vec![
                pane("a", true, Some(("b", 1))),
                pane("b", true, Some(("a", 1))),
            ],
            rounds: vec![round("q1", vec![answer("a", "a1", false)])],
            tags: Vec::new(),
            layout_rev: 0,
        };
        let turns = conv.thread("a", 1);
        assert!(turns.len() <= 2);
    }

    #[test]
    fn a_new_pane_continues_the_chosen_or_only_pane() {
        assert_eq!(fork_for_new_pane(&[("a", None)], 0), None, "nothing yet");
        assert_eq!(
            fork_for_new_pane(&[("a", None)], 2),
            Some(PaneFork {
                pane: "a".into(),
                rounds: 2
            })
        );
        assert_eq!(fork_for_new_pane(&[("a", None), ("b", None)], 2), None);
        assert_eq!(
            fork_for_new_pane(&[("a", None), ("b", Some(0)), ("c", None)], 3),
            Some(PaneFork {
                pane: "b".into(),
                rounds: 3
            })
        );
    }

    #[test]
    fn pane_keys_are_short_and_plain() {
        assert!(valid_pane_key("p-1a2b"));
        assert!(valid_pane_key("legacy:openai:gpt-x#1"));
        assert!(!valid_pane_key(""));
        assert!(!valid_pane_key("a b"));
        assert!(!valid_pane_key(&"x".repeat(65)));
    }
}
