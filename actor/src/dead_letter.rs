//! Dead letters: messages that could not be delivered.
//!
//! Nothing vanishes silently. A message to a stopped actor, one that finds a
//! full mailbox it may not wait on, one still queued when its actor stops,
//! or one sent to a router without routees is published on the event stream
//! as a [`DeadLetter`], counted in [`DeadLetterStats`], and logged at INFO
//! (at most `dead_letter_log_limit` lines per second; the rest are counted
//! and summarised). A subscriber can take the message itself back out of the
//! dead letter with [`DeadLetter::take`] and retry it.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::event_stream::Topic;
use crate::mailbox::lock;
use crate::path::ActorPath;

/// Why a message became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// Sent to an actor that had already stopped.
    RecipientStopped,
    /// Still in the mailbox (or stash) when the actor stopped.
    StoppedBeforeHandled,
    /// The recipient's bounded mailbox was full, or, for an actor on
    /// another node, the send queue to that node.
    MailboxFull,
    /// Sent to a router that has no routees.
    NoRoutees,
    /// The recipient's node could not be reached: no connection, or the
    /// connection was lost.
    Unreachable,
    /// Larger than the transport's frame limit.
    TooLarge,
    /// Could not be encoded, or arrived as bytes that could not be decoded:
    /// a malformed frame, an unregistered message type, a payload that does
    /// not match its type.
    Undecodable,
}

impl DeadLetterReason {
    const ALL: [DeadLetterReason; 7] = [
        DeadLetterReason::RecipientStopped,
        DeadLetterReason::StoppedBeforeHandled,
        DeadLetterReason::MailboxFull,
        DeadLetterReason::NoRoutees,
        DeadLetterReason::Unreachable,
        DeadLetterReason::TooLarge,
        DeadLetterReason::Undecodable,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadLetterReason::RecipientStopped => "recipient stopped",
            DeadLetterReason::StoppedBeforeHandled => "recipient stopped before handling it",
            DeadLetterReason::MailboxFull => "mailbox full",
            DeadLetterReason::NoRoutees => "router has no routees",
            DeadLetterReason::Unreachable => "node unreachable",
            DeadLetterReason::TooLarge => "too large for the wire",
            DeadLetterReason::Undecodable => "could not be encoded or decoded",
        })
    }
}

/// A message that could not be delivered.
#[derive(Clone)]
pub struct DeadLetter {
    recipient: ActorPath,
    sender: Option<ActorPath>,
    message_type: &'static str,
    reason: DeadLetterReason,
    message: Arc<Mutex<Option<Box<dyn Any + Send>>>>,
}

impl DeadLetter {
    /// The intended recipient.
    pub fn recipient(&self) -> &ActorPath {
        &self.recipient
    }

    /// The sending actor, when the message was sent from inside one.
    pub fn sender(&self) -> Option<&ActorPath> {
        self.sender.as_ref()
    }

    /// The message's Rust type name.
    pub fn message_type(&self) -> &'static str {
        self.message_type
    }

    /// Why it was not delivered.
    pub fn reason(&self) -> DeadLetterReason {
        self.reason
    }

    /// Takes the message out, if it is of type `M` and nobody took it yet.
    ///
    /// All subscribers see the same dead letter; the first to take the
    /// message gets it.
    pub fn take<M: 'static>(&self) -> Option<M> {
        let mut slot = lock(&self.message);
        match slot.take()?.downcast::<M>() {
            Ok(m) => Some(*m),
            Err(other) => {
                *slot = Some(other);
                None
            }
        }
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("recipient", &self.recipient)
            .field("sender", &self.sender)
            .field("message_type", &self.message_type)
            .field("reason", &self.reason)
            .finish()
    }
}

impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message of type {} to {} was not delivered: {}",
            self.message_type, self.recipient, self.reason
        )
    }
}

/// Dead letters counted since the system started, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetterStats {
    /// All dead letters.
    pub total: u64,
    /// Sent to an actor that had already stopped.
    pub recipient_stopped: u64,
    /// Still queued when the actor stopped.
    pub stopped_before_handled: u64,
    /// Refused by a full bounded mailbox.
    pub mailbox_full: u64,
    /// Sent to a router without routees.
    pub no_routees: u64,
    /// Bound for a node that could not be reached.
    pub unreachable: u64,
    /// Larger than the transport's frame limit.
    pub too_large: u64,
    /// Failed to encode, or arrived undecodable.
    pub undecodable: u64,
}

