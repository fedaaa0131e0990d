//! The actor system: the root of the actor tree and its shared services.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::actor::Actor;
use crate::actor_ref::{ActorRef, AnyActorRef};
use crate::blocking::BlockingPool;
use crate::cell::{self, ErasedCell};
use crate::config::SystemConfig;
use crate::context::Context;
use crate::dead_letter::{DeadLetterOffice, DeadLetterReason, DeadLetterStats};
use crate::deadline::AskDeadlines;
use crate::error::{LookupError, ShutdownError, SpawnError, SystemError};
use crate::event_stream::{EventStream, LifecycleEvent, Topic};
use crate::health::ReadinessCheck;
use crate::mailbox::lock;
use crate::path::{ActorPath, Address};
use crate::props::{Dispatcher, Props};
use crate::rng::splitmix64;
use crate::routing::{self, Router, RouterConfig};
use crate::supervision::{ActorError, SupervisorStrategy};
use crate::system_msg::SystemMsg;

/// A running actor system: spawns top-level actors, finds actors by path,
/// and owns the event stream, dead letters, health and the blocking pool.
///
/// Cheap to clone; all clones are the same system. Create it inside a tokio
/// runtime; actors run on that runtime.
///
/// # Shutdown
/// [`shutdown`](Self::shutdown) stops every actor, children before parents,
/// runs every `post_stop`, turns messages still queued into dead letters,
/// and resolves when the last actor is gone. Dropping every handle does not
/// stop the actors.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, SystemConfig};
///
/// struct Greeter;
///
/// impl Actor for Greeter {
///     type Msg = String;
///     async fn handle(&mut self, name: String, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         println!("hello, {name}");
///         Ok(())
///     }
/// }
///
/// let system = ActorSystem::new(SystemConfig::new("app"))?;
/// system.spawn("greeter", Props::new(|| Greeter))?;
///
/// // Anywhere else, by path; the message type is checked.
/// let greeter = system.lookup::<String>("/user/greeter")?;
/// greeter.tell("world".to_owned());
/// assert!(system.lookup::<u32>("/user/greeter").is_err());
///
/// system.shutdown().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ActorSystem {
    inner: Arc<SystemInner>,
}

pub(crate) struct SystemInner {
    pub(crate) config: SystemConfig,
    address: Address,
    root: ActorPath,
    incarnation: Uuid,
    runtime: Handle,
    /// The user guardian; taken when it terminates, which breaks the
    /// guardian → system → guardian cycle.
    guardian: Mutex<Option<Arc<dyn ErasedCell>>>,
    uid_seed: u64,
    uid_counter: AtomicU64,
    anon_counter: AtomicU64,
    pub(crate) live_actors: AtomicUsize,
    pub(crate) restarts: AtomicU64,
    dead_letters: DeadLetterOffice,
    events: EventStream,
    lifecycle: Arc<Topic<LifecycleEvent>>,
    clock: Clock,
    blocking: OnceLock<BlockingPool>,
    deadlines: Arc<AskDeadlines>,
    pub(crate) readiness: Mutex<Vec<ReadinessCheck>>,
    shutting_down: AtomicBool,
    terminated: watch::Sender<bool>,
    /// Wakes whoever waits for a stopping actor to finish (see
    /// [`ActorSystem::until_finished`]); `finish_waiters` spares the
    /// notification when nobody does.
    finished: Notify,
    finish_waiters: AtomicUsize,
}

/// A millisecond clock read with one atomic load; a background task moves
/// it. Handlers stamp their start time with it, for stuck-actor detection.
struct Clock {
    start: Instant,
    /// Milliseconds since `start`, plus one so that 0 can mean "idle".
    ticks: AtomicU64,
}

impl Clock {
    fn update(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.ticks.store(ms + 1, Ordering::Relaxed);
    }
}

/// The user guardian: parent of every top-level actor.
struct Guardian {
    strategy: SupervisorStrategy,
}

/// The guardian takes no messages.
enum Never {}

impl Actor for Guardian {
    type Msg = Never;

    async fn handle(&mut self, msg: Never, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {}
    }

    fn supervisor_strategy(&self) -> SupervisorStrategy {
        self.strategy.clone()
    }
}

