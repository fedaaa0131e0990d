//! `compaktor-node`: one compaktor node as an OS process, for the scripts
//! in `scripts/`, the demo and the multi-process tests.
//!
//! ```text
//! compaktor-node certs --out DIR --ids a,b,c     # a CA and one identity per id
//! compaktor-node run --certs DIR --id a --bind 127.0.0.1:7001 [--name NAME]
//!                    [--status FILE] [--heartbeat-ms N] [--pause-ms N]
//! compaktor-node run --dev ...                    # throwaway CA: this process only
//! compaktor-node status [--run DIR]              # the nodes of a run folder
//! ```
//!
//! A running node hosts `/user/echo` and `/user/room` (see `protocol.rs`)
//! and a `counter` factory for remote spawn; it prints one `ready` line
//! with its root path and incarnation once it listens, writes its status
//! (health snapshot and peers, as JSON) to `--status` every second, and
//! shuts down gracefully on SIGTERM or Ctrl-C.

mod actors;
mod args;
mod protocol;
mod status;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use compaktor::remote::{CertificateAuthority, NodeIdentity, RemoteConfig, RemoteNode};
use compaktor::Props;

use crate::actors::{Counter, EchoActor, RoomActor};
use crate::args::Args;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("compaktor-node: {error}\n\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    let result = match args.command.as_str() {
        "certs" => certs(&args),
        "run" => run(&args),
        "status" => status::show(Path::new(args.value("run").unwrap_or("run"))),
        other => Err(format!("unknown command {other:?}").into()),
    };
    if let Err(error) = result {
        eprintln!("compaktor-node: {error}");
        std::process::exit(1);
    }
}

/// Writes `ca.pem` and, per id, `<id>.pem` and `<id>.key` into `--out`.
fn certs(args: &Args) -> Result<(), Error> {
    let out = PathBuf::from(args.required("out")?);
    std::fs::create_dir_all(&out)?;
    let ca = CertificateAuthority::generate("compaktor-cluster")?;
    std::fs::write(out.join("ca.pem"), ca.cert_pem())?;
    for id in args.required("ids")?.split(',').filter(|id| !id.is_empty()) {
        let (_, cert, key) = ca.issue()?.to_pem();
        std::fs::write(out.join(format!("{id}.pem")), cert)?;
        write_private(&out.join(format!("{id}.key")), &key)?;
    }
    println!("certificates written to {}", out.display());
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

fn identity(args: &Args) -> Result<NodeIdentity, Error> {
    if args.flag("dev") {
        return Ok(NodeIdentity::dev()?);
    }
    let dir = PathBuf::from(args.required("certs")?);
    let id = args.required("id")?;
    let read = |name: String| {
        std::fs::read_to_string(dir.join(&name)).map_err(|e| format!("cannot read {}: {e}", dir.join(&name).display()))
    };
    Ok(NodeIdentity::from_pem(
        &read("ca.pem".to_owned())?,
        &read(format!("{id}.pem"))?,
        &read(format!("{id}.key"))?,
    )?)
}

fn run(args: &Args) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &Args) -> Result<(), Error> {
    let name = args.value("name").unwrap_or("compaktor");
    let mut config = RemoteConfig::new(name, identity(args)?);
    if let Some(bind) = args.value("bind") {
        config.bind = bind.parse().map_err(|e| format!("--bind {bind}: {e}"))?;
    }
    if let Some(ms) = args.number("heartbeat-ms")? {
        config.heartbeat_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = args.number("pause-ms")? {
        config.acceptable_heartbeat_pause = Duration::from_millis(ms);
    }
    let mut registry = protocol::registry();
    registry.factory("counter", |start: u64| Props::new(move || Counter(start)));
    let node = RemoteNode::start(config, registry).await?;
    let system = node.system();
    system.spawn("echo", Props::new(|| EchoActor))?;
    system.spawn("room", Props::<RoomActor>::default())?;
    let root = compaktor::ActorPath::root(system.address().clone());
    println!(
        "ready {root} incarnation={} pid={}",
        system.incarnation(),
        std::process::id()
    );
    std::io::stdout().flush()?;

    let status = args.value("status").map(PathBuf::from);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(path) = &status {
                    if let Err(error) = write_status(&node, path).await {
                        tracing::warn!(%error, path = %path.display(), "cannot write the status file");
                    }
                }
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down");
    node.shutdown().await;
    println!("stopped");
    Ok(())
}

/// The node's health and peers, as JSON, replaced atomically.
async fn write_status(node: &RemoteNode, path: &Path) -> Result<(), Error> {
    let system = node.system();
    let status = serde_json::json!({
        "root": compaktor::ActorPath::root(system.address().clone()).to_string(),
        "incarnation": system.incarnation(),
        "pid": std::process::id(),
        "health": system.health().await,
        "peers": node.peers(),
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&status)?)?;
    std::fs::rename(tmp, path)?;
    Ok(())
}
