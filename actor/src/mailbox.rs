//! Mailboxes: where messages wait for their actor.
//!
//! Semantics users rely on:
//!
//! - **Order.** Messages from one sender are handled in the order sent.
//!   There is no order between different senders.
//! - **Delivery.** At most once. A message is either handled, or published
//!   as a [`DeadLetter`](crate::DeadLetter), or handed back to the caller in
//!   an error: never dropped unseen.
//! - **System messages first.** Stop, watch, terminated and supervision
//!   signals sit in their own queue and are taken before the next user
//!   message, even with a deep backlog.
//! - **Bounds.** Unbounded by default; a bounded mailbox applies its
//!   [`OverflowPolicy`] when full. Allocation is lazy: an idle actor's
//!   mailbox owns no buffer.
//!
//! User messages travel through a lock-free segmented queue
//! (`crossbeam_queue::SegQueue`); a sender touches the actor's lock only to
//! wake it when it is parked, so a busy actor costs its senders no locking.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use crossbeam_queue::SegQueue;
use tokio::sync::{Semaphore, TryAcquireError};
use tokio::task::coop;

use crate::path::ActorPath;
use crate::spin::SpinLock;
use crate::system_msg::SystemMsg;

/// What a bounded mailbox does when a message arrives and it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverflowPolicy {
    /// [`send`](crate::ActorRef::send) waits for room (backpressure).
    WaitForRoom,
    /// The new message becomes a dead letter; `send` returns `Ok`.
    DropNewest,
    /// `send` fails with [`SendError::Full`](crate::SendError::Full), handing the message back.
    Fail,
}

/// The size limit of an actor's mailbox.
///
/// Whatever the policy, [`tell`](crate::ActorRef::tell) never waits: a full
/// mailbox turns a told message into a dead letter, and
/// [`try_tell`](crate::ActorRef::try_tell) hands it back. The policy decides
/// what [`send`](crate::ActorRef::send) and [`ask`](crate::ActorRef::ask) do.
///
/// ```
/// use compaktor_actor::{MailboxConfig, OverflowPolicy};
///
/// let mailbox = MailboxConfig::bounded(1_000, OverflowPolicy::WaitForRoom);
/// assert_eq!(mailbox.capacity(), Some(1_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MailboxConfig {
    /// No limit (the default).
    #[default]
    Unbounded,
    /// At most `capacity` user messages waiting.
    Bounded {
        /// The most user messages that may wait.
        capacity: usize,
        /// What happens when one more arrives.
        policy: OverflowPolicy,
    },
}

impl MailboxConfig {
    /// A bounded mailbox; a capacity of 0 is raised to 1.
    pub fn bounded(capacity: usize, policy: OverflowPolicy) -> Self {
        MailboxConfig::Bounded {
            capacity: capacity.max(1),
            policy,
        }
    }

    /// The bound, if any.
    pub fn capacity(&self) -> Option<usize> {
        match self {
            MailboxConfig::Unbounded => None,
            MailboxConfig::Bounded { capacity, .. } => Some(*capacity),
        }
    }
}

/// A user message in transit, a timer firing, or a message coming back from the stash.
///
/// Only `User` envelopes hold a slot of a bounded mailbox: timers and
/// unstashed messages never make a sender wait or fail.
pub(crate) enum Envelope<M> {
    User { msg: M, sender: Option<ActorPath> },
    Timer { id: u64 },
    Unstashed { msg: M },
}

/// What the mailbox hands the actor next.
pub(crate) enum Next<M> {
    System(SystemMsg),
    User(Envelope<M>),
}

/// Why a message was not accepted; the envelope comes back.
pub(crate) enum Rejected<M> {
    Full(Envelope<M>),
    Closed(Envelope<M>),
}

/// A message was queued, but the actor closed its mailbox at the same
/// moment: the sender must drain what is left into dead letters
/// ([`Mailbox::drain_user`]), since the actor may already have finished its own drain.
pub(crate) struct RacedWithClose;

pub(crate) struct Mailbox<M> {
    /// User messages; allocated on the first message, so an actor that was
    /// never sent anything owns no queue.
    user: OnceLock<Box<SegQueue<Envelope<M>>>>,
    state: SpinLock<State>,
    /// The actor found nothing to do and is waiting for a wake-up. Senders
    /// read it after pushing; the actor sets it before its last look at the
    /// queue. Both sides use SeqCst, so a message is never left unseen.
    parked: AtomicBool,
    /// No more messages are accepted. Same handshake as `parked`, with `close`.
    closed: AtomicBool,
    /// Set while `state.system` is non-empty, so the actor notices system
    /// messages without taking the lock between user messages.
    system_pending: AtomicBool,
    bound: Option<Box<Bound>>,
    shared: Option<Arc<SharedQueue<M>>>,
}

