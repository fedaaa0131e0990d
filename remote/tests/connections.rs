//! The connection between two nodes: one per pair however they start
//! talking, and a live peer sending garbage cannot break it for anyone.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use compaktor_actor::{Actor, ActorError, Context, DeadLetter, DeadLetterReason, Props, ReplyTo};
use compaktor_remote::{CertificateAuthority, Registry, RemoteConfig, RemoteNode, SERVER_NAME};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

#[derive(Serialize, Deserialize)]
struct Ping(u64, ReplyTo<u64>);

struct Echo;

impl Actor for Echo {
    type Msg = Ping;

    async fn handle(&mut self, Ping(n, reply): Ping, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = reply.send(n);
        Ok(())
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register::<Ping>("test.Ping").register::<u64>("u64");
    registry
}

async fn node(ca: &CertificateAuthority, name: &str) -> RemoteNode {
    RemoteNode::start(RemoteConfig::new(name, ca.issue().unwrap()), registry())
        .await
        .expect("node starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_dial_each_other_at_once_keep_one_connection() {
    let ca = CertificateAuthority::generate("t").unwrap();
    for round in 0..5 {
        let a = node(&ca, "a").await;
        let b = node(&ca, "b").await;
        let echo_a = a.system().spawn("echo", Props::new(|| Echo)).unwrap();
        let echo_b = b.system().spawn("echo", Props::new(|| Echo)).unwrap();
        let to_b = a.ref_to::<Ping>(&echo_b.path().to_string()).unwrap();
        let to_a = b.ref_to::<Ping>(&echo_a.path().to_string()).unwrap();
        // Both ask at once: both dial.
        let (x, y) = tokio::join!(to_b.ask(|r| Ping(1, r), WAIT), to_a.ask(|r| Ping(2, r), WAIT));
        assert_eq!((x.expect("a asks b"), y.expect("b asks a")), (1, 2), "round {round}");
        let (pa, pb) = (a.peers(), b.peers());
        assert_eq!((pa.len(), pb.len()), (1, 1), "round {round}: {pa:?} {pb:?}");
        assert!(pa[0].connected && pb[0].connected, "round {round}: {pa:?} {pb:?}");
        // Exactly one side dialed the connection both use.
        assert_ne!(pa[0].dialed_by_us, pb[0].dialed_by_us, "round {round}: {pa:?} {pb:?}");
        a.shutdown().await;
        b.shutdown().await;
    }
}

/// A frame as the wire format has it (see `frame.rs`).
fn frame(out: &mut BytesMut, kind: u8, fields: [&str; 3], payload: &[u8]) {
    let len = 1 + fields.iter().map(|f| 2 + f.len()).sum::<usize>() + payload.len();
    out.put_u32_le(len as u32);
    out.put_u8(kind);
    for field in fields {
        out.put_u16_le(field.len() as u16);
        out.put_slice(field.as_bytes());
    }
    out.put_slice(payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_frames_from_a_live_peer_are_dead_letters_and_nothing_breaks() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let server = node(&ca, "server").await;
    let friend = node(&ca, "friend").await;
    let echo = server.system().spawn("echo", Props::new(|| Echo)).unwrap();
    let mut dead = server.system().event_stream().subscribe::<DeadLetter>();

    // A peer with a valid certificate that speaks raw QUIC.
    let identity = ca.issue().unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(identity.client_config().unwrap());
    let me = endpoint.local_addr().unwrap();
    let connection = within("the raw connection", async {
        endpoint.connect(server.local_addr(), SERVER_NAME).unwrap().await
    })
    .await
    .expect("a valid certificate connects");
    let mut stream = connection.open_uni().await.unwrap();
    let mut bytes = BytesMut::new();
    let root = format!("compaktor://raw@{me}/");
    let incarnation = "6f1c1f0e-0000-4000-8000-000000000001";
    frame(&mut bytes, 1, [&root, "", incarnation], &[]);
    stream.write_all(&bytes).await.unwrap();
    // The node keeps the connection: its hello comes back.
    within("the node's hello", connection.accept_uni())
        .await
        .expect("hello stream");

    bytes.clear();
    frame(&mut bytes, 99, ["x", "", ""], &[]); // unknown kind
    bytes.put_u32_le(3);
    bytes.put_slice(&[2, 9, 0]); // truncated field
    let recipient = echo.path().to_string();
    frame(&mut bytes, 2, [&recipient, "", "no.such.Type"], &[1, 2, 3]); // unknown manifest
    frame(&mut bytes, 2, [&recipient, "", "test.Ping"], &[0xff; 3]); // undecodable payload
    stream.write_all(&bytes).await.unwrap();

    let mut undecodable = 0;
    within("four undecodable dead letters", async {
        while undecodable < 4 {
            let letter = dead.recv().await.expect("dead letters");
            if letter.reason() == DeadLetterReason::Undecodable {
                undecodable += 1;
            }
        }
    })
    .await;

    // An impossible length ends that stream only; the node serves on.
    bytes.clear();
    bytes.put_u32_le(u32::MAX);
    stream.write_all(&bytes).await.unwrap();
    let remote = friend.ref_to::<Ping>(&recipient).unwrap();
    let n = within("an ask from another node", remote.ask(|r| Ping(9, r), WAIT))
        .await
        .expect("the node still answers");
    assert_eq!(n, 9);
    connection.close(0u32.into(), b"done");
    server.shutdown().await;
    friend.shutdown().await;
}

/// Polls `cond` until it holds; for state that has no event to await.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Watches one actor from the moment it starts.
struct Watcher(compaktor_actor::ActorRef<Ping>);

impl Actor for Watcher {
    type Msg = ();

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ctx.watch(&self.0);
        Ok(())
    }

    async fn handle(&mut self, _: (), _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_first_releases_the_remote_watch_on_both_nodes() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let a = node(&ca, "a").await;
    let b = node(&ca, "b").await;
    let echo = b.system().spawn("echo", Props::new(|| Echo)).unwrap();
    let path = echo.path().to_string();
    let remote = a.ref_to::<Ping>(&path).unwrap();
    let watcher = a
        .system()
        .spawn("watcher", Props::new(move || Watcher(remote.clone())))
        .unwrap();
    eventually("the watcher to start watching", || {
        a.peers().first().is_some_and(|p| p.watches == 1)
    })
    .await;
    // A look-up travels on the same stream as the watch, after it.
    within("a look-up", a.lookup::<Ping>(&path)).await.unwrap();
    assert_eq!(b.peers()[0].watched_by_peer, 1, "{:?}", b.peers());

    watcher.stop();
    within("the watcher to stop", watcher.terminated()).await;
    eventually("the watch to be dropped on the watching node", || {
        a.peers()[0].watches == 0
    })
    .await;
    within("a look-up", a.lookup::<Ping>(&path)).await.unwrap();
    assert_eq!(b.peers()[0].watched_by_peer, 0, "{:?}", b.peers());
    a.shutdown().await;
    b.shutdown().await;
}

#[derive(Serialize, Deserialize)]
enum Mixed {
    Blob(Vec<u8>),
    Small(u64),
    Report(ReplyTo<(u64, u64)>),
}

/// Counts small messages and bytes of blobs.
#[derive(Default)]
struct Tally {
    small: u64,
    blob_bytes: u64,
}

impl Actor for Tally {
    type Msg = Mixed;

    async fn handle(&mut self, msg: Mixed, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Mixed::Blob(bytes) => self.blob_bytes += bytes.len() as u64,
            Mixed::Small(_) => self.small += 1,
            Mixed::Report(reply) => {
                let _ = reply.send((self.small, self.blob_bytes));
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_travel_beside_small_ones_and_both_arrive() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let registry = || {
        let mut registry = Registry::new();
        registry
            .register::<Mixed>("test.Mixed")
            .register::<(u64, u64)>("test.Tally");
        registry
    };
    let config = |name: &str| {
        let mut config = RemoteConfig::new(name, ca.issue().unwrap());
        config.large_message = 4 * 1024;
        config
    };
    let a = RemoteNode::start(config("a"), registry()).await.unwrap();
    let b = RemoteNode::start(config("b"), registry()).await.unwrap();
    let tally = b.system().spawn("tally", Props::<Tally>::default()).unwrap();
    let remote = a.ref_to::<Mixed>(&tally.path().to_string()).unwrap();
    for i in 0..8u64 {
        remote.tell(Mixed::Blob(vec![7; 1 << 20]));
        for n in 0..100 {
            remote.tell(Mixed::Small(i * 100 + n));
        }
    }
    within("every small and large message", async {
        loop {
            let (small, bytes) = remote.ask(Mixed::Report, WAIT).await.expect("report");
            if small == 800 && bytes == 8 << 20 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(a.system().dead_letter_stats().total, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_full_send_queue_refuses_with_full_and_counts_dead_letters_as_mailbox_full() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let mut config = RemoteConfig::new("a", ca.issue().unwrap());
    config.send_queue = 4;
    let a = RemoteNode::start(config, registry()).await.unwrap();
    // Nobody listens there: messages wait in the queue while dialing.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = a
        .ref_to::<u64>(&format!("compaktor://b@127.0.0.1:{port}/user/sink"))
        .unwrap();
    let mut full = 0;
    for n in 0..100u64 {
        match nowhere.try_tell(n) {
            Err(compaktor_actor::TryTellError::Full(_)) => full += 1,
            Err(other) => panic!("unexpected refusal: {other}"),
            Ok(()) => {}
        }
    }
    assert!(full >= 90, "only {full} of 100 refused as full with a queue of 4");
    nowhere.tell(100);
    assert!(a.system().dead_letter_stats().mailbox_full >= 1);
    a.shutdown().await;
}
