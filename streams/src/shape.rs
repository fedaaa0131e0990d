//! [`GraphShape`]: what a graph built with [`GraphBuilder`](crate::GraphBuilder)
//! is made of, as plain data: its named nodes and the edges between their ports.
//!
//! The shape is fixed when the graph is built and serialises with serde,
//! so it can be stored, compared or turned into a picture; the live
//! numbers of each node are in the [`StreamMonitor`](crate::StreamMonitor)'s
//! snapshots, whose [`StageStats::node`](crate::StageStats::node) names the
//! node a stage belongs to.

use serde::{Deserialize, Serialize};

/// The nodes and edges of a graph, in the order they were added.
///
/// ```
/// use compaktor_streams::{GraphBuilder, NodeKind, Sink, Source};
///
/// # fn main() -> Result<(), compaktor_streams::GraphError> {
/// let mut g = GraphBuilder::new();
/// let (numbers, _) = g.source("numbers", Source::from_iter(0..10u32));
/// let (total, _) = g.sink("total", Sink::ignore());
/// g.connect(numbers, total);
/// let graph = g.build()?;
///
/// let shape = graph.shape().expect("built with the graph DSL");
/// assert_eq!(shape.nodes[0].kind, NodeKind::Source);
/// assert_eq!((shape.edges[0].from.as_str(), shape.edges[0].to.as_str()), ("numbers", "total"));
/// println!("{}", serde_json::to_string_pretty(shape).unwrap());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphShape {
    /// Every node, with a name unique in the graph.
    pub nodes: Vec<NodeShape>,
    /// Every connection from an outlet to an inlet.
    pub edges: Vec<EdgeShape>,
}

impl GraphShape {
    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&NodeShape> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// One node of a [`GraphShape`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeShape {
    /// The name given when the node was added.
    pub name: String,
    /// What the node does.
    pub kind: NodeKind,
    /// How many inputs it has.
    pub inlets: usize,
    /// How many outputs it has.
    pub outlets: usize,
}

/// What a node of a [`GraphShape`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeKind {
    /// A [`Source`](crate::Source): no inlet, one outlet.
    Source,
    /// A [`Flow`](crate::Flow): one inlet, one outlet.
    Flow,
    /// A [`Sink`](crate::Sink): one inlet, no outlet.
    Sink,
    /// Every element to every outlet.
    Broadcast,
    /// Each element to one outlet that has demand.
    Balance,
    /// Each element to the outlet a function picks.
    Partition,
    /// Elements of all inlets, fairly interleaved.
    Merge,
    /// Elements of inlet 0 first, then the others fairly.
    MergePreferred,
    /// Pairs of one element from each of two inlets.
    Zip,
    /// All of inlet 0, then all of inlet 1, and so on.
    Concat,
}

/// A connection from one node's outlet to another node's inlet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EdgeShape {
    /// The upstream node.
    pub from: String,
    /// Which of its outlets.
    pub from_port: usize,
    /// The downstream node.
    pub to: String,
    /// Which of its inlets.
    pub to_port: usize,
    /// Whether this edge closes a cycle; it then runs through a buffer of
    /// its own (see [`GraphBuilder::allow_cycles`](crate::GraphBuilder::allow_cycles)).
    pub feedback: bool,
}
