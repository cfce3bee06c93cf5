//! What differs between two answers, for the compare view's "diff with…":
//! [`diff`] compares two Markdown answers word by word, except inside
//! fenced code blocks, which are compared line by line (a changed
//! identifier in a code line marks the line, as a code review would). The
//! result is a list of [`Segment`]s that a view lays out inline
//! ([`Diff::inline_html`]) or side by side ([`Diff::side_html`]).
//!
//! Words are runs of letters and digits in any script; each CJK ideograph,
//! kana or Hangul syllable is a word of its own (those scripts put no spaces
//! between words), as is each punctuation mark, so "colour," vs "color,"
//! marks only the word. The matching itself is `similar`'s Myers diff.
//!
//! It is plain Rust (no DOM), so `cargo test` runs its tests on the host;
//! the wasm UI uses it as is. HTML it returns escapes all model text, with
//! the same escape as the rendered answers ([`switchboard_markdown::escape`]).
//! [`FramePace`] is when a view recomputes a diff of a streaming answer.
//!
//! ```
//! use switchboard_diff::{diff, Change};
//! let d = diff("The sky is blue.", "The sky is grey.");
//! assert!(!d.identical());
//! let changed: Vec<_> = d.segments.iter().filter(|s| s.change != Change::Equal)
//!     .map(|s| (s.change, s.text.as_str())).collect();
//! assert_eq!(changed, [(Change::Delete, "blue"), (Change::Insert, "grey")]);
//! assert!(diff("same\n", "same\n").identical());
//! ```

mod pace;
pub use pace::FramePace;

use similar::{Algorithm, DiffTag, capture_diff_slices};
use switchboard_markdown::escape_into;

/// What a segment is to the second answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// In both answers.
    Equal,
    /// Only in the first (the pane the diff was opened from).
    Delete,
    /// Only in the second.
    Insert,
}

/// A run of text with one [`Change`]; `code` when it lies in a fenced code
/// block (shown monospaced, compared by lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Equal, deleted or inserted.
    pub change: Change,
    /// Inside a fenced code block.
    pub code: bool,
    /// The text, as written.
    pub text: String,
}

/// The difference between two answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// The texts in order: equal runs, then what the first answer had
    /// there (deleted) and what the second has instead (inserted).
    pub segments: Vec<Segment>,
}

/// A token: text plus whether it is a code line, so that a prose word never
/// matches a line of code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Token<'a> {
    code: bool,
    text: &'a str,
}

impl Diff {
    /// True when the answers have the same words, code and spacing.
    pub fn identical(&self) -> bool {
        self.segments.iter().all(|s| s.change == Change::Equal)
    }

    /// How many words (or code lines) were deleted and inserted, not
    /// counting whitespace.
    pub fn counts(&self) -> (usize, usize) {
        let mut del = 0;
        let mut ins = 0;
        for s in &self.segments {
            let n = if s.code {
                s.text.lines().filter(|l| !l.trim().is_empty()).count()
            } else {
                tokens(&s.text, false)
                    .iter()
                    .filter(|t| !t.text.trim().is_empty())
                    .count()
            };
            match s.change {
                Change::Equal => {}
                Change::Delete => del += n,
                Change::Insert => ins += n,
            }
        }
        (del, ins)
    }

    /// One column: equal text with deletions in `<del>` and insertions in
    /// `<ins>`. Newlines are kept; the view styles it `white-space:
    /// pre-wrap`.
    pub fn inline_html(&self) -> String {
        self.html(|_| true)
    }

    /// Two columns: the first answer (equal and deleted text) and the second
    /// (equal and inserted text).
    pub fn side_html(&self) -> (String, String) {
        (
            self.html(|c| c != Change::Insert),
            self.html(|c| c != Change::Delete),
        )
    }

    fn html(&self, keep: impl Fn(Change) -> bool) -> String {
        let mut out = String::new();
        for s in self.segments.iter().filter(|s| keep(s.change)) {
            let (open, close) = match (s.change, s.code) {
                (Change::Equal, false) => ("", ""),
                (Change::Equal, true) => ("<code class=\"diff-code\">", "</code>"),
                (Change::Delete, false) => ("<del class=\"diff-del\">", "</del>"),
                (Change::Delete, true) => ("<del class=\"diff-del diff-code\">", "</del>"),
                (Change::Insert, false) => ("<ins class=\"diff-ins\">", "</ins>"),
                (Change::Insert, true) => ("<ins class=\"diff-ins diff-code\">", "</ins>"),
            };
            out.push_str(open);
            escape_into(&mut out, &s.text);
            out.push_str(close);
        }
        out
    }
}

