//! [`KillSwitch`]: stop a running stream from outside.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Context;

use futures::task::AtomicWaker;

use crate::error::StreamError;
use crate::stage::{Outlet, Stage};

/// Stops the stream it was materialised in, from any task: downstream of
/// the switch completes (or fails), upstream of it is cancelled.
///
/// Materialised by [`Flow::kill_switch`](crate::Flow::kill_switch). Only the
/// first call has an effect; cloning gives another handle to the same switch.
///
/// ```
/// use compaktor_streams::{Flow, Keep, Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let (switch, done) = Source::<u32>::channel(4)
///     .via_mat(Flow::kill_switch(), Keep::right)
///     .to_mat(Sink::ignore(), Keep::both)
///     .run();
/// switch.shutdown();
/// done.await?; // completes although the channel is still open
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct KillSwitch {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    signal: Mutex<Option<Result<(), StreamError>>>,
    // Lets the stage skip the lock on every element until the switch is used.
    triggered: AtomicBool,
    waker: AtomicWaker,
}

impl KillSwitch {
    pub(crate) fn new() -> Self {
        KillSwitch {
            shared: Arc::new(Shared::default()),
        }
    }

    /// Completes the stream downstream of the switch and cancels upstream.
    pub fn shutdown(&self) {
        self.trigger(Ok(()));
    }

    /// Fails the stream downstream of the switch with `error` and cancels upstream.
    pub fn abort(&self, error: StreamError) {
        self.trigger(Err(error));
    }

    fn trigger(&self, signal: Result<(), StreamError>) {
        if let Ok(mut slot) = self.shared.signal.lock() {
            slot.get_or_insert(signal);
        }
        self.shared.triggered.store(true, Ordering::Release);
        self.shared.waker.wake();
    }

    pub(crate) fn stage<T>(&self) -> KillStage<T> {
        KillStage {
            shared: Arc::clone(&self.shared),
            _in: PhantomData,
        }
    }
}

pub(crate) struct KillStage<T> {
    shared: Arc<Shared>,
    _in: PhantomData<fn(T)>,
}

impl<T: Send + 'static> Stage for KillStage<T> {
    type In = T;
    type Out = T;

    fn name(&self) -> &'static str {
        "kill_switch"
    }

    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        out.push(element);
    }

    fn on_poll(&mut self, cx: &mut Context<'_>, out: &mut Outlet<T>) {
        self.shared.waker.register(cx.waker());
        if !self.shared.triggered.load(Ordering::Acquire) {
            return;
        }
        let signal = match self.shared.signal.lock() {
            Ok(mut slot) => slot.take(),
            Err(_) => None,
        };
        match signal {
            Some(Ok(())) => out.complete(),
            Some(Err(error)) => out.fail(error),
            None => {}
        }
    }
}
