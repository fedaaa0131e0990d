//! What an actor can do besides handling its message.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, AnyActorRef};
use crate::cell::{self, Cell, ErasedCell};
use crate::error::{SpawnError, StashError};
use crate::mailbox::lock;
use crate::path::ActorPath;
use crate::props::Props;
use crate::routing::{Router, RouterConfig};
use crate::system::ActorSystem;
use crate::system_msg::{SystemMsg, Watcher};
use crate::timers::Timers;
use crate::watch::{StopReason, Terminated};

/// An actor's view of itself and the system: its ref, its family, death
/// watch, timers and stash. Every handler gets `&mut Context<Self>`.
///
/// ```
/// use compaktor_actor::{Actor, ActorError, Context, Props, Terminated};
///
/// struct Supervisor;
/// struct Worker;
///
/// impl Actor for Worker {
///     type Msg = u32;
///     async fn handle(&mut self, n: u32, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         println!("working on {n}");
///         Ok(())
///     }
/// }
///
/// impl Actor for Supervisor {
///     type Msg = u32;
///
///     async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         let worker = ctx.spawn("worker", Props::new(|| Worker))?;
///         ctx.watch(&worker);
///         Ok(())
///     }
///
///     async fn handle(&mut self, n: u32, ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         if let Some(worker) = ctx.child("worker") {
///             worker.downcast::<u32>()?.tell(n);
///         }
///         Ok(())
///     }
///
///     async fn on_terminated(&mut self, t: Terminated, ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         println!("{} is gone ({}); stopping too", t.actor(), t.reason());
///         ctx.stop_self();
///         Ok(())
///     }
/// }
/// ```
pub struct Context<A: Actor> {
    cell: Arc<Cell<A::Msg>>,
    myself: ActorRef<A::Msg>,
    pub(crate) timers: Timers<A::Msg>,
    pub(crate) stash: VecDeque<A::Msg>,
    unstash: bool,
    /// Actors this one watches, by uid.
    pub(crate) watching: HashMap<u64, AnyActorRef>,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(cell: Arc<Cell<A::Msg>>) -> Self {
        Context {
            myself: ActorRef::local(cell.clone()),
            timers: Timers::new(&cell),
            cell,
            stash: VecDeque::new(),
            unstash: false,
            watching: HashMap::new(),
        }
    }

    /// This actor's own ref, to hand to others (for example as a reply address).
    pub fn myself(&self) -> &ActorRef<A::Msg> {
        &self.myself
    }

    /// This actor's path.
    pub fn path(&self) -> &ActorPath {
        &self.cell.core.path
    }

    /// The system this actor lives in.
    pub fn system(&self) -> &ActorSystem {
        &self.cell.core.system
    }

    /// The parent (the user guardian for top-level actors).
    pub fn parent(&self) -> Option<AnyActorRef> {
        self.cell.core.parent.clone().map(AnyActorRef::from_cell)
    }

    /// The live children.
    pub fn children(&self) -> Vec<AnyActorRef> {
        lock(&self.cell.core.children)
            .snapshot()
            .into_iter()
            .map(AnyActorRef::from_cell)
            .collect()
    }

    /// The child with this name, if it is alive.
    pub fn child(&self, name: &str) -> Option<AnyActorRef> {
        lock(&self.cell.core.children).get(name).map(AnyActorRef::from_cell)
    }

    fn erased(&self) -> Arc<dyn ErasedCell> {
        self.cell.clone()
    }

    /// Spawns a child named `name`; this actor supervises it.
    ///
    /// # Errors
    /// See [`SpawnError`]: an invalid or taken name, or this actor is stopping.
    pub fn spawn<C: Actor>(&mut self, name: &str, props: Props<C>) -> Result<ActorRef<C::Msg>, SpawnError> {
        let me = self.erased();
        cell::spawn(self.system(), Some(&me), Some(name), props, None).map(ActorRef::local)
    }

