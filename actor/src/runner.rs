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
//!                                    notify watchers (and the parent,
//!                                    if it waits for its children)
//! ```
//!
//! Only `Running` takes user messages. System messages are taken in every
//! phase, before any user message.
//!
//! The task's size is every idle actor's memory cost, so the rare paths
//! (start, restart, signals, stop) run as boxed futures, and the bookkeeping
//! most actors never need is allocated on first use.

use std::collections::{HashMap, VecDeque};
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use pin_project_lite::pin_project;
use std::time::Duration;

use crate::actor::Actor;
use crate::cell::{dead_letter_msg, Cell, ErasedCell};
use crate::context::Context;
use crate::dead_letter::DeadLetterReason;
use crate::event_stream::LifecycleEvent;
use crate::mailbox::{lock, Batch, Envelope, Next};
use crate::path::ActorPath;
use crate::props::{Factory, Props};
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
    /// Stopping or done, with the failure that stopped it if any: a local
    /// actor stops for no other reason, and `Option<Failure>` is half the
    /// size of a `StopReason` (which grows the task of every actor).
    Stopping(Option<Failure>),
    Done(Option<Failure>),
}

// Every actor's task holds a `Phase`: a bigger one cost 173 bytes per idle
// actor once (tokio's task cell grows in whole cache lines).
const _: () = assert!(std::mem::size_of::<Phase>() <= 16);

struct Runner<A: Actor> {
    cell: Arc<Cell<A::Msg>>,
    factory: Factory<A>,
    ctx: Context<A>,
    actor: Option<A>,
    phase: Phase,
    /// User messages taken from the mailbox, not yet handled.
    batch: Batch<A::Msg>,
    supervision: Option<Box<Supervision>>,
}

/// What an actor keeps once it is watched, supervises, or gets signals.
#[derive(Default)]
struct Supervision {
    watchers: Vec<Watcher>,
    child_stats: HashMap<u64, RestartStats>,
    /// `Terminated` signals that arrived while the actor was not running.
    pending_signals: VecDeque<Terminated>,
    /// The child whose failure this actor escalated: it is resumed with us.
    escalated: Option<Arc<dyn ErasedCell>>,
}

pub(crate) async fn run<A: Actor>(cell: Arc<Cell<A::Msg>>, props: Props<A>) {
    let mut runner = Runner {
        ctx: Context::new(cell.clone()),
        cell,
        factory: props.into_factory(),
        actor: None,
        phase: Phase::Running,
        batch: Batch::new(),
        supervision: None,
    };
    Box::pin(runner.start()).await;
    runner.run().await;
}

pin_project! {
    /// Runs a hook, turning a panic into an error. No bigger than the hook.
    struct Guarded<F> {
        #[pin]
        hook: F,
    }
}

fn guarded<F: Future>(hook: F) -> Guarded<F> {
    Guarded { hook }
}

impl<F: Future> Future for Guarded<F> {
    type Output = Result<F::Output, ActorError>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let hook = self.project().hook;
        match std::panic::catch_unwind(AssertUnwindSafe(|| hook.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(Box::new(Panicked::from_payload(payload)) as ActorError)),
        }
    }
}

/// Slow work a system message leaves for the loop, run as a boxed future.
enum FollowUp {
    DeliverSignals,
    Restart(Failure),
    CompleteRestart(Failure),
}

fn flatten(result: Result<Result<(), ActorError>, ActorError>) -> Result<(), ActorError> {
    result.and_then(|inner| inner)
}

impl<A: Actor> Runner<A> {
    fn uid(&self) -> u64 {
        self.cell.core.path.uid()
    }

    fn path(&self) -> &ActorPath {
        &self.cell.core.path
    }

    fn erased(&self) -> Arc<dyn ErasedCell> {
        self.cell.clone()
    }

    fn supervision(&mut self) -> &mut Supervision {
        self.supervision.get_or_insert_with(Default::default)
    }

    fn construct(&self) -> Result<A, ActorError> {
        std::panic::catch_unwind(AssertUnwindSafe(|| (self.factory)()))
            .map_err(|payload| Box::new(Panicked::from_payload(payload)) as ActorError)
    }

