//! Fan-out junctions: `broadcast`, `balance` and `partition`, and the
//! driver that a [`BroadcastHub`](crate::BroadcastHub) runs on.
//!
//! A fan-out junction ends its island: its upstream runs on a task of its
//! own, which pulls only what the outlets' demand allows (the
//! [`Router`] decides), and hands elements to each outlet through a
//! bounded [`handoff`](crate::handoff). Each outlet is then the start of
//! its downstream's island. So a junction holds at most `capacity`
//! elements per outlet, and a slow outlet of a broadcast slows the source.
//!
//! When an outlet cancels, the others go on; when all have, the junction
//! cancels its upstream (an *eager* junction, as `also_to` uses, cancels
//! upstream and completes the other outlets as soon as any one cancels).
//! Completion and failure reach every outlet after the elements queued for it.

mod router;

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use router::OutletView;
pub(crate) use router::{Router, Rule};

use crate::boundary::YIELD_BUDGET;
use crate::error::StreamError;
use crate::graph::Materializer;
use crate::handoff::{self, ReceiverStats, Shared};
use crate::stage::BoxUpstream;
use crate::stats::{Input, StageCell};

/// Starts a fan-out junction over `upstream` with `outlets` outlets (at
/// least 1) of `capacity` elements each, stopping at the first cancelled
/// outlet if `eager`; returns each outlet as an upstream, with where its
/// statistics come from.
pub(crate) fn spawn<T: Send + 'static>(
    name: &'static str,
    upstream: BoxUpstream<T>,
    (rule, eager): (Rule<T>, bool),
    outlets: usize,
    capacity: usize,
    m: &mut Materializer,
) -> Vec<(BoxUpstream<T>, Input)> {
    let outlets = outlets.max(1);
    let (id, cell) = m.junction_cell(name, outlets);
    let mut shared = Vec::with_capacity(outlets);
    let mut receivers = Vec::with_capacity(outlets);
    for k in 0..outlets {
        let (outlet, receiver) = handoff::channel(capacity, ReceiverStats::Outlet(Arc::clone(&cell), k));
        shared.push(outlet);
        receivers.push((Box::new(receiver) as BoxUpstream<T>, Input::Outlet(id, k)));
    }
    let mut driver = Driver::new(upstream, Router::new(rule, outlets), shared, capacity, cell, None);
    driver.eager = eager;
    m.spawn(async move { poll_fn(|cx| driver.poll_run(cx)).await });
    receivers
}

/// Outlets that attach while the junction runs (a broadcast hub's consumers).
pub(crate) struct Attachments<T> {
    state: Mutex<AttachState<T>>,
    /// Newcomers are waiting: lets the driver skip the lock otherwise.
    fresh: AtomicBool,
    /// Whether anyone can still attach (a handle or a blueprint exists).
    open: AtomicBool,
    capacity: usize,
}

struct AttachState<T> {
    newcomers: Vec<Arc<Shared<T>>>,
    /// How the junction ended, for consumers that attach afterwards.
    end: Option<Result<(), StreamError>>,
    waker: Option<Waker>,
}

