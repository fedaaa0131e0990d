//! Per-stage statistics, readable while a stream runs.
//!
//! Each stage owns a [`StageCell`] of counters that only its own task
//! writes (an async boundary's is ended from either side; its
//! backpressure spells use read-modify-writes for that); a reader takes a [`GraphStats`] snapshot through a
//! [`StreamMonitor`]. Writers use plain relaxed stores (no read-modify-write
//! instructions) because there is one writer per counter: counting costs a
//! few cycles per element, and a snapshot may be a few elements behind a
//! running stage (stages fused before a folding sink publish in batches),
//! exact whenever its island waits and once it has stopped.
//!
//! What a stage took in is not counted twice: it is read from where it came
//! from (the stage before it, or one outlet of a fan-out junction), as
//! recorded when the graph was materialised. Fan-in junctions, which have
//! several upstreams, count what they take themselves.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::editable::SlotHandle;
use crate::error::StreamError;
use crate::manager::SlotDescription;
use crate::shape::GraphShape;

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
    /// The order in which the stage was materialised: from the source (0)
    /// towards the sink in a linear graph, upstream before downstream in a
    /// graph built with [`GraphBuilder`](crate::GraphBuilder).
    pub id: usize,
    /// The operator's name, such as `"map"`, `"async_boundary"` or `"merge"`.
    pub name: String,
    /// The [`GraphBuilder`](crate::GraphBuilder) node the stage belongs to
    /// (a flow node holds several stages); `None` outside the graph DSL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Elements received from upstream (0 for a source).
    pub elements_in: u64,
    /// Elements passed downstream; for a sink, passed to its consumer (a
    /// subscriber, an actor), and 0 when it keeps them (fold, collect). A
    /// broadcast counts every copy: 100 elements to 4 outlets are 400.
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
    /// Elements passed on per second, over the time since the previous
    /// snapshot taken through the same monitor (or a clone of it); `None`
    /// in the first snapshot.
    #[serde(default)]
    pub rate: Option<u64>,
    /// How long downstream did not ask the stage for elements while it
    /// ran: from the moment its downstream stopped asking (an async
    /// boundary's or a merge hub's buffer is full, a fan-out junction's
    /// outlets are, a `buffer` is, a sink waits for an actor) until it
    /// asks again. Backpressure travels upstream as in Akka: every stage
    /// fused before the point that stopped asking waits with it and counts
    /// the same spell. A source counts only while it has an element ready
    /// (an iterator always has; a channel when its queue is not empty). A
    /// stage that waits for its upstream instead reads zero. A channel-fed
    /// source (a channel, an actor source, a publisher, a merge hub) looks
    /// when downstream stops asking: an element that arrives later, while
    /// nobody asks, is not counted as a spell; a tick source counts from
    /// then even before its next tick is due. A `concat` counts only for
    /// the input it reads now: the later ones were not asked yet.
    #[serde(default)]
    pub backpressured: Duration,
}

/// A snapshot of every stage of one running graph, source first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphStats {
    /// One entry per stage, in the order they were materialised (see [`StageStats::id`]).
    pub stages: Vec<StageStats>,
    /// The editable slots, each with the stages of its segments: those
    /// change with every edit, so they are listed apart from `stages`.
    #[serde(default)]
    pub slots: Vec<SlotDescription>,
}

