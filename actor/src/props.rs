//! Props: the recipe for an actor, kept so it can be rebuilt on restart.

use std::fmt;
use std::sync::Arc;

use crate::actor::Actor;
use crate::mailbox::{MailboxConfig, SharedQueue};

/// Builds a fresh actor instance.
pub(crate) type Factory<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// Where an actor's task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Dispatcher {
    /// On the tokio runtime the system was created in (the default).
    #[default]
    Async,
    /// On the system's dedicated blocking pool (`blocking_threads` OS
    /// threads), so blocking calls in handlers (files, subprocesses, heavy
    /// compute) never stall the async workers. Actors on one pool thread
    /// share it, so a handler that blocks delays the others on that thread.
    Blocking,
}

/// How to build an actor: a factory, plus mailbox and dispatcher choices.
///
/// The factory is called once at spawn and again for every restart, so a
/// restarted actor starts from fresh state.
///
/// ```
/// use compaktor_actor::{Actor, ActorError, Context, MailboxConfig, OverflowPolicy, Props};
///
/// struct Writer { path: String }
///
/// impl Actor for Writer {
///     type Msg = String;
///     async fn handle(&mut self, line: String, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         std::fs::write(&self.path, line)?; // blocking: fine on the blocking pool
///         Ok(())
///     }
/// }
///
/// let props = Props::new(|| Writer { path: "/tmp/out.txt".into() })
///     .with_mailbox(MailboxConfig::bounded(100, OverflowPolicy::WaitForRoom))
///     .on_blocking_pool();
/// # let _ = props;
/// ```
pub struct Props<A: Actor> {
    factory: Factory<A>,
    pub(crate) mailbox: Option<MailboxConfig>,
    pub(crate) dispatcher: Dispatcher,
    pub(crate) shared: Option<Arc<SharedQueue<A::Msg>>>,
}

impl<A: Actor> Props<A> {
    /// Props that build the actor with `factory`.
    pub fn new(factory: impl Fn() -> A + Send + Sync + 'static) -> Self {
        Props {
            factory: Arc::new(factory),
            mailbox: None,
            dispatcher: Dispatcher::Async,
            shared: None,
        }
    }

    /// Uses this mailbox instead of the system's default.
    pub fn with_mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = Some(mailbox);
        self
    }

    /// Runs the actor on this dispatcher.
    pub fn with_dispatcher(mut self, dispatcher: Dispatcher) -> Self {
        self.dispatcher = dispatcher;
        self
    }

    /// Runs the actor on the system's blocking pool; see [`Dispatcher::Blocking`].
    pub fn on_blocking_pool(self) -> Self {
        self.with_dispatcher(Dispatcher::Blocking)
    }

    pub(crate) fn with_shared_queue(mut self, queue: Arc<SharedQueue<A::Msg>>) -> Self {
        self.shared = Some(queue);
        self
    }

    /// What the actor's task keeps: the factory, for restarts.
    pub(crate) fn into_factory(self) -> Factory<A> {
        self.factory
    }
}

impl<A: Actor + Default> Default for Props<A> {
    fn default() -> Self {
        Props::new(A::default)
    }
}

impl<A: Actor> Clone for Props<A> {
    fn clone(&self) -> Self {
        Props {
            factory: self.factory.clone(),
            mailbox: self.mailbox,
            dispatcher: self.dispatcher,
            shared: self.shared.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for Props<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Props")
            .field("actor", &std::any::type_name::<A>())
            .field("mailbox", &self.mailbox)
            .field("dispatcher", &self.dispatcher)
            .finish()
    }
}
