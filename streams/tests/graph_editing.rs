//! Live edits through the graph manager: parameters changed, stages
//! inserted, removed and replaced while elements flow, each counted
//! through the edit (nothing lost, nothing duplicated, order kept); and
//! edits of a graph that has not started.
//!
//! An edit is placed mid-stream by feeding the stream through a channel,
//! waiting (with a deadline) until a counting stage upstream of the edit
//! has seen every element sent so far, editing, then sending the rest. On
//! the current-thread runtime the stream's task runs each element through
//! the whole island before the test task is polled again, so the edit
//! lands exactly between two known elements.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use compaktor_streams::{
    Completion, EditError, Flow, GraphBuilder, GraphManager, Keep, OverflowStrategy, Segment, Sink, Source,
    StreamError, ThrottleRate, Tunable,
};
use tokio::sync::watch;
use tokio::time::{timeout, Instant};

const WAIT: Duration = Duration::from_secs(30);

async fn done<T>(what: &str, completion: Completion<T>) -> Result<T, StreamError> {
    timeout(WAIT, completion)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what} to complete"))
}

/// A flow that counts what passes into a watch, and the watch.
fn counter() -> (Flow<u64, u64>, watch::Receiver<u64>) {
    let (count, seen) = watch::channel(0u64);
    let flow = Flow::new().map(move |n: u64| {
        count.send_modify(|c| *c += 1);
        n
    });
    (flow, seen)
}

/// Sends `range` into the stream, one element at a time.
async fn feed(tx: &tokio::sync::mpsc::Sender<u64>, range: std::ops::Range<u64>) {
    for n in range {
        timeout(WAIT, tx.send(n))
            .await
            .expect("the stream to take the element")
            .expect("the stream is running");
    }
}

async fn reached(seen: &mut watch::Receiver<u64>, count: u64, what: &str) {
    timeout(WAIT, seen.wait_for(|n| *n >= count))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("the counting stage is alive");
}

/// A segment that passes elements on and counts them.
fn counting(name: &str, passed: &Arc<AtomicU64>) -> Segment<u64> {
    let passed = Arc::clone(passed);
    Segment::new(name, move || {
        let passed = Arc::clone(&passed);
        Flow::new().map(move |n: u64| {
            passed.fetch_add(1, Ordering::Relaxed);
            n
        })
    })
}

#[tokio::test(start_paused = true)]
async fn raising_a_throttle_rate_mid_stream_loses_nothing_and_speeds_up() {
    const N: u64 = 200;
    let manager = GraphManager::new();
    let rate = Tunable::new("rate", ThrottleRate::new(10, Duration::from_secs(1), 1));
    let (count, mut seen) = counter();
    let graph = Source::from_iter(0..N)
        .via(count)
        .throttle_tunable(rate.clone())
        .to_mat(Sink::collect(), Keep::right);
    let started = Instant::now();
    let all = manager.run("paced", graph).unwrap();
    reached(&mut seen, 20, "20 elements into the throttle").await;
    // About 2 s in at 10 per second; the other 180 would take 18 s more.
    manager
        .set_parameter("paced", "rate", ThrottleRate::new(10_000, Duration::from_secs(1), 10))
        .unwrap();
    assert_eq!(rate.get().elements, 10_000);
    assert_eq!(
        done("the throttled stream", all).await.unwrap(),
        (0..N).collect::<Vec<_>>()
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "the new rate applied at once: {took:?}");
    let described = manager.describe("paced").unwrap();
    assert!(described.parameters[0].value.contains("10000"), "{described:?}");
}

