//! Editable slots: points of a graph whose stages can be inserted, removed
//! or replaced while the stream runs.
//!
//! How an edit is made, what it costs and which edges can be edited is
//! documented on [`Segment`], where users read it.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use crate::error::EditError;
use crate::flow::Flow;
use crate::graph::Materializer;
use crate::manager::{SegmentDescription, SlotDescription};
use crate::stage::{BoxUpstream, Pull, Pulled, Upstream};
use crate::stats::{StageCell, StreamMonitor};

type MakeFlow<T> = Arc<dyn Fn() -> Flow<T, T> + Send + Sync>;

/// A named step of an editable slot: a recipe that makes its [`Flow`],
/// called each time the slot's chain is built (when it starts, and after
/// every edit of the slot).
///
/// # How an edit is made
///
/// A slot ([`editable`](crate::Flow::editable)) holds a chain of named
/// [`Segment`]s, each a recipe for a [`Flow`] from `T` to `T`. The chain
/// runs fused on the slot's task, fed from the slot's upstream. An edit
/// changes the recipe list at once and bumps a version; the slot, on its
/// own task, notices the new version before its next element and *drains*
/// the running chain: the chain's input is ended, so each of its stages
/// hands on what it holds (a buffer its queue, a throttle its waiting
/// element, `map_async` its futures, `grouped` its partial group) and
/// completes. Only then is the new chain built from the recipes and fed
/// from the same upstream, which was never cancelled. So every element
/// goes through exactly one chain, in order: none is lost, none is
/// duplicated.
///
/// # What it costs, and the limits
///
/// - Between edits a slot costs one atomic load and one
///   uncontended lock per element.
/// - Stage state does not survive an edit: every segment of the slot is
///   rebuilt from its recipe (a throttle starts with a full bucket, a
///   `scan` from its zero), and its statistics count from the edit on.
///   Parameters that must change without a rebuild
///   belong in a [`Tunable`](crate::Tunable).
/// - A drain waits for the old chain to hand on what it holds, so an edit
///   takes effect after, for example, a slow `map_async`'s futures finish.
///   A chain that does not complete when its input does never finishes
///   draining: a custom [`Stage`](crate::Stage) that ignores
///   `on_upstream_finish`, or a segment that merges in a source of its own
///   that never completes. Keep such stages outside slots.
/// - A failure in a segment fails the slot, and the stream, as any stage would.
/// - The segments' statistics are listed under the slot, in a snapshot's
///   [`GraphStats::slots`](crate::GraphStats::slots) and in
///   [`GraphManager::describe`](crate::GraphManager::describe), apart from
///   the stages fixed at the start. The slot itself is a stage named `"editable"`.
/// - Only slots are editable: an edge of a [`GraphBuilder`](crate::GraphBuilder)
///   graph can be edited if a flow node with a slot sits on it (an empty
///   slot passes elements through;
///   [`editable_edges`](crate::GraphBuilder::editable_edges) puts one on
///   every edge), and a stage can be removed if it is a segment: made
///   from a recipe ([`Segment::new`]) or from a built flow
///   ([`Segment::from_flow`], [`GraphBuilder::removable`](crate::GraphBuilder::removable)),
///   which can be removed but not rebuilt. A segment must map `T` to `T`, so
///   inserting a stage never changes the types around the slot, and a
///   segment that completes on its own (`take`) completes the slot.
///
/// ```
/// use compaktor_streams::{Flow, GraphManager, Segment, Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = GraphManager::new();
/// let graph = Source::from_iter(1..=5u32)
///     .editable("middle", [Segment::new("double", || Flow::new().map(|n: u32| n * 2))])
///     .to_mat(Sink::collect(), compaktor_streams::Keep::right);
/// let all = manager.add("numbers", graph)?;
/// // Not started yet: the edit changes what will run.
/// manager.insert_segment("numbers", "middle", 1, Segment::new("plus_one", || Flow::new().map(|n: u32| n + 1)))?;
/// manager.start("numbers")?;
/// assert_eq!(all.await?, vec![3, 5, 7, 9, 11]);
/// # Ok(())
/// # }
/// ```
pub struct Segment<T> {
    name: Arc<str>,
    make: MakeFlow<T>,
    /// Made from a built flow, not a recipe: it can run only once.
    once: bool,
}

