//! What a scripted model does: the text it streams, the usage it reports, how
//! its bytes are framed on the wire and how it fails.
//!
//! These types are protocol-neutral on purpose: one scenario is rendered by the
//! OpenAI, Anthropic or Gemini renderer depending on the endpoint a request
//! hits, so a test suite can run the same script against every protocol.

use std::time::Duration;

/// The behaviour of one scripted model.
///
/// Build it from [`Scenario::default`] and the `with_*` helpers:
///
/// ```
/// use std::time::Duration;
/// use switchboard_mock::{Fault, Scenario};
///
/// let scenario = Scenario::default()
///     .with_text(&["Bonjour", " le", " monde"])
///     .with_gap(Duration::from_millis(5))
///     .with_fault(Fault::CutAfter(2));
/// assert_eq!(scenario.full_text(), "Bonjour le monde");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Text pieces, one per content delta.
    pub text: Vec<String>,
    /// Reasoning ("thinking") pieces, streamed before the text.
    pub reasoning: Vec<String>,
    /// Delay between receiving the request and the first content byte of the
    /// body. Streaming response headers (and OpenRouter-style comments) are
    /// sent right away; errors from [`Fault::Status`] and
    /// [`Fault::ContextTooLong`] are sent after this delay.
    pub ttft: Duration,
    /// Delay between consecutive pieces (reasoning and text alike).
    pub gap: Duration,
    /// Ground-truth token usage, rendered in each protocol's own terms.
    pub usage: MockUsage,
    /// OpenAI protocol only: adds `"cost": <number>` to the usage object, the
    /// way OpenRouter does. The string must parse as a decimal number, else it
    /// is left out.
    pub cost_usd: Option<String>,
    /// Why generation stopped.
    pub finish: Finish,
    /// How the response fails, if it does.
    pub fault: Option<Fault>,
    /// When set, the fault strikes only the first this-many requests for
    /// the model; later ones are answered normally (a 429 that clears).
    pub fault_times: Option<usize>,
    /// When set, requests must carry this key (OpenAI `authorization: Bearer K`,
    /// Anthropic `x-api-key: K`, Gemini `x-goog-api-key: K`) or they get the
    /// protocol's authentication error.
    pub required_key: Option<String>,
    /// How the bytes are put on the wire.
    pub wire: Wire,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            text: vec!["Hello".to_owned(), " world".to_owned()],
            reasoning: Vec::new(),
            ttft: Duration::ZERO,
            gap: Duration::ZERO,
            usage: MockUsage {
                input: 12,
                cached_input: 0,
                output: 2,
                reasoning: 0,
            },
            cost_usd: None,
            finish: Finish::Stop,
            fault: None,
            fault_times: None,
            required_key: None,
            wire: Wire::default(),
        }
    }
}

impl Scenario {
    /// The text pieces joined: what a correct client shows the user.
    pub fn full_text(&self) -> String {
        self.text.concat()
    }

    /// The reasoning pieces joined.
    pub fn full_reasoning(&self) -> String {
        self.reasoning.concat()
    }

    /// Replaces the text pieces.
    pub fn with_text(mut self, pieces: &[&str]) -> Self {
        self.text = pieces.iter().map(|piece| (*piece).to_owned()).collect();
        self
    }

    /// Replaces the reasoning pieces.
    pub fn with_reasoning(mut self, pieces: &[&str]) -> Self {
        self.reasoning = pieces.iter().map(|piece| (*piece).to_owned()).collect();
        self
    }

    /// Sets the time to first content byte.
    pub fn with_ttft(mut self, ttft: Duration) -> Self {
        self.ttft = ttft;
        self
    }

    /// Sets the delay between pieces.
    pub fn with_gap(mut self, gap: Duration) -> Self {
        self.gap = gap;
        self
    }

    /// Sets the ground-truth usage.
    pub fn with_usage(mut self, usage: MockUsage) -> Self {
        self.usage = usage;
        self
    }

    /// Sets the OpenRouter-style `usage.cost`, in USD (e.g. `"0.00042"`).
    pub fn with_cost(mut self, cost_usd: &str) -> Self {
        self.cost_usd = Some(cost_usd.to_owned());
        self
    }

    /// Sets why generation stops.
    pub fn with_finish(mut self, finish: Finish) -> Self {
        self.finish = finish;
        self
    }

    /// Makes the response fail.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Makes the fault strike only the first `n` requests.
    pub fn with_fault_times(mut self, n: usize) -> Self {
        self.fault_times = Some(n);
        self
    }

    /// Requires this API key.
    pub fn with_key(mut self, key: &str) -> Self {
        self.required_key = Some(key.to_owned());
        self
    }

    /// Sets the wire framing.
    pub fn with_wire(mut self, wire: Wire) -> Self {
        self.wire = wire;
        self
    }

    /// The mid-stream fault to inject once `sent` text pieces are out, if any.
    ///
    /// A count at or beyond the number of pieces fires after the last piece,
    /// before the finish event, so `CutAfter(text.len())` still omits the
    /// terminator.
    pub(crate) fn mid_stream_fault(&self, sent: usize) -> Option<MidStream> {
        let (after, fault) = match self.fault {
            Some(Fault::StallAfter(n)) => (n, MidStream::Stall),
            Some(Fault::CutAfter(n)) => (n, MidStream::Cut),
            Some(Fault::GarbageAfter(n)) => (n, MidStream::Garbage),
            Some(Fault::ErrorEventAfter(n)) => (n, MidStream::ErrorEvent),
            Some(
                Fault::Status { .. }
                | Fault::ContextTooLong
                | Fault::Raw { .. }
                | Fault::EchoHeaders { .. },
            )
            | None => return None,
        };
        (after.min(self.text.len()) == sent).then_some(fault)
    }

