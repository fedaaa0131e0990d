//! Operators that handle one element at a time, without timers or futures.

use std::mem;

use crate::error::StreamError;
use crate::stage::{Outlet, Stage};
use crate::tunable::Tuned;

macro_rules! stage_types {
    ($In:ty, $Out:ty, $name:literal) => {
        type In = $In;
        type Out = $Out;
        fn name(&self) -> &'static str {
            $name
        }
    };
}

pub(crate) struct Map<In, F> {
    f: F,
    _in: std::marker::PhantomData<fn(In)>,
}

impl<In, F> Map<In, F> {
    pub(crate) fn new(f: F) -> Self {
        Map {
            f,
            _in: std::marker::PhantomData,
        }
    }
}

impl<In: Send + 'static, Out: Send + 'static, F: FnMut(In) -> Out + Send + 'static> Stage for Map<In, F> {
    stage_types!(In, Out, "map");
    fn is_elementwise(&self) -> bool {
        true
    }
    fn on_push(&mut self, element: In, out: &mut Outlet<Out>) {
        out.push((self.f)(element));
    }
}

pub(crate) struct TryMap<In, F> {
    f: F,
    _in: std::marker::PhantomData<fn(In)>,
}

impl<In, F> TryMap<In, F> {
    pub(crate) fn new(f: F) -> Self {
        TryMap {
            f,
            _in: std::marker::PhantomData,
        }
    }
}

impl<In, Out, E, F> Stage for TryMap<In, F>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: FnMut(In) -> Result<Out, E> + Send + 'static,
{
    stage_types!(In, Out, "try_map");
    fn on_push(&mut self, element: In, out: &mut Outlet<Out>) {
        match (self.f)(element) {
            Ok(mapped) => out.push(mapped),
            Err(error) => out.fail(StreamError::stage("try_map", error)),
        }
    }
}

pub(crate) struct Filter<T, F> {
    pred: F,
    _in: std::marker::PhantomData<fn(T)>,
}

impl<T, F> Filter<T, F> {
    pub(crate) fn new(pred: F) -> Self {
        Filter {
            pred,
            _in: std::marker::PhantomData,
        }
    }
}

impl<T: Send + 'static, F: FnMut(&T) -> bool + Send + 'static> Stage for Filter<T, F> {
    stage_types!(T, T, "filter");
    fn is_elementwise(&self) -> bool {
        true
    }
    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        if (self.pred)(&element) {
            out.push(element);
        }
    }
}

/// `filter` whose predicate also reads a [`Tunable`](crate::Tunable).
pub(crate) struct FilterTuned<T, P, F> {
    pred: F,
    parameter: Tuned<P>,
    _in: std::marker::PhantomData<fn(T)>,
}

impl<T, P, F> FilterTuned<T, P, F> {
    pub(crate) fn new(parameter: Tuned<P>, pred: F) -> Self {
        FilterTuned {
            pred,
            parameter,
            _in: std::marker::PhantomData,
        }
    }
}

impl<T, P, F> Stage for FilterTuned<T, P, F>
where
    T: Send + 'static,
    P: Clone + Send + 'static,
    F: FnMut(&P, &T) -> bool + Send + 'static,
{
    stage_types!(T, T, "filter");
    fn is_elementwise(&self) -> bool {
        true
    }
    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        if (self.pred)(self.parameter.current(), &element) {
            out.push(element);
        }
    }
}

pub(crate) struct FilterMap<In, F> {
    f: F,
    _in: std::marker::PhantomData<fn(In)>,
}

impl<In, F> FilterMap<In, F> {
    pub(crate) fn new(f: F) -> Self {
        FilterMap {
            f,
            _in: std::marker::PhantomData,
        }
    }
}

impl<In: Send + 'static, Out: Send + 'static, F: FnMut(In) -> Option<Out> + Send + 'static> Stage for FilterMap<In, F> {
    stage_types!(In, Out, "filter_map");
    fn is_elementwise(&self) -> bool {
        true
    }
    fn on_push(&mut self, element: In, out: &mut Outlet<Out>) {
        if let Some(mapped) = (self.f)(element) {
            out.push(mapped);
        }
    }
}

/// Emits the zero first, then each running total (Akka's `scan`).
pub(crate) struct Scan<In, Acc, F> {
    zero: Acc,
    acc: Acc,
    started: bool,
    f: F,
    _in: std::marker::PhantomData<fn(In)>,
}

impl<In, Acc: Clone, F> Scan<In, Acc, F> {
    pub(crate) fn new(zero: Acc, f: F) -> Self {
        Scan {
            acc: zero.clone(),
            zero,
            started: false,
            f,
            _in: std::marker::PhantomData,
        }
    }
}

impl<In, Acc, F> Stage for Scan<In, Acc, F>
where
    In: Send + 'static,
    Acc: Clone + Send + 'static,
    F: FnMut(&Acc, In) -> Acc + Send + 'static,
{
    stage_types!(In, Acc, "scan");
    fn on_poll(&mut self, _cx: &mut std::task::Context<'_>, out: &mut Outlet<Acc>) {
        if !self.started {
            self.started = true;
            out.push(self.acc.clone());
        }
    }
    fn on_push(&mut self, element: In, out: &mut Outlet<Acc>) {
        self.acc = (self.f)(&self.acc, element);
        out.push(self.acc.clone());
    }
    fn on_restart(&mut self) {
        self.acc = self.zero.clone();
    }
}