impl GraphStats {
    /// The first stage with this name.
    pub fn stage(&self, name: &str) -> Option<&StageStats> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The stages of one [`GraphBuilder`](crate::GraphBuilder) node, upstream first.
    pub fn node<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a StageStats> + 'a {
        self.stages.iter().filter(move |s| s.node.as_deref() == Some(node))
    }

    /// The editable slot with this name.
    pub fn slot(&self, name: &str) -> Option<&SlotDescription> {
        self.slots.iter().find(|s| s.name == name)
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
#[derive(Clone)]
pub struct StreamMonitor {
    stages: Arc<[Registered]>,
    shape: Option<Arc<GraphShape>>,
    slots: Arc<[Arc<dyn SlotHandle>]>,
    /// The previous snapshot's time, outputs and rates, for the rates of the next.
    previous: Arc<Mutex<Option<Previous>>>,
}

impl fmt::Debug for StreamMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamMonitor")
            .field("stages", &self.stages.len())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Previous {
    at: Instant,
    out: Vec<u64>,
    rates: Vec<Option<u64>>,
}

impl StreamMonitor {
    pub(crate) fn new(
        stages: Vec<Registered>,
        shape: Option<Arc<GraphShape>>,
        slots: Vec<Arc<dyn SlotHandle>>,
    ) -> Self {
        StreamMonitor {
            stages: stages.into(),
            shape,
            slots: slots.into(),
            previous: Arc::new(Mutex::new(None)),
        }
    }

    /// Where each stage takes its input from, by stage id.
    pub(crate) fn inputs(&self) -> impl Iterator<Item = Input> + '_ {
        self.stages.iter().map(|s| s.input)
    }

    /// A snapshot of every stage now.
    pub fn stats(&self) -> GraphStats {
        // What a stage took in is what its upstream passed on: counting each
        // hand-over once halves the cost of statistics per element.
        let stages = self
            .stages
            .iter()
            .enumerate()
            .map(|(id, stage)| {
                let elements_in = match stage.input {
                    Input::Nothing => 0,
                    Input::Own => stage.cell.elements_in.load(Ordering::Relaxed),
                    Input::Stage(from) => self.stages.get(from).map_or(0, |s| s.cell.total_out()),
                    Input::Outlet(from, port) => self.stages.get(from).map_or(0, |s| s.cell.outlet(port)),
                };
                stage.cell.snapshot(id, stage.node.as_deref(), elements_in)
            })
            .collect();
        let slots = self.slots.iter().map(|slot| slot.describe()).collect();
        let mut stats = GraphStats { stages, slots };
        self.add_rates(&mut stats);
        stats
    }

    fn add_rates(&self, stats: &mut GraphStats) {
        let now = Instant::now();
        let out: Vec<u64> = stats.stages.iter().map(|s| s.elements_out).collect();
        let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
        let rates = match previous.as_ref() {
            // Two snapshots at one instant (a paused clock): keep the last rates.
            Some(last) if now <= last.at => last.rates.clone(),
            Some(last) => {
                let seconds = (now - last.at).as_secs_f64();
                out.iter()
                    .zip(&last.out)
                    .map(|(&now, &then)| Some((now.saturating_sub(then) as f64 / seconds).round() as u64))
                    .collect()
            }
            None => vec![None; out.len()],
        };
        for (stage, &rate) in stats.stages.iter_mut().zip(&rates) {
            stage.rate = rate;
        }
        *previous = Some(Previous { at: now, out, rates });
    }

    /// The nodes and edges of a graph built with
    /// [`GraphBuilder`](crate::GraphBuilder); `None` for a linear pipeline.
    pub fn shape(&self) -> Option<&GraphShape> {
        self.shape.as_deref()
    }
}

/// Where a stage's `elements_in` is read from, fixed when the graph is materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// A source: nothing comes in.
    Nothing,
    /// The stage counts what it takes itself (a fan-in junction).
    Own,
    /// What the stage with this id passed on.
    Stage(usize),
    /// What the fan-out junction with this id passed on through one outlet.
    Outlet(usize, usize),
}

/// A stage as the monitor knows it.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) cell: Arc<StageCell>,
    pub(crate) input: Input,
    pub(crate) node: Option<Arc<str>>,
}

const RUNNING: u8 = 0;
const COMPLETED: u8 = 1;
const FAILED: u8 = 2;
const CANCELLED: u8 = 3;

/// The live counters of one stage. One task writes each counter (a fan-out
/// junction's outlets are counted by the task that reads them).
#[derive(Debug)]
pub(crate) struct StageCell {
    name: &'static str,
    elements_in: AtomicU64,
    elements_out: AtomicU64,
    outlets: Box<[AtomicU64]>,
    demand: AtomicU64,
    buffered: AtomicU64,
    errors: AtomicU64,
    state: AtomicU8,
    /// When the cell was made: backpressure stamps are nanoseconds since.
    epoch: Instant,
    /// Since when the stage is backpressured (nanoseconds since `epoch`, plus
    /// one), or 0 when it is not.
    pressed_since: AtomicU64,
    /// Nanoseconds backpressured before `pressed_since`.
    pressed: AtomicU64,
}

// Single writer: load + store is enough and avoids a locked instruction per element.
#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

impl StageCell {
    pub(crate) fn new(name: &'static str) -> Arc<Self> {
        StageCell::with_outlets(name, 0)
    }

