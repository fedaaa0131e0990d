//! Routers: every routing logic as pool and as group, consistent-hash
//! stability, routee management while running, and how a router reacts to
//! routees that stop or fail.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use common::{eventually, probe, shutdown, system, wait, Gate, Rx, Tx};
use compaktor_actor::*;
use tokio::time::Instant;

/// How a routee answers `Ask`.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Now,
    After(Duration),
    Never,
}

#[derive(Clone)]
enum Job {
    /// Reported to the probe as (routee path, n).
    Work(u64),
    Who(ReplyTo<String>),
    Keyed(u64, ReplyTo<String>),
    /// Answered according to the routee's `Answer`; reported as (path, u64::MAX).
    Ask(ReplyTo<String>),
    /// How many `Work` this instance handled.
    Count(ReplyTo<u64>),
    Panic,
    /// Reports (path, u64::MAX - 1), then waits at the gate.
    Block(Gate),
}

const ASKED: u64 = u64::MAX;
const BLOCKED: u64 = u64::MAX - 1;

struct Routee {
    seen: Tx<(String, u64)>,
    answer: Answer,
    held: Vec<ReplyTo<String>>,
    count: u64,
}

impl Actor for Routee {
    type Msg = Job;

    async fn handle(&mut self, job: Job, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let me = ctx.path().to_string();
        match job {
            Job::Work(n) => {
                self.count += 1;
                let _ = self.seen.send((me, n));
            }
            Job::Who(reply) | Job::Keyed(_, reply) => {
                let _ = reply.send(me);
            }
            Job::Ask(reply) => {
                let _ = self.seen.send((me.clone(), ASKED));
                match self.answer {
                    Answer::Now => {
                        let _ = reply.send(me);
                    }
                    Answer::After(delay) => {
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = reply.send(me);
                        });
                    }
                    Answer::Never => self.held.push(reply),
                }
            }
            Job::Count(reply) => {
                let _ = reply.send(self.count);
            }
            Job::Panic => panic!("routee failure"),
            Job::Block(gate) => {
                let _ = self.seen.send((me, BLOCKED));
                gate.wait().await;
            }
        }
        Ok(())
    }
}

fn routee(seen: &Tx<(String, u64)>, answer: Answer) -> Props<Routee> {
    let seen = seen.clone();
    Props::new(move || Routee {
        seen: seen.clone(),
        answer,
        held: Vec::new(),
        count: 0,
    })
}

/// Top-level actors `<prefix>0`, `<prefix>1`, ... answering as given.
fn group_members(
    system: &ActorSystem,
    prefix: &str,
    answers: &[Answer],
    seen: &Tx<(String, u64)>,
) -> Vec<ActorRef<Job>> {
    answers
        .iter()
        .enumerate()
        .map(|(i, a)| system.spawn(&format!("{prefix}{i}"), routee(seen, *a)).unwrap())
        .collect()
}

