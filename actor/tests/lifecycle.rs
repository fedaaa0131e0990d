//! Actor lifecycle: start and stop hooks, failures while starting, graceful
//! shutdown order, names, look-ups by path, and what a ref looks like.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{probe, shutdown, system, wait, Tx};
use compaktor_actor::*;

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

/// The path below `/user`, e.g. `a/b`.
fn rel(path: &ActorPath) -> String {
    path.elements()[1..].join("/")
}

/// A tree of actors to build: each node spawns its children in `pre_start`.
#[derive(Clone)]
struct Spec {
    name: &'static str,
    children: Vec<Spec>,
}

fn leaf(name: &'static str) -> Spec {
    Spec {
        name,
        children: Vec::new(),
    }
}

fn node(name: &'static str, children: Vec<Spec>) -> Spec {
    Spec { name, children }
}

enum Msg {
    Ping(ReplyTo<()>),
    Spawn(&'static str, ReplyTo<Result<ActorRef<Msg>, SpawnError>>),
    Children(ReplyTo<Vec<String>>),
}

struct Node {
    children: Vec<Spec>,
    log: Log,
}

fn props(children: Vec<Spec>, log: &Log) -> Props<Node> {
    let log = log.clone();
    Props::new(move || Node {
        children: children.clone(),
        log: log.clone(),
    })
}

impl Actor for Node {
    type Msg = Msg;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.log.lock().unwrap().push(format!("start {}", rel(ctx.path())));
        for child in self.children.clone() {
            ctx.spawn(child.name, props(child.children, &self.log))?;
        }
        Ok(())
    }

    async fn post_stop(&mut self, ctx: &mut Context<Self>) {
        self.log.lock().unwrap().push(format!("stop {}", rel(ctx.path())));
    }

    async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Msg::Ping(reply) => {
                let _ = reply.send(());
            }
            Msg::Spawn(name, reply) => {
                let _ = reply.send(ctx.spawn(name, props(Vec::new(), &self.log)));
            }
            Msg::Children(reply) => {
                let mut names: Vec<String> = ctx.children().iter().map(|c| c.path().name().to_owned()).collect();
                names.sort();
                let _ = reply.send(names);
            }
        }
        Ok(())
    }
}

async fn ping(actor: &ActorRef<Msg>) {
    actor
        .ask(Msg::Ping, common::WAIT)
        .await
        .unwrap_or_else(|e| panic!("ping {actor}: {e}"));
}

async fn spawn_child(parent: &ActorRef<Msg>, name: &'static str) -> Result<ActorRef<Msg>, SpawnError> {
    parent
        .ask(|r| Msg::Spawn(name, r), common::WAIT)
        .await
        .expect("parent answers")
}

#[tokio::test]
async fn pre_start_runs_before_the_first_message_and_post_stop_after_the_last() {
    let system = system("lc-hooks");
    let log = log();
    let a = system.spawn("a", props(Vec::new(), &log)).unwrap();
    ping(&a).await;
    assert_eq!(entries(&log), ["start a"]);

    a.stop();
    let terminated = wait("a to terminate", a.terminated()).await;
    assert_eq!(terminated.actor(), a.path());
    assert!(matches!(terminated.reason(), StopReason::Stopped), "{terminated}");
    assert!(a.is_terminated());
    assert_eq!(entries(&log), ["start a", "stop a"], "post_stop ran exactly once");
    shutdown(&system).await;
    assert_eq!(
        entries(&log),
        ["start a", "stop a"],
        "shutdown did not run post_stop again"
    );
}

/// Fails in `pre_start`, by panic or by error.
struct BadStart {
    panic: bool,
}

impl Actor for BadStart {
    type Msg = Msg;

    async fn pre_start(&mut self, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if self.panic {
            panic!("bad start");
        }
        Err("cannot open the database".into())
    }

    async fn handle(&mut self, _msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        panic!("a failed start must not lead to messages being handled");
    }
}

/// Spawns a `BadStart` child in `pre_start`, watches it, reports `Terminated`.
struct Watcher {
    panic: bool,
    child: Tx<ActorRef<Msg>>,
    terminated: Tx<Terminated>,
}

