//! Timers: messages an actor schedules to itself.
//!
//! A timer has a key. Starting a timer with a key already in use replaces
//! the old timer; a cancelled or replaced timer's message is never handled,
//! even if it was already queued. All timers are cancelled when the actor
//! restarts or stops. A periodic timer never queues a second tick while one
//! is still waiting, so a slow actor is not flooded.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;

use crate::cell::Cell;
use crate::mailbox::Envelope;

/// Names a timer. Made from a `&'static str`, a `String` or a `u64`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimerKey(KeyRepr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyRepr {
    Name(Cow<'static, str>),
    Number(u64),
}

impl From<&'static str> for TimerKey {
    fn from(name: &'static str) -> Self {
        TimerKey(KeyRepr::Name(Cow::Borrowed(name)))
    }
}

impl From<String> for TimerKey {
    fn from(name: String) -> Self {
        TimerKey(KeyRepr::Name(Cow::Owned(name)))
    }
}

impl From<u64> for TimerKey {
    fn from(n: u64) -> Self {
        TimerKey(KeyRepr::Number(n))
    }
}

enum Payload<M> {
    Once(Option<M>),
    Periodic(Box<dyn FnMut() -> M + Send>),
}

struct Entry<M> {
    id: u64,
    payload: Payload<M>,
    task: AbortHandle,
    /// A periodic tick is queued and not yet handled.
    queued: Arc<AtomicBool>,
}

/// An actor's timers; reach them with [`Context::timers`](crate::Context::timers).
///
/// ```
/// use std::time::Duration;
/// use compaktor_actor::{Actor, ActorError, Context};
///
/// #[derive(Clone)]
/// enum Msg { Tick, GiveUp }
///
/// struct Poller;
///
/// impl Actor for Poller {
///     type Msg = Msg;
///
///     async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         ctx.timers().start_periodic("poll", Msg::Tick, Duration::from_secs(1));
///         ctx.timers().start_single("deadline", Msg::GiveUp, Duration::from_secs(30));
///         Ok(())
///     }
///
///     async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         match msg {
///             Msg::Tick => println!("polling"),
///             Msg::GiveUp => ctx.timers().cancel("poll"),
///         }
///         Ok(())
///     }
/// }
/// ```
pub struct Timers<M> {
    cell: Weak<Cell<M>>,
    runtime: tokio::runtime::Handle,
    entries: HashMap<TimerKey, Entry<M>>,
    keys_by_id: HashMap<u64, TimerKey>,
    next_id: u64,
}

impl<M: Send + 'static> Timers<M> {
    pub(crate) fn new(cell: &Arc<Cell<M>>) -> Self {
        Timers {
            cell: Arc::downgrade(cell),
            runtime: cell.core.system.runtime().clone(),
            entries: HashMap::new(),
            keys_by_id: HashMap::new(),
            next_id: 1,
        }
    }

    /// Sends `msg` to this actor once, after `delay`.
    pub fn start_single(&mut self, key: impl Into<TimerKey>, msg: M, delay: Duration) {
        let (id, queued) = self.prepare(key.into());
        let cell = self.cell.clone();
        let task = self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(cell) = cell.upgrade() {
                let _ = cell.settle(cell.mailbox.enqueue(Envelope::Timer(id)));
            }
        });
        self.insert(id, Payload::Once(Some(msg)), task.abort_handle(), queued);
    }

    /// Sends a clone of `msg` to this actor every `interval`, the first after one interval.
    pub fn start_periodic(&mut self, key: impl Into<TimerKey>, msg: M, interval: Duration)
    where
        M: Clone,
    {
        let (id, queued) = self.prepare(key.into());
        let cell = self.cell.clone();
        let flag = queued.clone();
        let interval = interval.max(Duration::from_millis(1));
        let task = self.runtime.spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if flag.swap(true, Ordering::AcqRel) {
                    continue;
                }
                let Some(cell) = cell.upgrade() else { return };
                if cell.settle(cell.mailbox.enqueue(Envelope::Timer(id))).is_err() {
                    return;
                }
            }
        });
        self.insert(
            id,
            Payload::Periodic(Box::new(move || msg.clone())),
            task.abort_handle(),
            queued,
        );
    }

    /// Cancels the timer with this key, if any.
    pub fn cancel(&mut self, key: impl Into<TimerKey>) {
        if let Some(entry) = self.entries.remove(&key.into()) {
            entry.task.abort();
            self.keys_by_id.remove(&entry.id);
        }
    }

    /// Whether a timer with this key is scheduled.
    pub fn is_active(&self, key: impl Into<TimerKey>) -> bool {
        self.entries.contains_key(&key.into())
    }

    /// Cancels every timer.
    pub fn cancel_all(&mut self) {
        for (_, entry) in self.entries.drain() {
            entry.task.abort();
        }
        self.keys_by_id.clear();
    }

    fn prepare(&mut self, key: TimerKey) -> (u64, Arc<AtomicBool>) {
        self.cancel(key.clone());
        let id = self.next_id;
        self.next_id += 1;
        self.keys_by_id.insert(id, key);
        (id, Arc::new(AtomicBool::new(false)))
    }

    fn insert(&mut self, id: u64, payload: Payload<M>, task: AbortHandle, queued: Arc<AtomicBool>) {
        let key = self.keys_by_id[&id].clone();
        self.entries.insert(
            key,
            Entry {
                id,
                payload,
                task,
                queued,
            },
        );
    }

    /// The message for a timer firing, or `None` if the timer is gone.
    pub(crate) fn fire(&mut self, id: u64) -> Option<M> {
        let key = self.keys_by_id.get(&id)?;
        let entry = self.entries.get_mut(key)?;
        match &mut entry.payload {
            Payload::Periodic(make) => {
                entry.queued.store(false, Ordering::Release);
                Some(make())
            }
            Payload::Once(msg) => {
                let msg = msg.take();
                let key = self.keys_by_id.remove(&id)?;
                self.entries.remove(&key);
                msg
            }
        }
    }
}

impl<M> Drop for Timers<M> {
    fn drop(&mut self) {
        for entry in self.entries.values() {
            entry.task.abort();
        }
    }
}

impl<M> fmt::Debug for Timers<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers").field("active", &self.entries.len()).finish()
    }
}
