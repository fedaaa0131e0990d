//! [`GraphDescription`]: what a managed graph is made of, with the live
//! statistics of each node, as plain data that renders as JSON or DOT.

use std::fmt::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::editable::SlotHandle;
use crate::graph::Controls;
use crate::shape::{EdgeShape, NodeKind};
use crate::stats::{GraphStats, Input, StageState, StageStats, StreamMonitor};

/// A managed graph at one moment: its nodes with their statistics, its
/// edges, and its tunable parameters. Serialises with serde; renders as
/// JSON ([`to_json`](GraphDescription::to_json)) and Graphviz DOT
/// ([`to_dot`](GraphDescription::to_dot)).
///
/// A graph built with [`GraphBuilder`](crate::GraphBuilder) is described
/// by its named nodes; a linear pipeline by its stages, each a node named
/// after its operator and stage id (`map#1`), or after its slot for an
/// editable slot. Edges into the junctions of the one-line forms
/// ([`Source::merge`](crate::Source::merge) and the like) are not known
/// and not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphDescription {
    /// The name the graph is managed under.
    pub name: String,
    /// Whether it has started, and whether it has ended.
    pub status: GraphStatus,
    /// Every node, upstream first in a linear pipeline, in the order they
    /// were added in a [`GraphBuilder`](crate::GraphBuilder) graph.
    pub nodes: Vec<NodeDescription>,
    /// Every known connection from an outlet to an inlet.
    pub edges: Vec<EdgeShape>,
    /// The [`Tunable`](crate::Tunable) parameters of the graph's stages.
    #[serde(default)]
    pub parameters: Vec<ParameterDescription>,
}

/// Whether a managed graph runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GraphStatus {
    /// Added but not started: its statistics are all zero.
    NotStarted,
    /// At least one stage runs.
    Running,
    /// Every stage has completed, failed or been cancelled.
    Finished,
}

/// One node of a [`GraphDescription`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeDescription {
    /// The node's name, unique in the graph.
    pub name: String,
    /// What it does.
    pub kind: NodeKind,
    /// The node's figures, summed over its stages.
    pub stats: NodeStats,
    /// The statistics of each of the node's stages, upstream first.
    pub stages: Vec<StageStats>,
    /// The editable slots in this node, with their segments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<SlotDescription>,
}

/// A node's figures: what its first stage took in and its last passed on,
/// and the sums of the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeStats {
    /// Elements taken in by the node's first stage.
    pub elements_in: u64,
    /// Elements passed on by its last stage.
    pub elements_out: u64,
    /// Elements per second passed on by its last stage (see [`StageStats::rate`]).
    pub rate: Option<u64>,
    /// Demand signalled to its last stage and not yet met.
    pub demand: u64,
    /// Elements held by all its stages.
    pub buffered: u64,
    /// The longest time one of its stages spent backpressured (see
    /// [`StageStats::backpressured`]): fused stages wait together, so a sum
    /// would count one wait several times.
    pub backpressured: Duration,
    /// Errors raised or passed on by its stages.
    pub errors: u64,
}

impl NodeStats {
    fn of(stages: &[StageStats]) -> Self {
        let (Some(first), Some(last)) = (stages.first(), stages.last()) else {
            return NodeStats::default();
        };
        NodeStats {
            elements_in: first.elements_in,
            elements_out: last.elements_out,
            rate: last.rate,
            demand: last.demand,
            buffered: stages.iter().map(|s| s.buffered).sum(),
            backpressured: stages.iter().map(|s| s.backpressured).max().unwrap_or_default(),
            errors: stages.iter().map(|s| s.errors).sum(),
        }
    }
}

/// An editable slot: its segments in order, as planned (after an edit,
/// the new plan; its statistics once the slot has rebuilt its chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SlotDescription {
    /// The slot's name.
    pub name: String,
    /// Its segments, upstream first.
    pub segments: Vec<SegmentDescription>,
}

/// One segment of an editable slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SegmentDescription {
    /// The segment's name.
    pub name: String,
    /// The statistics of its running stages; empty before it runs.
    pub stages: Vec<StageStats>,
}

/// A [`Tunable`](crate::Tunable) parameter and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParameterDescription {
    /// The parameter's name.
    pub name: String,
    /// Its value, as `Debug` prints it.
    pub value: String,
}