impl Actor for Watcher {
    type Msg = Msg;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let panic = self.panic;
        let child = ctx.spawn("bad", Props::new(move || BadStart { panic }))?;
        ctx.watch(&child);
        let _ = self.child.send(child);
        Ok(())
    }

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if let Msg::Ping(reply) = msg {
            let _ = reply.send(());
        }
        Ok(())
    }

    async fn on_terminated(&mut self, t: Terminated, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.terminated.send(t);
        Ok(())
    }
}

async fn failing_start(panic: bool) -> (Terminated, ActorRef<Msg>) {
    let system = system("lc-bad-start");
    let (child_tx, mut child_rx) = probe();
    let (term_tx, mut term_rx) = probe();
    let parent = system
        .spawn(
            "parent",
            Props::new(move || Watcher {
                panic,
                child: child_tx.clone(),
                terminated: term_tx.clone(),
            }),
        )
        .unwrap();
    let child = child_rx.next("the parent to spawn its child").await;
    let terminated = term_rx.next("the parent to see its child terminate").await;
    assert_eq!(terminated.actor(), child.path());
    assert!(child.is_terminated());
    // The child is gone for good; the parent carries on.
    assert_eq!(
        child.ask(Msg::Ping, Duration::from_secs(1)).await.unwrap_err(),
        AskError::Terminated
    );
    ping(&parent).await;
    term_rx.assert_empty("exactly one Terminated for the failed child");
    shutdown(&system).await;
    (terminated, child)
}

#[tokio::test]
async fn panic_in_pre_start_stops_the_actor_and_the_parent_sees_the_failure() {
    let (terminated, child) = failing_start(true).await;
    let failure = terminated
        .reason()
        .failure()
        .unwrap_or_else(|| panic!("expected a failure reason, got {terminated}"));
    assert_eq!(failure.phase(), FailurePhase::Start);
    assert!(failure.is_panic());
    assert_eq!(failure.actor(), child.path());
    let panicked = failure.error().downcast_ref::<Panicked>().expect("a Panicked error");
    assert_eq!(panicked.message(), "bad start");
}

#[tokio::test]
async fn error_in_pre_start_stops_the_actor_with_the_error_as_reason() {
    let (terminated, _child) = failing_start(false).await;
    let failure = terminated.reason().failure().expect("a failure reason");
    assert_eq!(failure.phase(), FailurePhase::Start);
    assert!(!failure.is_panic());
    assert_eq!(failure.error().to_string(), "cannot open the database");
}

