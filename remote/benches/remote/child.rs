//! Node B: the benchmark binary re-executed with `--node-b`.
//!
//! It reads its TLS material from the environment, starts its node and the
//! floor endpoint, prints `ready <node address> <floor address>`, then
//! answers one line per command read from stdin:
//!
//! ```text
//! sink <name> <expect> <done path|-> [<mailbox> <batch> <period µs>]  -> path <actor path>
//! echo <name>                                                       -> path <actor path>
//! stats <name>                                                      -> stats <handled> <span µs> <dead letters> <mailbox full> <VmHWM kB> <VmRSS kB>
//! dead                                                              -> dead <dead letters>
//! reset-peak                                                        -> ok <VmRSS kB>
//! ```
//!
//! A sink counts `Payload`s and tells the `Done` actor at the path given
//! once it has `expect` of them (0: never). With a mailbox size it has a
//! bounded drop-newest mailbox and handles `batch` messages per `period`.
//! B exits when its stdin closes, so it never outlives the benchmark.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use compaktor_actor::{Actor, ActorError, ActorRef, Context, MailboxConfig, OverflowPolicy, Props};
use compaktor_remote::{NodeIdentity, RemoteConfig, RemoteNode};

use crate::memory::{reset_peak, status_kb};
use crate::{floor, Done, Payload, Ping, ENV_CA, ENV_CERT, ENV_KEY};

pub(crate) fn run() {
    let rt = crate::runtime();
    rt.block_on(async {
        let var =
            |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} unset: run the benchmark, not node B"));
        let identity = NodeIdentity::from_pem(&var(ENV_CA), &var(ENV_CERT), &var(ENV_KEY)).expect("TLS material");
        let raw = floor::serve(&identity);
        let node = RemoteNode::start(RemoteConfig::new("b", identity), crate::registry())
            .await
            .expect("node b starts");
        let mut commands = stdin_lines();
        println!("ready {} {raw}", node.local_addr());
        let mut sinks = HashMap::new();
        while let Some(line) = commands.recv().await {
            println!("{}", command(&node, &mut sinks, &line));
        }
    });
}

/// Stdin's lines; the process exits when stdin closes (the benchmark ended).
fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    rx
}

/// What a sink has done, readable from outside it.
#[derive(Default)]
struct SinkStats {
    handled: AtomicU64,
    /// From the first message handled to the last, in µs.
    span_us: AtomicU64,
}

fn command(node: &RemoteNode, sinks: &mut HashMap<String, Arc<SinkStats>>, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |i: usize| -> u64 { words[i].parse().unwrap_or_else(|_| panic!("a number in {line:?}")) };
    match words.as_slice() {
        ["sink", name, _, done, rest @ ..] => {
            let stats = Arc::new(SinkStats::default());
            sinks.insert(name.to_string(), stats.clone());
            let done = (*done != "-").then(|| node.ref_to::<Done>(done).expect("a ref to the waiter"));
            let expect = number(2);
            let pace = (rest.len() == 3).then(|| (number(5), Duration::from_micros(number(6))));
            let mut props = Props::new(move || Sink {
                stats: stats.clone(),
                expect,
                done: done.clone(),
                pace,
                first: None,
            });
            if !rest.is_empty() {
                props = props.with_mailbox(MailboxConfig::bounded(number(4) as usize, OverflowPolicy::DropNewest));
            }
            let sink = node.system().spawn(name, props).expect("the sink spawns");
            format!("path {}", sink.path())
        }
        ["echo", name] => {
            let echo = node.system().spawn(name, Props::new(|| Echo(0))).expect("echo spawns");
            format!("path {}", echo.path())
        }
        ["stats", name] => {
            let sink = &sinks[*name];
            let dead = node.system().dead_letter_stats();
            format!(
                "stats {} {} {} {} {} {}",
                sink.handled.load(Ordering::Acquire),
                sink.span_us.load(Ordering::Acquire),
                dead.total,
                dead.mailbox_full,
                status_kb("VmHWM"),
                status_kb("VmRSS"),
            )
        }
        ["dead"] => format!("dead {}", node.system().dead_letter_stats().total),
        ["reset-peak"] => {
            reset_peak();
            format!("ok {}", status_kb("VmRSS"))
        }
        _ => panic!("unknown command {line:?}"),
    }
}

/// Counts what arrives; optionally handles only `batch` messages per period.
struct Sink {
    stats: Arc<SinkStats>,
    expect: u64,
    done: Option<ActorRef<Done>>,
    pace: Option<(u64, Duration)>,
    first: Option<Instant>,
}

impl Actor for Sink {
    type Msg = Payload;

    async fn handle(&mut self, msg: Payload, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        std::hint::black_box(msg);
        let seen = self.stats.handled.fetch_add(1, Ordering::AcqRel) + 1;
        let first = *self.first.get_or_insert_with(Instant::now);
        if seen == self.expect {
            if let Some(done) = &self.done {
                done.tell(Done { seen });
            }
        }
        if let Some((batch, period)) = self.pace {
            self.stats
                .span_us
                .store(first.elapsed().as_micros() as u64, Ordering::Release);
            if seen % batch == 0 {
                // Against the first message's time, so timer rounding does not add up.
                let until = first + period * (seen / batch) as u32;
                tokio::time::sleep_until(until.into()).await;
            }
        }
        Ok(())
    }
}

/// Answers each ask with how many it has answered.
struct Echo(u64);

impl Actor for Echo {
    type Msg = Ping;

    async fn handle(&mut self, Ping(reply): Ping, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.0 += 1;
        let _ = reply.send(self.0);
        Ok(())
    }
}
