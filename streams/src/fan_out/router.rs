//! The routing decisions of a fan-out junction: which outlets an element
//! goes to, and how many elements may be pulled now. Plain values: the
//! driver tells it each outlet's demand and whether it is still there; no
//! tasks, locks or clocks.

use crate::error::StreamError;

/// What a fan-out junction does with each element.
pub(crate) enum Rule<T> {
    /// A copy to every outlet: goes at the pace of the slowest.
    Broadcast { clone: fn(&T) -> T },
    /// To one outlet with demand, taking turns among those that have some.
    Balance,
    /// To the outlet the function picks; an element for an outlet without
    /// demand waits (and holds up the rest); one for a cancelled outlet is dropped.
    Partition(Box<dyn FnMut(&T) -> usize + Send>),
}

/// An outlet as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutletView {
    /// Elements the outlet may still receive.
    pub(crate) demand: u64,
    /// Not cancelled.
    pub(crate) live: bool,
}

pub(crate) struct Router<T> {
    rule: Rule<T>,
    outlets: Vec<OutletView>,
    /// Balance: where the next search for demand starts.
    next: usize,
    /// An element that found no demand yet, with its partition if it has one.
    held: Option<(Option<usize>, T)>,
}

impl<T> Router<T> {
    pub(crate) fn new(rule: Rule<T>, outlets: usize) -> Self {
        Router {
            rule,
            outlets: vec![OutletView { demand: 0, live: true }; outlets],
            next: 0,
            held: None,
        }
    }

    /// Tells the router what outlet `k` may receive now.
    pub(crate) fn update(&mut self, k: usize, view: OutletView) {
        if let Some(outlet) = self.outlets.get_mut(k) {
            *outlet = view;
        }
    }

    /// A new outlet (a broadcast hub's consumer); returns its index.
    pub(crate) fn add_outlet(&mut self) -> usize {
        self.outlets.push(OutletView { demand: 0, live: true });
        self.outlets.len() - 1
    }

    /// Forgets outlet `k`; the last outlet takes its index (`swap_remove`).
    pub(crate) fn remove_outlet(&mut self, k: usize) {
        if k < self.outlets.len() {
            self.outlets.swap_remove(k);
        }
    }

    pub(crate) fn live_outlets(&self) -> usize {
        self.outlets.iter().filter(|o| o.live).count()
    }

    /// Whether an element is waiting for demand.
    pub(crate) fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// How many elements may be pulled from upstream now.
    #[must_use]
    pub(crate) fn allowance(&self) -> u64 {
        if self.held.is_some() {
            return 0;
        }
        let mut live = self.outlets.iter().filter(|o| o.live).map(|o| o.demand);
        match self.rule {
            Rule::Broadcast { .. } => live.min().unwrap_or(0),
            Rule::Balance => live.fold(0, u64::saturating_add),
            Rule::Partition(_) => u64::from(live.any(|d| d > 0)),
        }
    }

    /// Routes one element pulled from upstream into the per-outlet `batches`.
    ///
    /// # Errors
    /// [`StreamError::PartitionOutOfBounds`] when a partition function
    /// names an outlet that does not exist.
    pub(crate) fn route(&mut self, element: T, batches: &mut [Vec<T>]) -> Result<(), StreamError> {
        match &mut self.rule {
            Rule::Broadcast { clone } => {
                let clone = *clone;
                let Some(last) = self.outlets.iter().rposition(|o| o.live) else {
                    return Ok(());
                };
                for (k, outlet) in self.outlets.iter_mut().enumerate().take(last) {
                    if outlet.live {
                        outlet.demand = outlet.demand.saturating_sub(1);
                        batches[k].push(clone(&element));
                    }
                }
                self.outlets[last].demand = self.outlets[last].demand.saturating_sub(1);
                batches[last].push(element);
            }
            Rule::Balance => self.place(None, element, batches),
            Rule::Partition(partition) => {
                let k = partition(&element);
                if k >= self.outlets.len() {
                    return Err(StreamError::PartitionOutOfBounds {
                        index: k,
                        outlets: self.outlets.len(),
                    });
                }
                self.place(Some(k), element, batches);
            }
        }
        Ok(())
    }

    /// Delivers the held element if its outlet has demand now.
    pub(crate) fn release(&mut self, batches: &mut [Vec<T>]) {
        if let Some((target, element)) = self.held.take() {
            self.place(target, element, batches);
        }
    }

    fn place(&mut self, target: Option<usize>, element: T, batches: &mut [Vec<T>]) {
        let k = match target {
            Some(k) => match self.outlets.get(k) {
                Some(o) if !o.live => return, // dropped: nobody wants it any more
                Some(o) if o.demand > 0 => k,
                _ => {
                    self.held = Some((target, element));
                    return;
                }
            },
            None => match self.pick() {
                Some(k) => k,
                None => {
                    self.held = Some((None, element));
                    return;
                }
            },
        };
        self.outlets[k].demand -= 1;
        batches[k].push(element);
    }

