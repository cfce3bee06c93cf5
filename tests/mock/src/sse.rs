//! Server-sent events as a timed plan of writes.
//!
//! Renderers are pure: they turn a scenario into a list of [`Step`]s (bytes,
//! pauses, faults) and never touch a socket, so the HTTP layer alone decides
//! how the bytes are chunked and split on the wire.

use std::ops::ControlFlow;
use std::time::Duration;

use serde::Serialize;

use crate::scenario::{MidStream, Scenario};

/// One step of a streaming response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Bytes of the SSE stream (one whole event, unless split by the wire).
    Data(Vec<u8>),
    /// Wait before the next step.
    Sleep(Duration),
    /// Stop sending and keep the connection open until the client hangs up.
    Stall,
    /// Close the connection without terminating the body.
    Cut,
    /// The next event that is not a comment carries a text or reasoning
    /// piece: the server counts it once written ([`MockServer::pieces_sent`]).
    ///
    /// [`MockServer::pieces_sent`]: crate::MockServer::pieces_sent
    Piece,
}

/// Builds the steps of one SSE response.
#[derive(Debug)]
pub(crate) struct Plan {
    steps: Vec<Step>,
    eol: &'static str,
    gap: Duration,
    pieces: usize,
}

impl Plan {
    /// An empty plan using the scenario's line endings and gap.
    pub(crate) fn new(scenario: &Scenario) -> Self {
        Self {
            steps: Vec::new(),
            eol: if scenario.wire.crlf { "\r\n" } else { "\n" },
            gap: scenario.gap,
            pieces: 0,
        }
    }

    /// An SSE comment line (`: text`), ignored by conforming clients.
    pub(crate) fn comment(&mut self, text: &str) {
        self.push_lines(&[&format!(": {text}")]);
    }

    /// A `data:` event carrying `value` as JSON.
    pub(crate) fn data<T: Serialize>(&mut self, value: &T) {
        self.raw_data(&to_json(value));
    }

    /// A named event (`event: name` then `data: json`).
    pub(crate) fn event<T: Serialize>(&mut self, name: &str, value: &T) {
        self.push_lines(&[
            &format!("event: {name}"),
            &format!("data: {}", to_json(value)),
        ]);
    }

    /// A `data:` event with verbatim text (`[DONE]`, deliberate garbage).
    pub(crate) fn raw_data(&mut self, text: &str) {
        self.push_lines(&[&format!("data: {text}")]);
    }

    /// Waits, unless `duration` is zero.
    pub(crate) fn sleep(&mut self, duration: Duration) {
        if !duration.is_zero() {
            self.steps.push(Step::Sleep(duration));
        }
    }

    /// Marks the start of a piece: waits for the gap unless it is the first.
    pub(crate) fn piece(&mut self) {
        if self.pieces > 0 {
            self.sleep(self.gap);
        }
        self.pieces += 1;
        self.steps.push(Step::Piece);
    }

    /// Injects `fault`, using `error_event` to render the protocol's
    /// mid-stream error. Breaks when the stream must end here.
    pub(crate) fn inject(
        &mut self,
        fault: Option<MidStream>,
        error_event: impl FnOnce(&mut Self),
    ) -> ControlFlow<()> {
        match fault {
            None => ControlFlow::Continue(()),
            Some(MidStream::Garbage) => {
                self.raw_data("{not json");
                ControlFlow::Continue(())
            }
            Some(MidStream::ErrorEvent) => {
                error_event(self);
                ControlFlow::Break(())
            }
            Some(MidStream::Stall) => {
                self.steps.push(Step::Stall);
                ControlFlow::Break(())
            }
            Some(MidStream::Cut) => {
                self.steps.push(Step::Cut);
                ControlFlow::Break(())
            }
        }
    }

    /// The finished plan.
    pub(crate) fn into_steps(self) -> Vec<Step> {
        self.steps
    }

    fn push_lines(&mut self, lines: &[&str]) {
        let mut event = String::new();
        for line in lines {
            event.push_str(line);
            event.push_str(self.eol);
        }
        event.push_str(self.eol);
        self.steps.push(Step::Data(event.into_bytes()));
    }
}

/// Serializes a mock payload. Our payload types cannot fail to serialize, but
/// if one ever does the stream says so instead of the server panicking.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|error| format!("{{\"mock_serialization_error\":\"{error}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Wire;

    fn text(steps: &[Step]) -> String {
        steps
            .iter()
            .map(|step| match step {
                Step::Data(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                Step::Piece => String::new(),
                other => format!("<{other:?}>"),
            })
            .collect()
    }

    #[test]
    fn events_end_with_a_blank_line_in_the_chosen_line_ending() {
        let crlf = Scenario::default().with_wire(Wire {
            crlf: true,
            ..Wire::default()
        });
        let mut plan = Plan::new(&crlf);
        plan.event("ping", &serde_json::json!({"type": "ping"}));
        plan.comment("hi");
        assert_eq!(
            text(&plan.into_steps()),
            "event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n: hi\r\n\r\n"
        );
    }

    #[test]
    fn only_pieces_after_the_first_wait_for_the_gap() {
        let scenario = Scenario::default().with_gap(Duration::from_millis(3));
        let mut plan = Plan::new(&scenario);
        plan.piece();
        plan.raw_data("a");
        plan.piece();
        plan.raw_data("b");
        assert_eq!(
            text(&plan.into_steps()),
            format!(
                "data: a\n\n<Sleep({:?})>data: b\n\n",
                Duration::from_millis(3)
            )
        );
    }
}
