//! Two or three nodes in one process, each with its own actor system and
//! QUIC endpoint on 127.0.0.1, talking over real mutual-TLS connections.

use std::future::Future;
use std::time::Duration;

use compaktor_actor::{
    Actor, ActorError, ActorRef, Context, DeadLetter, DeadLetterReason, EventSubscriber, Props, ReplyTo, TryTellError,
};
use compaktor_remote::{CertificateAuthority, NodeIdentity, Registry, RemoteConfig, RemoteNode, UndeliveredFrame};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

#[derive(Debug, Serialize, Deserialize)]
enum Seq {
    /// A numbered message.
    Next(u64),
    /// Answer with how many arrived and whether they were in order.
    Report(ReplyTo<(u64, bool)>),
    /// Tell `to` the count so far.
    ReportTo(ActorRef<Count>),
    /// A large blob.
    Blob(Vec<u8>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Count(u64);

/// Only the sending node registers this type.
#[derive(Debug, Serialize, Deserialize)]
struct Unknown(u64);

#[derive(Default)]
struct Collector {
    seen: u64,
    in_order: bool,
}

impl Actor for Collector {
    type Msg = Seq;

    async fn pre_start(&mut self, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.in_order = true;
        Ok(())
    }

    async fn handle(&mut self, msg: Seq, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Seq::Next(n) => {
                self.in_order &= n == self.seen;
                self.seen += 1;
            }
            Seq::Report(reply) => {
                let _ = reply.send((self.seen, self.in_order));
            }
            Seq::ReportTo(to) => to.tell(Count(self.seen)),
            Seq::Blob(_) => {}
        }
        Ok(())
    }
}

/// Forwards what it gets to the test.
struct Probe(tokio::sync::mpsc::UnboundedSender<Count>);

impl Actor for Probe {
    type Msg = Count;

