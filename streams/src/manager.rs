//! [`GraphManager`]: running (and not yet started) graphs kept by name,
//! described on demand with their live statistics, and edited while they run.
//!
//! The semantics users rely on are on [`GraphManager`] (what can be
//! edited, what the manager holds) and [`Segment`] (how a slot is edited).

mod description;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::future::BoxFuture;

pub use description::{
    GraphDescription, GraphStatus, NodeDescription, NodeStats, ParameterDescription, SegmentDescription,
    SlotDescription,
};

use crate::editable::{Segment, SlotHandle, SlotShared};
use crate::error::{EditError, ManagerError};
use crate::graph::{Controls, RunnableGraph};
use crate::stats::StreamMonitor;
use crate::tunable::Tunable;

/// Keeps graphs by name: starts them, describes them (JSON, DOT) with
/// their live statistics, and edits their slots and parameters while they
/// run. Cheap to clone: clones share the graphs.
///
/// # What can be edited
///
/// The manager edits what a graph declares editable, and nothing else:
///
/// - **Parameters**: a stage built with a [`Tunable`](crate::Tunable)
///   ([`filter_tunable`](crate::Flow::filter_tunable),
///   [`throttle_tunable`](crate::Flow::throttle_tunable), or a custom
///   stage reading a [`Tuned`](crate::Tuned) copy, registered with
///   [`with_tunable`](crate::Flow::with_tunable)) reads it between
///   elements; [`set_parameter`](GraphManager::set_parameter) changes it by
///   name. The stage keeps its state (a throttle its saved tokens).
/// - **Stages on an edge**: an [`editable`](crate::Flow::editable) slot
///   holds a chain of named [`Segment`]s;
///   [`insert_segment`](GraphManager::insert_segment),
///   [`remove_segment`](GraphManager::remove_segment) (its neighbours are
///   spliced) and [`replace_segment`](GraphManager::replace_segment)
///   change it. The slot drains its running chain before it builds the
///   new one, so no element is lost or duplicated and order is kept; the
///   segments' state starts afresh. [`Segment`] has the details and
///   limits. In a [`GraphBuilder`](crate::GraphBuilder) graph,
///   [`editable_edges`](crate::GraphBuilder::editable_edges) puts an
///   empty slot on every edge (or
///   [`connect_editable`](crate::GraphBuilder::connect_editable) on one);
///   in a linear pipeline, put an empty slot where you may want a stage
///   later. A stage that may have to go is declared so: a builder node
///   added with [`removable`](crate::GraphBuilder::removable), or a
///   segment made with [`Segment::from_flow`]. Other stages are fused
///   into their island for speed and cannot be removed or replaced.
///
/// Edits work the same on a graph that has not started: they change what
/// will run. An edit never waits; it takes effect on the slot's own task,
/// before its next element.
///
/// # Lifetime
///
/// The manager holds a graph's statistics and edit handles, not the
/// graph: a started graph runs until it ends, whether it is managed or
/// not. [`remove`](GraphManager::remove) forgets a graph (and drops one
/// that never started, cancelling its sources); to stop a running graph,
/// give it a [`KillSwitch`](crate::KillSwitch).
///
/// ```
/// use std::time::Duration;
/// use compaktor_streams::{GraphManager, Keep, Sink, Source, ThrottleRate, Tunable};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = GraphManager::new();
/// let rate = Tunable::new("rate", ThrottleRate::new(1_000, Duration::from_secs(1), 10));
/// let graph = Source::from_iter(0..100u32)
///     .throttle_tunable(rate)
///     .to_mat(Sink::collect(), Keep::right);
/// let all = manager.run("numbers", graph)?;
/// manager.set_parameter("numbers", "rate", ThrottleRate::new(100_000, Duration::from_secs(1), 100))?;
/// assert_eq!(all.await?.len(), 100);
///
/// let described = manager.describe("numbers")?;
/// assert!(described.to_dot().contains("throttle#1"));
/// println!("{}", described.to_json());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct GraphManager {
    graphs: Arc<Mutex<BTreeMap<String, Managed>>>,
}