impl GraphDescription {
    pub(super) fn new(name: &str, started: bool, monitor: &StreamMonitor, controls: &Controls) -> Self {
        let stats = monitor.stats();
        let status = if !started {
            GraphStatus::NotStarted
        } else if stats.stages.iter().all(|s| s.state != StageState::Running) {
            GraphStatus::Finished
        } else {
            GraphStatus::Running
        };
        let (nodes, edges) = match monitor.shape() {
            Some(shape) => {
                let nodes = shape
                    .nodes
                    .iter()
                    .map(|node| {
                        let stages: Vec<StageStats> = stats.node(&node.name).cloned().collect();
                        NodeDescription {
                            name: node.name.clone(),
                            kind: node.kind,
                            stats: NodeStats::of(&stages),
                            stages,
                            slots: slots(controls, &stats, |slot| slot.node() == Some(node.name.as_str())),
                        }
                    })
                    .collect();
                (nodes, shape.edges.clone())
            }
            None => linear(&stats, monitor, controls),
        };
        let parameters = controls
            .tunables
            .iter()
            .map(|t| ParameterDescription {
                name: t.name().to_owned(),
                value: t.describe(),
            })
            .collect();
        GraphDescription {
            name: name.to_owned(),
            status,
            nodes,
            edges,
            parameters,
        }
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&NodeDescription> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The description as pretty-printed JSON (what serde makes of it).
    pub fn to_json(&self) -> String {
        // Plain structs, strings and numbers: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The description as a Graphviz DOT digraph: a box per node whose
    /// label has its kind and statistics (and its slots' segments), an
    /// arrow per edge labelled with its ports; feedback edges are dashed.
    /// Names and labels are quoted and escaped.
    pub fn to_dot(&self) -> String {
        let mut dot = String::new();
        let _ = writeln!(dot, "digraph {} {{", quote(&self.name));
        let _ = writeln!(dot, "  rankdir=LR;");
        let _ = writeln!(dot, "  node [shape=box, fontname=\"monospace\"];");
        for node in &self.nodes {
            let _ = writeln!(dot, "  {} [label={}];", quote(&node.name), quote(&label(node)));
        }
        for edge in &self.edges {
            let style = if edge.feedback { ", style=dashed" } else { "" };
            let ports = format!("{} -> {}", edge.from_port, edge.to_port);
            let _ = writeln!(
                dot,
                "  {} -> {} [label={}{style}];",
                quote(&edge.from),
                quote(&edge.to),
                quote(&ports)
            );
        }
        dot.push_str("}\n");
        dot
    }
}

/// The nodes and edges of a pipeline without a shape: a node per stage.
fn linear(stats: &GraphStats, monitor: &StreamMonitor, controls: &Controls) -> (Vec<NodeDescription>, Vec<EdgeShape>) {
    let inputs: Vec<Input> = monitor.inputs().collect();
    let here = |id: usize| slots(controls, stats, |slot| slot.node().is_none() && slot.stage() == id);
    let names: Vec<String> = stats
        .stages
        .iter()
        .map(|stage| match here(stage.id).first() {
            Some(slot) => slot.name.clone(),
            None => format!("{}#{}", stage.name, stage.id),
        })
        .collect();
    let feeds = |id: usize| {
        inputs
            .iter()
            .any(|input| matches!(*input, Input::Stage(from) | Input::Outlet(from, _) if from == id))
    };
    let nodes = stats
        .stages
        .iter()
        .zip(&names)
        .map(|(stage, name)| NodeDescription {
            name: name.clone(),
            kind: kind_of(
                &stage.name,
                inputs.get(stage.id) == Some(&Input::Nothing),
                !feeds(stage.id),
            ),
            stats: NodeStats::of(std::slice::from_ref(stage)),
            stages: vec![stage.clone()],
            slots: here(stage.id),
        })
        .collect();
    let edges = inputs
        .iter()
        .enumerate()
        .filter_map(|(to, input)| {
            let (from, port) = match *input {
                Input::Stage(from) => (from, 0),
                Input::Outlet(from, port) => (from, port),
                Input::Nothing | Input::Own => return None,
            };
            Some(EdgeShape {
                from: names.get(from)?.clone(),
                from_port: port,
                to: names.get(to)?.clone(),
                to_port: 0,
                feedback: false,
            })
        })
        .collect();
    (nodes, edges)
}

/// The slots `belongs` picks, as the snapshot `stats` described them (in
/// the order of `controls`): describing them again would take a second
/// snapshot of their segments a moment later, and skew their rates.
fn slots(controls: &Controls, stats: &GraphStats, belongs: impl Fn(&dyn SlotHandle) -> bool) -> Vec<SlotDescription> {
    controls
        .slots
        .iter()
        .zip(&stats.slots)
        .filter(|(slot, _)| belongs(slot.as_ref()))
        .map(|(_, described)| described.clone())
        .collect()
}

fn kind_of(stage: &str, source: bool, sink: bool) -> NodeKind {
    match stage {
        "broadcast" | "also_to" => NodeKind::Broadcast,
        "balance" => NodeKind::Balance,
        "partition" => NodeKind::Partition,
        "merge" => NodeKind::Merge,
        "merge_preferred" => NodeKind::MergePreferred,
        "zip" => NodeKind::Zip,
        "concat" => NodeKind::Concat,
        _ if source => NodeKind::Source,
        _ if sink => NodeKind::Sink,
        _ => NodeKind::Flow,
    }
}

/// A node's label: name, kind, figures, slots; lines end with `\n`.
fn label(node: &NodeDescription) -> String {
    let s = &node.stats;
    let kind = serde_json::to_value(node.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let rate = s.rate.map_or_else(|| "-".to_owned(), |r| format!("{r}/s"));
    let mut label = format!(
        "{} ({kind})\nin {}  out {}  rate {rate}\ndemand {}  buffered {}\nbackpressured {:.3} s  errors {}",
        node.name,
        s.elements_in,
        s.elements_out,
        s.demand,
        s.buffered,
        s.backpressured.as_secs_f64(),
        s.errors
    );
    for slot in &node.slots {
        let segments: Vec<String> = slot
            .segments
            .iter()
            .map(|segment| {
                let out = segment.stages.last().map_or(0, |stage| stage.elements_out);
                format!("{} (out {out})", segment.name)
            })
            .collect();
        let _ = write!(label, "\nslot {}: [{}]", slot.name, segments.join(" -> "));
    }
    label
}

/// A DOT quoted string: backslashes and quotes escaped, line breaks as `\n`.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '\n' => quoted.push_str("\\n"),
            '\r' => {}
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_quotes_backslashes_and_line_breaks() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("say \"hi\"\\now\nnext"), "\"say \\\"hi\\\"\\\\now\\nnext\"");
    }

    #[test]
    fn a_node_without_stages_has_zero_figures() {
        assert_eq!(NodeStats::of(&[]), NodeStats::default());
    }
}
