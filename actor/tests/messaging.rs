//! Messaging: tell, try_tell, send and ask; per-sender ordering; bounded
//! mailboxes and their overflow policies; system messages overtaking a
//! deep backlog.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{probe, shutdown, system, wait, Gate, Rx, Tx};
use compaktor_actor::*;

#[derive(Debug, Default, Clone, PartialEq)]
struct Report {
    /// Messages received per producer.
    per_producer: HashMap<usize, u64>,
    /// Messages that arrived out of their producer's order.
    out_of_order: u64,
}

enum Msg {
    Seq(usize, u64),
    Val(u32),
    Values(ReplyTo<Vec<u32>>),
    Report(ReplyTo<Report>),
    /// Reports that it started, then waits at the gate.
    Block(Gate, Tx<()>),
    Echo(u32, ReplyTo<u32>),
    /// Keeps the reply handle without answering.
    Hold(ReplyTo<u32>),
    /// Answers every held request; replies with whether each answer was taken.
    AnswerHeld(ReplyTo<Vec<bool>>),
    /// Drops the reply handle.
    DropReply(ReplyTo<u32>),
}

#[derive(Default)]
struct Sink {
    next: HashMap<usize, u64>,
    report: Report,
    values: Vec<u32>,
    held: Vec<ReplyTo<u32>>,
    /// Gets every value as it is handled.
    seen: Option<Tx<u32>>,
    /// Gets the number of values handled when the actor stops.
    on_stop: Option<Tx<usize>>,
}

impl Actor for Sink {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Msg::Seq(producer, n) => {
                let expected = self.next.entry(producer).or_insert(0);
                if n != *expected {
                    self.report.out_of_order += 1;
                }
                *expected = n + 1;
                *self.report.per_producer.entry(producer).or_insert(0) += 1;
            }
            Msg::Val(v) => {
                self.values.push(v);
                if let Some(seen) = &self.seen {
                    let _ = seen.send(v);
                }
            }
            Msg::Values(reply) => {
                let _ = reply.send(self.values.clone());
            }
            Msg::Report(reply) => {
                let _ = reply.send(self.report.clone());
            }
            Msg::Block(gate, entered) => {
                let _ = entered.send(());
                gate.wait().await;
            }
            Msg::Echo(v, reply) => {
                let _ = reply.send(v);
            }
            Msg::Hold(reply) => self.held.push(reply),
            Msg::AnswerHeld(reply) => {
                let taken = self.held.drain(..).map(|r| r.send(1).is_ok()).collect();
                let _ = reply.send(taken);
            }
            Msg::DropReply(reply) => drop(reply),
        }
        Ok(())
    }

    async fn post_stop(&mut self, _ctx: &mut Context<Self>) {
        if let Some(tx) = &self.on_stop {
            let _ = tx.send(self.values.len());
        }
    }
}

fn sink() -> Props<Sink> {
    Props::<Sink>::default()
}

fn bounded(capacity: usize, policy: OverflowPolicy) -> Props<Sink> {
    sink().with_mailbox(MailboxConfig::bounded(capacity, policy))
}

/// A bounded sink that reports each value it handles.
fn seeing(capacity: usize, policy: OverflowPolicy) -> (Props<Sink>, Rx<u32>) {
    let (tx, rx) = probe();
    let props = Props::new(move || Sink {
        seen: Some(tx.clone()),
        ..Sink::default()
    })
    .with_mailbox(MailboxConfig::bounded(capacity, policy));
    (props, rx)
}

/// Makes `actor` busy in a handler until the returned gate opens.
async fn block(actor: &ActorRef<Msg>) -> Gate {
    let gate = Gate::new();
    let (tx, mut rx) = probe();
    actor.tell(Msg::Block(gate.clone(), tx));
    rx.next("the actor to start the blocking message").await;
    gate
}

async fn values(actor: &ActorRef<Msg>) -> Vec<u32> {
    actor.ask(Msg::Values, common::WAIT).await.expect("values")
}

