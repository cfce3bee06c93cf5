//! What both dialects' answers share: JSON written straight into the
//! response buffer (a streamed piece costs one small write, not a tree of
//! `serde_json::Value`s), the token counts and cost of an outcome, and
//! response ids.
//!
//! `cost` is written as an exact decimal number (`0.000123456`), the
//! ledger's nano-dollar amount with no float in between.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_engine::routing::RouteOutcome;
use switchboard_engine::{AttemptCost, FinishReason};

/// Append `s` as a JSON string (quotes included).
pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append an unsigned number.
pub(crate) fn json_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Append a cost as an exact USD decimal, or `null` when unknown.
fn json_cost(out: &mut Vec<u8>, cost: Option<AttemptCost>) {
    match cost {
        Some(c) => out.extend_from_slice(c.total.usd().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// Append `"cost":…,"cost_estimated":…`: the exact cost, and whether any
/// part of it was estimated, as both dialects' usage carries them.
pub(crate) fn cost_fields(out: &mut Vec<u8>, cost: Option<AttemptCost>) {
    out.extend_from_slice(b"\"cost\":");
    json_cost(out, cost);
    out.extend_from_slice(b",\"cost_estimated\":");
    out.extend_from_slice(if cost.is_some_and(|c| c.estimated()) {
        b"true"
    } else {
        b"false"
    });
}

/// Seconds since the Unix epoch (the `created` field).
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A response id: `prefix` and a value unique in this process and unlikely
/// to repeat across restarts.
pub(crate) fn new_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    format!("{prefix}{t:x}{n:04x}")
}

/// The token counts an answer reports: the provider's, and where it gave
/// none, the estimates the ledger billed (so they always add up to what
/// was charged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Every prompt token, cached ones and cache writes included.
    pub input: u64,
    /// Every generated token, reasoning included.
    pub output: u64,
    /// Prompt tokens read from a cache.
    pub cached: u64,
    /// Prompt tokens written to a cache (Anthropic's cache creation).
    pub cache_write: u64,
    /// Reasoning tokens among the output.
    pub reasoning: u64,
}

impl Counts {
    pub(crate) fn of(outcome: &RouteOutcome) -> Self {
        let r = &outcome.result;
        let billed = r.billed.unwrap_or(r.usage);
        Self {
            input: billed.input_tokens.unwrap_or(0),
            output: billed.output_tokens.unwrap_or(0),
            cached: r.usage.cached_input_tokens.unwrap_or(0),
            cache_write: r.usage.cache_write_tokens.unwrap_or(0),
            reasoning: r.usage.reasoning_tokens.unwrap_or(0),
        }
    }
}

/// OpenAI's name for a finish reason.
pub(crate) fn openai_finish(f: Option<FinishReason>) -> &'static str {
    match f {
        Some(FinishReason::Length) => "length",
        Some(FinishReason::ContentFilter) => "content_filter",
        Some(FinishReason::ToolCalls) => "tool_calls",
        Some(FinishReason::Stop | FinishReason::Error | FinishReason::Other) | None => "stop",
    }
}

/// Anthropic's name for a finish reason.
pub(crate) fn anthropic_stop(f: Option<FinishReason>) -> &'static str {
    match f {
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ContentFilter) => "refusal",
        Some(FinishReason::ToolCalls) => "tool_use",
        Some(FinishReason::Stop | FinishReason::Error | FinishReason::Other) | None => "end_turn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_exactly_as_json_reads_them() {
        for s in [
            "plain",
            "quote \" and back\\slash",
            "lines\nand\r\ttabs",
            "ctrl \u{1} \u{1f} and é ✓ 🎉",
            "",
        ] {
            let mut out = Vec::new();
            json_str(&mut out, s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn costs_are_exact_decimals() {
        use switchboard_engine::{Cost, CostSource};
        let mut out = Vec::new();
        json_cost(
            &mut out,
            Some(AttemptCost {
                total: Cost::from_nanos(123_456),
                source: CostSource::Computed,
            }),
        );
        assert_eq!(out, b"0.000123456");
        out.clear();
        json_cost(&mut out, None);
        assert_eq!(out, b"null");
        out.clear();
        cost_fields(
            &mut out,
            Some(AttemptCost {
                total: Cost::from_nanos(5),
                source: CostSource::Estimated,
            }),
        );
        assert_eq!(out, br#""cost":0.000000005,"cost_estimated":true"#);
        assert_ne!(new_id("a-"), new_id("a-"));
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            out.clear();
            json_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