impl ActorSystem {
    /// Starts a system with this configuration on the current tokio runtime.
    ///
    /// # Errors
    /// [`SystemError::NoRuntime`] outside a tokio runtime;
    /// [`SystemError::InvalidConfig`] for an unusable configuration.
    pub fn new(config: SystemConfig) -> Result<Self, SystemError> {
        config.validate().map_err(SystemError::InvalidConfig)?;
        let runtime = Handle::try_current().map_err(|_| SystemError::NoRuntime)?;
        let address = Address::new(&config.name, &config.host, config.port);
        let incarnation = Uuid::new_v4();
        let events = EventStream::new(config.event_buffer);
        let dead_letters = DeadLetterOffice::new(events.topic(), config.dead_letter_log_limit);
        let lifecycle = events.topic();
        let clock = Clock {
            start: Instant::now(),
            ticks: AtomicU64::new(1),
        };
        let inner = Arc::new(SystemInner {
            root: ActorPath::root(address.clone()),
            address,
            uid_seed: incarnation.as_u64_pair().0,
            incarnation,
            runtime: runtime.clone(),
            guardian: Mutex::new(None),
            uid_counter: AtomicU64::new(1),
            anon_counter: AtomicU64::new(0),
            live_actors: AtomicUsize::new(0),
            restarts: AtomicU64::new(0),
            dead_letters,
            events,
            lifecycle,
            clock,
            blocking: OnceLock::new(),
            deadlines: AskDeadlines::new(runtime.clone()),
            readiness: Mutex::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
            terminated: watch::channel(false).0,
            finished: Notify::new(),
            finish_waiters: AtomicUsize::new(0),
            config,
        });
        let system = ActorSystem { inner };
        let strategy = system.inner.config.guardian_strategy.clone();
        let guardian = cell::spawn(
            &system,
            None,
            Some("user"),
            Props::new(move || Guardian {
                strategy: strategy.clone(),
            }),
            None,
        )
        .expect("the guardian's name is valid");
        *lock(&system.inner.guardian) = Some(guardian);
        system.start_clock();
        tracing::debug!(system = %system.inner.address, incarnation = %system.inner.incarnation, "actor system started");
        Ok(system)
    }