#[tokio::test]
async fn failed_top_level_start_stops_only_that_actor() {
    let system = system("lc-top-bad-start");
    let bad = system.spawn("bad", Props::new(|| BadStart { panic: true })).unwrap();
    let terminated = wait("the failed actor to terminate", bad.terminated()).await;
    assert_eq!(
        terminated.reason().failure().map(Failure::phase),
        Some(FailurePhase::Start)
    );
    let log = log();
    let good = system.spawn("good", props(Vec::new(), &log)).unwrap();
    ping(&good).await;
    assert!(!system.is_terminated());
    shutdown(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_children_before_parents_and_runs_every_post_stop() {
    let system = system("lc-shutdown");
    let log = log();
    let tree = [
        node("a", vec![node("b", vec![leaf("c")]), leaf("d")]),
        node("e", vec![node("f", vec![node("g", vec![leaf("h")])])]),
    ];
    let mut started = system.event_stream().subscribe::<LifecycleEvent>();
    let mut tops = Vec::new();
    for spec in tree {
        tops.push(system.spawn(spec.name, props(spec.children, &log)).unwrap());
    }
    for i in 0..8 {
        let event = wait(&format!("actor {i} of 8 to start"), started.recv()).await;
        assert!(matches!(event, Ok(LifecycleEvent::Started(_))), "{event:?}");
    }
    assert_eq!(system.live_actors(), 8);

    shutdown(&system).await;
    assert!(system.is_terminated());
    assert_eq!(system.live_actors(), 0);
    for top in &tops {
        assert!(top.is_terminated());
    }

    let log = entries(&log);
    let stops: Vec<&str> = log.iter().filter_map(|e| e.strip_prefix("stop ")).collect();
    let mut expected = vec!["a", "a/b", "a/b/c", "a/d", "e", "e/f", "e/f/g", "e/f/g/h"];
    let mut sorted = stops.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "every post_stop ran exactly once: {log:?}");
    let at = |p: &str| stops.iter().position(|s| *s == p).unwrap();
    for (child, parent) in [
        ("a/b/c", "a/b"),
        ("a/b", "a"),
        ("a/d", "a"),
        ("e/f/g/h", "e/f/g"),
        ("e/f/g", "e/f"),
        ("e/f", "e"),
    ] {
        assert!(at(child) < at(parent), "{child} must stop before {parent}: {stops:?}");
    }
}

/// Children that stop on their own while their parent begins to stop:
/// each one that leaves as the parent closes its table must still be heard
/// of, or the parent would wait for it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_stopping_while_its_children_stop_hears_of_every_one() {
    let system = system("lc-race");
    for round in 0..20 {
        let log = log();
        let names: Vec<&'static str> = (0..200)
            .map(|i| &*Box::leak(format!("c{i}").into_boxed_str()))
            .collect();
        let parent = system
            .spawn(
                &format!("p{round}"),
                props(names.iter().map(|n| leaf(n)).collect(), &log),
            )
            .unwrap();
        ping(&parent).await; // pre_start (which spawns the children) has run
        let children: Vec<ActorRef<Msg>> = names
            .iter()
            .map(|n| system.lookup::<Msg>(&format!("/user/p{round}/{n}")).unwrap())
            .collect();
        let half = children.len() / 2;
        for child in &children[..half] {
            child.stop();
        }
        parent.stop();
        for child in &children[half..] {
            child.stop();
        }
        let terminated = wait(&format!("round {round}: the parent to terminate"), parent.terminated()).await;
        assert!(
            matches!(terminated.reason(), StopReason::Stopped),
            "a plain stop: {terminated:?}"
        );
        let stops: Vec<String> = entries(&log)
            .into_iter()
            .filter_map(|e| e.strip_prefix("stop ").map(str::to_owned))
            .collect();
        assert_eq!(stops.len(), names.len() + 1, "round {round}: every post_stop ran once");
        assert_eq!(
            stops.last().map(String::as_str),
            Some(&*format!("p{round}")),
            "round {round}: the parent last"
        );
    }
    shutdown(&system).await;
}

#[tokio::test]
async fn spawning_after_shutdown_is_refused() {
    let system = system("lc-after-shutdown");
    shutdown(&system).await;
    let log = log();
    assert_eq!(
        system.spawn("late", props(Vec::new(), &log)).unwrap_err(),
        SpawnError::ShuttingDown
    );
    assert_eq!(
        system.spawn_anonymous(props(Vec::new(), &log)).unwrap_err(),
        SpawnError::ShuttingDown
    );
    assert_eq!(
        system
            .spawn_router("pool", RouterConfig::pool(2, props(Vec::new(), &log)))
            .unwrap_err(),
        SpawnError::ShuttingDown
    );
    assert!(entries(&log).is_empty(), "no actor started: {:?}", entries(&log));
    // A second shutdown is harmless and resolves at once.
    shutdown(&system).await;
}

/// Tries to spawn a child from `post_stop` and reports the outcome.
struct LateSpawner {
    outcome: Tx<Result<(), SpawnError>>,
}

impl Actor for LateSpawner {
    type Msg = Msg;

    async fn post_stop(&mut self, ctx: &mut Context<Self>) {
        let log = log();
        let _ = self.outcome.send(ctx.spawn("late", props(Vec::new(), &log)).map(drop));
    }

