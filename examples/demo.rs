//! The main demo: an ingestion service spread over three node processes.
//!
//! The main process is the `ingest` node: it generates raw sensor lines and
//! keeps the aggregate. It starts two worker nodes as child processes (this
//! same program, re-executed) with certificates from one freshly generated
//! CA, and spawns two parsers on each of them by remote spawn, handing each
//! parser a ref to the aggregator. A consistent-hashing router over the four
//! remote parsers sends every reading of one sensor to the same parser, so
//! it stays in order. Some lines are malformed: their parser panics on its
//! own node, its supervisor there restarts it, and the stream flows on.
//! Parsed readings cross back to the aggregator. At the end the demo prints
//! the aggregate, each node's connections, and the ingest node's health.
//!
//! Run it with `cargo run --release --example demo`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use compaktor::remote::{CertificateAuthority, NodeIdentity, Registry, RemoteConfig, RemoteNode};
use compaktor::{stable_hash, Actor, ActorError, ActorRef, Context, DeadLetter, Props, ReplyTo, RouterConfig};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SENSORS: u64 = 50;
const LINES: u64 = 200_000;
/// One line in this many is malformed and crashes its parser.
const POISON_EVERY: u64 = 20_000;
const WORKERS: usize = 2;
const PARSERS_PER_WORKER: usize = 2;

/// A reading on its way to the aggregator.
#[derive(Serialize, Deserialize)]
enum Aggregate {
    Reading { sensor: u64, value: f64 },
    Report(ReplyTo<BTreeMap<u64, (u64, f64)>>),
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Aggregate>("demo.Aggregate")
        .register::<BTreeMap<u64, (u64, f64)>>("demo.Stats")
        .register::<String>("demo.Line")
        .register::<ActorRef<Aggregate>>("demo.Sink");
    registry
}

fn config(name: &str, identity: NodeIdentity) -> RemoteConfig {
    let mut config = RemoteConfig::new(name, identity);
    // The producer outruns the wire at first: room for the whole burst.
    config.send_queue = LINES as usize;
    config
}

#[derive(Default)]
struct Aggregator {
    /// sensor → (readings, sum)
    stats: BTreeMap<u64, (u64, f64)>,
}

impl Actor for Aggregator {
    type Msg = Aggregate;

    async fn handle(&mut self, msg: Aggregate, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Aggregate::Reading { sensor, value } => {
                let entry = self.stats.entry(sensor).or_default();
                entry.0 += 1;
                entry.1 += value;
            }
            Aggregate::Report(reply) => {
                let _ = reply.send(self.stats.clone());
            }
        }
        Ok(())
    }
}

/// `"sensor-<id>,<value>"`, parsed into a reading.
struct Parser {
    sink: ActorRef<Aggregate>,
}

impl Actor for Parser {
    type Msg = String;

    async fn handle(&mut self, line: String, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let (sensor, value) = line.split_once(',').ok_or("no comma")?;
        let sensor: u64 = sensor.strip_prefix("sensor-").ok_or("no sensor prefix")?.parse()?;
        // A poisoned line is a bug in our parser: it panics, and supervision restarts it.
        let value: f64 = value.parse().expect("the value is a number");
        self.sink.tell(Aggregate::Reading { sensor, value });
        Ok(())
    }
}

fn sensor_of(line: &str) -> u64 {
    line.split_once(',').map_or(0, |(sensor, _)| stable_hash(&sensor))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_writer(std::io::stderr)
        .init();
    // Supervision logs each failure; the default hook would print a second report.
    std::panic::set_hook(Box::new(|_| {}));
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        return worker(&args[2], Path::new(&args[3])).await;
    }
    ingest().await
}

/// A worker node: lets the ingest node spawn parsers here, and runs until
/// its stdin closes.
async fn worker(id: &str, certs: &Path) -> Result<(), Error> {
    let mut registry = registry();
    registry.factory("parser", |sink: ActorRef<Aggregate>| {
        Props::new(move || Parser { sink: sink.clone() })
    });
    let node = RemoteNode::start(config(id, identity(certs, id)?), registry).await?;
    println!("ready {}", node.local_addr());
    let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
    let health = node.system().health().await;
    eprintln!(
        "  [{id}] {} live actors, {} restarts, {} dead letters",
        health.live_actors, health.restarts, health.dead_letters.total
    );
    node.shutdown().await;
    Ok(())
}

fn identity(dir: &Path, id: &str) -> Result<NodeIdentity, Error> {
    let read = |name: String| std::fs::read_to_string(dir.join(name));
    Ok(NodeIdentity::from_pem(
        &read("ca.pem".into())?,
        &read(format!("{id}.pem"))?,
        &read(format!("{id}.key"))?,
    )?)
}