    async fn start(&mut self) {
        let actor = match self.construct() {
            Ok(actor) => self.actor.insert(actor),
            Err(error) => return self.fail(FailurePhase::Start, error),
        };
        match flatten(guarded(actor.pre_start(&mut self.ctx)).await) {
            Ok(()) => self.publish(LifecycleEvent::Started),
            Err(error) => self.fail(FailurePhase::Start, error),
        }
    }

    async fn run(&mut self) {
        let uid = self.uid();
        loop {
            if let Phase::Done(reason) = &self.phase {
                let reason = reason.clone();
                return Box::pin(self.finish(reason)).await;
            }
            // The fast path: unstashed messages and the batch already taken
            // from the mailbox, until a system message arrives. Charges the
            // coop budget every few messages so a busy actor still lets the
            // others on its worker run.
            let mut handled = 0u32;
            while matches!(self.phase, Phase::Running) {
                let Some(msg) = self.next_taken() else { break };
                self.on_message(msg).await;
                handled = handled.wrapping_add(1);
                if handled % 16 == 0 {
                    tokio::task::coop::consume_budget().await;
                }
            }
            let accept_user = matches!(self.phase, Phase::Running);
            let next = poll_fn(|cx| {
                self.cell
                    .mailbox
                    .poll_next(&self.cell.hot, cx, &mut self.batch, accept_user, uid)
            })
            .await;
            match next {
                Next::User(env) => {
                    if let Some(msg) = self.resolve(env) {
                        self.on_message(msg).await;
                    }
                }
                Next::System(msg) => {
                    if let Some(follow_up) = self.on_system(msg) {
                        Box::pin(self.follow_up(follow_up)).await;
                    }
                }
            }
        }
    }

    /// The next message already out of the mailbox: unstashed ones first.
    #[inline]
    fn next_taken(&mut self) -> Option<A::Msg> {
        loop {
            if let Some(msg) = self.ctx.next_replay() {
                return Some(msg);
            }
            let env = self.cell.mailbox.next_taken(&self.cell.hot, &mut self.batch)?;
            if let Some(msg) = self.resolve(env) {
                return Some(msg);
            }
        }
    }

    /// The message an envelope carries; `None` for a cancelled timer.
    #[inline]
    fn resolve(&mut self, env: Envelope<A::Msg>) -> Option<A::Msg> {
        match env {
            Envelope::User(msg) => Some(msg),
            Envelope::Timer(id) => self.ctx.fire_timer(id),
        }
    }

    async fn on_message(&mut self, msg: A::Msg) {
        let Some(actor) = self.actor.as_mut() else {
            return;
        };
        let busy = &self.cell.hot.busy_since;
        busy.store(self.cell.core.system.clock_ticks(), Ordering::Relaxed);
        let result = guarded(actor.handle(msg, &mut self.ctx)).await;
        busy.store(0, Ordering::Relaxed);
        if let Err(error) = flatten(result) {
            self.fail(FailurePhase::Message, error);
        }
    }

    /// Handles a system message; what needs to await is handed back.
    fn on_system(&mut self, msg: SystemMsg) -> Option<FollowUp> {
        match msg {
            SystemMsg::Stop { failure } => self.begin_stop(failure),
            SystemMsg::Watch(watcher) => self.add_watcher(watcher),
            SystemMsg::Unwatch { watcher } => {
                if let Some(s) = self.supervision.as_mut() {
                    s.watchers.retain(|w| w.id() != watcher);
                }
            }
            SystemMsg::Terminated(terminated) => {
                if self.ctx.stop_watching(terminated.actor().uid()) {
                    self.supervision().pending_signals.push_back(terminated);
                    return Some(FollowUp::DeliverSignals);
                }
            }
            SystemMsg::ChildFailed { child, failure } => self.supervise(child, failure),
            SystemMsg::ChildTerminated { child } => {
                // The child left the table itself, in `finish`.
                if let Some(s) = self.supervision.as_mut() {
                    s.child_stats.remove(&child.core().path.uid());
                }
                // Only a stop or restart waits for the children to go.
                if matches!(self.phase, Phase::Stopping(_) | Phase::Restarting(_)) && self.children_gone() {
                    return self.take_restart().map(FollowUp::CompleteRestart);
                }
            }
            SystemMsg::Resume => {
                if matches!(self.phase, Phase::Suspended) {
                    self.phase = Phase::Running;
                    if let Some(child) = self.supervision.as_mut().and_then(|s| s.escalated.take()) {
                        let _ = child.send_system(SystemMsg::Resume);
                    }
                    return Some(FollowUp::DeliverSignals);
                }
            }
            SystemMsg::Restart { cause } => {
                if matches!(self.phase, Phase::Running | Phase::Suspended) {
                    return Some(FollowUp::Restart(cause));
                }
            }
        }
        None
    }

