//! [`GraphBuilder`]: graphs that are not a line, with fan-out and fan-in
//! junctions, built from named nodes and checked before they run.
//!
//! Each node is a [`Source`], [`Flow`] or [`Sink`] blueprint or a junction,
//! with typed ports; [`connect`](GraphBuilder::connect) joins an outlet to
//! an inlet of the same element type. [`build`](GraphBuilder::build) checks
//! that every port is connected exactly once and that there is no cycle,
//! and records the [`GraphShape`] (nodes and edges) that the running graph
//! can be described by.
//!
//! How it runs: fan-in junctions are fused with their inputs; a fan-out
//! junction runs its upstream on a task of its own and hands elements to
//! each outlet through a buffer of 16, at the pace its outlets' demand
//! allows (see [`broadcast`](GraphBuilder::broadcast)). An edge that closes
//! an allowed cycle gets a buffer of 16 of its own.

mod nodes;
mod ports;
mod topology;

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use nodes::{erased, feedback, materialise, typed, BuildNode, Edge, Node};
pub use ports::{FanInPorts, FanOutPorts, InPort, MatKey, Materialized, OutPort, ZipPorts};

use crate::boundary::DEFAULT_BUFFER;
use crate::editable::Segment;
use crate::error::GraphError;
use crate::fan_in;
use crate::fan_out::{self, Rule};
use crate::flow::Flow;
use crate::graph::{Materializer, RunnableGraph};
use crate::shape::{EdgeShape, GraphShape, NodeKind, NodeShape};
use crate::sink::Sink;
use crate::source::Source;
use crate::stage::BoxUpstream;

/// Tells builders apart, so that a port of one is refused by another.
static NEXT_BUILDER: AtomicU64 = AtomicU64::new(1);

/// Builds a graph of named nodes joined by typed ports: fan-out
/// (broadcast, balance, partition), fan-in (merge, merge-preferred, zip,
/// concat), and cycles if [allowed](GraphBuilder::allow_cycles).
///
/// Adding a [`source`](GraphBuilder::source), [`flow`](GraphBuilder::flow)
/// or [`sink`](GraphBuilder::sink) gives its ports and a [`MatKey`] for its
/// materialised value; [`build`](GraphBuilder::build) gives a
/// [`RunnableGraph`] whose value, a [`Materialized`], hands them out.
/// Every node's stages report statistics under the node's name
/// ([`StageStats::node`](crate::StageStats::node)).
///
/// ```
/// use compaktor_streams::{Flow, GraphBuilder, Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // numbers ─▶ fan ─┬─▶ evens ─▶ sum
/// //                 └─▶ all
/// let mut g = GraphBuilder::new();
/// let (numbers, _) = g.source("numbers", Source::from_iter(1..=10u64));
/// let fan = g.broadcast("fan", 2);
/// let (evens_in, evens_out, _) = g.flow("evens", Flow::new().filter(|n: &u64| n % 2 == 0));
/// let (sum_in, sum) = g.sink("sum", Sink::fold(0, |a, n| a + n));
/// let (all_in, all) = g.sink("all", Sink::collect());
/// g.connect(numbers, fan.inlet);
/// g.connect(fan.outlets[0], evens_in);
/// g.connect(evens_out, sum_in);
/// g.connect(fan.outlets[1], all_in);
///
/// let mut running = g.build()?.run();
/// assert_eq!(running.take(sum).await?, 30);
/// assert_eq!(running.take(all).await?.len(), 10);
/// # Ok(())
/// # }
/// ```
pub struct GraphBuilder {
    id: u64,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    slots: usize,
    allow_cycles: bool,
    editable_edges: bool,
    problem: Option<GraphError>,
}

impl fmt::Debug for GraphBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.nodes.iter().map(|n| &*n.name).collect();
        f.debug_struct("GraphBuilder")
            .field("nodes", &names)
            .field("edges", &self.edges.len())
            .field("allow_cycles", &self.allow_cycles)
            .finish()
    }
}

