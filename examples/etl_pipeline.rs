//! ETL pipeline: parse raw lines, enrich each record with an asynchronous
//! lookup, batch the records and write each batch to a file, with
//! backpressure from the file all the way to the source.
//!
//! ```text
//! lines ─▶ parse (filter_map) ─▶ enrich (map_async, 8 at once) ─▶ batch (≤ 250) ─▶ write (on the blocking pool) ─▶ count
//! ```
//!
//! The pipeline runs under a `GraphManager`; at the end the example prints
//! each stage's statistics, checks that every well-formed line was written
//! once, and removes its temporary directory.
//!
//! Run it with `cargo run --example etl_pipeline` (well under a second).

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compaktor::streams::{GraphManager, Keep, Sink, Source};

const LINES: u64 = 20_000;
/// Every this many lines, one is malformed and dropped by the parser.
const MALFORMED_EVERY: u64 = 97;
const BATCH: u64 = 250;

#[derive(Debug)]
struct Record {
    id: u64,
    device: String,
    celsius: f64,
}

#[derive(Debug)]
struct Enriched {
    record: Record,
    site: &'static str,
}

/// The raw input: `id,device,celsius`, with a malformed line now and then.
fn raw_line(id: u64) -> String {
    if id % MALFORMED_EVERY == 0 {
        return format!("{id};garbage");
    }
    format!("{id},device-{},{:.1}", id % 12, 18.0 + (id % 50) as f64 / 10.0)
}

fn parse(line: String) -> Option<Record> {
    let mut fields = line.split(',');
    let id = fields.next()?.parse().ok()?;
    let device = fields.next()?.to_owned();
    let celsius = fields.next()?.parse().ok()?;
    Some(Record { id, device, celsius })
}

/// Appends one batch to the output file: the blocking part, run on tokio's blocking pool.
fn write_batch(path: &PathBuf, batch: &[Enriched]) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    let mut out = String::new();
    for e in batch {
        out.push_str(&format!(
            "{},{},{},{:.1}\n",
            e.record.id, e.record.device, e.site, e.record.celsius
        ));
    }
    file.write_all(out.as_bytes())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("compaktor-etl-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let output = dir.join("readings.csv");

    // The "site service": which site each device is at, answered after a short delay.
    let sites: Arc<HashMap<String, &'static str>> = Arc::new(
        (0..12)
            .map(|d| (format!("device-{d}"), if d % 2 == 0 { "north" } else { "south" }))
            .collect(),
    );
    let path = output.clone();
    let graph = Source::from_iter(0..LINES)
        .map(raw_line)
        .filter_map(parse)
        .map_async(8, move |record: Record| {
            let sites = Arc::clone(&sites);
            async move {
                // Stands in for a call to a remote service.
                tokio::task::yield_now().await;
                let site = sites.get(&record.device).copied().unwrap_or("unknown");
                Enriched { record, site }
            }
        })
        .batch(
            BATCH,
            |e| vec![e],
            |mut batch, e| {
                batch.push(e);
                batch
            },
        )
        .map_async(1, move |batch: Vec<Enriched>| {
            let path = path.clone();
            async move {
                let written = batch.len() as u64;
                tokio::task::spawn_blocking(move || write_batch(&path, &batch))
                    .await
                    .expect("the writer does not panic")
                    .map(|()| written)
            }
        })
        .try_map(|written| written)
        .to_mat(Sink::fold(0u64, |total, n| total + n), Keep::right);

    let manager = GraphManager::new();
    let started = Instant::now();
    let written = manager.run("etl", graph)?;
    // A first look while it runs; the rates at the end are since this one.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let early = manager.describe("etl")?;
    if let Some(sink) = early.nodes.last() {
        println!("after 50 ms: {} batches written\n", sink.stats.elements_in);
    }
    let written = written.await?;
    let elapsed = started.elapsed();

    let described = manager.describe("etl")?;
    println!(
        "{:<16} {:>8} {:>8} {:>10} {:>9} {:>8}",
        "stage", "in", "out", "rate/s", "buffered", "errors"
    );
    for node in &described.nodes {
        let s = &node.stats;
        let rate = s.rate.map_or_else(|| "-".to_owned(), |r| r.to_string());
        println!(
            "{:<16} {:>8} {:>8} {rate:>10} {:>9} {:>8}",
            node.name, s.elements_in, s.elements_out, s.buffered, s.errors
        );
    }

    let expected = LINES - LINES.div_ceil(MALFORMED_EVERY);
    let lines_in_file = fs::read_to_string(&output)?.lines().count() as u64;
    println!(
        "\n{written} records written to {} in {:.2} s ({:.0} records/s); {} malformed lines dropped",
        output.display(),
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64(),
        LINES - expected
    );
    fs::remove_dir_all(&dir)?;
    assert_eq!(written, expected, "every well-formed line was written");
    assert_eq!(lines_in_file, expected, "once each");
    Ok(())
}
