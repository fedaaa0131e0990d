//! The main demo: an ingestion service in one process.
//!
//! A consistent-hashing pool of parsers takes raw sensor lines, so every
//! reading of one sensor goes to the same parser and stays in order. Some
//! lines are malformed: their parser panics, its supervisor restarts it,
//! and the rest of the stream flows on. Parsed readings go to an aggregator
//! that keeps per-sensor statistics. A subscriber counts dead letters; at
//! the end the demo prints the aggregate and the system's health snapshot.
//!
//! Run it with `cargo run --release --example demo`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use compaktor::{
    stable_hash, Actor, ActorError, ActorRef, ActorSystem, Context, DeadLetter, Props, ReplyTo, RouterConfig,
    SystemConfig,
};

const SENSORS: u64 = 50;
const LINES: u64 = 200_000;
/// One line in this many is malformed and crashes its parser.
const POISON_EVERY: u64 = 20_000;

/// A reading on its way to the aggregator.
enum Aggregate {
    Reading { sensor: u64, value: f64 },
    Report(ReplyTo<BTreeMap<u64, (u64, f64)>>),
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
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    // Supervision logs each failure; the default hook would print a second report.
    std::panic::set_hook(Box::new(|_| {}));
    let system = ActorSystem::new(SystemConfig::new("demo"))?;
    let mut dead_letters = system.event_stream().subscribe::<DeadLetter>();

    let aggregator = system.spawn("aggregator", Props::<Aggregator>::default())?;
    let sink = aggregator.clone();
    let parsers = system.spawn_router(
        "parsers",
        RouterConfig::pool(4, Props::new(move || Parser { sink: sink.clone() }))
            .consistent_hashing(|line: &String| sensor_of(line)),
    )?;
    let parsers = parsers.actor_ref();

    let started = Instant::now();
    let mut poisoned = 0;
    for i in 0..LINES {
        let sensor = i % SENSORS;
        if i % POISON_EVERY == POISON_EVERY - 1 {
            parsers.tell(format!("sensor-{sensor},not-a-number"));
            poisoned += 1;
        } else {
            parsers.tell(format!("sensor-{sensor},{}", (i % 100) as f64 / 10.0));
        }
    }

    // Wait until every good line has reached the aggregator.
    let expected = LINES - poisoned;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let stats = aggregator.ask(Aggregate::Report, Duration::from_secs(5)).await?;
        let seen: u64 = stats.values().map(|(n, _)| n).sum();
        if seen >= expected {
            break stats;
        }
        if Instant::now() > deadline {
            return Err(format!("only {seen} of {expected} readings arrived within 30 s").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let elapsed = started.elapsed();

    println!("{LINES} lines ({poisoned} poisoned) through 4 supervised parsers in {elapsed:.2?}");
    for (sensor, (count, sum)) in stats.iter().take(5) {
        println!("  sensor-{sensor}: {count} readings, mean {:.2}", sum / *count as f64);
    }
    println!("  … and {} more sensors", stats.len().saturating_sub(5));

    let health = system.health().await;
    println!("health: {}", serde_json::to_string_pretty(&health)?);

    system.shutdown().await?;
    let mut dropped = 0;
    while let Ok(Some(_)) = dead_letters.try_recv() {
        dropped += 1;
    }
    println!("dead letters seen by the subscriber: {dropped}");
    Ok(())
}
