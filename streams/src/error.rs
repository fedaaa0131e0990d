//! The stream error type.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Why a stream, or one stage of it, failed.
///
/// Errors travel downstream as the terminal `on_error` signal; the stages
/// upstream of the failure are cancelled. The type is cheap to clone
/// because one failure may reach several materialised values.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A subscriber called `request(0)`: Reactive Streams rule 3.9 makes
    /// this an error that the publisher signals with `on_error` (and it
    /// then cancels). Request at least one element.
    #[error("request(0) violates reactive streams rule 3.9: demand must be positive")]
    ZeroRequest,
    /// A unicast publisher already has a subscriber (rule 1.9 lets a
    /// publisher reject further ones with `on_error`). Materialise the
    /// stream again for another subscriber.
    #[error("this publisher already has a subscriber")]
    AlreadySubscribed,
    /// A [`Buffer`](crate::OverflowStrategy::Fail) configured to fail
    /// received an element while full: downstream is too slow for upstream.
    #[error("buffer of {capacity} elements overflowed")]
    BufferOverflow {
        /// The buffer's capacity.
        capacity: usize,
    },
    /// A stage's user code returned an error (for example
    /// [`try_map`](crate::Flow::try_map)); the cause is in `source()`.
    #[error("stage {stage} failed")]
    Stage {
        /// The stage that failed.
        stage: &'static str,
        /// What the user code returned.
        #[source]
        cause: Arc<dyn Error + Send + Sync>,
    },
    /// A [`KillSwitch`](crate::KillSwitch) aborted the stream with this reason.
    #[error("aborted by a kill switch: {0}")]
    Aborted(Arc<str>),
    /// The actor a sink delivers to has stopped; the undelivered element is lost.
    #[error("the target actor has stopped")]
    ActorStopped,
    /// The stream stopped without a terminal signal: a stage panicked, or
    /// the tokio runtime shut down while it ran.
    #[error("the stream stopped abruptly (a stage panicked or the runtime shut down)")]
    AbruptTermination,
    /// A [`partition`](crate::GraphBuilder::partition) function returned
    /// an outlet number the junction does not have; the stream fails.
    /// Return a number below `outlets`.
    #[error("partition chose outlet {index} of {outlets}")]
    PartitionOutOfBounds {
        /// What the function returned.
        index: usize,
        /// How many outlets the junction has.
        outlets: usize,
    },
    /// The hub this stream was attached to has stopped: a
    /// [`MergeHub`](crate::MergeHub)'s consumer was cancelled, or a
    /// [`BroadcastHub`](crate::BroadcastHub)'s producer went away with no
    /// consumer left. Elements not yet handed over are lost.
    #[error("the hub has stopped")]
    HubClosed,
    /// The user function of a supervised stage (see
    /// [`with_supervision`](crate::Flow::with_supervision)) panicked, and
    /// its [`Decider`](crate::Decider) chose to stop. Unsupervised stages
    /// that panic end the stream with [`AbruptTermination`](StreamError::AbruptTermination).
    #[error("stage {stage} panicked: {message}")]
    Panicked {
        /// The stage whose function panicked.
        stage: &'static str,
        /// The panic's message.
        message: Arc<str>,
    },
    /// An [`ask`](crate::Flow::ask) stage or an acknowledging sink
    /// ([`Sink::actor_ref_with_backpressure`](crate::Sink::actor_ref_with_backpressure))
    /// got no answer from its actor: it timed out, its mailbox was full, it
    /// dropped the reply handle or it stopped. The cause is in `source()`.
    /// Supervise the stage to skip such elements.
    #[error("stage {stage} got no answer from its actor")]
    Ask {
        /// The stage that asked.
        stage: &'static str,
        /// Why no answer came.
        #[source]
        cause: compaktor_actor::AskError,
    },
    /// The producer of a [`Source::actor_ref_with_backpressure`](crate::Source::actor_ref_with_backpressure)
    /// sent an element before the previous one was acknowledged. Wait for
    /// the acknowledgement message before sending the next element.
    #[error("an element arrived before the previous one was acknowledged")]
    UnacknowledgedElement,
    /// A blocking function run by [`map_blocking`](crate::Flow::map_blocking)
    /// did not finish: the runtime shut down or cancelled it.
    #[error("stage {stage}: the blocking task was cancelled")]
    BlockingCancelled {
        /// The stage that ran the function.
        stage: &'static str,
    },
    /// The far end of a boundary that crosses a wire failed; this is its
    /// description (see [`wire`](crate::protocol::wire)).
    #[error("the far end of the boundary failed: {0}")]
    Remote(Arc<str>),
    /// The far end of a boundary broke a Reactive Streams rule, for example
    /// it sent more elements than were requested (rule 1.1). The boundary
    /// cancels and fails rather than trust it.
    #[error("the far end broke reactive streams rule {rule}: {what}")]
    ProtocolViolation {
        /// The rule's number in the specification.
        rule: &'static str,
        /// What it did.
        what: &'static str,
    },
}

