//! The echo stream: the backend sends a text back piece by piece, with
//! timings measured on a monotonic clock. The app shell uses it to prove the
//! UI → Rust → UI path over an IPC channel before real providers exist, and
//! the end-to-end harness checks that every piece arrives once and in order.

use std::time::Duration;

// tokio's Instant is the monotonic clock, and tests can pause it.
use switchboard_protocol::{EchoEvent, EchoRequest, EchoSummary};
use tokio::time::Instant;

/// Longest text the echo stream accepts, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Longest pause between pieces.
pub const MAX_GAP: Duration = Duration::from_millis(1_000);

/// Why an echo stream stopped early.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EchoError {
    /// The text was empty or too long.
    #[error("{0}")]
    Invalid(String),
    /// The receiver went away; nothing more can be delivered.
    #[error("the receiver stopped listening after {sent} pieces")]
    Closed {
        /// Pieces delivered before the receiver went away.
        sent: u64,
    },
}

/// Split `text` into words that keep their trailing whitespace, so that the
/// pieces concatenated are exactly `text`.
pub fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            out.push(&text[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Send `request.text` to `sink` piece by piece, then a final
/// [`EchoEvent::Done`] with what was measured. `sink` returns `false` when
/// its receiver is gone, which ends the stream.
pub async fn run(
    request: &EchoRequest,
    mut sink: impl FnMut(EchoEvent) -> bool,
) -> Result<EchoSummary, EchoError> {
    if request.text.trim().is_empty() {
        return Err(EchoError::Invalid(
            "nothing to echo: the text is empty".into(),
        ));
    }
    if request.text.len() > MAX_TEXT_BYTES {
        return Err(EchoError::Invalid(format!(
            "the text is {} bytes; the echo stream takes at most {MAX_TEXT_BYTES}",
            request.text.len()
        )));
    }
    let gap = Duration::from_millis(request.gap_ms).min(MAX_GAP);
    let started = Instant::now();
    let mut first_piece: Option<Duration> = None;
    let mut sent = 0u64;
    for piece in pieces(&request.text) {
        if sent > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        if !sink(EchoEvent::Delta {
            text: piece.to_owned(),
        }) {
            return Err(EchoError::Closed { sent });
        }
        first_piece.get_or_insert_with(|| started.elapsed());
        sent += 1;
    }
    let summary = EchoSummary {
        pieces: sent,
        bytes: request.text.len() as u64,
        first_piece_ms: millis(first_piece.unwrap_or_default()),
        total_ms: millis(started.elapsed()),
    };
    if !sink(EchoEvent::Done(summary.clone())) {
        return Err(EchoError::Closed { sent });
    }
    Ok(summary)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_reassemble_exactly() {
        for text in [
            "hello world",
            "  lead",
            "trail  ",
            "a\n\nb\tc",
            "héllo wörld ✓",
            "one",
        ] {
            let p = pieces(text);
            assert_eq!(p.concat(), text, "{p:?}");
        }
        assert_eq!(pieces("a b  c"), vec!["a ", "b  ", "c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn streams_every_piece_then_done() {
        let mut got = Vec::new();
        let req = EchoRequest {
            text: "one two three".into(),
            gap_ms: 20,
        };
        let summary = run(&req, |e| {
            got.push(e);
            true
        })
        .await
        .unwrap();
        assert_eq!(summary.pieces, 3);
        assert_eq!(summary.bytes, 13);
        assert!(summary.total_ms >= 40, "{summary:?}");
        let text: String = got
            .iter()
            .filter_map(|e| match e {
                EchoEvent::Delta { text } => Some(text.as_str()),
                EchoEvent::Done(_) => None,
            })
            .collect();
        assert_eq!(text, "one two three");
        assert_eq!(got.last(), Some(&EchoEvent::Done(summary)));
    }

    #[tokio::test]
    async fn stops_when_the_receiver_goes_away() {
        let req = EchoRequest {
            text: "a b c d".into(),
            gap_ms: 0,
        };
        let mut n = 0;
        let err = run(&req, |_| {
            n += 1;
            n <= 2
        })
        .await
        .unwrap_err();
        assert_eq!(err, EchoError::Closed { sent: 2 });
    }

    #[tokio::test]
    async fn rejects_empty_text() {
        let req = EchoRequest {
            text: " \n".into(),
            gap_ms: 0,
        };
        assert!(matches!(
            run(&req, |_| true).await,
            Err(EchoError::Invalid(_))
        ));
    }
}