    fn start_clock(&self) {
        let tick =
            (self.inner.config.stuck_threshold / 20).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let weak: Weak<SystemInner> = Arc::downgrade(&self.inner);
        let mut terminated = self.inner.terminated.subscribe();
        self.inner.runtime.spawn(async move {
            let mut ticks = tokio::time::interval(tick);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = ticks.tick() => match weak.upgrade() {
                        Some(inner) => inner.clock.update(),
                        None => return,
                    },
                    _ = terminated.wait_for(|t| *t) => return,
                }
            }
        });
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// The address in this system's actor paths.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// A random id for this run of the system; a restarted system has a new one.
    pub fn incarnation(&self) -> Uuid {
        self.inner.incarnation
    }

    /// The configuration the system was built from.
    pub fn config(&self) -> &SystemConfig {
        &self.inner.config
    }

    /// Spawns a top-level actor at `/user/<name>`, supervised by the user guardian.
    ///
    /// # Errors
    /// See [`SpawnError`]: an invalid or taken name, or the system is shutting down.
    pub fn spawn<A: Actor>(&self, name: &str, props: Props<A>) -> Result<ActorRef<A::Msg>, SpawnError> {
        let guardian = self.guardian().ok_or(SpawnError::ShuttingDown)?;
        cell::spawn(self, Some(&guardian), Some(name), props, None)
            .map(ActorRef::local)
            .map_err(shutting_down_if_guardian_closed)
    }

    /// Spawns a top-level actor with a generated name.
    pub fn spawn_anonymous<A: Actor>(&self, props: Props<A>) -> Result<ActorRef<A::Msg>, SpawnError> {
        let guardian = self.guardian().ok_or(SpawnError::ShuttingDown)?;
        cell::spawn(self, Some(&guardian), None, props, None)
            .map(ActorRef::local)
            .map_err(shutting_down_if_guardian_closed)
    }

    /// Spawns a top-level router; see [`RouterConfig`].
    pub fn spawn_router<M: Send + 'static>(
        &self,
        name: &str,
        config: RouterConfig<M>,
    ) -> Result<Router<M>, SpawnError> {
        let guardian = self.guardian().ok_or(SpawnError::ShuttingDown)?;
        routing::spawn_router(self, &guardian, Some(name), config).map_err(shutting_down_if_guardian_closed)
    }

    /// Finds the actor at `path` and returns a ref typed for `M`.
    ///
    /// `path` is a full path (`compaktor://sys@host:port/user/a/b`, optionally
    /// with `#uid`), or one relative to the root (`/user/a/b`).
    ///
    /// # Errors
    /// [`LookupError::NotFound`], [`LookupError::WrongType`] (the actor takes
    /// another message type), [`LookupError::InvalidPath`], or
    /// [`LookupError::NotLocal`] for a path of another system.
    pub fn lookup<M: Send + 'static>(&self, path: &str) -> Result<ActorRef<M>, LookupError> {
        self.lookup_any(path)?.downcast()
    }

    /// Finds the actor at `path`, whatever its message type.
    pub fn lookup_any(&self, path: &str) -> Result<AnyActorRef, LookupError> {
        let not_found = || LookupError::NotFound(path.to_owned());
        let (names, uid): (Vec<String>, u64) = if path.contains("://") {
            let parsed: ActorPath = path.parse()?;
            if parsed.address() != self.address() {
                return Err(LookupError::NotLocal(path.to_owned()));
            }
            (parsed.elements().into_iter().map(str::to_owned).collect(), parsed.uid())
        } else {
            let (names, uid) = match path.split_once('#') {
                Some((names, uid)) => (names, uid.parse().map_err(|_| not_found())?),
                None => (path, 0),
            };
            (
                names.split('/').filter(|n| !n.is_empty()).map(str::to_owned).collect(),
                uid,
            )
        };
        let mut names = names.iter();
        if names.next().map(String::as_str) != Some("user") {
            return Err(not_found());
        }
        let mut cell = self.guardian().ok_or_else(not_found)?;
        for name in names {
            let child = lock(&cell.core().children).get(name).ok_or_else(not_found)?;
            cell = child;
        }
        if uid != 0 && cell.core().path.uid() != uid {
            return Err(not_found());
        }
        Ok(AnyActorRef::from_cell(cell))
    }

    /// The event stream.
    pub fn event_stream(&self) -> &EventStream {
        &self.inner.events
    }

    /// Dead letters counted since start.
    pub fn dead_letter_stats(&self) -> DeadLetterStats {
        self.inner.dead_letters.stats()
    }

    /// Actors alive now (not counting the user guardian).
    pub fn live_actors(&self) -> usize {
        self.inner.live_actors.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Registers a readiness check, run by every [`health`](Self::health)
    /// call with the `readiness_timeout`. The system reports unhealthy while
    /// any check fails.
    pub fn add_readiness_check<F, Fut>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ActorError>> + Send + 'static,
    {
        lock(&self.inner.readiness).push(ReadinessCheck::new(name.into(), check));
    }

    /// Stops every actor (children before parents, every `post_stop` run)
    /// and waits until they are gone. Calling it again waits again.
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`] if actors are still running after the
    /// configured `shutdown_timeout`; they keep stopping in the background.
    pub async fn shutdown(&self) -> Result<(), ShutdownError> {
        if !self.inner.shutting_down.swap(true, Ordering::AcqRel) {
            tracing::debug!(system = %self.inner.address, "shutting down");
            if let Some(guardian) = self.guardian() {
                let _ = guardian.send_system(SystemMsg::Stop { failure: None });
            }
        }
        tokio::time::timeout(self.inner.config.shutdown_timeout, self.when_terminated())
            .await
            .map_err(|_| ShutdownError::Timeout {
                live_actors: self.live_actors(),
            })
    }

    /// Resolves once every actor has stopped: after `shutdown`, or after a
    /// failure escalated past the user guardian.
    pub async fn when_terminated(&self) {
        let mut terminated = self.inner.terminated.subscribe();
        let _ = terminated.wait_for(|t| *t).await;
    }

    /// Whether every actor has stopped.
    pub fn is_terminated(&self) -> bool {
        *self.inner.terminated.borrow()
    }

    // ---- for the rest of the crate ----

    pub(crate) fn inner(&self) -> &SystemInner {
        &self.inner
    }

    pub(crate) fn guardian(&self) -> Option<Arc<dyn ErasedCell>> {
        lock(&self.inner.guardian).clone()
    }

    pub(crate) fn root_path(&self) -> &ActorPath {
        &self.inner.root
    }

    pub(crate) fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    pub(crate) fn ask_deadlines(&self) -> &Arc<AskDeadlines> {
        &self.inner.deadlines
    }

    /// A fresh uid: unique within this incarnation, unpredictable across incarnations.
    pub(crate) fn next_uid(&self) -> u64 {
        loop {
            let n = self.inner.uid_counter.fetch_add(1, Ordering::Relaxed);
            let uid = splitmix64(self.inner.uid_seed ^ n);
            if uid != 0 {
                return uid;
            }
        }
    }

    /// `$a`, `$b`, ... `$ba`, ...: generated names, never valid user names.
    pub(crate) fn anonymous_name<'b>(&self, name: &'b mut [u8; 16]) -> &'b str {
        const DIGITS: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut n = self.inner.anon_counter.fetch_add(1, Ordering::Relaxed);
        name[0] = b'$';
        let mut len = 1;
        loop {
            name[len] = DIGITS[(n % 36) as usize];
            len += 1;
            n /= 36;
            if n == 0 {
                break;
            }
        }
        std::str::from_utf8(&name[..len]).expect("ASCII")
    }

    /// Starts the blocking pool if this is its first actor.
    pub(crate) fn ensure_dispatcher(&self, dispatcher: Dispatcher) -> Result<(), SpawnError> {
        if dispatcher == Dispatcher::Blocking && self.inner.blocking.get().is_none() {
            let pool = BlockingPool::start(
                &self.inner.config.name,
                self.inner.config.blocking_threads,
                &self.inner.runtime,
            )
            .map_err(|error| SpawnError::BlockingPoolUnavailable(error.kind()))?;
            // Two first actors may race: the loser's threads end when its pool drops.
            let _ = self.inner.blocking.set(pool);
        }
        Ok(())
    }

    /// Runs an actor's task; [`ensure_dispatcher`](Self::ensure_dispatcher) ran first.
    pub(crate) fn dispatch(&self, dispatcher: Dispatcher, task: impl Future<Output = ()> + Send + 'static) {
        match (dispatcher, self.inner.blocking.get()) {
            (Dispatcher::Blocking, Some(pool)) => pool.spawn(task),
            _ => {
                self.inner.runtime.spawn(task);
            }
        }
    }

    pub(crate) fn dead_letters(&self) -> &DeadLetterOffice {
        &self.inner.dead_letters
    }

    pub(crate) fn lifecycle_topic(&self) -> &Topic<LifecycleEvent> {
        &self.inner.lifecycle
    }

    pub(crate) fn clock_ticks(&self) -> u64 {
        self.inner.clock.ticks.load(Ordering::Relaxed)
    }

    /// Milliseconds a handler that started at `ticks` has been running.
    pub(crate) fn busy_for_ms(&self, ticks: u64) -> u64 {
        self.clock_ticks().saturating_sub(ticks)
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.inner.clock.start.elapsed()
    }

    pub(crate) fn actor_started(&self) {
        self.inner.live_actors.fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes `msg`, bound for `recipient`, as a dead letter. For
    /// transports and other extensions that fail to deliver a message.
    pub fn dead_letter<M: Send + 'static>(
        &self,
        recipient: &ActorPath,
        sender: Option<ActorPath>,
        msg: M,
        reason: DeadLetterReason,
    ) {
        self.inner.dead_letters.publish(recipient, sender, msg, reason);
    }

    pub(crate) fn actor_stopped(&self) {
        self.inner.live_actors.fetch_sub(1, Ordering::Relaxed);
    }

    /// Marks `cell` entirely gone and wakes [`until_finished`](Self::until_finished).
    pub(crate) fn actor_finished(&self, cell: &dyn ErasedCell) {
        // SeqCst on both sides: a waiter that missed the flag is registered
        // before we look for waiters.
        cell.consumer().finished.store(true, Ordering::SeqCst);
        if self.inner.finish_waiters.load(Ordering::SeqCst) > 0 {
            self.inner.finished.notify_waiters();
        }
    }

    /// Resolves once `cell`, whose mailbox has closed, is entirely gone: a
    /// `Terminated` must not overtake the bookkeeping that follows the close.
    pub(crate) async fn until_finished(&self, cell: &dyn ErasedCell) {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let finished = &cell.consumer().finished;
        if finished.load(Ordering::SeqCst) {
            return;
        }
        self.inner.finish_waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.inner.finish_waiters);
        loop {
            let notified = self.inner.finished.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if finished.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn record_restart(&self) {
        self.inner.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn guardian_terminated(&self) {
        lock(&self.inner.guardian).take();
        if let Some(pool) = self.inner.blocking.get() {
            pool.close();
        }
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.terminated.send_replace(true);
        tracing::debug!(system = %self.inner.address, "actor system terminated");
    }
}

fn shutting_down_if_guardian_closed(error: SpawnError) -> SpawnError {
    match error {
        SpawnError::ParentStopping => SpawnError::ShuttingDown,
        other => other,
    }
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("address", &self.inner.address)
            .field("incarnation", &self.inner.incarnation)
            .field("live_actors", &self.live_actors())
            .finish()
    }
}
