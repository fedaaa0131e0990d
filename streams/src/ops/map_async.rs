//! `map_async`: run a future per element, a bounded number at a time.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};

use crate::error::StreamError;
use crate::stage::{Outlet, Stage};
use crate::supervision::panic_message;

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

/// `map_async` for futures that may fail: an `Err` fails the stage (in
/// the order of the elements, when downstream asks for it), which a
/// [`Decider`](crate::Decider) may resume past. The base of
/// `try_map_async`, `ask` and `map_blocking`.
pub(crate) struct TryMapAsync<In, Fut: Future, F> {
    f: F,
    parallelism: usize,
    in_flight: InFlight<Fut>,
    done: VecDeque<Fut::Output>,
    upstream_done: bool,
    name: &'static str,
    _in: PhantomData<fn(In)>,
}

impl<In, U, Fut: Future<Output = Result<U, StreamError>>, F> TryMapAsync<In, Fut, F> {
    pub(crate) fn new(name: &'static str, parallelism: usize, f: F) -> Self {
        TryMapAsync {
            f,
            parallelism: parallelism.max(1),
            in_flight: InFlight::Ordered(FuturesOrdered::new()),
            done: VecDeque::new(),
            upstream_done: false,
            name,
            _in: PhantomData,
        }
    }
}

impl<In, U, Fut, F> Stage for TryMapAsync<In, Fut, F>
where
    In: Send + 'static,
    U: Send + 'static,
    Fut: Future<Output = Result<U, StreamError>> + Send + 'static,
    F: FnMut(In) -> Fut + Send + 'static,
{
    type In = In;
    type Out = U;

    fn name(&self) -> &'static str {
        self.name
    }

    fn should_pull(&self, _downstream_waiting: bool) -> bool {
        self.in_flight.len() + self.done.len() < self.parallelism
    }

    fn on_push(&mut self, element: In, _out: &mut Outlet<U>) {
        self.in_flight.push((self.f)(element));
    }

    fn on_upstream_finish(&mut self, _out: &mut Outlet<U>) {
        self.upstream_done = true;
    }

    fn on_poll(&mut self, cx: &mut Context<'_>, out: &mut Outlet<U>) {
        while let Poll::Ready(Some(result)) = self.in_flight.poll_next(cx) {
            self.done.push_back(result);
        }
        if out.is_pulled() && out.is_empty() {
            match self.done.pop_front() {
                Some(Ok(element)) => out.push(element),
                Some(Err(error)) => {
                    out.fail(error);
                    return;
                }
                None => {}
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

/// The stage of `map_blocking`: `f` runs on tokio's blocking threads.
pub(crate) fn map_blocking<In, U>(
    parallelism: usize,
    f: impl Fn(In) -> U + Send + Sync + 'static,
) -> impl Stage<In = In, Out = U>
where
    In: Send + 'static,
    U: Send + 'static,
{
    const NAME: &str = "map_blocking";
    let f = Arc::new(f);
    TryMapAsync::new(NAME, parallelism, move |element: In| {
        let f = Arc::clone(&f);
        let task = tokio::task::spawn_blocking(move || f(element));
        async move {
            task.await.map_err(|error| {
                if error.is_panic() {
                    StreamError::Panicked {
                        stage: NAME,
                        message: Arc::from(panic_message(&*error.into_panic())),
                    }
                } else {
                    StreamError::BlockingCancelled { stage: NAME }
                }
            })
        }
    })
}

/// The stage of `try_map_async`.
pub(crate) fn try_map_async<In, U, E, Fut>(
    parallelism: usize,
    mut f: impl FnMut(In) -> Fut + Send + 'static,
) -> impl Stage<In = In, Out = U>
where
    In: Send + 'static,
    U: Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    Fut: Future<Output = Result<U, E>> + Send + 'static,
{
    const NAME: &str = "try_map_async";
    TryMapAsync::new(NAME, parallelism, move |element: In| {
        let fut = f(element);
        async move { fut.await.map_err(|error| StreamError::stage(NAME, error)) }
    })
}
