//! A supervised worker pool: failures are restarts, not outages.
//!
//! A foreman actor spawns four workers as its children, watches them, and
//! feeds each one job at a time from its own queue. Some jobs are poisoned:
//! the worker panics on some and returns `Err` on others. The foreman's
//! [`SupervisorStrategy`] restarts a failed worker after an exponential
//! backoff, at most twice within ten seconds; a third failure stops it.
//! The foreman sees that through death watch (a [`Terminated`]) and hands
//! the dead worker's remaining jobs to the survivors, so every good job
//! still gets done. At the end `main` prints the foreman's summary and the
//! restarts counted by the system's health report.
//!
//! Run it with `cargo run --example worker_pool`
//! (`RUST_LOG=warn` adds the runtime's own log lines).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use compaktor::{
    Actor, ActorError, ActorRef, ActorSystem, AskError, Backoff, Context, Directive, Failure, FailurePhase, Props,
    ReplyTo, SupervisorStrategy, SystemConfig, Terminated,
};

const WORKERS: usize = 4;
const JOBS: u64 = 40;
/// Restarts allowed per worker within `RESTART_WINDOW`; one more failure stops it.
const MAX_RESTARTS: u32 = 2;
const RESTART_WINDOW: Duration = Duration::from_secs(10);
const JOB_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    Panic,
    Error,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    id: u64,
    fault: Fault,
}

/// Jobs start on worker `id % WORKERS`: worker-0 gets one bad job, worker-1
/// two, worker-2 three (one more than it may survive), worker-3 none.
fn fault_of(id: u64) -> Fault {
    match id {
        5 | 14 | 20 => Fault::Panic,
        10 | 13 | 18 => Fault::Error,
        _ => Fault::None,
    }
}

/// One job for a worker; the answer is the job's result.
struct Work {
    job: Job,
    reply: ReplyTo<u64>,
}

