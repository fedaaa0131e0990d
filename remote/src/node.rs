//! A node: an actor system plus the QUIC endpoint that joins it to others.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use compaktor_actor::transport::{with_resolver, ResolveError, Resolver};
use compaktor_actor::{
    ActorPath, ActorRef, ActorSystem, Address, DeadLetterReason, StopReason, SystemConfig, Terminated,
};
use tokio::sync::{mpsc, oneshot};

use crate::codec::Codec;
use crate::error::RemoteError;
use crate::frame::{self, Frame, FrameDecoder, FrameError, Kind};
use crate::registry::{lookup_reason, PendingReply, Registry, Types};
use crate::tls::{NodeIdentity, NODE_NAME};

/// How a node listens, proves itself and bounds its resources.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteConfig {
    /// The actor system's settings; its host and port are set to the
    /// address the endpoint listens on.
    pub system: SystemConfig,
    /// Where to listen. Default `127.0.0.1:0` (any free port).
    pub bind: SocketAddr,
    /// This node's certificate, key and cluster CA.
    pub identity: NodeIdentity,
    /// The largest frame sent or accepted, in bytes. Default 8 MiB.
    pub max_frame: usize,
    /// Inbound connections served at once; more are refused. Default 256.
    pub max_connections: usize,
    /// Frames queued per peer while connecting or sending; beyond it
    /// messages become dead letters. Default 65 536.
    pub send_queue: usize,
    /// How long dialing a peer may take. Default 5 s.
    pub connect_timeout: Duration,
}

impl RemoteConfig {
    /// Defaults for a node whose system is called `name`.
    pub fn new(name: impl Into<String>, identity: NodeIdentity) -> Self {
        RemoteConfig {
            system: SystemConfig::new(name),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            identity,
            max_frame: 8 << 20,
            max_connections: 256,
            send_queue: 65_536,
            connect_timeout: Duration::from_secs(5),
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

/// One node of a cluster: an [`ActorSystem`] whose refs reach actors on
/// other nodes over QUIC with mutual TLS.
///
/// Delivery is at most once and ordered per sender–receiver pair, as
/// locally: a message that cannot be sent (peer unreachable, queue full,
/// too large) is a dead letter on the sending node; one that arrives but
/// cannot be decoded or has no recipient is a dead letter on the receiving
/// node.
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
        let server = config.identity.server_config()?;
        let client = config.identity.client_config()?;
        let mut server = server;
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(Duration::from_secs(2)));
        // A peer needs one stream of ours and opens one of its own; each
        // open stream may buffer up to `max_frame`, so allow few.
        transport.max_concurrent_uni_streams(4u32.into());
        transport.max_concurrent_bidi_streams(0u32.into());
        server.transport_config(Arc::new(transport));
        let endpoint = quinn::Endpoint::server(server, config.bind).map_err(RemoteError::Bind)?;
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
            max_frame: config.max_frame,
            max_connections: config.max_connections,
            send_queue: config.send_queue,
            connect_timeout: config.connect_timeout,
        });
        tokio::spawn(accept(Arc::downgrade(&shared), endpoint));
        tracing::info!(node = %shared.root, "remote node listening");
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

    /// A typed ref to the actor at `path`, on this node or another.
    ///
    /// A remote ref is built without a round trip: an actor missing on the
    /// other node, or taking another type, shows up there as a dead letter.
    ///
    /// # Errors
    /// [`RemoteError::InvalidPath`], [`RemoteError::Lookup`] for a local
    /// path, [`RemoteError::Unregistered`] if `M` is not registered.
    pub fn lookup<M: Send + 'static>(&self, path: &str) -> Result<ActorRef<M>, RemoteError> {
        let parsed: ActorPath = path.parse().map_err(|_| RemoteError::InvalidPath(path.to_owned()))?;
        if parsed.address() == self.shared.system.address() {
            return Ok(self.shared.system.lookup::<M>(path)?);
        }
        let name = std::any::type_name::<M>();
        let entry = self
            .shared
            .types
            .by_type(TypeId::of::<M>())
            .ok_or(RemoteError::Unregistered(name))?;
        (entry.remote_ref)(&self.shared, entry, parsed)
            .downcast::<ActorRef<M>>()
            .map(|r| *r)
            .map_err(|_| RemoteError::Unregistered(name))
    }

    /// Stops every actor, then closes the endpoint.
    pub async fn shutdown(&self) {
        let _ = self.shared.system.shutdown().await;
        self.shared.endpoint.close(0u32.into(), b"shutdown");
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
    temps: Mutex<Temps>,
    connections: AtomicUsize,
    max_frame: usize,
    max_connections: usize,
    send_queue: usize,
    connect_timeout: Duration,
}