    /// The next live outlet with demand, taking turns.
    fn pick(&mut self) -> Option<usize> {
        let n = self.outlets.len();
        let k = (0..n)
            .map(|i| (self.next + i) % n)
            .find(|&k| self.outlets[k].live && self.outlets[k].demand > 0)?;
        self.next = k + 1;
        Some(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(demand: u64) -> OutletView {
        OutletView { demand, live: true }
    }

    fn cancelled() -> OutletView {
        OutletView { demand: 0, live: false }
    }

    fn router(rule: Rule<u32>, views: &[OutletView]) -> Router<u32> {
        let mut r = Router::new(rule, views.len());
        for (k, v) in views.iter().enumerate() {
            r.update(k, *v);
        }
        r
    }

    fn broadcast() -> Rule<u32> {
        Rule::Broadcast { clone: u32::clone }
    }

    #[test]
    fn broadcast_goes_at_the_pace_of_the_slowest_live_outlet() {
        let mut r = router(broadcast(), &[view(5), view(2), view(9)]);
        assert_eq!(r.allowance(), 2);
        let mut batches = vec![Vec::new(); 3];
        r.route(7, &mut batches).unwrap();
        r.route(8, &mut batches).unwrap();
        assert_eq!(batches, vec![vec![7, 8]; 3]);
        assert_eq!(r.allowance(), 0, "the slow outlet has used its demand");
        r.update(1, cancelled());
        assert_eq!(r.allowance(), 3, "a cancelled outlet no longer holds the others back");
        r.route(9, &mut batches).unwrap();
        assert_eq!(batches[1], vec![7, 8], "nothing goes to a cancelled outlet");
        assert_eq!(batches[2], vec![7, 8, 9]);
    }

    #[test]
    fn broadcast_with_every_outlet_cancelled_allows_nothing() {
        let r = router(broadcast(), &[cancelled(), cancelled()]);
        assert_eq!(r.allowance(), 0);
        assert_eq!(r.live_outlets(), 0);
    }

    #[test]
    fn balance_sends_each_element_to_one_outlet_with_demand_taking_turns() {
        let mut r = router(Rule::Balance, &[view(1), view(0), view(3)]);
        assert_eq!(r.allowance(), 4);
        let mut batches = vec![Vec::new(); 3];
        for n in 0..4 {
            r.route(n, &mut batches).unwrap();
        }
        assert_eq!(batches, vec![vec![0], vec![], vec![1, 2, 3]]);
        assert_eq!(r.allowance(), 0);
    }

    #[test]
    fn balance_alternates_between_outlets_that_both_have_demand() {
        let mut r = router(Rule::Balance, &[view(10), view(10)]);
        let mut batches = vec![Vec::new(); 2];
        for n in 0..6 {
            r.route(n, &mut batches).unwrap();
        }
        assert_eq!(batches, vec![vec![0, 2, 4], vec![1, 3, 5]]);
    }

    #[test]
    fn partition_holds_an_element_until_its_outlet_has_demand() {
        let mut r = router(
            Rule::Partition(Box::new(|n: &u32| (*n % 2) as usize)),
            &[view(1), view(0)],
        );
        assert_eq!(r.allowance(), 1);
        let mut batches = vec![Vec::new(); 2];
        r.route(3, &mut batches).unwrap();
        assert!(r.is_holding());
        assert_eq!(r.allowance(), 0, "nothing more is pulled while an element waits");
        r.release(&mut batches);
        assert!(r.is_holding(), "still no demand on outlet 1");
        r.update(1, view(1));
        r.release(&mut batches);
        assert_eq!(batches, vec![vec![], vec![3]]);
        assert!(!r.is_holding());
    }

    #[test]
    fn partition_drops_elements_for_a_cancelled_outlet() {
        let mut r = router(Rule::Partition(Box::new(|_: &u32| 1)), &[view(1), cancelled()]);
        let mut batches = vec![Vec::new(); 2];
        r.route(3, &mut batches).unwrap();
        assert!(!r.is_holding());
        assert_eq!(batches, vec![Vec::<u32>::new(), vec![]]);
    }

    #[test]
    fn partition_to_a_missing_outlet_is_an_error() {
        let mut r = router(Rule::Partition(Box::new(|_: &u32| 2)), &[view(1), view(1)]);
        let mut batches = vec![Vec::new(); 2];
        let error = r.route(3, &mut batches).unwrap_err();
        assert!(
            matches!(error, StreamError::PartitionOutOfBounds { index: 2, outlets: 2 }),
            "{error:?}"
        );
    }

    #[test]
    fn outlets_can_come_and_go() {
        let mut r = router(broadcast(), &[view(4)]);
        let k = r.add_outlet();
        assert_eq!(r.allowance(), 0, "a new outlet has no demand yet");
        r.update(k, view(2));
        assert_eq!(r.allowance(), 2);
        r.remove_outlet(0);
        assert_eq!(r.allowance(), 2);
        assert_eq!(r.live_outlets(), 1);
    }
}