    /// Spawns a child with a generated name (`$a`, `$b`, ...).
    pub fn spawn_anonymous<C: Actor>(&mut self, props: Props<C>) -> Result<ActorRef<C::Msg>, SpawnError> {
        let me = self.erased();
        cell::spawn(self.system(), Some(&me), None, props, None).map(ActorRef::local)
    }

    /// Spawns a router as a child of this actor.
    pub fn spawn_router<M: Send + 'static>(
        &mut self,
        name: &str,
        config: RouterConfig<M>,
    ) -> Result<Router<M>, SpawnError> {
        let me = self.erased();
        crate::routing::spawn_router(self.system(), &me, Some(name), config)
    }

    /// Stops an actor (usually a child) after its current message; its
    /// children stop first. Stopping an actor that is already gone does nothing.
    pub fn stop(&mut self, target: impl Into<AnyActorRef>) {
        target.into().stop();
    }

    /// Stops this actor once the current message is handled; queued user
    /// messages become dead letters.
    pub fn stop_self(&mut self) {
        let _ = self.cell.mailbox.push_system(SystemMsg::Stop { failure: None });
    }

    /// Watches `target`: exactly one [`Terminated`] reaches
    /// [`Actor::on_terminated`] when it stops, also if it is already dead.
    /// Watching an actor twice is the same as watching it once.
    pub fn watch(&mut self, target: impl Into<AnyActorRef>) {
        let target = target.into();
        let uid = target.path().uid();
        if uid == self.path().uid() || self.watching.contains_key(&uid) {
            return;
        }
        self.watching.insert(uid, target.clone());
        if let Err(reason) = target.add_watcher(Watcher::Actor(self.erased())) {
            // Already dead: the notification comes from ourselves, at once.
            let terminated = Terminated::new(target.path().clone(), reason);
            let _ = self.cell.mailbox.push_system(SystemMsg::Terminated(terminated));
        }
    }

    /// Stops watching `target`; no `Terminated` for it arrives afterwards.
    pub fn unwatch(&mut self, target: impl Into<AnyActorRef>) {
        let target = target.into();
        if self.watching.remove(&target.path().uid()).is_some() {
            target.unwatch_by(self.path().uid());
        }
    }

    /// The actor's timers: messages to itself, single or periodic, by key.
    pub fn timers(&mut self) -> &mut Timers<A::Msg> {
        &mut self.timers
    }

    /// Puts a message aside until [`unstash_all`](Self::unstash_all).
    ///
    /// # Errors
    /// Hands the message back when the stash holds `stash_capacity` messages
    /// (see [`SystemConfig`](crate::SystemConfig)).
    pub fn stash(&mut self, msg: A::Msg) -> Result<(), StashError<A::Msg>> {
        if self.stash.len() >= self.system().config().stash_capacity {
            return Err(StashError(msg));
        }
        self.stash.push_back(msg);
        Ok(())
    }

    /// Puts every stashed message back in front of the mailbox, in the order
    /// stashed, once the current handler returns.
    pub fn unstash_all(&mut self) {
        self.unstash = !self.stash.is_empty();
    }

    /// How many messages are stashed.
    pub fn stash_len(&self) -> usize {
        self.stash.len()
    }

    /// Moves the stash to the front of `replay` if `unstash_all` was called.
    pub(crate) fn after_handler(&mut self, replay: &mut VecDeque<A::Msg>) {
        if std::mem::take(&mut self.unstash) {
            for msg in self.stash.drain(..).rev() {
                replay.push_front(msg);
            }
        }
    }
}

impl<A: Actor> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("path", self.path()).finish_non_exhaustive()
    }
}

/// Lets `watch` report an already-dead target without knowing its type.
pub(crate) fn stop_reason_of(cell: &Arc<dyn ErasedCell>) -> StopReason {
    cell.core().stop_reason.get().cloned().unwrap_or(StopReason::Stopped)
}
