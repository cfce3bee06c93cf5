//! Cutting a growing Markdown text into blocks: the ones that are final
//! (nothing that arrives later can change how they render) and the last,
//! growing one. A streaming answer renders each final block once and only
//! re-renders the growing block; a finished or reopened answer is cut the
//! same way, so it looks exactly as it did while it streamed.
//!
//! A block ends at a blank line, and only when the line after it is known
//! to start a new block: not inside a code fence, not indented (a list
//! item's continuation, an indented code block going on), and not a list
//! item right after a list (the same list going on). Keeping text together
//! is always correct; cutting is done only when it is certain.

use std::ops::Range;

/// An open code fence: its character and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fence {
    ch: char,
    len: usize,
}

/// The cutting state of one growing text (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct BlockSplitter {
    /// Start of the growing block: everything before is in final blocks.
    done: usize,
    /// Start of the first line not scanned yet (a line is scanned once it
    /// is complete).
    pos: usize,
    fence: Option<Fence>,
    /// The growing block has had a non-blank line.
    has_content: bool,
    /// Its first line is a list item.
    is_list: bool,
    /// A blank line followed its content: the next non-blank line may
    /// start a new block.
    after_blank: bool,
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// A list item marker (`-`, `*`, `+`, `1.`, `1)`) after at most three spaces.
fn is_list_item(line: &str) -> bool {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return false;
    }
    let mut chars = t.chars();
    match chars.next() {
        Some('-' | '*' | '+') => matches!(chars.next(), None | Some(' ' | '\t' | '\n' | '\r')),
        Some(c) if c.is_ascii_digit() => {
            let digits = t.chars().take_while(char::is_ascii_digit).count();
            let mut rest = t[digits..].chars();
            digits <= 9
                && matches!(rest.next(), Some('.' | ')'))
                && matches!(rest.next(), None | Some(' ' | '\t' | '\n' | '\r'))
        }
        _ => false,
    }
}

fn opens_fence(line: &str) -> Option<Fence> {
    let t = line.trim_start();
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = t.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    // A backtick fence's info string cannot contain a backtick.
    if ch == '`' && t[len..].contains('`') {
        return None;
    }
    Some(Fence { ch, len })
}

fn closes_fence(line: &str, fence: Fence) -> bool {
    let t = line.trim();
    t.chars().count() >= fence.len && t.chars().all(|c| c == fence.ch)
}

impl BlockSplitter {
    /// A splitter for a text that starts empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the growing block starts.
    pub fn done(&self) -> usize {
        self.done
    }

    /// Whether `line` (complete or not) surely starts a new block after the
    /// blank line(s) that ended the growing block; `None` when it cannot be
    /// known yet (a partial line that might become a list item).
    fn starts_new_block(&self, line: &str, complete: bool) -> Option<bool> {
        let first = line.chars().next()?;
        if first.is_whitespace() {
            return Some(false);
        }
        if !self.is_list {
            return Some(true);
        }
        if !complete && (first.is_ascii_digit() || matches!(first, '-' | '*' | '+')) {
            return None;
        }
        Some(!is_list_item(line))
    }

    /// Scan what `text` (the whole text so far; it only grows) added, and
    /// return the blocks it made final, as byte ranges, in order.
    pub fn advance(&mut self, text: &str) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        if text.len() < self.pos {
            // The text was replaced (a regenerated answer): start over.
            *self = Self::default();
        }
        while let Some(nl) = text[self.pos..].find('\n') {
            let start = self.pos;
            let end = start + nl + 1;
            self.line(start, &text[start..end], &mut out);
            self.pos = end;
        }
        // A partial last line can still end the previous block.
        if self.after_blank && self.pos < text.len() && self.fence.is_none() {
            let partial = &text[self.pos..];
            if self.starts_new_block(partial, false) == Some(true) {
                out.push(self.done..self.pos);
                self.done = self.pos;
                self.reset_block();
            }
        }
        out
    }

    fn reset_block(&mut self) {
        self.has_content = false;
        self.is_list = false;
        self.after_blank = false;
    }

    /// Scan one complete line starting at byte `start`.
    fn line(&mut self, start: usize, line: &str, out: &mut Vec<Range<usize>>) {
        if let Some(f) = self.fence {
            if closes_fence(line, f) {
                self.fence = None;
            }
            return;
        }
        if is_blank(line) {
            if self.has_content {
                self.after_blank = true;
            }
            return;
        }
        if self.after_blank {
            if self.starts_new_block(line, true) == Some(true) {
                out.push(self.done..start);
                self.done = start;
                self.reset_block();
            } else {
                self.after_blank = false;
            }
        }
        if !self.has_content {
            self.has_content = true;
            self.is_list = is_list_item(line);
        }
        self.fence = opens_fence(line);
    }

    /// The growing block: everything after the final blocks.
    pub fn tail<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.done..).unwrap_or("")
    }

    /// The text ended: the growing block is final too (`None` when it is
    /// blank).
    pub fn finish(&mut self, text: &str) -> Option<Range<usize>> {
        let rest = self.done..text.len();
        self.done = text.len();
        self.pos = text.len();
        self.fence = None;
        self.reset_block();
        (!is_blank(&text[rest.clone()])).then_some(rest)
    }
}

