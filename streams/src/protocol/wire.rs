//! The stage boundary protocol as data, for boundaries that cross a wire.
//!
//! Between two islands of one process the boundary is a shared, bounded
//! buffer. Between two processes it is these signals: demand and
//! cancellation travel up as [`UpstreamSignal`]s, elements and the terminal
//! signal travel down as [`DownstreamSignal`]s. Both are serde types, so
//! any codec (postcard on compaktor's remoting) can carry them.
//!
//! The two ends keep the rules in plain values that take signals and
//! return signals, with no tasks or sockets: [`WirePublisher`] on the side
//! the elements come from, [`WireSubscriber`] on the side they go to. The
//! subscribing end trusts nothing it receives: more elements than it asked
//! for (rule 1.1) or anything after the terminal signal (rule 1.7) is a
//! [`StreamError::ProtocolViolation`], never a panic or an unbounded buffer.
//!
//! ```
//! use compaktor_streams::protocol::wire::{Received, WirePublisher, WireSubscriber};
//!
//! // The subscribing end asks for as much as its buffer holds ...
//! let mut down = WireSubscriber::new(4);
//! let mut up = WirePublisher::new();
//! let start = down.start().expect("an empty buffer asks");
//! assert!(up.receive::<u32>(start).is_none());
//! // ... the publishing end sends only that much ...
//! let mut sent = Vec::new();
//! for n in 0..10u32 {
//!     match up.next(n) {
//!         Ok(signal) => sent.push(signal),
//!         Err(_waiting) => break, // no demand: the element waits
//!     }
//! }
//! assert_eq!(sent.len(), 4);
//! // ... and the subscribing end asks again once half its buffer is free.
//! for signal in sent {
//!     assert!(matches!(down.receive(signal), Ok(Received::Element(_))));
//! }
//! assert!(down.consumed(1).is_none());
//! let more = down.consumed(1).expect("half the buffer is free");
//! assert!(up.receive::<u32>(more).is_none());
//! assert!(up.next(4).is_ok());
//! ```

use serde::{Deserialize, Serialize};

use super::Demand;
use crate::error::StreamError;

/// A signal from the subscribing end to the publishing end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpstreamSignal {
    /// `request(n)`: `n` more elements may be sent. Zero is a spec error
    /// (rule 3.9) that the publishing end answers with an error.
    Request(u64),
    /// Stop sending; the publishing end releases everything (rule 3.13).
    Cancel,
}

/// A signal from the publishing end to the subscribing end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownstreamSignal<T> {
    /// One element, sent against one unit of demand.
    Next(T),
    /// The stream completed; nothing follows.
    Complete,
    /// The stream failed; nothing follows.
    Error(WireError),
}

/// A [`StreamError`] in serialisable form: errors themselves carry user
/// types and do not serialise, so the far end gets its kind and text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// What kind of failure, for the few the far end can act on.
    pub kind: WireErrorKind,
    /// The error's description on the node where it happened.
    pub message: String,
}

/// The kinds of [`WireError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WireErrorKind {
    /// The subscribing end requested zero elements (rule 3.9).
    ZeroRequest,
    /// One end broke a rule of the protocol.
    ProtocolViolation,
    /// A stage upstream failed.
    Failed,
}

impl From<&StreamError> for WireError {
    fn from(error: &StreamError) -> Self {
        let kind = match error {
            StreamError::ZeroRequest => WireErrorKind::ZeroRequest,
            StreamError::ProtocolViolation { .. } => WireErrorKind::ProtocolViolation,
            _ => WireErrorKind::Failed,
        };
        WireError {
            kind,
            message: error.to_string(),
        }
    }
}

impl From<WireError> for StreamError {
    fn from(error: WireError) -> Self {
        match error.kind {
            WireErrorKind::ZeroRequest => StreamError::ZeroRequest,
            _ => StreamError::Remote(error.message.into()),
        }
    }
}

