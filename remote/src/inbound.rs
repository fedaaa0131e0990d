//! The receiving side: accepting connections, reading their streams, and
//! acting on each frame — delivering messages, answering system messages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::{Buf, Bytes};
use compaktor_actor::{ActorPath, ActorRef, DeadLetterReason, FailurePhase, StopReason};

use crate::frame::{Frame, FrameDecoder, FrameError, Kind};
use crate::handshake;
use crate::node::{lock, Shared, UndeliveredFrame};
use crate::peer::Peer;
use crate::registry::{lookup_reason, AnyBox, Deliver};
use crate::reliable;

/// Answers to look-ups and spawns: the status byte.
pub(crate) mod status {
    pub(crate) const OK: u8 = 0;
    pub(crate) const NOT_FOUND: u8 = 1;
    pub(crate) const WRONG_TYPE: u8 = 2;
    pub(crate) const UNREGISTERED: u8 = 3;
    pub(crate) const NO_FACTORY: u8 = 4;
    pub(crate) const FAILED: u8 = 5;
}

/// Accepts peers until the endpoint closes.
pub(crate) async fn accept(shared: Weak<Shared>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let Some(node) = shared.upgrade() else { return };
        let remote = incoming.remote_address();
        if node.connections.load(Ordering::Relaxed) >= node.max_connections() {
            tracing::warn!(%remote, "connection refused: too many connections");
            incoming.refuse();
            continue;
        }
        tokio::spawn(async move {
            match incoming.await {
                Ok(connection) => {
                    let _counted = Counted::new(&node.connections);
                    handshake::answer(node.clone(), connection).await;
                }
                Err(error) => tracing::warn!(%remote, %error, "connection attempt rejected"),
            }
        });
    }
}

/// Counts a connection while it is served.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads every stream the peer opens on `connection`, starting with its
/// control stream, until the connection closes.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    connection: quinn::Connection,
    control: quinn::RecvStream,
    decoder: FrameDecoder,
) {
    let remote = connection.remote_address();
    tokio::spawn(read(shared.clone(), peer.clone(), remote, control, decoder));
    while let Ok(stream) = connection.accept_uni().await {
        let decoder = FrameDecoder::new(shared.max_frame());
        tokio::spawn(read(shared.clone(), peer.clone(), remote, stream, decoder));
    }
}

/// Decodes one stream's frames and acts on them.
async fn read(
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    remote: SocketAddr,
    mut stream: quinn::RecvStream,
    mut decoder: FrameDecoder,
) {
    let mut inbound = Inbound {
        shared,
        peer,
        cache: HashMap::new(),
        delivers: Vec::new(),
        targets: Vec::new(),
    };
    loop {
        let mut acknowledge = false;
        while let Some(frame) = decoder.next_frame() {
            match frame {
                Ok(frame) => acknowledge |= inbound.handle(&frame, &decoder),
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
        if acknowledge {
            inbound.peer.acknowledge();
        }
        match stream.read_chunk(64 * 1024, true).await {
            Ok(Some(chunk)) => decoder.push_chunk(chunk.bytes),
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%remote, %error, "stream ended");
                return;
            }
        }
    }
}

/// A message's recipient: its path, and its number in the stream's
/// compression tables if it has one.
#[derive(Clone, Copy)]
pub(crate) struct Recipient<'a> {
    pub(crate) path: &'a str,
    pub(crate) number: Option<u32>,
}

/// The texts of one frame, read from its stream's tables.
#[derive(Clone, Copy)]
struct Texts<'a> {
    recipient: Recipient<'a>,
    sender: Option<&'a str>,
    manifest: &'a str,
}

/// The receiving side of one stream, with its recipients cached.
pub(crate) struct Inbound {
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    /// `ActorRef<M>`s by path text, so a busy recipient is looked up once.
    cache: HashMap<String, Option<AnyBox>>,
    /// By the number of a manifest in the stream's compression tables:
    /// how to deliver that type.
    delivers: Vec<Option<Deliver>>,
    /// By the number of a recipient in the stream's compression tables:
    /// its `ActorRef<M>`.
    targets: Vec<Option<AnyBox>>,
}

