//! Timers for [`Stage`](crate::Stage)s: named wake-ups that call
//! [`on_timer`](crate::Stage::on_timer).
//!
//! [`TimerQueue`] is the bookkeeping with time as an input; [`Timers`]
//! adds the one tokio `Sleep` that wakes the stage's task at the earliest
//! deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy)]
struct Timer {
    key: u64,
    due: Instant,
    /// Fires again this long after each firing.
    every: Option<Duration>,
}

/// Scheduled timers by key; a stage has few, so a short list beats a heap.
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    timers: Vec<Timer>,
}

impl TimerQueue {
    /// Schedules `key` at `due`, replacing a timer of the same key.
    pub(crate) fn schedule(&mut self, key: u64, due: Instant, every: Option<Duration>) {
        self.cancel(key);
        self.timers.push(Timer { key, due, every });
    }

    pub(crate) fn cancel(&mut self, key: u64) -> bool {
        let before = self.timers.len();
        self.timers.retain(|timer| timer.key != key);
        self.timers.len() != before
    }

    pub(crate) fn is_active(&self, key: u64) -> bool {
        self.timers.iter().any(|timer| timer.key == key)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.timers.clear();
    }

    /// The earliest deadline.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.timers.iter().map(|timer| timer.due).min()
    }

    /// The key of a timer due at `now`, earliest first; a one-off timer is
    /// removed, a periodic one moves to `now + every` (a fixed delay: a
    /// stage that was not polled for a while gets one firing, not a burst).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let (index, timer) = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, timer)| timer.due <= now)
            .min_by_key(|(_, timer)| timer.due)?;
        let key = timer.key;
        match timer.every {
            Some(every) => self.timers[index].due = now + every,
            None => {
                self.timers.swap_remove(index);
            }
        }
        Some(key)
    }
}

/// The timers of one stage, reached through
/// [`Outlet::timers`](crate::Outlet::timers) from any handler.
///
/// A key is a number the stage chooses; scheduling a key that is already
/// scheduled replaces it. When a timer is due the runtime calls
/// [`Stage::on_timer`](crate::Stage::on_timer) with its key, then
/// [`on_poll`](crate::Stage::on_poll), whether or not downstream is
/// waiting; elements pushed then wait in the outlet for demand. Timers
/// follow tokio's clock (so `tokio::time::pause` drives them in tests), are
/// cancelled when the stage ends and when its decider restarts it.
///
/// ```
/// use std::time::Duration;
/// use compaktor_streams::{Flow, Outlet, Sink, Source, Stage};
///
/// /// Passes elements on, and says "tick" after each quiet spell of 50 ms.
/// struct Idle;
///
/// const QUIET: u64 = 0;
///
/// impl Stage for Idle {
///     type In = String;
///     type Out = String;
///     fn on_push(&mut self, element: String, out: &mut Outlet<String>) {
///         out.push(element);
///         out.timers().schedule_once(QUIET, Duration::from_millis(50));
///     }
///     fn on_timer(&mut self, _key: u64, out: &mut Outlet<String>) {
///         out.push("tick".to_string());
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// tokio::time::pause();
/// let (sender, all) = Source::channel(4)
///     .via(Flow::from_stage(Idle))
///     .to_mat(Sink::collect(), compaktor_streams::Keep::both)
///     .run();
/// sender.send("a".to_string()).await.unwrap();
/// sender.send("b".to_string()).await.unwrap();
/// tokio::time::sleep(Duration::from_millis(100)).await;
/// drop(sender);
/// assert_eq!(all.await?, ["a", "b", "tick"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Timers {
    queue: TimerQueue,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Timers {
    /// Calls [`on_timer`](crate::Stage::on_timer) with `key` once, after `delay`.
    pub fn schedule_once(&mut self, key: u64, delay: Duration) {
        self.queue.schedule(key, Instant::now() + delay, None);
    }

    /// Calls [`on_timer`](crate::Stage::on_timer) with `key` after `every`
    /// (at least 1 ms, tokio's resolution), then `every` after each call,
    /// until cancelled.
    pub fn schedule_periodically(&mut self, key: u64, every: Duration) {
        let every = every.max(Duration::from_millis(1));
        self.queue.schedule(key, Instant::now() + every, Some(every));
    }

    /// Cancels the timer `key`; `true` if it was scheduled.
    pub fn cancel(&mut self, key: u64) -> bool {
        self.queue.cancel(key)
    }

    /// Whether the timer `key` is scheduled (a one-off timer stops being
    /// so when it fires).
    pub fn is_active(&self, key: u64) -> bool {
        self.queue.is_active(key)
    }

    /// Whether no timer is scheduled.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.sleep = None;
    }

    /// The key of a timer that is due; otherwise the task is woken at the
    /// next deadline.
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Option<u64> {
        loop {
            let Some(due) = self.queue.next_due() else {
                self.sleep = None;
                return None;
            };
            if let Some(key) = self.queue.pop_due(Instant::now()) {
                return Some(key);
            }
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if sleep.deadline() != due {
                sleep.as_mut().reset(due);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return None;
            }
            // The sleep ended at `due` by tokio's clock: a timer is due now.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn timers_fire_in_deadline_order_and_one_offs_once() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.schedule(1, t0 + 20 * MS, None);
        q.schedule(2, t0 + 10 * MS, None);
        assert_eq!(q.pop_due(t0 + 5 * MS), None);
        assert_eq!(q.next_due(), Some(t0 + 10 * MS));
        assert_eq!(q.pop_due(t0 + 30 * MS), Some(2));
        assert_eq!(q.pop_due(t0 + 30 * MS), Some(1));
        assert_eq!(q.pop_due(t0 + 30 * MS), None);
        assert!(q.is_empty());
    }

    #[test]
    fn scheduling_a_key_again_replaces_it() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.schedule(7, t0 + 10 * MS, None);
        q.schedule(7, t0 + 50 * MS, None);
        assert_eq!(q.pop_due(t0 + 20 * MS), None, "the first deadline was replaced");
        assert_eq!(q.pop_due(t0 + 50 * MS), Some(7));
        assert!(!q.is_active(7));
    }

    #[test]
    fn a_periodic_timer_moves_on_from_when_it_fired() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        q.schedule(3, t0 + 10 * MS, Some(10 * MS));
        assert_eq!(q.pop_due(t0 + 10 * MS), Some(3));
        assert_eq!(q.next_due(), Some(t0 + 20 * MS));
        // Polled late: one firing, then the next a full period later.
        assert_eq!(q.pop_due(t0 + 95 * MS), Some(3));
        assert_eq!(q.pop_due(t0 + 95 * MS), None);
        assert_eq!(q.next_due(), Some(t0 + 105 * MS));
        assert!(q.cancel(3));
        assert!(!q.cancel(3));
        assert_eq!(q.next_due(), None);
    }
}