impl<T> Clone for Segment<T> {
    fn clone(&self) -> Self {
        Segment {
            name: Arc::clone(&self.name),
            make: Arc::clone(&self.make),
            once: self.once,
        }
    }
}

impl<T> fmt::Debug for Segment<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Segment<T> {
    /// A segment called `name` (unique within its slot) made by `make`.
    pub fn new(name: impl Into<String>, make: impl Fn() -> Flow<T, T> + Send + Sync + 'static) -> Self {
        Segment {
            name: Arc::from(name.into()),
            make: Arc::new(make),
            once: false,
        }
    }

    /// A segment from a flow already built rather than a recipe: the way
    /// to make a stage that exists from the start removable while the
    /// stream runs. A built flow runs once, so the only edit of its slot
    /// that keeps it is none at all: any other edit of the slot fails with
    /// [`EditError::NotRebuildable`] until it is removed. Give it a slot of
    /// its own ([`GraphBuilder::removable`](crate::GraphBuilder::removable)
    /// does), and insert stages next to it in other slots.
    ///
    /// ```
    /// use compaktor_streams::{Flow, GraphManager, Keep, Segment, Sink, Source};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = GraphManager::new();
    /// let graph = Source::from_iter(1..=3u32)
    ///     .editable("middle", [Segment::from_flow("double", Flow::new().map(|n: u32| n * 2))])
    ///     .to_mat(Sink::collect(), Keep::right);
    /// let all = manager.add("numbers", graph)?;
    /// manager.remove_segment("numbers", "middle", "double")?;
    /// manager.start("numbers")?;
    /// assert_eq!(all.await?, vec![1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_flow(name: impl Into<String>, flow: Flow<T, T>) -> Self {
        let flow = Mutex::new(Some(flow));
        Segment {
            name: Arc::from(name.into()),
            // Never taken twice: an edit that would rebuild it is refused
            // (`SlotShared::edit`); were it, the slot would pass elements on.
            make: Arc::new(move || lock(&flow).take().unwrap_or_default()),
            once: true,
        }
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The recipe list and its version, changed together.
struct Plan<T> {
    segments: Vec<Segment<T>>,
    version: u64,
}

/// What the slot's task and the editors share.
pub(crate) struct SlotShared<T> {
    name: Arc<str>,
    node: Option<Arc<str>>,
    stage: usize,
    plan: Mutex<Plan<T>>,
    /// `plan.version`, readable without the lock.
    version: AtomicU64,
    waker: AtomicWaker,
    /// The statistics of the chain running now.
    live: Mutex<Option<StreamMonitor>>,
    cell: Arc<StageCell>,
}

// No user code runs under these locks: a poisoned one still holds consistent state.
fn lock<V>(mutex: &Mutex<V>) -> MutexGuard<'_, V> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> SlotShared<T> {
    fn edit(&self, change: impl FnOnce(&mut Vec<Segment<T>>) -> Result<(), EditError>) -> Result<(), EditError> {
        if self.cell.is_finished() {
            return Err(EditError::Finished {
                slot: self.name.to_string(),
            });
        }
        {
            let mut plan = lock(&self.plan);
            let mut segments = plan.segments.clone();
            change(&mut segments)?;
            // Every segment left is rebuilt, which a built flow cannot be.
            if let Some(kept) = segments.iter().find(|s| s.once) {
                return Err(EditError::NotRebuildable {
                    slot: self.name.to_string(),
                    segment: kept.name.to_string(),
                });
            }
            plan.segments = segments;
            plan.version += 1;
            self.version.store(plan.version, Ordering::Release);
        }
        self.waker.wake();
        Ok(())
    }

