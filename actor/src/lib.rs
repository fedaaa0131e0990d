//! Typed local actors for compaktor: the runtime everything else stands on.
//!
//! An [`Actor`] owns its state and handles one message type, one message at
//! a time. You reach it only through an [`ActorRef`], a cheap, typed,
//! location-transparent address: [`tell`](ActorRef::tell) to send,
//! [`ask`](ActorRef::ask) for request–response with a timeout. Actors form
//! a tree under an [`ActorSystem`]; parents supervise their children with a
//! [`SupervisorStrategy`], so a panic or an `Err` in a handler is a value
//! the parent acts on (resume, restart, stop, escalate), never a crashed
//! process.
//!
//! ```
//! use std::time::Duration;
//! use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, ReplyTo, SystemConfig};
//!
//! enum Msg {
//!     Deposit(u64),
//!     Balance(ReplyTo<u64>),
//! }
//!
//! #[derive(Default)]
//! struct Account {
//!     balance: u64,
//! }
//!
//! impl Actor for Account {
//!     type Msg = Msg;
//!
//!     async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
//!         match msg {
//!             Msg::Deposit(amount) => self.balance += amount,
//!             Msg::Balance(reply) => {
//!                 let _ = reply.send(self.balance);
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let system = ActorSystem::new(SystemConfig::new("bank"))?;
//!     let account = system.spawn("alice", Props::<Account>::default())?;
//!
//!     account.tell(Msg::Deposit(70));
//!     account.tell(Msg::Deposit(30));
//!     let balance = account.ask(Msg::Balance, Duration::from_secs(1)).await?;
//!     assert_eq!(balance, 100);
//!
//!     system.shutdown().await?;
//!     Ok(())
//! }
//! ```
//!
//! # What the runtime guarantees
//!
//! - **Delivery** is at most once and ordered per sender–receiver pair (the
//!   Akka guarantee). A message that cannot be delivered is published as a
//!   [`DeadLetter`] on the [`EventStream`], counted and logged: never lost
//!   unseen.
//! - **System messages first**: stop, watch, terminated and supervision
//!   signals overtake queued user messages.
//! - **Death watch**: [`Context::watch`] delivers exactly one [`Terminated`],
//!   with the reason, even for an actor that is already dead.
//! - **Shutdown** stops children before parents and runs every `post_stop`;
//!   messages still queued become dead letters.
//!
//! # Map
//!
//! | need | look at |
//! |---|---|
//! | define an actor | [`Actor`], [`Context`], [`Props`] |
//! | send | [`ActorRef`], [`ReplyTo`], [`MailboxConfig`] |
//! | handle failures | [`SupervisorStrategy`], [`Failure`], [`Terminated`] |
//! | spread work | [`RouterConfig`], [`Router`] |
//! | observe | [`EventStream`], [`DeadLetter`], [`HealthReport`] |
//! | schedule | [`Timers`] |
//! | block | [`Dispatcher::Blocking`] |

mod actor;
mod actor_ref;
mod blocking;
mod cell;
mod children;
mod chunk_queue;
mod config;
mod context;
mod dead_letter;
mod deadline;
mod error;
mod event_stream;
mod health;
mod mailbox;
mod path;
mod props;
mod reply;
mod rng;
mod routing;
mod runner;
mod spin;
mod supervision;
mod system;
mod system_msg;
mod task;
mod timers;
mod watch;

pub use actor::Actor;
pub use actor_ref::{ActorRef, AnyActorRef};
pub use config::SystemConfig;
pub use context::Context;
pub use dead_letter::{DeadLetter, DeadLetterReason, DeadLetterStats};
pub use error::{
    AskError, LookupError, PathError, SendError, ShutdownError, SpawnError, StashError, SystemError, TryTellError,
};
pub use event_stream::{EventStream, EventStreamError, EventSubscriber, LifecycleEvent};
pub use health::{HealthReport, HealthStatus, MailboxDepth, ReadinessResult, StuckActor};
pub use mailbox::{MailboxConfig, OverflowPolicy};
pub use path::{ActorPath, Address};
pub use props::{Dispatcher, Props};
pub use reply::ReplyTo;
pub use routing::{stable_hash, Router, RouterConfig, RouterError, StableHasher};
pub use supervision::{ActorError, Backoff, Directive, Failure, FailurePhase, Panicked, Scope, SupervisorStrategy};
pub use system::ActorSystem;
pub use timers::{TimerKey, Timers};
pub use watch::{StopReason, Terminated};
