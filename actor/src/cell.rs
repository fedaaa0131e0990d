//! The actor cell: what a live actor shares with the refs that point at it.
//!
//! A `Cell<M>` holds the mailbox and the untyped `CellCore` (path, parent,
//! children, statistics). Refs and the actor's task share it; the actor's
//! state and behaviour live only in its task (see `runner`).

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use crate::actor::Actor;
use crate::children::{self, Children};
use crate::dead_letter::DeadLetterReason;
use crate::error::SpawnError;
use crate::mailbox::{lock, ConsumerSide, Envelope, Mailbox, Rejected};
use crate::path::{validate_name, ActorPath};
use crate::props::Props;
use crate::runner;
use crate::supervision::Failure;
use crate::system::ActorSystem;
use crate::system_msg::SystemMsg;
use crate::task::{current_sender, ActorTask};

// `repr(C)` keeps the cold core between what senders touch (the mailbox's
// lock) and what the actor writes per message (`hot`).
#[repr(C)]
pub(crate) struct Cell<M> {
    pub(crate) mailbox: Mailbox<M>,
    pub(crate) core: CellCore,
    pub(crate) hot: ConsumerSide,
}

pub(crate) struct CellCore {
    pub(crate) path: ActorPath,
    pub(crate) system: ActorSystem,
    pub(crate) parent: Option<Arc<dyn ErasedCell>>,
    pub(crate) children: Mutex<Children>,
    /// Set once, before the mailbox closes, so a late watcher learns the
    /// reason (the failure, or `None` for a plain stop); the actor is gone
    /// only once `hot.finished` is set.
    pub(crate) stop_reason: OnceLock<Option<Failure>>,
    /// How refs to this actor are built when it is not reached through its
    /// own mailbox (a router's cell hands out routing refs).
    pub(crate) public: Option<Box<PublicRef>>,
}

pub(crate) struct PublicRef {
    pub(crate) message_type: &'static str,
    pub(crate) make: Box<dyn Fn() -> Option<Box<dyn Any + Send>> + Send + Sync>,
}

/// A cell with its message type erased: what parents, watchers and look-ups hold.
pub(crate) trait ErasedCell: Send + Sync + 'static {
    fn core(&self) -> &CellCore;
    fn consumer(&self) -> &ConsumerSide;
    fn send_system(&self, msg: SystemMsg) -> Result<(), SystemMsg>;
    fn mailbox_depth(&self) -> usize;
    /// Clock tick at which the running handler started; 0 when idle.
    fn busy_since(&self) -> u64;
    fn message_type(&self) -> &'static str;
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<M: Send + 'static> ErasedCell for Cell<M> {
    fn core(&self) -> &CellCore {
        &self.core
    }

    fn consumer(&self) -> &ConsumerSide {
        &self.hot
    }

    fn send_system(&self, msg: SystemMsg) -> Result<(), SystemMsg> {
        self.mailbox.push_system(&self.hot, msg)
    }

    fn mailbox_depth(&self) -> usize {
        self.mailbox.depth(&self.hot)
    }

    fn busy_since(&self) -> u64 {
        self.hot.busy_since.load(Ordering::Relaxed)
    }

    fn message_type(&self) -> &'static str {
        match &self.core.public {
            Some(public) => public.message_type,
            None => std::any::type_name::<M>(),
        }
    }

    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// Whether two erased cells are the same cell (data pointers, not vtables).
pub(crate) fn same_cell(a: &Arc<dyn ErasedCell>, b: &Arc<dyn ErasedCell>) -> bool {
    std::ptr::eq(Arc::as_ptr(a) as *const (), Arc::as_ptr(b) as *const ())
}

