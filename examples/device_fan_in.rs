//! Device fan-in: many simulated devices stream readings into one
//! backpressured pipeline that throttles, windows and aggregates them.
//!
//! Devices attach to a `MergeHub` while the pipeline runs (in waves, as
//! devices come online), each sending at its own pace. The hub's consumer
//! admits at most `INGEST_PER_SECOND` readings, so the devices are slowed
//! down by backpressure, not by dropping readings. Readings are grouped
//! into windows of `WINDOW` and summarised per window; at the end the
//! example prints the live statistics of every stage.
//!
//! Run it with `cargo run --release --example device_fan_in` (about 2 s).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use compaktor::streams::{Keep, MergeHub, Sink, Source, StageState, StreamError};

const DEVICES: u32 = 200;
const WAVES: u32 = 4;
const READINGS_PER_DEVICE: u64 = 250;
/// Each device sends at most this many readings per second.
const DEVICE_RATE: u32 = 500;
/// The pipeline admits at most this many readings per second, all devices together.
const INGEST_PER_SECOND: u32 = 40_000;
const WINDOW: usize = 5_000;

#[derive(Debug, Clone, Copy)]
struct Reading {
    device: u32,
    value: f64,
}

/// A device: a temperature that drifts around its own base, at its own pace.
fn device(id: u32) -> Source<Reading> {
    let base = 18.0 + f64::from(id % 7);
    Source::from_iter(0..READINGS_PER_DEVICE)
        .map(move |seq| {
            // A cheap deterministic wobble instead of a random number generator.
            let wobble = ((seq * 7919 + u64::from(id) * 104_729) % 1_000) as f64 / 1_000.0;
            Reading {
                device: id,
                value: base + wobble,
            }
        })
        .throttle(DEVICE_RATE, Duration::from_secs(1), 50)
}

/// What one window of readings adds up to.
struct WindowSummary {
    readings: usize,
    devices: usize,
    mean: f64,
    max: f64,
}

fn summarise(window: Vec<Reading>) -> WindowSummary {
    let devices: BTreeSet<u32> = window.iter().map(|r| r.device).collect();
    let sum: f64 = window.iter().map(|r| r.value).sum();
    WindowSummary {
        readings: window.len(),
        devices: devices.len(),
        mean: sum / window.len() as f64,
        max: window.iter().map(|r| r.value).fold(f64::MIN, f64::max),
    }
}

#[tokio::main]
async fn main() -> Result<(), StreamError> {
    let started = Instant::now();

    // The consumer runs first; devices attach to its hub as they come online.
    let ((hub, total), monitor) = MergeHub::source(16)
        .throttle(INGEST_PER_SECOND, Duration::from_secs(1), 2_000)
        .grouped(WINDOW)
        .map(summarise)
        .to_mat(
            Sink::fold(0usize, move |total, w: WindowSummary| {
                println!(
                    "{:>6.2} s  window of {:>5} readings from {:>3} devices: mean {:>6.2}, max {:>6.2}",
                    started.elapsed().as_secs_f64(),
                    w.readings,
                    w.devices,
                    w.mean,
                    w.max
                );
                total + w.readings
            }),
            Keep::both,
        )
        .run_monitored();

    let mut devices = Vec::new();
    for wave in 0..WAVES {
        let per_wave = DEVICES / WAVES;
        for id in wave * per_wave..(wave + 1) * per_wave {
            devices.push(device(id).run_with(hub.sink()));
        }
        println!(
            "{:>6.2} s  wave {wave}: {per_wave} devices online",
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No more devices will come: the pipeline completes when these finish.
    drop(hub);

    let mut failed = 0;
    for done in devices {
        if done.await.is_err() {
            failed += 1;
        }
    }
    let total = total.await?;
    let elapsed = started.elapsed();
    let expected = u64::from(DEVICES) * READINGS_PER_DEVICE;
    println!(
        "\n{total} of {expected} readings from {DEVICES} devices ({failed} failed) in {:.2} s: {:.0} readings/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );

    println!(
        "\n{:<12} {:>9} {:>9} {:>7} {:>9}  state",
        "stage", "in", "out", "demand", "buffered"
    );
    for stage in monitor.stats().stages {
        let state = match stage.state {
            StageState::Running => "running",
            StageState::Completed => "completed",
            StageState::Failed => "failed",
            StageState::Cancelled => "cancelled",
            _ => "other",
        };
        println!(
            "{:<12} {:>9} {:>9} {:>7} {:>9}  {state}",
            stage.name, stage.elements_in, stage.elements_out, stage.demand, stage.buffered
        );
    }
    assert_eq!(total as u64, expected, "backpressure loses no reading");
    Ok(())
}
