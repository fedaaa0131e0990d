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
//! # Choices, where Akka or OTP users might expect otherwise
//!
//! - **Default supervision** is Akka's: restart on a failure in a handler,
//!   stop on a failure while starting or restarting (restarting an actor
//!   that cannot start would loop), at most 10 restarts a minute per child,
//!   then stop. A failure escalated past the user guardian stops the system.
//! - **`tell` never waits.** On a full bounded mailbox a told message is a
//!   dead letter; the overflow policy governs [`ActorRef::send`] and
//!   [`ActorRef::ask`], which can wait or fail. Backpressure is opt-in and
//!   visible in the type of call.
//! - **Ask timeouts** are enforced by one sweeper per system that ticks
//!   every 10 ms while asks are pending, rather than a timer per ask: an ask
//!   times out between its timeout and 10 ms later (Akka's scheduler has the
//!   same granularity), and a request–reply costs no clock read.
//! - **Dead letters keep the message**, so a subscriber can recover it with
//!   [`DeadLetter::take`]; a reply handle inside a kept dead letter keeps its
//!   asker waiting until the ask times out.
//! - **The blocking pool** is a fixed set of threads
//!   ([`SystemConfig::blocking_threads`]), each running its actors' tasks; an
//!   actor that blocks holds up only the actors on its own thread, never the
//!   async workers.
//! - **Senders of dead letters** are recorded when a send fails in the
//!   sender's own task; envelopes do not carry senders (that would cost
//!   every message a reference count), so messages drained from a stopping
//!   mailbox have no sender.
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
//! | plug in a network transport | [`transport`] |

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
pub mod transport;
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
pub use supervision::{
    ActorError, Backoff, Directive, Failure, FailurePhase, Panicked, RemoteFailure, Scope, SupervisorStrategy,
};
pub use system::ActorSystem;
pub use timers::{TimerKey, Timers};
pub use watch::{StopReason, Terminated};
