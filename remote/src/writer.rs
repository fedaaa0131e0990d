//! Writing a queue of user messages to the peer: a task per queue that
//! writes in batches, and a short cut for a lone message.
//!
//! Under load the task gathers many frames per write (a write per message
//! costs several times the throughput). A lone message, such as an ask or
//! its reply, would wait for that task to be scheduled before quinn sees
//! it; so when the task is idle, the queue empty and the stream had no
//! such short cut for a while, the sender writes its frame itself.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::compress::Compressor;
use crate::outbound::{FrameQueue, Lent};
use crate::peer::{Established, LinkState, Peer};

/// How long after one short cut the next may be taken: a sender with
/// messages closer together than this is a stream of them, better
/// gathered into one write.
const SHORT_CUT_GAP: Duration = Duration::from_micros(50);

/// Frames worth gathering before a write when more keep coming.
const GATHER: usize = 256;

/// A queue's stream on the current connection and what writing on it
/// needs. It rests in a [`WriterSlot`] while the writer task is idle.
struct Writer {
    established: Arc<Established>,
    stream: quinn::SendStream,
    /// Numbers texts for this stream: every frame on it goes through it.
    compressor: Compressor,
    /// What a sender could not write at once: it goes first.
    tail: Option<Tail>,
    last_short_cut: Option<Instant>,
}

/// The rest of a message a sender began to write.
struct Tail {
    /// Compressed bytes still to write.
    rest: Bytes,
    /// The message's whole frame as queued: its dead letter if the rest
    /// never goes out (the peer drops a frame it got only part of).
    frame: Bytes,
}

impl Writer {
    /// Gives up the writer; a message it had begun becomes a dead letter.
    fn abandon(mut self, peer: &Weak<Peer>, why: &str) {
        if let (Some(tail), Some(peer)) = (self.tail.take(), peer.upgrade()) {
            peer.lose([tail.frame], why);
        }
    }
}

/// Where a queue's [`Writer`] rests between writes.
#[derive(Default)]
pub(crate) struct WriterSlot(Mutex<Option<Writer>>);

impl WriterSlot {
    // Held for a compression and a non-blocking write at most; a poisoned
    // slot holds a writer whose stream is as good as any.
    fn lock(&self) -> MutexGuard<'_, Option<Writer>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The frame of a message a sender began and nobody finished, as
    /// queued: for its dead letter when the node shuts down.
    pub(crate) fn take_unfinished(&self) -> Option<Bytes> {
        Some(self.lock().as_mut()?.tail.take()?.frame)
    }

    /// Writes `frame` (whole, as queued) straight to the stream if the
    /// writer task is idle on the connection in use, nothing is queued
    /// before it, and no short cut was taken in the last
    /// [`SHORT_CUT_GAP`]. `false` means queue it.
    pub(crate) fn try_write(&self, queue: &FrameQueue, link: &watch::Sender<LinkState>, frame: &[u8]) -> bool {
        let Ok(mut slot) = self.0.try_lock() else {
            return false;
        };
        let Some(writer) = slot.as_mut() else {
            return false;
        };
        if writer.tail.is_some() || queue.len() > 0 {
            return false;
        }
        // A connection that was replaced may still take bytes, then close.
        if !link.borrow().up().is_some_and(|e| Arc::ptr_eq(e, &writer.established)) {
            return false;
        }
        let now = Instant::now();
        if writer.last_short_cut.is_some_and(|last| now - last < SHORT_CUT_GAP) {
            return false;
        }
        writer.last_short_cut = Some(now);
        let mut compact = BytesMut::with_capacity(frame.len());
        writer.compressor.compress(frame, &mut compact);
        let mut bufs = [compact.freeze()];
        // Polled once: quinn takes what its flow control allows, and the
        // waker it keeps for a blocked write is replaced by the writer
        // task's own the next time that task writes.
        let polled = {
            let mut cx = Context::from_waker(Waker::noop());
            pin!(writer.stream.write_chunks(&mut bufs)).poll(&mut cx)
        };
        if let Poll::Ready(Err(_)) = polled {
            // Broken: the writer task opens another stream for the frame,
            // queued now like any other.
            *slot = None;
            return false;
        }
        let [rest] = bufs;
        if !rest.is_empty() {
            // The compressor has numbered its texts: these very bytes must
            // be the next on the stream, whatever is queued after them.
            writer.tail = Some(Tail {
                rest,
                frame: Bytes::copy_from_slice(frame),
            });
            drop(slot);
            queue.nudge();
        }
        true
    }
}

/// Writes one queue of user messages in batches, each connection on a
/// stream of its own. Messages that cannot be written (no connection could
/// be made, or it broke mid-write) become dead letters: delivery is at
/// most once.
pub(crate) async fn write_queue(
    peer: Weak<Peer>,
    queue: Arc<FrameQueue>,
    slot: Arc<WriterSlot>,
    mut link: watch::Receiver<LinkState>,
) {
    let mut taken = Vec::new();
    let mut wire = Vec::new();
    let mut lent = Lent::default();
    while queue.wait().await {
        // A stream on the current connection, or wait for one.
        let current = link.borrow_and_update().clone();
        let Some(established) = current.up().cloned() else {
            let rested = slot.lock().take();
            if let Some(writer) = rested {
                writer.abandon(&peer, "the connection was lost");
            }
            let Some(p) = peer.upgrade() else { return };
            p.want();
            drop(p);
            if link.changed().await.is_err() {
                return;
            }
            if link.borrow().failures > current.failures {
                let Some(p) = peer.upgrade() else { return };
                queue.take(&mut taken);
                p.lose(taken.drain(..), "cannot connect");
            }
            continue;
        };
        let rested = slot.lock().take();
        let mut writer = match rested {
            Some(writer) if Arc::ptr_eq(&writer.established, &established) => writer,
            rested => {
                // Its stream was on a connection no longer in use.
                if let Some(writer) = rested {
                    writer.abandon(&peer, "the connection was replaced");
                }
                match established.connection.open_uni().await {
                    Ok(stream) => Writer {
                        established,
                        stream,
                        compressor: Compressor::default(),
                        tail: None,
                        last_short_cut: None,
                    },
                    // The driver notices; try again on the next connection.
                    Err(_) => {
                        if link.changed().await.is_err() {
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        // Under load, let the senders add more before writing, so the
        // stream gets few large buffers; stop when the queue stays the
        // same. A lone message goes out at once.
        let mut rounds = 0;
        let mut queued = queue.len();
        while queued > 1 && queued < GATHER && rounds < 8 {
            tokio::task::yield_now().await;
            let before = std::mem::replace(&mut queued, queue.len());
            if queued == before {
                break;
            }
            rounds += 1;
        }
        queue.take(&mut taken);
        let tail = writer.tail.take();
        wire.extend(tail.as_ref().map(|t| t.rest.clone()));
        // Chunk for chunk, so the buffers keep the queue's one size.
        wire.extend(taken.iter().map(|frames| {
            let mut compact = lent.buffer(frames.len());
            writer.compressor.compress(frames, &mut compact);
            let compact = compact.freeze();
            lent.lend(&compact);
            compact
        }));
        let written = writer.stream.write_all_chunks(&mut wire).await;
        wire.clear();
        match written {
            Ok(()) => *slot.lock() = Some(writer),
            Err(error) => {
                tracing::debug!(%error, "write failed; unsent messages become dead letters");
                let Some(p) = peer.upgrade() else { return };
                p.lose(
                    tail.map(|t| t.frame).into_iter().chain(taken.drain(..)),
                    &error.to_string(),
                );
            }
        }
        queue.give_back(&mut taken);
    }
}
