//! Node processes for multi-process tests: the `compaktor-node` binary,
//! started on 127.0.0.1 with certificates from one CA, and an in-test node
//! that trusts the same CA.

#![allow(dead_code)] // each test file uses its own part of this.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use compaktor::remote::{NodeIdentity, RemoteConfig, RemoteNode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[path = "../../src/bin/compaktor-node/protocol.rs"]
pub(crate) mod protocol;

/// How long any single wait in these tests may take.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Heartbeats fast enough that a dead process is noticed in about a second.
pub(crate) const HEARTBEAT_MS: u64 = 200;
pub(crate) const PAUSE_MS: u64 = 600;

pub(crate) async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// A fresh directory holding a CA and identities for `ids`, made by the
/// binary's own `certs` command.
pub(crate) fn certificates(test: &str, ids: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("compaktor-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_compaktor-node"))
        .args(["certs", "--out"])
        .arg(&dir)
        .args(["--ids", &ids.join(",")])
        .stdout(Stdio::null())
        .status()
        .expect("compaktor-node certs runs");
    assert!(status.success(), "compaktor-node certs failed");
    dir
}

pub(crate) fn identity(certs: &Path, id: &str) -> NodeIdentity {
    let read = |name: &str| std::fs::read_to_string(certs.join(name)).expect("certificate file");
    NodeIdentity::from_pem(
        &read("ca.pem"),
        &read(&format!("{id}.pem")),
        &read(&format!("{id}.key")),
    )
    .expect("identity from PEM")
}

/// A free UDP port on 127.0.0.1 (free when asked; good enough for tests).
pub(crate) fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port()
}

/// The in-test node, with the same fast failure detection as the processes.
pub(crate) async fn local_node(certs: &Path, id: &str) -> RemoteNode {
    start_local(local_config(certs, id)).await
}

/// The configuration [`local_node`] uses: fast heartbeats, short timeouts.
pub(crate) fn local_config(certs: &Path, id: &str) -> RemoteConfig {
    let mut config = RemoteConfig::new("compaktor", identity(certs, id));
    config.heartbeat_interval = Duration::from_millis(HEARTBEAT_MS);
    config.acceptable_heartbeat_pause = Duration::from_millis(PAUSE_MS);
    config.connect_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_secs(5);
    config
}

pub(crate) async fn start_local(config: RemoteConfig) -> RemoteNode {
    RemoteNode::start(config, protocol::registry())
        .await
        .expect("local node starts")
}

/// A `compaktor-node run` process; killed when dropped.
pub(crate) struct NodeProcess {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// `compaktor://compaktor@127.0.0.1:<port>/`
    pub(crate) root: String,
    pub(crate) incarnation: String,
}

impl NodeProcess {
    pub(crate) async fn start(certs: &Path, id: &str, port: u16) -> NodeProcess {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = Command::new(env!("CARGO_BIN_EXE_compaktor-node"))
            .arg("run")
            .arg("--certs")
            .arg(certs)
            .args(["--id", id, "--bind", &addr.to_string()])
            .args([
                "--heartbeat-ms",
                &HEARTBEAT_MS.to_string(),
                "--pause-ms",
                &PAUSE_MS.to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("compaktor-node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = within(&format!("node {id} to print its ready line"), async {
            loop {
                match lines.next_line().await.expect("node stdout") {
                    Some(line) if line.starts_with("ready ") => return line,
                    Some(_) => {}
                    None => panic!("node {id} exited before it was ready"),
                }
            }
        })
        .await;
        // ready <root> incarnation=<uuid> pid=<pid>
        let mut parts = ready.split_whitespace().skip(1);
        let root = parts.next().expect("root in the ready line").to_owned();
        let incarnation = parts
            .next()
            .and_then(|p| p.strip_prefix("incarnation="))
            .expect("incarnation in the ready line")
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        NodeProcess {
            child,
            addr,
            root,
            incarnation,
        }
    }

    /// The path of an actor on this node, without a uid.
    pub(crate) fn path(&self, name: &str) -> String {
        format!("{}user/{name}", self.root)
    }

    /// SIGKILL: the process vanishes without a word to its peers.
    pub(crate) async fn kill(&mut self) {
        self.child.start_kill().expect("kill the node");
        within("the killed node to exit", self.child.wait())
            .await
            .expect("wait");
    }

    /// SIGTERM: the node shuts down gracefully and closes its connections.
    pub(crate) async fn terminate(&mut self) {
        let pid = self.child.id().expect("a running node").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = within("the node to shut down on SIGTERM", self.child.wait())
            .await
            .expect("wait");
        assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
    }
}
