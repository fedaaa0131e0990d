//! `map_async`: run a future per element, a bounded number at a time.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};

use crate::stage::{Outlet, Stage};

enum InFlight<Fut: Future> {
    Ordered(FuturesOrdered<Fut>),
    Unordered(FuturesUnordered<Fut>),
}

impl<Fut: Future> InFlight<Fut> {
    fn len(&self) -> usize {
        match self {
            InFlight::Ordered(q) => q.len(),
            InFlight::Unordered(q) => q.len(),
        }
    }

    fn push(&mut self, fut: Fut) {
        match self {
            InFlight::Ordered(q) => q.push_back(fut),
            InFlight::Unordered(q) => q.push(fut),
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Fut::Output>> {
        match self {
            InFlight::Ordered(q) => q.poll_next_unpin(cx),
            InFlight::Unordered(q) => q.poll_next_unpin(cx),
        }
    }
}

/// The futures run on the stream's own task, so they make progress while
/// the island is polled; keep CPU-heavy work in `tokio::spawn` or an actor.
pub(crate) struct MapAsync<In, Fut: Future, F> {
    f: F,
    parallelism: usize,
    in_flight: InFlight<Fut>,
    done: VecDeque<Fut::Output>,
    upstream_done: bool,
    name: &'static str,
    _in: PhantomData<fn(In)>,
}

impl<In, Fut: Future, F> MapAsync<In, Fut, F> {
    pub(crate) fn new(parallelism: usize, ordered: bool, f: F) -> Self {
        let (in_flight, name) = if ordered {
            (InFlight::Ordered(FuturesOrdered::new()), "map_async")
        } else {
            (InFlight::Unordered(FuturesUnordered::new()), "map_async_unordered")
        };
        MapAsync {
            f,
            parallelism: parallelism.max(1),
            in_flight,
            done: VecDeque::new(),
            upstream_done: false,
            name,
            _in: PhantomData,
        }
    }
}

impl<In, Fut, F> Stage for MapAsync<In, Fut, F>
where
    In: Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
    F: FnMut(In) -> Fut + Send + 'static,
{
    type In = In;
    type Out = Fut::Output;

    fn name(&self) -> &'static str {
        self.name
    }

    fn should_pull(&self, _downstream_waiting: bool) -> bool {
        // Keep `parallelism` futures going ahead of demand, as Akka does.
        self.in_flight.len() + self.done.len() < self.parallelism
    }

    fn on_push(&mut self, element: In, _out: &mut Outlet<Fut::Output>) {
        self.in_flight.push((self.f)(element));
    }

    fn on_upstream_finish(&mut self, _out: &mut Outlet<Fut::Output>) {
        self.upstream_done = true;
    }

    fn on_poll(&mut self, cx: &mut Context<'_>, out: &mut Outlet<Fut::Output>) {
        while let Poll::Ready(Some(result)) = self.in_flight.poll_next(cx) {
            self.done.push_back(result);
        }
        if out.is_pulled() && out.is_empty() {
            if let Some(result) = self.done.pop_front() {
                out.push(result);
            }
        }
        if self.upstream_done && self.in_flight.len() == 0 && self.done.is_empty() {
            out.complete();
        }
    }

    fn buffered(&self) -> usize {
        self.in_flight.len() + self.done.len()
    }
}