impl<T> Attachments<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Attachments {
            state: Mutex::new(AttachState {
                newcomers: Vec::new(),
                end: None,
                waker: None,
            }),
            fresh: AtomicBool::new(false),
            open: AtomicBool::new(true),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, AttachState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new outlet; if the junction has ended, it ends at once the same way.
    pub(crate) fn attach(&self, cell: Arc<StageCell>) -> handoff::Receiver<T> {
        let (outlet, receiver) = handoff::channel(self.capacity, ReceiverStats::Stage(cell));
        let waker = {
            let mut state = self.lock();
            if let Some(end) = state.end.clone() {
                outlet.end_if_open(end);
                return receiver;
            }
            state.newcomers.push(outlet);
            self.fresh.store(true, Ordering::Release);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        receiver
    }

    /// Nobody can attach any more: the junction may stop once its outlets have gone.
    pub(crate) fn close(&self) {
        self.open.store(false, Ordering::Release);
        let waker = self.lock().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn finish(&self, end: Result<(), StreamError>) {
        let newcomers = {
            let mut state = self.lock();
            state.end.get_or_insert(end.clone());
            std::mem::take(&mut state.newcomers)
        };
        for outlet in newcomers {
            outlet.end_if_open(end.clone());
        }
    }
}

/// Runs a fan-out junction: pulls what the router allows and publishes it.
pub(crate) struct Driver<T> {
    upstream: Option<BoxUpstream<T>>,
    router: Router<T>,
    outlets: Vec<Arc<Shared<T>>>,
    batches: Vec<Vec<T>>,
    capacity: u64,
    end: Option<Result<(), StreamError>>,
    cell: Arc<StageCell>,
    attachments: Option<Arc<Attachments<T>>>,
    /// Stop when any outlet cancels.
    eager: bool,
    finished: bool,
}

impl<T: Send + 'static> Driver<T> {
    pub(crate) fn new(
        upstream: BoxUpstream<T>,
        router: Router<T>,
        outlets: Vec<Arc<Shared<T>>>,
        capacity: usize,
        cell: Arc<StageCell>,
        attachments: Option<Arc<Attachments<T>>>,
    ) -> Self {
        Driver {
            upstream: Some(upstream),
            router,
            batches: outlets.iter().map(|_| Vec::new()).collect(),
            outlets,
            capacity: capacity.max(1) as u64,
            end: None,
            cell,
            attachments,
            eager: false,
            finished: false,
        }
    }

    /// Moves newly attached outlets in; with `waker`, registers it for the
    /// next attachment. Returns whether anyone can still attach, and
    /// whether outlets arrived.
    fn take_newcomers(&mut self, waker: Option<&Waker>) -> (bool, bool) {
        let Some(attachments) = self.attachments.as_ref() else {
            return (false, false);
        };
        if waker.is_none() && !attachments.fresh.load(Ordering::Acquire) {
            return (attachments.open.load(Ordering::Acquire), false);
        }
        let mut state = attachments.lock();
        attachments.fresh.store(false, Ordering::Relaxed);
        let arrived = !state.newcomers.is_empty();
        for outlet in state.newcomers.drain(..) {
            // A new hand-over has all its demand: it can take a whole batch.
            let k = self.router.add_outlet();
            let view = OutletView {
                demand: self.capacity,
                live: true,
            };
            self.router.update(k, view);
            self.outlets.push(outlet);
            self.batches.push(Vec::new());
        }
        if let Some(waker) = waker {
            state.waker = Some(waker.clone());
        }
        // Read after registering: a `close` from now on finds the waker.
        (attachments.open.load(Ordering::Acquire), arrived)
    }

    /// Reads every outlet's demand into the router and registers `cx` to
    /// hear of new demand; drops cancelled outlets of a hub.
    fn look_at_outlets(&mut self, cx: &Context<'_>) {
        let mut buffered = 0;
        for (k, outlet) in self.outlets.iter().enumerate() {
            let mut state = outlet.lock();
            let view = OutletView {
                demand: state.demand.outstanding(),
                live: !state.cancelled,
            };
            self.router.update(k, view);
            buffered += state.queue.len();
            if !state.up_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.up_waker = Some(cx.waker().clone());
            }
        }
        self.cell.set_buffered(buffered);
        if self.attachments.is_some() {
            // A hub's consumers are not numbered: forget those that left.
            for k in (0..self.outlets.len()).rev() {
                if self.outlets[k].lock().cancelled {
                    self.outlets.swap_remove(k);
                    self.batches.swap_remove(k);
                    self.router.remove_outlet(k);
                }
            }
        }
    }

    fn stop(&mut self, end: Option<Result<(), StreamError>>) -> Poll<()> {
        self.finished = true;
        self.upstream = None;
        match &end {
            Some(Ok(())) => self.cell.completed(),
            Some(Err(_)) => self.cell.failed(),
            None => self.cell.cancelled(),
        }
        if let Some(attachments) = self.attachments.as_ref() {
            attachments.finish(end.unwrap_or(Err(StreamError::HubClosed)));
        }
        Poll::Ready(())
    }

