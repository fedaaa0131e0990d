//! The graph manager: graphs kept by name, described with live statistics
//! as JSON and DOT, listed and removed; and the statistics it shows.

use std::time::Duration;

use compaktor_streams::{
    Completion, Flow, GraphBuilder, GraphDescription, GraphManager, GraphStatus, Keep, ManagerError, MergeHub,
    NodeKind, Segment, Sink, Source, StreamError,
};
use tokio::sync::watch;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn done<T>(what: &str, completion: Completion<T>) -> Result<T, StreamError> {
    timeout(WAIT, completion)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what} to complete"))
}

async fn reached(seen: &mut watch::Receiver<u64>, count: u64, what: &str) {
    timeout(WAIT, seen.wait_for(|n| *n >= count))
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("the counting stage is alive");
}

/// input ─▶ double ─▶ fan ─┬─▶ seen (counts into a watch)
///                         └─▶ middle (an empty slot) ─▶ all
#[tokio::test]
async fn a_running_graph_is_described_with_live_statistics_as_json_and_dot() {
    let manager = GraphManager::new();
    let (count, mut seen) = watch::channel(0u64);
    let mut g = GraphBuilder::new();
    let (input, sender) = g.source("input", Source::<u64>::channel(4));
    let (double_in, double_out, _) = g.flow("double", Flow::new().map(|n: u64| n * 2));
    let fan = g.broadcast("fan", 2);
    let (seen_in, seen_done) = g.sink("seen", Sink::foreach(move |_: u64| count.send_modify(|n| *n += 1)));
    let (middle_in, middle_out, _) = g.flow("middle", Flow::new().editable("middle_slot", []));
    let (all_in, all) = g.sink("all", Sink::collect());
    g.connect(input, double_in);
    g.connect(double_out, fan.inlet);
    g.connect(fan.outlets[0], seen_in);
    g.connect(fan.outlets[1], middle_in);
    g.connect(middle_out, all_in);
    let mut running = manager.run("doubler", g.build().unwrap()).unwrap();
    let sender = running.take(sender);
    for n in 0..10 {
        sender.send(n).await.unwrap();
    }
    reached(&mut seen, 10, "ten elements at the seen sink").await;

    let first = manager.describe("doubler").unwrap();
    assert_eq!(first.status, GraphStatus::Running);
    let names: Vec<&str> = first.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["input", "double", "fan", "seen", "middle", "all"]);
    let double = first.node("double").unwrap();
    assert_eq!(double.kind, NodeKind::Flow);
    assert_eq!((double.stats.elements_in, double.stats.elements_out), (10, 10));
    assert_eq!(double.stages[0].name, "map");
    assert_eq!(first.node("fan").unwrap().stats.elements_in, 10);
    let middle = first.node("middle").unwrap();
    assert_eq!(middle.slots.len(), 1, "{middle:?}");
    assert_eq!(middle.slots[0].name, "middle_slot");
    assert_eq!(first.edges.len(), 5);
    assert!(
        first.nodes.iter().all(|n| n.stats.rate.is_none()),
        "no rate before a second snapshot"
    );

    let json = first.to_json();
    let back: GraphDescription = serde_json::from_str(&json).unwrap();
    assert_eq!(back, first);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["nodes"][1]["stats"]["elements_out"], 10);
    assert_eq!(value["status"], "running");

    let dot = first.to_dot();
    assert!(dot.starts_with("digraph \"doubler\" {"), "{dot}");
    for node in &first.nodes {
        assert!(
            dot.contains(&format!("  \"{}\" [label=\"{}", node.name, node.name)),
            "{dot}"
        );
    }
    for edge in &first.edges {
        assert!(
            dot.contains(&format!("  \"{}\" -> \"{}\"", edge.from, edge.to)),
            "{dot}"
        );
    }
    assert!(dot.contains("in 10  out 10"), "{dot}");
    assert!(dot.contains("slot middle_slot: []"), "{dot}");

    // A second snapshot has rates, over the time since the first.
    sender.send(10).await.unwrap();
    reached(&mut seen, 11, "the eleventh element").await;
    let second = manager.describe("doubler").unwrap();
    assert!(second.node("double").unwrap().stats.rate.is_some(), "{second:?}");

    drop(sender);
    let all = done("the all sink", running.take(all)).await.unwrap();
    assert_eq!(all, (0..=10).map(|n| n * 2).collect::<Vec<_>>());
    done("the seen sink", running.take(seen_done)).await.unwrap();
    assert_eq!(manager.describe("doubler").unwrap().status, GraphStatus::Finished);
}

