//! The hand-over between two tasks: a bounded queue governed by Reactive
//! Streams demand. Async boundaries, fan-out junctions and hubs all hand
//! elements to another island through one of these.
//!
//! The receiving side grants demand (initially the capacity, then in
//! batches of half of it as it consumes, like Akka's input boundary); the
//! sending side never queues more than was granted, and publishes whole
//! batches under one lock. So at most `capacity` elements are ever in the
//! queue, and a lock and a wake-up are paid per batch rather than per
//! element. The terminal signal is delivered after the queued elements.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::StreamError;
use crate::protocol::Demand;
use crate::stage::{Pull, Upstream};
use crate::stats::StageCell;

pub(crate) struct State<T> {
    pub(crate) queue: VecDeque<T>,
    /// Granted by the receiver, not yet met by the sender.
    pub(crate) demand: Demand,
    pub(crate) end: Option<Result<(), StreamError>>,
    /// The receiver is gone.
    pub(crate) cancelled: bool,
    pub(crate) up_waker: Option<Waker>,
    pub(crate) down_waker: Option<Waker>,
}

pub(crate) struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    // No user code runs under this lock, so a poisoned lock still holds consistent state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `batch` (within the granted demand) and, if given, the end;
    /// wakes the receiver. `waiting` is the sender's waker when it will
    /// wait for more demand. Returns whether the receiver has gone.
    pub(crate) fn publish(
        &self,
        batch: &mut Vec<T>,
        end: Option<Result<(), StreamError>>,
        waiting: Option<&Waker>,
    ) -> bool {
        let (down, cancelled) = {
            let mut state = self.lock();
            if let Some(waker) = waiting {
                state.up_waker = Some(waker.clone());
            }
            let sent = batch.len() as u64;
            let _ = state.demand.take_up_to(sent);
            state.queue.extend(batch.drain(..));
            let wake = sent > 0 || end.is_some();
            if end.is_some() && state.end.is_none() {
                state.end = end;
            }
            let down = if wake { state.down_waker.take() } else { None };
            (down, state.cancelled)
        };
        if let Some(waker) = down {
            waker.wake();
        }
        cancelled
    }

    /// Ends the hand-over with `end` unless it has ended already; for a
    /// sender that stops without its upstream having ended (a panic).
    pub(crate) fn end_if_open(&self, end: Result<(), StreamError>) {
        let down = {
            let mut state = self.lock();
            if state.end.is_some() || state.cancelled {
                return;
            }
            state.end = Some(end);
            state.down_waker.take()
        };
        if let Some(waker) = down {
            waker.wake();
        }
    }
}

/// What a [`Receiver`] counts, and where.
pub(crate) enum ReceiverStats {
    /// The receiver is a stage of its own (an async boundary, a hub's consumer).
    Stage(Arc<StageCell>),
    /// The receiver is one outlet of a fan-out junction: it counts what
    /// passes through that outlet; the junction keeps the rest.
    Outlet(Arc<StageCell>, usize),
    /// Someone else counts (a merge hub's consumer).
    Silent,
}

/// A hand-over of at most `capacity` elements (at least 1): the shared
/// state for the sending side, and the receiving side as an upstream.
pub(crate) fn channel<T>(capacity: usize, stats: ReceiverStats) -> (Arc<Shared<T>>, Receiver<T>) {
    let capacity = capacity.max(1);
    let mut demand = Demand::new();
    let _ = demand.request(capacity as u64);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(capacity),
            demand,
            end: None,
            cancelled: false,
            up_waker: None,
            down_waker: None,
        }),
    });
    let receiver = Receiver {
        shared: Arc::clone(&shared),
        local: VecDeque::new(),
        consumed: 0,
        threshold: (capacity as u64 / 2).max(1),
        stats,
        done: false,
    };
    (shared, receiver)
}

/// The receiving end: takes whole batches, grants demand in batches.
/// Dropping it cancels the hand-over.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
    local: VecDeque<T>,
    consumed: u64,
    threshold: u64,
    stats: ReceiverStats,
    done: bool,
}

impl<T> Receiver<T> {
    /// Whether an element is here to be taken.
    pub(crate) fn is_ready(&self) -> bool {
        !self.local.is_empty() || !self.shared.lock().queue.is_empty()
    }

    fn grant(&mut self) {
        let up = {
            let mut state = self.shared.lock();
            let _ = state.demand.request(self.consumed);
            if let ReceiverStats::Stage(cell) = &self.stats {
                cell.set_demand(state.demand.outstanding());
            }
            state.up_waker.take()
        };
        self.consumed = 0;
        if let Some(waker) = up {
            waker.wake();
        }
    }
}

impl<T: Send> Upstream<T> for Receiver<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            if let Some(element) = self.local.pop_front() {
                self.consumed += 1;
                if self.consumed >= self.threshold {
                    self.grant();
                }
                match &self.stats {
                    ReceiverStats::Stage(cell) => cell.add_out(),
                    ReceiverStats::Outlet(cell, port) => cell.add_outlet(*port),
                    ReceiverStats::Silent => {}
                }
                return Poll::Ready(Some(Ok(element)));
            }
            let mut state = self.shared.lock();
            std::mem::swap(&mut state.queue, &mut self.local);
            if let ReceiverStats::Stage(cell) = &self.stats {
                cell.set_demand(state.demand.outstanding());
                cell.set_buffered(self.local.len());
            }
            if !self.local.is_empty() {
                continue;
            }
            if let Some(end) = state.end.take() {
                drop(state);
                self.done = true;
                return Poll::Ready(match &self.stats {
                    ReceiverStats::Stage(cell) => cell.ended(end),
                    _ => end.err().map(Err),
                });
            }
            state.down_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (up, dropped) = {
            let mut state = self.shared.lock();
            state.cancelled = true;
            (state.up_waker.take(), std::mem::take(&mut state.queue))
        };
        // Elements are dropped outside the lock: their destructors are user code.
        drop(dropped);
        if !self.done {
            if let ReceiverStats::Stage(cell) = &self.stats {
                cell.cancelled();
            }
        }
        if let Some(waker) = up {
            waker.wake();
        }
    }
}
