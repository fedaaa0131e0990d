//! Fan-in junctions: `merge`, `merge_preferred`, `zip` and `concat`.
//!
//! A fan-in junction is fused with its inputs: it polls them on its own
//! task, so merging many cheap sources costs no hand-over. Each input is
//! asked for an element only when downstream wants one (none runs ahead
//! unless it has an async boundary or a buffer of its own). The junction
//! fails as soon as any input fails, and then cancels the others.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::graph::Materializer;
use crate::stage::{BoxUpstream, Pull, Upstream};
use crate::stats::StageCell;

/// The order in which a merge asks its inputs: round robin, starting after
/// the input served last, so that every input with elements gets its turn
/// (fairness); with a preferred input, that one is always asked first.
/// A plain value: no tasks, no polling.
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    next: usize,
    preferred: bool,
}

impl Rotation {
    pub(crate) fn new(preferred: bool) -> Self {
        Rotation { next: 0, preferred }
    }

    /// The inputs to ask, in order, out of `inputs`.
    pub(crate) fn order(&self, inputs: usize) -> impl Iterator<Item = usize> {
        let (first, rest) = if self.preferred && inputs > 0 {
            (Some(0), 1)
        } else {
            (None, 0)
        };
        let others = inputs - rest;
        let start = if others == 0 { 0 } else { self.next % others };
        first
            .into_iter()
            .chain((0..others).map(move |k| rest + (start + k) % others))
    }

    /// `input` gave an element: the next round starts after it.
    pub(crate) fn served(&mut self, input: usize) {
        let rest = usize::from(self.preferred);
        if input >= rest {
            self.next = input - rest + 1;
        }
    }
}

/// `merge` and `merge_preferred` over a fixed set of inputs.
struct Merge<T> {
    inputs: Vec<Option<BoxUpstream<T>>>,
    rotation: Rotation,
    cell: Arc<StageCell>,
    waiting: bool,
    done: bool,
}

/// Interleaves the elements of `inputs` fairly (input 0 first when
/// `preferred`); completes when every input has.
pub(crate) fn merge<T: Send + 'static>(
    inputs: Vec<BoxUpstream<T>>,
    preferred: bool,
    m: &mut Materializer,
) -> BoxUpstream<T> {
    let name = if preferred { "merge_preferred" } else { "merge" };
    let (_, cell) = m.junction_cell(name, 0);
    Box::new(Merge {
        inputs: inputs.into_iter().map(Some).collect(),
        rotation: Rotation::new(preferred),
        cell,
        waiting: false,
        done: false,
    })
}

impl<T: Send> Upstream<T> for Merge<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        self.cell.backpressure_off();
        if self.done {
            return Poll::Ready(None);
        }
        for i in self.rotation.order(self.inputs.len()) {
            let Some(input) = self.inputs[i].as_mut() else { continue };
            match input.poll_next(cx) {
                Poll::Ready(Some(Ok(element))) => {
                    self.rotation.served(i);
                    self.cell.add_in();
                    self.cell.add_out();
                    if self.waiting {
                        self.waiting = false;
                        self.cell.set_demand(0);
                    }
                    return Poll::Ready(Some(Ok(element)));
                }
                Poll::Ready(Some(Err(error))) => {
                    self.done = true;
                    self.inputs.clear();
                    return Poll::Ready(self.cell.ended(Err(error)));
                }
                Poll::Ready(None) => self.inputs[i] = None,
                Poll::Pending => {}
            }
        }
        if self.inputs.iter().all(Option::is_none) {
            self.done = true;
            return Poll::Ready(self.cell.ended(Ok(())));
        }
        if !self.waiting {
            self.waiting = true;
            self.cell.set_demand(1);
        }
        Poll::Pending
    }

    fn poll_pump(&mut self, cx: &mut Context<'_>) {
        self.cell.backpressure_on();
        for input in self.inputs.iter_mut().flatten() {
            input.poll_pump(cx);
        }
    }
}

impl<T> Drop for Merge<T> {
    fn drop(&mut self) {
        if !self.done {
            self.cell.cancelled();
        }
    }
}

/// Pairs one element of each input, in order.
struct Zip<A, B> {
    left: Option<BoxUpstream<A>>,
    right: Option<BoxUpstream<B>>,
    a: Option<A>,
    b: Option<B>,
    cell: Arc<StageCell>,
    done: bool,
}

/// Pairs the elements of `left` and `right` in order; completes when
/// either completes (a lone element left over is dropped).
pub(crate) fn zip<A: Send + 'static, B: Send + 'static>(
    left: BoxUpstream<A>,
    right: BoxUpstream<B>,
    m: &mut Materializer,
) -> BoxUpstream<(A, B)> {
    let (_, cell) = m.junction_cell("zip", 0);
    Box::new(Zip {
        left: Some(left),
        right: Some(right),
        a: None,
        b: None,
        cell,
        done: false,
    })
}

/// Polls one side of a zip into its slot; `Some` when the zip is over.
fn fill<X>(
    side: &mut Option<BoxUpstream<X>>,
    slot: &mut Option<X>,
    cx: &mut Context<'_>,
    cell: &StageCell,
) -> Option<Pull<()>> {
    if slot.is_some() {
        return None;
    }
    let input = side.as_mut()?;
    match input.poll_next(cx) {
        Poll::Ready(Some(Ok(element))) => {
            cell.add_in();
            *slot = Some(element);
            None
        }
        Poll::Ready(Some(Err(error))) => Some(Poll::Ready(Some(Err(error)))),
        Poll::Ready(None) => Some(Poll::Ready(None)),
        Poll::Pending => None,
    }
}

