//! A node: an actor system plus the QUIC endpoint that joins it to others.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use compaktor_actor::transport::{with_resolver, ResolveError, Resolver};
use compaktor_actor::{ActorPath, ActorRef, ActorSystem, Address, DeadLetterReason, LookupError, SystemConfig};

use crate::codec::Codec;
use crate::error::RemoteError;
use crate::frame::{FrameDecoder, Kind};
use crate::inbound::{self, status};
use crate::peer::{Peer, PeerSettings};
use crate::phi::PhiSettings;
use crate::registry::{Entry, PendingReply, Registry, Types};
use crate::tls::NodeIdentity;

/// How a node listens, proves itself, watches its peers and bounds its
/// resources.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteConfig {
    /// The actor system's settings; its host and port are set to the
    /// address the endpoint listens on.
    pub system: SystemConfig,
    /// Where to listen. Default `127.0.0.1:0` (any free port). Peers dial
    /// this address, so bind a concrete one, not `0.0.0.0`.
    pub bind: SocketAddr,
    /// This node's certificate, key and cluster CA.
    pub identity: NodeIdentity,
    /// The largest frame sent or accepted, in bytes. Default 8 MiB.
    pub max_frame: usize,
    /// Frames larger than this travel on the large-message stream, so they
    /// never hold up small ones. Default 64 KiB.
    pub large_message: usize,
    /// Inbound connections served at once, and peers tracked; more are
    /// refused (refs to further nodes reach nothing: their messages are
    /// dead letters). Default 256.
    pub max_connections: usize,
    /// User messages queued per peer while connecting or sending; beyond
    /// it messages become dead letters (reason `MailboxFull`; `try_tell`
    /// reports `Full`). Default 65 536.
    pub send_queue: usize,
    /// System messages (watch, stop, terminated, look-ups) kept per peer
    /// until acknowledged. Default 20 000.
    pub system_queue: usize,
    /// How long dialing a peer may take. Default 5 s.
    pub connect_timeout: Duration,
    /// How long a look-up or remote spawn waits for its answer. Default 10 s.
    pub request_timeout: Duration,
    /// How often each side of a connection sends a heartbeat. Default 1 s.
    pub heartbeat_interval: Duration,
    /// Heartbeat silence beyond the usual interval that is never
    /// suspicious. Default 2 s: a killed peer is noticed in about 4 s.
    pub acceptable_heartbeat_pause: Duration,
    /// Suspicion (phi) at which a silent peer is declared unreachable.
    /// Default 8, as in Akka.
    pub phi_threshold: f64,
}

impl RemoteConfig {
    /// Defaults for a node whose system is called `name`.
    pub fn new(name: impl Into<String>, identity: NodeIdentity) -> Self {
        RemoteConfig {
            system: SystemConfig::new(name),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            identity,
            max_frame: 8 << 20,
            large_message: 64 << 10,
            max_connections: 256,
            send_queue: 65_536,
            system_queue: 20_000,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            acceptable_heartbeat_pause: Duration::from_secs(2),
            phi_threshold: 8.0,
        }
    }

    fn peer_settings(&self) -> PeerSettings {
        PeerSettings {
            send_queue: self.send_queue,
            system_queue: self.system_queue,
            max_frame: self.max_frame,
            large_message: self.large_message,
            phi: PhiSettings {
                threshold: self.phi_threshold,
                max_samples: 1000,
                min_std_dev: self.heartbeat_interval / 5,
                acceptable_pause: self.acceptable_heartbeat_pause,
                first_interval: self.heartbeat_interval,
            },
        }
    }
}

/// A message that arrived but could not be decoded, or was encoded but
/// could not be sent: published as a dead letter's message.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UndeliveredFrame {
    /// Where it was going, as sent.
    pub recipient: String,
    /// The manifest it carried.
    pub manifest: String,
    /// The encoded payload.
    pub payload: Bytes,
    /// Why it was not delivered.
    pub error: String,
}

/// What a node knows of one peer: from [`RemoteNode::peers`].
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct PeerStatus {
    /// The address the peer listens on.
    pub address: SocketAddr,
    /// The peer's incarnation, once a connection has worked.
    pub incarnation: Option<uuid::Uuid>,
    /// Whether a connection is up.
    pub connected: bool,
    /// Which side dialed the connection that is up.
    pub dialed_by_us: Option<bool>,
    /// The connection's id on this node, while one is up.
    pub connection_id: Option<usize>,
    /// Current suspicion of the peer (phi); above the threshold it is
    /// declared unreachable.
    pub phi: f64,
    /// System messages sent and not yet acknowledged.
    pub pending_system_messages: usize,
    /// Remote actors this node watches there.
    pub watches: usize,
    /// Actors of this node the peer watches.
    pub watched_by_peer: usize,
}