/// Compare `old` (the pane the diff was opened from) with `new`.
pub fn diff(old: &str, new: &str) -> Diff {
    let a = markdown_tokens(old);
    let b = markdown_tokens(new);
    let mut segments: Vec<Segment> = Vec::new();
    let mut push = |change: Change, toks: &[Token<'_>]| {
        for t in toks {
            match segments.last_mut() {
                Some(last) if last.change == change && last.code == t.code => {
                    last.text.push_str(t.text)
                }
                _ => segments.push(Segment {
                    change,
                    code: t.code,
                    text: t.text.to_owned(),
                }),
            }
        }
    };
    for op in capture_diff_slices(Algorithm::Myers, &a, &b) {
        let (tag, ra, rb) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => push(Change::Equal, &a[ra]),
            DiffTag::Delete => push(Change::Delete, &a[ra]),
            DiffTag::Insert => push(Change::Insert, &b[rb]),
            DiffTag::Replace => {
                push(Change::Delete, &a[ra]);
                push(Change::Insert, &b[rb]);
            }
        }
    }
    Diff { segments }
}

/// The fence that opens a code block on this line (its character and
/// length), if any: up to three spaces, then three or more backticks or
/// tildes.
fn fence(line: &str) -> Option<(char, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let c = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = rest.chars().take_while(|x| *x == c).count();
    (n >= 3).then_some((c, n))
}

/// Prose as words, fenced code (fences included) as whole lines. An
/// unclosed fence runs to the end, as Markdown renders it.
fn markdown_tokens(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut prose_start = 0;
    let mut open: Option<(char, usize)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        match open {
            None => {
                if let Some(f) = fence(line) {
                    out.extend(tokens(&text[prose_start..start], false));
                    out.push(Token {
                        code: true,
                        text: line,
                    });
                    open = Some(f);
                }
            }
            Some((c, n)) => {
                out.push(Token {
                    code: true,
                    text: line,
                });
                let closes = fence(line).is_some_and(|(c2, n2)| {
                    c2 == c && n2 >= n && line.trim().chars().all(|x| x == c)
                });
                if closes {
                    open = None;
                    prose_start = pos;
                }
            }
        }
    }
    if open.is_none() {
        out.extend(tokens(&text[prose_start..], false));
    }
    out
}

/// Scripts written without spaces between words: each character is a word.
fn is_wordless_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK Extension A
        | 0x4E00..=0x9FFF // CJK Unified Ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK Compatibility Ideographs
        | 0x20000..=0x2FFFF
        | 0x0E00..=0x0E7F // Thai
    )
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Class {
    Space,
    Word,
    Single,
}

fn class(c: char) -> Class {
    if c.is_whitespace() {
        Class::Space
    } else if is_wordless_script(c) || !(c.is_alphanumeric() || c == '_') {
        Class::Single
    } else {
        Class::Word
    }
}

