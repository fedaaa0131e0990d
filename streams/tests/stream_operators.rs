//! Each operator on its own, through a fused stream.

use std::time::Duration;

use compaktor_streams::{Flow, Keep, OverflowStrategy, Sink, Source, StreamError};
use tokio::time::{timeout, Instant};

const WAIT: Duration = Duration::from_secs(5);

async fn collect<T: Send + 'static>(source: Source<T>) -> Result<Vec<T>, StreamError> {
    timeout(WAIT, source.run_with(Sink::collect()))
        .await
        .expect("the stream to complete")
}

#[tokio::test]
async fn map_filter_filter_map() {
    assert_eq!(
        collect(Source::from_iter(1..=5).map(|n| n * 10)).await.unwrap(),
        vec![10, 20, 30, 40, 50]
    );
    assert_eq!(
        collect(Source::from_iter(1..=6).filter(|n| n % 2 == 0)).await.unwrap(),
        vec![2, 4, 6]
    );
    let parsed = Source::from_iter(["1", "x", "3"]).filter_map(|s| s.parse::<u8>().ok());
    assert_eq!(collect(parsed).await.unwrap(), vec![1, 3]);
}

#[tokio::test]
async fn fold_as_a_sink_and_as_a_flow() {
    let sum = Source::from_iter(1..=100u64).run_with(Sink::fold(0, |a, n| a + n));
    assert_eq!(timeout(WAIT, sum).await.expect("fold to complete").unwrap(), 5050);
    assert_eq!(
        collect(Source::from_iter(1..=4).fold(1, |a, n| a * n)).await.unwrap(),
        vec![24]
    );
    assert_eq!(collect(Source::<u8>::empty().fold(7, |a, _| a)).await.unwrap(), vec![7]);
}

#[tokio::test]
async fn scan_emits_zero_then_running_totals() {
    assert_eq!(
        collect(Source::from_iter(1..=3).scan(0, |a, n| a + n)).await.unwrap(),
        vec![0, 1, 3, 6]
    );
}

#[tokio::test]
async fn take_skip_take_while() {
    assert_eq!(collect(Source::from_iter(0..).take(3)).await.unwrap(), vec![0, 1, 2]);
    assert_eq!(
        collect(Source::from_iter(0..).take(0)).await.unwrap(),
        Vec::<u32>::new()
    );
    assert_eq!(collect(Source::from_iter(0..5).skip(3)).await.unwrap(), vec![3, 4]);
    assert_eq!(
        collect(Source::from_iter(0..).take_while(|n| *n < 4)).await.unwrap(),
        vec![0, 1, 2, 3]
    );
}

#[tokio::test]
async fn grouped_emits_a_short_last_group() {
    let groups = collect(Source::from_iter(1..=7).grouped(3)).await.unwrap();
    assert_eq!(groups, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    assert_eq!(
        collect(Source::from_iter(1..=2).grouped(0)).await.unwrap(),
        vec![vec![1], vec![2]],
        "0 counts as 1"
    );
}

#[tokio::test]
async fn map_async_keeps_order_and_bounds_parallelism() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, tokio::sync::oneshot::Sender<u64>)>();
    let out = Source::from_iter(0..6u64)
        .map_async(2, move |n| {
            let (reply, answer) = tokio::sync::oneshot::channel();
            tx.send((n, reply)).unwrap();
            async move { answer.await.unwrap() }
        })
        .run_with(Sink::collect());
    // Answer in reverse order of arrival, two at a time: never more than 2 outstanding.
    let mut answered = 0;
    while answered < 6 {
        let a = timeout(WAIT, rx.recv()).await.expect("a first request").unwrap();
        let b = timeout(WAIT, rx.recv()).await.expect("a second request").unwrap();
        assert!(rx.try_recv().is_err(), "parallelism 2 means no third request yet");
        b.1.send(b.0 * 10).unwrap();
        a.1.send(a.0 * 10).unwrap();
        answered += 2;
    }
    let out = timeout(WAIT, out).await.expect("map_async to complete").unwrap();
    assert_eq!(out, vec![0, 10, 20, 30, 40, 50], "ordered despite replies out of order");
}

#[tokio::test]
async fn map_async_unordered_passes_results_as_they_complete() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, tokio::sync::oneshot::Sender<u64>)>();
    let out = Source::from_iter(0..2u64)
        .map_async_unordered(2, move |n| {
            let (reply, answer) = tokio::sync::oneshot::channel();
            tx.send((n, reply)).unwrap();
            async move { answer.await.unwrap() }
        })
        .run_with(Sink::collect());
    let first = timeout(WAIT, rx.recv()).await.expect("request 0").unwrap();
    let second = timeout(WAIT, rx.recv()).await.expect("request 1").unwrap();
    second.1.send(second.0).unwrap();
    first.1.send(first.0).unwrap();
    assert_eq!(timeout(WAIT, out).await.expect("completion").unwrap(), vec![1, 0]);
}

