//! The system's event stream: publish/subscribe by type.
//!
//! Dead letters ([`DeadLetter`](crate::DeadLetter)), lifecycle events
//! ([`LifecycleEvent`]) and any user type that is `Clone + Send + Sync`
//! travel here. Each subscriber has a bounded buffer (the system's
//! `event_buffer`); a subscriber that falls behind loses the oldest events
//! and is told how many with [`EventStreamError::Lagged`]. Publishing never
//! waits, and costs one atomic load when nobody subscribes.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::actor_ref::ActorRef;
use crate::mailbox::lock;
use crate::path::ActorPath;
use crate::supervision::Failure;
use crate::watch::Terminated;

/// An actor's lifecycle, as seen on the event stream.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// The actor's `pre_start` completed.
    Started(ActorPath),
    /// The actor failed; its supervisor decides what follows.
    Failed(Failure),
    /// The actor was restarted with a fresh instance.
    Restarted(ActorPath),
    /// The actor terminated.
    Stopped(Terminated),
}

/// A subscriber fell behind or the stream is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventStreamError {
    /// This many events were skipped because the subscriber's buffer was full.
    /// The next `recv` continues with the oldest event still buffered.
    #[error("subscriber lagged behind and missed {0} events")]
    Lagged(u64),
    /// The actor system is gone.
    #[error("event stream closed")]
    Closed,
}

pub(crate) struct Topic<E> {
    tx: broadcast::Sender<E>,
    subscribers: AtomicUsize,
}

impl<E: Clone> Topic<E> {
    pub(crate) fn has_subscribers(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn publish(&self, event: E) -> usize {
        if !self.has_subscribers() {
            return 0;
        }
        self.tx.send(event).unwrap_or(0)
    }
}

/// Publish/subscribe by event type.
///
/// Dead letters, lifecycle events and any user type that is
/// `Clone + Send + Sync` travel here. Each subscriber has a bounded buffer
/// (the system's `event_buffer`); a subscriber that falls behind loses the
/// oldest events and is told how many with [`EventStreamError::Lagged`].
/// Publishing never waits, and costs one atomic load when nobody subscribes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use compaktor_actor::{ActorSystem, SystemConfig};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct PriceChanged(u32);
///
/// let system = ActorSystem::new(SystemConfig::new("events")).unwrap();
/// let mut prices = system.event_stream().subscribe::<PriceChanged>();
/// system.event_stream().publish(PriceChanged(42));
/// assert_eq!(prices.recv().await.unwrap(), PriceChanged(42));
/// # system.shutdown().await.unwrap();
/// # }
/// ```
pub struct EventStream {
    topics: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    capacity: usize,
}

impl EventStream {
    pub(crate) fn new(capacity: usize) -> Self {
        EventStream {
            topics: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn topic<E: Clone + Send + Sync + 'static>(&self) -> Arc<Topic<E>> {
        let mut topics = lock(&self.topics);
        let topic = topics.entry(TypeId::of::<E>()).or_insert_with(|| {
            Arc::new(Topic {
                tx: broadcast::channel::<E>(self.capacity).0,
                subscribers: AtomicUsize::new(0),
            })
        });
        topic
            .clone()
            .downcast::<Topic<E>>()
            .expect("topics are keyed by their event type")
    }

    /// Publishes `event` to every current subscriber of `E`; returns how many received it.
    pub fn publish<E: Clone + Send + Sync + 'static>(&self, event: E) -> usize {
        self.topic::<E>().publish(event)
    }

    /// Subscribes to events of type `E` published from now on.
    pub fn subscribe<E: Clone + Send + Sync + 'static>(&self) -> EventSubscriber<E> {
        let topic = self.topic::<E>();
        let rx = topic.tx.subscribe();
        topic.subscribers.fetch_add(1, Ordering::Relaxed);
        EventSubscriber { rx, topic }
    }

    /// Forwards events of type `E` to an actor until it terminates.
    ///
    /// Events are told to the actor, so a full bounded mailbox turns them
    /// into dead letters rather than slowing publishers down.
    pub fn subscribe_actor<E: Clone + Send + Sync + 'static>(&self, target: ActorRef<E>) {
        let mut events = self.subscribe::<E>();
        let gone = target.terminated();
        tokio::spawn(async move {
            tokio::pin!(gone);
            loop {
                tokio::select! {
                    biased;
                    _ = &mut gone => break,
                    event = events.recv() => match event {
                        Ok(event) => target.tell(event),
                        Err(EventStreamError::Lagged(n)) => {
                            tracing::warn!(actor = %target.path(), missed = n, "event subscriber lagged");
                        }
                        Err(EventStreamError::Closed) => break,
                    },
                }
            }
        });
    }
}

/// A subscription to events of one type; see [`EventStream::subscribe`].
pub struct EventSubscriber<E> {
    rx: broadcast::Receiver<E>,
    topic: Arc<Topic<E>>,
}

impl<E: Clone> EventSubscriber<E> {
    /// Waits for the next event.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is either returned or stays buffered.
    pub async fn recv(&mut self) -> Result<E, EventStreamError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => EventStreamError::Lagged(n),
            broadcast::error::RecvError::Closed => EventStreamError::Closed,
        })
    }

    /// The next buffered event, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<E>, EventStreamError> {
        match self.rx.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Err(EventStreamError::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Err(EventStreamError::Closed),
        }
    }
}

impl<E> Drop for EventSubscriber<E> {
    fn drop(&mut self) {
        self.topic.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}
