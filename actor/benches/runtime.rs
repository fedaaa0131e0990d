//! The local runtime's benchmark: each figure beside its floor, measured in
//! the same run on a tokio multi-thread runtime with 2 workers.
//!
//! ```text
//! cargo bench -p compaktor-actor --bench runtime            # everything
//! cargo bench -p compaktor-actor --bench runtime -- tell ask  # a selection
//! COMPAKTOR_BENCH_WORKERS=1 cargo bench -p compaktor-actor --bench runtime  # workers (2)
//! ```
//!
//! Floors: tell and fan-in against a tokio unbounded mpsc channel between
//! tasks; ask against mpsc + oneshot request–reply; spawn against a tokio
//! task plus its channel; memory against one idle tokio task plus its
//! channel. Each figure is the median of `RUNS` runs.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, ReplyTo, RouterConfig, SystemConfig};
use tokio::sync::{mpsc, oneshot, Notify};

const TELL_N: u64 = 5_000_000;
const FAN_IN_PRODUCERS: u64 = 8;
const FAN_IN_EACH: u64 = 1_000_000;
const ASKS: usize = 200_000;
const SPAWNS: usize = 100_000;
const IDLE_ACTORS: usize = 1_000_000;
const RUNS: usize = 5;

/// Tokio workers: `COMPAKTOR_BENCH_WORKERS`, default 2. With one there is
/// no other worker to wake, which shows the user-space cost alone.
fn workers() -> usize {
    std::env::var("COMPAKTOR_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .enable_all()
        .build()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let Some(pos) = std::env::args().position(|a| a == "--memory-child") {
        let which = std::env::args().nth(pos + 1).expect("--memory-child actors|floor");
        return memory_child(&which);
    }
    let wanted = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let rt = runtime();
    println!(
        "compaktor-actor benchmark (release, tokio multi-thread, {} workers)\n",
        workers()
    );
    if wanted("tell") {
        let (floor, ours) = paired(|| rt.block_on(floor_tell()), || rt.block_on(actor_tell()));
        row("tell 1→1 (msg/s)", ours, floor, "tokio unbounded mpsc");
    }
    if wanted("fan-in") {
        let (floor, ours) = paired(|| rt.block_on(floor_fan_in()), || rt.block_on(actor_fan_in()));
        row("fan-in 8→1 (msg/s)", ours, floor, "tokio unbounded mpsc");
    }
    if wanted("ask") {
        // Both sides run on the workers, as in a service; not on the main thread.
        let floor = || rt.block_on(async { tokio::spawn(floor_ask()).await.unwrap() });
        let ours = || rt.block_on(async { tokio::spawn(actor_ask()).await.unwrap() });
        let ((f50, f99), (a50, a99)) = paired_percentiles(floor, ours);
        println!(
            "{:<28} p50 {:>7.3} µs  p99 {:>7.3} µs   floor p50 {:>7.3} µs  p99 {:>7.3} µs   p50 ratio {:.2}× (mpsc + oneshot)",
            "ask round trip",
            a50,
            a99,
            f50,
            f99,
            a50 / f50,
        );
    }
    if wanted("spawn") {
        let (floor, ours) = paired(|| rt.block_on(floor_spawn()), || rt.block_on(actor_spawn()));
        row("spawn+stop (actors/s)", ours, floor, "tokio task + channel");
    }
    if wanted("router") {
        let (direct, routed) = paired(|| rt.block_on(actor_tell()), || rt.block_on(router_tell()));
        row("round-robin ×4 (msg/s)", routed, direct, "direct tell to one actor");
    }
    drop(rt);
    if wanted("memory") {
        let floor = memory_of("floor");
        let ours = memory_of("actors");
        println!(
            "{:<28} {:>10.0} B/actor   floor {:>10.0} B   ratio {:.2}× (idle tokio task + channel)",
            "memory, 1M idle actors",
            ours,
            floor,
            ours / floor,
        );
    }
}

/// `RUNS` runs of the floor and of ours, taken in turns so that drift in
/// the machine's state (allocator, scheduler, a noisy neighbour) falls on
/// both alike.
fn in_turns<T>(mut floor: impl FnMut() -> T, mut ours: impl FnMut() -> T) -> (Vec<T>, Vec<T>) {
    let (mut floors, mut ourses) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    for _ in 0..RUNS {
        floors.push(floor());
        ourses.push(ours());
    }
    (floors, ourses)
}

/// The medians of [`in_turns`] runs.
fn paired(floor: impl FnMut() -> f64, ours: impl FnMut() -> f64) -> (f64, f64) {
    let (floors, ourses) = in_turns(floor, ours);
    (median(floors), median(ourses))
}

/// [`paired`] for (p50, p99) pairs: the median of each percentile.
fn paired_percentiles(floor: impl FnMut() -> (f64, f64), ours: impl FnMut() -> (f64, f64)) -> ((f64, f64), (f64, f64)) {
    let (floors, ourses) = in_turns(floor, ours);
    let medians = |runs: Vec<(f64, f64)>| {
        (
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
        )
    };
    (medians(floors), medians(ourses))
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

fn row(name: &str, ours: f64, floor: f64, floor_name: &str) {
    println!(
        "{name:<28} {:>12} /s   floor {:>12} /s   ratio {:.2}× ({floor_name})",
        human(ours),
        human(floor),
        ours / floor
    );
}

fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else {
        format!("{:.1}k", x / 1e3)
    }
}

// ---- tell ----

struct Sink {
    seen: u64,
    expect: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Sink {
    type Msg = u64;
    async fn handle(&mut self, _n: u64, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.seen += 1;
        if self.seen == self.expect {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
        Ok(())
    }
}

fn sink_props(expect: u64, done: oneshot::Sender<()>) -> Props<Sink> {
    let done = std::sync::Mutex::new(Some(done));
    Props::new(move || Sink {
        seen: 0,
        expect,
        done: done.lock().unwrap().take(),
    })
}

async fn floor_tell() -> f64 {
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let consumer = tokio::spawn(async move {
        let mut seen = 0;
        while rx.recv().await.is_some() {
            seen += 1;
            if seen == TELL_N {
                break;
            }
        }
    });
    let start = Instant::now();
    tokio::spawn(async move {
        for i in 0..TELL_N {
            tx.send(i).unwrap();
        }
    });
    consumer.await.unwrap();
    TELL_N as f64 / start.elapsed().as_secs_f64()
}

async fn actor_tell() -> f64 {
    let system = ActorSystem::new(SystemConfig::new("bench")).unwrap();
    let (done, finished) = oneshot::channel();
    let sink = system.spawn("sink", sink_props(TELL_N, done)).unwrap();
    let start = Instant::now();
    tokio::spawn(async move {
        for i in 0..TELL_N {
            sink.tell(i);
        }
    });
    finished.await.unwrap();
    let rate = TELL_N as f64 / start.elapsed().as_secs_f64();
    system.shutdown().await.unwrap();
    rate
}

async fn router_tell() -> f64 {
    struct Routee(Arc<AtomicUsize>, Arc<Notify>);
    impl Actor for Routee {
        type Msg = u64;
        async fn handle(&mut self, _n: u64, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
            if self.0.fetch_add(1, Ordering::Relaxed) + 1 == TELL_N as usize {
                self.1.notify_one();
            }
            Ok(())
        }
    }
    let system = ActorSystem::new(SystemConfig::new("bench")).unwrap();
    let (count, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
    let props = {
        let (count, done) = (count.clone(), done.clone());
        Props::new(move || Routee(count.clone(), done.clone()))
    };
    let router = system
        .spawn_router("rr", RouterConfig::pool(4, props))
        .unwrap()
        .actor_ref();
    let finished = done.notified();
    let start = Instant::now();
    tokio::spawn(async move {
        for i in 0..TELL_N {
            router.tell(i);
        }
    });
    finished.await;
    let rate = TELL_N as f64 / start.elapsed().as_secs_f64();
    system.shutdown().await.unwrap();
    rate
}

// ---- fan-in ----

async fn floor_fan_in() -> f64 {
    let total = FAN_IN_PRODUCERS * FAN_IN_EACH;
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let consumer = tokio::spawn(async move {
        let mut seen = 0;
        while rx.recv().await.is_some() {
            seen += 1;
            if seen == total {
                break;
            }
        }
    });
    let start = Instant::now();
    for _ in 0..FAN_IN_PRODUCERS {
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0..FAN_IN_EACH {
                tx.send(i).unwrap();
            }
        });
    }
    consumer.await.unwrap();
    total as f64 / start.elapsed().as_secs_f64()
}

async fn actor_fan_in() -> f64 {
    let total = FAN_IN_PRODUCERS * FAN_IN_EACH;
    let system = ActorSystem::new(SystemConfig::new("bench")).unwrap();
    let (done, finished) = oneshot::channel();
    let sink = system.spawn("sink", sink_props(total, done)).unwrap();
    let start = Instant::now();
    for _ in 0..FAN_IN_PRODUCERS {
        let sink = sink.clone();
        tokio::spawn(async move {
            for i in 0..FAN_IN_EACH {
                sink.tell(i);
            }
        });
    }
    finished.await.unwrap();
    let rate = total as f64 / start.elapsed().as_secs_f64();
    system.shutdown().await.unwrap();
    rate
}

// ---- ask ----

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

async fn floor_ask() -> (f64, f64) {
    let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<u64>>();
    tokio::spawn(async move {
        let mut n = 0;
        while let Some(reply) = rx.recv().await {
            n += 1;
            let _ = reply.send(n);
        }
    });
    let mut samples = Vec::with_capacity(ASKS);
    for _ in 0..ASKS {
        let start = Instant::now();
        let (reply, answer) = oneshot::channel();
        tx.send(reply).unwrap();
        answer.await.unwrap();
        samples.push(start.elapsed());
    }
    percentiles(samples)
}

struct Echo(u64);

impl Actor for Echo {
    type Msg = ReplyTo<u64>;
    async fn handle(&mut self, reply: ReplyTo<u64>, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.0 += 1;
        let _ = reply.send(self.0);
        Ok(())
    }
}

async fn actor_ask() -> (f64, f64) {
    let system = ActorSystem::new(SystemConfig::new("bench")).unwrap();
    let echo = system.spawn("echo", Props::new(|| Echo(0))).unwrap();
    let mut samples = Vec::with_capacity(ASKS);
    for _ in 0..ASKS {
        let start = Instant::now();
        echo.ask(|reply| reply, Duration::from_secs(5)).await.unwrap();
        samples.push(start.elapsed());
    }
    system.shutdown().await.unwrap();
    percentiles(samples)
}

// ---- spawn ----

struct Counted {
    alive: Arc<AtomicUsize>,
    all_started: Arc<Notify>,
    all_stopped: Arc<Notify>,
}

impl Actor for Counted {
    type Msg = ();
    async fn pre_start(&mut self, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if self.alive.fetch_add(1, Ordering::AcqRel) + 1 == SPAWNS {
            self.all_started.notify_one();
        }
        Ok(())
    }
    async fn handle(&mut self, _: (), _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        Ok(())
    }
    async fn post_stop(&mut self, _ctx: &mut Context<Self>) {
        if self.alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_stopped.notify_one();
        }
    }
}

async fn floor_spawn() -> f64 {
    let alive = Arc::new(AtomicUsize::new(0));
    let (all_started, all_stopped) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let start = Instant::now();
    let mut senders = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let (alive, all_started, all_stopped) = (alive.clone(), all_started.clone(), all_stopped.clone());
        tokio::spawn(async move {
            if alive.fetch_add(1, Ordering::AcqRel) + 1 == SPAWNS {
                all_started.notify_one();
            }
            while rx.recv().await.is_some() {}
            if alive.fetch_sub(1, Ordering::AcqRel) == 1 {
                all_stopped.notify_one();
            }
        });
        senders.push(tx);
    }
    all_started.notified().await;
    let stopped = all_stopped.notified();
    drop(senders);
    stopped.await;
    SPAWNS as f64 / start.elapsed().as_secs_f64()
}

