//! Actor references: the only way to reach an actor.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::cell::{Cell, ErasedCell};
use crate::context::stop_reason_of;
use crate::dead_letter::DeadLetterReason;
use crate::error::{AskError, LookupError, SendError, TryTellError};
use crate::mailbox::{Envelope, OverflowPolicy, Rejected};
use crate::path::ActorPath;
use crate::reply::{self, NoAnswer, ReplyTo};
use crate::routing::RouterShared;
use crate::system_msg::{SystemMsg, Watcher};
use crate::task::current_sender;
use crate::transport::{BoxFuture, RemoteRoute};
use crate::watch::{StopReason, Terminated};

/// A typed address of an actor that handles messages of type `M`.
///
/// Cheap to clone (one reference count), `Send + Sync`, `Eq + Hash` by
/// path, and displayed as its path. A ref is a path plus a route: today the
/// route is the actor's mailbox or a router; user code never branches on
/// which, so the same code keeps working when the route becomes a network
/// connection.
///
/// # Delivery
/// At most once, in order per sender. `tell` never waits and never fails
/// visibly: what cannot be delivered is published as a
/// [`DeadLetter`](crate::DeadLetter). `try_tell` and `send` hand an
/// undelivered message back instead.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, ReplyTo, SystemConfig};
///
/// enum Msg { Add(u64), Get(ReplyTo<u64>) }
///
/// #[derive(Default)]
/// struct Counter(u64);
///
/// impl Actor for Counter {
///     type Msg = Msg;
///     async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         match msg {
///             Msg::Add(n) => self.0 += n,
///             Msg::Get(reply) => { let _ = reply.send(self.0); }
///         }
///         Ok(())
///     }
/// }
///
/// let system = ActorSystem::new(SystemConfig::new("docs"))?;
/// let counter = system.spawn("counter", Props::<Counter>::default())?;
/// counter.tell(Msg::Add(2));
/// counter.tell(Msg::Add(3));
/// assert_eq!(counter.ask(Msg::Get, Duration::from_secs(1)).await?, 5);
/// assert!(counter.path().to_string().starts_with("compaktor://docs@"));
/// system.shutdown().await?;
/// # Ok(())
/// # }
/// ```
pub struct ActorRef<M> {
    route: Route<M>,
}

pub(crate) enum Route<M> {
    /// The actor's own mailbox.
    Local(Arc<Cell<M>>),
    /// A router: the message goes straight to a routee chosen in the sender's task.
    Router(Arc<RouterShared<M>>),
    /// An actor on another node, reached through a transport.
    Remote(Arc<dyn RemoteRoute<M>>),
}

impl<M> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        ActorRef {
            route: match &self.route {
                Route::Local(cell) => Route::Local(cell.clone()),
                Route::Router(router) => Route::Router(router.clone()),
                Route::Remote(remote) => Route::Remote(remote.clone()),
            },
        }
    }
}

