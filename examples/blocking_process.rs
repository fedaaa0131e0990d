//! Blocking work on the blocking pool, while async actors stay responsive.
//!
//! A `Shell` actor runs external programs with `std::process::Command`,
//! which blocks its thread until the program exits. Its props put it on the
//! system's blocking pool (`Props::on_blocking_pool()`), a set of OS threads
//! of its own. A `Heartbeat` actor stays on the async runtime, and `main`
//! pings it every 10 ms while each command runs.
//!
//! The runtime here has a single thread (`current_thread`), so the point is
//! sharp: had `Shell` blocked that thread, not one ping would be answered
//! until the command finished. Instead the heartbeat is never silent for
//! much longer than the ping interval, and the commands' answers arrive by
//! ask. The last command shows the contrast: the same `Shell` spawned
//! without `on_blocking_pool()` silences everything while it runs.
//!
//! Run it with `cargo run --example blocking_process`.

use std::process::Command;
use std::time::Duration;

use compaktor::{Actor, ActorError, ActorRef, ActorSystem, AskError, Context, Props, ReplyTo, SystemConfig};
use tokio::time::Instant;

const PING_EVERY: Duration = Duration::from_millis(10);
const PING_TIMEOUT: Duration = Duration::from_millis(200);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished command left behind.
struct Ran {
    status: String,
    stdout: String,
    stderr: String,
    took: Duration,
    thread: String,
}

struct RunCommand {
    program: &'static str,
    args: Vec<&'static str>,
    /// `Err` when the program could not be started at all.
    reply: ReplyTo<Result<Ran, String>>,
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("unnamed").to_owned()
}

struct Shell;

impl Actor for Shell {
    type Msg = RunCommand;

    async fn handle(&mut self, cmd: RunCommand, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let started = std::time::Instant::now();
        // Blocks this thread until the program exits: fine on the blocking pool.
        let output = Command::new(cmd.program).args(&cmd.args).output();
        let answer = match output {
            Ok(out) => Ok(Ran {
                status: out.status.to_string(),
                stdout: String::from_utf8_lossy(&out.stdout).trim_end().to_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
                took: started.elapsed(),
                thread: thread_name(),
            }),
            // A program that cannot start is an answer for the caller, not a
            // reason to restart the shell.
            Err(error) => Err(format!("cannot run {}: {error}", cmd.program)),
        };
        let _ = cmd.reply.send(answer);
        Ok(())
    }
}

/// Answers each ping with the name of the thread it runs on.
struct Heartbeat;

impl Actor for Heartbeat {
    type Msg = ReplyTo<String>;

    async fn handle(&mut self, reply: ReplyTo<String>, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = reply.send(thread_name());
        Ok(())
    }
}

/// Runs one command through `shell`, pinging `heartbeat` until it answers.
async fn run(
    shell: &ActorRef<RunCommand>,
    heartbeat: &ActorRef<ReplyTo<String>>,
    program: &'static str,
    args: Vec<&'static str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                (*a).to_owned()
            }
        })
        .collect();
    println!(
        "$ {}",
        std::iter::once(program.to_owned())
            .chain(shown)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let shell = shell.clone();
    let mut command = tokio::spawn(async move {
        shell
            .ask(|reply| RunCommand { program, args, reply }, COMMAND_TIMEOUT)
            .await
    });

    let mut ticks = tokio::time::interval(PING_EVERY);
    // The longest stretch without a heartbeat answer while the command ran.
    let (mut pings, mut missed, mut last, mut silence) = (0u32, 0u32, Instant::now(), Duration::ZERO);
    let answer = loop {
        tokio::select! {
            answer = &mut command => break answer??,
            _ = ticks.tick() => match heartbeat.ask(|reply| reply, PING_TIMEOUT).await {
                Ok(_) => {
                    pings += 1;
                    silence = silence.max(last.elapsed());
                    last = Instant::now();
                }
                Err(AskError::Timeout) => missed += 1,
                Err(other) => return Err(other.into()),
            },
        }
    };
    silence = silence.max(last.elapsed());

    match answer {
        Ok(ran) => {
            for line in ran.stdout.lines() {
                println!("  stdout: {line}");
            }
            for line in ran.stderr.lines() {
                println!("  stderr: {line}");
            }
            println!("  {} after {:.2?} on thread {}", ran.status, ran.took, ran.thread);
        }
        Err(error) => println!("  {error}"),
    }
    println!("  meanwhile: {pings} ping(s) answered, {missed} timed out, longest silence {silence:.2?}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let system = ActorSystem::new(SystemConfig::new("shell-demo"))?;
    let shell = system.spawn("shell", Props::new(|| Shell).on_blocking_pool())?;
    let heartbeat = system.spawn("heartbeat", Props::new(|| Heartbeat))?;

    let on = heartbeat.ask(|reply| reply, PING_TIMEOUT).await?;
    println!("the heartbeat runs on thread {on:?}, the only thread of the async runtime");

    run(&shell, &heartbeat, "uname", vec!["-a"]).await?;
    run(
        &shell,
        &heartbeat,
        "sh",
        vec!["-c", "echo napping; sleep 1; echo awake after a second"],
    )
    .await?;
    run(
        &shell,
        &heartbeat,
        "sh",
        vec!["-c", "echo \"something broke\" >&2; exit 3"],
    )
    .await?;
    run(&shell, &heartbeat, "no-such-program-compaktor", vec![]).await?;

    // For contrast, the same actor on the async runtime: don't do this.
    println!("\nthe same Shell without on_blocking_pool(), on the async runtime's only thread:");
    let stalling = system.spawn("stalling-shell", Props::new(|| Shell))?;
    run(&stalling, &heartbeat, "sleep", vec!["0.5"]).await?;

    system.shutdown().await?;
    Ok(())
}
