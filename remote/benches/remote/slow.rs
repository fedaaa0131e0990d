//! Figure 4: a receiver 10× slower than its sender.

use std::time::{Duration, Instant};

use compaktor_remote::{NodeIdentity, RemoteConfig, RemoteNode};

use crate::memory::{reset_peak, status_kb};
use crate::process::NodeB;
use crate::table::{human, Row};
use crate::{registry, send, Payload, DEADLINE};

/// How long the sender sends.
const SLOW_FOR: Duration = Duration::from_secs(3);
/// The slow receiver's bounded mailbox.
const SLOW_MAILBOX: usize = 10_000;
/// The most the figure may grow either process's peak RSS by.
const SLOW_RSS_BOUND_MIB: f64 = 64.0;

/// Node A2, with the default send queue, sends for `SLOW_FOR` at full
/// speed to a sink on B that handles a tenth of `tell_rate` (figure 1's
/// rate) per second through a bounded drop-newest mailbox. Both processes'
/// peaks are reset first; the figure waits until every message sent is
/// handled or a dead letter on either node.
pub(crate) async fn receiver(b: &mut NodeB, identity: NodeIdentity, tell_rate: f64) -> (Vec<Row>, String) {
    let a = RemoteNode::start(RemoteConfig::new("a2", identity), registry())
        .await
        .expect("node a2 starts");
    let period = Duration::from_millis(5);
    let batch = ((tell_rate / 10.0) * period.as_secs_f64()).max(1.0) as u64;
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
            send(target.clone(), seq..seq + 1024).await;
            seq += 1024;
        }
        seq
    })
    .await
    .expect("the sender");
    let elapsed = start.elapsed();

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
            ratio: format!("{growth:+.1}"),
            target: "≤ +64 MiB",
            met: Some(growth <= SLOW_RSS_BOUND_MIB),
        }
    };
    let rows = vec![
        Row {
            figure: "slow 10×: B handles (msg/s)".into(),
            value: human(handled_rate),
            floor: format!("{} tell 1→1", human(tell_rate)),
            ratio: format!("{:.2}×", handled_rate / tell_rate),
            target: "0.10×",
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
    ];
    let note = format!(
        "slow 10×: A sent {sent} in {:.1} s ({}/s) with the default send queue; B handled {} at {}/s \
         through a {SLOW_MAILBOX}-message drop-newest mailbox, paced at a tenth of the tell 1→1 rate.",
        elapsed.as_secs_f64(),
        human(sent as f64 / elapsed.as_secs_f64()),
        stats.handled,
        human(handled_rate),
    );
    (rows, note)
}