    /// Pulls what the router allows and routes it into the batches;
    /// returns how many elements came, and whether upstream has no more now.
    fn pull(&mut self, upstream: &mut BoxUpstream<T>, cx: &mut Context<'_>) -> (u64, bool) {
        let mut pulled = 0u64;
        let mut allowed = self.router.allowance().min(self.capacity);
        self.cell.set_demand(allowed);
        if allowed == 0 {
            self.cell.backpressure_on();
        } else {
            self.cell.backpressure_off();
        }
        while allowed > 0 {
            match upstream.poll_next(cx) {
                Poll::Ready(Some(Ok(element))) => {
                    self.cell.add_in();
                    pulled += 1;
                    if self.attachments.is_some() {
                        // A consumer that attached before this element was produced receives it.
                        let _ = self.take_newcomers(None);
                    }
                    if let Err(error) = self.router.route(element, &mut self.batches) {
                        self.end = Some(Err(error));
                        break;
                    }
                    allowed -= 1;
                    if allowed == 0 {
                        allowed = self.router.allowance().min(self.capacity - pulled.min(self.capacity));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    self.end = Some(Err(error));
                    break;
                }
                Poll::Ready(None) => {
                    self.end = Some(Ok(()));
                    break;
                }
                Poll::Pending => return (pulled, true),
            }
        }
        (pulled, false)
    }

    pub(crate) fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = YIELD_BUDGET;
        loop {
            let (open, _) = self.take_newcomers(None);
            self.look_at_outlets(cx);
            if self.router.live_outlets() == 0 && !open {
                // Every outlet cancelled, and no more can come: cancel upstream.
                return self.stop(None);
            }
            if self.eager && self.router.live_outlets() < self.outlets.len() {
                // One outlet cancelled: cancel upstream and complete the others.
                for outlet in &self.outlets {
                    let _ = outlet.publish(&mut Vec::new(), Some(Ok(())), None);
                }
                return self.stop(None);
            }
            self.router.release(&mut self.batches);
            let (pulled, pending) = match self.upstream.take() {
                Some(mut upstream) if self.end.is_none() => {
                    let pulled = self.pull(&mut upstream, cx);
                    self.upstream = Some(upstream);
                    pulled
                }
                upstream => {
                    self.upstream = upstream;
                    (0, false)
                }
            };
            if self.end.is_some() {
                // Cancel upstream at once; a held element may still go out.
                self.upstream = None;
            }
            let finishing = match &self.end {
                Some(Ok(())) => !self.router.is_holding(),
                Some(Err(_)) => true,
                None => false,
            };
            let counted = self.attachments.is_some();
            for (outlet, batch) in self.outlets.iter().zip(self.batches.iter_mut()) {
                if counted {
                    self.cell.add_out_n(batch.len() as u64);
                }
                if !batch.is_empty() || finishing {
                    let _ = outlet.publish(batch, finishing.then(|| self.end.clone()).flatten(), None);
                }
            }
            if finishing {
                let end = self.end.take();
                return self.stop(end);
            }
            if pending || pulled == 0 {
                if let Some(upstream) = self.upstream.as_mut().filter(|_| !pending) {
                    // No demand: let stages that work ahead progress.
                    upstream.poll_pump(cx);
                }
                let (open, arrived) = self.take_newcomers(Some(cx.waker()));
                if arrived || (!open && self.attachments.is_some() && self.outlets.is_empty()) {
                    continue;
                }
                return Poll::Pending;
            }
            budget = budget.saturating_sub(pulled);
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

impl<T> Drop for Driver<T> {
    fn drop(&mut self) {
        // Dropped without an end (upstream panicked, the runtime stopped):
        // tell every outlet rather than leave it waiting forever.
        if self.finished {
            return;
        }
        for outlet in &self.outlets {
            outlet.end_if_open(Err(StreamError::AbruptTermination));
        }
        if let Some(attachments) = self.attachments.as_ref() {
            attachments.finish(Err(StreamError::AbruptTermination));
        }
    }
}
