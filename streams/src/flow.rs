//! [`Flow`]: a reusable middle piece with one input and one output.

use std::fmt;

use crate::boundary;
use crate::graph::Materializer;
use crate::kill_switch::KillSwitch;
use crate::ops::operators;
use crate::sink::Sink;
use crate::stage::{BoxUpstream, Stage, StageLink};

type BuildFlow<In, Out, Mat> = Box<dyn FnOnce(BoxUpstream<In>, &mut Materializer) -> (BoxUpstream<Out>, Mat) + Send>;

/// A blueprint of a processing step from `In` to `Out`, materialising `Mat`.
///
/// Start from [`Flow::new`] (which passes elements through) and add
/// operators, or wrap a custom [`Stage`] with [`Flow::from_stage`]. Attach
/// it to a source with [`Source::via`](crate::Source::via), or to a sink
/// with [`Flow::to`]. Like every blueprint it is used up when the graph
/// runs.
///
/// ```
/// use compaktor_streams::{Flow, Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let parse = Flow::new().filter_map(|line: &str| line.trim().parse::<u32>().ok());
/// let total = Source::from_iter(["1", "x", " 2 "]).via(parse).run_with(Sink::fold(0, |a, n| a + n));
/// assert_eq!(total.await?, 3);
/// # Ok(())
/// # }
/// ```
#[must_use = "a flow does nothing until it is part of a running graph"]
pub struct Flow<In, Out, Mat = ()> {
    build: BuildFlow<In, Out, Mat>,
}

impl<In, Out, Mat> fmt::Debug for Flow<In, Out, Mat> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flow { .. }")
    }
}

impl<T: Send + 'static> Flow<T, T> {
    /// A flow that passes every element through unchanged: the start for adding operators.
    pub fn new() -> Self {
        Flow {
            build: Box::new(|upstream, _| (upstream, ())),
        }
    }

    /// A [`KillSwitch`] stage: passes elements through until the switch,
    /// its materialised value, is used.
    pub fn kill_switch() -> Flow<T, T, KillSwitch> {
        Flow {
            build: Box::new(|upstream, m| {
                let switch = KillSwitch::new();
                let cell = m.cell("kill_switch");
                (
                    Box::new(StageLink::new(switch.stage(), upstream, cell)) as BoxUpstream<T>,
                    switch,
                )
            }),
        }
    }
}

impl<T: Send + 'static> Default for Flow<T, T> {
    fn default() -> Self {
        Flow::new()
    }
}

impl<In: Send + 'static, Out: Send + 'static> Flow<In, Out> {
    /// A flow of one custom [`Stage`].
    pub fn from_stage<S: Stage<In = In, Out = Out>>(stage: S) -> Self {
        Flow::new().via_stage(stage)
    }
}

macro_rules! flow_of {
    ($U:ty) => { Flow<In, $U, Mat> };
}

impl<In: Send + 'static, T: Send + 'static, Mat: 'static> Flow<In, T, Mat> {
    fn via_stage<S: Stage<In = T>>(self, stage: S) -> Flow<In, S::Out, Mat> {
        let build = self.build;
        Flow {
            build: Box::new(move |upstream, m| {
                let (upstream, mat) = build(upstream, m);
                let cell = m.cell(stage.name());
                (
                    Box::new(StageLink::new(stage, upstream, cell)) as BoxUpstream<S::Out>,
                    mat,
                )
            }),
        }
    }

    fn via_upstream<U: Send + 'static>(
        self,
        f: impl FnOnce(BoxUpstream<T>, &mut Materializer) -> BoxUpstream<U> + Send + 'static,
    ) -> Flow<In, U, Mat> {
        let build = self.build;
        Flow {
            build: Box::new(move |upstream, m| {
                let (upstream, mat) = build(upstream, m);
                (f(upstream, m), mat)
            }),
        }
    }

    operators!(T, flow_of);

    /// Attaches another flow, keeping this flow's materialised value.
    pub fn via<U: Send + 'static, M2: 'static>(self, flow: Flow<T, U, M2>) -> Flow<In, U, Mat> {
        self.via_mat(flow, |left, _| left)
    }

    /// Attaches another flow and combines both materialised values (see [`Keep`](crate::Keep)).
    pub fn via_mat<U: Send + 'static, M2: 'static, M3>(
        self,
        flow: Flow<T, U, M2>,
        combine: impl FnOnce(Mat, M2) -> M3 + Send + 'static,
    ) -> Flow<In, U, M3> {
        let build = self.build;
        Flow {
            build: Box::new(move |upstream, m| {
                let (upstream, left) = build(upstream, m);
                let (upstream, right) = flow.build(upstream, m);
                (upstream, combine(left, right))
            }),
        }
    }

    /// Connects a sink, giving a sink that takes `In`; keeps this flow's materialised value.
    pub fn to<M2: 'static>(self, sink: Sink<T, M2>) -> Sink<In, Mat> {
        self.to_mat(sink, |left, _| left)
    }

    /// Connects a sink and combines both materialised values (see [`Keep`](crate::Keep)).
    pub fn to_mat<M2: 'static, M3>(
        self,
        sink: Sink<T, M2>,
        combine: impl FnOnce(Mat, M2) -> M3 + Send + 'static,
    ) -> Sink<In, M3> {
        let build = self.build;
        Sink::new(Box::new(move |upstream, m| {
            let (upstream, left) = build(upstream, m);
            let right = sink.build(upstream, m);
            combine(left, right)
        }))
    }

    /// Transforms the materialised value.
    pub fn map_materialized<M2>(self, f: impl FnOnce(Mat) -> M2 + Send + 'static) -> Flow<In, T, M2> {
        let build = self.build;
        Flow {
            build: Box::new(move |upstream, m| {
                let (upstream, mat) = build(upstream, m);
                (upstream, f(mat))
            }),
        }
    }

    /// Ends the current island here: everything upstream runs on its own
    /// task and hands elements over through a buffer of 16, as demanded.
    pub fn async_boundary(self) -> Self {
        self.async_boundary_with(boundary::DEFAULT_BUFFER)
    }

    /// [`async_boundary`](Flow::async_boundary) with a buffer of `capacity` elements (at least 1).
    pub fn async_boundary_with(self, capacity: usize) -> Self {
        let build = self.build;
        Flow {
            build: Box::new(move |upstream, m| {
                let (upstream, mat) = build(upstream, m);
                (boundary::split(upstream, capacity, m), mat)
            }),
        }
    }

    pub(crate) fn build(self, upstream: BoxUpstream<In>, m: &mut Materializer) -> (BoxUpstream<T>, Mat) {
        (self.build)(upstream, m)
    }
}