/// The publishing end of a boundary: sends elements only against demand.
#[derive(Debug, Default)]
pub struct WirePublisher {
    demand: Demand,
    /// Cancelled, completed or failed: nothing more is sent (rule 1.7).
    closed: bool,
}

impl WirePublisher {
    /// An end with no demand yet.
    pub fn new() -> Self {
        WirePublisher::default()
    }

    /// Takes a signal from the subscribing end; answers with the signal to
    /// send back, if any: a `request(0)` is answered with an error, and
    /// the end closes (rule 3.9). Signals after closing are ignored (3.6).
    pub fn receive<T>(&mut self, signal: UpstreamSignal) -> Option<DownstreamSignal<T>> {
        if self.closed {
            return None;
        }
        match signal {
            UpstreamSignal::Request(n) => match self.demand.request(n) {
                Ok(()) => None,
                Err(error) => self.fail(&error),
            },
            UpstreamSignal::Cancel => {
                self.closed = true;
                None
            }
        }
    }

    /// Wraps `element` for sending when there is demand for it; gives it
    /// back otherwise (rule 1.1), or when the end is closed.
    pub fn next<T>(&mut self, element: T) -> Result<DownstreamSignal<T>, T> {
        if self.closed || !self.demand.try_take() {
            return Err(element);
        }
        Ok(DownstreamSignal::Next(element))
    }

    /// The completion signal, once; `None` when already closed.
    pub fn complete<T>(&mut self) -> Option<DownstreamSignal<T>> {
        (!std::mem::replace(&mut self.closed, true)).then_some(DownstreamSignal::Complete)
    }

    /// The failure signal, once; `None` when already closed.
    pub fn fail<T>(&mut self, error: &StreamError) -> Option<DownstreamSignal<T>> {
        (!std::mem::replace(&mut self.closed, true)).then(|| DownstreamSignal::Error(error.into()))
    }

    /// Whether the subscribing end cancelled, or a terminal signal went out.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Demand not yet used up.
    pub fn demand(&self) -> u64 {
        self.demand.outstanding()
    }
}

/// What a [`WireSubscriber`] made of a signal.
#[derive(Debug)]
pub enum Received<T> {
    /// An element for the buffer.
    Element(T),
    /// The stream ended; nothing follows.
    End(Result<(), StreamError>),
    /// A signal still in flight when this end cancelled: dropped, as
    /// rule 2.8 allows.
    AfterCancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndState {
    Open,
    /// The peer broke a rule: this end should cancel.
    Violated,
    /// The terminal signal arrived.
    Ended,
    Cancelled,
}

/// The subscribing end of a boundary: a buffer of `capacity` elements
/// that asks for more as it drains, and checks what arrives.
#[derive(Debug)]
pub struct WireSubscriber {
    capacity: u64,
    /// Requested and not yet received.
    outstanding: u64,
    /// Received and not yet consumed.
    buffered: u64,
    state: EndState,
}

impl WireSubscriber {
    /// An end whose buffer holds `capacity` elements (at least one).
    pub fn new(capacity: u64) -> Self {
        WireSubscriber {
            capacity: capacity.max(1),
            outstanding: 0,
            buffered: 0,
            state: EndState::Open,
        }
    }

    /// The first request: enough to fill the buffer (`None` when it is
    /// already asked for, so that no `request(0)` ever goes out).
    pub fn start(&mut self) -> Option<UpstreamSignal> {
        let n = self.capacity - self.outstanding - self.buffered;
        if n == 0 || self.state != EndState::Open {
            return None;
        }
        self.outstanding += n;
        Some(UpstreamSignal::Request(n))
    }

