//! Every router logic, as a pool and as a group, and who handled what.
//!
//! The routees are alike except for speed: the first takes 40 ms a job,
//! the next 20, 10 and 2 ms. A pool router spawns its own four (named
//! `$a`, `$b`, ...); a group router routes over four actors spawned
//! beforehand (`g0` to `g3`). For each logic the example sends a burst of
//! jobs through the router and prints which routee did which job:
//!
//! - round-robin, random, smallest-mailbox, balancing and broadcast;
//! - consistent hashing: the same key always lands on the same routee, and
//!   adding a routee moves only the keys the new routee takes over;
//! - scatter-gather-first-completed and tail-chopping, which only make
//!   sense for asks: the first answer wins.
//!
//! Run it with `cargo run --example routers`.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use compaktor::{
    Actor, ActorError, ActorRef, ActorSystem, Context, Props, ReplyTo, Router, RouterConfig, SystemConfig,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long each routee takes per job, by position.
const DELAYS_MS: [u64; 4] = [40, 20, 10, 2];
const JOBS: u64 = 16;
/// Jobs arrive this far apart, so the load-aware logics can see backlogs.
const PACE: Duration = Duration::from_millis(1);
/// How long any one step of the example may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// (job id, routee name), sent back when a job is done.
type Done = mpsc::UnboundedSender<(u64, String)>;

/// Broadcasting and the ask-only logics copy messages, so `Msg` is `Clone`.
#[derive(Clone)]
enum Msg {
    /// A job; `key` is what consistent hashing routes by.
    Job { id: u64, key: String, done: Done },
    /// A request that wants the routee's name as the answer.
    Quote { sent: Instant, reply: ReplyTo<String> },
    /// The routee's name and speed. Asked directly, it also tells us that
    /// everything sent to that routee before has been handled.
    Describe(ReplyTo<String>),
}

struct Routee {
    name: String,
    delay: Duration,
}

impl Routee {
    fn new(delay_ms: u64) -> Self {
        Routee {
            name: String::new(),
            delay: Duration::from_millis(delay_ms),
        }
    }
}

impl Actor for Routee {
    type Msg = Msg;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.name = ctx.path().name().to_owned();
        Ok(())
    }

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Msg::Job { id, done, .. } => {
                // Stands in for real work of this routee's speed.
                tokio::time::sleep(self.delay).await;
                let _ = done.send((id, self.name.clone()));
            }
            Msg::Quote { sent, reply } => {
                println!(
                    "    {} got the request at +{} ms",
                    self.name,
                    sent.elapsed().as_millis()
                );
                tokio::time::sleep(self.delay).await;
                if reply.send(self.name.clone()).is_err() {
                    println!(
                        "    {} answered at +{} ms: too late, the asker already had an answer",
                        self.name,
                        sent.elapsed().as_millis()
                    );
                }
            }
            Msg::Describe(reply) => {
                let _ = reply.send(format!("{} ({} ms/job)", self.name, self.delay.as_millis()));
            }
        }
        Ok(())
    }
}

/// Props for a pool's routees: each new one takes the next speed, in the
/// order they happen to start (so `$a` is not necessarily the slowest).
fn pool_props() -> Props<Routee> {
    let next = Arc::new(AtomicUsize::new(0));
    Props::new(move || Routee::new(DELAYS_MS[next.fetch_add(1, Ordering::Relaxed) % DELAYS_MS.len()]))
}

/// Tells the router a job for each id, one every `pace` if given, and
/// collects `expect` results.
async fn deal(
    router: &Router<Msg>,
    ids: impl IntoIterator<Item = u64>,
    key: impl Fn(u64) -> String,
    pace: Option<Duration>,
    expect: usize,
) -> Result<Vec<(u64, String)>, Box<dyn Error>> {
    let (done, mut results) = mpsc::unbounded_channel();
    let to = router.actor_ref();
    let mut ticks = pace.map(tokio::time::interval);
    for id in ids {
        if let Some(ticks) = ticks.as_mut() {
            ticks.tick().await;
        }
        to.tell(Msg::Job {
            id,
            key: key(id),
            done: done.clone(),
        });
    }
    drop(done);
    let deadline = Instant::now() + DEADLINE;
    let mut out = Vec::with_capacity(expect);
    while out.len() < expect {
        match tokio::time::timeout_at(deadline, results.recv()).await {
            Ok(Some(result)) => out.push(result),
            Ok(None) => return Err(format!("{} of {expect} jobs were lost", expect - out.len()).into()),
            Err(_) => return Err(format!("only {} of {expect} jobs done within {DEADLINE:?}", out.len()).into()),
        }
    }
    Ok(out)
}