impl<M: Send + 'static> ActorRef<M> {
    pub(crate) fn local(cell: Arc<Cell<M>>) -> Self {
        ActorRef {
            route: Route::Local(cell),
        }
    }

    pub(crate) fn router(router: Arc<RouterShared<M>>) -> Self {
        ActorRef {
            route: Route::Router(router),
        }
    }

    /// A ref to an actor on another node; for transports (see
    /// [`transport`](crate::transport)).
    pub fn remote(route: Arc<dyn RemoteRoute<M>>) -> Self {
        ActorRef {
            route: Route::Remote(route),
        }
    }

    /// What stops and watches the actor, whatever its route.
    fn target(&self) -> Target {
        match &self.route {
            Route::Local(cell) => Target::Local(cell.clone()),
            Route::Router(router) => Target::Local(router.cell()),
            Route::Remote(remote) => Target::Remote(Arc::new(RemoteTarget(remote.clone()))),
        }
    }

    /// The actor's path.
    pub fn path(&self) -> &ActorPath {
        match &self.route {
            Route::Local(cell) => &cell.core.path,
            Route::Router(router) => router.path(),
            Route::Remote(remote) => remote.path(),
        }
    }

    /// Whether the actor lives on another node.
    pub fn is_remote(&self) -> bool {
        matches!(self.route, Route::Remote(_))
    }

    /// Sends a message without waiting. If it cannot be delivered (the actor
    /// stopped, or its bounded mailbox is full) it becomes a dead letter.
    pub fn tell(&self, msg: M) {
        let _ = self.deliver(msg);
    }

    /// Sends without waiting; dead-letters on failure and says why.
    pub(crate) fn deliver(&self, msg: M) -> Result<(), DeadLetterReason> {
        match &self.route {
            Route::Local(cell) => cell.tell(msg),
            Route::Router(router) => router.route(msg),
            Route::Remote(remote) => remote.tell(msg).map_err(|(msg, reason)| {
                remote
                    .system()
                    .dead_letter(remote.path(), current_sender(), msg, reason);
                reason
            }),
        }
    }

    /// Sends a message without waiting, handing it back if the mailbox is
    /// full or the actor has stopped.
    ///
    /// # Errors
    /// [`TryTellError::Full`] or [`TryTellError::Closed`], with the message.
    pub fn try_tell(&self, msg: M) -> Result<(), TryTellError<M>> {
        match &self.route {
            Route::Local(cell) => match cell.mailbox.push(Envelope::User(msg)) {
                Ok(()) => Ok(()),
                Err(Rejected::Full(env)) => Err(TryTellError::Full(into_msg(env))),
                Err(Rejected::Closed(env)) => Err(TryTellError::Closed(into_msg(env))),
            },
            Route::Router(router) => router.try_route(msg),
            Route::Remote(remote) => remote
                .tell(msg)
                .map_err(|(msg, reason)| TryTellError::refused(msg, reason)),
        }
    }

    /// Sends a message, applying the recipient's overflow policy when its
    /// bounded mailbox is full: wait for room, dead-letter the message, or
    /// fail. On an unbounded mailbox this completes at once.
    ///
    /// # Errors
    /// [`SendError::Closed`] if the actor has stopped; [`SendError::Full`]
    /// under [`OverflowPolicy::Fail`]. Both hand the message back.
    ///
    /// # Cancel safety
    /// Not cancel safe: cancelling while waiting for room drops the message.
    pub async fn send(&self, msg: M) -> Result<(), SendError<M>> {
        let cell = match &self.route {
            Route::Local(cell) => cell,
            Route::Router(router) => {
                return router.try_route(msg).map_err(|e| match e {
                    TryTellError::Full(m) => SendError::Full(m),
                    e => SendError::Closed(e.into_inner()),
                })
            }
            Route::Remote(remote) => return remote.tell(msg).map_err(|(m, why)| SendError::refused(m, why)),
        };
        let env = Envelope::User(msg);
        let pushed = match cell.mailbox.policy() {
            Some(OverflowPolicy::WaitForRoom) => cell.mailbox.push_wait(env).await,
            _ => cell.mailbox.push(env),
        };
        match pushed {
            Ok(()) => Ok(()),
            Err(Rejected::Full(env)) if cell.mailbox.policy() == Some(OverflowPolicy::DropNewest) => {
                cell.dead_letter(env, DeadLetterReason::MailboxFull);
                Ok(())
            }
            Err(Rejected::Full(env)) => Err(SendError::Full(into_msg(env))),
            Err(Rejected::Closed(env)) => Err(SendError::Closed(into_msg(env))),
        }
    }

    /// Sends a request built around a fresh [`ReplyTo`] and waits up to
    /// `timeout` for the answer.
    ///
    /// `make` builds the message; a tuple variant like `Msg::Get` is such a
    /// function. On a bounded mailbox with [`OverflowPolicy::WaitForRoom`],
    /// waiting for room counts against the timeout.
    ///
    /// # Errors
    /// [`AskError::Timeout`], [`AskError::Terminated`] (the actor is or went
    /// dead before answering), [`AskError::MailboxFull`], or
    /// [`AskError::NoReply`] (the handler dropped the reply handle). An
    /// undelivered request is also published as a dead letter.
    pub async fn ask<R, F>(&self, make: F, timeout: Duration) -> Result<R, AskError>
    where
        R: Send + 'static,
        F: FnOnce(ReplyTo<R>) -> M,
    {
        match &self.route {
            Route::Local(cell) => ask_local(cell, make, timeout).await,
            Route::Router(router) => router.ask(make, timeout).await,
            Route::Remote(remote) => ask_remote(remote, make, timeout).await,
        }
    }

    /// Stops the actor after its current message; its children stop first.
    pub fn stop(&self) {
        self.target().stop();
    }

    /// Resolves with the actor's [`Terminated`] once it has stopped (at once
    /// if it already has). The watch starts when this is called, not when
    /// the future is first polled.
    pub fn terminated(&self) -> impl Future<Output = Terminated> + Send + 'static {
        self.target().terminated()
    }

    /// Whether the actor has terminated.
    pub fn is_terminated(&self) -> bool {
        // Checked per message by transports: no reference count touched.
        match &self.route {
            Route::Local(cell) => cell.hot.finished.load(Ordering::SeqCst),
            Route::Router(router) => router.cell().consumer().finished.load(Ordering::SeqCst),
            Route::Remote(remote) => remote.is_terminated(),
        }
    }

    /// This ref with its message type erased.
    pub fn as_any(&self) -> AnyActorRef {
        AnyActorRef { target: self.target() }
    }

    /// Messages waiting in the actor's mailbox (0 for a router).
    pub fn mailbox_depth(&self) -> usize {
        match &self.route {
            Route::Local(cell) => cell.mailbox.depth(&cell.hot),
            Route::Router(_) | Route::Remote(_) => 0,
        }
    }

    pub(crate) fn router_shared(&self) -> Option<Arc<RouterShared<M>>> {
        match &self.route {
            Route::Router(shared) => Some(shared.clone()),
            Route::Local(_) | Route::Remote(_) => None,
        }
    }

    /// Whether the actor is running a handler right now.
    pub(crate) fn is_busy(&self) -> bool {
        match &self.route {
            Route::Local(cell) => cell.hot.busy_since.load(std::sync::atomic::Ordering::Relaxed) != 0,
            Route::Router(_) | Route::Remote(_) => false,
        }
    }
}

