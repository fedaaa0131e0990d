//! The Reactive Streams rules, one test per rule (in the spirit of the
//! TCK), against this crate's publisher ([`Sink::publisher`]), its
//! subscriber driver ([`Sink::from_subscriber`]) and its subscriber to
//! foreign publishers ([`Source::from_publisher`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use compaktor_streams::protocol::{Publisher, Subscriber, Subscription};
use compaktor_streams::{Sink, Source, StreamError};
use tokio::sync::{mpsc, Notify};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
enum Signal {
    Subscribe,
    Next(u64),
    Error(String),
    Complete,
}

/// A subscriber the test steers: it records every signal and checks, at
/// each `on_next`, that no more elements arrived than were requested.
#[derive(Default)]
struct Probe {
    signals: Mutex<Vec<Signal>>,
    subscription: Mutex<Option<Box<dyn Subscription>>>,
    changed: Notify,
    requested: AtomicU64,
    delivered: AtomicU64,
    over_delivered: AtomicBool,
    request_one_per_next: AtomicBool,
}

impl Probe {
    fn new() -> Arc<Self> {
        Arc::new(Probe::default())
    }

    fn subscriber(self: &Arc<Self>) -> ProbeSubscriber {
        ProbeSubscriber {
            probe: Arc::clone(self),
            _marker: None,
        }
    }

    fn record(&self, signal: Signal) {
        self.signals.lock().unwrap().push(signal);
        self.changed.notify_waiters();
    }

    fn signals(&self) -> Vec<Signal> {
        self.signals.lock().unwrap().clone()
    }

    fn nexts(&self) -> Vec<u64> {
        self.signals()
            .into_iter()
            .filter_map(|s| match s {
                Signal::Next(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    fn request(&self, n: u64) {
        self.requested.fetch_add(n, Ordering::SeqCst);
        self.subscription
            .lock()
            .unwrap()
            .as_mut()
            .expect("subscribed before request")
            .request(n);
    }

    fn cancel(&self) {
        self.subscription
            .lock()
            .unwrap()
            .as_mut()
            .expect("subscribed before cancel")
            .cancel();
    }

    async fn wait_until(&self, what: &str, done: impl Fn(&[Signal]) -> bool) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if done(&self.signals()) {
                    return;
                }
                changed.await;
            }
        };
        timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}; got {:?}", self.signals()));
    }

    async fn wait_for_nexts(&self, n: usize) {
        self.wait_until(&format!("{n} on_next signals"), |s| {
            s.iter().filter(|x| matches!(x, Signal::Next(_))).count() >= n
        })
        .await;
    }

    async fn wait_for_terminal(&self) {
        self.wait_until("a terminal signal", |s| s.iter().any(is_terminal))
            .await;
    }

    fn assert_well_formed(&self) {
        let signals = self.signals();
        assert_eq!(
            signals.first(),
            Some(&Signal::Subscribe),
            "on_subscribe comes first: {signals:?}"
        );
        assert_eq!(
            signals.iter().filter(|s| **s == Signal::Subscribe).count(),
            1,
            "one on_subscribe"
        );
        let terminals = signals.iter().filter(|s| is_terminal(s)).count();
        assert!(terminals <= 1, "at most one terminal signal: {signals:?}");
        if terminals == 1 {
            assert!(
                is_terminal(signals.last().unwrap()),
                "nothing follows a terminal signal: {signals:?}"
            );
        }
        assert!(
            !self.over_delivered.load(Ordering::SeqCst),
            "more on_next than requested"
        );
    }
}

fn is_terminal(signal: &Signal) -> bool {
    matches!(signal, Signal::Error(_) | Signal::Complete)
}

struct ProbeSubscriber {
    probe: Arc<Probe>,
    _marker: Option<Arc<()>>,
}

impl Subscriber<u64> for ProbeSubscriber {
    fn on_subscribe(&mut self, subscription: Box<dyn Subscription>) {
        *self.probe.subscription.lock().unwrap() = Some(subscription);
        self.probe.record(Signal::Subscribe);
    }

    fn on_next(&mut self, element: u64) {
        let delivered = self.probe.delivered.fetch_add(1, Ordering::SeqCst) + 1;
        if delivered > self.probe.requested.load(Ordering::SeqCst) {
            self.probe.over_delivered.store(true, Ordering::SeqCst);
        }
        self.probe.record(Signal::Next(element));
        if self.probe.request_one_per_next.load(Ordering::SeqCst) {
            self.probe.request(1);
        }
    }

    fn on_error(&mut self, error: StreamError) {
        self.probe.record(Signal::Error(error.to_string()));
    }

    fn on_complete(&mut self) {
        self.probe.record(Signal::Complete);
    }
}

fn publisher_of(n: u64) -> impl Publisher<u64> {
    Source::from_iter(0..n).run_with(Sink::publisher())
}

fn subscribed(publisher: &impl Publisher<u64>) -> Arc<Probe> {
    let probe = Probe::new();
    publisher.subscribe(Box::new(probe.subscriber()));
    probe
}

