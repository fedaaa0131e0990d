//! The seam between actors and a network transport.
//!
//! Nothing in this crate knows a socket exists. A transport (the
//! `compaktor-remote` crate) plugs in here:
//!
//! - a [`RemoteRoute`] is what an [`ActorRef`] holds when its actor lives on
//!   another node; [`ActorRef::remote`] wraps one, and from then on the ref
//!   behaves like any other;
//! - a [`RemoteReply`] is what a [`ReplyTo`] holds when its asker waits on
//!   another node;
//! - a [`Resolver`], installed with [`with_resolver`] around encoding and
//!   decoding, turns refs and reply handles found inside messages into
//!   strings and back: `ActorRef` and `ReplyTo` implement serde's traits
//!   through it, so they can sit anywhere inside a message type.
//!
//! Serialising an `ActorRef` outside a resolver writes its path; decoding
//! one, or touching a `ReplyTo` at all, needs a resolver and fails with
//! [`ResolveError::NoTransport`] otherwise.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::actor_ref::ActorRef;
use crate::dead_letter::DeadLetterReason;
use crate::path::ActorPath;
use crate::reply::ReplyTo;
use crate::system::ActorSystem;
use crate::watch::Terminated;

/// A boxed future, as transports hand them back.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// How a ref reaches an actor on another node.
pub trait RemoteRoute<M>: Send + Sync + 'static {
    /// The remote actor's path.
    fn path(&self) -> &ActorPath;

    /// The local system, where undeliverable messages become dead letters.
    fn system(&self) -> &ActorSystem;

    /// Hands `msg` to the network without waiting. At most once: `Ok` means
    /// queued for sending, not delivered. On failure the message comes back
    /// with the reason, and the ref dead-letters it or returns it.
    fn tell(&self, msg: M) -> Result<(), (M, DeadLetterReason)>;

    /// Asks the remote actor to stop.
    fn stop(&self);

    /// Resolves when the remote actor stops, or when its node is lost.
    fn terminated(&self) -> BoxFuture<Terminated>;

    /// Whether [`terminated`](Self::terminated) has already resolved.
    fn is_terminated(&self) -> bool;
}

/// How a reply reaches an asker on another node.
pub trait RemoteReply<R>: Send + Sync + 'static {
    /// Sends the reply; hands it back if it cannot be sent.
    fn send(&self, value: R) -> Result<(), R>;

    /// Whether a reply would be wasted.
    fn is_closed(&self) -> bool;
}

/// Why a ref or reply handle inside a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Encoded or decoded outside [`with_resolver`].
    #[error("actor refs and reply handles are decoded only by a transport")]
    NoTransport,
    /// The type's messages cannot cross the wire: it is not registered.
    #[error("message type {0} is not registered with the transport")]
    Unregistered(&'static str),
    /// No actor, or no waiting asker, at that address.
    #[error("nothing at {0}")]
    NotFound(String),
    /// The actor at the path takes another message type.
    #[error("{path} does not take {expected}")]
    WrongType {
        /// The path.
        path: String,
        /// The message type asked for.
        expected: &'static str,
    },
    /// The string is not an address.
    #[error("invalid address {0:?}")]
    Invalid(String),
}

/// Turns refs and reply handles into strings and back, on behalf of a
/// transport. Every `Box<dyn Any>` here holds the concrete type named by the
/// `TypeId` beside it: an `ActorRef<M>` for `M`, a `ReplyTo<R>` for `R`.
pub trait Resolver: Send + Sync {
    /// The local system: paths at its address resolve to local actors.
    fn system(&self) -> &ActorSystem;

    /// An `ActorRef<M>` (boxed) reaching `path` on another node; `message`
    /// is `TypeId::of::<M>()` and `type_name` its name.
    fn remote_ref(
        &self,
        message: TypeId,
        type_name: &'static str,
        path: &ActorPath,
    ) -> Result<Box<dyn Any + Send>, ResolveError>;

    /// Keeps `handle` (a boxed `ReplyTo<R>`) until answered or abandoned, and
    /// returns the address a remote node answers to.
    fn export_reply(
        &self,
        reply: TypeId,
        type_name: &'static str,
        handle: Box<dyn Any + Send>,
    ) -> Result<String, ResolveError>;

    /// A `ReplyTo<R>` (boxed) that answers to `address` on another node.
    fn import_reply(
        &self,
        reply: TypeId,
        type_name: &'static str,
        address: &str,
    ) -> Result<Box<dyn Any + Send>, ResolveError>;
}

thread_local! {
    static RESOLVER: RefCell<Option<Arc<dyn Resolver>>> = const { RefCell::new(None) };
}

/// Runs `f` (an encode or a decode) with `resolver` handling the refs and
/// reply handles it meets. Nests; the previous resolver is restored after,
/// also when `f` panics.
pub fn with_resolver<T>(resolver: &Arc<dyn Resolver>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<dyn Resolver>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            RESOLVER.with(|r| *r.borrow_mut() = previous);
        }
    }
    let previous = RESOLVER.with(|r| r.borrow_mut().replace(resolver.clone()));
    let _restore = Restore(previous);
    f()
}

fn current() -> Result<Arc<dyn Resolver>, ResolveError> {
    RESOLVER.with(|r| r.borrow().clone()).ok_or(ResolveError::NoTransport)
}

fn resolve_ref<M: Send + 'static>(text: &str) -> Result<ActorRef<M>, ResolveError> {
    let path: ActorPath = text.parse().map_err(|_| ResolveError::Invalid(text.to_owned()))?;
    let resolver = current()?;
    let system = resolver.system();
    if path.address() == system.address() {
        return system.lookup::<M>(text).map_err(|e| match e {
            crate::LookupError::WrongType { path, expected, .. } => ResolveError::WrongType { path, expected },
            _ => ResolveError::NotFound(text.to_owned()),
        });
    }
    let any = resolver.remote_ref(TypeId::of::<M>(), std::any::type_name::<M>(), &path)?;
    any.downcast::<ActorRef<M>>()
        .map(|r| *r)
        .map_err(|_| ResolveError::Unregistered(std::any::type_name::<M>()))
}

impl<M: Send + 'static> Serialize for ActorRef<M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.path())
    }
}

impl<'de, M: Send + 'static> Deserialize<'de> for ActorRef<M> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        resolve_ref(&text).map_err(D::Error::custom)
    }
}

impl<R: Send + 'static> Serialize for ReplyTo<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let address = current()
            .and_then(|r| r.export_reply(TypeId::of::<R>(), std::any::type_name::<R>(), Box::new(self.clone())))
            .map_err(S::Error::custom)?;
        serializer.serialize_str(&address)
    }
}

impl<'de, R: Send + 'static> Deserialize<'de> for ReplyTo<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let address = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let name = std::any::type_name::<R>();
        current()
            .and_then(|r| r.import_reply(TypeId::of::<R>(), name, &address))
            .and_then(|any| {
                any.downcast::<ReplyTo<R>>()
                    .map_err(|_| ResolveError::Unregistered(name))
            })
            .map(|r| *r)
            .map_err(D::Error::custom)
    }
}
