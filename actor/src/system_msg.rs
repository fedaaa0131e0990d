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
    /// A child has terminated and left the children table. Sent only to a
    /// parent that waits for its children or counts their restarts.
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
/// allocates nothing; an idle actor pays for one message and a pointer.
#[derive(Default)]
pub(crate) struct SystemQueue {
    first: Option<SystemMsg>,
    // Boxed on purpose: a pointer costs every actor 8 bytes, a deque 32.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<SystemMsg>>>,
}

impl SystemQueue {
    pub(crate) fn push_back(&mut self, msg: SystemMsg) {
        if self.is_empty() {
            self.first = Some(msg);
        } else {
            self.rest.get_or_insert_with(Default::default).push_back(msg);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<SystemMsg> {
        let msg = self.first.take()?;
        // Keep the invariant: `first` is the head whenever anything waits.
        if let Some(rest) = self.rest.as_mut() {
            self.first = rest.pop_front();
            if rest.is_empty() {
                self.rest = None;
            }
        }
        Some(msg)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = SystemMsg> {
        let rest = self.rest.take().map(|rest| *rest).unwrap_or_default();
        self.first.take().into_iter().chain(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unwatch(id: u64) -> SystemMsg {
        SystemMsg::Unwatch { watcher: id }
    }

    fn id(msg: SystemMsg) -> u64 {
        match msg {
            SystemMsg::Unwatch { watcher } => watcher,
            _ => unreachable!(),
        }
    }

    #[test]
    fn keeps_order_across_the_inline_slot_and_the_overflow() {
        let mut queue = SystemQueue::default();
        for i in 0..3 {
            queue.push_back(unwatch(i));
        }
        assert_eq!(queue.pop_front().map(id), Some(0));
        queue.push_back(unwatch(3));
        let rest: Vec<u64> = std::iter::from_fn(|| queue.pop_front()).map(id).collect();
        assert_eq!(rest, [1, 2, 3]);
        assert!(queue.is_empty());
        assert!(queue.rest.is_none(), "the overflow is freed once empty");
        queue.push_back(unwatch(4));
        queue.push_back(unwatch(5));
        assert_eq!(queue.drain().map(id).collect::<Vec<_>>(), [4, 5]);
    }
}
