//! The Reactive Streams rules, one test per rule (in the spirit of the
//! TCK), against this crate's publisher ([`Sink::publisher`]), its
//! subscriber driver ([`Sink::from_subscriber`]) and its subscriber to
//! foreign publishers ([`Source::from_publisher`]). The subscriber-side
//! rules (2.x) use publishers written here: `Counting` (synchronous,
//! signals from inside `request`) and `Manual` (signals only when the test
//! says so, logs every call on its subscription).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use compaktor_streams::protocol::{Publisher, Subscriber, Subscription};
use compaktor_streams::{Sink, Source, StreamError};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// Waits, with a deadline, until `done` holds; `changed` is notified
/// (`notify_waiters`) whenever what `done` looks at changes. Panics with
/// `what` and the `state` it saw when the deadline passes.
async fn wait_for(what: &str, changed: &Notify, done: impl Fn() -> bool, state: impl Fn() -> String) {
    let wait = async {
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done() {
                return;
            }
            notified.await;
        }
    };
    if timeout(WAIT, wait).await.is_err() {
        panic!("timed out waiting for {what}; state: {}", state());
    }
}

/// A one-way flag a test can wait for.
#[derive(Default)]
struct Flag {
    raised: AtomicBool,
    changed: Notify,
}

impl Flag {
    fn new() -> Arc<Self> {
        Arc::new(Flag::default())
    }

    fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    async fn wait(&self, what: &str) {
        wait_for(what, &self.changed, || self.is_raised(), || "not raised".to_owned()).await;
    }
}

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
    /// How many of this probe's `ProbeSubscriber`s have been dropped.
    subscribers_dropped: AtomicU64,
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
        wait_for(
            what,
            &self.changed,
            || done(&self.signals()),
            || format!("{:?}", self.signals()),
        )
        .await;
    }

    /// Waits until the publisher has dropped `n` of this probe's subscribers.
    async fn wait_for_dropped(&self, what: &str, n: u64) {
        wait_for(
            what,
            &self.changed,
            || self.subscribers_dropped.load(Ordering::SeqCst) >= n,
            || format!("{:?}", self.signals()),
        )
        .await;
    }

    /// Calls the subscription directly, bypassing the `requested` count.
    fn with_subscription(&self, f: impl FnOnce(&mut dyn Subscription)) {
        f(self.subscription.lock().unwrap().as_deref_mut().expect("subscribed"));
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
    fn on_subscribe(&mut self, mut subscription: Box<dyn Subscription>) {
        {
            let mut slot = self.probe.subscription.lock().unwrap();
            if slot.is_some() {
                // Rule 2.5: keep the active subscription, cancel the new one.
                subscription.cancel();
            } else {
                *slot = Some(subscription);
            }
        }
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

impl Drop for ProbeSubscriber {
    fn drop(&mut self) {
        self.probe.subscribers_dropped.fetch_add(1, Ordering::SeqCst);
        self.probe.changed.notify_waiters();
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

/// Counts what reaches a subscriber whose subscription is shared by many
/// requesting threads, and notices any overlap of its signal methods.
#[derive(Default)]
struct Serial {
    subscription: Mutex<Option<Box<dyn Subscription>>>,
    subscribed: Flag,
    inside: AtomicBool,
    overlapped: AtomicBool,
    out_of_order: AtomicBool,
    over_delivered: AtomicBool,
    requested: AtomicU64,
    delivered: AtomicU64,
    terminals: AtomicU64,
}

struct SerialSubscriber(Arc<Serial>);

impl SerialSubscriber {
    fn enter(&self) {
        if self.0.inside.swap(true, Ordering::SeqCst) {
            self.0.overlapped.store(true, Ordering::SeqCst);
        }
    }

    fn leave(&self) {
        self.0.inside.store(false, Ordering::SeqCst);
    }
}

impl Subscriber<u64> for SerialSubscriber {
    fn on_subscribe(&mut self, subscription: Box<dyn Subscription>) {
        self.enter();
        *self.0.subscription.lock().unwrap() = Some(subscription);
        self.leave();
        self.0.subscribed.raise();
    }

    fn on_next(&mut self, element: u64) {
        self.enter();
        let index = self.0.delivered.fetch_add(1, Ordering::SeqCst);
        if element != index {
            self.0.out_of_order.store(true, Ordering::SeqCst);
        }
        if index + 1 > self.0.requested.load(Ordering::SeqCst) {
            self.0.over_delivered.store(true, Ordering::SeqCst);
        }
        // Stay inside a little, to widen the window for an overlap.
        for _ in 0..256 {
            std::hint::spin_loop();
        }
        self.leave();
    }

    fn on_error(&mut self, _error: StreamError) {
        self.enter();
        self.0.terminals.fetch_add(1, Ordering::SeqCst);
        self.leave();
    }

    fn on_complete(&mut self) {
        self.enter();
        self.0.terminals.fetch_add(1, Ordering::SeqCst);
        self.leave();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_1_3_and_2_7_signals_stay_serial_while_many_threads_request() {
    // `&mut self` on both traits makes concurrent calls on one value a
    // compile error, and both can move between threads:
    fn assert_send<T: Send>() {}
    assert_send::<Box<dyn Subscription>>();
    assert_send::<Box<dyn Subscriber<u64>>>();
    // At run time: many threads request at once (serialised by the
    // subscriber's own lock, rule 2.7) and the publisher's signals never
    // overlap (rule 1.3), arrive in order and never exceed the demand.
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 500;
    const TOTAL: u64 = THREADS * PER_THREAD;
    let serial = Arc::new(Serial::default());
    let done = Source::from_iter(0..TOTAL).run_with(Sink::from_subscriber(SerialSubscriber(Arc::clone(&serial))));
    serial.subscribed.wait("on_subscribe").await;
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let serial = Arc::clone(&serial);
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let mut subscription = serial.subscription.lock().unwrap();
                    serial.requested.fetch_add(1, Ordering::SeqCst);
                    subscription.as_mut().expect("subscribed").request(1);
                }
            })
        })
        .collect();
    timeout(WAIT, done)
        .await
        .expect("every requested element to be delivered and the stream to complete")
        .expect("completed");
    for thread in threads {
        thread.join().expect("a requesting thread panicked");
    }
    assert!(!serial.overlapped.load(Ordering::SeqCst), "signal methods overlapped");
    assert!(!serial.out_of_order.load(Ordering::SeqCst), "elements out of order");
    assert!(
        !serial.over_delivered.load(Ordering::SeqCst),
        "more on_next than requested"
    );
    assert_eq!(serial.delivered.load(Ordering::SeqCst), TOTAL);
    assert_eq!(serial.terminals.load(Ordering::SeqCst), 1, "one on_complete");
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

/// A well-behaved synchronous publisher of `0..limit`: it delivers from
/// inside `request` (rules 3.10, 3.11), then completes, or fails when
/// `fail` is set. A `request` made while it is delivering only adds demand
/// (the trampoline keeps recursion bounded, rule 3.3), and it signals with
/// no lock held, so a subscriber calling back cannot deadlock it.
struct Counting {
    limit: u64,
    fail: bool,
    stats: Arc<CountingStats>,
}

#[derive(Default)]
struct CountingStats {
    max_requested: AtomicU64,
    /// `request` or `cancel` calls after the terminal signal was sent (or
    /// while it was being sent): rules 2.3 and 2.4 forbid them.
    calls_after_end: AtomicU64,
}

const COUNTING_FAILURE: &str = "counting publisher failed";

struct CountingState {
    next: u64,
    limit: u64,
    fail: bool,
    demand: u64,
    emitting: bool,
    ended: bool,
    cancelled: bool,
    subscriber: Option<Box<dyn Subscriber<u64>>>,
    stats: Arc<CountingStats>,
}

/// Delivers what the demand allows, unless a caller further up the stack already is.
fn drain(cell: &Mutex<CountingState>) {
    let mut state = cell.lock().unwrap();
    if state.emitting {
        return;
    }
    let Some(mut subscriber) = state.subscriber.take() else {
        return;
    };
    state.emitting = true;
    loop {
        if state.cancelled {
            // Rule 3.13: the subscriber is dropped here.
            state.emitting = false;
            return;
        }
        if state.next == state.limit {
            state.ended = true;
            state.emitting = false;
            let fail = state.fail;
            drop(state);
            if fail {
                subscriber.on_error(StreamError::aborted(COUNTING_FAILURE));
            } else {
                subscriber.on_complete();
            }
            return;
        }
        if state.demand == 0 {
            state.emitting = false;
            state.subscriber = Some(subscriber);
            return;
        }
        if state.demand != u64::MAX {
            state.demand -= 1;
        }
        let element = state.next;
        state.next += 1;
        drop(state);
        subscriber.on_next(element);
        state = cell.lock().unwrap();
    }
}

struct CountingHandle(Arc<Mutex<CountingState>>);

impl Subscription for CountingHandle {
    fn request(&mut self, n: u64) {
        {
            let mut state = self.0.lock().unwrap();
            state.stats.max_requested.fetch_max(n, Ordering::SeqCst);
            if state.ended {
                state.stats.calls_after_end.fetch_add(1, Ordering::SeqCst);
                return;
            }
            if state.cancelled {
                return;
            }
            state.demand = state.demand.saturating_add(n);
        }
        drain(&self.0);
    }

    fn cancel(&mut self) {
        let mut state = self.0.lock().unwrap();
        if state.ended {
            state.stats.calls_after_end.fetch_add(1, Ordering::SeqCst);
        }
        state.cancelled = true;
        state.subscriber = None;
    }
}

impl Publisher<u64> for Counting {
    fn subscribe(&self, mut subscriber: Box<dyn Subscriber<u64>>) {
        let cell = Arc::new(Mutex::new(CountingState {
            next: 0,
            limit: self.limit,
            fail: self.fail,
            demand: 0,
            emitting: false,
            ended: false,
            cancelled: false,
            subscriber: None,
            stats: Arc::clone(&self.stats),
        }));
        subscriber.on_subscribe(Box::new(CountingHandle(Arc::clone(&cell))));
        {
            let mut state = cell.lock().unwrap();
            if state.cancelled {
                return;
            }
            state.subscriber = Some(subscriber);
        }
        // Demand requested from inside on_subscribe.
        drain(&cell);
    }
}

#[tokio::test]
async fn rule_2_1_subscriber_signals_demand_and_receives_everything_from_a_synchronous_publisher() {
    let stats = Arc::new(CountingStats::default());
    let publisher = Counting {
        limit: 1_000,
        fail: false,
        stats: Arc::clone(&stats),
    };
    let all = Source::from_publisher(publisher).run_with(Sink::collect());
    let all = timeout(WAIT, all)
        .await
        .expect("the stream to complete")
        .expect("completed");
    assert_eq!(all, (0..1_000).collect::<Vec<_>>());
    assert!(stats.max_requested.load(Ordering::SeqCst) > 0, "demand was signalled");
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
async fn rule_2_6_from_publisher_cancels_its_subscription_when_the_stream_stops_early() {
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

// ---------------------------------------------------------------- a publisher the test drives

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Request(u64),
    Cancel,
}

/// What a [`Manual`] publisher signals from inside `subscribe`, right after
/// `on_subscribe` and so before any request.
#[derive(Clone, Copy)]
enum AtOnce {
    Nothing,
    Complete,
    Fail,
}

const MANUAL_FAILURE: &str = "manual publisher failed";

/// The calls a [`Manual`] publisher's subscription received.
#[derive(Default)]
struct CallLog {
    /// Set just before the terminal signal is sent: a call from inside
    /// `on_complete`/`on_error`, or after it, counts as after the end.
    ended: AtomicBool,
    calls: Mutex<Vec<(Call, bool)>>,
    changed: Notify,
}

struct ManualSubscription(Arc<CallLog>);

impl Subscription for ManualSubscription {
    fn request(&mut self, n: u64) {
        self.0.record(Call::Request(n));
    }

    fn cancel(&mut self) {
        self.0.record(Call::Cancel);
    }
}

impl CallLog {
    fn record(&self, call: Call) {
        let after_end = self.ended.load(Ordering::SeqCst);
        self.calls.lock().unwrap().push((call, after_end));
        self.changed.notify_waiters();
    }
}

/// A publisher for one subscriber that signals only when the test tells it
/// to, and logs every call on its subscription.
struct Manual<T> {
    at_once: AtOnce,
    log: Arc<CallLog>,
    subscriber: Arc<Mutex<Option<Box<dyn Subscriber<T>>>>>,
}

impl<T> Clone for Manual<T> {
    fn clone(&self) -> Self {
        Manual {
            at_once: self.at_once,
            log: Arc::clone(&self.log),
            subscriber: Arc::clone(&self.subscriber),
        }
    }
}

impl<T: Send + 'static> Manual<T> {
    fn new(at_once: AtOnce) -> Self {
        Manual {
            at_once,
            log: Arc::default(),
            subscriber: Arc::new(Mutex::new(None)),
        }
    }

    fn signal(&self, f: impl FnOnce(&mut dyn Subscriber<T>)) {
        f(self
            .subscriber
            .lock()
            .unwrap()
            .as_deref_mut()
            .expect("a subscriber to signal"));
    }

    fn next(&self, element: T) {
        self.signal(|s| s.on_next(element));
    }

    fn complete(&self) {
        self.log.ended.store(true, Ordering::SeqCst);
        self.signal(|s| s.on_complete());
    }

    fn fail(&self) {
        self.log.ended.store(true, Ordering::SeqCst);
        self.signal(|s| s.on_error(StreamError::aborted(MANUAL_FAILURE)));
    }

    /// Drops the subscriber, as a publisher does after cancel (rule 3.13).
    fn release(&self) {
        self.subscriber.lock().unwrap().take();
    }

    fn calls(&self) -> Vec<Call> {
        self.log.calls.lock().unwrap().iter().map(|(c, _)| *c).collect()
    }

    fn calls_after_end(&self) -> Vec<Call> {
        self.log
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, after_end)| *after_end)
            .map(|(c, _)| *c)
            .collect()
    }

    async fn wait_for_call(&self, what: &str, call: impl Fn(&Call) -> bool) {
        wait_for(
            what,
            &self.log.changed,
            || self.calls().iter().any(&call),
            || format!("calls {:?}", self.calls()),
        )
        .await;
    }

    async fn wait_for_a_request(&self) {
        self.wait_for_call("a request", |c| matches!(c, Call::Request(_))).await;
    }
}

