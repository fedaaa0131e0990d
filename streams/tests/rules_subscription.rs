//! The Reactive Streams subscription rules (3.x), one test per rule (in the
//! spirit of the TCK), against the subscriptions handed out by this crate's
//! publisher ([`Sink::publisher`]) and its subscriber driver
//! ([`Sink::from_subscriber`]), and against its subscriber to foreign
//! publishers ([`Source::from_publisher`]). Shared helpers are in
//! `rules/mod.rs`.
//!
//! Rule 3.1 (request and cancel only from within the subscriber's
//! context) has no test: a `Subscription` is a `Box` the subscriber owns
//! and calls through `&mut self`, so the compiler already forbids calling
//! it from elsewhere at the same time; the TCK does not test it either.

mod rules;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use compaktor_streams::protocol::{Publisher, Subscriber, Subscription};
use compaktor_streams::{Completion, Sink, Source, StreamError};
use rules::{
    is_terminal, publisher_of, subscribed, until_subscribed, Counting, CountingStats, Flag, Probe, ProbeSubscriber,
    Signal, COUNTING_FAILURE, WAIT,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

#[tokio::test]
async fn rule_3_3_request_from_on_next_has_bounded_recursion() {
    let probe = subscribed(&publisher_of(100_000));
    until_subscribed(&probe).await;
    probe.request_one_per_next.store(true, Ordering::SeqCst);
    probe.request(1);
    probe.wait_for_terminal().await;
    assert_eq!(probe.nexts().len(), 100_000);
    probe.assert_well_formed();
}

/// A probe subscribed to a source that never ends, and the stream's completion.
async fn subscribed_to_endless() -> (Arc<Probe>, Completion<()>) {
    let probe = Probe::new();
    let done = Source::from_iter(0..u64::MAX).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
    (probe, done)
}

/// A probe subscribed to a source fed by the returned channel, which holds
/// nothing yet, and the stream's completion.
async fn subscribed_to_channel() -> (mpsc::Sender<u64>, Arc<Probe>, Completion<()>) {
    let (tx, rx) = mpsc::channel::<u64>(1);
    let probe = Probe::new();
    let done = Source::from_receiver(rx).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
    (tx, probe, done)
}

#[tokio::test]
async fn rule_3_5_and_3_7_cancel_is_idempotent() {
    let (probe, done) = subscribed_to_endless().await;
    probe.cancel();
    probe.cancel();
    timeout(WAIT, done)
        .await
        .expect("the stream to stop")
        .expect("cancel is not a failure");
    probe.cancel();
    assert_eq!(probe.signals(), vec![Signal::Subscribe]);
}

#[tokio::test]
async fn rule_3_6_request_after_cancel_is_a_noop() {
    let (probe, done) = subscribed_to_endless().await;
    probe.cancel();
    probe.request(5);
    // Even request(0) after cancel signals nothing (3.6 overrides 3.9).
    probe.subscription.lock().unwrap().as_mut().unwrap().request(0);
    timeout(WAIT, done)
        .await
        .expect("the stream to stop")
        .expect("no error after cancel");
    assert_eq!(probe.signals(), vec![Signal::Subscribe]);
}

/// Requests 3 and then 4 before anything was delivered, from a publisher
/// of 8 elements: all 7 arrive, and the 8th only after one more request.
async fn demand_adds_up(what: &str, probe: &Probe) {
    until_subscribed(probe).await;
    probe.request(3);
    probe.request(4);
    // The stream runs on this thread, and has not run since the first request.
    assert!(probe.nexts().is_empty(), "{what}: delivered between the requests");
    probe.wait_for_nexts(7).await;
    // The probe checks each on_next against the demand so far: an 8th
    // element on the first two requests would show as over-delivery.
    probe.request(1);
    probe.wait_for_terminal().await;
    assert_eq!(
        probe.signals().last(),
        Some(&Signal::Complete),
        "{what}: {:?}",
        probe.signals()
    );
    assert_eq!(probe.nexts(), (0..8).collect::<Vec<_>>(), "{what}");
    probe.assert_well_formed();
}

#[tokio::test]
async fn rule_3_8_requests_before_any_delivery_add_up_and_allow_no_more() {
    let probe = Probe::new();
    let done = Source::from_iter(0..8u64).run_with(Sink::from_subscriber(probe.subscriber()));
    demand_adds_up("Sink::from_subscriber", &probe).await;
    timeout(WAIT, done)
        .await
        .expect("the stream to end")
        .expect("completed");

    let publisher = publisher_of(8);
    demand_adds_up("Sink::publisher", &subscribed(&publisher)).await;
}

#[tokio::test]
async fn rule_3_4_request_returns_at_once_while_nothing_can_be_produced() {
    // Over a channel nothing has been sent to, a request that waited for
    // elements would never return. It is made on a thread of its own, with
    // a deadline, and only then is an element sent.
    let (tx, probe, done) = subscribed_to_channel().await;
    request_returns_before_any_element("Sink::from_subscriber", &probe, &tx).await;
    probe.cancel();
    timeout(WAIT, done)
        .await
        .expect("the stream to stop")
        .expect("cancel is not a failure");

    let (tx, rx) = mpsc::channel::<u64>(1);
    let publisher = Source::from_receiver(rx).run_with(Sink::publisher());
    request_returns_before_any_element("Sink::publisher", &subscribed(&publisher), &tx).await;
}

async fn request_returns_before_any_element(what: &str, probe: &Probe, tx: &mpsc::Sender<u64>) {
    until_subscribed(probe).await;
    let subscription = probe.subscription.lock().unwrap().take().expect("subscribed");
    probe.requested.fetch_add(5, Ordering::SeqCst);
    let subscription = returns_normally(what, subscription, &[Op::Request(5)]).await;
    assert!(probe.nexts().is_empty(), "{what}: no element existed yet");
    *probe.subscription.lock().unwrap() = Some(subscription);
    // The demand was recorded, not dropped: an element sent now is delivered.
    tx.send(1).await.unwrap();
    probe.wait_for_nexts(1).await;
    assert_eq!(probe.nexts(), vec![1], "{what}");
    probe.assert_well_formed();
}

#[tokio::test]
async fn rule_3_9_request_zero_signals_on_error() {
    let (tx, probe, done) = subscribed_to_channel().await;
    probe.request(0);
    probe.wait_for_terminal().await;
    assert!(
        matches!(&probe.signals()[1], Signal::Error(e) if e.contains("3.9")),
        "{:?}",
        probe.signals()
    );
    let outcome = timeout(WAIT, done).await.expect("the stream to stop");
    assert!(matches!(outcome, Err(StreamError::ZeroRequest)), "{outcome:?}");
    timeout(WAIT, tx.closed())
        .await
        .expect("upstream to be cancelled after the spec violation");
}

#[tokio::test]
async fn rule_3_13_cancel_drops_the_subscriber() {
    let probe = Probe::new();
    let marker = Arc::new(());
    let subscriber = ProbeSubscriber {
        probe: Arc::clone(&probe),
        _marker: Some(Arc::clone(&marker)),
    };
    let done = Source::from_iter(0..u64::MAX).run_with(Sink::from_subscriber(subscriber));
    until_subscribed(&probe).await;
    probe.request(3);
    probe.wait_for_nexts(3).await;
    probe.cancel();
    timeout(WAIT, done)
        .await
        .expect("the stream to stop")
        .expect("cancelled");
    assert_eq!(
        Arc::strong_count(&marker),
        1,
        "the publisher no longer holds the subscriber"
    );
}

#[tokio::test]
async fn rule_3_17_demand_saturates_at_u64_max_and_means_unbounded() {
    let probe = subscribed(&publisher_of(10_000));
    until_subscribed(&probe).await;
    probe.subscription.lock().unwrap().as_mut().unwrap().request(u64::MAX);
    probe.subscription.lock().unwrap().as_mut().unwrap().request(u64::MAX);
    probe.requested.store(u64::MAX, Ordering::SeqCst);
    probe.wait_for_terminal().await;
    assert_eq!(probe.nexts().len(), 10_000);
    assert_eq!(probe.signals().last(), Some(&Signal::Complete), "no overflow error");
    probe.assert_well_formed();
}

#[tokio::test]
async fn rule_3_13_dropping_an_unsubscribed_publisher_cancels_the_stream() {
    let (tx, rx) = mpsc::channel::<u64>(1);
    let publisher = Source::from_receiver(rx).run_with(Sink::publisher());
    drop(publisher);
    timeout(WAIT, tx.closed())
        .await
        .expect("upstream to be cancelled once nobody can subscribe");
}

/// Records how deep the stack is at each `on_next`; requests one element in
/// `on_subscribe` and one more in each `on_next`.
struct Deep {
    subscription: Option<Box<dyn Subscription>>,
    stats: Arc<DeepStats>,
}

struct DeepStats {
    shallowest: AtomicUsize,
    deepest: AtomicUsize,
    delivered: AtomicU64,
    out_of_order: AtomicBool,
    completed: Flag,
}

/// Unbounded recursion would go one frame deeper per element; with
/// 100,000 elements that is megabytes. Bounded recursion stays flat.
const MAX_DEPTH_RANGE: usize = 64 * 1024;

impl DeepStats {
    fn new() -> Arc<Self> {
        Arc::new(DeepStats {
            shallowest: AtomicUsize::new(usize::MAX),
            deepest: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            out_of_order: AtomicBool::new(false),
            completed: Flag::default(),
        })
    }

    fn depth_range(&self) -> usize {
        self.deepest.load(Ordering::SeqCst) - self.shallowest.load(Ordering::SeqCst)
    }

    /// Every one of `n` elements arrived, in order, each at about the same
    /// stack depth (no recursion between request and on_next).
    fn assert_all_in_order_at_one_depth(&self, n: u64) {
        assert_eq!(self.delivered.load(Ordering::SeqCst), n);
        assert!(!self.out_of_order.load(Ordering::SeqCst));
        assert!(
            self.depth_range() < MAX_DEPTH_RANGE,
            "on_next ran at stack depths {} bytes apart",
            self.depth_range()
        );
    }
}

impl Subscriber<u64> for Deep {
    fn on_subscribe(&mut self, mut subscription: Box<dyn Subscription>) {
        // Rule 3.2: request from inside on_subscribe.
        subscription.request(1);
        self.subscription = Some(subscription);
    }

    fn on_next(&mut self, element: u64) {
        let marker = 0u8;
        let here = std::ptr::from_ref(std::hint::black_box(&marker)).addr();
        self.stats.shallowest.fetch_min(here, Ordering::SeqCst);
        self.stats.deepest.fetch_max(here, Ordering::SeqCst);
        if self.stats.delivered.fetch_add(1, Ordering::SeqCst) != element {
            self.stats.out_of_order.store(true, Ordering::SeqCst);
        }
        // Rule 3.2: request from inside on_next.
        self.subscription.as_mut().expect("subscribed").request(1);
    }

    fn on_error(&mut self, error: StreamError) {
        panic!("unexpected on_error: {error}");
    }

    fn on_complete(&mut self) {
        self.stats.completed.raise();
    }
}

#[tokio::test]
async fn rule_3_2_and_3_3_request_from_on_subscribe_and_on_next_keeps_the_stack_flat() {
    const N: u64 = 100_000;

    let stats = DeepStats::new();
    let done = Source::from_iter(0..N).run_with(Sink::from_subscriber(Deep {
        subscription: None,
        stats: Arc::clone(&stats),
    }));
    timeout(WAIT, done)
        .await
        .expect("the driven subscriber to receive everything")
        .expect("completed");
    assert!(stats.completed.is_raised());
    stats.assert_all_in_order_at_one_depth(N);

    let stats = DeepStats::new();
    let publisher = publisher_of(N);
    publisher.subscribe(Box::new(Deep {
        subscription: None,
        stats: Arc::clone(&stats),
    }));
    stats
        .completed
        .wait("the publisher's subscriber to receive everything")
        .await;
    stats.assert_all_in_order_at_one_depth(N);
}

#[tokio::test]
async fn rule_3_10_and_3_11_subscriber_accepts_signals_from_inside_request() {
    for fail in [false, true] {
        let stats = Arc::new(CountingStats::default());
        let publisher = Counting {
            limit: 100,
            fail,
            stats: Arc::clone(&stats),
        };
        let probe = Probe::new();
        let done = Source::from_publisher(publisher).run_with(Sink::from_subscriber(probe.subscriber()));
        until_subscribed(&probe).await;
        probe.request(u64::MAX);
        probe.wait_for_terminal().await;
        assert_eq!(probe.nexts(), (0..100).collect::<Vec<_>>(), "fail: {fail}");
        let outcome = timeout(WAIT, done).await.expect("the stream to end");
        if fail {
            assert!(
                matches!(probe.signals().last(), Some(Signal::Error(e)) if e.contains(COUNTING_FAILURE)),
                "{:?}",
                probe.signals()
            );
            assert!(
                matches!(&outcome, Err(e) if e.to_string().contains(COUNTING_FAILURE)),
                "{outcome:?}"
            );
        } else {
            assert_eq!(probe.signals().last(), Some(&Signal::Complete));
            outcome.expect("completed");
        }
        probe.assert_well_formed();
        assert_eq!(
            stats.calls_after_end.load(Ordering::SeqCst),
            0,
            "no request or cancel from or after a terminal signal sent from inside request (rule 2.3)"
        );
    }
}

#[tokio::test]
async fn rule_3_12_cancel_eventually_stops_a_stream_publisher_and_later_calls_are_noops() {
    let publisher = Source::from_iter(0..u64::MAX).run_with(Sink::publisher());
    let probe = subscribed(&publisher);
    until_subscribed(&probe).await;
    probe.request(u64::MAX);
    probe.wait_for_nexts(10).await;
    probe.cancel();
    probe
        .wait_for_dropped("the publisher to stop and drop the subscriber after cancel", 1)
        .await;
    let after_cancel = probe.signals();
    assert!(!after_cancel.iter().any(is_terminal), "no terminal signal after cancel");
    // Rules 3.6 and 3.7 on this publisher's subscription: no-ops.
    probe.with_subscription(|s| {
        s.request(1);
        s.request(0);
        s.cancel();
    });
    assert_eq!(probe.signals(), after_cancel, "nothing follows cancel");
    probe.assert_well_formed();
}

#[tokio::test]
async fn rule_3_14_cancel_shuts_a_stream_publisher_down() {
    let (tx, rx) = mpsc::channel::<u64>(1);
    let publisher = Source::from_receiver(rx).run_with(Sink::publisher());
    let probe = subscribed(&publisher);
    until_subscribed(&probe).await;
    probe.request(1);
    tx.send(1).await.unwrap();
    probe.wait_for_nexts(1).await;
    probe.cancel();
    timeout(WAIT, tx.closed())
        .await
        .expect("the stream behind the publisher to be cancelled");
    probe.wait_for_dropped("the publisher to drop the subscriber", 1).await;
    // Shut down: a later subscriber is refused, not served.
    let late = subscribed(&publisher);
    late.wait_for_terminal().await;
    let signals = late.signals();
    assert_eq!(signals[0], Signal::Subscribe);
    assert!(
        matches!(&signals[1], Signal::Error(e) if e.contains("already has a subscriber")),
        "{signals:?}"
    );
    assert_eq!(probe.signals(), vec![Signal::Subscribe, Signal::Next(1)]);
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Request(u64),
    Cancel,
}

/// Makes `ops` on `subscription` on a thread of its own and checks that
/// they return normally (no panic) and in time (no blocking); gives the
/// subscription back.
async fn returns_normally(
    what: &str,
    mut subscription: Box<dyn Subscription>,
    ops: &'static [Op],
) -> Box<dyn Subscription> {
    let (tx, rx) = oneshot::channel();
    // A plain thread, not spawn_blocking: if a call hangs, the test fails
    // at the deadline and the thread is left behind instead of holding up
    // the runtime's shutdown.
    std::thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            for op in ops {
                match *op {
                    Op::Request(n) => subscription.request(n),
                    Op::Cancel => subscription.cancel(),
                }
            }
        }));
        let _ = tx.send((subscription, outcome.is_ok()));
    });
    let (subscription, returned) = timeout(WAIT, rx)
        .await
        .unwrap_or_else(|_| panic!("{what}: {ops:?} did not return in time"))
        .expect("the calling thread to report");
    assert!(returned, "{what}: {ops:?} panicked");
    subscription
}