/// A blocked actor whose bounded mailbox holds `capacity` values 0, 1, ...,
/// and the probe that sees each value handled once the gate opens.
async fn full(
    system: &ActorSystem,
    name: &str,
    capacity: usize,
    policy: OverflowPolicy,
) -> (ActorRef<Msg>, Gate, Rx<u32>) {
    let (props, seen) = seeing(capacity, policy);
    let actor = system.spawn(name, props).unwrap();
    let gate = block(&actor).await;
    for v in 0..capacity as u32 {
        assert!(
            actor.try_tell(Msg::Val(v)).is_ok(),
            "room for message {v} of {capacity}"
        );
    }
    assert_eq!(actor.mailbox_depth(), capacity);
    (actor, gate, seen)
}

fn dead_letters(system: &ActorSystem) -> EventSubscriber<DeadLetter> {
    system.event_stream().subscribe::<DeadLetter>()
}

async fn next_dead_letter(sub: &mut EventSubscriber<DeadLetter>) -> DeadLetter {
    wait("a dead letter", sub.recv()).await.expect("dead letter stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_senders_messages_arrive_in_the_order_sent() {
    let system = system("msg-order");
    let actor = system.spawn("sink", sink()).unwrap();
    const PRODUCERS: usize = 8;
    const EACH: u64 = 20_000;
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                match p % 2 {
                    0 => actor.tell(Msg::Seq(p, n)),
                    _ => assert!(actor.send(Msg::Seq(p, n)).await.is_ok()),
                }
                if n % 1000 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for t in tasks {
        wait("a producer to finish", t).await.unwrap();
    }
    let report = actor.ask(Msg::Report, common::WAIT).await.unwrap();
    assert_eq!(report.out_of_order, 0, "{report:?}");
    assert_eq!(report.per_producer.len(), PRODUCERS);
    assert!(report.per_producer.values().all(|n| *n == EACH), "{report:?}");
    shutdown(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backpressured_senders_keep_their_order_and_lose_nothing() {
    let system = system("msg-order-bounded");
    let actor = system.spawn("sink", bounded(16, OverflowPolicy::WaitForRoom)).unwrap();
    const PRODUCERS: usize = 6;
    const EACH: u64 = 5_000;
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                assert!(actor.send(Msg::Seq(p, n)).await.is_ok());
            }
        }));
    }
    for t in tasks {
        wait("a producer to finish", t).await.unwrap();
    }
    let report = actor.ask(Msg::Report, common::WAIT).await.unwrap();
    assert_eq!(report.out_of_order, 0, "{report:?}");
    assert!(report.per_producer.values().all(|n| *n == EACH), "{report:?}");
    assert_eq!(system.dead_letter_stats().total, 0);
    shutdown(&system).await;
}

