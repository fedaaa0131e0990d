//! Remoting over QUIC for compaktor: actors on different nodes talk as if
//! they were local.
//!
//! A [`RemoteNode`] is an actor system plus one QUIC endpoint (quinn, rustls
//! on ring) that both accepts and dials, secured by mutual TLS against the
//! cluster's CA ([`CertificateAuthority`], [`NodeIdentity`]). An
//! [`ActorRef`](compaktor_actor::ActorRef) to an actor on another node is an
//! ordinary `ActorRef<M>`: `tell`, `ask` and `stop` work unchanged, and refs
//! and [`ReplyTo`](compaktor_actor::ReplyTo) handles inside messages travel
//! too, so an ask across nodes is the same call with the same errors.
//!
//! Message types cross the wire under a stable manifest registered on every
//! node ([`Registry`]), encoded by a [`Codec`] ([`Postcard`] by default).
//! [`RemoteNode::lookup`] finds an actor on another node and checks its
//! type; [`RemoteNode::spawn_remote`] starts one there from a factory
//! registered under a name.
//!
//! # Delivery
//!
//! User messages: at most once, in order per sender–receiver pair —
//! Akka's guarantee. What cannot be sent (peer unreachable, send queue
//! full, larger than `max_frame`) or cannot be delivered on arrival
//! (malformed frame, unknown manifest, undecodable payload, no such actor)
//! becomes a [`DeadLetter`](compaktor_actor::DeadLetter), and the
//! connection and every other actor keep working. When a connection is
//! lost, what was still queued, and a message only partly handed to QUIC,
//! become dead letters; what QUIC had already taken may have arrived or
//! not (QUIC does not say which), so those messages are neither resent nor
//! dead-lettered — the "at most" of the guarantee. A message larger than
//! `large_message` travels on a stream of its own so it never holds up
//! small ones; it may therefore overtake, or be overtaken by, small
//! messages to the same recipient.
//!
//! System messages (watch, terminated, stop, look-ups, remote spawn) are
//! numbered, acknowledged, and resent on the next connection to the same
//! incarnation of the peer until it is declared gone, and acted on once.
//! At most `system_queue` of them wait unacknowledged per peer; beyond
//! that a watch ends at once as unreachable and a look-up or spawn fails
//! with `NoAnswer`.
//!
//! # Connections and failure detection
//!
//! One QUIC connection per pair of nodes, dialed on first send by either
//! side (when both dial at once, both keep the one dialed by the node
//! whose root path, `compaktor://system@host:port/`, sorts first), carrying three long-lived streams each way:
//! control, user, large. On the user and large streams the recipient's
//! path and the manifest travel as text the first time and as small
//! numbers after (per-stream compression tables, as in Akka's Artery).
//! Each side sends a heartbeat every
//! `heartbeat_interval`; a phi-accrual detector declares a silent peer
//! unreachable within seconds (about 4 s with the defaults), well before
//! QUIC's idle timeout. A peer is *gone* when it is unreachable, when it
//! shuts down, when it declares us unreachable, when a lost connection
//! cannot be re-established, or when it comes back as a new incarnation
//! (every start is one): remote watches of
//! its actors then end with [`StopReason::Unreachable`] or
//! [`StopReason::ConnectionLost`](compaktor_actor::StopReason), and refs to
//! the old incarnation's actors reach nothing (their uids are not reused).
//! A node killed and restarted on the same address with the same identity
//! is noticed at once rather than by the detector: its endpoint's
//! connection ids and stateless-reset key are derived from its private
//! key, so it answers the first packet of a connection its previous
//! incarnation left open with a QUIC stateless reset; the peer redials,
//! meets the new incarnation, and ends the old one's watches with
//! `ConnectionLost`.
//!
//! # Not built yet
//!
//! Still to come: remote deployment under a remote parent (actors started
//! with [`RemoteNode::spawn_remote`] live under `/user` of the node that
//! runs them, supervised by its guardian), and backpressure for remote
//! tells (a full send queue makes dead letters, it does not wait).
//!
//! [`StopReason::Unreachable`]: compaktor_actor::StopReason::Unreachable
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use compaktor_actor::{Actor, ActorError, Context, Props, ReplyTo};
//! use compaktor_remote::{NodeIdentity, Registry, RemoteConfig, RemoteNode};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! enum Greet { Hello(String, ReplyTo<String>) }
//!
//! struct Greeter;
//! impl Actor for Greeter {
//!     type Msg = Greet;
//!     async fn handle(&mut self, msg: Greet, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
//!         let Greet::Hello(name, reply) = msg;
//!         let _ = reply.send(format!("hello, {name}"));
//!         Ok(())
//!     }
//! }
//!
//! let registry = || {
//!     let mut r = Registry::new();
//!     r.register::<Greet>("docs.Greet").register::<String>("string");
//!     r
//! };
//! let a = RemoteNode::start(RemoteConfig::new("a", NodeIdentity::dev()?), registry()).await?;
//! let b = RemoteNode::start(RemoteConfig::new("b", NodeIdentity::dev()?), registry()).await?;
//! let greeter = b.system().spawn("greeter", Props::new(|| Greeter))?;
//!
//! // On node a, a ref to the actor on node b, from its path alone.
//! let remote = a.lookup::<Greet>(&greeter.path().to_string()).await?;
//! let answer = remote.ask(|r| Greet::Hello("a".into(), r), Duration::from_secs(5)).await?;
//! assert_eq!(answer, "hello, a");
//! a.shutdown().await;
//! b.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod codec;
mod compress;
mod error;
mod frame;
mod handshake;
mod inbound;
mod link;
mod node;
mod outbound;
mod peer;
mod phi;
mod registry;
mod reliable;
mod route;
mod tls;
mod writer;

#[cfg(feature = "bincode")]
pub use codec::Bincode;
pub use codec::{Codec, CodecError, Postcard};
pub use error::RemoteError;
pub use frame::FrameError;
pub use node::{PeerStatus, RemoteConfig, RemoteNode, UndeliveredFrame};
pub use registry::Registry;
pub use tls::{CertificateAuthority, NodeIdentity, TlsError, SERVER_NAME};
