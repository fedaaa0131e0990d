//! Async boundaries: the upstream island runs on its own task and hands
//! elements over through a bounded [`handoff`](crate::handoff), as Reactive
//! Streams demand: the upstream side pulls at most as many elements from its
//! island as downstream granted, and publishes them in one batch.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::error::StreamError;
use crate::graph::Materializer;
use crate::handoff::{self, ReceiverStats, Shared};
use crate::stage::BoxUpstream;
use crate::stats::StageCell;

/// The buffer of [`async_boundary`](crate::Source::async_boundary), of
/// each fan-out junction's outlets, and the hubs' default.
pub(crate) const DEFAULT_BUFFER: usize = 16;

/// How many elements an island hands over in one poll before it yields.
pub(crate) const YIELD_BUDGET: u64 = 2048;

/// Splits the graph at this point: `upstream` becomes an island of its own.
pub(crate) fn split<T: Send + 'static>(
    upstream: BoxUpstream<T>,
    capacity: usize,
    materializer: &mut Materializer,
) -> BoxUpstream<T> {
    let (shared, cell, receiver) = handover("async_boundary", capacity, materializer);
    let mut sender = Sender::new(shared, upstream, capacity, None).with_backpressure(cell);
    materializer.spawn(async move {
        let _ = poll_fn(|cx| sender.poll_run(cx)).await;
    });
    receiver
}

/// [`split`], with the upstream island on a thread of tokio's blocking
/// pool, driven there with [`Handle::block_on`](tokio::runtime::Handle::block_on).
pub(crate) fn split_blocking<T: Send + 'static>(
    upstream: BoxUpstream<T>,
    capacity: usize,
    materializer: &mut Materializer,
) -> BoxUpstream<T> {
    let (shared, cell, receiver) = handover("async_boundary_blocking", capacity, materializer);
    let mut sender = Sender::new(shared, upstream, capacity, None).with_backpressure(cell);
    materializer.spawn(async move {
        let runtime = tokio::runtime::Handle::current();
        // Detached: the island ends when its stream does.
        drop(tokio::task::spawn_blocking(move || {
            let _ = runtime.block_on(poll_fn(|cx| sender.poll_run(cx)));
        }));
    });
    receiver
}

/// A boundary's statistics cell named `name`, its hand-over, and the
/// receiving end that counts on the cell; the sender stamps its
/// backpressure there.
fn handover<T: Send + 'static>(
    name: &'static str,
    capacity: usize,
    materializer: &mut Materializer,
) -> (Arc<Shared<T>>, Arc<StageCell>, BoxUpstream<T>) {
    let cell = materializer.cell(name);
    let (shared, receiver) = handoff::channel(capacity, ReceiverStats::Stage(Arc::clone(&cell)));
    (shared, cell, Box::new(receiver))
}

/// A boundary whose upstream is attached later, for an edge that closes a
/// cycle: the receiving end exists before the stage that feeds it. Returns
/// the receiving end, its statistics id, and what attaches the upstream.
pub(crate) fn deferred<T: Send + 'static>(
    capacity: usize,
    materializer: &mut Materializer,
) -> (
    BoxUpstream<T>,
    usize,
    impl FnOnce(BoxUpstream<T>, &mut Materializer) + Send,
) {
    let (shared, pressure, receiver) = handover("feedback", capacity, materializer);
    let id = materializer.last_id();
    let attach = move |upstream: BoxUpstream<T>, m: &mut Materializer| {
        let mut sender = Sender::new(shared, upstream, capacity, None).with_backpressure(pressure);
        m.spawn(async move {
            let _ = poll_fn(|cx| sender.poll_run(cx)).await;
        });
    };
    (receiver, id, attach)
}

/// The upstream island's end: pulls as much as is demanded and publishes it.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
    upstream: BoxUpstream<T>,
    batch: Vec<T>,
    /// Counts what is handed over, when the sender is a stage of its own
    /// (a merge hub's producer).
    cell: Option<Arc<StageCell>>,
    /// Where the time spent without demand is stamped (the boundary's cell).
    pressure: Option<Arc<StageCell>>,
    ended: bool,
}

impl<T> Sender<T> {
    pub(crate) fn new(
        shared: Arc<Shared<T>>,
        upstream: BoxUpstream<T>,
        capacity: usize,
        cell: Option<Arc<StageCell>>,
    ) -> Self {
        Sender {
            shared,
            upstream,
            batch: Vec::with_capacity(capacity.max(1)),
            cell,
            pressure: None,
            ended: false,
        }
    }

    /// Stamps the spells without downstream demand on `cell`.
    pub(crate) fn with_backpressure(mut self, cell: Arc<StageCell>) -> Self {
        self.pressure = Some(cell);
        self
    }

    /// Runs until upstream ends (`Some` of how) or downstream cancels (`None`).
    pub(crate) fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(), StreamError>>> {
        let mut budget = YIELD_BUDGET;
        loop {
            let allowed = {
                let mut state = self.shared.lock();
                if state.cancelled {
                    return Poll::Ready(None);
                }
                let allowed = state.demand.outstanding().min(self.batch.capacity() as u64);
                if allowed == 0 {
                    state.up_waker = Some(cx.waker().clone());
                }
                allowed
            };
            if let Some(cell) = &self.pressure {
                if allowed == 0 {
                    cell.backpressure_on();
                } else {
                    cell.backpressure_off();
                }
            }
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
            if let Some(cell) = &self.cell {
                cell.add_out_n(sent);
            }
            let outcome = end.clone();
            let cancelled = self.shared.publish(&mut self.batch, end, pending.then(|| cx.waker()));
            if outcome.is_some() {
                self.ended = true;
                return Poll::Ready(outcome);
            }
            if cancelled {
                return Poll::Ready(None);
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
        if !self.ended {
            self.shared.end_if_open(Err(StreamError::AbruptTermination));
        }
    }
}
