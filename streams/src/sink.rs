//! [`Sink`]: where elements go.

use std::fmt;
use std::future::poll_fn;
use std::task::Poll;

use compaktor_actor::ActorRef;

use crate::error::StreamError;
use crate::graph::{Completion, Materializer};
use crate::protocol::Subscriber;
use crate::publisher::{drive_subscriber, StreamPublisher};
use crate::stage::{pumping, BoxUpstream, Pulled, PULL_BATCH};
use crate::stats::StageCell;

type BuildSink<T, Mat> = Box<dyn FnOnce(BoxUpstream<T>, &mut Materializer) -> Mat + Send>;

/// A blueprint of a stage with one input: elements end here.
///
/// The sink drives its island: it pulls, which is what makes every stage
/// upstream of it run. Most sinks materialise a [`Completion`], a future
/// of the stream's outcome.
///
/// ```
/// use compaktor_streams::{Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let longest = Sink::fold(0, |best: usize, word: &str| best.max(word.len()));
/// let n = Source::from_iter(["to", "be", "or", "not"]).run_with(longest);
/// assert_eq!(n.await?, 3);
/// # Ok(())
/// # }
/// ```
#[must_use = "a sink does nothing until it is part of a running graph"]
pub struct Sink<T, Mat> {
    build: BuildSink<T, Mat>,
}

impl<T, Mat> fmt::Debug for Sink<T, Mat> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sink { .. }")
    }
}

/// How many elements a sink takes in one poll before it yields.
const YIELD_BUDGET: usize = 2048;

/// A sink that folds every element into an accumulator and completes with
/// it; the base of `fold`, `collect`, `foreach` and `ignore`.
fn folding<T: Send + 'static, A: Send + 'static>(
    name: &'static str,
    zero: A,
    mut f: impl FnMut(A, T) -> A + Send + 'static,
) -> Sink<T, Completion<A>> {
    Sink::new(Box::new(move |upstream, m| {
        let cell = m.cell(name);
        let (tx, completion) = Completion::new();
        m.spawn(async move {
            let mut acc = Some(zero);
            let result = consume(upstream, &cell, |element| {
                if let Some(current) = acc.take() {
                    acc = Some(f(current, element));
                }
            })
            .await;
            tx.send(result.and_then(|()| acc.ok_or(StreamError::AbruptTermination)));
        });
        completion
    }))
}

