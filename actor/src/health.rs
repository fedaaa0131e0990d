//! Health snapshots: how the system is doing, as a typed, serialisable value.
//!
//! [`ActorSystem::health`] walks the actor tree and runs the readiness
//! checks. The report is meant for a `/health` endpoint or a log line:
//! serialise it with serde. Status is `Unhealthy` while a readiness check
//! fails or after the system terminated, `Degraded` while some handler has
//! run past `stuck_threshold`, and `Healthy` otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cell::ErasedCell;
use crate::dead_letter::DeadLetterStats;
use crate::mailbox::lock;
use crate::supervision::ActorError;
use crate::system::ActorSystem;

/// Overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HealthStatus {
    /// All readiness checks pass and no handler is stuck.
    Healthy,
    /// Ready, but some handler has run longer than the stuck threshold.
    Degraded,
    /// A readiness check fails, or the system has terminated.
    Unhealthy,
}

/// One actor's mailbox depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxDepth {
    /// The actor's path.
    pub actor: String,
    /// Messages waiting.
    pub depth: usize,
}

/// An actor whose current handler has run longer than the stuck threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckActor {
    /// The actor's path.
    pub actor: String,
    /// How long the handler has been running, in milliseconds.
    pub busy_ms: u64,
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessResult {
    /// The name the check was registered under.
    pub name: String,
    /// Whether it passed within the readiness timeout.
    pub ready: bool,
    /// Why not, when it failed or timed out.
    pub error: Option<String>,
}

/// A snapshot of the system's health.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use compaktor_actor::{ActorSystem, HealthStatus, SystemConfig};
///
/// let system = ActorSystem::new(SystemConfig::new("svc")).unwrap();
/// system.add_readiness_check("database", || async { Ok(()) });
/// let report = system.health().await;
/// assert_eq!(report.status, HealthStatus::Healthy);
/// assert!(report.readiness[0].ready);
/// let json = serde_json::to_string(&report).unwrap();
/// assert!(json.contains("\"live_actors\":0"));
/// # system.shutdown().await.unwrap();
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// The system's name.
    pub system: String,
    /// The overall status.
    pub status: HealthStatus,
    /// Milliseconds since the system started.
    pub uptime_ms: u64,
    /// Actors alive.
    pub live_actors: usize,
    /// Restarts performed since start.
    pub restarts: u64,
    /// Dead letters since start.
    pub dead_letters: DeadLetterStats,
    /// The deepest mailboxes, deepest first (at most `health_top_mailboxes`, empty ones left out).
    pub deepest_mailboxes: Vec<MailboxDepth>,
    /// Handlers running longer than `stuck_threshold`, longest first.
    pub stuck_actors: Vec<StuckActor>,
    /// Readiness checks, in registration order.
    pub readiness: Vec<ReadinessResult>,
}

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), ActorError>> + Send>>;

/// A user-registered readiness check.
pub(crate) struct ReadinessCheck {
    name: String,
    check: Arc<dyn Fn() -> CheckFuture + Send + Sync>,
}

impl ReadinessCheck {
    pub(crate) fn new<F, Fut>(name: String, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ActorError>> + Send + 'static,
    {
        ReadinessCheck {
            name,
            check: Arc::new(move || Box::pin(check())),
        }
    }
}

impl ActorSystem {
    /// Takes a health snapshot: walks every live actor and runs the
    /// readiness checks concurrently, each bounded by `readiness_timeout`.
    pub async fn health(&self) -> HealthReport {
        let config = self.config();
        let threshold = config.stuck_threshold.as_millis() as u64;
        let mut depths = Vec::new();
        let mut stuck = Vec::new();
        let mut pending: Vec<Arc<dyn ErasedCell>> = self
            .guardian()
            .map(|g| lock(&g.core().children).snapshot())
            .unwrap_or_default();
        while let Some(cell) = pending.pop() {
            let core = cell.core();
            let depth = cell.mailbox_depth();
            if depth > 0 {
                depths.push(MailboxDepth {
                    actor: core.path.to_string(),
                    depth,
                });
            }
            let since = cell.busy_since();
            if since != 0 {
                let busy_ms = self.busy_for_ms(since);
                if busy_ms >= threshold {
                    stuck.push(StuckActor {
                        actor: core.path.to_string(),
                        busy_ms,
                    });
                }
            }
            pending.extend(lock(&core.children).snapshot());
        }
        depths.sort_by_key(|d| std::cmp::Reverse(d.depth));
        depths.truncate(config.health_top_mailboxes);
        stuck.sort_by_key(|s| std::cmp::Reverse(s.busy_ms));

        let readiness = self.run_readiness_checks().await;
        let status = if self.is_terminated() || readiness.iter().any(|r| !r.ready) {
            HealthStatus::Unhealthy
        } else if !stuck.is_empty() {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        HealthReport {
            system: self.name().to_owned(),
            status,
            uptime_ms: self.uptime().as_millis() as u64,
            live_actors: self.live_actors(),
            restarts: self.inner().restarts.load(Ordering::Relaxed),
            dead_letters: self.dead_letter_stats(),
            deepest_mailboxes: depths,
            stuck_actors: stuck,
            readiness,
        }
    }

    async fn run_readiness_checks(&self) -> Vec<ReadinessResult> {
        let timeout = self.config().readiness_timeout;
        let checks: Vec<(String, CheckFuture)> = lock(&self.inner().readiness)
            .iter()
            .map(|c| (c.name.clone(), (c.check)()))
            .collect();
        let running: Vec<_> = checks
            .into_iter()
            .map(|(name, check)| (name, self.runtime().spawn(tokio::time::timeout(timeout, check))))
            .collect();
        let mut results = Vec::with_capacity(running.len());
        for (name, task) in running {
            let error = match task.await {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(error))) => Some(error.to_string()),
                Ok(Err(_)) => Some(format!("timed out after {timeout:?}")),
                Err(join) => Some(format!("check panicked: {join}")),
            };
            results.push(ReadinessResult {
                name,
                ready: error.is_none(),
                error,
            });
        }
        results
    }
}
