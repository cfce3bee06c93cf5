//! Drawing answers while they stream, and keeping them in view.
//!
//! Each card draws its answer as Markdown block by block
//! ([`switchboard_markdown::BlockSplitter`]): a block that is final is
//! rendered once and appended; only the last, growing block is rendered
//! again, at most once per animation frame for all cards together, and
//! less often when formatting it costs more than the page can spare (new
//! text then shows at once, plain, until the block is formatted again).
//! What formatting costs is mostly layout, not the Markdown: replacing a
//! block's HTML lays the whole block out again, while text added to its
//! last text node is laid out from its last line on.
//! When the answer ends its last block is drawn at once, in the same
//! place, so nothing jumps. A reopened answer is cut the same way, so it
//! looks as it did while it streamed.
//!
//! A pane follows its streams (stays scrolled to the bottom) until the user
//! scrolls up; the pane then offers "Jump to latest". With synchronized
//! scrolling, the other panes show the same round at the same place as the
//! pane being scrolled, whatever the length of their answers.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use leptos::prelude::*;
use switchboard_markdown::{BlockSplitter, render};
use wasm_bindgen::JsCast;

use super::state::{Answer, Status, now_ms};

/// How close to the bottom (px) still counts as "at the bottom".
const BOTTOM_SLACK: i32 = 48;

/// The growing blocks are formatted again at most once per this many times
/// what the last frame that formatted them cost, the layout it caused
/// included (every streaming card's block is formatted in that frame): a
/// long block that is slow to format (a big table, a long paragraph) is
/// formatted less often and the page stays free to take in tokens. Text
/// that arrives in between is shown at once, as plain text at the end of
/// the block, until the next formatting; the end of an answer is formatted
/// at once.
const TAIL_PACE: f64 = 4.0;

/// One card's drawing state: its two containers (final blocks, the growing
/// block) and how far the text has been cut.
#[derive(Debug)]
pub struct Renderer {
    answer: Answer,
    blocks: web_sys::Element,
    tail: web_sys::Element,
    splitter: BlockSplitter,
    generation: u64,
    /// Where the growing block was formatted: `(its start, text end)`.
    tail_drawn: Option<(usize, usize)>,
    /// How much text the page shows (formatted or appended plain).
    tail_shown: usize,
    /// The length of text the page showed in full, and since when: the
    /// end of an answer is often on screen before the answer is over.
    shown: Option<(usize, f64)>,
    /// Plain text is waiting to be formatted: draw again on a later frame.
    pending_format: bool,
    finished: bool,
}

/// Where plain text appended to a formatted block goes: the innermost last
/// element that holds text (a paragraph, list item, code, cell).
fn text_end(tail: &web_sys::Element) -> web_sys::Element {
    let mut at = tail.clone();
    while let Some(last) = at.last_element_child() {
        match last.tag_name().as_str() {
            "P" | "LI" | "CODE" | "PRE" | "TD" | "TH" | "TR" | "TBODY" | "TABLE" | "UL" | "OL"
            | "BLOCKQUOTE" | "DIV" | "H1" | "H2" | "H3" | "H4" | "H5" | "H6" | "EM" | "STRONG"
            | "DEL" => at = last,
            _ => break,
        }
    }
    at
}

/// Append `new` to the text of `el`: to its last text node when it ends
/// with one, so that WebKit lays out only the last lines again (a new text
/// node has it lay out the whole paragraph, as long as the answer).
fn append_text(el: &web_sys::Element, new: &str) {
    if let Some(last) = el.last_child()
        && let Ok(text) = last.dyn_into::<web_sys::Text>()
    {
        text.append_data(new).ok();
        return;
    }
    let _ = el.append_with_str_1(new);
}

impl Renderer {
    pub fn new(answer: Answer, blocks: web_sys::Element, tail: web_sys::Element) -> Self {
        let generation = answer.stream_id.get_untracked();
        Self {
            answer,
            blocks,
            tail,
            splitter: BlockSplitter::new(),
            generation,
            tail_drawn: None,
            tail_shown: 0,
            shown: None,
            pending_format: false,
            finished: false,
        }
    }

    fn reset(&mut self) {
        self.blocks.set_inner_html("");
        self.tail.set_inner_html("");
        self.splitter = BlockSplitter::new();
        self.tail_drawn = None;
        self.tail_shown = 0;
        self.shown = None;
        self.finished = false;
    }

