//! Routers: one `ActorRef<M>` in front of many routees.
//!
//! A router is an actor (it has a path, can be watched and stopped) whose
//! ref routes each message straight to a routee, chosen in the sender's task:
//! routing costs no extra hop through the router's mailbox.
//!
//! - **Pool** routers spawn their routees as children and supervise them:
//!   a failed routee is restarted (by default), a stopped one is removed,
//!   and the pool stops when its last routee is gone (as in Akka).
//! - **Group** routers route over refs they are given; they watch them and
//!   drop those that stop.
//!
//! Routees can be added and removed while the router runs
//! ([`Router::add_routee`], [`Router::remove_routee`], [`Router::resize`]).
//!
//! | logic | picks |
//! |---|---|
//! | round-robin (default) | the next routee in turn |
//! | random | a routee at random |
//! | smallest-mailbox | the routee with the fewest waiting messages, idle ones first |
//! | balancing (pools only) | routees pull from one shared queue when idle |
//! | broadcast | every routee gets a copy |
//! | consistent-hashing | the routee owning the message key on a hash ring; adding or removing a routee moves only that routee's keys |
//! | scatter-gather | every routee; an ask takes the first answer |
//! | tail-chopping | an ask goes to one routee, then another after each interval without an answer |

mod ring;
mod shared;

use std::any::Any;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

pub use ring::{stable_hash, StableHasher};
pub(crate) use shared::RouterShared;
use shared::{KeyFn, Logic};

use crate::actor::Actor;
use crate::actor_ref::ActorRef;
use crate::cell::{self, ErasedCell, PublicRef};
use crate::context::Context;
use crate::dead_letter::DeadLetterReason;
use crate::error::SpawnError;
use crate::mailbox::SharedQueue;
use crate::props::Props;
use crate::reply::ReplyTo;
use crate::supervision::{ActorError, Failure, SupervisorStrategy};
use crate::system::ActorSystem;
use crate::watch::Terminated;

/// Spawns one pool routee under the router's cell.
type Spawner<M> = Arc<
    dyn Fn(&ActorSystem, &Arc<dyn ErasedCell>, Option<Arc<SharedQueue<M>>>) -> Result<ActorRef<M>, SpawnError>
        + Send
        + Sync,
>;

enum Routees<M: Send + 'static> {
    Pool { size: usize, spawner: Spawner<M> },
    Group(Vec<ActorRef<M>>),
}

enum LogicSpec<M> {
    RoundRobin,
    Random,
    SmallestMailbox,
    Balancing,
    Broadcast,
    ConsistentHashing { key: KeyFn<M>, vnodes: usize },
    ScatterGather,
    TailChopping { interval: Duration },
}

/// How to build a router: where its routees come from and how it picks one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, RouterConfig, SystemConfig};
///
/// struct Worker;
///
/// impl Actor for Worker {
///     type Msg = u64;
///     async fn handle(&mut self, job: u64, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         println!("job {job}");
///         Ok(())
///     }
/// }
///
/// let system = ActorSystem::new(SystemConfig::new("routing"))?;
/// let pool = system.spawn_router("workers", RouterConfig::pool(4, Props::new(|| Worker)).round_robin())?;
/// for job in 0..8 {
///     pool.actor_ref().tell(job);
/// }
/// assert_eq!(pool.routees().len(), 4);
///
/// // Same key, same routee, as long as the routees stay the same.
/// let by_user = system.spawn_router(
///     "by-user",
///     RouterConfig::group(pool.routees()).consistent_hashing(|job: &u64| job % 100),
/// )?;
/// by_user.actor_ref().tell(42);
/// system.shutdown().await?;
/// # Ok(())
/// # }
/// ```
pub struct RouterConfig<M: Send + 'static> {
    routees: Routees<M>,
    logic: LogicSpec<M>,
    clone_msg: Option<fn(&M) -> M>,
    supervisor: SupervisorStrategy,
}

