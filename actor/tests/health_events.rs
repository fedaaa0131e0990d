//! Health reports (counts, deepest mailboxes, stuck handlers, readiness
//! checks, serde) and the event stream (user events, lagging subscribers,
//! lifecycle events, actor subscribers).

mod common;

use std::time::Duration;

use common::{eventually, probe, shutdown, system, wait, within, Gate, Tx, WAIT};
use compaktor_actor::*;

enum Msg {
    Val(u32),
    Block(Gate, Tx<()>),
    Panic,
    Ping(ReplyTo<()>),
}

/// Sums the values it is sent.
struct Worker(u64);

impl Actor for Worker {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Msg::Val(v) => self.0 += u64::from(v),
            Msg::Block(gate, entered) => {
                let _ = entered.send(());
                gate.wait().await;
            }
            Msg::Panic => panic!("worker failure"),
            Msg::Ping(reply) => {
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

fn worker() -> Props<Worker> {
    Props::new(|| Worker(0))
}

async fn block(actor: &ActorRef<Msg>, gate: &Gate) {
    let (tx, mut rx) = probe();
    actor.tell(Msg::Block(gate.clone(), tx));
    rx.next("the actor to start the blocking message").await;
}

async fn ping(actor: &ActorRef<Msg>) {
    actor.ask(Msg::Ping, WAIT).await.expect("ping");
}

#[tokio::test]
async fn the_health_report_counts_actors_restarts_dead_letters_and_backlogs() {
    let system = system("hl-report");
    let busy = system.spawn("busy", worker()).unwrap();
    let crashy = system.spawn("crashy", worker()).unwrap();
    let _idle = system.spawn("idle", worker()).unwrap();
    let gone = system.spawn("gone", worker()).unwrap();
    gone.stop();
    wait("gone to stop", gone.terminated()).await;
    gone.tell(Msg::Val(0));
    crashy.tell(Msg::Panic);
    ping(&crashy).await;
    let gate = Gate::new();
    block(&busy, &gate).await;
    for v in 0..50 {
        busy.tell(Msg::Val(v));
    }

    let report = system.health().await;
    assert_eq!(report.system, "hl-report");
    assert_eq!(report.status, HealthStatus::Healthy);
    assert_eq!(report.live_actors, 3);
    assert_eq!(report.restarts, 1);
    assert_eq!(report.dead_letters.recipient_stopped, 1);
    assert_eq!(report.dead_letters.total, 1);
    assert_eq!(
        report.deepest_mailboxes,
        [MailboxDepth {
            actor: busy.path().to_string(),
            depth: 50
        }],
        "empty mailboxes are left out"
    );
    assert!(report.stuck_actors.is_empty());
    assert!(report.readiness.is_empty());

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["system"], "hl-report");
    assert_eq!(json["status"], "Healthy");
    assert_eq!(json["live_actors"], 3);
    assert_eq!(json["restarts"], 1);
    assert_eq!(json["dead_letters"]["recipient_stopped"], 1);
    assert_eq!(json["dead_letters"]["total"], 1);
    assert_eq!(json["deepest_mailboxes"][0]["actor"], busy.path().to_string());
    assert_eq!(json["deepest_mailboxes"][0]["depth"], 50);
    assert!(json["uptime_ms"].is_u64());
    let back: HealthReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report, "the report round-trips through JSON");

    gate.open();
    ping(&busy).await;
    assert!(system.health().await.deepest_mailboxes.is_empty());
    shutdown(&system).await;
    assert_eq!(
        system.health().await.status,
        HealthStatus::Unhealthy,
        "a terminated system"
    );
}