impl Inbound {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Acts on one frame that `decoder` returned; returns whether it was a
    /// system message to acknowledge.
    // By reference: a frame is large, and moving it here cost a copy per message.
    fn handle(&mut self, frame: &Frame, decoder: &FrameDecoder) -> bool {
        let texts = Texts {
            recipient: Recipient {
                path: decoder.text(&frame.recipient),
                number: frame.recipient.number(),
            },
            sender: frame.sender.as_ref().map(|s| decoder.text(s)),
            manifest: decoder.text(&frame.manifest),
        };
        match frame.kind {
            Kind::Hello => false,
            Kind::Message => {
                self.message(frame, texts);
                false
            }
            Kind::Heartbeat => {
                self.peer.heartbeat();
                false
            }
            Kind::Ack => {
                if let Some(seq) = frame.payload.get(..8).and_then(|b| b.try_into().ok()) {
                    self.peer.acked(u64::from_le_bytes(seq));
                }
                false
            }
            _ => {
                let Some((seq, body)) = reliable::open(frame.payload.clone()) else {
                    tracing::warn!(peer = %self.peer.addr, kind = ?frame.kind, "system message without a number");
                    return false;
                };
                if self.peer.accept_system(seq) {
                    self.system(frame.kind, texts, body);
                }
                true
            }
        }
    }

    fn message(&mut self, frame: &Frame, texts: Texts<'_>) {
        let Texts {
            recipient,
            sender,
            manifest,
        } = texts;
        // Reply addresses are never numbered (see `compress`).
        if recipient.number.is_none() {
            if let Some(id) = temp_id(recipient.path) {
                self.reply(id, texts, &frame.payload);
                return;
            }
        }
        match self.deliver_fn(manifest, frame.manifest.number()) {
            Some(deliver) => deliver(self, recipient, sender, &frame.payload),
            None => self.undecodable(recipient.path, sender, manifest, &frame.payload, "unknown manifest"),
        }
    }

    /// A reply for the asker waiting at temporary address `id`.
    fn reply(&self, id: u64, texts: Texts<'_>, payload: &[u8]) {
        let recipient = texts.recipient.path;
        let pending = lock(&self.shared.temps).pending.remove(&id);
        match pending {
            Some(pending) => {
                if let Err(error) = pending.complete(&self.shared, payload) {
                    self.undecodable(recipient, texts.sender, texts.manifest, payload, &error.to_string());
                }
            }
            None => tracing::debug!(recipient, "reply for an asker that gave up"),
        }
    }

    /// How to deliver the type registered under `manifest`, from the
    /// stream's numbers when it has one.
    fn deliver_fn(&mut self, manifest: &str, number: Option<u32>) -> Option<Deliver> {
        let lookup = || Some(self.shared.types().by_manifest(manifest)?.deliver);
        let Some(number) = number else {
            return lookup();
        };
        if let Some(deliver) = numbered(&mut self.delivers, number).as_ref() {
            return Some(*deliver);
        }
        let deliver = lookup()?;
        *numbered(&mut self.delivers, number) = Some(deliver);
        Some(deliver)
    }

    fn system(&mut self, kind: Kind, texts: Texts<'_>, mut body: Bytes) {
        let recipient = texts.recipient.path;
        let manifest = texts.manifest;
        match kind {
            Kind::Stop => {
                if let Ok(target) = self.shared.system().lookup_any(recipient) {
                    target.stop();
                }
            }
            Kind::Watch => self.watch(recipient),
            Kind::Unwatch => self.peer.unwatched_by_peer(recipient),
            Kind::Terminated => {
                let reason = decode_reason(recipient, &body);
                self.peer.terminated(recipient, reason);
            }
            Kind::Identify | Kind::Spawn if body.len() >= 8 => {
                let id = body.get_u64_le();
                let (status, text) = if kind == Kind::Identify {
                    self.shared.identify(recipient, manifest)
                } else {
                    self.shared.spawn_local(recipient, texts.sender, manifest, &body)
                };
                let answer = if kind == Kind::Identify {
                    Kind::Identity
                } else {
                    Kind::Spawned
                };
                let mut reply = id.to_le_bytes().to_vec();
                reply.push(status);
                reply.extend_from_slice(text.as_bytes());
                self.peer.send_system(answer, "", None, "", &reply);
            }
            Kind::Identity | Kind::Spawned if body.len() >= 9 => {
                let id = body.get_u64_le();
                let status = body.get_u8();
                self.peer
                    .answered(id, status, String::from_utf8_lossy(&body).into_owned());
            }
            kind => tracing::warn!(peer = %self.peer.addr, ?kind, "malformed system message"),
        }
    }

