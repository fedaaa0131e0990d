//! Throughput of fused and asynchronous pipelines, each beside a floor
//! measured in the same run. Run with
//! `cargo bench -p compaktor-streams --bench streams`.

use std::time::{Duration, Instant};

use compaktor_streams::{Sink, Source};
use futures::StreamExt;

const N: u64 = 10_000_000;
const BUFFER: usize = 16;

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
        report("fused", fused, "futures::stream", floor);

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
        report("async boundary per stage", boundaries, "tokio mpsc chain", floor);
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

fn report(what: &str, took: Duration, floor_name: &str, floor: Duration) {
    let rate = |d: Duration| N as f64 / d.as_secs_f64() / 1e6;
    println!(
        "  {what:<26} {:>8.1} ms {:>7.1} M elements/s | {floor_name:<16} {:>8.1} ms {:>7.1} M/s | ratio {:.2}x the floor's time",
        took.as_secs_f64() * 1e3,
        rate(took),
        floor.as_secs_f64() * 1e3,
        rate(floor),
        took.as_secs_f64() / floor.as_secs_f64()
    );
}
