//! Ask deadlines: one sweeper task per system instead of a timer per ask.
//!
//! A tokio timer per ask costs a lock on the timer wheel to register it and
//! another to cancel it, and almost every ask is answered long before its
//! deadline. Asks made with the same timeout expire in the order they were
//! made, so each timeout value gets a FIFO queue: registering pushes at the
//! back and trims entries of finished asks from both ends, so the queue of a
//! steady request–reply stream stays a few entries long. One task per
//! system sleeps until the earliest deadline, expires what is due, and
//! exits when nothing is left to watch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::mailbox::lock;

/// Something that waits for an answer until a deadline.
pub(crate) trait Expire: Send + Sync {
    /// The deadline has passed: the waiter gives up with a timeout.
    fn expire(&self);
}

type Entry = (Instant, Weak<dyn Expire>);

/// The pending deadlines, one FIFO queue per timeout value. Plain data:
/// the caller supplies the time.
#[derive(Default)]
pub(crate) struct DeadlineQueues {
    queues: BTreeMap<Duration, VecDeque<Entry>>,
}

fn finished(entry: &Entry) -> bool {
    entry.1.strong_count() == 0
}

impl DeadlineQueues {
    pub(crate) fn register(&mut self, timeout: Duration, deadline: Instant, waiter: Weak<dyn Expire>) {
        let queue = self.queues.entry(timeout).or_default();
        while queue.front().is_some_and(finished) {
            queue.pop_front();
        }
        while queue.back().is_some_and(finished) {
            queue.pop_back();
        }
        queue.push_back((deadline, waiter));
    }

    /// Takes the waiters due at `now` and forgets finished ones; returns
    /// them with the next deadline, `None` once nothing is pending.
    pub(crate) fn take_due(&mut self, now: Instant) -> (Vec<Arc<dyn Expire>>, Option<Instant>) {
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        self.queues.retain(|_, queue| {
            while let Some((deadline, waiter)) = queue.front() {
                if *deadline <= now {
                    due.extend(waiter.upgrade());
                } else if !finished(&queue[0]) {
                    next = Some(next.map_or(*deadline, |n| n.min(*deadline)));
                    break;
                }
                queue.pop_front();
            }
            !queue.is_empty()
        });
        (due, next)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
}

/// A system's ask deadlines and the task that enforces them.
pub(crate) struct AskDeadlines {
    state: Mutex<SweeperState>,
    wake: Notify,
    runtime: Handle,
}

struct SweeperState {
    queues: DeadlineQueues,
    /// When the sweeper looks next; `None` while no sweeper runs.
    wake_at: Option<Instant>,
}

/// Far enough to mean "never" without overflowing `Instant`.
const FOREVER: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

impl AskDeadlines {
    pub(crate) fn new(runtime: Handle) -> Arc<Self> {
        Arc::new(AskDeadlines {
            state: Mutex::new(SweeperState {
                queues: DeadlineQueues::default(),
                wake_at: None,
            }),
            wake: Notify::new(),
            runtime,
        })
    }

    /// Expires `waiter` after `timeout`, unless it has finished by then.
    pub(crate) fn register(self: &Arc<Self>, timeout: Duration, waiter: Weak<dyn Expire>) {
        let now = Instant::now();
        let deadline = now.checked_add(timeout.min(FOREVER)).unwrap_or(now + FOREVER);
        let mut state = lock(&self.state);
        state.queues.register(timeout, deadline, waiter);
        match state.wake_at {
            None => {
                state.wake_at = Some(deadline);
                drop(state);
                self.runtime.spawn(self.clone().sweep());
            }
            Some(at) if deadline < at => {
                state.wake_at = Some(deadline);
                drop(state);
                self.wake.notify_one();
            }
            Some(_) => {}
        }
    }

    async fn sweep(self: Arc<Self>) {
        loop {
            let Some(at) = lock(&self.state).wake_at else { return };
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = self.wake.notified() => {}
            }
            let mut state = lock(&self.state);
            let (due, next) = state.queues.take_due(Instant::now());
            state.wake_at = next;
            drop(state);
            for waiter in due {
                waiter.expire();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default)]
    struct Waiter(AtomicBool);

    impl Expire for Waiter {
        fn expire(&self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    fn weak(waiter: &Arc<Waiter>) -> Weak<dyn Expire> {
        let waiter: Arc<dyn Expire> = waiter.clone();
        Arc::downgrade(&waiter)
    }

    #[test]
    fn finished_asks_are_trimmed_as_new_ones_arrive() {
        let mut queues = DeadlineQueues::default();
        let start = Instant::now();
        for i in 0..1_000 {
            let waiter = Arc::new(Waiter::default());
            queues.register(Duration::from_secs(5), start + Duration::from_millis(i), weak(&waiter));
            drop(waiter);
        }
        assert!(queues.len() <= 1, "{} entries kept for finished asks", queues.len());
    }

    #[test]
    fn only_due_waiters_expire_and_the_next_deadline_is_reported() {
        let mut queues = DeadlineQueues::default();
        let start = Instant::now();
        let short = Arc::new(Waiter::default());
        let long = Arc::new(Waiter::default());
        queues.register(Duration::from_secs(1), start + Duration::from_secs(1), weak(&short));
        queues.register(Duration::from_secs(3), start + Duration::from_secs(3), weak(&long));

        let (due, next) = queues.take_due(start + Duration::from_millis(500));
        assert!(due.is_empty());
        assert_eq!(next, Some(start + Duration::from_secs(1)));

        let (due, next) = queues.take_due(start + Duration::from_secs(2));
        assert_eq!(due.len(), 1);
        due[0].expire();
        assert!(short.0.load(Ordering::Relaxed));
        assert!(!long.0.load(Ordering::Relaxed));
        assert_eq!(next, Some(start + Duration::from_secs(3)));

        drop(long);
        let (due, next) = queues.take_due(start + Duration::from_secs(2));
        assert!(due.is_empty());
        assert_eq!(next, None, "a finished ask keeps nothing pending");
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_expires_at_the_deadline_and_then_exits() {
        let deadlines = AskDeadlines::new(Handle::current());
        let waiter = Arc::new(Waiter::default());
        deadlines.register(Duration::from_secs(2), weak(&waiter));
        tokio::time::sleep(Duration::from_millis(1_999)).await;
        assert!(!waiter.0.load(Ordering::Relaxed), "expired early");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(waiter.0.load(Ordering::Relaxed), "not expired at the deadline");
        tokio::task::yield_now().await;
        assert!(lock(&deadlines.state).wake_at.is_none(), "sweeper still scheduled");
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_wakes_a_sleeping_sweeper() {
        let deadlines = AskDeadlines::new(Handle::current());
        let slow = Arc::new(Waiter::default());
        let quick = Arc::new(Waiter::default());
        deadlines.register(Duration::from_secs(60), weak(&slow));
        tokio::task::yield_now().await;
        deadlines.register(Duration::from_secs(1), weak(&quick));
        tokio::time::sleep(Duration::from_millis(1_001)).await;
        assert!(
            quick.0.load(Ordering::Relaxed),
            "the earlier deadline waited for the later one"
        );
        assert!(!slow.0.load(Ordering::Relaxed));
    }
}