#[tokio::test]
async fn changing_a_filter_threshold_applies_from_the_next_element() {
    let manager = GraphManager::new();
    let (count, mut seen) = counter();
    let graph = Source::<u64>::channel(1)
        .via(count)
        .filter_tunable(Tunable::new("divisor", 2u64), |d, n| n % d == 0)
        .to_mat(Sink::collect(), Keep::both);
    let (tx, all) = manager.run("multiples", graph).unwrap();
    for n in 0..50 {
        tx.send(n).await.unwrap();
    }
    reached(&mut seen, 50, "the first 50 elements through the filter").await;
    manager.set_parameter("multiples", "divisor", 5u64).unwrap();
    for n in 50..100 {
        tx.send(n).await.unwrap();
    }
    drop(tx);
    let expected: Vec<u64> = (0..50)
        .filter(|n| n % 2 == 0)
        .chain((50..100).filter(|n| n % 5 == 0))
        .collect();
    assert_eq!(done("the filtered stream", all).await.unwrap(), expected);
}

#[tokio::test]
async fn inserting_a_stage_mid_stream_loses_and_duplicates_nothing() {
    const N: u64 = 20_000;
    const K: u64 = 5_000;
    let manager = GraphManager::new();
    let (count, mut seen) = counter();
    let inserted = Arc::new(AtomicU64::new(0));
    let buffered = Segment::new("buffer", || Flow::new().buffer(8, OverflowStrategy::Backpressure));
    let graph = Source::channel(16)
        .via(count)
        .editable("slot", [buffered])
        .to_mat(Sink::collect(), Keep::both);
    let (tx, all) = manager.run("insert", graph).unwrap();
    feed(&tx, 0..K).await;
    reached(&mut seen, K, "the first elements").await;
    manager
        .insert_segment("insert", "slot", 1, counting("tag", &inserted))
        .unwrap();
    feed(&tx, K..N).await;
    drop(tx);
    assert_eq!(done("the stream", all).await.unwrap(), (0..N).collect::<Vec<_>>());
    assert_eq!(
        inserted.load(Ordering::Relaxed),
        N - K,
        "every element after the edit, none before"
    );

    let slot = manager.describe("insert").unwrap().node("slot").unwrap().slots[0].clone();
    let names: Vec<&str> = slot.segments.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["buffer", "tag"]);
    assert_eq!(slot.segments[1].stages[0].elements_out, N - K, "{slot:?}");
    // The graph's monitor snapshot shows the same segments beside its stages.
    let stats = manager.monitor("insert").unwrap().stats();
    let monitored = stats.slot("slot").expect("the slot in the snapshot");
    let outs: Vec<(&str, u64)> = monitored
        .segments
        .iter()
        .map(|s| (s.name.as_str(), s.stages.last().map_or(0, |stage| stage.elements_out)))
        .collect();
    // Both count from the edit on: the slot rebuilt its chain then.
    assert_eq!(outs, [("buffer", N - K), ("tag", N - K)], "{monitored:?}");
}

