//! The Reactive Streams subscriber rules (2.x), one test per rule (in the
//! spirit of the TCK), against this crate's subscriber to foreign
//! publishers ([`Source::from_publisher`]) and its subscriber driver
//! ([`Sink::from_subscriber`]). They use publishers written for the tests:
//! `Counting` (in `rules/mod.rs`; synchronous, signals from inside
//! `request`), and here `Manual` (signals only when the test says so, logs
//! every call on its subscription), `Flooding` (breaks rule 1.1 from inside
//! `request`) and `Threaded` (signals from a thread of its own).

mod rules;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use compaktor_streams::protocol::{Publisher, Subscriber, Subscription};
use compaktor_streams::{Completion, Sink, Source, StreamError};
use rules::{until_subscribed, wait_for, Counting, CountingStats, Flag, Probe, WAIT};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::timeout;

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

    /// The sum of all requests so far.
    fn requested(&self) -> u64 {
        self.calls()
            .iter()
            .map(|c| match c {
                Call::Request(n) => *n,
                Call::Cancel => 0,
            })
            .sum()
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
    after_the_panic(&tx, &dropped, &terminal_after_panic).await;
}

/// After a subscriber panicked in `on_next`: upstream is cancelled, the
/// subscriber dropped, and no terminal signal reached it.
async fn after_the_panic(tx: &mpsc::Sender<u64>, dropped: &Flag, terminal_after_panic: &Flag) {
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
    after_the_panic(&tx, &dropped, &terminal_after_panic).await;
}

/// A sink that counts the elements that reach it.
fn counting_sink<T: Send + 'static>(delivered: &Arc<AtomicU64>) -> Sink<T, Completion<()>> {
    let delivered = Arc::clone(delivered);
    Sink::foreach(move |_element: T| {
        delivered.fetch_add(1, Ordering::SeqCst);
    })
}

#[tokio::test]
async fn rule_1_1_from_publisher_fails_and_cancels_a_publisher_that_signals_beyond_the_demand() {
    let manual = Manual::<Arc<()>>::new(AtOnce::Nothing);
    let delivered = Arc::new(AtomicU64::new(0));
    let done = Source::from_publisher(manual.clone()).run_with(counting_sink(&delivered));
    manual.wait_for_a_request().await;
    let requested = manual.requested();
    // Every element is a clone of `element`, so its count is what is held.
    // The stream does not run before the next await: nothing is consumed
    // meanwhile, and a queue for the excess would hold all of it.
    let element = Arc::new(());
    for _ in 0..requested + 1_000 {
        manual.next(Arc::clone(&element));
    }
    let held = Arc::strong_count(&element) - 1;
    assert!(
        held as u64 <= requested,
        "{held} elements held for {requested} requested: the excess was queued"
    );
    let outcome = timeout(WAIT, done).await.expect("the stream to fail");
    assert!(
        matches!(outcome, Err(StreamError::ProtocolViolation { rule: "1.1", .. })),
        "{outcome:?}"
    );
    assert_eq!(
        delivered.load(Ordering::SeqCst),
        requested,
        "what was requested still goes downstream, the excess does not"
    );
    let calls = manual.calls();
    assert_eq!(calls.last(), Some(&Call::Cancel), "cancelled, then nothing: {calls:?}");
    assert_eq!(calls.iter().filter(|c| **c == Call::Cancel).count(), 1, "{calls:?}");
}

/// A publisher that breaks rule 1.1 on purpose: from inside each
/// `request(n)` it signals `n + FLOOD_EXCESS` elements, all clones of one
/// `Arc`, so that the test can tell how many of them are held elsewhere.
struct Flooding {
    stats: Arc<FloodStats>,
}

const FLOOD_EXCESS: u64 = 10_000;

#[derive(Default)]
struct FloodStats {
    requested: AtomicU64,
    /// The most elements held at once outside the publisher.
    most_held: AtomicUsize,
    cancels: AtomicU64,
    requests_after_cancel: AtomicU64,
}

/// Where a [`Flooding`] publisher keeps its subscriber.
type FloodSlot = Arc<Mutex<Option<Box<dyn Subscriber<Arc<()>>>>>>;

struct FloodingSubscription {
    subscriber: FloodSlot,
    element: Arc<()>,
    stats: Arc<FloodStats>,
}

impl Subscription for FloodingSubscription {
    fn request(&mut self, n: u64) {
        if self.stats.cancels.load(Ordering::SeqCst) > 0 {
            self.stats.requests_after_cancel.fetch_add(1, Ordering::SeqCst);
            return;
        }
        self.stats.requested.fetch_add(n, Ordering::SeqCst);
        let mut slot = self.subscriber.lock().unwrap();
        let Some(subscriber) = slot.as_deref_mut() else {
            return;
        };
        for _ in 0..n.saturating_add(FLOOD_EXCESS) {
            subscriber.on_next(Arc::clone(&self.element));
            let held = Arc::strong_count(&self.element) - 1;
            self.stats.most_held.fetch_max(held, Ordering::SeqCst);
        }
    }

    fn cancel(&mut self) {
        self.stats.cancels.fetch_add(1, Ordering::SeqCst);
        // Rule 3.13: let go of the subscriber. A cancel from inside on_next
        // finds the slot locked by `request`, and must not wait for it.
        if let Ok(mut slot) = self.subscriber.try_lock() {
            slot.take();
        }
    }
}

