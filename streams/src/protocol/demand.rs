//! Demand accounting: a plain value, no tasks, no clocks.

use crate::error::StreamError;

/// The outstanding demand of one subscription, counted the Reactive Streams way.
///
/// Inputs are [`request`](Demand::request) (from the subscriber) and
/// [`try_take`](Demand::try_take) (one per element the publisher wants to
/// send); the output is whether it may send. Demand saturates at
/// `u64::MAX`, which stands for "unbounded" and is never used up
/// (rule 3.17); a request of zero is refused (rule 3.9).
///
/// ```
/// use compaktor_streams::protocol::Demand;
///
/// let mut demand = Demand::new();
/// assert!(!demand.try_take(), "nothing may be sent before a request");
/// demand.request(2).unwrap();
/// assert!(demand.try_take());
/// assert!(demand.try_take());
/// assert!(!demand.try_take(), "never more than requested (rule 1.1)");
/// assert!(demand.request(0).is_err(), "request(0) is a spec error (rule 3.9)");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    outstanding: u64,
}

impl Demand {
    /// No demand yet.
    pub const fn new() -> Self {
        Demand { outstanding: 0 }
    }

    /// Adds `n` to the outstanding demand, saturating at `u64::MAX` (unbounded).
    ///
    /// # Errors
    /// [`StreamError::ZeroRequest`] when `n == 0` (rule 3.9); the demand is
    /// left unchanged and the publisher should signal the error and stop.
    pub fn request(&mut self, n: u64) -> Result<(), StreamError> {
        if n == 0 {
            return Err(StreamError::ZeroRequest);
        }
        self.outstanding = self.outstanding.saturating_add(n);
        Ok(())
    }

    /// Uses up one unit of demand for one `on_next`; `false` when there is
    /// none, so the element must wait (rule 1.1). Unbounded demand is never used up.
    #[must_use]
    pub fn try_take(&mut self) -> bool {
        self.take_up_to(1) == 1
    }

    /// Uses up to `max` units at once, for delivering a batch; returns how many.
    #[must_use]
    pub fn take_up_to(&mut self, max: u64) -> u64 {
        let granted = self.outstanding.min(max);
        if !self.is_unbounded() {
            self.outstanding -= granted;
        }
        granted
    }

    /// The demand not yet used up.
    pub const fn outstanding(&self) -> u64 {
        self.outstanding
    }

    /// Whether demand has saturated to "unbounded" (rule 3.17).
    pub const fn is_unbounded(&self) -> bool {
        self.outstanding == u64::MAX
    }

    /// Whether nothing may be sent now.
    pub const fn is_zero(&self) -> bool {
        self.outstanding == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_1_1_nothing_is_granted_without_a_request() {
        let mut d = Demand::new();
        assert!(d.is_zero());
        assert!(!d.try_take());
        assert_eq!(d.take_up_to(10), 0);
    }

    #[test]
    fn requests_add_up_and_are_used_up_one_by_one() {
        let mut d = Demand::new();
        d.request(2).unwrap();
        d.request(3).unwrap();
        assert_eq!(d.outstanding(), 5);
        assert_eq!(d.take_up_to(4), 4);
        assert!(d.try_take());
        assert!(!d.try_take());
    }

    #[test]
    fn rule_3_9_request_zero_is_refused_and_leaves_demand_alone() {
        let mut d = Demand::new();
        d.request(1).unwrap();
        assert!(matches!(d.request(0), Err(StreamError::ZeroRequest)));
        assert_eq!(d.outstanding(), 1);
    }

    #[test]
    fn rule_3_17_demand_saturates_at_unbounded_and_is_never_used_up() {
        let mut d = Demand::new();
        d.request(u64::MAX - 1).unwrap();
        d.request(5).unwrap();
        assert!(d.is_unbounded());
        assert_eq!(d.take_up_to(1_000), 1_000);
        assert!(d.try_take());
        assert!(d.is_unbounded(), "unbounded demand is not decremented");
    }

    #[test]
    fn rule_3_17_two_max_requests_do_not_overflow() {
        let mut d = Demand::new();
        d.request(u64::MAX).unwrap();
        d.request(u64::MAX).unwrap();
        assert_eq!(d.outstanding(), u64::MAX);
    }

    proptest::proptest! {
        #[test]
        fn granted_never_exceeds_requested(ops in proptest::collection::vec((0u64..5, 0u64..7), 0..64)) {
            let mut d = Demand::new();
            let (mut requested, mut granted) = (0u64, 0u64);
            for (req, take) in ops {
                if d.request(req).is_ok() {
                    requested += req;
                }
                granted += d.take_up_to(take);
                proptest::prop_assert!(granted <= requested);
                proptest::prop_assert_eq!(d.outstanding(), requested - granted);
            }
        }
    }
}
