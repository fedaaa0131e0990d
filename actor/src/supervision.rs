//! Failures and what a parent does about them.
//!
//! A handler that returns `Err` or panics fails its actor. The actor stops
//! taking user messages (it is *suspended*; system messages still flow) and
//! its parent's [`SupervisorStrategy`] picks a [`Directive`]:
//!
//! - **Resume**: keep the instance and its state, drop the failing message.
//! - **Restart**: stop the actor's children, call `pre_restart` on the old
//!   instance, build a fresh one from the props, call `post_restart`. The
//!   mailbox, the `ActorRef` and watchers survive; the failing message does
//!   not. At most `max_restarts` within `within`, then the actor is stopped;
//!   with a [`Backoff`], each restart waits exponentially longer.
//! - **Stop**: stop the actor; watchers see [`StopReason::Failed`](crate::StopReason::Failed).
//! - **Escalate**: fail the parent itself with this failure.
//!
//! One-for-one applies the directive to the failed child; all-for-one applies
//! Restart and Stop to all the parent's children. As in Akka, the default
//! decider stops an actor that fails while starting (its constructor,
//! `pre_start` or `post_restart`) and restarts it on any other failure.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::path::ActorPath;

/// The error type of actor handlers: any error, boxed.
///
/// `Err("message".into())` and `?` on any `std::error::Error` both work.
pub type ActorError = Box<dyn Error + Send + Sync + 'static>;

/// A handler panicked; the panic message is kept.
///
/// Deciders can tell panics from returned errors with
/// `failure.error().downcast_ref::<Panicked>()`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("panicked: {message}")]
pub struct Panicked {
    message: String,
}

impl Panicked {
    pub(crate) fn from_payload(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(s) => (*s).to_owned(),
                Err(_) => "non-string panic payload".to_owned(),
            },
        };
        Panicked { message }
    }

    /// The panic message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Where in its life an actor failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailurePhase {
    /// Constructing the actor or running `pre_start`.
    Start,
    /// Handling a user message (or a timer message).
    Message,
    /// Handling a `Terminated` signal in `on_terminated`.
    Signal,
    /// Rebuilding the actor or running `post_restart`.
    Restart,
    /// A child failed and this actor's strategy escalated it.
    Escalated,
}

impl fmt::Display for FailurePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailurePhase::Start => "start",
            FailurePhase::Message => "message handling",
            FailurePhase::Signal => "signal handling",
            FailurePhase::Restart => "restart",
            FailurePhase::Escalated => "escalation",
        })
    }
}

/// The error of a [`Failure`] that happened on another node: the
/// description that node sent, since errors themselves do not serialise.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RemoteFailure(pub String);

/// One failure of one actor: who, when in its life, and the error.
///
/// Cheap to clone. Implements `Error`, with the handler's error as its `source()`.
#[derive(Clone)]
pub struct Failure {
    inner: Arc<FailureInner>,
}

struct FailureInner {
    actor: ActorPath,
    phase: FailurePhase,
    error: ActorError,
}

impl Failure {
    pub(crate) fn new(actor: ActorPath, phase: FailurePhase, error: ActorError) -> Self {
        Failure {
            inner: Arc::new(FailureInner { actor, phase, error }),
        }
    }

    /// A failure of an actor on another node, rebuilt from what that node
    /// reported: its error is a [`RemoteFailure`] holding the description.
    pub fn remote(actor: ActorPath, phase: FailurePhase, description: impl Into<String>) -> Self {
        Failure::new(actor, phase, Box::new(RemoteFailure(description.into())))
    }

    /// The actor that failed.
    pub fn actor(&self) -> &ActorPath {
        &self.inner.actor
    }

    /// When in its life it failed.
    pub fn phase(&self) -> FailurePhase {
        self.inner.phase
    }

    /// The error the handler returned, or [`Panicked`] for a panic.
    pub fn error(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.inner.error
    }

    /// Whether the failure was a panic.
    pub fn is_panic(&self) -> bool {
        self.inner.error.downcast_ref::<Panicked>().is_some()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed in {}: {}",
            self.inner.actor, self.inner.phase, self.inner.error
        )
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("actor", &self.inner.actor)
            .field("phase", &self.inner.phase)
            .field("error", &self.inner.error)
            .finish()
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.inner.error)
    }
}