/// Steps of the Collatz sequence from `n` down to 1: a stand-in for real work.
fn collatz_steps(mut n: u64) -> u64 {
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

struct Worker {
    /// Where to say "ready": given in the props, so every restart knows it too.
    foreman: ActorRef<ForemanMsg>,
    slot: usize,
    handled: u64,
}

impl Actor for Worker {
    type Msg = Work;

    async fn pre_start(&mut self, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        // Also runs after each restart (the default `post_restart` calls it).
        self.foreman.tell(ForemanMsg::Ready { slot: self.slot });
        Ok(())
    }

    async fn handle(&mut self, Work { job, reply }: Work, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match job.fault {
            Fault::Panic => panic!("job {} hit a bug", job.id),
            Fault::Error => return Err(format!("job {}: disk full", job.id).into()),
            Fault::None => {}
        }
        self.handled += 1;
        let _ = reply.send(collatz_steps(job.id + 1));
        Ok(())
    }

    async fn post_restart(&mut self, _cause: &Failure, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        // A fresh instance from the props: `handled` starts again from zero.
        println!(
            "  ↻ {} restarted (fresh state: handled = {})",
            ctx.path().name(),
            self.handled
        );
        self.pre_start(ctx).await
    }
}

/// One worker as the foreman sees it.
struct Slot {
    name: String,
    /// `None` once the worker has terminated.
    worker: Option<ActorRef<Work>>,
    queue: VecDeque<Job>,
    /// The worker said it is ready (at start, after a restart, or by
    /// finishing a job) and has not been given a job since.
    ready: bool,
    /// The job the worker has now, if any.
    busy: Option<Job>,
}

#[derive(Debug, Default)]
struct Summary {
    completed: u64,
    failed: Vec<u64>,
    /// Jobs moved from a stopped worker's queue to a live one.
    moved: u64,
    /// Jobs left when no worker was alive to take them.
    stranded: Vec<u64>,
    lost_workers: Vec<String>,
    per_worker: BTreeMap<String, u64>,
}

enum ForemanMsg {
    Run {
        jobs: Vec<Job>,
        done: ReplyTo<Summary>,
    },
    /// The worker in `slot` has started (or restarted) and takes work.
    Ready {
        slot: usize,
    },
    /// A worker's answer to a job, piped back from the task that asked it.
    Finished {
        slot: usize,
        job: Job,
        result: Result<u64, AskError>,
    },
}

#[derive(Default)]
struct Foreman {
    slots: Vec<Slot>,
    summary: Summary,
    done: Option<ReplyTo<Summary>>,
}

impl Foreman {
    /// Gives the worker in `slot` its next job if it is ready for one.
    ///
    /// Workers pull: a job is only sent to a worker that is up and idle,
    /// so none is ever left in the mailbox of a worker that then stops.
    fn dispatch(&mut self, slot: usize, ctx: &mut Context<Self>) {
        let s = &mut self.slots[slot];
        let Some(worker) = s.worker.clone() else { return };
        if !s.ready || s.busy.is_some() {
            return;
        }
        let Some(job) = s.queue.pop_front() else { return };
        s.ready = false;
        s.busy = Some(job);
        // Asking inside the handler would make the foreman wait for one
        // worker at a time; a task asks instead and tells us the outcome.
        let foreman = ctx.myself().clone();
        tokio::spawn(async move {
            let result = worker.ask(|reply| Work { job, reply }, JOB_TIMEOUT).await;
            foreman.tell(ForemanMsg::Finished { slot, job, result });
        });
    }

    /// Queues `job` on the live worker with the least work.
    fn reassign(&mut self, job: Job, ctx: &mut Context<Self>) {
        let target = (0..self.slots.len())
            .filter(|&i| self.slots[i].worker.is_some())
            .min_by_key(|&i| self.slots[i].queue.len() + usize::from(self.slots[i].busy.is_some()));
        match target {
            Some(i) => {
                self.summary.moved += 1;
                self.slots[i].queue.push_back(job);
                self.dispatch(i, ctx);
            }
            None => self.summary.stranded.push(job.id),
        }
    }

    /// Answers `Run` once no job is queued or running.
    fn finish_if_idle(&mut self) {
        let idle = self.slots.iter().all(|s| s.busy.is_none() && s.queue.is_empty());
        if idle {
            if let Some(done) = self.done.take() {
                let _ = done.send(std::mem::take(&mut self.summary));
            }
        }
    }
}

impl Actor for Foreman {
    type Msg = ForemanMsg;

    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        for slot in 0..WORKERS {
            let name = format!("worker-{slot}");
            let foreman = ctx.myself().clone();
            let props = Props::new(move || Worker {
                foreman: foreman.clone(),
                slot,
                handled: 0,
            });
            let worker = ctx.spawn(&name, props)?;
            // Death watch: `on_terminated` hears when a worker is gone for good.
            ctx.watch(&worker);
            self.slots.push(Slot {
                name,
                worker: Some(worker),
                queue: VecDeque::new(),
                ready: false,
                busy: None,
            });
        }
        Ok(())
    }

    async fn handle(&mut self, msg: ForemanMsg, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            ForemanMsg::Run { jobs, done } => {
                for job in jobs {
                    self.slots[job.id as usize % WORKERS].queue.push_back(job);
                }
                self.done = Some(done);
                for slot in 0..self.slots.len() {
                    self.dispatch(slot, ctx);
                }
            }
            ForemanMsg::Ready { slot } => {
                self.slots[slot].ready = true;
                self.dispatch(slot, ctx);
            }
            ForemanMsg::Finished { slot, job, result } => {
                let s = &mut self.slots[slot];
                s.busy = None;
                match result {
                    Ok(_) => {
                        // Done and still up: ready for the next one.
                        s.ready = true;
                        self.summary.completed += 1;
                        *self.summary.per_worker.entry(s.name.clone()).or_default() += 1;
                    }
                    // It failed on this job: the reply handle was dropped with
                    // the message (NoReply), or the worker was stopped for it
                    // before we heard (Terminated). It says `Ready` once restarted.
                    Err(error) => {
                        println!("  ✗ job {} failed on {} ({error:?})", job.id, s.name);
                        self.summary.failed.push(job.id);
                    }
                }
                self.dispatch(slot, ctx);
            }
        }
        self.finish_if_idle();
        Ok(())
    }

    async fn on_terminated(&mut self, terminated: Terminated, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let Some(slot) = self
            .slots
            .iter()
            .position(|s| s.worker.as_ref().is_some_and(|w| w.path() == terminated.actor()))
        else {
            return Ok(());
        };
        let s = &mut self.slots[slot];
        s.worker = None;
        let orphans: Vec<Job> = s.queue.drain(..).collect();
        match terminated.reason().failure() {
            Some(failure) => println!("  ☠ Terminated: {} was stopped after: {}", s.name, failure.error()),
            None => println!("  ☠ Terminated: {} stopped", s.name),
        }
        println!("    moving its {} queued jobs to the survivors", orphans.len());
        self.summary.lost_workers.push(s.name.clone());
        for job in orphans {
            self.reassign(job, ctx);
        }
        self.finish_if_idle();
        Ok(())
    }

    fn supervisor_strategy(&self) -> SupervisorStrategy {
        SupervisorStrategy::one_for_one()
            .with_max_restarts(MAX_RESTARTS, RESTART_WINDOW)
            .with_backoff(Backoff::new(Duration::from_millis(20), Duration::from_millis(500), 0.2))
            .with_decider(|failure| {
                let kind = if failure.is_panic() { "panic" } else { "error" };
                println!("  ! {} failed ({kind}): {}", failure.actor().name(), failure.error());
                match failure.phase() {
                    // A worker that cannot even start will not get better by restarting.
                    FailurePhase::Start | FailurePhase::Restart => Directive::Stop,
                    _ => Directive::Restart,
                }
            })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "off".to_owned());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    // Supervision reports each panic; the default hook would print it a second time.
    std::panic::set_hook(Box::new(|_| {}));

    let system = ActorSystem::new(SystemConfig::new("worker-pool"))?;
    let foreman = system.spawn("foreman", Props::<Foreman>::default())?;

    let jobs: Vec<Job> = (0..JOBS)
        .map(|id| Job {
            id,
            fault: fault_of(id),
        })
        .collect();
    let bad = jobs.iter().filter(|j| j.fault != Fault::None).count();
    println!("{JOBS} jobs ({bad} poisoned) for {WORKERS} workers; at most {MAX_RESTARTS} restarts per worker");

    let summary = foreman
        .ask(|done| ForemanMsg::Run { jobs, done }, Duration::from_secs(30))
        .await?;

    let health = system.health().await;
    println!();
    println!(
        "jobs done:     {} of {} good jobs",
        summary.completed,
        JOBS - bad as u64
    );
    println!("jobs failed:   {} {:?}", summary.failed.len(), summary.failed);
    println!("jobs moved:    {} (from the queue of a stopped worker)", summary.moved);
    println!("workers lost:  {:?}", summary.lost_workers);
    for (worker, count) in &summary.per_worker {
        println!("  {worker}: {count} jobs");
    }
    if !summary.stranded.is_empty() {
        println!("stranded (no worker left): {:?}", summary.stranded);
    }
    println!(
        "health: status {:?}, restarts {}, live actors {}, dead letters {}",
        health.status, health.restarts, health.live_actors, health.dead_letters.total
    );

    system.shutdown().await?;
    if summary.completed != JOBS - bad as u64 {
        return Err("not every good job was done".into());
    }
    Ok(())
}