struct Managed {
    monitor: StreamMonitor,
    /// The islands, until the graph starts.
    tasks: Option<Vec<BoxFuture<'static, ()>>>,
    controls: Controls,
}

impl fmt::Debug for GraphManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphManager").field("graphs", &self.names()).finish()
    }
}

impl GraphManager {
    /// A manager with no graphs.
    pub fn new() -> Self {
        GraphManager::default()
    }

    // No user code runs under this lock: a poisoned one still holds consistent state.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Managed>> {
        self.graphs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Materialises `graph` under `name` without starting it, and returns
    /// its materialised value (a completion stays pending until the graph
    /// is [started](GraphManager::start) and done).
    ///
    /// # Errors
    /// [`ManagerError::DuplicateGraph`] if the name is taken; `graph` is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime, if a stage needs one to be built (a `tick` source).
    pub fn add<Mat>(&self, name: impl Into<String>, graph: RunnableGraph<Mat>) -> Result<Mat, ManagerError> {
        let name = name.into();
        if self.lock().contains_key(&name) {
            return Err(ManagerError::DuplicateGraph { name });
        }
        // Building runs user code: not under the lock.
        let prepared = graph.prepare();
        let mut graphs = self.lock();
        if graphs.contains_key(&name) {
            return Err(ManagerError::DuplicateGraph { name });
        }
        graphs.insert(
            name,
            Managed {
                monitor: prepared.monitor,
                tasks: Some(prepared.tasks),
                controls: prepared.controls,
            },
        );
        Ok(prepared.mat)
    }

    /// Starts a graph [added](GraphManager::add) before.
    ///
    /// # Errors
    /// [`ManagerError::UnknownGraph`], or [`ManagerError::AlreadyStarted`].
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn start(&self, name: &str) -> Result<(), ManagerError> {
        let tasks = {
            let mut graphs = self.lock();
            let managed = graphs
                .get_mut(name)
                .ok_or_else(|| ManagerError::UnknownGraph { name: name.to_owned() })?;
            managed
                .tasks
                .take()
                .ok_or_else(|| ManagerError::AlreadyStarted { name: name.to_owned() })?
        };
        for island in tasks {
            tokio::spawn(island);
        }
        Ok(())
    }

