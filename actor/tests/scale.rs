//! Scale and leaks: a hundred thousand actors spawned and stopped leave
//! nothing behind: the live count returns to its baseline, every instance
//! and every actor task is dropped, and the system itself is freed.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, within};
use compaktor_actor::*;

/// Counts what a test needs to see dropped.
#[derive(Default)]
struct Counters {
    started: AtomicUsize,
    stopped: AtomicUsize,
    dropped: AtomicUsize,
}

struct Tiny {
    counters: Arc<Counters>,
    /// Children to spawn in `pre_start`: (how many, how many each of those spawns).
    fan_out: (usize, usize),
}

impl Drop for Tiny {
    fn drop(&mut self) {
        self.counters.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Actor for Tiny {
    type Msg = ReplyTo<()>;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.counters.started.fetch_add(1, Ordering::SeqCst);
        let (children, grandchildren) = self.fan_out;
        for _ in 0..children {
            ctx.spawn_anonymous(tiny(&self.counters, (grandchildren, 0), &Arc::new(())))?;
        }
        Ok(())
    }

    async fn handle(&mut self, reply: ReplyTo<()>, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = reply.send(());
        Ok(())
    }

    async fn post_stop(&mut self, _ctx: &mut Context<Self>) {
        self.counters.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Props whose factory holds a clone of `task_token`: the clone lives as
/// long as the actor's task keeps its props.
fn tiny(counters: &Arc<Counters>, fan_out: (usize, usize), task_token: &Arc<()>) -> Props<Tiny> {
    let counters = counters.clone();
    let token = task_token.clone();
    Props::new(move || {
        let _ = &token;
        Tiny {
            counters: counters.clone(),
            fan_out,
        }
    })
}

/// A system whose configuration holds a clone of `system_token`: every
/// actor cell holds the system, so the token is released only once the
/// system and every cell are freed.
fn system(name: &str, system_token: &Arc<()>) -> ActorSystem {
    let mut config = SystemConfig::new(name);
    let token = system_token.clone();
    config.guardian_strategy = SupervisorStrategy::one_for_one().with_decider(move |_| {
        let _ = &token;
        Directive::Restart
    });
    ActorSystem::new(config).unwrap()
}

const DEADLINE: Duration = Duration::from_secs(60);

/// Drops the last handle on a shut-down system and waits until the system
/// and every actor cell are freed.
async fn freed(system: ActorSystem, system_token: &Arc<()>) {
    drop(system);
    eventually("the system and every actor cell to be freed", || {
        Arc::strong_count(system_token) == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_thousand_actors_spawn_stop_and_leave_nothing_behind() {
    const N: usize = 100_000;
    let system_token = Arc::new(());
    let task_token = Arc::new(());
    let counters = Arc::new(Counters::default());
    let system = system("scale-flat", &system_token);
    let baseline = system.live_actors();

    let refs: Vec<ActorRef<ReplyTo<()>>> = (0..N)
        .map(|_| system.spawn_anonymous(tiny(&counters, (0, 0), &task_token)).unwrap())
        .collect();
    assert_eq!(system.live_actors(), baseline + N);
    within(DEADLINE, "every actor to answer", async {
        for r in refs.iter().step_by(97) {
            r.ask(|reply| reply, DEADLINE).await.unwrap();
        }
    })
    .await;

    let gone: Vec<_> = refs.iter().map(|r| r.terminated()).collect();
    for r in &refs {
        r.stop();
    }
    drop(refs);
    within(DEADLINE, "every actor to terminate", async {
        for g in gone {
            g.await;
        }
    })
    .await;

    assert_eq!(system.live_actors(), baseline);
    assert_eq!(counters.started.load(Ordering::SeqCst), N);
    assert_eq!(counters.stopped.load(Ordering::SeqCst), N, "every post_stop ran");
    assert_eq!(counters.dropped.load(Ordering::SeqCst), N, "every instance was dropped");
    eventually("every actor task to be freed", || Arc::strong_count(&task_token) == 1).await;
    assert_eq!(system.health().await.live_actors, baseline);

    within(DEADLINE, "shutdown", system.shutdown()).await.unwrap();
    freed(system, &system_token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_tree_stops_from_its_root() {
    const CHILDREN: usize = 100;
    const GRANDCHILDREN: usize = 200;
    const TOTAL: usize = 1 + CHILDREN + CHILDREN * GRANDCHILDREN;
    let system_token = Arc::new(());
    let counters = Arc::new(Counters::default());
    let system = system("scale-tree", &system_token);
    let root = system
        .spawn("root", tiny(&counters, (CHILDREN, GRANDCHILDREN), &Arc::new(())))
        .unwrap();
    eventually("the whole tree to start", || {
        counters.started.load(Ordering::SeqCst) == TOTAL
    })
    .await;
    assert_eq!(system.live_actors(), TOTAL);

    root.stop();
    within(DEADLINE, "the root to terminate", root.terminated()).await;
    assert_eq!(system.live_actors(), 0);
    assert_eq!(counters.stopped.load(Ordering::SeqCst), TOTAL, "every post_stop ran");
    assert_eq!(counters.dropped.load(Ordering::SeqCst), TOTAL);

    drop(root);
    within(DEADLINE, "shutdown", system.shutdown()).await.unwrap();
    freed(system, &system_token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_stops_a_hundred_thousand_actors() {
    const N: usize = 100_000;
    let system_token = Arc::new(());
    let counters = Arc::new(Counters::default());
    let system = system("scale-shutdown", &system_token);
    for _ in 0..N {
        system.spawn_anonymous(tiny(&counters, (0, 0), &Arc::new(()))).unwrap();
    }
    within(DEADLINE, "shutdown", system.shutdown()).await.unwrap();
    assert_eq!(system.live_actors(), 0);
    assert_eq!(counters.stopped.load(Ordering::SeqCst), N);
    assert_eq!(counters.dropped.load(Ordering::SeqCst), N);
    freed(system, &system_token).await;
}
