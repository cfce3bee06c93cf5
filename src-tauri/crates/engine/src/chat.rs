//! What a caller asks for (one [`ChatRequest`]) and what comes back: one
//! [`StreamEvent`] type for every provider while streaming, and one
//! [`AttemptResult`] per attempt at the end.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::attach::Attachment;
use crate::error::ProviderError;
use crate::money::Cost;
use crate::provider::ProviderKind;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person.
    User,
    /// A model.
    Assistant,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// Images and PDFs sent with it (user turns), in the order they were
    /// added; each protocol sends them before the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl Message {
    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
            attachments: Vec::new(),
        }
    }

    /// A user turn with attachments.
    pub fn user_with(content: impl Into<String>, attachments: Vec<Attachment>) -> Self {
        Self {
            attachments,
            ..Self::user(content)
        }
    }

    /// An assistant turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
            attachments: Vec::new(),
        }
    }
}

/// Sampling and length settings; `None` leaves the provider's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Most output tokens; protocols that require a value get
    /// [`DEFAULT_MAX_TOKENS`] when this is `None`.
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
}

/// Output limit sent where a protocol requires one (Anthropic) and none was given.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// One request to one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model id as the provider names it.
    pub model: String,
    /// The system prompt, mapped to each protocol's own place.
    pub system: Option<String>,
    /// The conversation so far, oldest first, ending with a user turn.
    pub messages: Vec<Message>,
    /// Sampling and length settings.
    pub params: Params,
}

impl ChatRequest {
    /// A single-turn request.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            system: None,
            messages: vec![Message::user(prompt)],
            params: Params::default(),
        }
    }

    /// Characters of input text (system prompt and messages), for token
    /// estimates.
    pub fn input_chars(&self) -> usize {
        self.system.as_deref().map_or(0, |s| s.chars().count())
            + self
                .messages
                .iter()
                .map(|m| m.content.chars().count())
                .sum::<usize>()
    }

    /// Every attachment of the conversation, oldest first (all of them are
    /// sent again with each request).
    pub fn attachments(&self) -> impl Iterator<Item = &Attachment> {
        self.messages.iter().flat_map(|m| &m.attachments)
    }

    /// Estimated input tokens at a provider speaking `kind`: the text at
    /// [`CHARS_PER_TOKEN`](crate::attempt::CHARS_PER_TOKEN), plus each
    /// attachment by that vendor's rule ([`crate::attach::tokens`]).
    pub fn estimated_input_tokens(&self, kind: ProviderKind) -> u64 {
        crate::attempt::estimate_tokens(self.input_chars())
            + self
                .attachments()
                .map(|a| a.estimated_tokens(kind))
                .sum::<u64>()
    }

    /// Bytes of text in the request (system prompt and messages).
    pub fn text_bytes(&self) -> u64 {
        (self.system.as_deref().map_or(0, str::len)
            + self.messages.iter().map(|m| m.content.len()).sum::<usize>()) as u64
    }
}

/// Why a model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It finished its answer (or hit a stop sequence).
    Stop,
    /// It hit the output-token limit.
    Length,
    /// The provider filtered the output.
    ContentFilter,
    /// It wants to call a tool.
    ToolCalls,
    /// The provider reported an error in the stream.
    Error,
    /// Another reason, as the provider named it.
    Other,
}

/// Token counts as the provider reported them. `None` means "not reported",
/// never zero. `input_tokens` counts all prompt tokens including cached
/// ones and cache writes; `output_tokens` counts all generated tokens
/// including reasoning (also where a vendor reports reasoning beside its
/// completion count, as xAI does: the adapter adds it back).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// Generated tokens, reasoning included.
    pub output_tokens: Option<u64>,
    /// Prompt tokens served from the provider's cache (a subset of input).
    pub cached_input_tokens: Option<u64>,
    /// Reasoning tokens (a subset of output).
    pub reasoning_tokens: Option<u64>,
    /// Prompt tokens written to the provider's prompt cache (a subset of
    /// input, apart from the cached ones), billed at the cache-write rate
    /// (Anthropic's `cache_creation_input_tokens`).
    #[serde(default)]
    pub cache_write_tokens: Option<u64>,
    /// Of the cache writes, those kept for an hour rather than five
    /// minutes (billed at the one-hour write rate).
    #[serde(default)]
    pub cache_write_1h_tokens: Option<u64>,
}

