//! Error types, one per operation.
//!
//! Errors for a message that was not delivered give the message back
//! (`into_inner`), and their `Debug` does not need `M: Debug`.

use std::fmt;

use crate::dead_letter::DeadLetterReason;

/// A string could not be parsed as an [`ActorPath`](crate::ActorPath).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The text is not of the form `compaktor://<system>@<host>:<port>/<names>[#uid]`.
    #[error("invalid actor path {path:?}: {why}")]
    Invalid {
        /// The text that failed to parse.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// An actor system could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SystemError {
    /// `ActorSystem::new` was called outside a tokio runtime. Call it from
    /// within `#[tokio::main]`, a runtime's `block_on`, or a spawned task.
    #[error("an actor system must be created inside a tokio runtime")]
    NoRuntime,
    /// The configuration is unusable; the message says which setting.
    #[error("invalid system configuration: {0}")]
    InvalidConfig(&'static str),
}

/// An actor could not be spawned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The name is not a valid path element; pick another name.
    #[error("invalid actor name {name:?}: {why}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        why: &'static str,
    },
    /// A live sibling already has this name. Names are freed when the
    /// previous holder has terminated (await its `terminated()`).
    #[error("an actor named {0:?} already exists under this parent")]
    NameTaken(String),
    /// The parent actor is stopping and accepts no new children.
    #[error("the parent actor is stopping")]
    ParentStopping,
    /// The actor system is shutting down or has terminated.
    #[error("the actor system is shutting down")]
    ShuttingDown,
    /// The router configuration cannot work, for example balancing over a group.
    #[error("invalid router configuration: {0}")]
    InvalidRouter(&'static str),
    /// The actor asked for the blocking pool, and its threads could not be started.
    #[error("cannot start the blocking pool's threads: {0}")]
    BlockingPoolUnavailable(std::io::ErrorKind),
}

/// A look-up by path found nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The path text did not parse.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// No live actor has this path.
    #[error("no actor at {0}")]
    NotFound(String),
    /// An actor lives there, but it takes another message type.
    #[error("actor at {path} takes {actual}, not {expected}")]
    WrongType {
        /// The path looked up.
        path: String,
        /// The message type the caller asked for.
        expected: &'static str,
        /// The message type the actor accepts.
        actual: &'static str,
    },
    /// The path belongs to another system or node, and no remoting layer is
    /// installed that could reach it.
    #[error("{0} is not in this actor system")]
    NotLocal(String),
}

/// [`ActorRef::try_tell`](crate::ActorRef::try_tell) did not deliver; the message is given back.
#[non_exhaustive]
pub enum TryTellError<M> {
    /// The bounded mailbox is full.
    Full(M),
    /// The actor has stopped (or a router has no routees).
    Closed(M),
    /// The message cannot cross the wire: it encodes larger than the
    /// transport's frame limit, or fails to encode.
    TooLarge(M),
    /// The actor's node cannot be reached: no connection, or its send queue is full.
    Unreachable(M),
}

/// [`ActorRef::send`](crate::ActorRef::send) did not deliver; the message is given back.
#[non_exhaustive]
pub enum SendError<M> {
    /// The mailbox is full and its overflow policy is [`Fail`](crate::OverflowPolicy::Fail).
    Full(M),
    /// The actor has stopped (or a router has no routees).
    Closed(M),
    /// The message cannot cross the wire; see [`TryTellError::TooLarge`].
    TooLarge(M),
    /// The actor's node cannot be reached; see [`TryTellError::Unreachable`].
    Unreachable(M),
}

macro_rules! message_error {
    ($name:ident, $what:literal) => {
        impl<M> $name<M> {
            /// The message that was not delivered.
            pub fn into_inner(self) -> M {
                match self {
                    $name::Full(m) | $name::Closed(m) | $name::TooLarge(m) | $name::Unreachable(m) => m,
                }
            }

            /// Whether the mailbox was full (as opposed to closed).
            pub fn is_full(&self) -> bool {
                matches!(self, $name::Full(_))
            }
        }

        impl<M> fmt::Debug for $name<M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::Full(_) => f.write_str(concat!(stringify!($name), "::Full(..)")),
                    $name::Closed(_) => f.write_str(concat!(stringify!($name), "::Closed(..)")),
                    $name::TooLarge(_) => f.write_str(concat!(stringify!($name), "::TooLarge(..)")),
                    $name::Unreachable(_) => f.write_str(concat!(stringify!($name), "::Unreachable(..)")),
                }
            }
        }

        impl<M> fmt::Display for $name<M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::Full(_) => f.write_str(concat!($what, ": mailbox full")),
                    $name::Closed(_) => f.write_str(concat!($what, ": recipient stopped")),
                    $name::TooLarge(_) => f.write_str(concat!($what, ": message too large for the wire")),
                    $name::Unreachable(_) => f.write_str(concat!($what, ": node unreachable")),
                }
            }
        }

        impl<M> std::error::Error for $name<M> {}

        impl<M> $name<M> {
            /// The error for a message a transport refused.
            pub(crate) fn refused(msg: M, reason: DeadLetterReason) -> Self {
                match reason {
                    DeadLetterReason::MailboxFull => $name::Full(msg),
                    DeadLetterReason::TooLarge | DeadLetterReason::Undecodable => $name::TooLarge(msg),
                    DeadLetterReason::Unreachable => $name::Unreachable(msg),
                    _ => $name::Closed(msg),
                }
            }
        }
    };
}

message_error!(TryTellError, "try_tell failed");
message_error!(SendError, "send failed");

/// An [`ask`](crate::ActorRef::ask) got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// No reply arrived within the timeout. The request may still be
    /// processed later; its reply is then discarded.
    #[error("ask timed out")]
    Timeout,
    /// The recipient had stopped, or stopped before it replied.
    #[error("ask failed: recipient terminated")]
    Terminated,
    /// The recipient's bounded mailbox was full.
    #[error("ask failed: mailbox full")]
    MailboxFull,
    /// The recipient dropped the reply handle without replying.
    #[error("ask failed: the recipient dropped the reply handle without replying")]
    NoReply,
    /// The request cannot cross the wire: too large, or it fails to encode.
    #[error("ask failed: request too large for the wire")]
    TooLarge,
    /// The recipient's node cannot be reached.
    #[error("ask failed: node unreachable")]
    Unreachable,
}

impl AskError {
    /// The error for a request that became a dead letter for `reason`.
    pub(crate) fn undelivered(reason: DeadLetterReason) -> Self {
        match reason {
            DeadLetterReason::MailboxFull => AskError::MailboxFull,
            DeadLetterReason::TooLarge | DeadLetterReason::Undecodable => AskError::TooLarge,
            DeadLetterReason::Unreachable => AskError::Unreachable,
            _ => AskError::Terminated,
        }
    }
}

/// The system did not shut down within its configured timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// Some actors were still stopping (a `post_stop` or handler that does not return).
    #[error("shutdown timed out with {live_actors} actors still running")]
    Timeout {
        /// Actors still alive when the timeout struck.
        live_actors: usize,
    },
}

/// The stash is at its capacity; the message is given back.
pub struct StashError<M>(pub M);

impl<M> StashError<M> {
    /// The message that was not stashed.
    pub fn into_inner(self) -> M {
        self.0
    }
}

impl<M> fmt::Debug for StashError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StashError(..)")
    }
}

impl<M> fmt::Display for StashError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stash is full")
    }
}

impl<M> std::error::Error for StashError<M> {}
