//! Stages on blocking threads: `map_blocking`, and whole islands with
//! `async_boundary_blocking`.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use compaktor_streams::{Decider, Keep, Sink, Source, StreamError};

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// On a runtime with one thread, a stream blocked in `map_blocking` leaves
/// that thread free: another stream runs to its end while the blocking
/// call waits, and only then is the call released.
#[tokio::test(flavor = "current_thread")]
async fn a_blocking_call_does_not_stall_other_streams() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(released);
    let blocked = Source::single(1u32)
        .map_blocking(1, move |n| {
            // Blocks this thread until the test releases it (or gives up).
            let got = released.lock().unwrap().recv_timeout(Duration::from_secs(5)).is_ok();
            (n, got)
        })
        .run_with(Sink::collect());

    let other = Source::from_iter(1..=1_000u64)
        .map(|n| n * 2)
        .run_with(Sink::fold(0, |a, n| a + n));
    let total = within("the other stream", other).await.expect("it completes");
    assert_eq!(total, 1_001_000);

    release.send(()).expect("the blocking call waits");
    let blocked = within("the blocking stream", blocked).await.expect("it completes");
    assert_eq!(
        blocked,
        vec![(1, true)],
        "the blocking call was not released by the test"
    );
}

/// `async_boundary_blocking` moves a whole island, here a plain `map` that
/// blocks, off a runtime with one thread: another stream runs to its end
/// while the map waits, and the map ran on another thread than the test's.
#[tokio::test(flavor = "current_thread")]
async fn an_island_on_the_blocking_pool_does_not_stall_other_streams() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(released);
    let test_thread = std::thread::current().id();
    let (blocked, monitor) = Source::from_iter(1..=3u32)
        .map(move |n| {
            // Only the first element waits for the test (or gives up).
            let got = n > 1 || released.lock().unwrap().recv_timeout(Duration::from_secs(5)).is_ok();
            (n, got, std::thread::current().id() != test_thread)
        })
        .async_boundary_blocking(2)
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();

    let other = Source::from_iter(1..=1_000u64)
        .map(|n| n * 2)
        .run_with(Sink::fold(0, |a, n| a + n));
    let total = within("the other stream", other).await.expect("it completes");
    assert_eq!(total, 1_001_000);

    release.send(()).expect("the blocked map waits");
    let blocked = within("the blocking island's stream", blocked)
        .await
        .expect("it completes");
    assert_eq!(
        blocked,
        vec![(1, true, true), (2, true, true), (3, true, true)],
        "(element, released by the test, off the test's thread)"
    );
    let boundary = monitor.stats();
    let boundary = boundary.stage("async_boundary_blocking").expect("the boundary's stage");
    assert_eq!(boundary.elements_out, 3);
}

/// Waits until `n` callers are inside at once (or gives up): true when they were.
struct Rendezvous {
    inside: Mutex<usize>,
    all_in: Condvar,
    n: usize,
}

impl Rendezvous {
    fn meet(&self) -> bool {
        let mut inside = self.inside.lock().unwrap();
        *inside += 1;
        self.all_in.notify_all();
        let (inside, timeout) = self
            .all_in
            .wait_timeout_while(inside, Duration::from_secs(5), |inside| *inside < self.n)
            .unwrap();
        drop(inside);
        !timeout.timed_out()
    }
}

#[tokio::test]
async fn map_blocking_runs_parallelism_calls_at_once_in_order() {
    let rendezvous = Arc::new(Rendezvous {
        inside: Mutex::new(0),
        all_in: Condvar::new(),
        n: 4,
    });
    let (all, monitor) = Source::from_iter(1..=8u32)
        .map_blocking(4, move |n| {
            // The first four meet each other; the rest find them all in.
            let met = rendezvous.meet();
            std::thread::sleep(Duration::from_millis(u64::from(8 - n))); // finish out of order
            (n, met)
        })
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();
    let all = within("the blocking calls", all).await.expect("completes");
    assert_eq!(all, (1..=8).map(|n| (n, true)).collect::<Vec<_>>());
    let stats = monitor.stats();
    assert_eq!(stats.stage("map_blocking").expect("the stage").elements_out, 8);
}

#[tokio::test]
async fn map_blocking_panic_fails_the_stream_or_is_resumed() {
    let all = Source::from_iter(1..=4u32)
        .map_blocking(2, |n| {
            assert_ne!(n, 3, "three panics");
            n
        })
        .run_with(Sink::collect());
    let error = within("the failing stream", all).await.expect_err("a panic fails it");
    assert!(
        matches!(&error, StreamError::Panicked { stage: "map_blocking", message } if message.contains("three panics")),
        "{error:?}"
    );

    let all = Source::from_iter(1..=4u32)
        .map_blocking(2, |n| {
            assert_ne!(n, 3, "three panics");
            n
        })
        .with_supervision(Decider::resuming())
        .run_with(Sink::collect());
    assert_eq!(within("the resumed stream", all).await.expect("resumed"), vec![1, 2, 4]);
}
