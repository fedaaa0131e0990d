//! A circuit breaker: an actor whose behaviour changes with its state.
//!
//! Akka switches behaviour with `become`; here the state that decides how a
//! message is handled is an enum, and `handle` matches on it, so the
//! compiler checks that every state handles every message. The breaker
//! stands in front of a flaky backend:
//!
//! - **Closed**: calls go to the backend; three failures in a row open it.
//! - **Open**: calls fail at once without touching the backend. A timer
//!   (`ctx.timers()`) moves it to half-open after a pause.
//! - **HalfOpen**: one trial call goes through. Calls arriving meanwhile
//!   wait in the stash. Success closes the breaker, failure opens it again;
//!   either way the stashed calls are then replayed.
//!
//! `main` plays two clients calling side by side while it takes the
//! backend through an outage: healthy, failing with errors, silent (calls
//! time out), healthy again. Every state transition is printed.
//!
//! Run it with `cargo run --example circuit_breaker`.

use std::fmt;
use std::time::Duration;

use compaktor::{Actor, ActorError, ActorRef, ActorSystem, Context, Props, ReplyTo, SystemConfig};
use tokio::time::Instant;

/// Failures in a row that open the breaker.
const FAILURES_TO_OPEN: u32 = 3;
/// How long the breaker stays open before it lets a trial call through.
const OPEN_FOR: Duration = Duration::from_millis(250);
/// How long the breaker waits for the backend.
const CALL_TIMEOUT: Duration = Duration::from_millis(100);
const ROUNDS: u32 = 24;
const ROUND_EVERY: Duration = Duration::from_millis(40);

// ---- the backend ----

/// How the backend behaves; `main` switches it to stage an outage.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Healthy,
    Failing,
    /// Keeps requests without answering, like a hung server.
    Silent,
}

enum BackendMsg {
    Request {
        call: u32,
        reply: ReplyTo<Result<String, String>>,
    },
    SetMode(Mode),
}

struct Backend {
    mode: Mode,
    /// Requests swallowed while silent; holding their reply handles makes
    /// the caller wait for its timeout instead of failing at once.
    swallowed: Vec<ReplyTo<Result<String, String>>>,
}

impl Actor for Backend {
    type Msg = BackendMsg;

    async fn handle(&mut self, msg: BackendMsg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            BackendMsg::SetMode(mode) => self.mode = mode,
            BackendMsg::Request { call, reply } => match self.mode {
                Mode::Healthy => {
                    let _ = reply.send(Ok(format!("result {call}")));
                }
                Mode::Failing => {
                    let _ = reply.send(Err("503 service unavailable".to_owned()));
                }
                Mode::Silent => self.swallowed.push(reply),
            },
        }
        Ok(())
    }
}

// ---- the breaker ----

#[derive(Debug)]
enum CallError {
    /// Rejected by the open breaker without calling the backend.
    Open,
    Backend(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Open => f.write_str("rejected: breaker open"),
            CallError::Backend(error) => write!(f, "backend: {error}"),
        }
    }
}

type CallReply = ReplyTo<Result<String, CallError>>;

enum BreakerMsg {
    Call {
        call: u32,
        reply: CallReply,
    },
    /// The backend's answer to `call`, piped back by the task that asked it.
    Outcome {
        call: u32,
        result: Result<String, String>,
        reply: CallReply,
        trial: bool,
    },
    /// The open period is over (sent by the breaker's own timer).
    TryAgain,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open,
    HalfOpen { trial_in_flight: bool },
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed { .. } => "Closed",
            State::Open => "Open",
            State::HalfOpen { .. } => "HalfOpen",
        })
    }
}

struct Breaker {
    state: State,
    backend: ActorRef<BackendMsg>,
    started: Instant,
}

impl Breaker {
    fn say(&self, text: &str) {
        println!("[+{:>4} ms]   breaker: {text}", self.started.elapsed().as_millis());
    }

    fn become_(&mut self, next: State, why: &str) {
        self.say(&format!("{} → {next} ({why})", self.state));
        self.state = next;
    }

    fn open(&mut self, why: &str, ctx: &mut Context<Self>) {
        self.become_(State::Open, why);
        ctx.timers().start_single("try-again", BreakerMsg::TryAgain, OPEN_FOR);
    }

    /// Calls the backend without waiting for it here: the breaker keeps
    /// handling messages (rejecting, stashing, timers) while the call runs.
    fn forward(&self, call: u32, reply: CallReply, trial: bool, ctx: &mut Context<Self>) {
        let backend = self.backend.clone();
        let breaker = ctx.myself().clone();
        tokio::spawn(async move {
            let result = match backend
                .ask(|reply| BackendMsg::Request { call, reply }, CALL_TIMEOUT)
                .await
            {
                Ok(answer) => answer,
                Err(error) => Err(error.to_string()),
            };
            breaker.tell(BreakerMsg::Outcome {
                call,
                result,
                reply,
                trial,
            });
        });
    }
}