    /// The peer watches our actor at `recipient`: tell it when it ends.
    fn watch(&self, recipient: &str) {
        let peer = self.peer.clone();
        match self.shared.system().lookup_any(recipient) {
            Ok(target) => {
                let path = recipient.to_owned();
                let task = tokio::spawn(async move {
                    let terminated = target.terminated().await;
                    peer.send_system(Kind::Terminated, &path, None, "", &encode_reason(terminated.reason()));
                    peer.told_terminated(&path);
                });
                self.peer.watched_by_peer(recipient.to_owned(), task.abort_handle());
            }
            Err(_) => {
                let reason = encode_reason(&StopReason::Stopped);
                peer.send_system(Kind::Terminated, recipient, None, "", &reason);
            }
        }
    }

    /// The local actor at `recipient`, from the cache while it lives.
    pub(crate) fn local_ref<M: Send + 'static>(
        &mut self,
        recipient: Recipient<'_>,
    ) -> Result<&ActorRef<M>, DeadLetterReason> {
        let live = |any: &AnyBox| any.downcast_ref::<ActorRef<M>>().is_some_and(|t| !t.is_terminated());
        let slot = match recipient.number {
            Some(number) => numbered(&mut self.targets, number),
            None => {
                let path = recipient.path;
                if !self.cache.contains_key(path) {
                    if self.cache.len() >= 4096 {
                        self.cache.clear();
                    }
                    self.cache.insert(path.to_owned(), None);
                }
                self.cache.get_mut(path).ok_or(DeadLetterReason::Undecodable)?
            }
        };
        if !slot.as_ref().is_some_and(live) {
            let target = self
                .shared
                .system()
                .lookup::<M>(recipient.path)
                .map_err(|e| lookup_reason(&e))?;
            *slot = Some(Box::new(target));
        }
        slot.as_ref()
            .and_then(|any| any.downcast_ref())
            .ok_or(DeadLetterReason::Undecodable)
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

/// The slot for `number` in a table kept by compression number (numbers
/// are below [`ENTRIES`](crate::compress::ENTRIES)).
fn numbered<T>(slots: &mut Vec<Option<T>>, number: u32) -> &mut Option<T> {
    let at = number as usize;
    if slots.len() <= at {
        slots.resize_with(at + 1, || None);
    }
    &mut slots[at]
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

/// A stop reason on the wire: a tag, the failure phase, the description.
fn encode_reason(reason: &StopReason) -> Vec<u8> {
    match reason {
        StopReason::Failed(failure) => {
            let phase = match failure.phase() {
                FailurePhase::Start => 0,
                FailurePhase::Message => 1,
                FailurePhase::Signal => 2,
                FailurePhase::Restart => 3,
                _ => 4,
            };
            let mut out = vec![1, phase];
            out.extend_from_slice(failure.error().to_string().as_bytes());
            out
        }
        StopReason::Unreachable => vec![2],
        StopReason::ConnectionLost => vec![3],
        _ => vec![0],
    }
}

fn decode_reason(actor: &str, body: &[u8]) -> StopReason {
    match body.first() {
        Some(1) => {
            let phase = match body.get(1) {
                Some(0) => FailurePhase::Start,
                Some(1) => FailurePhase::Message,
                Some(2) => FailurePhase::Signal,
                Some(3) => FailurePhase::Restart,
                _ => FailurePhase::Escalated,
            };
            let description = String::from_utf8_lossy(body.get(2..).unwrap_or_default()).into_owned();
            match actor.parse::<ActorPath>() {
                Ok(path) => StopReason::Failed(compaktor_actor::Failure::remote(path, phase, description)),
                Err(_) => StopReason::Stopped,
            }
        }
        Some(2) => StopReason::Unreachable,
        Some(3) => StopReason::ConnectionLost,
        _ => StopReason::Stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_survive_the_wire() {
        let actor = "compaktor://s@127.0.0.1:1/user/a#3";
        for reason in [StopReason::Stopped, StopReason::Unreachable, StopReason::ConnectionLost] {
            let back = decode_reason(actor, &encode_reason(&reason));
            assert_eq!(back.to_string(), reason.to_string());
        }
        let failure = compaktor_actor::Failure::remote(actor.parse().unwrap(), FailurePhase::Start, "boom");
        let back = decode_reason(actor, &encode_reason(&StopReason::Failed(failure)));
        let failure = back.failure().expect("a failure");
        assert_eq!(failure.phase(), FailurePhase::Start);
        assert_eq!(failure.error().to_string(), "boom");
    }

    #[test]
    fn temporary_addresses_are_recognised() {
        assert_eq!(temp_id("compaktor://s@127.0.0.1:1/temp/42"), Some(42));
        assert_eq!(temp_id("compaktor://s@127.0.0.1:1/user/temp/42"), None);
        assert_eq!(temp_id("compaktor://s@127.0.0.1:1/user/a"), None);
    }
}
