//! Keeping keys out of everything Switchboard prints or stores. A key lives
//! in a [`Secret`] and in the one request header that carries
//! it; these helpers cover the rest:
//!
//! - [`is_sensitive_header`]: which request headers carry credentials (the
//!   HTTP client marks them sensitive, `Debug` output hides them);
//! - [`Headers`]: a `Debug` view of a header list with those values hidden;
//! - [`scrub`]: an error body or message with the keys that were sent, and
//!   the value of anything that looks like a credential header, replaced.
//!   Some proxies echo the request, headers included, in their error pages;
//!   that text reaches `ProviderError`'s message and raw body, history and
//!   the CLI's output only after this.

use std::fmt;

use crate::keys::Secret;

/// What a hidden value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Header names (lower-case) whose values are credentials.
const SENSITIVE: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
    "cookie",
];

/// Does header `name` carry a credential? The usual names, and any name
/// that says `key`, `token`, `secret` or `auth`.
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SENSITIVE.contains(&n.as_str())
        || ["key", "token", "secret", "auth"]
            .iter()
            .any(|w| n.contains(w))
}

/// `Debug` of a header list with credential values hidden.
pub struct Headers<'a>(pub &'a [(String, String)]);

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_sensitive_header(k) {
                    REDACTED
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            }))
            .finish()
    }
}

/// The credential values of `headers` (and the token of a `Bearer` value),
/// to be scrubbed from whatever comes back.
pub fn secrets_of(headers: &[(String, String)]) -> Vec<Secret> {
    let mut out: Vec<Secret> = Vec::new();
    for (k, v) in headers {
        if is_sensitive_header(k) {
            let v = v.trim();
            if let Some(token) = v.strip_prefix("Bearer ") {
                out.push(Secret::new(token));
            }
            out.push(Secret::new(v));
        }
    }
    // Longest first, so a whole header value goes before its token.
    out.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
    out.dedup_by(|a, b| a.expose() == b.expose());
    out
}

/// Shortest secret scrubbed by value; anything shorter is not a real key
/// and replacing it would mangle ordinary words.
const MIN_SECRET: usize = 4;

/// `text` with every occurrence of `secrets` replaced by [`REDACTED`], a
/// secret cut off at the end of a truncated text too, and the value of
/// every credential header it quotes (`authorization: ...`,
/// `"x-api-key": "..."`) replaced as well.
pub fn scrub(text: &str, secrets: &[Secret]) -> String {
    let mut out = text.to_owned();
    for s in secrets
        .iter()
        .map(Secret::expose)
        .filter(|s| s.len() >= MIN_SECRET)
    {
        if out.contains(s) {
            out = out.replace(s, REDACTED);
        }
        out = scrub_cut_tail(out, s);
    }
    redact_header_values(&out)
}

/// A text truncated in the middle of a secret (`…` marks the cut) keeps
/// no prefix of it.
fn scrub_cut_tail(text: String, secret: &str) -> String {
    let body = text.strip_suffix('…').unwrap_or(&text);
    let longest = (MIN_SECRET..secret.len())
        .rev()
        .filter(|&n| secret.is_char_boundary(n))
        .find(|&n| body.ends_with(&secret[..n]));
    match longest {
        Some(n) => format!("{}{REDACTED}…", &body[..body.len() - n]),
        None => text,
    }
}

/// Replace the value after each credential header name in `text`.
fn redact_header_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < lower.len() {
        let Some((start, name)) = SENSITIVE
            .iter()
            .filter_map(|n| lower[at..].find(n).map(|i| (at + i, *n)))
            .min_by_key(|(i, _)| *i)
        else {
            break;
        };
        let after_name = start + name.len();
        match value_span(text, after_name) {
            Some((v_start, v_end)) if &text[v_start..v_end] != REDACTED => {
                out.push_str(&text[copied..v_start]);
                out.push_str(REDACTED);
                copied = v_end;
                at = v_end;
            }
            _ => at = after_name,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Where the value of a `name: value`, `name=value` or `"name": "value"`
/// starting after the name at `from` lies, if it is one.
fn value_span(text: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut i = from;
    let skip = |i: &mut usize, set: &[u8]| {
        while *i < bytes.len() && set.contains(&bytes[*i]) {
            *i += 1;
        }
    };
    skip(&mut i, b"\"'\\");
    skip(&mut i, b" \t");
    if i >= bytes.len() || !matches!(bytes[i], b':' | b'=') {
        return None;
    }
    i += 1;
    skip(&mut i, b" \t\\\"'");
    let start = i;
    while i < bytes.len() && !b"\"'\\\r\n,;&}]".contains(&bytes[i]) {
        i += 1;
    }
    // Keep trailing spaces outside the value.
    let mut end = i;
    while end > start && bytes[end - 1] == b' ' {
        end -= 1;
    }
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_headers_are_recognized() {
        for h in [
            "Authorization",
            "x-api-key",
            "X-Goog-Api-Key",
            "api-key",
            "X-Auth-Token",
        ] {
            assert!(is_sensitive_header(h), "{h}");
        }
        for h in [
            "content-type",
            "anthropic-version",
            "X-Title",
            "HTTP-Referer",
        ] {
            assert!(!is_sensitive_header(h), "{h}");
        }
        let headers = vec![
            (
                "authorization".to_owned(),
                "Bearer sk-live-abcdef".to_owned(),
            ),
            ("X-Title".to_owned(), "Switchboard".to_owned()),
        ];
        let shown = format!("{:?}", Headers(&headers));
        assert!(!shown.contains("sk-live"), "{shown}");
        assert!(shown.contains("Switchboard"), "{shown}");
        let found: Vec<String> = secrets_of(&headers)
            .iter()
            .map(|s| s.expose().to_owned())
            .collect();
        assert_eq!(found, vec!["Bearer sk-live-abcdef", "sk-live-abcdef"]);
    }

    #[test]
    fn echoed_keys_and_credential_headers_are_scrubbed() {
        let key = "sk-proxy-echo-0123456789".to_owned();
        let secrets = vec![Secret::new(key.as_str())];
        let body = format!(
            r#"{{"error":{{"message":"bad gateway","request_headers":{{"Authorization":"Bearer {key}","X-Upstream-Key":"{key}","content-type":"application/json"}}}}}}"#
        );
        let s = scrub(&body, &secrets);
        assert!(!s.contains(&key), "{s}");
        assert!(s.contains("application/json"), "{s}");
        // A header this code does not know by name, with a key it was not
        // given, is still hidden when it is a credential header by name.
        let s = scrub(
            "upstream said: authorization: Bearer other-secret-99\nx-api-key=abc123def",
            &[],
        );
        assert!(
            !s.contains("other-secret-99") && !s.contains("abc123def"),
            "{s}"
        );
        assert!(s.starts_with("upstream said: authorization: "), "{s}");
        // A key cut by truncation leaves no prefix behind.
        let cut = format!("echo: {}…", &key[..12]);
        let s = scrub(&cut, &secrets);
        assert!(!s.contains(&key[..6]), "{s}");
        // Ordinary text is left alone.
        assert_eq!(scrub("Overloaded", &secrets), "Overloaded");
        assert_eq!(scrub("no key here", &[Secret::new("k")]), "no key here");
    }
}
