//! The stage API: how one operator handles elements, demand and termination.
//!
//! Every built-in operator (`map`, `take`, `buffer`, `throttle`, ...) is a
//! [`Stage`]; [`Flow::from_stage`](crate::Flow::from_stage) turns your own
//! into a flow. Stages of one island are fused: an element pulled by the
//! sink travels through the stages as plain calls on one task, with no
//! queue between them.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::error::StreamError;
use crate::stats::StageCell;
use crate::supervision::{panic_message, Decider, Directive};
use crate::timers::Timers;

/// What an upstream answers to a pull: an element, the end (`None`), or a
/// failure (terminal, like the end).
pub(crate) type Pull<T> = Poll<Option<Result<T, StreamError>>>;

/// How a batched pull ([`Upstream::poll_batch`]) ended.
pub(crate) enum Pulled {
    /// More may follow; the batch may be empty (a filter dropped it all).
    More,
    /// The stream ended after the elements of this batch.
    Ended(Result<(), StreamError>),
}

/// How many elements a sink asks for in one batched pull: enough to pay
/// for the dynamic calls between stages, few enough to stay in cache.
pub(crate) const PULL_BATCH: usize = 128;

/// The type-erased output side of a fused chain: a source, or a stage with
/// everything upstream of it. Dropping it cancels everything upstream.
pub(crate) trait Upstream<T>: Send {
    /// Downstream demands one element (the fused form of `request(1)`).
    /// After `None` or an error it is not polled again.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T>;

    /// Downstream demands up to `max` elements at once (the fused form of
    /// `request(max)`); they are appended to `buf`, and never more than
    /// `max`. `Pending` appends nothing and has registered the waker. After
    /// [`Pulled::Ended`] it is not polled again.
    ///
    /// By default one [`poll_next`](Upstream::poll_next) per element;
    /// sources and element-wise stages override it to hand a whole batch
    /// over in one call.
    fn poll_batch(&mut self, cx: &mut Context<'_>, buf: &mut Vec<T>, max: usize) -> Poll<Pulled> {
        pull_each(self, cx, buf, max)
    }

