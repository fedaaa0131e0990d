//! The future an actor's tokio task runs: its lifecycle loop, with the
//! actor made current (for the sender of what it sends) and its tracing
//! span entered around each poll.
//!
//! This replaces `tokio::task_local!` plus `tracing::Instrument`: every
//! byte of the task is paid by every idle actor, and the two wrappers cost
//! about 50 bytes where this costs 16 — enough to keep the task inside one
//! fewer 128-byte block of tokio's task cell.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tracing::Span;

use crate::path::ActorPath;

thread_local! {
    // A `Cell`, not a `RefCell`: the swap on every poll needs no borrow flag.
    static CURRENT_ACTOR: Cell<Option<ActorPath>> = const { Cell::new(None) };
}

/// The path of the actor whose task is running on this thread, if any:
/// the sender of what it tells.
pub(crate) fn current_sender() -> Option<ActorPath> {
    CURRENT_ACTOR.with(|current| {
        let path = current.take();
        let copy = path.clone();
        current.set(path);
        copy
    })
}

pin_project! {
    pub(crate) struct ActorTask<F> {
        // Parked here between polls, moved into the thread-local during one.
        path: Option<ActorPath>,
        // Only allocated when a subscriber wants the span.
        span: Option<Box<Span>>,
        #[pin]
        run: F,
    }
}

impl<F> ActorTask<F> {
    pub(crate) fn new(path: ActorPath, run: F) -> Self {
        let span = tracing::info_span!("actor", path = %path);
        ActorTask {
            path: Some(path),
            span: (!span.is_disabled()).then(|| Box::new(span)),
            run,
        }
    }
}

/// Puts the previous current actor back, also when the poll unwinds.
struct Restore<'a> {
    slot: &'a mut Option<ActorPath>,
    previous: Option<ActorPath>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        *self.slot = CURRENT_ACTOR.with(|current| current.replace(previous));
    }
}

impl<F: Future> Future for ActorTask<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.as_deref().map(Span::enter);
        let mine = this.path.take();
        let previous = CURRENT_ACTOR.with(|current| current.replace(mine));
        let _restore = Restore {
            slot: this.path,
            previous,
        };
        this.run.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::Address;

    #[tokio::test]
    async fn the_actor_is_current_only_inside_its_task() {
        let root = ActorPath::root(Address::new("t", "127.0.0.1", 0));
        let path = root.child("a", 7);
        let seen = ActorTask::new(path.clone(), async { current_sender() }).await;
        assert_eq!(seen, Some(path));
        assert_eq!(current_sender(), None);
    }
}
