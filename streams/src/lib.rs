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
//!   [`StreamError::AbruptTermination`] rather than hanging. Under
//!   supervision (below) a panic of a stage's per-element function is an
//!   error like any other.
//! - **Statistics**: every stage counts elements in and out, demand, buffer
//!   fill and errors, and reports its rate and the time it spent
//!   backpressured; [`RunnableGraph::run_monitored`] gives a
//!   [`StreamMonitor`] whose snapshots serialise with serde.
//! - The [`protocol`] module has the Reactive Streams traits, for plugging
//!   in your own publishers and subscribers, and the demand accounting.
//!
//! # Supervision, actors and blocking work
//!
//! A stage put under a [`Decider`] with
//! [`with_supervision`](Flow::with_supervision) stops, resumes past or
//! restarts from each error it raises itself (a [`Directive`]): an `Err`
//! of [`try_map`](Flow::try_map) or [`try_map_async`](Flow::try_map_async),
//! a failed [`ask`](Flow::ask), a panic of the stage's function. Resumed
//! and restarted errors count in the stage's statistics.
//!
//! Actors take part with backpressure: [`ask`](Flow::ask) asks an actor
//! per element, `parallelism` at a time, replies in order;
//! [`Source::actor_ref_with_backpressure`] lets a producer actor feed a
//! stream one acknowledged element at a time through an
//! [`ActorSourceRef`]; [`Sink::actor_ref_with_backpressure`] hands each
//! element to an actor and waits for its acknowledgement.
//! [`map_blocking`](Flow::map_blocking) runs a blocking function on tokio's
//! blocking threads, so the stream's task (and its neighbours) never block;
//! [`async_boundary_blocking`](Flow::async_boundary_blocking) runs a whole
//! island there, for stages that block (a custom [`Stage`] waiting on a
//! device, a file read in a `map`).
//!
//! ```
//! use compaktor_streams::{Decider, Sink, Source};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), compaktor_streams::StreamError> {
//! let lines = Source::from_iter(["3", "x", "4"])
//!     .try_map(|line| line.parse::<u64>())
//!     .with_supervision(Decider::resuming()) // skip what does not parse
//!     .map_blocking(2, |n| n * n) // imagine a blocking driver call here
//!     .run_with(Sink::collect());
//! assert_eq!(lines.await?, vec![9, 16]);
//! # Ok(())
//! # }
//! ```
//!
//! # Graphs and hubs
//!
//! Not every stream is a line. [`GraphBuilder`] wires named sources, flows
//! and sinks through fan-out junctions (broadcast, balance, partition) and
//! fan-in junctions (merge, merge-preferred, zip, concat); `build` refuses
//! unconnected ports and cycles (unless allowed) with a typed
//! [`GraphError`], and keeps the graph's [`GraphShape`] (nodes and edges)
//! for describing it. Fan-in junctions are fused with their inputs; a
//! fan-out junction runs its upstream on its own task and goes at the pace
//! its outlets' demand allows, so a broadcast follows its slowest consumer.
//! Every junction reports statistics like any other stage. The common
//! cases have one-line forms: [`Source::merge`], [`Source::zip`],
//! [`Source::concat`], [`Source::also_to`] (and the same on [`Flow`]).
//!
//! [`MergeHub`] and [`BroadcastHub`] are junctions whose producers or
//! consumers attach while the stream runs, each with a bounded buffer and
//! backpressure.
//!
//! ```
//! use compaktor_streams::{Keep, MergeHub, Sink, Source};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), compaktor_streams::StreamError> {
//! // Sensors come and go; one pipeline aggregates what they send.
//! let (hub, windows) = MergeHub::source(16)
//!     .grouped(4)
//!     .map(|w: Vec<u32>| w.iter().sum::<u32>())
//!     .to_mat(Sink::collect(), Keep::both)
//!     .run();
//! let sensor = Source::from_iter([1, 2, 3, 4]).merge(Source::from_iter([10, 20, 30, 40]));
//! sensor.run_with(hub.sink()).await?;
//! drop(hub);
//! assert_eq!(windows.await?.iter().sum::<u32>(), 110);
//! # Ok(())
//! # }
//! ```
//!
//! # Managing and editing running graphs
//!
//! A [`GraphManager`] keeps graphs by name, started or not, and
//! [describes](GraphManager::describe) one on demand: nodes, edges and each
//! node's live statistics, as a serialisable [`GraphDescription`] that
//! renders as JSON or Graphviz DOT. It edits what a graph declares
//! editable, while it runs, without losing or duplicating an element: a
//! [`Tunable`] parameter ([`filter_tunable`](Source::filter_tunable),
//! [`throttle_tunable`](Source::throttle_tunable), or a custom stage's
//! [`Tuned`] copy) changes between two elements; an
//! [`editable`](Source::editable) slot's chain of [`Segment`]s takes
//! insertions, removals and replacements, applied once the running chain
//! has drained. A [`GraphBuilder`] graph can put such a slot on every
//! edge ([`editable_edges`](GraphBuilder::editable_edges)).
//!
//! ```
//! use compaktor_streams::{Flow, GraphManager, Keep, Segment, Sink, Source};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = GraphManager::new();
//! let (sender, all) = manager.run(
//!     "numbers",
//!     Source::<u32>::channel(8)
//!         .editable("slot", [Segment::new("double", || Flow::new().map(|n: u32| n * 2))])
//!         .to_mat(Sink::collect(), Keep::both),
//! )?;
//! sender.send(1).await?;
//! manager.remove_segment("numbers", "slot", "double")?; // from the next element on
//! sender.send(5).await?;
//! println!("{}", manager.describe("numbers")?.to_dot());
//! drop(sender);
//! let all = all.await?;
//! assert_eq!(all.len(), 2); // 1 was doubled or not, 5 was not: none lost
//! assert_eq!(all[1], 5);
//! # Ok(())
//! # }
//! ```
//!
//! # Choices, where Akka users might expect otherwise
//!
//! - **Blueprints are used once.** Running consumes a `Source`, `Flow` or
//!   `Sink` (they own their closures); write a function that builds the
//!   pipeline to run it several times.
//! - **`map_async` futures run on the stream's task**, not a thread pool:
//!   they progress while the island is polled. Spawn heavy work yourself,
//!   or use [`map_blocking`](Flow::map_blocking) for blocking calls.
//! - **Blocking stages and islands use tokio's blocking threads**
//!   ([`spawn_blocking`](tokio::task::spawn_blocking)), not the actor
//!   system's blocking pool, which only runs actors: a stream needs no
//!   actor system to block safely.
//! - **Supervision covers a stage's own errors**, decided per stage;
//!   failures from upstream pass through (use [`recover`](Flow::recover)),
//!   and sinks and sources are not supervised. Restart resets what
//!   [`Stage::on_restart`] resets: `scan`, `take`, `skip`, `grouped` and
//!   custom stages that implement it; `fold`'s total is not reset (it is
//!   not `Clone`), and `map_async`, `ask` and `map_blocking` restart as
//!   they resume. Panics inside a `map_async` future are not caught.
//! - **An actor source's producer** gets an [`ActorSourceRef`] rather than
//!   a materialised `ActorRef` (a stream needs no actor system), and the
//!   acknowledgement is a message the stream builds with a closure. The
//!   acknowledging sink asks with a timeout (`ack_timeout`) and sends no
//!   init message before the first element.
//! - **Invalid sizes are clamped, not panics**: `grouped(0)`,
//!   `buffer(0, ..)`, `map_async(0, ..)`, a junction of 0 ports and a zero
//!   channel capacity count as 1.
//! - **Fan-out junctions have buffers**: each outlet of a broadcast,
//!   balance or partition holds up to 16 elements, as an async boundary
//!   does; a balance may therefore hand a slow consumer up to 16 elements
//!   before it routes around it.
//! - **Hubs live as long as their handles**: a merge hub completes when no
//!   handle is left and its producers have finished, as a channel does.
//! - **Sinks that take everything pull in batches**: `fold`, `collect`,
//!   `foreach` and `ignore` ask their island for up to 128 elements at a
//!   time, so an element-wise run of stages (`map`, `filter`, `filter_map`,
//!   `skip`, or a custom stage whose [`Stage::is_elementwise`] says so)
//!   hands a whole batch on in one call. Nothing is pulled that was not
//!   asked for, and no element is lost: a stage behind a `take` still pulls
//!   one at a time. What changes is the interleaving of side effects: a
//!   `foreach` may see element 1 after the stages before it have handled
//!   element 128.
//!
//! # Not built yet
//!
//! Stages across nodes: the boundary protocol is ready for it (its signals
//! are serde data in [`protocol::wire`], each end's accounting a plain
//! value, and a test runs a stream across a loopback of postcard bytes),
//! but no operator carries it over compaktor's remoting yet. Supervision
//! of sources, sinks and junctions, and of `fold`'s accumulator on
//! restart; Akka's restart-with-backoff wrappers (`RestartSource` and
//! friends). Live edits reach only what a
//! graph declares editable (slots, which a builder graph may put on every
//! edge, removable nodes and segments, and tunable parameters): a stage
//! fused into its island without being declared removable cannot be
//! removed (making every stage removable would cost every stage an
//! indirection), an edge of a linear pipeline takes stages only where an
//! `editable` slot was placed, and a slot's segments restart their state
//! and their statistics at each edit (a snapshot lists them under
//! [`GraphStats::slots`], apart from the stages fixed at the start).
//! Only sinks that take everything pull in
//! batches; a stage with bounded demand (a `take`, an async boundary's
//! buffer, an actor sink) still crosses one dynamically dispatched
//! `poll_next` per element and stage.
//!
//! # Map
//!
//! | need | look at |
//! |---|---|
//! | build a pipeline | [`Source`], [`Flow`], [`Sink`], [`Keep`] |
//! | build a graph | [`GraphBuilder`], [`InPort`], [`OutPort`], [`Materialized`], [`GraphError`] |
//! | attach streams at runtime | [`MergeHub`], [`BroadcastHub`] |
//! | run it | [`RunnableGraph`], [`Completion`], [`KillSwitch`] |
//! | write an operator | [`Stage`], [`Outlet`], [`Timers`], [`Tuned`] |
//! | handle a stage's errors | [`Decider`], [`Directive`] |
//! | use actors in a stream | [`Flow::ask`], [`Source::actor_ref_with_backpressure`], [`ActorSourceRef`], [`Sink::actor_ref_with_backpressure`], [`SourceClosed`] |
//! | plug in a producer or consumer | [`protocol`], [`StreamPublisher`] |
//! | carry a boundary over bytes | [`protocol::wire`] |
//! | watch it | [`StreamMonitor`], [`GraphStats`], [`StageStats`], [`GraphShape`] |
//! | manage, describe and edit it | [`GraphManager`], [`GraphDescription`], [`Segment`], [`Tunable`], [`ThrottleRate`], [`EditError`], [`ManagerError`] |