/// What a supervisor does with a failed child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Directive {
    /// Keep the instance and its state; the failing message is dropped.
    Resume,
    /// Replace the instance with a fresh one built from the props.
    Restart,
    /// Stop the child.
    Stop,
    /// Fail the supervisor itself with the child's failure.
    Escalate,
}

/// Whether a directive applies to the failed child alone or to all siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Only the failed child.
    OneForOne,
    /// Restart and Stop apply to every child of the supervisor.
    AllForOne,
}

/// Exponential backoff between restarts: `min(max, min_delay * 2^n) * (1 + jitter * r)`,
/// with `n` the restarts already made in the current window and `r` uniform in `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub min: Duration,
    /// Upper bound before jitter.
    pub max: Duration,
    /// Random extra fraction, `0.0` for none; `0.2` adds up to 20%.
    pub jitter: f64,
}

impl Backoff {
    /// A backoff from `min` to `max` with `jitter` (clamped to `0.0..=1.0`).
    pub fn new(min: Duration, max: Duration, jitter: f64) -> Self {
        Backoff {
            min,
            max: max.max(min),
            jitter: jitter.clamp(0.0, 1.0),
        }
    }

    /// The delay before restart number `attempt` (0-based), given a uniform `random` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let factor = 2f64.powi(attempt.min(62) as i32);
        let base = (self.min.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(base * (1.0 + self.jitter * random.clamp(0.0, 1.0)))
    }
}

type Decider = Arc<dyn Fn(&Failure) -> Directive + Send + Sync>;

/// How a parent treats its failing children.
///
/// ```
/// use std::time::Duration;
/// use compaktor_actor::{Backoff, Directive, FailurePhase, SupervisorStrategy};
///
/// let strategy = SupervisorStrategy::one_for_one()
///     .with_max_restarts(3, Duration::from_secs(10))
///     .with_backoff(Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 0.2))
///     .with_decider(|failure| match failure.phase() {
///         FailurePhase::Start => Directive::Stop,
///         _ if failure.is_panic() => Directive::Restart,
///         _ => Directive::Resume,
///     });
/// # let _ = strategy;
/// ```
#[derive(Clone)]
pub struct SupervisorStrategy {
    scope: Scope,
    decider: Decider,
    max_restarts: Option<u32>,
    within: Duration,
    backoff: Option<Backoff>,
}

impl SupervisorStrategy {
    /// One-for-one with the default decider, at most 10 restarts per minute, no backoff.
    pub fn one_for_one() -> Self {
        SupervisorStrategy {
            scope: Scope::OneForOne,
            decider: Arc::new(default_decider),
            max_restarts: Some(10),
            within: Duration::from_secs(60),
            backoff: None,
        }
    }

    /// All-for-one with the same defaults as [`one_for_one`](Self::one_for_one).
    pub fn all_for_one() -> Self {
        SupervisorStrategy {
            scope: Scope::AllForOne,
            ..Self::one_for_one()
        }
    }

    /// A one-for-one strategy that stops every failing child.
    pub fn stop_on_failure() -> Self {
        Self::one_for_one().with_decider(|_| Directive::Stop)
    }

    /// Replaces the decider.
    pub fn with_decider(mut self, decider: impl Fn(&Failure) -> Directive + Send + Sync + 'static) -> Self {
        self.decider = Arc::new(decider);
        self
    }

    /// At most `max` restarts of one child within `within`; the next failure stops it.
    pub fn with_max_restarts(mut self, max: u32, within: Duration) -> Self {
        self.max_restarts = Some(max);
        self.within = within;
        self
    }

    /// Restart without limit (Akka's default). Combine with a backoff.
    pub fn with_unlimited_restarts(mut self) -> Self {
        self.max_restarts = None;
        self
    }

    /// Wait between restarts, growing exponentially.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// The directive for `failure`.
    pub fn decide(&self, failure: &Failure) -> Directive {
        (self.decider)(failure)
    }

