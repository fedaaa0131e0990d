//! Timers (single, periodic, keyed replacement, cancel, cancelled on stop
//! and restart), the stash, and switching behaviour with an enum state.
//!
//! Timer tests run on paused tokio time: it advances by itself whenever
//! every task is idle, so delays are exact and no test really sleeps.

mod common;

use std::time::Duration;

use common::{probe, shutdown, system, wait, Rx, Tx};
use compaktor_actor::*;
use tokio::time::Instant;

const STOPPED: u32 = u32::MAX;

#[derive(Clone)]
enum M {
    Single(&'static str, u32, Duration),
    Periodic(&'static str, u32, Duration),
    Cancel(&'static str),
    Active(&'static str, ReplyTo<bool>),
    /// The timer message: reported as (n, when).
    Fired(u32),
    /// Starts a timer, lets it fire (queued behind this handler), then
    /// replaces it: the queued firing must not be handled.
    QueueThenReplace,
    StopSelf,
    Panic,
}

struct Clock {
    fired: Tx<(u32, Instant)>,
    /// A periodic heartbeat started in `pre_start`.
    heartbeat: Option<Duration>,
}

impl Actor for Clock {
    type Msg = M;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if let Some(every) = self.heartbeat {
            ctx.timers().start_periodic("heartbeat", M::Fired(0), every);
        }
        Ok(())
    }

    async fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            M::Single(key, n, delay) => ctx.timers().start_single(key, M::Fired(n), delay),
            M::Periodic(key, n, every) => ctx.timers().start_periodic(key, M::Fired(n), every),
            M::Cancel(key) => ctx.timers().cancel(key),
            M::Active(key, reply) => {
                let _ = reply.send(ctx.timers().is_active(key));
            }
            M::Fired(n) => {
                let _ = self.fired.send((n, Instant::now()));
            }
            M::QueueThenReplace => {
                ctx.timers().start_single("k", M::Fired(3), Duration::from_millis(10));
                tokio::time::sleep(Duration::from_millis(50)).await;
                ctx.timers().start_single("k", M::Fired(4), Duration::from_millis(100));
            }
            M::StopSelf => ctx.stop_self(),
            M::Panic => panic!("clock failure"),
        }
        Ok(())
    }

    async fn post_stop(&mut self, _ctx: &mut Context<Self>) {
        let _ = self.fired.send((STOPPED, Instant::now()));
    }
}

fn clock(system: &ActorSystem, heartbeat: Option<Duration>) -> (ActorRef<M>, Rx<(u32, Instant)>) {
    let (tx, rx) = probe();
    let actor = system
        .spawn(
            "clock",
            Props::new(move || Clock {
                fired: tx.clone(),
                heartbeat,
            }),
        )
        .unwrap();
    (actor, rx)
}

async fn active(actor: &ActorRef<M>, key: &'static str) -> bool {
    actor.ask(|r| M::Active(key, r), common::WAIT).await.unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Asserts that `at` is `expected` after `start`, to the millisecond.
fn assert_at(at: Instant, start: Instant, expected: Duration) {
    let elapsed = at - start;
    assert!(
        elapsed >= expected && elapsed < expected + ms(3),
        "fired after {elapsed:?}, expected {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_single_timer_fires_once_after_its_delay() {
    let system = system("tm-single");
    let (actor, mut fired) = clock(&system, None);
    let start = Instant::now();
    actor.tell(M::Single("once", 1, ms(100)));
    assert!(active(&actor, "once").await);
    let (n, at) = fired.next("the timer").await;
    assert_eq!(n, 1);
    assert_at(at, start, ms(100));
    assert!(!active(&actor, "once").await, "a fired single timer is gone");
    fired
        .assert_quiet(Duration::from_secs(1), "a single timer fires once")
        .await;
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn a_periodic_timer_fires_every_interval_until_cancelled() {
    let system = system("tm-periodic");
    let (actor, mut fired) = clock(&system, None);
    let start = Instant::now();
    actor.tell(M::Periodic("tick", 2, ms(100)));
    for i in 1..=5 {
        let (n, at) = fired.next("a tick").await;
        assert_eq!(n, 2);
        assert_at(at, start, ms(100 * i));
    }
    actor.tell(M::Cancel("tick"));
    assert!(!active(&actor, "tick").await);
    fired.assert_quiet(Duration::from_secs(1), "no tick after cancel").await;
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn starting_a_timer_with_a_used_key_replaces_it() {
    let system = system("tm-replace");
    let (actor, mut fired) = clock(&system, None);
    let start = Instant::now();
    actor.tell(M::Single("k", 1, ms(100)));
    actor.tell(M::Single("k", 2, ms(200)));
    let (n, at) = fired.next("the replacement").await;
    assert_eq!(n, 2, "the replaced timer must not fire");
    assert_at(at, start, ms(200));

    // A periodic timer replaced by a single one stops ticking.
    let start = Instant::now();
    actor.tell(M::Periodic("p", 5, ms(30)));
    actor.tell(M::Single("p", 6, ms(100)));
    let (n, at) = fired.next("the single replacement").await;
    assert_eq!(n, 6);
    assert_at(at, start, ms(100));
    fired.assert_quiet(Duration::from_secs(1), "nothing else fires").await;
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn a_replaced_timer_that_already_fired_is_not_handled() {
    let system = system("tm-queued");
    let (actor, mut fired) = clock(&system, None);
    let start = Instant::now();
    actor.tell(M::QueueThenReplace);
    let (n, at) = fired.next("the replacement").await;
    assert_eq!(n, 4, "the first timer's queued firing was handled");
    assert_at(at, start, ms(150));
    fired.assert_quiet(Duration::from_secs(1), "nothing else fires").await;
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_timer_never_fires() {
    let system = system("tm-cancel");
    let (actor, mut fired) = clock(&system, None);
    actor.tell(M::Single("c", 1, ms(100)));
    actor.tell(M::Periodic("p", 2, ms(100)));
    actor.tell(M::Cancel("c"));
    actor.tell(M::Cancel("p"));
    actor.tell(M::Cancel("never-started"));
    assert!(!active(&actor, "c").await);
    assert!(!active(&actor, "p").await);
    fired
        .assert_quiet(Duration::from_secs(1), "cancelled timers fire")
        .await;
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn timers_are_cancelled_when_the_actor_stops() {
    let system = system("tm-stop");
    let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let baseline = tasks();
    let (actor, mut fired) = clock(&system, None);
    actor.tell(M::Periodic("fast", 1, ms(10)));
    actor.tell(M::Single("later", 2, ms(500)));
    fired.take(3, "a few ticks").await;
    assert!(tasks() >= baseline + 3, "the actor and its two timers run as tasks");
    actor.tell(M::StopSelf);
    loop {
        let (n, _) = fired.next("post_stop").await;
        if n == STOPPED {
            break;
        }
        assert_eq!(n, 1, "only ticks before the stop");
    }
    wait("the clock to stop", actor.terminated()).await;
    // Without advancing time: the timers' tasks are gone, not merely ignored.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(tasks(), baseline, "the actor's timer tasks outlived it");
    fired
        .assert_quiet(Duration::from_secs(2), "a timer fired after the stop")
        .await;
    assert_eq!(system.dead_letter_stats().total, 0, "timers left no dead letters");
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn timers_are_cancelled_on_restart() {
    let system = system("tm-restart");
    let (actor, mut fired) = clock(&system, Some(ms(100)));
    let start = Instant::now();
    let (_, at) = fired.next("the first heartbeat").await;
    assert_at(at, start, ms(100));
    tokio::time::sleep(ms(50)).await;
    // Restarted at 150 ms: the old heartbeat is cancelled; the new instance
    // starts its own, first due at 250 ms.
    actor.tell(M::Panic);
    let restarted = Instant::now();
    for i in 1..=5 {
        let (n, at) = fired.next("a heartbeat after the restart").await;
        assert_eq!(n, 0);
        assert_at(at, restarted, ms(100 * i));
    }
    shutdown(&system).await;
}

// ---- stash ----

enum S {
    Work(u32),
    /// Unstash everything and handle messages from now on.
    Release,
    Panic,
    Report(ReplyTo<(Vec<u32>, Vec<u32>, usize)>),
}

/// Stashes work while buffering; handles it once released.
enum Mode {
    Buffering,
    Passing,
}

struct Stasher {
    mode: Mode,
    handled: Vec<u32>,
    rejected: Vec<u32>,
}

impl Actor for Stasher {
    type Msg = S;

    async fn handle(&mut self, msg: S, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match (&self.mode, msg) {
            (Mode::Buffering, S::Work(n)) => {
                if let Err(full) = ctx.stash(S::Work(n)) {
                    match full.into_inner() {
                        S::Work(n) => self.rejected.push(n),
                        _ => unreachable!(),
                    }
                }
            }
            (Mode::Passing, S::Work(n)) => self.handled.push(n),
            (_, S::Release) => {
                ctx.unstash_all();
                self.mode = Mode::Passing;
            }
            (_, S::Panic) => panic!("stasher failure"),
            (_, S::Report(reply)) => {
                let _ = reply.send((self.handled.clone(), self.rejected.clone(), ctx.stash_len()));
            }
        }
        Ok(())
    }
}

fn stasher() -> Props<Stasher> {
    Props::new(|| Stasher {
        mode: Mode::Buffering,
        handled: Vec::new(),
        rejected: Vec::new(),
    })
}

async fn report(actor: &ActorRef<S>) -> (Vec<u32>, Vec<u32>, usize) {
    actor.ask(S::Report, common::WAIT).await.unwrap()
}

#[tokio::test]
async fn unstash_all_replays_in_order_before_later_messages() {
    let system = system("st-order");
    let actor = system.spawn("stasher", stasher()).unwrap();
    for n in 0..5 {
        actor.tell(S::Work(n));
    }
    assert_eq!(report(&actor).await, (vec![], vec![], 5));
    actor.tell(S::Release);
    for n in 5..10 {
        actor.tell(S::Work(n));
    }
    let (handled, rejected, stashed) = report(&actor).await;
    assert_eq!(handled, (0..10).collect::<Vec<_>>());
    assert!(rejected.is_empty());
    assert_eq!(stashed, 0);
    shutdown(&system).await;
}

#[tokio::test]
async fn a_full_stash_hands_the_message_back() {
    let mut config = SystemConfig::new("st-full");
    config.stash_capacity = 3;
    let system = ActorSystem::new(config).unwrap();
    let actor = system.spawn("stasher", stasher()).unwrap();
    for n in 0..5 {
        actor.tell(S::Work(n));
    }
    assert_eq!(report(&actor).await, (vec![], vec![3, 4], 3));
    actor.tell(S::Release);
    assert_eq!(report(&actor).await.0, [0, 1, 2]);
    shutdown(&system).await;
}

#[tokio::test]
async fn the_stash_survives_a_restart() {
    let system = system("st-restart");
    let actor = system.spawn("stasher", stasher()).unwrap();
    for n in 0..3 {
        actor.tell(S::Work(n));
    }
    actor.tell(S::Panic);
    // The fresh instance buffers again: the old stash came back through it.
    assert_eq!(report(&actor).await, (vec![], vec![], 3));
    actor.tell(S::Release);
    assert_eq!(report(&actor).await.0, [0, 1, 2]);
    shutdown(&system).await;
}

// ---- behaviour switching ----

enum D {
    Push(ReplyTo<&'static str>),
    Unlock(u32),
    Lock,
    Failures(ReplyTo<u32>),
}

/// A door whose state decides how every message is handled.
enum Door {
    Locked { code: u32, failed: u32 },
    Open { code: u32 },
}

impl Actor for Door {
    type Msg = D;

    async fn handle(&mut self, msg: D, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match (&mut *self, msg) {
            (Door::Locked { .. }, D::Push(reply)) => {
                let _ = reply.send("locked");
            }
            (Door::Locked { code, failed }, D::Unlock(attempt)) => {
                if attempt == *code {
                    *self = Door::Open { code: *code };
                } else {
                    *failed += 1;
                }
            }
            (Door::Locked { failed, .. }, D::Failures(reply)) => {
                let _ = reply.send(*failed);
            }
            (Door::Open { .. }, D::Push(reply)) => {
                let _ = reply.send("swings open");
            }
            (Door::Open { code }, D::Lock) => *self = Door::Locked { code: *code, failed: 0 },
            (Door::Open { .. }, D::Failures(reply)) => {
                let _ = reply.send(0);
            }
            (_, D::Lock) | (Door::Open { .. }, D::Unlock(_)) => {}
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_enum_state_switches_behaviour() {
    let system = system("st-door");
    let door = system
        .spawn("door", Props::new(|| Door::Locked { code: 42, failed: 0 }))
        .unwrap();
    let push = || door.ask(D::Push, common::WAIT);
    assert_eq!(push().await, Ok("locked"));
    door.tell(D::Unlock(7));
    door.tell(D::Unlock(8));
    assert_eq!(door.ask(D::Failures, common::WAIT).await, Ok(2));
    assert_eq!(push().await, Ok("locked"));
    door.tell(D::Unlock(42));
    assert_eq!(push().await, Ok("swings open"));
    assert_eq!(push().await, Ok("swings open"));
    door.tell(D::Lock);
    assert_eq!(push().await, Ok("locked"));
    assert_eq!(door.ask(D::Failures, common::WAIT).await, Ok(0), "a fresh Locked state");
    shutdown(&system).await;
}