#[tokio::test]
async fn a_linear_pipeline_is_described_stage_by_stage_before_and_after_it_runs() {
    let manager = GraphManager::new();
    let graph = Source::from_iter(1..=4u32)
        .map(|n| n + 1)
        .editable("tweak", [Segment::new("triple", || Flow::new().map(|n: u32| n * 3))])
        .to_mat(Sink::collect(), Keep::right);
    let all = manager.add("line", graph).unwrap();

    let before = manager.describe("line").unwrap();
    assert_eq!(before.status, GraphStatus::NotStarted);
    let names: Vec<&str> = before.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["from_iter#0", "map#1", "tweak", "collect#3"]);
    let kinds: Vec<NodeKind> = before.nodes.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NodeKind::Source, NodeKind::Flow, NodeKind::Flow, NodeKind::Sink]
    );
    let edges: Vec<(&str, &str)> = before.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())).collect();
    assert_eq!(
        edges,
        [("from_iter#0", "map#1"), ("map#1", "tweak"), ("tweak", "collect#3")]
    );
    let slot = &before.node("tweak").unwrap().slots[0];
    assert_eq!(slot.segments[0].name, "triple");
    assert!(slot.segments[0].stages.is_empty(), "nothing runs yet");

    manager.start("line").unwrap();
    assert_eq!(done("the line", all).await.unwrap(), vec![6, 9, 12, 15]);
    let after = manager.describe("line").unwrap();
    assert_eq!(after.status, GraphStatus::Finished);
    let triple = &after.node("tweak").unwrap().slots[0].segments[0];
    assert_eq!(triple.stages[0].elements_out, 4, "{triple:?}");
    assert_eq!(after.node("collect#3").unwrap().stats.elements_in, 4);
}

#[tokio::test]
async fn graphs_are_listed_started_once_and_removed() {
    let manager = GraphManager::new();
    let first = manager
        .add("b", Source::from_iter(0..3u8).to_mat(Sink::collect(), Keep::right))
        .unwrap();
    let _second = manager
        .run("a", Source::from_iter(0..3u8).to_mat(Sink::ignore(), Keep::right))
        .unwrap();
    assert_eq!(manager.names(), ["a", "b"]);
    let again = manager.add("a", Source::single(1u8).to_mat(Sink::ignore(), Keep::right));
    assert_eq!(again.unwrap_err(), ManagerError::DuplicateGraph { name: "a".into() });
    assert_eq!(
        manager.start("a").unwrap_err(),
        ManagerError::AlreadyStarted { name: "a".into() }
    );
    assert_eq!(
        manager.describe("nope").unwrap_err(),
        ManagerError::UnknownGraph { name: "nope".into() }
    );

    // Removing a graph that never started drops it: its completion reports that.
    manager.remove("b").unwrap();
    assert!(matches!(
        done("the removed graph", first).await,
        Err(StreamError::AbruptTermination)
    ));
    assert_eq!(manager.names(), ["a"]);
    assert!(manager.monitor("a").is_some());
    let monitor = manager.remove("a").unwrap();
    assert_eq!(monitor.stats().stages.len(), 2);
    assert!(manager.names().is_empty());
    assert_eq!(
        manager.remove("a").unwrap_err(),
        ManagerError::UnknownGraph { name: "a".into() }
    );
}

/// from_iter ─▶ map ─▶ async boundary (2) ─▶ map_async (10 ms each) ─▶ fold.
/// The upstream island waits on the boundary's full buffer; the downstream
/// island is always asked by its fold.
#[tokio::test(start_paused = true)]
async fn an_island_waiting_on_an_async_boundary_reports_backpressure_on_each_of_its_stages() {
    let (sum, monitor) = Source::from_iter(0..20u64)
        .map(|n| n)
        .async_boundary_with(2)
        .map_async(1, |n| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            n
        })
        .to_mat(Sink::fold(0, |a, n| a + n), Keep::right)
        .run_monitored();
    assert_eq!(done("the slow sink", sum).await.unwrap(), 190);
    let stats = monitor.stats();
    // 20 elements at 10 ms each behind a buffer of 2: the upstream island
    // waited most of the 200 ms, and every stage in it waited with it.
    for name in ["from_iter", "map", "async_boundary"] {
        let stage = stats.stage(name).unwrap();
        assert!(stage.backpressured >= Duration::from_millis(100), "{stage:?}");
        assert!(stage.backpressured <= Duration::from_millis(200), "{stage:?}");
    }
    // Downstream of the boundary nothing waited on demand.
    assert_eq!(stats.stage("map_async").unwrap().backpressured, Duration::ZERO);
}

