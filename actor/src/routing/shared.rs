//! The part of a router that senders use: the routee table and the routing
//! logic, applied in the sender's task so a routed message costs one hop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard};
use std::time::Duration;

use crate::actor_ref::ActorRef;
use crate::cell::{dead_letter, Cell, ErasedCell};
use crate::dead_letter::DeadLetterReason;
use crate::error::{AskError, TryTellError};
use crate::mailbox::{Envelope, SharedQueue};
use crate::path::ActorPath;
use crate::reply::{self, ReplyTo};
use crate::rng;
use crate::task::current_sender;

use super::ring::HashRing;
use super::RouterMsg;

pub(crate) type KeyFn<M> = Arc<dyn Fn(&M) -> u64 + Send + Sync>;

/// How a router picks routees.
pub(crate) enum Logic<M> {
    RoundRobin,
    Random,
    SmallestMailbox,
    Balancing(Arc<SharedQueue<M>>),
    Broadcast,
    ConsistentHashing { key: KeyFn<M>, vnodes: usize },
    ScatterGather,
    TailChopping { interval: Duration },
}

struct Table<M> {
    routees: Vec<ActorRef<M>>,
    ring: HashRing,
}

pub(crate) struct RouterShared<M> {
    /// The router actor's cell: its path, and what stop and watch act on.
    control: OnceLock<Arc<Cell<RouterMsg<M>>>>,
    table: RwLock<Table<M>>,
    logic: Logic<M>,
    next: AtomicUsize,
    clone_msg: Option<fn(&M) -> M>,
}

