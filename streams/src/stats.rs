//! Per-stage statistics, readable while a stream runs.
//!
//! Each stage owns a [`StageCell`] of counters that only its own task
//! writes; a reader takes a [`GraphStats`] snapshot through a
//! [`StreamMonitor`]. Writers use plain relaxed stores (no read-modify-write
//! instructions) because there is one writer per counter: counting costs a
//! few cycles per element, and a snapshot may be a few elements behind a
//! running stage, exact once it has stopped.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::StreamError;

/// What a stage is doing, as of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StageState {
    /// Still processing.
    Running,
    /// Finished after its upstream completed (or it completed itself, like `take`).
    Completed,
    /// Finished with an error.
    Failed,
    /// Its downstream cancelled it.
    Cancelled,
}

/// A snapshot of one stage's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StageStats {
    /// Position in the graph, counted from the source (0) towards the sink.
    pub id: usize,
    /// The operator's name, such as `"map"` or `"async_boundary"`.
    pub name: String,
    /// Elements received from upstream (0 for a source).
    pub elements_in: u64,
    /// Elements passed downstream; for a sink, passed to its consumer (a
    /// subscriber, an actor), and 0 when it keeps them (fold, collect).
    pub elements_out: u64,
    /// Demand the downstream has signalled and this stage has not yet met.
    /// Inside a fused island a downstream waits for one element at a time,
    /// so this is 0 or 1; at an async boundary it is the outstanding
    /// `request(n)` total.
    pub demand: u64,
    /// Elements held inside the stage (a buffer's fill, an async
    /// boundary's queue, `map_async`'s futures in flight).
    pub buffered: u64,
    /// Errors the stage raised or passed on.
    pub errors: u64,
    /// Running, or how it ended.
    pub state: StageState,
}

/// A snapshot of every stage of one running graph, source first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphStats {
    /// One entry per stage, in order from source to sink.
    pub stages: Vec<StageStats>,
}

impl GraphStats {
    /// The first stage with this name.
    pub fn stage(&self, name: &str) -> Option<&StageStats> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// A live view of a running graph's statistics, returned by
/// [`RunnableGraph::run_monitored`](crate::RunnableGraph::run_monitored).
///
/// Cheap to clone; it keeps only the counters alive, not the stream.
///
/// ```
/// use compaktor_streams::{Sink, Source, StageState};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let (sum, monitor) = Source::from_iter(1..=10u64)
///     .filter(|n| n % 2 == 0)
///     .to_mat(Sink::fold(0, |acc, n| acc + n), compaktor_streams::Keep::right)
///     .run_monitored();
/// assert_eq!(sum.await?, 30);
///
/// let stats = monitor.stats();
/// let filter = stats.stage("filter").unwrap();
/// assert_eq!((filter.elements_in, filter.elements_out), (10, 5));
/// assert_eq!(filter.state, StageState::Completed);
/// println!("{}", serde_json::to_string(&stats).unwrap());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct StreamMonitor {
    cells: Arc<[Arc<StageCell>]>,
}

impl StreamMonitor {
    pub(crate) fn new(cells: Vec<Arc<StageCell>>) -> Self {
        StreamMonitor { cells: cells.into() }
    }

    /// A snapshot of every stage now.
    pub fn stats(&self) -> GraphStats {
        // A linear graph registers its cells from source to sink, so what a
        // stage took in is what the stage before it passed on: counting
        // each hand-over once halves the cost of statistics per element.
        let mut elements_in = 0;
        let mut stages = Vec::with_capacity(self.cells.len());
        for (id, cell) in self.cells.iter().enumerate() {
            let stats = cell.snapshot(id, elements_in);
            elements_in = stats.elements_out;
            stages.push(stats);
        }
        GraphStats { stages }
    }
}

const RUNNING: u8 = 0;
const COMPLETED: u8 = 1;
const FAILED: u8 = 2;
const CANCELLED: u8 = 3;

/// The live counters of one stage. One task writes them.
#[derive(Debug)]
pub(crate) struct StageCell {
    name: &'static str,
    elements_out: AtomicU64,
    demand: AtomicU64,
    buffered: AtomicU64,
    errors: AtomicU64,
    state: AtomicU8,
}

// Single writer: load + store is enough and avoids a locked instruction per element.
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

impl StageCell {
    pub(crate) fn new(name: &'static str) -> Arc<Self> {
        Arc::new(StageCell {
            name,
            elements_out: AtomicU64::new(0),
            demand: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            state: AtomicU8::new(RUNNING),
        })
    }

    pub(crate) fn add_out(&self) {
        bump(&self.elements_out);
    }

    pub(crate) fn add_error(&self) {
        bump(&self.errors);
    }

    pub(crate) fn set_demand(&self, demand: u64) {
        self.demand.store(demand, Ordering::Relaxed);
    }

    pub(crate) fn set_buffered(&self, buffered: usize) {
        self.buffered.store(buffered as u64, Ordering::Relaxed);
    }

    pub(crate) fn completed(&self) {
        self.finish(COMPLETED);
    }

    pub(crate) fn failed(&self) {
        self.add_error();
        self.finish(FAILED);
    }

    /// Records how the stream ended and turns it into what a stage's
    /// `poll_next` yields: nothing after completion, the error after a failure.
    pub(crate) fn ended<T>(&self, end: Result<(), StreamError>) -> Option<Result<T, StreamError>> {
        match end {
            Ok(()) => {
                self.completed();
                None
            }
            Err(error) => {
                self.failed();
                Some(Err(error))
            }
        }
    }

    pub(crate) fn cancelled(&self) {
        self.finish(CANCELLED);
    }

    // The first ending wins: a stage that failed and is then dropped stays failed.
    fn finish(&self, state: u8) {
        let _ = self
            .state
            .compare_exchange(RUNNING, state, Ordering::Relaxed, Ordering::Relaxed);
        self.demand.store(0, Ordering::Relaxed);
    }

    fn snapshot(&self, id: usize, elements_in: u64) -> StageStats {
        let state = match self.state.load(Ordering::Relaxed) {
            RUNNING => StageState::Running,
            COMPLETED => StageState::Completed,
            FAILED => StageState::Failed,
            _ => StageState::Cancelled,
        };
        StageStats {
            id,
            name: self.name.to_owned(),
            elements_in,
            elements_out: self.elements_out.load(Ordering::Relaxed),
            demand: self.demand.load(Ordering::Relaxed),
            buffered: self.buffered.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            state,
        }
    }
}
