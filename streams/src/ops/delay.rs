//! `delay`: hold each element for a fixed time after it arrives.

use std::collections::VecDeque;
use std::task::Context;
use std::time::Duration;

use tokio::time::Instant;

use crate::stage::{Outlet, Stage};

/// Elements with the time each may leave, oldest first; time is an input.
#[derive(Debug)]
pub(crate) struct DelayQueue<T> {
    by: Duration,
    capacity: usize,
    queue: VecDeque<(Instant, T)>,
}

impl<T> DelayQueue<T> {
    pub(crate) fn new(by: Duration, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        DelayQueue {
            by,
            capacity,
            queue: VecDeque::with_capacity(capacity),
        }
    }

    /// Whether another element fits.
    pub(crate) fn has_room(&self) -> bool {
        self.queue.len() < self.capacity
    }

    /// An element arrived at `now`; it may leave at `now + by`.
    pub(crate) fn push(&mut self, now: Instant, element: T) {
        self.queue.push_back((now + self.by, element));
    }

    /// The oldest element, if its time has come at `now`.
    #[must_use]
    pub(crate) fn poll_due(&mut self, now: Instant) -> Option<T> {
        match self.queue.front() {
            Some((due, _)) if *due <= now => self.queue.pop_front().map(|(_, element)| element),
            _ => None,
        }
    }

    /// When the oldest element may leave.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Pulls ahead of demand into a [`DelayQueue`] and backpressures when it is full.
pub(crate) struct Delay<T> {
    queue: DelayQueue<T>,
    upstream_done: bool,
}

/// The timer that wakes the stage when the oldest element is due.
const OLDEST_DUE: u64 = 0;

impl<T> Delay<T> {
    pub(crate) fn new(by: Duration, capacity: usize) -> Self {
        Delay {
            queue: DelayQueue::new(by, capacity),
            upstream_done: false,
        }
    }
}

impl<T: Send + 'static> Stage for Delay<T> {
    type In = T;
    type Out = T;

    fn name(&self) -> &'static str {
        "delay"
    }

    fn should_pull(&self, _downstream_waiting: bool) -> bool {
        self.queue.has_room()
    }

    fn on_push(&mut self, element: T, _out: &mut Outlet<T>) {
        self.queue.push(Instant::now(), element);
    }

    fn on_upstream_finish(&mut self, _out: &mut Outlet<T>) {
        self.upstream_done = true;
    }

    // Runs after each timer and each pull: hands on what is due when
    // downstream waits, and sets the timer for what is not due yet.
    fn on_poll(&mut self, _cx: &mut Context<'_>, out: &mut Outlet<T>) {
        let now = Instant::now();
        if out.is_pulled() && out.is_empty() {
            if let Some(element) = self.queue.poll_due(now) {
                out.push(element);
            }
        }
        if self.upstream_done && self.queue.len() == 0 {
            out.complete();
            return;
        }
        // Due but not taken: downstream's next pull hands it on, no timer needed.
        match self.queue.next_due() {
            Some(due) if due > now && !out.timers().is_active(OLDEST_DUE) => {
                out.timers().schedule_once(OLDEST_DUE, due - now);
            }
            _ => {}
        }
    }

    fn buffered(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn an_element_leaves_when_its_own_delay_has_passed() {
        let t0 = Instant::now();
        let mut q = DelayQueue::new(100 * MS, 4);
        q.push(t0, 'a');
        q.push(t0 + 30 * MS, 'b');
        assert_eq!(q.poll_due(t0 + 99 * MS), None);
        assert_eq!(q.poll_due(t0 + 100 * MS), Some('a'));
        assert_eq!(q.next_due(), Some(t0 + 130 * MS));
        assert_eq!(q.poll_due(t0 + 129 * MS), None);
        assert_eq!(q.poll_due(t0 + 500 * MS), Some('b'));
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn the_queue_is_bounded() {
        let t0 = Instant::now();
        let mut q = DelayQueue::new(MS, 0);
        assert!(q.has_room(), "a zero capacity counts as 1");
        q.push(t0, 1);
        assert!(!q.has_room());
    }
}