/// Pulls everything from `upstream` into `each`; the island's main loop.
async fn consume<T>(
    mut upstream: BoxUpstream<T>,
    cell: &StageCell,
    mut each: impl FnMut(T),
) -> Result<(), StreamError> {
    // Upstream counts in batches: flush before every wait and at the end.
    upstream.batch_stats();
    // Demand is unbounded: ask for whole batches, one dynamic call each.
    let mut batch = Vec::with_capacity(PULL_BATCH);
    let result = poll_fn(|cx| {
        let mut taken = 0;
        while taken < YIELD_BUDGET {
            let pulled = upstream.poll_batch(cx, &mut batch, PULL_BATCH);
            // An empty batch (all filtered out) still counts against the budget.
            taken += batch.len().max(1);
            batch.drain(..).for_each(&mut each);
            match pulled {
                Poll::Ready(Pulled::More) => {}
                Poll::Ready(Pulled::Ended(end)) => {
                    upstream.flush_stats();
                    return Poll::Ready(end);
                }
                Poll::Pending => {
                    upstream.flush_stats();
                    cell.set_demand(1);
                    return Poll::Pending;
                }
            }
        }
        upstream.flush_stats();
        // Let other tasks on this worker run; a long synchronous stream would starve them.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
    cell.record_end(&result);
    result
}

/// Records how an actor sink's stream ended and tells the actor.
pub(crate) fn tell_end<M: Send + 'static>(
    actor: &ActorRef<M>,
    cell: &StageCell,
    result: &Result<(), StreamError>,
    on_complete: M,
    on_failure: impl FnOnce(StreamError) -> M,
) {
    cell.record_end(result);
    match result {
        Ok(()) => actor.tell(on_complete),
        Err(error) => actor.tell(on_failure(error.clone())),
    }
}

impl<T: Send + 'static> Sink<T, Completion<()>> {
    /// Runs `f` on every element; completes with the stream.
    pub fn foreach(mut f: impl FnMut(T) + Send + 'static) -> Self {
        folding("foreach", (), move |(), element| f(element))
    }

    /// Drops every element; completes with the stream.
    pub fn ignore() -> Self {
        folding("ignore", (), |(), element| drop(element))
    }

    /// Delivers every element to an actor with
    /// [`ActorRef::send`](compaktor_actor::ActorRef::send), so the stream is
    /// backpressured by a bounded mailbox with
    /// [`OverflowPolicy::WaitForRoom`](compaktor_actor::OverflowPolicy::WaitForRoom)
    /// (an unbounded mailbox never pushes back). Then tells the actor
    /// `on_complete`, or what `on_failure` makes of the error (Akka Typed's
    /// `ActorSink.actorRef`). If the actor stops, the stream fails with
    /// [`StreamError::ActorStopped`] and upstream is cancelled.
    pub fn actor_ref(
        actor: ActorRef<T>,
        on_complete: T,
        on_failure: impl FnOnce(StreamError) -> T + Send + 'static,
    ) -> Self {
        Sink::new(Box::new(move |mut upstream: BoxUpstream<T>, m| {
            let cell = m.cell("actor_ref");
            let (tx, completion) = Completion::new();
            m.spawn(async move {
                let result = loop {
                    match poll_fn(|cx| upstream.poll_next(cx)).await {
                        Some(Ok(element)) => {
                            if let Err(refused) = pumping(&mut upstream, actor.send(element)).await {
                                break Err(if refused.is_full() {
                                    StreamError::stage("actor_ref", "the actor's mailbox is full")
                                } else {
                                    StreamError::ActorStopped
                                });
                            }
                            cell.add_out();
                        }
                        Some(Err(error)) => break Err(error),
                        None => break Ok(()),
                    }
                };
                drop(upstream);
                tell_end(&actor, &cell, &result, on_complete, on_failure);
                tx.send(result);
            });
            completion
        }))
    }

    /// Hands the stream to a [`Subscriber`] under the Reactive Streams
    /// rules: it gets `on_subscribe` first, never more elements than it
    /// requested, and at most one terminal signal. The completion reports
    /// how the stream ended (cancelling counts as success).
    pub fn from_subscriber(subscriber: impl Subscriber<T> + 'static) -> Self {
        Sink::new(Box::new(move |upstream, m| {
            let cell = m.cell("from_subscriber");
            let (tx, completion) = Completion::new();
            m.spawn(drive_subscriber(upstream, Box::new(subscriber), cell, tx));
            completion
        }))
    }
}

impl<T: Send + 'static> Sink<T, Completion<Vec<T>>> {
    /// Collects every element into a `Vec` (Akka's `Sink.seq`). Unbounded:
    /// use it on finite streams.
    pub fn collect() -> Self {
        folding("collect", Vec::new(), |mut all, element| {
            all.push(element);
            all
        })
    }
}

impl<T: Send + 'static, A: Send + 'static> Sink<T, Completion<A>> {
    /// Folds every element into an accumulator; the completion gives the total.
    pub fn fold(zero: A, f: impl FnMut(A, T) -> A + Send + 'static) -> Self {
        folding("fold", zero, f)
    }
}

impl<T: Send + 'static> Sink<T, StreamPublisher<T>> {
    /// Exposes the stream as a [`Publisher`](crate::protocol::Publisher)
    /// for one subscriber (Akka's `Sink.asPublisher(fanout = false)`).
    pub fn publisher() -> Self {
        Sink::new(Box::new(move |upstream, m| {
            let cell = m.cell("publisher");
            let (publisher, island) = StreamPublisher::new(upstream, cell);
            m.spawn(island);
            publisher
        }))
    }
}

impl<T, Mat> Sink<T, Mat> {
    pub(crate) fn new(build: BuildSink<T, Mat>) -> Self {
        Sink { build }
    }

    pub(crate) fn build(self, upstream: BoxUpstream<T>, m: &mut Materializer) -> Mat {
        (self.build)(upstream, m)
    }

    /// Transforms the materialised value.
    pub fn map_materialized<M2>(self, f: impl FnOnce(Mat) -> M2 + Send + 'static) -> Sink<T, M2>
    where
        T: 'static,
        Mat: 'static,
    {
        let build = self.build;
        Sink::new(Box::new(move |upstream, m| f(build(upstream, m))))
    }
}
