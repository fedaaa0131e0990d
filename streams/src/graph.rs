//! Materialising: turning a blueprint into running tasks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::editable::SlotHandle;
use crate::error::StreamError;
use crate::shape::GraphShape;
use crate::stats::{Input, Registered, StageCell, StreamMonitor};
use crate::tunable::TunableHandle;

/// Collects what a blueprint needs while it is being materialised: the
/// tasks to spawn (one per island) and the statistics cells, each with
/// where its input comes from.
pub(crate) struct Materializer {
    tasks: Vec<BoxFuture<'static, ()>>,
    stages: Vec<Registered>,
    /// The input of the next stage registered with [`cell`](Materializer::cell).
    feed: Input,
    /// The graph DSL node being materialised.
    node: Option<Arc<str>>,
    controls: Controls,
}

/// What a [`GraphManager`](crate::GraphManager) can change in a
/// materialised graph: its editable slots and tunable parameters.
#[derive(Default)]
pub(crate) struct Controls {
    pub(crate) slots: Vec<Arc<dyn SlotHandle>>,
    pub(crate) tunables: Vec<Arc<dyn TunableHandle>>,
}

/// A materialised graph whose islands have not been spawned yet.
pub(crate) struct Prepared<Mat> {
    pub(crate) mat: Mat,
    pub(crate) monitor: StreamMonitor,
    pub(crate) tasks: Vec<BoxFuture<'static, ()>>,
    pub(crate) controls: Controls,
}

impl Materializer {
    pub(crate) fn new() -> Self {
        Materializer {
            tasks: Vec::new(),
            stages: Vec::new(),
            feed: Input::Nothing,
            node: None,
            controls: Controls::default(),
        }
    }

    /// The islands to spawn and the statistics cells, for a chain built
    /// apart from a graph (an editable slot's).
    pub(crate) fn into_parts(self) -> (Vec<BoxFuture<'static, ()>>, Vec<Registered>) {
        (self.tasks, self.stages)
    }

    /// The graph DSL node the stages registered now belong to.
    pub(crate) fn node(&self) -> Option<Arc<str>> {
        self.node.clone()
    }

    /// Makes an editable slot reachable by name.
    pub(crate) fn register_slot(&mut self, slot: Arc<dyn SlotHandle>) {
        self.controls.slots.push(slot);
    }

    /// Makes a tunable parameter reachable by name (once, however many
    /// stages read it).
    pub(crate) fn register_tunable(&mut self, tunable: Arc<dyn TunableHandle>) {
        if self
            .controls
            .tunables
            .iter()
            .any(|known| known.name() == tunable.name())
        {
            return;
        }
        self.controls.tunables.push(tunable);
    }

    fn register(&mut self, cell: &Arc<StageCell>, input: Input) -> usize {
        let id = self.stages.len();
        self.stages.push(Registered {
            cell: Arc::clone(cell),
            input,
            node: self.node.clone(),
        });
        self.feed = Input::Stage(id);
        id
    }

    /// A fresh statistics cell for the next stage, fed by the stage
    /// registered before it (or by what [`set_feed`](Materializer::set_feed) said).
    pub(crate) fn cell(&mut self, name: &'static str) -> Arc<StageCell> {
        let cell = StageCell::new(name);
        self.register(&cell, self.feed);
        cell
    }

    /// A statistics cell for a source: nothing comes in.
    pub(crate) fn source_cell(&mut self, name: &'static str) -> Arc<StageCell> {
        let cell = StageCell::new(name);
        self.register(&cell, Input::Nothing);
        cell
    }

    /// A statistics cell for a junction, which counts its own input and
    /// each of its `outlets` (0 for a fan-in junction); returns its id too.
    pub(crate) fn junction_cell(&mut self, name: &'static str, outlets: usize) -> (usize, Arc<StageCell>) {
        let cell = StageCell::with_outlets(name, outlets);
        let id = self.register(&cell, Input::Own);
        (id, cell)
    }

    /// The id of the stage registered last.
    pub(crate) fn last_id(&self) -> usize {
        self.stages.len().saturating_sub(1)
    }

    /// Where the stage registered next takes its input from.
    pub(crate) fn feed(&self) -> Input {
        self.feed
    }

    pub(crate) fn set_feed(&mut self, feed: Input) {
        self.feed = feed;
    }

    /// Corrects the input of a stage registered before its upstream was
    /// known (the receiving end of a feedback edge).
    pub(crate) fn set_input(&mut self, id: usize, input: Input) {
        if let Some(stage) = self.stages.get_mut(id) {
            stage.input = input;
        }
    }

    /// The graph DSL node the stages registered next belong to.
    pub(crate) fn set_node(&mut self, node: Option<Arc<str>>) {
        self.node = node;
    }

    /// An island to run on its own task once the whole graph is built.
    pub(crate) fn spawn(&mut self, island: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(Box::pin(island));
    }
}

pub(crate) type BuildGraph<Mat> = Box<dyn FnOnce(&mut Materializer) -> Mat + Send>;

