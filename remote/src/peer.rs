//! The way to one other node: its connection, the queues feeding it, and
//! what this node has asked of it (watches, look-ups, spawns).
//!
//! A peer has one QUIC connection (dialed by either side, see
//! [`crate::link`]) and three long-lived streams in each direction, one per
//! traffic class: control (system messages, acknowledged and resent;
//! heartbeats), user messages, and large messages. A task per class
//! writes its queue in batches (see [`crate::writer`] for user messages,
//! and the short cut a lone one takes); a driver task dials when there is
//! something to send, sends heartbeats, and declares the peer gone when
//! its heartbeats stop or its connection cannot be re-established.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use compaktor_actor::{ActorPath, DeadLetterReason, StopReason, Terminated};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::frame::{self, FrameBuf, FrameError, Kind};
use crate::handshake::{self, DialError};
use crate::link::{keep_new, Current, Dialer};
use crate::node::{lock, Shared};
use crate::outbound::FrameQueue;
use crate::phi::PhiDetector;
use crate::reliable::{self, Inbox, Outbox};
use crate::writer::{write_queue, WriterSlot};

/// Why a connection was closed, as its QUIC application close code.
pub(crate) mod close {
    /// The node is shutting down.
    pub(crate) const SHUTDOWN: u32 = 0;
    /// Another connection between the same pair of nodes is kept.
    pub(crate) const DUPLICATE: u32 = 1;
    /// The peer broke the protocol.
    pub(crate) const PROTOCOL: u32 = 2;
    /// The peer's heartbeats stopped.
    pub(crate) const UNREACHABLE: u32 = 3;
}

/// A working connection to the peer.
pub(crate) struct Established {
    pub(crate) connection: quinn::Connection,
    pub(crate) dialer: Dialer,
    /// The peer's incarnation.
    pub(crate) incarnation: Uuid,
    /// Our control stream, opened during the handshake, and what must be
    /// written on it first (the answering side's hello).
    control: Mutex<Option<(quinn::SendStream, Option<Bytes>)>>,
    /// The outbox's number for this connection, set when it is attached.
    outbox_connection: AtomicU64,
}

impl Established {
    pub(crate) fn new(
        connection: quinn::Connection,
        dialer: Dialer,
        incarnation: Uuid,
        control: quinn::SendStream,
        preamble: Option<Bytes>,
    ) -> Arc<Self> {
        Arc::new(Established {
            connection,
            dialer,
            incarnation,
            control: Mutex::new(Some((control, preamble))),
            outbox_connection: AtomicU64::new(0),
        })
    }

    fn id(&self) -> usize {
        self.connection.stable_id()
    }
}

/// The connection's state, watched by the writer tasks.
#[derive(Clone)]
pub(crate) struct LinkState {
    pub(crate) link: Link,
    /// Dial attempts that failed so far: a writer holding messages that
    /// sees this grow turns them into dead letters.
    pub(crate) failures: u64,
}

#[derive(Clone)]
pub(crate) enum Link {
    Down,
    Dialing,
    Up(Arc<Established>),
}

impl LinkState {
    pub(crate) fn up(&self) -> Option<&Arc<Established>> {
        match &self.link {
            Link::Up(established) => Some(established),
            _ => None,
        }
    }
}

/// Control-plane state: guarded together because a new incarnation or a
/// lost peer changes all of it at once.
struct Control {
    outbox: Outbox,
    inbox: Inbox,
    /// The incarnation the outbox and inbox numbering belongs to.
    incarnation: Option<Uuid>,
    detector: PhiDetector,
    /// Our watchers of the peer's actors, by the actor's path.
    watches: HashMap<String, Vec<oneshot::Sender<Terminated>>>,
    /// Tasks that tell the peer when our actors it watches terminate.
    watched: HashMap<String, AbortHandle>,
    /// Look-ups and spawns waiting for the peer's answer, by request id.
    requests: HashMap<u64, oneshot::Sender<(u8, String)>>,
    /// Whether a connection to the peer ever worked.
    reached: bool,
    /// Whether `incarnation` has been declared gone (see [`Peer::gone`]).
    ended: bool,
}