struct State {
    system: VecDeque<SystemMsg>,
    waker: Option<Waker>,
}

struct Bound {
    policy: OverflowPolicy,
    /// One permit per free slot; permits are forgotten on push and added back
    /// when the actor takes the message.
    permits: Semaphore,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No user code runs while our locks are held, so a poisoned lock still
    // guards consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<M> Mailbox<M> {
    pub(crate) fn new(config: MailboxConfig, shared: Option<Arc<SharedQueue<M>>>) -> Self {
        let bound = match config {
            MailboxConfig::Unbounded => None,
            MailboxConfig::Bounded { capacity, policy } => Some(Box::new(Bound {
                policy,
                permits: Semaphore::new(capacity.min(Semaphore::MAX_PERMITS)),
            })),
        };
        Mailbox {
            user: OnceLock::new(),
            state: SpinLock::new(State {
                system: VecDeque::new(),
                waker: None,
            }),
            parked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            system_pending: AtomicBool::new(false),
            bound,
            shared,
        }
    }

    /// The overflow policy of a bounded mailbox.
    pub(crate) fn policy(&self) -> Option<OverflowPolicy> {
        self.bound.as_ref().map(|b| b.policy)
    }

    /// Enqueues a user message without waiting.
    pub(crate) fn push(&self, env: Envelope<M>) -> Result<Result<(), RacedWithClose>, Rejected<M>> {
        if let Some(bound) = &self.bound {
            match bound.permits.try_acquire() {
                Ok(permit) => permit.forget(),
                Err(TryAcquireError::NoPermits) => return Err(Rejected::Full(env)),
                Err(TryAcquireError::Closed) => return Err(Rejected::Closed(env)),
            }
        }
        self.enqueue(env)
    }