pub(crate) struct DeadLetterOffice {
    counts: [AtomicU64; DeadLetterReason::ALL.len()],
    limiter: Mutex<LogLimiter>,
    topic: Arc<Topic<DeadLetter>>,
}

impl DeadLetterOffice {
    pub(crate) fn new(topic: Arc<Topic<DeadLetter>>, logs_per_second: u32) -> Self {
        DeadLetterOffice {
            counts: Default::default(),
            limiter: Mutex::new(LogLimiter::new(logs_per_second, Duration::from_secs(1))),
            topic,
        }
    }

    pub(crate) fn publish<M: Send + 'static>(
        &self,
        recipient: &ActorPath,
        sender: Option<ActorPath>,
        msg: M,
        reason: DeadLetterReason,
    ) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
        let message_type = std::any::type_name::<M>();
        if let LogDecision::Log { suppressed } = lock(&self.limiter).admit(Instant::now()) {
            if suppressed > 0 {
                tracing::info!(suppressed, "dead letters not logged because of the log rate limit");
            }
            tracing::info!(
                recipient = %recipient,
                sender = sender.as_ref().map(tracing::field::display),
                message_type,
                %reason,
                "dead letter"
            );
        }
        if self.topic.has_subscribers() {
            self.topic.publish(DeadLetter {
                recipient: recipient.clone(),
                sender,
                message_type,
                reason,
                message: Arc::new(Mutex::new(Some(Box::new(msg)))),
            });
        }
    }

    pub(crate) fn stats(&self) -> DeadLetterStats {
        let get = |r: DeadLetterReason| self.counts[r.index()].load(Ordering::Relaxed);
        let mut stats = DeadLetterStats {
            total: 0,
            recipient_stopped: get(DeadLetterReason::RecipientStopped),
            stopped_before_handled: get(DeadLetterReason::StoppedBeforeHandled),
            mailbox_full: get(DeadLetterReason::MailboxFull),
            no_routees: get(DeadLetterReason::NoRoutees),
            unreachable: get(DeadLetterReason::Unreachable),
            too_large: get(DeadLetterReason::TooLarge),
            undecodable: get(DeadLetterReason::Undecodable),
        };
        stats.total = DeadLetterReason::ALL.iter().map(|r| get(*r)).sum();
        stats
    }
}

/// Whether to write a log line now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LogDecision {
    /// Log; `suppressed` lines were skipped since the last one logged.
    Log {
        suppressed: u64,
    },
    Skip,
}

/// At most `per_window` log lines per `window`; time is an input.
#[derive(Debug)]
pub(crate) struct LogLimiter {
    per_window: u32,
    window: Duration,
    window_start: Option<Instant>,
    in_window: u32,
    suppressed: u64,
}

impl LogLimiter {
    pub(crate) fn new(per_window: u32, window: Duration) -> Self {
        LogLimiter {
            per_window,
            window,
            window_start: None,
            in_window: 0,
            suppressed: 0,
        }
    }

    pub(crate) fn admit(&mut self, now: Instant) -> LogDecision {
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < self.window => {}
            _ => {
                self.window_start = Some(now);
                self.in_window = 0;
            }
        }
        if self.in_window < self.per_window {
            self.in_window += 1;
            LogDecision::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += 1;
            LogDecision::Skip
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_caps_lines_per_window_and_reports_the_skipped() {
        let mut limiter = LogLimiter::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(limiter.admit(t0), LogDecision::Log { suppressed: 0 });
        assert_eq!(limiter.admit(t0), LogDecision::Log { suppressed: 0 });
        assert_eq!(limiter.admit(t0), LogDecision::Skip);
        assert_eq!(limiter.admit(t0 + Duration::from_millis(500)), LogDecision::Skip);
        assert_eq!(
            limiter.admit(t0 + Duration::from_secs(1)),
            LogDecision::Log { suppressed: 2 }
        );
    }

    #[test]
    fn zero_limit_never_logs() {
        let mut limiter = LogLimiter::new(0, Duration::from_secs(1));
        assert_eq!(limiter.admit(Instant::now()), LogDecision::Skip);
    }
}