    /// One-for-one or all-for-one.
    pub fn scope(&self) -> Scope {
        self.scope
    }
}

impl Default for SupervisorStrategy {
    fn default() -> Self {
        Self::one_for_one()
    }
}

impl fmt::Debug for SupervisorStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorStrategy")
            .field("scope", &self.scope)
            .field("max_restarts", &self.max_restarts)
            .field("within", &self.within)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

fn default_decider(failure: &Failure) -> Directive {
    match failure.phase() {
        FailurePhase::Start | FailurePhase::Restart => Directive::Stop,
        _ => Directive::Restart,
    }
}

/// The outcome of asking for a restart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RestartDecision {
    /// Restart after this delay.
    Restart { delay: Duration },
    /// The restart limit is reached: stop the child.
    GiveUp,
}

/// Restart bookkeeping for one child: a plain state machine, time is an input.
#[derive(Debug, Default, Clone)]
pub(crate) struct RestartStats {
    in_window: u32,
    window_start: Option<Instant>,
}

impl RestartStats {
    /// Counts a restart request at `now` against the strategy's limits.
    pub(crate) fn request(&mut self, now: Instant, strategy: &SupervisorStrategy, random: f64) -> RestartDecision {
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) <= strategy.within => {}
            _ => {
                self.window_start = Some(now);
                self.in_window = 0;
            }
        }
        if strategy.max_restarts.is_some_and(|max| self.in_window >= max) {
            return RestartDecision::GiveUp;
        }
        let delay = match &strategy.backoff {
            Some(backoff) => backoff.delay(self.in_window, random),
            None => Duration::ZERO,
        };
        self.in_window += 1;
        RestartDecision::Restart { delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(max: u32, within_ms: u64) -> SupervisorStrategy {
        SupervisorStrategy::one_for_one().with_max_restarts(max, Duration::from_millis(within_ms))
    }

    #[test]
    fn gives_up_after_max_restarts_within_window() {
        let s = strategy(2, 1_000);
        let t0 = Instant::now();
        let mut stats = RestartStats::default();
        assert!(matches!(stats.request(t0, &s, 0.0), RestartDecision::Restart { .. }));
        assert!(matches!(
            stats.request(t0 + Duration::from_millis(10), &s, 0.0),
            RestartDecision::Restart { .. }
        ));
        assert_eq!(
            stats.request(t0 + Duration::from_millis(20), &s, 0.0),
            RestartDecision::GiveUp
        );
    }

    #[test]
    fn window_resets_the_count() {
        let s = strategy(1, 100);
        let t0 = Instant::now();
        let mut stats = RestartStats::default();
        assert!(matches!(stats.request(t0, &s, 0.0), RestartDecision::Restart { .. }));
        assert_eq!(
            stats.request(t0 + Duration::from_millis(50), &s, 0.0),
            RestartDecision::GiveUp
        );
        let later = t0 + Duration::from_millis(500);
        assert!(matches!(stats.request(later, &s, 0.0), RestartDecision::Restart { .. }));
    }

    #[test]
    fn zero_max_restarts_never_restarts() {
        let s = strategy(0, 1_000);
        assert_eq!(
            RestartStats::default().request(Instant::now(), &s, 0.0),
            RestartDecision::GiveUp
        );
    }

    #[test]
    fn backoff_doubles_then_caps_and_jitters() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_millis(50), 0.5);
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(10));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(20));
        assert_eq!(b.delay(2, 0.0), Duration::from_millis(40));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(30, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(15));
    }

    #[test]
    fn restart_delays_follow_the_backoff() {
        let s = SupervisorStrategy::one_for_one()
            .with_unlimited_restarts()
            .with_backoff(Backoff::new(Duration::from_millis(1), Duration::from_secs(1), 0.0));
        let t0 = Instant::now();
        let mut stats = RestartStats::default();
        let delays: Vec<_> = (0..4)
            .map(|i| match stats.request(t0 + Duration::from_millis(i), &s, 0.0) {
                RestartDecision::Restart { delay } => delay.as_millis(),
                RestartDecision::GiveUp => panic!("unlimited strategy gave up"),
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8]);
    }
}
