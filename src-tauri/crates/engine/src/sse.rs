//! A Server-Sent Events decoder that works on bytes as they come off the
//! network: a UTF-8 character or a line may be split across chunks, lines
//! may end in `\n`, `\r\n` or `\r`, and comment lines (`: OPENROUTER
//! PROCESSING`) carry nothing. Lines are decoded only once complete, so a
//! split character is never seen half.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field (empty when absent, meaning "message").
    pub event: String,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// Incremental decoder: feed chunks, take the events they complete.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    /// Lines that were not valid UTF-8 (counted, and skipped).
    pub invalid_lines: usize,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next chunk of bytes; appends completed events to `out`.
    ///
    /// A line that lies whole inside `chunk` is read where it is; only the
    /// part of a line that a chunk boundary cuts is copied, and the buffer
    /// it goes to keeps its capacity (a streamed answer is thousands of
    /// short lines: no allocation or copy per line).
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', rest) {
            let (line, tail) = rest.split_at(pos);
            let was_cr = tail[0] == b'\r';
            rest = &tail[1..];
            if was_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if self.line.is_empty() {
                self.on_line(line, out);
            } else {
                self.line.extend_from_slice(line);
                let joined = std::mem::take(&mut self.line);
                self.on_line(&joined, out);
                // Back, emptied, with its capacity for the next cut line.
                self.line = joined;
                self.line.clear();
            }
        }
        self.line.extend_from_slice(rest);
    }

    /// The stream ended: dispatch a last event that lacked its blank line.
    /// (A cut connection is detected by the HTTP layer and the protocol's
    /// own terminator, not here.)
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, out);
        }
        self.dispatch(out);
    }

    fn on_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) {
        if raw.is_empty() {
            self.dispatch(out);
            return;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            self.invalid_lines += 1;
            return;
        };
        if line.starts_with(':') {
            return; // comment
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields do not matter here
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: std::mem::take(&mut self.event),
                data: std::mem::take(&mut self.data),
            });
        } else {
            self.event.clear();
        }
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(bytes: &[u8], size: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(size) {
            d.feed(chunk, &mut out);
        }
        d.finish(&mut out);
        out
    }

    fn data(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let stream =
            "event: a\ndata: {\"t\":\"héllo ✓ 🎉\"}\n\n: comment\n\ndata: two\ndata: lines\n\n";
        let whole = decode_in_pieces(stream.as_bytes(), stream.len());
        assert_eq!(data(&whole), vec!["{\"t\":\"héllo ✓ 🎉\"}", "two\nlines"]);
        assert_eq!(whole[0].event, "a");
        for size in 1..stream.len() {
            assert_eq!(
                decode_in_pieces(stream.as_bytes(), size),
                whole,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn crlf_and_lone_cr_line_endings() {
        let crlf = "data: one\r\n\r\ndata: two\r\n\r\n";
        for size in 1..=crlf.len() {
            assert_eq!(
                data(&decode_in_pieces(crlf.as_bytes(), size)),
                vec!["one", "two"]
            );
        }
        assert_eq!(
            data(&decode_in_pieces(b"data: x\r\rdata: y\r\r", 3)),
            vec!["x", "y"]
        );
    }

    #[test]
    fn comments_and_unknown_fields_are_skipped() {
        let s = ": OPENROUTER PROCESSING\n\nid: 7\nretry: 10\nfoo: bar\ndata: [DONE]\n\n";
        let ev = decode_in_pieces(s.as_bytes(), 5);
        assert_eq!(data(&ev), vec!["[DONE]"]);
    }

    #[test]
    fn a_last_event_without_blank_line_is_kept_at_the_end() {
        assert_eq!(
            data(&decode_in_pieces(b"data: a\n\ndata: b", 4)),
            vec!["a", "b"]
        );
    }

    #[test]
    fn data_without_space_and_empty_data() {
        assert_eq!(
            data(&decode_in_pieces(b"data:x\n\ndata\n\n", 2)),
            vec!["x", ""]
        );
    }
}
