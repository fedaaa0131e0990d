//! Dead letters: what could not be delivered is published on the event
//! stream with recipient, sender, type and reason, can be taken back out,
//! and is counted.

mod common;

use common::{probe, shutdown, system, wait, Gate, Tx};
use compaktor_actor::*;

#[derive(Debug)]
enum Msg {
    Val(u32),
    /// Tells `Val(v)` to the given actor (from inside this one).
    Forward(ActorRef<Msg>, u32),
    /// Reports that it started, then waits at the gate.
    Block(Gate, Tx<()>),
    /// Stashes the value.
    Stash(u32),
    Ping(ReplyTo<usize>),
}

#[derive(Default)]
struct Mailman {
    /// Opened in `post_stop`.
    opens_on_stop: Option<Gate>,
}

impl Actor for Mailman {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Msg::Val(_) => {}
            Msg::Forward(to, v) => to.tell(Msg::Val(v)),
            Msg::Block(gate, entered) => {
                let _ = entered.send(());
                gate.wait().await;
            }
            Msg::Stash(v) => {
                if ctx.stash(Msg::Val(v)).is_err() {
                    return Err("stash full".into());
                }
            }
            Msg::Ping(reply) => {
                let _ = reply.send(ctx.stash_len());
            }
        }
        Ok(())
    }

    async fn post_stop(&mut self, _ctx: &mut Context<Self>) {
        if let Some(gate) = &self.opens_on_stop {
            gate.open();
        }
    }
}

fn plain() -> Props<Mailman> {
    Props::<Mailman>::default()
}

async fn block(actor: &ActorRef<Msg>, gate: &Gate) {
    let (tx, mut rx) = probe();
    actor.tell(Msg::Block(gate.clone(), tx));
    rx.next("the actor to start the blocking message").await;
}

async fn next(sub: &mut EventSubscriber<DeadLetter>) -> DeadLetter {
    wait("a dead letter", sub.recv()).await.expect("the dead letter stream")
}

async fn values(sub: &mut EventSubscriber<DeadLetter>, n: usize, reason: DeadLetterReason) -> Vec<u32> {
    let mut out = Vec::new();
    for _ in 0..n {
        let letter = next(sub).await;
        assert_eq!(letter.reason(), reason, "{letter}");
        match letter.take::<Msg>() {
            Some(Msg::Val(v)) => out.push(v),
            other => panic!("expected a Val, got {other:?}"),
        }
    }
    out.sort_unstable();
    out
}

#[tokio::test]
async fn a_tell_to_a_stopped_actor_is_published_with_recipient_type_and_reason() {
    let system = system("dl-stopped");
    let actor = system.spawn("gone", plain()).unwrap();
    actor.stop();
    wait("the actor to stop", actor.terminated()).await;
    let mut sub = system.event_stream().subscribe::<DeadLetter>();
    let mut other = system.event_stream().subscribe::<DeadLetter>();

    actor.tell(Msg::Val(42));
    let letter = next(&mut sub).await;
    assert_eq!(letter.recipient(), actor.path());
    assert_eq!(letter.sender(), None, "sent from outside any actor");
    assert_eq!(letter.message_type(), std::any::type_name::<Msg>());
    assert_eq!(letter.reason(), DeadLetterReason::RecipientStopped);
    let text = letter.to_string();
    assert!(
        text.contains(std::any::type_name::<Msg>()) && text.contains("/user/gone"),
        "{text}"
    );

    // The message can be taken back out, once, as its own type.
    assert!(letter.take::<String>().is_none(), "wrong type leaves it in place");
    assert!(matches!(letter.take::<Msg>(), Some(Msg::Val(42))));
    assert!(letter.take::<Msg>().is_none(), "taken already");
    // Every subscriber sees the same dead letter; the message is gone for all.
    let seen_by_other = next(&mut other).await;
    assert_eq!(seen_by_other.recipient(), actor.path());
    assert!(seen_by_other.take::<Msg>().is_none());
    assert_eq!(system.dead_letter_stats().recipient_stopped, 1);
    shutdown(&system).await;
}

#[tokio::test]
async fn the_sender_is_known_when_an_actor_sent_it() {
    let system = system("dl-sender");
    let gone = system.spawn("gone", plain()).unwrap();
    gone.stop();
    wait("the actor to stop", gone.terminated()).await;
    let sender = system.spawn("sender", plain()).unwrap();
    let mut sub = system.event_stream().subscribe::<DeadLetter>();
    sender.tell(Msg::Forward(gone.clone(), 7));
    let letter = next(&mut sub).await;
    assert_eq!(letter.sender(), Some(sender.path()));
    assert_eq!(letter.recipient(), gone.path());
    assert!(matches!(letter.take::<Msg>(), Some(Msg::Val(7))));
    shutdown(&system).await;
}