    async fn follow_up(&mut self, follow_up: FollowUp) {
        match follow_up {
            FollowUp::DeliverSignals => self.deliver_signals().await,
            FollowUp::Restart(cause) => self.begin_restart(cause).await,
            FollowUp::CompleteRestart(cause) => self.complete_restart(cause).await,
        }
    }

    fn add_watcher(&mut self, watcher: Watcher) {
        let watchers = &mut self.supervision().watchers;
        if !watchers.iter().any(|w| w.id() == watcher.id()) {
            watchers.push(watcher);
        }
    }

    /// Hands queued `Terminated` signals to the actor while it is running.
    async fn deliver_signals(&mut self) {
        while matches!(self.phase, Phase::Running) {
            let Some(terminated) = self.supervision.as_mut().and_then(|s| s.pending_signals.pop_front()) else {
                return;
            };
            let Some(actor) = self.actor.as_mut() else { return };
            let result = guarded(actor.on_terminated(terminated, &mut self.ctx)).await;
            if let Err(error) = flatten(result) {
                self.fail(FailurePhase::Signal, error);
            }
        }
    }

    /// Suspends the actor and reports the failure to its parent.
    fn fail(&mut self, phase: FailurePhase, error: ActorError) {
        let failure = Failure::new(self.path().clone(), phase, error);
        tracing::error!(actor = %self.path(), error = %failure.error(), %phase, "actor failed");
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
            self.begin_stop(Some(failure));
        }
    }

    fn supervise(&mut self, child: Arc<dyn ErasedCell>, failure: Failure) {
        let Some(actor) = self.actor.as_ref() else { return };
        if !matches!(self.phase, Phase::Running | Phase::Suspended) {
            // Stopping or restarting: the child is being stopped anyway.
            return;
        }
        {
            let children = lock(&self.cell.core.children);
            if !children.contains(&child) {
                return;
            }
            // Restart counts kept for a child are dropped when it ends.
            children.listen(&self.cell.hot);
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
            Directive::Escalate => {
                self.supervision().escalated = Some(child);
                self.fail(FailurePhase::Escalated, Box::new(failure));
            }
            Directive::Restart => {
                let now = tokio::time::Instant::now().into_std();
                let stats = self
                    .supervision()
                    .child_stats
                    .entry(child.core().path.uid())
                    .or_default();
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

    /// Stops the children first; the actor is done once the last one has gone.
    fn begin_stop(&mut self, reason: Option<Failure>) {
        if matches!(self.phase, Phase::Stopping(_) | Phase::Done(_)) {
            return;
        }
        self.ctx.cancel_timers();
        let children = lock(&self.cell.core.children).close(&self.cell.hot);
        for child in &children {
            let _ = child.send_system(SystemMsg::Stop { failure: None });
        }
        self.phase = Phase::Stopping(reason);
        self.children_gone();
    }

    async fn begin_restart(&mut self, cause: Failure) {
        if let Some(mut old) = self.actor.take() {
            if let Err(error) = guarded(old.pre_restart(&cause, &mut self.ctx)).await {
                tracing::error!(actor = %self.path(), %error, "pre_restart panicked");
            }
        }
        self.ctx.cancel_timers();
        // Stashed messages go back to the front of the mailbox for the new instance.
        self.ctx.unstash_all();
        if let Some(s) = self.supervision.as_mut() {
            s.escalated = None;
        }
        let children = {
            let children = lock(&self.cell.core.children);
            children.listen(&self.cell.hot);
            children.snapshot()
        };
        for child in &children {
            let _ = child.send_system(SystemMsg::Stop { failure: None });
        }
        self.phase = Phase::Restarting(cause);
        if self.children_gone() {
            if let Some(cause) = self.take_restart() {
                Box::pin(self.complete_restart(cause)).await;
            }
        }
    }

    /// The cause of a restart waiting for the children to go, leaving the
    /// actor suspended until the new instance has started.
    fn take_restart(&mut self) -> Option<Failure> {
        if !matches!(self.phase, Phase::Restarting(_)) {
            return None;
        }
        match std::mem::replace(&mut self.phase, Phase::Suspended) {
            Phase::Restarting(cause) => Some(cause),
            _ => unreachable!("checked above"),
        }
    }

    /// Whether no children are left; moves Stopping on to Done when so.
    fn children_gone(&mut self) -> bool {
        if !lock(&self.cell.core.children).is_empty() {
            return false;
        }
        if let Phase::Stopping(reason) = &self.phase {
            self.phase = Phase::Done(reason.clone());
        }
        true
    }

    async fn complete_restart(&mut self, cause: Failure) {
        let actor = match self.construct() {
            Ok(actor) => self.actor.insert(actor),
            Err(error) => return self.fail(FailurePhase::Restart, error),
        };
        match flatten(guarded(actor.post_restart(&cause, &mut self.ctx)).await) {
            Ok(()) => {
                self.phase = Phase::Running;
                self.cell.core.system.record_restart();
                self.publish(LifecycleEvent::Restarted);
                self.deliver_signals().await;
            }
            Err(error) => self.fail(FailurePhase::Restart, error),
        }
    }

    /// Runs `post_stop`, closes the mailbox, and tells everyone concerned.
    async fn finish(&mut self, failure: Option<Failure>) {
        let mut actor = self.actor.take();
        if let Some(actor) = actor.as_mut() {
            if let Err(error) = guarded(actor.post_stop(&mut self.ctx)).await {
                tracing::error!(actor = %self.path(), %error, "post_stop panicked");
            }
        }
        self.ctx.cancel_timers();
        let _ = self.cell.core.stop_reason.set(failure.clone());
        let reason = failure.map_or(StopReason::Stopped, StopReason::Failed);
        let system = self.cell.mailbox.close(&self.cell.hot);
        // Dropped only now: reply handles in its state then fail their asks
        // with `Terminated`, not `NoReply`, as the mailbox is already closed.
        drop(actor);
        if let Some(shared) = self.cell.mailbox.shared() {
            shared.leave(self.uid());
        }
        let left = DeadLetterReason::StoppedBeforeHandled;
        let (kept, watched) = self.ctx.take_leftovers();
        for msg in kept {
            dead_letter_msg(&self.cell.core, msg, left);
        }
        for env in self.batch.drain() {
            self.cell.dead_letter(env, left);
        }
        self.cell.drain_to_dead_letters();
        for msg in system {
            if let SystemMsg::Watch(watcher) = msg {
                self.add_watcher(watcher);
            }
        }
        let me = self.uid();
        for target in watched {
            target.unwatch_by(me);
        }
        let terminated = Terminated::new(self.path().clone(), reason);
        let system = &self.cell.core.system;
        system.actor_stopped();
        self.publish(|_| LifecycleEvent::Stopped(terminated.clone()));
        // Free the name before anyone hears of the termination: a watcher may
        // spawn a successor at once. The parent still gets `ChildTerminated`
        // if it is waiting for its children or counts their restarts; a
        // running parent of many short-lived children is spared the rest.
        let erased = self.erased();
        let parent_listens = self
            .cell
            .core
            .parent
            .as_ref()
            .map(|parent| lock(&parent.core().children).remove(parent.consumer(), &erased));
        system.actor_finished(&*self.cell);
        if let Some(supervision) = self.supervision.take() {
            for watcher in supervision.watchers {
                watcher.notify(&terminated);
            }
        }
        match &self.cell.core.parent {
            Some(parent) if parent_listens == Some(true) => {
                let _ = parent.send_system(SystemMsg::ChildTerminated { child: erased });
            }
            Some(_) => {}
            None => system.guardian_terminated(),
        }
    }

    fn publish(&self, event: impl FnOnce(ActorPath) -> LifecycleEvent) {
        let topic = self.cell.core.system.lifecycle_topic();
        if topic.has_subscribers() {
            topic.publish(event(self.path().clone()));
        }
    }
}