impl<M: Send + 'static> RouterConfig<M> {
    /// A pool of `size` routees built from `props`, children of the router.
    pub fn pool<A: Actor<Msg = M>>(size: usize, props: Props<A>) -> Self {
        let spawner: Spawner<M> = Arc::new(move |system, router, queue| {
            let props = match queue {
                Some(queue) => props.clone().with_shared_queue(queue),
                None => props.clone(),
            };
            cell::spawn(system, Some(router), None, props, None).map(ActorRef::local)
        });
        RouterConfig {
            routees: Routees::Pool { size, spawner },
            logic: LogicSpec::RoundRobin,
            clone_msg: None,
            supervisor: SupervisorStrategy::default(),
        }
    }

    /// A group over existing actors.
    pub fn group(routees: impl IntoIterator<Item = ActorRef<M>>) -> Self {
        RouterConfig {
            routees: Routees::Group(routees.into_iter().collect()),
            logic: LogicSpec::RoundRobin,
            clone_msg: None,
            supervisor: SupervisorStrategy::default(),
        }
    }

    /// Each message to the next routee in turn (the default).
    pub fn round_robin(mut self) -> Self {
        self.logic = LogicSpec::RoundRobin;
        self
    }

    /// Each message to a routee picked at random.
    pub fn random(mut self) -> Self {
        self.logic = LogicSpec::Random;
        self
    }

    /// Each message to the routee with the fewest waiting messages, idle ones first.
    pub fn smallest_mailbox(mut self) -> Self {
        self.logic = LogicSpec::SmallestMailbox;
        self
    }

    /// Routees share one queue and each takes the next message when idle.
    /// Pools only: spawning a balancing group fails with [`SpawnError::InvalidRouter`].
    pub fn balancing(mut self) -> Self {
        self.logic = LogicSpec::Balancing;
        self
    }

    /// Every message to every routee.
    pub fn broadcast(mut self) -> Self
    where
        M: Clone,
    {
        self.logic = LogicSpec::Broadcast;
        self.clone_msg = Some(M::clone);
        self
    }

    /// Each message to the routee that owns `key(msg)` on a hash ring with
    /// 100 virtual nodes per routee. The key is hashed with [`stable_hash`],
    /// so every node of a cluster agrees on the owner.
    pub fn consistent_hashing<K: Hash>(mut self, key: impl Fn(&M) -> K + Send + Sync + 'static) -> Self {
        self.logic = LogicSpec::ConsistentHashing {
            key: Arc::new(move |msg| stable_hash(&key(msg))),
            vnodes: 100,
        };
        self
    }

    /// Tells go to every routee; an ask takes the first answer.
    pub fn scatter_gather_first_completed(mut self) -> Self
    where
        M: Clone,
    {
        self.logic = LogicSpec::ScatterGather;
        self.clone_msg = Some(M::clone);
        self
    }

    /// An ask goes to one routee, and to another after every `interval`
    /// without an answer, until one answers or the ask times out. Tells go
    /// round-robin.
    pub fn tail_chopping(mut self, interval: Duration) -> Self
    where
        M: Clone,
    {
        self.logic = LogicSpec::TailChopping { interval };
        self.clone_msg = Some(M::clone);
        self
    }

    /// How a pool supervises its routees. Default: restart a failed routee
    /// (at most 10 times a minute), stop one that fails while starting.
    pub fn with_supervisor(mut self, strategy: SupervisorStrategy) -> Self {
        self.supervisor = strategy;
        self
    }
}

impl<M: Send + 'static> fmt::Debug for RouterConfig<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routees = match &self.routees {
            Routees::Pool { size, .. } => format!("pool of {size}"),
            Routees::Group(refs) => format!("group of {}", refs.len()),
        };
        f.debug_struct("RouterConfig")
            .field("routees", &routees)
            .finish_non_exhaustive()
    }
}

/// A router could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// Only pools can be resized.
    #[error("only pool routers can be resized")]
    NotAPool,
    /// Balancing routees must be spawned by the pool, which gives them the shared queue.
    #[error("a balancing pool's routees cannot be added from outside")]
    Balancing,
    /// The router has stopped.
    #[error("the router has stopped")]
    Stopped,
    /// Spawning a routee failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// A handle on a running router: its ref, and routee management.
pub struct Router<M> {
    shared: Arc<RouterShared<M>>,
}

