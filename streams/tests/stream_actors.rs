//! Actors in streams: the ask stage, an actor as a backpressured source,
//! and a sink that waits for an actor's acknowledgements.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use compaktor_actor::{Actor, ActorError, ActorSystem, AskError, Context, Props, ReplyTo, SystemConfig};
use compaktor_streams::{ActorSourceRef, Decider, Flow, Keep, Sink, Source, StreamError};
use tokio::sync::mpsc;

const LONG: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(LONG, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn system(name: &str) -> ActorSystem {
    ActorSystem::new(SystemConfig::new(name)).expect("an actor system")
}

// ------------------------------------------------------------------ ask

enum HeldMsg {
    Request(u32, ReplyTo<u32>),
    Release,
}

/// Holds requests until released, then answers them newest first (so
/// replies arrive out of order); after that it answers at once.
struct Held {
    held: Vec<(u32, ReplyTo<u32>)>,
    released: bool,
    received: mpsc::UnboundedSender<usize>,
}

impl Actor for Held {
    type Msg = HeldMsg;
    async fn handle(&mut self, msg: HeldMsg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            HeldMsg::Request(n, reply) if self.released => {
                let _ = reply.send(n * 10);
            }
            HeldMsg::Request(n, reply) => {
                self.held.push((n, reply));
                let _ = self.received.send(self.held.len());
            }
            HeldMsg::Release => {
                self.released = true;
                while let Some((n, reply)) = self.held.pop() {
                    let _ = reply.send(n * 10);
                }
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn ask_keeps_parallelism_asks_outstanding_and_replies_in_order() {
    let system = system("ask-order");
    let (received_tx, mut received) = mpsc::unbounded_channel();
    let received_tx = Arc::new(std::sync::Mutex::new(Some(received_tx)));
    let actor = system
        .spawn(
            "held",
            Props::new(move || Held {
                held: Vec::new(),
                released: false,
                received: received_tx.lock().unwrap().take().expect("one start"),
            }),
        )
        .expect("spawn");
    let (all, monitor) = Source::from_iter(1..=10u32)
        .via(Flow::new().ask(actor.clone(), 3, LONG, HeldMsg::Request))
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();
    // Three asks go out at once, and no fourth while none is answered.
    loop {
        let held = within("the actor to receive three asks", received.recv())
            .await
            .expect("the actor is alive");
        if held == 3 {
            break;
        }
    }
    let stats = monitor.stats();
    assert_eq!(stats.stage("from_iter").expect("the source").elements_out, 3);
    assert_eq!(stats.stage("ask").expect("the ask stage").buffered, 3);
    actor.tell(HeldMsg::Release);
    let all = within("every reply", all).await.expect("the asks succeed");
    assert_eq!(all, (1..=10).map(|n| n * 10).collect::<Vec<_>>());
    system.shutdown().await.expect("shutdown");
}

enum EvenMsg {
    Request(u32, ReplyTo<u32>),
}

/// Answers even numbers; drops the reply handle of odd ones.
struct EvenOnly;

impl Actor for EvenOnly {
    type Msg = EvenMsg;
    async fn handle(
        &mut self,
        EvenMsg::Request(n, reply): EvenMsg,
        _ctx: &mut Context<Self>,
    ) -> Result<(), ActorError> {
        if n % 2 == 0 {
            let _ = reply.send(n);
        }
        Ok(())
    }
}

#[tokio::test]
async fn ask_failure_fails_the_stream_with_the_ask_error() {
    let system = system("ask-fail");
    let actor = system.spawn("even", Props::new(|| EvenOnly)).expect("spawn");
    let all = Source::from_iter([2, 4, 5, 6])
        .ask(actor, 2, LONG, EvenMsg::Request)
        .run_with(Sink::collect());
    let error = within("the failed ask", all)
        .await
        .expect_err("an unanswered ask fails");
    assert!(
        matches!(
            error,
            StreamError::Ask {
                stage: "ask",
                cause: AskError::NoReply
            }
        ),
        "{error:?}"
    );
    system.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn ask_failure_resumed_under_supervision() {
    let system = system("ask-resume");
    let actor = system.spawn("even", Props::new(|| EvenOnly)).expect("spawn");
    let (all, monitor) = Source::from_iter(1..=8u32)
        .ask(actor, 4, LONG, EvenMsg::Request)
        .with_supervision(Decider::resuming())
        .to_mat(Sink::collect(), Keep::right)
        .run_monitored();
    let all = within("the resumed asks", all).await.expect("resume goes on");
    assert_eq!(all, vec![2, 4, 6, 8]);
    assert_eq!(monitor.stats().stage("ask").expect("the ask stage").errors, 4);
    system.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn ask_timeout_fails_the_stream() {
    let system = system("ask-timeout");
    let (received_tx, _received) = mpsc::unbounded_channel();
    let received_tx = Arc::new(std::sync::Mutex::new(Some(received_tx)));
    let actor = system
        .spawn(
            "held",
            Props::new(move || Held {
                held: Vec::new(),
                released: false,
                received: received_tx.lock().unwrap().take().expect("one start"),
            }),
        )
        .expect("spawn");
    let all = Source::single(1)
        .ask(actor, 1, Duration::from_millis(50), HeldMsg::Request)
        .run_with(Sink::collect());
    let error = within("the ask to time out", all).await.expect_err("times out");
    assert!(
        matches!(
            error,
            StreamError::Ask {
                cause: AskError::Timeout,
                ..
            }
        ),
        "{error:?}"
    );
    system.shutdown().await.expect("shutdown");
}

// --------------------------------------------------- source and acking sink

enum ProducerMsg {
    Start(ActorSourceRef<u32>),
    Ack,
}

/// Sends 1..=last, each after the previous was acknowledged, then completes.
struct Producer {
    out: Option<ActorSourceRef<u32>>,
    next: u32,
    last: u32,
    sent: Arc<AtomicUsize>,
}

impl Actor for Producer {
    type Msg = ProducerMsg;
    async fn handle(&mut self, msg: ProducerMsg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if let ProducerMsg::Start(out) = msg {
            self.out = Some(out);
        }
        let Some(out) = &self.out else { return Ok(()) };
        self.next += 1;
        if self.next > self.last {
            out.complete();
        } else if out.tell(self.next).is_ok() {
            self.sent.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

enum ConsumerMsg {
    Element(u32, ReplyTo<()>),
    AckAll,
    Done,
    Failed(StreamError),
}

/// Keeps each element; acknowledges only once told to, then at once.
struct Consumer {
    pending: Option<ReplyTo<()>>,
    acking: bool,
    events: mpsc::UnboundedSender<ConsumerEvent>,
}

#[derive(Debug, PartialEq)]
enum ConsumerEvent {
    Element(u32),
    Done,
    Failed(String),
}

impl Actor for Consumer {
    type Msg = ConsumerMsg;
    async fn handle(&mut self, msg: ConsumerMsg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            ConsumerMsg::Element(n, ack) => {
                let _ = self.events.send(ConsumerEvent::Element(n));
                if self.acking {
                    let _ = ack.send(());
                } else {
                    self.pending = Some(ack);
                }
            }
            ConsumerMsg::AckAll => {
                self.acking = true;
                if let Some(ack) = self.pending.take() {
                    let _ = ack.send(());
                }
            }
            ConsumerMsg::Done => {
                let _ = self.events.send(ConsumerEvent::Done);
            }
            ConsumerMsg::Failed(error) => {
                let _ = self.events.send(ConsumerEvent::Failed(error.to_string()));
            }
        }
        Ok(())
    }
}

fn consumer(
    system: &ActorSystem,
    acking: bool,
) -> (
    compaktor_actor::ActorRef<ConsumerMsg>,
    mpsc::UnboundedReceiver<ConsumerEvent>,
) {
    let (events_tx, events) = mpsc::unbounded_channel();
    let events_tx = Arc::new(std::sync::Mutex::new(Some(events_tx)));
    let actor = system
        .spawn_anonymous(Props::new(move || Consumer {
            pending: None,
            acking,
            events: events_tx.lock().unwrap().take().expect("one start"),
        }))
        .expect("spawn");
    (actor, events)
}

fn acking_sink(
    actor: compaktor_actor::ActorRef<ConsumerMsg>,
    timeout: Duration,
) -> Sink<u32, compaktor_streams::Completion<()>> {
    Sink::actor_ref_with_backpressure(
        actor,
        timeout,
        ConsumerMsg::Element,
        ConsumerMsg::Done,
        ConsumerMsg::Failed,
    )
}

#[tokio::test]
async fn actor_source_to_acking_sink_goes_at_the_consumers_pace() {
    let system = system("actor-pipe");
    let sent = Arc::new(AtomicUsize::new(0));
    let producer_sent = Arc::clone(&sent);
    let producer = system
        .spawn(
            "producer",
            Props::new(move || Producer {
                out: None,
                next: 0,
                last: 20,
                sent: Arc::clone(&producer_sent),
            }),
        )
        .expect("spawn");
    let (consumer, mut events) = consumer(&system, false);
    let ((handle, done), monitor) = Source::actor_ref_with_backpressure(producer.clone(), || ProducerMsg::Ack)
        .map(|n| n * 2)
        .to_mat(acking_sink(consumer.clone(), LONG), Keep::both)
        .run_monitored();
    producer.tell(ProducerMsg::Start(handle));

    // The consumer holds the first element without acknowledging it: the
    // sink waits, so the source hands on nothing more, and the producer,
    // acknowledged once, has sent at most one more.
    let first = within("the first element at the consumer", events.recv()).await;
    assert_eq!(first, Some(ConsumerEvent::Element(2)));
    let stats = monitor.stats();
    assert_eq!(
        stats.stage("actor_ref_source").expect("the source").elements_out,
        1,
        "the source ran ahead of the sink's acknowledgements"
    );
    let sink = stats.stage("actor_ref_with_backpressure").expect("the sink");
    assert_eq!(sink.elements_out, 0, "nothing is acknowledged yet");
    assert!(sent.load(Ordering::SeqCst) <= 2, "the producer ran ahead of its acks");

    consumer.tell(ConsumerMsg::AckAll);
    within("the stream to complete", done).await.expect("completes");
    let mut seen = vec![2];
    while let Some(event) = within("the consumer's events", events.recv()).await {
        match event {
            ConsumerEvent::Element(n) => seen.push(n),
            ConsumerEvent::Done => break,
            ConsumerEvent::Failed(error) => panic!("the stream failed: {error}"),
        }
    }
    assert_eq!(seen, (1..=20).map(|n| n * 2).collect::<Vec<_>>());
    assert_eq!(sent.load(Ordering::SeqCst), 20);
    system.shutdown().await.expect("shutdown");
}

enum AckMsg {
    Ack,
}

/// Forwards acknowledgements to the test.
struct AckProbe {
    acks: mpsc::UnboundedSender<()>,
}

impl Actor for AckProbe {
    type Msg = AckMsg;
    async fn handle(&mut self, AckMsg::Ack: AckMsg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.acks.send(());
        Ok(())
    }
}

fn ack_probe(system: &ActorSystem) -> (compaktor_actor::ActorRef<AckMsg>, mpsc::UnboundedReceiver<()>) {
    let (acks_tx, acks) = mpsc::unbounded_channel();
    let acks_tx = Arc::new(std::sync::Mutex::new(Some(acks_tx)));
    let actor = system
        .spawn_anonymous(Props::new(move || AckProbe {
            acks: acks_tx.lock().unwrap().take().expect("one start"),
        }))
        .expect("spawn");
    (actor, acks)
}

#[tokio::test(flavor = "current_thread")]
async fn actor_source_fails_on_an_unacknowledged_element() {
    let system = system("actor-source-violation");
    let (probe, _acks) = ack_probe(&system);
    let (handle, all) = Source::<u32, _>::actor_ref_with_backpressure(probe, || AckMsg::Ack)
        .to_mat(Sink::collect(), Keep::both)
        .run();
    // On this one-thread runtime the stream has not run yet: both are queued.
    handle.tell(1).expect("the stream runs");
    handle.tell(2).expect("the stream runs");
    let error = within("the stream to fail", all).await.expect_err("two without an ack");
    assert!(matches!(error, StreamError::UnacknowledgedElement), "{error:?}");
    let refused = handle.tell(3).expect_err("the stream has stopped");
    assert_eq!(refused.into_inner(), 3);
    assert!(handle.is_closed());
    system.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn actor_source_acks_each_element_then_fails_as_told() {
    let system = system("actor-source-fail");
    let (probe, mut acks) = ack_probe(&system);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink_seen = Arc::clone(&seen);
    let (handle, done) = Source::<u32, _>::actor_ref_with_backpressure(probe, || AckMsg::Ack)
        .to_mat(Sink::foreach(move |n| sink_seen.lock().unwrap().push(n)), Keep::both)
        .run();
    for n in 1..=3 {
        handle.tell(n).expect("the stream runs");
        within("the acknowledgement", acks.recv()).await.expect("an ack");
    }
    handle.fail(StreamError::aborted("producer gave up"));
    let error = within("the stream to fail", done)
        .await
        .expect_err("failed by the producer");
    assert_eq!(error.to_string(), "aborted by a kill switch: producer gave up");
    assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
    system.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn actor_source_completes_when_told_or_when_every_handle_is_dropped() {
    let system = system("actor-source-complete");
    let (probe, mut acks) = ack_probe(&system);
    let (handle, all) = Source::<u32, _>::actor_ref_with_backpressure(probe.clone(), || AckMsg::Ack)
        .to_mat(Sink::collect(), Keep::both)
        .run();
    handle.tell(7).expect("the stream runs");
    within("the acknowledgement", acks.recv()).await.expect("an ack");
    handle.complete();
    assert_eq!(within("completion", all).await.expect("completes"), vec![7]);

    let (handle, all) = Source::<u32, _>::actor_ref_with_backpressure(probe, || AckMsg::Ack)
        .to_mat(Sink::collect(), Keep::both)
        .run();
    drop(handle);
    assert_eq!(within("completion", all).await.expect("completes"), Vec::<u32>::new());
    system.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn acking_sink_fails_when_the_actor_has_stopped() {
    let system = system("acking-sink-stopped");
    let (consumer, _events) = consumer(&system, true);
    consumer.stop();
    within("the consumer to stop", consumer.terminated()).await;
    let done = Source::from_iter(1..=3u32).run_with(acking_sink(consumer, LONG));
    let error = within("the stream to fail", done).await.expect_err("the actor is gone");
    assert!(matches!(error, StreamError::ActorStopped), "{error:?}");
    system.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn acking_sink_fails_when_an_ack_times_out_and_tells_the_actor() {
    let system = system("acking-sink-timeout");
    let (consumer, mut events) = consumer(&system, false);
    let done = Source::from_iter(1..=3u32).run_with(acking_sink(consumer, Duration::from_millis(50)));
    let error = within("the ack to time out", done).await.expect_err("no ack came");
    assert!(
        matches!(
            error,
            StreamError::Ask {
                cause: AskError::Timeout,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        within("the element", events.recv()).await,
        Some(ConsumerEvent::Element(1))
    );
    match within("the failure message", events.recv()).await {
        Some(ConsumerEvent::Failed(message)) => assert!(message.contains("no answer"), "{message}"),
        other => panic!("expected the failure message, got {other:?}"),
    }
    system.shutdown().await.expect("shutdown");
}

/// Acknowledges each element 10 ms after it arrives.
struct SlowAcker;

impl Actor for SlowAcker {
    type Msg = ConsumerMsg;
    async fn handle(&mut self, msg: ConsumerMsg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if let ConsumerMsg::Element(_, ack) = msg {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = ack.send(());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn acking_sink_waiting_for_its_actor_counts_as_backpressure_upstream() {
    let system = system("acking-sink-pressure");
    let actor = system.spawn_anonymous(Props::new(|| SlowAcker)).expect("spawn");
    let (done, monitor) = Source::from_iter(1..=20u32)
        .map(|n| n + 1)
        .to_mat(acking_sink(actor, LONG), Keep::right)
        .run_monitored();
    within("the stream to complete", done).await.expect("completes");
    // 20 acknowledgements 10 ms apart: the stages before the sink waited
    // for it about 200 ms.
    let stats = monitor.stats();
    for name in ["from_iter", "map"] {
        let stage = stats.stage(name).expect(name);
        assert!(stage.backpressured >= Duration::from_millis(150), "{stage:?}");
        assert!(stage.backpressured <= Duration::from_millis(210), "{stage:?}");
    }
    system.shutdown().await.expect("shutdown");
}

#[test]
fn new_public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ActorSourceRef<String>>();
    send_sync::<compaktor_streams::SourceClosed<String>>();
    send_sync::<Decider>();
    send_sync::<compaktor_streams::Directive>();
    send_sync::<StreamError>();
}