    /// Downstream does not want an element now, but stages upstream that
    /// work ahead (buffers, `map_async`) may make progress.
    fn poll_pump(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// Puts the last stage under `decider`; `false` when this is not a
    /// stage (a source, a junction, an async boundary, a slot), which then
    /// fails the stream.
    fn supervise(&mut self, decider: Decider) -> bool {
        let _ = decider;
        false
    }

    /// The island's driver promises to call [`flush_stats`](Upstream::flush_stats)
    /// before it waits and when it ends: counters may then be published in batches.
    fn batch_stats(&mut self) {}

    /// Publishes counts held back by [`batch_stats`](Upstream::batch_stats), upstream too.
    fn flush_stats(&mut self) {}
}

/// A batched pull made of one [`Upstream::poll_next`] per element.
fn pull_each<T, U: Upstream<T> + ?Sized>(
    upstream: &mut U,
    cx: &mut Context<'_>,
    buf: &mut Vec<T>,
    max: usize,
) -> Poll<Pulled> {
    let before = buf.len();
    while buf.len() - before < max {
        match upstream.poll_next(cx) {
            Poll::Ready(Some(Ok(element))) => buf.push(element),
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Pulled::Ended(Err(error))),
            Poll::Ready(None) => return Poll::Ready(Pulled::Ended(Ok(()))),
            // What was gathered goes now; the next call will wait.
            Poll::Pending if buf.len() > before => return Poll::Ready(Pulled::More),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Pulled::More)
}

/// Elements a batched stage counts locally before publishing them.
pub(crate) const STATS_BATCH: u64 = 1024;

pub(crate) type BoxUpstream<T> = Box<dyn Upstream<T>>;

/// Awaits `work` of a sink that is busy with an element (delivering it to
/// an actor), pumping `upstream` meanwhile: its stages count the wait as
/// backpressure, and those that work ahead (a buffer, `map_async`) go on.
pub(crate) async fn pumping<T, F: Future>(upstream: &mut BoxUpstream<T>, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    poll_fn(|cx| {
        let done = work.as_mut().poll(cx);
        if done.is_pending() {
            upstream.poll_pump(cx);
        }
        done
    })
    .await
}

/// How many elements a stage may pull ahead in one `poll_pump` before it
/// yields, so that an endless fast source cannot starve its task's peers.
const PUMP_BUDGET: usize = 64;

/// One processing step with one input and one output.
///
/// The runtime calls the handlers; the stage answers through its
/// [`Outlet`]. Demand drives everything:
///
/// - When downstream wants an element and the outlet is empty, the runtime
///   asks [`should_pull`](Stage::should_pull)`(true)`; if it says yes, the
///   next upstream element arrives in [`on_push`](Stage::on_push).
/// - A stage may [`push`](Outlet::push) any number of elements in one
///   handler; they are delivered one per downstream demand before the
///   stage is asked again (Akka's `emit`).
/// - A stage that waits for time schedules a timer through
///   [`Outlet::timers`]; when it is due, [`on_timer`](Stage::on_timer)
///   runs with its key (see [`Timers`]).
/// - [`on_poll`](Stage::on_poll) runs whenever the stage is polled, for
///   stages with their own asynchronous work (futures). A stage that
///   refuses to pull and has nothing to emit must be waiting for a timer
///   or have registered the waker of `cx` with that work, or the stream
///   stalls.
/// - A stage that works ahead of demand (a buffer) answers `true` to
///   `should_pull(false)` and holds what it pulls until downstream asks.
/// - After [`complete`](Outlet::complete) or [`fail`](Outlet::fail) the
///   upstream is cancelled at once; elements already pushed are delivered
///   first, then the terminal signal.
/// - Under supervision ([`with_supervision`](crate::Flow::with_supervision)),
///   a `fail` from [`on_push`](Stage::on_push) or [`on_poll`](Stage::on_poll),
///   or a panic in `on_push`, goes to the [`Decider`](crate::Decider)
///   first: on resume or restart the outlet is open again, and on restart
///   [`on_restart`](Stage::on_restart) resets the stage.
///
/// ```
/// use compaktor_streams::{Flow, Outlet, Sink, Source, Stage};
///
/// /// Emits every element twice.
/// struct Twice;
///
/// impl Stage for Twice {
///     type In = u32;
///     type Out = u32;
///     fn name(&self) -> &'static str {
///         "twice"
///     }
///     fn on_push(&mut self, element: u32, out: &mut Outlet<u32>) {
///         out.push(element);
///         out.push(element);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let all = Source::from_iter([1, 2]).via(Flow::from_stage(Twice)).run_with(Sink::collect());
/// assert_eq!(all.await?, vec![1, 1, 2, 2]);
/// # Ok(())
/// # }
/// ```
pub trait Stage: Send + 'static {
    /// The element type taken from upstream.
    type In: Send + 'static;
    /// The element type passed downstream.
    type Out: Send + 'static;

    /// The name shown in statistics.
    fn name(&self) -> &'static str {
        "stage"
    }

    /// An element arrived from upstream, because this stage pulled.
    fn on_push(&mut self, element: Self::In, out: &mut Outlet<Self::Out>);

    /// Upstream completed; by default complete too.
    fn on_upstream_finish(&mut self, out: &mut Outlet<Self::Out>) {
        out.complete();
    }

    /// Upstream failed; by default fail with the same error.
    fn on_upstream_failure(&mut self, error: StreamError, out: &mut Outlet<Self::Out>) {
        out.fail(error);
    }

    /// Whether to pull an element from upstream now. `downstream_waiting`
    /// says whether downstream is waiting for an element from this stage.
    /// By default a stage pulls exactly when its downstream does.
    fn should_pull(&self, downstream_waiting: bool) -> bool {
        downstream_waiting
    }

    /// The timer `key`, scheduled through [`Outlet::timers`], is due. Runs
    /// whether or not downstream is waiting, and is followed by
    /// [`on_poll`](Stage::on_poll). By default nothing happens.
    fn on_timer(&mut self, key: u64, out: &mut Outlet<Self::Out>) {
        let _ = (key, out);
    }

    /// Drives the stage's own asynchronous work (see the trait docs).
    fn on_poll(&mut self, cx: &mut Context<'_>, out: &mut Outlet<Self::Out>) {
        let _ = (cx, out);
    }

    /// Downstream cancelled before this stage finished. Release resources here
    /// (dropping the stage does too).
    fn on_downstream_finish(&mut self) {}

    /// How many elements the stage holds, for statistics.
    fn buffered(&self) -> usize {
        0
    }

    /// The stage's [`Decider`] chose [`Restart`](Directive::Restart) for
    /// an error it raised: reset the state to what it was when the stage
    /// was built (an accumulator to its zero, a counter to its start).
    /// Elements already pushed are kept; timers are cancelled. By default
    /// nothing else is reset.
    fn on_restart(&mut self) {}

    /// Whether the stage handles each element on its own: every
    /// [`on_push`](Stage::on_push) pushes at most one element and never
    /// closes the outlet, and [`on_poll`](Stage::on_poll),
    /// [`should_pull`](Stage::should_pull) and [`buffered`](Stage::buffered)
    /// keep their defaults and no timer is scheduled, as in `map` and
    /// `filter`. The runtime may then pull, for such a stage, as many
    /// elements as downstream has asked for at once and hand them over in
    /// one loop: fewer calls per element, and never more pulled than asked
    /// for. By default `false`.
    fn is_elementwise(&self) -> bool {
        false
    }
}

