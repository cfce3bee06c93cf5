//! Classified provider errors. Every failure carries what a caller needs to
//! decide what to do next (retry, fall back, show the user) without string
//! matching: a kind, the HTTP status, the wait the provider asked for
//! (`retry-after-ms`, `Retry-After` in seconds or as a date, Gemini's
//! `retryDelay`; read by [`retry_hint`] and capped, nonsense ignored), and a
//! truncated body, scrubbed of keys.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of failure. The snake_case names appear in the CLI's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The key is missing, wrong or lacks permission.
    Auth,
    /// Too many requests (HTTP 429).
    RateLimited,
    /// The provider is overloaded or failed on its side (5xx, 529).
    Overloaded,
    /// The prompt is longer than the model's context window.
    ContextTooLong,
    /// The request was rejected as invalid: it would fail anywhere, so a
    /// route stops here.
    BadRequest,
    /// The account cannot pay for it: credit exhausted, quota used up,
    /// billing not set up (Anthropic "credit balance is too low", OpenAI
    /// `insufficient_quota`, HTTP 402). Not retried; a route moves on.
    Billing,
    /// The provider will not serve this account here: a location it does
    /// not support (Gemini `FAILED_PRECONDITION`, OpenAI
    /// `unsupported_country_region_territory`). Not retried; a route
    /// moves on.
    Unavailable,
    /// This model does not accept a parameter or value of the request
    /// (OpenAI `unsupported_parameter` / `unsupported_value`, e.g. a
    /// temperature on a reasoning model). Another model may: a route
    /// moves on.
    Unsupported,
    /// The model or endpoint does not exist.
    NotFound,
    /// The provider could not be reached.
    Network,
    /// A time limit ran out.
    Timeout,
    /// The stream stopped before its end; what arrived is kept.
    Interrupted,
    /// The provider answered something that is not its protocol.
    Malformed,
    /// A budget would be exceeded.
    Budget,
    /// A policy (allowed providers, local only, price cap) forbids it.
    Policy,
    /// Stopped on purpose (Stop, Esc, closing the window, Ctrl-C): what
    /// arrived is kept, and billed.
    Stopped,
}

impl ErrorKind {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ContextTooLong => "context_too_long",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Billing => "billing",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Budget => "budget",
            ErrorKind::Policy => "policy",
            ErrorKind::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest raw body kept on an error, in bytes.
pub const RAW_BODY_LIMIT: usize = 2048;

/// A failure of one provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {kind}: {message}")]
pub struct ProviderError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Provider id.
    pub provider: String,
    /// HTTP status, when the provider answered with one.
    pub status: Option<u16>,
    /// How long the provider asked us to wait (`retry-after-ms`,
    /// `Retry-After` in seconds or as a date, or Gemini's
    /// `RetryInfo.retryDelay`), at most [`MAX_RETRY_HINT`].
    pub retry_after: Option<Duration>,
    /// A message for people: the provider's own words where it gave some.
    pub message: String,
    /// The start of the raw response body, for diagnosis.
    pub raw: Option<String>,
}

impl ProviderError {
    /// An error without HTTP details.
    pub fn new(kind: ErrorKind, provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            provider: provider.into(),
            status: None,
            retry_after: None,
            message: message.into(),
            raw: None,
        }
    }

    /// Attach the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Attach (a truncated copy of) the raw body.
    pub fn with_raw(mut self, raw: &str) -> Self {
        self.raw = Some(truncate(raw, RAW_BODY_LIMIT));
        self
    }

    /// This error with `secrets` (and any credential header it quotes)
    /// scrubbed from its message and raw body.
    pub fn scrubbed(mut self, secrets: &[crate::keys::Secret]) -> Self {
        self.message = crate::redact::scrub(&self.message, secrets);
        self.raw = self.raw.map(|r| crate::redact::scrub(&r, secrets));
        self
    }

    /// Would the same request to the same target plausibly succeed later?
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Network
                | ErrorKind::Timeout
        )
    }

    /// Is it worth trying the next target of a route? Everything except a
    /// request that is itself invalid (which would fail everywhere).
    pub fn allows_fallback(&self) -> bool {
        !matches!(self.kind, ErrorKind::BadRequest)
    }
}