#[tokio::test]
async fn messages_still_queued_at_stop_become_dead_letters() {
    let system = system("dl-queued");
    let actor = system.spawn("busy", plain()).unwrap();
    let mut sub = system.event_stream().subscribe::<DeadLetter>();
    let gate = Gate::new();
    block(&actor, &gate).await;
    for v in 0..10 {
        actor.tell(Msg::Val(v));
    }
    actor.stop();
    gate.open();
    let got = values(&mut sub, 10, DeadLetterReason::StoppedBeforeHandled).await;
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    wait("the actor to stop", actor.terminated()).await;
    assert_eq!(system.dead_letter_stats().stopped_before_handled, 10);
    shutdown(&system).await;
}

#[tokio::test]
async fn stashed_messages_become_dead_letters_at_stop() {
    let system = system("dl-stash");
    let actor = system.spawn("stasher", plain()).unwrap();
    let mut sub = system.event_stream().subscribe::<DeadLetter>();
    for v in 0..5 {
        actor.tell(Msg::Stash(v));
    }
    assert_eq!(actor.ask(Msg::Ping, common::WAIT).await.unwrap(), 5);
    actor.stop();
    let got = values(&mut sub, 5, DeadLetterReason::StoppedBeforeHandled).await;
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert_eq!(system.dead_letter_stats().stopped_before_handled, 5);
    shutdown(&system).await;
}

// Current-thread runtime: the guardian sends every child its Stop before
// any child runs, so the sibling's post_stop opens the gate only once the
// busy actor's Stop is queued.
#[tokio::test]
async fn shutdown_turns_queued_messages_into_dead_letters() {
    let system = system("dl-shutdown");
    let gate = Gate::new();
    let busy = system.spawn("busy", plain()).unwrap();
    let opener = gate.clone();
    system
        .spawn(
            "sibling",
            Props::new(move || Mailman {
                opens_on_stop: Some(opener.clone()),
            }),
        )
        .unwrap();
    let mut sub = system.event_stream().subscribe::<DeadLetter>();
    block(&busy, &gate).await;
    for v in 0..5 {
        busy.tell(Msg::Val(v));
    }
    shutdown(&system).await;
    let got = values(&mut sub, 5, DeadLetterReason::StoppedBeforeHandled).await;
    assert_eq!(got, [0, 1, 2, 3, 4]);
    if let Ok(Some(letter)) = sub.try_recv() {
        panic!("unexpected extra dead letter {letter}");
    }
    // After shutdown, everything told is a dead letter too.
    busy.tell(Msg::Val(9));
    assert_eq!(next(&mut sub).await.reason(), DeadLetterReason::RecipientStopped);
}

#[tokio::test]
async fn dead_letters_are_counted_by_reason_even_without_subscribers() {
    let system = system("dl-stats");
    assert_eq!(system.dead_letter_stats(), DeadLetterStats::default());

    // 1 × recipient stopped
    let gone = system.spawn("gone", plain()).unwrap();
    gone.stop();
    wait("gone to stop", gone.terminated()).await;
    gone.tell(Msg::Val(0));

    // 2 × mailbox full
    let full = system
        .spawn(
            "full",
            plain().with_mailbox(MailboxConfig::bounded(1, OverflowPolicy::DropNewest)),
        )
        .unwrap();
    let gate = Gate::new();
    block(&full, &gate).await;
    full.tell(Msg::Val(1));
    full.tell(Msg::Val(2));
    full.tell(Msg::Val(3));

    // 3 × stopped before handled (the queued one, plus two more)
    full.stop();
    gate.open();
    wait("full to stop", full.terminated()).await;
    let busy = system.spawn("busy", plain()).unwrap();
    let gate = Gate::new();
    block(&busy, &gate).await;
    busy.tell(Msg::Val(4));
    busy.tell(Msg::Val(5));
    busy.stop();
    gate.open();
    wait("busy to stop", busy.terminated()).await;

    // 1 × no routees
    let router = system
        .spawn_router("nobody", RouterConfig::<Msg>::group(Vec::new()))
        .unwrap();
    router.actor_ref().tell(Msg::Val(6));

    let stats = system.dead_letter_stats();
    assert_eq!(stats.recipient_stopped, 1, "{stats:?}");
    assert_eq!(stats.mailbox_full, 2, "{stats:?}");
    assert_eq!(stats.stopped_before_handled, 3, "{stats:?}");
    assert_eq!(stats.no_routees, 1, "{stats:?}");
    assert_eq!(stats.total, 7, "{stats:?}");
    assert_eq!(system.health().await.dead_letters, stats);
    shutdown(&system).await;
}