    /// [`add`](GraphManager::add)s and [`start`](GraphManager::start)s `graph`.
    ///
    /// # Errors
    /// [`ManagerError::DuplicateGraph`] if the name is taken; `graph` is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn run<Mat>(&self, name: impl Into<String>, graph: RunnableGraph<Mat>) -> Result<Mat, ManagerError> {
        let name = name.into();
        let mat = self.add(name.clone(), graph)?;
        self.start(&name)?;
        Ok(mat)
    }

    /// The names of the managed graphs, in order.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The live statistics of a managed graph.
    pub fn monitor(&self, name: &str) -> Option<StreamMonitor> {
        self.lock().get(name).map(|m| m.monitor.clone())
    }

    /// Forgets a graph and returns its monitor. A started graph goes on
    /// running; one that never started is dropped, which cancels it.
    ///
    /// # Errors
    /// [`ManagerError::UnknownGraph`].
    pub fn remove(&self, name: &str) -> Result<StreamMonitor, ManagerError> {
        let managed = self
            .lock()
            .remove(name)
            .ok_or_else(|| ManagerError::UnknownGraph { name: name.to_owned() })?;
        // The islands of a graph that never ran, dropped outside the lock.
        drop(managed.tasks);
        Ok(managed.monitor)
    }

    /// The graph's nodes, edges, parameters and each node's statistics now.
    ///
    /// # Errors
    /// [`ManagerError::UnknownGraph`].
    pub fn describe(&self, name: &str) -> Result<GraphDescription, ManagerError> {
        let graphs = self.lock();
        let managed = graphs
            .get(name)
            .ok_or_else(|| ManagerError::UnknownGraph { name: name.to_owned() })?;
        Ok(GraphDescription::new(
            name,
            managed.tasks.is_none(),
            &managed.monitor,
            &managed.controls,
        ))
    }

    /// Sets the [`Tunable`] parameter called `parameter` in graph `graph`
    /// to `value`; its stages use it from their next element on.
    ///
    /// # Errors
    /// [`EditError::UnknownGraph`], [`EditError::UnknownParameter`], or
    /// [`EditError::WrongType`] if the parameter is not a `P`.
    pub fn set_parameter<P>(&self, graph: &str, parameter: &str, value: P) -> Result<(), EditError>
    where
        P: Clone + fmt::Debug + Send + 'static,
    {
        let graphs = self.lock();
        let managed = managed(&graphs, graph)?;
        let handle = managed
            .controls
            .tunables
            .iter()
            .find(|t| t.name() == parameter)
            .ok_or_else(|| EditError::UnknownParameter {
                graph: graph.to_owned(),
                name: parameter.to_owned(),
            })?;
        let tunable = handle
            .as_any()
            .downcast_ref::<Tunable<P>>()
            .ok_or_else(|| EditError::WrongType {
                name: parameter.to_owned(),
            })?;
        tunable.set(value);
        Ok(())
    }

    /// Inserts `segment` into slot `slot` before the segment at `index`
    /// (0 is right after the slot's upstream, the number of segments right
    /// before its downstream).
    ///
    /// # Errors
    /// [`EditError::UnknownGraph`], [`EditError::UnknownSlot`],
    /// [`EditError::WrongType`] if the slot's elements are not `T`,
    /// [`EditError::DuplicateSegment`], [`EditError::IndexOutOfRange`],
    /// or [`EditError::Finished`].
    pub fn insert_segment<T: Send + 'static>(
        &self,
        graph: &str,
        slot: &str,
        index: usize,
        segment: Segment<T>,
    ) -> Result<(), EditError> {
        let graphs = self.lock();
        typed_slot::<T>(managed(&graphs, graph)?, graph, slot)?.insert(index, segment)
    }

    /// Replaces the segment of slot `slot` that has `segment`'s name.
    ///
    /// # Errors
    /// [`EditError::UnknownGraph`], [`EditError::UnknownSlot`],
    /// [`EditError::WrongType`], [`EditError::UnknownSegment`], or
    /// [`EditError::Finished`].
    pub fn replace_segment<T: Send + 'static>(
        &self,
        graph: &str,
        slot: &str,
        segment: Segment<T>,
    ) -> Result<(), EditError> {
        let graphs = self.lock();
        typed_slot::<T>(managed(&graphs, graph)?, graph, slot)?.replace(segment)
    }

    /// Removes segment `segment` from slot `slot`, joining its neighbours.
    ///
    /// # Errors
    /// [`EditError::UnknownGraph`], [`EditError::UnknownSlot`],
    /// [`EditError::UnknownSegment`], or [`EditError::Finished`].
    pub fn remove_segment(&self, graph: &str, slot: &str, segment: &str) -> Result<(), EditError> {
        let graphs = self.lock();
        find_slot(managed(&graphs, graph)?, graph, slot)?.remove(segment)
    }
}

fn managed<'a>(graphs: &'a BTreeMap<String, Managed>, graph: &str) -> Result<&'a Managed, EditError> {
    graphs.get(graph).ok_or_else(|| EditError::UnknownGraph {
        graph: graph.to_owned(),
    })
}

fn find_slot<'a>(managed: &'a Managed, graph: &str, slot: &str) -> Result<&'a dyn SlotHandle, EditError> {
    managed
        .controls
        .slots
        .iter()
        .find(|s| s.name() == slot)
        .map(|s| s.as_ref())
        .ok_or_else(|| EditError::UnknownSlot {
            graph: graph.to_owned(),
            slot: slot.to_owned(),
        })
}

fn typed_slot<'a, T: Send + 'static>(
    managed: &'a Managed,
    graph: &str,
    slot: &str,
) -> Result<&'a SlotShared<T>, EditError> {
    find_slot(managed, graph, slot)?
        .as_any()
        .downcast_ref::<SlotShared<T>>()
        .ok_or_else(|| EditError::WrongType { name: slot.to_owned() })
}
