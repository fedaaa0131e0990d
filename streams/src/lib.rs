//! Backpressured reactive streams for compaktor: pipelines from a
//! [`Source`] through [`Flow`]s to a [`Sink`], where no stage ever receives
//! more than it asked for.
//!
//! A pipeline is first a *blueprint*; [`run`](RunnableGraph::run) turns it
//! into running tasks and returns its *materialised value*: a future of the
//! result, a [`KillSwitch`], a channel sender, a [`StreamPublisher`], as
//! chosen with [`Keep`]. Stages are *fused*: everything between a source
//! and a sink runs as plain calls on one tokio task, until an
//! [`async_boundary`](Source::async_boundary) puts the upstream part on a
//! task of its own behind a bounded, demand-driven buffer.
//!
//! ```
//! use std::time::Duration;
//! use compaktor_streams::{Flow, Keep, Sink, Source};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), compaktor_streams::StreamError> {
//!     let (switch, total) = Source::from_iter(1..=1_000u64)
//!         .map(|n| n * 2)
//!         .filter(|n| n % 3 == 0)
//!         .async_boundary() // the source, map and filter run on their own task
//!         .map_async(4, |n| async move { n + 1 }) // up to 4 futures at once, in order
//!         .throttle(10_000, Duration::from_secs(1), 100)
//!         .via_mat(Flow::kill_switch(), Keep::right)
//!         .to_mat(Sink::fold(0, |sum, n| sum + n), Keep::both)
//!         .run();
//!     assert_eq!(total.await?, 333_999);
//!     switch.shutdown(); // too late to matter: the stream is done
//!     Ok(())
//! }
//! ```
//!
//! # What the engine guarantees
//!
//! - **Backpressure everywhere.** Inside an island a stage is only asked
//!   for an element when its downstream wants one; between islands the
//!   Reactive Streams protocol runs with bounded buffers. Stages that work
//!   ahead of demand ([`buffer`](Flow::buffer), [`map_async`](Flow::map_async))
//!   hold a bounded number of elements. A slow sink therefore keeps a fast
//!   source's in-flight elements bounded.
//! - **Termination** flows downstream (complete or fail, after the elements
//!   already emitted) and **cancellation** flows upstream: a stage that
//!   stops early (`take`, a kill switch, a failing stage, a dropped
//!   publisher) cancels everything upstream of it at once.
//! - **Panics** in user code end the stream: materialised futures report
//!   [`StreamError::AbruptTermination`] rather than hanging.
//! - **Statistics**: every stage counts elements in and out, demand, buffer
//!   fill and errors; [`RunnableGraph::run_monitored`] gives a
//!   [`StreamMonitor`] whose snapshots serialise with serde.
//! - The [`protocol`] module has the Reactive Streams traits, for plugging
//!   in your own publishers and subscribers, and the demand accounting.
//!
//! # Choices, where Akka users might expect otherwise
//!
//! - **Blueprints are used once.** Running consumes a `Source`, `Flow` or
//!   `Sink` (they own their closures); write a function that builds the
//!   pipeline to run it several times.
//! - **`map_async` futures run on the stream's task**, not a thread pool:
//!   they progress while the island is polled. Spawn heavy work yourself.
//! - **Invalid sizes are clamped, not panics**: `grouped(0)`,
//!   `buffer(0, ..)`, `map_async(0, ..)` and a zero channel capacity count as 1.
//!
//! # Map
//!
//! | need | look at |
//! |---|---|
//! | build a pipeline | [`Source`], [`Flow`], [`Sink`], [`Keep`] |
//! | run it | [`RunnableGraph`], [`Completion`], [`KillSwitch`] |
//! | write an operator | [`Stage`], [`Outlet`] |
//! | plug in a producer or consumer | [`protocol`], [`StreamPublisher`] |
//! | watch it | [`StreamMonitor`], [`GraphStats`], [`StageStats`] |

mod boundary;
mod error;
mod flow;
mod graph;
mod kill_switch;
mod ops;
pub mod protocol;
mod publisher;
mod sink;
mod source;
mod stage;
mod stats;

pub use error::StreamError;
pub use flow::Flow;
pub use graph::{Completion, Keep, RunnableGraph};
pub use kill_switch::KillSwitch;
pub use ops::OverflowStrategy;
pub use publisher::StreamPublisher;
pub use sink::Sink;
pub use source::Source;
pub use stage::{Outlet, Stage};
pub use stats::{GraphStats, StageState, StageStats, StreamMonitor};