/// Local askers waiting for replies from other nodes, by temporary id.
#[derive(Default)]
struct Temps {
    next: u64,
    pending: HashMap<u64, Box<dyn PendingReply>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// Runs an encode or a decode with this node resolving the refs and
    /// reply handles inside the message.
    pub(crate) fn resolving<T>(&self, f: impl FnOnce() -> T) -> T {
        with_resolver(&self.resolver, f)
    }

    /// The peer at `address`, connected on first use; `None` if the
    /// address is not an IP address and port.
    pub(crate) fn peer(self: &Arc<Self>, address: &Address) -> Option<Arc<Peer>> {
        let ip: IpAddr = address.host().parse().ok()?;
        let addr = SocketAddr::new(ip, address.port());
        let mut peers = lock(&self.peers);
        let peer = peers.entry(addr).or_insert_with(|| {
            let (queue, rx) = mpsc::channel(self.send_queue);
            self.runtime.spawn(write(Arc::downgrade(self), addr, rx));
            Arc::new(Peer {
                addr,
                local: self.root.clone(),
                queue,
                max_frame: self.max_frame,
                watches: Mutex::new(HashMap::new()),
            })
        });
        Some(peer.clone())
    }

    fn peer_by_path(self: &Arc<Self>, text: &str) -> Option<Arc<Peer>> {
        let path: ActorPath = text.parse().ok()?;
        self.peer(path.address())
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

    /// A frame that could not go out: a dead letter, as bytes.
    fn lost(&self, bytes: Bytes, error: &str) {
        let mut decoder = FrameDecoder::new(usize::MAX);
        decoder.push(&bytes);
        if let Some(Ok(frame)) = decoder.next_frame() {
            if frame.kind == Kind::Message {
                let undelivered = UndeliveredFrame {
                    recipient: frame.recipient.as_str().to_owned(),
                    manifest: frame.manifest.as_str().to_owned(),
                    payload: frame.payload,
                    error: error.to_owned(),
                };
                let recipient = undelivered.recipient.clone();
                self.dead_letter_to(&recipient, None, undelivered, DeadLetterReason::Unreachable);
            }
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<quinn::Connection, String> {
        let connecting = self
            .endpoint
            .connect_with(self.client.clone(), addr, NODE_NAME)
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.connect_timeout)),
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

/// The way to one other node: a bounded queue of encoded frames, drained
/// by a task that owns the connection.
pub(crate) struct Peer {
    addr: SocketAddr,
    /// Our own root path, where the peer sends `Terminated` for our watches.
    local: String,
    queue: mpsc::Sender<Bytes>,
    max_frame: usize,
    watches: Mutex<HashMap<String, Vec<oneshot::Sender<Terminated>>>>,
}

impl Peer {
    /// Encodes one frame and queues it without waiting.
    pub(crate) fn send(
        &self,
        kind: Kind,
        recipient: &str,
        sender: Option<&str>,
        manifest: &str,
        payload: &[u8],
    ) -> Result<(), DeadLetterReason> {
        let mut buf = BytesMut::new();
        frame::encode(&mut buf, kind, recipient, sender, manifest, payload, self.max_frame).map_err(|e| match e {
            FrameError::TooLarge { .. } => DeadLetterReason::TooLarge,
            _ => DeadLetterReason::Undecodable,
        })?;
        self.queue
            .try_send(buf.freeze())
            .map_err(|_| DeadLetterReason::Unreachable)
    }

    /// Resolves when the peer reports `recipient` terminated.
    pub(crate) fn watch(&self, recipient: &str) -> oneshot::Receiver<Terminated> {
        let (tx, rx) = oneshot::channel();
        lock(&self.watches).entry(recipient.to_owned()).or_default().push(tx);
        if self.send(Kind::Watch, recipient, Some(&self.local), "", &[]).is_err() {
            tracing::debug!(peer = %self.addr, recipient, "watch not sent");
        }
        rx
    }

    fn terminated(&self, recipient: &str) {
        let Ok(path) = recipient.parse::<ActorPath>() else {
            return;
        };
        let watchers = lock(&self.watches).remove(recipient).unwrap_or_default();
        for watcher in watchers {
            let _ = watcher.send(Terminated::new(path.clone(), StopReason::Stopped));
        }
    }
}

/// Owns the outbound connection to `addr`: dials when there is something to
/// send, writes queued frames in batches, redials with backoff after loss.
async fn write(shared: Weak<Shared>, addr: SocketAddr, mut rx: mpsc::Receiver<Bytes>) {
    const BATCH: usize = 1024;
    let mut backoff = Duration::from_millis(100);
    let mut batch: Vec<Bytes> = Vec::with_capacity(BATCH);
    'connect: loop {
        if batch.is_empty() {
            match rx.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
        }
        let Some(node) = shared.upgrade() else { return };
        let stream = match node.connect(addr).await {
            Ok(connection) => match confirm(&connection, node.connect_timeout).await {
                Ok(peer) => {
                    tracing::debug!(peer, "connected");
                    connection.open_uni().await.map_err(|e| e.to_string())
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(peer = %addr, %error, "cannot connect; queued messages become dead letters");
                for bytes in batch.drain(..) {
                    node.lost(bytes, &error);
                }
                while let Ok(bytes) = rx.try_recv() {
                    node.lost(bytes, &error);
                }
                drop(node);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue 'connect;
            }
        };
        backoff = Duration::from_millis(100);
        let mut hello = BytesMut::new();
        let _ = frame::encode(&mut hello, Kind::Hello, &node.root, None, "", &[], usize::MAX);
        batch.insert(0, hello.freeze());
        drop(node);
        loop {
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(bytes) => batch.push(bytes),
                    Err(_) => break,
                }
            }
            if let Err(error) = stream.write_all_chunks(&mut batch).await {
                tracing::warn!(peer = %addr, %error, "connection lost; unsent messages become dead letters");
                if let Some(node) = shared.upgrade() {
                    for bytes in batch.drain(..) {
                        node.lost(bytes, &error.to_string());
                    }
                }
                batch.clear();
                continue 'connect;
            }
            batch.clear();
            match rx.recv().await {
                Some(bytes) => batch.push(bytes),
                None => {
                    let _ = stream.finish();
                    return;
                }
            }
        }
    }
}

/// Waits for the peer's hello: only a peer that accepted our certificate
/// sends one, so nothing is written to a connection it is about to refuse.
async fn confirm(connection: &quinn::Connection, timeout: Duration) -> Result<String, String> {
    let hello = async {
        let mut stream = connection.accept_uni().await.map_err(|e| e.to_string())?;
        let bytes = stream.read_to_end(1024).await.map_err(|e| e.to_string())?;
        let mut decoder = FrameDecoder::new(1024);
        decoder.push(&bytes);
        match decoder.next_frame() {
            Some(Ok(frame)) if frame.kind == Kind::Hello => Ok(frame.recipient.as_str().to_owned()),
            _ => Err("the peer's hello is malformed".to_owned()),
        }
    };
    tokio::time::timeout(timeout, hello)
        .await
        .unwrap_or_else(|_| Err(format!("no hello within {timeout:?}")))
}

/// Accepts peers until the endpoint closes.
async fn accept(shared: Weak<Shared>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let Some(node) = shared.upgrade() else { return };
        let remote = incoming.remote_address();
        if node.connections.load(Ordering::Relaxed) >= node.max_connections {
            tracing::warn!(%remote, "connection refused: too many connections");
            incoming.refuse();
            continue;
        }
        tokio::spawn(async move {
            match incoming.await {
                Ok(connection) => serve(node, connection).await,
                Err(error) => tracing::warn!(%remote, %error, "connection attempt rejected"),
            }
        });
    }
}

