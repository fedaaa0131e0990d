//! Bridges between the stream engine and the [`protocol`](crate::protocol)
//! traits: driving a user's `Subscriber`, exposing a stream as a
//! `Publisher`, and reading a user's `Publisher` as a source.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::oneshot;

use crate::error::StreamError;
use crate::graph::CompletionSender;
use crate::protocol::{Demand, Publisher, Subscriber, Subscription};
use crate::stage::{BoxUpstream, Pull, Upstream};
use crate::stats::StageCell;

fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    // Only our own bookkeeping runs under these locks, never user code.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------- driving a subscriber

#[derive(Default)]
struct SubscriptionState {
    demand: Demand,
    cancelled: bool,
    zero_request: bool,
    waker: Option<Waker>,
}

/// The [`Subscription`] this crate hands to subscribers: it only records
/// demand and wakes the stream, so calling it from `on_next` cannot recurse (rule 3.3).
struct DemandHandle {
    shared: Arc<Mutex<SubscriptionState>>,
}

impl DemandHandle {
    fn signal(&mut self, f: impl FnOnce(&mut SubscriptionState)) {
        let waker = {
            let mut state = lock(&self.shared);
            // After cancel, request and cancel do nothing (rules 3.6, 3.7).
            if state.cancelled {
                return;
            }
            f(&mut state);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Subscription for DemandHandle {
    fn request(&mut self, n: u64) {
        self.signal(|state| {
            if state.demand.request(n).is_err() {
                state.zero_request = true;
            }
        });
    }

    fn cancel(&mut self) {
        self.signal(|state| state.cancelled = true);
    }
}

/// A subscription that was refused before it started: it ignores everything.
struct Refused;

impl Subscription for Refused {
    fn request(&mut self, _n: u64) {}
    fn cancel(&mut self) {}
}

/// How many elements a subscriber island delivers in one poll before it yields.
const YIELD_BUDGET: u32 = 2048;

/// Runs an island's end into `subscriber`, keeping the Reactive Streams rules.
pub(crate) async fn drive_subscriber<T: Send + 'static>(
    upstream: BoxUpstream<T>,
    subscriber: Box<dyn Subscriber<T>>,
    cell: Arc<StageCell>,
    completion: CompletionSender<()>,
) {
    let shared = Arc::new(Mutex::new(SubscriptionState::default()));
    let mut subscriber = Some(subscriber);
    let mut upstream = Some(upstream);
    if let Some(s) = subscriber.as_mut() {
        s.on_subscribe(Box::new(DemandHandle {
            shared: Arc::clone(&shared),
        }));
    }
    // One element pulled ahead of demand: it lets the end of the stream be
    // signalled without waiting for demand (rules 1.2, 1.5), at the cost of
    // holding one element.
    let mut ahead: Option<T> = None;
    let result = poll_fn(|cx| {
        let mut budget = YIELD_BUDGET;
        loop {
            let (Some(up), Some(sub)) = (upstream.as_mut(), subscriber.as_mut()) else {
                return Poll::Ready(Ok(()));
            };
            let mut state = lock(&shared);
            if state.cancelled {
                cell.cancelled();
                return Poll::Ready(Ok(()));
            }
            if state.zero_request {
                drop(state);
                sub.on_error(StreamError::ZeroRequest);
                cell.failed();
                return Poll::Ready(Err(StreamError::ZeroRequest));
            }
            if ahead.is_some() {
                let granted = state.demand.try_take();
                cell.set_demand(state.demand.outstanding());
                if !granted {
                    state.waker = Some(cx.waker().clone());
                    drop(state);
                    up.poll_pump(cx);
                    return Poll::Pending;
                }
                drop(state);
                if let Some(element) = ahead.take() {
                    sub.on_next(element);
                    cell.add_out();
                }
                budget -= 1;
                if budget == 0 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            // Register before pulling so a cancel that races with a
            // pending upstream still wakes this task.
            state.waker = Some(cx.waker().clone());
            drop(state);
            match up.poll_next(cx) {
                Poll::Ready(Some(Ok(element))) => {
                    ahead = Some(element);
                }
                Poll::Ready(Some(Err(error))) => {
                    sub.on_error(error.clone());
                    cell.failed();
                    return Poll::Ready(Err(error));
                }
                Poll::Ready(None) => {
                    sub.on_complete();
                    cell.completed();
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    // Cancel upstream and release the subscriber (rule 3.13) before reporting.
    upstream.take();
    subscriber.take();
    completion.send(result);
}

// ---------------------------------------------------------------- a stream as a publisher

/// A running stream's output as a [`Publisher`], materialised by
/// [`Sink::publisher`](crate::Sink::publisher).
///
/// It accepts one subscriber: the stream waits for it before pulling
/// anything, and rejects any later one with
/// [`StreamError::AlreadySubscribed`]. Dropping the publisher before anyone
/// subscribed cancels the stream.
///
/// ```
/// use compaktor_streams::protocol::Publisher;
/// use compaktor_streams::{Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let publisher = Source::from_iter(1..=3u32).run_with(Sink::publisher());
/// // Any Publisher is a source again:
/// let all = Source::from_publisher(publisher).run_with(Sink::collect());
/// assert_eq!(all.await?, vec![1, 2, 3]);
/// # Ok(())
/// # }
/// ```
pub struct StreamPublisher<T> {
    slot: Mutex<Option<oneshot::Sender<Box<dyn Subscriber<T>>>>>,
}

impl<T> fmt::Debug for StreamPublisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subscribed = lock(&self.slot).is_none();
        f.debug_struct("StreamPublisher")
            .field("subscribed", &subscribed)
            .finish()
    }
}

impl<T: Send + 'static> StreamPublisher<T> {
    /// The publisher and the future that runs the stream's end once subscribed.
    pub(crate) fn new(
        upstream: BoxUpstream<T>,
        cell: Arc<StageCell>,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (tx, rx) = oneshot::channel::<Box<dyn Subscriber<T>>>();
        let island = async move {
            match rx.await {
                Ok(subscriber) => {
                    let (done, _ignored) = crate::graph::Completion::new();
                    drive_subscriber(upstream, subscriber, cell, done).await;
                }
                // Dropped without a subscriber: dropping `upstream` cancels it.
                Err(_) => cell.cancelled(),
            }
        };
        (
            StreamPublisher {
                slot: Mutex::new(Some(tx)),
            },
            island,
        )
    }
}

impl<T: Send + 'static> Publisher<T> for StreamPublisher<T> {
    fn subscribe(&self, subscriber: Box<dyn Subscriber<T>>) {
        let tx = lock(&self.slot).take();
        let (mut refused, why) = match tx {
            Some(tx) => match tx.send(subscriber) {
                Ok(()) => return,
                Err(subscriber) => (subscriber, StreamError::AbruptTermination),
            },
            None => (subscriber, StreamError::AlreadySubscribed),
        };
        // Rule 1.9: on_subscribe comes first, even for a rejected subscriber.
        refused.on_subscribe(Box::new(Refused));
        refused.on_error(why);
    }
}

// ---------------------------------------------------------------- a publisher as a source

struct Bridge<T> {
    /// Received and not yet read by the source.
    queue: VecDeque<T>,
    /// Requested and not yet received: the most `on_next` may bring (rule 1.1).
    demand: Demand,
    end: Option<Result<(), StreamError>>,
    /// A terminal signal arrived or the publisher broke rule 1.1; stays set
    /// after `end` is read, so nothing queues up once the stream is over.
    terminated: bool,
    /// The publisher broke rule 1.1 while the source had the subscription
    /// out for a `request`: the source cancels it instead of putting it back.
    cancel_on_return: bool,
    subscription: Option<Box<dyn Subscription>>,
    subscribed: bool,
    waker: Option<Waker>,
}

impl<T> Bridge<T> {
    fn wake(&mut self) -> Option<Waker> {
        self.waker.take()
    }
}

/// The subscriber this crate attaches to a user's publisher.
struct BridgeSubscriber<T> {
    shared: Arc<Mutex<Bridge<T>>>,
}

impl<T: Send> BridgeSubscriber<T> {
    fn signal(&mut self, f: impl FnOnce(&mut Bridge<T>)) {
        let waker = {
            let mut bridge = lock(&self.shared);
            f(&mut bridge);
            bridge.wake()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T: Send> Subscriber<T> for BridgeSubscriber<T> {
    fn on_subscribe(&mut self, mut subscription: Box<dyn Subscription>) {
        let mut bridge = lock(&self.shared);
        if bridge.subscribed {
            drop(bridge);
            // Rule 2.5: a second subscription is cancelled.
            subscription.cancel();
            return;
        }
        bridge.subscribed = true;
        bridge.subscription = Some(subscription);
        let waker = bridge.wake();
        drop(bridge);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn on_next(&mut self, element: T) {
        let (waker, violated) = {
            let mut bridge = lock(&self.shared);
            // After the end, or after cancel (rule 2.8), the element is
            // dropped: below, outside the lock, as it may run user code.
            if bridge.terminated {
                return;
            }
            if bridge.demand.try_take() {
                bridge.queue.push_back(element);
                (bridge.wake(), None)
            } else {
                // Rule 1.1 broken: queueing the excess would let the
                // publisher grow the queue without bound. Fail the stream and
                // cancel, as a wire boundary does; the elements already
                // queued were requested and still go downstream first.
                bridge.terminated = true;
                bridge.end = Some(Err(StreamError::ProtocolViolation {
                    rule: "1.1",
                    what: "more elements than were requested",
                }));
                let subscription = bridge.subscription.take();
                // Out for a request right now: the source cancels it on return.
                bridge.cancel_on_return = subscription.is_none();
                (bridge.wake(), subscription)
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        // Outside the lock: cancel may call back into the publisher.
        if let Some(mut subscription) = violated {
            subscription.cancel();
        }
    }

    fn on_error(&mut self, error: StreamError) {
        self.signal(|b| {
            if !std::mem::replace(&mut b.terminated, true) {
                b.end = Some(Err(error));
            }
        });
    }

    fn on_complete(&mut self) {
        self.signal(|b| {
            if !std::mem::replace(&mut b.terminated, true) {
                b.end = Some(Ok(()));
            }
        });
    }
}

/// How many elements [`PublisherSource`] asks for at a time.
const REQUEST_BATCH: u64 = 16;

pub(crate) struct PublisherSource<T> {
    publisher: Option<Box<dyn Publisher<T> + Send>>,
    shared: Arc<Mutex<Bridge<T>>>,
    cell: Arc<StageCell>,
    done: bool,
}

impl<T: Send + 'static> PublisherSource<T> {
    pub(crate) fn new(publisher: Box<dyn Publisher<T> + Send>, cell: Arc<StageCell>) -> Self {
        let shared = Arc::new(Mutex::new(Bridge {
            queue: VecDeque::new(),
            demand: Demand::new(),
            end: None,
            terminated: false,
            cancel_on_return: false,
            subscription: None,
            subscribed: false,
            waker: None,
        }));
        PublisherSource {
            publisher: Some(publisher),
            shared,
            cell,
            done: false,
        }
    }
}

impl<T: Send + 'static> Upstream<T> for PublisherSource<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        self.cell.backpressure_off();
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(publisher) = self.publisher.take() {
            // Subscribe on first demand; the publisher may call back synchronously.
            publisher.subscribe(Box::new(BridgeSubscriber {
                shared: Arc::clone(&self.shared),
            }));
        }
        loop {
            let mut bridge = lock(&self.shared);
            if let Some(element) = bridge.queue.pop_front() {
                drop(bridge);
                self.cell.add_out();
                return Poll::Ready(Some(Ok(element)));
            }
            if let Some(end) = bridge.end.take() {
                drop(bridge);
                self.done = true;
                return Poll::Ready(self.cell.ended(end));
            }
            bridge.waker = Some(cx.waker().clone());
            // The queue is empty here, so this is all that is still on its way.
            if bridge.demand.outstanding() > REQUEST_BATCH / 2 {
                return Poll::Pending;
            }
            let Some(mut subscription) = bridge.subscription.take() else {
                return Poll::Pending;
            };
            // Counted before the request: a synchronous publisher calls
            // on_next from inside it, and each element is checked against it.
            // Never fails: the batch is not zero.
            let _ = bridge.demand.request(REQUEST_BATCH);
            self.cell.set_demand(bridge.demand.outstanding());
            drop(bridge);
            // Outside the lock: a synchronous publisher calls on_next from inside request.
            subscription.request(REQUEST_BATCH);
            let mut bridge = lock(&self.shared);
            if std::mem::take(&mut bridge.cancel_on_return) {
                drop(bridge);
                subscription.cancel();
            } else {
                bridge.subscription = Some(subscription);
            }
        }
    }

    fn poll_pump(&mut self, _cx: &mut Context<'_>) {
        if !lock(&self.shared).queue.is_empty() {
            self.cell.backpressure_on();
        }
    }
}

impl<T> Drop for PublisherSource<T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.cell.cancelled();
        let subscription = {
            let mut shared = lock(&self.shared);
            // After on_complete or on_error the subscription counts as
            // cancelled already (rule 2.4), read or not.
            let ended = shared.terminated;
            shared.subscription.take().filter(|_| !ended)
        };
        if let Some(mut subscription) = subscription {
            subscription.cancel();
        }
    }
}
