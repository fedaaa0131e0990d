//! Supervision: what a parent does with a failing child (restart, resume,
//! stop, escalate), one-for-one against all-for-one, restart limits,
//! exponential backoff and the restart hooks.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{probe, shutdown, system, wait, Rx, Tx};
use compaktor_actor::*;
use tokio::time::Instant;

/// What a worker reports about itself.
#[derive(Debug, Clone)]
enum Ev {
    Started { instance: u64, at: Instant },
    PreRestart { instance: u64, cause: Failure },
    PostRestart { instance: u64, cause: Failure },
}

enum Work {
    Add(u64),
    /// Replies with (count, instance).
    Get(ReplyTo<(u64, u64)>),
    Panic,
    Fail,
}

/// Counts; knows which instance (built by the props' factory) it is.
struct Worker {
    count: u64,
    instance: u64,
    events: Tx<Ev>,
}

impl Actor for Worker {
    type Msg = Work;

    async fn pre_start(&mut self, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.events.send(Ev::Started {
            instance: self.instance,
            at: Instant::now(),
        });
        Ok(())
    }

    async fn handle(&mut self, msg: Work, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Work::Add(n) => self.count += n,
            Work::Get(reply) => {
                let _ = reply.send((self.count, self.instance));
            }
            Work::Panic => panic!("boom"),
            Work::Fail => return Err("refused".into()),
        }
        Ok(())
    }

    async fn pre_restart(&mut self, cause: &Failure, _ctx: &mut Context<Self>) {
        let _ = self.events.send(Ev::PreRestart {
            instance: self.instance,
            cause: cause.clone(),
        });
    }

    async fn post_restart(&mut self, cause: &Failure, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.events.send(Ev::PostRestart {
            instance: self.instance,
            cause: cause.clone(),
        });
        self.pre_start(ctx).await
    }
}

/// Props for workers, and the count of instances they have built.
fn worker(events: &Tx<Ev>) -> (Props<Worker>, Arc<AtomicU64>) {
    let built = Arc::new(AtomicU64::new(0));
    let counter = built.clone();
    let events = events.clone();
    let props = Props::new(move || Worker {
        count: 0,
        instance: counter.fetch_add(1, Ordering::SeqCst),
        events: events.clone(),
    });
    (props, built)
}

struct Ping(ReplyTo<()>);