/// One node of a cluster: an [`ActorSystem`] whose refs reach actors on
/// other nodes over QUIC with mutual TLS.
///
/// Delivery is at most once and ordered per sender–receiver pair, as
/// locally: a message that cannot be sent (peer unreachable, queue full,
/// too large) is a dead letter on the sending node; one that arrives but
/// cannot be decoded or has no recipient is a dead letter on the receiving
/// node. System messages (watch, stop, terminated) are acknowledged and
/// resent across reconnects until the peer is declared gone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use compaktor_remote::{NodeIdentity, Registry, RemoteConfig, RemoteNode};
///
/// let mut registry = Registry::new();
/// registry.register::<String>("string");
/// let node = RemoteNode::start(RemoteConfig::new("docs", NodeIdentity::dev()?), registry).await?;
/// assert!(node.system().address().port() > 0);
/// node.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct RemoteNode {
    shared: Arc<Shared>,
}

impl RemoteNode {
    /// Binds the endpoint, starts the actor system at its address and
    /// starts accepting peers.
    ///
    /// # Errors
    /// [`RemoteError::Tls`] for unusable TLS material, [`RemoteError::Bind`]
    /// if the address cannot be bound, [`RemoteError::System`] if the system
    /// cannot start (for example outside a tokio runtime).
    pub async fn start<C: Codec>(config: RemoteConfig, registry: Registry<C>) -> Result<Self, RemoteError> {
        let mut server = config.identity.server_config()?;
        let mut client = config.identity.client_config()?;
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(Duration::from_secs(2)));
        // Each side opens three streams (control, user, large); each open
        // stream may buffer up to `max_frame`, so allow few.
        transport.max_concurrent_uni_streams(4u32.into());
        transport.max_concurrent_bidi_streams(0u32.into());
        let transport = Arc::new(transport);
        server.transport_config(transport.clone());
        client.transport_config(transport);
        // Resets keyed by the identity: a node restarted on the same address
        // resets the connections its previous incarnation left open, so
        // their peers notice at once instead of when heartbeats stop.
        let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(config.identity.reset_key()));
        let cid_key = config.identity.connection_id_key();
        endpoint_config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
        let socket = std::net::UdpSocket::bind(config.bind).map_err(RemoteError::Bind)?;
        let runtime = Arc::new(quinn::TokioRuntime);
        let endpoint =
            quinn::Endpoint::new(endpoint_config, Some(server), socket, runtime).map_err(RemoteError::Bind)?;
        let local = endpoint.local_addr().map_err(RemoteError::Bind)?;
        let mut system_config = config.system.clone();
        system_config.host = local.ip().to_string();
        system_config.port = local.port();
        let system = ActorSystem::new(system_config)?;
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| Shared {
            root: format!("{}", ActorPath::root(system.address().clone())),
            resolver: Arc::new(NodeResolver {
                system: system.clone(),
                shared: weak.clone(),
            }),
            system,
            runtime: tokio::runtime::Handle::current(),
            endpoint: endpoint.clone(),
            client,
            types: registry.into_types(),
            peers: Mutex::new(HashMap::new()),
            temps: Mutex::new(Temps::default()),
            connections: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            peer_settings: config.peer_settings(),
            config,
        });
        tokio::spawn(inbound::accept(Arc::downgrade(&shared), endpoint));
        tracing::info!(node = %shared.root, incarnation = %shared.system.incarnation(), "remote node listening");
        Ok(RemoteNode { shared })
    }

    /// The node's actor system.
    pub fn system(&self) -> &ActorSystem {
        &self.shared.system
    }

    /// The socket address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        let address = self.shared.system.address();
        SocketAddr::new(
            address.host().parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
            address.port(),
        )
    }

    /// Looks up the actor at `path`, on this node or another, and checks
    /// that it exists and takes messages of type `M`: a round trip to the
    /// other node.
    ///
    /// # Errors
    /// [`RemoteError::InvalidPath`]; [`RemoteError::Lookup`] for a missing
    /// actor; [`RemoteError::WrongType`]; [`RemoteError::Unregistered`] if `M`
    /// is not registered (here or there); [`RemoteError::NoAnswer`] if the
    /// other node does not answer within the request timeout.
    pub async fn lookup<M: Send + 'static>(&self, path: &str) -> Result<ActorRef<M>, RemoteError> {
        let parsed: ActorPath = path.parse().map_err(|_| RemoteError::InvalidPath(path.to_owned()))?;
        if parsed.address() == self.shared.system.address() {
            return Ok(self.shared.system.lookup::<M>(path)?);
        }
        let entry = self.shared.entry::<M>()?;
        let peer = self
            .shared
            .peer(parsed.address())
            .ok_or(RemoteError::InvalidPath(path.to_owned()))?;
        let answer = peer.request(Kind::Identify, path, None, entry.manifest, &[]);
        let (status, text) = self.shared.await_answer(&peer, answer).await?;
        match status {
            status::OK => self.ref_to::<M>(&text),
            status::NOT_FOUND => Err(LookupError::NotFound(text).into()),
            status::WRONG_TYPE => Err(RemoteError::WrongType {
                path: path.to_owned(),
                expected: std::any::type_name::<M>(),
                actual: text,
            }),
            _ => Err(RemoteError::Unregistered(entry.type_name)),
        }
    }

    /// A typed ref to the actor at `path`, on this node or another, made
    /// without a round trip: an actor missing on the other node, or taking
    /// another type, shows up there as a dead letter. Use
    /// [`lookup`](Self::lookup) to check first.
    ///
    /// # Errors
    /// [`RemoteError::InvalidPath`], [`RemoteError::Lookup`] for a local
    /// path, [`RemoteError::Unregistered`] if `M` is not registered.
    pub fn ref_to<M: Send + 'static>(&self, path: &str) -> Result<ActorRef<M>, RemoteError> {
        let parsed: ActorPath = path.parse().map_err(|_| RemoteError::InvalidPath(path.to_owned()))?;
        if parsed.address() == self.shared.system.address() {
            return Ok(self.shared.system.lookup::<M>(path)?);
        }
        let entry = self.shared.entry::<M>()?;
        let name = std::any::type_name::<M>();
        (entry.remote_ref)(&self.shared, entry, parsed)
            .downcast::<ActorRef<M>>()
            .map(|r| *r)
            .map_err(|_| RemoteError::Unregistered(name))
    }

    /// Starts an actor on the node at `node` from the factory registered
    /// there as `factory` (see [`Registry::factory`]), passing it `args`,
    /// and returns its ref. `name` names the actor (under `/user`);
    /// `None` makes an anonymous one. `A` must be a registered type, so it
    /// can cross the wire; the actor's message type must be `M`.
    ///
    /// # Errors
    /// [`RemoteError::NoFactory`], [`RemoteError::Spawn`] (for example the
    /// name is taken), [`RemoteError::WrongType`] if the factory's actor
    /// takes another type, [`RemoteError::Unregistered`], [`RemoteError::NoAnswer`].
    pub async fn spawn_remote<M: Send + 'static, A: Send + 'static>(
        &self,
        node: SocketAddr,
        factory: &str,
        name: Option<&str>,
        args: A,
    ) -> Result<ActorRef<M>, RemoteError> {
        let entry = self.shared.entry::<M>()?;
        let args_entry = self.shared.entry::<A>()?;
        let mut encoded = Vec::new();
        self.shared
            .resolving(|| (args_entry.encode)(&args, &mut encoded))
            .map_err(|e| RemoteError::Spawn(e.to_string()))?;
        let address = Address::new(self.shared.system.name(), &node.ip().to_string(), node.port());
        let peer = self
            .shared
            .peer(&address)
            .ok_or(RemoteError::InvalidPath(node.to_string()))?;
        let answer = peer.request(Kind::Spawn, factory, name, entry.manifest, &encoded);
        let (status, text) = self.shared.await_answer(&peer, answer).await?;
        match status {
            status::OK => self.ref_to::<M>(&text),
            status::NO_FACTORY => Err(RemoteError::NoFactory(text)),
            status::WRONG_TYPE => Err(RemoteError::WrongType {
                path: factory.to_owned(),
                expected: std::any::type_name::<M>(),
                actual: text,
            }),
            status::UNREGISTERED => Err(RemoteError::Unregistered(entry.type_name)),
            _ => Err(RemoteError::Spawn(text)),
        }
    }

    /// What this node knows of each peer it has talked to.
    pub fn peers(&self) -> Vec<PeerStatus> {
        let peers: Vec<Arc<Peer>> = lock(&self.shared.peers).values().cloned().collect();
        peers.iter().map(|p| p.status()).collect()
    }

    /// Stops every actor, tells peers watching them (waiting up to 2 s for
    /// their acknowledgement), then closes the endpoint: peers see the node
    /// leave at once rather than through missed heartbeats.
    pub async fn shutdown(&self) {
        let _ = self.shared.system.shutdown().await;
        // Let watchers elsewhere hear that our actors stopped.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let peers: Vec<Arc<Peer>> = lock(&self.shared.peers).values().cloned().collect();
        for peer in peers {
            peer.flush(deadline).await;
        }
        self.shared.closing.store(true, Ordering::Release);
        self.shared
            .endpoint
            .close(crate::peer::close::SHUTDOWN.into(), b"shutdown");
        // Give the close frames a moment to leave.
        let _ = tokio::time::timeout(Duration::from_millis(200), self.shared.endpoint.wait_idle()).await;
    }
}

