//! The built-in operators, each a [`Stage`](crate::Stage), and the macro
//! that offers them as methods on both [`Source`](crate::Source) and
//! [`Flow`](crate::Flow).

mod basic;
mod buffer;
mod map_async;
mod throttle;

pub(crate) use basic::{Filter, FilterMap, Fold, Grouped, Map, Recover, Scan, Skip, Take, TakeWhile, TryMap};
pub(crate) use buffer::Buffer;
pub use buffer::OverflowStrategy;
pub(crate) use map_async::MapAsync;
pub(crate) use throttle::Throttle;

/// Writes the operator methods for a type with a private
/// `via_stage(self, stage) -> $ret!(Out)`; `$T` is its element type.
macro_rules! operators {
    ($T:ident, $ret:ident) => {
        /// Transforms each element.
        pub fn map<U: Send + 'static>(self, f: impl FnMut($T) -> U + Send + 'static) -> $ret!(U) {
            self.via_stage($crate::ops::Map::new(f))
        }

        /// Transforms each element with fallible code; an `Err` fails the
        /// stream with [`StreamError::Stage`](crate::StreamError::Stage) and cancels upstream.
        pub fn try_map<U, E>(self, f: impl FnMut($T) -> Result<U, E> + Send + 'static) -> $ret!(U)
        where
            U: Send + 'static,
            E: Into<Box<dyn std::error::Error + Send + Sync>>,
        {
            self.via_stage($crate::ops::TryMap::new(f))
        }

        /// Passes on the elements for which `predicate` is true.
        pub fn filter(self, predicate: impl FnMut(&$T) -> bool + Send + 'static) -> $ret!($T) {
            self.via_stage($crate::ops::Filter::new(predicate))
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

        /// On an upstream failure, passes on what `f` makes of the error
        /// and completes; when `f` returns `None` the failure goes on.
        pub fn recover(self, f: impl FnMut(&$crate::StreamError) -> Option<$T> + Send + 'static) -> $ret!($T) {
            self.via_stage($crate::ops::Recover::new(f))
        }
    };
}

pub(crate) use operators;
