//! Turning a stream of [`Timed`] events into one [`AttemptResult`]: the
//! text, the usage (last totals win), the timings, and the cost, computed
//! in [`cost_of`], the one place where cost is computed.

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
/// Cached input tokens are priced at the cached rate (or the input rate
/// when the model has none); `None` when input or output is unknown.
pub fn cost_of(usage: &Usage, price: &ModelPrice) -> Option<Cost> {
    let input = usage.input_tokens?;
    let output = usage.output_tokens?;
    let cached = usage.cached_input_tokens.unwrap_or(0).min(input);
    let pico = price.input.cost_pico(input - cached)
        + price.cached_input.unwrap_or(price.input).cost_pico(cached)
        + price.output.cost_pico(output);
    Some(Cost::from_pico(pico))
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
    first_token: Option<Duration>,
    last: Duration,
    /// Something came back from the provider (the request was accepted).
    answered: bool,
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
            first_token: None,
            last: Duration::ZERO,
            answered: false,
            error: None,
        }
    }

    /// Take one event.
    pub fn push(&mut self, t: &Timed) {
        self.last = self.last.max(t.at);
        self.answered = true;
        match &t.event {
            StreamEvent::TextDelta(s) => {
                self.first_token.get_or_insert(t.at);
                self.text.push_str(s);
            }
            StreamEvent::ReasoningDelta(s) => {
                self.first_token.get_or_insert(t.at);
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

    /// True once a text or reasoning token arrived.
    pub fn has_first_token(&self) -> bool {
        self.first_token.is_some()
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Finish: `total` is the time from the send to the end, `price` the
    /// model's price (if known), `input_chars` the request's size for
    /// estimates.
    pub fn finish(
        self,
        total: Duration,
        price: Option<&ModelPrice>,
        input_chars: usize,
    ) -> AttemptResult {
        let total = total.max(self.last);
        let estimate = Usage {
            input_tokens: Some(estimate_tokens(input_chars)),
            output_tokens: Some(estimate_tokens(
                self.text.chars().count() + self.reasoning.chars().count(),
            )),
            cached_input_tokens: None,
            reasoning_tokens: None,
        };
        // A request the provider never accepted (no key, unreachable, an
        // HTTP error) is not billed: no cost rather than an estimate.
        let cost = if self.answered {
            attempt_cost(&self.usage, self.reported_cost, price, estimate)
        } else {
            None
        };
        let tokens_per_s = self.first_token.and_then(|first| {
            let output = self.usage.output_tokens?;
            let generating = total.checked_sub(first)?;
            // An answer that arrived in one burst has no measurable rate.
            (generating >= MIN_RATE_SPAN && output > 0)
                .then(|| output as f64 / generating.as_secs_f64())
        });
        AttemptResult {
            provider: self.provider,
            model: self.model,
            text: self.text,
            reasoning: self.reasoning,
            finish_reason: self.finish,
            usage: self.usage,
            cost,
            timing: Timing {
                ttft: self.first_token,
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
        ModelPrice {
            input: Price::from_usd_per_mtok(i).unwrap(),
            output: Price::from_usd_per_mtok(o).unwrap(),
            cached_input: c.map(|c| Price::from_usd_per_mtok(c).unwrap()),
        }
    }

    fn usage(i: Option<u64>, o: Option<u64>, c: Option<u64>) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cached_input_tokens: c,
            reasoning_tokens: None,
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
        let r = acc.finish(Duration::from_millis(600), None, 40);
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
                .finish(Duration::from_micros(100_200), None, 4)
                .timing
                .tokens_per_s,
            None
        );
        assert!(r.is_ok());
        assert_eq!(r.cost, None, "no price known");
    }
}
