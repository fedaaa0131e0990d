//! The remoting benchmark: two nodes in two OS processes on 127.0.0.1 with
//! mutual TLS, each figure beside a floor measured in the same run.
//!
//! ```text
//! cargo bench -p compaktor-remote --bench remote
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
//! Floors, over the same TLS between the same two processes (`remote/floor.rs`):
//! raw quinn, one long-lived stream of length-delimited frames as long as
//! our encoded message, up to 1024 frames per write (throughput); one
//! request frame and one reply frame at a time on one stream (latency).
//! Throughputs are the median of 3 runs, floor and ours alternating.

#[path = "remote/child.rs"]
mod child;
#[path = "remote/floor.rs"]
mod floor;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use compaktor_actor::{Actor, ActorError, ActorPath, ActorRef, Context, Props, ReplyTo};
use compaktor_remote::{CertificateAuthority, Codec, NodeIdentity, Postcard, Registry, RemoteConfig, RemoteNode};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

const TELL_N: u64 = 1_000_000;
const SENDERS: u64 = 8;
const ASKS: usize = 20_000;
const WARM_ASKS: usize = 1_000;
const RUNS: usize = 3;
/// How long the sender of figure 4 sends.
const SLOW_FOR: Duration = Duration::from_secs(3);
/// The slow receiver's bounded mailbox.
const SLOW_MAILBOX: usize = 10_000;
/// The most figure 4 may grow either process's peak RSS by.
const SLOW_RSS_BOUND_MIB: f64 = 64.0;
/// How long any one wait on the other node may take.
const DEADLINE: Duration = Duration::from_secs(30);

const NODE_B: &str = "--node-b";
const ENV_CA: &str = "COMPAKTOR_BENCH_CA_PEM";
const ENV_CERT: &str = "COMPAKTOR_BENCH_CERT_PEM";
const ENV_KEY: &str = "COMPAKTOR_BENCH_KEY_PEM";

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A `kB` field of /proc/self/status (VmHWM, VmRSS).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0).
fn reset_peak() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("note: cannot reset the peak RSS; it covers the whole process");
    }
}

fn main() {
    if std::env::args().any(|a| a == NODE_B) {
        return child::run();
    }
    let started = Instant::now();
    println!("compaktor-remote benchmark: 2 processes on 127.0.0.1, mutual TLS (ring), tokio 2 workers each\n");
    let rows = runtime().block_on(bench());
    print_table(&rows);
    println!("\nwhole run {:.1} s", started.elapsed().as_secs_f64());
}

async fn bench() -> Vec<Row> {
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
    raw.stream(tell_len, 20_000, true).await;
    if std::env::var("FLOOR_ONLY").is_ok() {
        for c in [true, false, true, false, true, false] {
            raw.stream(tell_len, TELL_N, c).await;
        }
        std::process::exit(0);
    }
    if std::env::var("TELL_ONLY").is_ok() {
        for _ in 0..5 {
            eprintln!("tell {:.0}", bench.tell(&mut b, 1, TELL_N).await);
        }
        std::process::exit(0);
    }

    // 1. tell 1 → 1.
    let dead_before = (bench.a.system().dead_letter_stats().total, b.dead_letters().await);
    let (mut floors, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        floors.push(raw.stream(tell_len, TELL_N, true).await);
        ours.push(bench.tell(&mut b, 1, TELL_N).await);
    }
    let (floor, tell) = (median(floors), median(ours));
    let dead = (
        bench.a.system().dead_letter_stats().total - dead_before.0,
        b.dead_letters().await - dead_before.1,
    );
    rows.push(Row::throughput(
        format!("tell 1→1, {} msgs of {tell_len} B (msg/s)", TELL_N),
        tell,
        floor,
        "≥3M/s, ≥0.25×",
        Some(tell >= 3e6 && tell / floor >= 0.25),
    ));
    rows.push(Row {
        figure: "tell 1→1: dead letters A / B".into(),
        value: format!("{} / {}", dead.0, dead.1),
        floor: "—".into(),
        ratio: "—".into(),
        target: "0",
        met: Some(dead == (0, 0)),
    });

    // 2. ask round trip.
    rows.extend(bench.asks(&mut b, &raw).await);

    // 3. tell 8 → 8.
    let (mut floors, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        floors.push(raw.stream(tell_len, TELL_N, true).await);
        ours.push(bench.tell(&mut b, SENDERS, TELL_N / SENDERS).await);
    }
    rows.push(Row::throughput(
        format!("tell {SENDERS}→{SENDERS} aggregate (msg/s)"),
        median(ours),
        median(floors),
        "—",
        None,
    ));

    // 4. a receiver 10× slower than its sender.
    drop(raw);
    bench.a.shutdown().await;
    rows.extend(slow_receiver(&mut b, id_a, tell).await);
    rows
}

