//! compaktor: a clustered actor system for Rust, in the spirit of Akka.
//!
//! This facade re-exports the crates of the workspace so that a service
//! depends on one crate. Today it holds the local runtime,
//! [`compaktor_actor`]: typed actors, supervision, routers, dead letters,
//! health checks, timers and the blocking pool; and remoting,
//! [`remote`] (nodes over QUIC with mutual TLS); and reactive streams,
//! [`streams`]. The cluster joins it as it lands.
//!
//! ```
//! use std::time::Duration;
//! use compaktor::{Actor, ActorError, ActorSystem, Context, Props, ReplyTo, SystemConfig};
//!
//! struct Echo;
//!
//! impl Actor for Echo {
//!     type Msg = (String, ReplyTo<String>);
//!
//!     async fn handle(&mut self, (text, reply): Self::Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
//!         let _ = reply.send(text);
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let system = ActorSystem::new(SystemConfig::new("demo"))?;
//!     let echo = system.spawn("echo", Props::new(|| Echo))?;
//!     let answer = echo.ask(|reply| ("hello".to_owned(), reply), Duration::from_secs(1)).await?;
//!     assert_eq!(answer, "hello");
//!     system.shutdown().await?;
//!     Ok(())
//! }
//! ```

pub use compaktor_actor as actor;
pub use compaktor_actor::*;
pub use compaktor_remote as remote;
pub use compaktor_streams as streams;

/// The README's example, compiled and run as a doc test so the front door stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
