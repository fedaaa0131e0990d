//! The custom stage API's timers: one-off and periodic, replaced by key,
//! cancelled on restart.

use std::future::Future;
use std::time::Duration;

use compaktor_streams::{Decider, Flow, Keep, Outlet, Sink, Source, Stage, StreamError};
use tokio::time::Instant;

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

const MS: Duration = Duration::from_millis(1);

/// Passes on the last element of each burst, once `quiet` has passed
/// without another; the last one also when upstream ends.
struct Debounce {
    quiet: Duration,
    last: Option<u32>,
    upstream_done: bool,
}

const QUIET: u64 = 1;

impl Stage for Debounce {
    type In = u32;
    type Out = u32;

    fn on_push(&mut self, element: u32, out: &mut Outlet<u32>) {
        self.last = Some(element);
        out.timers().schedule_once(QUIET, self.quiet);
    }

    // Works ahead of demand: the timer, not downstream, says when to emit.
    fn should_pull(&self, _downstream_waiting: bool) -> bool {
        !self.upstream_done
    }

    fn on_upstream_finish(&mut self, out: &mut Outlet<u32>) {
        self.upstream_done = true;
        out.timers().cancel(QUIET);
        out.push_all(self.last.take());
        out.complete();
    }

    fn on_timer(&mut self, key: u64, out: &mut Outlet<u32>) {
        assert_eq!(key, QUIET);
        out.push_all(self.last.take());
    }
}

trait PushAll {
    fn push_all(&mut self, element: Option<u32>);
}

impl PushAll for Outlet<u32> {
    fn push_all(&mut self, element: Option<u32>) {
        if let Some(element) = element {
            self.push(element);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_one_off_timer_rescheduled_by_each_element_fires_after_the_quiet_spell() {
    let start = Instant::now();
    let (sender, all) = Source::channel(8)
        .via(Flow::from_stage(Debounce {
            quiet: 50 * MS,
            last: None,
            upstream_done: false,
        }))
        .map(move |n| (n, start.elapsed().as_millis()))
        .to_mat(Sink::collect(), Keep::both)
        .run();
    for n in 1..=3 {
        sender.send(n).await.unwrap();
        tokio::time::sleep(20 * MS).await;
    }
    // 1, 2, 3 each came within the quiet time of the one before: only 3
    // passes, 50 ms after it arrived (at 40 ms).
    tokio::time::sleep(200 * MS).await;
    sender.send(4).await.unwrap();
    drop(sender);
    let all = within("the debounced stream", all).await.unwrap();
    assert_eq!(all, vec![(3, 90), (4, 260)], "3 after its quiet spell, 4 at the end");
}

/// Counts elements and reports the count every period, and at the end.
struct Census {
    period: Duration,
    seen: u32,
    started: bool,
}

impl Stage for Census {
    type In = ();
    type Out = u32;

    fn should_pull(&self, _downstream_waiting: bool) -> bool {
        true
    }

    fn on_push(&mut self, (): (), out: &mut Outlet<u32>) {
        if !self.started {
            self.started = true;
            out.timers().schedule_periodically(7, self.period);
        }
        self.seen += 1;
    }

    fn on_timer(&mut self, _key: u64, out: &mut Outlet<u32>) {
        out.push(self.seen);
    }
}

#[tokio::test(start_paused = true)]
async fn a_periodic_timer_fires_every_period_until_the_stage_ends() {
    let (sender, counts) = Source::channel(8)
        .via(Flow::from_stage(Census {
            period: 100 * MS,
            seen: 0,
            started: false,
        }))
        .take(3)
        .to_mat(Sink::collect(), Keep::both)
        .run();
    sender.send(()).await.unwrap();
    tokio::time::sleep(150 * MS).await;
    sender.send(()).await.unwrap();
    sender.send(()).await.unwrap();
    let counts = within("three reports", counts).await.unwrap();
    assert_eq!(counts, vec![1, 3, 3], "at 100, 200 and 300 ms");
}

/// Schedules a timer per element and fails on 0; the timer reports the
/// element it was set for.
struct Remember {
    last: u32,
}

impl Stage for Remember {
    type In = u32;
    type Out = u32;

    fn name(&self) -> &'static str {
        "remember"
    }

    fn on_push(&mut self, element: u32, out: &mut Outlet<u32>) {
        if element == 0 {
            out.fail(StreamError::stage("remember", "zero"));
            return;
        }
        self.last = element;
        out.timers().schedule_once(u64::from(element), 10 * MS);
    }

    fn on_timer(&mut self, key: u64, out: &mut Outlet<u32>) {
        out.push(key as u32 * 100 + self.last);
    }

    fn on_restart(&mut self) {
        self.last = 0;
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_cancels_the_timers_of_the_failed_instance() {
    let (sender, all) = Source::channel(8)
        .via(Flow::from_stage(Remember { last: 0 }).with_supervision(Decider::restarting()))
        .to_mat(Sink::collect(), Keep::both)
        .run();
    sender.send(5).await.unwrap();
    // Fails before 5's timer is due: that timer goes with the restart.
    sender.send(0).await.unwrap();
    tokio::time::sleep(50 * MS).await;
    sender.send(6).await.unwrap();
    tokio::time::sleep(50 * MS).await;
    drop(sender);
    let all = within("the restarted stream", all).await.unwrap();
    assert_eq!(all, vec![606], "only the timer set after the restart fires");
}
