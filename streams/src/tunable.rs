//! [`Tunable`]: a stage parameter that can be changed while the stream runs.
//!
//! A stage built with a tunable (such as
//! [`filter_tunable`](crate::Flow::filter_tunable) or
//! [`throttle_tunable`](crate::Flow::throttle_tunable)) keeps a copy of the
//! value and compares a version number, one atomic load, before
//! each element; only when the version has moved does it lock and clone
//! the new value. So a change takes effect between two elements, never
//! during one, and costs nothing while nothing changes. Set it through
//! the handle or, by name, through a [`GraphManager`](crate::GraphManager).

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Waker;
use std::time::Duration;

use futures::task::AtomicWaker;

/// A named parameter shared by the stages built with it and whoever holds
/// a clone of the handle.
///
/// A stage that waits on a timer (a throttle holding an element) is woken
/// when the value changes, so a new rate applies at once rather than after
/// the old wait; with several such stages on one tunable, the last to wait
/// is woken and the others see the value at their next element.
///
/// ```
/// use compaktor_streams::{Sink, Source, Tunable};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let threshold = Tunable::new("threshold", 5u32);
/// let passed = Source::from_iter([7, 3, 9])
///     .filter_tunable(threshold.clone(), |limit, n| n >= limit)
///     .run_with(Sink::collect());
/// assert_eq!(passed.await?, vec![7, 9]);
/// // Any clone of the handle changes it for every stage built with it,
/// // from their next element on.
/// threshold.set(1);
/// assert_eq!(threshold.get(), 1);
/// # Ok(())
/// # }
/// ```
pub struct Tunable<P> {
    shared: Arc<Shared<P>>,
}

struct Shared<P> {
    name: Arc<str>,
    value: Mutex<P>,
    version: AtomicU64,
    waker: AtomicWaker,
}

impl<P> Clone for Tunable<P> {
    fn clone(&self) -> Self {
        Tunable {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P: fmt::Debug> fmt::Debug for Tunable<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunable")
            .field("name", &self.shared.name)
            .field("value", &*self.shared.lock())
            .finish()
    }
}

impl<P> Shared<P> {
    // Only clones and assignments run under this lock: a poisoned one still holds a value.
    fn lock(&self) -> std::sync::MutexGuard<'_, P> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: Clone + fmt::Debug + Send + 'static> Tunable<P> {
    /// A parameter called `name` (the name a [`GraphManager`](crate::GraphManager) finds it by), starting at `initial`.
    pub fn new(name: impl Into<String>, initial: P) -> Self {
        Tunable {
            shared: Arc::new(Shared {
                name: Arc::from(name.into()),
                value: Mutex::new(initial),
                version: AtomicU64::new(0),
                waker: AtomicWaker::new(),
            }),
        }
    }

    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current value.
    pub fn get(&self) -> P {
        self.shared.lock().clone()
    }

    /// Changes the value; stages see it before their next element.
    pub fn set(&self, value: P) {
        *self.shared.lock() = value;
        self.shared.version.fetch_add(1, Ordering::Release);
        self.shared.waker.wake();
    }

    /// A copy for a stage to keep: the value as of the last version it
    /// saw, refreshed at the stage's own pace.
    pub fn reader(&self) -> Tuned<P> {
        let seen = self.shared.version.load(Ordering::Acquire);
        Tuned {
            value: self.get(),
            seen,
            tunable: self.clone(),
        }
    }

    pub(crate) fn handle(&self) -> Arc<dyn TunableHandle> {
        Arc::new(self.clone())
    }
}

/// A stage's copy of a [`Tunable`]: reading it costs one atomic load while
/// the value has not changed.
///
/// A custom [`Stage`](crate::Stage) keeps one, calls
/// [`current`](Tuned::current) where it needs the value, and its flow says
/// [`with_tunable`](crate::Flow::with_tunable) so that a
/// [`GraphManager`](crate::GraphManager) can set it by name.
///
/// ```
/// use compaktor_streams::{Flow, GraphManager, Outlet, Sink, Source, Stage, Tunable, Tuned};
///
/// /// Multiplies each element by a factor that can change while it runs.
/// struct Scale(Tuned<u32>);
///
/// impl Stage for Scale {
///     type In = u32;
///     type Out = u32;
///     fn on_push(&mut self, element: u32, out: &mut Outlet<u32>) {
///         out.push(element * *self.0.current());
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let factor = Tunable::new("factor", 10u32);
/// let manager = GraphManager::new();
/// let (sender, all) = manager.run(
///     "scaled",
///     Source::channel(4)
///         .via(Flow::from_stage(Scale(factor.reader())).with_tunable(&factor))
///         .to_mat(Sink::collect(), compaktor_streams::Keep::both),
/// )?;
/// sender.send(1).await?;
/// manager.set_parameter("scaled", "factor", 100u32)?;
/// sender.send(2).await?;
/// drop(sender);
/// assert_eq!(all.await?.last(), Some(&200));
/// # Ok(())
/// # }
/// ```
pub struct Tuned<P> {
    tunable: Tunable<P>,
    seen: u64,
    value: P,
}

impl<P: fmt::Debug> fmt::Debug for Tuned<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tuned")
            .field("name", &self.tunable.shared.name)
            .field("value", &self.value)
            .finish()
    }
}

impl<P: Clone> Tuned<P> {
    /// Takes a new value if there is one; `true` if it did.
    pub fn refresh(&mut self) -> bool {
        let version = self.tunable.shared.version.load(Ordering::Acquire);
        if version == self.seen {
            return false;
        }
        self.value = self.tunable.shared.lock().clone();
        self.seen = version;
        true
    }

    /// The value, refreshed first.
    pub fn current(&mut self) -> &P {
        self.refresh();
        &self.value
    }

    /// The value as of the last refresh, without looking for a new one
    /// (for `&self` handlers such as [`Stage::should_pull`](crate::Stage::should_pull)).
    pub fn last(&self) -> &P {
        &self.value
    }

    /// Wakes `waker` at the next change: a stage waiting for a timer can
    /// then take a new value at once (as `throttle_tunable` does with a
    /// new rate). Only the last waker registered on a tunable is woken.
    pub fn wake_on_change(&self, waker: &Waker) {
        self.tunable.shared.waker.register(waker);
    }
}

/// A [`Tunable`] as a graph manager sees it, whatever its type.
pub(crate) trait TunableHandle: Send + Sync {
    fn name(&self) -> &str;
    /// The value, as `Debug` prints it.
    fn describe(&self) -> String;
    fn as_any(&self) -> &dyn Any;
}

impl<P: Clone + fmt::Debug + Send + 'static> TunableHandle for Tunable<P> {
    fn name(&self) -> &str {
        Tunable::name(self)
    }

    fn describe(&self) -> String {
        format!("{:?}", self.get())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The parameters of a [`throttle_tunable`](crate::Flow::throttle_tunable):
/// at most `elements` per `per`, with bursts of up to `burst`, as for
/// [`throttle`](crate::Flow::throttle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThrottleRate {
    /// Elements per period (below 1 counts as 1).
    pub elements: u32,
    /// The period.
    pub per: Duration,
    /// How many may pass at once after a quiet spell (below 1 counts as 1).
    pub burst: u32,
}

impl ThrottleRate {
    /// At most `elements` per `per`, with bursts of up to `burst`.
    pub fn new(elements: u32, per: Duration, burst: u32) -> Self {
        ThrottleRate { elements, per, burst }
    }
}
