//! [`Source`]: where elements come from.

use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::boundary;
use crate::error::StreamError;
use crate::flow::Flow;
use crate::graph::{Materializer, RunnableGraph};
use crate::kill_switch::KillSwitch;
use crate::ops::operators;
use crate::protocol::Publisher;
use crate::publisher::PublisherSource;
use crate::sink::Sink;
use crate::stage::{BoxUpstream, Pull, Pulled, Stage, StageLink, Upstream, STATS_BATCH};
use crate::stats::StageCell;

pub(crate) type BuildSource<T, Mat> = Box<dyn FnOnce(&mut Materializer) -> (BoxUpstream<T>, Mat) + Send>;

/// A blueprint of a stage with one output: elements come from here.
///
/// `Mat` is the value the source gives when the graph runs (for
/// [`Source::channel`], the sender that feeds it). Operators such as
/// [`map`](Source::map) return a new source; [`to`](Source::to) a sink
/// makes a [`RunnableGraph`], and [`run_with`](Source::run_with) runs at
/// once. A blueprint is used up when it runs; to run the same pipeline
/// twice, build it in a function.
///
/// Everything up to an [`async_boundary`](Source::async_boundary) is fused
/// into one task.
///
/// ```
/// use compaktor_streams::{Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let words = Source::from_iter(["a", "bb", "ccc"])
///     .map(str::len)
///     .filter(|n| *n > 1)
///     .run_with(Sink::collect());
/// assert_eq!(words.await?, vec![2, 3]);
/// # Ok(())
/// # }
/// ```
#[must_use = "a source does nothing until it is run"]
pub struct Source<T, Mat = ()> {
    build: BuildSource<T, Mat>,
}

impl<T, Mat> fmt::Debug for Source<T, Mat> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Source { .. }")
    }
}

impl<T, Mat> Source<T, Mat> {
    pub(crate) fn from_build(build: BuildSource<T, Mat>) -> Self {
        Source { build }
    }
}

fn source<T: Send + 'static>(
    name: &'static str,
    make: impl FnOnce(std::sync::Arc<StageCell>) -> BoxUpstream<T> + Send + 'static,
) -> Source<T> {
    Source {
        build: Box::new(move |m| {
            let cell = m.source_cell(name);
            (make(cell), ())
        }),
    }
}

impl<T: Send + 'static> Source<T> {
    /// Emits the items of an iterator, then completes.
    #[allow(clippy::should_implement_trait)] // Akka's name; a source is not a collection
    pub fn from_iter<I>(items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let iter = items.into_iter();
        source("from_iter", move |cell| {
            Box::new(IterSource {
                iter,
                cell,
                unpublished: 0,
                batch: 1,
            })
        })
    }

    /// Emits one element, then completes.
    pub fn single(element: T) -> Self {
        Source::from_iter(Some(element))
    }

    /// Completes at once.
    pub fn empty() -> Self {
        Source::from_iter(None)
    }

    /// Fails at once with `error`.
    pub fn failed(error: StreamError) -> Self {
        source("failed", move |cell| {
            Box::new(FailedSource {
                error: Some(error),
                cell,
            })
        })
    }

    /// Emits what arrives on a tokio channel; completes when every sender is dropped.
    pub fn from_receiver(receiver: mpsc::Receiver<T>) -> Self {
        source("from_receiver", move |cell| Box::new(ReceiverSource { receiver, cell }))
    }

    /// Materialises a bounded tokio channel (`capacity` at least 1) and emits
    /// what is sent on it; the sender is the materialised value. Completes
    /// when every clone of the sender is dropped. `send(..).await` waits while
    /// the stream is backpressured.
    pub fn channel(capacity: usize) -> Source<T, mpsc::Sender<T>> {
        Source {
            build: Box::new(move |m| {
                let (sender, receiver) = mpsc::channel(capacity.max(1));
                let cell = m.source_cell("channel");
                (Box::new(ReceiverSource { receiver, cell }) as BoxUpstream<T>, sender)
            }),
        }
    }

    /// Reads a [`Publisher`]: subscribes on first demand, requests in
    /// batches, and cancels the subscription when the stream stops early.
    /// A publisher that sends more than was requested (rule 1.1) fails the
    /// stream with [`StreamError::ProtocolViolation`] and is cancelled; what
    /// it sent beyond the demand is dropped.
    pub fn from_publisher(publisher: impl Publisher<T> + Send + 'static) -> Self {
        source("from_publisher", move |cell| {
            Box::new(PublisherSource::new(Box::new(publisher), cell))
        })
    }
}