impl Actor for Breaker {
    type Msg = BreakerMsg;

    async fn handle(&mut self, msg: BreakerMsg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            // The same message, handled three ways.
            BreakerMsg::Call { call, reply } => match self.state {
                State::Closed { .. } => self.forward(call, reply, false, ctx),
                State::Open => {
                    let _ = reply.send(Err(CallError::Open));
                }
                State::HalfOpen { trial_in_flight: false } => {
                    self.state = State::HalfOpen { trial_in_flight: true };
                    self.say(&format!("call #{call} goes through as the trial"));
                    self.forward(call, reply, true, ctx);
                }
                State::HalfOpen { trial_in_flight: true } => {
                    self.say(&format!("call #{call} waits in the stash for the trial"));
                    if let Err(full) = ctx.stash(BreakerMsg::Call { call, reply }) {
                        if let BreakerMsg::Call { reply, .. } = full.into_inner() {
                            let _ = reply.send(Err(CallError::Open));
                        }
                    }
                }
            },
            BreakerMsg::Outcome {
                call,
                result,
                reply,
                trial,
            } => {
                let failed = result.is_err();
                let _ = reply.send(result.map_err(CallError::Backend));
                match self.state {
                    State::Closed { .. } if !failed => self.state = State::Closed { failures: 0 },
                    State::Closed { failures } if failures + 1 >= FAILURES_TO_OPEN => {
                        self.open(&format!("{FAILURES_TO_OPEN} failures in a row"), ctx);
                    }
                    State::Closed { failures } => self.state = State::Closed { failures: failures + 1 },
                    State::HalfOpen { .. } if trial => {
                        if failed {
                            self.open(&format!("trial call #{call} failed"), ctx);
                        } else {
                            self.become_(State::Closed { failures: 0 }, &format!("trial call #{call} succeeded"));
                        }
                        // The waiting calls now meet the new state.
                        ctx.unstash_all();
                    }
                    // A late answer to a call made before the breaker opened.
                    _ => {}
                }
            }
            BreakerMsg::TryAgain => {
                if let State::Open = self.state {
                    self.become_(State::HalfOpen { trial_in_flight: false }, "open period over");
                }
            }
        }
        Ok(())
    }
}

/// One client call, with the outcome as a short line.
async fn call(breaker: &ActorRef<BreakerMsg>, n: u32) -> String {
    let asked = Instant::now();
    let outcome = breaker
        .ask(|reply| BreakerMsg::Call { call: n, reply }, Duration::from_secs(1))
        .await;
    let ms = asked.elapsed().as_millis();
    match outcome {
        Ok(Ok(answer)) => format!("#{n} ok: {answer} ({ms} ms)"),
        Ok(Err(error)) => format!("#{n} {error} ({ms} ms)"),
        Err(error) => format!("#{n} no answer from the breaker: {error}"),
    }
}

/// The outage `main` stages: the backend's mode from this round on.
fn script(round: u32) -> Option<Mode> {
    match round {
        1 => Some(Mode::Healthy),
        4 => Some(Mode::Failing),
        9 => Some(Mode::Silent),
        17 => Some(Mode::Healthy),
        _ => None,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let system = ActorSystem::new(SystemConfig::new("breaker"))?;
    let started = Instant::now();

    let backend = system.spawn(
        "backend",
        Props::new(|| Backend {
            mode: Mode::Healthy,
            swallowed: Vec::new(),
        }),
    )?;
    let to_backend = backend.clone();
    let breaker = system.spawn(
        "breaker",
        Props::new(move || Breaker {
            state: State::Closed { failures: 0 },
            backend: to_backend.clone(),
            started,
        }),
    )?;

    // Paces the rounds; every wait below is bounded by an ask timeout.
    let mut rounds = tokio::time::interval(ROUND_EVERY);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for round in 1..=ROUNDS {
        rounds.tick().await;
        let ms = started.elapsed().as_millis();
        if let Some(mode) = script(round) {
            println!("[+{ms:>4} ms] backend is now {mode:?}");
            backend.tell(BackendMsg::SetMode(mode));
        }
        // Two clients at once, so the half-open breaker has someone to stash.
        // The line prints when both have their answer, stamped with the round's start.
        let (a, b) = tokio::join!(call(&breaker, 2 * round - 1), call(&breaker, 2 * round));
        println!("[+{ms:>4} ms] round {round:>2}: {a:<40} {b}");
    }

    system.shutdown().await?;
    Ok(())
}
