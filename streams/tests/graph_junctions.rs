//! What each junction does with elements and demand: counts preserved,
//! order, fairness, routing by demand, and backpressure through a
//! broadcast; and the one-line forms on `Source` and `Flow`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use compaktor_streams::{Completion, Flow, GraphBuilder, Sink, Source, StreamError};
use tokio::sync::watch;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

async fn done<T>(what: &str, completion: Completion<T>) -> Result<T, StreamError> {
    timeout(WAIT, completion)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what} to complete"))
}

/// A fast source whose iterator records, at every element it produces,
/// how far ahead it is of a consumer's count.
struct Counted {
    produced: u64,
    consumed: Arc<AtomicU64>,
    max_ahead: Arc<AtomicU64>,
    limit: u64,
}

impl Iterator for Counted {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        if self.produced == self.limit {
            return None;
        }
        self.produced += 1;
        let ahead = self.produced - self.consumed.load(Ordering::SeqCst);
        self.max_ahead.fetch_max(ahead, Ordering::SeqCst);
        Some(self.produced - 1)
    }
}

/// A flow that lets an element through only once `gate` is open.
fn gated(gate: &watch::Receiver<bool>) -> Flow<u64, u64> {
    let gate = gate.clone();
    Flow::new().map_async(1, move |n| {
        let mut gate = gate.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
            n
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_delivers_every_element_to_every_outlet_in_order() {
    const N: u64 = 10_000;
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(0..N));
    let fan = g.broadcast("fan", 4);
    let mut outs = Vec::new();
    for (k, outlet) in fan.outlets.iter().enumerate() {
        let (sink_in, all) = g.sink(format!("sink{k}"), Sink::collect());
        g.connect(*outlet, sink_in);
        outs.push(all);
    }
    g.connect(numbers, fan.inlet);
    let mut running = g.build().unwrap().run();
    for all in outs {
        let all = done("a broadcast branch", running.take(all)).await.unwrap();
        assert_eq!(all, (0..N).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_broadcast_branch_limits_the_fast_source() {
    const N: u64 = 2_000;
    let slow_consumed = Arc::new(AtomicU64::new(0));
    let max_ahead = Arc::new(AtomicU64::new(0));
    let source = Counted {
        produced: 0,
        consumed: Arc::clone(&slow_consumed),
        max_ahead: Arc::clone(&max_ahead),
        limit: N,
    };
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(source));
    let fan = g.broadcast("fan", 2);
    let (fast_in, fast) = g.sink("fast", Sink::fold(0u64, |c, _| c + 1));
    let counter = Arc::clone(&slow_consumed);
    let slow = Flow::new()
        .map_async(1, |n: u64| async move {
            // The slow branch gives way to the scheduler several times per element.
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            n
        })
        .to_mat(
            Sink::foreach(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
            compaktor_streams::Keep::right,
        );
    let (slow_in, slow) = g.sink("slow", slow);
    g.connect(numbers, fan.inlet);
    g.connect(fan.outlets[0], fast_in);
    g.connect(fan.outlets[1], slow_in);
    let mut running = g.build().unwrap().run();
    assert_eq!(done("the fast branch", running.take(fast)).await.unwrap(), N);
    done("the slow branch", running.take(slow)).await.unwrap();
    assert_eq!(slow_consumed.load(Ordering::SeqCst), N);
    // The slow outlet's buffer of 16, one in map_async, one on its way to the
    // sink, one being produced: a fixed bound, whatever N is.
    let bound = 16 + 3;
    let seen = max_ahead.load(Ordering::SeqCst);
    assert!(
        seen <= bound,
        "the source ran {seen} ahead of the slow branch (bound {bound})"
    );
    assert!(seen >= 8, "the outlet buffer was used (the source ran {seen} ahead)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_routes_to_the_outlet_that_has_demand_and_loses_nothing() {
    const N: u64 = 1_000;
    let (gate_tx, gate_rx) = watch::channel(false);
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(0..N));
    let spread = g.balance("spread", 2);
    let (fast_in, fast) = g.sink("fast", Sink::collect());
    let (stuck_in, stuck) = g.sink(
        "stuck",
        gated(&gate_rx).to_mat(Sink::collect(), compaktor_streams::Keep::right),
    );
    g.connect(numbers, spread.inlet);
    g.connect(spread.outlets[0], stuck_in);
    g.connect(spread.outlets[1], fast_in);
    let mut running = g.build().unwrap().run();
    // The stuck branch takes nothing while its gate is shut, so everything
    // beyond its buffer goes to the other: the source completes through it.
    let fast = done("the fast branch, while the other is stuck", running.take(fast))
        .await
        .unwrap();
    assert!(
        fast.len() as u64 >= N - 16 - 2,
        "only {} of {N} went to the outlet with demand",
        fast.len()
    );
    gate_tx.send(true).unwrap();
    let stuck = done("the stuck branch, once opened", running.take(stuck))
        .await
        .unwrap();
    assert_eq!(fast.len() + stuck.len(), N as usize, "every element exactly once");
    let all: BTreeSet<u64> = fast.iter().chain(&stuck).copied().collect();
    assert_eq!(all, (0..N).collect(), "no element lost or duplicated");
    assert!(stuck.windows(2).all(|w| w[0] < w[1]), "each outlet keeps the order");
}

#[tokio::test]
async fn partition_sends_each_element_where_it_is_told() {
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(0..300u32));
    let split = g.partition("by_three", 3, |n: &u32| (*n % 3) as usize);
    let mut outs = Vec::new();
    for (k, outlet) in split.outlets.iter().enumerate() {
        let (sink_in, all) = g.sink(format!("rest{k}"), Sink::collect());
        g.connect(*outlet, sink_in);
        outs.push(all);
    }
    g.connect(numbers, split.inlet);
    let mut running = g.build().unwrap().run();
    for (k, all) in outs.into_iter().enumerate() {
        let all = done("a partition", running.take(all)).await.unwrap();
        assert_eq!(all, (0..300).filter(|n| n % 3 == k as u32).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn partition_to_a_missing_outlet_fails_every_outlet() {
    let mut g = GraphBuilder::new();
    let (numbers, _) = g.source("numbers", Source::from_iter(0..10u32));
    let split = g.partition("bad", 2, |n: &u32| if *n == 5 { 7 } else { 0 });
    let (a_in, a) = g.sink("a", Sink::collect());
    let (b_in, b) = g.sink("b", Sink::collect());
    g.connect(numbers, split.inlet);
    g.connect(split.outlets[0], a_in);
    g.connect(split.outlets[1], b_in);
    let mut running = g.build().unwrap().run();
    for (what, all) in [("outlet 0", running.take(a)), ("outlet 1", running.take(b))] {
        let outcome = done(what, all).await;
        assert!(
            matches!(outcome, Err(StreamError::PartitionOutOfBounds { index: 7, outlets: 2 })),
            "{what}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn merge_keeps_every_element_and_each_inputs_order() {
    const N: u64 = 1_000;
    let mut g = GraphBuilder::new();
    let merge = g.merge("gather", 4);
    for (k, inlet) in merge.inlets.iter().enumerate() {
        let base = k as u64 * N;
        let (numbers, _) = g.source(format!("numbers{k}"), Source::from_iter(base..base + N));
        g.connect(numbers, *inlet);
    }
    let (sink_in, all) = g.sink("all", Sink::collect());
    g.connect(merge.outlet, sink_in);
    let mut running = g.build().unwrap().run();
    let all = done("the merge", running.take(all)).await.unwrap();
    assert_eq!(all.len() as u64, 4 * N);
    for k in 0..4 {
        let from_k: Vec<u64> = all.iter().copied().filter(|n| n / N == k).collect();
        assert_eq!(from_k, (k * N..(k + 1) * N).collect::<Vec<_>>(), "input {k} in order");
    }
}

#[tokio::test]
async fn merge_is_fair_to_inputs_that_are_always_ready() {
    let taken = Source::from_iter(std::iter::repeat('a'))
        .merge(Source::from_iter(std::iter::repeat('b')))
        .take(100)
        .run_with(Sink::collect());
    let taken = done("take(100) of a merge", taken).await.unwrap();
    let a = taken.iter().filter(|c| **c == 'a').count();
    assert_eq!((a, taken.len() - a), (50, 50), "{taken:?}");
}

#[tokio::test]
async fn merge_preferred_serves_the_preferred_inlet_first() {
    let mut g = GraphBuilder::new();
    let merge = g.merge_preferred("urgent_first", 2);
    let (urgent, _) = g.source("urgent", Source::from_iter(0..5u32));
    let (normal, _) = g.source("normal", Source::from_iter(100..105u32));
    let (sink_in, all) = g.sink("all", Sink::collect());
    g.connect(normal, merge.inlets[1]);
    g.connect(urgent, merge.inlets[0]);
    g.connect(merge.outlet, sink_in);
    let mut running = g.build().unwrap().run();
    let all = done("the preferred merge", running.take(all)).await.unwrap();
    assert_eq!(all, vec![0, 1, 2, 3, 4, 100, 101, 102, 103, 104]);
}

#[tokio::test]
async fn zip_pairs_elements_in_order_and_stops_with_the_shorter() {
    let mut g = GraphBuilder::new();
    let pairs = g.zip("pairs");
    let (numbers, _) = g.source("numbers", Source::from_iter(1..=5u32));
    let (letters, _) = g.source("letters", Source::from_iter(['a', 'b', 'c']));
    let (sink_in, all) = g.sink("all", Sink::collect());
    g.connect(numbers, pairs.left);
    g.connect(letters, pairs.right);
    g.connect(pairs.outlet, sink_in);
    let mut running = g.build().unwrap().run();
    assert_eq!(
        done("the zip", running.take(all)).await.unwrap(),
        vec![(1, 'a'), (2, 'b'), (3, 'c')]
    );

    let zipped = Source::from_iter(0..1_000u32)
        .zip(Source::from_iter(0..1_000u32).map(|n| n * 2))
        .run_with(Sink::collect());
    let zipped = done("Source::zip", zipped).await.unwrap();
    assert_eq!(zipped.len(), 1_000);
    assert!(zipped.iter().all(|(a, b)| *b == a * 2), "pairs stay aligned");
}

#[tokio::test]
async fn concat_passes_on_its_inlets_one_after_another() {
    let mut g = GraphBuilder::new();
    let chain = g.concat("chain", 3);
    for (k, inlet) in chain.inlets.iter().enumerate() {
        let base = 10 * k as u32;
        let (numbers, _) = g.source(format!("part{k}"), Source::from_iter(base..base + 3));
        g.connect(numbers, *inlet);
    }
    let (sink_in, all) = g.sink("all", Sink::collect());
    g.connect(chain.outlet, sink_in);
    let mut running = g.build().unwrap().run();
    assert_eq!(
        done("the concat", running.take(all)).await.unwrap(),
        vec![0, 1, 2, 10, 11, 12, 20, 21, 22]
    );

    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let all = Source::from_iter([1, 2])
        .concat(Source::from_receiver(rx))
        .run_with(Sink::collect());
    tx.send(3).await.unwrap();
    drop(tx);
    assert_eq!(done("Source::concat", all).await.unwrap(), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_failing_input_fails_the_merge_and_cancels_the_others() {
    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(4);
    let failing = Source::from_iter(0..3u32).try_map(|n| if n < 2 { Ok(n) } else { Err("broken input") });
    let outcome = Source::from_receiver(rx).merge(failing).run_with(Sink::collect());
    let outcome = done("the failing merge", outcome).await;
    assert!(
        matches!(outcome, Err(StreamError::Stage { stage: "try_map", .. })),
        "{outcome:?}"
    );
    timeout(WAIT, tx.closed())
        .await
        .expect("the other input to be cancelled");
}

#[tokio::test]
async fn also_to_sends_a_copy_of_every_element_to_a_second_sink() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let main = Source::from_iter(0..500u32)
        .also_to(Sink::foreach(move |n| tx.send(n).unwrap()))
        .map(|n| n + 1)
        .run_with(Sink::collect());
    let main = done("the main line", main).await.unwrap();
    assert_eq!(main, (1..=500).collect::<Vec<_>>());
    let mut copies = Vec::new();
    while let Some(n) = timeout(WAIT, rx.recv()).await.expect("the side sink to finish") {
        copies.push(n);
    }
    assert_eq!(copies, (0..500).collect::<Vec<_>>());
}

#[tokio::test]
async fn flows_merge_too() {
    let flow = Flow::new().map(|n: u32| n * 10).merge(Source::single(7));
    let mut all = done(
        "a merging flow",
        Source::from_iter(1..=3).via(flow).run_with(Sink::collect()),
    )
    .await
    .unwrap();
    all.sort_unstable();
    assert_eq!(all, vec![7, 10, 20, 30]);
}

#[tokio::test]
async fn also_to_stops_everything_when_the_main_line_cancels() {
    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(4);
    let (side_tx, mut side_rx) = tokio::sync::mpsc::unbounded_channel();
    let main = Source::from_receiver(rx)
        .also_to(Sink::foreach(move |n| side_tx.send(n).unwrap()))
        .take(2)
        .run_with(Sink::collect());
    for n in 0..3 {
        tx.send(n).await.unwrap();
    }
    assert_eq!(done("take(2) of the main line", main).await.unwrap(), vec![0, 1]);
    timeout(WAIT, tx.closed())
        .await
        .expect("the source to be cancelled although the side sink still wants elements");
    // The side sink completes (its sender is dropped), after what it got.
    let mut side = Vec::new();
    while let Some(n) = timeout(WAIT, side_rx.recv()).await.expect("the side sink to complete") {
        side.push(n);
    }
    assert!(side.starts_with(&[0, 1]) && side.len() <= 3, "{side:?}");
}