async fn until_subscribed(probe: &Probe) {
    probe
        .wait_until("on_subscribe", |s| s.contains(&Signal::Subscribe))
        .await;
}

#[tokio::test]
async fn rule_1_1_publisher_never_signals_more_than_requested() {
    let probe = subscribed(&publisher_of(100));
    until_subscribed(&probe).await;
    let mut expected = 0;
    for batch in [1, 3, 2, 7, 1, 10] {
        probe.request(batch);
        expected += batch as usize;
        probe.wait_for_nexts(expected).await;
        assert_eq!(probe.nexts().len(), expected, "exactly what was requested so far");
    }
    probe.assert_well_formed();
}

#[tokio::test]
async fn rule_1_2_publisher_may_signal_fewer_than_requested_then_complete() {
    let probe = subscribed(&publisher_of(3));
    until_subscribed(&probe).await;
    probe.request(100);
    probe.wait_for_terminal().await;
    assert_eq!(
        probe.signals(),
        vec![
            Signal::Subscribe,
            Signal::Next(0),
            Signal::Next(1),
            Signal::Next(2),
            Signal::Complete
        ]
    );
}

#[tokio::test]
async fn rule_1_3_and_2_7_signals_and_requests_are_serial_by_type() {
    // `&mut self` on both traits makes concurrent signals a compile error;
    // what is left to check is that a subscriber and its subscription can
    // move between threads.
    fn assert_send<T: Send>() {}
    assert_send::<Box<dyn Subscription>>();
    assert_send::<Box<dyn Subscriber<u64>>>();
}

#[tokio::test]
async fn rule_1_4_failing_publisher_signals_on_error_after_the_elements_before_the_failure() {
    let publisher = Source::from_iter(0..10u64)
        .try_map(|n| if n < 2 { Ok(n) } else { Err("bad element") })
        .run_with(Sink::publisher());
    let probe = subscribed(&publisher);
    until_subscribed(&probe).await;
    probe.request(10);
    probe.wait_for_terminal().await;
    let signals = probe.signals();
    assert_eq!(&signals[..3], &[Signal::Subscribe, Signal::Next(0), Signal::Next(1)]);
    assert!(
        matches!(&signals[3], Signal::Error(e) if e.contains("try_map")),
        "{signals:?}"
    );
    probe.assert_well_formed();
}

#[tokio::test]
async fn rule_1_5_empty_publisher_signals_on_complete() {
    let probe = subscribed(&publisher_of(0));
    until_subscribed(&probe).await;
    probe.request(1);
    probe.wait_for_terminal().await;
    assert_eq!(probe.signals(), vec![Signal::Subscribe, Signal::Complete]);
}

#[tokio::test]
async fn rule_1_6_and_1_7_no_signal_follows_a_terminal_one() {
    let probe = Probe::new();
    let done = Source::from_iter(0..5u64).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
    probe.request(10);
    timeout(WAIT, done)
        .await
        .expect("the stream to end")
        .expect("completed");
    // The completion resolves after the subscriber has been dropped:
    // nothing can be signalled any more, even on request.
    probe.request(10);
    assert_eq!(probe.nexts(), vec![0, 1, 2, 3, 4]);
    probe.assert_well_formed();
}

#[tokio::test]
async fn rule_1_8_cancelled_subscription_stops_signals_and_cancels_upstream() {
    let (tx, rx) = mpsc::channel::<u64>(4);
    let probe = Probe::new();
    let done = Source::from_receiver(rx).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
    probe.request(2);
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    probe.wait_for_nexts(2).await;
    probe.cancel();
    timeout(WAIT, done)
        .await
        .expect("the stream to stop after cancel")
        .expect("cancel is not a failure");
    timeout(WAIT, tx.closed())
        .await
        .expect("upstream to be cancelled (channel closed)");
    assert_eq!(
        probe.signals(),
        vec![Signal::Subscribe, Signal::Next(1), Signal::Next(2)]
    );
}

#[tokio::test]
async fn rule_1_9_on_subscribe_comes_before_any_other_signal() {
    let failed = Source::<u64>::failed(StreamError::aborted("at once")).run_with(Sink::publisher());
    let probe = subscribed(&failed);
    until_subscribed(&probe).await;
    probe.request(1);
    probe.wait_for_terminal().await;
    assert_eq!(probe.signals()[0], Signal::Subscribe);
    probe.assert_well_formed();
}

#[tokio::test]
async fn rule_1_11_unicast_publisher_rejects_a_second_subscriber_with_on_error() {
    let publisher = publisher_of(3);
    let first = subscribed(&publisher);
    let second = subscribed(&publisher);
    second.wait_for_terminal().await;
    let signals = second.signals();
    assert_eq!(
        signals[0],
        Signal::Subscribe,
        "rejection still starts with on_subscribe (rule 1.9)"
    );
    assert!(
        matches!(&signals[1], Signal::Error(e) if e.contains("already has a subscriber")),
        "{signals:?}"
    );
    // The first subscriber is unaffected.
    until_subscribed(&first).await;
    first.request(3);
    first.wait_for_terminal().await;
    assert_eq!(first.nexts(), vec![0, 1, 2]);
}

