//! The task that runs one actor: its lifecycle as a loop over the mailbox.
//!
//! Phases:
//!
//! ```text
//!            fail                 Restart directive, children gone
//!  Running ─────────> Suspended ─────────────> Restarting ──────────> Running
//!     │ ^  Resume         │                       │
//!     │ └─────────────────┘                       │ Stop
//!     │ Stop                     Stop             v
//!     └───────────────────> Stopping <────────────┘
//!                              │ children gone
//!                              v
//!                            Done ─> post_stop, close mailbox, dead letters,
//!                                    notify watchers and parent
//! ```
//!
//! Only `Running` takes user messages. System messages are taken in every
//! phase, before any user message.

use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::actor::Actor;
use crate::cell::{dead_letter_msg, Cell, ErasedCell};
use crate::context::Context;
use crate::dead_letter::DeadLetterReason;
use crate::event_stream::LifecycleEvent;
use crate::mailbox::{lock, Batch, Envelope, Next};
use crate::props::Props;
use crate::rng;
use crate::supervision::{
    ActorError, Directive, Failure, FailurePhase, Panicked, RestartDecision, RestartStats, Scope,
};
use crate::system_msg::{SystemMsg, Watcher};
use crate::watch::{StopReason, Terminated};

enum Phase {
    Running,
    Suspended,
    Restarting(Failure),
    Stopping(StopReason),
    Done(StopReason),
}

struct Runner<A: Actor> {
    cell: Arc<Cell<A::Msg>>,
    props: Props<A>,
    ctx: Context<A>,
    actor: Option<A>,
    phase: Phase,
    /// User messages taken from the mailbox, not yet handled.
    batch: Batch<A::Msg>,
    /// Unstashed messages, handled before the mailbox's.
    replay: VecDeque<A::Msg>,
    watchers: Vec<Watcher>,
    child_stats: HashMap<u64, RestartStats>,
    /// Terminated signals that arrived while not running.
    pending_signals: VecDeque<Terminated>,
}

pub(crate) async fn run<A: Actor>(cell: Arc<Cell<A::Msg>>, props: Props<A>) {
    let ctx = Context::new(cell.clone());
    let mut runner = Runner {
        cell,
        props,
        ctx,
        actor: None,
        phase: Phase::Running,
        batch: Batch::new(),
        replay: VecDeque::new(),
        watchers: Vec::new(),
        child_stats: HashMap::new(),
        pending_signals: VecDeque::new(),
    };
    runner.start().await;
    runner.run().await;
}

/// Runs a hook, turning a panic into an error.
async fn guarded<F, T>(hook: F) -> Result<T, ActorError>
where
    F: Future<Output = T>,
{
    let mut hook = std::pin::pin!(hook);
    poll_fn(|cx| match std::panic::catch_unwind(AssertUnwindSafe(|| hook.as_mut().poll(cx))) {
        Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(Box::new(Panicked::from_payload(payload)) as ActorError)),
    })
    .await
}

fn flatten(result: Result<Result<(), ActorError>, ActorError>) -> Result<(), ActorError> {
    result.and_then(|inner| inner)
}

impl<A: Actor> Runner<A> {
    fn uid(&self) -> u64 {
        self.cell.core.path.uid()
    }

    fn erased(&self) -> Arc<dyn ErasedCell> {
        self.cell.clone()
    }

    fn construct(&self) -> Result<A, ActorError> {
        std::panic::catch_unwind(AssertUnwindSafe(|| self.props.build()))
            .map_err(|payload| Box::new(Panicked::from_payload(payload)) as ActorError)
    }

    async fn start(&mut self) {
        let actor = match self.construct() {
            Ok(actor) => self.actor.insert(actor),
            Err(error) => return self.fail(FailurePhase::Start, error),
        };
        match flatten(guarded(actor.pre_start(&mut self.ctx)).await) {
            Ok(()) => {
                self.ctx.after_handler(&mut self.replay);
                self.publish(|path| LifecycleEvent::Started(path));
            }
            Err(error) => self.fail(FailurePhase::Start, error),
        }
    }

