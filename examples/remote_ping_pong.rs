//! Ping-pong between two nodes over QUIC with mutual TLS.
//!
//! Node `ping` and node `pong` each run an actor system on their own
//! endpoint on 127.0.0.1, with certificates from one freshly generated CA.
//! The pinger finds the ponger by its path, sends it pings carrying its own
//! ref, and the ponger answers each one to that ref: refs cross the wire
//! inside messages. Then the pinger asks across nodes and watches the
//! ponger stop.
//!
//! Run with `cargo run --release --example remote_ping_pong`.

use std::time::{Duration, Instant};

use compaktor::remote::{CertificateAuthority, Registry, RemoteConfig, RemoteNode};
use compaktor::{Actor, ActorError, ActorRef, Context, Props, ReplyTo};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

const ROUNDS: u64 = 10_000;

#[derive(Serialize, Deserialize)]
enum Pong {
    Ping { n: u64, reply_to: ActorRef<Ping> },
    Count(ReplyTo<u64>),
}

#[derive(Serialize, Deserialize)]
struct Ping(u64);

#[derive(Default)]
struct Ponger {
    served: u64,
}

impl Actor for Ponger {
    type Msg = Pong;

    async fn handle(&mut self, msg: Pong, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Pong::Ping { n, reply_to } => {
                self.served += 1;
                reply_to.tell(Ping(n));
            }
            Pong::Count(reply) => {
                let _ = reply.send(self.served);
            }
        }
        Ok(())
    }
}

struct Pinger {
    ponger: ActorRef<Pong>,
    done: Option<oneshot::Sender<u64>>,
}

impl Actor for Pinger {
    type Msg = Ping;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let me = ctx.myself().clone();
        self.ponger.tell(Pong::Ping { n: 1, reply_to: me });
        Ok(())
    }

    async fn handle(&mut self, Ping(n): Ping, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if n == ROUNDS {
            if let Some(done) = self.done.take() {
                let _ = done.send(n);
            }
            return Ok(());
        }
        let me = ctx.myself().clone();
        self.ponger.tell(Pong::Ping { n: n + 1, reply_to: me });
        Ok(())
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Pong>("example.Pong")
        .register::<Ping>("example.Ping")
        .register::<u64>("u64");
    registry
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ca = CertificateAuthority::generate("ping-pong cluster")?;
    let ping = RemoteNode::start(RemoteConfig::new("ping", ca.issue()?), registry()).await?;
    let pong = RemoteNode::start(RemoteConfig::new("pong", ca.issue()?), registry()).await?;
    println!("node ping at {}", ping.local_addr());
    println!("node pong at {}", pong.local_addr());

    let ponger = pong.system().spawn("ponger", Props::<Ponger>::default())?;
    let remote = ping.lookup::<Pong>(&ponger.path().to_string()).await?;
    println!("ping found {remote}");

    let (done, finished) = oneshot::channel();
    let start = Instant::now();
    let props = Props::new({
        let remote = remote.clone();
        let done = std::sync::Mutex::new(Some(done));
        move || Pinger {
            ponger: remote.clone(),
            done: done.lock().unwrap().take(),
        }
    });
    ping.system().spawn("pinger", props)?;
    let rounds = tokio::time::timeout(Duration::from_secs(30), finished).await??;
    let elapsed = start.elapsed();
    println!(
        "{rounds} sequential round trips in {elapsed:.2?}: {:.1} µs each",
        elapsed.as_secs_f64() * 1e6 / rounds as f64
    );

    let served = remote.ask(Pong::Count, Duration::from_secs(5)).await?;
    println!("asked across nodes: the ponger served {served} pings");

    let terminated = remote.terminated();
    remote.stop();
    let t = tokio::time::timeout(Duration::from_secs(5), terminated).await?;
    println!("watched across nodes: {} terminated ({})", t.actor(), t.reason());

    ping.shutdown().await;
    pong.shutdown().await;
    Ok(())
}
