//! Helpers shared by the integration tests: deadlines, probes and gates.
#![allow(dead_code)]

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use compaktor_actor::{ActorSystem, SystemConfig};
use tokio::sync::{mpsc, watch};

/// How long any single wait may take before the test fails. Generous: a
/// wait only takes this long when the behaviour under test is broken.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, panicking with `what` if it takes longer than `deadline`.
pub(crate) async fn within<T>(deadline: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(deadline, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {deadline:?} waiting for {what}"),
    }
}

/// Awaits `fut` with the default deadline [`WAIT`].
pub(crate) async fn wait<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within(WAIT, what, fut).await
}

/// Polls `condition` until it holds, panicking with `what` after [`WAIT`].
///
/// Only for state that publishes no event to await (a router's routee table,
/// a reference count); everything else awaits its event.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(WAIT, what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// A system with default settings, named `name`.
pub(crate) fn system(name: &str) -> ActorSystem {
    ActorSystem::new(SystemConfig::new(name)).expect("system starts")
}

/// Shuts `system` down, failing the test if that does not complete.
pub(crate) async fn shutdown(system: &ActorSystem) {
    wait("the system to shut down", system.shutdown())
        .await
        .expect("shutdown completes");
}

/// Where actors report what happened, for the test to read in order.
pub(crate) type Tx<T> = mpsc::UnboundedSender<T>;

/// The reading end of a probe.
pub(crate) struct Rx<T> {
    rx: mpsc::UnboundedReceiver<T>,
}

/// A probe: actors send into the `Tx`, the test reads from the `Rx`.
pub(crate) fn probe<T>() -> (Tx<T>, Rx<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, Rx { rx })
}

impl<T: Debug> Rx<T> {
    /// The next report; panics naming `what` if none arrives in time.
    pub(crate) async fn next(&mut self, what: &str) -> T {
        within(WAIT, what, self.rx.recv())
            .await
            .unwrap_or_else(|| panic!("probe closed while waiting for {what}"))
    }

    /// The next `n` reports.
    pub(crate) async fn take(&mut self, n: usize, what: &str) -> Vec<T> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(self.next(&format!("{what} ({i} of {n} received)")).await);
        }
        out
    }

    /// A report already sent, without waiting.
    pub(crate) fn try_next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    /// Asserts that nothing more has been reported.
    pub(crate) fn assert_empty(&mut self, context: &str) {
        if let Some(extra) = self.try_next() {
            panic!("unexpected report {extra:?}: {context}");
        }
    }

    /// Asserts that nothing is reported during `quiet` (a negative check:
    /// the wait is the point of the test, not synchronisation).
    pub(crate) async fn assert_quiet(&mut self, quiet: Duration, context: &str) {
        if let Ok(Some(extra)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            panic!("unexpected report {extra:?}: {context}");
        }
    }
}

/// A gate a handler can wait at until the test opens it. Once open it stays open.
#[derive(Clone)]
pub(crate) struct Gate {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Gate {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }

    /// Waits until the gate is open.
    pub(crate) async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }

    pub(crate) fn open(&self) {
        self.tx.send_replace(true);
    }
}

impl Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate(open: {})", *self.tx.borrow())
    }
}
