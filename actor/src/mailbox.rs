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
//!   [`OverflowPolicy`] when full. Allocation is lazy: the mailbox of an
//!   actor that was never sent anything owns no buffer; one that takes
//!   messages one at a time keeps a small chunk (four slots at most) for
//!   the next.
//!
//! Senders append under a short spin lock; the actor takes everything
//! queued in one go and works through that batch without locking, so a
//! busy actor costs its senders one uncontended lock per message and itself
//! one lock per batch. The fields the actor writes per message live on a
//! cache line of their own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::{Semaphore, TryAcquireError};
use tokio::task::coop;

use crate::chunk_queue::{share_spare, ChunkQueue, Spare};
use crate::spin::SpinLock;
use crate::system_msg::{SystemMsg, SystemQueue};

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

/// A user message, or one of the actor's timers firing.
///
/// Only user messages hold a slot of a bounded mailbox: a timer never makes
/// a sender wait or fail.
pub(crate) enum Envelope<M> {
    User(M),
    Timer(u64),
}

/// What the mailbox hands the actor next.
pub(crate) enum Next<M> {
    System(SystemMsg),
    User(Envelope<M>),
}

/// The user messages the actor took out of its mailbox in one go: it works
/// through them without locking.
pub(crate) struct Batch<M> {
    queue: ChunkQueue<Envelope<M>>,
    spare: Spare<Envelope<M>>,
}

