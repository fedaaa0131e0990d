//! Acknowledged delivery for system messages (stop, watch, terminated,
//! look-ups, remote spawn): numbered, kept until the peer acknowledges
//! them, and resent in order on the next connection to the same
//! incarnation of the peer — so a dropped connection loses none of them,
//! and the peer, skipping numbers it has seen, acts on each exactly once.
//!
//! Plain state: the node's tasks feed it and write what it returns.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes a sequence number adds in front of a system message's payload.
pub(crate) const SEQ_BYTES: usize = 8;

/// The outbox is full: the peer has not acknowledged `limit` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutboxFull;

/// System messages on their way to one peer.
#[derive(Debug)]
pub(crate) struct Outbox {
    next: u64,
    /// Sent or not, not yet acknowledged, in order.
    unacked: VecDeque<(u64, Bytes)>,
    /// The highest number written on the current connection.
    written: u64,
    /// Which connection `written` counts for: a writer still holding an
    /// older connection's stream gets nothing.
    connection: u64,
    /// Unnumbered frames (acknowledgements, heartbeats) for the current
    /// connection only; at most one of each kind, the latest.
    loose: Vec<Bytes>,
    limit: usize,
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Outbox {
            next: 1,
            unacked: VecDeque::new(),
            written: 0,
            connection: 0,
            loose: Vec::new(),
            limit,
        }
    }

    /// Numbers a message and keeps it until acknowledged; `frame` builds
    /// the frame from its number.
    pub(crate) fn push(&mut self, frame: impl FnOnce(u64) -> Bytes) -> Result<u64, OutboxFull> {
        if self.unacked.len() >= self.limit {
            return Err(OutboxFull);
        }
        let seq = self.next;
        self.next += 1;
        self.unacked.push_back((seq, frame(seq)));
        Ok(seq)
    }

    /// Queues a frame that needs no acknowledgement, replacing a queued
    /// one of the same kind (`kind` is any tag the caller chooses): a
    /// newer acknowledgement or heartbeat makes the older one moot, and
    /// the queue stays bounded however slowly the connection drains.
    pub(crate) fn push_loose(&mut self, kind: u8, frame: Bytes) {
        match self.loose.iter_mut().find(|f| f.first() == Some(&kind)) {
            Some(queued) => *queued = tag(kind, frame),
            None => self.loose.push(tag(kind, frame)),
        }
    }

    /// The peer has everything up to and including `seq`.
    pub(crate) fn ack(&mut self, seq: u64) {
        while self.unacked.front().is_some_and(|(s, _)| *s <= seq) {
            self.unacked.pop_front();
        }
    }

    /// Moves what is to be written now on `connection` into `out`: loose
    /// frames, then numbered messages not yet written on it. A writer of an
    /// older connection gets nothing.
    pub(crate) fn take(&mut self, connection: u64, out: &mut Vec<Bytes>) {
        if connection != self.connection {
            return;
        }
        out.extend(self.loose.drain(..).map(|f| f.slice(1..)));
        for (seq, frame) in &self.unacked {
            if *seq > self.written {
                out.push(frame.clone());
                self.written = *seq;
            }
        }
    }

    /// Whether [`take`](Self::take) would return anything.
    #[cfg(test)]
    pub(crate) fn has_work(&self) -> bool {
        !self.loose.is_empty() || self.unacked.back().is_some_and(|(s, _)| *s > self.written)
    }

    /// A new connection to the same peer: everything unacknowledged goes
    /// out again, on it only; loose frames belonged to the old connection.
    /// Returns the connection's number for [`take`](Self::take).
    pub(crate) fn reconnected(&mut self) -> u64 {
        self.written = self.unacked.front().map_or(self.next - 1, |(s, _)| s - 1);
        self.loose.clear();
        self.connection += 1;
        self.connection
    }

    /// The peer came back as a new incarnation: numbering starts again
    /// at 1 and nothing pending is kept. Connection numbers go on, so a
    /// writer of an old connection still takes nothing.
    pub(crate) fn restart(&mut self) {
        *self = Outbox {
            connection: self.connection,
            ..Outbox::new(self.limit)
        };
    }

    /// The peer is declared gone: nothing pending will be acknowledged.
    /// Numbering goes on, so that if the same incarnation answers again
    /// its inbox takes our next messages as new; a new incarnation gets a
    /// fresh outbox.
    pub(crate) fn drop_pending(&mut self) -> usize {
        let dropped = self.unacked.len();
        self.unacked.clear();
        self.loose.clear();
        self.written = self.next - 1;
        dropped
    }

    /// Messages not yet acknowledged.
    pub(crate) fn pending(&self) -> usize {
        self.unacked.len()
    }
}

/// A loose frame with its kind in front, for `push_loose` to find.
fn tag(kind: u8, frame: Bytes) -> Bytes {
    let mut tagged = BytesMut::with_capacity(1 + frame.len());
    tagged.put_u8(kind);
    tagged.put_slice(&frame);
    tagged.freeze()
}

/// System messages from one peer: which numbers have been acted on.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    delivered: u64,
}

impl Inbox {
    /// Whether the message numbered `seq` is new (act on it) or a resend
    /// of one already handled (skip it).
    pub(crate) fn accept(&mut self, seq: u64) -> bool {
        if seq <= self.delivered {
            return false;
        }
        self.delivered = seq;
        true
    }

    /// The number to acknowledge: everything up to it has been handled.
    pub(crate) fn acknowledged(&self) -> u64 {
        self.delivered
    }

    /// The peer restarted: its numbering starts again.
    pub(crate) fn reset(&mut self) {
        self.delivered = 0;
    }
}

