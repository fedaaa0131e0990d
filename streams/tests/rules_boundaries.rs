//! Reactive Streams rules at the boundaries inside a graph: an async
//! boundary's buffer and a fan-out junction's outlets hand elements over
//! through the crate's own demand accounting, not the public traits, so
//! these tests watch them from the outside. The upstream counts what it is
//! asked for; a [`Probe`] at the end requests exactly what it wants.
//!
//! The clock is paused: `settle` sleeps one virtual millisecond, which only
//! passes once every task of the runtime is idle, so each check runs when
//! the graph has done all it will do with the demand it has.

mod rules;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use compaktor_streams::{Sink, Source};
use rules::{until_subscribed, Probe};

/// Lets every task run until none has anything left to do.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// A source that counts the elements taken from it. Long but finite: a
/// boundary that ignored demand would drain it and fail the checks, where
/// an endless one would keep the runtime busy and `settle` from returning.
fn counted() -> (Source<u64>, Arc<AtomicU64>) {
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pulled);
    let source = Source::from_iter(0..1_000_000).map(move |n| {
        counter.fetch_add(1, Ordering::SeqCst);
        n
    });
    (source, pulled)
}

#[tokio::test(start_paused = true)]
async fn rule_1_1_an_async_boundary_takes_no_more_than_demanded_and_its_buffer() {
    const BUFFER: u64 = 4;
    // The subscriber driver holds one element ahead of demand.
    const AHEAD: u64 = 1;
    let (source, pulled) = counted();
    let probe = Probe::new();
    let _done = source
        .async_boundary_with(BUFFER as usize)
        .run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
    settle().await;
    let idle = pulled.load(Ordering::SeqCst);
    assert!(idle <= BUFFER + AHEAD, "{idle} taken with nothing requested");

    for (round, n) in [3u64, 1, 10].into_iter().enumerate() {
        probe.request(n);
        let requested = probe.requested.load(Ordering::SeqCst);
        probe.wait_for_nexts(requested as usize).await;
        settle().await;
        let taken = pulled.load(Ordering::SeqCst);
        assert!(
            taken <= requested + BUFFER + AHEAD,
            "round {round}: {taken} taken for {requested} requested"
        );
        assert_eq!(probe.nexts(), (0..requested).collect::<Vec<_>>());
    }
    probe.assert_well_formed();
}

#[tokio::test(start_paused = true)]
async fn rule_1_1_each_fan_out_outlet_gets_no_more_than_its_subscriber_requested() {
    // `also_to` broadcasts to a second sink; each outlet has a buffer of 16.
    const OUTLET_BUFFER: u64 = 16;
    let (source, pulled) = counted();
    let fast = Probe::new();
    let slow = Probe::new();
    let _done = source
        .also_to(Sink::from_subscriber(slow.subscriber()))
        .run_with(Sink::from_subscriber(fast.subscriber()));
    until_subscribed(&fast).await;
    until_subscribed(&slow).await;

    slow.request(2);
    fast.request(100);
    slow.wait_for_nexts(2).await;
    settle().await;
    // The slow outlet holds the junction back: what it was not asked for
    // waits in its buffer, and nobody receives more than it requested.
    // Bound: the 2 delivered, the slow outlet's buffer, and one element
    // held ahead by each subscriber driver.
    assert_eq!(slow.nexts(), [0, 1]);
    let taken = pulled.load(Ordering::SeqCst);
    assert!(
        taken <= 2 + OUTLET_BUFFER + 2,
        "{taken} taken while the slow side asked for 2"
    );

    slow.request(200);
    fast.wait_for_nexts(100).await;
    settle().await;
    assert_eq!(fast.nexts(), (0..100).collect::<Vec<_>>());
    fast.assert_well_formed();
    slow.assert_well_formed();
}

#[tokio::test(start_paused = true)]
async fn rule_3_13_cancelling_behind_an_async_boundary_ends_and_frees_the_upstream_island() {
    let (source, pulled) = counted();
    let probe = Probe::new();
    let done = source
        .async_boundary_with(4)
        .run_with(Sink::from_subscriber(probe.subscriber()));
    until_subscribed(&probe).await;
    probe.request(5);
    probe.wait_for_nexts(5).await;
    probe.cancel();
    // Cancelling counts as success for the sink's completion.
    tokio::time::timeout(rules::WAIT, done)
        .await
        .expect("the stream to end after the cancel")
        .expect("a cancel is not a failure");
    settle().await;
    // The upstream island has ended and dropped its stages: the counter is
    // held by this test alone.
    assert_eq!(Arc::strong_count(&pulled), 1, "the upstream island is still alive");
    assert!(pulled.load(Ordering::SeqCst) < 1_000_000);
    probe.assert_well_formed();
}