impl<M: Send + 'static> RouterShared<M> {
    pub(crate) fn new(logic: Logic<M>, clone_msg: Option<fn(&M) -> M>, routees: Vec<ActorRef<M>>) -> Self {
        let shared = RouterShared {
            control: OnceLock::new(),
            table: RwLock::new(Table {
                routees: Vec::new(),
                ring: HashRing::default(),
            }),
            logic,
            next: AtomicUsize::new(0),
            clone_msg,
        };
        for routee in routees {
            shared.add(routee);
        }
        shared
    }

    pub(crate) fn set_control(&self, cell: Arc<Cell<RouterMsg<M>>>) {
        let _ = self.control.set(cell);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.control.get().is_some()
    }

    fn control(&self) -> &Arc<Cell<RouterMsg<M>>> {
        self.control
            .get()
            .expect("a router's control cell is set before its ref is handed out")
    }

    pub(crate) fn cell(&self) -> Arc<dyn ErasedCell> {
        self.control().clone()
    }

    pub(crate) fn control_cell(&self) -> &Arc<Cell<RouterMsg<M>>> {
        self.control()
    }

    pub(crate) fn path(&self) -> &ActorPath {
        &self.control().core.path
    }

    pub(crate) fn logic(&self) -> &Logic<M> {
        &self.logic
    }

    fn read(&self) -> RwLockReadGuard<'_, Table<M>> {
        self.table.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut Vec<ActorRef<M>>) -> bool) -> bool {
        let mut table = self.table.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = change(&mut table.routees);
        if changed {
            if let Logic::ConsistentHashing { vnodes, .. } = &self.logic {
                let identities: Vec<String> = table.routees.iter().map(|r| r.path().without_uid()).collect();
                table.ring = HashRing::new(identities.iter().map(String::as_str), *vnodes);
            }
        }
        changed
    }

    /// Adds a routee; false if it is already there.
    pub(crate) fn add(&self, routee: ActorRef<M>) -> bool {
        self.update(|routees| {
            if routees.contains(&routee) {
                return false;
            }
            routees.push(routee);
            true
        })
    }

    /// Removes the routee with this path; false if it was not there.
    pub(crate) fn remove(&self, path: &ActorPath) -> bool {
        self.update(|routees| {
            let before = routees.len();
            routees.retain(|r| r.path() != path);
            routees.len() != before
        })
    }

    pub(crate) fn routees(&self) -> Vec<ActorRef<M>> {
        self.read().routees.clone()
    }

    fn clone_of(&self, msg: &M) -> M {
        (self
            .clone_msg
            .expect("broadcasting routers are built with a clone function"))(msg)
    }

    fn no_routees(&self, msg: M) -> DeadLetterReason {
        let reason = DeadLetterReason::NoRoutees;
        self.control()
            .core
            .system
            .dead_letters()
            .publish(self.path(), current_sender(), msg, reason);
        reason
    }

    /// Picks the routee for a single-recipient logic.
    fn pick<'t>(&self, table: &'t Table<M>, msg: &M) -> &'t ActorRef<M> {
        let routees = &table.routees;
        let index = match &self.logic {
            Logic::Random => rng::below(routees.len()),
            Logic::SmallestMailbox => (0..routees.len())
                .min_by_key(|&i| (routees[i].mailbox_depth(), routees[i].is_busy()))
                .unwrap_or(0),
            Logic::ConsistentHashing { key, .. } => table.ring.node_for(key(msg)).unwrap_or(0),
            _ => self.next.fetch_add(1, Ordering::Relaxed) % routees.len(),
        };
        &routees[index]
    }

    /// Routes one message; what cannot be delivered becomes a dead letter.
    pub(crate) fn route(&self, msg: M) -> Result<(), DeadLetterReason> {
        if let Logic::Balancing(queue) = &self.logic {
            return queue
                .push(Envelope::User(msg))
                .map_err(|env| dead_letter(&self.control().core, env, DeadLetterReason::RecipientStopped));
        }
        let table = self.read();
        if table.routees.is_empty() {
            drop(table);
            return Err(self.no_routees(msg));
        }
        if matches!(self.logic, Logic::Broadcast | Logic::ScatterGather) {
            let (last, rest) = table.routees.split_last().expect("not empty");
            for routee in rest {
                let _ = routee.deliver(self.clone_of(&msg));
            }
            return last.deliver(msg);
        }
        self.pick(&table, &msg).deliver(msg)
    }

    /// Routes one message without waiting, handing it back on failure.
    pub(crate) fn try_route(&self, msg: M) -> Result<(), TryTellError<M>> {
        if let Logic::Balancing(queue) = &self.logic {
            return queue.push(Envelope::User(msg)).map_err(|env| match env {
                Envelope::User(msg) => TryTellError::Closed(msg),
                Envelope::Timer(_) => unreachable!("only user envelopes are routed"),
            });
        }
        let table = self.read();
        let Some((last, rest)) = table.routees.split_last() else {
            return Err(TryTellError::Closed(msg));
        };
        if matches!(self.logic, Logic::Broadcast | Logic::ScatterGather) {
            // Best effort: every routee that has room gets a copy.
            for routee in rest {
                let _ = routee.try_tell(self.clone_of(&msg));
            }
            return last.try_tell(msg);
        }
        self.pick(&table, &msg).try_tell(msg)
    }

    /// Ask through the router. Scatter-gather asks every routee and takes the
    /// first answer; tail-chopping asks one routee, then another after each
    /// `interval` without an answer.
    pub(crate) async fn ask<R, F>(&self, make: F, timeout: Duration) -> Result<R, AskError>
    where
        R: Send + 'static,
        F: FnOnce(ReplyTo<R>) -> M,
    {
        let (reply, mut answer) = reply::pair();
        let msg = make(reply);
        let exchange = async {
            match &self.logic {
                Logic::TailChopping { interval } => {
                    let routees = self.routees();
                    if routees.is_empty() {
                        self.no_routees(msg);
                        return Err(AskError::Terminated);
                    }
                    let start = rng::below(routees.len());
                    let mut msg = Some(msg);
                    for k in 0..routees.len() {
                        let routee = &routees[(start + k) % routees.len()];
                        let last = k + 1 == routees.len();
                        let this = if last {
                            msg.take().expect("sent once")
                        } else {
                            self.clone_of(msg.as_ref().expect("kept"))
                        };
                        let _ = routee.deliver(this);
                        if !last {
                            if let Ok(result) = tokio::time::timeout(*interval, &mut answer).await {
                                return result.map_err(|_| AskError::NoReply);
                            }
                        }
                    }
                }
                _ => {
                    if let Err(reason) = self.route(msg) {
                        return Err(match reason {
                            DeadLetterReason::MailboxFull => AskError::MailboxFull,
                            _ => AskError::Terminated,
                        });
                    }
                }
            }
            (&mut answer).await.map_err(|_| AskError::NoReply)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(AskError::Timeout))
    }
}
