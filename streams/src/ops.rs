//! The built-in operators, each a [`Stage`](crate::Stage), and the macro
//! that offers them as methods on both [`Source`](crate::Source) and
//! [`Flow`](crate::Flow), with the junctions that have a one-line form
//! (`merge`, `zip`, `concat`, `also_to`).

mod basic;
mod batch;
mod buffer;
mod delay;
mod map_async;
mod throttle;

pub(crate) use basic::{
    Filter, FilterMap, FilterTuned, Fold, Grouped, Map, Recover, Scan, Skip, Take, TakeWhile, TryMap,
};
pub(crate) use batch::Batch;
pub(crate) use buffer::Buffer;
pub use buffer::OverflowStrategy;
pub(crate) use delay::Delay;
pub(crate) use map_async::{map_blocking, try_map_async, MapAsync, TryMapAsync};
pub(crate) use throttle::Throttle;

/// Writes the operator methods for a type with a private
/// `via_stage(self, stage) -> $ret!(Out)` and
/// `via_upstream(self, f) -> $ret!(Out)`; `$T` is its element type.
macro_rules! operators {
    ($T:ident, $ret:ident) => {
        /// Transforms each element.
        pub fn map<U: Send + 'static>(self, f: impl FnMut($T) -> U + Send + 'static) -> $ret!(U) {
            self.via_stage($crate::ops::Map::new(f))
        }

        /// Transforms each element with fallible code; an `Err` fails the
        /// stream with [`StreamError::Stage`](crate::StreamError::Stage) and cancels upstream,
        /// unless [`with_supervision`](Self::with_supervision) resumes past it.
        pub fn try_map<U, E>(self, f: impl FnMut($T) -> Result<U, E> + Send + 'static) -> $ret!(U)
        where
            U: Send + 'static,
            E: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            self.via_stage($crate::ops::TryMap::new(f))
        }

        /// Puts the operator added just before this under `decider`: each
        /// error it raises, and each panic of its function, is stopped on,
        /// resumed past or restarted from, as the [`Directive`](crate::Directive)
        /// says (see [`Decider`](crate::Decider)). Applies to one-stage
        /// operators (`map`, `try_map`, `filter`, `filter_map`, `scan`,
        /// `map_async`, `try_map_async`, `ask`, `map_blocking`, custom
        /// stages, ...). After a source, a junction, an async boundary or
        /// an editable slot there is no such stage: the stream fails at once with
        /// [`StreamError::Stage`](crate::StreamError::Stage) from
        /// `"with_supervision"`, rather than run without the supervision
        /// it was given.
        pub fn with_supervision(self, decider: $crate::Decider) -> $ret!($T) {
            self.via_upstream(move |mut upstream, m| {
                if upstream.supervise(decider) {
                    return upstream;
                }
                drop(upstream);
                let error = $crate::StreamError::stage(
                    "with_supervision",
                    "nothing to supervise: it follows a source, a junction, an async boundary or an editable slot",
                );
                $crate::Source::failed(error).build(m).0
            })
        }

        /// Ends the current island here, as `async_boundary_with`, and runs
        /// the island upstream of here on a thread of tokio's blocking pool
        /// (Akka: `.async` on a blocking dispatcher): its stages may block
        /// (file or driver calls, a custom [`Stage`](crate::Stage) that
        /// waits) without stalling the runtime's workers. The island holds
        /// that thread until its stream ends. Beyond tokio's
        /// `max_blocking_threads` (512 by default) further islands and
        /// `map_blocking` calls wait for a thread, which deadlocks a stream
        /// whose running island waits on one of them. On a `current_thread`
        /// runtime the island's timers and I/O progress only while that
        /// runtime's thread is inside `block_on`, and a paused test clock
        /// does not advance while the island runs.
        pub fn async_boundary_blocking(self, capacity: usize) -> $ret!($T) {
            self.via_upstream(move |upstream, m| $crate::boundary::split_blocking(upstream, capacity, m))
        }

        /// Makes `parameter` reachable by its name through the
        /// [`GraphManager`](crate::GraphManager) that runs this graph, for
        /// custom stages that read it through a [`Tuned`](crate::Tuned)
        /// copy (the built-in `*_tunable` operators do this themselves).
        /// The stream itself is unchanged.
        pub fn with_tunable<P>(self, parameter: &$crate::Tunable<P>) -> $ret!($T)
        where
            P: Clone + std::fmt::Debug + Send + 'static,
        {
            let handle = parameter.handle();
            self.via_upstream(move |upstream, m| {
                m.register_tunable(handle);
                upstream
            })
        }

        /// Passes on the elements for which `predicate` is true.
        pub fn filter(self, predicate: impl FnMut(&$T) -> bool + Send + 'static) -> $ret!($T) {
            self.via_stage($crate::ops::Filter::new(predicate))
        }

        /// Like [`filter`](Self::filter), with a predicate that also reads
        /// `parameter`, which can change while the stream runs (between two
        /// elements). The parameter is reachable by its name through a
        /// [`GraphManager`](crate::GraphManager).
        pub fn filter_tunable<P>(
            self,
            parameter: $crate::Tunable<P>,
            predicate: impl FnMut(&P, &$T) -> bool + Send + 'static,
        ) -> $ret!($T)
        where
            P: Clone + std::fmt::Debug + Send + 'static,
        {
            self.via_upstream(move |upstream, m| {
                m.register_tunable(parameter.handle());
                let stage = $crate::ops::FilterTuned::new(parameter.reader(), predicate);
                let cell = m.cell("filter");
                Box::new($crate::stage::StageLink::new(stage, upstream, cell)) as $crate::stage::BoxUpstream<$T>
            })
        }

        /// Transforms each element and passes on the `Some`s.
        pub fn filter_map<U: Send + 'static>(self, f: impl FnMut($T) -> Option<U> + Send + 'static) -> $ret!(U) {
            self.via_stage($crate::ops::FilterMap::new(f))
        }

        /// Runs a future per element, at most `parallelism` at once (at
        /// least 1), and passes on their outputs in the order of the
        /// elements. The futures run on the stream's task: spawn CPU-heavy work.
        pub fn map_async<U, Fut>(self, parallelism: usize, f: impl FnMut($T) -> Fut + Send + 'static) -> $ret!(U)
        where
            U: Send + 'static,
            Fut: std::future::Future<Output = U> + Send + 'static,
        {
            self.via_stage($crate::ops::MapAsync::new(parallelism, true, f))
        }

        /// Like [`map_async`](Self::map_async), but passes on outputs as
        /// soon as they are ready, in any order.
        pub fn map_async_unordered<U, Fut>(
            self,
            parallelism: usize,
            f: impl FnMut($T) -> Fut + Send + 'static,
        ) -> $ret!(U)
        where
            U: Send + 'static,
            Fut: std::future::Future<Output = U> + Send + 'static,
        {
            self.via_stage($crate::ops::MapAsync::new(parallelism, false, f))
        }

        /// [`map_async`](Self::map_async) with futures that may fail: an
        /// `Err` fails the stream with [`StreamError::Stage`](crate::StreamError::Stage)
        /// when its turn comes (outputs stay in element order), unless
        /// [`with_supervision`](Self::with_supervision) resumes past it.
        pub fn try_map_async<U, E, Fut>(self, parallelism: usize, f: impl FnMut($T) -> Fut + Send + 'static) -> $ret!(U)
        where
            U: Send + 'static,
            E: Into<Box<dyn std::error::Error + Send + Sync>>,
            Fut: std::future::Future<Output = Result<U, E>> + Send + 'static,
        {
            self.via_stage($crate::ops::try_map_async(parallelism, f))
        }

        /// Runs `f` on each element on tokio's blocking threads
        /// ([`spawn_blocking`](tokio::task::spawn_blocking)), at most
        /// `parallelism` at once (at least 1), and passes on the outputs in
        /// the order of the elements. The stream's task never blocks, so a
        /// slow `f` (a file, a database driver, a compression) holds up
        /// only this stream, and only by backpressure. A panic in `f` fails
        /// the stream with [`StreamError::Panicked`](crate::StreamError::Panicked)
        /// (or is supervised). A call already running when the stream stops
        /// runs to its end; its output is dropped.
        ///
        /// ```
        /// use compaktor_streams::{Sink, Source};
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), compaktor_streams::StreamError> {
        /// let sizes = Source::from_iter(["Cargo.toml", "no-such-file"])
        ///     .map_blocking(2, |path| std::fs::metadata(path).map(|m| m.len()).ok())
        ///     .run_with(Sink::collect());
        /// assert_eq!(sizes.await?[1], None);
        /// # Ok(())
        /// # }
        /// ```
        pub fn map_blocking<U: Send + 'static>(
            self,
            parallelism: usize,
            f: impl Fn($T) -> U + Send + Sync + 'static,
        ) -> $ret!(U) {
            self.via_stage($crate::ops::map_blocking(parallelism, f))
        }

        /// Asks `actor` about each element, at most `parallelism` asks
        /// outstanding (at least 1), and passes on the replies in the order
        /// of the elements (Akka's `ask` stage). `make` builds the request
        /// from the element and the [`ReplyTo`](compaktor_actor::ReplyTo)
        /// the actor answers through. An ask that fails (timeout after
        /// `timeout`, a stopped actor, a full mailbox, a dropped reply
        /// handle) fails the stream with [`StreamError::Ask`](crate::StreamError::Ask),
        /// unless [`with_supervision`](Self::with_supervision) resumes past it.
        ///
        /// ```
        /// use std::time::Duration;
        /// use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, ReplyTo, SystemConfig};
        /// use compaktor_streams::{Flow, Sink, Source};
        ///
        /// struct Square(u64, ReplyTo<u64>);
        ///
        /// struct Squarer;
        ///
        /// impl Actor for Squarer {
        ///     type Msg = Square;
        ///     async fn handle(&mut self, Square(n, reply): Square, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ///         let _ = reply.send(n * n);
        ///         Ok(())
        ///     }
        /// }
        ///
        /// # #[tokio::main]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let system = ActorSystem::new(SystemConfig::new("ask"))?;
        /// let squarer = system.spawn("squarer", Props::new(|| Squarer))?;
        /// let squares = Flow::new().ask(squarer, 4, Duration::from_secs(5), Square);
        /// let all = Source::from_iter(1..=4u64).via(squares).run_with(Sink::collect());
        /// assert_eq!(all.await?, vec![1, 4, 9, 16]);
        /// system.shutdown().await?;
        /// # Ok(())
        /// # }
        /// ```
        pub fn ask<M, R>(
            self,
            actor: compaktor_actor::ActorRef<M>,
            parallelism: usize,
            timeout: std::time::Duration,
            make: impl Fn($T, compaktor_actor::ReplyTo<R>) -> M + Send + Sync + 'static,
        ) -> $ret!(R)
        where
            M: Send + 'static,
            R: Send + 'static,
        {
            self.via_stage($crate::interop::ask(actor, parallelism, timeout, make))
        }

        /// Passes on `zero`, then the running total after each element.
        pub fn scan<A>(self, zero: A, f: impl FnMut(&A, $T) -> A + Send + 'static) -> $ret!(A)
        where
            A: Clone + Send + 'static,
        {
            self.via_stage($crate::ops::Scan::new(zero, f))
        }

        /// Consumes everything and passes on one element, the total, when
        /// upstream completes. For the total as a materialised value use
        /// [`Sink::fold`](crate::Sink::fold).
        pub fn fold<A: Send + 'static>(self, zero: A, f: impl FnMut(A, $T) -> A + Send + 'static) -> $ret!(A) {
            self.via_stage($crate::ops::Fold::new(zero, f))
        }

        /// Passes on the first `n` elements, then completes and cancels upstream.
        pub fn take(self, n: u64) -> $ret!($T) {
            self.via_stage($crate::ops::Take::new(n))
        }

        /// Drops the first `n` elements.
        pub fn skip(self, n: u64) -> $ret!($T) {
            self.via_stage($crate::ops::Skip::new(n))
        }

        /// Passes on elements while `predicate` holds; at the first that
        /// fails it, completes and cancels upstream.
        pub fn take_while(self, predicate: impl FnMut(&$T) -> bool + Send + 'static) -> $ret!($T) {
            self.via_stage($crate::ops::TakeWhile::new(predicate))
        }

        /// Collects elements into groups of `size` (at least 1); the last
        /// group may be smaller.
        pub fn grouped(self, size: usize) -> $ret!(Vec<$T>) {
            self.via_stage($crate::ops::Grouped::new(size))
        }

        /// Holds up to `size` elements (at least 1) when downstream is
        /// slower, pulling ahead of demand; `strategy` says what happens when full.
        pub fn buffer(self, size: usize, strategy: $crate::OverflowStrategy) -> $ret!($T) {
            self.via_stage($crate::ops::Buffer::new(size, strategy))
        }

        /// Passes on at most `elements` per `per` on average (token bucket),
        /// letting up to `burst` through at once after a quiet spell
        /// (Akka's shaping throttle). Elements wait; none are dropped.
        /// `elements` and `burst` below 1 count as 1; a zero `per` throttles nothing.
        pub fn throttle(self, elements: u32, per: std::time::Duration, burst: u32) -> $ret!($T) {
            self.via_stage($crate::ops::Throttle::new(elements, per, burst))
        }

        /// [`throttle`](Self::throttle) at a rate that can change while the
        /// stream runs: a new rate applies from the next element (an element
        /// already waiting is offered again at once), keeping the tokens
        /// saved so far up to the new burst. The rate is reachable by its
        /// name through a [`GraphManager`](crate::GraphManager).
        pub fn throttle_tunable(self, rate: $crate::Tunable<$crate::ThrottleRate>) -> $ret!($T) {
            self.via_upstream(move |upstream, m| {
                m.register_tunable(rate.handle());
                let stage = $crate::ops::Throttle::tuned(rate.reader());
                let cell = m.cell("throttle");
                Box::new($crate::stage::StageLink::new(stage, upstream, cell)) as $crate::stage::BoxUpstream<$T>
            })
        }

        /// A point where stages can be inserted, removed or replaced while
        /// the stream runs, through a [`GraphManager`](crate::GraphManager),
        /// without losing or duplicating an element; it starts with
        /// `segments`, in order. See [`Segment`](crate::Segment) for how an
        /// edit is made and what it costs.
        pub fn editable(
            self,
            name: impl Into<String>,
            segments: impl IntoIterator<Item = $crate::Segment<$T>>,
        ) -> $ret!($T) {
            let name = name.into();
            let segments: Vec<$crate::Segment<$T>> = segments.into_iter().collect();
            self.via_upstream(move |upstream, m| $crate::editable::slot(name, segments, upstream, m))
        }

        /// On an upstream failure, passes on what `f` makes of the error
        /// and completes; when `f` returns `None` the failure goes on.
        pub fn recover(self, f: impl FnMut(&$crate::StreamError) -> Option<$T> + Send + 'static) -> $ret!($T) {
            self.via_stage($crate::ops::Recover::new(f))
        }

        /// While downstream is busy, pulls ahead and folds up to `max`
        /// elements (at least 1) into one aggregate: `seed` starts it,
        /// `aggregate` adds to it; then backpressures. Downstream gets the
        /// aggregate when it asks. A fast downstream gets aggregates of one.
        /// Upstream only runs ahead while something pumps it: put an
        /// [`async_boundary`](Self::async_boundary) or a `map_async` after this.
        pub fn batch<S: Send + 'static>(
            self,
            max: u64,
            seed: impl FnMut($T) -> S + Send + 'static,
            aggregate: impl FnMut(S, $T) -> S + Send + 'static,
        ) -> $ret!(S) {
            self.via_stage($crate::ops::Batch::new("batch", max, |_: &$T| 1, seed, aggregate))
        }

        /// [`batch`](Self::batch) where each element weighs what `cost`
        /// says; an element that would take the aggregate over `max` starts
        /// the next one (and one heavier than `max` is an aggregate alone).
        pub fn batch_weighted<S: Send + 'static>(
            self,
            max: u64,
            cost: impl FnMut(&$T) -> u64 + Send + 'static,
            seed: impl FnMut($T) -> S + Send + 'static,
            aggregate: impl FnMut(S, $T) -> S + Send + 'static,
        ) -> $ret!(S) {
            self.via_stage($crate::ops::Batch::new(
                "batch_weighted",
                max,
                cost,
                seed,
                aggregate,
            ))
        }

        /// While downstream is busy, combines what arrives into one element
        /// with `aggregate`, without limit: upstream is never backpressured.
        /// For a different output type use [`batch`](Self::batch) with `u64::MAX`.
        pub fn conflate(self, aggregate: impl FnMut($T, $T) -> $T + Send + 'static) -> $ret!($T) {
            self.via_stage($crate::ops::Batch::new(
                "conflate",
                u64::MAX,
                |_: &$T| 0,
                |element: $T| element,
                aggregate,
            ))
        }

        /// Passes on each element `by` after it arrived, in order. Holds up
        /// to `capacity` elements (at least 1) while they wait, pulling
        /// ahead of demand; when full, it backpressures. So at most
        /// `capacity` elements pass per `by`.
        pub fn delay(self, by: std::time::Duration, capacity: usize) -> $ret!($T) {
            self.via_stage($crate::ops::Delay::new(by, capacity))
        }

        /// Merges the elements of `other` into this stream as they come,
        /// taking turns (fused on this stream's task). Completes when both
        /// have; `other`'s materialised value is dropped (the
        /// [`GraphBuilder`](crate::GraphBuilder) keeps it).
        pub fn merge<M2: 'static>(self, other: $crate::Source<$T, M2>) -> $ret!($T) {
            self.via_upstream(move |upstream, m| {
                let (other, _) = other.build(m);
                $crate::fan_in::merge(vec![upstream, other], false, m)
            })
        }

        /// Pairs each element with the element of `other` at the same
        /// position; completes when either completes.
        pub fn zip<U: Send + 'static, M2: 'static>(self, other: $crate::Source<U, M2>) -> $ret!(($T, U)) {
            self.via_upstream(move |upstream, m| {
                let (other, _) = other.build(m);
                $crate::fan_in::zip(upstream, other, m)
            })
        }

        /// Passes on every element of this stream, then every element of
        /// `other`, which is not asked for anything before this one completes.
        pub fn concat<M2: 'static>(self, other: $crate::Source<$T, M2>) -> $ret!($T) {
            self.via_upstream(move |upstream, m| {
                let (other, _) = other.build(m);
                $crate::fan_in::concat(vec![upstream, other], m)
            })
        }

        /// Also sends a copy of every element to `sink`, at the pace of the
        /// slower of the two (a broadcast of two; see
        /// [`GraphBuilder::broadcast`](crate::GraphBuilder::broadcast)).
        /// When either side cancels, upstream is cancelled and the other
        /// side completes. Everything upstream runs on a task of its own
        /// from here; the sink's materialised value is dropped.
        pub fn also_to<M2: 'static>(self, sink: $crate::Sink<$T, M2>) -> $ret!($T)
        where
            $T: Clone,
        {
            self.via_upstream(move |upstream, m| {
                let rule = $crate::fan_out::Rule::Broadcast {
                    clone: <$T as Clone>::clone,
                };
                let buffer = $crate::boundary::DEFAULT_BUFFER;
                let mut outlets = $crate::fan_out::spawn("also_to", upstream, (rule, true), 2, buffer, m).into_iter();
                let (main, main_input) = outlets.next().expect("a broadcast of two");
                let (side, side_input) = outlets.next().expect("a broadcast of two");
                m.set_feed(side_input);
                let _ = sink.build(side, m);
                m.set_feed(main_input);
                main
            })
        }
    };
}

pub(crate) use operators;