impl<M> Batch<M> {
    pub(crate) fn new() -> Self {
        Batch {
            queue: ChunkQueue::new(),
            spare: Vec::new(),
        }
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Envelope<M>> {
        self.queue.drain()
    }
}

/// Why a message was not accepted; the envelope comes back.
pub(crate) enum Rejected<M> {
    Full(Envelope<M>),
    Closed(Envelope<M>),
}

/// What senders touch: the lock, the queue, the waker. The fields the
/// actor writes per message are kept apart, in [`ConsumerSide`].
pub(crate) struct Mailbox<M> {
    inner: SpinLock<Inner<M>>,
    bound: Option<Box<Bound>>,
    shared: Option<Arc<SharedQueue<M>>>,
}

/// Per-message state written by the actor's own task. It must not share a
/// cache line with the [`Mailbox`]'s lock, or every message would pull the
/// lock's line away from the senders; the cell places it after its cold fields.
#[derive(Default)]
pub(crate) struct ConsumerSide {
    /// Set while `inner.system` is non-empty; lets the consumer notice system
    /// messages without taking the lock between user messages.
    system_pending: AtomicBool,
    /// User messages taken out of `inner` by the consumer and not yet handled.
    batch_len: AtomicUsize,
    /// Clock tick at which the running handler started; 0 when idle.
    pub(crate) busy_since: AtomicU64,
    /// Set, under the children lock, once the actor has begun to stop: no
    /// new children. Kept here, in padding, rather than grow every cell.
    pub(crate) children_closed: AtomicBool,
    /// Set once the actor is entirely gone: counted out, leftovers
    /// dead-lettered, watchers told. Also kept in padding.
    pub(crate) finished: AtomicBool,
    /// Set, under the children lock, once the actor needs to hear of every
    /// child's end (it restarts, or keeps restart counts per child); until
    /// then a child that stops spares it the `ChildTerminated`. Also kept
    /// in padding.
    pub(crate) hears_children: AtomicBool,
    /// The hash of the actor's name, for its parent's children table,
    /// which rehashes every child as it grows: read here, it costs no
    /// trip to the path. Also kept in padding.
    pub(crate) name_hash: u32,
}

impl ConsumerSide {
    pub(crate) fn new(name_hash: u32) -> Self {
        ConsumerSide {
            name_hash,
            ..ConsumerSide::default()
        }
    }
}

// The four fields kept in padding must stay there.
const _: () = assert!(std::mem::size_of::<ConsumerSide>() <= 24);

struct Inner<M> {
    user: ChunkQueue<Envelope<M>>,
    spare: Spare<Envelope<M>>,
    system: SystemQueue,
    waker: Option<Waker>,
    closed: bool,
}

struct Bound {
    policy: OverflowPolicy,
    permits: Semaphore,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
            inner: SpinLock::new(Inner {
                user: ChunkQueue::new(),
                spare: Vec::new(),
                system: SystemQueue::default(),
                waker: None,
                closed: false,
            }),
            bound,
            shared,
        }
    }

    pub(crate) fn policy(&self) -> Option<OverflowPolicy> {
        self.bound.as_ref().map(|b| b.policy)
    }

    #[inline]
    pub(crate) fn push(&self, env: Envelope<M>) -> Result<(), Rejected<M>> {
        if let Some(bound) = &self.bound {
            match bound.permits.try_acquire() {
                Ok(permit) => permit.forget(),
                Err(TryAcquireError::NoPermits) => return Err(Rejected::Full(env)),
                Err(TryAcquireError::Closed) => return Err(Rejected::Closed(env)),
            }
        }
        self.enqueue(env)
    }

    pub(crate) async fn push_wait(&self, env: Envelope<M>) -> Result<(), Rejected<M>> {
        if let Some(bound) = &self.bound {
            match bound.permits.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return Err(Rejected::Closed(env)),
            }
        }
        self.enqueue(env)
    }

    #[inline]
    pub(crate) fn enqueue(&self, env: Envelope<M>) -> Result<(), Rejected<M>> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(Rejected::Closed(env));
        }
        let Inner { user, spare, .. } = &mut *inner;
        user.push_back(env, spare);
        let waker = inner.waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    pub(crate) fn push_system(&self, hot: &ConsumerSide, msg: SystemMsg) -> Result<(), SystemMsg> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(msg);
        }
        inner.system.push_back(msg);
        hot.system_pending.store(true, Ordering::Release);
        let waker = inner.waker.take();
        drop(inner);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// The next user message the actor already took out of the mailbox,
    /// unless a system message is waiting: the actor's fast path, no locking.
    #[inline]
    pub(crate) fn next_taken(&self, hot: &ConsumerSide, batch: &mut Batch<M>) -> Option<Envelope<M>> {
        if hot.system_pending.load(Ordering::Acquire) {
            return None;
        }
        let env = batch.queue.pop_front(&mut batch.spare)?;
        self.taken(hot, &env, batch.queue.len());
        Some(env)
    }

    /// The next message for the actor: system messages first, then (when
    /// `accept_user`) user messages, taking everything queued in one go into
    /// `batch`, or from the shared queue of a balancing pool (where `id`
    /// names this consumer).
    ///
    /// Called only by the actor's own task.
    pub(crate) fn poll_next(
        &self,
        hot: &ConsumerSide,
        cx: &mut Context<'_>,
        batch: &mut Batch<M>,
        accept_user: bool,
        id: u64,
    ) -> Poll<Next<M>> {
        let coop = std::task::ready!(coop::poll_proceed(cx));
        let mut inner = self.inner.lock();
        if let Some(msg) = inner.system.pop_front() {
            if inner.system.is_empty() {
                hot.system_pending.store(false, Ordering::Release);
            }
            coop.made_progress();
            return Poll::Ready(Next::System(msg));
        }
        if !accept_user {
            register(&mut inner.waker, cx);
            return Poll::Pending;
        }
        if batch.queue.is_empty() && inner.user.len() == 1 {
            // A lone message (request–reply): take it without swapping
            // queues, and keep its chunk for the next one.
            let env = inner.user.pop_only().expect("one message queued");
            drop(inner);
            self.taken(hot, &env, 0);
            coop.made_progress();
            return Poll::Ready(Next::User(env));
        }
        if batch.queue.is_empty() && !inner.user.is_empty() {
            let Inner { user, spare, .. } = &mut *inner;
            std::mem::swap(user, &mut batch.queue);
            share_spare(&mut batch.spare, spare);
        }
        if let Some(env) = batch.queue.pop_front(&mut batch.spare) {
            drop(inner);
            self.taken(hot, &env, batch.queue.len());
            coop.made_progress();
            return Poll::Ready(Next::User(env));
        }
        register(&mut inner.waker, cx);
        drop(inner);
        if let Some(shared) = &self.shared {
            if let Poll::Ready(Some(env)) = shared.poll_pop(cx, id) {
                coop.made_progress();
                return Poll::Ready(Next::User(env));
            }
        }
        Poll::Pending
    }

    fn taken(&self, hot: &ConsumerSide, env: &Envelope<M>, remaining: usize) {
        hot.batch_len.store(remaining, Ordering::Relaxed);
        if let (Some(bound), Envelope::User(_)) = (&self.bound, env) {
            bound.permits.add_permits(1);
        }
    }

    pub(crate) fn depth(&self, hot: &ConsumerSide) -> usize {
        self.inner.lock().user.len() + hot.batch_len.load(Ordering::Relaxed)
    }

    pub(crate) fn close(&self, hot: &ConsumerSide) -> impl Iterator<Item = SystemMsg> {
        let mut inner = self.inner.lock();
        inner.closed = true;
        hot.system_pending.store(false, Ordering::Release);
        inner.waker = None;
        let mut system = std::mem::take(&mut inner.system);
        drop(inner);
        if let Some(bound) = &self.bound {
            bound.permits.close();
        }
        system.drain()
    }

    /// Takes every user message still queued.
    pub(crate) fn drain_user(&self) -> impl Iterator<Item = Envelope<M>> {
        let mut queued = std::mem::replace(&mut self.inner.lock().user, ChunkQueue::new());
        queued.drain()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    pub(crate) fn shared(&self) -> Option<&Arc<SharedQueue<M>>> {
        self.shared.as_ref()
    }
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
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
                let next = if inner.queue.is_empty() {
                    None
                } else {
                    inner.waiters.pop()
                };
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
        let next = if inner.queue.is_empty() {
            None
        } else {
            inner.waiters.pop()
        };
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