/// One other node, by the address it listens on.
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    shared: Weak<Shared>,
    user: Arc<FrameQueue>,
    /// The user queue's stream while its writer task is idle.
    user_writer: Arc<WriterSlot>,
    large: Arc<FrameQueue>,
    max_frame: usize,
    large_message: usize,
    control: Mutex<Control>,
    /// Wakes the control writer.
    control_ready: Arc<Notify>,
    link: watch::Sender<LinkState>,
    /// Asks the driver for a connection.
    wanted: mpsc::Sender<()>,
    /// Signalled when system messages are acknowledged or a watched actor's
    /// end has been queued: what a graceful shutdown waits for.
    progress: Notify,
}

thread_local! {
    /// Where this thread builds the frames of user messages.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The largest scratch buffer a thread keeps between messages.
const SCRATCH_KEPT: usize = 64 * 1024;

/// Why a user message was not queued.
pub(crate) enum SendFailure<E> {
    /// Its payload could not be encoded.
    Payload(E),
    /// It cannot go: too large, or the queue is full.
    Refused(DeadLetterReason),
}

/// What a node's settings say about each peer.
pub(crate) struct PeerSettings {
    pub(crate) send_queue: usize,
    pub(crate) system_queue: usize,
    pub(crate) max_frame: usize,
    pub(crate) large_message: usize,
    pub(crate) phi: crate::phi::PhiSettings,
}

impl Peer {
    /// A peer and its tasks, spawned on `runtime`; nothing is dialed yet.
    pub(crate) fn start(
        shared: &Arc<Shared>,
        addr: SocketAddr,
        settings: &PeerSettings,
        runtime: &tokio::runtime::Handle,
    ) -> Arc<Peer> {
        let user = Arc::new(FrameQueue::new(settings.send_queue));
        // Large messages are few and big: a short queue bounds the memory.
        let large = Arc::new(FrameQueue::new(16));
        let user_writer = Arc::new(WriterSlot::default());
        let (wanted, wanted_rx) = mpsc::channel(1);
        let (link, _) = watch::channel(LinkState {
            link: Link::Down,
            failures: 0,
        });
        let peer = Arc::new(Peer {
            addr,
            shared: Arc::downgrade(shared),
            user: user.clone(),
            user_writer: user_writer.clone(),
            large: large.clone(),
            max_frame: settings.max_frame,
            large_message: settings.large_message,
            control: Mutex::new(Control {
                outbox: Outbox::new(settings.system_queue),
                inbox: Inbox::default(),
                incarnation: None,
                detector: PhiDetector::new(settings.phi),
                watches: HashMap::new(),
                watched: HashMap::new(),
                requests: HashMap::new(),
                reached: false,
                ended: false,
            }),
            control_ready: Arc::new(Notify::new()),
            link,
            wanted,
            progress: Notify::new(),
        });
        let weak = Arc::downgrade(&peer);
        runtime.spawn(drive(weak.clone(), wanted_rx, peer.link.subscribe()));
        runtime.spawn(write_control(weak.clone(), peer.link.subscribe()));
        runtime.spawn(write_queue(weak.clone(), user, user_writer, peer.link.subscribe()));
        runtime.spawn(write_queue(weak, large, Arc::default(), peer.link.subscribe()));
        peer
    }

    /// Builds a user message's frame, its payload written in place by
    /// `payload`, and queues it without waiting.
    pub(crate) fn send_message<E>(
        &self,
        recipient: &str,
        sender: Option<&str>,
        manifest: &str,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), SendFailure<E>> {
        // Built in this thread's scratch buffer, then copied into the queue:
        // no allocation per message.
        let scratch = SCRATCH.with(std::cell::Cell::take);
        let mut frame = FrameBuf::start_in(scratch, Kind::Message, recipient, sender, manifest)
            .map_err(|_| SendFailure::Refused(DeadLetterReason::Undecodable))?;
        let queued = match payload(frame.payload()) {
            Err(error) => Err(SendFailure::Payload(error)),
            Ok(()) => match frame.seal(self.max_frame) {
                Ok(bytes) if bytes.len() > self.large_message => self.large.push(bytes),
                Ok(bytes) if self.user_writer.try_write(&self.user, &self.link, bytes) => Ok(()),
                Ok(bytes) => self.user.push(bytes),
                Err(FrameError::TooLarge { .. }) => Err(DeadLetterReason::TooLarge),
                Err(_) => Err(DeadLetterReason::Undecodable),
            }
            .map_err(SendFailure::Refused),
        };
        let scratch = frame.into_vec();
        // A large message's buffer is not kept for the small ones after it.
        if scratch.capacity() <= SCRATCH_KEPT {
            SCRATCH.with(|cell| cell.set(scratch));
        }
        queued
    }

    /// Queues a system message: numbered, kept until acknowledged. Returns
    /// false if the system queue is full (the peer has acknowledged nothing
    /// for `system_queue` messages) and the message was dropped.
    pub(crate) fn send_system(
        &self,
        kind: Kind,
        recipient: &str,
        sender: Option<&str>,
        manifest: &str,
        body: &[u8],
    ) -> bool {
        let max = self.max_frame;
        let pushed = lock(&self.control).outbox.push(|seq| {
            let mut buf = BytesMut::new();
            let payload = reliable::seal(seq, body);
            if let Err(error) = frame::encode(&mut buf, kind, recipient, sender, manifest, &payload, max) {
                tracing::warn!(peer = %self.addr, ?kind, %error, "system message not encodable");
            }
            buf.freeze()
        });
        if pushed.is_err() {
            tracing::warn!(peer = %self.addr, ?kind, recipient, "system message queue full; message dropped");
            return false;
        }
        self.control_ready.notify_one();
        self.want();
        true
    }

    fn send_loose(&self, kind: Kind, payload: &[u8]) {
        let mut buf = BytesMut::new();
        let _ = frame::encode(&mut buf, kind, "", None, "", payload, usize::MAX);
        lock(&self.control).outbox.push_loose(kind as u8, buf.freeze());
        self.control_ready.notify_one();
    }

    /// Asks for a connection if there is none.
    pub(crate) fn want(&self) {
        if self.link.borrow().up().is_none() {
            let _ = self.wanted.try_send(());
        }
    }

    /// Resolves when the peer reports the actor at `recipient` terminated,
    /// or when the peer is declared gone.
    pub(crate) fn watch(&self, recipient: &str) -> oneshot::Receiver<Terminated> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut control = lock(&self.control);
            let watchers = control.watches.entry(recipient.to_owned()).or_default();
            watchers.push(tx);
            watchers.len() == 1
        };
        if first && !self.send_system(Kind::Watch, recipient, None, "", &[]) {
            // The peer has stopped acknowledging: as good as unreachable.
            self.terminated(recipient, StopReason::Unreachable);
        }
        rx
    }

    /// A watcher of `recipient` gave up (unwatched or stopped): if no
    /// watcher of it is left, the peer stops tracking it for us.
    pub(crate) fn unwatch_if_unused(&self, recipient: &str) {
        let unused = {
            let mut control = lock(&self.control);
            match control.watches.get_mut(recipient) {
                Some(watchers) => {
                    watchers.retain(|w| !w.is_closed());
                    let unused = watchers.is_empty();
                    if unused {
                        control.watches.remove(recipient);
                    }
                    unused
                }
                None => false,
            }
        };
        if unused {
            let _ = self.send_system(Kind::Unwatch, recipient, None, "", &[]);
        }
    }

    /// The peer no longer watches our actor at `path`.
    pub(crate) fn unwatched_by_peer(&self, path: &str) {
        if let Some(task) = lock(&self.control).watched.remove(path) {
            task.abort();
        }
    }

    /// Sends a look-up or spawn request and returns where its answer arrives.
    pub(crate) fn request(
        &self,
        kind: Kind,
        recipient: &str,
        sender: Option<&str>,
        manifest: &str,
        body: &[u8],
    ) -> oneshot::Receiver<(u8, String)> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut control = lock(&self.control);
            let id = crate::node::next_request_id();
            control.requests.insert(id, tx);
            id
        };
        let mut payload = id.to_le_bytes().to_vec();
        payload.extend_from_slice(body);
        if !self.send_system(kind, recipient, sender, manifest, &payload) {
            // Dropping the sender answers the caller with `NoAnswer` now.
            lock(&self.control).requests.remove(&id);
        }
        rx
    }

    /// The answer to request `id` arrived.
    pub(crate) fn answered(&self, id: u64, status: u8, text: String) {
        if let Some(tx) = lock(&self.control).requests.remove(&id) {
            let _ = tx.send((status, text));
        }
    }

    /// The peer reports its actor at `recipient` terminated.
    pub(crate) fn terminated(&self, recipient: &str, reason: StopReason) {
        let Ok(path) = recipient.parse::<ActorPath>() else {
            return;
        };
        let watchers = lock(&self.control).watches.remove(recipient).unwrap_or_default();
        for watcher in watchers {
            let _ = watcher.send(Terminated::new(path.clone(), reason.clone()));
        }
    }

    /// Remembers the task telling the peer when our actor at `path` ends.
    pub(crate) fn watched_by_peer(&self, path: String, task: AbortHandle) {
        if let Some(old) = lock(&self.control).watched.insert(path, task) {
            old.abort();
        }
    }

    /// Our actor at `path` terminated and the peer has been told.
    pub(crate) fn told_terminated(&self, path: &str) {
        lock(&self.control).watched.remove(path);
        self.progress.notify_waiters();
    }

    /// Waits until the peer has acknowledged every system message and has
    /// been told of every watched actor's end (or until `deadline`): on a
    /// graceful shutdown, watchers elsewhere hear `Stopped`, not a lost
    /// connection.
    pub(crate) async fn flush(&self, deadline: tokio::time::Instant) {
        loop {
            let progress = self.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                // The link before the control state: `attach` takes them in
                // this order too (the watch channel's lock, then `control`).
                let connected = self.link.borrow().up().is_some();
                let control = lock(&self.control);
                if control.watched.is_empty() && (control.outbox.pending() == 0 || !connected) {
                    return;
                }
            }
            if tokio::time::timeout_at(deadline, progress).await.is_err() {
                return;
            }
        }
    }

    /// A heartbeat (or anything on the control stream) arrived.
    pub(crate) fn heartbeat(&self) {
        lock(&self.control).detector.heartbeat(Instant::now());
    }

    /// A system message numbered `seq` arrived: whether to act on it.
    pub(crate) fn accept_system(&self, seq: u64) -> bool {
        lock(&self.control).inbox.accept(seq)
    }

    /// Acknowledges every system message acted on so far.
    pub(crate) fn acknowledge(&self) {
        let seq = lock(&self.control).inbox.acknowledged();
        self.send_loose(Kind::Ack, &seq.to_le_bytes());
    }

    /// The peer acknowledged system messages up to `seq`.
    pub(crate) fn acked(&self, seq: u64) {
        lock(&self.control).outbox.ack(seq);
        self.progress.notify_waiters();
    }

    /// Whether to keep a new connection dialed by `dialer` to a peer whose
    /// root is `their_root`; `ours` is our root.
    pub(crate) fn would_keep(&self, dialer: Dialer, ours: &str, their_root: &str) -> bool {
        let current = match &self.link.borrow().link {
            Link::Down => Current::Idle,
            Link::Dialing => Current::Dialing,
            Link::Up(established) => Current::Up(established.dialer),
        };
        keep_new(current, dialer, ours, their_root)
    }

    /// Makes `established` the connection to this peer, if the rule in
    /// [`crate::link`] keeps it; returns whether it did. A connection it
    /// replaces is closed.
    pub(crate) fn attach(&self, established: Arc<Established>, ours: &str, their_root: &str) -> bool {
        let mut replaced = None;
        let kept = self.link.send_if_modified(|state| {
            let current = match &state.link {
                Link::Down => Current::Idle,
                Link::Dialing => Current::Dialing,
                Link::Up(e) => Current::Up(e.dialer),
            };
            if !keep_new(current, established.dialer, ours, their_root) {
                return false;
            }
            // Numbering and watches belong to an incarnation: settle them
            // before any writer sees the new connection.
            self.settle_incarnation(&established);
            if let Link::Up(old) = std::mem::replace(&mut state.link, Link::Up(established.clone())) {
                replaced = Some(old);
            }
            true
        });
        if let Some(old) = replaced {
            old.connection.close(close::DUPLICATE.into(), b"replaced");
        }
        if kept {
            self.control_ready.notify_one();
        }
        kept
    }

    fn settle_incarnation(&self, established: &Established) {
        let incarnation = established.incarnation;
        let gone = {
            let mut control = lock(&self.control);
            control.reached = true;
            control.detector = PhiDetector::new(control.detector.settings());
            control.detector.heartbeat(Instant::now());
            // An incarnation already declared gone had its watches, requests
            // and system messages dropped then: what is pending now was sent
            // since, to whichever incarnation answers (a fresh look-up after
            // a killed node's watches ended), so it goes out to the new one.
            let ended = std::mem::take(&mut control.ended);
            match control.incarnation.replace(incarnation) {
                // The same peer, or the first connection: what is pending goes out.
                Some(known) if known != incarnation => {
                    control.inbox.reset();
                    if !ended {
                        control.outbox.restart();
                    }
                    let number = control.outbox.reconnected();
                    established.outbox_connection.store(number, Ordering::Release);
                    !ended
                }
                _ => {
                    let number = control.outbox.reconnected();
                    established.outbox_connection.store(number, Ordering::Release);
                    false
                }
            }
        };
        if gone {
            tracing::info!(peer = %self.addr, %incarnation, "peer restarted as a new incarnation");
            self.gone(StopReason::ConnectionLost);
            // That ended the incarnation we knew, not the one just attached.
            lock(&self.control).ended = false;
        }
    }

    /// The peer (this incarnation of it) is gone: every watch of its
    /// actors ends with `reason`, pending system messages and requests are
    /// dropped. Numbering continues, in case the same incarnation answers
    /// again later.
    pub(crate) fn gone(&self, reason: StopReason) {
        let (watches, watched, requests, dropped) = {
            let mut control = lock(&self.control);
            control.ended = true;
            let dropped = control.outbox.drop_pending();
            (
                std::mem::take(&mut control.watches),
                std::mem::take(&mut control.watched),
                std::mem::take(&mut control.requests),
                dropped,
            )
        };
        if !watches.is_empty() || dropped > 0 || !requests.is_empty() {
            tracing::warn!(peer = %self.addr, %reason, watches = watches.len(), dropped, "peer gone");
        }
        for (recipient, watchers) in watches {
            let Ok(path) = recipient.parse::<ActorPath>() else {
                continue;
            };
            for watcher in watchers {
                let _ = watcher.send(Terminated::new(path.clone(), reason.clone()));
            }
        }
        for task in watched.into_values() {
            task.abort();
        }
        drop(requests);
    }

    /// Whether anything waits on the peer: a reason to redial at once
    /// after losing the connection, to learn whether it is gone.
    fn has_pending(&self) -> bool {
        let control = lock(&self.control);
        control.outbox.pending() > 0 || !control.watches.is_empty() || !control.requests.is_empty()
    }

    /// What the peer looks like now, for [`crate::PeerStatus`].
    pub(crate) fn status(&self) -> crate::node::PeerStatus {
        let state = self.link.borrow().clone();
        let control = lock(&self.control);
        crate::node::PeerStatus {
            address: self.addr,
            incarnation: control.incarnation,
            connected: state.up().is_some(),
            dialed_by_us: state.up().map(|e| e.dialer == Dialer::Us),
            connection_id: state.up().map(|e| e.id()),
            phi: control.detector.phi(Instant::now()),
            pending_system_messages: control.outbox.pending(),
            watches: control.watches.len(),
            watched_by_peer: control.watched.len(),
        }
    }

    /// After the peer refused our dial in favour of its own: waits for
    /// that connection to arrive.
    async fn await_inbound(&self, timeout: Duration) -> Result<(), DialError> {
        let mut link = self.link.subscribe();
        let arrived = tokio::time::timeout(timeout, async {
            loop {
                if link.borrow_and_update().up().is_some() {
                    return true;
                }
                if link.changed().await.is_err() {
                    return false;
                }
            }
        });
        match arrived.await {
            Ok(true) => Ok(()),
            _ => Err(DialError::Failed(
                "the peer refused our connection and did not dial".to_owned(),
            )),
        }
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }
}