/// A buffer in front of a stage that waits for a gate fills while the
/// gate is shut; this pipeline shows each overflow strategy.
async fn through_buffer(strategy: OverflowStrategy) -> Result<Vec<u32>, StreamError> {
    let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
    let out = Source::from_iter(1..=6u32)
        .buffer(2, strategy)
        .map_async(1, move |n| {
            let mut gate = gate_rx.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                n
            }
        })
        .run_with(Sink::collect());
    // Give the source every chance to run into the full buffer, then open.
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    gate_tx.send(true).unwrap();
    timeout(WAIT, out).await.expect("the buffered stream to complete")
}

#[tokio::test(flavor = "current_thread")]
async fn buffer_backpressure_loses_nothing() {
    assert_eq!(
        through_buffer(OverflowStrategy::Backpressure).await.unwrap(),
        vec![1, 2, 3, 4, 5, 6]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn buffer_drop_strategies() {
    // Element 1 is taken by map_async at once; 2..=6 meet a buffer of 2.
    assert_eq!(through_buffer(OverflowStrategy::DropHead).await.unwrap(), vec![1, 5, 6]);
    assert_eq!(through_buffer(OverflowStrategy::DropTail).await.unwrap(), vec![1, 2, 6]);
    assert_eq!(through_buffer(OverflowStrategy::DropNew).await.unwrap(), vec![1, 2, 3]);
}

#[tokio::test(flavor = "current_thread")]
async fn buffer_fail_fails_the_stream() {
    let outcome = through_buffer(OverflowStrategy::Fail).await;
    assert!(
        matches!(outcome, Err(StreamError::BufferOverflow { capacity: 2 })),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn throttle_lets_a_burst_through_then_paces() {
    let start = Instant::now();
    let times = Source::from_iter(0..6u32)
        .throttle(1, Duration::from_millis(100), 3)
        .map(move |_| start.elapsed().as_millis())
        .run_with(Sink::collect());
    let times = timeout(Duration::from_secs(10), times)
        .await
        .expect("the throttled stream to complete")
        .unwrap();
    assert_eq!(times, vec![0, 0, 0, 100, 200, 300]);
}

#[tokio::test(start_paused = true)]
async fn tick_emits_on_schedule_until_taken() {
    let start = Instant::now();
    let times = Source::tick(Duration::from_millis(50), Duration::from_millis(100), ())
        .take(3)
        .map(move |()| start.elapsed().as_millis())
        .run_with(Sink::collect());
    let times = timeout(Duration::from_secs(10), times)
        .await
        .expect("three ticks")
        .unwrap();
    assert_eq!(times, vec![50, 150, 250]);
}

#[tokio::test]
async fn recover_turns_a_failure_into_a_last_element() {
    let failing = || Source::from_iter(1..=5).try_map(|n| if n < 3 { Ok(n) } else { Err("three") });
    assert_eq!(collect(failing().recover(|_| Some(-1))).await.unwrap(), vec![1, 2, -1]);
    let passed_on = collect(failing().recover(|_| None)).await;
    assert!(
        matches!(passed_on, Err(StreamError::Stage { stage: "try_map", .. })),
        "{passed_on:?}"
    );
}

#[tokio::test]
async fn channel_source_materialises_its_sender() {
    let (tx, all) = Source::<u32>::channel(2).to_mat(Sink::collect(), Keep::both).run();
    for n in 0..5 {
        tx.send(n).await.unwrap();
    }
    drop(tx);
    assert_eq!(
        timeout(WAIT, all)
            .await
            .expect("completion after the sender is dropped")
            .unwrap(),
        vec![0, 1, 2, 3, 4]
    );
}

#[tokio::test]
async fn foreach_and_ignore_complete_with_the_stream() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let done = Source::from_iter(1..=3).run_with(Sink::foreach(move |n| tx.send(n).unwrap()));
    timeout(WAIT, done).await.expect("foreach to complete").unwrap();
    let mut seen = Vec::new();
    while let Ok(n) = rx.try_recv() {
        seen.push(n);
    }
    assert_eq!(seen, vec![1, 2, 3]);
    timeout(WAIT, Source::from_iter(0..10).run_with(Sink::ignore()))
        .await
        .expect("ignore to complete")
        .unwrap();
}

#[tokio::test]
async fn element_wise_stages_pull_no_more_than_downstream_wants() {
    // map and filter take batches when the sink wants everything; behind a
    // take they must still pull only what the take lets through.
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = pulled.clone();
    let numbers = (0u32..).inspect(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let three = Source::from_iter(numbers).map(|n| n * 2).filter(|n| n % 4 == 0).take(3);
    assert_eq!(collect(three).await.unwrap(), vec![0, 4, 8]);
    assert_eq!(
        pulled.load(std::sync::atomic::Ordering::Relaxed),
        5,
        "pulled beyond the fifth element (0..=4 make three multiples of 4)"
    );
}

#[tokio::test]
async fn batched_elements_arrive_in_order_before_the_failure_that_follows_them() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let source = Source::from_iter(0..1000u32).concat(Source::failed(StreamError::aborted("source broke")));
    let done = source
        .map(|n| n + 1)
        .filter(|n| n % 3 != 0)
        .run_with(Sink::foreach(move |n| tx.send(n).unwrap()));
    let result = timeout(WAIT, done).await.expect("the stream to end");
    assert!(matches!(result, Err(StreamError::Aborted(_))), "got {result:?}");
    let mut seen = Vec::new();
    while let Ok(n) = rx.try_recv() {
        seen.push(n);
    }
    let expected: Vec<u32> = (1..=1000).filter(|n| n % 3 != 0).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn flows_compose_and_attach_to_sinks() {
    let double = Flow::new().map(|n: u32| n * 2);
    let evens = Flow::new().filter(|n: &u32| n % 4 == 0);
    let sink = double.via(evens).to_mat(Sink::collect(), Keep::right);
    let out = Source::from_iter(1..=6).to_mat(sink, Keep::right).run();
    assert_eq!(timeout(WAIT, out).await.expect("completion").unwrap(), vec![4, 8, 12]);
}

/// Runs `source` into a stage that takes one element and then waits for a
/// gate, which opens once the stream has had its first poll: whatever sits
/// between them meanwhile works ahead (on a current-thread runtime, the test
/// resumes only after that poll has finished).
async fn behind_a_gate<T: Send + 'static>(source: Source<T>) -> Vec<T> {
    let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let out = source
        .map_async(1, move |item| {
            let _ = arrived_tx.send(());
            let mut gate = gate_rx.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                item
            }
        })
        .run_with(Sink::collect());
    timeout(WAIT, arrived.recv())
        .await
        .expect("the first element to reach the gate");
    gate_tx.send(true).unwrap();
    timeout(WAIT, out).await.expect("the gated stream to complete").unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn batch_aggregates_while_downstream_is_busy_up_to_its_limit() {
    let batches = behind_a_gate(Source::from_iter(1..=10u32).batch(
        3,
        |n| vec![n],
        |mut all, n| {
            all.push(n);
            all
        },
    ))
    .await;
    assert_eq!(batches[0], vec![1], "the first element went straight through");
    assert_eq!(
        batches[1],
        vec![2, 3, 4],
        "then three aggregated while the gate was shut"
    );
    assert!(batches.iter().all(|b| b.len() <= 3), "{batches:?}");
    assert_eq!(
        batches.concat(),
        (1..=10).collect::<Vec<_>>(),
        "nothing lost, order kept"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn batch_weighted_starts_a_new_batch_rather_than_go_over() {
    let weights = [3u64, 4, 5, 9, 20, 1, 1];
    let batches = behind_a_gate(Source::from_iter(weights).batch_weighted(
        10,
        |w| *w,
        |w| vec![w],
        |mut all, w| {
            all.push(w);
            all
        },
    ))
    .await;
    assert_eq!(batches[0], vec![3]);
    assert_eq!(
        batches[1],
        vec![4, 5],
        "9 would have made 18: it waits for the next batch"
    );
    for batch in &batches {
        assert!(
            batch.iter().sum::<u64>() <= 10 || batch.len() == 1,
            "over the limit: {batches:?}"
        );
    }
    assert_eq!(batches.concat(), weights.to_vec());
}

#[tokio::test(flavor = "current_thread")]
async fn conflate_never_backpressures_and_combines_what_waited() {
    let sums = behind_a_gate(Source::from_iter(1..=10u64).conflate(|a, b| a + b)).await;
    assert_eq!(
        sums,
        vec![1, 54],
        "everything after the first was combined while the gate was shut"
    );
}

#[tokio::test]
async fn batch_passes_single_elements_when_downstream_keeps_up() {
    let batches = collect(Source::from_iter(1..=4u32).batch(
        10,
        |n| vec![n],
        |mut all, n| {
            all.push(n);
            all
        },
    ))
    .await
    .unwrap();
    // The fused sink asks for the next element as soon as it has one, so
    // nothing ever waits to be aggregated.
    assert_eq!(batches, vec![vec![1], vec![2], vec![3], vec![4]]);
}

#[tokio::test(start_paused = true)]
async fn delay_holds_each_element_for_its_own_delay() {
    let start = Instant::now();
    let times = Source::from_iter(0..5u32)
        .delay(Duration::from_millis(100), 16)
        .map(move |_| start.elapsed().as_millis())
        .run_with(Sink::collect());
    let times = timeout(Duration::from_secs(10), times)
        .await
        .expect("the delayed stream to complete")
        .unwrap();
    assert_eq!(times, vec![100; 5], "all arrived at once, so all leave at once");
}

#[tokio::test(start_paused = true)]
async fn delay_is_bounded_and_backpressures_when_full() {
    let start = Instant::now();
    let times = Source::from_iter(0..5u32)
        .delay(Duration::from_millis(100), 2)
        .map(move |_| start.elapsed().as_millis())
        .run_with(Sink::collect());
    let times = timeout(Duration::from_secs(10), times)
        .await
        .expect("the delayed stream to complete")
        .unwrap();
    // Two at a time: the third is only pulled when the first has left.
    assert_eq!(times, vec![100, 100, 200, 200, 300]);
}