/// A complete blueprint, from source to sink, ready to [`run`](RunnableGraph::run).
///
/// Running spawns one tokio task per island (the stages between async
/// boundaries) and returns the materialised value, which you chose while
/// connecting the parts with [`Source::to_mat`](crate::Source::to_mat) and [`Keep`].
///
/// ```
/// use compaktor_streams::{Keep, Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let graph = Source::<u32>::channel(8).to_mat(Sink::collect(), Keep::both);
/// let (sender, all) = graph.run();
/// sender.send(7).await.unwrap();
/// drop(sender); // closing the channel completes the stream
/// assert_eq!(all.await?, vec![7]);
/// # Ok(())
/// # }
/// ```
#[must_use = "a graph does nothing until it is run"]
pub struct RunnableGraph<Mat> {
    build: BuildGraph<Mat>,
    shape: Option<Arc<GraphShape>>,
}

impl<Mat> std::fmt::Debug for RunnableGraph<Mat> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnableGraph")
            .field("shape", &self.shape)
            .finish_non_exhaustive()
    }
}

impl<Mat> RunnableGraph<Mat> {
    pub(crate) fn new(build: BuildGraph<Mat>) -> Self {
        RunnableGraph { build, shape: None }
    }

    pub(crate) fn with_shape(build: BuildGraph<Mat>, shape: GraphShape) -> Self {
        RunnableGraph {
            build,
            shape: Some(Arc::new(shape)),
        }
    }

    /// The nodes and edges of a graph built with
    /// [`GraphBuilder`](crate::GraphBuilder); `None` for a linear pipeline.
    pub fn shape(&self) -> Option<&GraphShape> {
        self.shape.as_deref()
    }

    /// Starts the stream and returns its materialised value.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn run(self) -> Mat {
        self.run_monitored().0
    }

    /// Starts the stream and returns its materialised value with a live
    /// view of every stage's statistics.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn run_monitored(self) -> (Mat, StreamMonitor) {
        let prepared = self.prepare();
        for island in prepared.tasks {
            tokio::spawn(island);
        }
        (prepared.mat, prepared.monitor)
    }

    /// Materialises the graph without starting it: its islands are
    /// returned, to spawn later.
    pub(crate) fn prepare(self) -> Prepared<Mat> {
        let mut materializer = Materializer::new();
        let mat = (self.build)(&mut materializer);
        Prepared {
            mat,
            monitor: StreamMonitor::new(materializer.stages, self.shape, materializer.controls.slots.clone()),
            tasks: materializer.tasks,
            controls: materializer.controls,
        }
    }

    /// Transforms the materialised value.
    pub fn map_materialized<M2>(self, f: impl FnOnce(Mat) -> M2 + Send + 'static) -> RunnableGraph<M2>
    where
        Mat: 'static,
    {
        let build = self.build;
        RunnableGraph {
            build: Box::new(move |m| f(build(m))),
            shape: self.shape,
        }
    }
}

/// Choosers for the materialised value when two parts are joined, as in
/// Akka: pass `Keep::left`, `Keep::right`, `Keep::both` or `Keep::none` to
/// [`Source::to_mat`](crate::Source::to_mat) and the other `*_mat` methods.
#[derive(Debug, Clone, Copy)]
pub struct Keep;

impl Keep {
    /// The left (upstream) part's value.
    pub fn left<L, R>(left: L, _right: R) -> L {
        left
    }

    /// The right (downstream) part's value.
    pub fn right<L, R>(_left: L, right: R) -> R {
        right
    }

    /// Both values, as a pair.
    pub fn both<L, R>(left: L, right: R) -> (L, R) {
        (left, right)
    }

    /// Neither value.
    pub fn none<L, R>(_left: L, _right: R) {}
}

/// A materialised future: the outcome of a running stream, such as the
/// result of [`Sink::fold`](crate::Sink::fold) or the end of
/// [`Sink::foreach`](crate::Sink::foreach).
///
/// Dropping it does not stop the stream; use a
/// [`KillSwitch`](crate::KillSwitch) for that.
///
/// # Cancel safety
/// Awaiting it is cancel safe: the result stays until taken.
#[derive(Debug)]
#[must_use = "a completion does nothing unless awaited"]
pub struct Completion<T> {
    rx: oneshot::Receiver<Result<T, StreamError>>,
}

impl<T> Completion<T> {
    pub(crate) fn new() -> (CompletionSender<T>, Self) {
        let (tx, rx) = oneshot::channel();
        (CompletionSender { tx }, Completion { rx })
    }
}

impl<T> Future for Completion<T> {
    type Output = Result<T, StreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StreamError::AbruptTermination)))
    }
}

/// The writing side of a [`Completion`]; dropping it unsent reports
/// [`StreamError::AbruptTermination`] (a panicking stage drops it).
pub(crate) struct CompletionSender<T> {
    tx: oneshot::Sender<Result<T, StreamError>>,
}

impl<T> CompletionSender<T> {
    pub(crate) fn send(self, result: Result<T, StreamError>) {
        // The receiver may be gone: nobody is waiting, which is fine.
        let _ = self.tx.send(result);
    }
}