/// Where a [`Stage`] puts its output and its terminal signal, and keeps
/// its [`Timers`].
#[derive(Debug)]
pub struct Outlet<T> {
    // The common case is one element per pull: keep it out of the deque.
    first: Option<T>,
    rest: VecDeque<T>,
    end: Option<Result<(), StreamError>>,
    closed: bool,
    pulled: bool,
    timers: Timers,
}

impl<T> Outlet<T> {
    fn new() -> Self {
        Outlet {
            first: None,
            rest: VecDeque::new(),
            end: None,
            closed: false,
            pulled: false,
            timers: Timers::default(),
        }
    }

    /// The stage's timers: each calls [`Stage::on_timer`] when it is due.
    pub fn timers(&mut self) -> &mut Timers {
        &mut self.timers
    }

    /// Whether downstream is waiting for an element right now (Akka's
    /// `isAvailable(out)`). A stage that holds elements (a buffer) should
    /// move one into the outlet only then, so that it keeps the choice of
    /// which element to drop.
    pub fn is_pulled(&self) -> bool {
        self.pulled
    }

    /// Queues an element for downstream. Ignored once the outlet is
    /// [closed](Outlet::is_closed).
    pub fn push(&mut self, element: T) {
        if self.closed {
            return;
        }
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(element);
        } else {
            self.rest.push_back(element);
        }
    }

    /// Completes the stage after the queued elements. Cancels upstream.
    pub fn complete(&mut self) {
        self.close(Ok(()));
    }

    /// Fails the stage after the queued elements. Cancels upstream.
    pub fn fail(&mut self, error: StreamError) {
        self.close(Err(error));
    }

    fn close(&mut self, end: Result<(), StreamError>) {
        if !self.closed {
            self.closed = true;
            self.end = Some(end);
        }
    }

    /// Elements queued and not yet taken by downstream.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Whether no element is queued.
    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    /// Whether [`complete`](Outlet::complete) or [`fail`](Outlet::fail) was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn pop(&mut self) -> Option<T> {
        match self.first.take() {
            Some(element) => Some(element),
            None => self.rest.pop_front(),
        }
    }
}

/// A [`Stage`] with its upstream: the unit of fusing.
pub(crate) struct StageLink<S: Stage> {
    stage: S,
    upstream: Option<BoxUpstream<S::In>>,
    out: Outlet<S::Out>,
    finished: bool,
    waiting: bool,
    cell: Arc<StageCell>,
    decider: Option<Decider>,
    /// Elements passed on but not yet added to `cell`.
    unpublished: u64,
    /// Publish once `unpublished` reaches this: 1 unless the driver flushes.
    batch: u64,
    /// Elements of a batched pull on their way through an element-wise stage.
    scratch: Vec<S::In>,
    /// Whether a spell of backpressure is open in `cell`.
    pressed: bool,
}

impl<S: Stage> StageLink<S> {
    pub(crate) fn new(stage: S, upstream: BoxUpstream<S::In>, cell: Arc<StageCell>) -> Self {
        StageLink {
            stage,
            upstream: Some(upstream),
            out: Outlet::new(),
            finished: false,
            waiting: false,
            cell,
            decider: None,
            unpublished: 0,
            batch: 1,
            scratch: Vec::new(),
            pressed: false,
        }
    }

    fn publish(&mut self) {
        if self.unpublished != 0 {
            self.cell.add_out_n(self.unpublished);
            self.unpublished = 0;
        }
    }

    /// Hands an element to the stage; under supervision, catches a panic
    /// of the stage's code and lets the decider judge a failure.
    #[inline]
    fn push(&mut self, element: S::In) {
        if self.decider.is_none() {
            self.stage.on_push(element, &mut self.out);
            return;
        }
        self.push_supervised(element);
    }

