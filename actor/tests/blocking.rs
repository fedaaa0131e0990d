//! The blocking dispatcher: actors that block their thread run on the
//! system's blocking pool and never stall the async actors, even on a
//! current-thread or two-worker runtime.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{probe, shutdown, within, Tx};
use compaktor_actor::*;

/// How long a blocked handler waits for its release before giving up. A
/// broken dispatcher stalls the test for this long, then fails it.
const BLOCK_AT_MOST: Duration = Duration::from_secs(8);
/// How long the async actors may take to answer while others block.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

enum B {
    /// Reports the thread's name, then blocks it until released.
    Block(mpsc::Receiver<()>, Tx<String>),
    /// Answers with the thread's name after an async sleep.
    Nap(Duration, ReplyTo<String>),
    Panic,
}

/// Blocks its thread on purpose, as a handler calling blocking APIs would.
struct Blocker {
    released: Arc<AtomicUsize>,
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("<unnamed>").to_owned()
}

impl Actor for Blocker {
    type Msg = B;

    async fn handle(&mut self, msg: B, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            B::Block(release, entered) => {
                let _ = entered.send(thread_name());
                let _ = release.recv_timeout(BLOCK_AT_MOST);
                self.released.fetch_add(1, Ordering::SeqCst);
            }
            B::Nap(delay, reply) => {
                tokio::time::sleep(delay).await;
                let _ = reply.send(thread_name());
            }
            B::Panic => panic!("blocker failure"),
        }
        Ok(())
    }
}

struct Echo;

impl Actor for Echo {
    type Msg = (u32, ReplyTo<u32>);

    async fn handle(&mut self, (n, reply): (u32, ReplyTo<u32>), _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = reply.send(n);
        Ok(())
    }
}

fn config(name: &str) -> SystemConfig {
    let mut config = SystemConfig::new(name);
    config.blocking_threads = 4;
    config
}

/// Blocks `blockers` actors on the pool, checks that an async actor keeps
/// answering meanwhile, then releases them.
async fn async_actors_keep_running(name: &str, blockers: usize) {
    let system = ActorSystem::new(config(name)).unwrap();
    let released = Arc::new(AtomicUsize::new(0));
    let echo = system.spawn("echo", Props::new(|| Echo)).unwrap();
    let (entered_tx, mut entered) = probe();
    let mut releases = Vec::new();
    let mut refs = Vec::new();
    for i in 0..blockers {
        let released = released.clone();
        let blocker = system
            .spawn(
                &format!("blocker-{i}"),
                Props::new(move || Blocker {
                    released: released.clone(),
                })
                .on_blocking_pool(),
            )
            .unwrap();
        let (tx, rx) = mpsc::channel();
        blocker.tell(B::Block(rx, entered_tx.clone()));
        releases.push(tx);
        refs.push(blocker);
    }
    for thread in entered.take(blockers, "every blocker to block its thread").await {
        assert!(
            thread.starts_with(&format!("{name}-blocking-")),
            "a blocking-pool actor ran on {thread}"
        );
    }

    within(ANSWER_WITHIN, "the async actor to answer while others block", async {
        for n in 0..200 {
            assert_eq!(echo.ask(|r| (n, r), ANSWER_WITHIN).await, Ok(n));
        }
        // Async actors can still be spawned and do their work.
        let fresh = system.spawn_anonymous(Props::new(|| Echo)).unwrap();
        assert_eq!(fresh.ask(|r| (7, r), ANSWER_WITHIN).await, Ok(7));
    })
    .await;
    assert_eq!(
        released.load(Ordering::SeqCst),
        0,
        "the answers came while every blocker was still blocked"
    );

    for tx in releases {
        tx.send(()).unwrap();
    }
    for blocker in &refs {
        let thread = within(ANSWER_WITHIN, "a released blocker to answer", async {
            blocker
                .ask(|r| B::Nap(Duration::from_millis(1), r), ANSWER_WITHIN)
                .await
        })
        .await
        .expect("the blocker answers once released");
        assert!(thread.starts_with(&format!("{name}-blocking-")), "{thread}");
    }
    assert_eq!(released.load(Ordering::SeqCst), blockers);
    shutdown(&system).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocking_actor_does_not_stall_a_current_thread_runtime() {
    async_actors_keep_running("bl-current", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_actors_do_not_stall_a_two_worker_runtime() {
    // More blockers than async workers: on the async workers they would stall everything.
    async_actors_keep_running("bl-two-workers", 3).await;
}

#[tokio::test]
async fn a_restarted_blocking_actor_stays_on_the_blocking_pool() {
    let system = ActorSystem::new(config("bl-restart")).unwrap();
    let blocker = system
        .spawn(
            "blocker",
            Props::new(|| Blocker {
                released: Arc::default(),
            })
            .with_dispatcher(Dispatcher::Blocking),
        )
        .unwrap();
    blocker.tell(B::Panic);
    let thread = within(ANSWER_WITHIN, "the restarted blocker", async {
        blocker
            .ask(|r| B::Nap(Duration::from_millis(5), r), ANSWER_WITHIN)
            .await
    })
    .await
    .expect("the restarted blocker answers");
    assert!(thread.starts_with("bl-restart-blocking-"), "{thread}");
    assert_eq!(system.health().await.restarts, 1);
    shutdown(&system).await;
}