impl<T: Send + 'static> Publisher<T> for Manual<T> {
    fn subscribe(&self, mut subscriber: Box<dyn Subscriber<T>>) {
        subscriber.on_subscribe(Box::new(ManualSubscription(Arc::clone(&self.log))));
        *self.subscriber.lock().unwrap() = Some(subscriber);
        match self.at_once {
            AtOnce::Nothing => {}
            AtOnce::Complete => self.complete(),
            AtOnce::Fail => self.fail(),
        }
    }
}

// ---------------------------------------------------------------- rules 1.10, 2.x

#[tokio::test]
async fn rule_1_10_and_2_12_subscribing_the_same_subscriber_again_is_refused() {
    // `subscribe` takes the subscriber by value, so Rust cannot pass the
    // very same object twice; the nearest thing is a second handle to the
    // same subscriber state. `StreamPublisher` documents one subscriber per
    // materialisation: every later `subscribe` gets on_subscribe and
    // on_error(AlreadySubscribed), and the first subscription is unaffected.
    let publisher = publisher_of(3);
    let probe = subscribed(&publisher);
    until_subscribed(&probe).await;
    publisher.subscribe(Box::new(probe.subscriber()));
    probe
        .wait_until("the second subscribe to be refused", |s| s.iter().any(is_terminal))
        .await;
    probe.request(3);
    probe.wait_for_nexts(3).await;
    probe
        .wait_until("on_complete after the elements", |s| {
            s.last() == Some(&Signal::Complete)
        })
        .await;
    let signals = probe.signals();
    assert_eq!(&signals[..2], &[Signal::Subscribe, Signal::Subscribe], "{signals:?}");
    assert!(
        matches!(&signals[2], Signal::Error(e) if e.contains("already has a subscriber")),
        "{signals:?}"
    );
    assert_eq!(
        &signals[3..],
        &[Signal::Next(0), Signal::Next(1), Signal::Next(2), Signal::Complete],
        "the first subscription still delivers everything"
    );
    // After the stream has ended, subscribing again is still refused: a
    // StreamPublisher does not restart.
    publisher.subscribe(Box::new(probe.subscriber()));
    let signals = probe.signals();
    assert_eq!(
        signals.len(),
        9,
        "on_subscribe and on_error, synchronously: {signals:?}"
    );
    assert_eq!(signals[7], Signal::Subscribe);
    assert!(
        matches!(&signals[8], Signal::Error(e) if e.contains("already has a subscriber")),
        "{signals:?}"
    );
}