    async fn handle(&mut self, _msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_stopping_actor_accepts_no_new_children() {
    let system = system("lc-stopping-parent");
    let (tx, mut rx) = probe();
    let a = system
        .spawn("a", Props::new(move || LateSpawner { outcome: tx.clone() }))
        .unwrap();
    a.stop();
    assert_eq!(
        rx.next("post_stop to try a spawn").await,
        Err(SpawnError::ParentStopping)
    );
    wait("a to terminate", a.terminated()).await;
    shutdown(&system).await;
}

#[tokio::test]
async fn duplicate_and_invalid_names_are_rejected() {
    let system = system("lc-names");
    let log = log();
    let first = system.spawn("dup", props(Vec::new(), &log)).unwrap();
    assert_eq!(
        system.spawn("dup", props(Vec::new(), &log)).unwrap_err(),
        SpawnError::NameTaken("dup".into())
    );
    // The same rule for children of an actor.
    spawn_child(&first, "kid").await.expect("first child spawns");
    assert_eq!(
        spawn_child(&first, "kid").await.unwrap_err(),
        SpawnError::NameTaken("kid".into())
    );
    // The same name under another parent is fine.
    let other = system.spawn("other", props(Vec::new(), &log)).unwrap();
    spawn_child(&other, "kid")
        .await
        .expect("a name is unique per parent only");

    for bad in ["", "a/b", "$a", "a b", "a#1", "a?b", "a@b"] {
        match system.spawn(bad, props(Vec::new(), &log)) {
            Err(SpawnError::InvalidName { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?} should be an invalid name, got {other:?}"),
        }
    }
    // Anonymous actors get generated names that users cannot choose.
    let anon = system.spawn_anonymous(props(Vec::new(), &log)).unwrap();
    assert!(anon.path().name().starts_with('$'), "{anon}");
    assert_eq!(system.live_actors(), 5);
    shutdown(&system).await;
}

#[tokio::test]
async fn names_stay_found_and_taken_as_the_children_table_grows_and_shrinks() {
    let system = system("lc-many-names");
    let log = log();
    let refs: Vec<_> = (0..2_000)
        .map(|i| system.spawn(&format!("n{i}"), props(Vec::new(), &log)).unwrap())
        .collect();
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(
            system.lookup::<Msg>(&format!("/user/n{i}")).as_ref(),
            Ok(r),
            "n{i} after growth"
        );
    }
    assert_eq!(
        system.spawn("n1999", props(Vec::new(), &log)).unwrap_err(),
        SpawnError::NameTaken("n1999".into())
    );
    // Stopping most of them shrinks the table; the rest must still be found.
    for r in &refs[100..] {
        r.stop();
    }
    for (i, r) in refs[100..].iter().enumerate() {
        wait(&format!("n{} to terminate", i + 100), r.terminated()).await;
    }
    for (i, r) in refs[..100].iter().enumerate() {
        assert_eq!(
            system.lookup::<Msg>(&format!("/user/n{i}")).as_ref(),
            Ok(r),
            "n{i} after shrinking"
        );
    }
    assert!(matches!(
        system.lookup::<Msg>("/user/n100"),
        Err(LookupError::NotFound(_))
    ));
    shutdown(&system).await;
}

/// `SpawnError::NameTaken` documents: "Names are freed when the previous
/// holder has terminated (await its `terminated()`)".
async fn name_reuse_after_terminated() {
    let system = system("lc-name-reuse");
    let log = log();
    let parent = system.spawn("parent", props(Vec::new(), &log)).unwrap();
    for round in 0..200 {
        let a = system.spawn("reused", props(Vec::new(), &log)).unwrap_or_else(|e| {
            panic!("round {round}: the name should be free once the previous holder terminated: {e}")
        });
        let kid = spawn_child(&parent, "kid").await.unwrap_or_else(|e| {
            panic!("round {round}: the child name should be free once the previous child terminated: {e}")
        });
        a.stop();
        kid.stop();
        wait("the holder to terminate", a.terminated()).await;
        wait("the child to terminate", kid.terminated()).await;
    }
    shutdown(&system).await;
}

#[tokio::test]
async fn a_name_is_free_again_once_its_holder_has_terminated() {
    name_reuse_after_terminated().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_free_again_once_its_holder_has_terminated_multi_thread() {
    name_reuse_after_terminated().await;
}

#[tokio::test]
async fn lookup_by_path_returns_a_typed_ref() {
    let system = system("lc-lookup");
    let log = log();
    let a = system.spawn("a", props(vec![leaf("b")], &log)).unwrap();
    ping(&a).await; // pre_start (which spawns b) has run
    assert_eq!(a.ask(Msg::Children, common::WAIT).await.unwrap(), ["b"]);

    let b = system.lookup::<Msg>("/user/a/b").expect("relative path");
    ping(&b).await;
    assert_eq!(b.path().name(), "b");
    assert_eq!(b.path().parent(), Some(a.path()));
    assert_eq!(system.lookup::<Msg>(&b.to_string()).unwrap(), b, "full path with uid");
    assert_eq!(
        system.lookup::<Msg>(&b.path().without_uid()).unwrap(),
        b,
        "full path, no uid"
    );
    assert_eq!(system.lookup::<Msg>("user/a/b").unwrap(), b, "no leading slash");

    let any = system.lookup_any("/user/a/b").unwrap();
    assert_eq!(any.message_type(), std::any::type_name::<Msg>());
    assert_eq!(any.downcast::<Msg>().unwrap(), b);
    assert_eq!(AnyActorRef::from(&b), any);

    // Wrong message type: an error naming both types, not a panic.
    match system.lookup::<u32>("/user/a/b") {
        Err(LookupError::WrongType { path, expected, actual }) => {
            assert!(path.contains("/user/a/b"), "{path}");
            assert_eq!(expected, "u32");
            assert_eq!(actual, std::any::type_name::<Msg>());
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert!(matches!(any.downcast::<String>(), Err(LookupError::WrongType { .. })));

    assert!(matches!(
        system.lookup::<Msg>("/user/a/zzz"),
        Err(LookupError::NotFound(_))
    ));
    assert!(matches!(
        system.lookup::<Msg>("/system/a"),
        Err(LookupError::NotFound(_))
    ));
    let stale = format!("{}#{}", b.path().without_uid(), b.path().uid().wrapping_add(1));
    assert!(
        matches!(system.lookup::<Msg>(&stale), Err(LookupError::NotFound(_))),
        "another incarnation's uid must not match"
    );
    assert!(matches!(
        system.lookup::<Msg>("compaktor://elsewhere@127.0.0.1:0/user/a"),
        Err(LookupError::NotLocal(_))
    ));
    assert!(matches!(
        system.lookup::<Msg>("compaktor://no-port/user/a"),
        Err(LookupError::InvalidPath(_))
    ));

    // A stopped actor is no longer found.
    b.stop();
    wait("b to terminate", b.terminated()).await;
    assert!(
        matches!(system.lookup::<Msg>("/user/a/b"), Err(LookupError::NotFound(_))),
        "a terminated actor is not found"
    );
    assert!(a.ask(Msg::Children, common::WAIT).await.unwrap().is_empty());
    shutdown(&system).await;
}

// Refs hash by path, which never changes; clippy cannot see that through
// the ref's shared cell (users keying maps by refs need the same allow).
#[allow(clippy::mutable_key_type)]
#[tokio::test]
async fn refs_display_as_their_path_and_compare_by_it() {
    let mut config = SystemConfig::new("disp");
    config.host = "10.0.0.7".into();
    config.port = 2552;
    let system = ActorSystem::new(config).unwrap();
    let log = log();
    let a = system.spawn("a", props(vec![leaf("b")], &log)).unwrap();
    ping(&a).await;
    let b = system.lookup::<Msg>("/user/a/b").unwrap();

    let uid = b.path().uid();
    assert_ne!(uid, 0);
    assert_eq!(b.to_string(), format!("compaktor://disp@10.0.0.7:2552/user/a/b#{uid}"));
    assert_eq!(b.path().address().to_string(), "compaktor://disp@10.0.0.7:2552");
    let parsed: ActorPath = b.to_string().parse().unwrap();
    assert_eq!(&parsed, b.path());
    assert_ne!(a.path().uid(), uid, "uids are unique");

    let mut set = HashSet::new();
    set.insert(a.clone());
    set.insert(b.clone());
    set.insert(b.clone());
    set.insert(system.lookup::<Msg>("/user/a/b").unwrap());
    assert_eq!(set.len(), 2);
    assert!(set.contains(&b));
    assert_ne!(a, b);
    let anys: HashSet<AnyActorRef> = [a.as_any(), b.as_any(), AnyActorRef::from(&b)].into_iter().collect();
    assert_eq!(anys.len(), 2);

    // A new actor at the same path is a different incarnation: a different ref.
    let x = system.spawn("x", props(Vec::new(), &log)).unwrap();
    x.stop();
    wait("x to terminate", x.terminated()).await;
    let again = system.spawn("x", props(Vec::new(), &log)).unwrap();
    assert_ne!(again, x);
    assert!(again.path().same_place(x.path()));
    shutdown(&system).await;
}