#[tokio::test]
async fn the_deepest_mailboxes_come_first_and_are_capped() {
    let mut config = SystemConfig::new("hl-deepest");
    config.health_top_mailboxes = 2;
    let system = ActorSystem::new(config).unwrap();
    let gate = Gate::new();
    let actors: Vec<ActorRef<Msg>> = ["a", "b", "c"]
        .into_iter()
        .map(|name| system.spawn(name, worker()).unwrap())
        .collect();
    for (actor, depth) in actors.iter().zip([10, 30, 20]) {
        block(actor, &gate).await;
        for v in 0..depth {
            actor.tell(Msg::Val(v));
        }
    }
    let report = system.health().await;
    let depths: Vec<(String, usize)> = report
        .deepest_mailboxes
        .iter()
        .map(|m| (m.actor.clone(), m.depth))
        .collect();
    assert_eq!(
        depths,
        [(actors[1].path().to_string(), 30), (actors[2].path().to_string(), 20)]
    );
    gate.open();
    shutdown(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_running_past_the_stuck_threshold_is_reported() {
    let mut config = SystemConfig::new("hl-stuck");
    config.stuck_threshold = Duration::from_millis(100);
    let system = ActorSystem::new(config).unwrap();
    let stuck = system.spawn("stuck", worker()).unwrap();
    let fine = system.spawn("fine", worker()).unwrap();
    let gate = Gate::new();
    block(&stuck, &gate).await;

    // Stuck-ness is about wall-clock time passing: poll the report.
    let report = within(WAIT, "the stuck handler to be reported", async {
        loop {
            let report = system.health().await;
            if !report.stuck_actors.is_empty() {
                return report;
            }
            ping(&fine).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(report.stuck_actors.len(), 1, "{:?}", report.stuck_actors);
    assert_eq!(report.stuck_actors[0].actor, stuck.path().to_string());
    assert!(report.stuck_actors[0].busy_ms >= 100, "{:?}", report.stuck_actors);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["stuck_actors"][0]["actor"], stuck.path().to_string());
    assert_eq!(json["status"], "Degraded");

    gate.open();
    ping(&stuck).await;
    let report = system.health().await;
    assert!(report.stuck_actors.is_empty(), "{:?}", report.stuck_actors);
    assert_eq!(report.status, HealthStatus::Healthy);
    shutdown(&system).await;
}

#[tokio::test]
async fn readiness_checks_appear_in_the_report() {
    let mut config = SystemConfig::new("hl-ready");
    config.readiness_timeout = Duration::from_millis(50);
    let system = ActorSystem::new(config).unwrap();
    system.add_readiness_check("database", || async { Ok(()) });
    let report = system.health().await;
    assert_eq!(report.status, HealthStatus::Healthy);
    assert_eq!(
        report.readiness,
        [ReadinessResult {
            name: "database".into(),
            ready: true,
            error: None
        }]
    );

    system.add_readiness_check("cache", || async { Err("cache is down".into()) });
    system.add_readiness_check("slow", std::future::pending::<Result<(), ActorError>>);
    let report = wait("the health report", system.health()).await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    let names: Vec<&str> = report.readiness.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["database", "cache", "slow"], "registration order");
    assert!(report.readiness[0].ready);
    assert!(!report.readiness[1].ready);
    assert_eq!(report.readiness[1].error.as_deref(), Some("cache is down"));
    assert!(!report.readiness[2].ready);
    let slow = report.readiness[2].error.as_deref().unwrap_or_default();
    assert!(slow.contains("timed out"), "{slow}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["readiness"][1]["error"], "cache is down");
    assert_eq!(json["status"], "Unhealthy");
    shutdown(&system).await;
}

#[derive(Clone, Debug, PartialEq)]
struct PriceChanged(u32);

#[derive(Clone, Debug, PartialEq)]
struct Other(u32);

#[tokio::test]
async fn user_events_reach_every_subscriber_of_their_type() {
    let system = system("ev-user");
    let events = system.event_stream();
    assert_eq!(events.publish(PriceChanged(0)), 0, "nobody listens yet");
    let mut a = events.subscribe::<PriceChanged>();
    let mut b = events.subscribe::<PriceChanged>();
    let mut other = events.subscribe::<Other>();
    assert_eq!(events.publish(PriceChanged(1)), 2);
    assert_eq!(events.publish(PriceChanged(2)), 2);
    for sub in [&mut a, &mut b] {
        assert_eq!(wait("an event", sub.recv()).await, Ok(PriceChanged(1)));
        assert_eq!(wait("an event", sub.recv()).await, Ok(PriceChanged(2)));
        assert_eq!(sub.try_recv(), Ok(None));
    }
    assert_eq!(other.try_recv(), Ok(None), "other types are not delivered");
    drop(b);
    assert_eq!(events.publish(PriceChanged(3)), 1);
    assert_eq!(a.try_recv(), Ok(Some(PriceChanged(3))));
    shutdown(&system).await;
}

#[tokio::test]
async fn a_lagging_subscriber_is_told_how_much_it_missed() {
    let mut config = SystemConfig::new("ev-lag");
    config.event_buffer = 4;
    let system = ActorSystem::new(config).unwrap();
    let mut sub = system.event_stream().subscribe::<PriceChanged>();
    for n in 0..10 {
        system.event_stream().publish(PriceChanged(n));
    }
    assert_eq!(
        wait("the lag report", sub.recv()).await,
        Err(EventStreamError::Lagged(6))
    );
    for n in 6..10 {
        assert_eq!(wait("a buffered event", sub.recv()).await, Ok(PriceChanged(n)));
    }
    shutdown(&system).await;
}

async fn next_for(sub: &mut EventSubscriber<LifecycleEvent>, path: &ActorPath) -> LifecycleEvent {
    wait("a lifecycle event", async {
        loop {
            let event = sub.recv().await.expect("lifecycle stream");
            let about = match &event {
                LifecycleEvent::Started(p) | LifecycleEvent::Restarted(p) => p.clone(),
                LifecycleEvent::Failed(f) => f.actor().clone(),
                LifecycleEvent::Stopped(t) => t.actor().clone(),
                _ => continue,
            };
            if &about == path {
                return event;
            }
        }
    })
    .await
}

#[tokio::test]
async fn lifecycle_events_follow_an_actor_from_start_to_stop() {
    let system = system("ev-lifecycle");
    let mut sub = system.event_stream().subscribe::<LifecycleEvent>();
    let actor = system.spawn("actor", worker()).unwrap();
    let path = actor.path().clone();
    assert!(matches!(next_for(&mut sub, &path).await, LifecycleEvent::Started(p) if p == path));

    actor.tell(Msg::Panic);
    match next_for(&mut sub, &path).await {
        LifecycleEvent::Failed(f) => {
            assert_eq!(f.phase(), FailurePhase::Message);
            assert!(f.is_panic());
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(matches!(next_for(&mut sub, &path).await, LifecycleEvent::Restarted(p) if p == path));

    actor.stop();
    match next_for(&mut sub, &path).await {
        LifecycleEvent::Stopped(t) => assert!(matches!(t.reason(), StopReason::Stopped)),
        other => panic!("expected Stopped, got {other:?}"),
    }
    shutdown(&system).await;
}

struct PriceWatcher {
    seen: Tx<PriceChanged>,
}

impl Actor for PriceWatcher {
    type Msg = PriceChanged;

    async fn handle(&mut self, msg: PriceChanged, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.seen.send(msg);
        Ok(())
    }
}

#[tokio::test]
async fn subscribe_actor_forwards_events_until_the_actor_stops() {
    let system = system("ev-actor");
    let (tx, mut seen) = probe();
    let actor = system
        .spawn("prices", Props::new(move || PriceWatcher { seen: tx.clone() }))
        .unwrap();
    system.event_stream().subscribe_actor(actor.clone());
    assert_eq!(system.event_stream().publish(PriceChanged(1)), 1);
    system.event_stream().publish(PriceChanged(2));
    assert_eq!(seen.next("the first event").await, PriceChanged(1));
    assert_eq!(seen.next("the second event").await, PriceChanged(2));

    actor.stop();
    wait("the actor to stop", actor.terminated()).await;
    eventually("the forwarding subscription to end", || {
        system.event_stream().publish(PriceChanged(3)) == 0
    })
    .await;
    assert_eq!(
        system.dead_letter_stats().total,
        0,
        "nothing was forwarded to the dead actor"
    );
    shutdown(&system).await;
}