/// Emits one value, the total, when upstream completes.
pub(crate) struct Fold<In, Acc, F> {
    acc: Option<Acc>,
    f: F,
    _in: std::marker::PhantomData<fn(In)>,
}

impl<In, Acc, F> Fold<In, Acc, F> {
    pub(crate) fn new(zero: Acc, f: F) -> Self {
        Fold {
            acc: Some(zero),
            f,
            _in: std::marker::PhantomData,
        }
    }
}

impl<In, Acc, F> Stage for Fold<In, Acc, F>
where
    In: Send + 'static,
    Acc: Send + 'static,
    F: FnMut(Acc, In) -> Acc + Send + 'static,
{
    stage_types!(In, Acc, "fold");
    fn should_pull(&self, _downstream_waiting: bool) -> bool {
        // A fold consumes everything before it can answer, whatever downstream does.
        true
    }
    fn on_push(&mut self, element: In, _out: &mut Outlet<Acc>) {
        if let Some(acc) = self.acc.take() {
            self.acc = Some((self.f)(acc, element));
        }
    }
    fn on_upstream_finish(&mut self, out: &mut Outlet<Acc>) {
        if let Some(acc) = self.acc.take() {
            out.push(acc);
        }
        out.complete();
    }
}

pub(crate) struct Take<T> {
    n: u64,
    remaining: u64,
    _in: std::marker::PhantomData<fn(T)>,
}

impl<T> Take<T> {
    pub(crate) fn new(n: u64) -> Self {
        Take {
            n,
            remaining: n,
            _in: std::marker::PhantomData,
        }
    }
}

impl<T: Send + 'static> Stage for Take<T> {
    stage_types!(T, T, "take");
    fn on_poll(&mut self, _cx: &mut std::task::Context<'_>, out: &mut Outlet<T>) {
        // take(0) completes without pulling anything.
        if self.remaining == 0 {
            out.complete();
        }
    }
    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        self.remaining = self.remaining.saturating_sub(1);
        out.push(element);
        if self.remaining == 0 {
            out.complete();
        }
    }
    fn on_restart(&mut self) {
        self.remaining = self.n;
    }
}

pub(crate) struct Skip<T> {
    n: u64,
    remaining: u64,
    _in: std::marker::PhantomData<fn(T)>,
}

impl<T> Skip<T> {
    pub(crate) fn new(n: u64) -> Self {
        Skip {
            n,
            remaining: n,
            _in: std::marker::PhantomData,
        }
    }
}

impl<T: Send + 'static> Stage for Skip<T> {
    stage_types!(T, T, "skip");
    fn is_elementwise(&self) -> bool {
        true
    }
    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        if self.remaining == 0 {
            out.push(element);
        } else {
            self.remaining -= 1;
        }
    }
    fn on_restart(&mut self) {
        self.remaining = self.n;
    }
}

pub(crate) struct TakeWhile<T, F> {
    pred: F,
    _in: std::marker::PhantomData<fn(T)>,
}

impl<T, F> TakeWhile<T, F> {
    pub(crate) fn new(pred: F) -> Self {
        TakeWhile {
            pred,
            _in: std::marker::PhantomData,
        }
    }
}

impl<T: Send + 'static, F: FnMut(&T) -> bool + Send + 'static> Stage for TakeWhile<T, F> {
    stage_types!(T, T, "take_while");
    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        if (self.pred)(&element) {
            out.push(element);
        } else {
            out.complete();
        }
    }
}

pub(crate) struct Grouped<T> {
    size: usize,
    group: Vec<T>,
}

impl<T> Grouped<T> {
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1);
        Grouped {
            size,
            group: Vec::with_capacity(size),
        }
    }
}

impl<T: Send + 'static> Stage for Grouped<T> {
    stage_types!(T, Vec<T>, "grouped");
    fn on_push(&mut self, element: T, out: &mut Outlet<Vec<T>>) {
        self.group.push(element);
        if self.group.len() == self.size {
            out.push(mem::replace(&mut self.group, Vec::with_capacity(self.size)));
        }
    }
    fn on_upstream_finish(&mut self, out: &mut Outlet<Vec<T>>) {
        if !self.group.is_empty() {
            out.push(mem::take(&mut self.group));
        }
        out.complete();
    }
    fn buffered(&self) -> usize {
        self.group.len()
    }
    fn on_restart(&mut self) {
        self.group.clear();
    }
}

/// Turns an upstream failure into a last element, then completes.
pub(crate) struct Recover<T, F> {
    f: F,
    _in: std::marker::PhantomData<fn(T)>,
}

impl<T, F> Recover<T, F> {
    pub(crate) fn new(f: F) -> Self {
        Recover {
            f,
            _in: std::marker::PhantomData,
        }
    }
}

impl<T: Send + 'static, F: FnMut(&StreamError) -> Option<T> + Send + 'static> Stage for Recover<T, F> {
    stage_types!(T, T, "recover");
    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        out.push(element);
    }
    fn on_upstream_failure(&mut self, error: StreamError, out: &mut Outlet<T>) {
        match (self.f)(&error) {
            Some(element) => {
                out.push(element);
                out.complete();
            }
            None => out.fail(error),
        }
    }
}