fn into_msg<M>(env: Envelope<M>) -> M {
    match env {
        Envelope::User(msg) => msg,
        Envelope::Timer(_) => unreachable!("timer envelopes are never handed back"),
    }
}

async fn ask_local<M, R, F>(cell: &Arc<Cell<M>>, make: F, timeout: Duration) -> Result<R, AskError>
where
    M: Send + 'static,
    R: Send + 'static,
    F: FnOnce(ReplyTo<R>) -> M,
{
    let (reply, answer) = reply::pair();
    let env = Envelope::User(make(reply));
    let no_answer = |why| match why {
        NoAnswer::Expired => AskError::Timeout,
        NoAnswer::NoReply if cell.mailbox.is_closed() => AskError::Terminated,
        NoAnswer::NoReply => AskError::NoReply,
    };
    let undelivered = AskError::undelivered;
    if cell.mailbox.policy() == Some(OverflowPolicy::WaitForRoom) {
        // Waiting for room counts against the timeout: a tokio timer covers both.
        let exchange = async {
            cell.settle(cell.mailbox.push_wait(env).await).map_err(undelivered)?;
            answer.await.map_err(no_answer)
        };
        return tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(AskError::Timeout));
    }
    cell.settle(cell.mailbox.push(env)).map_err(undelivered)?;
    cell.core.system.ask_deadlines().register(timeout, answer.expiry());
    answer.await.map_err(no_answer)
}

async fn ask_remote<M, R, F>(remote: &Arc<dyn RemoteRoute<M>>, make: F, timeout: Duration) -> Result<R, AskError>
where
    M: Send + 'static,
    R: Send + 'static,
    F: FnOnce(ReplyTo<R>) -> M,
{
    let (reply, answer) = reply::pair();
    if let Err((msg, reason)) = remote.tell(make(reply)) {
        remote
            .system()
            .dead_letter(remote.path(), current_sender(), msg, reason);
        return Err(AskError::undelivered(reason));
    }
    remote.system().ask_deadlines().register(timeout, answer.expiry());
    answer.await.map_err(|why| match why {
        NoAnswer::Expired => AskError::Timeout,
        NoAnswer::NoReply => AskError::NoReply,
    })
}

