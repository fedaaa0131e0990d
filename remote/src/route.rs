//! What a remote `ActorRef` and a remote `ReplyTo` hold: the way to a peer.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use compaktor_actor::transport::{BoxFuture, RemoteReply, RemoteRoute};
use compaktor_actor::{ActorPath, ActorSystem, DeadLetterReason, StopReason, Terminated};

use crate::frame::Kind;
use crate::node::Shared;
use crate::peer::{Peer, SendFailure};
use crate::registry::Entry;

/// The route of an `ActorRef<M>` to an actor on another node.
pub(crate) struct Route<M> {
    path: ActorPath,
    recipient: String,
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    /// `None` when the path's address is not one we can dial.
    peer: Option<Arc<Peer>>,
    gone: Arc<AtomicBool>,
    _msg: PhantomData<fn(M)>,
}

impl<M> Route<M> {
    pub(crate) fn new(shared: &Arc<Shared>, entry: &Arc<Entry>, path: ActorPath) -> Self {
        Route {
            recipient: path.to_string(),
            peer: shared.peer(path.address()),
            path,
            shared: shared.clone(),
            entry: entry.clone(),
            gone: Arc::new(AtomicBool::new(false)),
            _msg: PhantomData,
        }
    }
}

impl<M: Send + 'static> RemoteRoute<M> for Route<M> {
    fn path(&self) -> &ActorPath {
        &self.path
    }

    fn system(&self) -> &ActorSystem {
        self.shared.system()
    }

    fn tell(&self, msg: M) -> Result<(), (M, DeadLetterReason)> {
        let Some(peer) = &self.peer else {
            return Err((msg, DeadLetterReason::Unreachable));
        };
        let encode = |out: &mut Vec<u8>| self.shared.resolving(|| (self.entry.encode)(&msg, out));
        match peer.send_message(&self.recipient, None, self.entry.manifest, encode) {
            Ok(()) => Ok(()),
            Err(SendFailure::Refused(reason)) => Err((msg, reason)),
            Err(SendFailure::Payload(error)) => {
                tracing::warn!(recipient = %self.path, message_type = self.entry.type_name, %error, "message not sent");
                Err((msg, DeadLetterReason::Undecodable))
            }
        }
    }

    fn stop(&self) {
        if let Some(peer) = &self.peer {
            peer.send_system(Kind::Stop, &self.recipient, None, "", &[]);
        }
    }

    fn terminated(&self) -> BoxFuture<Terminated> {
        let path = self.path.clone();
        let gone = self.gone.clone();
        let Some(peer) = self.peer.clone() else {
            gone.store(true, Ordering::Release);
            return Box::pin(async move { Terminated::new(path, StopReason::Stopped) });
        };
        let mut guard = Unwatch {
            watch: Some(peer.watch(&self.recipient)),
            peer,
            recipient: Some(self.recipient.clone()),
        };
        Box::pin(async move {
            let answer = match guard.watch.as_mut() {
                Some(watch) => watch.await.ok(),
                None => None,
            };
            let terminated = answer.unwrap_or_else(|| Terminated::new(path, StopReason::Stopped));
            guard.disarm();
            gone.store(true, Ordering::Release);
            terminated
        })
    }

    fn is_terminated(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }
}

/// Dropped with a `terminated` future that never resolved: the watcher
/// gave up, so the peer may stop tracking the actor for us.
struct Unwatch {
    watch: Option<tokio::sync::oneshot::Receiver<Terminated>>,
    peer: Arc<Peer>,
    recipient: Option<String>,
}

impl Unwatch {
    /// The watch ended with a `Terminated`: nothing to undo.
    fn disarm(&mut self) {
        self.recipient = None;
    }
}

impl Drop for Unwatch {
    fn drop(&mut self) {
        // Closed first, so the peer sees this watcher gone.
        drop(self.watch.take());
        if let Some(recipient) = self.recipient.take() {
            self.peer.unwatch_if_unused(&recipient);
        }
    }
}

/// A reply handle whose asker waits on another node, at `address` (a
/// temporary path there).
pub(crate) struct RemoteReplyTo<R> {
    address: String,
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    peer: Option<Arc<Peer>>,
    replied: AtomicBool,
    _reply: PhantomData<fn(R)>,
}

impl<R> RemoteReplyTo<R> {
    pub(crate) fn new(shared: &Arc<Shared>, entry: &Arc<Entry>, address: ActorPath) -> Self {
        RemoteReplyTo {
            address: address.to_string(),
            peer: shared.peer(address.address()),
            shared: shared.clone(),
            entry: entry.clone(),
            replied: AtomicBool::new(false),
            _reply: PhantomData,
        }
    }
}

impl<R: Send + 'static> RemoteReply<R> for RemoteReplyTo<R> {
    fn send(&self, value: R) -> Result<(), R> {
        if self.replied.swap(true, Ordering::AcqRel) {
            return Err(value);
        }
        let Some(peer) = &self.peer else { return Err(value) };
        let encode = |out: &mut Vec<u8>| self.shared.resolving(|| (self.entry.encode)(&value, out));
        match peer.send_message(&self.address, None, self.entry.manifest, encode) {
            Ok(()) => Ok(()),
            Err(SendFailure::Refused(_)) => Err(value),
            Err(SendFailure::Payload(error)) => {
                tracing::warn!(asker = %self.address, reply_type = self.entry.type_name, %error, "reply not sent");
                Err(value)
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.replied.load(Ordering::Acquire)
    }
}
