//! Death watch: exactly one `Terminated` per watch, also for actors that are
//! already dead; unwatch; and the reason an actor stopped.

mod common;

use std::time::Duration;

use common::{probe, shutdown, system, wait, Rx, Tx};
use compaktor_actor::*;

enum T {
    Ping(ReplyTo<()>),
    Fail,
}

struct Target;

impl Actor for Target {
    type Msg = T;

    async fn handle(&mut self, msg: T, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            T::Ping(reply) => {
                let _ = reply.send(());
            }
            T::Fail => return Err("target failed".into()),
        }
        Ok(())
    }
}

enum W {
    Watch(AnyActorRef),
    Unwatch(AnyActorRef),
    /// Stops the target and unwatches it in the same handler.
    StopAndUnwatch(AnyActorRef),
    Ping(ReplyTo<()>),
}

struct Watcher {
    seen: Tx<Terminated>,
}

impl Actor for Watcher {
    type Msg = W;

    async fn handle(&mut self, msg: W, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            W::Watch(target) => ctx.watch(target),
            W::Unwatch(target) => ctx.unwatch(target),
            W::StopAndUnwatch(target) => {
                ctx.stop(&target);
                ctx.unwatch(target);
            }
            W::Ping(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn on_terminated(&mut self, t: Terminated, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.seen.send(t);
        Ok(())
    }
}

fn watcher(system: &ActorSystem, name: &str) -> (ActorRef<W>, Rx<Terminated>) {
    let (tx, rx) = probe();
    let w = system
        .spawn(name, Props::new(move || Watcher { seen: tx.clone() }))
        .unwrap();
    (w, rx)
}

async fn ping(w: &ActorRef<W>) {
    w.ask(W::Ping, common::WAIT).await.expect("the watcher answers");
}

/// A system whose top-level actors are stopped, not restarted, when they fail.
fn stopping_system(name: &str) -> ActorSystem {
    let mut config = SystemConfig::new(name);
    config.guardian_strategy = SupervisorStrategy::stop_on_failure();
    ActorSystem::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_watcher_gets_exactly_one_terminated() {
    let system = system("w-once");
    let target = system.spawn("target", Props::new(|| Target)).unwrap();
    let (w1, mut seen1) = watcher(&system, "w1");
    let (w2, mut seen2) = watcher(&system, "w2");
    w1.tell(W::Watch(target.as_any()));
    w1.tell(W::Watch(target.as_any())); // watching twice is watching once
    w2.tell(W::Watch(target.as_any()));
    ping(&w1).await;
    ping(&w2).await;
    let outside1 = target.terminated();
    let outside2 = target.terminated();

    target.stop();
    for seen in [&mut seen1, &mut seen2] {
        let t = seen.next("the watcher's Terminated").await;
        assert_eq!(t.actor(), target.path());
        assert!(matches!(t.reason(), StopReason::Stopped), "{t}");
    }
    assert_eq!(wait("outside watch 1", outside1).await.actor(), target.path());
    assert_eq!(wait("outside watch 2", outside2).await.actor(), target.path());
    // A duplicate would have been queued with the first: it would be handled
    // (system messages first) before these pings are answered.
    ping(&w1).await;
    ping(&w2).await;
    seen1.assert_empty("w1 watched twice but must hear once");
    seen2.assert_empty("w2 must hear once");
    shutdown(&system).await;
}

#[tokio::test]
async fn watching_an_actor_that_is_already_dead_delivers_terminated_at_once() {
    let system = stopping_system("w-dead");
    let stopped = system.spawn("stopped", Props::new(|| Target)).unwrap();
    let failed = system.spawn("failed", Props::new(|| Target)).unwrap();
    stopped.stop();
    failed.tell(T::Fail);
    wait("stopped to terminate", stopped.terminated()).await;
    wait("failed to terminate", failed.terminated()).await;

    let (w, mut seen) = watcher(&system, "late");
    w.tell(W::Watch(stopped.as_any()));
    let t = seen.next("Terminated for an actor that was already dead").await;
    assert_eq!(t.actor(), stopped.path());
    assert!(matches!(t.reason(), StopReason::Stopped), "{t}");

    w.tell(W::Watch(failed.as_any()));
    let t = seen.next("Terminated for an actor that had already failed").await;
    assert_eq!(t.actor(), failed.path());
    let failure = t.reason().failure().expect("the reason it died is kept");
    assert_eq!(failure.error().to_string(), "target failed");

    // From outside an actor, too.
    let t = wait("terminated() on a dead actor", failed.terminated()).await;
    assert!(t.reason().failure().is_some());
    ping(&w).await;
    seen.assert_empty("one Terminated per watch");
    shutdown(&system).await;
}

#[tokio::test]
async fn unwatch_prevents_delivery() {
    let system = system("w-unwatch");
    let target = system.spawn("target", Props::new(|| Target)).unwrap();
    let (w, mut seen) = watcher(&system, "w");
    w.tell(W::Watch(target.as_any()));
    w.tell(W::Unwatch(target.as_any()));
    ping(&w).await;
    target.stop();
    wait("the target to terminate", target.terminated()).await;
    ping(&w).await;
    seen.assert_empty("no Terminated after unwatch");

    // Watching again after an unwatch works as a fresh watch.
    let target = system.spawn("target2", Props::new(|| Target)).unwrap();
    w.tell(W::Watch(target.as_any()));
    w.tell(W::Unwatch(target.as_any()));
    w.tell(W::Watch(target.as_any()));
    ping(&w).await;
    target.stop();
    assert_eq!(seen.next("Terminated after re-watching").await.actor(), target.path());
    ping(&w).await;
    seen.assert_empty("exactly one");
    shutdown(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unwatch_wins_even_when_the_target_is_already_stopping() {
    let system = system("w-unwatch-race");
    let (w, mut seen) = watcher(&system, "w");
    for _ in 0..200 {
        let target = system.spawn_anonymous(Props::new(|| Target)).unwrap();
        w.tell(W::Watch(target.as_any()));
        w.tell(W::StopAndUnwatch(target.as_any()));
        wait("the target to terminate", target.terminated()).await;
    }
    ping(&w).await;
    seen.assert_empty("unwatch guarantees no Terminated afterwards");
    shutdown(&system).await;
}

#[tokio::test]
async fn the_reason_tells_stopped_from_failed() {
    let system = stopping_system("w-reason");
    let (w, mut seen) = watcher(&system, "w");
    let stopped = system.spawn("stopped", Props::new(|| Target)).unwrap();
    let failed = system.spawn("failed", Props::new(|| Target)).unwrap();
    w.tell(W::Watch(stopped.as_any()));
    w.tell(W::Watch(failed.as_any()));
    ping(&w).await;

    stopped.stop();
    let t = seen.next("Terminated of the stopped actor").await;
    assert_eq!(t.actor(), stopped.path());
    assert!(matches!(t.reason(), StopReason::Stopped));
    assert!(t.reason().failure().is_none());
    assert_eq!(t.reason().to_string(), "stopped");

    failed.tell(T::Fail);
    let t = seen.next("Terminated of the failed actor").await;
    assert_eq!(t.actor(), failed.path());
    let failure = t.reason().failure().expect("a failure");
    assert_eq!(failure.actor(), failed.path());
    assert_eq!(failure.phase(), FailurePhase::Message);
    assert!(t.reason().to_string().starts_with("failed: "), "{}", t.reason());
    assert!(t.reason().to_string().contains("target failed"), "{}", t.reason());
    shutdown(&system).await;
}

#[tokio::test]
async fn shutdown_notifies_outside_watchers() {
    let system = system("w-shutdown");
    let target = system.spawn("target", Props::new(|| Target)).unwrap();
    target.ask(T::Ping, Duration::from_secs(5)).await.unwrap();
    let terminated = target.terminated();
    shutdown(&system).await;
    let t = wait("Terminated on shutdown", terminated).await;
    assert!(matches!(t.reason(), StopReason::Stopped));
}