    /// Draw what arrived since the last call; `done`: the text is complete;
    /// `format_due`: the growing block may be formatted (else new text is
    /// appended to it plain, unless a block ended). True when the growing
    /// block was formatted.
    pub fn draw(&mut self, done: bool, format_due: bool) -> bool {
        let generation = self.answer.stream_id.try_get_untracked().unwrap_or(0);
        if generation != self.generation {
            self.generation = generation;
            self.reset();
        }
        if self.finished {
            return false;
        }
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
            return false;
        };
        let (blocks, tail) = (&self.blocks, &self.tail);
        let splitter = &mut self.splitter;
        let tail_drawn = &mut self.tail_drawn;
        let tail_shown = &mut self.tail_shown;
        let mut formatted = false;
        let drawn = self.answer.text.try_with_untracked(|text| {
            if text.len() < splitter.done() {
                return None;
            }
            let append = |html: String| {
                if let Ok(el) = doc.create_element("div") {
                    el.set_class_name("md-block");
                    el.set_inner_html(&html);
                    let _ = blocks.append_child(&el);
                }
            };
            let mut cut = false;
            for range in splitter.advance(text) {
                append(render(&text[range]));
                cut = true;
            }
            if done {
                if let Some(range) = splitter.finish(text) {
                    append(render(&text[range]));
                }
                tail.set_inner_html("");
                *tail_drawn = None;
            } else {
                let now = (splitter.done(), text.len());
                if *tail_drawn != Some(now) {
                    if format_due || cut || *tail_shown < splitter.done() {
                        tail.set_inner_html(&render(splitter.tail(text)));
                        *tail_drawn = Some(now);
                        formatted = true;
                    } else if let Some(new) = text.get(*tail_shown..) {
                        // Shown now, formatted with the next formatting.
                        let end = text_end(tail);
                        // Formatting drops a paragraph's trailing spaces:
                        // the first words after it would run into its last.
                        let apart = tail_drawn.is_some_and(|(_, at)| at == *tail_shown)
                            && text[..*tail_shown].ends_with(char::is_whitespace)
                            && !new.starts_with(char::is_whitespace)
                            && !matches!(end.tag_name().as_str(), "CODE" | "PRE");
                        if apart {
                            append_text(&end, " ");
                        }
                        append_text(&end, new);
                    }
                }
            }
            *tail_shown = text.len();
            Some(text.len())
        });
        let Some(shown_len) = drawn.flatten() else {
            if drawn.is_some() {
                // The text was replaced: draw it again from the start.
                self.reset();
                return self.draw(done, format_due);
            }
            return false;
        };
        let now = now_ms();
        if self.shown.is_none_or(|(len, _)| len != shown_len) {
            if self.shown.is_none_or(|(len, _)| len == 0)
                && shown_len > 0
                && let Some(Some(sent)) = self.answer.sent_at.try_get_untracked()
            {
                self.answer.first_ms.set(Some(now - sent));
            }
            self.shown = Some((shown_len, now));
        }
        if done {
            self.finished = true;
            if let (Some(Some(sent)), Some((_, at))) =
                (self.answer.sent_at.try_get_untracked(), self.shown)
            {
                // From the send to the moment the whole text was on screen.
                self.answer.drawn_ms.set(Some(at - sent));
            }
        } else if self.tail_drawn.is_none_or(|(_, end)| end < shown_len) {
            // Plain text waits for its formatting: come back for it.
            self.pending_format = true;
        }
        formatted
    }

    /// Keep the card's pane at the bottom if it follows its stream. Apart
    /// from [`Renderer::draw`]: reading where the bottom is lays the page
    /// out, so a frame draws every card first and then follows, one
    /// layout for all the panes instead of one per pane.
    pub fn follow(&self) {
        follow(&self.blocks);
    }
}

/// A card's renderer, shared with the frame scheduler.
pub type SharedRenderer = Rc<RefCell<Option<Renderer>>>;

thread_local! {
    static QUEUE: RefCell<Vec<Weak<RefCell<Option<Renderer>>>>> = const { RefCell::new(Vec::new()) };
    static SCHEDULED: Cell<bool> = const { Cell::new(false) };
    /// Not before this time ([`now_ms`]) are the growing blocks formatted
    /// again (see [`TAIL_PACE`]).
    static NEXT_FORMAT_AT: Cell<f64> = const { Cell::new(0.0) };
}

