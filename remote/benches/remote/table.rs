//! The figures table and the statistics behind it.

use std::time::Duration;

pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) value: String,
    pub(crate) floor: String,
    pub(crate) ratio: String,
    pub(crate) target: &'static str,
    pub(crate) met: Option<bool>,
}

impl Row {
    pub(crate) fn throughput(figure: String, ours: f64, floor: f64, target: &'static str, met: Option<bool>) -> Row {
        Row {
            figure,
            value: human(ours),
            floor: format!("{} raw stream", human(floor)),
            ratio: format!("{:.2}×", ours / floor),
            target,
            met,
        }
    }

    pub(crate) fn latency(figure: String, ours: f64, floor: f64, target: &'static str, met: Option<bool>) -> Row {
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

pub(crate) fn print_table(rows: &[Row]) {
    println!(
        "{:<44} {:>13}  {:<20} {:>7}  {:<14} met",
        "figure", "value", "floor", "ratio", "target"
    );
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "—",
        };
        println!(
            "{:<44} {:>13}  {:<20} {:>7}  {:<14} {met}",
            r.figure, r.value, r.floor, r.ratio, r.target
        );
    }
}

pub(crate) fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// p50 and p99 in µs.
pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1e6;
    (at(0.50), at(0.99))
}

pub(crate) fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else {
        format!("{:.1}k", x / 1e3)
    }
}