/// from_iter ─┐
///             ├▶ merge ─▶ merge hub (2) ─▶ map_async (10 ms each) ─▶ fold
/// from_iter ─┘
/// Sources, a fan-in junction, a merge hub's producer and its consumer each
/// count the time nobody downstream asked them for an element.
#[tokio::test(start_paused = true)]
async fn sources_junctions_and_merge_hubs_report_the_time_downstream_did_not_ask() {
    let ((hub, sum), consumer) = MergeHub::<u64>::source(2)
        .map_async(1, |n| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            n
        })
        .to_mat(Sink::fold(0, |a, n| a + n), Keep::both)
        .run_monitored();
    let (produced, producer) = Source::from_iter(0..10u64)
        .merge(Source::from_iter(10..20u64))
        .to_mat(hub.sink(), Keep::right)
        .run_monitored();
    done("the producer", produced).await.unwrap();
    drop(hub);
    assert_eq!(done("the consumer", sum).await.unwrap(), 190);
    // 20 elements at 10 ms each: the producer waited most of the 200 ms on
    // the hub's buffer of 2, and so did everything fused before it.
    let stats = producer.stats();
    let names: Vec<&str> = stats.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["from_iter", "from_iter", "merge", "merge_hub_sink"]);
    for stage in &stats.stages {
        assert!(stage.backpressured >= Duration::from_millis(100), "{stage:?}");
        assert!(stage.backpressured <= Duration::from_millis(200), "{stage:?}");
    }
    // The hub's consumer held elements map_async did not ask for yet.
    let hub_source = consumer.stats();
    let hub_source = hub_source.stage("merge_hub").unwrap();
    assert!(hub_source.backpressured >= Duration::from_millis(100), "{hub_source:?}");
}

/// channel ─▶ filter (evens) ─▶ foreach (counts into a watch). The filter
/// passes on half of what it takes, so a rate read from the wrong counter
/// or over the wrong interval comes out different.
#[tokio::test(start_paused = true)]
async fn a_stage_rate_is_what_it_passed_on_per_second_since_the_previous_snapshot() {
    let (count, mut seen) = watch::channel(0u64);
    let ((sender, finished), monitor) = Source::<u64>::channel(64)
        .filter(|n| n % 2 == 0)
        .to_mat(Sink::foreach(move |_: u64| count.send_modify(|n| *n += 1)), Keep::both)
        .run_monitored();
    // The test and the stream share one thread: once the sink has counted an
    // element, its island has run on until it waits, publishing its counts.
    for n in 0..4 {
        sender.send(n).await.unwrap();
    }
    reached(&mut seen, 2, "two evens at the sink").await;
    tokio::time::advance(Duration::from_secs(3)).await;
    let first = monitor.stats();
    assert_eq!(first.stage("filter").unwrap().elements_out, 2, "{first:?}");
    assert!(first.stages.iter().all(|s| s.rate.is_none()), "{first:?}");

    // 20 in, 10 out over 2 s.
    for n in 4..24 {
        sender.send(n).await.unwrap();
    }
    reached(&mut seen, 12, "ten more evens at the sink").await;
    tokio::time::advance(Duration::from_secs(2)).await;
    let second = monitor.stats();
    let filter = second.stage("filter").unwrap();
    assert_eq!((filter.elements_in, filter.elements_out), (24, 12), "{filter:?}");
    assert_eq!(filter.rate, Some(5), "10 passed on in 2 s: {filter:?}");
    assert_eq!(second.stage("channel").unwrap().rate, Some(10), "{second:?}");

    // 6 in, 3 out over 1 s, counted from the second snapshot (taken through
    // the original: a clone shares its history), not from the first.
    for n in 24..30 {
        sender.send(n).await.unwrap();
    }
    reached(&mut seen, 15, "three more evens at the sink").await;
    tokio::time::advance(Duration::from_secs(1)).await;
    let third = monitor.clone().stats();
    assert_eq!(third.stage("filter").unwrap().rate, Some(3), "{third:?}");
    assert_eq!(third.stage("channel").unwrap().rate, Some(6), "{third:?}");

    drop(sender);
    done("the counting sink", finished).await.unwrap();
}

#[test]
fn manager_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GraphManager>();
    send_sync::<GraphDescription>();
    send_sync::<ManagerError>();
    send_sync::<compaktor_streams::EditError>();
    send_sync::<compaktor_streams::Tunable<String>>();
    send_sync::<Segment<String>>();
}