    async fn run(&mut self) {
        let uid = self.uid();
        loop {
            if let Phase::Done(reason) = &self.phase {
                let reason = reason.clone();
                return self.finish(reason).await;
            }
            if matches!(self.phase, Phase::Running) {
                self.run_taken().await;
            }
            let accept_user = matches!(self.phase, Phase::Running);
            let next = poll_fn(|cx| self.cell.mailbox.poll_next(cx, &mut self.batch, accept_user, uid)).await;
            match next {
                Next::User(env) => self.on_user(env).await,
                Next::System(msg) => self.on_system(msg).await,
            }
        }
    }

    /// The fast path: handles unstashed messages and the batch already taken
    /// from the mailbox until it is empty, a system message arrives, or the
    /// actor stops running. Charges the task's coop budget every few
    /// messages, so a busy actor still lets others on its worker run.
    async fn run_taken(&mut self) {
        let mut handled = 0u32;
        loop {
            if let Some(msg) = self.replay.pop_front() {
                self.on_message(msg).await;
            } else if let Some(env) = self.cell.mailbox.next_taken(&mut self.batch) {
                self.on_user(env).await;
            } else {
                return;
            }
            if !matches!(self.phase, Phase::Running) {
                return;
            }
            handled = handled.wrapping_add(1);
            if handled % 16 == 0 {
                tokio::task::coop::consume_budget().await;
            }
        }
    }

    async fn on_user(&mut self, env: Envelope<A::Msg>) {
        let msg = match env {
            Envelope::User(msg) => msg,
            Envelope::Timer(id) => match self.ctx.timers.fire(id) {
                Some(msg) => msg,
                None => return,
            },
        };
        self.on_message(msg).await;
    }

    async fn on_message(&mut self, msg: A::Msg) {
        let Some(actor) = self.actor.as_mut() else {
            return;
        };
        let busy = &self.cell.mailbox.hot.busy_since;
        busy.store(self.cell.core.system.clock_ticks(), Ordering::Relaxed);
        let result = guarded(actor.handle(msg, &mut self.ctx)).await;
        busy.store(0, Ordering::Relaxed);
        self.ctx.after_handler(&mut self.replay);
        if let Err(error) = flatten(result) {
            self.fail(FailurePhase::Message, error);
        }
    }

    async fn on_system(&mut self, msg: SystemMsg) {
        match msg {
            SystemMsg::Stop { failure } => self.begin_stop(failure.map_or(StopReason::Stopped, StopReason::Failed)),
            SystemMsg::Watch(watcher) => self.add_watcher(watcher),
            SystemMsg::Unwatch { watcher } => self.watchers.retain(|w| w.id() != watcher),
            SystemMsg::Terminated(terminated) => {
                if self.ctx.watching.remove(&terminated.actor().uid()).is_some() {
                    self.pending_signals.push_back(terminated);
                    self.deliver_signals().await;
                }
            }
            SystemMsg::ChildFailed { child, failure } => self.supervise(child, failure),
            SystemMsg::ChildTerminated { child } => {
                lock(&self.cell.core.children).remove(&child);
                self.child_stats.remove(&child.core().path.uid());
                self.children_gone().await;
            }
            SystemMsg::Resume => {
                if matches!(self.phase, Phase::Suspended) {
                    self.phase = Phase::Running;
                    self.deliver_signals().await;
                }
            }
            SystemMsg::Restart { cause } => {
                if matches!(self.phase, Phase::Running | Phase::Suspended) {
                    self.begin_restart(cause).await;
                }
            }
        }
    }

    fn add_watcher(&mut self, watcher: Watcher) {
        if !self.watchers.iter().any(|w| w.id() == watcher.id()) {
            self.watchers.push(watcher);
        }
    }

