//! Death watch: being told, exactly once, that an actor has terminated.
//!
//! An actor calls [`Context::watch`](crate::Context::watch) and later gets one
//! [`Terminated`] in [`Actor::on_terminated`](crate::Actor::on_terminated);
//! code outside actors awaits [`ActorRef::terminated`](crate::ActorRef::terminated).
//! Watching an actor that is already dead delivers its `Terminated` at once,
//! with the reason it died. Watching twice is the same as watching once;
//! [`Context::unwatch`](crate::Context::unwatch) guarantees no `Terminated`
//! is delivered afterwards.

use std::fmt;

use crate::path::ActorPath;
use crate::supervision::Failure;

/// Why an actor stopped.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StopReason {
    /// It was stopped: by itself, its parent, `stop()`, or system shutdown.
    Stopped,
    /// It failed and its supervisor stopped it (directive Stop, restart limit
    /// reached, or a failure while starting).
    Failed(Failure),
    /// Its node stopped answering heartbeats, or could not be reached at
    /// all: the actor may still be running, but nothing will reach it.
    Unreachable,
    /// The connection to its node was lost and could not be re-established
    /// (or the node came back as a new incarnation): the actor may still
    /// be running, but nothing will reach it.
    ConnectionLost,
}

impl StopReason {
    /// The failure, when the actor was stopped because it failed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            StopReason::Failed(f) => Some(f),
            _ => None,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Stopped => f.write_str("stopped"),
            StopReason::Failed(failure) => write!(f, "failed: {failure}"),
            StopReason::Unreachable => f.write_str("its node is unreachable"),
            StopReason::ConnectionLost => f.write_str("the connection to its node was lost"),
        }
    }
}

/// A watched actor has terminated.
#[derive(Debug, Clone)]
pub struct Terminated {
    actor: ActorPath,
    reason: StopReason,
}

impl Terminated {
    /// A notification that `actor` stopped for `reason`; for transports
    /// that learn of a remote actor's end.
    pub fn new(actor: ActorPath, reason: StopReason) -> Self {
        Terminated { actor, reason }
    }

    /// The path of the actor that terminated.
    pub fn actor(&self) -> &ActorPath {
        &self.actor
    }

    /// Why it terminated.
    pub fn reason(&self) -> &StopReason {
        &self.reason
    }
}

impl fmt::Display for Terminated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} terminated: {}", self.actor, self.reason)
    }
}