impl Publisher<Arc<()>> for Flooding {
    fn subscribe(&self, mut subscriber: Box<dyn Subscriber<Arc<()>>>) {
        let slot: FloodSlot = Arc::default();
        subscriber.on_subscribe(Box::new(FloodingSubscription {
            subscriber: Arc::clone(&slot),
            element: Arc::new(()),
            stats: Arc::clone(&self.stats),
        }));
        *slot.lock().unwrap() = Some(subscriber);
    }
}

#[tokio::test]
async fn rule_1_1_from_publisher_drops_what_a_publisher_floods_from_inside_request() {
    let stats = Arc::new(FloodStats::default());
    let delivered = Arc::new(AtomicU64::new(0));
    let done = Source::from_publisher(Flooding {
        stats: Arc::clone(&stats),
    })
    .run_with(counting_sink(&delivered));
    let outcome = timeout(WAIT, done).await.expect("the stream to fail");
    assert!(
        matches!(outcome, Err(StreamError::ProtocolViolation { rule: "1.1", .. })),
        "{outcome:?}"
    );
    let requested = stats.requested.load(Ordering::SeqCst);
    assert!(requested > 0, "demand was signalled");
    // The flood runs inside `request`, on the stream's own task, so nothing
    // is consumed while it lasts: whatever was held was queued.
    let most_held = stats.most_held.load(Ordering::SeqCst);
    assert!(
        most_held as u64 <= requested,
        "{most_held} elements held at once for {requested} requested: the excess was queued"
    );
    assert!(delivered.load(Ordering::SeqCst) <= requested);
    assert_eq!(
        stats.cancels.load(Ordering::SeqCst),
        1,
        "the subscription is cancelled once"
    );
    assert_eq!(stats.requests_after_cancel.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn rule_2_2_from_publisher_takes_elements_without_waiting_for_downstream() {
    // This crate's subscriber only queues an element and wakes the stream,
    // which processes it on its own task: a downstream that has asked for
    // nothing does not hold up the publisher's thread.
    let manual = Manual::<u64>::new(AtOnce::Nothing);
    let probe = Probe::new();
    let done = Source::from_publisher(manual.clone()).run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
    manual.wait_for_a_request().await;
    let requested = manual.requested();
    let (returned_tx, returned) = oneshot::channel();
    let publisher = manual.clone();
    // A plain thread: if on_next blocked, the test fails at the deadline
    // instead of blocking the runtime.
    std::thread::spawn(move || {
        for n in 0..requested {
            publisher.next(n);
        }
        let _ = returned_tx.send(());
    });
    timeout(WAIT, returned)
        .await
        .expect("on_next to return while downstream asked for nothing")
        .expect("the publishing thread to report");
    assert!(probe.nexts().is_empty(), "nothing went downstream before it asked");
    let all = usize::try_from(requested).unwrap();
    probe.request(requested);
    probe.wait_for_nexts(all).await;
    assert_eq!(probe.nexts(), (0..requested).collect::<Vec<_>>());
    probe.cancel();
    timeout(WAIT, done)
        .await
        .expect("the stream to stop")
        .expect("cancel is not a failure");
    probe.assert_well_formed();
}

/// A publisher that signals from a thread of its own: as many elements as
/// were requested, each a vector built on that thread, and `on_complete`
/// right after the last one.
struct Threaded {
    elements: u64,
}

/// How long each of [`Threaded`]'s elements is.
const THREADED_WIDTH: u64 = 64;

fn threaded_element(n: u64) -> Vec<u64> {
    (n * THREADED_WIDTH..(n + 1) * THREADED_WIDTH).collect()
}

struct ThreadedSubscription(std::sync::mpsc::Sender<Call>);

impl Subscription for ThreadedSubscription {
    fn request(&mut self, n: u64) {
        let _ = self.0.send(Call::Request(n));
    }

    fn cancel(&mut self) {
        let _ = self.0.send(Call::Cancel);
    }
}

impl Publisher<Vec<u64>> for Threaded {
    fn subscribe(&self, mut subscriber: Box<dyn Subscriber<Vec<u64>>>) {
        let elements = self.elements;
        let (calls, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            subscriber.on_subscribe(Box::new(ThreadedSubscription(calls)));
            let (mut next, mut demand) = (0, 0u64);
            while next < elements {
                match received.recv() {
                    Ok(Call::Request(n)) => demand = demand.saturating_add(n),
                    Ok(Call::Cancel) | Err(_) => return,
                }
                while demand > 0 && next < elements {
                    subscriber.on_next(threaded_element(next));
                    next += 1;
                    demand -= 1;
                }
            }
            subscriber.on_complete();
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_2_11_signals_from_another_thread_are_processed_whole_and_in_order() {
    // Rust rules out the data race itself: elements must be `Send` and the
    // subscriber hands them over under a lock. What is left to check is
    // that each signal is processed after it was made, in the order made:
    // every element arrives whole, and an on_complete sent right after the
    // last on_next does not overtake any element.
    const ELEMENTS: u64 = 1_000;
    for round in 0..20 {
        let all = Source::from_publisher(Threaded { elements: ELEMENTS }).run_with(Sink::collect());
        let all = timeout(WAIT, all)
            .await
            .unwrap_or_else(|_| panic!("round {round}: the stream to complete"))
            .expect("completed");
        assert_eq!(all.len(), usize::try_from(ELEMENTS).unwrap(), "round {round}");
        for (n, element) in (0..ELEMENTS).zip(&all) {
            assert_eq!(*element, threaded_element(n), "round {round}: element {n}");
        }
    }
}