    // Kept out of line: the unwinding machinery would crowd the fused hot loop.
    #[cold]
    #[inline(never)]
    fn push_supervised(&mut self, element: S::In) {
        let was_closed = self.out.closed;
        let (stage, out) = (&mut self.stage, &mut self.out);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| stage.on_push(element, out))) {
            let error = StreamError::Panicked {
                stage: self.stage.name(),
                message: Arc::from(panic_message(&*payload)),
            };
            // A panic after the stage closed itself leaves its decision standing.
            self.out.fail(error);
        }
        self.decide(was_closed);
    }

    /// Under supervision, judges a failure the stage has just raised (its
    /// outlet was open before): `true` when the stream goes on.
    #[inline]
    fn decide(&mut self, was_closed: bool) -> bool {
        if self.decider.is_none() {
            return false;
        }
        self.decide_supervised(was_closed)
    }

    #[cold]
    #[inline(never)]
    fn decide_supervised(&mut self, was_closed: bool) -> bool {
        let Some(decider) = &self.decider else {
            return false;
        };
        if was_closed {
            return false;
        }
        let Some(Err(error)) = &self.out.end else {
            return false;
        };
        let directive = decider.decide(error);
        if directive == Directive::Stop {
            return false;
        }
        self.out.closed = false;
        self.out.end = None;
        self.cell.add_error();
        if directive == Directive::Restart {
            self.out.timers.clear();
            self.stage.on_restart();
        }
        true
    }

    /// Pulls from upstream once and hands the answer to the stage. `false`
    /// when upstream has nothing now (it has registered the waker).
    fn pull_once(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(upstream) = self.upstream.as_mut() else {
            return false;
        };
        match upstream.poll_next(cx) {
            Poll::Ready(Some(Ok(element))) => {
                self.push(element);
            }
            Poll::Ready(Some(Err(error))) => {
                self.upstream = None;
                self.stage.on_upstream_failure(error, &mut self.out);
            }
            Poll::Ready(None) => {
                self.upstream = None;
                self.stage.on_upstream_finish(&mut self.out);
            }
            Poll::Pending => return false,
        }
        if self.out.closed {
            // Cancel upstream as soon as the stage has decided to stop.
            self.upstream = None;
        }
        true
    }

    /// Counts `n` elements handed downstream; any demand is met.
    #[inline]
    fn passed_on(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.unpublished += n as u64;
        if self.unpublished >= self.batch {
            self.publish();
        }
        if self.waiting {
            self.waiting = false;
            self.cell.set_demand(0);
        }
    }

    /// The stage has ended with `end`: upstream is cancelled, statistics
    /// are final.
    fn finish(&mut self, end: Result<(), StreamError>) -> Result<(), StreamError> {
        self.released();
        self.finished = true;
        self.upstream = None;
        self.out.timers.clear();
        self.publish();
        self.cell.set_buffered(0);
        self.cell.record_end(&end);
        end
    }

    fn park(&mut self) {
        if !self.waiting {
            self.waiting = true;
            self.cell.set_demand(1);
        }
        self.cell.set_buffered(self.stage.buffered());
    }
}

