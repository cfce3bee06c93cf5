//! Turning a stream of [`Timed`] events into one [`AttemptResult`]: the
//! text, the usage (last totals win), the timings, and the cost, computed
//! in [`cost_of`], the one place where cost is computed (long-context
//! tiers, cache reads and cache writes included; [`estimate_cost`] goes
//! through it too).
//!
//! Timings are honest about thinking: time to first token is to the first
//! *answer* token, tokens/s counts answer tokens over the answer's time,
//! and streamed reasoning is reported apart ([`Timing::thinking`], and the
//! reasoning token count), so a model that emits a burst of hidden tokens
//! does not look fast for it.
//!
//! It also decides what an attempt bills ([`AttemptResult::billed`]):
//! nothing when the provider never accepted it, else the reported counts
//! with the missing ones estimated from the text — including for an attempt
//! stopped or cut mid-stream, and for the checkpoints taken while it runs
//! ([`Accumulator::progress`]).

use std::time::Duration;

use crate::catalog::ModelPrice;
use crate::chat::{
    AttemptCost, AttemptResult, CostSource, FinishReason, StreamEvent, Timing, Usage,
};
use crate::client::Timed;
use crate::error::ProviderError;
use crate::money::Cost;

/// Shortest generation phase (first token to end) over which tokens/s is
/// reported; below it the figure would be timer noise.
pub const MIN_RATE_SPAN: Duration = Duration::from_millis(5);

/// Characters per token used for estimates when a provider reports none.
pub const CHARS_PER_TOKEN: usize = 4;

/// A rough token count for `chars` characters of text (never 0 for text).
pub fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN) as u64
}

/// The cost of `usage` at `price`, exactly, rounded once to the nano-dollar.
///
/// The rates are those of the price's tier for this prompt size (all
/// prompt tokens: input, cache reads and writes), applied to the whole
/// request. Prompt tokens are split into cache reads (at the cached rate,
/// or the input rate when the model has none), cache writes (five-minute
/// and one-hour, at their rates or 1.25× / 2× input), and the rest at the
/// input rate; output (reasoning included) at the output rate. `None` when
/// input or output is unknown.
pub fn cost_of(usage: &Usage, price: &ModelPrice) -> Option<Cost> {
    let input = usage.input_tokens?;
    let output = usage.output_tokens?;
    let rates = price.rates_for(input);
    let read = usage.cached_input_tokens.unwrap_or(0).min(input);
    let written = usage.cache_write_tokens.unwrap_or(0).min(input - read);
    let written_1h = usage.cache_write_1h_tokens.unwrap_or(0).min(written);
    let pico = rates.input.cost_pico(input - read - written)
        + rates.cache_read_pico(read)
        + rates.cache_write_pico(written - written_1h)
        + rates.cache_write_1h_pico(written_1h)
        + rates.output.cost_pico(output);
    Some(Cost::from_pico(pico))
}

/// The estimated cost of a request of `input` prompt tokens (none of them
/// cached) and `output` output tokens: what budgets reserve and `cheapest`
/// ranks by. Long-context tiers apply as they would to the real request.
pub fn estimate_cost(price: &ModelPrice, input: u64, output: u64) -> Cost {
    let usage = Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        ..Usage::default()
    };
    cost_of(&usage, price).unwrap_or(Cost::ZERO)
}

/// The cost of an attempt: the provider's own figure when it reported one;
/// else computed from reported tokens; else from estimated tokens, marked
/// as estimated. `None` when the model has no known price.
pub fn attempt_cost(
    usage: &Usage,
    reported: Option<Cost>,
    price: Option<&ModelPrice>,
    estimate: Usage,
) -> Option<AttemptCost> {
    if let Some(total) = reported {
        return Some(AttemptCost {
            total,
            source: CostSource::Reported,
        });
    }
    let price = price?;
    if let Some(total) = cost_of(usage, price) {
        return Some(AttemptCost {
            total,
            source: CostSource::Computed,
        });
    }
    let mut filled = estimate;
    filled.merge_latest(*usage);
    cost_of(&filled, price).map(|total| AttemptCost {
        total,
        source: CostSource::Estimated,
    })
}

