//! Classified provider errors. Every failure carries what a caller needs to
//! decide what to do next (retry, fall back, show the user) without string
//! matching: a kind, the HTTP status, `Retry-After`, and a truncated body.

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
    /// The request was rejected as invalid.
    BadRequest,
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
            ErrorKind::NotFound => "not_found",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Budget => "budget",
            ErrorKind::Policy => "policy",
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
    /// How long the provider asked us to wait (`Retry-After`).
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

/// Parse a `Retry-After` header: delta-seconds (possibly fractional) or an
/// HTTP date is not supported by every provider; seconds are what they send.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
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
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