#[tokio::test]
async fn rule_2_3_subscriber_calls_nothing_from_or_after_on_complete_or_on_error() {
    for failing in [false, true] {
        let manual = Manual::<u64>::new(AtOnce::Nothing);
        let done = Source::from_publisher(manual.clone()).run_with(Sink::collect());
        manual.wait_for_a_request().await;
        manual.next(1);
        manual.next(2);
        if failing {
            manual.fail();
        } else {
            manual.complete();
        }
        // The sink drops the source before it reports, so every call the
        // subscriber side will ever make has been made once this resolves.
        let outcome = timeout(WAIT, done).await.expect("the stream to end");
        if failing {
            assert!(
                matches!(&outcome, Err(e) if e.to_string().contains(MANUAL_FAILURE)),
                "{outcome:?}"
            );
        } else {
            assert_eq!(outcome.expect("completed"), vec![1, 2]);
        }
        assert_eq!(
            manual.calls_after_end(),
            vec![],
            "failing: {failing}; all calls: {:?}",
            manual.calls()
        );
    }
}

#[tokio::test]
async fn rule_2_4_subscriber_does_not_cancel_after_on_complete_when_the_stream_stops_early() {
    let manual = Manual::<u64>::new(AtOnce::Nothing);
    let first = Source::from_publisher(manual.clone()).take(1).run_with(Sink::collect());
    manual.wait_for_a_request().await;
    // Both signals arrive before the stream task runs again.
    manual.next(1);
    manual.complete();
    let first = timeout(WAIT, first).await.expect("take(1) to complete");
    assert_eq!(first.expect("completed"), vec![1]);
    assert_eq!(
        manual.calls_after_end(),
        vec![],
        "the subscription counts as cancelled once on_complete arrived; all calls: {:?}",
        manual.calls()
    );
}

