//! Message types that may cross the wire, each under a stable manifest.
//!
//! Registration is where the generic code lives: `register::<M>` turns the
//! type and the codec into plain function pointers, so the node that runs
//! them is not generic at all.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use compaktor_actor::{Actor, ActorRef, ActorSystem, DeadLetterReason, LookupError, Props, ReplyTo};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{Codec, CodecError, Postcard};
use crate::inbound::{Inbound, Recipient};
use crate::node::Shared;
use crate::route::{RemoteReplyTo, Route};

/// The message types a node can send and receive, and their codec.
///
/// Every node of a cluster registers the same types under the same
/// manifests. A reply type (the `R` of a `ReplyTo<R>` inside a message) is
/// a message type too.
///
/// ```
/// use compaktor_remote::Registry;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Ping(u64);
///
/// let mut registry = Registry::new();
/// registry.register::<Ping>("example.Ping").register::<u64>("u64");
/// ```
pub struct Registry<C: Codec = Postcard> {
    types: Types,
    codec: PhantomData<C>,
}

impl Registry<Postcard> {
    /// An empty registry using the default codec, postcard.
    pub fn new() -> Self {
        Self::with_codec()
    }
}

impl Default for Registry<Postcard> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Codec> Registry<C> {
    /// An empty registry using codec `C`.
    pub fn with_codec() -> Self {
        Registry {
            types: Types::default(),
            codec: PhantomData,
        }
    }

    /// Lets messages of type `M` cross the wire under `manifest`.
    /// Registering a manifest or a type twice replaces the first.
    pub fn register<M>(&mut self, manifest: &'static str) -> &mut Self
    where
        M: Serialize + DeserializeOwned + Send + 'static,
    {
        let entry = Arc::new(Entry {
            manifest,
            type_name: std::any::type_name::<M>(),
            type_id: TypeId::of::<M>(),
            identify: identify::<M>,
            encode: encode::<M, C>,
            deliver: deliver::<M, C>,
            remote_ref: remote_ref::<M>,
            export_reply: export_reply::<M, C>,
            import_reply: import_reply::<M>,
        });
        self.types.by_manifest.insert(manifest, entry.clone());
        self.types.by_type.insert(TypeId::of::<M>(), entry);
        self
    }

    /// Lets other nodes start actors here with
    /// [`RemoteNode::spawn_remote`](crate::RemoteNode::spawn_remote): `make`
    /// builds the actor's props from the arguments sent. The actor's
    /// message type and `Args` must be registered too.
    ///
    /// ```
    /// use compaktor_actor::{Actor, ActorError, Context, Props};
    /// use compaktor_remote::Registry;
    ///
    /// struct Counter { count: u64 }
    /// impl Actor for Counter {
    ///     type Msg = u64;
    ///     async fn handle(&mut self, n: u64, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
    ///         self.count += n;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut registry = Registry::new();
    /// registry
    ///     .register::<u64>("u64")
    ///     .factory("counter", |start: u64| Props::new(move || Counter { count: start }));
    /// ```
    pub fn factory<A, Args>(
        &mut self,
        name: &'static str,
        make: impl Fn(Args) -> Props<A> + Send + Sync + 'static,
    ) -> &mut Self
    where
        A: Actor,
        Args: DeserializeOwned + 'static,
    {
        let spawn = move |system: &ActorSystem, actor: Option<&str>, args: &[u8]| -> Result<String, String> {
            let args: Args = C::decode(args).map_err(|e| e.to_string())?;
            let props = make(args);
            let spawned = match actor {
                Some(actor) => system.spawn(actor, props),
                None => system.spawn_anonymous(props),
            };
            spawned.map(|r| r.path().to_string()).map_err(|e| e.to_string())
        };
        self.types.factories.insert(
            name,
            Arc::new(Factory {
                message: TypeId::of::<A::Msg>(),
                message_name: std::any::type_name::<A::Msg>(),
                spawn: Box::new(spawn),
            }),
        );
        self
    }

    pub(crate) fn into_types(self) -> Types {
        self.types
    }
}

/// The registered types, with the codec baked in.
#[derive(Default)]
pub(crate) struct Types {
    by_manifest: HashMap<&'static str, Arc<Entry>>,
    by_type: HashMap<TypeId, Arc<Entry>>,
    factories: HashMap<&'static str, Arc<Factory>>,
}

/// Starts an actor here for another node: the arguments arrive encoded.
type Spawn = dyn Fn(&ActorSystem, Option<&str>, &[u8]) -> Result<String, String> + Send + Sync;

/// An actor factory registered for remote spawn.
pub(crate) struct Factory {
    /// The actor's message type.
    pub(crate) message: TypeId,
    pub(crate) message_name: &'static str,
    /// Decodes the arguments, spawns, and returns the actor's path.
    pub(crate) spawn: Box<Spawn>,
}

impl Types {
    pub(crate) fn factory(&self, name: &str) -> Option<&Arc<Factory>> {
        self.factories.get(name)
    }

    pub(crate) fn by_manifest(&self, manifest: &str) -> Option<&Arc<Entry>> {
        self.by_manifest.get(manifest)
    }