impl Usage {
    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// Newer totals win field by field; a field the update lacks is kept.
    /// (Providers report running totals: assign, never add.)
    pub fn merge_latest(&mut self, newer: Usage) {
        self.input_tokens = newer.input_tokens.or(self.input_tokens);
        self.output_tokens = newer.output_tokens.or(self.output_tokens);
        self.cached_input_tokens = newer.cached_input_tokens.or(self.cached_input_tokens);
        self.reasoning_tokens = newer.reasoning_tokens.or(self.reasoning_tokens);
        self.cache_write_tokens = newer.cache_write_tokens.or(self.cache_write_tokens);
        self.cache_write_1h_tokens = newer.cache_write_1h_tokens.or(self.cache_write_1h_tokens);
    }
}

/// One thing that happened in a stream, the same for every provider.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Answer text to append.
    TextDelta(String),
    /// Reasoning ("thinking") text to append.
    ReasoningDelta(String),
    /// Token totals so far (replace, never add), with the cost when the
    /// provider reports one (OpenRouter's `usage.cost`).
    Usage {
        /// Running totals.
        usage: Usage,
        /// Cost in USD as reported by the provider.
        reported_cost: Option<Cost>,
    },
    /// The model stopped; usage may still follow.
    Finish(FinishReason),
    /// The stream failed; nothing follows. What arrived before stays valid.
    Error(ProviderError),
}

/// How a cost was arrived at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// Reported by the provider (wins over any computation).
    Reported,
    /// Computed from reported token counts and the price table.
    Computed,
    /// Computed from estimated token counts: shown as "est.".
    Estimated,
}

/// The cost of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptCost {
    /// The amount.
    pub total: Cost,
    /// Where it came from.
    pub source: CostSource,
}

impl AttemptCost {
    /// True when computed from estimated tokens.
    pub fn estimated(&self) -> bool {
        self.source == CostSource::Estimated
    }
}

/// Timings of one attempt, measured on a monotonic clock from the moment
/// the request was sent.
///
/// Time to first token (`ttft`) is to the first *visible* token: answer
/// text, not reasoning. A model that thinks first is not faster for it;
/// its thinking is reported apart (`thinking`, and the reasoning token
/// count in [`Usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// Until the first answer-text token arrived (reasoning excluded).
    pub ttft: Option<Duration>,
    /// Until the first token of any kind (reasoning included) arrived: the
    /// moment the stream showed life and, on a route, committed.
    pub first_token: Option<Duration>,
    /// Streamed thinking before the answer: from the first reasoning token
    /// to the first text token (or to the end, when no text came). `None`
    /// when no reasoning was streamed before the text.
    pub thinking: Option<Duration>,
    /// Until the stream ended (or failed).
    pub total: Duration,
    /// Visible output tokens (reasoning excluded) per second, from the
    /// first text token to the end, when that phase had a length.
    pub tokens_per_s: Option<f64>,
}

/// Everything about one attempt at one target.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    /// Provider id (config key).
    pub provider: String,
    /// Model id.
    pub model: String,
    /// The answer text (what arrived, even when the attempt failed).
    pub text: String,
    /// Reasoning text, when the model streamed any.
    pub reasoning: String,
    /// Why it stopped, when it said.
    pub finish_reason: Option<FinishReason>,
    /// Token counts as reported.
    pub usage: Usage,
    /// What it cost, when known (reported, computed, or estimated).
    pub cost: Option<AttemptCost>,
    /// The token counts it is billed for, when the provider accepted the
    /// request (or may have: it was sent, then stopped): `usage`, with the
    /// counts the provider did not report estimated from the text (for an
    /// answer cut before its end, an output count below what streamed is
    /// raised to it), and the cost then marked estimated. `None`: not
    /// billed. A billed attempt is a ledger row even when its cost is
    /// unknown.
    pub billed: Option<Usage>,
    /// Timings.
    pub timing: Timing,
    /// Why it failed, if it did.
    pub error: Option<ProviderError>,
}

impl AttemptResult {
    /// True when the attempt produced a complete answer.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }

    /// True when it was stopped on purpose.
    pub fn is_stopped(&self) -> bool {
        self.error
            .as_ref()
            .is_some_and(|e| e.kind == crate::error::ErrorKind::Stopped)
    }
}
