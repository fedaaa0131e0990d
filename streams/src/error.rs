//! The stream error type.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Why a stream, or one stage of it, failed.
///
/// Errors travel downstream as the terminal `on_error` signal; the stages
/// upstream of the failure are cancelled. The type is cheap to clone
/// because one failure may reach several materialised values.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A subscriber called `request(0)`: Reactive Streams rule 3.9 makes
    /// this an error that the publisher signals with `on_error` (and it
    /// then cancels). Request at least one element.
    #[error("request(0) violates reactive streams rule 3.9: demand must be positive")]
    ZeroRequest,
    /// A unicast publisher already has a subscriber (rule 1.9 lets a
    /// publisher reject further ones with `on_error`). Materialise the
    /// stream again for another subscriber.
    #[error("this publisher already has a subscriber")]
    AlreadySubscribed,
    /// A [`Buffer`](crate::OverflowStrategy::Fail) configured to fail
    /// received an element while full: downstream is too slow for upstream.
    #[error("buffer of {capacity} elements overflowed")]
    BufferOverflow {
        /// The buffer's capacity.
        capacity: usize,
    },
    /// A stage's user code returned an error (for example
    /// [`try_map`](crate::Flow::try_map)); the cause is in `source()`.
    #[error("stage {stage} failed")]
    Stage {
        /// The stage that failed.
        stage: &'static str,
        /// What the user code returned.
        #[source]
        cause: Arc<dyn Error + Send + Sync>,
    },
    /// A [`KillSwitch`](crate::KillSwitch) aborted the stream with this reason.
    #[error("aborted by a kill switch: {0}")]
    Aborted(Arc<str>),
    /// The actor a sink delivers to has stopped; the undelivered element is lost.
    #[error("the target actor has stopped")]
    ActorStopped,
    /// The stream stopped without a terminal signal: a stage panicked, or
    /// the tokio runtime shut down while it ran.
    #[error("the stream stopped abruptly (a stage panicked or the runtime shut down)")]
    AbruptTermination,
}

impl StreamError {
    /// A [`Stage`](StreamError::Stage) error from user code's error value.
    pub fn stage(stage: &'static str, cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        StreamError::Stage {
            stage,
            cause: Arc::from(cause.into()),
        }
    }

    /// An [`Aborted`](StreamError::Aborted) error with a reason.
    pub fn aborted(reason: impl fmt::Display) -> Self {
        StreamError::Aborted(Arc::from(reason.to_string()))
    }
}