    /// A cell for a fan-out junction, with a counter per outlet.
    pub(crate) fn with_outlets(name: &'static str, outlets: usize) -> Arc<Self> {
        Arc::new(StageCell {
            name,
            elements_in: AtomicU64::new(0),
            elements_out: AtomicU64::new(0),
            outlets: (0..outlets).map(|_| AtomicU64::new(0)).collect(),
            demand: AtomicU64::new(0),
            buffered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            state: AtomicU8::new(RUNNING),
            epoch: Instant::now(),
            pressed_since: AtomicU64::new(0),
            pressed: AtomicU64::new(0),
        })
    }

    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Downstream stopped asking while the stage could go on. Only the first
    /// call of a spell reads the clock, so callers need not track it.
    pub(crate) fn backpressure_on(&self) {
        if self.pressed_since.load(Ordering::Relaxed) == 0 {
            let since = self.nanos(Instant::now()).saturating_add(1);
            self.pressed_since.store(since, Ordering::Relaxed);
        }
    }

    /// Downstream asks again; ends a spell begun by
    /// [`backpressure_on`](StageCell::backpressure_on). Outside a spell it is
    /// one load, cheap enough for every pull.
    #[inline]
    pub(crate) fn backpressure_off(&self) {
        if self.pressed_since.load(Ordering::Relaxed) != 0 {
            // Read-modify-writes, once per spell: an async boundary's cell
            // is also ended from its downstream task, and a spell must be
            // counted once.
            let since = self.pressed_since.swap(0, Ordering::Relaxed);
            if since == 0 {
                return;
            }
            let spell = self.nanos(Instant::now()).saturating_sub(since - 1);
            self.pressed.fetch_add(spell, Ordering::Relaxed);
        }
    }

    fn backpressured(&self) -> Duration {
        let mut total = self.pressed.load(Ordering::Relaxed);
        let since = self.pressed_since.load(Ordering::Relaxed);
        // A spell open when the stage ended stopped counting then.
        if since != 0 && !self.is_finished() {
            total = total.saturating_add(self.nanos(Instant::now()).saturating_sub(since - 1));
        }
        Duration::from_nanos(total)
    }

    #[inline]
    pub(crate) fn add_out(&self) {
        bump(&self.elements_out);
    }

    #[inline]
    pub(crate) fn add_out_n(&self, n: u64) {
        let out = &self.elements_out;
        out.store(out.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// One element taken in, for stages that count their own input.
    pub(crate) fn add_in(&self) {
        bump(&self.elements_in);
    }

    /// One element passed on through outlet `port` of a fan-out junction.
    pub(crate) fn add_outlet(&self, port: usize) {
        if let Some(counter) = self.outlets.get(port) {
            bump(counter);
        }
    }

    fn outlet(&self, port: usize) -> u64 {
        self.outlets.get(port).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn total_out(&self) -> u64 {
        let outlets: u64 = self.outlets.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        self.elements_out.load(Ordering::Relaxed) + outlets
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
        self.record_end(&end);
        end.err().map(Err)
    }

    /// Records how the stage ended: completed or failed.
    pub(crate) fn record_end(&self, end: &Result<(), StreamError>) {
        match end {
            Ok(()) => self.completed(),
            Err(_) => self.failed(),
        }
    }

    pub(crate) fn cancelled(&self) {
        self.finish(CANCELLED);
    }

    // The first ending wins: a stage that failed and is then dropped stays failed.
    fn finish(&self, state: u8) {
        let first = self
            .state
            .compare_exchange(RUNNING, state, Ordering::Relaxed, Ordering::Relaxed);
        if first.is_ok() {
            self.backpressure_off();
        }
        self.demand.store(0, Ordering::Relaxed);
    }

    /// Whether the stage has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.state.load(Ordering::Relaxed) != RUNNING
    }

    fn snapshot(&self, id: usize, node: Option<&str>, elements_in: u64) -> StageStats {
        let state = match self.state.load(Ordering::Relaxed) {
            RUNNING => StageState::Running,
            COMPLETED => StageState::Completed,
            FAILED => StageState::Failed,
            _ => StageState::Cancelled,
        };
        StageStats {
            id,
            name: self.name.to_owned(),
            node: node.map(str::to_owned),
            elements_in,
            elements_out: self.total_out(),
            demand: self.demand.load(Ordering::Relaxed),
            buffered: self.buffered.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            state,
            rate: None,
            backpressured: self.backpressured(),
        }
    }
}
