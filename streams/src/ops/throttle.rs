//! `throttle`: at most so many elements per period, with a burst allowance.

use std::task::Context;
use std::time::Duration;

use tokio::time::Instant;

use crate::stage::{Outlet, Stage};
use crate::tunable::{ThrottleRate, Tuned};

/// A token bucket with time as an input: one token every `interval`, at
/// most `capacity` saved up, full at the start (Akka's shaping throttle).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    capacity: u64,
    interval: Duration,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(now: Instant, capacity: u64, interval: Duration) -> Self {
        let capacity = capacity.max(1);
        TokenBucket {
            capacity,
            interval,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes a token for one element at `now`: `None` to send it now, or how
    /// long to wait before asking again.
    #[must_use]
    pub(crate) fn offer(&mut self, now: Instant) -> Option<Duration> {
        self.refill(now);
        if self.tokens > 0 {
            self.tokens -= 1;
            return None;
        }
        Some(self.interval.saturating_sub(now.saturating_duration_since(self.last)))
    }

    fn refill(&mut self, now: Instant) {
        let interval = self.interval.as_nanos();
        if interval == 0 {
            self.tokens = self.capacity;
            self.last = now;
            return;
        }
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        let new = elapsed / interval;
        if new == 0 {
            return;
        }
        let room = u128::from(self.capacity - self.tokens);
        if new >= room {
            self.tokens = self.capacity;
            self.last = now;
        } else {
            // `new < room <= u64::MAX`, and `new * interval <= elapsed` fits a Duration.
            self.tokens += new as u64;
            self.last += Duration::from_nanos((new * interval) as u64);
        }
    }
}

pub(crate) struct Throttle<T> {
    elements: u32,
    per: Duration,
    burst: u32,
    bucket: Option<TokenBucket>,
    /// An element waiting for a token, with the [`RETRY`] timer set.
    pending: Option<T>,
    upstream_done: bool,
    /// Where the rate comes from, when it can change while running.
    tuning: Option<Tuned<ThrottleRate>>,
}

impl<T> Throttle<T> {
    pub(crate) fn new(elements: u32, per: Duration, burst: u32) -> Self {
        Throttle {
            elements: elements.max(1),
            per,
            burst,
            bucket: None,
            pending: None,
            upstream_done: false,
            tuning: None,
        }
    }

    /// A throttle whose rate follows `tuning`.
    pub(crate) fn tuned(mut tuning: Tuned<ThrottleRate>) -> Self {
        let rate = *tuning.current();
        let mut throttle = Throttle::new(rate.elements, rate.per, rate.burst);
        throttle.tuning = Some(tuning);
        throttle
    }

    /// Takes a new rate, if one was set: the bucket keeps the tokens it
    /// has (up to the new burst) and its clock. `true` if the rate changed.
    fn retune(&mut self) -> bool {
        let Some(tuning) = self.tuning.as_mut() else {
            return false;
        };
        if !tuning.refresh() {
            return false;
        }
        let rate = *tuning.current();
        self.elements = rate.elements.max(1);
        self.per = rate.per;
        self.burst = rate.burst;
        if let Some(old) = self.bucket.take() {
            let mut bucket = TokenBucket::new(old.last, self.burst.into(), self.per / self.elements);
            bucket.tokens = old.tokens.min(bucket.capacity);
            self.bucket = Some(bucket);
        }
        true
    }

    fn bucket(&mut self, now: Instant) -> &mut TokenBucket {
        let (burst, interval) = (u64::from(self.burst), self.per / self.elements);
        self.bucket
            .get_or_insert_with(|| TokenBucket::new(now, burst, interval))
    }

    /// Sends `element` if a token is free, else holds it until one is.
    fn offer(&mut self, element: T, out: &mut Outlet<T>) {
        let now = Instant::now();
        match self.bucket(now).offer(now) {
            None => {
                out.push(element);
                if self.upstream_done {
                    out.complete();
                }
            }
            Some(wait) => {
                self.pending = Some(element);
                out.timers().schedule_once(RETRY, wait);
            }
        }
    }
}

/// The timer of an element waiting for a token.
const RETRY: u64 = 0;

impl<T: Send + 'static> Stage for Throttle<T> {
    type In = T;
    type Out = T;

    fn name(&self) -> &'static str {
        "throttle"
    }

    fn should_pull(&self, downstream_waiting: bool) -> bool {
        downstream_waiting && self.pending.is_none()
    }

    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        self.retune();
        self.offer(element, out);
    }

    fn on_upstream_finish(&mut self, out: &mut Outlet<T>) {
        self.upstream_done = true;
        if self.pending.is_none() {
            out.complete();
        }
    }

    fn on_timer(&mut self, _key: u64, out: &mut Outlet<T>) {
        if let Some(element) = self.pending.take() {
            self.offer(element, out);
        }
    }

    fn on_poll(&mut self, cx: &mut Context<'_>, out: &mut Outlet<T>) {
        if self.pending.is_none() {
            return;
        }
        if let Some(tuning) = &self.tuning {
            // A new rate should not wait for the end of the old wait.
            tuning.wake_on_change(cx.waker());
        }
        if self.retune() {
            if let Some(element) = self.pending.take() {
                self.offer(element, out);
            }
        }
    }

    fn buffered(&self) -> usize {
        usize::from(self.pending.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_paces() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 3, 100 * MS);
        assert_eq!(bucket.offer(t0), None);
        assert_eq!(bucket.offer(t0), None);
        assert_eq!(bucket.offer(t0), None);
        assert_eq!(bucket.offer(t0), Some(100 * MS));
        assert_eq!(bucket.offer(t0 + 40 * MS), Some(60 * MS));
        assert_eq!(bucket.offer(t0 + 100 * MS), None);
        assert_eq!(bucket.offer(t0 + 100 * MS), Some(100 * MS));
    }

    #[test]
    fn saved_tokens_never_exceed_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 2, 10 * MS);
        assert_eq!(bucket.offer(t0), None);
        assert_eq!(bucket.offer(t0), None);
        let later = t0 + 10_000 * MS;
        assert_eq!(bucket.offer(later), None);
        assert_eq!(bucket.offer(later), None);
        assert_eq!(bucket.offer(later), Some(10 * MS));
    }

    #[test]
    fn partial_intervals_carry_over() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 1, 10 * MS);
        assert_eq!(bucket.offer(t0), None);
        // 25 ms later: two tokens earned but only one fits; the rest of the clock restarts.
        assert_eq!(bucket.offer(t0 + 25 * MS), None);
        assert_eq!(bucket.offer(t0 + 29 * MS), Some(6 * MS));
    }

    #[test]
    fn a_zero_interval_never_waits() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 1, Duration::ZERO);
        for _ in 0..10 {
            assert_eq!(bucket.offer(t0), None);
        }
    }
}