/// Words, whitespace runs and single marks, covering `text` exactly.
fn tokens(text: &str, code: bool) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<Class> = None;
    for (i, c) in text.char_indices() {
        let k = class(c);
        let joins = prev == Some(k) && k != Class::Single;
        if !joins && i > start {
            out.push(Token {
                code,
                text: &text[start..i],
            });
            start = i;
        }
        prev = Some(k);
    }
    if start < text.len() {
        out.push(Token {
            code,
            text: &text[start..],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(d: &Diff) -> Vec<(Change, bool, &str)> {
        d.segments
            .iter()
            .filter(|s| s.change != Change::Equal)
            .map(|s| (s.change, s.code, s.text.as_str()))
            .collect()
    }

    fn rebuild(d: &Diff, keep: Change) -> String {
        d.segments
            .iter()
            .filter(|s| s.change != keep)
            .map(|s| s.text.as_str())
            .collect()
    }

    #[test]
    fn identical_answers_say_so_and_whitespace_is_a_difference() {
        let text = "# Plan\n\n- one\n- two\n\n```rust\nfn main() {}\n```\n";
        let d = diff(text, text);
        assert!(d.identical());
        assert_eq!(d.counts(), (0, 0));
        assert!(diff("", "").identical());
        let d = diff("a  b", "a b");
        assert!(!d.identical(), "spacing changed");
        assert_eq!(d.counts(), (0, 0), "but no word did");
    }

    #[test]
    fn one_changed_word_in_markdown_prose_is_marked_alone() {
        let a = "## Answer\n\nUse **HTTP/2** for *streaming*, it is faster.\n";
        let b = "## Answer\n\nUse **HTTP/3** for *streaming*, it is faster.\n";
        let d = diff(a, b);
        assert_eq!(
            changes(&d),
            [(Change::Delete, false, "2"), (Change::Insert, false, "3")]
        );
        // Either side rebuilds exactly from the segments.
        assert_eq!(rebuild(&d, Change::Insert), a);
        assert_eq!(rebuild(&d, Change::Delete), b);
        let a = "The colour, I think, is red.";
        let b = "The color, I think, is red.";
        assert_eq!(
            changes(&diff(a, b)),
            [
                (Change::Delete, false, "colour"),
                (Change::Insert, false, "color")
            ]
        );
    }

    #[test]
    fn code_blocks_are_compared_line_by_line() {
        let a = "Try this:\n\n```python\nx = 1\nprint(x)\n```\n\nThen run it.\n";
        let b = "Try this:\n\n```python\nx = 2\nprint(x)\n```\n\nThen run it.\n";
        let d = diff(a, b);
        assert_eq!(
            changes(&d),
            [
                (Change::Delete, true, "x = 1\n"),
                (Change::Insert, true, "x = 2\n")
            ]
        );
        assert_eq!(d.counts(), (1, 1));
        // A word in prose never matches a code line with the same text.
        let d = diff("print(x)\n", "```\nprint(x)\n```\n");
        assert_eq!(
            changes(&d),
            [
                (Change::Delete, false, "print(x)\n"),
                (Change::Insert, true, "```\nprint(x)\n```\n")
            ]
        );
        // An unclosed fence is code to the end; a ```` fence is not closed by ```.
        let d = diff("````\na\n```\nb\n", "````\na\n```\nc\n");
        assert_eq!(
            changes(&d),
            [(Change::Delete, true, "b\n"), (Change::Insert, true, "c\n")]
        );
    }

    #[test]
    fn multibyte_text_is_split_at_character_boundaries() {
        let a = "Der Bär läuft schnell. 東京は大きい都市です。 😀 ok";
        let b = "Der Bär läuft langsam. 東京は小さい都市です。 😃 ok";
        let d = diff(a, b);
        assert_eq!(
            changes(&d),
            [
                (Change::Delete, false, "schnell"),
                (Change::Insert, false, "langsam"),
                (Change::Delete, false, "大き"),
                (Change::Insert, false, "小さ"),
                (Change::Delete, false, "😀"),
                (Change::Insert, false, "😃"),
            ]
        );
        assert_eq!(rebuild(&d, Change::Insert), a);
        assert_eq!(rebuild(&d, Change::Delete), b);
        assert!(diff("ünïcødé", "ünïcødé").identical());
    }

    #[test]
    fn html_escapes_model_text_and_lays_out_both_ways() {
        let d = diff("a <b> & 'c'", "a <i> & 'c'");
        let inline = d.inline_html();
        assert_eq!(
            inline,
            "a &lt;<del class=\"diff-del\">b</del><ins class=\"diff-ins\">i</ins>&gt; &amp; &#39;c&#39;"
        );
        let (left, right) = d.side_html();
        assert!(left.contains("<del class=\"diff-del\">b</del>") && !left.contains("<ins"));
        assert!(right.contains("<ins class=\"diff-ins\">i</ins>") && !right.contains("<del"));
        let d = diff("```\n<x>\n```\n", "```\n<y>\n```\n");
        assert!(
            d.inline_html()
                .contains("<del class=\"diff-del diff-code\">&lt;x&gt;\n</del>")
        );
    }

    #[test]
    fn an_added_paragraph_is_one_insertion() {
        let a = "First.\n";
        let b = "First.\n\nSecond paragraph here.\n";
        let d = diff(a, b);
        assert_eq!(d.counts(), (0, 4));
        assert!(changes(&d).iter().all(|(c, _, _)| *c == Change::Insert));
    }
}
