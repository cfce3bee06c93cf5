//! How often an open diff is recomputed while an answer streams: at most
//! once per animation frame, however many pieces of text arrive in
//! between, and always once more after the last one, so the diff ends on
//! the final texts. The view asks for a frame when [`FramePace::changed`]
//! says so and recomputes when [`FramePace::frame`] says so; this part
//! has no DOM, so its tests run on the host.

/// Whether a frame has been asked for and not yet come.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FramePace {
    asked: bool,
}

impl FramePace {
    /// A text changed: true when the caller must ask for an animation
    /// frame (none is pending), false when the pending one will show it.
    pub fn changed(&mut self) -> bool {
        !std::mem::replace(&mut self.asked, true)
    }

    /// The frame asked for came: true when the diff is to be recomputed
    /// from the texts as they are now. A change after this asks for
    /// another frame.
    pub fn frame(&mut self) -> bool {
        std::mem::take(&mut self.asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream seen by a view paced by [`FramePace`]: `events` are
    /// pieces of text (`Piece`) and animation frames (`Frame`) in the
    /// order they happen; a frame only runs the callback when one was
    /// asked for. Returns how many frames ran a callback, how many
    /// recomputed, and the text the diff last showed.
    fn run(events: &[Event]) -> (usize, usize, String) {
        let mut pace = FramePace::default();
        let (mut text, mut shown) = (String::new(), String::new());
        let (mut callbacks, mut recomputed) = (0, 0);
        let mut asked = false;
        for e in events {
            match e {
                Event::Piece(p) => {
                    text.push_str(p);
                    if pace.changed() {
                        assert!(!asked, "a second frame asked for before the first came");
                        asked = true;
                    }
                }
                Event::Frame if asked => {
                    asked = false;
                    callbacks += 1;
                    if pace.frame() {
                        recomputed += 1;
                        shown.clone_from(&text);
                    }
                }
                Event::Frame => {}
            }
        }
        (callbacks, recomputed, shown)
    }

    #[derive(Debug, Clone, Copy)]
    enum Event {
        Piece(&'static str),
        Frame,
    }
    use Event::{Frame, Piece};

    #[test]
    fn many_pieces_between_two_frames_cost_one_recompute() {
        let mut events = vec![Piece("a "); 300];
        events.push(Frame);
        events.extend(vec![Piece("b "); 200]);
        events.push(Frame);
        let (callbacks, recomputed, shown) = run(&events);
        assert_eq!((callbacks, recomputed), (2, 2));
        assert_eq!(shown, format!("{}{}", "a ".repeat(300), "b ".repeat(200)));
    }

    #[test]
    fn frames_with_no_new_text_recompute_nothing() {
        let (callbacks, recomputed, shown) = run(&[Piece("x"), Frame, Frame, Frame, Frame]);
        assert_eq!((callbacks, recomputed), (1, 1));
        assert_eq!(shown, "x");
    }

    #[test]
    fn the_last_piece_is_always_shown() {
        // Pieces at every offset against the frames: whatever the
        // interleaving, the diff ends on the whole text, and never
        // recomputes more often than frames come.
        for pieces_per_frame in 1..6 {
            for tail in 0..pieces_per_frame {
                let mut events = Vec::new();
                for _ in 0..20 {
                    events.extend(vec![Piece("w"); pieces_per_frame]);
                    events.push(Frame);
                }
                events.extend(vec![Piece("w"); tail + 1]);
                events.push(Frame);
                let total = 20 * pieces_per_frame + tail + 1;
                let (callbacks, recomputed, shown) = run(&events);
                assert_eq!(shown.len(), total, "{pieces_per_frame} {tail}");
                assert!(recomputed <= 21 && callbacks <= 21);
            }
        }
    }
}