impl<A: Send, B: Send> Upstream<(A, B)> for Zip<A, B> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<(A, B)> {
        self.cell.backpressure_off();
        if self.done {
            return Poll::Ready(None);
        }
        let over = fill(&mut self.left, &mut self.a, cx, &self.cell)
            .or_else(|| fill(&mut self.right, &mut self.b, cx, &self.cell));
        if let Some(Poll::Ready(end)) = over {
            self.done = true;
            self.left = None;
            self.right = None;
            let end = match end {
                Some(Err(error)) => Err(error),
                _ => Ok(()),
            };
            return Poll::Ready(self.cell.ended(end));
        }
        match (self.a.take(), self.b.take()) {
            (Some(a), Some(b)) => {
                self.cell.add_out();
                self.cell.set_demand(0);
                Poll::Ready(Some(Ok((a, b))))
            }
            (a, b) => {
                self.a = a;
                self.b = b;
                self.cell.set_demand(1);
                self.cell
                    .set_buffered(usize::from(self.a.is_some()) + usize::from(self.b.is_some()));
                Poll::Pending
            }
        }
    }

    fn poll_pump(&mut self, cx: &mut Context<'_>) {
        self.cell.backpressure_on();
        if let Some(left) = self.left.as_mut() {
            left.poll_pump(cx);
        }
        if let Some(right) = self.right.as_mut() {
            right.poll_pump(cx);
        }
    }
}

impl<A, B> Drop for Zip<A, B> {
    fn drop(&mut self) {
        if !self.done {
            self.cell.cancelled();
        }
    }
}

/// All of one input, then all of the next.
struct Concat<T> {
    inputs: VecDeque<BoxUpstream<T>>,
    cell: Arc<StageCell>,
    done: bool,
}

/// Emits every element of `inputs[0]`, then of `inputs[1]`, and so on; an
/// input is not asked for anything before the one before it completed.
pub(crate) fn concat<T: Send + 'static>(inputs: Vec<BoxUpstream<T>>, m: &mut Materializer) -> BoxUpstream<T> {
    let (_, cell) = m.junction_cell("concat", 0);
    Box::new(Concat {
        inputs: inputs.into(),
        cell,
        done: false,
    })
}

impl<T: Send> Upstream<T> for Concat<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        self.cell.backpressure_off();
        if self.done {
            return Poll::Ready(None);
        }
        while let Some(input) = self.inputs.front_mut() {
            match input.poll_next(cx) {
                Poll::Ready(Some(Ok(element))) => {
                    self.cell.add_in();
                    self.cell.add_out();
                    self.cell.set_demand(0);
                    return Poll::Ready(Some(Ok(element)));
                }
                Poll::Ready(Some(Err(error))) => {
                    self.done = true;
                    self.inputs.clear();
                    return Poll::Ready(self.cell.ended(Err(error)));
                }
                Poll::Ready(None) => {
                    self.inputs.pop_front();
                }
                Poll::Pending => {
                    self.cell.set_demand(1);
                    return Poll::Pending;
                }
            }
        }
        self.done = true;
        Poll::Ready(self.cell.ended(Ok(())))
    }

    fn poll_pump(&mut self, cx: &mut Context<'_>) {
        self.cell.backpressure_on();
        if let Some(input) = self.inputs.front_mut() {
            input.poll_pump(cx);
        }
    }
}

impl<T> Drop for Concat<T> {
    fn drop(&mut self) {
        if !self.done {
            self.cell.cancelled();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(r: &Rotation, n: usize) -> Vec<usize> {
        r.order(n).collect()
    }

    #[test]
    fn merge_asks_every_input_in_turn_starting_after_the_last_served() {
        let mut r = Rotation::new(false);
        assert_eq!(order(&r, 3), [0, 1, 2]);
        r.served(0);
        assert_eq!(order(&r, 3), [1, 2, 0]);
        r.served(2);
        assert_eq!(order(&r, 3), [0, 1, 2]);
        r.served(1);
        assert_eq!(order(&r, 3), [2, 0, 1]);
    }

    #[test]
    fn a_busy_input_cannot_starve_the_others() {
        // Every input always has an element: each round serves the first asked.
        let mut r = Rotation::new(false);
        let mut served = [0u32; 4];
        for _ in 0..400 {
            let first = r.order(4).next().unwrap();
            served[first] += 1;
            r.served(first);
        }
        assert_eq!(served, [100; 4]);
    }

    #[test]
    fn merge_preferred_always_asks_input_0_first_then_the_rest_fairly() {
        let mut r = Rotation::new(true);
        assert_eq!(order(&r, 3), [0, 1, 2]);
        r.served(0);
        assert_eq!(order(&r, 3), [0, 1, 2], "serving the preferred input moves nothing");
        r.served(1);
        assert_eq!(order(&r, 3), [0, 2, 1]);
        r.served(2);
        assert_eq!(order(&r, 3), [0, 1, 2]);
        assert_eq!(order(&Rotation::new(true), 1), [0]);
    }

    #[test]
    fn no_inputs_means_nothing_to_ask() {
        assert_eq!(order(&Rotation::new(false), 0), Vec::<usize>::new());
        assert_eq!(order(&Rotation::new(true), 0), Vec::<usize>::new());
    }
}