mod boundary;
mod builder;
mod editable;
mod error;
mod fan_in;
mod fan_out;
mod flow;
mod graph;
mod handoff;
mod hub;
mod interop;
mod kill_switch;
mod manager;
mod ops;
pub mod protocol;
mod publisher;
mod shape;
mod sink;
mod source;
mod stage;
mod stats;
mod supervision;
mod timers;
mod tunable;

pub use builder::{FanInPorts, FanOutPorts, GraphBuilder, InPort, MatKey, Materialized, OutPort, ZipPorts};
pub use editable::Segment;
pub use error::{EditError, GraphError, ManagerError, SourceClosed, StreamError};
pub use flow::Flow;
pub use graph::{Completion, Keep, RunnableGraph};
pub use hub::{BroadcastHub, MergeHub};
pub use interop::ActorSourceRef;
pub use kill_switch::KillSwitch;
pub use manager::{
    GraphDescription, GraphManager, GraphStatus, NodeDescription, NodeStats, ParameterDescription, SegmentDescription,
    SlotDescription,
};
pub use ops::OverflowStrategy;
pub use publisher::StreamPublisher;
pub use shape::{EdgeShape, GraphShape, NodeKind, NodeShape};
pub use sink::Sink;
pub use source::Source;
pub use stage::{Outlet, Stage};
pub use stats::{GraphStats, StageState, StageStats, StreamMonitor};
pub use supervision::{Decider, Directive};
pub use timers::Timers;
pub use tunable::{ThrottleRate, Tunable, Tuned};