/// Why a [`GraphBuilder`](crate::GraphBuilder) could not build a graph.
///
/// Wiring mistakes (a port connected twice, a port of another builder, a
/// name used twice) are noticed when they are made and reported by
/// [`build`](crate::GraphBuilder::build), the first one only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The edges form a cycle through these nodes (in edge order, the first
    /// repeated at the end). Break the cycle, or accept it with
    /// [`allow_cycles`](crate::GraphBuilder::allow_cycles).
    #[error("the graph has a cycle: {}", .nodes.join(" -> "))]
    Cycle {
        /// The nodes around the cycle, starting and ending with the same one.
        nodes: Vec<String>,
    },
    /// An inlet has no upstream. Connect it, or remove the node.
    #[error("inlet {index} of node {node} is not connected")]
    UnconnectedInlet {
        /// The node's name.
        node: String,
        /// Which inlet.
        index: usize,
    },
    /// An outlet has no downstream. Connect it (to [`Sink::ignore`](crate::Sink::ignore)
    /// if its elements are not wanted), or remove the node.
    #[error("outlet {index} of node {node} is not connected")]
    UnconnectedOutlet {
        /// The node's name.
        node: String,
        /// Which outlet.
        index: usize,
    },
    /// An inlet was connected twice; each takes one upstream (use a merge for more).
    #[error("inlet {index} of node {node} is connected twice")]
    InletConnectedTwice {
        /// The node's name.
        node: String,
        /// Which inlet.
        index: usize,
    },
    /// An outlet was connected twice; each feeds one downstream (use a broadcast for more).
    #[error("outlet {index} of node {node} is connected twice")]
    OutletConnectedTwice {
        /// The node's name.
        node: String,
        /// Which outlet.
        index: usize,
    },
    /// Two nodes have the same name; names identify nodes in the graph's shape.
    #[error("two nodes are named {name}")]
    DuplicateName {
        /// The name used twice.
        name: String,
    },
    /// A port made by another builder was connected here.
    #[error("a port of another graph builder was connected")]
    ForeignPort,
}

/// Why a [`GraphManager`](crate::GraphManager) could not add, start,
/// describe or remove a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// A graph of this name is already managed. Pick another name, or
    /// [`remove`](crate::GraphManager::remove) the old graph first.
    #[error("a graph named {name} is already managed")]
    DuplicateGraph {
        /// The name used twice.
        name: String,
    },
    /// No graph of this name is managed (it was never added, or was removed).
    #[error("no graph named {name} is managed")]
    UnknownGraph {
        /// The name asked for.
        name: String,
    },
    /// [`start`](crate::GraphManager::start) was called on a graph that
    /// already runs; a graph starts once.
    #[error("graph {name} has already started")]
    AlreadyStarted {
        /// The graph's name.
        name: String,
    },
}

/// Why a [`GraphManager`](crate::GraphManager) could not edit a graph.
/// A refused edit changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// No graph of this name is managed.
    #[error("no graph named {graph} is managed")]
    UnknownGraph {
        /// The name asked for.
        graph: String,
    },
    /// The graph has no editable slot of this name: only slots made with
    /// [`editable`](crate::Flow::editable) can be edited.
    #[error("graph {graph} has no editable slot named {slot}")]
    UnknownSlot {
        /// The graph's name.
        graph: String,
        /// The slot asked for.
        slot: String,
    },
    /// The slot has no segment of this name.
    #[error("slot {slot} has no segment named {segment}")]
    UnknownSegment {
        /// The slot's name.
        slot: String,
        /// The segment asked for.
        segment: String,
    },
    /// The slot already has a segment of this name; names identify segments.
    #[error("slot {slot} already has a segment named {segment}")]
    DuplicateSegment {
        /// The slot's name.
        slot: String,
        /// The name used twice.
        segment: String,
    },
    /// An insertion point past the end of the slot's chain.
    #[error("slot {slot} has {len} segments: cannot insert at {index}")]
    IndexOutOfRange {
        /// The slot's name.
        slot: String,
        /// The position asked for.
        index: usize,
        /// How many segments the slot has.
        len: usize,
    },
    /// The graph has no [`Tunable`](crate::Tunable) parameter of this name.
    #[error("graph {graph} has no parameter named {name}")]
    UnknownParameter {
        /// The graph's name.
        graph: String,
        /// The parameter asked for.
        name: String,
    },
    /// The slot's elements or the parameter's value are not of the type
    /// given; use the type the slot or [`Tunable`](crate::Tunable) was made with.
    #[error("{name} holds another type than the one given")]
    WrongType {
        /// The slot's or parameter's name.
        name: String,
    },
    /// The slot has stopped (its stream completed, failed or was
    /// cancelled): there is nothing left to edit.
    #[error("slot {slot} has stopped")]
    Finished {
        /// The slot's name.
        slot: String,
    },
    /// The edit would rebuild a segment made from a built flow
    /// ([`Segment::from_flow`](crate::Segment::from_flow)), which runs once:
    /// the only edit such a segment allows is its removal.
    #[error(
        "segment {segment} of slot {slot} was given as a built flow and cannot be rebuilt; it can only be removed"
    )]
    NotRebuildable {
        /// The slot's name.
        slot: String,
        /// The segment that would be rebuilt.
        segment: String,
    },
}

impl StreamError {
    /// A [`Stage`](StreamError::Stage) error from user code's error value.
    pub fn stage(stage: &'static str, cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        StreamError::Stage {
            stage,
            cause: Arc::from(cause.into()),
        }
    }

    /// An [`Aborted`](StreamError::Aborted) error with a reason.
    pub fn aborted(reason: impl fmt::Display) -> Self {
        StreamError::Aborted(Arc::from(reason.to_string()))
    }
}

/// [`ActorSourceRef::tell`](crate::ActorSourceRef::tell) was refused: the
/// stream has stopped (completed, failed or was cancelled). The element
/// is given back.
#[derive(thiserror::Error)]
#[error("the stream has stopped")]
pub struct SourceClosed<T>(pub T);

impl<T> SourceClosed<T> {
    /// The element that was not taken.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SourceClosed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceClosed(..)")
    }
}
