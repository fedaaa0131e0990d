//! The type-erased nodes and edges a [`GraphBuilder`](super::GraphBuilder)
//! records, and their materialisation, upstream first.

use std::any::Any;
use std::sync::Arc;

use super::ports::Materialized;
use super::topology::Plan;
use crate::boundary::{self, DEFAULT_BUFFER};
use crate::graph::Materializer;
use crate::shape::NodeKind;
use crate::stage::BoxUpstream;
use crate::stats::Input;

/// A `BoxUpstream<T>` whose `T` the node that receives it knows.
pub(super) type AnyUpstream = Box<dyn Any + Send>;
pub(super) type AnyMat = Box<dyn Any + Send>;
pub(super) type Outputs = Vec<(AnyUpstream, Input)>;
pub(super) type BuildNode = Box<dyn FnOnce(Vec<AnyUpstream>, &mut Materializer) -> (Outputs, Option<AnyMat>) + Send>;
pub(super) type Attach = Box<dyn FnOnce(AnyUpstream, &mut Materializer) + Send>;
/// Makes the buffer of a feedback edge: its receiving end, the end's
/// statistics id, and what attaches its upstream later.
pub(super) type MakeFeedback = fn(&mut Materializer) -> (AnyUpstream, usize, Attach);

pub(super) fn typed<T: 'static>(upstream: AnyUpstream) -> BoxUpstream<T> {
    *upstream
        .downcast::<BoxUpstream<T>>()
        .expect("connect only joins ports of one element type")
}

pub(super) fn erased<T: 'static>(upstream: BoxUpstream<T>) -> AnyUpstream {
    Box::new(upstream)
}

pub(super) fn feedback<T: Send + 'static>(m: &mut Materializer) -> (AnyUpstream, usize, Attach) {
    let (receiver, id, attach) = boundary::deferred::<T>(DEFAULT_BUFFER, m);
    (
        erased(receiver),
        id,
        Box::new(move |upstream, m| attach(typed::<T>(upstream), m)),
    )
}

pub(super) struct Node {
    pub(super) name: Arc<str>,
    pub(super) kind: NodeKind,
    /// The edge into each inlet, once connected.
    pub(super) inlets: Vec<Option<usize>>,
    /// The edge out of each outlet, once connected.
    pub(super) outlets: Vec<Option<usize>>,
    pub(super) build: BuildNode,
    pub(super) slot: Option<usize>,
}

pub(super) struct Edge {
    pub(super) from: (usize, usize),
    pub(super) to: (usize, usize),
    pub(super) feedback: MakeFeedback,
}

/// Builds every node, upstream first, handing each the upstreams of its inlets.
pub(super) fn materialise(
    graph: u64,
    nodes: Vec<Node>,
    edges: &[Edge],
    plan: &Plan,
    slots: usize,
    m: &mut Materializer,
) -> Materialized {
    let mut ready: Vec<Option<(AnyUpstream, Input)>> = edges.iter().map(|_| None).collect();
    let mut attach: Vec<Option<(usize, Attach)>> = edges.iter().map(|_| None).collect();
    for (e, edge) in edges.iter().enumerate() {
        if plan.feedback[e] {
            let (receiver, id, attach_upstream) = (edge.feedback)(m);
            ready[e] = Some((receiver, Input::Stage(id)));
            attach[e] = Some((id, attach_upstream));
        }
    }
    let mut values: Vec<Option<AnyMat>> = (0..slots).map(|_| None).collect();
    let mut nodes: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    for &n in &plan.order {
        let Some(node) = nodes[n].take() else { continue };
        let mut inputs = Vec::with_capacity(node.inlets.len());
        let mut feed = Input::Nothing;
        for (i, edge) in node.inlets.iter().enumerate() {
            let (upstream, input) = edge
                .and_then(|e| ready[e].take())
                .expect("build checked the inlets and ordered upstream first");
            if i == 0 {
                feed = input;
            }
            inputs.push(upstream);
        }
        m.set_feed(feed);
        m.set_node(Some(Arc::clone(&node.name)));
        let (outputs, mat) = (node.build)(inputs, m);
        for ((upstream, input), edge) in outputs.into_iter().zip(&node.outlets) {
            let Some(e) = *edge else { continue };
            match attach[e].take() {
                Some((id, attach_upstream)) => {
                    m.set_input(id, input);
                    attach_upstream(upstream, m);
                }
                None => ready[e] = Some((upstream, input)),
            }
        }
        if let (Some(slot), Some(mat)) = (node.slot, mat) {
            values[slot] = Some(mat);
        }
    }
    m.set_node(None);
    Materialized { graph, values }
}