#[tokio::test]
async fn rule_3_15_and_3_16_cancel_and_request_return_normally() {
    // The subscription Sink::from_subscriber hands out, in every state.
    let (tx, probe, done) = subscribed_to_channel().await;
    let subscription = probe.subscription.lock().unwrap().take().expect("subscribed");
    let subscription = returns_normally(
        "while running",
        subscription,
        &[Op::Request(1), Op::Request(u64::MAX), Op::Request(u64::MAX)],
    )
    .await;
    let subscription = returns_normally(
        "cancel and after cancel",
        subscription,
        &[Op::Cancel, Op::Cancel, Op::Request(1), Op::Request(0)],
    )
    .await;
    timeout(WAIT, done)
        .await
        .expect("the stream to stop")
        .expect("cancel is not a failure");
    let _subscription = returns_normally(
        "after the stream ended",
        subscription,
        &[Op::Request(1), Op::Request(0), Op::Cancel, Op::Request(1)],
    )
    .await;
    assert_eq!(probe.signals(), vec![Signal::Subscribe], "nothing was signalled");
    drop(tx);

    // The subscription a StreamPublisher hands to a refused subscriber.
    let publisher = publisher_of(1);
    let _first = subscribed(&publisher);
    let refused = subscribed(&publisher);
    refused.wait_for_terminal().await;
    let subscription = refused.subscription.lock().unwrap().take().expect("subscribed");
    let _subscription = returns_normally(
        "refused subscription",
        subscription,
        &[Op::Request(1), Op::Request(0), Op::Cancel, Op::Request(1)],
    )
    .await;
    assert_eq!(refused.signals().len(), 2, "nothing after the rejection");
}