/// A publisher that breaks rule 1.9 on purpose by subscribing twice, to
/// see that this crate's subscriber cancels the second subscription.
struct DoubleSubscribing {
    second_cancelled: Arc<Notify>,
}

struct Recording {
    cancelled: Option<Arc<Notify>>,
}

impl Subscription for Recording {
    fn request(&mut self, _n: u64) {}
    fn cancel(&mut self) {
        if let Some(n) = self.cancelled.take() {
            n.notify_one();
        }
    }
}

impl Publisher<u64> for DoubleSubscribing {
    fn subscribe(&self, mut subscriber: Box<dyn Subscriber<u64>>) {
        subscriber.on_subscribe(Box::new(Recording { cancelled: None }));
        subscriber.on_subscribe(Box::new(Recording {
            cancelled: Some(Arc::clone(&self.second_cancelled)),
        }));
    }
}

#[tokio::test]
async fn rule_2_5_subscriber_cancels_a_second_subscription() {
    let second_cancelled = Arc::new(Notify::new());
    let publisher = DoubleSubscribing {
        second_cancelled: Arc::clone(&second_cancelled),
    };
    let _done = Source::from_publisher(publisher).run_with(Sink::ignore());
    timeout(WAIT, second_cancelled.notified())
        .await
        .expect("the second subscription to be cancelled");
}

/// A well-behaved synchronous publisher: delivers from inside `request`.
struct Counting {
    limit: u64,
    max_requested: Arc<AtomicU64>,
}

struct CountingSubscription {
    next: u64,
    limit: u64,
    subscriber: Option<Box<dyn Subscriber<u64>>>,
    max_requested: Arc<AtomicU64>,
}

impl Subscription for CountingSubscription {
    fn request(&mut self, n: u64) {
        self.max_requested.fetch_max(n, Ordering::SeqCst);
        let Some(subscriber) = self.subscriber.as_mut() else {
            return;
        };
        for _ in 0..n {
            if self.next == self.limit {
                subscriber.on_complete();
                self.subscriber = None;
                return;
            }
            subscriber.on_next(self.next);
            self.next += 1;
        }
    }
    fn cancel(&mut self) {
        self.subscriber = None;
    }
}

impl Publisher<u64> for Counting {
    fn subscribe(&self, subscriber: Box<dyn Subscriber<u64>>) {
        // The subscription owns the subscriber: on_subscribe gets a handle
        // that forwards to it. Kept simple: hand over a shared cell.
        let cell = Arc::new(Mutex::new(CountingSubscription {
            next: 0,
            limit: self.limit,
            subscriber: None,
            max_requested: Arc::clone(&self.max_requested),
        }));
        struct Handle(Arc<Mutex<CountingSubscription>>);
        impl Subscription for Handle {
            fn request(&mut self, n: u64) {
                // Take the subscriber out so its re-entrant calls do not deadlock.
                let mut sub = self.0.lock().unwrap();
                sub.request(n);
            }
            fn cancel(&mut self) {
                self.0.lock().unwrap().cancel();
            }
        }
        let mut subscriber = subscriber;
        subscriber.on_subscribe(Box::new(Handle(Arc::clone(&cell))));
        cell.lock().unwrap().subscriber = Some(subscriber);
    }
}

#[tokio::test]
async fn rule_2_1_subscriber_signals_demand_and_receives_everything_from_a_synchronous_publisher() {
    let max_requested = Arc::new(AtomicU64::new(0));
    let publisher = Counting {
        limit: 1_000,
        max_requested: Arc::clone(&max_requested),
    };
    let all = Source::from_publisher(publisher).run_with(Sink::collect());
    let all = timeout(WAIT, all)
        .await
        .expect("the stream to complete")
        .expect("completed");
    assert_eq!(all, (0..1_000).collect::<Vec<_>>());
    assert!(max_requested.load(Ordering::SeqCst) > 0, "demand was signalled");
}

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

#[tokio::test]
async fn rule_3_5_and_3_7_cancel_is_idempotent() {
    let probe = Probe::new();
    let done = Source::from_iter(0..u64::MAX).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
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
    let probe = Probe::new();
    let done = Source::from_iter(0..u64::MAX).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
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

#[tokio::test]
async fn rule_3_9_request_zero_signals_on_error() {
    let (tx, rx) = mpsc::channel::<u64>(1);
    let probe = Probe::new();
    let done = Source::from_receiver(rx).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
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

#[tokio::test]
async fn rule_2_13_from_publisher_cancels_its_subscription_when_the_stream_stops_early() {
    let (tx, rx) = mpsc::channel::<u64>(1);
    let publisher = Source::from_receiver(rx).run_with(Sink::publisher());
    let first = Source::from_publisher(publisher).take(1).run_with(Sink::collect());
    tx.send(7).await.unwrap();
    assert_eq!(
        timeout(WAIT, first).await.expect("take(1) to complete").unwrap(),
        vec![7]
    );
    timeout(WAIT, tx.closed())
        .await
        .expect("the subscription, and so the channel, to be cancelled");
}