/// What the node's tasks, routes and reply handles share.
pub(crate) struct Shared {
    system: ActorSystem,
    /// This node's root path as text: `compaktor://sys@host:port/`.
    root: String,
    resolver: Arc<dyn Resolver>,
    /// Where peer tasks run, so a ref can be made from any thread.
    runtime: tokio::runtime::Handle,
    endpoint: quinn::Endpoint,
    client: quinn::ClientConfig,
    types: Types,
    peers: Mutex<HashMap<SocketAddr, Arc<Peer>>>,
    pub(crate) temps: Mutex<Temps>,
    pub(crate) connections: AtomicUsize,
    closing: AtomicBool,
    peer_settings: PeerSettings,
    config: RemoteConfig,
}

/// Local askers waiting for replies from other nodes, by temporary id.
#[derive(Default)]
pub(crate) struct Temps {
    next: u64,
    pub(crate) pending: HashMap<u64, Box<dyn PendingReply>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fresh id for a look-up or spawn request.
pub(crate) fn next_request_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Shared {
    pub(crate) fn system(&self) -> &ActorSystem {
        &self.system
    }

    pub(crate) fn root(&self) -> &str {
        &self.root
    }

    pub(crate) fn types(&self) -> &Types {
        &self.types
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    pub(crate) fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    pub(crate) fn client(&self) -> &quinn::ClientConfig {
        &self.client
    }

    pub(crate) fn max_frame(&self) -> usize {
        self.config.max_frame
    }

    pub(crate) fn max_connections(&self) -> usize {
        self.config.max_connections
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    fn entry<M: 'static>(&self) -> Result<&Arc<Entry>, RemoteError> {
        self.types
            .by_type(TypeId::of::<M>())
            .ok_or(RemoteError::Unregistered(std::any::type_name::<M>()))
    }

    /// Runs an encode or a decode with this node resolving the refs and
    /// reply handles inside the message.
    pub(crate) fn resolving<T>(&self, f: impl FnOnce() -> T) -> T {
        with_resolver(&self.resolver, f)
    }

    /// The peer at `address`, made on first use (nothing is dialed until
    /// there is something to send); `None` if the address is not an IP
    /// address and port.
    pub(crate) fn peer(self: &Arc<Self>, address: &Address) -> Option<Arc<Peer>> {
        let ip: IpAddr = address.host().parse().ok()?;
        let addr = SocketAddr::new(ip, address.port());
        let mut peers = lock(&self.peers);
        if let Some(peer) = peers.get(&addr) {
            return Some(peer.clone());
        }
        // Refs inside messages name nodes: bound how many a peer can make us track.
        if peers.len() >= self.config.max_connections {
            tracing::warn!(%addr, "too many peers; refs to this node reach nothing");
            return None;
        }
        let peer = Peer::start(self, addr, &self.peer_settings, &self.runtime);
        peers.insert(addr, peer.clone());
        Some(peer)
    }

    /// The peer whose root path is `root`.
    pub(crate) fn peer_at_root(self: &Arc<Self>, root: &str) -> Option<Arc<Peer>> {
        let path: ActorPath = root.parse().ok()?;
        self.peer(path.address())
    }

    /// Waits for the answer to a request, within the request timeout.
    async fn await_answer(
        &self,
        peer: &Peer,
        answer: tokio::sync::oneshot::Receiver<(u8, String)>,
    ) -> Result<(u8, String), RemoteError> {
        match tokio::time::timeout(self.config.request_timeout, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(RemoteError::NoAnswer(peer.addr)),
            Err(_) => Err(RemoteError::NoAnswer(peer.addr)),
        }
    }

    /// Answers a look-up: is there an actor at `path` taking `manifest`?
    pub(crate) fn identify(&self, path: &str, manifest: &str) -> (u8, String) {
        let Some(entry) = self.types.by_manifest(manifest) else {
            return (status::UNREGISTERED, manifest.to_owned());
        };
        match (entry.identify)(&self.system, path) {
            Ok(found) => (status::OK, found),
            Err(LookupError::WrongType { actual, .. }) => (status::WRONG_TYPE, actual.to_owned()),
            Err(_) => (status::NOT_FOUND, path.to_owned()),
        }
    }

    /// Answers a remote spawn: runs the factory, returns the new path.
    pub(crate) fn spawn_local(&self, factory: &str, name: Option<&str>, manifest: &str, args: &[u8]) -> (u8, String) {
        let Some(factory_entry) = self.types.factory(factory) else {
            return (status::NO_FACTORY, factory.to_owned());
        };
        match self.types.by_manifest(manifest) {
            Some(entry) if entry.type_id == factory_entry.message => {}
            Some(_) => return (status::WRONG_TYPE, factory_entry.message_name.to_owned()),
            None => return (status::UNREGISTERED, manifest.to_owned()),
        }
        match self.resolving(|| (factory_entry.spawn)(&self.system, name, args)) {
            Ok(path) => (status::OK, path),
            Err(error) => (status::FAILED, error),
        }
    }

    /// Publishes `msg`, bound for `recipient` (as text), as a dead letter.
    pub(crate) fn dead_letter_to<M: Send + 'static>(
        &self,
        recipient: &str,
        sender: Option<&str>,
        msg: M,
        reason: DeadLetterReason,
    ) {
        let recipient = recipient
            .parse()
            .unwrap_or_else(|_| ActorPath::root(self.system.address().clone()));
        let sender = sender.and_then(|s| s.parse().ok());
        self.system.dead_letter(&recipient, sender, msg, reason);
    }

    /// Frames that could not go out (one, or a run of them): dead letters.
    pub(crate) fn lost(&self, bytes: Bytes, error: &str) {
        let mut decoder = FrameDecoder::new(usize::MAX);
        decoder.push(&bytes);
        while let Some(Ok(frame)) = decoder.next_frame() {
            if frame.kind == Kind::Message {
                let undelivered = UndeliveredFrame {
                    recipient: decoder.text(&frame.recipient).to_owned(),
                    manifest: decoder.text(&frame.manifest).to_owned(),
                    payload: frame.payload,
                    error: error.to_owned(),
                };
                let recipient = undelivered.recipient.clone();
                self.dead_letter_to(&recipient, None, undelivered, DeadLetterReason::Unreachable);
            }
        }
    }
}

/// Turns refs and reply handles inside messages into paths and back.
struct NodeResolver {
    system: ActorSystem,
    shared: Weak<Shared>,
}

impl NodeResolver {
    fn parts(
        &self,
        id: TypeId,
        name: &'static str,
    ) -> Result<(Arc<Shared>, Arc<crate::registry::Entry>), ResolveError> {
        let shared = self.shared.upgrade().ok_or(ResolveError::NoTransport)?;
        let entry = shared
            .types
            .by_type(id)
            .ok_or(ResolveError::Unregistered(name))?
            .clone();
        Ok((shared, entry))
    }
}

impl Resolver for NodeResolver {
    fn system(&self) -> &ActorSystem {
        &self.system
    }

