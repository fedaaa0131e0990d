//! `batch` and `conflate`: aggregate while downstream is busy.

use std::marker::PhantomData;
use std::task::Context;

use crate::stage::{Outlet, Stage};

/// Pulls ahead of demand and folds what arrives into one aggregate, until
/// downstream takes it or the aggregate weighs `max`; then it stops pulling
/// (Akka's `batchWeighted`). An element that would push the weight over
/// `max` waits, alone, to start the next aggregate. `conflate` is this with
/// an unreachable `max`.
pub(crate) struct Batch<In, Acc, C, S, A> {
    max: u64,
    cost: C,
    seed: S,
    aggregate: A,
    acc: Option<Acc>,
    weight: u64,
    /// The element that did not fit into the current aggregate.
    next: Option<In>,
    upstream_done: bool,
    name: &'static str,
    _in: PhantomData<fn(In)>,
}

impl<In, Acc, C, S, A> Batch<In, Acc, C, S, A> {
    pub(crate) fn new(name: &'static str, max: u64, cost: C, seed: S, aggregate: A) -> Self {
        Batch {
            max: max.max(1),
            cost,
            seed,
            aggregate,
            acc: None,
            weight: 0,
            next: None,
            upstream_done: false,
            name,
            _in: PhantomData,
        }
    }
}

impl<In, Acc, C, S, A> Batch<In, Acc, C, S, A>
where
    C: FnMut(&In) -> u64,
    S: FnMut(In) -> Acc,
{
    fn start(&mut self, element: In) {
        self.weight = (self.cost)(&element);
        self.acc = Some((self.seed)(element));
    }
}

impl<In, Acc, C, S, A> Stage for Batch<In, Acc, C, S, A>
where
    In: Send + 'static,
    Acc: Send + 'static,
    C: FnMut(&In) -> u64 + Send + 'static,
    S: FnMut(In) -> Acc + Send + 'static,
    A: FnMut(Acc, In) -> Acc + Send + 'static,
{
    type In = In;
    type Out = Acc;

    fn name(&self) -> &'static str {
        self.name
    }

    fn should_pull(&self, _downstream_waiting: bool) -> bool {
        self.next.is_none() && self.weight < self.max
    }

    fn on_push(&mut self, element: In, _out: &mut Outlet<Acc>) {
        let Some(acc) = self.acc.take() else {
            self.start(element);
            return;
        };
        let cost = (self.cost)(&element);
        if self.weight.saturating_add(cost) > self.max {
            self.acc = Some(acc);
            self.next = Some(element);
        } else {
            self.weight += cost;
            self.acc = Some((self.aggregate)(acc, element));
        }
    }

    fn on_upstream_finish(&mut self, _out: &mut Outlet<Acc>) {
        self.upstream_done = true;
    }

    fn on_poll(&mut self, _cx: &mut Context<'_>, out: &mut Outlet<Acc>) {
        if out.is_pulled() && out.is_empty() {
            if let Some(acc) = self.acc.take() {
                out.push(acc);
                self.weight = 0;
                if let Some(element) = self.next.take() {
                    self.start(element);
                }
            }
        }
        if self.upstream_done && self.acc.is_none() && self.next.is_none() {
            out.complete();
        }
    }

    fn buffered(&self) -> usize {
        usize::from(self.acc.is_some()) + usize::from(self.next.is_some())
    }
}