/// Prints, for each routee of `router`, the jobs it did.
async fn show(router: &Router<Msg>, results: &[(u64, String)]) -> Result<(), Box<dyn Error>> {
    for routee in router.routees() {
        let label = routee.ask(Msg::Describe, DEADLINE).await?;
        let name = routee.path().name();
        let ids: Vec<String> = results
            .iter()
            .filter(|(_, by)| by == name)
            .map(|(id, _)| id.to_string())
            .collect();
        println!("  {label:<17} {:>2} jobs  {}", ids.len(), ids.join(" "));
    }
    Ok(())
}

/// Which routee each key went to; an error if a key went to two.
fn owners(results: &[(u64, String)], key: impl Fn(u64) -> String) -> Result<BTreeMap<String, String>, String> {
    let mut owners = BTreeMap::new();
    for (id, by) in results {
        if let Some(other) = owners.insert(key(*id), by.clone()) {
            if &other != by {
                return Err(format!("key {} went to both {other} and {by}", key(*id)));
            }
        }
    }
    Ok(owners)
}

/// Consistent hashing: keys stick to routees; `grow` adds one routee.
async fn hashing<F: std::future::Future<Output = Result<(), Box<dyn Error>>>>(
    router: &Router<Msg>,
    grow: impl FnOnce() -> F,
) -> Result<(), Box<dyn Error>> {
    const KEYS: u64 = 60;
    let key = |id: u64| format!("user-{}", id % KEYS);
    let count = |owners: &BTreeMap<String, String>| {
        let mut per: BTreeMap<&str, usize> = BTreeMap::new();
        for routee in owners.values() {
            *per.entry(routee).or_default() += 1;
        }
        per.iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Every key twice: `owners` fails if the two copies land on different routees.
    let before = owners(&deal(router, 0..2 * KEYS, key, None, 2 * KEYS as usize).await?, key)?;
    println!(
        "  {KEYS} keys, each sent twice, each time to the same routee; keys per routee: {}",
        count(&before)
    );
    let sample: Vec<String> = before.iter().take(6).map(|(k, r)| format!("{k}→{r}")).collect();
    println!("  for example {} ...", sample.join(" "));

    let old: Vec<String> = router.routees().iter().map(|r| r.path().name().to_owned()).collect();
    grow().await?;
    let after = owners(&deal(router, 0..KEYS, key, None, KEYS as usize).await?, key)?;
    let added: Vec<String> = router
        .routees()
        .iter()
        .map(|r| r.path().name().to_owned())
        .filter(|name| !old.contains(name))
        .collect();
    let moved = before.iter().filter(|(k, r)| after.get(*k) != Some(r)).count();
    let only_to_new = before
        .iter()
        .all(|(k, r)| after.get(k) == Some(r) || added.contains(&after[k]));
    println!(
        "  added {}: {moved} of {KEYS} keys moved; keys per routee: {}",
        added.join(", "),
        count(&after)
    );
    println!("  every key that moved went to the new routee: {only_to_new}");
    if !only_to_new {
        return Err("consistent hashing moved a key between old routees".into());
    }
    Ok(())
}

/// Asks through the router and prints who answered first.
async fn quote(router: &Router<Msg>) -> Result<(), Box<dyn Error>> {
    let sent = Instant::now();
    let first = router
        .actor_ref()
        .ask(|reply| Msg::Quote { sent, reply }, Duration::from_secs(1))
        .await?;
    println!("  → answer from {first} after {} ms", sent.elapsed().as_millis());
    // Let the slower routees finish, so their lines land in this section.
    for routee in router.routees() {
        routee.ask(Msg::Describe, DEADLINE).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let system = ActorSystem::new(SystemConfig::new("routers"))?;

    // The group's routees: ordinary actors, spawned and named by us.
    let group: Vec<ActorRef<Msg>> = DELAYS_MS
        .iter()
        .enumerate()
        .map(|(i, &ms)| system.spawn(&format!("g{i}"), Props::new(move || Routee::new(ms))))
        .collect::<Result<_, _>>()?;

    type Logic = fn(RouterConfig<Msg>) -> RouterConfig<Msg>;
    let logics: [(&str, Logic); 5] = [
        ("round-robin", RouterConfig::round_robin),
        ("random", RouterConfig::random),
        ("smallest-mailbox", RouterConfig::smallest_mailbox),
        ("balancing", RouterConfig::balancing),
        ("broadcast", RouterConfig::broadcast),
    ];
    for (logic_name, logic) in logics {
        let flavours = [
            ("pool", RouterConfig::pool(4, pool_props())),
            ("group", RouterConfig::group(group.clone())),
        ];
        for (flavour, config) in flavours {
            let name = format!("{logic_name}-{flavour}");
            let router = match system.spawn_router(&name, logic(config)) {
                Ok(router) => router,
                Err(error) => {
                    println!("{logic_name}, {flavour}: refused: {error}");
                    continue;
                }
            };
            // A broadcast job is done by every routee.
            let (jobs, expect) = match logic_name {
                "broadcast" => (2, 2 * router.routees().len()),
                _ => (JOBS, JOBS as usize),
            };
            println!(
                "{logic_name}, {flavour}: {jobs} jobs, one every {} ms",
                PACE.as_millis()
            );
            let results = deal(&router, 0..jobs, |_| String::new(), Some(PACE), expect).await?;
            show(&router, &results).await?;
        }
    }

    let by_key = |msg: &Msg| match msg {
        Msg::Job { key, .. } => key.clone(),
        _ => String::new(),
    };
    // Here speed does not matter: these routees take no time per job.
    println!("consistent-hashing, pool of 3, then resized to 4");
    let pool = system.spawn_router(
        "hashing-pool",
        RouterConfig::pool(3, Props::new(|| Routee::new(0))).consistent_hashing(by_key),
    )?;
    hashing(&pool, || async { Ok(pool.resize(4).await?) }).await?;

    println!("consistent-hashing, group of h0..h2, then h3 added");
    let hashed: Vec<ActorRef<Msg>> = (0..4)
        .map(|i| system.spawn(&format!("h{i}"), Props::new(|| Routee::new(0))))
        .collect::<Result<_, _>>()?;
    let hashed_group = system.spawn_router(
        "hashing-group",
        RouterConfig::group(hashed[..3].to_vec()).consistent_hashing(by_key),
    )?;
    hashing(&hashed_group, || async {
        Ok(hashed_group.add_routee(hashed[3].clone())?)
    })
    .await?;

    // Tail-chopping starts at a random routee, so it gets a few tries.
    let asks: [(&str, Logic, u32); 2] = [
        (
            "scatter-gather-first-completed",
            RouterConfig::scatter_gather_first_completed,
            1,
        ),
        (
            "tail-chopping every 15 ms",
            |c| c.tail_chopping(Duration::from_millis(15)),
            3,
        ),
    ];
    for (i, (logic_name, logic, asks_each)) in asks.into_iter().enumerate() {
        let flavours = [
            ("pool", RouterConfig::pool(4, pool_props())),
            ("group", RouterConfig::group(group.clone())),
        ];
        for (flavour, config) in flavours {
            let router = system.spawn_router(&format!("asks-{i}-{flavour}"), logic(config))?;
            for n in 1..=asks_each {
                println!("{logic_name}, {flavour}: ask {n} of {asks_each}");
                quote(&router).await?;
            }
        }
    }

    system.shutdown().await?;
    let dead = system.dead_letter_stats();
    println!("done; dead letters: {}", dead.total);
    Ok(())
}