/// Every block of a complete text, cut as a stream of it would be.
pub fn split_all(text: &str) -> Vec<Range<usize>> {
    let mut s = BlockSplitter::new();
    let mut blocks = s.advance(text);
    blocks.extend(s.finish(text));
    blocks
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn cut(text: &str) -> Vec<&str> {
        split_all(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn a_block_is_final_only_once_the_next_one_has_started() {
        let mut s = BlockSplitter::new();
        assert!(s.advance("Para one.\n").is_empty());
        assert!(
            s.advance("Para one.\n\n").is_empty(),
            "the next may continue it"
        );
        let text = "Para one.\n\nPa";
        assert_eq!(s.advance(text), vec![Range { start: 0, end: 11 }]);
        assert_eq!(s.tail(text), "Pa");
        let text = "Para one.\n\nPara two\n";
        assert!(s.advance(text).is_empty());
        assert_eq!(s.tail(text), "Para two\n");
        assert_eq!(s.finish(text), Some(11..text.len()));
    }

    #[test]
    fn code_fences_lists_and_indented_lines_stay_whole() {
        assert_eq!(
            cut("```rust\nfn a() {}\n\nfn b() {}\n```\n\nAfter.\n"),
            ["```rust\nfn a() {}\n\nfn b() {}\n```\n\n", "After.\n"]
        );
        assert_eq!(
            cut("~~~~\n~~~\n\nstill code\n~~~~\nx\n"),
            ["~~~~\n~~~\n\nstill code\n~~~~\nx\n"]
        );
        assert_eq!(
            cut("- a\n\n- b\n\n  more of b\n\n3. x\nText\n\nEnd"),
            ["- a\n\n- b\n\n  more of b\n\n3. x\nText\n\n", "End"]
        );
        assert_eq!(
            cut("1. one\n\n2. two\n\nDone.\n"),
            ["1. one\n\n2. two\n\n", "Done.\n"]
        );
        assert_eq!(cut("    code\n\n    more\n"), ["    code\n\n    more\n"]);
        assert_eq!(
            cut("| a | b |\n|---|---|\n| 1 | 2 |\n\n# Next\n"),
            ["| a | b |\n|---|---|\n| 1 | 2 |\n\n", "# Next\n"]
        );
        assert_eq!(cut(""), Vec::<&str>::new());
        assert_eq!(cut("\n\n"), Vec::<&str>::new());
    }

    #[test]
    fn a_partial_line_that_may_become_a_list_item_waits() {
        let mut s = BlockSplitter::new();
        assert!(s.advance("- a\n\n1").is_empty());
        assert!(s.advance("- a\n\n1.").is_empty());
        assert!(s.advance("- a\n\n1. b\n").is_empty(), "the same list");
        let text = "- a\n\n1. b\n\nT";
        let cut = text.len() - 1;
        assert_eq!(s.advance(text), vec![Range { start: 0, end: cut }]);
    }

    /// However the text arrives, the blocks are the same as when it is cut
    /// whole: streaming and reopening show the same thing.
    #[test]
    fn any_chunking_cuts_the_same_blocks() {
        let text = "# Title\n\nIntro *text* with `code`.\n\n```python\ndef f():\n\n    return 1\n```\n\n\
                    - one\n- two\n\n  cont\n\n1. x\n2. y\n\n| h1 | h2 |\n|:---|---:|\n| é | ✓ |\n\n\
                    > quote\n\n    indented\n\n    code\n\nLast line without newline";
        let whole = split_all(text);
        let boundaries: Vec<usize> = (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .collect();
        for step in [1, 2, 3, 7, 13] {
            let mut s = BlockSplitter::new();
            let mut got = Vec::new();
            for end in boundaries.iter().step_by(step).chain([&text.len()]) {
                let prefix = &text[..*end];
                got.extend(s.advance(prefix));
                let tail = s.tail(prefix);
                assert!(prefix.ends_with(tail));
            }
            got.extend(s.finish(text));
            assert_eq!(got, whole, "step {step}");
        }
        let joined: String = whole.iter().map(|r| &text[r.clone()]).collect();
        assert_eq!(joined.trim_end(), text.trim_end(), "nothing lost");
    }

    #[test]
    fn a_replaced_text_starts_over() {
        let mut s = BlockSplitter::new();
        s.advance("Long first answer.\n\nSecond block.\n\nThird");
        assert!(s.done() > 0);
        assert!(s.advance("New").is_empty());
        assert_eq!(s.tail("New"), "New");
    }
}