/// Cut `s` to at most `limit` bytes on a character boundary, marking the cut.
pub fn truncate(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_owned();
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The longest wait a retry hint is read as. A provider asking for more
/// (or for a date years ahead) is asking not to be retried soon; the router
/// never waits longer than a route's `max_backoff` anyway.
pub const MAX_RETRY_HINT: Duration = Duration::from_secs(86_400);

/// How long to wait before retrying, from an error response's headers:
/// `retry-after-ms` (OpenAI) first, then `Retry-After` in seconds or as an
/// HTTP date (compared with `now_unix_ms`). Nonsense (negative, NaN, not a
/// number or a date) gives `None`; a date in the past gives zero; anything
/// longer than [`MAX_RETRY_HINT`] is cut to it. Never panics.
pub fn retry_hint(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now_unix_ms: i64,
) -> Option<Duration> {
    retry_after_ms
        .and_then(|v| seconds(v, 1000.0))
        .or_else(|| retry_after.and_then(|v| parse_retry_after(v, now_unix_ms)))
}

/// Parse a `Retry-After` value: delta-seconds (fractions accepted) or an
/// HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`).
pub fn parse_retry_after(value: &str, now_unix_ms: i64) -> Option<Duration> {
    seconds(value, 1.0).or_else(|| {
        let at = parse_http_date(value)?;
        let ms = at.saturating_sub(now_unix_ms).max(0);
        Some(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)).min(MAX_RETRY_HINT))
    })
}

/// A protobuf JSON duration as Gemini's `RetryInfo.retryDelay` writes it
/// (`"13s"`, `"0.5s"`, `"1.000340s"`).
pub fn parse_proto_duration(value: &str) -> Option<Duration> {
    seconds(value.trim().strip_suffix('s')?, 1.0)
}

/// `value` as a number of `per_second` units, as a capped duration.
fn seconds(value: &str, per_second: f64) -> Option<Duration> {
    let v = value.trim();
    // Only plain decimals: "inf", "NaN" and "1e999" are not waits.
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let secs = v.parse::<f64>().ok()? / per_second;
    let secs = secs.min(MAX_RETRY_HINT.as_secs_f64());
    Duration::try_from_secs_f64(secs).ok()
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, what RFC 9110 says
/// servers send) in Unix milliseconds.
fn parse_http_date(value: &str) -> Option<i64> {
    let rest = value.trim();
    let rest = rest.split_once(',').map_or(rest, |(_, r)| r);
    let mut parts = rest.split_whitespace();
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()?.to_ascii_lowercase().as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let mut field = |max: i64| -> Option<i64> {
        hms.next()?
            .parse::<i64>()
            .ok()
            .filter(|v| (0..=max).contains(v))
    };
    let (h, m, sec) = (field(23)?, field(59)?, field(60)?);
    if !matches!(parts.next(), Some("GMT" | "UTC")) || !(1..=31).contains(&day) {
        return None;
    }
    if !(1..=9999).contains(&year) {
        return None;
    }
    let days = crate::store::time::days_from_civil(year, month, day);
    Some((days * 86_400 + h * 3600 + m * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_and_fallback_follow_the_kind() {
        let e = |k| ProviderError::new(k, "p", "m");
        assert!(e(ErrorKind::RateLimited).is_retryable());
        assert!(e(ErrorKind::Overloaded).is_retryable());
        assert!(!e(ErrorKind::Auth).is_retryable());
        assert!(e(ErrorKind::Auth).allows_fallback());
        assert!(!e(ErrorKind::BadRequest).allows_fallback());
        assert!(e(ErrorKind::ContextTooLong).allows_fallback());
        for k in [
            ErrorKind::Billing,
            ErrorKind::Unavailable,
            ErrorKind::Unsupported,
        ] {
            assert!(!e(k).is_retryable(), "{k}");
            assert!(e(k).allows_fallback(), "{k}");
        }
    }

    #[test]
    fn kinds_serialize_to_their_documented_names() {
        for (k, name) in [
            (ErrorKind::ContextTooLong, "context_too_long"),
            (ErrorKind::RateLimited, "rate_limited"),
            (ErrorKind::Malformed, "malformed"),
        ] {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{name}\""));
            assert_eq!(k.as_str(), name);
        }
    }

    #[test]
    fn raw_bodies_are_truncated_on_a_char_boundary() {
        let body = "é".repeat(2000);
        let t = truncate(&body, 11);
        assert_eq!(t, format!("{}…", "é".repeat(5)));
    }

    #[test]
    fn retry_hints_in_every_form_and_nonsense_never_panics() {
        // 2015-10-21 07:28:00 UTC.
        let now = 1_445_412_480_000;
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: no wait"
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_RETRY_HINT)
        );
        for nonsense in [
            "-1",
            "NaN",
            "inf",
            "-inf",
            "1e999",
            "",
            " ",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 25:28:00 GMT",
            "Wed, 21 Oct 2015 07:28:00 PST",
            "Wed, 21 Oct -5 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(nonsense, now), None, "{nonsense:?}");
        }
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_HINT)
        );
        // retry-after-ms wins over Retry-After.
        assert_eq!(
            retry_hint(Some("250"), Some("9"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_hint(Some("x"), Some("9"), now),
            Some(Duration::from_secs(9))
        );
        assert_eq!(retry_hint(None, None, now), None);
        assert_eq!(parse_proto_duration("13s"), Some(Duration::from_secs(13)));
        assert_eq!(
            parse_proto_duration("0.5s"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_proto_duration("13"), None);
        assert_eq!(parse_proto_duration("-3s"), None);
    }
}