/// Reads every stream a peer opens.
async fn serve(node: Arc<Shared>, connection: quinn::Connection) {
    struct Counted<'a>(&'a AtomicUsize);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    node.connections.fetch_add(1, Ordering::Relaxed);
    let _counted = Counted(&node.connections);
    let remote = connection.remote_address();
    tracing::debug!(%remote, "peer connected");
    let mut hello = BytesMut::new();
    let _ = frame::encode(&mut hello, Kind::Hello, &node.root, None, "", &[], usize::MAX);
    match connection.open_uni().await {
        Ok(mut stream) => {
            let _ = stream.write_all(&hello).await;
            let _ = stream.finish();
        }
        Err(error) => {
            tracing::warn!(%remote, %error, "peer gone before hello");
            return;
        }
    }
    while let Ok(stream) = connection.accept_uni().await {
        tokio::spawn(read(node.clone(), remote, stream));
    }
}

/// Decodes one stream's frames and acts on them.
async fn read(node: Arc<Shared>, remote: SocketAddr, mut stream: quinn::RecvStream) {
    let mut decoder = FrameDecoder::new(node.max_frame);
    let mut inbound = Inbound {
        shared: node.clone(),
        cache: HashMap::new(),
    };
    loop {
        match stream.read_chunk(64 * 1024, true).await {
            Ok(Some(chunk)) => decoder.push(&chunk.bytes),
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%remote, %error, "stream ended");
                return;
            }
        }
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Ok(frame) => inbound.handle(frame),
                Err(error @ FrameError::TooLarge { .. }) => {
                    tracing::warn!(%remote, %error, "oversized frame; closing the stream");
                    let _ = stream.stop(0u32.into());
                    return;
                }
                Err(error) => {
                    tracing::warn!(%remote, %error, "malformed frame skipped");
                    inbound.undecodable("", None, "", &[], &error.to_string());
                }
            }
        }
    }
}