    fn position(&self, segments: &[Segment<T>], name: &str) -> Result<usize, EditError> {
        segments
            .iter()
            .position(|s| &*s.name == name)
            .ok_or_else(|| EditError::UnknownSegment {
                slot: self.name.to_string(),
                segment: name.to_owned(),
            })
    }

    /// Inserts `segment` before the one at `index` (`len` appends).
    pub(crate) fn insert(&self, index: usize, segment: Segment<T>) -> Result<(), EditError> {
        self.edit(|segments| {
            if segments.iter().any(|s| s.name == segment.name) {
                return Err(EditError::DuplicateSegment {
                    slot: self.name.to_string(),
                    segment: segment.name.to_string(),
                });
            }
            if index > segments.len() {
                return Err(EditError::IndexOutOfRange {
                    slot: self.name.to_string(),
                    index,
                    len: segments.len(),
                });
            }
            segments.insert(index, segment);
            Ok(())
        })
    }

    /// Replaces the segment with the same name.
    pub(crate) fn replace(&self, segment: Segment<T>) -> Result<(), EditError> {
        self.edit(|segments| {
            let at = self.position(segments, &segment.name)?;
            segments[at] = segment;
            Ok(())
        })
    }
}

/// A slot as a graph manager sees it, whatever its element type.
pub(crate) trait SlotHandle: Send + Sync {
    fn name(&self) -> &str;
    /// The graph DSL node the slot belongs to.
    fn node(&self) -> Option<&str>;
    /// The slot's own stage id in its graph's statistics.
    fn stage(&self) -> usize;
    /// The planned segments, with the statistics of those running.
    fn segments(&self) -> Vec<SegmentDescription>;
    /// The slot by name, with its segments.
    fn describe(&self) -> SlotDescription {
        SlotDescription {
            name: self.name().to_owned(),
            segments: self.segments(),
        }
    }
    fn remove(&self, segment: &str) -> Result<(), EditError>;
    fn as_any(&self) -> &dyn Any;
}