impl<T: Clone + Send + 'static> Source<T> {
    /// Emits `element` after `initial_delay`, then every `period` (a zero
    /// period counts as 1 ns). A tick that finds no demand is dropped, as
    /// in Akka, so a slow consumer sees fewer ticks, never a backlog. Never
    /// completes: stop it with [`take`](Source::take) or a [`KillSwitch`].
    pub fn tick(initial_delay: Duration, period: Duration, element: T) -> Self {
        source("tick", move |cell| {
            let period = period.max(Duration::from_nanos(1));
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + initial_delay, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            Box::new(TickSource {
                interval,
                element,
                cell,
            })
        })
    }
}

macro_rules! source_of {
    ($U:ty) => { Source<$U, Mat> };
}

impl<T: Send + 'static, Mat: 'static> Source<T, Mat> {
    fn via_stage<S: Stage<In = T>>(self, stage: S) -> Source<S::Out, Mat> {
        let build = self.build;
        Source {
            build: Box::new(move |m| {
                let (upstream, mat) = build(m);
                let cell = m.cell(stage.name());
                (
                    Box::new(StageLink::new(stage, upstream, cell)) as BoxUpstream<S::Out>,
                    mat,
                )
            }),
        }
    }

    fn via_upstream<U: Send + 'static>(
        self,
        f: impl FnOnce(BoxUpstream<T>, &mut Materializer) -> BoxUpstream<U> + Send + 'static,
    ) -> Source<U, Mat> {
        let build = self.build;
        Source {
            build: Box::new(move |m| {
                let (upstream, mat) = build(m);
                (f(upstream, m), mat)
            }),
        }
    }

    pub(crate) fn build(self, m: &mut Materializer) -> (BoxUpstream<T>, Mat) {
        (self.build)(m)
    }

    operators!(T, source_of);

    /// Attaches a flow, keeping this source's materialised value.
    pub fn via<U: Send + 'static, M2: 'static>(self, flow: Flow<T, U, M2>) -> Source<U, Mat> {
        self.via_mat(flow, |left, _| left)
    }

    /// Attaches a flow and combines both materialised values (see [`Keep`](crate::Keep)).
    pub fn via_mat<U: Send + 'static, M2: 'static, M3>(
        self,
        flow: Flow<T, U, M2>,
        combine: impl FnOnce(Mat, M2) -> M3 + Send + 'static,
    ) -> Source<U, M3> {
        let build = self.build;
        Source {
            build: Box::new(move |m| {
                let (upstream, left) = build(m);
                let (upstream, right) = flow.build(upstream, m);
                (upstream, combine(left, right))
            }),
        }
    }

    /// Connects a sink, keeping this source's materialised value.
    pub fn to<M2: 'static>(self, sink: Sink<T, M2>) -> RunnableGraph<Mat> {
        self.to_mat(sink, |left, _| left)
    }

    /// Connects a sink and combines both materialised values (see [`Keep`](crate::Keep)).
    pub fn to_mat<M2: 'static, M3>(
        self,
        sink: Sink<T, M2>,
        combine: impl FnOnce(Mat, M2) -> M3 + Send + 'static,
    ) -> RunnableGraph<M3> {
        let build = self.build;
        RunnableGraph::new(Box::new(move |m| {
            let (upstream, left) = build(m);
            let right = sink.build(upstream, m);
            combine(left, right)
        }))
    }

    /// Connects a sink and runs the graph at once; returns the sink's materialised value.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn run_with<M2: 'static>(self, sink: Sink<T, M2>) -> M2 {
        self.to_mat(sink, |_, right| right).run()
    }

    /// Transforms the materialised value.
    pub fn map_materialized<M2>(self, f: impl FnOnce(Mat) -> M2 + Send + 'static) -> Source<T, M2> {
        let build = self.build;
        Source {
            build: Box::new(move |m| {
                let (upstream, mat) = build(m);
                (upstream, f(mat))
            }),
        }
    }

    /// Ends the current island here: everything upstream runs on its own
    /// task and hands elements over through a buffer of 16, as demanded.
    pub fn async_boundary(self) -> Self {
        self.async_boundary_with(boundary::DEFAULT_BUFFER)
    }

    /// [`async_boundary`](Source::async_boundary) with a buffer of `capacity` elements (at least 1).
    pub fn async_boundary_with(self, capacity: usize) -> Self {
        let build = self.build;
        Source {
            build: Box::new(move |m| {
                let (upstream, mat) = build(m);
                (boundary::split(upstream, capacity, m), mat)
            }),
        }
    }

    /// Adds a [`KillSwitch`] here and materialises it beside this source's value.
    pub fn kill_switch(self) -> Source<T, (Mat, KillSwitch)> {
        self.via_mat(Flow::kill_switch(), |left, right| (left, right))
    }
}

