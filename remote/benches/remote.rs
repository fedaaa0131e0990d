//! The remoting benchmark: two nodes in two OS processes on 127.0.0.1 with
//! mutual TLS, each figure beside a floor measured in the same run.
//!
//! ```text
//! cargo bench -p compaktor-remote --bench remote                       # everything
//! cargo bench -p compaktor-remote --bench remote -- tell ask fan slow  # a selection
//! COMPAKTOR_BENCH_WORKERS=1 cargo bench -p compaktor-remote --bench remote  # workers per process (2)
//! ```
//!
//! This process is node A. It issues both nodes' certificates from a fresh
//! CA, re-executes its own binary as node B (`--node-b`, TLS material in the
//! environment), reads B's addresses from B's stdout with a deadline, and
//! drives B with one-line commands on its stdin (see `remote/child.rs`). B
//! exits when its stdin closes and is killed when A drops it.
//!
//! Figures, from issue 4's "Speed":
//! 1. tell: 1 000 000 `Payload`s (a `u64` and 32 bytes) from A to one actor
//!    on B, timed until that actor has counted them all and told A so;
//! 2. ask: 20 000 sequential asks from A to an actor on B, p50 and p99;
//! 3. 8 senders on A to 8 actors on B, 125 000 messages each: aggregate;
//! 4. a receiver 10× slower than its sender, with the default send queue
//!    and a bounded drop-newest mailbox: peak RSS of both processes (peaks
//!    reset first), and where the overflow went (dead letters on A and B).
//!
//! Floors, over the same TLS between the same two processes, from tasks on
//! the same runtime workers as the node's (`remote/floor.rs`): raw quinn,
//! one long-lived stream of length-delimited frames as long as our message
//! on the wire (its texts numbered, `remote/src/compress.rs`), written 1024
//! frames to a buffer, a buffer per write (throughput); one request frame
//! and one reply frame at a time on one stream (latency). Throughputs are the
//! median of 3 runs, floor and ours alternating; the asks alternate with
//! the floor's round trips in 4 blocks.

#[path = "remote/child.rs"]
mod child;
#[path = "remote/floor.rs"]
mod floor;
#[path = "remote/memory.rs"]
mod memory;
#[path = "remote/process.rs"]
mod process;
#[path = "remote/slow.rs"]
mod slow;
#[path = "remote/table.rs"]
mod table;

use std::ops::Range;
use std::time::{Duration, Instant};

use compaktor_actor::{Actor, ActorError, ActorPath, ActorRef, Context, Props, ReplyTo};
use compaktor_remote::{CertificateAuthority, Codec, Postcard, Registry, RemoteConfig, RemoteNode};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::process::NodeB;
use crate::table::{median, percentiles, print_table, Row};

const TELL_N: u64 = 1_000_000;
const SENDERS: u64 = 8;
const ASKS: usize = 20_000;
const WARM_ASKS: usize = 1_000;
/// Blocks of asks, alternating with blocks of the floor's round trips.
const ASK_BLOCKS: usize = 4;
const RUNS: usize = 3;
/// How long any one wait on the other node may take.
const DEADLINE: Duration = Duration::from_secs(30);

const NODE_B: &str = "--node-b";
const ENV_CA: &str = "COMPAKTOR_BENCH_CA_PEM";
const ENV_CERT: &str = "COMPAKTOR_BENCH_CERT_PEM";
const ENV_KEY: &str = "COMPAKTOR_BENCH_KEY_PEM";
const ENV_WORKERS: &str = "COMPAKTOR_BENCH_WORKERS";

/// The message of the throughput figures: a `u64` and 32 bytes.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    seq: u64,
    data: [u8; 32],
}

/// A sink on B has counted what it expected.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    seen: u64,
}

/// An ask, answered with a count.
#[derive(Debug, Serialize, Deserialize)]
struct Ping(ReplyTo<u64>);

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Payload>("bench.Payload")
        .register::<Done>("bench.Done")
        .register::<Ping>("bench.Ping")
        .register::<u64>("u64");
    registry
}

/// Tokio workers per process: `COMPAKTOR_BENCH_WORKERS`, default 2.
fn workers() -> usize {
    std::env::var(ENV_WORKERS)
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()
        .expect("a runtime")
}

fn main() {
    if std::env::args().any(|a| a == NODE_B) {
        return child::run();
    }
    let started = Instant::now();
    println!(
        "compaktor-remote benchmark: 2 processes on 127.0.0.1, mutual TLS (ring), tokio {} workers each\n",
        workers()
    );
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let (rows, notes) = runtime().block_on(bench(wanted));
    print_table(&rows);
    for note in notes {
        println!("\n{note}");
    }
    println!("\nwhole run {:.1} s", started.elapsed().as_secs_f64());
}

