//! The graph builder: wiring, what `build` refuses, cycles, the graph's
//! shape, and the statistics of its junctions.

use std::time::Duration;

use compaktor_streams::{
    Completion, Flow, GraphBuilder, GraphError, MatKey, Materialized, NodeKind, RunnableGraph, Sink, Source,
    StageState, StreamError,
};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

async fn done<T>(what: &str, completion: Completion<T>) -> Result<T, StreamError> {
    timeout(WAIT, completion)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what} to complete"))
}

/// The key to the countdown's collected zeros.
type Zeros = MatKey<Completion<Vec<u32>>>;

/// numbers ─▶ merge ─▶ partition ─┬─(0)─▶ zeros
///              ▲                 └─(n)─▶ decrement ─┐
///              └────────────────────────────────────┘
/// Each number n goes round the cycle n times, down to 0.
fn countdown(allow_cycles: bool) -> Result<(RunnableGraph<Materialized>, Zeros), GraphError> {
    let mut g = GraphBuilder::new();
    if allow_cycles {
        g.allow_cycles();
    }
    let (numbers, _) = g.source("numbers", Source::from_iter(1..=5u32));
    let merge = g.merge("merge", 2);
    let split = g.partition("partition", 2, |n: &u32| usize::from(*n > 0));
    let (zeros_in, zeros) = g.sink("zeros", Sink::collect());
    // 1 + 2 + 3 + 4 + 5 trips round the cycle; then it ends itself.
    let (dec_in, dec_out, _) = g.flow("decrement", Flow::new().map(|n: u32| n - 1).take(15));
    g.connect(numbers, merge.inlets[0]);
    g.connect(merge.outlet, split.inlet);
    g.connect(split.outlets[0], zeros_in);
    g.connect(split.outlets[1], dec_in);
    g.connect(dec_out, merge.inlets[1]);
    Ok((g.build()?, zeros))
}

#[test]
fn a_cycle_is_rejected_naming_its_nodes() {
    let error = countdown(false).map(|_| ()).unwrap_err();
    assert_eq!(
        error,
        GraphError::Cycle {
            nodes: ["merge", "partition", "decrement", "merge"].map(String::from).to_vec()
        }
    );
    assert_eq!(
        error.to_string(),
        "the graph has a cycle: merge -> partition -> decrement -> merge"
    );
}

#[tokio::test]
async fn an_allowed_cycle_runs_through_a_feedback_edge() {
    let (graph, zeros) = countdown(true).unwrap();
    let shape = graph.shape().unwrap().clone();
    let feedback: Vec<_> = shape.edges.iter().filter(|e| e.feedback).collect();
    assert_eq!(feedback.len(), 1, "{shape:?}");
    assert_eq!(
        (feedback[0].from.as_str(), feedback[0].to.as_str()),
        ("decrement", "merge")
    );

    let (mut running, monitor) = graph.run_monitored();
    let zeros = done("the countdown", running.take(zeros)).await.unwrap();
    assert_eq!(zeros, vec![0; 5]);
    let stats = monitor.stats();
    assert_eq!(stats.stage("feedback").unwrap().elements_out, 15);
    assert_eq!(stats.stage("merge").unwrap().elements_in, 5 + 15);
}

#[test]
fn unconnected_ports_are_build_errors() {
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(0..3u8));
    let fan = g.broadcast("fan", 2);
    let (sink_in, _) = g.sink("sink", Sink::ignore());
    g.connect(numbers, fan.inlet);
    g.connect(fan.outlets[0], sink_in);
    assert_eq!(
        g.build().unwrap_err(),
        GraphError::UnconnectedOutlet {
            node: "fan".into(),
            index: 1
        }
    );

    let mut g = GraphBuilder::new();
    let merge = g.merge::<u8>("merge", 2);
    let (numbers, _) = g.source("numbers", Source::from_iter(0..3u8));
    let (sink_in, _) = g.sink("sink", Sink::ignore());
    g.connect(numbers, merge.inlets[0]);
    g.connect(merge.outlet, sink_in);
    let error = g.build().unwrap_err();
    assert_eq!(
        error,
        GraphError::UnconnectedInlet {
            node: "merge".into(),
            index: 1
        }
    );
    assert_eq!(error.to_string(), "inlet 1 of node merge is not connected");
}

#[test]
fn wiring_mistakes_are_reported_by_build() {
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(0..3u8));
    let (a, _) = g.sink("a", Sink::ignore());
    let (b, _) = g.sink("b", Sink::ignore());
    g.connect(numbers, a);
    g.connect(numbers, b);
    assert_eq!(
        g.build().unwrap_err(),
        GraphError::OutletConnectedTwice {
            node: "numbers".into(),
            index: 0
        }
    );

    let mut g = GraphBuilder::new();
    let (one, _) = g.source("one", Source::single(1u8));
    let (two, _) = g.source("two", Source::single(2u8));
    let (sink_in, _) = g.sink("sink", Sink::ignore());
    g.connect(one, sink_in);
    g.connect(two, sink_in);
    assert_eq!(
        g.build().unwrap_err(),
        GraphError::InletConnectedTwice {
            node: "sink".into(),
            index: 0
        }
    );

    let mut g = GraphBuilder::new();
    let _ = g.source("same", Source::single(1u8));
    let _ = g.sink::<u8, _>("same", Sink::ignore());
    assert_eq!(
        g.build().unwrap_err(),
        GraphError::DuplicateName { name: "same".into() }
    );

    let mut other = GraphBuilder::new();
    let (foreign, _) = other.source("numbers", Source::single(1u8));
    let mut g = GraphBuilder::new();
    let (sink_in, _) = g.sink("sink", Sink::ignore());
    g.connect(foreign, sink_in);
    assert_eq!(g.build().unwrap_err(), GraphError::ForeignPort);
}