impl<S: Stage> Upstream<S::Out> for StageLink<S> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<S::Out> {
        if self.finished {
            return Poll::Ready(None);
        }
        self.released();
        self.out.pulled = true;
        loop {
            if let Some(element) = self.out.pop() {
                self.out.pulled = false;
                self.passed_on(1);
                return Poll::Ready(Some(Ok(element)));
            }
            // Checked before taking: a store per pull shows in the fused hot loop.
            if self.out.end.is_some() {
                let end = self.out.end.take().unwrap_or(Ok(()));
                return Poll::Ready(self.finish(end).err().map(Err));
            }
            let was_closed = self.out.closed;
            self.fire_timers(cx);
            self.stage.on_poll(cx, &mut self.out);
            if self.decide(was_closed) || !self.out.is_empty() || self.out.end.is_some() {
                continue;
            }
            if self.upstream.is_some() && self.stage.should_pull(true) {
                if self.pull_once(cx) {
                    continue;
                }
            } else if let Some(upstream) = self.upstream.as_mut() {
                upstream.poll_pump(cx);
            }
            self.park();
            return Poll::Pending;
        }
    }

    fn poll_batch(&mut self, cx: &mut Context<'_>, buf: &mut Vec<S::Out>, max: usize) -> Poll<Pulled> {
        let batchable = self.stage.is_elementwise()
            && self.decider.is_none()
            && self.out.is_empty()
            && self.out.end.is_none()
            && !self.finished;
        self.released();
        let Some(upstream) = self.upstream.as_mut().filter(|_| batchable) else {
            return pull_each(self, cx, buf, max);
        };
        let pulled = upstream.poll_batch(cx, &mut self.scratch, max);
        let before = buf.len();
        for element in self.scratch.drain(..) {
            self.stage.on_push(element, &mut self.out);
            // At most one, by the element-wise promise; all, if it was broken.
            while let Some(output) = self.out.pop() {
                buf.push(output);
            }
        }
        self.passed_on(buf.len() - before);
        match pulled {
            Poll::Pending => {
                self.park();
                Poll::Pending
            }
            Poll::Ready(Pulled::More) => Poll::Ready(Pulled::More),
            Poll::Ready(Pulled::Ended(end)) => {
                self.upstream = None;
                match end {
                    Ok(()) => self.stage.on_upstream_finish(&mut self.out),
                    Err(error) => self.stage.on_upstream_failure(error, &mut self.out),
                }
                let before = buf.len();
                while let Some(output) = self.out.pop() {
                    buf.push(output);
                }
                self.passed_on(buf.len() - before);
                match self.out.end.take() {
                    Some(end) => Poll::Ready(Pulled::Ended(self.finish(end))),
                    // It stays open after its upstream ended: per element from here.
                    None => Poll::Ready(Pulled::More),
                }
            }
        }
    }

    fn poll_pump(&mut self, cx: &mut Context<'_>) {
        if self.finished {
            return;
        }
        self.out.pulled = false;
        self.pump(cx);
        // Downstream does not ask: backpressured until it pulls again.
        if !self.pressed {
            self.pressed = true;
            self.cell.backpressure_on();
        }
    }

    fn supervise(&mut self, decider: Decider) -> bool {
        self.decider = Some(decider);
        true
    }

    fn batch_stats(&mut self) {
        self.batch = STATS_BATCH;
        if let Some(upstream) = self.upstream.as_mut() {
            upstream.batch_stats();
        }
    }

    fn flush_stats(&mut self) {
        self.publish();
        if let Some(upstream) = self.upstream.as_mut() {
            upstream.flush_stats();
        }
    }
}

impl<S: Stage> StageLink<S> {
    /// Lets the stage work ahead of demand, within [`PUMP_BUDGET`].
    fn pump(&mut self, cx: &mut Context<'_>) {
        self.poll_stage(cx);
        let mut budget = PUMP_BUDGET;
        while self.upstream.is_some() && self.stage.should_pull(false) {
            if budget == 0 {
                cx.waker().wake_by_ref();
                return;
            }
            budget -= 1;
            if !self.pull_once(cx) {
                self.cell.set_buffered(self.stage.buffered());
                return;
            }
            self.poll_stage(cx);
        }
        if let Some(upstream) = self.upstream.as_mut() {
            upstream.poll_pump(cx);
        }
        self.cell.set_buffered(self.stage.buffered());
    }

    /// Runs [`Stage::on_timer`] for each due timer; the next deadline
    /// holds the task's waker.
    #[inline]
    fn fire_timers(&mut self, cx: &mut Context<'_>) {
        if self.out.timers.is_idle() {
            return;
        }
        // A timer rescheduled at once from its own handler must not hold the task.
        for _ in 0..PUMP_BUDGET {
            if self.out.closed {
                return;
            }
            let Some(key) = self.out.timers.poll_due(cx) else {
                return;
            };
            self.stage.on_timer(key, &mut self.out);
        }
        cx.waker().wake_by_ref();
    }

    /// Downstream pulls: a spell of backpressure, if any, is over.
    #[inline]
    fn released(&mut self) {
        if self.pressed {
            self.pressed = false;
            self.cell.backpressure_off();
        }
    }

    /// `on_poll` outside a pull; a resumed failure may have left results
    /// ready, so the task is polled again to hand them on.
    fn poll_stage(&mut self, cx: &mut Context<'_>) {
        let was_closed = self.out.closed;
        self.fire_timers(cx);
        self.stage.on_poll(cx, &mut self.out);
        if self.decide(was_closed) {
            cx.waker().wake_by_ref();
        }
    }
}

impl<S: Stage> Drop for StageLink<S> {
    fn drop(&mut self) {
        self.publish();
        if !self.finished {
            self.stage.on_downstream_finish();
            self.cell.cancelled();
        }
    }
}
