//! Drawing answers while they stream, and keeping them in view.
//!
//! Each card draws its answer as Markdown block by block
//! ([`switchboard_markdown::BlockSplitter`]): a block that is final is
//! rendered once and appended; only the last, growing block is rendered
//! again, and at most once per animation frame for all cards together.
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

/// A growing block is redrawn at most once per this many times what its
/// last drawing cost: a long block that is slow to draw (a big table, a
/// long paragraph) is redrawn less often, and the page stays free to take
/// in the next tokens; the end of the answer is always drawn at once.
const TAIL_PACE: f64 = 5.0;

/// One card's drawing state: its two containers (final blocks, the growing
/// block) and how far the text has been cut.
#[derive(Debug)]
pub struct Renderer {
    answer: Answer,
    blocks: web_sys::Element,
    tail: web_sys::Element,
    splitter: BlockSplitter,
    generation: u64,
    /// Bytes of the growing block last drawn (from `splitter.done()`).
    tail_drawn: Option<(usize, usize)>,
    /// Not before this time ([`now_ms`]) is the growing block redrawn.
    next_tail_at: f64,
    finished: bool,
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
            next_tail_at: 0.0,
            finished: false,
        }
    }

    fn reset(&mut self) {
        self.blocks.set_inner_html("");
        self.tail.set_inner_html("");
        self.splitter = BlockSplitter::new();
        self.tail_drawn = None;
        self.finished = false;
    }

    /// Draw what arrived since the last call; `done`: the text is complete.
    /// False when the growing block was left for a later frame (pacing).
    pub fn draw(&mut self, done: bool) -> bool {
        let generation = self.answer.stream_id.try_get_untracked().unwrap_or(0);
        if generation != self.generation {
            self.generation = generation;
            self.reset();
        }
        if self.finished {
            return true;
        }
        let started = now_ms();
        if !done && started < self.next_tail_at {
            return false;
        }
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
            return true;
        };
        let (blocks, tail) = (&self.blocks, &self.tail);
        let splitter = &mut self.splitter;
        let tail_drawn = &mut self.tail_drawn;
        let drawn = self.answer.text.try_with_untracked(|text| {
            if text.len() < splitter.done() {
                return false;
            }
            let append = |html: String| {
                if let Ok(el) = doc.create_element("div") {
                    el.set_class_name("md-block");
                    el.set_inner_html(&html);
                    let _ = blocks.append_child(&el);
                }
            };
            for range in splitter.advance(text) {
                append(render(&text[range]));
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
                    tail.set_inner_html(&render(splitter.tail(text)));
                    *tail_drawn = Some(now);
                }
            }
            true
        });
        if drawn == Some(false) {
            // The text was replaced: draw it again from the start.
            self.reset();
            return self.draw(done);
        }
        self.next_tail_at = now_ms() + (now_ms() - started) * TAIL_PACE;
        if done {
            self.finished = true;
            if let Some(Some(sent)) = self.answer.sent_at.try_get_untracked() {
                self.answer.drawn_ms.set(Some(now_ms() - sent));
            }
        }
        follow(&self.blocks);
        true
    }
}

/// A card's renderer, shared with the frame scheduler.
pub type SharedRenderer = Rc<RefCell<Option<Renderer>>>;

thread_local! {
    static QUEUE: RefCell<Vec<Weak<RefCell<Option<Renderer>>>>> = const { RefCell::new(Vec::new()) };
    static SCHEDULED: Cell<bool> = const { Cell::new(false) };
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
    let queued = QUEUE.with_borrow_mut(std::mem::take);
    for weak in queued {
        // A card that left the screen dropped its renderer: nothing to do.
        if let Some(shared) = weak.upgrade()
            && let Ok(mut slot) = shared.try_borrow_mut()
            && let Some(r) = slot.as_mut()
        {
            let done = r.answer.status.try_get_untracked() != Some(Status::Streaming);
            if !r.draw(done) {
                drop(slot);
                schedule(&shared);
            }
        }
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