/// Collects one attempt's events.
#[derive(Debug, Clone)]
pub struct Accumulator {
    provider: String,
    model: String,
    text: String,
    reasoning: String,
    finish: Option<FinishReason>,
    usage: Usage,
    reported_cost: Option<Cost>,
    first_text: Option<Duration>,
    first_reasoning: Option<Duration>,
    last: Duration,
    /// Something came back from the provider (the request was accepted).
    answered: bool,
    /// The request was handed to the network (it may have been accepted).
    sent: bool,
    /// Stopped on purpose.
    stopped: bool,
    error: Option<ProviderError>,
}

impl Accumulator {
    /// Start collecting for `provider`/`model`.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            text: String::new(),
            reasoning: String::new(),
            finish: None,
            usage: Usage::default(),
            reported_cost: None,
            first_text: None,
            first_reasoning: None,
            last: Duration::ZERO,
            answered: false,
            sent: false,
            stopped: false,
            error: None,
        }
    }

    /// The request is being sent: from now on a stop may leave it billed.
    pub fn mark_sent(&mut self) {
        self.sent = true;
    }

    /// Stopped on purpose (Stop, Ctrl-C, closing the window): ends as
    /// [`ErrorKind::Stopped`](crate::ErrorKind::Stopped), keeping what
    /// arrived. Once the request was sent it is billed, for what streamed.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.error = Some(ProviderError::new(
            crate::error::ErrorKind::Stopped,
            &self.provider,
            if self.answered {
                "stopped; the text that arrived is kept"
            } else {
                "stopped before an answer came"
            },
        ));
    }

    /// What the attempt would come to if it were cut now: its text so
    /// far, and usage and cost estimated for that text (a checkpoint).
    pub fn progress(
        &self,
        elapsed: Duration,
        price: Option<&ModelPrice>,
        input_tokens: u64,
    ) -> AttemptResult {
        let mut cut = self.clone();
        cut.stopped = true;
        cut.error = Some(ProviderError::new(
            crate::error::ErrorKind::Interrupted,
            &self.provider,
            "the answer was cut off while it streamed; the text saved up to then is kept",
        ));
        cut.finish(elapsed, price, input_tokens)
    }

    /// Take one event.
    pub fn push(&mut self, t: &Timed) {
        self.last = self.last.max(t.at);
        self.answered = true;
        match &t.event {
            StreamEvent::TextDelta(s) => {
                self.first_text.get_or_insert(t.at);
                self.text.push_str(s);
            }
            StreamEvent::ReasoningDelta(s) => {
                self.first_reasoning.get_or_insert(t.at);
                self.reasoning.push_str(s);
            }
            StreamEvent::Usage {
                usage,
                reported_cost,
            } => {
                self.usage.merge_latest(*usage);
                if reported_cost.is_some() {
                    self.reported_cost = *reported_cost;
                }
            }
            StreamEvent::Finish(r) => self.finish = Some(*r),
            StreamEvent::Error(e) => self.error = Some(e.clone()),
        }
    }

    /// Record a failure that did not come from the stream (timeouts, a
    /// request that could not start).
    pub fn fail(&mut self, error: ProviderError) {
        self.error = Some(error);
    }

    /// True once a token of any kind (text or reasoning) arrived: the
    /// stream is alive, and on a route the attempt is committed.
    pub fn has_first_token(&self) -> bool {
        self.first_text.is_some() || self.first_reasoning.is_some()
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Output tokens the user sees: output minus reasoning tokens when the
    /// provider counts those; when it streamed reasoning without counting
    /// it (Anthropic), the text's share of the streamed characters.
    fn visible_output_tokens(&self) -> Option<u64> {
        let output = self.usage.output_tokens?;
        if let Some(reasoning) = self.usage.reasoning_tokens {
            return Some(output.saturating_sub(reasoning));
        }
        let text = self.text.chars().count() as u128;
        let thought = self.reasoning.chars().count() as u128;
        if thought == 0 || text == 0 {
            return Some(output);
        }
        u64::try_from(u128::from(output) * text / (text + thought)).ok()
    }

    /// Finish: `total` is the time from the send to the end, `price` the
    /// model's price (if known), `input_tokens` the request's estimated
    /// prompt size ([`ChatRequest::estimated_input_tokens`](crate::ChatRequest::estimated_input_tokens)) for
    /// estimates.
    pub fn finish(
        self,
        total: Duration,
        price: Option<&ModelPrice>,
        input_tokens: u64,
    ) -> AttemptResult {
        let total = total.max(self.last);
        let estimate = Usage {
            input_tokens: Some(input_tokens),
            output_tokens: Some(estimate_tokens(
                self.text.chars().count() + self.reasoning.chars().count(),
            )),
            ..Usage::default()
        };
        // A request the provider never accepted (no key, unreachable, an
        // HTTP error) is not billed: no cost rather than an estimate. One
        // stopped after it was sent may have been accepted: billed.
        let billed = self.answered || (self.stopped && self.sent);
        // What is billed: the reported counts, the missing ones estimated.
        let mut usage = estimate;
        usage.merge_latest(self.usage);
        // Cut before its end, a stream never got its final counts: what
        // arrived was generated (and billed) at least, so an output count
        // below the text's estimate is raised to it.
        let mut raised = false;
        if self.finish.is_none()
            && let (Some(out), Some(reported)) = (estimate.output_tokens, self.usage.output_tokens)
            && reported < out
        {
            usage.output_tokens = Some(out);
            raised = true;
        }
        let cost = match (billed, raised && self.reported_cost.is_none()) {
            (false, _) => None,
            (true, true) => price
                .and_then(|p| cost_of(&usage, p))
                .map(|total| AttemptCost {
                    total,
                    source: CostSource::Estimated,
                }),
            (true, false) => attempt_cost(&self.usage, self.reported_cost, price, estimate),
        };
        let first_token = match (self.first_text, self.first_reasoning) {
            (Some(t), Some(r)) => Some(t.min(r)),
            (t, r) => t.or(r),
        };
        let thinking = self.first_reasoning.and_then(|r| {
            let until = self.first_text.unwrap_or(total);
            (until > r).then(|| until - r)
        });
        let tokens_per_s = self.first_text.and_then(|first| {
            let visible = self.visible_output_tokens()?;
            let generating = total.checked_sub(first)?;
            // An answer that arrived in one burst has no measurable rate.
            (generating >= MIN_RATE_SPAN && visible > 0)
                .then(|| visible as f64 / generating.as_secs_f64())
        });
        AttemptResult {
            provider: self.provider,
            model: self.model,
            text: self.text,
            reasoning: self.reasoning,
            finish_reason: self.finish,
            usage: self.usage,
            cost,
            billed: billed.then_some(usage),
            timing: Timing {
                ttft: self.first_text,
                first_token,
                thinking,
                total,
                tokens_per_s,
            },
            error: self.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Price;

    fn price(i: &str, o: &str, c: Option<&str>) -> ModelPrice {
        ModelPrice::new(
            Price::from_usd_per_mtok(i).unwrap(),
            Price::from_usd_per_mtok(o).unwrap(),
            c.map(|c| Price::from_usd_per_mtok(c).unwrap()),
        )
    }

    fn usage(i: Option<u64>, o: Option<u64>, c: Option<u64>) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cached_input_tokens: c,
            ..Usage::default()
        }
    }

    #[test]
    fn cached_input_is_priced_at_the_cached_rate() {
        // 1000 input of which 400 cached, 200 output at $2.50 / $10 / $1.25 per Mtok:
        // 600*2.5 + 400*1.25 + 200*10 = 1500 + 500 + 2000 = 4000 per M = $0.004
        let p = price("2.50", "10", Some("1.25"));
        let c = cost_of(&usage(Some(1000), Some(200), Some(400)), &p).unwrap();
        assert_eq!(c.nanos(), 4_000_000);
        // Without a cached rate the input rate applies.
        let p = price("2.50", "10", None);
        assert_eq!(
            cost_of(&usage(Some(1000), Some(200), Some(400)), &p)
                .unwrap()
                .nanos(),
            4_500_000
        );
    }

    #[test]
    fn long_context_tiers_apply_to_the_whole_request_above_their_threshold() {
        let entry: crate::catalog::ModelEntry = toml::from_str(
            r#"
id = "m"
input_usd_per_mtok = "1.25"
output_usd_per_mtok = "10"
cached_input_usd_per_mtok = "0.125"
[[tiers]]
above_input_tokens = 500000
input_usd_per_mtok = "5"
output_usd_per_mtok = "20"
[[tiers]]
above_input_tokens = 200000
input_usd_per_mtok = "2.50"
output_usd_per_mtok = "15"
cached_input_usd_per_mtok = "0.25"
"#,
        )
        .unwrap();
        let p = entry
            .info(crate::catalog::PriceSource::Config)
            .price
            .unwrap();
        assert_eq!(p.tiers[0].above_input_tokens, 200_000, "sorted");
        let cost = |i, c, o| {
            cost_of(&usage(Some(i), Some(o), Some(c)), &p)
                .unwrap()
                .nanos()
        };
        // At the threshold: base rates. 100_000 cached of 200_000:
        //   100_000 × 1_250_000 + 100_000 × 125_000 + 1_000 × 10_000_000 p$
        //   = 125_000_000_000 + 12_500_000_000 + 10_000_000_000 = 147_500_000 n$
        assert_eq!(cost(200_000, 100_000, 1_000), 147_500_000);
        // Above it, every token at the tier:
        //   100_001 × 2_500_000 + 100_000 × 250_000 + 1_000 × 15_000_000 p$
        //   = 250_002_500_000 + 25_000_000_000 + 15_000_000_000 = 290_002_500 n$
        assert_eq!(cost(200_001, 100_000, 1_000), 290_002_500);
        // The highest tier exceeded wins; it lists no cached rate, so the
        // base one stays: 500_000 × 5_000_000 + 1 × 125_000 + 0 out.
        assert_eq!(cost(500_001, 1, 0), 2_500_000_125);
    }

    #[test]
    fn cache_write_defaults_are_multiples_of_the_rate_in_effect() {
        let p = price("3", "15", Some("0.30"));
        let u = Usage {
            cache_write_tokens: Some(1_000),
            cache_write_1h_tokens: Some(400),
            ..usage(Some(1_000), Some(0), None)
        };
        // 600 × 3.75 + 400 × 6 = 2_250 + 2_400 = 4_650 µ$.
        assert_eq!(cost_of(&u, &p).unwrap().nanos(), 4_650_000);
        // Writes never count twice: more writes than prompt is capped.
        let silly = Usage {
            cache_write_tokens: Some(5_000),
            cache_write_1h_tokens: Some(9_000),
            ..usage(Some(1_000), Some(0), Some(200))
        };
        // 200 cached × 0.30 + 800 one-hour writes × 6 = 60 + 4_800 µ$.
        assert_eq!(cost_of(&silly, &p).unwrap().nanos(), 4_860_000);
    }

    #[test]
    fn reported_beats_computed_beats_estimated() {
        let p = price("1", "2", None);
        let est = usage(Some(10), Some(10), None);
        let reported = attempt_cost(
            &usage(Some(1), Some(1), None),
            Some(Cost::from_nanos(42)),
            Some(&p),
            est,
        )
        .unwrap();
        assert_eq!(
            (reported.total.nanos(), reported.source),
            (42, CostSource::Reported)
        );
        let computed =
            attempt_cost(&usage(Some(1000), Some(500), None), None, Some(&p), est).unwrap();
        // 1000 × $1/M + 500 × $2/M = $0.002
        assert_eq!(
            (computed.total.nanos(), computed.source),
            (2_000_000, CostSource::Computed)
        );
        let estimated = attempt_cost(&usage(Some(1000), None, None), None, Some(&p), est).unwrap();
        assert_eq!(estimated.source, CostSource::Estimated);
        // 1000 reported input × $1/M + 10 estimated output × $2/M
        assert_eq!(
            estimated.total.nanos(),
            1_000_000 + 20_000,
            "reported input kept, output estimated"
        );
        assert!(attempt_cost(&usage(Some(1), Some(1), None), None, None, est).is_none());
    }

    #[test]
    fn accumulator_measures_ttft_and_tokens_per_second() {
        let mut acc = Accumulator::new("p", "m");
        let t = |ms: u64, event| Timed {
            at: Duration::from_millis(ms),
            event,
        };
        acc.push(&t(
            5,
            StreamEvent::Usage {
                usage: usage(Some(10), Some(1), None),
                reported_cost: None,
            },
        ));
        acc.push(&t(100, StreamEvent::TextDelta("Hello".into())));
        acc.push(&t(300, StreamEvent::TextDelta(" world".into())));
        acc.push(&t(600, StreamEvent::Finish(FinishReason::Stop)));
        acc.push(&t(
            600,
            StreamEvent::Usage {
                usage: usage(None, Some(50), None),
                reported_cost: None,
            },
        ));
        let r = acc.finish(Duration::from_millis(600), None, 10);
        assert_eq!(r.text, "Hello world");
        assert_eq!(r.timing.ttft, Some(Duration::from_millis(100)));
        assert_eq!(r.usage.input_tokens, Some(10));
        assert_eq!(r.usage.output_tokens, Some(50));
        // 50 tokens over 0.5 s of generation.
        assert_eq!(r.timing.tokens_per_s, Some(100.0));
        // All in one burst: no rate rather than an absurd one.
        let mut burst = Accumulator::new("p", "m");
        burst.push(&t(100, StreamEvent::TextDelta("x".into())));
        burst.push(&t(
            100,
            StreamEvent::Usage {
                usage: usage(Some(1), Some(500), None),
                reported_cost: None,
            },
        ));
        assert_eq!(
            burst
                .finish(Duration::from_micros(100_200), None, 1)
                .timing
                .tokens_per_s,
            None
        );
        assert!(r.is_ok());
        assert_eq!(r.cost, None, "no price known");
    }

    fn at(ms: u64, event: StreamEvent) -> Timed {
        Timed {
            at: Duration::from_millis(ms),
            event,
        }
    }

    #[test]
    fn a_thinking_model_is_timed_by_its_visible_answer() {
        // Reasoning streams from 100 ms to 900 ms, the answer from 1 s to
        // 1.5 s; 600 output tokens of which 500 reasoning.
        let mut acc = Accumulator::new("p", "m");
        for ms in (100..1000).step_by(100) {
            acc.push(&at(ms, StreamEvent::ReasoningDelta("hmm ".into())));
        }
        acc.push(&at(1000, StreamEvent::TextDelta("The".into())));
        acc.push(&at(1500, StreamEvent::TextDelta(" answer".into())));
        acc.push(&at(
            1500,
            StreamEvent::Usage {
                usage: Usage {
                    reasoning_tokens: Some(500),
                    ..usage(Some(10), Some(600), None)
                },
                reported_cost: None,
            },
        ));
        let r = acc.finish(Duration::from_millis(1500), None, 10);
        assert_eq!(
            r.timing.ttft,
            Some(Duration::from_millis(1000)),
            "first visible token"
        );
        assert_eq!(r.timing.first_token, Some(Duration::from_millis(100)));
        assert_eq!(r.timing.thinking, Some(Duration::from_millis(900)));
        // 100 visible tokens over 0.5 s, not 600 over 1.4 s.
        assert_eq!(r.timing.tokens_per_s, Some(200.0));
    }

    #[test]
    fn uncounted_streamed_reasoning_is_left_out_of_the_rate_by_its_share() {
        // Anthropic counts thinking inside output_tokens and says no more:
        // 800 reasoning characters and 400 text characters for 300 tokens
        // leave 100 tokens for the answer.
        let mut acc = Accumulator::new("p", "m");
        acc.push(&at(50, StreamEvent::ReasoningDelta("r".repeat(800))));
        acc.push(&at(200, StreamEvent::TextDelta("t".repeat(200))));
        acc.push(&at(700, StreamEvent::TextDelta("t".repeat(200))));
        acc.push(&at(
            700,
            StreamEvent::Usage {
                usage: usage(Some(5), Some(300), None),
                reported_cost: None,
            },
        ));
        let r = acc.finish(Duration::from_millis(700), None, 1);
        assert_eq!(r.timing.thinking, Some(Duration::from_millis(150)));
        assert_eq!(r.timing.tokens_per_s, Some(200.0), "100 tokens over 0.5 s");
        // Reasoning that never reached an answer: thinking until the end,
        // no visible token, no rate; but the stream did show life.
        let mut cut = Accumulator::new("p", "m");
        cut.push(&at(80, StreamEvent::ReasoningDelta("r".into())));
        let r = cut.finish(Duration::from_millis(480), None, 1);
        assert!(cut_has_life(&r));
        assert_eq!(r.timing.ttft, None);
        assert_eq!(r.timing.thinking, Some(Duration::from_millis(400)));
        assert_eq!(r.timing.tokens_per_s, None);
    }

    fn cut_has_life(r: &AttemptResult) -> bool {
        r.timing.first_token == Some(Duration::from_millis(80))
    }
}