    /// Checks a signal from the publishing end. An element beyond the
    /// demand (rule 1.1) or any signal after the terminal one (rule 1.7) is
    /// a [`StreamError::ProtocolViolation`]: [`cancel`](WireSubscriber::cancel)
    /// and fail the stream.
    pub fn receive<T>(&mut self, signal: DownstreamSignal<T>) -> Result<Received<T>, StreamError> {
        match self.state {
            EndState::Open => {}
            EndState::Cancelled => return Ok(Received::AfterCancel),
            EndState::Violated | EndState::Ended => {
                return Err(violation("1.7", "a signal after the terminal signal"));
            }
        }
        match signal {
            DownstreamSignal::Next(element) => {
                if self.outstanding == 0 {
                    self.state = EndState::Violated;
                    return Err(violation("1.1", "more elements than were requested"));
                }
                self.outstanding -= 1;
                self.buffered += 1;
                Ok(Received::Element(element))
            }
            DownstreamSignal::Complete => {
                self.state = EndState::Ended;
                Ok(Received::End(Ok(())))
            }
            DownstreamSignal::Error(error) => {
                self.state = EndState::Ended;
                Ok(Received::End(Err(error.into())))
            }
        }
    }

    /// `n` buffered elements went downstream. Once half the buffer is free
    /// and not yet asked for, returns the request for it: demand goes up in
    /// batches, not one signal per element.
    pub fn consumed(&mut self, n: u64) -> Option<UpstreamSignal> {
        self.buffered = self.buffered.saturating_sub(n);
        let free = self.capacity - self.outstanding - self.buffered;
        if self.state != EndState::Open || free < self.capacity.div_ceil(2) {
            return None;
        }
        self.outstanding += free;
        Some(UpstreamSignal::Request(free))
    }

    /// The cancel signal, once; `None` after the stream ended.
    pub fn cancel(&mut self) -> Option<UpstreamSignal> {
        match self.state {
            EndState::Open | EndState::Violated => {
                self.state = EndState::Cancelled;
                Some(UpstreamSignal::Cancel)
            }
            EndState::Ended | EndState::Cancelled => None,
        }
    }

