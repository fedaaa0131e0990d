//! Nodes as real OS processes (`compaktor-node`) talking QUIC with mutual
//! TLS on 127.0.0.1 to a node inside the test: asks, refs inside messages,
//! typed look-ups, remote spawn, and what a watcher sees when a node
//! process is killed, shut down, or restarted as a new incarnation.

mod support;

use std::time::{Duration, Instant};

use compaktor::remote::RemoteError;
use compaktor::{Actor, ActorError, ActorRef, AskError, Context, LookupError, Props, ReplyTo, StopReason, Terminated};
use support::protocol::{Count, Echo};
use support::{certificates, free_port, local_config, local_node, start_local, within, NodeProcess};
use tokio::sync::mpsc;

/// Forwards what it gets to the test.
struct Probe(mpsc::UnboundedSender<u64>);

impl Actor for Probe {
    type Msg = u64;

    async fn handle(&mut self, n: u64, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.0.send(n);
        Ok(())
    }
}

/// Watches the echo refs it is sent, answering once it watches, and
/// forwards each `Terminated` it gets to the test.
struct Watcher(mpsc::UnboundedSender<Terminated>);

impl Actor for Watcher {
    type Msg = (ActorRef<Echo>, ReplyTo<()>);

    async fn handle(&mut self, (target, watching): Self::Msg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ctx.watch(&target);
        let _ = watching.send(());
        Ok(())
    }