    async fn handle(&mut self, msg: Count, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.0.send(msg);
        Ok(())
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Seq>("test.Seq")
        .register::<Count>("test.Count")
        .register::<(u64, bool)>("test.Report");
    registry
}

async fn node(name: &str, identity: NodeIdentity, registry: Registry) -> RemoteNode {
    let mut config = RemoteConfig::new(name, identity);
    config.max_frame = 64 * 1024;
    // Room for the whole ordering burst: overflow is tested on its own.
    config.send_queue = 200_000;
    RemoteNode::start(config, registry).await.expect("node starts")
}

async fn pair(ca: &CertificateAuthority) -> (RemoteNode, RemoteNode) {
    (
        node("a", ca.issue().unwrap(), registry()).await,
        node("b", ca.issue().unwrap(), registry()).await,
    )
}

async fn report(target: &ActorRef<Seq>) -> (u64, bool) {
    target.ask(Seq::Report, WAIT).await.expect("report")
}

/// The next dead letter matching `pred`.
async fn dead_letter(
    events: &mut EventSubscriber<DeadLetter>,
    what: &str,
    pred: impl Fn(&DeadLetter) -> bool,
) -> DeadLetter {
    within(what, async {
        loop {
            let letter = events.recv().await.expect("dead letter stream");
            if pred(&letter) {
                return letter;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_tells_arrive_in_order_and_ask_works_across_nodes() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let (a, b) = pair(&ca).await;
    let collector = b.system().spawn("collector", Props::<Collector>::default()).unwrap();
    let remote = a.ref_to::<Seq>(&collector.path().to_string()).unwrap();
    assert!(remote.is_remote());
    assert_eq!(remote.path(), collector.path());
    for n in 0..100_000 {
        remote.tell(Seq::Next(n));
    }
    let (seen, in_order) = within("the remote report", report(&remote)).await;
    assert_eq!(seen, 100_000, "every message arrived before the ask that followed them");
    assert!(in_order, "messages from one sender arrive in the order sent");
    assert_eq!(a.system().dead_letter_stats().total, 0);
    a.shutdown().await;
    b.shutdown().await;
}

/// A lone message after a pause is written by its sender, a burst goes
/// through the writer task; large blobs fill quinn's send window so that
/// some lone messages find the stream blocked. One order throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_messages_and_bursts_from_one_sender_keep_their_order() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let (a, b) = pair(&ca).await;
    let collector = b.system().spawn("collector", Props::<Collector>::default()).unwrap();
    let remote = a.ref_to::<Seq>(&collector.path().to_string()).unwrap();
    let mut n = 0;
    for round in 0..200 {
        // Each pause is longer than the gap between two sender writes.
        tokio::time::sleep(Duration::from_micros(200)).await;
        remote.tell(Seq::Next(n));
        n += 1;
        for i in 0..(round % 7) * 50 {
            if i % 25 == 0 {
                remote.tell(Seq::Blob(vec![7; 32 * 1024]));
            }
            remote.tell(Seq::Next(n));
            n += 1;
        }
    }
    let (seen, in_order) = within("the remote report", report(&remote)).await;
    assert_eq!(seen, n, "every message arrived before the ask that followed them");
    assert!(in_order, "messages from one sender arrive in the order sent");
    assert_eq!(a.system().dead_letter_stats().total, 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_ref_inside_a_message_reaches_back_to_its_node() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let (a, b) = pair(&ca).await;
    let collector = b.system().spawn("collector", Props::<Collector>::default()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let probe = a
        .system()
        .spawn("probe", Props::new(move || Probe(tx.clone())))
        .unwrap();
    let remote = a.ref_to::<Seq>(&collector.path().to_string()).unwrap();
    remote.tell(Seq::Next(0));
    remote.tell(Seq::ReportTo(probe.clone()));
    let Count(n) = within("the count told to the ref sent along", rx.recv()).await.unwrap();
    assert_eq!(n, 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_unknown_manifest_is_a_dead_letter_and_the_connection_keeps_working() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let mut sender_types = registry();
    sender_types.register::<Unknown>("test.Unknown");
    let a = node("a", ca.issue().unwrap(), sender_types).await;
    let b = node("b", ca.issue().unwrap(), registry()).await;
    let mut dead = b.system().event_stream().subscribe::<DeadLetter>();
    let collector = b.system().spawn("collector", Props::<Collector>::default()).unwrap();
    let path = collector.path().to_string();

    a.ref_to::<Unknown>(&path).unwrap().tell(Unknown(7));
    let remote = a.ref_to::<Seq>(&path).unwrap();
    remote.tell(Seq::Next(0));

    let letter = dead_letter(&mut dead, "the undecodable dead letter", |d| {
        d.reason() == DeadLetterReason::Undecodable
    })
    .await;
    assert_eq!(letter.recipient(), collector.path());
    let frame = letter.take::<UndeliveredFrame>().expect("the frame is kept");
    assert_eq!(frame.manifest, "test.Unknown");
    assert_eq!(frame.error, "unknown manifest");
    assert_eq!(within("the report", report(&remote)).await, (1, true));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_oversized_message_fails_with_a_typed_error_and_a_dead_letter_and_nothing_else_breaks() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let (a, b) = pair(&ca).await;
    let mut dead = a.system().event_stream().subscribe::<DeadLetter>();
    let collector = b.system().spawn("collector", Props::<Collector>::default()).unwrap();
    let remote = a.ref_to::<Seq>(&collector.path().to_string()).unwrap();

    match remote.try_tell(Seq::Blob(vec![0; 100 * 1024])) {
        Err(TryTellError::TooLarge(Seq::Blob(blob))) => assert_eq!(blob.len(), 100 * 1024),
        other => panic!("expected TooLarge with the message back, got {other:?}"),
    }
    remote.tell(Seq::Blob(vec![0; 100 * 1024]));
    let letter = dead_letter(&mut dead, "the oversized dead letter", |d| {
        d.reason() == DeadLetterReason::TooLarge
    })
    .await;
    assert!(
        matches!(letter.take::<Seq>(), Some(Seq::Blob(_))),
        "the dead letter keeps the message"
    );
    let asked = remote
        .ask(|_reply: ReplyTo<(u64, bool)>| Seq::Blob(vec![0; 100 * 1024]), WAIT)
        .await;
    assert_eq!(asked.unwrap_err(), compaktor_actor::AskError::TooLarge);

    remote.tell(Seq::Next(0));
    assert_eq!(within("the report", report(&remote)).await, (1, true));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_remote_actor_that_stops_delivers_terminated_to_its_watcher() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let (a, b) = pair(&ca).await;
    let collector = b.system().spawn("collector", Props::<Collector>::default()).unwrap();
    let remote = a.ref_to::<Seq>(&collector.path().to_string()).unwrap();
    let terminated = remote.terminated();
    // Make sure the watch has arrived before the stop overtakes it.
    within("the report", report(&remote)).await;
    remote.stop();
    let t = within("the remote Terminated", terminated).await;
    assert_eq!(t.actor(), collector.path());
    assert!(remote.is_terminated());
    within("the actor to stop on its own node", collector.terminated()).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Sends to `target` from a node built with `identity` and expects every
/// message to be refused: it becomes a dead letter on the sender, and the
/// receiver never sees it.
async fn refused(identity: NodeIdentity, target: &RemoteNode, collector: &ActorRef<Seq>) {
    let intruder = node("intruder", identity, registry()).await;
    let mut dead = intruder.system().event_stream().subscribe::<DeadLetter>();
    intruder
        .ref_to::<Seq>(&collector.path().to_string())
        .unwrap()
        .tell(Seq::Next(0));
    dead_letter(&mut dead, "the refused message to come back as a dead letter", |d| {
        d.reason() == DeadLetterReason::Unreachable
    })
    .await;
    intruder.shutdown().await;
    assert!(
        target.system().dead_letter_stats().total == 0,
        "nothing reached the target"
    );
}

#[tokio::test]
async fn peers_without_a_valid_certificate_from_our_ca_cannot_send_a_message() {
    let ca = CertificateAuthority::generate("t").unwrap();
    let (a, b) = pair(&ca).await;
    let collector = b.system().spawn("collector", Props::<Collector>::default()).unwrap();

    let other_ca = CertificateAuthority::generate("other").unwrap();
    refused(other_ca.issue().unwrap(), &b, &collector).await;
    refused(ca.issue_expired().unwrap(), &b, &collector).await;

    // Nothing got through, and the legitimate peer is still served.
    let remote = a.ref_to::<Seq>(&collector.path().to_string()).unwrap();
    assert_eq!(within("the report", report(&remote)).await, (0, true));
    a.shutdown().await;
    b.shutdown().await;
}