#[tokio::test]
async fn rule_2_8_subscriber_accepts_on_next_after_cancel() {
    let manual = Manual::<Arc<()>>::new(AtOnce::Nothing);
    let first = Source::from_publisher(manual.clone()).take(1).run_with(Sink::collect());
    manual.wait_for_a_request().await;
    let element = Arc::new(());
    manual.next(Arc::clone(&element));
    let got = timeout(WAIT, first)
        .await
        .expect("take(1) to complete")
        .expect("completed");
    assert_eq!(got.len(), 1);
    assert!(Arc::ptr_eq(&got[0], &element));
    manual
        .wait_for_call("the cancel after take(1)", |c| *c == Call::Cancel)
        .await;
    // An element that was in flight when cancel was called: accepted
    // (on_next returns normally), not delivered (the stream has ended),
    // and nothing more is asked of the publisher.
    let late = Arc::new(());
    manual.next(Arc::clone(&late));
    let calls = manual.calls();
    assert_eq!(calls.last(), Some(&Call::Cancel), "nothing after cancel: {calls:?}");
    assert_eq!(calls.iter().filter(|c| **c == Call::Cancel).count(), 1, "{calls:?}");
    // Once the publisher lets go of the subscriber (rule 3.13), the late
    // element goes with it instead of being kept.
    manual.release();
    assert_eq!(Arc::strong_count(&late), 1, "the late element was released");
}

#[tokio::test]
async fn rule_2_9_subscriber_accepts_on_complete_before_any_request() {
    let manual = Manual::<u64>::new(AtOnce::Complete);
    let all = Source::from_publisher(manual.clone()).run_with(Sink::collect());
    let all = timeout(WAIT, all).await.expect("the stream to end");
    assert_eq!(all.expect("completed"), Vec::<u64>::new());
    assert_eq!(
        manual.calls(),
        vec![],
        "no request or cancel after an immediate on_complete"
    );
}

#[tokio::test]
async fn rule_2_10_subscriber_accepts_on_error_before_any_request() {
    let manual = Manual::<u64>::new(AtOnce::Fail);
    let all = Source::from_publisher(manual.clone()).run_with(Sink::collect());
    let outcome = timeout(WAIT, all).await.expect("the stream to end");
    assert!(
        matches!(&outcome, Err(e) if e.to_string().contains(MANUAL_FAILURE)),
        "the publisher's error fails the stream: {outcome:?}"
    );
    assert_eq!(
        manual.calls(),
        vec![],
        "no request or cancel after an immediate on_error"
    );
}