impl<M> Clone for Router<M> {
    fn clone(&self) -> Self {
        Router {
            shared: self.shared.clone(),
        }
    }
}

impl<M: Send + 'static> Router<M> {
    /// The router's ref: send to it as to any actor.
    pub fn actor_ref(&self) -> ActorRef<M> {
        ActorRef::router(self.shared.clone())
    }

    /// The current routees.
    pub fn routees(&self) -> Vec<ActorRef<M>> {
        self.shared.routees()
    }

    /// Adds a routee; the router watches it and drops it when it stops.
    ///
    /// # Errors
    /// [`RouterError::Balancing`] on a balancing pool; [`RouterError::Stopped`].
    pub fn add_routee(&self, routee: ActorRef<M>) -> Result<(), RouterError> {
        if matches!(self.shared.logic(), Logic::Balancing(_)) {
            return Err(RouterError::Balancing);
        }
        if self.shared.control_cell().mailbox.is_closed() {
            return Err(RouterError::Stopped);
        }
        if self.shared.add(routee.clone()) {
            self.shared
                .control_cell()
                .tell(RouterMsg::Watch(routee))
                .map_err(|_| RouterError::Stopped)?;
        }
        Ok(())
    }

    /// Removes a routee from the router (it is not stopped). Returns whether it was a routee.
    pub fn remove_routee(&self, routee: &ActorRef<M>) -> bool {
        self.shared.remove(routee.path())
    }

    /// Grows or shrinks a pool to `size` routees; extra routees are stopped.
    ///
    /// # Errors
    /// [`RouterError::NotAPool`], [`RouterError::Stopped`], or the spawn error.
    pub async fn resize(&self, size: usize) -> Result<(), RouterError> {
        let control = ActorRef::local(self.shared.control_cell().clone());
        match control
            .ask(|reply| RouterMsg::Resize(size, reply), Duration::from_secs(10))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(RouterError::Stopped),
        }
    }

    /// The router handle behind `actor_ref`, if it is a router's ref.
    pub fn from_ref(actor_ref: &ActorRef<M>) -> Option<Router<M>> {
        actor_ref.router_shared().map(|shared| Router { shared })
    }
}

impl<M: Send + 'static> fmt::Debug for Router<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Router({})", self.shared.path())
    }
}

/// What the router actor itself handles.
pub(crate) enum RouterMsg<M> {
    Watch(ActorRef<M>),
    Resize(usize, ReplyTo<Result<(), RouterError>>),
}

/// The actor behind a router: spawns and supervises pool routees, and
/// removes routees that stop.
pub(crate) struct RouterActor<M: Send + 'static> {
    shared: Arc<RouterShared<M>>,
    pool: Option<(usize, Spawner<M>)>,
    supervisor: SupervisorStrategy,
}

impl<M: Send + 'static> RouterActor<M> {
    /// Spawns `by` more pool routees and adds them to the table; the router
    /// watches them once it handles the `Watch` messages this queues.
    fn grow(&self, by: usize) -> Result<(), SpawnError> {
        let Some((_, spawner)) = &self.pool else { return Ok(()) };
        let control = self.shared.control_cell();
        let router: Arc<dyn ErasedCell> = control.clone();
        for _ in 0..by {
            let routee = spawner(&control.core.system, &router, queue_of(&self.shared))?;
            self.shared.add(routee.clone());
            let _ = control.tell(RouterMsg::Watch(routee));
        }
        Ok(())
    }
}

fn queue_of<M: Send + 'static>(shared: &RouterShared<M>) -> Option<Arc<SharedQueue<M>>> {
    match shared.logic() {
        Logic::Balancing(queue) => Some(queue.clone()),
        _ => None,
    }
}

