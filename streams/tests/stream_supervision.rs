//! Per-stage supervision: stop, resume and restart, for errors and panics.

use std::future::Future;
use std::time::Duration;

use compaktor_streams::{Decider, Directive, Flow, Keep, Outlet, Sink, Source, Stage, StageState, StreamError};

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    s.parse()
}

#[tokio::test]
async fn try_map_resume_drops_failing_elements_and_counts_errors() {
    let (all, monitor) = Source::from_iter(["1", "x", "3", "y", "5"])
        .try_map(parse)
        .with_supervision(Decider::resuming())
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();
    let all = within("the resumed stream", all).await.expect("resume goes on");
    assert_eq!(all, vec![1, 3, 5]);
    let stats = monitor.stats();
    let stage = stats.stage("try_map").expect("a try_map stage");
    assert_eq!(stage.errors, 2, "each resumed failure is counted");
    assert_eq!(stage.elements_in, 5);
    assert_eq!(stage.elements_out, 3);
    assert_eq!(stage.state, StageState::Completed);
}

#[tokio::test]
async fn try_map_stop_fails_the_stream_like_no_decider() {
    let all = Source::from_iter(["1", "x", "3"])
        .try_map(parse)
        .with_supervision(Decider::stopping())
        .run_with(Sink::collect());
    let error = within("the stopped stream", all).await.expect_err("stop fails");
    assert!(
        matches!(error, StreamError::Stage { stage: "try_map", .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn decider_chooses_by_error() {
    // Resume past parse errors, stop on a user error that says "fatal".
    let decider = Decider::new(|error| match error {
        StreamError::Stage { cause, .. } if cause.to_string() == "fatal" => Directive::Stop,
        _ => Directive::Resume,
    });
    let all = Source::from_iter(["1", "x", "2", "fatal", "3"])
        .try_map(|s: &str| {
            if s == "fatal" {
                Err::<u32, _>("fatal".into())
            } else {
                parse(s).map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })
            }
        })
        .with_supervision(decider)
        .run_with(Sink::collect());
    let error = within("the stream to stop at the fatal element", all)
        .await
        .expect_err("the fatal element stops it");
    assert_eq!(error.to_string(), "stage try_map failed");
}

#[tokio::test]
async fn scan_restart_resets_the_accumulator_after_a_panic() {
    let all = Source::from_iter(1..=5u32)
        .scan(0, |acc, n| {
            assert_ne!(n, 3, "three is not welcome");
            acc + n
        })
        .with_supervision(Decider::restarting())
        .run_with(Sink::collect());
    let all = within("the restarted scan", all).await.expect("restart goes on");
    // 0, 1, 1+2; 3 fails and the total goes back to 0; then 4, 4+5.
    assert_eq!(all, vec![0, 1, 3, 4, 9]);
}

#[tokio::test]
async fn scan_resume_keeps_the_accumulator() {
    let all = Source::from_iter(1..=5u32)
        .scan(0, |acc, n| {
            assert_ne!(n, 3, "three is not welcome");
            acc + n
        })
        .with_supervision(Decider::resuming())
        .run_with(Sink::collect());
    let all = within("the resumed scan", all).await.expect("resume goes on");
    assert_eq!(all, vec![0, 1, 3, 7, 12]);
}

#[tokio::test]
async fn filter_restart_goes_on_after_panics() {
    let all = Source::from_iter(1..=10u32)
        .filter(|n| {
            assert!(n % 4 != 0, "multiples of four panic");
            true
        })
        .with_supervision(Decider::restarting())
        .take(5)
        .run_with(Sink::collect());
    let all = within("the filtered stream", all).await.expect("restart goes on");
    assert_eq!(all, vec![1, 2, 3, 5, 6]);
}

/// Numbers the elements it passes on; fails on a zero.
struct Numbered {
    count: u32,
}

impl Stage for Numbered {
    type In = u32;
    type Out = (u32, u32);
    fn name(&self) -> &'static str {
        "numbered"
    }
    fn on_push(&mut self, element: u32, out: &mut Outlet<(u32, u32)>) {
        if element == 0 {
            out.fail(StreamError::stage("numbered", "zero"));
        } else {
            self.count += 1;
            out.push((self.count, element));
        }
    }
    fn on_restart(&mut self) {
        self.count = 0;
    }
}

async fn numbered(decider: Decider) -> Vec<(u32, u32)> {
    let all = Source::from_iter([5, 6, 0, 7, 8])
        .via(Flow::from_stage(Numbered { count: 0 }))
        .with_supervision(decider)
        .run_with(Sink::collect());
    within("the numbered stream", all).await.expect("the stream goes on")
}

#[tokio::test]
async fn custom_stage_restart_calls_on_restart_and_resume_does_not() {
    assert_eq!(
        numbered(Decider::restarting()).await,
        vec![(1, 5), (2, 6), (1, 7), (2, 8)]
    );
    assert_eq!(
        numbered(Decider::resuming()).await,
        vec![(1, 5), (2, 6), (3, 7), (4, 8)]
    );
}

#[tokio::test]
async fn map_panic_under_stop_fails_with_panicked() {
    let all = Source::from_iter(1..=3u32)
        .map(|n| {
            assert_ne!(n, 2, "two is not welcome");
            n
        })
        .with_supervision(Decider::stopping())
        .run_with(Sink::collect());
    let error = within("the panicking stream", all).await.expect_err("stop fails");
    match error {
        StreamError::Panicked { stage, message } => {
            assert_eq!(stage, "map");
            assert!(message.contains("two is not welcome"), "{message}");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
}

#[tokio::test]
async fn try_map_async_resume_skips_failed_futures_in_order() {
    let (all, monitor) = Source::from_iter(1..=10u32)
        .try_map_async(4, |n| async move {
            tokio::task::yield_now().await;
            if n % 3 == 0 {
                Err(format!("{n} is a multiple of three"))
            } else {
                Ok(n * 10)
            }
        })
        .with_supervision(Decider::resuming())
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();
    let all = within("the resumed try_map_async", all).await.expect("resume goes on");
    assert_eq!(all, vec![10, 20, 40, 50, 70, 80, 100]);
    let stats = monitor.stats();
    assert_eq!(stats.stage("try_map_async").expect("the stage").errors, 3);
}

#[tokio::test]
async fn try_map_async_without_decider_fails() {
    let all = Source::from_iter(1..=10u32)
        .try_map_async(2, |n| async move {
            if n == 4 {
                Err("four")
            } else {
                Ok(n)
            }
        })
        .run_with(Sink::collect());
    let error = within("the failing try_map_async", all).await.expect_err("fails");
    assert!(
        matches!(
            error,
            StreamError::Stage {
                stage: "try_map_async",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn upstream_failures_are_not_supervised() {
    let all = Source::<u32>::failed(StreamError::aborted("upstream"))
        .map(|n| n + 1)
        .with_supervision(Decider::resuming())
        .run_with(Sink::collect());
    let error = within("the failed source", all).await.expect_err("passes through");
    assert!(matches!(error, StreamError::Aborted(_)), "{error:?}");
}

fn assert_misplaced_supervision(error: &StreamError) {
    assert!(
        matches!(
            error,
            StreamError::Stage {
                stage: "with_supervision",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn supervision_with_no_stage_to_supervise_fails_the_stream_instead_of_being_ignored() {
    let after_boundary = Source::from_iter(["1", "x"])
        .try_map(parse)
        .async_boundary()
        .with_supervision(Decider::resuming())
        .run_with(Sink::collect());
    let error = within("the misconfigured stream", after_boundary)
        .await
        .expect_err("a decider with nothing to supervise is an error");
    assert_misplaced_supervision(&error);

    let after_source = Source::from_iter(1..=3u32)
        .with_supervision(Decider::resuming())
        .run_with(Sink::collect());
    let error = within("the misconfigured source", after_source)
        .await
        .expect_err("a source has nothing to supervise");
    assert_misplaced_supervision(&error);
}