/// A subscriber that requests one element in `on_subscribe` and panics in
/// `on_next`, breaking rule 2.13 on purpose.
struct PanicsOnNext {
    subscription: Option<Box<dyn Subscription>>,
    terminal_after_panic: Arc<Flag>,
    panicked: bool,
    dropped: Arc<Flag>,
}

impl PanicsOnNext {
    fn new(dropped: &Arc<Flag>, terminal_after_panic: &Arc<Flag>) -> Self {
        PanicsOnNext {
            subscription: None,
            terminal_after_panic: Arc::clone(terminal_after_panic),
            panicked: false,
            dropped: Arc::clone(dropped),
        }
    }
}

impl Subscriber<u64> for PanicsOnNext {
    fn on_subscribe(&mut self, mut subscription: Box<dyn Subscription>) {
        subscription.request(1);
        self.subscription = Some(subscription);
    }

    fn on_next(&mut self, element: u64) {
        self.panicked = true;
        panic!("test subscriber panics in on_next({element}) on purpose");
    }

    fn on_error(&mut self, _error: StreamError) {
        if self.panicked {
            self.terminal_after_panic.raise();
        }
    }

    fn on_complete(&mut self) {
        if self.panicked {
            self.terminal_after_panic.raise();
        }
    }
}

impl Drop for PanicsOnNext {
    fn drop(&mut self) {
        self.dropped.raise();
    }
}

#[tokio::test]
async fn rule_2_13_a_panic_in_on_next_ends_the_stream_abruptly_and_cancels_upstream() {
    // Rust has no null, so what is left of 2.13 is a subscriber that fails
    // instead of returning normally. The crate documents that a panic in
    // user code ends the stream and the completion reports
    // AbruptTermination rather than hanging; the spec asks that the
    // subscription be considered cancelled.
    let (tx, rx) = mpsc::channel::<u64>(1);
    let dropped = Flag::new();
    let terminal_after_panic = Flag::new();
    let done = Source::from_receiver(rx).run_with(Sink::from_subscriber(PanicsOnNext::new(
        &dropped,
        &terminal_after_panic,
    )));
    tx.send(1).await.unwrap();
    let outcome = timeout(WAIT, done)
        .await
        .expect("the completion to resolve after the panic");
    assert!(matches!(outcome, Err(StreamError::AbruptTermination)), "{outcome:?}");
    timeout(WAIT, tx.closed())
        .await
        .expect("upstream to be cancelled after the panic");
    dropped.wait("the panicking subscriber to be dropped").await;
    assert!(
        !terminal_after_panic.is_raised(),
        "no on_complete/on_error to a subscriber that panicked"
    );
}

#[tokio::test]
async fn rule_2_13_a_panic_in_on_next_cancels_a_stream_publisher() {
    let (tx, rx) = mpsc::channel::<u64>(1);
    let publisher = Source::from_receiver(rx).run_with(Sink::publisher());
    let dropped = Flag::new();
    let terminal_after_panic = Flag::new();
    publisher.subscribe(Box::new(PanicsOnNext::new(&dropped, &terminal_after_panic)));
    tx.send(1).await.unwrap();
    timeout(WAIT, tx.closed())
        .await
        .expect("upstream to be cancelled after the panic");
    dropped.wait("the panicking subscriber to be dropped").await;
    assert!(
        !terminal_after_panic.is_raised(),
        "no on_complete/on_error to a subscriber that panicked"
    );
}

// ---------------------------------------------------------------- rules 3.x

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
    // Unbounded recursion would go one frame deeper per element; with
    // 100,000 elements that is megabytes. Bounded recursion stays flat.
    const MAX_DEPTH_RANGE: usize = 64 * 1024;

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
    assert_eq!(stats.delivered.load(Ordering::SeqCst), N);
    assert!(!stats.out_of_order.load(Ordering::SeqCst));
    assert!(
        stats.depth_range() < MAX_DEPTH_RANGE,
        "on_next ran at stack depths {} bytes apart",
        stats.depth_range()
    );

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
    assert_eq!(stats.delivered.load(Ordering::SeqCst), N);
    assert!(!stats.out_of_order.load(Ordering::SeqCst));
    assert!(
        stats.depth_range() < MAX_DEPTH_RANGE,
        "on_next ran at stack depths {} bytes apart",
        stats.depth_range()
    );
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
    let (tx, rx) = mpsc::channel::<u64>(1);
    let probe = Probe::new();
    let done = Source::from_receiver(rx).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
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
