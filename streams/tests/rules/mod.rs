//! Helpers shared by the Reactive Streams rule suites (`rules_publisher`,
//! `rules_subscriber`, `rules_subscription`): deadlines and waiting, a
//! `Flag`, the steerable subscriber `Probe`, and `Counting`, a synchronous
//! publisher that signals from inside `request`.

#![allow(dead_code)] // each test file uses its own part of this.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use compaktor_streams::protocol::{Publisher, Subscriber, Subscription};
use compaktor_streams::{Sink, Source, StreamError};
use tokio::sync::Notify;
use tokio::time::timeout;

pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// Waits, with a deadline, until `done` holds; `changed` is notified
/// (`notify_waiters`) whenever what `done` looks at changes. Panics with
/// `what` and the `state` it saw when the deadline passes.
pub(crate) async fn wait_for(what: &str, changed: &Notify, done: impl Fn() -> bool, state: impl Fn() -> String) {
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
pub(crate) struct Flag {
    raised: AtomicBool,
    changed: Notify,
}

impl Flag {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Flag::default())
    }

    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait(&self, what: &str) {
        wait_for(what, &self.changed, || self.is_raised(), || "not raised".to_owned()).await;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Signal {
    Subscribe,
    Next(u64),
    Error(String),
    Complete,
}

/// A subscriber the test steers: it records every signal and checks, at
/// each `on_next`, that no more elements arrived than were requested.
#[derive(Default)]
pub(crate) struct Probe {
    signals: Mutex<Vec<Signal>>,
    pub(crate) subscription: Mutex<Option<Box<dyn Subscription>>>,
    changed: Notify,
    pub(crate) requested: AtomicU64,
    delivered: AtomicU64,
    over_delivered: AtomicBool,
    pub(crate) request_one_per_next: AtomicBool,
    /// How many of this probe's `ProbeSubscriber`s have been dropped.
    subscribers_dropped: AtomicU64,
}

impl Probe {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Probe::default())
    }

    pub(crate) fn subscriber(self: &Arc<Self>) -> ProbeSubscriber {
        ProbeSubscriber {
            probe: Arc::clone(self),
            _marker: None,
        }
    }

    fn record(&self, signal: Signal) {
        self.signals.lock().unwrap().push(signal);
        self.changed.notify_waiters();
    }

    pub(crate) fn signals(&self) -> Vec<Signal> {
        self.signals.lock().unwrap().clone()
    }

    pub(crate) fn nexts(&self) -> Vec<u64> {
        self.signals()
            .into_iter()
            .filter_map(|s| match s {
                Signal::Next(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn request(&self, n: u64) {
        self.requested.fetch_add(n, Ordering::SeqCst);
        self.subscription
            .lock()
            .unwrap()
            .as_mut()
            .expect("subscribed before request")
            .request(n);
    }

    pub(crate) fn cancel(&self) {
        self.subscription
            .lock()
            .unwrap()
            .as_mut()
            .expect("subscribed before cancel")
            .cancel();
    }

    pub(crate) async fn wait_until(&self, what: &str, done: impl Fn(&[Signal]) -> bool) {
        wait_for(
            what,
            &self.changed,
            || done(&self.signals()),
            || format!("{:?}", self.signals()),
        )
        .await;
    }

    /// Waits until the publisher has dropped `n` of this probe's subscribers.
    pub(crate) async fn wait_for_dropped(&self, what: &str, n: u64) {
        wait_for(
            what,
            &self.changed,
            || self.subscribers_dropped.load(Ordering::SeqCst) >= n,
            || format!("{:?}", self.signals()),
        )
        .await;
    }

    /// Calls the subscription directly, bypassing the `requested` count.
    pub(crate) fn with_subscription(&self, f: impl FnOnce(&mut dyn Subscription)) {
        f(self.subscription.lock().unwrap().as_deref_mut().expect("subscribed"));
    }

    pub(crate) async fn wait_for_nexts(&self, n: usize) {
        self.wait_until(&format!("{n} on_next signals"), |s| {
            s.iter().filter(|x| matches!(x, Signal::Next(_))).count() >= n
        })
        .await;
    }

    pub(crate) async fn wait_for_terminal(&self) {
        self.wait_until("a terminal signal", |s| s.iter().any(is_terminal))
            .await;
    }

    pub(crate) fn assert_well_formed(&self) {
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

pub(crate) fn is_terminal(signal: &Signal) -> bool {
    matches!(signal, Signal::Error(_) | Signal::Complete)
}

pub(crate) struct ProbeSubscriber {
    pub(crate) probe: Arc<Probe>,
    pub(crate) _marker: Option<Arc<()>>,
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

pub(crate) fn publisher_of(n: u64) -> impl Publisher<u64> {
    Source::from_iter(0..n).run_with(Sink::publisher())
}

pub(crate) fn subscribed(publisher: &impl Publisher<u64>) -> Arc<Probe> {
    let probe = Probe::new();
    publisher.subscribe(Box::new(probe.subscriber()));
    probe
}

pub(crate) async fn until_subscribed(probe: &Probe) {
    probe
        .wait_until("on_subscribe", |s| s.contains(&Signal::Subscribe))
        .await;
}

/// A well-behaved synchronous publisher of `0..limit`: it delivers from
/// inside `request` (rules 3.10, 3.11), then completes, or fails when
/// `fail` is set. A `request` made while it is delivering only adds demand
/// (the trampoline keeps recursion bounded, rule 3.3), and it signals with
/// no lock held, so a subscriber calling back cannot deadlock it.
pub(crate) struct Counting {
    pub(crate) limit: u64,
    pub(crate) fail: bool,
    pub(crate) stats: Arc<CountingStats>,
}

#[derive(Default)]
pub(crate) struct CountingStats {
    pub(crate) max_requested: AtomicU64,
    /// `request` or `cancel` calls after the terminal signal was sent (or
    /// while it was being sent): rules 2.3 and 2.4 forbid them.
    pub(crate) calls_after_end: AtomicU64,
}

pub(crate) const COUNTING_FAILURE: &str = "counting publisher failed";

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
