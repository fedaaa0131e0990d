//! Dynamic hubs: producers attaching to a running `MergeHub`, consumers
//! attaching to a running `BroadcastHub`, backpressure through both, and
//! how they end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use compaktor_streams::{BroadcastHub, Completion, Keep, MergeHub, Sink, Source, StageState, StreamError};
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

/// A sink that yields to the scheduler several times per element and counts.
fn slow_counting(counter: Arc<AtomicU64>) -> Sink<u64, Completion<()>> {
    compaktor_streams::Flow::new()
        .map_async(1, |n: u64| async move {
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            n
        })
        .to_mat(
            Sink::foreach(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
            Keep::right,
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_hub_takes_every_element_of_producers_that_attach_at_runtime() {
    const N: u64 = 2_000;
    let ((hub, all), monitor) = MergeHub::source(16).to_mat(Sink::collect(), Keep::both).run_monitored();
    let producers: Vec<_> = (0..3u64)
        .map(|k| Source::from_iter(k * N..(k + 1) * N).run_with(hub.sink()))
        .collect();
    for (k, producer) in producers.into_iter().enumerate() {
        done(&format!("producer {k}"), producer).await.unwrap();
    }
    // A late producer still gets in while a handle exists.
    done("the late producer", Source::single(u64::MAX).run_with(hub.sink()))
        .await
        .unwrap();
    drop(hub);
    let all = done("the hub's consumer, after the handle is dropped", all)
        .await
        .unwrap();
    assert_eq!(all.len() as u64, 3 * N + 1);
    for k in 0..3 {
        let from_k: Vec<u64> = all.iter().copied().filter(|n| *n / N == k).collect();
        assert_eq!(
            from_k,
            (k * N..(k + 1) * N).collect::<Vec<_>>(),
            "producer {k} in order"
        );
    }
    let hub = monitor.stats();
    let hub = hub.stage("merge_hub").unwrap();
    assert_eq!((hub.elements_out, hub.state), (3 * N + 1, StageState::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_merge_hub_consumer_backpressures_each_producer() {
    const N: u64 = 1_000;
    let consumed = Arc::new(AtomicU64::new(0));
    let (hub, finished) = MergeHub::source(8)
        .to_mat(slow_counting(Arc::clone(&consumed)), Keep::both)
        .run();
    let max_ahead = Arc::new(AtomicU64::new(0));
    let producer = Source::from_iter(Counted {
        produced: 0,
        consumed: Arc::clone(&consumed),
        max_ahead: Arc::clone(&max_ahead),
        limit: N,
    })
    .run_with(hub.sink());
    done("the producer", producer).await.unwrap();
    drop(hub);
    done("the slow consumer", finished).await.unwrap();
    assert_eq!(consumed.load(Ordering::SeqCst), N);
    // The producer's buffer of 8, one in map_async, one on its way, one being produced.
    let seen = max_ahead.load(Ordering::SeqCst);
    assert!(seen <= 8 + 3, "the producer ran {seen} ahead of the consumer");
    assert!(seen >= 4, "the buffer was used (the producer ran {seen} ahead)");
}

#[tokio::test]
async fn a_failing_producer_is_detached_and_the_others_go_on() {
    let (hub, all) = MergeHub::source(4).to_mat(Sink::collect(), Keep::both).run();
    let failing = Source::from_iter(0..5u32)
        .try_map(|n| if n < 2 { Ok(n) } else { Err("device unplugged") })
        .run_with(hub.sink());
    let outcome = done("the failing producer", failing).await;
    assert!(
        matches!(outcome, Err(StreamError::Stage { stage: "try_map", .. })),
        "{outcome:?}"
    );
    done("a healthy producer", Source::from_iter(10..13u32).run_with(hub.sink()))
        .await
        .unwrap();
    drop(hub);
    let mut all = done("the consumer", all).await.unwrap();
    all.sort_unstable();
    assert_eq!(all, vec![0, 1, 10, 11, 12]);
}

#[tokio::test]
async fn producers_see_a_cancelled_merge_hub_as_closed() {
    let (hub, first) = MergeHub::source(4).take(1).to_mat(Sink::collect(), Keep::both).run();
    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(4);
    let attached = Source::from_receiver(rx).run_with(hub.sink());
    tx.send(1).await.unwrap();
    assert_eq!(done("take(1) of the hub", first).await.unwrap(), vec![1]);
    let outcome = done("the attached producer", attached).await;
    assert!(matches!(outcome, Err(StreamError::HubClosed)), "{outcome:?}");
    timeout(WAIT, tx.closed())
        .await
        .expect("the producer's source to be cancelled");
    let late = done(
        "a producer attaching too late",
        Source::single(2u32).run_with(hub.sink()),
    )
    .await;
    assert!(matches!(late, Err(StreamError::HubClosed)), "{late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_hub_gives_every_attached_consumer_every_element() {
    let (feed, hub) = Source::<u32>::channel(4)
        .to_mat(BroadcastHub::sink(8), Keep::both)
        .run();
    let consumers: Vec<_> = (0..3).map(|_| hub.source().run_with(Sink::collect())).collect();
    for n in 0..500 {
        feed.send(n).await.unwrap();
    }
    drop(feed);
    for (k, consumer) in consumers.into_iter().enumerate() {
        let all = done(&format!("consumer {k}"), consumer).await.unwrap();
        assert_eq!(all, (0..500).collect::<Vec<_>>(), "consumer {k}");
    }
    let late = done(
        "a consumer attaching after the end",
        hub.source().run_with(Sink::collect()),
    )
    .await
    .unwrap();
    assert!(late.is_empty(), "{late:?}");
}

#[tokio::test]
async fn broadcast_hub_drops_nothing_before_the_first_consumer_attaches() {
    let hub = Source::from_iter(0..100u32).run_with(BroadcastHub::sink(4));
    // Give the producer every chance to run ahead of a consumer that is not there.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    let all = done("the first consumer", hub.source().run_with(Sink::collect()))
        .await
        .unwrap();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slowest_broadcast_hub_consumer_sets_the_pace() {
    const N: u64 = 1_000;
    let slow_consumed = Arc::new(AtomicU64::new(0));
    let max_ahead = Arc::new(AtomicU64::new(0));
    let (gate_tx, gate_rx) = watch::channel(false);
    let producer = Source::from_iter(Counted {
        produced: 0,
        consumed: Arc::clone(&slow_consumed),
        max_ahead: Arc::clone(&max_ahead),
        limit: N,
    })
    // Wait until both consumers are attached, so that both see every element.
    .map_async(1, move |n| {
        let mut gate = gate_rx.clone();
        async move {
            let _ = gate.wait_for(|open| *open).await;
            n
        }
    });
    let hub = producer.run_with(BroadcastHub::sink(8));
    let fast = hub.source().run_with(Sink::fold(0u64, |c, _| c + 1));
    let slow = hub.source().run_with(slow_counting(Arc::clone(&slow_consumed)));
    drop(hub);
    gate_tx.send(true).unwrap();
    assert_eq!(done("the fast consumer", fast).await.unwrap(), N);
    done("the slow consumer", slow).await.unwrap();
    assert_eq!(slow_consumed.load(Ordering::SeqCst), N);
    // The slow consumer's 8, one in each map_async, one on its way, one being produced.
    let seen = max_ahead.load(Ordering::SeqCst);
    assert!(seen <= 8 + 5, "the producer ran {seen} ahead of the slowest consumer");
}

#[tokio::test]
async fn a_consumer_that_cancels_is_detached_and_the_others_go_on() {
    let (feed, hub) = Source::<u32>::channel(4)
        .to_mat(BroadcastHub::sink(4), Keep::both)
        .run();
    let short = hub.source().take(3).run_with(Sink::collect());
    let long = hub.source().run_with(Sink::collect());
    for n in 0..50 {
        feed.send(n).await.unwrap();
    }
    drop(feed);
    assert_eq!(done("the short consumer", short).await.unwrap(), vec![0, 1, 2]);
    assert_eq!(
        done("the long consumer", long).await.unwrap(),
        (0..50).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn broadcast_hub_cancels_its_producer_when_nobody_can_consume() {
    let (feed, hub) = Source::<u32>::channel(4)
        .to_mat(BroadcastHub::sink(4), Keep::both)
        .run();
    let only = hub.source().take(1).run_with(Sink::collect());
    drop(hub);
    feed.send(7).await.unwrap();
    assert_eq!(done("the only consumer", only).await.unwrap(), vec![7]);
    timeout(WAIT, feed.closed())
        .await
        .expect("the hub to cancel its producer once no consumer or handle is left");
}