    async fn on_terminated(&mut self, t: Terminated, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.0.send(t);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_process_answers_asks_typed_lookups_and_remote_spawns() {
    let certs = certificates("serve", &["local", "remote"]);
    let remote = NodeProcess::start(&certs, "remote", free_port()).await;
    let local = local_node(&certs, "local").await;

    let echo = within("the echo look-up", local.lookup::<Echo>(&remote.path("echo")))
        .await
        .expect("echo is there");
    let n = within("an ask across processes", echo.ask(|r| Echo::Ping(7, r), support::WAIT))
        .await
        .expect("echo answers");
    assert_eq!(n, 7);

    // A ref inside a message reaches back to this process.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let probe = local
        .system()
        .spawn("probe", Props::new(move || Probe(tx.clone())))
        .unwrap();
    echo.tell(Echo::PingTo(42, probe));
    assert_eq!(within("the reply through a ref", rx.recv()).await, Some(42));

    // Look-ups check existence and type on the other node.
    let missing = local.lookup::<Echo>(&remote.path("nobody")).await;
    assert!(
        matches!(missing, Err(RemoteError::Lookup(LookupError::NotFound(_)))),
        "{missing:?}"
    );
    let wrong = local.lookup::<Count>(&remote.path("echo")).await;
    assert!(matches!(wrong, Err(RemoteError::WrongType { .. })), "{wrong:?}");

    // Remote spawn from a factory registered there.
    let counter = local
        .spawn_remote::<Count, u64>(remote.addr, "counter", Some("c1"), 5)
        .await
        .expect("counter spawned remotely");
    assert!(counter.path().to_string().starts_with(&remote.path("c1")));
    counter.tell(Count::Add(2));
    assert_eq!(counter.ask(Count::Get, support::WAIT).await.expect("count"), 7);
    let taken = local
        .spawn_remote::<Count, u64>(remote.addr, "counter", Some("c1"), 0)
        .await;
    assert!(matches!(taken, Err(RemoteError::Spawn(_))), "{taken:?}");
    let unknown = local.spawn_remote::<Count, u64>(remote.addr, "nope", None, 0).await;
    assert!(matches!(unknown, Err(RemoteError::NoFactory(_))), "{unknown:?}");
    let mistyped = local.spawn_remote::<Echo, u64>(remote.addr, "counter", None, 0).await;
    assert!(matches!(mistyped, Err(RemoteError::WrongType { .. })), "{mistyped:?}");

    // One connection between the two, whoever dialed.
    let peers = local.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert!(peers[0].connected);
    assert_eq!(
        peers[0].incarnation.map(|i| i.to_string()),
        Some(remote.incarnation.clone())
    );
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_process_ends_its_watches_as_unreachable_within_seconds() {
    let certs = certificates("kill", &["local", "remote"]);
    let mut remote = NodeProcess::start(&certs, "remote", free_port()).await;
    let local = local_node(&certs, "local").await;
    let echo = within("the echo look-up", local.lookup::<Echo>(&remote.path("echo")))
        .await
        .expect("echo is there");
    let terminated = echo.terminated();
    // The watch is a system message: once an ask has made the round trip
    // after it, it has arrived.
    within("an ask", echo.ask(|r| Echo::Ping(1, r), support::WAIT))
        .await
        .expect("echo answers");

    let killed = Instant::now();
    remote.kill().await;
    let t = within("Terminated after the node process was killed", terminated).await;
    let noticed = killed.elapsed();
    assert!(matches!(t.reason(), StopReason::Unreachable), "{t}");
    assert!(echo.is_terminated());
    eprintln!("killed node noticed after {noticed:?}");
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_is_a_new_incarnation_and_old_refs_are_never_misdelivered() {
    let certs = certificates("restart", &["local", "remote"]);
    let port = free_port();
    let mut first = NodeProcess::start(&certs, "remote", port).await;
    let local = local_node(&certs, "local").await;
    let old = within("the echo look-up", local.lookup::<Echo>(&first.path("echo")))
        .await
        .expect("echo is there");
    let terminated = old.terminated();
    within("an ask", old.ask(|r| Echo::Ping(1, r), support::WAIT))
        .await
        .expect("echo answers");

    // A graceful stop stops the actor and tells its watchers before the
    // connection closes.
    let stopped = Instant::now();
    first.terminate().await;
    let t = within("Terminated after the node shut down", terminated).await;
    assert!(matches!(t.reason(), StopReason::Stopped), "{t}");
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "took {:?}",
        stopped.elapsed()
    );

    let second = NodeProcess::start(&certs, "remote", port).await;
    assert_ne!(second.incarnation, first.incarnation);

    // The old ref names the old incarnation's actor (its uid): the new node
    // does not deliver to it, and a look-up of that exact path finds nothing.
    let lost = old.ask(|r| Echo::Ping(2, r), Duration::from_secs(1)).await;
    assert!(matches!(lost, Err(AskError::Timeout)), "{lost:?}");
    let exact = local.lookup::<Echo>(&old.path().to_string()).await;
    assert!(
        matches!(exact, Err(RemoteError::Lookup(LookupError::NotFound(_)))),
        "{exact:?}"
    );

    // The same name on the new incarnation works over a fresh connection.
    let new = within("the new echo look-up", local.lookup::<Echo>(&second.path("echo")))
        .await
        .expect("the new echo is there");
    assert_ne!(new.path(), old.path());
    let n = new
        .ask(|r| Echo::Ping(3, r), support::WAIT)
        .await
        .expect("new echo answers");
    assert_eq!(n, 3);
    let peers = local.peers();
    assert_eq!(
        peers[0].incarnation.map(|i| i.to_string()),
        Some(second.incarnation.clone())
    );
    local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_and_restarted_at_once_ends_its_watches_once_and_serves_fresh_lookups() {
    let certs = certificates("reincarnate", &["local", "remote"]);
    let port = free_port();
    let mut first = NodeProcess::start(&certs, "remote", port).await;
    // A patient failure detector, so that the restart below surely comes
    // before it gives up, even on a loaded machine.
    let mut config = local_config(&certs, "local");
    config.acceptable_heartbeat_pause = Duration::from_secs(3);
    let local = start_local(config).await;
    let old = within("the echo look-up", local.lookup::<Echo>(&first.path("echo")))
        .await
        .expect("echo is there");
    let (tx, mut terminations) = mpsc::unbounded_channel();
    let watcher = local
        .system()
        .spawn("watcher", Props::new(move || Watcher(tx.clone())))
        .unwrap();
    within(
        "the watcher to watch echo",
        watcher.ask(|r| (old.clone(), r), support::WAIT),
    )
    .await
    .expect("the watcher answers");
    within("an ask", old.ask(|r| Echo::Ping(1, r), support::WAIT))
        .await
        .expect("echo answers");

    // SIGKILL, then a new incarnation on the same port before the failure
    // detector (heartbeats every 200 ms, 3 s of acceptable pause) could
    // give up on the old one. The new process has the same identity, so it
    // answers the old connection's next packet with a stateless reset: the
    // connection is seen to close, a redial meets the new incarnation, and
    // the watch ends with `ConnectionLost`. The detector would have said
    // `Unreachable`, seconds later.
    let killed = Instant::now();
    first.kill().await;
    let second = NodeProcess::start(&certs, "remote", port).await;
    let restarted = killed.elapsed();
    assert_ne!(second.incarnation, first.incarnation);
    let t = within(
        "Terminated after the node process was killed and restarted",
        terminations.recv(),
    )
    .await
    .expect("the watcher is alive");
    let noticed = killed.elapsed();
    assert_eq!(t.actor(), old.path());
    assert!(
        matches!(t.reason(), StopReason::ConnectionLost),
        "{t} (the restart took {restarted:?}; the detector gives up after about 3 s)"
    );
    assert!(old.is_terminated());
    eprintln!("node restarted after {restarted:?}; its old actor's end noticed after {noticed:?}");

    // A fresh look-up dials the new incarnation and finds its echo (sent
    // after the old incarnation was declared gone, it is not dropped as
    // the old one's), and the old incarnation's end is not reported a
    // second time: the watcher's answer comes after anything queued for it.
    let new = within("the new echo look-up", local.lookup::<Echo>(&second.path("echo")))
        .await
        .expect("the new echo is there");
    assert_ne!(new.path(), old.path());
    let n = within("an ask of the new echo", new.ask(|r| Echo::Ping(2, r), support::WAIT))
        .await
        .expect("the new echo answers");
    assert_eq!(n, 2);
    within(
        "the watcher to watch the new echo",
        watcher.ask(|r| (new.clone(), r), support::WAIT),
    )
    .await
    .expect("the watcher answers");
    assert!(terminations.try_recv().is_err(), "a second Terminated");
    let peers = local.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert!(peers[0].connected);
    assert_eq!(
        peers[0].incarnation.map(|i| i.to_string()),
        Some(second.incarnation.clone())
    );
    local.shutdown().await;
}
