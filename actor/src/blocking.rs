//! The blocking pool: OS threads of their own for actors that block.
//!
//! Each thread drives its actors with the system's runtime handle, so timers
//! and `tokio::spawn` inside a handler work as usual, while a handler that
//! blocks the thread holds up only the actors on that thread, never the
//! async workers.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::LocalSet;

use crate::mailbox::lock;

type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub(crate) struct BlockingPool {
    lanes: Mutex<Vec<mpsc::UnboundedSender<Task>>>,
    next: AtomicUsize,
}

impl BlockingPool {
    pub(crate) fn start(name: &str, threads: usize, runtime: &Handle) -> io::Result<Self> {
        let mut lanes = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, mut rx) = mpsc::unbounded_channel::<Task>();
            let runtime = runtime.clone();
            std::thread::Builder::new()
                .name(format!("{name}-blocking-{i}"))
                .spawn(move || {
                    let local = LocalSet::new();
                    runtime.block_on(local.run_until(async move {
                        while let Some(task) = rx.recv().await {
                            tokio::task::spawn_local(task);
                        }
                    }));
                })?;
            lanes.push(tx);
        }
        Ok(BlockingPool {
            lanes: Mutex::new(lanes),
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `task` on one of the pool's threads, round-robin.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let lanes = lock(&self.lanes);
        if lanes.is_empty() {
            tracing::error!("blocking pool is closed; actor not started");
            return;
        }
        let lane = self.next.fetch_add(1, Ordering::Relaxed) % lanes.len();
        let _ = lanes[lane].send(Box::pin(task));
    }

    /// Lets the threads exit once their current actors are done.
    pub(crate) fn close(&self) {
        lock(&self.lanes).clear();
    }
}