// ---------------------------------------------------------------- the sources

struct IterSource<I> {
    iter: I,
    cell: std::sync::Arc<StageCell>,
    /// Elements passed on but not yet added to `cell`.
    unpublished: u64,
    /// Publish once `unpublished` reaches this: 1 unless the driver flushes.
    batch: u64,
}

impl<I> IterSource<I> {
    fn publish(&mut self) {
        if self.unpublished != 0 {
            self.cell.add_out_n(self.unpublished);
            self.unpublished = 0;
        }
    }
}

impl<I: Iterator + Send> Upstream<I::Item> for IterSource<I> {
    fn poll_next(&mut self, _cx: &mut Context<'_>) -> Pull<I::Item> {
        self.cell.backpressure_off();
        match self.iter.next() {
            Some(element) => {
                self.unpublished += 1;
                if self.unpublished >= self.batch {
                    self.publish();
                }
                Poll::Ready(Some(Ok(element)))
            }
            None => {
                self.publish();
                self.cell.completed();
                Poll::Ready(None)
            }
        }
    }

    fn poll_batch(&mut self, _cx: &mut Context<'_>, buf: &mut Vec<I::Item>, max: usize) -> Poll<Pulled> {
        self.cell.backpressure_off();
        let before = buf.len();
        buf.extend(self.iter.by_ref().take(max));
        let taken = buf.len() - before;
        self.unpublished += taken as u64;
        if taken < max {
            self.publish();
            self.cell.completed();
            return Poll::Ready(Pulled::Ended(Ok(())));
        }
        if self.unpublished >= self.batch {
            self.publish();
        }
        Poll::Ready(Pulled::More)
    }

    // An iterator always has a next element, as far as anyone can tell
    // without taking it.
    fn poll_pump(&mut self, _cx: &mut Context<'_>) {
        self.cell.backpressure_on();
    }

    fn batch_stats(&mut self) {
        self.batch = STATS_BATCH;
    }

    fn flush_stats(&mut self) {
        self.publish();
    }
}

impl<I> Drop for IterSource<I> {
    fn drop(&mut self) {
        self.publish();
        self.cell.cancelled();
    }
}

struct FailedSource {
    error: Option<StreamError>,
    cell: std::sync::Arc<StageCell>,
}

impl<T> Upstream<T> for FailedSource {
    fn poll_next(&mut self, _cx: &mut Context<'_>) -> Pull<T> {
        self.cell.failed();
        Poll::Ready(self.error.take().map(Err))
    }
}

struct ReceiverSource<T> {
    receiver: mpsc::Receiver<T>,
    cell: std::sync::Arc<StageCell>,
}

impl<T: Send> Upstream<T> for ReceiverSource<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        self.cell.backpressure_off();
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(element)) => {
                self.cell.add_out();
                self.cell.set_demand(0);
                Poll::Ready(Some(Ok(element)))
            }
            Poll::Ready(None) => {
                self.cell.completed();
                Poll::Ready(None)
            }
            Poll::Pending => {
                self.cell.set_demand(1);
                Poll::Pending
            }
        }
    }

    fn poll_pump(&mut self, _cx: &mut Context<'_>) {
        if !self.receiver.is_empty() {
            self.cell.backpressure_on();
        }
    }
}

impl<T> Drop for ReceiverSource<T> {
    fn drop(&mut self) {
        self.cell.cancelled();
    }
}

struct TickSource<T> {
    interval: tokio::time::Interval,
    element: T,
    cell: std::sync::Arc<StageCell>,
}

impl<T: Clone + Send> Upstream<T> for TickSource<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        self.cell.backpressure_off();
        match self.interval.poll_tick(cx) {
            Poll::Ready(_) => {
                self.cell.add_out();
                Poll::Ready(Some(Ok(self.element.clone())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    // Ticks keep coming whether or not downstream asks.
    fn poll_pump(&mut self, _cx: &mut Context<'_>) {
        self.cell.backpressure_on();
    }
}

impl<T> Drop for TickSource<T> {
    fn drop(&mut self) {
        self.cell.cancelled();
    }
}