#[tokio::test]
async fn ask_returns_the_reply() {
    let system = system("msg-ask");
    let actor = system.spawn("sink", sink()).unwrap();
    for v in 0..100 {
        assert_eq!(actor.ask(|r| Msg::Echo(v, r), common::WAIT).await, Ok(v));
    }
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn ask_without_an_answer_times_out_and_a_late_answer_is_handed_back() {
    let system = system("msg-ask-timeout");
    let actor = system.spawn("sink", sink()).unwrap();
    let start = tokio::time::Instant::now();
    let result = actor.ask(Msg::Hold, Duration::from_millis(250)).await;
    assert_eq!(result, Err(AskError::Timeout));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(300),
        "timed out after {waited:?}"
    );
    // The request was delivered; answering it now is refused.
    let taken = actor.ask(Msg::AnswerHeld, common::WAIT).await.unwrap();
    assert_eq!(taken, [false]);
    shutdown(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_never_times_out_before_its_timeout() {
    let system = system("msg-ask-early");
    let actor = system.spawn("sink", sink()).unwrap();
    let mut asks = Vec::new();
    for i in 1..=40u64 {
        let actor = actor.clone();
        let timeout = Duration::from_millis(i * 3);
        asks.push(tokio::spawn(async move {
            let start = std::time::Instant::now();
            let result = actor.ask(Msg::Hold, timeout).await;
            (result, start.elapsed(), timeout)
        }));
    }
    for ask in asks {
        let (result, waited, timeout) = wait("an ask to time out", ask).await.unwrap();
        assert_eq!(result, Err(AskError::Timeout));
        assert!(
            waited >= timeout,
            "timed out after {waited:?}, before its timeout of {timeout:?}"
        );
    }
    shutdown(&system).await;
}

#[tokio::test]
async fn ask_fails_fast_when_the_reply_handle_is_dropped() {
    let system = system("msg-ask-noreply");
    let actor = system.spawn("sink", sink()).unwrap();
    let result = wait(
        "an ask whose reply handle was dropped (not its hour-long timeout)",
        actor.ask(Msg::DropReply, Duration::from_secs(3600)),
    )
    .await;
    assert_eq!(result, Err(AskError::NoReply));
    shutdown(&system).await;
}

#[tokio::test]
async fn ask_to_a_stopped_actor_fails_with_terminated_and_dead_letters_the_request() {
    let system = system("msg-ask-dead");
    let actor = system.spawn("sink", sink()).unwrap();
    actor.stop();
    wait("the actor to stop", actor.terminated()).await;
    let mut dead = dead_letters(&system);
    let result = wait(
        "an ask to a dead actor",
        actor.ask(Msg::Hold, Duration::from_secs(3600)),
    )
    .await;
    assert_eq!(result, Err(AskError::Terminated));
    let letter = next_dead_letter(&mut dead).await;
    assert_eq!(letter.reason(), DeadLetterReason::RecipientStopped);
    assert_eq!(letter.recipient(), actor.path());
    assert_eq!(system.dead_letter_stats().recipient_stopped, 1);
    shutdown(&system).await;
}

/// The actor holds the request and stops before answering.
async fn ask_then_stop(rounds: usize) {
    let system = system("msg-ask-dies");
    for round in 0..rounds {
        let actor = system.spawn_anonymous(sink()).unwrap();
        let ask = tokio::spawn({
            let actor = actor.clone();
            async move { actor.ask(Msg::Hold, Duration::from_secs(3600)).await }
        });
        // The request is held once a later message has been handled.
        assert_eq!(actor.ask(|r| Msg::Echo(1, r), common::WAIT).await, Ok(1));
        actor.stop();
        let result = wait("an ask to an actor that stopped", ask).await.unwrap();
        assert_eq!(result, Err(AskError::Terminated), "round {round}");
    }
    shutdown(&system).await;
}

#[tokio::test]
async fn ask_fails_with_terminated_when_the_actor_stops_before_answering() {
    ask_then_stop(20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ask_fails_with_terminated_when_the_actor_stops_before_answering_multi_thread() {
    ask_then_stop(300).await;
}

#[tokio::test]
async fn ask_on_a_full_mailbox_fails_with_mailbox_full() {
    let system = system("msg-ask-full");
    for policy in [OverflowPolicy::Fail, OverflowPolicy::DropNewest] {
        let (actor, gate, mut seen) = full(&system, &format!("{policy:?}"), 2, policy).await;
        let result = wait(
            "an ask to a full mailbox",
            actor.ask(Msg::Hold, Duration::from_secs(3600)),
        )
        .await;
        assert_eq!(result, Err(AskError::MailboxFull), "{policy:?}");
        gate.open();
        assert_eq!(seen.take(2, "the queued values").await, [0, 1]);
        assert_eq!(values(&actor).await, [0, 1]);
    }
    assert_eq!(system.dead_letter_stats().mailbox_full, 2);
    shutdown(&system).await;
}

#[tokio::test]
async fn ask_on_a_full_wait_for_room_mailbox_waits_for_room_within_its_timeout() {
    let system = system("msg-ask-wait");
    let (actor, gate, _seen) = full(&system, "sink", 1, OverflowPolicy::WaitForRoom).await;
    // No room within the timeout: the wait counts against it.
    let result = wait(
        "an ask to time out",
        actor.ask(|r| Msg::Echo(7, r), Duration::from_millis(50)),
    )
    .await;
    assert_eq!(result, Err(AskError::Timeout));
    // Room comes while the ask waits: it is answered.
    let ask = actor.ask(|r| Msg::Echo(8, r), common::WAIT);
    tokio::pin!(ask);
    assert!(tokio::time::timeout(Duration::from_millis(20), &mut ask).await.is_err());
    gate.open();
    assert_eq!(wait("the waiting ask", ask).await, Ok(8));
    assert_eq!(values(&actor).await, [0]);
    shutdown(&system).await;
}

#[tokio::test]
async fn send_waits_for_room_under_wait_for_room() {
    let system = system("msg-send-wait");
    let (actor, gate, _seen) = full(&system, "sink", 2, OverflowPolicy::WaitForRoom).await;
    let send = actor.send(Msg::Val(2));
    tokio::pin!(send);
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut send)
            .await
            .is_err(),
        "send must wait while the mailbox is full"
    );
    gate.open();
    assert!(wait("the waiting send", send).await.is_ok());
    assert_eq!(values(&actor).await, [0, 1, 2]);
    assert_eq!(system.dead_letter_stats().total, 0);
    shutdown(&system).await;
}

#[tokio::test]
async fn a_send_waiting_for_room_gets_its_message_back_when_the_actor_stops() {
    let system = system("msg-send-wait-stop");
    let (actor, gate, _seen) = full(&system, "sink", 1, OverflowPolicy::WaitForRoom).await;
    let send = tokio::spawn({
        let actor = actor.clone();
        async move { actor.send(Msg::Val(99)).await }
    });
    actor.stop();
    gate.open();
    // The stop is handled before the queued message, so no room ever comes.
    match wait("the waiting send", send).await.unwrap() {
        Err(SendError::Closed(Msg::Val(99))) => {}
        other => panic!("expected Closed with the message, got {other:?}"),
    }
    assert_eq!(
        system.dead_letter_stats().stopped_before_handled,
        1,
        "the queued message"
    );
    shutdown(&system).await;
}

#[tokio::test]
async fn drop_newest_turns_the_new_message_into_a_dead_letter() {
    let system = system("msg-drop-newest");
    let (actor, gate, mut seen) = full(&system, "sink", 2, OverflowPolicy::DropNewest).await;
    let mut dead = dead_letters(&system);
    assert!(actor.send(Msg::Val(2)).await.is_ok(), "send succeeds under DropNewest");
    let letter = next_dead_letter(&mut dead).await;
    assert_eq!(letter.reason(), DeadLetterReason::MailboxFull);
    assert_eq!(letter.recipient(), actor.path());
    assert!(matches!(letter.take::<Msg>(), Some(Msg::Val(2))));
    gate.open();
    assert_eq!(seen.take(2, "the queued values").await, [0, 1]);
    assert_eq!(
        values(&actor).await,
        [0, 1],
        "the queued messages were kept, the newest dropped"
    );
    assert_eq!(system.dead_letter_stats().mailbox_full, 1);
    shutdown(&system).await;
}

#[tokio::test]
async fn fail_policy_hands_the_message_back() {
    let system = system("msg-fail");
    let (actor, gate, mut seen) = full(&system, "sink", 2, OverflowPolicy::Fail).await;
    match actor.send(Msg::Val(2)).await {
        Err(e) => {
            assert!(e.is_full(), "{e:?}");
            assert!(matches!(e.into_inner(), Msg::Val(2)));
        }
        Ok(()) => panic!("send to a full Fail mailbox succeeded"),
    }
    assert_eq!(
        system.dead_letter_stats().total,
        0,
        "a handed-back message is no dead letter"
    );
    gate.open();
    assert_eq!(seen.take(2, "the queued values").await, [0, 1]);
    assert!(actor.send(Msg::Val(3)).await.is_ok(), "room again");
    assert_eq!(values(&actor).await, [0, 1, 3]);
    shutdown(&system).await;
}

#[tokio::test]
async fn try_tell_reports_full_and_closed_and_tell_dead_letters() {
    let system = system("msg-try-tell");
    let (actor, gate, _seen) = full(&system, "sink", 1, OverflowPolicy::WaitForRoom).await;
    match actor.try_tell(Msg::Val(5)) {
        Err(TryTellError::Full(Msg::Val(5))) => {}
        other => panic!("expected Full with the message, got {other:?}"),
    }
    assert_eq!(system.dead_letter_stats().total, 0);
    // tell never waits, whatever the policy: a full mailbox dead-letters.
    actor.tell(Msg::Val(6));
    assert_eq!(system.dead_letter_stats().mailbox_full, 1);
    gate.open();
    assert_eq!(values(&actor).await, [0]);

    actor.stop();
    wait("the actor to stop", actor.terminated()).await;
    match actor.try_tell(Msg::Val(7)) {
        Err(TryTellError::Closed(Msg::Val(7))) => {}
        other => panic!("expected Closed with the message, got {other:?}"),
    }
    match actor.send(Msg::Val(8)).await {
        Err(SendError::Closed(Msg::Val(8))) => {}
        other => panic!("expected Closed with the message, got {other:?}"),
    }
    assert_eq!(system.dead_letter_stats().recipient_stopped, 0);
    actor.tell(Msg::Val(9));
    assert_eq!(system.dead_letter_stats().recipient_stopped, 1);
    shutdown(&system).await;
}

#[tokio::test]
async fn stop_overtakes_a_deep_backlog() {
    let system = system("msg-backlog");
    let (tx, mut stopped): (_, Rx<usize>) = probe();
    let actor = system
        .spawn(
            "sink",
            Props::new(move || Sink {
                on_stop: Some(tx.clone()),
                ..Sink::default()
            }),
        )
        .unwrap();
    let gate = block(&actor).await;
    const BACKLOG: u32 = 100_000;
    for v in 0..BACKLOG {
        actor.tell(Msg::Val(v));
    }
    assert_eq!(actor.mailbox_depth(), BACKLOG as usize);
    actor.stop();
    gate.open();
    let handled = stopped.next("post_stop").await;
    assert_eq!(handled, 0, "the stop must be handled before the queued user messages");
    wait("the actor to terminate", actor.terminated()).await;
    assert_eq!(
        system.dead_letter_stats().stopped_before_handled,
        u64::from(BACKLOG),
        "the backlog became dead letters"
    );
    shutdown(&system).await;
}

#[tokio::test]
async fn watch_overtakes_a_deep_backlog() {
    let system = system("msg-backlog-watch");
    let actor = system.spawn("sink", sink()).unwrap();
    let gate = block(&actor).await;
    for v in 0..50_000 {
        actor.tell(Msg::Val(v));
    }
    // terminated() registers a watch (a system message) behind the backlog.
    let terminated = actor.terminated();
    actor.stop();
    gate.open();
    let t = wait("Terminated despite the backlog", terminated).await;
    assert!(matches!(t.reason(), StopReason::Stopped));
    shutdown(&system).await;
}

/// Holds requests; its state takes a while to drop (closing files, say).
struct SlowToDrop {
    held: Vec<ReplyTo<u32>>,
    _resource: SlowDrop,
}

struct SlowDrop;

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Actor for SlowToDrop {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Msg::Hold(reply) => self.held.push(reply),
            Msg::Echo(v, reply) => {
                let _ = reply.send(v);
            }
            _ => {}
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_fails_with_terminated_when_a_blocking_pool_actor_stops_before_answering() {
    // The asker wakes on another thread the moment the held reply handle is
    // dropped; the actor's state must not be dropped before its mailbox is
    // closed, or the asker sees `NoReply`.
    let system = system("msg-ask-slow-drop");
    let actor = system
        .spawn(
            "slow",
            Props::new(|| SlowToDrop {
                held: Vec::new(),
                _resource: SlowDrop,
            })
            .on_blocking_pool(),
        )
        .unwrap();
    let ask = tokio::spawn({
        let actor = actor.clone();
        async move { actor.ask(Msg::Hold, Duration::from_secs(3600)).await }
    });
    assert_eq!(actor.ask(|r| Msg::Echo(1, r), common::WAIT).await, Ok(1));
    actor.stop();
    let result = wait("an ask to an actor that stopped", ask).await.unwrap();
    assert_eq!(result, Err(AskError::Terminated));
    shutdown(&system).await;
}