impl<M: Send + 'static> Actor for RouterActor<M> {
    type Msg = RouterMsg<M>;

    async fn post_restart(&mut self, _cause: &Failure, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        // The restart stopped the old pool routees: start a fresh set.
        if let Some((size, _)) = self.pool {
            for old in self.shared.routees() {
                self.shared.remove(old.path());
            }
            self.grow(size)?;
        }
        Ok(())
    }

    async fn handle(&mut self, msg: RouterMsg<M>, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            RouterMsg::Watch(routee) => ctx.watch(&routee),
            RouterMsg::Resize(size, reply) => {
                let result = match self.pool {
                    None => Err(RouterError::NotAPool),
                    Some(_) => {
                        let routees = self.shared.routees();
                        if size > routees.len() {
                            self.grow(size - routees.len()).map_err(RouterError::from)
                        } else {
                            for extra in &routees[size..] {
                                self.shared.remove(extra.path());
                                ctx.stop(extra);
                            }
                            Ok(())
                        }
                    }
                };
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    async fn on_terminated(&mut self, terminated: Terminated, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.shared.remove(terminated.actor());
        if self.pool.is_some() && self.shared.routees().is_empty() && ctx.children().is_empty() {
            tracing::info!(router = %ctx.path(), "all routees stopped; stopping the pool");
            ctx.stop_self();
        }
        Ok(())
    }

    async fn post_stop(&mut self, _ctx: &mut Context<Self>) {
        if let Some(queue) = queue_of(&self.shared) {
            let control = self.shared.control_cell();
            for env in queue.close() {
                cell::dead_letter(&control.core, env, DeadLetterReason::StoppedBeforeHandled);
            }
        }
        for routee in self.shared.routees() {
            self.shared.remove(routee.path());
        }
    }

    fn supervisor_strategy(&self) -> SupervisorStrategy {
        self.supervisor.clone()
    }
}

/// Spawns a router under `parent`.
pub(crate) fn spawn_router<M: Send + 'static>(
    system: &ActorSystem,
    parent: &Arc<dyn ErasedCell>,
    name: Option<&str>,
    config: RouterConfig<M>,
) -> Result<Router<M>, SpawnError> {
    let (pool, group) = match config.routees {
        Routees::Pool { size, spawner } => (Some((size, spawner)), Vec::new()),
        Routees::Group(refs) => (None, refs),
    };
    let logic = match config.logic {
        LogicSpec::RoundRobin => Logic::RoundRobin,
        LogicSpec::Random => Logic::Random,
        LogicSpec::SmallestMailbox => Logic::SmallestMailbox,
        LogicSpec::Balancing if pool.is_none() => {
            return Err(SpawnError::InvalidRouter(
                "balancing needs a pool: its routees share the pool's queue",
            ))
        }
        LogicSpec::Balancing => Logic::Balancing(Arc::new(SharedQueue::new())),
        LogicSpec::Broadcast => Logic::Broadcast,
        LogicSpec::ConsistentHashing { key, vnodes } => Logic::ConsistentHashing { key, vnodes },
        LogicSpec::ScatterGather => Logic::ScatterGather,
        LogicSpec::TailChopping { interval } => Logic::TailChopping { interval },
    };
    let shared = Arc::new(RouterShared::new(logic, config.clone_msg, group));
    let weak = Arc::downgrade(&shared);
    let public = Box::new(PublicRef {
        message_type: std::any::type_name::<M>(),
        make: Box::new(move || {
            let shared = weak.upgrade().filter(|s| s.is_ready())?;
            Some(Box::new(ActorRef::router(shared)) as Box<dyn Any + Send>)
        }),
    });
    let pool_spec = pool.clone();
    let props = {
        let shared = shared.clone();
        let supervisor = config.supervisor;
        Props::new(move || RouterActor {
            shared: shared.clone(),
            pool: pool.clone(),
            supervisor: supervisor.clone(),
        })
    };
    let cell = cell::spawn(system, Some(parent), name, props, Some(public))?;
    shared.set_control(cell.clone());
    // Routees exist before the router's ref is handed out, so nothing sent
    // to a fresh pool finds it empty. The router watches them once it runs.
    match &pool_spec {
        Some((size, _)) => {
            let builder = RouterActor {
                shared: shared.clone(),
                pool: pool_spec.clone(),
                supervisor: SupervisorStrategy::default(),
            };
            if let Err(error) = builder.grow(*size) {
                ActorRef::local(cell).stop();
                return Err(error);
            }
        }
        None => {
            for routee in shared.routees() {
                let _ = cell.tell(RouterMsg::Watch(routee));
            }
        }
    }
    Ok(Router { shared })
}