/// Watches `cell` from outside any actor.
pub(crate) fn terminated(cell: Arc<dyn ErasedCell>) -> impl Future<Output = Terminated> + Send + 'static {
    let (tx, rx) = oneshot::channel();
    let id = cell.core().system.next_uid();
    let early = match cell.send_system(SystemMsg::Watch(Watcher::Waiter { id, tx })) {
        Ok(()) => None,
        Err(_) => Some(stop_reason_of(&cell)),
    };
    async move {
        let path = cell.core().path.clone();
        match early {
            Some(reason) => {
                cell.core().system.until_finished(&*cell).await;
                Terminated::new(path, reason)
            }
            None => rx
                .await
                .unwrap_or_else(|_| Terminated::new(path, stop_reason_of(&cell))),
        }
    }
}

impl<M> PartialEq for ActorRef<M>
where
    M: Send + 'static,
{
    fn eq(&self, other: &Self) -> bool {
        self.path() == other.path()
    }
}

impl<M: Send + 'static> Eq for ActorRef<M> {}

impl<M: Send + 'static> Hash for ActorRef<M> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.path().hash(state);
    }
}

impl<M: Send + 'static> fmt::Display for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.path(), f)
    }
}

impl<M: Send + 'static> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({})", self.path())
    }
}

/// A ref whose message type is not known statically: what parents see of
/// their children, and what death watch and look-ups work with.
///
/// It can stop and watch the actor; [`downcast`](Self::downcast) recovers
/// the typed [`ActorRef`], checked at run time.
#[derive(Clone)]
pub struct AnyActorRef {
    target: Target,
}

/// What stops and watches an actor: its cell, or a transport's route to it.
#[derive(Clone)]
enum Target {
    Local(Arc<dyn ErasedCell>),
    Remote(Arc<dyn ErasedRemote>),
}

/// A remote route with its message type erased.
trait ErasedRemote: Send + Sync + 'static {
    fn path(&self) -> &ActorPath;
    fn message_type(&self) -> &'static str;
    fn stop(&self);
    fn terminated(&self) -> BoxFuture<Terminated>;
    fn is_terminated(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
}

struct RemoteTarget<M>(Arc<dyn RemoteRoute<M>>);