    pub(crate) fn by_type(&self, id: TypeId) -> Option<&Arc<Entry>> {
        self.by_type.get(&id)
    }
}

/// Decodes a payload and tells it to the local actor at a recipient.
pub(crate) type Deliver = fn(&mut Inbound, Recipient<'_>, Option<&str>, &[u8]);
/// A type-erased value: the registered type, or a ref or reply handle of it.
pub(crate) type AnyBox = Box<dyn Any + Send>;
/// Builds a ref or reply handle of the registered type towards a path on another node.
type Towards = fn(&Arc<Shared>, &Arc<Entry>, compaktor_actor::ActorPath) -> AnyBox;

/// One registered type. Every `dyn Any` here is that type, or a ref or
/// reply handle of it.
pub(crate) struct Entry {
    pub(crate) manifest: &'static str,
    pub(crate) type_name: &'static str,
    pub(crate) type_id: TypeId,
    /// The path of the local actor at a path if it takes `M`.
    pub(crate) identify: fn(&ActorSystem, &str) -> Result<String, LookupError>,
    /// Encodes a `&M`.
    pub(crate) encode: fn(&dyn Any, &mut Vec<u8>) -> Result<(), CodecError>,
    /// Decodes a payload and tells it to the local actor at `recipient`.
    pub(crate) deliver: Deliver,
    /// An `ActorRef<M>` reaching `path` on another node.
    pub(crate) remote_ref: Towards,
    /// Wraps a `ReplyTo<M>` so a payload can complete it.
    pub(crate) export_reply: fn(AnyBox) -> Option<Box<dyn PendingReply>>,
    /// A `ReplyTo<M>` answering to `address` on another node.
    pub(crate) import_reply: Towards,
}

/// A local asker's reply handle, waiting for a reply from another node.
pub(crate) trait PendingReply: Send {
    /// Decodes `payload` and answers with it.
    fn complete(self: Box<Self>, shared: &Arc<Shared>, payload: &[u8]) -> Result<(), CodecError>;
    /// Whether the asker has stopped waiting.
    fn is_closed(&self) -> bool;
}

struct Pending<R, C> {
    reply: ReplyTo<R>,
    codec: PhantomData<fn() -> C>,
}

impl<R: DeserializeOwned + Send + 'static, C: Codec> PendingReply for Pending<R, C> {
    fn complete(self: Box<Self>, shared: &Arc<Shared>, payload: &[u8]) -> Result<(), CodecError> {
        let value: R = shared.resolving(|| C::decode(payload))?;
        let _ = self.reply.send(value);
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.reply.is_closed()
    }
}

fn identify<M: Send + 'static>(system: &ActorSystem, path: &str) -> Result<String, LookupError> {
    system.lookup::<M>(path).map(|found| found.path().to_string())
}

fn encode<M: Serialize + 'static, C: Codec>(value: &dyn Any, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let value = value
        .downcast_ref::<M>()
        .ok_or_else(|| CodecError::Encode(format!("not a {}", std::any::type_name::<M>())))?;
    C::encode(value, out)
}

fn deliver<M: DeserializeOwned + Send + 'static, C: Codec>(
    inbound: &mut Inbound,
    recipient: Recipient<'_>,
    sender: Option<&str>,
    payload: &[u8],
) {
    let msg: M = match inbound.shared().resolving(|| C::decode(payload)) {
        Ok(msg) => msg,
        Err(error) => {
            return inbound.undecodable(
                recipient.path,
                sender,
                std::any::type_name::<M>(),
                payload,
                &error.to_string(),
            );
        }
    };
    match inbound.local_ref::<M>(recipient) {
        Ok(target) => target.tell(msg),
        Err(reason) => inbound.shared().dead_letter_to(recipient.path, sender, msg, reason),
    }
}

fn remote_ref<M: Send + 'static>(
    shared: &Arc<Shared>,
    entry: &Arc<Entry>,
    path: compaktor_actor::ActorPath,
) -> Box<dyn Any + Send> {
    let route: Arc<dyn compaktor_actor::transport::RemoteRoute<M>> = Arc::new(Route::<M>::new(shared, entry, path));
    Box::new(ActorRef::remote(route))
}

fn export_reply<R: DeserializeOwned + Send + 'static, C: Codec>(
    handle: Box<dyn Any + Send>,
) -> Option<Box<dyn PendingReply>> {
    let reply = *handle.downcast::<ReplyTo<R>>().ok()?;
    Some(Box::new(Pending::<R, C> {
        reply,
        codec: PhantomData,
    }))
}

fn import_reply<R: Send + 'static>(
    shared: &Arc<Shared>,
    entry: &Arc<Entry>,
    address: compaktor_actor::ActorPath,
) -> Box<dyn Any + Send> {
    let remote: Arc<dyn compaktor_actor::transport::RemoteReply<R>> =
        Arc::new(RemoteReplyTo::<R>::new(shared, entry, address));
    Box::new(ReplyTo::remote(remote))
}

/// Why an inbound message was not handed to a local actor.
pub(crate) fn lookup_reason(error: &LookupError) -> DeadLetterReason {
    match error {
        LookupError::WrongType { .. } => DeadLetterReason::Undecodable,
        _ => DeadLetterReason::RecipientStopped,
    }
}
