//! Errors in the caller's dialect: OpenAI's `{"error": {message, type,
//! code}}` on `/v1/chat/completions` (and everything that is not
//! `/v1/messages`), Anthropic's `{"type": "error", "error": {type,
//! message}}` on `/v1/messages`, with the status codes each SDK acts on
//! (it retries 429 and 5xx, and raises the class named after the status).
//!
//! A routed request that failed is mapped from its classified outcome,
//! never from message text: every target's budget refused → 402 naming
//! the budgets; policy (or a disabled provider) → 403; every target that
//! ran was rate-limited → 429 with the shortest `Retry-After` any gave;
//! the request itself was wrong for the provider (or a parameter the
//! model does not take) → 400; the model does not exist there → 404; a
//! timeout → 504; overloaded → 503; anything else (the provider account's
//! credit, a region it will not serve, a broken stream) → 502. The body
//! lists every attempt, as `x-switchboard-attempts` does.

use std::time::Duration;

use hyper::StatusCode;
use switchboard_engine::ErrorKind;
use switchboard_engine::hooks::AttemptOutcome;
use switchboard_engine::routing::{RouteAttempt, RouteOutcome};

use crate::wire::json_str;

/// Which wire format a request speaks (and its errors are written in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

/// An error answer.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    /// The machine code (`model_not_found`, `budget_exceeded`, ...).
    pub code: &'static str,
    pub message: String,
    /// For 429: how long the caller should wait.
    pub retry_after: Option<Duration>,
    /// The budgets that refused, for 402.
    pub budgets: Vec<String>,
    /// Every attempt of a routed request that failed.
    pub attempts: Vec<RouteAttempt>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            budgets: Vec::new(),
            attempts: Vec::new(),
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The answer for a routed request that did not answer. `budgets`:
    /// the budgets that refused its attempts.
    pub(crate) fn from_outcome(outcome: &RouteOutcome, budgets: Vec<String>) -> Self {
        let (kind, message) = match &outcome.result.error {
            Some(e) => (e.kind, e.message.clone()),
            None => (ErrorKind::Malformed, "no answer".to_owned()),
        };
        let ran: Vec<&RouteAttempt> = outcome
            .attempts
            .iter()
            .filter(|a| a.skip_kind().is_none())
            .collect();
        let all_rate_limited = !ran.is_empty()
            && ran.iter().all(|a| {
                matches!(
                    &a.record.outcome,
                    AttemptOutcome::Error {
                        kind: ErrorKind::RateLimited,
                        ..
                    }
                )
            });
        let (status, code) = if all_rate_limited {
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        } else {
            match kind {
                ErrorKind::Budget => (StatusCode::PAYMENT_REQUIRED, "budget_exceeded"),
                ErrorKind::Policy => (StatusCode::FORBIDDEN, "policy"),
                ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
                ErrorKind::Unsupported => (StatusCode::BAD_REQUEST, "unsupported_parameter"),
                // The provider account's credit or region, not the caller's.
                ErrorKind::Billing => (StatusCode::BAD_GATEWAY, "upstream_billing"),
                ErrorKind::Unavailable => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
                ErrorKind::ContextTooLong => (StatusCode::BAD_REQUEST, "context_length_exceeded"),
                ErrorKind::NotFound => (StatusCode::NOT_FOUND, "model_not_found"),
                ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
                ErrorKind::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "upstream_overloaded"),
                ErrorKind::RateLimited => (StatusCode::BAD_GATEWAY, "upstream_error"),
                ErrorKind::Auth => (StatusCode::BAD_GATEWAY, "upstream_auth"),
                ErrorKind::Stopped => (
                    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
                    "stopped",
                ),
                ErrorKind::Network | ErrorKind::Interrupted | ErrorKind::Malformed => {
                    (StatusCode::BAD_GATEWAY, "upstream_error")
                }
            }
        };
        let retry_after = if all_rate_limited {
            ran.iter()
                .filter_map(|a| a.error.as_ref().and_then(|e| e.retry_after))
                .min()
        } else {
            None
        };
        let message = if ran.len() > 1 {
            format!("every target failed; the last: {message}")
        } else {
            message
        };
        Self {
            status,
            code,
            message,
            retry_after,
            budgets,
            attempts: outcome.attempts.clone(),
        }
    }

    /// The body, in `dialect`.
    pub(crate) fn body(&self, dialect: Dialect) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        match dialect {
            Dialect::OpenAi => {
                out.extend_from_slice(b"{\"error\":{\"message\":");
                json_str(&mut out, &self.message);
                out.extend_from_slice(b",\"type\":");
                json_str(&mut out, openai_type(self.status));
                out.extend_from_slice(b",\"param\":null,\"code\":");
                json_str(&mut out, self.code);
                self.details(&mut out);
                out.extend_from_slice(b"}}");
            }
            Dialect::Anthropic => {
                out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":");
                json_str(&mut out, anthropic_type(self.status));
                out.extend_from_slice(b",\"message\":");
                json_str(&mut out, &self.message);
                self.details(&mut out);
                out.extend_from_slice(b"}}");
            }
        }
        out
    }

    /// Switchboard's own fields inside the error object: the budgets that
    /// refused and every attempt.
    fn details(&self, out: &mut Vec<u8>) {
        if !self.budgets.is_empty() {
            out.extend_from_slice(b",\"budgets\":[");
            for (i, b) in self.budgets.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, b);
            }
            out.push(b']');
        }
        if !self.attempts.is_empty() {
            out.extend_from_slice(b",\"attempts\":[");
            for (i, a) in self.attempts.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"target\":");
                json_str(out, &a.target);
                let (outcome, kind, message) = match &a.record.outcome {
                    AttemptOutcome::Ok => ("ok", None, None),
                    AttemptOutcome::Stopped => ("stopped", None, None),
                    AttemptOutcome::Error { kind, message } => {
                        ("error", Some(kind.as_str()), Some(message.as_str()))
                    }
                    AttemptOutcome::Skipped { kind, reason } => {
                        ("skipped", Some(kind.as_str()), Some(reason.as_str()))
                    }
                };
                out.extend_from_slice(b",\"outcome\":");
                json_str(out, outcome);
                if let Some(k) = kind {
                    out.extend_from_slice(b",\"kind\":");
                    json_str(out, k);
                }
                if let Some(status) = a.error.as_ref().and_then(|e| e.status) {
                    out.extend_from_slice(format!(",\"status\":{status}").as_bytes());
                }
                if let Some(m) = message {
                    out.extend_from_slice(b",\"message\":");
                    json_str(out, m);
                }
                out.push(b'}');
            }
            out.push(b']');
        }
    }
}

/// OpenAI's `error.type` for a status.
fn openai_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "insufficient_quota",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// Anthropic's `error.type` for a status.
fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// `x-switchboard-attempts`: every attempt as `target=outcome[/kind]`,
/// comma-separated, in order; `running` for one still streaming.
pub(crate) fn attempts_header(attempts: &[(String, String)]) -> String {
    let mut h = String::new();
    for (i, (target, outcome)) in attempts.iter().enumerate() {
        if i > 0 {
            h.push_str(", ");
        }
        h.push_str(target);
        h.push('=');
        h.push_str(outcome);
    }
    // A header value is visible ASCII: anything else becomes '?'.
    h.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// How an attempt ended, for [`attempts_header`].
pub(crate) fn attempt_word(a: &RouteAttempt) -> String {
    match &a.record.outcome {
        AttemptOutcome::Ok => "ok".into(),
        AttemptOutcome::Stopped => "stopped".into(),
        AttemptOutcome::Error { kind, .. } => format!("error/{}", kind.as_str()),
        AttemptOutcome::Skipped { kind, .. } => format!("skipped/{kind}"),
    }
}
