//! Signals between the runtime's parts, carried in each mailbox's system queue.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::cell::ErasedCell;
use crate::supervision::Failure;
use crate::watch::Terminated;

pub(crate) enum SystemMsg {
    /// Stop; `failure` says why when the supervisor stops a failed actor.
    Stop { failure: Option<Failure> },
    /// Register a watcher of this actor.
    Watch(Watcher),
    /// Remove the watcher with this id.
    Unwatch { watcher: u64 },
    /// An actor this one watches has terminated.
    Terminated(Terminated),
    /// A child failed and is suspended until it gets a directive.
    ChildFailed {
        child: Arc<dyn ErasedCell>,
        failure: Failure,
    },
    /// A child has terminated and left the children table.
    ChildTerminated { child: Arc<dyn ErasedCell> },
    /// Directive: continue with the same instance.
    Resume,
    /// Directive: replace the instance.
    Restart { cause: Failure },
}

/// Someone to tell when an actor terminates.
pub(crate) enum Watcher {
    Actor(Arc<dyn ErasedCell>),
    Waiter { id: u64, tx: oneshot::Sender<Terminated> },
}

impl Watcher {
    pub(crate) fn id(&self) -> u64 {
        match self {
            Watcher::Actor(cell) => cell.core().path.uid(),
            Watcher::Waiter { id, .. } => *id,
        }
    }

    pub(crate) fn notify(self, terminated: &Terminated) {
        match self {
            Watcher::Actor(cell) => {
                let _ = cell.send_system(SystemMsg::Terminated(terminated.clone()));
            }
            Watcher::Waiter { tx, .. } => {
                let _ = tx.send(terminated.clone());
            }
        }
    }
}

/// The system messages waiting for one actor, in order, with room for one
/// inline: most actors only ever get one (their `Stop`), and then the queue
/// allocates nothing.
#[derive(Default)]
pub(crate) struct SystemQueue {
    first: Option<SystemMsg>,
    rest: VecDeque<SystemMsg>,
}

impl SystemQueue {
    pub(crate) fn push_back(&mut self, msg: SystemMsg) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(msg);
        } else {
            self.rest.push_back(msg);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<SystemMsg> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = SystemMsg> {
        self.first.take().into_iter().chain(std::mem::take(&mut self.rest))
    }
}
