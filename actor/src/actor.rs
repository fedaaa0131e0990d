//! The [`Actor`] trait.

use std::future::Future;

use crate::context::Context;
use crate::supervision::{ActorError, Failure, SupervisorStrategy};
use crate::watch::Terminated;

/// An actor: state plus a handler for one message type.
///
/// The runtime calls the handler with `&mut self`, one message at a time,
/// so the state needs no locks. Messages are usually an enum; a request that
/// wants an answer carries a [`ReplyTo`](crate::ReplyTo) or an
/// [`ActorRef`](crate::ActorRef) to reply to.
///
/// Returning `Err` (or panicking) from any hook fails the actor, and its
/// parent's [`SupervisorStrategy`] decides what happens next; see
/// [`supervision`](crate::SupervisorStrategy).
///
/// **Changing behaviour** (Akka's `become`): keep the state that decides how
/// messages are handled in an enum and `match` on it; the compiler then
/// checks that every state handles every message. The `circuit_breaker`
/// example shows the pattern with timers and the stash.
///
/// ```
/// use compaktor_actor::{Actor, ActorError, Context, ReplyTo};
///
/// enum Msg {
///     Add(u64),
///     Get(ReplyTo<u64>),
/// }
///
/// #[derive(Default)]
/// struct Counter {
///     total: u64,
/// }
///
/// impl Actor for Counter {
///     type Msg = Msg;
///
///     async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         match msg {
///             Msg::Add(n) => self.total += n,
///             Msg::Get(reply) => {
///                 let _ = reply.send(self.total);
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Actor: Send + Sized + 'static {
    /// The one message type this actor handles.
    type Msg: Send + 'static;

    /// Handles one message.
    fn handle(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), ActorError>> + Send;

    /// Runs before the first message. An error stops the actor under the
    /// default supervisor strategy.
    fn pre_start(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = Result<(), ActorError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs once the actor and all its children have stopped; the last hook.
    /// A panic here is logged and does not stop the shutdown.
    fn post_stop(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Runs on the failed instance before it is replaced. The runtime then
    /// stops the actor's children; timers are cancelled and the stash is
    /// returned to the mailbox.
    fn pre_restart(&mut self, cause: &Failure, ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        let _ = (cause, ctx);
        async {}
    }

    /// Runs on the fresh instance after a restart. Calls
    /// [`pre_start`](Self::pre_start) by default.
    fn post_restart(
        &mut self,
        cause: &Failure,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), ActorError>> + Send {
        let _ = cause;
        self.pre_start(ctx)
    }

    /// Called once for each watched actor that terminates. Does nothing by
    /// default (Erlang's monitor semantics, not Akka's DeathPact).
    fn on_terminated(
        &mut self,
        terminated: Terminated,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), ActorError>> + Send {
        let _ = (terminated, ctx);
        async { Ok(()) }
    }

    /// How this actor supervises its children. Called on each child failure.
    fn supervisor_strategy(&self) -> SupervisorStrategy {
        SupervisorStrategy::default()
    }
}