#[tokio::test]
async fn the_shape_lists_named_nodes_and_edges_and_serialises() {
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(0..4u32));
    let fan = g.balance("spread", 2);
    let merge = g.merge("gather", 2);
    let (double_in, double_out, _) = g.flow("double", Flow::new().map(|n: u32| n * 2));
    let (sink_in, sum) = g.sink("sum", Sink::fold(0, |a, n| a + n));
    g.connect(numbers, fan.inlet);
    g.connect(fan.outlets[0], double_in);
    g.connect(double_out, merge.inlets[0]);
    g.connect(fan.outlets[1], merge.inlets[1]);
    g.connect(merge.outlet, sink_in);
    let graph = g.build().unwrap();

    let shape = graph.shape().unwrap();
    let kinds: Vec<_> = shape.nodes.iter().map(|n| (n.name.as_str(), n.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("numbers", NodeKind::Source),
            ("spread", NodeKind::Balance),
            ("gather", NodeKind::Merge),
            ("double", NodeKind::Flow),
            ("sum", NodeKind::Sink)
        ]
    );
    let spread = shape.node("spread").unwrap();
    assert_eq!((spread.inlets, spread.outlets), (1, 2));
    assert_eq!(shape.edges.len(), 5);
    let json = serde_json::to_value(shape).unwrap();
    assert_eq!(json["nodes"][1]["kind"], "balance");
    assert_eq!(json["edges"][1]["from"], "spread");
    assert_eq!(json["edges"][1]["to"], "double");
    let back: compaktor_streams::GraphShape = serde_json::from_value(json).unwrap();
    assert_eq!(&back, shape);

    let (mut running, monitor) = graph.run_monitored();
    let sum = done("the sum", running.take(sum)).await.unwrap();
    // 0..4 with some doubled: between 6 and 12, and the monitor keeps the shape.
    assert!((6..=12).contains(&sum), "{sum}");
    assert_eq!(monitor.shape().unwrap().nodes.len(), 5);
}

#[tokio::test]
async fn junctions_report_statistics_like_any_stage() {
    const N: u64 = 1_000;
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(0..N));
    let fan = g.broadcast("fan", 3);
    let merge = g.merge("gather", 2);
    let (evens_in, evens_out, _) = g.flow("evens", Flow::new().filter(|n: &u64| n % 2 == 0));
    let (odds_in, odds_out, _) = g.flow("odds", Flow::new().filter(|n: &u64| n % 2 == 1));
    let (both_in, both) = g.sink("both", Sink::fold(0u64, |c, _| c + 1));
    let (all_in, all) = g.sink("all", Sink::fold(0u64, |c, _| c + 1));
    g.connect(numbers, fan.inlet);
    g.connect(fan.outlets[0], evens_in);
    g.connect(fan.outlets[1], odds_in);
    g.connect(fan.outlets[2], all_in);
    g.connect(evens_out, merge.inlets[0]);
    g.connect(odds_out, merge.inlets[1]);
    g.connect(merge.outlet, both_in);
    let (mut running, monitor) = g.build().unwrap().run_monitored();
    assert_eq!(done("the merged branch", running.take(both)).await.unwrap(), N);
    assert_eq!(done("the third outlet", running.take(all)).await.unwrap(), N);

    let stats = monitor.stats();
    let fan = stats.node("fan").next().expect("the broadcast reports under its node");
    assert_eq!(fan.name, "broadcast");
    assert_eq!((fan.elements_in, fan.elements_out), (N, 3 * N), "{fan:?}");
    assert_eq!(fan.state, StageState::Completed);
    let evens = stats.node("evens").next().unwrap();
    assert_eq!(
        (evens.name.as_str(), evens.elements_in, evens.elements_out),
        ("filter", N, N / 2)
    );
    let gather = stats.node("gather").next().unwrap();
    assert_eq!(
        (gather.name.as_str(), gather.elements_in, gather.elements_out),
        ("merge", N, N)
    );
    let all = stats.node("all").next().unwrap();
    assert_eq!(
        all.elements_in, N,
        "a sink after an outlet counts that outlet's elements"
    );
    assert!(
        stats.stages.iter().all(|s| s.state == StageState::Completed),
        "{stats:?}"
    );
    let json = serde_json::to_value(&stats).unwrap();
    assert!(json["stages"].as_array().unwrap().iter().any(|s| s["node"] == "fan"));
}

#[tokio::test]
async fn materialised_values_of_sources_and_flows_are_kept() {
    let mut g = GraphBuilder::new();
    let (input, sender) = g.source("input", Source::<u32>::channel(4));
    let (switch_in, switch_out, switch) = g.flow("switch", Flow::kill_switch());
    let (sink_in, seen) = g.sink("seen", Sink::collect());
    g.connect(input, switch_in);
    g.connect(switch_out, sink_in);
    let mut running = g.build().unwrap().run();
    let sender = running.take(sender);
    let switch = running.take(switch);
    sender.send(1).await.unwrap();
    sender.send(2).await.unwrap();
    drop(sender);
    assert_eq!(done("the channel graph", running.take(seen)).await.unwrap(), vec![1, 2]);
    switch.shutdown(); // too late to matter
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send::<GraphBuilder>();
    send::<Materialized>();
    send_sync::<compaktor_streams::InPort<String>>();
    send_sync::<compaktor_streams::OutPort<String>>();
    send_sync::<MatKey<String>>();
    send_sync::<compaktor_streams::GraphShape>();
    send_sync::<GraphError>();
    send_sync::<compaktor_streams::MergeHub<String>>();
    send_sync::<compaktor_streams::BroadcastHub<String>>();
}