/// Dials when asked, watches the connection while it is up (heartbeats
/// out, phi in), and redials or declares the peer gone when it is lost.
async fn drive(peer: Weak<Peer>, mut wanted: mpsc::Receiver<()>, mut link: watch::Receiver<LinkState>) {
    let mut backoff = Duration::from_millis(100);
    let mut redial = false;
    loop {
        let state = link.borrow_and_update().clone();
        match state.link {
            Link::Up(established) => {
                redial = false;
                let Some(p) = peer.upgrade() else { return };
                let outcome = monitor(&p, &established, &mut link).await;
                if matches!(outcome, Outcome::Closed) {
                    return;
                }
                if matches!(outcome, Outcome::Unreachable) {
                    established.connection.close(close::UNREACHABLE.into(), b"unreachable");
                }
                // Only the connection in use going down is news.
                if !p.link.send_if_modified(|s| down_if(s, &established)) {
                    continue;
                }
                match outcome {
                    Outcome::Lost { gone: true } => {
                        tracing::info!(peer = %p.addr, "peer left or declared us unreachable");
                        p.gone(StopReason::ConnectionLost);
                    }
                    Outcome::Lost { gone: false } => {
                        tracing::info!(peer = %p.addr, "connection lost");
                        // Redial at once if anything waits on the peer: to
                        // resend, or to learn that it is gone.
                        redial = p.has_pending();
                    }
                    _ => {
                        tracing::warn!(peer = %p.addr, "no heartbeat from the peer: unreachable");
                        p.gone(StopReason::Unreachable);
                    }
                }
            }
            Link::Down | Link::Dialing => {
                if !redial {
                    tokio::select! {
                        asked = wanted.recv() => if asked.is_none() { return },
                        changed = link.changed() => {
                            if changed.is_err() { return }
                            continue;
                        }
                    }
                }
                redial = false;
                let Some(p) = peer.upgrade() else { return };
                let Some(shared) = p.shared() else { return };
                if shared.is_closing() {
                    return;
                }
                let claimed = p.link.send_if_modified(|s| {
                    if matches!(s.link, Link::Down) {
                        s.link = Link::Dialing;
                        true
                    } else {
                        false
                    }
                });
                if !claimed {
                    continue;
                }
                let dialed = match handshake::dial(&shared, &p).await {
                    Err(DialError::Duplicate) => p.await_inbound(shared.connect_timeout()).await,
                    dialed => dialed,
                };
                match dialed {
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(error) => {
                        let failed = p.link.send_if_modified(|s| {
                            if matches!(s.link, Link::Dialing) {
                                s.link = Link::Down;
                                s.failures += 1;
                                true
                            } else {
                                false
                            }
                        });
                        if failed {
                            let reached = lock(&p.control).reached;
                            tracing::warn!(peer = %p.addr, %error, "cannot connect; queued messages become dead letters");
                            p.gone(if reached {
                                StopReason::ConnectionLost
                            } else {
                                StopReason::Unreachable
                            });
                            drop((p, shared));
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
            }
        }
    }
}

enum Outcome {
    /// Another connection took this one's place.
    Replaced,
    /// The connection closed; `gone` if the peer said it was leaving, or
    /// that it declared us unreachable.
    Lost { gone: bool },
    /// The peer's heartbeats stopped.
    Unreachable,
    /// The peer is being dropped.
    Closed,
}

async fn monitor(peer: &Arc<Peer>, established: &Arc<Established>, link: &mut watch::Receiver<LinkState>) -> Outcome {
    let interval = lock(&peer.control).detector.settings().first_interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            error = established.connection.closed() => {
                // A peer that shut down, or that declared us unreachable
                // (and so dropped our watches and pending messages), is gone
                // for us too: otherwise watches across the pair are orphaned.
                // We close the connection in use ourselves only when its
                // control stream stalls (see `write_control`).
                let gone = match &error {
                    quinn::ConnectionError::ApplicationClosed(c) => {
                        c.error_code == close::SHUTDOWN.into() || c.error_code == close::UNREACHABLE.into()
                    }
                    quinn::ConnectionError::LocallyClosed => true,
                    _ => false,
                };
                return Outcome::Lost { gone };
            }
            _ = tick.tick() => {
                peer.send_loose(Kind::Heartbeat, &[]);
                if lock(&peer.control).detector.is_unreachable(Instant::now()) {
                    return Outcome::Unreachable;
                }
            }
            changed = link.changed() => {
                if changed.is_err() {
                    return Outcome::Closed;
                }
                let same = link.borrow().up().is_some_and(|e| Arc::ptr_eq(e, established));
                if !same {
                    return Outcome::Replaced;
                }
            }
        }
    }
}

/// Marks the link down if it is still `established`.
fn down_if(state: &mut LinkState, established: &Arc<Established>) -> bool {
    let current = state.up().is_some_and(|e| Arc::ptr_eq(e, established));
    if current {
        state.link = Link::Down;
    }
    current
}

/// Writes system messages, heartbeats and acknowledgements on the control
/// stream of each connection in turn; unacknowledged messages are resent
/// on the next.
async fn write_control(peer: Weak<Peer>, mut link: watch::Receiver<LinkState>) {
    let mut batch = Vec::new();
    loop {
        let Some(established) = wait_up(&mut link).await else {
            return;
        };
        let Some(p) = peer.upgrade() else { return };
        let notify = p.control_ready.clone();
        drop(p);
        let Some((mut stream, preamble)) = lock(&established.control).take() else {
            // Another writer pass already used it: wait for a new connection.
            if link.changed().await.is_err() {
                return;
            }
            continue;
        };
        batch.extend(preamble);
        let number = established.outbox_connection.load(Ordering::Acquire);
        loop {
            {
                let Some(p) = peer.upgrade() else { return };
                lock(&p.control).outbox.take(number, &mut batch);
            }
            if batch.is_empty() {
                tokio::select! {
                    _ = notify.notified() => continue,
                    changed = link.changed() => {
                        if changed.is_err() { return }
                        if link.borrow().up().is_some_and(|e| Arc::ptr_eq(e, &established)) { continue }
                        break;
                    }
                }
            }
            let written = tokio::time::timeout(CONTROL_STALL, stream.write_chunk(coalesce(&batch))).await;
            if !matches!(written, Ok(Ok(()))) {
                if written.is_err() {
                    // A peer that heartbeats but takes nothing from us must
                    // not hold system messages forever.
                    tracing::warn!("control stream stalled; closing the connection");
                    established.connection.close(close::UNREACHABLE.into(), b"stalled");
                }
                batch.clear();
                // The driver notices the loss; the outbox resends.
                if link.changed().await.is_err() {
                    return;
                }
                break;
            }
            batch.clear();
        }
    }
}

/// How long a control-stream write may wait for the peer to take it.
const CONTROL_STALL: Duration = Duration::from_secs(10);

/// A batch of frames as one buffer. quinn packs a stream's data by
/// scanning its queued buffers, at a cost that grows with their number.
fn coalesce(batch: &[Bytes]) -> Bytes {
    if let [one] = batch {
        return one.clone();
    }
    let mut out = BytesMut::with_capacity(batch.iter().map(Bytes::len).sum());
    for frame in batch {
        out.extend_from_slice(frame);
    }
    out.freeze()
}

/// The connection, once one is up; `None` when the peer is dropped.
async fn wait_up(link: &mut watch::Receiver<LinkState>) -> Option<Arc<Established>> {
    loop {
        if let Some(established) = link.borrow_and_update().up() {
            return Some(established.clone());
        }
        link.changed().await.ok()?;
    }
}

impl Peer {
    /// Chunks of frames that could not go out: dead letters.
    pub(crate) fn lose(&self, chunks: impl IntoIterator<Item = Bytes>, error: &str) {
        if let Some(shared) = self.shared() {
            for frames in chunks {
                shared.lost(frames, error);
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Wakes the writers so they end; what they had not written is lost.
        self.lose(self.user_writer.take_unfinished(), "the node shut down");
        for queue in [&self.user, &self.large] {
            self.lose(queue.close(), "the node shut down");
        }
    }
}
