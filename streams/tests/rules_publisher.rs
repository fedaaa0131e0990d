//! The Reactive Streams publisher rules (1.x), one test per rule (in the
//! spirit of the TCK), against this crate's publisher
//! ([`Sink::publisher`]) and its subscriber driver
//! ([`Sink::from_subscriber`]). A test that covers a subscriber rule too
//! (2.7, 2.12) lives here, with its first rule. Shared helpers are in
//! `rules/mod.rs`.

mod rules;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use compaktor_streams::protocol::{Publisher, Subscriber, Subscription};
use compaktor_streams::{Sink, Source, StreamError};
use rules::{is_terminal, publisher_of, subscribed, until_subscribed, Flag, Probe, Signal, WAIT};
use tokio::sync::mpsc;
use tokio::time::timeout;

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