    /// How long a non-streaming response takes: the whole generation.
    pub(crate) fn generation_time(&self) -> Duration {
        let pieces = self.reasoning.len() + self.text.len();
        let gaps = u32::try_from(pieces.saturating_sub(1)).unwrap_or(u32::MAX);
        self.ttft.saturating_add(self.gap.saturating_mul(gaps))
    }
}

/// Token usage in normalized terms; each protocol renders it its own way (for
/// example Anthropic reports `input_tokens` without the cached part).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MockUsage {
    /// All prompt tokens, cached ones included.
    pub input: u64,
    /// Prompt tokens read from the cache.
    pub cached_input: u64,
    /// All output tokens, reasoning included.
    pub output: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
}

impl MockUsage {
    /// Prompt tokens not read from the cache.
    pub(crate) fn uncached_input(&self) -> u64 {
        self.input.saturating_sub(self.cached_input)
    }

    /// Output tokens that are not reasoning.
    pub(crate) fn visible_output(&self) -> u64 {
        self.output.saturating_sub(self.reasoning)
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Finish {
    /// Natural end (`stop`, `end_turn`, `STOP`).
    #[default]
    Stop,
    /// Output token limit reached (`length`, `max_tokens`, `MAX_TOKENS`).
    Length,
}

/// How a response fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP error before streaming, with the protocol's real error body and
    /// a `retry-after` header when `retry_after_s` is set.
    Status {
        /// HTTP status code (e.g. 429, 503, Anthropic's 529).
        code: u16,
        /// Seconds for the `retry-after` header.
        retry_after_s: Option<u64>,
    },
    /// HTTP 400 saying the prompt exceeds the context window, in the
    /// protocol's words (OpenAI code `context_length_exceeded`).
    ContextTooLong,
    /// An error response written exactly as given: status, extra headers
    /// (`retry-after` as a date, `retry-after-ms`, ...) and body (a
    /// vendor's documented error, byte for byte).
    Raw {
        /// HTTP status code.
        code: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// The JSON body.
        body: String,
    },
    /// An error whose body echoes every request header, credentials
    /// included, as some proxies and gateways do.
    EchoHeaders {
        /// HTTP status code.
        code: u16,
    },
    /// Send this many text pieces, then keep the connection open and silent
    /// until the client hangs up.
    StallAfter(usize),
    /// Send this many text pieces, then close the TCP connection without the
    /// protocol's terminator and without the final zero-length HTTP chunk.
    CutAfter(usize),
    /// After this many text pieces send the line `data: {not json`, then carry
    /// on normally.
    GarbageAfter(usize),
    /// After this many text pieces send the protocol's mid-stream error event,
    /// then end the response (no terminator, no usage).
    ErrorEventAfter(usize),
}

/// Where the OpenAI protocol puts usage in a stream (when the request asked
/// for it with `stream_options.include_usage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OpenAiUsage {
    /// A last chunk with `"choices": []` after the finish chunk (OpenAI).
    #[default]
    FinalEmptyChunk,
    /// On the chunk that carries `finish_reason`.
    OnFinishChunk,
    /// A last chunk with `"choices": null` (vLLM).
    ChoicesNull,
}

/// How response bytes are framed and split on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    /// Write the body in HTTP chunks (and TCP writes) of this many bytes,
    /// cutting through UTF-8 characters and SSE lines, with a flush and a yield
    /// after each. `None`: one chunk per SSE event.
    pub split_every: Option<usize>,
    /// SSE lines end in `\r\n` instead of `\n`.
    pub crlf: bool,
    /// OpenAI protocol: `: OPENROUTER PROCESSING` comment lines before and
    /// between events.
    pub comments: bool,
    /// Anthropic: `ping` events between content events, plus one event of an
    /// unknown type (`future_event_type`) that clients must ignore.
    pub pings: bool,
    /// Where the OpenAI protocol puts usage.
    pub openai_usage: OpenAiUsage,
    /// OpenAI: end with `data: [DONE]`.
    pub done_marker: bool,
    /// Add fields clients do not know (`obfuscation`, `system_fingerprint`,
    /// `"usage": null`, `future_field`...) to every chunk.
    pub extra_fields: bool,
}

impl Default for Wire {
    fn default() -> Self {
        Self {
            split_every: None,
            crlf: false,
            comments: false,
            pings: false,
            openai_usage: OpenAiUsage::FinalEmptyChunk,
            done_marker: true,
            extra_fields: false,
        }
    }
}

/// A fault that strikes once streaming has begun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MidStream {
    Stall,
    Cut,
    Garbage,
    ErrorEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_fires_after_the_given_number_of_pieces() {
        let scenario = Scenario::default().with_fault(Fault::CutAfter(1));
        assert_eq!(scenario.mid_stream_fault(0), None);
        assert_eq!(scenario.mid_stream_fault(1), Some(MidStream::Cut));
        assert_eq!(scenario.mid_stream_fault(2), None);
    }

    #[test]
    fn fault_beyond_the_text_fires_before_the_finish() {
        let scenario = Scenario::default().with_fault(Fault::StallAfter(9));
        assert_eq!(scenario.mid_stream_fault(1), None);
        assert_eq!(scenario.mid_stream_fault(2), Some(MidStream::Stall));
    }

    #[test]
    fn generation_time_counts_every_gap() {
        let scenario = Scenario::default()
            .with_reasoning(&["a"])
            .with_ttft(Duration::from_millis(100))
            .with_gap(Duration::from_millis(10));
        assert_eq!(scenario.generation_time(), Duration::from_millis(120));
    }
}
