//! Async boundaries: the upstream island runs on its own task and hands
//! elements over through a bounded buffer, as Reactive Streams demand.
//!
//! The downstream side grants demand (initially the buffer's capacity, then
//! in batches of half of it as it consumes, like Akka's input boundary);
//! the upstream side pulls at most that many elements from its island and
//! publishes them in one batch under one lock. So at most `capacity`
//! elements are ever between the two islands, and a lock and a wake-up are
//! paid per batch rather than per element. An error is delivered after the
//! elements buffered before it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::StreamError;
use crate::graph::Materializer;
use crate::protocol::Demand;
use crate::stage::{BoxUpstream, Pull, Upstream};
use crate::stats::StageCell;

/// The buffer of [`async_boundary`](crate::Source::async_boundary).
pub(crate) const DEFAULT_BUFFER: usize = 16;

/// How many elements an island hands over in one poll before it yields.
const YIELD_BUDGET: u64 = 2048;

struct State<T> {
    queue: VecDeque<T>,
    /// Granted by downstream, not yet met by upstream.
    demand: Demand,
    end: Option<Result<(), StreamError>>,
    cancelled: bool,
    up_waker: Option<Waker>,
    down_waker: Option<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    // No user code runs under this lock, so a poisoned lock still holds consistent state.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Splits the graph at this point: `upstream` becomes an island of its own.
pub(crate) fn split<T: Send + 'static>(
    upstream: BoxUpstream<T>,
    capacity: usize,
    materializer: &mut Materializer,
) -> BoxUpstream<T> {
    let capacity = capacity.max(1);
    let cell = materializer.cell("async_boundary");
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
    let mut sender = Sender {
        shared: Arc::clone(&shared),
        upstream,
        batch: Vec::with_capacity(capacity),
    };
    materializer.spawn(async move { poll_fn(|cx| sender.poll_run(cx)).await });
    Box::new(Receiver {
        shared,
        local: VecDeque::new(),
        consumed: 0,
        threshold: (capacity as u64 / 2).max(1),
        cell,
        done: false,
    })
}

/// The upstream island's end: pulls as much as is demanded and publishes it.
struct Sender<T> {
    shared: Arc<Shared<T>>,
    upstream: BoxUpstream<T>,
    batch: Vec<T>,
}

impl<T> Sender<T> {
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = YIELD_BUDGET;
        loop {
            let allowed = {
                let mut state = self.shared.lock();
                if state.cancelled {
                    return Poll::Ready(());
                }
                let allowed = state.demand.outstanding().min(self.batch.capacity() as u64);
                if allowed == 0 {
                    state.up_waker = Some(cx.waker().clone());
                }
                allowed
            };
            if allowed == 0 {
                // No demand: let stages that work ahead (buffers, map_async) progress.
                self.upstream.poll_pump(cx);
                return Poll::Pending;
            }
            let mut end = None;
            let mut pending = false;
            while (self.batch.len() as u64) < allowed {
                match self.upstream.poll_next(cx) {
                    Poll::Ready(Some(Ok(element))) => self.batch.push(element),
                    Poll::Ready(Some(Err(error))) => {
                        end = Some(Err(error));
                        break;
                    }
                    Poll::Ready(None) => {
                        end = Some(Ok(()));
                        break;
                    }
                    Poll::Pending => {
                        pending = true;
                        break;
                    }
                }
            }
            let sent = self.batch.len() as u64;
            let finished = end.is_some();
            let (down, cancelled) = {
                let mut state = self.shared.lock();
                let _ = state.demand.take_up_to(sent);
                state.queue.extend(self.batch.drain(..));
                if end.is_some() {
                    state.end = end;
                }
                if pending {
                    state.up_waker = Some(cx.waker().clone());
                }
                let down = if sent > 0 || finished {
                    state.down_waker.take()
                } else {
                    None
                };
                (down, state.cancelled)
            };
            if let Some(waker) = down {
                waker.wake();
            }
            if finished || cancelled {
                return Poll::Ready(());
            }
            if pending {
                return Poll::Pending;
            }
            budget = budget.saturating_sub(sent.max(1));
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // Dropped without an end (a stage panicked, the runtime stopped):
        // tell downstream rather than leave it waiting forever.
        let down = {
            let mut state = self.shared.lock();
            if state.end.is_some() || state.cancelled {
                return;
            }
            state.end = Some(Err(StreamError::AbruptTermination));
            state.down_waker.take()
        };
        if let Some(waker) = down {
            waker.wake();
        }
    }
}

/// The downstream island's end: takes whole batches, grants demand in batches.
struct Receiver<T> {
    shared: Arc<Shared<T>>,
    local: VecDeque<T>,
    consumed: u64,
    threshold: u64,
    cell: Arc<StageCell>,
    done: bool,
}

impl<T> Receiver<T> {
    fn grant(&mut self) {
        let up = {
            let mut state = self.shared.lock();
            let _ = state.demand.request(self.consumed);
            self.cell.set_demand(state.demand.outstanding());
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
                self.cell.add_out();
                return Poll::Ready(Some(Ok(element)));
            }
            let mut state = self.shared.lock();
            std::mem::swap(&mut state.queue, &mut self.local);
            self.cell.set_demand(state.demand.outstanding());
            self.cell.set_buffered(self.local.len());
            if !self.local.is_empty() {
                continue;
            }
            if let Some(end) = state.end.take() {
                drop(state);
                self.done = true;
                return Poll::Ready(self.cell.ended(end));
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
            self.cell.cancelled();
        }
        if let Some(waker) = up {
            waker.wake();
        }
    }
}
