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
    // Most actors never use timers, the stash or death watch; an idle actor
    // pays one pointer for each until it does.
    timers: Option<Box<Timers<A::Msg>>>,
    extra: Option<Box<Extra<A::Msg>>>,
}

struct Extra<M> {
    stash: VecDeque<M>,
    /// Unstashed messages, handled before anything from the mailbox.
    replay: VecDeque<M>,
    /// Actors this one watches, by uid.
    watching: HashMap<u64, AnyActorRef>,
    /// Tasks awaiting remote watched actors' ends, by uid: aborted on
    /// unwatch or stop, which lets the transport drop the watch.
    remote_watches: HashMap<u64, tokio::task::AbortHandle>,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(cell: Arc<Cell<A::Msg>>) -> Self {
        Context {
            myself: ActorRef::local(cell.clone()),
            cell,
            timers: None,
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut Extra<A::Msg> {
        self.extra.get_or_insert_with(|| {
            Box::new(Extra {
                stash: VecDeque::new(),
                replay: VecDeque::new(),
                watching: HashMap::new(),
                remote_watches: HashMap::new(),
            })
        })
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
        let _ = self.cell.send_system(SystemMsg::Stop { failure: None });
    }

    /// Watches `target`: exactly one [`Terminated`] reaches
    /// [`Actor::on_terminated`] when it stops, also if it is already dead.
    /// Watching an actor twice is the same as watching it once.
    pub fn watch(&mut self, target: impl Into<AnyActorRef>) {
        let target = target.into();
        let uid = target.path().uid();
        if uid == self.path().uid() || self.is_watching(uid) {
            return;
        }
        self.extra().watching.insert(uid, target.clone());
        match target.add_watcher(Watcher::Actor(self.erased())) {
            Ok(()) => {}
            Err(Some(reason)) => self.already_dead(target, reason),
            Err(None) => {
                // Remote: the transport resolves `terminated`; a late one
                // after `unwatch` is filtered out on arrival.
                let me = self.erased();
                let terminated = target.terminated();
                let task = self.system().runtime().spawn(async move {
                    let _ = me.send_system(SystemMsg::Terminated(terminated.await));
                });
                self.extra().remote_watches.insert(uid, task.abort_handle());
            }
        }
    }

    /// The notification for a watched actor that was dead already comes
    /// from ourselves, once it has entirely finished stopping.
    fn already_dead(&self, target: AnyActorRef, reason: StopReason) {
        let terminated = Terminated::new(target.path().clone(), reason);
        let me = self.erased();
        if target.is_terminated() {
            let _ = me.send_system(SystemMsg::Terminated(terminated));
        } else {
            let finished = target.finished();
            self.system().runtime().spawn(async move {
                finished.await;
                let _ = me.send_system(SystemMsg::Terminated(terminated));
            });
        }
    }

    /// Stops watching `target`; no `Terminated` for it arrives afterwards.
    pub fn unwatch(&mut self, target: impl Into<AnyActorRef>) {
        let target = target.into();
        if self.stop_watching(target.path().uid()) {
            target.unwatch_by(self.path().uid());
        }
    }

    /// Runs `work` beside the actor and tells the actor `to_msg(output)`
    /// when it completes (Akka's `pipeTo`): the way to await something slow
    /// (an ask of another actor, an HTTP call) without holding up the
    /// mailbox. If the actor has stopped by then, the message becomes a
    /// dead letter. The work is not cancelled when the actor stops.
    ///
    /// ```
    /// use std::time::Duration;
    /// use compaktor_actor::{Actor, ActorError, ActorRef, AskError, Context, ReplyTo};
    ///
    /// enum Msg {
    ///     Lookup(String),
    ///     Found(Result<u64, AskError>),
    /// }
    ///
    /// struct Front {
    ///     store: ActorRef<(String, ReplyTo<u64>)>,
    /// }
    ///
    /// impl Actor for Front {
    ///     type Msg = Msg;
    ///     async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
    ///         match msg {
    ///             Msg::Lookup(key) => {
    ///                 let store = self.store.clone();
    ///                 let asked = async move { store.ask(|r| (key, r), Duration::from_secs(1)).await };
    ///                 ctx.pipe_to_self(asked, Msg::Found);
    ///             }
    ///             Msg::Found(value) => println!("found {value:?}"),
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn pipe_to_self<F, T>(&self, work: F, to_msg: impl FnOnce(T) -> A::Msg + Send + 'static)
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let myself = self.myself.clone();
        self.system().runtime().spawn(async move {
            let output = work.await;
            myself.tell(to_msg(output));
        });
    }

    /// The actor's timers: messages to itself, single or periodic, by key.
    pub fn timers(&mut self) -> &mut Timers<A::Msg> {
        let cell = &self.cell;
        self.timers.get_or_insert_with(|| Box::new(Timers::new(cell)))
    }

    /// Puts a message aside until [`unstash_all`](Self::unstash_all).
    ///
    /// # Errors
    /// Hands the message back when the stash holds `stash_capacity` messages
    /// (see [`SystemConfig`](crate::SystemConfig)).
    pub fn stash(&mut self, msg: A::Msg) -> Result<(), StashError<A::Msg>> {
        if self.stash_len() >= self.system().config().stash_capacity {
            return Err(StashError(msg));
        }
        self.extra().stash.push_back(msg);
        Ok(())
    }

    /// Puts every stashed message back in front of the mailbox, in the order
    /// stashed; they are handled once the current handler returns, before
    /// anything else in the mailbox.
    pub fn unstash_all(&mut self) {
        if let Some(extra) = self.extra.as_mut() {
            while let Some(msg) = extra.stash.pop_back() {
                extra.replay.push_front(msg);
            }
        }
    }

    /// How many messages are stashed.
    pub fn stash_len(&self) -> usize {
        self.extra.as_ref().map_or(0, |e| e.stash.len())
    }

    // ---- for the runner ----

    /// The next unstashed message to handle.
    #[inline]
    pub(crate) fn next_replay(&mut self) -> Option<A::Msg> {
        self.extra.as_mut()?.replay.pop_front()
    }

    /// The message for a timer firing, or `None` if the timer is gone.
    pub(crate) fn fire_timer(&mut self, id: u64) -> Option<A::Msg> {
        self.timers.as_mut()?.fire(id)
    }

    pub(crate) fn cancel_timers(&mut self) {
        if let Some(timers) = self.timers.as_mut() {
            timers.cancel_all();
        }
    }

    pub(crate) fn is_watching(&self, uid: u64) -> bool {
        self.extra.as_ref().is_some_and(|e| e.watching.contains_key(&uid))
    }

    /// Forgets a watch; whether it was there.
    pub(crate) fn stop_watching(&mut self, uid: u64) -> bool {
        self.extra.as_mut().is_some_and(|e| {
            if let Some(task) = e.remote_watches.remove(&uid) {
                task.abort();
            }
            e.watching.remove(&uid).is_some()
        })
    }

    /// Everything the actor still holds when it stops: the messages it
    /// stashed or had unstashed, and the actors it watches.
    pub(crate) fn take_leftovers(&mut self) -> (Vec<A::Msg>, Vec<AnyActorRef>) {
        let Some(extra) = self.extra.take() else {
            return (Vec::new(), Vec::new());
        };
        // A stopped watcher no longer needs its remote watches.
        for task in extra.remote_watches.values() {
            task.abort();
        }
        (
            extra.replay.into_iter().chain(extra.stash).collect(),
            extra.watching.into_values().collect(),
        )
    }
}

impl<A: Actor> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("path", self.path())
            .finish_non_exhaustive()
    }
}

/// Lets `watch` report an already-dead target without knowing its type.
pub(crate) fn stop_reason_of(cell: &Arc<dyn ErasedCell>) -> StopReason {
    cell.core()
        .stop_reason
        .get()
        .cloned()
        .flatten()
        .map_or(StopReason::Stopped, StopReason::Failed)
}