    /// Elements received and not yet consumed.
    pub fn buffered(&self) -> u64 {
        self.buffered
    }
}

fn violation(rule: &'static str, what: &'static str) -> StreamError {
    StreamError::ProtocolViolation { rule, what }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_1_1_an_element_beyond_the_demand_is_a_violation() {
        let mut down = WireSubscriber::new(2);
        let _ = down.start().expect("a first request");
        assert!(matches!(
            down.receive(DownstreamSignal::Next(1)),
            Ok(Received::Element(1))
        ));
        assert!(matches!(
            down.receive(DownstreamSignal::Next(2)),
            Ok(Received::Element(2))
        ));
        let third = down.receive(DownstreamSignal::Next(3));
        assert!(
            matches!(third, Err(StreamError::ProtocolViolation { rule: "1.1", .. })),
            "{third:?}"
        );
    }

    #[test]
    fn rule_1_7_nothing_after_the_terminal_signal() {
        let mut down = WireSubscriber::new(4);
        let _ = down.start().expect("a first request");
        assert!(matches!(
            down.receive(DownstreamSignal::<u8>::Complete),
            Ok(Received::End(Ok(())))
        ));
        let late = down.receive(DownstreamSignal::Next(1u8));
        assert!(matches!(late, Err(StreamError::ProtocolViolation { rule: "1.7", .. })));
        let mut up = WirePublisher::new();
        assert!(up.complete::<u8>().is_some());
        assert!(up.complete::<u8>().is_none());
        assert!(up.fail::<u8>(&StreamError::HubClosed).is_none());
    }

    #[test]
    fn rule_2_8_elements_in_flight_after_cancel_are_dropped_not_violations() {
        let mut down = WireSubscriber::new(1);
        let _ = down.start().expect("a first request");
        assert_eq!(down.cancel(), Some(UpstreamSignal::Cancel));
        assert!(matches!(
            down.receive(DownstreamSignal::Next(1u8)),
            Ok(Received::AfterCancel)
        ));
        assert!(matches!(
            down.receive(DownstreamSignal::Next(2u8)),
            Ok(Received::AfterCancel)
        ));
    }

    #[test]
    fn a_violation_leaves_the_cancel_to_send() {
        let mut down = WireSubscriber::new(1);
        let _ = down.start().expect("a first request");
        assert!(down.receive(DownstreamSignal::Next(1u8)).is_ok());
        assert!(down.receive(DownstreamSignal::Next(2u8)).is_err());
        assert_eq!(down.cancel(), Some(UpstreamSignal::Cancel));
        assert_eq!(down.cancel(), None);
    }

    #[test]
    fn rule_3_9_request_zero_is_answered_with_an_error_and_closes() {
        let mut up = WirePublisher::new();
        let answer = up.receive::<u8>(UpstreamSignal::Request(0));
        let Some(DownstreamSignal::Error(error)) = answer else {
            panic!("expected an error, got {answer:?}");
        };
        assert!(matches!(StreamError::from(error), StreamError::ZeroRequest));
        assert!(up.is_closed());
        assert_eq!(up.next(1u8), Err(1));
    }

    #[test]
    fn rule_3_13_cancel_stops_sending() {
        let mut up = WirePublisher::new();
        let mut down = WireSubscriber::new(8);
        let request = down.start().expect("a first request");
        assert!(up.receive::<u8>(request).is_none());
        assert!(up.next(1u8).is_ok());
        let cancel = down.cancel().expect("a cancel");
        assert!(down.cancel().is_none(), "cancel goes out once");
        assert!(up.receive::<u8>(cancel).is_none());
        assert_eq!(up.next(2u8), Err(2));
        assert!(up.complete::<u8>().is_none(), "nothing after cancel");
    }

    #[test]
    fn errors_cross_as_kind_and_text() {
        let error = StreamError::aborted("operator said so");
        let wire = WireError::from(&error);
        assert_eq!(wire.kind, WireErrorKind::Failed);
        let back = StreamError::from(wire);
        assert!(
            matches!(&back, StreamError::Remote(m) if m.contains("operator said so")),
            "{back:?}"
        );
    }

    #[test]
    fn signals_round_trip_through_serde() {
        let signals = vec![
            DownstreamSignal::Next(7u64),
            DownstreamSignal::Complete,
            DownstreamSignal::Error(WireError::from(&StreamError::ZeroRequest)),
        ];
        let json = serde_json::to_string(&signals).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<DownstreamSignal<u64>>>(&json).unwrap(),
            signals
        );
        let up = [UpstreamSignal::Request(3), UpstreamSignal::Cancel];
        let json = serde_json::to_string(&up).unwrap();
        assert_eq!(serde_json::from_str::<Vec<UpstreamSignal>>(&json).unwrap(), up);
    }

    proptest::proptest! {
        /// Whatever the consumer does, the subscribing end never asks for
        /// more than its buffer holds, and a publisher that sends all it may
        /// never trips the checks.
        #[test]
        fn demand_never_exceeds_the_buffer(capacity in 1u64..64, steps in proptest::collection::vec(0u64..8, 0..200)) {
            let mut up = WirePublisher::new();
            let mut down = WireSubscriber::new(capacity);
            let start = down.start().expect("a first request");
            proptest::prop_assert!(up.receive::<u64>(start).is_none());
            let mut next = 0u64;
            for consume in steps {
                while let Ok(signal) = up.next(next) {
                    next += 1;
                    proptest::prop_assert!(down.receive(signal).is_ok());
                    proptest::prop_assert!(down.buffered() <= capacity);
                }
                let n = consume.min(down.buffered());
                if let Some(request) = down.consumed(n) {
                    proptest::prop_assert!(up.receive::<u64>(request).is_none());
                }
                proptest::prop_assert!(down.buffered() + up.demand() <= capacity);
            }
        }
    }
}