async fn actor_spawn() -> f64 {
    let system = ActorSystem::new(SystemConfig::new("bench")).unwrap();
    let alive = Arc::new(AtomicUsize::new(0));
    let (all_started, all_stopped) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let props = {
        let (alive, all_started, all_stopped) = (alive.clone(), all_started.clone(), all_stopped.clone());
        Props::new(move || Counted {
            alive: alive.clone(),
            all_started: all_started.clone(),
            all_stopped: all_stopped.clone(),
        })
    };
    let start = Instant::now();
    let mut refs = Vec::with_capacity(SPAWNS);
    for _ in 0..SPAWNS {
        refs.push(system.spawn_anonymous(props.clone()).unwrap());
    }
    all_started.notified().await;
    let stopped = all_stopped.notified();
    for r in &refs {
        r.stop();
    }
    stopped.await;
    let rate = SPAWNS as f64 / start.elapsed().as_secs_f64();
    system.shutdown().await.unwrap();
    rate
}

// ---- memory (each side in a fresh process, so freed memory is not reused) ----

fn memory_of(which: &str) -> f64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--memory-child", which])
        .output()
        .expect("run memory child");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("bytes per actor")
}

fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0
}

fn memory_child(which: &str) {
    let rt = runtime();
    let per = rt.block_on(async {
        let system = ActorSystem::new(SystemConfig::new("bench")).unwrap();
        let alive = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(Notify::new());
        let before = rss_bytes();
        match which {
            "floor" => {
                // The senders keep the tasks alive; the system keeps actors alive.
                let mut senders = Vec::with_capacity(IDLE_ACTORS);
                for _ in 0..IDLE_ACTORS {
                    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
                    let (alive, started) = (alive.clone(), started.clone());
                    tokio::spawn(async move {
                        if alive.fetch_add(1, Ordering::AcqRel) + 1 == IDLE_ACTORS {
                            started.notify_one();
                        }
                        while rx.recv().await.is_some() {}
                    });
                    senders.push(tx);
                }
                started.notified().await;
                (rss_bytes() - before) / IDLE_ACTORS as f64
            }
            _ => {
                struct Idle;
                impl Actor for Idle {
                    type Msg = u64;
                    async fn handle(&mut self, _: u64, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
                        Ok(())
                    }
                }
                for _ in 0..IDLE_ACTORS {
                    system.spawn_anonymous(Props::new(|| Idle)).unwrap();
                }
                while system.live_actors() < IDLE_ACTORS {
                    tokio::task::yield_now().await;
                }
                // Let every actor run to its first wait on the mailbox.
                tokio::time::sleep(Duration::from_millis(200)).await;
                (rss_bytes() - before) / IDLE_ACTORS as f64
            }
        }
    });
    println!("{per}");
    std::process::exit(0);
}
