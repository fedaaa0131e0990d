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
//!
//! # Delivery
//!
//! At most once, in order per sender–receiver pair — Akka's guarantee.
//! Frames are batched per write on one long-lived stream per peer. What
//! cannot be sent (peer unreachable, send queue full, larger than
//! `max_frame`) or cannot be delivered on arrival (malformed frame, unknown
//! manifest, undecodable payload, no such actor) becomes a
//! [`DeadLetter`](compaktor_actor::DeadLetter), and the connection and every
//! other actor keep working.
//!
//! # Not built yet
//!
//! This is the first slice of remoting. Still to come: one shared
//! connection per pair of nodes (today each node dials its own and reads
//! the other's), system messages on their own acknowledged stream and large
//! messages on theirs (today all share one stream), a heartbeat with a
//! phi-accrual detector and `Terminated` on node loss (today a remote watch
//! resolves when the actor stops), look-ups that ask the other node,
//! remote spawn, the node binary with its scripts, and the benchmark.
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
//! let remote = a.lookup::<Greet>(&greeter.path().to_string())?;
//! let answer = remote.ask(|r| Greet::Hello("a".into(), r), Duration::from_secs(5)).await?;
//! assert_eq!(answer, "hello, a");
//! a.shutdown().await;
//! b.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod codec;
mod error;
mod frame;
mod node;
mod registry;
mod route;
mod tls;

#[cfg(feature = "bincode")]
pub use codec::Bincode;
pub use codec::{Codec, CodecError, Postcard};
pub use error::RemoteError;
pub use frame::FrameError;
pub use node::{RemoteConfig, RemoteNode, UndeliveredFrame};
pub use registry::Registry;
pub use tls::{CertificateAuthority, NodeIdentity, TlsError};