async fn bench(wanted: impl Fn(&str) -> bool) -> (Vec<Row>, Vec<String>) {
    let ca = CertificateAuthority::generate("compaktor bench").expect("a CA");
    let id_a = ca.issue().expect("A's identity");
    let mut b = NodeB::start(&ca.issue().expect("B's identity")).await;
    println!("node B: pid {}, node {}, floor {}\n", b.process.id(), b.node, b.floor);
    let mut config = RemoteConfig::new("a", id_a.clone());
    // Figures 1–3 measure speed, not overflow: room for a whole run.
    config.send_queue = 2 * TELL_N as usize;
    let a = RemoteNode::start(config, registry()).await.expect("node a starts");
    let (done_tx, dones) = mpsc::unbounded_channel();
    let waiter = a
        .system()
        .spawn("done", Props::new(move || Waiter(done_tx.clone())))
        .expect("the waiter spawns");
    let raw = floor::Raw::connect(&id_a, b.floor).await;
    let mut bench = Bench {
        a,
        waiter: waiter.path().to_string(),
        dones,
        next: 0,
        last_path: String::new(),
    };
    let mut rows = Vec::new();

    // Warm up both connections (B tells A at the end) and the allocators.
    bench.tell(&mut b, 1, 20_000).await;
    let tell_len = bench.tell_frame_len();
    raw.stream_on_worker(tell_len, 20_000).await;

    let mut tell = None;
    if wanted("tell") {
        let (figure, rate) = bench.one_to_one(&mut b, &raw, tell_len).await;
        rows.extend(figure);
        tell = Some(rate);
    }
    if wanted("ask") {
        rows.extend(bench.asks(&mut b, &raw).await);
    }
    if wanted("fan") {
        rows.push(bench.many_to_many(&mut b, &raw, tell_len).await);
    }
    let mut notes = Vec::new();
    if wanted("slow") {
        let tell = match tell {
            Some(rate) => rate,
            None => bench.tell(&mut b, 1, TELL_N).await,
        };
        drop(raw);
        bench.a.shutdown().await;
        let (figure, note) = slow::receiver(&mut b, id_a, tell).await;
        rows.extend(figure);
        notes.push(note);
    }
    (rows, notes)
}

/// Forwards each `Done` to the benchmark.
struct Waiter(mpsc::UnboundedSender<u64>);

impl Actor for Waiter {
    type Msg = Done;

    async fn handle(&mut self, done: Done, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.0.send(done.seen);
        Ok(())
    }
}

/// Node A and what it needs to run figures 1–3.
struct Bench {
    a: RemoteNode,
    /// The waiter's path, for B's sinks.
    waiter: String,
    dones: mpsc::UnboundedReceiver<u64>,
    /// Sinks made so far, to name the next.
    next: usize,
    /// The last sink's path.
    last_path: String,
}

impl Bench {
    /// `senders` tasks on A each tell `each` messages to a sink of their
    /// own on B; messages per second until every sink has said it has all.
    async fn tell(&mut self, b: &mut NodeB, senders: u64, each: u64) -> f64 {
        let mut targets = Vec::new();
        for i in 0..senders {
            let name = format!("tell-{}", self.next + i as usize);
            let path = b.sink(format!("sink {name} {each} {}", self.waiter)).await;
            targets.push(self.a.lookup::<Payload>(&path).await.expect("the sink, from A"));
            self.last_path = path;
        }
        self.next += senders as usize;
        let start = Instant::now();
        for target in targets {
            tokio::spawn(send(target, 0..each));
        }
        for _ in 0..senders {
            match tokio::time::timeout(DEADLINE, self.dones.recv()).await {
                Ok(Some(seen)) => assert_eq!(seen, each),
                _ => panic!("the sinks on B did not report {each} messages each within {DEADLINE:?}"),
            }
        }
        (senders * each) as f64 / start.elapsed().as_secs_f64()
    }

