//! The phi-accrual failure detector (Hayashibara et al.), as Akka uses it:
//! instead of a yes/no timeout it gives a suspicion level, phi, that grows
//! the longer a heartbeat is overdue compared with the intervals seen so far.
//!
//! Plain state, no clock of its own: callers pass the time in, so tests
//! drive it without waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How suspicious a peer must look, and how much pause is normal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhiSettings {
    /// Phi above which the peer counts as unreachable. Akka's default is
    /// 8: the chance of a wrong verdict is about 10⁻⁸.
    pub(crate) threshold: f64,
    /// Intervals remembered.
    pub(crate) max_samples: usize,
    /// A floor for the spread of intervals, so a perfectly regular
    /// heartbeat does not make the smallest delay look fatal.
    pub(crate) min_std_dev: Duration,
    /// A pause added to the mean interval that is never suspicious
    /// (garbage-free Rust still has busy runtimes and slow schedulers).
    pub(crate) acceptable_pause: Duration,
    /// The interval assumed before two heartbeats have been seen.
    pub(crate) first_interval: Duration,
}

/// Suspicion of one peer, fed with the arrival times of its heartbeats.
#[derive(Debug)]
pub(crate) struct PhiDetector {
    settings: PhiSettings,
    intervals: VecDeque<f64>,
    sum: f64,
    sum_squares: f64,
    last: Option<Instant>,
}

impl PhiDetector {
    pub(crate) fn new(settings: PhiSettings) -> Self {
        PhiDetector {
            settings,
            intervals: VecDeque::with_capacity(settings.max_samples.min(1024)),
            sum: 0.0,
            sum_squares: 0.0,
            last: None,
        }
    }

    /// The settings it was made with.
    pub(crate) fn settings(&self) -> PhiSettings {
        self.settings
    }

    /// A heartbeat arrived at `now`.
    pub(crate) fn heartbeat(&mut self, now: Instant) {
        match self.last {
            None => {
                // Seed with the expected interval so phi means something at once.
                let first = self.settings.first_interval.as_secs_f64() * 1000.0;
                self.record(first - first / 4.0);
                self.record(first + first / 4.0);
            }
            Some(last) => self.record(now.saturating_duration_since(last).as_secs_f64() * 1000.0),
        }
        self.last = Some(now);
    }

    fn record(&mut self, interval_ms: f64) {
        if self.intervals.len() >= self.settings.max_samples.max(2) {
            if let Some(old) = self.intervals.pop_front() {
                self.sum -= old;
                self.sum_squares -= old * old;
            }
        }
        self.intervals.push_back(interval_ms);
        self.sum += interval_ms;
        self.sum_squares += interval_ms * interval_ms;
    }

    /// The suspicion level at `now`; 0 before the first heartbeat.
    pub(crate) fn phi(&self, now: Instant) -> f64 {
        let Some(last) = self.last else { return 0.0 };
        let n = self.intervals.len() as f64;
        let mean = self.sum / n + self.settings.acceptable_pause.as_secs_f64() * 1000.0;
        let variance = (self.sum_squares / n - (self.sum / n).powi(2)).max(0.0);
        let min_std = self.settings.min_std_dev.as_secs_f64() * 1000.0;
        let std_dev = variance.sqrt().max(min_std);
        let elapsed = now.saturating_duration_since(last).as_secs_f64() * 1000.0;
        phi(elapsed, mean, std_dev)
    }

    /// Whether phi at `now` is over the threshold.
    pub(crate) fn is_unreachable(&self, now: Instant) -> bool {
        self.phi(now) > self.settings.threshold
    }
}

/// -log10 of the chance that a heartbeat is still to come after `elapsed`,
/// with intervals normally distributed (a logistic approximation of the
/// normal CDF, as in Akka, which stays finite far into the tail).
fn phi(elapsed: f64, mean: f64, std_dev: f64) -> f64 {
    let y = (elapsed - mean) / std_dev;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    if elapsed > mean {
        -(e / (1.0 + e)).log10()
    } else {
        -(1.0 - 1.0 / (1.0 + e)).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PhiSettings {
        PhiSettings {
            threshold: 8.0,
            max_samples: 100,
            min_std_dev: Duration::from_millis(50),
            acceptable_pause: Duration::from_millis(0),
            first_interval: Duration::from_millis(100),
        }
    }

    fn beating(every: Duration, count: u32) -> (PhiDetector, Instant) {
        let mut detector = PhiDetector::new(settings());
        let start = Instant::now();
        let mut now = start;
        for _ in 0..count {
            detector.heartbeat(now);
            now += every;
        }
        (detector, now - every)
    }

    #[test]
    fn phi_is_zero_before_any_heartbeat() {
        let detector = PhiDetector::new(settings());
        assert_eq!(detector.phi(Instant::now()), 0.0);
    }

    #[test]
    fn a_regular_heartbeat_is_not_suspicious() {
        let (detector, last) = beating(Duration::from_millis(100), 20);
        assert!(detector.phi(last + Duration::from_millis(100)) < 1.0);
        assert!(!detector.is_unreachable(last + Duration::from_millis(150)));
    }

    #[test]
    fn phi_grows_as_the_heartbeat_is_overdue() {
        let (detector, last) = beating(Duration::from_millis(100), 20);
        let samples: Vec<f64> = [100, 200, 300, 400, 600]
            .iter()
            .map(|ms| detector.phi(last + Duration::from_millis(*ms)))
            .collect();
        assert!(samples.windows(2).all(|w| w[0] < w[1]), "{samples:?}");
        assert!(
            detector.is_unreachable(last + Duration::from_millis(600)),
            "{samples:?}"
        );
    }

    #[test]
    fn the_acceptable_pause_delays_the_verdict() {
        let mut lenient = PhiDetector::new(PhiSettings {
            acceptable_pause: Duration::from_secs(1),
            ..settings()
        });
        let start = Instant::now();
        for i in 0..20 {
            lenient.heartbeat(start + Duration::from_millis(100 * i));
        }
        let last = start + Duration::from_millis(1900);
        assert!(!lenient.is_unreachable(last + Duration::from_millis(900)));
        assert!(lenient.is_unreachable(last + Duration::from_millis(1600)));
    }

    #[test]
    fn an_irregular_heartbeat_earns_more_patience() {
        let mut jittery = PhiDetector::new(settings());
        let start = Instant::now();
        let mut now = start;
        for i in 0..40u64 {
            now += Duration::from_millis(if i % 2 == 0 { 20 } else { 180 });
            jittery.heartbeat(now);
        }
        let (regular, last) = beating(Duration::from_millis(100), 40);
        let overdue = Duration::from_millis(350);
        assert!(jittery.phi(now + overdue) < regular.phi(last + overdue));
    }

    #[test]
    fn only_the_latest_samples_count() {
        let mut detector = PhiDetector::new(settings());
        let mut now = Instant::now();
        for _ in 0..200 {
            detector.heartbeat(now);
            now += Duration::from_millis(1000);
        }
        for _ in 0..200 {
            detector.heartbeat(now);
            now += Duration::from_millis(100);
        }
        // The slow beats have aged out: 600 ms of silence is now alarming.
        assert!(detector.is_unreachable(now - Duration::from_millis(100) + Duration::from_millis(600)));
    }
}
