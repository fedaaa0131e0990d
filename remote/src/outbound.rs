//! [`FrameQueue`]: user messages waiting for a peer's stream, as encoded
//! frames in one growing buffer.
//!
//! A queue of one buffer per frame costs an allocation, a free and a copy
//! per message, and quinn scans its queued buffers to pack each packet, at
//! a cost that grows with their number. Here a sender appends its frame's
//! bytes under a short lock, and the writer takes everything queued as one
//! buffer for one write.

use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::{Bytes, BytesMut};
use compaktor_actor::DeadLetterReason;
use tokio::sync::Notify;

/// Room a fresh buffer starts with: a write's worth of small frames.
const FRESH: usize = 64 * 1024;

/// A bounded queue of encoded frames, counted in frames.
pub(crate) struct FrameQueue {
    queued: Mutex<Queued>,
    /// Signalled when the queue stops being empty, or closes.
    ready: Notify,
    capacity: usize,
}

struct Queued {
    buf: BytesMut,
    frames: usize,
    closed: bool,
    /// Bytes the writer took last: room for the next buffer, so that it
    /// does not grow, copying, from small under a steady load.
    last_take: usize,
}

impl FrameQueue {
    /// A queue that holds at most `capacity` frames (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        FrameQueue {
            queued: Mutex::new(Queued {
                buf: BytesMut::new(),
                frames: 0,
                closed: false,
                last_take: 0,
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
        if queued.buf.capacity() - queued.buf.len() < frame.len() {
            let room = frame.len().max(FRESH).max(queued.last_take);
            queued.buf.reserve(room);
        }
        queued.buf.extend_from_slice(frame);
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

    /// Everything queued, as one buffer, and how many frames it holds.
    pub(crate) fn take(&self) -> Option<(Bytes, usize)> {
        let mut queued = self.lock();
        if queued.frames == 0 {
            return None;
        }
        let frames = std::mem::take(&mut queued.frames);
        queued.last_take = queued.buf.len();
        Some((queued.buf.split().freeze(), frames))
    }

    /// Waits until a frame is queued; `false` once the queue is closed.
    pub(crate) async fn wait(&self) -> bool {
        loop {
            let ready = self.ready.notified();
            {
                let queued = self.lock();
                if queued.closed {
                    return false;
                }
                if queued.frames > 0 {
                    return true;
                }
            }
            ready.await;
        }
    }

    /// Refuses further frames and wakes the writer; hands back what was queued.
    pub(crate) fn close(&self) -> Option<Bytes> {
        let left = {
            let mut queued = self.lock();
            queued.closed = true;
            queued.frames = 0;
            (!queued.buf.is_empty()).then(|| queued.buf.split().freeze())
        };
        self.ready.notify_one();
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_in_order_as_one_buffer() {
        let queue = FrameQueue::new(8);
        queue.push(b"ab").unwrap();
        queue.push(b"cde").unwrap();
        assert_eq!(queue.len(), 2);
        let (bytes, frames) = queue.take().unwrap();
        assert_eq!((&bytes[..], frames), (&b"abcde"[..], 2));
        assert!(queue.take().is_none());
        queue.push(b"f").unwrap();
        assert_eq!(&queue.take().unwrap().0[..], b"f");
    }

    #[test]
    fn a_full_queue_refuses_until_the_writer_takes() {
        let queue = FrameQueue::new(2);
        queue.push(b"1").unwrap();
        queue.push(b"2").unwrap();
        assert_eq!(queue.push(b"3"), Err(DeadLetterReason::MailboxFull));
        let _ = queue.take();
        queue.push(b"3").unwrap();
    }

    #[test]
    fn a_closed_queue_refuses_and_hands_back_what_it_held() {
        let queue = FrameQueue::new(2);
        queue.push(b"x").unwrap();
        assert_eq!(queue.close().as_deref(), Some(&b"x"[..]));
        assert_eq!(queue.push(b"y"), Err(DeadLetterReason::Unreachable));
        assert!(queue.take().is_none());
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
        let _ = queue.take();
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