#[tokio::test]
async fn removing_a_stage_splices_its_neighbours_without_loss() {
    const N: u64 = 20_000;
    const K: u64 = 5_000;
    let manager = GraphManager::new();
    let (count, mut seen) = counter();
    let graph = Source::channel(16)
        .via(count)
        .editable(
            "slot",
            [
                Segment::new("double", || Flow::new().map(|n: u64| n * 2)),
                Segment::new("hold", || Flow::new().buffer(8, OverflowStrategy::Backpressure)),
                Segment::new("plus_one", || Flow::new().map(|n: u64| n + 1)),
            ],
        )
        .to_mat(Sink::collect(), Keep::both);
    let (tx, all) = manager.run("remove", graph).unwrap();
    feed(&tx, 0..K).await;
    reached(&mut seen, K, "the first elements").await;
    manager.remove_segment("remove", "slot", "double").unwrap();
    feed(&tx, K..N).await;
    drop(tx);
    let all = done("the stream", all).await.unwrap();

    // Every element exactly once, in order: doubled before the edit, not after.
    let expected: Vec<u64> = (0..K).map(|n| 2 * n + 1).chain((K..N).map(|n| n + 1)).collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn replacing_a_stage_in_a_graph_builder_flow_node_mid_stream() {
    const N: u64 = 10_000;
    const K: u64 = 2_500;
    let manager = GraphManager::new();
    let (count, mut seen) = counter();
    let mut g = GraphBuilder::new();
    let (numbers, sender) = g.source("numbers", Source::channel(16).via(count));
    let scale = Segment::new("scale", || Flow::new().map(|n: u64| n * 10));
    let (mid_in, mid_out, _) = g.flow("middle", Flow::new().editable("scaling", [scale]));
    let (out_in, out) = g.sink("out", Sink::collect());
    g.connect(numbers, mid_in);
    g.connect(mid_out, out_in);
    let mut running = manager.run("built", g.build().unwrap()).unwrap();
    let tx = running.take(sender);
    feed(&tx, 0..K).await;
    reached(&mut seen, K, "the first elements").await;
    manager
        .replace_segment(
            "built",
            "scaling",
            Segment::new("scale", || Flow::new().map(|n: u64| n * 100)),
        )
        .unwrap();
    feed(&tx, K..N).await;
    drop(tx);
    let all = done("the graph", running.take(out)).await.unwrap();
    let expected: Vec<u64> = (0..K).map(|n| n * 10).chain((K..N).map(|n| n * 100)).collect();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn any_edge_of_a_builder_graph_takes_a_stage_and_gives_it_back_mid_stream() {
    const N: u64 = 10_000;
    const K: u64 = 2_500;
    const L: u64 = 6_000;
    const MARK: u64 = 1_000_000;
    let manager = GraphManager::new();
    let (count, mut seen) = counter();
    let mut g = GraphBuilder::new();
    g.editable_edges();
    let (numbers, sender) = g.source("numbers", Source::channel(16).via(count));
    let fan = g.broadcast("fan", 2);
    let (all_in, all) = g.sink("all", Sink::collect());
    let (sum_in, sum) = g.sink("sum", Sink::fold(0u64, |a, n| a + n));
    g.connect(numbers, fan.inlet);
    g.connect(fan.outlets[0], all_in);
    g.connect(fan.outlets[1], sum_in);
    let mut running = manager.run("edges", g.build().unwrap()).unwrap();
    let tx = running.take(sender);

    feed(&tx, 0..K).await;
    reached(&mut seen, K, "the first elements").await;
    let mark = Segment::new("mark", || Flow::new().map(|n: u64| n + MARK));
    manager.insert_segment("edges", "fan->all", 0, mark).unwrap();
    feed(&tx, K..L).await;
    reached(&mut seen, L, "the marked elements").await;
    manager.remove_segment("edges", "fan->all", "mark").unwrap();
    feed(&tx, L..N).await;
    drop(tx);
    let all = done("the edited edge", running.take(all)).await.unwrap();
    assert_eq!(
        done("the other edge", running.take(sum)).await.unwrap(),
        (0..N).sum::<u64>()
    );

    // Every element once and in order; a run of marked ones between the
    // edits. The broadcast buffers elements, so a few counted before an
    // edit may reach the edge after it; none can reach it before.
    assert_eq!(all.len() as u64, N);
    let unmarked: Vec<u64> = all.iter().map(|n| n % MARK).collect();
    assert_eq!(unmarked, (0..N).collect::<Vec<_>>());
    let first = all.iter().position(|&n| n >= MARK).expect("marked elements") as u64;
    let after = all.iter().rposition(|&n| n >= MARK).unwrap() as u64 + 1;
    assert!(
        all[first as usize..after as usize].iter().all(|&n| n >= MARK),
        "one marked run"
    );
    assert!((K - 64..=K).contains(&first), "marking began at {first}");
    assert!((L - 64..=L).contains(&after), "marking ended at {after}");

    let described = manager.describe("edges").unwrap();
    let names: Vec<&str> = described.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["numbers", "fan", "all", "sum", "numbers->fan", "fan->all", "fan->sum"]
    );
    assert_eq!(described.node("fan->all").unwrap().stats.elements_out, N);
}

#[tokio::test]
async fn a_stage_of_a_builder_graph_is_removed_mid_stream_and_its_neighbours_spliced() {
    const N: u64 = 6_000;
    const K: u64 = 2_000;
    const MARK: u64 = 1_000_000;
    let manager = GraphManager::new();
    let (count, mut seen) = counter();
    let mut g = GraphBuilder::new();
    let (numbers, sender) = g.source("numbers", Source::channel(16).via(count));
    let (mark_in, mark_out) = g.removable("mark", Flow::new().map(|n: u64| n + MARK));
    let (all_in, all) = g.sink("all", Sink::collect());
    g.connect(numbers, mark_in);
    g.connect(mark_out, all_in);
    let mut running = manager.run("splice", g.build().unwrap()).unwrap();
    let tx = running.take(sender);

    feed(&tx, 0..K).await;
    reached(&mut seen, K, "the marked elements").await;
    // A built stage cannot be rebuilt, so an edit that keeps it is refused.
    let other: Segment<u64> = Segment::new("other", Flow::new);
    assert!(matches!(
        manager.insert_segment("splice", "mark", 0, other),
        Err(EditError::NotRebuildable { .. })
    ));
    manager.remove_segment("splice", "mark", "mark").unwrap();
    feed(&tx, K..N).await;
    drop(tx);
    let all = done("the spliced graph", running.take(all)).await.unwrap();

    // Every element once and in order: marked up to the removal, then not.
    assert_eq!(all.len() as u64, N);
    let unmarked: Vec<u64> = all.iter().map(|n| n % MARK).collect();
    assert_eq!(unmarked, (0..N).collect::<Vec<_>>());
    let marked = all.iter().take_while(|&&n| n >= MARK).count() as u64;
    assert!(
        all[marked as usize..].iter().all(|&n| n < MARK),
        "one marked run, then none"
    );
    assert!((K - 64..=K).contains(&marked), "the removal took effect after {marked}");
    let described = manager.describe("splice").unwrap();
    let node = described.node("mark").unwrap();
    assert_eq!(node.slots.len(), 1);
    assert!(node.slots[0].segments.is_empty(), "{node:?}");
    assert_eq!(node.stats.elements_out, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_racing_a_stream_on_other_threads_lose_and_duplicate_nothing() {
    const N: u64 = 50_000;
    let manager = GraphManager::new();
    let (count, mut seen) = counter();
    let passed = Arc::new(AtomicU64::new(0));
    let graph = Source::channel(16)
        .via(count)
        .async_boundary()
        .editable(
            "slot",
            [Segment::new("hold", || {
                Flow::new().buffer(4, OverflowStrategy::Backpressure)
            })],
        )
        .to_mat(Sink::collect(), Keep::both);
    let (tx, all) = manager.run("race", graph).unwrap();
    let feeding = tokio::spawn(async move { feed(&tx, 0..N).await });
    for (round, at) in [N / 8, N / 4, N / 2, 3 * N / 4].into_iter().enumerate() {
        reached(&mut seen, at, "the next edit point").await;
        let edit = match round % 2 {
            0 => manager.insert_segment("race", "slot", 0, counting("tag", &passed)),
            _ => manager.remove_segment("race", "slot", "tag"),
        };
        edit.unwrap();
    }
    timeout(WAIT, feeding).await.expect("feeding to finish").unwrap();
    assert_eq!(done("the stream", all).await.unwrap(), (0..N).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_with_an_async_boundary_drains_while_its_upstream_is_idle() {
    let manager = GraphManager::new();
    let (count, mut seen) = counter();
    let hop = Segment::new("hop", || Flow::new().map(|n: u64| n).async_boundary());
    let graph = Source::channel(4)
        .editable("slot", [hop])
        .via(count)
        .to_mat(Sink::collect(), Keep::both);
    let (tx, all) = manager.run("idle", graph).unwrap();
    feed(&tx, 0..10).await;
    reached(&mut seen, 10, "the first elements through the slot").await;
    // Nothing more is sent: the slot must still drain its chain and build the new one.
    let (built, mut builds) = watch::channel(0u64);
    let tag = Segment::new("tag", move || {
        built.send_modify(|n| *n += 1);
        Flow::<u64, u64>::new()
    });
    manager.insert_segment("idle", "slot", 1, tag).unwrap();
    reached(&mut builds, 1, "the slot to rebuild its chain with no element coming").await;
    feed(&tx, 10..20).await;
    drop(tx);
    assert_eq!(done("the stream", all).await.unwrap(), (0..20).collect::<Vec<_>>());
}

#[tokio::test]
async fn edits_before_the_start_change_what_runs() {
    let manager = GraphManager::new();
    let graph = Source::from_iter(1..=10u64)
        .filter_tunable(Tunable::new("min", 0u64), |min, n| n >= min)
        .editable("slot", [Segment::new("double", || Flow::new().map(|n: u64| n * 2))])
        .to_mat(Sink::collect(), Keep::right);
    let all = manager.add("later", graph).unwrap();
    manager.set_parameter("later", "min", 6u64).unwrap();
    let plus = Segment::new("plus_one", || Flow::new().map(|n: u64| n + 1));
    manager.insert_segment("later", "slot", 0, plus).unwrap();
    manager.remove_segment("later", "slot", "double").unwrap();
    let planned = manager.describe("later").unwrap();
    let names: Vec<&str> = planned.node("slot").unwrap().slots[0]
        .segments
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["plus_one"]);
    manager.start("later").unwrap();
    assert_eq!(done("the edited graph", all).await.unwrap(), vec![7, 8, 9, 10, 11]);
}

#[tokio::test]
async fn refused_edits_are_typed_and_change_nothing() {
    let manager = GraphManager::new();
    let graph = Source::from_iter(0..4u64)
        .filter_tunable(Tunable::new("min", 0u64), |min, n| n >= min)
        .editable("slot", [Segment::new("id", Flow::new)])
        .to_mat(Sink::collect(), Keep::right);
    let all = manager.add("g", graph).unwrap();
    let id = || Segment::new("id", Flow::<u64, u64>::new);
    assert_eq!(
        manager.insert_segment("nope", "slot", 0, id()),
        Err(EditError::UnknownGraph { graph: "nope".into() })
    );
    assert_eq!(
        manager.insert_segment("g", "nope", 0, id()),
        Err(EditError::UnknownSlot {
            graph: "g".into(),
            slot: "nope".into()
        })
    );
    assert_eq!(
        manager.insert_segment("g", "slot", 0, id()),
        Err(EditError::DuplicateSegment {
            slot: "slot".into(),
            segment: "id".into()
        })
    );
    let other = Segment::new("other", Flow::<u64, u64>::new);
    assert_eq!(
        manager.insert_segment("g", "slot", 2, other),
        Err(EditError::IndexOutOfRange {
            slot: "slot".into(),
            index: 2,
            len: 1
        })
    );
    let strings = Segment::new("strings", Flow::<String, String>::new);
    assert_eq!(
        manager.insert_segment("g", "slot", 0, strings),
        Err(EditError::WrongType { name: "slot".into() })
    );
    assert_eq!(
        manager.remove_segment("g", "slot", "nope"),
        Err(EditError::UnknownSegment {
            slot: "slot".into(),
            segment: "nope".into()
        })
    );
    assert_eq!(
        manager.set_parameter("g", "max", 1u64),
        Err(EditError::UnknownParameter {
            graph: "g".into(),
            name: "max".into()
        })
    );
    assert_eq!(
        manager.set_parameter("g", "min", 1u32),
        Err(EditError::WrongType { name: "min".into() })
    );
    manager.start("g").unwrap();
    assert_eq!(done("the graph", all).await.unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(
        manager.remove_segment("g", "slot", "id"),
        Err(EditError::Finished { slot: "slot".into() })
    );
}