impl Default for GraphBuilder {
    fn default() -> Self {
        GraphBuilder::new()
    }
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        GraphBuilder {
            id: NEXT_BUILDER.fetch_add(1, Ordering::Relaxed),
            nodes: Vec::new(),
            edges: Vec::new(),
            slots: 0,
            allow_cycles: false,
            editable_edges: false,
            problem: None,
        }
    }

    /// Accepts cycles: each edge that closes one runs through a buffer of
    /// 16 elements. A cycle must not fill its buffers (an element that
    /// goes round and round and multiplies will deadlock it), and a merge
    /// inside a cycle completes only when the cycle's edge does: end such a
    /// graph with [`take`](crate::Flow::take) or a [`KillSwitch`](crate::KillSwitch) in the cycle.
    pub fn allow_cycles(&mut self) -> &mut Self {
        self.allow_cycles = true;
        self
    }

    /// Makes every edge [connected](GraphBuilder::connect) from now on
    /// editable while the graph runs, as
    /// [`connect_editable`](GraphBuilder::connect_editable) does, with
    /// the slot named `from->to` after the edge's nodes (`from->to#2`,
    /// `#3`, ... for further edges between the same two nodes). Each slot
    /// is a node of its own in the graph's shape. An empty slot passes
    /// elements on at the cost of an atomic load and an uncontended lock
    /// per batch of elements, and fuses with its neighbours.
    pub fn editable_edges(&mut self) -> &mut Self {
        self.editable_edges = true;
        self
    }

    fn fail(&mut self, problem: GraphError) {
        self.problem.get_or_insert(problem);
    }

    fn add(&mut self, name: String, kind: NodeKind, ports: (usize, usize), mat: bool, build: BuildNode) -> usize {
        if self.nodes.iter().any(|n| *n.name == name) {
            self.fail(GraphError::DuplicateName { name: name.clone() });
        }
        let slot = mat.then(|| {
            self.slots += 1;
            self.slots - 1
        });
        self.nodes.push(Node {
            name: name.into(),
            kind,
            inlets: vec![None; ports.0],
            outlets: vec![None; ports.1],
            build,
            slot,
        });
        self.nodes.len() - 1
    }

    fn inlet<T>(&self, node: usize, port: usize) -> InPort<T> {
        InPort {
            graph: self.id,
            node,
            port,
            _t: PhantomData,
        }
    }

    fn outlet<T>(&self, node: usize, port: usize) -> OutPort<T> {
        OutPort {
            graph: self.id,
            node,
            port,
            _t: PhantomData,
        }
    }

    fn key<M>(&self, node: usize) -> MatKey<M> {
        MatKey {
            graph: self.id,
            slot: self.nodes[node].slot.unwrap_or(usize::MAX),
            _m: PhantomData,
        }
    }

    /// Adds a source node: its outlet, and the key to its materialised value.
    pub fn source<T, M>(&mut self, name: impl Into<String>, source: Source<T, M>) -> (OutPort<T>, MatKey<M>)
    where
        T: Send + 'static,
        M: Send + 'static,
    {
        let build: BuildNode = Box::new(move |_, m| {
            let (upstream, mat) = source.build(m);
            (vec![(erased(upstream), m.feed())], Some(Box::new(mat)))
        });
        let node = self.add(name.into(), NodeKind::Source, (0, 1), true, build);
        (self.outlet(node, 0), self.key(node))
    }

    /// Adds a flow node: its inlet, its outlet, and the key to its materialised value.
    pub fn flow<In, Out, M>(
        &mut self,
        name: impl Into<String>,
        flow: Flow<In, Out, M>,
    ) -> (InPort<In>, OutPort<Out>, MatKey<M>)
    where
        In: Send + 'static,
        Out: Send + 'static,
        M: Send + 'static,
    {
        let build: BuildNode = Box::new(move |mut inputs, m| {
            let upstream = typed::<In>(inputs.remove(0));
            let (upstream, mat) = flow.build(upstream, m);
            (vec![(erased(upstream), m.feed())], Some(Box::new(mat)))
        });
        let node = self.add(name.into(), NodeKind::Flow, (1, 1), true, build);
        (self.inlet(node, 0), self.outlet(node, 0), self.key(node))
    }

    /// Adds a flow node that can be removed while the graph runs, its
    /// neighbours spliced together without losing or duplicating an
    /// element: an editable slot named `name` holding `flow` as its one
    /// segment, also named `name` ([`Segment::from_flow`]). Remove it with
    /// [`GraphManager::remove_segment`](crate::GraphManager::remove_segment)`(graph, name, name)`.
    /// Its elements keep their type, so removing it changes no types
    /// around it; to insert stages next to it, use
    /// [`editable_edges`](Self::editable_edges) or
    /// [`connect_editable`](Self::connect_editable).
    pub fn removable<T: Send + 'static>(
        &mut self,
        name: impl Into<String>,
        flow: Flow<T, T>,
    ) -> (InPort<T>, OutPort<T>) {
        let name = name.into();
        let slot = Flow::new().editable(name.clone(), [Segment::from_flow(name.clone(), flow)]);
        let (inlet, outlet, _) = self.flow(name, slot);
        (inlet, outlet)
    }

    /// Adds a sink node: its inlet, and the key to its materialised value.
    pub fn sink<T, M>(&mut self, name: impl Into<String>, sink: Sink<T, M>) -> (InPort<T>, MatKey<M>)
    where
        T: Send + 'static,
        M: Send + 'static,
    {
        let build: BuildNode = Box::new(move |mut inputs, m| {
            let mat = sink.build(typed::<T>(inputs.remove(0)), m);
            (Vec::new(), Some(Box::new(mat)))
        });
        let node = self.add(name.into(), NodeKind::Sink, (1, 0), true, build);
        (self.inlet(node, 0), self.key(node))
    }

    fn fan_out<T: Send + 'static>(
        &mut self,
        name: String,
        kind: NodeKind,
        outlets: usize,
        rule: Rule<T>,
    ) -> FanOutPorts<T> {
        let outlets = outlets.max(1);
        let stage = match kind {
            NodeKind::Broadcast => "broadcast",
            NodeKind::Balance => "balance",
            _ => "partition",
        };
        let build: BuildNode = Box::new(move |mut inputs, m| {
            let upstream = typed::<T>(inputs.remove(0));
            let outputs = fan_out::spawn(stage, upstream, (rule, false), outlets, DEFAULT_BUFFER, m)
                .into_iter()
                .map(|(upstream, input)| (erased(upstream), input))
                .collect();
            (outputs, None)
        });
        let node = self.add(name, kind, (1, outlets), false, build);
        FanOutPorts {
            inlet: self.inlet(node, 0),
            outlets: (0..outlets).map(|k| self.outlet(node, k)).collect(),
        }
    }

    /// Adds a broadcast junction with `outlets` outlets (at least 1): every
    /// element goes to every outlet, so it goes at the pace of the slowest
    /// (each outlet may run up to 16 elements ahead of it). A cancelled
    /// outlet no longer holds the others back; when all have cancelled, so
    /// does the junction.
    pub fn broadcast<T: Clone + Send + 'static>(&mut self, name: impl Into<String>, outlets: usize) -> FanOutPorts<T> {
        let rule = Rule::Broadcast { clone: T::clone };
        self.fan_out(name.into(), NodeKind::Broadcast, outlets, rule)
    }

    /// Adds a balance junction with `outlets` outlets (at least 1): each
    /// element goes to one outlet that has demand, taking turns among
    /// those that do, so faster consumers get more.
    pub fn balance<T: Send + 'static>(&mut self, name: impl Into<String>, outlets: usize) -> FanOutPorts<T> {
        self.fan_out(name.into(), NodeKind::Balance, outlets, Rule::Balance)
    }

    /// Adds a partition junction with `outlets` outlets (at least 1): each
    /// element goes to the outlet `partition` returns. An element waits for
    /// its outlet's demand, holding up those behind it; an element for a
    /// cancelled outlet is dropped; an outlet number out of range fails the
    /// stream with [`StreamError::PartitionOutOfBounds`](crate::StreamError::PartitionOutOfBounds).
    pub fn partition<T: Send + 'static>(
        &mut self,
        name: impl Into<String>,
        outlets: usize,
        partition: impl FnMut(&T) -> usize + Send + 'static,
    ) -> FanOutPorts<T> {
        let rule = Rule::Partition(Box::new(partition));
        self.fan_out(name.into(), NodeKind::Partition, outlets, rule)
    }

    fn fan_in<T: Send + 'static>(&mut self, name: String, kind: NodeKind, inlets: usize) -> FanInPorts<T> {
        let inlets = inlets.max(1);
        let build: BuildNode = Box::new(move |inputs, m| {
            let inputs: Vec<BoxUpstream<T>> = inputs.into_iter().map(typed::<T>).collect();
            let upstream = match kind {
                NodeKind::Concat => fan_in::concat(inputs, m),
                _ => fan_in::merge(inputs, kind == NodeKind::MergePreferred, m),
            };
            (vec![(erased(upstream), m.feed())], None)
        });
        let node = self.add(name, kind, (inlets, 1), false, build);
        FanInPorts {
            inlets: (0..inlets).map(|k| self.inlet(node, k)).collect(),
            outlet: self.outlet(node, 0),
        }
    }

    /// Adds a merge junction with `inlets` inlets (at least 1): passes on
    /// elements from all of them as they come, taking turns so that no
    /// inlet is starved; completes when all have completed, fails when any fails.
    pub fn merge<T: Send + 'static>(&mut self, name: impl Into<String>, inlets: usize) -> FanInPorts<T> {
        self.fan_in(name.into(), NodeKind::Merge, inlets)
    }

    /// Adds a merge junction whose inlet 0 is preferred: whenever it has an
    /// element, that one goes first; the other inlets take turns.
    pub fn merge_preferred<T: Send + 'static>(&mut self, name: impl Into<String>, inlets: usize) -> FanInPorts<T> {
        self.fan_in(name.into(), NodeKind::MergePreferred, inlets)
    }

    /// Adds a concat junction with `inlets` inlets (at least 1): all
    /// elements of inlet 0, then of inlet 1, and so on. An inlet is not
    /// asked for anything until those before it have completed, so do not
    /// feed two inlets from one broadcast without a buffer.
    pub fn concat<T: Send + 'static>(&mut self, name: impl Into<String>, inlets: usize) -> FanInPorts<T> {
        self.fan_in(name.into(), NodeKind::Concat, inlets)
    }

    /// Adds a zip junction: pairs the n-th elements of its two inlets;
    /// completes as soon as either inlet has completed.
    pub fn zip<A: Send + 'static, B: Send + 'static>(&mut self, name: impl Into<String>) -> ZipPorts<A, B> {
        let build: BuildNode = Box::new(move |mut inputs, m| {
            let right = typed::<B>(inputs.remove(1));
            let left = typed::<A>(inputs.remove(0));
            let upstream = fan_in::zip(left, right, m);
            (vec![(erased(upstream), m.feed())], None)
        });
        let node = self.add(name.into(), NodeKind::Zip, (2, 1), false, build);
        ZipPorts {
            left: self.inlet(node, 0),
            right: self.inlet(node, 1),
            outlet: self.outlet(node, 0),
        }
    }

    /// Connects an outlet to an inlet. Mistakes (either port already
    /// connected, a port of another builder) are reported by
    /// [`build`](GraphBuilder::build).
    pub fn connect<T: Send + 'static>(&mut self, from: OutPort<T>, to: InPort<T>) {
        if self.editable_edges && from.graph == self.id && to.graph == self.id {
            let name = self.edge_name(from.node, to.node);
            return self.connect_editable(from, to, name);
        }
        self.join(from, to);
    }

    /// Connects an outlet to an inlet through an empty editable slot
    /// called `slot`, a flow node of that name: a
    /// [`GraphManager`](crate::GraphManager) running the graph can then
    /// insert stages on this edge and remove them again while elements
    /// flow, as for any [`editable`](crate::Flow::editable) slot.
    ///
    /// ```
    /// use compaktor_streams::{Flow, GraphBuilder, GraphManager, Segment, Sink, Source};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut g = GraphBuilder::new();
    /// let (numbers, _) = g.source("numbers", Source::from_iter(1..=3u32));
    /// let (total_in, total) = g.sink("total", Sink::fold(0, |a, n| a + n));
    /// g.connect_editable(numbers, total_in, "tap");
    /// let manager = GraphManager::new();
    /// let mut graph = manager.add("sums", g.build()?)?;
    /// let tenfold = Segment::new("tenfold", || Flow::new().map(|n: u32| n * 10));
    /// manager.insert_segment("sums", "tap", 0, tenfold)?;
    /// manager.start("sums")?;
    /// assert_eq!(graph.take(total).await?, 60);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_editable<T: Send + 'static>(&mut self, from: OutPort<T>, to: InPort<T>, slot: impl Into<String>) {
        if from.graph != self.id || to.graph != self.id {
            return self.fail(GraphError::ForeignPort);
        }
        let slot = slot.into();
        let (slot_in, slot_out, _) = self.flow(slot.clone(), Flow::new().editable(slot, Vec::new()));
        self.join(from, slot_in);
        self.join(slot_out, to);
    }

    /// `from->to`, numbered if the name is taken.
    fn edge_name(&self, from: usize, to: usize) -> String {
        let base = format!("{}->{}", self.nodes[from].name, self.nodes[to].name);
        let taken = |name: &str| self.nodes.iter().any(|n| &*n.name == name);
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|n| format!("{base}#{n}"))
            .find(|name| !taken(name))
            .unwrap_or(base)
    }

    fn join<T: Send + 'static>(&mut self, from: OutPort<T>, to: InPort<T>) {
        if from.graph != self.id || to.graph != self.id {
            return self.fail(GraphError::ForeignPort);
        }
        let edge = self.edges.len();
        if self.nodes[from.node].outlets[from.port].is_some() {
            let node = self.nodes[from.node].name.to_string();
            return self.fail(GraphError::OutletConnectedTwice { node, index: from.port });
        }
        if self.nodes[to.node].inlets[to.port].is_some() {
            let node = self.nodes[to.node].name.to_string();
            return self.fail(GraphError::InletConnectedTwice { node, index: to.port });
        }
        self.nodes[from.node].outlets[from.port] = Some(edge);
        self.nodes[to.node].inlets[to.port] = Some(edge);
        self.edges.push(Edge {
            from: (from.node, from.port),
            to: (to.node, to.port),
            feedback: feedback::<T>,
        });
    }

    /// Checks the graph and makes it runnable.
    ///
    /// # Errors
    /// The first wiring mistake made while building; otherwise
    /// [`GraphError::UnconnectedInlet`] / [`UnconnectedOutlet`](GraphError::UnconnectedOutlet)
    /// for the first port left open, or [`GraphError::Cycle`] for a cycle
    /// unless [`allow_cycles`](GraphBuilder::allow_cycles) was called.
    pub fn build(self) -> Result<RunnableGraph<Materialized>, GraphError> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        for node in &self.nodes {
            if let Some(index) = node.inlets.iter().position(Option::is_none) {
                let node = node.name.to_string();
                return Err(GraphError::UnconnectedInlet { node, index });
            }
            if let Some(index) = node.outlets.iter().position(Option::is_none) {
                let node = node.name.to_string();
                return Err(GraphError::UnconnectedOutlet { node, index });
            }
        }
        let pairs: Vec<(usize, usize)> = self.edges.iter().map(|e| (e.from.0, e.to.0)).collect();
        let plan = topology::plan(self.nodes.len(), &pairs, self.allow_cycles).map_err(|cycle| GraphError::Cycle {
            nodes: cycle.iter().map(|&n| self.nodes[n].name.to_string()).collect(),
        })?;
        let shape = GraphShape {
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeShape {
                    name: n.name.to_string(),
                    kind: n.kind,
                    inlets: n.inlets.len(),
                    outlets: n.outlets.len(),
                })
                .collect(),
            edges: self
                .edges
                .iter()
                .zip(&plan.feedback)
                .map(|(e, &feedback)| EdgeShape {
                    from: self.nodes[e.from.0].name.to_string(),
                    from_port: e.from.1,
                    to: self.nodes[e.to.0].name.to_string(),
                    to_port: e.to.1,
                    feedback,
                })
                .collect(),
        };
        let (graph, nodes, edges, slots) = (self.id, self.nodes, self.edges, self.slots);
        let build = move |m: &mut Materializer| materialise(graph, nodes, &edges, &plan, slots, m);
        Ok(RunnableGraph::with_shape(Box::new(build), shape))
    }
}