impl<T: Send + 'static> SlotHandle for SlotShared<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    fn stage(&self) -> usize {
        self.stage
    }

    fn segments(&self) -> Vec<SegmentDescription> {
        let stats = lock(&self.live).as_ref().map(StreamMonitor::stats);
        let names: Vec<Arc<str>> = lock(&self.plan).segments.iter().map(|s| Arc::clone(&s.name)).collect();
        names
            .iter()
            .map(|name| SegmentDescription {
                name: name.to_string(),
                stages: stats
                    .as_ref()
                    .map(|stats| stats.node(name).cloned().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    fn remove(&self, segment: &str) -> Result<(), EditError> {
        self.edit(|segments| {
            let at = self.position(segments, segment)?;
            segments.remove(at);
            Ok(())
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Materialises a slot over `upstream`.
pub(crate) fn slot<T: Send + 'static>(
    name: String,
    segments: Vec<Segment<T>>,
    upstream: BoxUpstream<T>,
    m: &mut Materializer,
) -> BoxUpstream<T> {
    let cell = m.cell("editable");
    let shared = Arc::new(SlotShared {
        name: Arc::from(name),
        node: m.node(),
        stage: m.last_id(),
        plan: Mutex::new(Plan { segments, version: 0 }),
        version: AtomicU64::new(0),
        waker: AtomicWaker::new(),
        live: Mutex::new(None),
        cell: Arc::clone(&cell),
    });
    m.register_slot(Arc::clone(&shared) as Arc<dyn SlotHandle>);
    Box::new(Slot {
        shared,
        inlet: Arc::new(Mutex::new(Inlet {
            upstream: Some(upstream),
            ended: false,
        })),
        chain: None,
        cell,
        done: false,
    })
}

/// The slot's upstream, shared by the chains that take turns reading it.
struct Inlet<T> {
    upstream: Option<BoxUpstream<T>>,
    /// The upstream completed or failed: a chain that ends now ends the slot.
    ended: bool,
}

/// The head of one chain: reads the inlet until the slot closes it.
/// Dropping it leaves the inlet, and so the upstream, alone.
struct Feed<T> {
    inlet: Arc<Mutex<Inlet<T>>>,
    closed: Arc<AtomicBool>,
    /// Wakes the feed's task when the slot closes it: with an async
    /// boundary in a segment, that is another task than the slot's.
    waker: Arc<AtomicWaker>,
    cell: Arc<StageCell>,
}

impl<T: Send> Upstream<T> for Feed<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        if self.closed.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        let mut inlet = lock(&self.inlet);
        let Some(upstream) = inlet.upstream.as_mut() else {
            return Poll::Ready(None);
        };
        match upstream.poll_next(cx) {
            Poll::Ready(Some(Ok(element))) => {
                self.cell.add_out();
                Poll::Ready(Some(Ok(element)))
            }
            Poll::Ready(end) => {
                inlet.ended = true;
                inlet.upstream = None;
                Poll::Ready(end)
            }
            Poll::Pending => {
                self.waker.register(cx.waker());
                Poll::Pending
            }
        }
    }

    fn poll_batch(&mut self, cx: &mut Context<'_>, buf: &mut Vec<T>, max: usize) -> Poll<Pulled> {
        if self.closed.load(Ordering::Relaxed) {
            return Poll::Ready(Pulled::Ended(Ok(())));
        }
        let mut inlet = lock(&self.inlet);
        let Some(upstream) = inlet.upstream.as_mut() else {
            return Poll::Ready(Pulled::Ended(Ok(())));
        };
        let before = buf.len();
        let pulled = upstream.poll_batch(cx, buf, max);
        self.cell.add_out_n((buf.len() - before) as u64);
        match pulled {
            Poll::Ready(Pulled::Ended(end)) => {
                inlet.ended = true;
                inlet.upstream = None;
                Poll::Ready(Pulled::Ended(end))
            }
            Poll::Ready(Pulled::More) => Poll::Ready(Pulled::More),
            Poll::Pending => {
                self.waker.register(cx.waker());
                Poll::Pending
            }
        }
    }

    fn poll_pump(&mut self, cx: &mut Context<'_>) {
        if !self.closed.load(Ordering::Relaxed) {
            if let Some(upstream) = lock(&self.inlet).upstream.as_mut() {
                upstream.poll_pump(cx);
            }
        }
    }
}

/// One chain built from a version of the plan.
struct Chain<T> {
    out: BoxUpstream<T>,
    closed: Arc<AtomicBool>,
    feed_waker: Arc<AtomicWaker>,
    version: u64,
}

impl<T> Chain<T> {
    /// Ends the chain's input, so that it drains.
    fn close(&self) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            self.feed_waker.wake();
        }
    }
}

struct Slot<T> {
    shared: Arc<SlotShared<T>>,
    inlet: Arc<Mutex<Inlet<T>>>,
    chain: Option<Chain<T>>,
    cell: Arc<StageCell>,
    done: bool,
}

impl<T: Send + 'static> Slot<T> {
    /// The chain to pull from, built if there is none; an edit since it
    /// was built closes it, so it drains before the next is built.
    fn chain(&mut self) -> &mut Chain<T> {
        let chain = match self.chain.take() {
            Some(chain) => chain,
            None => self.build(),
        };
        if chain.version != self.shared.version.load(Ordering::Acquire) {
            chain.close();
        }
        self.chain.insert(chain)
    }

    /// Builds the chain of the current plan on a fresh feed; its islands
    /// (if a segment has an async boundary) are spawned at once.
    fn build(&self) -> Chain<T> {
        let (segments, version) = {
            let plan = lock(&self.shared.plan);
            (plan.segments.clone(), plan.version)
        };
        let closed = Arc::new(AtomicBool::new(false));
        let feed_waker = Arc::new(AtomicWaker::new());
        let mut m = Materializer::new();
        let feed = Feed {
            inlet: Arc::clone(&self.inlet),
            closed: Arc::clone(&closed),
            waker: Arc::clone(&feed_waker),
            cell: m.source_cell("slot_input"),
        };
        let mut out: BoxUpstream<T> = Box::new(feed);
        for segment in &segments {
            m.set_node(Some(Arc::clone(&segment.name)));
            out = (segment.make)().build(out, &mut m).0;
        }
        let (tasks, stages) = m.into_parts();
        for island in tasks {
            tokio::spawn(island);
        }
        *lock(&self.shared.live) = Some(StreamMonitor::new(stages, None, Vec::new()));
        Chain {
            out,
            closed,
            feed_waker,
            version,
        }
    }

    fn end(&mut self, end: Result<(), crate::StreamError>) -> Result<(), crate::StreamError> {
        self.done = true;
        self.chain = None;
        // Cancels the upstream if it has not ended.
        lock(&self.inlet).upstream = None;
        self.cell.record_end(&end);
        end
    }

    /// The current chain ended: whether it was closed for an edit and has
    /// drained (build the next one), rather than the stream ending.
    fn drained(&self) -> bool {
        self.chain
            .as_ref()
            .is_some_and(|chain| chain.closed.load(Ordering::Relaxed) && !lock(&self.inlet).ended)
    }

    /// The current chain has nothing now: registers the waker; whether an
    /// edit came before the registration (it would wake nobody), so the
    /// caller must look again.
    fn edited_meanwhile(&self, cx: &mut Context<'_>) -> bool {
        self.shared.waker.register(cx.waker());
        self.chain.as_ref().is_some_and(|chain| {
            !chain.closed.load(Ordering::Relaxed) && chain.version != self.shared.version.load(Ordering::Acquire)
        })
    }
}

impl<T: Send + 'static> Upstream<T> for Slot<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        self.cell.backpressure_off();
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.chain().out.poll_next(cx) {
                Poll::Ready(Some(Ok(element))) => {
                    self.cell.add_out();
                    return Poll::Ready(Some(Ok(element)));
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(self.end(Err(error)).err().map(Err)),
                Poll::Ready(None) => {
                    if self.drained() {
                        self.chain = None;
                        continue;
                    }
                    return Poll::Ready(self.end(Ok(())).err().map(Err));
                }
                Poll::Pending => {
                    if self.edited_meanwhile(cx) {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn poll_batch(&mut self, cx: &mut Context<'_>, buf: &mut Vec<T>, max: usize) -> Poll<Pulled> {
        self.cell.backpressure_off();
        if self.done {
            return Poll::Ready(Pulled::Ended(Ok(())));
        }
        loop {
            let before = buf.len();
            let pulled = self.chain().out.poll_batch(cx, buf, max);
            self.cell.add_out_n((buf.len() - before) as u64);
            match pulled {
                Poll::Ready(Pulled::More) => return Poll::Ready(Pulled::More),
                Poll::Ready(Pulled::Ended(Err(error))) => return Poll::Ready(Pulled::Ended(self.end(Err(error)))),
                Poll::Ready(Pulled::Ended(Ok(()))) => {
                    if !self.drained() {
                        return Poll::Ready(Pulled::Ended(self.end(Ok(()))));
                    }
                    // The elements of the old chain go now; the next call builds the new one.
                    self.chain = None;
                    if buf.len() > before {
                        return Poll::Ready(Pulled::More);
                    }
                }
                Poll::Pending => {
                    if self.edited_meanwhile(cx) {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn poll_pump(&mut self, cx: &mut Context<'_>) {
        self.cell.backpressure_on();
        if let Some(chain) = self.chain.as_mut() {
            chain.out.poll_pump(cx);
        }
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        if !self.done {
            self.cell.cancelled();
        }
    }
}
