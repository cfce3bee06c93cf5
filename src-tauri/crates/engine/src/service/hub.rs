//! Streams that go to one listener, sent together: the desktop window's
//! panes (and its judge) share one [`StreamHub`], whose `send` is the
//! window's one channel. Each stream's text, reasoning and readouts are
//! gathered until the [`FLUSH_EVERY`] tick and leave as one
//! [`PaneEvent::Update`]; a tick's updates of every stream leave in one
//! message. Six panes at 2,000 tokens/s thus cost the window about 60
//! messages a second, not 750 (one per pane per kind per tick): each
//! message is a script the webview runs on the UI thread.
//!
//! What people notice goes out at once, with everything gathered before
//! it: an attempt starting, the first text of an attempt, the end of its
//! stream and the final [`PaneEvent::Finished`]. Within a stream, events
//! keep their order; a listener that goes away (`send` returns false, or
//! [`StreamHub::close`]) stops every stream of the hub, which then
//! settle as stopped answers. The hub knows nothing of Tauri: the app's
//! shell only supplies `send`.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use switchboard_protocol::{PaneEvent, StreamMessage};
use tokio_util::sync::CancellationToken;

use super::{FLUSH_EVERY, Progress, counts};
use crate::chat::{StreamEvent, Usage};
use crate::client::Timed;

/// A stream's tick that comes this much before the hub's next one is due
/// still sends: the streams' ticks keep their own phases, and a tick a
/// little early should not wait a whole period for the next.
const TICK_SLACK: Duration = Duration::from_millis(4);

/// The streams of one listener (see the module docs). `send` gets each
/// message's events in order and returns false once nobody listens.
pub struct StreamHub<S> {
    inner: Mutex<Inner<S>>,
}

impl<S> std::fmt::Debug for StreamHub<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("StreamHub")
            .field("streams", &inner.streams.keys().collect::<Vec<_>>())
            .field("closed", &inner.closed)
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    send: S,
    streams: BTreeMap<u64, Stream>,
    /// Events due out with the next message, in order.
    queue: Vec<StreamMessage>,
    /// When the last message went out.
    last_sent: Option<Instant>,
    /// The listener is gone: nothing more is sent.
    closed: bool,
}

/// A running stream: what it gathered since the last message, and what
/// stops it.
struct Stream {
    pending: Pending,
    cancel: CancellationToken,
}

impl<S> StreamHub<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> StreamHub<S>
where
    S: FnMut(Vec<StreamMessage>) -> bool + Send,
{
    /// A hub sending through `send`.
    pub fn new(send: S) -> Self {
        Self {
            inner: Mutex::new(Inner {
                send,
                streams: BTreeMap::new(),
                queue: Vec::new(),
                last_sent: None,
                closed: false,
            }),
        }
    }

    /// The listener is gone (a window replaced its channel, say): every
    /// stream of the hub stops, and nothing more is sent.
    pub fn close(&self) {
        self.lock().close();
    }

    /// Whether the listener is gone.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Stream `id` starts; `cancel` stops it when the listener goes away
    /// (at once if it already has). The stream is forgotten when the
    /// returned handle is dropped.
    pub(crate) fn open(&self, id: u64, cancel: CancellationToken) -> Opened<'_, S> {
        let mut inner = self.lock();
        if inner.closed {
            cancel.cancel();
        }
        inner.streams.insert(
            id,
            Stream {
                pending: Pending::default(),
                cancel,
            },
        );
        Opened { hub: self, id }
    }

    fn take(&self, id: u64, p: Progress, now: Instant) {
        let mut inner = self.lock();
        let Inner { streams, queue, .. } = &mut *inner;
        let Some(stream) = streams.get_mut(&id) else {
            return;
        };
        let urgent = match p {
            Progress::Attempt(target) => {
                if let Some(update) = stream.pending.update() {
                    queue.push(StreamMessage {
                        stream: id,
                        event: update,
                    });
                }
                // A new attempt's readouts start afresh.
                stream.pending = Pending::default();
                let (provider, model) = target.split_once(':').unwrap_or((&target, ""));
                queue.push(StreamMessage {
                    stream: id,
                    event: PaneEvent::Attempt {
                        provider: provider.to_owned(),
                        model: model.to_owned(),
                    },
                });
                true
            }
            Progress::Event(ev) => stream.pending.take(&ev),
        };
        if urgent {
            inner.send_now(now);
        }
    }

    /// A stream's tick: send what every stream gathered, unless a message
    /// went out less than a tick ago.
    fn tick(&self, now: Instant) {
        let mut inner = self.lock();
        let due = inner
            .last_sent
            .is_none_or(|at| now.saturating_duration_since(at) + TICK_SLACK >= FLUSH_EVERY);
        if due {
            inner.send_now(now);
        }
    }

    /// Stream `id` ended: what it still gathered, then `last`, go out now,
    /// and the stream is forgotten.
    fn end(&self, id: u64, last: PaneEvent, now: Instant) {
        let mut inner = self.lock();
        if let Some(mut stream) = inner.streams.remove(&id)
            && let Some(update) = stream.pending.update()
        {
            inner.queue.push(StreamMessage {
                stream: id,
                event: update,
            });
        }
        inner.queue.push(StreamMessage {
            stream: id,
            event: last,
        });
        inner.send_now(now);
    }

    fn forget(&self, id: u64) {
        self.lock().streams.remove(&id);
    }
}

