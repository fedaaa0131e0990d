//! [`FrameQueue`]: user messages waiting for a peer's stream, as encoded
//! frames in a few fixed-size chunks.
//!
//! A queue of one buffer per frame costs an allocation, a free and a copy
//! per message, and quinn scans its queued buffers to pack each packet, at
//! a cost that grows with their number. Here a sender appends its frame's
//! bytes to the open chunk under a short lock, and the writer takes every
//! chunk at once and hands them back when it has written them. Chunks
//! have one size and are used again: a buffer that grew with the queue
//! would be copied on each growth, and fresh buffers are fresh pages to
//! fault in; either cost more than the messages did.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use compaktor_actor::DeadLetterReason;
use tokio::sync::Notify;

/// The size of a chunk: a write's worth of small frames. A larger frame
/// gets a chunk of its own size.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Empty chunks a queue keeps for reuse.
const SPARE: usize = 8;

/// A bounded queue of encoded frames, counted in frames.
pub(crate) struct FrameQueue {
    queued: Mutex<Queued>,
    /// Signalled when the queue stops being empty, or closes.
    ready: Notify,
    capacity: usize,
}

struct Queued {
    /// Filled chunks, oldest first; frames never straddle two.
    full: Vec<Bytes>,
    /// The chunk being filled.
    open: BytesMut,
    /// Empty chunks, written and handed back.
    spare: Vec<BytesMut>,
    frames: usize,
    /// The writer has bytes to write that are not in the queue.
    nudged: bool,
    closed: bool,
}

impl Queued {
    /// Every chunk, in order, appended to `out`.
    fn drain_into(&mut self, out: &mut Vec<Bytes>) {
        out.append(&mut self.full);
        if !self.open.is_empty() {
            // Whole, not split: the taker's chunks must be its own to return.
            out.push(std::mem::take(&mut self.open).freeze());
        }
    }
}