    /// Figure 1; returns the rows and the median rate.
    async fn one_to_one(&mut self, b: &mut NodeB, raw: &floor::Raw, tell_len: usize) -> (Vec<Row>, f64) {
        let dead_before = (self.a.system().dead_letter_stats().total, b.dead_letters().await);
        let (mut floors, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            floors.push(raw.stream_on_worker(tell_len, TELL_N).await);
            ours.push(self.tell(b, 1, TELL_N).await);
        }
        let (floor, tell) = (median(floors), median(ours));
        let dead = (
            self.a.system().dead_letter_stats().total - dead_before.0,
            b.dead_letters().await - dead_before.1,
        );
        let rows = vec![
            Row::throughput(
                format!("tell 1→1, {TELL_N} msgs of {tell_len} B (msg/s)"),
                tell,
                floor,
                "≥3M/s, ≥0.25×",
                Some(tell >= 3e6 && tell / floor >= 0.25),
            ),
            Row {
                figure: "tell 1→1: dead letters A / B".into(),
                value: format!("{} / {}", dead.0, dead.1),
                floor: "—".into(),
                ratio: "—".into(),
                target: "0",
                met: Some(dead == (0, 0)),
            },
        ];
        (rows, tell)
    }

    /// Figure 3.
    async fn many_to_many(&mut self, b: &mut NodeB, raw: &floor::Raw, tell_len: usize) -> Row {
        let (mut floors, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            floors.push(raw.stream_on_worker(tell_len, TELL_N).await);
            ours.push(self.tell(b, SENDERS, TELL_N / SENDERS).await);
        }
        Row::throughput(
            format!("tell {SENDERS}→{SENDERS} aggregate (msg/s)"),
            median(ours),
            median(floors),
            "—",
            None,
        )
    }

    /// The length on the wire of a `Payload` frame to the last sink.
    fn tell_frame_len(&self) -> usize {
        wire_len(None, encoded_len(&payload(TELL_N / 2)))
    }

    /// Figure 2 and its floor, in alternating blocks so that drift in the
    /// machine's load falls on both alike.
    async fn asks(&mut self, b: &mut NodeB, raw: &floor::Raw) -> Vec<Row> {
        let path = b.call("echo echo", "path").await.remove(0);
        let echo = self.a.lookup::<Ping>(&path).await.expect("the echo, from A");
        // The request carries A's temporary reply address; the reply goes to it.
        let root = ActorPath::root(self.a.system().address().clone()).to_string();
        let temp = format!("{root}temp/{}", WARM_ASKS + ASKS);
        let request = wire_len(None, 1 + temp.len());
        let reply = wire_len(Some(&temp), encoded_len(&(ASKS as u64)));
        let (block, warm) = (ASKS / ASK_BLOCKS, WARM_ASKS / ASK_BLOCKS);
        let (mut floor, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..ASK_BLOCKS {
            let raw = raw.clone();
            let samples = tokio::spawn(async move { raw.request_reply(request, reply, warm, block).await });
            floor.extend(samples.await.expect("the raw asker"));
            let echo = echo.clone();
            let samples = tokio::spawn(async move {
                let mut samples = Vec::with_capacity(block);
                for i in 0..warm + block {
                    let start = Instant::now();
                    echo.ask(Ping, DEADLINE).await.expect("an answer");
                    if i >= warm {
                        samples.push(start.elapsed());
                    }
                }
                samples
            });
            ours.extend(samples.await.expect("the asker"));
        }
        let (floor, ours) = (percentiles(floor), percentiles(ours));
        vec![
            Row::latency(
                format!("ask p50, {ASKS} sequential (µs)"),
                ours.0,
                floor.0,
                "≤1.3×",
                Some(ours.0 <= 1.3 * floor.0),
            ),
            Row::latency("ask p99 (µs)".into(), ours.1, floor.1, "—", None),
        ]
    }
}

fn payload(seq: u64) -> Payload {
    Payload { seq, data: [7; 32] }
}

async fn send(target: ActorRef<Payload>, seqs: Range<u64>) {
    for seq in seqs {
        target.tell(payload(seq));
        // A sender that never awaits would starve the tasks queued behind it.
        if seq % 1024 == 1023 {
            tokio::task::yield_now().await;
        }
    }
}

fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut bytes = Vec::new();
    Postcard::encode(value, &mut bytes).expect("encodes");
    bytes.len()
}

/// A user message's length on the wire once its stream has numbered its
/// texts (`remote/src/compress.rs`): length, kind, recipient, sender
/// (none) and manifest as one-byte numbers — or the recipient literally,
/// when it is a reply address `literal` — then the payload.
fn wire_len(literal: Option<&str>, payload: usize) -> usize {
    let recipient = literal.map_or(1, |text| if text.len() < 32 { 1 } else { 2 } + text.len());
    4 + 1 + recipient + 1 + 1 + payload
}