    /// Hands queued `Terminated` signals to the actor while it is running.
    async fn deliver_signals(&mut self) {
        while matches!(self.phase, Phase::Running) {
            let (Some(terminated), Some(actor)) = (self.pending_signals.pop_front(), self.actor.as_mut()) else {
                return;
            };
            let result = guarded(actor.on_terminated(terminated, &mut self.ctx)).await;
            self.ctx.after_handler(&mut self.replay);
            if let Err(error) = flatten(result) {
                self.fail(FailurePhase::Signal, error);
            }
        }
    }

    /// Suspends the actor and reports the failure to its parent.
    fn fail(&mut self, phase: FailurePhase, error: ActorError) {
        let failure = Failure::new(self.cell.core.path.clone(), phase, error);
        tracing::error!(actor = %self.cell.core.path, error = %failure.error(), %phase, "actor failed");
        self.publish(|_| LifecycleEvent::Failed(failure.clone()));
        self.phase = Phase::Suspended;
        let reported = match &self.cell.core.parent {
            Some(parent) => parent
                .send_system(SystemMsg::ChildFailed {
                    child: self.erased(),
                    failure: failure.clone(),
                })
                .is_ok(),
            None => false,
        };
        if !reported {
            // The user guardian has no supervisor: an escalation to the top
            // stops the whole system, as in Akka.
            self.begin_stop(StopReason::Failed(failure));
        }
    }

    fn supervise(&mut self, child: Arc<dyn ErasedCell>, failure: Failure) {
        let Some(actor) = self.actor.as_ref() else { return };
        if !matches!(self.phase, Phase::Running | Phase::Suspended)
            || !lock(&self.cell.core.children).contains(&child)
        {
            // Stopping or restarting: the child is being stopped anyway.
            return;
        }
        let strategy = actor.supervisor_strategy();
        let directive = strategy.decide(&failure);
        tracing::debug!(child = %child.core().path, ?directive, "supervising");
        let targets = match strategy.scope() {
            Scope::OneForOne => vec![child.clone()],
            Scope::AllForOne => lock(&self.cell.core.children).snapshot(),
        };
        let stop_all = |failure: &Failure| {
            for target in &targets {
                let _ = target.send_system(SystemMsg::Stop {
                    failure: Some(failure.clone()),
                });
            }
        };
        match directive {
            Directive::Resume => {
                let _ = child.send_system(SystemMsg::Resume);
            }
            Directive::Stop => stop_all(&failure),
            Directive::Escalate => self.fail(FailurePhase::Escalated, Box::new(failure)),
            Directive::Restart => {
                let now = tokio::time::Instant::now().into_std();
                let stats = self.child_stats.entry(child.core().path.uid()).or_default();
                match stats.request(now, &strategy, rng::next_f64()) {
                    RestartDecision::GiveUp => {
                        tracing::warn!(child = %child.core().path, "restart limit reached, stopping");
                        stop_all(&failure);
                    }
                    RestartDecision::Restart { delay } => {
                        for target in targets {
                            self.restart_after(target, failure.clone(), delay);
                        }
                    }
                }
            }
        }
    }