impl FrameQueue {
    /// A queue that holds at most `capacity` frames (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        FrameQueue {
            queued: Mutex::new(Queued {
                full: Vec::new(),
                open: BytesMut::new(),
                spare: Vec::new(),
                frames: 0,
                nudged: false,
                closed: false,
            }),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    // Only byte copies run under this lock: a poisoned one is still consistent.
    fn lock(&self) -> MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one whole frame; refused when the queue is full or closed.
    pub(crate) fn push(&self, frame: &[u8]) -> Result<(), DeadLetterReason> {
        let mut queued = self.lock();
        if queued.closed {
            return Err(DeadLetterReason::Unreachable);
        }
        if queued.frames >= self.capacity {
            return Err(DeadLetterReason::MailboxFull);
        }
        if queued.open.capacity() - queued.open.len() < frame.len() {
            let fresh = match queued.spare.pop() {
                Some(spare) if frame.len() <= spare.capacity() => spare,
                _ => BytesMut::with_capacity(frame.len().max(CHUNK)),
            };
            let filled = std::mem::replace(&mut queued.open, fresh);
            if !filled.is_empty() {
                queued.full.push(filled.freeze());
            }
        }
        queued.open.extend_from_slice(frame);
        queued.frames += 1;
        let first = queued.frames == 1;
        drop(queued);
        if first {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Frames queued now.
    pub(crate) fn len(&self) -> usize {
        self.lock().frames
    }

    /// Appends everything queued to `out`, as chunks of whole frames in
    /// order, and returns how many frames they hold.
    pub(crate) fn take(&self, out: &mut Vec<Bytes>) -> usize {
        let mut queued = self.lock();
        queued.drain_into(out);
        queued.nudged = false;
        std::mem::take(&mut queued.frames)
    }

    /// Takes back written chunks, to be filled again; empties `chunks`.
    pub(crate) fn give_back(&self, chunks: &mut Vec<Bytes>) {
        let mut queued = self.lock();
        for chunk in chunks.drain(..) {
            if queued.spare.len() >= SPARE {
                break;
            }
            if let Ok(mut spare) = chunk.try_into_mut() {
                if spare.capacity() == CHUNK {
                    spare.clear();
                    queued.spare.push(spare);
                }
            }
        }
    }

    /// Wakes the writer as a frame would, for bytes held outside the queue.
    pub(crate) fn nudge(&self) {
        self.lock().nudged = true;
        self.ready.notify_one();
    }

    /// Waits until a frame is queued (or the writer is nudged); `false`
    /// once the queue is closed.
    pub(crate) async fn wait(&self) -> bool {
        loop {
            let ready = self.ready.notified();
            {
                let queued = self.lock();
                if queued.closed {
                    return false;
                }
                if queued.frames > 0 || queued.nudged {
                    return true;
                }
            }
            ready.await;
        }
    }

    /// Refuses further frames and wakes the writer; hands back what was
    /// queued, as chunks.
    pub(crate) fn close(&self) -> Vec<Bytes> {
        let mut left = Vec::new();
        {
            let mut queued = self.lock();
            queued.closed = true;
            queued.frames = 0;
            queued.drain_into(&mut left);
        }
        self.ready.notify_one();
        left
    }
}

/// Buffers lent to quinn for writing, taken back for the next writes once
/// quinn has let go of them (the peer acknowledged their bytes).
#[derive(Default)]
pub(crate) struct Lent {
    out: VecDeque<Bytes>,
}

impl Lent {
    /// Most buffers watched; the oldest beyond are left to quinn to free.
    const WATCHED: usize = 32;

    /// An empty buffer of at least `len` bytes: the oldest lent one if
    /// quinn is done with it, otherwise a new one.
    pub(crate) fn buffer(&mut self, len: usize) -> BytesMut {
        if self.out.front().is_some_and(Bytes::is_unique) {
            if let Some(Ok(mut buffer)) = self.out.pop_front().map(Bytes::try_into_mut) {
                if buffer.capacity() >= len {
                    buffer.clear();
                    return buffer;
                }
            }
        }
        BytesMut::with_capacity(len)
    }

    /// Notes `buffer` as lent.
    pub(crate) fn lend(&mut self, buffer: &Bytes) {
        if self.out.len() >= Self::WATCHED {
            self.out.pop_front();
        }
        self.out.push_back(buffer.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes everything queued, as one byte string, and its frame count.
    fn take_all(queue: &FrameQueue) -> (Vec<u8>, usize) {
        let mut chunks = Vec::new();
        let frames = queue.take(&mut chunks);
        (chunks.concat(), frames)
    }

    #[test]
    fn frames_come_out_in_order() {
        let queue = FrameQueue::new(8);
        queue.push(b"ab").unwrap();
        queue.push(b"cde").unwrap();
        assert_eq!(queue.len(), 2);
        assert_eq!(take_all(&queue), (b"abcde".to_vec(), 2));
        assert_eq!(take_all(&queue), (Vec::new(), 0));
        queue.push(b"f").unwrap();
        assert_eq!(take_all(&queue), (b"f".to_vec(), 1));
    }

    #[test]
    fn frames_fill_chunks_whole_and_a_large_frame_gets_its_own() {
        let queue = FrameQueue::new(usize::MAX);
        let small = vec![1u8; CHUNK / 3 + 1];
        let large = vec![2u8; CHUNK + 5];
        for frame in [&small, &small, &small, &large, &small] {
            queue.push(frame).unwrap();
        }
        let mut chunks = Vec::new();
        assert_eq!(queue.take(&mut chunks), 5);
        let lens: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(lens, [2 * small.len(), small.len(), large.len(), small.len()]);
        assert_eq!(chunks.concat(), [&small[..], &small, &small, &large, &small].concat());
    }

    #[test]
    fn a_full_queue_refuses_until_the_writer_takes() {
        let queue = FrameQueue::new(2);
        queue.push(b"1").unwrap();
        queue.push(b"2").unwrap();
        assert_eq!(queue.push(b"3"), Err(DeadLetterReason::MailboxFull));
        let _ = take_all(&queue);
        queue.push(b"3").unwrap();
    }

    #[test]
    fn a_closed_queue_refuses_and_hands_back_what_it_held() {
        let queue = FrameQueue::new(2);
        queue.push(b"x").unwrap();
        assert_eq!(queue.close().concat(), b"x");
        assert_eq!(queue.push(b"y"), Err(DeadLetterReason::Unreachable));
        assert_eq!(take_all(&queue), (Vec::new(), 0));
    }

    #[test]
    fn written_chunks_are_filled_again() {
        let queue = FrameQueue::new(8);
        queue.push(b"first").unwrap();
        let mut chunks = Vec::new();
        queue.take(&mut chunks);
        let first = chunks[0].as_ptr();
        queue.give_back(&mut chunks);
        assert!(chunks.is_empty());
        queue.push(b"second").unwrap();
        queue.take(&mut chunks);
        assert_eq!((chunks[0].as_ptr(), &chunks[0][..]), (first, &b"second"[..]));
    }

    #[test]
    fn a_lent_buffer_is_used_again_once_quinn_lets_go() {
        let mut lent = Lent::default();
        let mut buffer = lent.buffer(CHUNK);
        buffer.extend_from_slice(b"frames");
        let written = buffer.freeze();
        lent.lend(&written);
        let held = written.clone();
        assert_ne!(lent.buffer(CHUNK).as_ptr(), held.as_ptr(), "still held");
        let first = held.as_ptr();
        drop((written, held));
        let again = lent.buffer(CHUNK);
        assert_eq!((again.as_ptr(), again.len()), (first, 0));
        assert!(again.capacity() >= CHUNK);
    }

    #[tokio::test]
    async fn the_writer_waits_for_the_first_frame_and_for_close() {
        let queue = std::sync::Arc::new(FrameQueue::new(4));
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.wait().await }
        });
        tokio::task::yield_now().await;
        queue.push(b"z").unwrap();
        assert!(tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("the writer to wake for a frame")
            .unwrap());
        let _ = take_all(&queue);
        let closing = tokio::spawn({
            let queue = queue.clone();
            async move { queue.wait().await }
        });
        queue.close();
        assert!(!tokio::time::timeout(std::time::Duration::from_secs(10), closing)
            .await
            .expect("the writer to wake for the close")
            .unwrap());
    }
}