    /// Enqueues a user message, waiting for room in a bounded mailbox.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future while it waits drops the message.
    pub(crate) async fn push_wait(&self, env: Envelope<M>) -> Result<Result<(), RacedWithClose>, Rejected<M>> {
        if let Some(bound) = &self.bound {
            match bound.permits.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return Err(Rejected::Closed(env)),
            }
        }
        self.enqueue(env)
    }

    /// Enqueues without taking a slot of a bounded mailbox (timers).
    pub(crate) fn enqueue(&self, env: Envelope<M>) -> Result<Result<(), RacedWithClose>, Rejected<M>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Rejected::Closed(env));
        }
        self.user.get_or_init(|| Box::new(SegQueue::new())).push(env);
        if self.closed.load(Ordering::SeqCst) {
            return Ok(Err(RacedWithClose));
        }
        if self.parked.load(Ordering::SeqCst) {
            self.unpark();
        }
        Ok(Ok(()))
    }

    fn unpark(&self) {
        let waker = {
            let mut state = self.state.lock();
            self.parked.store(false, Ordering::Relaxed);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Enqueues a system message; it is handed back if the actor has terminated.
    pub(crate) fn push_system(&self, msg: SystemMsg) -> Result<(), SystemMsg> {
        let waker = {
            let mut state = self.state.lock();
            if self.closed.load(Ordering::Relaxed) {
                return Err(msg);
            }
            state.system.push_back(msg);
            self.system_pending.store(true, Ordering::Release);
            self.parked.store(false, Ordering::Relaxed);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    fn pop_user(&self) -> Option<Envelope<M>> {
        let env = self.user.get()?.pop()?;
        if let (Some(bound), Envelope::User { .. }) = (&self.bound, &env) {
            bound.permits.add_permits(1);
        }
        Some(env)
    }

    fn has_user(&self) -> bool {
        self.user.get().is_some_and(|q| !q.is_empty())
    }

    /// The next message for the actor: system messages first, then (when
    /// `accept_user`) user messages from `replay` (unstashed), the queue, or
    /// the shared queue of a balancing pool. `id` names this consumer on the
    /// shared queue.
    ///
    /// Called only by the actor's own task.
    pub(crate) fn poll_next(
        &self,
        cx: &mut Context<'_>,
        replay: &mut VecDeque<Envelope<M>>,
        accept_user: bool,
        id: u64,
    ) -> Poll<Next<M>> {
        let coop = std::task::ready!(coop::poll_proceed(cx));
        if self.system_pending.load(Ordering::Acquire) {
            let mut state = self.state.lock();
            if let Some(msg) = state.system.pop_front() {
                if state.system.is_empty() {
                    self.system_pending.store(false, Ordering::Release);
                }
                coop.made_progress();
                return Poll::Ready(Next::System(msg));
            }
        }
        if accept_user {
            if let Some(env) = replay.pop_front().or_else(|| self.pop_user()) {
                coop.made_progress();
                return Poll::Ready(Next::User(env));
            }
        }
        // Nothing to do: park, then look once more, so that a message pushed
        // while we were parking is not left behind.
        {
            let mut state = self.state.lock();
            if let Some(msg) = state.system.pop_front() {
                if state.system.is_empty() {
                    self.system_pending.store(false, Ordering::Release);
                }
                coop.made_progress();
                return Poll::Ready(Next::System(msg));
            }
            match &state.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => state.waker = Some(cx.waker().clone()),
            }
            self.parked.store(true, Ordering::SeqCst);
        }
        if !accept_user {
            return Poll::Pending;
        }
        if self.has_user() {
            if let Some(env) = self.pop_user() {
                self.parked.store(false, Ordering::Relaxed);
                coop.made_progress();
                return Poll::Ready(Next::User(env));
            }
        }
        if let Some(shared) = &self.shared {
            if let Poll::Ready(Some(env)) = shared.poll_pop(cx, id) {
                self.parked.store(false, Ordering::Relaxed);
                coop.made_progress();
                return Poll::Ready(Next::User(env));
            }
        }
        Poll::Pending
    }

    /// User messages waiting.
    pub(crate) fn depth(&self) -> usize {
        self.user.get().map_or(0, |q| q.len())
    }

    /// Closes the mailbox for good and returns the system messages still queued.
    /// User messages are left for [`drain_user`](Self::drain_user).
    pub(crate) fn close(&self) -> VecDeque<SystemMsg> {
        let system = {
            let mut state = self.state.lock();
            self.closed.store(true, Ordering::SeqCst);
            self.system_pending.store(false, Ordering::Release);
            state.waker = None;
            std::mem::take(&mut state.system)
        };
        if let Some(bound) = &self.bound {
            bound.permits.close();
        }
        system
    }

    /// Takes every queued user message. After `close`, the actor and any
    /// sender that raced with it drain together; each message comes out once.
    pub(crate) fn drain_user(&self) -> impl Iterator<Item = Envelope<M>> + '_ {
        std::iter::from_fn(move || self.user.get()?.pop())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn shared(&self) -> Option<&Arc<SharedQueue<M>>> {
        self.shared.as_ref()
    }
}

/// The one queue that all routees of a balancing pool pull from.
///
/// Routees take one message at a time, so an idle routee always gets the
/// next message while busy ones work.
pub(crate) struct SharedQueue<M> {
    inner: Mutex<SharedInner<M>>,
}

struct SharedInner<M> {
    queue: VecDeque<Envelope<M>>,
    /// Idle consumers, by id.
    waiters: Vec<(u64, Waker)>,
    closed: bool,
}

impl<M> SharedQueue<M> {
    pub(crate) fn new() -> Self {
        SharedQueue {
            inner: Mutex::new(SharedInner {
                queue: VecDeque::new(),
                waiters: Vec::new(),
                closed: false,
            }),
        }
    }

    pub(crate) fn push(&self, env: Envelope<M>) -> Result<(), Envelope<M>> {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Err(env);
        }
        inner.queue.push_back(env);
        let waiter = inner.waiters.pop();
        drop(inner);
        if let Some((_, waker)) = waiter {
            waker.wake();
        }
        Ok(())
    }

    fn poll_pop(&self, cx: &Context<'_>, id: u64) -> Poll<Option<Envelope<M>>> {
        let mut inner = lock(&self.inner);
        inner.waiters.retain(|(waiter, _)| *waiter != id);
        match inner.queue.pop_front() {
            Some(env) => {
                // More work and more idle routees: pass the wake-up on.
                let next = if inner.queue.is_empty() { None } else { inner.waiters.pop() };
                drop(inner);
                if let Some((_, waker)) = next {
                    waker.wake();
                }
                Poll::Ready(Some(env))
            }
            None if inner.closed => Poll::Ready(None),
            None => {
                inner.waiters.push((id, cx.waker().clone()));
                Poll::Pending
            }
        }
    }

    /// A consumer leaves; if work remains, another idle consumer is woken.
    pub(crate) fn leave(&self, id: u64) {
        let mut inner = lock(&self.inner);
        inner.waiters.retain(|(waiter, _)| *waiter != id);
        let next = if inner.queue.is_empty() { None } else { inner.waiters.pop() };
        drop(inner);
        if let Some((_, waker)) = next {
            waker.wake();
        }
    }

    pub(crate) fn close(&self) -> VecDeque<Envelope<M>> {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        let waiters = std::mem::take(&mut inner.waiters);
        let queue = std::mem::take(&mut inner.queue);
        drop(inner);
        waiters.into_iter().for_each(|(_, w)| w.wake());
        queue
    }
}