    fn restart_after(&self, target: Arc<dyn ErasedCell>, cause: Failure, delay: Duration) {
        if delay.is_zero() {
            let _ = target.send_system(SystemMsg::Restart { cause });
            return;
        }
        self.cell.core.system.runtime().spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = target.send_system(SystemMsg::Restart { cause });
        });
    }

    fn begin_stop(&mut self, reason: StopReason) {
        if matches!(self.phase, Phase::Stopping(_) | Phase::Done(_)) {
            return;
        }
        self.ctx.timers.cancel_all();
        let children = lock(&self.cell.core.children).close();
        for child in &children {
            let _ = child.send_system(SystemMsg::Stop { failure: None });
        }
        self.phase = if children.is_empty() {
            Phase::Done(reason)
        } else {
            Phase::Stopping(reason)
        };
    }

    async fn begin_restart(&mut self, cause: Failure) {
        if let Some(mut old) = self.actor.take() {
            if let Err(error) = guarded(old.pre_restart(&cause, &mut self.ctx)).await {
                tracing::error!(actor = %self.cell.core.path, %error, "pre_restart panicked");
            }
        }
        self.ctx.timers.cancel_all();
        // Stashed messages go back to the front of the mailbox for the new instance.
        self.ctx.unstash_all();
        self.ctx.after_handler(&mut self.replay);
        let children = lock(&self.cell.core.children).snapshot();
        for child in &children {
            let _ = child.send_system(SystemMsg::Stop { failure: None });
        }
        self.phase = Phase::Restarting(cause);
        self.children_gone().await;
    }

    /// Moves on from Stopping or Restarting once the last child has terminated.
    async fn children_gone(&mut self) {
        if !lock(&self.cell.core.children).is_empty() {
            return;
        }
        match std::mem::replace(&mut self.phase, Phase::Suspended) {
            Phase::Stopping(reason) => self.phase = Phase::Done(reason),
            Phase::Restarting(cause) => self.complete_restart(cause).await,
            other => self.phase = other,
        }
    }

    async fn complete_restart(&mut self, cause: Failure) {
        let actor = match self.construct() {
            Ok(actor) => self.actor.insert(actor),
            Err(error) => return self.fail(FailurePhase::Restart, error),
        };
        match flatten(guarded(actor.post_restart(&cause, &mut self.ctx)).await) {
            Ok(()) => {
                self.ctx.after_handler(&mut self.replay);
                self.phase = Phase::Running;
                self.cell.core.record_restart();
                self.cell.core.system.record_restart();
                self.publish(|path| LifecycleEvent::Restarted(path));
                self.deliver_signals().await;
            }
            Err(error) => self.fail(FailurePhase::Restart, error),
        }
    }

    /// Runs `post_stop`, closes the mailbox, and tells everyone concerned.
    async fn finish(&mut self, reason: StopReason) {
        if let Some(mut actor) = self.actor.take() {
            if let Err(error) = guarded(actor.post_stop(&mut self.ctx)).await {
                tracing::error!(actor = %self.cell.core.path, %error, "post_stop panicked");
            }
        }
        self.ctx.timers.cancel_all();
        let _ = self.cell.core.stop_reason.set(reason.clone());
        let system = self.cell.mailbox.close();
        if let Some(shared) = self.cell.mailbox.shared() {
            shared.leave(self.uid());
        }
        let left = DeadLetterReason::StoppedBeforeHandled;
        for msg in self.replay.drain(..) {
            dead_letter_msg(&self.cell.core, msg, left);
        }
        for env in self.batch.drain() {
            self.cell.dead_letter(env, left);
        }
        self.cell.drain_to_dead_letters();
        for msg in self.ctx.stash.drain(..) {
            dead_letter_msg(&self.cell.core, msg, left);
        }
        for msg in system {
            if let SystemMsg::Watch(watcher) = msg {
                self.add_watcher(watcher);
            }
        }
        let me = self.uid();
        for (_, watched) in self.ctx.watching.drain() {
            watched.unwatch_by(me);
        }
        let core = &self.cell.core;
        let terminated = Terminated::new(core.path.clone(), reason);
        core.system.actor_stopped();
        self.publish(|_| LifecycleEvent::Stopped(terminated.clone()));
        for watcher in self.watchers.drain(..) {
            watcher.notify(&terminated);
        }
        match &self.cell.core.parent {
            Some(parent) => {
                let _ = parent.send_system(SystemMsg::ChildTerminated { child: self.erased() });
            }
            None => self.cell.core.system.guardian_terminated(),
        }
    }

    fn publish(&self, event: impl FnOnce(crate::path::ActorPath) -> LifecycleEvent) {
        let topic = self.cell.core.system.lifecycle_topic();
        if topic.has_subscribers() {
            topic.publish(event(self.cell.core.path.clone()));
        }
    }
}
