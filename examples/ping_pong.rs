//! Ping-pong: two actors bounce a counter back and forth.
//!
//! Every message carries the `ActorRef` to answer to, so neither actor is
//! built knowing the other: the pinger learns the ponger from its `Start`
//! message, and the ponger learns where to send each pong from the ping
//! itself. `main` only starts the rally, waits for it with an ask, and
//! prints how many round trips were made and how long they took.
//!
//! Run it with `cargo run --example ping_pong` (add a number of rounds
//! after `--` to change the default of 100 000).

use std::time::{Duration, Instant};

use compaktor::{Actor, ActorError, ActorRef, ActorSystem, Context, Props, ReplyTo, SystemConfig};

const DEFAULT_ROUNDS: u64 = 100_000;

/// What the ponger takes.
enum PongerMsg {
    /// Answer with a pong carrying the same number to `reply_to`.
    Ping { n: u64, reply_to: ActorRef<PingerMsg> },
    /// How many pings it has answered.
    Count(ReplyTo<u64>),
}

/// What the pinger takes.
enum PingerMsg {
    /// Play `rounds` round trips against `ponger`, then answer `done` with the count.
    Start {
        ponger: ActorRef<PongerMsg>,
        rounds: u64,
        done: ReplyTo<u64>,
    },
    /// The answer to ping `n`; `from` is where the next ping goes.
    Pong { n: u64, from: ActorRef<PongerMsg> },
}

#[derive(Default)]
struct Ponger {
    answered: u64,
}

impl Actor for Ponger {
    type Msg = PongerMsg;

    async fn handle(&mut self, msg: PongerMsg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            PongerMsg::Ping { n, reply_to } => {
                self.answered += 1;
                // Our own ref travels with the pong, so the pinger needs no address book.
                reply_to.tell(PingerMsg::Pong {
                    n,
                    from: ctx.myself().clone(),
                });
            }
            PongerMsg::Count(reply) => {
                let _ = reply.send(self.answered);
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Pinger {
    rounds: u64,
    done: Option<ReplyTo<u64>>,
}

impl Actor for Pinger {
    type Msg = PingerMsg;

    async fn handle(&mut self, msg: PingerMsg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            PingerMsg::Start { ponger, rounds, done } => {
                self.rounds = rounds;
                self.done = Some(done);
                ponger.tell(PongerMsg::Ping {
                    n: 1,
                    reply_to: ctx.myself().clone(),
                });
            }
            PingerMsg::Pong { n, from } if n < self.rounds => from.tell(PongerMsg::Ping {
                n: n + 1,
                reply_to: ctx.myself().clone(),
            }),
            PingerMsg::Pong { n, .. } => {
                if let Some(done) = self.done.take() {
                    let _ = done.send(n);
                }
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let rounds: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| format!("rounds must be a number, got {arg:?}: {e}"))?,
        None => DEFAULT_ROUNDS,
    };
    if rounds == 0 {
        return Err("rounds must be at least 1".into());
    }

    let system = ActorSystem::new(SystemConfig::new("ping-pong"))?;
    let ponger = system.spawn("ponger", Props::<Ponger>::default())?;
    let pinger = system.spawn("pinger", Props::<Pinger>::default())?;

    let started = Instant::now();
    // The ask's timeout is the deadline for the whole rally.
    let played = pinger
        .ask(
            |done| PingerMsg::Start {
                ponger: ponger.clone(),
                rounds,
                done,
            },
            Duration::from_secs(60),
        )
        .await?;
    let elapsed = started.elapsed();
    let answered = ponger.ask(PongerMsg::Count, Duration::from_secs(1)).await?;

    println!("{played} round trips ({} messages) in {elapsed:.2?}", 2 * played);
    println!("  ponger answered {answered} pings");
    println!(
        "  {:.0} round trips/s, {:.2?} per round trip",
        played as f64 / elapsed.as_secs_f64(),
        Duration::from_secs_f64(elapsed.as_secs_f64() / played as f64)
    );

    system.shutdown().await?;
    println!(
        "shut down: pinger terminated = {}, ponger terminated = {}",
        pinger.is_terminated(),
        ponger.is_terminated()
    );
    Ok(())
}
