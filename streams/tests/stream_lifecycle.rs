//! Whole streams: backpressure, cancellation, errors, kill switches,
//! async boundaries, statistics and the actor sink.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, SystemConfig};
use compaktor_streams::{Flow, Keep, Sink, Source, StageState, StreamError};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// A fast source whose iterator records, at every element it produces,
/// how far ahead of the consumer it is.
struct Counted {
    produced: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    max_ahead: Arc<AtomicU64>,
    limit: u64,
}

impl Iterator for Counted {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        let n = self.produced.load(Ordering::SeqCst);
        if n == self.limit {
            return None;
        }
        self.produced.store(n + 1, Ordering::SeqCst);
        let ahead = n + 1 - self.consumed.load(Ordering::SeqCst);
        self.max_ahead.fetch_max(ahead, Ordering::SeqCst);
        Some(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sink_keeps_a_fast_sources_in_flight_elements_bounded() {
    let consumed = Arc::new(AtomicU64::new(0));
    let max_ahead = Arc::new(AtomicU64::new(0));
    let source = Counted {
        produced: Arc::new(AtomicU64::new(0)),
        consumed: Arc::clone(&consumed),
        max_ahead: Arc::clone(&max_ahead),
        limit: 5_000,
    };
    let counter = Arc::clone(&consumed);
    let done = Source::from_iter(source)
        .async_boundary_with(8)
        .map(|n| n + 1)
        .buffer(4, compaktor_streams::OverflowStrategy::Backpressure)
        .async_boundary_with(8)
        .map_async(1, |n| async move {
            // The slow sink: it gives way to the scheduler several times per element.
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            n
        })
        .run_with(Sink::foreach(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
    timeout(Duration::from_secs(30), done)
        .await
        .expect("the slow stream to finish")
        .unwrap();
    assert_eq!(consumed.load(Ordering::SeqCst), 5_000);
    // Two boundaries of 8, a buffer of 4 (+1 in its outlet), one in map_async,
    // one being pulled in each island: a fixed bound, whatever the length.
    let bound = 8 + 8 + 5 + 1 + 3;
    let seen = max_ahead.load(Ordering::SeqCst);
    assert!(
        seen <= bound,
        "the source ran {seen} elements ahead of the sink (bound {bound})"
    );
    assert!(seen >= 8, "the buffers were used (the source ran {seen} ahead)");
}

#[tokio::test]
async fn take_cancels_upstream() {
    let (tx, rx) = mpsc::channel::<u32>(4);
    let first_two = Source::from_receiver(rx).take(2).run_with(Sink::collect());
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    assert_eq!(
        timeout(WAIT, first_two).await.expect("take(2) to complete").unwrap(),
        vec![1, 2]
    );
    timeout(WAIT, tx.closed())
        .await
        .expect("the channel to be closed by cancellation");
}

#[tokio::test]
async fn cancellation_crosses_async_boundaries() {
    let (tx, rx) = mpsc::channel::<u32>(4);
    let (out, monitor) = Source::from_receiver(rx)
        .map(|n| n + 1)
        .async_boundary()
        .map(|n| n * 2)
        .async_boundary()
        .take(1)
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();
    tx.send(1).await.unwrap();
    assert_eq!(timeout(WAIT, out).await.expect("take(1) to complete").unwrap(), vec![4]);
    timeout(WAIT, tx.closed())
        .await
        .expect("the cancel to reach the source through two boundaries");
    let stats = monitor.stats();
    assert_eq!(stats.stage("take").unwrap().state, StageState::Completed);
    assert_eq!(stats.stage("from_receiver").unwrap().state, StageState::Cancelled);
}

/// Each element carries the id of the task that ran each stage on it.
fn ran_on(mut tasks: Vec<Option<tokio::task::Id>>) -> Vec<Option<tokio::task::Id>> {
    tasks.push(tokio::task::try_id());
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_fuse_into_one_task_until_an_async_boundary() {
    let out = Source::from_iter((0..8).map(|_| ran_on(Vec::new())))
        .map(ran_on)
        .map(ran_on)
        .async_boundary()
        .map(ran_on)
        .map(ran_on)
        .run_with(Sink::fold(Vec::new(), |mut all, tasks| {
            all.push(ran_on(tasks));
            all
        }));
    let all = timeout(WAIT, out).await.expect("the stream to complete").unwrap();
    assert_eq!(all.len(), 8);
    let upstream = all[0][0].expect("the source runs inside a task");
    let downstream = all[0][3].expect("the stage after the boundary runs inside a task");
    assert_ne!(upstream, downstream, "the boundary splits the stream into two tasks");
    // Source and both maps on one task; both maps after the boundary and the
    // sink on the other; the same two tasks for every element.
    let islands = [upstream, upstream, upstream, downstream, downstream, downstream].map(Some);
    for tasks in &all {
        assert_eq!(tasks[..], islands, "{all:?}");
    }
}

#[tokio::test]
async fn an_error_fails_downstream_and_cancels_upstream() {
    let (tx, rx) = mpsc::channel::<u32>(4);
    let out = Source::from_receiver(rx)
        .async_boundary()
        .try_map(|n| if n == 3 { Err(format!("bad {n}")) } else { Ok(n) })
        .async_boundary()
        .map(|n| n * 10)
        .run_with(Sink::collect());
    for n in 1..=3 {
        tx.send(n).await.unwrap();
    }
    let outcome = timeout(WAIT, out).await.expect("the failure to arrive");
    match outcome {
        Err(StreamError::Stage {
            stage: "try_map",
            cause,
        }) => assert_eq!(cause.to_string(), "bad 3"),
        other => panic!("expected the try_map failure, got {other:?}"),
    }
    timeout(WAIT, tx.closed())
        .await
        .expect("the failure to cancel the source");
}

#[tokio::test]
async fn a_panicking_stage_ends_the_stream_abruptly_not_silently() {
    let fused = Source::from_iter(0..10)
        .map(|n: u32| if n == 5 { panic!("boom") } else { n })
        .run_with(Sink::ignore());
    let outcome = timeout(WAIT, fused).await.expect("the panic to be reported");
    assert!(matches!(outcome, Err(StreamError::AbruptTermination)), "{outcome:?}");

    let behind_boundary = Source::from_iter(0..10)
        .map(|n: u32| if n == 5 { panic!("boom") } else { n })
        .async_boundary()
        .run_with(Sink::collect());
    let outcome = timeout(WAIT, behind_boundary)
        .await
        .expect("the panic to cross the boundary");
    assert!(matches!(outcome, Err(StreamError::AbruptTermination)), "{outcome:?}");
}

#[tokio::test]
async fn kill_switch_shutdown_completes_and_abort_fails() {
    let (tx, rx) = mpsc::channel::<u32>(4);
    let (switch, out) = Source::from_receiver(rx)
        .via_mat(Flow::kill_switch(), Keep::right)
        .to_mat(Sink::collect(), Keep::both)
        .run();
    tx.send(1).await.unwrap();
    switch.shutdown();
    let got = timeout(WAIT, out)
        .await
        .expect("shutdown to complete the stream")
        .unwrap();
    assert!(got.len() <= 1, "{got:?}");
    timeout(WAIT, tx.closed()).await.expect("shutdown to cancel upstream");

    let ((_, switch), out) = Source::<u32>::channel(1)
        .kill_switch()
        .to_mat(Sink::ignore(), Keep::both)
        .run();
    switch.abort(StreamError::aborted("operator said so"));
    let outcome = timeout(WAIT, out).await.expect("abort to fail the stream");
    assert!(
        matches!(outcome, Err(StreamError::Aborted(ref why)) if &**why == "operator said so"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn statistics_are_readable_while_the_stream_runs() {
    let (tx, rx) = mpsc::channel::<u32>(16);
    let (out, monitor) = Source::from_receiver(rx)
        .filter(|n| n % 2 == 0)
        .map(|n| n + 1)
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();
    for n in 0..10 {
        tx.send(n).await.unwrap();
    }
    // Wait until the five even elements have reached the sink, then look mid-stream.
    timeout(WAIT, async {
        while monitor.stats().stage("collect").unwrap().elements_in < 5 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("five elements to reach the sink");
    let running = monitor.stats();
    let filter = running.stage("filter").unwrap();
    assert_eq!(
        (filter.elements_in, filter.elements_out, filter.state),
        (10, 5, StageState::Running)
    );
    assert_eq!(filter.demand, 1, "the sink is waiting for the next element");
    let names: Vec<_> = running.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["from_receiver", "filter", "map", "collect"]);
    let json = serde_json::to_value(&running).unwrap();
    assert_eq!(json["stages"][1]["name"], "filter");
    assert_eq!(json["stages"][1]["state"], "running");

    drop(tx);
    timeout(WAIT, out).await.expect("completion").unwrap();
    assert!(
        monitor.stats().stages.iter().all(|s| s.state == StageState::Completed),
        "{:?}",
        monitor.stats()
    );
}

#[tokio::test]
async fn buffer_fill_and_backpressure_show_in_statistics() {
    let (tx, rx) = mpsc::channel::<u32>(32);
    let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
    let (out, monitor) = Source::from_receiver(rx)
        .buffer(10, compaktor_streams::OverflowStrategy::Backpressure)
        .map_async(1, move |n| {
            let mut gate = gate_rx.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                n
            }
        })
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();
    for n in 0..8 {
        tx.send(n).await.unwrap();
    }
    let held = timeout(WAIT, async {
        loop {
            let stats = monitor.stats();
            let buffer = stats.stage("buffer").unwrap();
            if buffer.buffered >= 7 && buffer.backpressured > Duration::ZERO {
                return buffer.backpressured;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the buffer to hold the 7 elements map_async cannot take yet, backpressured");
    gate_tx.send(true).unwrap();
    drop(tx);
    assert_eq!(
        timeout(WAIT, out).await.expect("completion").unwrap(),
        (0..8).collect::<Vec<_>>()
    );
    let stats = monitor.stats();
    let buffer = stats.stage("buffer").unwrap();
    assert_eq!(buffer.buffered, 0);
    assert!(buffer.backpressured >= held, "{buffer:?}");
}

enum Msg {
    Item(u32),
    Done,
    Failed(String),
}

struct Collector {
    seen: Vec<u32>,
    report: Option<tokio::sync::oneshot::Sender<Result<Vec<u32>, String>>>,
}

impl Actor for Collector {
    type Msg = Msg;
    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Msg::Item(n) => self.seen.push(n),
            Msg::Done => {
                if let Some(report) = self.report.take() {
                    let _ = report.send(Ok(std::mem::take(&mut self.seen)));
                }
            }
            Msg::Failed(why) => {
                if let Some(report) = self.report.take() {
                    let _ = report.send(Err(why));
                }
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn actor_ref_sink_delivers_in_order_then_the_completion_message() {
    let system = ActorSystem::new(SystemConfig::new("streams")).unwrap();
    let (report, seen) = tokio::sync::oneshot::channel();
    let report = std::sync::Mutex::new(Some(report));
    let actor = system
        .spawn(
            "collector",
            Props::new(move || Collector {
                seen: Vec::new(),
                report: report.lock().unwrap().take(),
            }),
        )
        .unwrap();
    let done = Source::from_iter(1..=5)
        .map(Msg::Item)
        .run_with(Sink::actor_ref(actor, Msg::Done, |e| Msg::Failed(e.to_string())));
    timeout(WAIT, done).await.expect("the actor sink to complete").unwrap();
    let seen = timeout(WAIT, seen).await.expect("the actor to report").unwrap();
    assert_eq!(seen, Ok(vec![1, 2, 3, 4, 5]));
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn actor_ref_sink_fails_when_the_actor_has_stopped() {
    let system = ActorSystem::new(SystemConfig::new("streams")).unwrap();
    let actor = system
        .spawn(
            "gone",
            Props::new(|| Collector {
                seen: Vec::new(),
                report: None,
            }),
        )
        .unwrap();
    actor.stop();
    timeout(WAIT, actor.terminated()).await.expect("the actor to stop");
    let (tx, rx) = mpsc::channel::<u32>(1);
    let done = Source::from_receiver(rx)
        .map(Msg::Item)
        .run_with(Sink::actor_ref(actor, Msg::Done, |_| Msg::Done));
    tx.send(1).await.unwrap();
    let outcome = timeout(WAIT, done).await.expect("the sink to notice");
    assert!(matches!(outcome, Err(StreamError::ActorStopped)), "{outcome:?}");
    timeout(WAIT, tx.closed()).await.expect("the source to be cancelled");
    system.shutdown().await.unwrap();
}

/// Fused stages before a fold publish their counts in batches; a paused
/// island must still show every element it has passed on.
#[tokio::test]
async fn batched_counts_are_exact_while_the_island_waits() {
    let ((sender, sum), monitor) = Source::<u64>::channel(8)
        .map(|n| n * 2)
        .filter(|n| n % 4 == 0)
        .to_mat(Sink::fold(0u64, |a, n| a + n), Keep::both)
        .run_monitored();
    for n in 0..5u64 {
        sender.send(n).await.unwrap();
    }
    let paused = timeout(WAIT, async {
        loop {
            let stats = monitor.stats();
            if stats.stage("filter").is_some_and(|s| s.elements_in >= 5) {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the monitor to catch up");
    let (map, filter, fold) = (
        paused.stage("map").unwrap(),
        paused.stage("filter").unwrap(),
        paused.stage("fold").unwrap(),
    );
    assert_eq!((map.elements_in, map.elements_out), (5, 5));
    assert_eq!((filter.elements_in, filter.elements_out), (5, 3));
    assert_eq!(fold.elements_in, 3);
    drop(sender);
    assert_eq!(timeout(WAIT, sum).await.unwrap().unwrap(), 12);
    let done = monitor.stats();
    assert_eq!(done.stage("filter").unwrap().elements_out, 3);
    assert_eq!(done.stage("fold").unwrap().state, StageState::Completed);
}

/// Counts held back in a batch are published when the stream ends.
#[tokio::test]
async fn batched_counts_are_exact_at_completion() {
    let (sum, monitor) = Source::from_iter(0..10_001u64)
        .map(|n| n + 1)
        .filter(|n| n % 3 == 0)
        .to_mat(Sink::fold(0u64, |a, _| a + 1), Keep::right)
        .run_monitored();
    assert_eq!(timeout(WAIT, sum).await.unwrap().unwrap(), 3_333);
    let stats = monitor.stats();
    assert_eq!(stats.stage("from_iter").unwrap().elements_out, 10_001);
    assert_eq!(stats.stage("map").unwrap().elements_out, 10_001);
    assert_eq!(stats.stage("filter").unwrap().elements_out, 3_333);
    assert_eq!(stats.stage("fold").unwrap().elements_in, 3_333);
}