impl<M: Send + 'static> Cell<M> {
    /// Delivers a user message without waiting; whatever cannot be delivered
    /// becomes a dead letter, and the reason is returned.
    pub(crate) fn tell(&self, msg: M) -> Result<(), DeadLetterReason> {
        self.settle(self.mailbox.push(Envelope::User(msg)))
    }

    /// Turns the outcome of a push into delivery or dead letters.
    pub(crate) fn settle(&self, pushed: Result<(), Rejected<M>>) -> Result<(), DeadLetterReason> {
        pushed.map_err(|rejected| self.reject(rejected))
    }

    /// Dead-letters whatever user messages are still queued.
    pub(crate) fn drain_to_dead_letters(&self) {
        for env in self.mailbox.drain_user() {
            self.dead_letter(env, DeadLetterReason::StoppedBeforeHandled);
        }
    }

    /// Publishes a rejected envelope as a dead letter.
    pub(crate) fn reject(&self, rejected: Rejected<M>) -> DeadLetterReason {
        match rejected {
            Rejected::Full(env) => self.dead_letter(env, DeadLetterReason::MailboxFull),
            Rejected::Closed(env) => self.dead_letter(env, DeadLetterReason::RecipientStopped),
        }
    }

    pub(crate) fn dead_letter(&self, env: Envelope<M>, reason: DeadLetterReason) -> DeadLetterReason {
        dead_letter(&self.core, env, reason)
    }
}

/// Publishes an undeliverable envelope addressed to `core`'s actor as a
/// dead letter (timer firings are dropped: they are not messages anyone sent).
pub(crate) fn dead_letter<M: Send + 'static>(
    core: &CellCore,
    env: Envelope<M>,
    reason: DeadLetterReason,
) -> DeadLetterReason {
    if let Envelope::User(msg) = env {
        dead_letter_msg(core, msg, reason);
    }
    reason
}

/// Publishes `msg` as a dead letter. A send that fails at once runs in the
/// sender's task, so the sender is known; a message drained from a stopping
/// actor's mailbox no longer knows who sent it (envelopes do not carry
/// senders: that would cost every message a reference count).
pub(crate) fn dead_letter_msg<M: Send + 'static>(core: &CellCore, msg: M, reason: DeadLetterReason) {
    let sender = match reason {
        DeadLetterReason::StoppedBeforeHandled => None,
        _ => current_sender(),
    };
    core.system.dead_letters().publish(&core.path, sender, msg, reason);
}

/// Spawns an actor: creates its cell, registers it with its parent and
/// starts its task on the dispatcher its props name.
pub(crate) fn spawn<A: Actor>(
    system: &ActorSystem,
    parent: Option<&Arc<dyn ErasedCell>>,
    name: Option<&str>,
    props: Props<A>,
    public: Option<Box<PublicRef>>,
) -> Result<Arc<Cell<A::Msg>>, SpawnError> {
    let mut generated = [0; 16];
    let name = match name {
        Some(name) => {
            validate_name(name).map_err(|why| SpawnError::InvalidName {
                name: name.to_owned(),
                why,
            })?;
            name
        }
        None => system.anonymous_name(&mut generated),
    };
    system.ensure_dispatcher(props.dispatcher)?;
    let uid = system.next_uid();
    let path = match parent {
        Some(parent) => parent.core().path.child(name, uid),
        None => system.root_path().child(name, uid),
    };
    let mailbox = Mailbox::new(
        props.mailbox.unwrap_or(system.config().default_mailbox),
        props.shared.clone(),
    );
    let cell = Arc::new(Cell {
        core: CellCore {
            path,
            system: system.clone(),
            parent: parent.cloned(),
            children: Mutex::new(Children::default()),
            stop_reason: OnceLock::new(),
            public,
        },
        mailbox,
        hot: ConsumerSide::new(children::name_hash(name)),
    });
    if let Some(parent) = parent {
        lock(&parent.core().children).insert(parent.consumer(), cell.clone())?;
    }
    system.actor_started();
    let dispatcher = props.dispatcher;
    let task = ActorTask::new(cell.core.path.clone(), runner::run(cell.clone(), props));
    system.dispatch(dispatcher, task);
    Ok(cell)
}
