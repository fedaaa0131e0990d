//! Per-stage supervision: what a stage does when its own code fails.
//!
//! A [`Decider`] attached to a stage with
//! [`with_supervision`](crate::Flow::with_supervision) sees every error the
//! stage raises itself (an `Err` from [`try_map`](crate::Flow::try_map), a
//! failed [`ask`](crate::Flow::ask), a [`Stage`](crate::Stage) calling
//! [`Outlet::fail`](crate::Outlet::fail) while handling an element) and every
//! panic of the user function called per element, and answers with a
//! [`Directive`]:
//!
//! - [`Stop`](Directive::Stop) fails the stream, as a stage without a
//!   decider does;
//! - [`Resume`](Directive::Resume) drops the element that failed and goes on
//!   with the stage's state as it is;
//! - [`Restart`](Directive::Restart) drops the element and resets the
//!   stage's state ([`Stage::on_restart`](crate::Stage::on_restart): `scan`
//!   goes back to its zero, `grouped` empties its group, `take` and `skip`
//!   count again), then goes on.
//!
//! Failures that come from upstream are not the stage's own: they pass
//! through undecided (use [`recover`](crate::Flow::recover) for those).
//! Elements the stage pushed before failing are kept. Each resumed or
//! restarted failure counts in the stage's
//! [`errors`](crate::StageStats::errors).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::StreamError;

/// What a failing stage does next (Akka's `Supervision.Directive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Directive {
    /// Fail the stream with the error.
    Stop,
    /// Drop the failing element and continue.
    Resume,
    /// Drop the failing element, reset the stage's state, and continue.
    Restart,
}

/// Chooses a [`Directive`] for each error a stage raises (Akka's
/// `Supervision.Decider`). Cheap to clone.
///
/// ```
/// use compaktor_streams::{Decider, Directive, Sink, Source, StreamError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), StreamError> {
/// // Skip what does not parse; stop on anything else.
/// let decider = Decider::new(|error| match error {
///     StreamError::Stage { .. } => Directive::Resume,
///     _ => Directive::Stop,
/// });
/// let numbers = Source::from_iter(["1", "two", "3"])
///     .try_map(|s| s.parse::<u32>())
///     .with_supervision(decider)
///     .run_with(Sink::collect());
/// assert_eq!(numbers.await?, vec![1, 3]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Decider {
    decide: Arc<dyn Fn(&StreamError) -> Directive + Send + Sync>,
}

impl fmt::Debug for Decider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Decider { .. }")
    }
}

impl Decider {
    /// A decider that asks `decide` for each error.
    pub fn new(decide: impl Fn(&StreamError) -> Directive + Send + Sync + 'static) -> Self {
        Decider {
            decide: Arc::new(decide),
        }
    }

    /// Always [`Stop`](Directive::Stop): the default, but panics in the
    /// stage's function become [`StreamError::Panicked`] instead of an
    /// abrupt termination.
    pub fn stopping() -> Self {
        Decider::new(|_| Directive::Stop)
    }

    /// Always [`Resume`](Directive::Resume).
    pub fn resuming() -> Self {
        Decider::new(|_| Directive::Resume)
    }

    /// Always [`Restart`](Directive::Restart).
    pub fn restarting() -> Self {
        Decider::new(|_| Directive::Restart)
    }

    /// The directive for `error`.
    pub fn decide(&self, error: &StreamError) -> Directive {
        (self.decide)(error)
    }
}

/// The message of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
