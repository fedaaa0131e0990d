//! Reply handles for request–response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use crate::deadline::Expire;
use crate::spin::SpinLock;
use crate::transport::RemoteReply;

/// Where to send the answer to a request: put one in the message.
///
/// [`ActorRef::ask`](crate::ActorRef::ask) creates the handle and passes it
/// to the closure that builds the request. The recipient answers with
/// [`send`](ReplyTo::send). Clones share one slot and the first reply wins,
/// which is what scatter-gather routing relies on. If every clone is
/// dropped without a reply, the asker gets
/// [`AskError::NoReply`](crate::AskError::NoReply) at once instead of waiting
/// for its timeout.
///
/// A handle travels inside messages to other nodes too: the transport
/// serialises it as the address of a temporary entry on the asker's node
/// and the recipient gets a handle that answers over the network (see
/// [`transport`](crate::transport)). Across nodes the first reply still wins,
/// but a dropped remote handle is not noticed: the asker waits for its
/// timeout.
///
/// ```
/// use compaktor_actor::ReplyTo;
///
/// enum Msg {
///     Get(ReplyTo<u64>),
/// }
/// # let _ = |m: Msg| match m { Msg::Get(r) => { let _ = r.send(1); } };
/// ```
pub struct ReplyTo<R> {
    inner: Handle<R>,
}

enum Handle<R> {
    Local(LocalHandle<R>),
    Remote(Arc<dyn RemoteReply<R>>),
}

/// One counted handle on a local slot.
struct LocalHandle<R> {
    slot: Arc<Slot<R>>,
}

struct Slot<R> {
    /// A spin lock: each section is a few stores, and an ask takes it
    /// three times.
    state: SpinLock<SlotState<R>>,
    senders: AtomicUsize,
    /// Set under the lock by the reply; read without it so that the common
    /// path (reply, then drop the handle) locks once, not twice.
    replied: AtomicBool,
}

struct SlotState<R> {
    value: Option<R>,
    asker_gone: bool,
    /// The ask's deadline passed before an answer came.
    expired: bool,
    waker: Option<Waker>,
}

/// Why a [`ReplyFuture`] resolved without an answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// Every reply handle was dropped without an answer.
    NoReply,
    /// The deadline registered with [`ReplyFuture::expiry`] passed.
    Expired,
}

/// Creates a connected reply handle and the future its answer resolves.
pub(crate) fn pair<R>() -> (ReplyTo<R>, ReplyFuture<R>) {
    let slot = Arc::new(Slot {
        state: SpinLock::new(SlotState {
            value: None,
            asker_gone: false,
            expired: false,
            waker: None,
        }),
        senders: AtomicUsize::new(1),
        replied: AtomicBool::new(false),
    });
    let reply = ReplyTo {
        inner: Handle::Local(LocalHandle { slot: slot.clone() }),
    };
    (reply, ReplyFuture { slot, done: false })
}

impl<R: 'static> ReplyTo<R> {
    /// A handle that answers through `remote`; for transports.
    pub fn remote(remote: Arc<dyn RemoteReply<R>>) -> Self {
        ReplyTo {
            inner: Handle::Remote(remote),
        }
    }

    /// Sends the reply. Hands the value back if another clone already
    /// replied or the asker has given up (timed out).
    pub fn send(self, value: R) -> Result<(), R> {
        match &self.inner {
            Handle::Local(local) => local.send(value),
            Handle::Remote(remote) => remote.send(value),
        }
    }

    /// Whether a reply would be wasted: already replied, or the asker gave up.
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            Handle::Local(local) => local.is_closed(),
            Handle::Remote(remote) => remote.is_closed(),
        }
    }
}

impl<R> LocalHandle<R> {
    fn send(&self, value: R) -> Result<(), R> {
        let mut state = self.slot.state.lock();
        if state.asker_gone || self.slot.replied.load(Ordering::Relaxed) {
            return Err(value);
        }
        state.value = Some(value);
        self.slot.replied.store(true, Ordering::Release);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.slot.replied.load(Ordering::Acquire) || self.slot.state.lock().asker_gone
    }
}

impl<R: 'static> Clone for ReplyTo<R> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Handle::Local(local) => {
                local.slot.senders.fetch_add(1, Ordering::Relaxed);
                Handle::Local(LocalHandle {
                    slot: local.slot.clone(),
                })
            }
            Handle::Remote(remote) => Handle::Remote(remote.clone()),
        };
        ReplyTo { inner }
    }
}

impl<R> Drop for LocalHandle<R> {
    fn drop(&mut self) {
        // The last handle wakes the asker, unless a reply already did.
        if self.slot.senders.fetch_sub(1, Ordering::AcqRel) == 1 && !self.slot.replied.load(Ordering::Acquire) {
            let waker = self.slot.state.lock().waker.take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl<R: 'static> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo").field("closed", &self.is_closed()).finish()
    }
}

/// Resolves to the reply, or to why none will come.
pub(crate) struct ReplyFuture<R> {
    slot: Arc<Slot<R>>,
    /// Resolved with the reply or `NoReply`: no reply can come any more,
    /// so dropping need not tell the slot.
    done: bool,
}

impl<R: Send + 'static> ReplyFuture<R> {
    /// A handle for the system's deadline sweeper: expiring it resolves
    /// this future with [`NoAnswer::Expired`].
    pub(crate) fn expiry(&self) -> Weak<dyn Expire> {
        // Downgrade first: no strong count to bump and drop again.
        let weak: Weak<Slot<R>> = Arc::downgrade(&self.slot);
        weak
    }
}

impl<R: Send> Expire for Slot<R> {
    fn expire(&self) {
        let mut state = self.state.lock();
        if self.replied.load(Ordering::Relaxed) {
            return;
        }
        state.expired = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<R> Future for ReplyFuture<R> {
    type Output = Result<R, NoAnswer>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut state = this.slot.state.lock();
        if let Some(value) = state.value.take() {
            this.done = true;
            return Poll::Ready(Ok(value));
        }
        if state.expired {
            return Poll::Ready(Err(NoAnswer::Expired));
        }
        if this.slot.senders.load(Ordering::Acquire) == 0 {
            this.done = true;
            return Poll::Ready(Err(NoAnswer::NoReply));
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<R> Drop for ReplyFuture<R> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.slot.state.lock();
        state.asker_gone = true;
        let late = state.value.take();
        drop(state);
        drop(late);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_reply_wins() {
        let (reply, answer) = pair::<u32>();
        let other = reply.clone();
        assert!(reply.send(1).is_ok());
        assert_eq!(other.send(2), Err(2));
        assert_eq!(answer.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn dropping_every_handle_resolves_no_reply() {
        let (reply, answer) = pair::<u32>();
        let other = reply.clone();
        drop(reply);
        drop(other);
        assert!(answer.await.is_err());
    }

    #[test]
    fn reply_after_asker_left_is_handed_back() {
        let (reply, answer) = pair::<u32>();
        drop(answer);
        assert!(reply.is_closed());
        assert_eq!(reply.send(7), Err(7));
    }
}
