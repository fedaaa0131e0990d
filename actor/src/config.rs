//! System configuration.

use std::time::Duration;

use crate::mailbox::MailboxConfig;
use crate::supervision::SupervisorStrategy;

/// Settings of an [`ActorSystem`](crate::ActorSystem). Start from
/// [`SystemConfig::new`] and change the fields you care about.
///
/// ```
/// use std::time::Duration;
/// use compaktor_actor::{MailboxConfig, OverflowPolicy, SystemConfig};
///
/// let mut config = SystemConfig::new("orders");
/// config.default_mailbox = MailboxConfig::bounded(10_000, OverflowPolicy::WaitForRoom);
/// config.stuck_threshold = Duration::from_secs(2);
/// config.blocking_threads = 8;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SystemConfig {
    /// The system's name, the first part of every path. Default: as given to `new`.
    pub name: String,
    /// The host in actor paths. A local system keeps the default, `127.0.0.1`;
    /// the remoting layer sets the address it listens on.
    pub host: String,
    /// The port in actor paths. Default 0 (not listening).
    pub port: u16,
    /// The mailbox of actors whose props name none. Default: unbounded.
    pub default_mailbox: MailboxConfig,
    /// How the user guardian supervises top-level actors. Default: one-for-one,
    /// restart on failure (stop on a failure while starting), at most 10 restarts a minute.
    pub guardian_strategy: SupervisorStrategy,
    /// A handler running longer than this is reported as stuck in the health
    /// snapshot. Default: 5 s.
    pub stuck_threshold: Duration,
    /// How many of the deepest mailboxes the health snapshot lists. Default: 10.
    pub health_top_mailboxes: usize,
    /// Dead letters logged per second at most; the rest are counted. 0 turns
    /// the log off. Default: 10.
    pub dead_letter_log_limit: u32,
    /// Events buffered per event-stream subscriber before it lags. Default: 1024.
    pub event_buffer: usize,
    /// OS threads of the blocking pool, started on first use. Default: 4.
    pub blocking_threads: usize,
    /// How long `shutdown` waits for every actor to stop. Default: 10 s.
    pub shutdown_timeout: Duration,
    /// How long one readiness check may take. Default: 2 s.
    pub readiness_timeout: Duration,
    /// The most messages one actor may stash. Default: 10 000.
    pub stash_capacity: usize,
}

impl SystemConfig {
    /// The default configuration for a system called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        SystemConfig {
            name: name.into(),
            host: "127.0.0.1".to_owned(),
            port: 0,
            default_mailbox: MailboxConfig::Unbounded,
            guardian_strategy: SupervisorStrategy::default(),
            stuck_threshold: Duration::from_secs(5),
            health_top_mailboxes: 10,
            dead_letter_log_limit: 10,
            event_buffer: 1024,
            blocking_threads: 4,
            shutdown_timeout: Duration::from_secs(10),
            readiness_timeout: Duration::from_secs(2),
            stash_capacity: 10_000,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if crate::path::validate_name(&self.name).is_err() {
            return Err("name must be a valid path element");
        }
        if self.host.is_empty() {
            return Err("host must not be empty");
        }
        if self.blocking_threads == 0 {
            return Err("blocking_threads must be at least 1");
        }
        Ok(())
    }
}