/// Node B, a child process: killed on drop, and exits itself when its
/// stdin closes.
struct NodeB {
    process: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// Where node B's endpoint listens.
    node: SocketAddr,
    /// Where B's floor endpoint listens.
    floor: SocketAddr,
}

impl NodeB {
    async fn start(identity: &NodeIdentity) -> NodeB {
        let (ca, cert, key) = identity.to_pem();
        let mut process = Command::new(std::env::current_exe().expect("this binary"))
            .arg(NODE_B)
            .env(ENV_CA, ca)
            .env(ENV_CERT, cert)
            .env(ENV_KEY, key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node B starts");
        let stdin = process.stdin.take().expect("B's stdin");
        let stdout = BufReader::new(process.stdout.take().expect("B's stdout"));
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut b = NodeB {
            process,
            stdin,
            lines,
            node: SocketAddr::from(([0, 0, 0, 0], 0)),
            floor: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let ready = b.answer("ready").await;
        let addr = |i: usize| ready.get(i).and_then(|a| a.parse().ok()).expect("an address from B");
        (b.node, b.floor) = (addr(0), addr(1));
        b
    }

    /// The next line from B, which must start with `word`; its other words.
    async fn answer(&mut self, word: &str) -> Vec<String> {
        let line = tokio::time::timeout(DEADLINE, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("node B did not answer {word:?} within {DEADLINE:?}"))
            .unwrap_or_else(|| panic!("node B exited before answering {word:?}"));
        let mut words = line.split_whitespace().map(str::to_owned);
        assert_eq!(words.next().as_deref(), Some(word), "node B answered {line:?}");
        words.collect()
    }

    async fn call(&mut self, command: &str, word: &str) -> Vec<String> {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .expect("a command to node B");
        self.answer(word).await
    }

    /// Spawns a sink on B; returns its path.
    async fn sink(&mut self, command: String) -> String {
        self.call(&command, "path").await.remove(0)
    }

    async fn stats(&mut self, sink: &str) -> SinkStats {
        let n: Vec<u64> = self
            .call(&format!("stats {sink}"), "stats")
            .await
            .iter()
            .map(|w| w.parse().expect("a number from B"))
            .collect();
        SinkStats {
            handled: n[0],
            span: Duration::from_micros(n[1]),
            dead_letters: n[2],
            peak_kb: n[4],
        }
    }

    /// Dead letters on B so far.
    async fn dead_letters(&mut self) -> u64 {
        self.call("dead", "dead").await[0].parse().expect("a number from B")
    }
}

impl Drop for NodeB {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

struct SinkStats {
    handled: u64,
    span: Duration,
    dead_letters: u64,
    peak_kb: u64,
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
            tokio::spawn(send(target, each));
        }
        for _ in 0..senders {
            match tokio::time::timeout(DEADLINE, self.dones.recv()).await {
                Ok(Some(seen)) => assert_eq!(seen, each),
                _ => panic!("the sinks on B did not report {each} messages each within {DEADLINE:?}"),
            }
        }
        (senders * each) as f64 / start.elapsed().as_secs_f64()
    }

    /// The length on the wire of a `Payload` frame to the last sink (as in
    /// `remote/src/frame.rs`).
    fn tell_frame_len(&self) -> usize {
        frame_len(&self.last_path, "bench.Payload", encoded_len(&payload(TELL_N / 2)))
    }

    /// Figure 2 and its floor.
    async fn asks(&mut self, b: &mut NodeB, raw: &floor::Raw) -> Vec<Row> {
        let path = b.call("echo echo", "path").await.remove(0);
        let echo = self.a.lookup::<Ping>(&path).await.expect("the echo, from A");
        // The request carries A's temporary reply address; the reply goes to it.
        let root = ActorPath::root(self.a.system().address().clone()).to_string();
        let temp = format!("{root}temp/{}", WARM_ASKS + ASKS);
        let request = frame_len(&path, "bench.Ping", 1 + temp.len());
        let reply = frame_len(&temp, "u64", encoded_len(&(ASKS as u64)));
        let floor = percentiles(raw.request_reply(request, reply, WARM_ASKS, ASKS).await);
        let ours = tokio::spawn(async move {
            let mut samples = Vec::with_capacity(ASKS);
            for i in 0..WARM_ASKS + ASKS {
                let start = Instant::now();
                echo.ask(Ping, DEADLINE).await.expect("an answer");
                if i >= WARM_ASKS {
                    samples.push(start.elapsed());
                }
            }
            samples
        });
        let ours = percentiles(ours.await.expect("the asker"));
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

async fn send(target: ActorRef<Payload>, n: u64) -> u64 {
    for seq in 0..n {
        target.tell(payload(seq));
        // A sender that never awaits would starve the tasks queued behind it.
        if seq % 1024 == 1023 {
            tokio::task::yield_now().await;
        }
    }
    n
}

fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut bytes = Vec::new();
    Postcard::encode(value, &mut bytes).expect("encodes");
    bytes.len()
}

/// A frame's length on the wire: length, kind, recipient, sender (none),
/// manifest, payload.
fn frame_len(recipient: &str, manifest: &str, payload: usize) -> usize {
    4 + 1 + (2 + recipient.len()) + 2 + (2 + manifest.len()) + payload
}

/// Figure 4: node A2 with the default send queue sends for `SLOW_FOR` at
/// full speed to a sink on B that handles a tenth of `send_rate` per second
/// through a bounded drop-newest mailbox.
async fn slow_receiver(b: &mut NodeB, identity: NodeIdentity, send_rate: f64) -> Vec<Row> {
    let a = RemoteNode::start(RemoteConfig::new("a2", identity), registry())
        .await
        .expect("node a2 starts");
    let period = Duration::from_millis(5);
    let batch = ((send_rate / 10.0) * period.as_secs_f64()).max(1.0) as u64;
    let command = format!("sink slow 0 - {SLOW_MAILBOX} {batch} {}", period.as_micros());
    let target = a
        .lookup::<Payload>(&b.sink(command).await)
        .await
        .expect("the slow sink");
    let b_dead_before = b.stats("slow").await.dead_letters;
    let rest_b = b.call("reset-peak", "ok").await[0].parse::<u64>().expect("B's RSS");
    reset_peak();
    let rest_a = status_kb("VmRSS");

    let start = Instant::now();
    let sent = tokio::spawn(async move {
        let mut seq = 0;
        while start.elapsed() < SLOW_FOR {
            seq += send(target.clone(), 1024).await;
        }
        seq
    })
    .await
    .expect("the sender");
    let send_rate = sent as f64 / start.elapsed().as_secs_f64();

    // Every message is handled or a dead letter somewhere, once B is through.
    let deadline = Instant::now() + DEADLINE;
    let (stats, dead_a, dead_b) = loop {
        let stats = b.stats("slow").await;
        let dead_a = a.system().dead_letter_stats().total;
        let dead_b = stats.dead_letters - b_dead_before;
        if stats.handled + dead_a + dead_b >= sent || Instant::now() > deadline {
            break (stats, dead_a, dead_b);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let peak_a = status_kb("VmHWM");
    a.shutdown().await;

    let handled_rate = stats.handled as f64 / stats.span.as_secs_f64().max(1e-9);
    let mib = |kb: u64| kb as f64 / 1024.0;
    let rss = |name: &str, peak: u64, rest: u64| {
        let growth = mib(peak) - mib(rest);
        Row {
            figure: format!("slow 10×: peak RSS {name} (MiB)"),
            value: format!("{:.1}", mib(peak)),
            floor: format!("{:.1} at rest", mib(rest)),
            ratio: format!("+{growth:.1}"),
            target: "≤ +64 MiB",
            met: Some(growth <= SLOW_RSS_BOUND_MIB),
        }
    };
    vec![
        Row {
            figure: "slow 10×: handled vs sent (msg/s)".into(),
            value: human(handled_rate),
            floor: format!("{} sent", human(send_rate)),
            ratio: format!("{:.2}×", handled_rate / send_rate),
            target: "≈0.10×",
            met: None,
        },
        rss("A", peak_a, rest_a),
        rss("B", stats.peak_kb, rest_b),
        Row {
            figure: "slow 10×: dead letters A / B".into(),
            value: format!("{dead_a} / {dead_b}"),
            floor: format!("{} unhandled", sent - stats.handled.min(sent)),
            ratio: "—".into(),
            target: "= unhandled",
            met: Some(stats.handled + dead_a + dead_b == sent),
        },
    ]
}

// ---- the table ----

struct Row {
    figure: String,
    value: String,
    floor: String,
    ratio: String,
    target: &'static str,
    met: Option<bool>,
}

impl Row {
    fn throughput(figure: String, ours: f64, floor: f64, target: &'static str, met: Option<bool>) -> Row {
        Row {
            figure,
            value: human(ours),
            floor: format!("{} raw stream", human(floor)),
            ratio: format!("{:.2}×", ours / floor),
            target,
            met,
        }
    }

    fn latency(figure: String, ours: f64, floor: f64, target: &'static str, met: Option<bool>) -> Row {
        Row {
            figure,
            value: format!("{ours:.1}"),
            floor: format!("{floor:.1} raw req-reply"),
            ratio: format!("{:.2}×", ours / floor),
            target,
            met,
        }
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<44} {:>11}  {:<20} {:>7}  {:<14} met",
        "figure", "value", "floor", "ratio", "target"
    );
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "—",
        };
        println!(
            "{:<44} {:>11}  {:<20} {:>7}  {:<14} {met}",
            r.figure, r.value, r.floor, r.ratio, r.target
        );
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// p50 and p99 in µs.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else {
        format!("{:.1}k", x / 1e3)
    }
}