fn key(job: &Job) -> u64 {
    match job {
        Job::Work(n) | Job::Keyed(n, _) => *n,
        _ => 0,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    RoundRobin,
    Random,
    SmallestMailbox,
    Balancing,
    Broadcast,
    ConsistentHashing,
    ScatterGather,
    TailChopping,
}

const KINDS: [Kind; 8] = [
    Kind::RoundRobin,
    Kind::Random,
    Kind::SmallestMailbox,
    Kind::Balancing,
    Kind::Broadcast,
    Kind::ConsistentHashing,
    Kind::ScatterGather,
    Kind::TailChopping,
];

fn with_kind(config: RouterConfig<Job>, kind: Kind) -> RouterConfig<Job> {
    match kind {
        Kind::RoundRobin => config.round_robin(),
        Kind::Random => config.random(),
        Kind::SmallestMailbox => config.smallest_mailbox(),
        Kind::Balancing => config.balancing(),
        Kind::Broadcast => config.broadcast(),
        Kind::ConsistentHashing => config.consistent_hashing(key),
        Kind::ScatterGather => config.scatter_gather_first_completed(),
        Kind::TailChopping => config.tail_chopping(Duration::from_millis(50)),
    }
}

/// Asks every routee directly: once all have answered, everything sent to
/// them before has been handled.
async fn drain(routees: &[ActorRef<Job>]) {
    for r in routees {
        r.ask(Job::Who, common::WAIT).await.expect("routee answers");
    }
}

async fn check_kind(
    system: &ActorSystem,
    kind: Kind,
    pool: bool,
    seen: &mut Rx<(String, u64)>,
    tx: &Tx<(String, u64)>,
) {
    let name = format!("{kind:?}-{}", if pool { "pool" } else { "group" });
    let base = if pool {
        RouterConfig::pool(3, routee(tx, Answer::Now))
    } else {
        RouterConfig::group(group_members(system, &format!("{name}-r"), &[Answer::Now; 3], tx))
    };
    let router = system.spawn_router(&name, with_kind(base, kind)).unwrap();
    let routees = router.routees();
    assert_eq!(routees.len(), 3, "{name}");
    let paths: HashSet<String> = routees.iter().map(|r| r.path().to_string()).collect();

    const N: u64 = 30;
    for n in 0..N {
        router.actor_ref().tell(Job::Work(n));
    }
    let copies = match kind {
        Kind::Broadcast | Kind::ScatterGather => 3,
        _ => 1,
    };
    let mut got: HashMap<u64, Vec<String>> = HashMap::new();
    for (path, n) in seen
        .take((N * copies) as usize, &format!("{name}: routed messages"))
        .await
    {
        assert!(paths.contains(&path), "{name}: {path} is not a routee");
        got.entry(n).or_default().push(path);
    }
    if kind != Kind::Balancing {
        drain(&routees).await;
        seen.assert_empty(&format!("{name}: no extra copies"));
    }
    for n in 0..N {
        let at = got.get(&n).map(Vec::len).unwrap_or(0);
        assert_eq!(at, copies as usize, "{name}: message {n} delivered {at} times");
        if copies == 3 {
            let distinct: HashSet<&String> = got[&n].iter().collect();
            assert_eq!(distinct.len(), 3, "{name}: every routee gets its own copy");
        }
    }

    let who = router
        .actor_ref()
        .ask(Job::Ask, common::WAIT)
        .await
        .unwrap_or_else(|e| panic!("{name}: ask through the router: {e}"));
    assert!(paths.contains(&who), "{name}: answered by {who}");
    // Take the "asked" reports so the next kind starts clean.
    drain(&routees).await;
    while seen.try_next().is_some() {}
    router.actor_ref().stop();
    wait("the router to stop", router.actor_ref().terminated()).await;
}

#[tokio::test]
async fn every_routing_logic_works_as_pool_and_as_group() {
    let system = system("rt-kinds");
    let (tx, mut seen) = probe();
    for kind in KINDS {
        check_kind(&system, kind, true, &mut seen, &tx).await;
        if kind == Kind::Balancing {
            let members = group_members(&system, "balancing-group-r", &[Answer::Now], &tx);
            let err = system
                .spawn_router("balancing-group", RouterConfig::group(members).balancing())
                .unwrap_err();
            assert!(matches!(err, SpawnError::InvalidRouter(_)), "{err:?}");
        } else {
            check_kind(&system, kind, false, &mut seen, &tx).await;
        }
    }
    assert_eq!(system.dead_letter_stats().total, 0);
    shutdown(&system).await;
}

#[tokio::test]
async fn round_robin_takes_routees_in_turn() {
    let system = system("rt-rr");
    let (tx, _seen) = probe();
    let router = system
        .spawn_router("rr", RouterConfig::pool(3, routee(&tx, Answer::Now)).round_robin())
        .unwrap();
    let mut order = Vec::new();
    for _ in 0..9 {
        order.push(router.actor_ref().ask(Job::Who, common::WAIT).await.unwrap());
    }
    let first: HashSet<&String> = order[..3].iter().collect();
    assert_eq!(first.len(), 3, "{order:?}");
    for (i, who) in order.iter().enumerate() {
        assert_eq!(who, &order[i % 3], "{order:?}");
    }
    shutdown(&system).await;
}

#[tokio::test]
async fn random_spreads_over_every_routee() {
    let system = system("rt-random");
    let (tx, mut seen) = probe();
    let router = system
        .spawn_router("random", RouterConfig::pool(4, routee(&tx, Answer::Now)).random())
        .unwrap();
    for n in 0..400 {
        router.actor_ref().tell(Job::Work(n));
    }
    let mut per: HashMap<String, usize> = HashMap::new();
    for (path, _) in seen.take(400, "randomly routed messages").await {
        *per.entry(path).or_default() += 1;
    }
    assert_eq!(per.len(), 4, "every routee got some: {per:?}");
    shutdown(&system).await;
}

#[tokio::test]
async fn smallest_mailbox_avoids_busy_and_backed_up_routees() {
    let system = system("rt-smallest");
    let (tx, mut seen) = probe();
    let members = group_members(&system, "r", &[Answer::Now; 3], &tx);
    let router = system
        .spawn_router("smallest", RouterConfig::group(members.clone()).smallest_mailbox())
        .unwrap();
    let gate = Gate::new();
    // r0 busy with an empty mailbox, r1 busy with a backlog: r2 is idle.
    members[0].tell(Job::Block(gate.clone()));
    members[1].tell(Job::Block(gate.clone()));
    seen.take(2, "r0 and r1 to be busy").await;
    for n in 0..100 {
        members[1].tell(Job::Work(n));
    }
    for _ in 0..20 {
        let who = router.actor_ref().ask(Job::Who, common::WAIT).await.unwrap();
        assert_eq!(&who, &members[2].path().to_string());
    }
    // Now r2 is blocked too and r1 still has its backlog: r0 (busy, empty) wins.
    members[2].tell(Job::Block(gate.clone()));
    for n in 0..3 {
        members[2].tell(Job::Work(n));
    }
    seen.next("r2 to be busy").await;
    router.actor_ref().tell(Job::Work(1000));
    gate.open();
    let mut handled_1000 = None;
    while handled_1000.is_none() {
        let (path, n) = seen.next("the routed message").await;
        if n == 1000 {
            handled_1000 = Some(path);
        }
    }
    assert_eq!(handled_1000.unwrap(), members[0].path().to_string());
    shutdown(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balancing_routees_share_work_and_a_busy_one_takes_none() {
    let system = system("rt-balancing");
    let (tx, mut seen) = probe();
    let router = system
        .spawn_router("balancing", RouterConfig::pool(3, routee(&tx, Answer::Now)).balancing())
        .unwrap();
    let gate = Gate::new();
    router.actor_ref().tell(Job::Block(gate.clone()));
    let (blocked, n) = seen.next("a routee to take the blocking job").await;
    assert_eq!(n, BLOCKED);
    for n in 0..60 {
        router.actor_ref().tell(Job::Work(n));
    }
    let got = seen.take(60, "the idle routees to take all the work").await;
    assert!(
        got.iter().all(|(path, _)| *path != blocked),
        "the busy routee took work"
    );
    let mut ns: Vec<u64> = got.iter().map(|(_, n)| *n).collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..60).collect::<Vec<_>>());
    gate.open();

    let outsider = system.spawn("outsider", routee(&tx, Answer::Now)).unwrap();
    assert_eq!(router.add_routee(outsider), Err(RouterError::Balancing));
    shutdown(&system).await;
}

/// The routee path each key maps to, asked through `router`.
async fn owners(router: &Router<Job>, keys: std::ops::Range<u64>) -> BTreeMap<u64, String> {
    let mut map = BTreeMap::new();
    for k in keys {
        let who = router
            .actor_ref()
            .ask(|r| Job::Keyed(k, r), common::WAIT)
            .await
            .unwrap();
        map.insert(k, who);
    }
    map
}

#[tokio::test]
async fn consistent_hashing_is_stable_and_moves_only_the_keys_that_must_move() {
    let system = system("rt-hash");
    let (tx, _seen) = probe();
    let members = group_members(&system, "r", &[Answer::Now; 5], &tx);
    let config = || RouterConfig::group(members[..4].to_vec()).consistent_hashing(key);
    let router = system.spawn_router("hash", config()).unwrap();
    const KEYS: std::ops::Range<u64> = 0..400;
    let before = owners(&router, KEYS).await;
    assert_eq!(owners(&router, KEYS).await, before, "same key, same routee");
    let used: HashSet<&String> = before.values().collect();
    assert_eq!(used.len(), 4, "keys spread over every routee");

    // Another router over the same routees agrees: the ring depends on the
    // routees' paths, not on the router.
    let twin = system.spawn_router("hash-twin", config()).unwrap();
    assert_eq!(owners(&twin, KEYS).await, before);

    // Adding a routee moves keys only to it.
    let newcomer = members[4].path().to_string();
    router.add_routee(members[4].clone()).unwrap();
    let grown = owners(&router, KEYS).await;
    let moved: Vec<u64> = KEYS.filter(|k| grown[k] != before[k]).collect();
    assert!(
        moved.iter().all(|k| grown[k] == newcomer),
        "a key moved between old routees"
    );
    assert!(
        (20..200).contains(&moved.len()),
        "the newcomer takes about its share: {} keys",
        moved.len()
    );

    // Removing a routee moves only its keys.
    let leaver = members[1].path().to_string();
    assert!(router.remove_routee(&members[1]));
    let shrunk = owners(&router, KEYS).await;
    for k in KEYS {
        if grown[&k] == leaver {
            assert_ne!(shrunk[&k], leaver);
        } else {
            assert_eq!(shrunk[&k], grown[&k], "key {k} moved though its routee stayed");
        }
    }
    assert!(!members[1].is_terminated(), "removing a routee does not stop it");
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn scatter_gather_takes_the_first_answer() {
    let system = system("rt-scatter");
    let (tx, mut seen) = probe();
    let answers = [
        Answer::After(Duration::from_millis(300)),
        Answer::After(Duration::from_millis(10)),
        Answer::Never,
    ];
    let members = group_members(&system, "r", &answers, &tx);
    let router = system
        .spawn_router(
            "scatter",
            RouterConfig::group(members.clone()).scatter_gather_first_completed(),
        )
        .unwrap();
    let start = Instant::now();
    let who = router.actor_ref().ask(Job::Ask, Duration::from_secs(5)).await.unwrap();
    assert_eq!(who, members[1].path().to_string());
    assert!(start.elapsed() < Duration::from_millis(50), "{:?}", start.elapsed());
    let asked: HashSet<String> = seen
        .take(3, "every routee to be asked")
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(asked.len(), 3);

    // Nobody answers in time: a timeout.
    let silent = group_members(&system, "silent", &[Answer::Never, Answer::Never], &tx);
    let router = system
        .spawn_router("silent", RouterConfig::group(silent).scatter_gather_first_completed())
        .unwrap();
    assert_eq!(
        router.actor_ref().ask(Job::Ask, Duration::from_millis(100)).await,
        Err(AskError::Timeout)
    );
    shutdown(&system).await;
}

#[tokio::test(start_paused = true)]
async fn tail_chopping_asks_one_routee_after_another_until_one_answers() {
    let system = system("rt-tail");
    let (tx, mut seen) = probe();
    let interval = Duration::from_millis(100);

    // Each routee needs 250 ms: asked at 0, 100 and 200 ms; the first answers at 250 ms.
    let slow = group_members(&system, "slow", &[Answer::After(Duration::from_millis(250)); 3], &tx);
    let router = system
        .spawn_router("tail-slow", RouterConfig::group(slow).tail_chopping(interval))
        .unwrap();
    let start = Instant::now();
    let who = router.actor_ref().ask(Job::Ask, Duration::from_secs(5)).await.unwrap();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(260),
        "answered after {took:?}"
    );
    let asked = seen.take(3, "all three routees to be asked in turn").await;
    assert_eq!(asked[0].0, who, "the first routee asked answered first");
    let distinct: HashSet<&String> = asked.iter().map(|a| &a.0).collect();
    assert_eq!(distinct.len(), 3);

    // A routee that answers within the interval is the only one asked.
    let quick = group_members(&system, "quick", &[Answer::After(Duration::from_millis(10)); 3], &tx);
    let router = system
        .spawn_router("tail-quick", RouterConfig::group(quick.clone()).tail_chopping(interval))
        .unwrap();
    router.actor_ref().ask(Job::Ask, Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    seen.next("the one routee asked").await;
    seen.assert_empty("no second routee asked once the first answered in time");

    // Tells go round-robin.
    for n in 0..3 {
        router.actor_ref().tell(Job::Work(n));
    }
    let got: HashSet<String> = seen.take(3, "the tells").await.into_iter().map(|a| a.0).collect();
    assert_eq!(got.len(), 3);
    shutdown(&system).await;
}

#[tokio::test]
async fn routees_can_be_added_and_removed_while_the_router_runs() {
    let system = system("rt-manage");
    let (tx, mut seen) = probe();
    let members = group_members(&system, "r", &[Answer::Now; 3], &tx);
    let router = system
        .spawn_router("rr", RouterConfig::group(members[..2].to_vec()))
        .unwrap();
    let path = |i: usize| members[i].path().to_string();
    let per_routee = |got: Vec<(String, u64)>| {
        let mut per: HashMap<String, usize> = HashMap::new();
        for (p, _) in got {
            *per.entry(p).or_default() += 1;
        }
        per
    };

    for n in 0..30 {
        router.actor_ref().tell(Job::Work(n));
    }
    let per = per_routee(seen.take(30, "phase 1").await);
    assert_eq!(per.len(), 2);
    assert!(!per.contains_key(&path(2)));

    router.add_routee(members[2].clone()).unwrap();
    router.add_routee(members[2].clone()).unwrap(); // adding twice is adding once
    assert_eq!(router.routees().len(), 3);
    for n in 0..30 {
        router.actor_ref().tell(Job::Work(n));
    }
    let per = per_routee(seen.take(30, "phase 2").await);
    assert_eq!(per.get(&path(2)), Some(&10), "{per:?}");

    assert!(router.remove_routee(&members[0]));
    assert!(!router.remove_routee(&members[0]), "already removed");
    assert_eq!(router.routees().len(), 2);
    for n in 0..30 {
        router.actor_ref().tell(Job::Work(n));
    }
    let per = per_routee(seen.take(30, "phase 3").await);
    assert!(!per.contains_key(&path(0)), "{per:?}");
    assert!(!members[0].is_terminated());
    assert_eq!(system.dead_letter_stats().total, 0);
    shutdown(&system).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_routee_changes_lose_no_message() {
    let system = system("rt-churn");
    let (tx, mut seen) = probe();
    let members = group_members(&system, "r", &[Answer::Now; 4], &tx);
    let router = system
        .spawn_router("rr", RouterConfig::group(members[..2].to_vec()))
        .unwrap();
    const N: u64 = 20_000;
    let producer = tokio::spawn({
        let to = router.actor_ref();
        async move {
            for n in 0..N {
                to.tell(Job::Work(n));
                if n % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    for round in 0..200 {
        let m = &members[2 + round % 2];
        router.add_routee(m.clone()).unwrap();
        tokio::task::yield_now().await;
        router.remove_routee(m);
    }
    wait("the producer", producer).await.unwrap();
    let got = seen.take(N as usize, "every message").await;
    let distinct: HashSet<u64> = got.iter().map(|g| g.1).collect();
    assert_eq!(distinct.len(), N as usize);
    assert_eq!(system.dead_letter_stats().total, 0);
    shutdown(&system).await;
}

#[tokio::test]
async fn a_stopped_routee_leaves_its_group_and_pool() {
    let system = system("rt-stopped");
    let (tx, mut seen) = probe();
    let members = group_members(&system, "r", &[Answer::Now; 3], &tx);
    let group = system
        .spawn_router("group", RouterConfig::group(members.clone()))
        .unwrap();
    members[1].stop();
    wait("r1 to stop", members[1].terminated()).await;
    eventually("the group to drop r1", || group.routees().len() == 2).await;
    for n in 0..30 {
        group.actor_ref().tell(Job::Work(n));
    }
    let got = seen.take(30, "messages to the remaining routees").await;
    assert!(got.iter().all(|(p, _)| *p != members[1].path().to_string()));
    assert_eq!(system.dead_letter_stats().total, 0);

    let pool = system
        .spawn_router("pool", RouterConfig::pool(2, routee(&tx, Answer::Now)))
        .unwrap();
    let first = pool.routees()[0].clone();
    first.stop();
    eventually("the pool to drop its stopped routee", || pool.routees().len() == 1).await;
    assert_ne!(pool.routees()[0], first);
    // A pool whose last routee stops stops too.
    let last = pool.routees()[0].clone();
    last.stop();
    wait("the pool to stop", pool.actor_ref().terminated()).await;
    assert!(pool.routees().is_empty());
    shutdown(&system).await;
}

#[tokio::test]
async fn a_failing_pool_routee_is_restarted_and_keeps_routing() {
    let system = system("rt-restart");
    let (tx, mut seen) = probe();
    let pool = system
        .spawn_router("pool", RouterConfig::pool(2, routee(&tx, Answer::Now)))
        .unwrap();
    let before = pool.routees();
    for n in 0..10 {
        pool.actor_ref().tell(Job::Work(n));
    }
    seen.take(10, "the work").await;
    before[0].tell(Job::Panic);
    drain(&before).await; // answered by the restarted instance
    assert_eq!(pool.routees(), before, "same routees after the restart");
    let mut counts = Vec::new();
    for r in &before {
        counts.push(r.ask(Job::Count, common::WAIT).await.unwrap());
    }
    assert_eq!(
        counts,
        [0, 5],
        "the restarted routee starts fresh, the other keeps its state"
    );
    let mut who = HashSet::new();
    for _ in 0..4 {
        who.insert(pool.actor_ref().ask(Job::Who, common::WAIT).await.unwrap());
    }
    assert_eq!(who.len(), 2, "both routees still get work");

    // With a stopping supervisor, the failed routee is removed instead.
    let strict = system
        .spawn_router(
            "strict",
            RouterConfig::pool(2, routee(&tx, Answer::Now)).with_supervisor(SupervisorStrategy::stop_on_failure()),
        )
        .unwrap();
    let failing = strict.routees()[0].clone();
    failing.tell(Job::Panic);
    let t = wait("the failed routee to stop", failing.terminated()).await;
    assert!(t.reason().failure().is_some());
    eventually("the pool to drop the failed routee", || strict.routees().len() == 1).await;
    shutdown(&system).await;
}

#[tokio::test]
async fn pools_resize_and_groups_do_not() {
    let system = system("rt-resize");
    let (tx, _seen) = probe();
    let pool = system
        .spawn_router("pool", RouterConfig::pool(2, routee(&tx, Answer::Now)))
        .unwrap();
    pool.resize(4).await.unwrap();
    assert_eq!(pool.routees().len(), 4);
    let all = pool.routees();
    pool.resize(1).await.unwrap();
    assert_eq!(pool.routees().len(), 1);
    for r in all.iter().filter(|r| !pool.routees().contains(r)) {
        wait("an extra routee to stop", r.terminated()).await;
    }
    drain(&pool.routees()).await;

    let members = group_members(&system, "r", &[Answer::Now], &tx);
    let group = system.spawn_router("group", RouterConfig::group(members)).unwrap();
    assert_eq!(group.resize(3).await, Err(RouterError::NotAPool));
    shutdown(&system).await;
}

#[tokio::test]
async fn a_router_without_routees_refuses_work() {
    let system = system("rt-empty");
    let router = system
        .spawn_router("empty", RouterConfig::<Job>::group(Vec::new()))
        .unwrap();
    let mut dead = system.event_stream().subscribe::<DeadLetter>();
    router.actor_ref().tell(Job::Work(1));
    let letter = wait("a dead letter", dead.recv()).await.unwrap();
    assert_eq!(letter.reason(), DeadLetterReason::NoRoutees);
    assert_eq!(letter.recipient(), router.actor_ref().path());
    assert!(matches!(
        router.actor_ref().try_tell(Job::Work(2)),
        Err(TryTellError::Closed(Job::Work(2)))
    ));
    assert_eq!(
        router.actor_ref().ask(Job::Who, Duration::from_secs(5)).await,
        Err(AskError::Terminated)
    );
    shutdown(&system).await;
}

#[tokio::test]
async fn a_router_is_an_actor_found_by_path_and_stopped_with_its_pool() {
    let system = system("rt-lookup");
    let (tx, _seen) = probe();
    let pool = system
        .spawn_router("workers", RouterConfig::pool(3, routee(&tx, Answer::Now)))
        .unwrap();
    let found = system
        .lookup::<Job>("/user/workers")
        .expect("a router is found by path");
    assert_eq!(found, pool.actor_ref());
    let handle = Router::from_ref(&found).expect("the found ref is a router's");
    assert_eq!(handle.routees().len(), 3);
    assert!(found.ask(Job::Who, common::WAIT).await.is_ok());
    for r in pool.routees() {
        assert_eq!(
            r.path().parent(),
            Some(pool.actor_ref().path()),
            "pool routees are the router's children"
        );
    }
    let routees = pool.routees();
    found.stop();
    wait("the router to stop", found.terminated()).await;
    for r in routees {
        assert!(r.is_terminated(), "a pool's routees stop with it");
    }
    shutdown(&system).await;
}