impl<M: Send + 'static> ErasedRemote for RemoteTarget<M> {
    fn path(&self) -> &ActorPath {
        self.0.path()
    }

    fn message_type(&self) -> &'static str {
        std::any::type_name::<M>()
    }

    fn stop(&self) {
        self.0.stop();
    }

    fn terminated(&self) -> BoxFuture<Terminated> {
        self.0.terminated()
    }

    fn is_terminated(&self) -> bool {
        self.0.is_terminated()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Target {
    fn stop(&self) {
        match self {
            Target::Local(cell) => {
                let _ = cell.send_system(SystemMsg::Stop { failure: None });
            }
            Target::Remote(remote) => remote.stop(),
        }
    }

    fn terminated(&self) -> BoxFuture<Terminated> {
        match self {
            Target::Local(cell) => Box::pin(terminated(cell.clone())),
            Target::Remote(remote) => remote.terminated(),
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            Target::Local(cell) => cell.consumer().finished.load(Ordering::SeqCst),
            Target::Remote(remote) => remote.is_terminated(),
        }
    }
}

impl AnyActorRef {
    pub(crate) fn from_cell(cell: Arc<dyn ErasedCell>) -> Self {
        AnyActorRef {
            target: Target::Local(cell),
        }
    }

    /// The actor's path.
    pub fn path(&self) -> &ActorPath {
        match &self.target {
            Target::Local(cell) => &cell.core().path,
            Target::Remote(remote) => remote.path(),
        }
    }

    /// The Rust type name of the messages the actor takes.
    pub fn message_type(&self) -> &'static str {
        match &self.target {
            Target::Local(cell) => cell.message_type(),
            Target::Remote(remote) => remote.message_type(),
        }
    }

    /// Whether the actor lives on another node.
    pub fn is_remote(&self) -> bool {
        matches!(self.target, Target::Remote(_))
    }

    /// The typed ref, if the actor takes messages of type `M`.
    ///
    /// # Errors
    /// [`LookupError::WrongType`] naming both types.
    pub fn downcast<M: Send + 'static>(&self) -> Result<ActorRef<M>, LookupError> {
        let wrong_type = || LookupError::WrongType {
            path: self.path().to_string(),
            expected: std::any::type_name::<M>(),
            actual: self.message_type(),
        };
        let cell = match &self.target {
            Target::Local(cell) => cell,
            Target::Remote(remote) => {
                return remote
                    .as_any()
                    .downcast_ref::<RemoteTarget<M>>()
                    .map(|r| ActorRef::remote(r.0.clone()))
                    .ok_or_else(wrong_type);
            }
        };
        if let Some(public) = &cell.core().public {
            return (public.make)()
                .and_then(|any| any.downcast::<ActorRef<M>>().ok())
                .map(|r| *r)
                .ok_or_else(wrong_type);
        }
        cell.clone()
            .as_any_arc()
            .downcast::<Cell<M>>()
            .map(ActorRef::local)
            .map_err(|_| wrong_type())
    }

    /// Stops the actor after its current message.
    pub fn stop(&self) {
        self.target.stop();
    }

    /// Resolves with the actor's [`Terminated`]; see [`ActorRef::terminated`].
    pub fn terminated(&self) -> impl Future<Output = Terminated> + Send + 'static {
        self.target.terminated()
    }

    /// Whether the actor has terminated.
    pub fn is_terminated(&self) -> bool {
        self.target.is_terminated()
    }

    /// Resolves once the actor, whose mailbox has closed, is entirely gone.
    pub(crate) fn finished(&self) -> impl Future<Output = ()> + Send + 'static {
        let target = self.target.clone();
        async move {
            match target {
                Target::Local(cell) => cell.core().system.until_finished(&*cell).await,
                Target::Remote(remote) => drop(remote.terminated().await),
            }
        }
    }

    /// Messages waiting in the actor's mailbox (0 for a remote actor).
    pub fn mailbox_depth(&self) -> usize {
        match &self.target {
            Target::Local(cell) => cell.mailbox_depth(),
            Target::Remote(_) => 0,
        }
    }

    /// Registers a watcher; hands back the stop reason if the actor is dead.
    /// A remote actor cannot take the watcher: the caller awaits
    /// [`terminated`](Self::terminated) instead.
    pub(crate) fn add_watcher(&self, watcher: Watcher) -> Result<(), Option<StopReason>> {
        match &self.target {
            Target::Local(cell) => cell
                .send_system(SystemMsg::Watch(watcher))
                .map_err(|_| Some(stop_reason_of(cell))),
            Target::Remote(_) => Err(None),
        }
    }

    pub(crate) fn unwatch_by(&self, watcher: u64) {
        if let Target::Local(cell) = &self.target {
            let _ = cell.send_system(SystemMsg::Unwatch { watcher });
        }
    }
}

impl<M: Send + 'static> From<&ActorRef<M>> for AnyActorRef {
    fn from(r: &ActorRef<M>) -> Self {
        r.as_any()
    }
}

impl<M: Send + 'static> From<ActorRef<M>> for AnyActorRef {
    fn from(r: ActorRef<M>) -> Self {
        r.as_any()
    }
}

impl From<&AnyActorRef> for AnyActorRef {
    fn from(r: &AnyActorRef) -> Self {
        r.clone()
    }
}

impl PartialEq for AnyActorRef {
    fn eq(&self, other: &Self) -> bool {
        self.path() == other.path()
    }
}

impl Eq for AnyActorRef {}

impl Hash for AnyActorRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.path().hash(state);
    }
}

impl fmt::Display for AnyActorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.path(), f)
    }
}

impl fmt::Debug for AnyActorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AnyActorRef({} <{}>)", self.path(), self.message_type())
    }
}