/// A system message's payload: its number, then its body.
pub(crate) fn seal(seq: u64, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::with_capacity(SEQ_BYTES + body.len());
    out.put_u64_le(seq);
    out.put_slice(body);
    out.to_vec()
}

/// Splits a system message's payload into its number and body.
pub(crate) fn open(mut payload: Bytes) -> Option<(u64, Bytes)> {
    if payload.len() < SEQ_BYTES {
        return None;
    }
    let seq = payload.get_u64_le();
    Some((seq, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Bytes {
        Bytes::from(seq.to_le_bytes().to_vec())
    }

    fn seqs(out: &[Bytes]) -> Vec<u64> {
        out.iter()
            .map(|b| u64::from_le_bytes(b[..8].try_into().unwrap()))
            .collect()
    }

    #[test]
    fn messages_are_written_once_per_connection_in_order() {
        let mut outbox = Outbox::new(10);
        let c = outbox.reconnected();
        for _ in 0..3 {
            outbox.push(frame).unwrap();
        }
        let mut out = Vec::new();
        outbox.take(c, &mut out);
        assert_eq!(seqs(&out), [1, 2, 3]);
        out.clear();
        outbox.take(c, &mut out);
        assert!(out.is_empty() && !outbox.has_work());
        outbox.push(frame).unwrap();
        outbox.take(c, &mut out);
        assert_eq!(seqs(&out), [4]);
    }

    #[test]
    fn a_writer_of_a_replaced_connection_takes_nothing() {
        let mut outbox = Outbox::new(10);
        let old = outbox.reconnected();
        outbox.push(frame).unwrap();
        let new = outbox.reconnected();
        let mut out = Vec::new();
        outbox.take(old, &mut out);
        assert!(out.is_empty(), "the old writer must not mark messages written");
        outbox.take(new, &mut out);
        assert_eq!(seqs(&out), [1]);
    }

    #[test]
    fn unacknowledged_messages_are_resent_after_a_reconnect() {
        let mut outbox = Outbox::new(10);
        let c = outbox.reconnected();
        for _ in 0..5 {
            outbox.push(frame).unwrap();
        }
        let mut out = Vec::new();
        outbox.take(c, &mut out);
        outbox.ack(2);
        let c = outbox.reconnected();
        out.clear();
        outbox.take(c, &mut out);
        assert_eq!(seqs(&out), [3, 4, 5]);
        outbox.ack(5);
        outbox.reconnected();
        assert!(!outbox.has_work());
        assert_eq!(outbox.push(frame), Ok(6));
    }

    #[test]
    fn loose_frames_go_first_and_only_on_their_connection() {
        let mut outbox = Outbox::new(10);
        let c = outbox.reconnected();
        outbox.push(frame).unwrap();
        outbox.push_loose(6, frame(99));
        let mut out = Vec::new();
        outbox.take(c, &mut out);
        assert_eq!(seqs(&out), [99, 1]);
        outbox.push_loose(6, frame(98));
        let c = outbox.reconnected();
        out.clear();
        outbox.take(c, &mut out);
        assert_eq!(seqs(&out), [1]);
    }

    #[test]
    fn a_newer_loose_frame_replaces_one_of_its_kind() {
        let mut outbox = Outbox::new(10);
        let c = outbox.reconnected();
        for n in 0..100 {
            outbox.push_loose(6, frame(n));
            outbox.push_loose(7, frame(1000 + n));
        }
        let mut out = Vec::new();
        outbox.take(c, &mut out);
        assert_eq!(seqs(&out), [99, 1099]);
    }

    #[test]
    fn a_full_outbox_refuses_until_acknowledged() {
        let mut outbox = Outbox::new(2);
        outbox.push(frame).unwrap();
        outbox.push(frame).unwrap();
        assert_eq!(outbox.push(frame), Err(OutboxFull));
        outbox.ack(1);
        assert_eq!(outbox.push(frame), Ok(3));
        assert_eq!(outbox.pending(), 2);
    }

    #[test]
    fn dropping_pending_messages_keeps_the_numbering() {
        let mut outbox = Outbox::new(10);
        outbox.push(frame).unwrap();
        outbox.push(frame).unwrap();
        assert_eq!(outbox.drop_pending(), 2);
        assert!(!outbox.has_work());
        let _ = outbox.reconnected();
        assert!(!outbox.has_work());
        assert_eq!(outbox.push(frame), Ok(3));
    }

    #[test]
    fn a_restart_numbers_from_one_but_old_writers_still_take_nothing() {
        let mut outbox = Outbox::new(10);
        let old = outbox.reconnected();
        outbox.push(frame).unwrap();
        outbox.restart();
        let new = outbox.reconnected();
        assert_ne!(old, new);
        assert_eq!(outbox.push(frame), Ok(1));
        let mut out = Vec::new();
        outbox.take(old, &mut out);
        assert!(out.is_empty());
        outbox.take(new, &mut out);
        assert_eq!(seqs(&out), [1]);
    }

    #[test]
    fn the_inbox_acts_on_each_number_once() {
        let mut inbox = Inbox::default();
        assert!(inbox.accept(1) && inbox.accept(2));
        // A resend after a reconnect: 1 and 2 again, then 3.
        assert!(!inbox.accept(1) && !inbox.accept(2));
        assert!(inbox.accept(3));
        assert_eq!(inbox.acknowledged(), 3);
        inbox.reset();
        assert!(inbox.accept(1));
    }

    #[test]
    fn seal_and_open_round_trip() {
        let sealed = seal(42, b"body");
        assert_eq!(open(Bytes::from(sealed)), Some((42, Bytes::from_static(b"body"))));
        assert_eq!(open(Bytes::from_static(b"short")), None);
    }
}