impl<S> Inner<S>
where
    S: FnMut(Vec<StreamMessage>) -> bool,
{
    /// Send what is queued and every stream's gathered update, as one
    /// message.
    fn send_now(&mut self, now: Instant) {
        for (id, stream) in &mut self.streams {
            if let Some(update) = stream.pending.update() {
                self.queue.push(StreamMessage {
                    stream: *id,
                    event: update,
                });
            }
        }
        if self.closed {
            self.queue.clear();
            return;
        }
        if self.queue.is_empty() {
            return;
        }
        self.last_sent = Some(now);
        let message = std::mem::take(&mut self.queue);
        if !(self.send)(message) {
            self.close();
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.queue.clear();
        for stream in self.streams.values() {
            stream.cancel.cancel();
        }
    }
}

/// One stream of a [`StreamHub`], for as long as it runs.
pub(crate) struct Opened<'a, S>
where
    S: FnMut(Vec<StreamMessage>) -> bool + Send,
{
    hub: &'a StreamHub<S>,
    id: u64,
}

impl<S> Opened<'_, S>
where
    S: FnMut(Vec<StreamMessage>) -> bool + Send,
{
    /// Something the router reported; what people notice goes out at once.
    pub(crate) fn take(&self, p: Progress) {
        self.hub.take(self.id, p, Instant::now());
    }

    /// This stream's tick (see [`StreamHub`]).
    pub(crate) fn tick(&self) {
        self.hub.tick(Instant::now());
    }

    /// The stream is over: `last` goes out after everything else, at once.
    pub(crate) fn finish(self, last: PaneEvent) {
        self.hub.end(self.id, last, Instant::now());
    }
}

impl<S> Drop for Opened<'_, S>
where
    S: FnMut(Vec<StreamMessage>) -> bool + Send,
{
    fn drop(&mut self) {
        self.hub.forget(self.id);
    }
}

/// Text waiting for the next message, and the live readouts of the
/// current attempt.
#[derive(Default)]
struct Pending {
    text: String,
    reasoning: String,
    ttft_ms: Option<f64>,
    last_ms: f64,
    usage: Usage,
    dirty: bool,
}

impl Pending {
    /// Take a stream event; true when it should go out now rather than on
    /// the tick: the first text of an attempt (how soon an answer starts
    /// to show is what people notice) and the end of its stream (the last
    /// text would otherwise wait up to a tick, plus the history write that
    /// follows the stream, to be shown).
    fn take(&mut self, ev: &Timed) -> bool {
        let at = ev.at.as_secs_f64() * 1000.0;
        self.last_ms = at;
        self.dirty = true;
        match &ev.event {
            StreamEvent::TextDelta(t) => {
                self.text.push_str(t);
                if self.ttft_ms.is_none() {
                    self.ttft_ms = Some(at);
                    return true;
                }
                false
            }
            // Thinking is not the answer: TTFT waits for the first text.
            StreamEvent::ReasoningDelta(t) => {
                self.reasoning.push_str(t);
                false
            }
            StreamEvent::Usage { usage, .. } => {
                self.usage.merge_latest(*usage);
                false
            }
            StreamEvent::Finish(_) | StreamEvent::Error(_) => true,
        }
    }

    /// What was gathered since the last update, if anything.
    fn update(&mut self) -> Option<PaneEvent> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some(PaneEvent::Update {
            text: std::mem::take(&mut self.text),
            reasoning: std::mem::take(&mut self.reasoning),
            ttft_ms: self.ttft_ms,
            elapsed_ms: self.last_ms,
            tokens: counts(&self.usage),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_protocol::AnswerSummary;

    use super::*;
    use crate::chat::FinishReason;

    fn at(ms: u64, event: StreamEvent) -> Progress {
        Progress::Event(Timed {
            at: Duration::from_millis(ms),
            event,
        })
    }

    fn text(ms: u64, t: &str) -> Progress {
        at(ms, StreamEvent::TextDelta(t.into()))
    }

    /// Each message the listener got, in words: `3:text:...`,
    /// `3:reasoning:...`, `3:attempt:lab:m`, `3:finished` (3 the stream).
    fn words(message: &[StreamMessage]) -> Vec<String> {
        let mut out = Vec::new();
        for m in message {
            let s = m.stream;
            match &m.event {
                PaneEvent::Update {
                    text,
                    reasoning,
                    tokens,
                    ..
                } => {
                    if !reasoning.is_empty() {
                        out.push(format!("{s}:reasoning:{reasoning}"));
                    }
                    if !text.is_empty() {
                        out.push(format!("{s}:text:{text}"));
                    }
                    if let Some(n) = tokens.output {
                        out.push(format!("{s}:tokens:{n}"));
                    }
                }
                PaneEvent::Attempt { provider, model } => {
                    out.push(format!("{s}:attempt:{provider}:{model}"));
                }
                PaneEvent::Finished(_) => out.push(format!("{s}:finished")),
            }
        }
        out
    }

    type Sent = Arc<Mutex<Vec<Vec<String>>>>;

    /// A hub whose listener records every message (and answers `listening`).
    fn recording(listening: bool) -> (StreamHub<impl FnMut(Vec<StreamMessage>) -> bool>, Sent) {
        let sent: Sent = Arc::default();
        let log = Arc::clone(&sent);
        let hub = StreamHub::new(move |m: Vec<StreamMessage>| {
            log.lock().unwrap().push(words(&m));
            listening
        });
        (hub, sent)
    }

    fn finished() -> PaneEvent {
        PaneEvent::Finished(Box::new(AnswerSummary::failure(
            "lab:m",
            "stopped",
            "x".into(),
        )))
    }

    #[test]
    fn the_first_text_and_the_end_go_out_at_once_the_rest_on_the_tick_in_order() {
        let (hub, sent) = recording(true);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let s = hub.open(7, CancellationToken::new());
        hub.take(7, Progress::Attempt("lab:m".into()), ms(0));
        assert_eq!(sent.lock().unwrap().len(), 1, "an attempt shows at once");
        // Thinking alone waits for the tick.
        hub.take(7, at(1, StreamEvent::ReasoningDelta("hmm".into())), ms(1));
        assert_eq!(sent.lock().unwrap().len(), 1);
        hub.take(7, text(2, "The"), ms(2));
        assert_eq!(sent.lock().unwrap().len(), 2, "the first text goes at once");
        hub.take(7, text(3, " answer"), ms(3));
        hub.take(7, text(4, " is"), ms(4));
        hub.tick(ms(5));
        assert_eq!(
            sent.lock().unwrap().len(),
            2,
            "later text waits for the tick"
        );
        hub.tick(ms(2) + FLUSH_EVERY);
        hub.take(7, text(20, " 42."), ms(20));
        let usage = Usage {
            output_tokens: Some(4),
            ..Usage::default()
        };
        hub.take(
            7,
            at(
                21,
                StreamEvent::Usage {
                    usage,
                    reported_cost: None,
                },
            ),
            ms(21),
        );
        assert_eq!(sent.lock().unwrap().len(), 3);
        hub.take(7, at(22, StreamEvent::Finish(FinishReason::Stop)), ms(22));
        assert_eq!(sent.lock().unwrap().len(), 4, "the end goes at once");
        s.finish(finished());
        assert_eq!(
            *sent.lock().unwrap(),
            [
                vec!["7:attempt:lab:m"],
                vec!["7:reasoning:hmm", "7:text:The"],
                vec!["7:text: answer is"],
                vec!["7:text: 42.", "7:tokens:4"],
                vec!["7:finished"],
            ]
        );
    }

    #[test]
    fn every_stream_s_update_of_a_tick_leaves_in_one_message_each_under_its_own_id() {
        let (hub, sent) = recording(true);
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let (a, b) = (
            hub.open(1, CancellationToken::new()),
            hub.open(2, CancellationToken::new()),
        );
        hub.take(1, text(0, "a0"), ms(0));
        hub.take(2, text(0, "b0"), ms(1));
        hub.take(1, text(1, " a1"), ms(2));
        hub.take(2, text(1, " b1"), ms(3));
        hub.take(2, text(2, " b2"), ms(4));
        // Stream 2's tick, a period after the last message: both go.
        hub.tick(ms(1) + FLUSH_EVERY);
        // Stream 1's tick a few ms later: it is not due, so the text
        // that came meanwhile waits for the next message.
        hub.take(1, text(18, " a2"), ms(18));
        hub.tick(ms(6) + FLUSH_EVERY);
        // A new attempt on stream 2 leaves stream 1's text for the tick.
        hub.take(2, Progress::Attempt("lab:n".into()), ms(21));
        drop(a);
        b.finish(finished());
        let expected: [&[&str]; 5] = [
            &["1:text:a0"],
            &["2:text:b0"],
            &["1:text: a1", "2:text: b1 b2"],
            &["2:attempt:lab:n", "1:text: a2"],
            &["2:finished"],
        ];
        assert_eq!(*sent.lock().unwrap(), expected);
    }

    #[test]
    fn a_listener_that_is_gone_stops_every_stream_and_is_sent_nothing_more() {
        let (hub, sent) = recording(false);
        let (c1, c2) = (CancellationToken::new(), CancellationToken::new());
        let _s1 = hub.open(1, c1.clone());
        let _s2 = hub.open(2, c2.clone());
        hub.take(2, text(0, "x"), Instant::now());
        assert!(c1.is_cancelled() && c2.is_cancelled());
        assert!(hub.is_closed());
        hub.take(1, text(0, "y"), Instant::now());
        hub.tick(Instant::now() + FLUSH_EVERY);
        assert_eq!(sent.lock().unwrap().len(), 1);
        // A stream started afterwards stops at once.
        let c3 = CancellationToken::new();
        let _s3 = hub.open(3, c3.clone());
        assert!(c3.is_cancelled());
    }

    #[test]
    fn closing_the_hub_stops_its_streams() {
        let (hub, sent) = recording(true);
        let c = CancellationToken::new();
        let s = hub.open(4, c.clone());
        hub.close();
        assert!(c.is_cancelled());
        s.finish(finished());
        assert!(sent.lock().unwrap().is_empty());
    }

    #[test]
    fn a_stream_dropped_mid_way_is_forgotten() {
        let (hub, sent) = recording(true);
        let c = CancellationToken::new();
        let s = hub.open(5, c.clone());
        hub.take(5, text(0, "a"), Instant::now());
        hub.take(5, text(1, "b"), Instant::now());
        drop(s);
        hub.tick(Instant::now() + FLUSH_EVERY);
        hub.take(5, text(2, "c"), Instant::now());
        assert_eq!(*sent.lock().unwrap(), [vec!["5:text:a".to_owned()]]);
        assert!(!c.is_cancelled());
    }
}