/// Starts a worker process and reads the address it listens on.
async fn start_worker(id: &str, certs: &Path) -> Result<(Child, SocketAddr), Error> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--worker", id])
        .arg(certs)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .map_err(|_| format!("worker {id} not ready within 20 s"))??
        .ok_or_else(|| format!("worker {id} exited before it was ready"))?;
    let addr = ready
        .strip_prefix("ready ")
        .ok_or("unexpected worker output")?
        .parse()?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

async fn ingest() -> Result<(), Error> {
    let certs = std::env::temp_dir().join(format!("compaktor-demo-{}", std::process::id()));
    std::fs::create_dir_all(&certs)?;
    let ca = CertificateAuthority::generate("demo")?;
    std::fs::write(certs.join("ca.pem"), ca.cert_pem())?;
    let ids: Vec<String> = (1..=WORKERS)
        .map(|i| format!("worker-{i}"))
        .chain(["ingest".into()])
        .collect();
    for id in &ids {
        let (_, cert, key) = ca.issue()?.to_pem();
        std::fs::write(certs.join(format!("{id}.pem")), cert)?;
        std::fs::write(certs.join(format!("{id}.key")), key)?;
    }

    let node = RemoteNode::start(config("ingest", identity(&certs, "ingest")?), registry()).await?;
    let system = node.system();
    let mut dead_letters = system.event_stream().subscribe::<DeadLetter>();
    let aggregator = system.spawn("aggregator", Props::<Aggregator>::default())?;

    let mut workers = Vec::new();
    let mut parsers = Vec::new();
    for id in &ids[..WORKERS] {
        let (child, addr) = start_worker(id, &certs).await?;
        for p in 0..PARSERS_PER_WORKER {
            let name = format!("parser-{p}");
            let parser = node
                .spawn_remote::<String, ActorRef<Aggregate>>(addr, "parser", Some(&name), aggregator.clone())
                .await?;
            println!("spawned {parser}");
            parsers.push(parser);
        }
        workers.push((id.clone(), child));
    }
    let router = system.spawn_router(
        "parsers",
        RouterConfig::group(parsers).consistent_hashing(|line: &String| sensor_of(line)),
    )?;
    let router = router.actor_ref();

    let started = Instant::now();
    let mut poisoned = 0;
    for i in 0..LINES {
        let sensor = i % SENSORS;
        if i % POISON_EVERY == POISON_EVERY - 1 {
            router.tell(format!("sensor-{sensor},not-a-number"));
            poisoned += 1;
        } else {
            router.tell(format!("sensor-{sensor},{}", (i % 100) as f64 / 10.0));
        }
    }

    // Wait until every good line has reached the aggregator.
    let expected = LINES - poisoned;
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let stats = aggregator.ask(Aggregate::Report, Duration::from_secs(5)).await?;
        let seen: u64 = stats.values().map(|(n, _)| n).sum();
        if seen >= expected {
            break stats;
        }
        if Instant::now() > deadline {
            return Err(format!("only {seen} of {expected} readings arrived within 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let elapsed = started.elapsed();

    println!(
        "{LINES} lines ({poisoned} poisoned) through {} supervised parsers on {WORKERS} worker nodes in {elapsed:.2?} ({:.0} lines/s, two network hops each)",
        WORKERS * PARSERS_PER_WORKER,
        LINES as f64 / elapsed.as_secs_f64()
    );
    for (sensor, (count, sum)) in stats.iter().take(5) {
        println!("  sensor-{sensor}: {count} readings, mean {:.2}", sum / *count as f64);
    }
    println!("  … and {} more sensors", stats.len().saturating_sub(5));
    for peer in node.peers() {
        println!(
            "peer {}: connected {}, incarnation {}",
            peer.address,
            peer.connected,
            peer.incarnation.map(|i| i.to_string()).unwrap_or_default()
        );
    }
    let health = system.health().await;
    println!("ingest node health: {}", serde_json::to_string_pretty(&health)?);

    // Closing a worker's stdin asks it to report and shut down.
    for (id, mut child) in workers {
        drop(child.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await??;
        if !status.success() {
            return Err(format!("{id} exited with {status}").into());
        }
    }
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&certs);
    let mut dropped = 0;
    while let Ok(Some(_)) = dead_letters.try_recv() {
        dropped += 1;
    }
    println!("dead letters on the ingest node: {dropped}");
    Ok(())
}
