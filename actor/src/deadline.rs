//! Ask deadlines: one sweeper task per system instead of a timer per ask.
//!
//! A tokio timer per ask costs a read of the clock and a lock on the timer
//! wheel to register it, and another lock to cancel it, while almost every
//! ask is answered long before its deadline. Instead the system keeps an
//! epoch that a sweeper task advances every [`TICK`] while asks are
//! pending. An ask records the epoch at which it expires: registering reads
//! no clock. Asks with the same timeout expire in the order they were made,
//! so each timeout gets a FIFO queue: registering pushes at the back and
//! trims finished asks from both ends, so the queue of a steady
//! request–reply stream stays a few entries long. The price is precision:
//! an ask times out between its timeout and one tick later, as with Akka's
//! scheduler. The sweeper exits when nothing is left to watch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::spin::SpinLock;

/// How often the sweeper looks, and so how late an ask may time out.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Something that waits for an answer until a deadline.
pub(crate) trait Expire: Send + Sync {
    /// The deadline has passed: the waiter gives up with a timeout.
    fn expire(&self);
}

type Entry = (u64, Weak<dyn Expire>);

/// The pending deadlines, one FIFO queue per timeout, each entry with the
/// epoch at which it expires. Plain data: the caller supplies the epoch.
#[derive(Default)]
pub(crate) struct DeadlineQueues {
    queues: BTreeMap<Duration, VecDeque<Entry>>,
}

fn finished(entry: &Entry) -> bool {
    entry.1.strong_count() == 0
}

/// The ticks after which an ask made during epoch `e` may expire: the
/// epoch may be nearly over, so one more than the timeout needs.
pub(crate) fn ticks_for(timeout: Duration) -> u64 {
    let tick = TICK.as_nanos();
    // In u64 when it fits (under 584 years): a u128 division is a libcall
    // that costs about as much as the rest of the registration.
    let ticks = match u64::try_from(timeout.as_nanos()) {
        Ok(nanos) => u128::from(nanos.div_ceil(tick as u64)),
        Err(_) => timeout.as_nanos().div_ceil(tick),
    };
    u64::try_from(ticks).unwrap_or(u64::MAX / 2).saturating_add(1)
}

impl DeadlineQueues {
    pub(crate) fn register(&mut self, timeout: Duration, expires_at: u64, waiter: Weak<dyn Expire>) {
        let queue = self.queues.entry(timeout).or_default();
        while queue.front().is_some_and(finished) {
            queue.pop_front();
        }
        while queue.back().is_some_and(finished) {
            queue.pop_back();
        }
        queue.push_back((expires_at, waiter));
    }

    /// Takes the waiters due at `epoch` and forgets finished ones; returns
    /// them, and whether anything is still pending.
    pub(crate) fn take_due(&mut self, epoch: u64) -> (Vec<Arc<dyn Expire>>, bool) {
        let mut due = Vec::new();
        self.queues.retain(|_, queue| {
            while let Some((expires_at, waiter)) = queue.front() {
                if *expires_at <= epoch {
                    due.extend(waiter.upgrade());
                } else if !finished(&queue[0]) {
                    break;
                }
                queue.pop_front();
            }
            !queue.is_empty()
        });
        let pending = !self.queues.is_empty();
        (due, pending)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
}

/// A system's ask deadlines and the task that enforces them.
pub(crate) struct AskDeadlines {
    /// Taken once per ask, briefly: a spin lock's unlock is a plain store.
    state: SpinLock<SweeperState>,
    /// Ticks of the sweeper so far; only the sweeper advances it.
    epoch: AtomicU64,
    runtime: Handle,
}

struct SweeperState {
    queues: DeadlineQueues,
    sweeping: bool,
}

impl AskDeadlines {
    pub(crate) fn new(runtime: Handle) -> Arc<Self> {
        Arc::new(AskDeadlines {
            state: SpinLock::new(SweeperState {
                queues: DeadlineQueues::default(),
                sweeping: false,
            }),
            epoch: AtomicU64::new(0),
            runtime,
        })
    }

    /// Expires `waiter` after `timeout` (at most one tick later), unless it
    /// has finished by then.
    pub(crate) fn register(self: &Arc<Self>, timeout: Duration, waiter: Weak<dyn Expire>) {
        let expires_at = self.epoch.load(Ordering::Acquire) + ticks_for(timeout);
        let mut state = self.state.lock();
        state.queues.register(timeout, expires_at, waiter);
        if !state.sweeping {
            // The epoch stood still while no sweeper ran: it starts now.
            state.sweeping = true;
            drop(state);
            self.runtime.spawn(self.clone().sweep());
        }
    }

    async fn sweep(self: Arc<Self>) {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
            let mut state = self.state.lock();
            let (due, pending) = state.queues.take_due(epoch);
            state.sweeping = pending;
            drop(state);
            for waiter in due {
                waiter.expire();
            }
            if !pending {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[derive(Default)]
    struct Waiter(AtomicBool);

    impl Waiter {
        fn expired(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

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
    fn an_ask_never_expires_before_its_timeout() {
        assert_eq!(ticks_for(Duration::ZERO), 1);
        assert_eq!(ticks_for(TICK), 2);
        assert_eq!(ticks_for(TICK + Duration::from_nanos(1)), 3);
        assert!(ticks_for(Duration::MAX) > 1_000_000);
    }

    #[test]
    fn finished_asks_are_trimmed_as_new_ones_arrive() {
        let mut queues = DeadlineQueues::default();
        for epoch in 0..1_000 {
            let waiter = Arc::new(Waiter::default());
            queues.register(Duration::from_secs(5), epoch + 500, weak(&waiter));
            drop(waiter);
        }
        assert!(queues.len() <= 1, "{} entries kept for finished asks", queues.len());
    }

    #[test]
    fn only_due_waiters_expire() {
        let mut queues = DeadlineQueues::default();
        let short = Arc::new(Waiter::default());
        let long = Arc::new(Waiter::default());
        queues.register(Duration::from_secs(1), 10, weak(&short));
        queues.register(Duration::from_secs(3), 30, weak(&long));

        let (due, pending) = queues.take_due(9);
        assert!(due.is_empty());
        assert!(pending);

        let (due, pending) = queues.take_due(10);
        assert_eq!(due.len(), 1);
        due[0].expire();
        assert!(short.expired());
        assert!(!long.expired());
        assert!(pending);

        drop(long);
        let (due, pending) = queues.take_due(11);
        assert!(due.is_empty());
        assert!(!pending, "a finished ask keeps nothing pending");
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_expires_within_a_tick_after_the_timeout_and_then_exits() {
        let deadlines = AskDeadlines::new(Handle::current());
        let waiter = Arc::new(Waiter::default());
        let start = tokio::time::Instant::now();
        deadlines.register(Duration::from_secs(2), weak(&waiter));
        while !waiter.expired() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(2), "expired early, after {waited:?}");
        assert!(
            waited <= Duration::from_secs(2) + 2 * TICK,
            "expired late, after {waited:?}"
        );
        tokio::time::sleep(2 * TICK).await;
        assert!(!deadlines.state.lock().sweeping, "the sweeper outlived the last ask");
    }
}
