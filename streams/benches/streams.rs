//! Throughput of fused and asynchronous pipelines and of fan-out and
//! fan-in junctions, each beside a floor measured in the same run. Run with
//! `cargo bench -p compaktor-streams --bench streams`.

use std::time::{Duration, Instant};

use compaktor_streams::{Flow, GraphBuilder, Segment, Sink, Source};
use futures::StreamExt;

const N: u64 = 10_000_000;
const BUFFER: usize = 16;
/// Elements per source (merge) or per sink (broadcast) in the junction runs.
const N_FAN: u64 = 2_000_000;
const FAN: usize = 4;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        println!("{N} u64 through map -> filter -> fold (best of 3)");
        let floor = best(|| async {
            futures::stream::iter(0..N)
                .map(|n| n * 3)
                .filter(|n| std::future::ready(n % 2 == 0))
                .fold(0u64, |a, n| async move { a.wrapping_add(n) })
                .await
        })
        .await;
        let fused = best(|| async {
            Source::from_iter(0..N)
                .map(|n| n * 3)
                .filter(|n| n % 2 == 0)
                .run_with(Sink::fold(0u64, |a, n| a.wrapping_add(n)))
                .await
                .expect("the stream to complete")
        })
        .await;
        report("fused", N, fused, "futures::stream", floor);
        // The same chain inside an editable slot: what being editable costs per element.
        let editable = best(|| async {
            let chain = Segment::new("chain", || Flow::new().map(|n: u64| n * 3).filter(|n| n % 2 == 0));
            Source::from_iter(0..N)
                .editable("slot", [chain])
                .run_with(Sink::fold(0u64, |a, n| a.wrapping_add(n)))
                .await
                .expect("the stream to complete")
        })
        .await;
        report("fused, in an editable slot", N, editable, "fused", fused);

        let floor = best(|| async {
            let (tx1, mut rx1) = tokio::sync::mpsc::channel::<u64>(BUFFER);
            let (tx2, mut rx2) = tokio::sync::mpsc::channel::<u64>(BUFFER);
            let (tx3, mut rx3) = tokio::sync::mpsc::channel::<u64>(BUFFER);
            tokio::spawn(async move {
                for n in 0..N {
                    if tx1.send(n).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some(n) = rx1.recv().await {
                    if tx2.send(n * 3).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some(n) = rx2.recv().await {
                    if n % 2 == 0 && tx3.send(n).await.is_err() {
                        return;
                    }
                }
            });
            let mut acc = 0u64;
            while let Some(n) = rx3.recv().await {
                acc = acc.wrapping_add(n);
            }
            acc
        })
        .await;
        let boundaries = best(|| async {
            Source::from_iter(0..N)
                .async_boundary_with(BUFFER)
                .map(|n| n * 3)
                .async_boundary_with(BUFFER)
                .filter(|n| n % 2 == 0)
                .async_boundary_with(BUFFER)
                .run_with(Sink::fold(0u64, |a, n| a.wrapping_add(n)))
                .await
                .expect("the stream to complete")
        })
        .await;
        report("async boundary per stage", N, boundaries, "tokio mpsc chain", floor);

        println!("broadcast of {N_FAN} u64 to {FAN} folding sinks, buffer {BUFFER} per outlet (best of 3)");
        let floor = best(|| async {
            let mut senders = Vec::new();
            let mut sinks = Vec::new();
            for _ in 0..FAN {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(BUFFER);
                senders.push(tx);
                sinks.push(tokio::spawn(async move {
                    let mut acc = 0u64;
                    while let Some(n) = rx.recv().await {
                        acc = acc.wrapping_add(n);
                    }
                    acc
                }));
            }
            tokio::spawn(async move {
                for n in 0..N_FAN {
                    for tx in &senders {
                        if tx.send(n).await.is_err() {
                            return;
                        }
                    }
                }
            });
            let mut total = 0u64;
            for sink in sinks {
                total = total.wrapping_add(sink.await.expect("a sink task"));
            }
            total
        })
        .await;
        let broadcast = best(|| async {
            let mut g = GraphBuilder::new();
            let (numbers, _) = g.source("numbers", Source::from_iter(0..N_FAN));
            let fan = g.broadcast("fan", FAN);
            g.connect(numbers, fan.inlet);
            let mut sums = Vec::new();
            for (k, outlet) in fan.outlets.iter().enumerate() {
                let (sink, sum) = g.sink(format!("sum{k}"), Sink::fold(0u64, |a, n| a.wrapping_add(n)));
                g.connect(*outlet, sink);
                sums.push(sum);
            }
            let mut running = g.build().expect("a valid graph").run();
            let mut total = 0u64;
            for sum in sums {
                total = total.wrapping_add(running.take(sum).await.expect("the stream to complete"));
            }
            total
        })
        .await;
        report("broadcast to 4", N_FAN, broadcast, "4 tokio mpsc", floor);

        println!("merge of {FAN} sources of {N_FAN} u64 into a fold (best of 3)");
        let floor = best(|| async {
            let streams = (0..FAN as u64).map(|k| futures::stream::iter(k * N_FAN..(k + 1) * N_FAN));
            futures::stream::select_all(streams)
                .fold(0u64, |a, n| async move { a.wrapping_add(n) })
                .await
        })
        .await;
        let merged = best(|| async {
            let mut g = GraphBuilder::new();
            let merge = g.merge("merge", FAN);
            for (k, inlet) in merge.inlets.iter().enumerate() {
                let base = k as u64 * N_FAN;
                let (numbers, _) = g.source(format!("numbers{k}"), Source::from_iter(base..base + N_FAN));
                g.connect(numbers, *inlet);
            }
            let (sink, sum) = g.sink("sum", Sink::fold(0u64, |a, n| a.wrapping_add(n)));
            g.connect(merge.outlet, sink);
            let mut running = g.build().expect("a valid graph").run();
            running.take(sum).await.expect("the stream to complete")
        })
        .await;
        report("merge of 4", FAN as u64 * N_FAN, merged, "select_all", floor);
    });
}

async fn best<F, Fut>(run: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..3 {
        let start = Instant::now();
        let total = run().await;
        best = best.min(start.elapsed());
        assert!(result.is_none_or(|r| r == total), "every run computes the same total");
        result = Some(total);
    }
    best
}

/// `elements` is what went in: for a broadcast, per sink.
fn report(what: &str, elements: u64, took: Duration, floor_name: &str, floor: Duration) {
    let rate = |d: Duration| elements as f64 / d.as_secs_f64() / 1e6;
    println!(
        "  {what:<26} {:>8.1} ms {:>7.1} M elements/s | {floor_name:<16} {:>8.1} ms {:>7.1} M/s | ratio {:.2}x the floor's time",
        took.as_secs_f64() * 1e3,
        rate(took),
        floor.as_secs_f64() * 1e3,
        rate(floor),
        took.as_secs_f64() / floor.as_secs_f64()
    );
}