/// How long [`after_frame`] waits for a frame at most: none comes while
/// the window is hidden, and what waits must not wait for the user.
const FRAME_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Resolves after the next animation frame (in a task of its own, once the
/// frame's drawing is done), or after [`FRAME_WAIT`] if no frame comes.
pub async fn after_frame() {
    let (tx, rx) = futures_channel::oneshot::channel::<()>();
    let tx = Rc::new(Cell::new(Some(tx)));
    let resolve = move || {
        if let Some(tx) = tx.take() {
            let _ = tx.send(());
        }
    };
    let on_frame = resolve.clone();
    request_animation_frame(move || set_timeout(on_frame, std::time::Duration::ZERO));
    set_timeout(resolve, FRAME_WAIT);
    let _ = rx.await;
}

/// Draw `renderer` on the next animation frame (once, however often it is
/// asked for before then).
pub fn schedule(renderer: &SharedRenderer) {
    let weak = Rc::downgrade(renderer);
    QUEUE.with_borrow_mut(|q| {
        if !q.iter().any(|w| w.ptr_eq(&weak)) {
            q.push(weak);
        }
    });
    if !SCHEDULED.replace(true) {
        request_animation_frame(frame);
    }
}

fn frame() {
    SCHEDULED.set(false);
    let started = now_ms();
    let format_due = started >= NEXT_FORMAT_AT.get();
    let mut formatted = false;
    let queued = QUEUE.with_borrow_mut(std::mem::take);
    let mut drawn = Vec::with_capacity(queued.len());
    for weak in queued {
        // A card that left the screen dropped its renderer: nothing to do.
        let Some(shared) = weak.upgrade() else {
            continue;
        };
        let again = match shared.try_borrow_mut() {
            Ok(mut slot) => slot.as_mut().map(|r| {
                let done = r.answer.status.try_get_untracked() != Some(Status::Streaming);
                formatted |= r.draw(done, done || format_due);
                std::mem::take(&mut r.pending_format)
            }),
            Err(_) => None,
        };
        let Some(again) = again else {
            continue;
        };
        if again {
            schedule(&shared);
        }
        drawn.push(shared);
    }
    for shared in drawn {
        if let Ok(slot) = shared.try_borrow()
            && let Some(r) = slot.as_ref()
        {
            r.follow();
        }
    }
    if formatted {
        // Following reads the layout, so the frame's cost includes it.
        let now = now_ms();
        NEXT_FORMAT_AT.set(now + (now - started) * TAIL_PACE);
    }
}

fn pane_body(el: &web_sys::Element) -> Option<web_sys::Element> {
    el.closest(".pane-body").ok().flatten()
}

/// Scroll `body` to `top` ourselves, remembering where, so its scroll
/// event is not taken for the user's.
fn scroll_to(body: &web_sys::Element, top: i32) {
    if (body.scroll_top() - top).abs() > 1 {
        let _ = body.set_attribute("data-auto-top", &top.to_string());
        body.set_scroll_top(top);
    }
}

/// Keep the pane of `el` at the bottom if it follows its stream.
pub fn follow(el: &web_sys::Element) {
    if let Some(body) = pane_body(el)
        && body.get_attribute("data-follow").as_deref() != Some("off")
    {
        scroll_to(&body, body.scroll_height() - body.client_height());
    }
}

/// Whether the pane body is scrolled to (nearly) its bottom.
pub fn at_bottom(body: &web_sys::Element) -> bool {
    body.scroll_height() - body.scroll_top() - body.client_height() <= BOTTOM_SLACK
}

/// Scroll to the bottom and follow again.
pub fn jump_to_latest(body: &web_sys::Element) {
    let _ = body.set_attribute("data-follow", "on");
    scroll_to(body, body.scroll_height() - body.client_height());
}

/// A scroll of `body`: it follows its stream while it is at the bottom.
/// Returns true when the user scrolled it (not this module), so that
/// synchronized panes follow it. (Comparing positions, not flags: several
/// scrolls in one frame make one event.)
pub fn on_scroll(body: &web_sys::Element) -> bool {
    let ours = body
        .get_attribute("data-auto-top")
        .and_then(|t| t.parse::<i32>().ok())
        .is_some_and(|t| (t - body.scroll_top()).abs() <= 1);
    let _ = body.set_attribute("data-follow", if at_bottom(body) { "on" } else { "off" });
    !ours
}

fn cards(body: &web_sys::Element) -> Vec<web_sys::HtmlElement> {
    let Ok(list) = body.query_selector_all(":scope > .answer-card") else {
        return Vec::new();
    };
    (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
        .collect()
}

/// Align the other panes on the round at the top of `source`: the same
/// round at the same relative place in its card.
pub fn sync_from(source: &web_sys::Element) {
    let top = source.scroll_top();
    let Some((round, frac)) = cards(source).into_iter().find_map(|c| {
        let (y, h) = (c.offset_top(), c.offset_height().max(1));
        (y + h > top).then(|| {
            (
                c.get_attribute("data-round").unwrap_or_default(),
                f64::from((top - y).max(0)) / f64::from(h),
            )
        })
    }) else {
        return;
    };
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(bodies) = doc.query_selector_all(".pane-body") else {
        return;
    };
    for i in 0..bodies.length() {
        let Some(body) = bodies
            .item(i)
            .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
        else {
            continue;
        };
        if body == *source {
            continue;
        }
        let Some(card) = cards(&body)
            .into_iter()
            .find(|c| c.get_attribute("data-round").as_deref() == Some(round.as_str()))
        else {
            continue;
        };
        let want = (card.offset_top() + (frac * f64::from(card.offset_height())).round() as i32)
            .min(body.scroll_height() - body.client_height())
            .max(0);
        scroll_to(&body, want);
    }
}