    fn remote_ref(
        &self,
        id: TypeId,
        name: &'static str,
        path: &ActorPath,
    ) -> Result<Box<dyn Any + Send>, ResolveError> {
        let (shared, entry) = self.parts(id, name)?;
        Ok((entry.remote_ref)(&shared, &entry, path.clone()))
    }

    fn export_reply(
        &self,
        id: TypeId,
        name: &'static str,
        handle: Box<dyn Any + Send>,
    ) -> Result<String, ResolveError> {
        let (shared, entry) = self.parts(id, name)?;
        let pending = (entry.export_reply)(handle).ok_or(ResolveError::Unregistered(name))?;
        let mut temps = lock(&shared.temps);
        temps.next += 1;
        let id = temps.next;
        // Askers that gave up leave their entries behind; sweep them now and then.
        if id % 1024 == 0 {
            temps.pending.retain(|_, p| !p.is_closed());
        }
        temps.pending.insert(id, pending);
        Ok(format!("{}temp/{id}", shared.root))
    }

    fn import_reply(&self, id: TypeId, name: &'static str, address: &str) -> Result<Box<dyn Any + Send>, ResolveError> {
        let (shared, entry) = self.parts(id, name)?;
        let path: ActorPath = address.parse().map_err(|_| ResolveError::Invalid(address.to_owned()))?;
        Ok((entry.import_reply)(&shared, &entry, path))
    }
}