/// The receiving side of one stream, with its recipients cached.
pub(crate) struct Inbound {
    shared: Arc<Shared>,
    /// `ActorRef<M>`s by path text, so a busy recipient is looked up once.
    cache: HashMap<String, Box<dyn Any + Send>>,
}

impl Inbound {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn handle(&mut self, frame: Frame) {
        let recipient = frame.recipient.as_str();
        let sender = frame.sender.as_ref().map(|s| s.as_str());
        match frame.kind {
            Kind::Hello => tracing::debug!(peer = recipient, "hello"),
            Kind::Message => {
                if let Some(id) = temp_id(recipient) {
                    let pending = lock(&self.shared.temps).pending.remove(&id);
                    if let Some(pending) = pending {
                        if let Err(error) = pending.complete(&self.shared, &frame.payload) {
                            let manifest = frame.manifest.as_str();
                            self.undecodable(recipient, sender, manifest, &frame.payload, &error.to_string());
                        }
                    }
                    return;
                }
                let manifest = frame.manifest.as_str();
                match self.shared.types.by_manifest(manifest).cloned() {
                    Some(entry) => (entry.deliver)(self, recipient, sender, &frame.payload),
                    None => self.undecodable(recipient, sender, manifest, &frame.payload, "unknown manifest"),
                }
            }
            Kind::Stop => {
                if let Ok(target) = self.shared.system.lookup_any(recipient) {
                    target.stop();
                }
            }
            Kind::Watch => {
                let Some(watcher) = sender.and_then(|s| self.shared.peer_by_path(s)) else {
                    return;
                };
                let recipient = recipient.to_owned();
                let local = self.shared.root.clone();
                match self.shared.system.lookup_any(&recipient) {
                    Ok(target) => {
                        tokio::spawn(async move {
                            target.terminated().await;
                            let _ = watcher.send(Kind::Terminated, &recipient, Some(&local), "", &[]);
                        });
                    }
                    Err(_) => {
                        let _ = watcher.send(Kind::Terminated, &recipient, Some(&local), "", &[]);
                    }
                }
            }
            Kind::Terminated => {
                if let Some(peer) = sender.and_then(|s| self.shared.peer_by_path(s)) {
                    peer.terminated(recipient);
                }
            }
        }
    }

    /// The local actor at `recipient`, from the cache while it lives.
    pub(crate) fn local_ref<M: Send + 'static>(&mut self, recipient: &str) -> Result<ActorRef<M>, DeadLetterReason> {
        if let Some(target) = self
            .cache
            .get(recipient)
            .and_then(|any| any.downcast_ref::<ActorRef<M>>())
        {
            if !target.is_terminated() {
                return Ok(target.clone());
            }
        }
        self.cache.remove(recipient);
        let target = self
            .shared
            .system
            .lookup::<M>(recipient)
            .map_err(|e| lookup_reason(&e))?;
        if self.cache.len() >= 4096 {
            self.cache.clear();
        }
        self.cache.insert(recipient.to_owned(), Box::new(target.clone()));
        Ok(target)
    }

    /// A frame that arrived but could not be understood: a dead letter.
    pub(crate) fn undecodable(
        &self,
        recipient: &str,
        sender: Option<&str>,
        manifest: &str,
        payload: &[u8],
        error: &str,
    ) {
        tracing::debug!(recipient, manifest, error, "undecodable message");
        let undelivered = UndeliveredFrame {
            recipient: recipient.to_owned(),
            manifest: manifest.to_owned(),
            payload: Bytes::copy_from_slice(payload),
            error: error.to_owned(),
        };
        self.shared
            .dead_letter_to(recipient, sender, undelivered, DeadLetterReason::Undecodable);
    }
}

/// The id of a temporary reply address, `.../temp/<id>`.
fn temp_id(recipient: &str) -> Option<u64> {
    if !recipient.contains("/temp/") {
        return None;
    }
    let path: ActorPath = recipient.parse().ok()?;
    match path.elements().as_slice() {
        ["temp", id] => id.parse().ok(),
        _ => None,
    }
}