/// Spawns and watches its children in `pre_start`; supervises them with
/// `strategy`; reports every `Terminated` it sees.
struct Supervisor<C: Actor> {
    strategy: SupervisorStrategy,
    kids: Vec<(&'static str, Props<C>)>,
    terminated: Tx<Terminated>,
}

fn supervisor<C: Actor>(
    strategy: SupervisorStrategy,
    kids: Vec<(&'static str, Props<C>)>,
    terminated: &Tx<Terminated>,
) -> Props<Supervisor<C>> {
    let terminated = terminated.clone();
    Props::new(move || Supervisor {
        strategy: strategy.clone(),
        kids: kids.clone(),
        terminated: terminated.clone(),
    })
}

impl<C: Actor> Actor for Supervisor<C> {
    type Msg = Ping;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        for (name, props) in self.kids.clone() {
            let kid = ctx.spawn(name, props)?;
            ctx.watch(&kid);
        }
        Ok(())
    }

    async fn handle(&mut self, Ping(reply): Ping, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = reply.send(());
        Ok(())
    }

    async fn on_terminated(&mut self, t: Terminated, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.terminated.send(t);
        Ok(())
    }

    fn supervisor_strategy(&self) -> SupervisorStrategy {
        self.strategy.clone()
    }
}

async fn get(w: &ActorRef<Work>) -> (u64, u64) {
    w.ask(Work::Get, common::WAIT)
        .await
        .unwrap_or_else(|e| panic!("get from {w}: {e}"))
}

/// Spawns `/user/sup` supervising workers named `kids` and returns their refs.
async fn family(
    system: &ActorSystem,
    strategy: SupervisorStrategy,
    kids: &[&'static str],
    props: &Props<Worker>,
    terminated: &Tx<Terminated>,
) -> Vec<ActorRef<Work>> {
    let specs = kids.iter().map(|k| (*k, props.clone())).collect();
    let sup = system.spawn("sup", supervisor(strategy, specs, terminated)).unwrap();
    sup.ask(Ping, common::WAIT).await.expect("supervisor started");
    kids.iter()
        .map(|name| system.lookup::<Work>(&format!("/user/sup/{name}")).unwrap())
        .collect()
}

/// Waits until a `Restarted` event has been seen for each of `paths`.
async fn restarted(events: &mut EventSubscriber<LifecycleEvent>, paths: &[&ActorPath]) {
    let mut left: Vec<&ActorPath> = paths.to_vec();
    wait("the restarts", async {
        while !left.is_empty() {
            if let Ok(LifecycleEvent::Restarted(path)) = events.recv().await {
                left.retain(|p| **p != path);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn panic_or_error_restarts_with_a_fresh_instance_from_the_props() {
    let system = system("sv-restart");
    let (tx, _events) = probe();
    let (props, built) = worker(&tx);
    let (term_tx, mut term_rx) = probe();
    let w = family(&system, SupervisorStrategy::one_for_one(), &["w0"], &props, &term_tx).await;
    let w = &w[0];

    w.tell(Work::Add(5));
    assert_eq!(get(w).await, (5, 0));
    w.tell(Work::Panic);
    w.tell(Work::Add(1));
    assert_eq!(
        get(w).await,
        (1, 1),
        "state reset, later messages kept, the failing one dropped"
    );
    w.tell(Work::Add(2));
    w.tell(Work::Fail);
    assert_eq!(get(w).await, (0, 2), "an Err restarts just like a panic");
    assert_eq!(built.load(Ordering::SeqCst), 3);
    assert!(!w.is_terminated(), "the ref survives restarts");
    assert_eq!(system.health().await.restarts, 2);
    term_rx.assert_empty("a restarted child does not terminate");
    shutdown(&system).await;
}

#[tokio::test]
async fn resume_keeps_the_instance_and_its_state() {
    let system = system("sv-resume");
    let (tx, _events) = probe();
    let (props, built) = worker(&tx);
    let (term_tx, _term_rx) = probe();
    let strategy = SupervisorStrategy::one_for_one().with_decider(|_| Directive::Resume);
    let w = &family(&system, strategy, &["w0"], &props, &term_tx).await[0];

    w.tell(Work::Add(5));
    w.tell(Work::Panic);
    w.tell(Work::Add(1));
    w.tell(Work::Fail);
    w.tell(Work::Add(1));
    assert_eq!(get(w).await, (7, 0));
    assert_eq!(built.load(Ordering::SeqCst), 1);
    assert_eq!(system.health().await.restarts, 0);
    shutdown(&system).await;
}

#[tokio::test]
async fn stop_directive_stops_the_child_with_its_failure_as_reason() {
    let system = system("sv-stop");
    let (tx, _events) = probe();
    let (props, _built) = worker(&tx);
    let (term_tx, mut term_rx) = probe();
    let w = family(
        &system,
        SupervisorStrategy::stop_on_failure(),
        &["w0"],
        &props,
        &term_tx,
    )
    .await;
    let w = &w[0];

    w.tell(Work::Add(5));
    w.tell(Work::Fail);
    w.tell(Work::Add(1));
    let t = term_rx.next("the supervisor to see the child stop").await;
    assert_eq!(t.actor(), w.path());
    let failure = t.reason().failure().expect("stopped because it failed");
    assert_eq!(failure.phase(), FailurePhase::Message);
    assert_eq!(failure.error().to_string(), "refused");
    assert!(!failure.is_panic());
    assert!(w.is_terminated());
    assert_eq!(w.ask(Work::Get, common::WAIT).await.unwrap_err(), AskError::Terminated);
    shutdown(&system).await;
}

/// `grand` supervises `mid` with a decider that reports what it saw;
/// `mid` escalates every failure of its worker `w0`.
async fn escalation(
    name: &str,
    grand_says: Directive,
) -> (
    ActorSystem,
    Rx<Failure>,
    Rx<Terminated>,
    Rx<Ev>,
    ActorRef<Work>,
    Arc<AtomicU64>,
) {
    let system = system(name);
    let (tx, events) = probe();
    let (props, built) = worker(&tx);
    let (term_tx, term_rx) = probe();
    let (seen_tx, seen_rx) = probe();
    let mid_strategy = SupervisorStrategy::one_for_one().with_decider(|_| Directive::Escalate);
    let mid = supervisor(mid_strategy, vec![("w0", props)], &term_tx);
    let grand_strategy = SupervisorStrategy::one_for_one().with_decider(move |f| {
        let _ = seen_tx.send(f.clone());
        grand_says
    });
    let grand = system
        .spawn("grand", supervisor(grand_strategy, vec![("mid", mid)], &term_tx))
        .unwrap();
    grand.ask(Ping, common::WAIT).await.unwrap();
    let mid = system.lookup::<Ping>("/user/grand/mid").unwrap();
    mid.ask(Ping, common::WAIT).await.unwrap();
    let w = system.lookup::<Work>("/user/grand/mid/w0").unwrap();
    w.tell(Work::Add(5));
    w.tell(Work::Panic);
    (system, seen_rx, term_rx, events, w, built)
}

fn assert_escalated(seen: &Failure, w: &ActorRef<Work>) {
    assert_eq!(seen.phase(), FailurePhase::Escalated);
    assert_eq!(seen.actor().name(), "mid");
    let original = seen
        .error()
        .downcast_ref::<Failure>()
        .expect("an escalation carries the child's failure");
    assert_eq!(original.actor(), w.path());
    assert_eq!(original.phase(), FailurePhase::Message);
    assert!(original.is_panic());
}

#[tokio::test]
async fn escalate_lets_the_grandparent_restart_the_parent_and_its_children() {
    let (system, mut seen, _term, _events, w, built) = escalation("sv-escalate-restart", Directive::Restart).await;
    let failure = seen.next("the grandparent's decider to see the escalation").await;
    assert_escalated(&failure, &w);

    // Restarting `mid` stops its children; its fresh instance spawns a new worker.
    let t = wait("the old worker to stop", w.terminated()).await;
    assert!(matches!(t.reason(), StopReason::Stopped), "{t}");
    let mid = system.lookup::<Ping>("/user/grand/mid").unwrap();
    mid.ask(Ping, common::WAIT).await.expect("mid runs again");
    let fresh = system.lookup::<Work>("/user/grand/mid/w0").unwrap();
    assert_ne!(fresh, w, "a new incarnation");
    assert_eq!(get(&fresh).await, (0, 1));
    assert_eq!(built.load(Ordering::SeqCst), 2);
    seen.assert_empty("one decision for one failure");
    shutdown(&system).await;
}

/// A worker with a worker of its own, spawned in `pre_start`.
struct Parent {
    kid: Props<Worker>,
}

impl Actor for Parent {
    type Msg = Work;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ctx.spawn("kid", self.kid.clone())?;
        Ok(())
    }

    async fn handle(&mut self, msg: Work, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Work::Fail => return Err("refused".into()),
            Work::Get(reply) => {
                let _ = reply.send((0, 0));
            }
            Work::Add(_) | Work::Panic => {}
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_that_fails_itself_restarts_once_its_children_have_stopped() {
    let system = system("sv-parent-fails");
    let (tx, _events) = probe();
    let (kid, built) = worker(&tx);
    let (term_tx, _term_rx) = probe();
    let parent = Props::new(move || Parent { kid: kid.clone() });
    let sup = system
        .spawn(
            "sup",
            supervisor(SupervisorStrategy::one_for_one(), vec![("p", parent)], &term_tx),
        )
        .unwrap();
    sup.ask(Ping, common::WAIT).await.expect("supervisor started");
    let p = system.lookup::<Work>("/user/sup/p").unwrap();
    get(&p).await; // pre_start (which spawns the kid) has run
    let old_kid = system.lookup::<Work>("/user/sup/p/kid").unwrap();

    // The parent never supervised anything: it fails on its own.
    p.tell(Work::Fail);
    let t = wait("the old kid to stop", old_kid.terminated()).await;
    assert!(matches!(t.reason(), StopReason::Stopped), "{t}");
    get(&p).await; // answered by the fresh instance
    let new_kid = system.lookup::<Work>("/user/sup/p/kid").unwrap();
    assert_ne!(new_kid, old_kid, "the fresh parent spawned a new kid");
    assert_eq!(get(&new_kid).await, (0, 1));
    assert_eq!(built.load(Ordering::SeqCst), 2);
    shutdown(&system).await;
}

#[tokio::test]
async fn escalate_then_resume_resumes_the_failed_child_too() {
    let (system, mut seen, _term, _events, w, built) = escalation("sv-escalate-resume", Directive::Resume).await;
    assert_escalated(&seen.next("the escalation").await, &w);
    w.tell(Work::Add(1));
    assert_eq!(get(&w).await, (6, 0), "the child resumed with its state");
    assert_eq!(built.load(Ordering::SeqCst), 1);
    shutdown(&system).await;
}

#[tokio::test]
async fn escalate_then_stop_stops_the_parent_with_the_failure() {
    let (system, mut seen, mut term, _events, w, _built) = escalation("sv-escalate-stop", Directive::Stop).await;
    assert_escalated(&seen.next("the escalation").await, &w);
    let t = term.next("the grandparent to see mid stop").await;
    assert_eq!(t.actor().name(), "mid");
    let failure = t.reason().failure().expect("mid stopped because it failed");
    assert_eq!(failure.phase(), FailurePhase::Escalated);
    assert!(w.is_terminated(), "mid's children stopped before mid terminated");
    let grand = system.lookup::<Ping>("/user/grand").unwrap();
    grand.ask(Ping, common::WAIT).await.expect("the grandparent carries on");
    shutdown(&system).await;
}

async fn three_workers(
    name: &str,
    strategy: SupervisorStrategy,
) -> (
    ActorSystem,
    Vec<ActorRef<Work>>,
    Rx<Ev>,
    EventSubscriber<LifecycleEvent>,
) {
    let system = system(name);
    let (tx, events) = probe();
    let (props, _built) = worker(&tx);
    let (term_tx, _term_rx) = probe();
    let lifecycle = system.event_stream().subscribe::<LifecycleEvent>();
    let ws = family(&system, strategy, &["w0", "w1", "w2"], &props, &term_tx).await;
    assert_eq!(ws.len(), 3);
    for w in &ws {
        w.tell(Work::Add(10));
    }
    for w in &ws {
        assert_eq!(get(w).await.0, 10);
    }
    (system, ws, events, lifecycle)
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let (system, ws, _events, mut lifecycle) = three_workers("sv-one-for-one", SupervisorStrategy::one_for_one()).await;
    let before: Vec<u64> = [get(&ws[1]).await.1, get(&ws[2]).await.1].to_vec();
    ws[0].tell(Work::Panic);
    restarted(&mut lifecycle, &[ws[0].path()]).await;
    assert_eq!(get(&ws[0]).await.0, 0);
    assert_eq!(get(&ws[1]).await, (10, before[0]), "sibling untouched");
    assert_eq!(get(&ws[2]).await, (10, before[1]), "sibling untouched");
    while let Ok(Some(event)) = lifecycle.try_recv() {
        assert!(
            !matches!(event, LifecycleEvent::Restarted(_)),
            "unexpected restart: {event:?}"
        );
    }
    shutdown(&system).await;
}

#[tokio::test]
async fn all_for_one_restarts_every_sibling() {
    let (system, ws, mut events, mut lifecycle) =
        three_workers("sv-all-for-one", SupervisorStrategy::all_for_one()).await;
    let before: Vec<u64> = [get(&ws[0]).await.1, get(&ws[1]).await.1, get(&ws[2]).await.1].to_vec();
    while events.try_next().is_some() {}
    ws[1].tell(Work::Panic);
    restarted(&mut lifecycle, &[ws[0].path(), ws[1].path(), ws[2].path()]).await;
    for (w, old) in ws.iter().zip(&before) {
        let (count, instance) = get(w).await;
        assert_eq!(count, 0, "{w} restarted with fresh state");
        assert_ne!(instance, *old, "{w} is a new instance");
    }
    // Every sibling's pre_restart saw the one failure that caused it all.
    let mut causes = 0;
    while let Some(ev) = events.try_next() {
        if let Ev::PreRestart { cause, .. } = ev {
            assert_eq!(cause.actor(), ws[1].path());
            causes += 1;
        }
    }
    assert_eq!(causes, 3);
    shutdown(&system).await;
}

#[tokio::test]
async fn reaching_the_restart_limit_stops_the_child_and_its_watcher_sees_the_failure() {
    let system = system("sv-limit");
    let (tx, _events) = probe();
    let (props, built) = worker(&tx);
    let (term_tx, mut term_rx) = probe();
    let strategy = SupervisorStrategy::one_for_one().with_max_restarts(2, Duration::from_secs(60));
    let w = &family(&system, strategy, &["w0"], &props, &term_tx).await[0];

    for _ in 0..3 {
        w.tell(Work::Panic);
    }
    let t = term_rx.next("the child to be stopped at its restart limit").await;
    assert_eq!(t.actor(), w.path());
    let failure = t.reason().failure().expect("a failure reason");
    assert_eq!(failure.phase(), FailurePhase::Message);
    assert!(failure.is_panic());
    assert!(t.reason().to_string().starts_with("failed"), "{}", t.reason());
    assert_eq!(built.load(Ordering::SeqCst), 3, "the first instance and two restarts");
    assert_eq!(system.health().await.restarts, 2);
    assert_eq!(w.ask(Work::Get, common::WAIT).await.unwrap_err(), AskError::Terminated);
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn the_restart_budget_renews_once_the_window_has_passed() {
    let system = system("sv-window");
    let (tx, _events) = probe();
    let (props, built) = worker(&tx);
    let (term_tx, mut term_rx) = probe();
    let strategy = SupervisorStrategy::one_for_one().with_max_restarts(1, Duration::from_secs(1));
    let w = &family(&system, strategy, &["w0"], &props, &term_tx).await[0];

    w.tell(Work::Panic);
    assert_eq!(get(w).await, (0, 1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.tell(Work::Panic);
    assert_eq!(get(w).await, (0, 2), "a new window, a new restart");
    w.tell(Work::Panic);
    let t = term_rx
        .next("the second failure within the window to stop the child")
        .await;
    assert!(t.reason().failure().is_some());
    assert_eq!(built.load(Ordering::SeqCst), 3);
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn restarts_back_off_exponentially() {
    let system = system("sv-backoff");
    let (tx, mut events) = probe();
    let (props, _built) = worker(&tx);
    let (term_tx, _term_rx) = probe();
    let strategy = SupervisorStrategy::one_for_one()
        .with_unlimited_restarts()
        .with_backoff(Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(1000),
            0.0,
        ));
    let w = &family(&system, strategy, &["w0"], &props, &term_tx).await[0];

    for _ in 0..5 {
        w.tell(Work::Panic);
    }
    w.tell(Work::Add(3));
    let mut starts = Vec::new();
    while starts.len() < 6 {
        if let Ev::Started { instance, at } = events.next("a (re)start").await {
            starts.push((instance, at));
        }
    }
    assert_eq!(
        get(w).await,
        (3, 5),
        "messages sent during the backoff wait for the new instance"
    );
    let instances: Vec<u64> = starts.iter().map(|s| s.0).collect();
    assert_eq!(instances, [0, 1, 2, 3, 4, 5]);
    let gaps: Vec<Duration> = starts.windows(2).map(|p| p[1].1 - p[0].1).collect();
    let expected = [100, 200, 400, 800, 1000].map(Duration::from_millis);
    for (gap, want) in gaps.iter().zip(expected) {
        assert!(
            *gap >= want && *gap < want + Duration::from_millis(5),
            "gaps between restarts {gaps:?}, expected about {expected:?}"
        );
    }
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn backoff_jitter_stays_within_its_fraction() {
    let system = system("sv-jitter");
    let (tx, mut events) = probe();
    let (props, _built) = worker(&tx);
    let (term_tx, _term_rx) = probe();
    let strategy = SupervisorStrategy::one_for_one()
        .with_unlimited_restarts()
        .with_backoff(Backoff::new(Duration::from_millis(100), Duration::from_secs(10), 0.5));
    let w = &family(&system, strategy, &["w0"], &props, &term_tx).await[0];
    for _ in 0..4 {
        w.tell(Work::Panic);
    }
    let mut starts = Vec::new();
    while starts.len() < 5 {
        if let Ev::Started { at, .. } = events.next("a (re)start").await {
            starts.push(at);
        }
    }
    for (n, pair) in starts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let base = Duration::from_millis(100 << n);
        assert!(
            gap >= base && gap <= base.mul_f64(1.5) + Duration::from_millis(5),
            "restart {n}: gap {gap:?} outside [{base:?}, 1.5 x {base:?}]"
        );
    }
    shutdown(&system).await;
}

#[tokio::test]
async fn restart_hooks_run_on_the_old_and_the_new_instance() {
    let system = system("sv-hooks");
    let (tx, mut events) = probe();
    let (props, _built) = worker(&tx);
    let (term_tx, _term_rx) = probe();
    let w = &family(&system, SupervisorStrategy::one_for_one(), &["w0"], &props, &term_tx).await[0];
    w.tell(Work::Panic);
    assert_eq!(get(w).await.1, 1);

    let evs = events.take(4, "the hooks").await;
    assert!(matches!(evs[0], Ev::Started { instance: 0, .. }), "{evs:?}");
    match &evs[1] {
        Ev::PreRestart { instance: 0, cause } => {
            assert_eq!(cause.actor(), w.path());
            assert_eq!(cause.phase(), FailurePhase::Message);
            assert_eq!(cause.error().to_string(), "panicked: boom");
        }
        other => panic!("expected pre_restart on the old instance, got {other:?} in {evs:?}"),
    }
    match &evs[2] {
        Ev::PostRestart { instance: 1, cause } => assert!(cause.is_panic()),
        other => panic!("expected post_restart on the new instance, got {other:?} in {evs:?}"),
    }
    assert!(matches!(evs[3], Ev::Started { instance: 1, .. }), "{evs:?}");
    events.assert_empty("one restart, four hook calls");
    shutdown(&system).await;
}
