//! Node A's handle on node B: the child process, its stdin (commands) and
//! its stdout (answers, read with a deadline).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use compaktor_remote::NodeIdentity;
use tokio::sync::mpsc;

use crate::{DEADLINE, ENV_CA, ENV_CERT, ENV_KEY, NODE_B};

/// Node B, a child process: killed on drop, and exits itself when its
/// stdin closes.
pub(crate) struct NodeB {
    pub(crate) process: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// Where node B's endpoint listens.
    pub(crate) node: SocketAddr,
    /// Where B's floor endpoint listens.
    pub(crate) floor: SocketAddr,
}

impl NodeB {
    pub(crate) async fn start(identity: &NodeIdentity) -> NodeB {
        let (ca, cert, key) = identity.to_pem();
        let mut process = Command::new(std::env::current_exe().expect("this binary"))
            .arg(NODE_B)
            .env(ENV_CA, ca)
            .env(ENV_CERT, cert)
            .env(ENV_KEY, key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node B starts");
        let stdin = process.stdin.take().expect("B's stdin");
        let stdout = BufReader::new(process.stdout.take().expect("B's stdout"));
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut b = NodeB {
            process,
            stdin,
            lines,
            node: SocketAddr::from(([0, 0, 0, 0], 0)),
            floor: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let ready = b.answer("ready").await;
        let addr = |i: usize| ready.get(i).and_then(|a| a.parse().ok()).expect("an address from B");
        (b.node, b.floor) = (addr(0), addr(1));
        b
    }

    /// The next line from B, which must start with `word`; its other words.
    pub(crate) async fn answer(&mut self, word: &str) -> Vec<String> {
        let line = tokio::time::timeout(DEADLINE, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("node B did not answer {word:?} within {DEADLINE:?}"))
            .unwrap_or_else(|| panic!("node B exited before answering {word:?}"));
        let mut words = line.split_whitespace().map(str::to_owned);
        assert_eq!(words.next().as_deref(), Some(word), "node B answered {line:?}");
        words.collect()
    }

    pub(crate) async fn call(&mut self, command: &str, word: &str) -> Vec<String> {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .expect("a command to node B");
        self.answer(word).await
    }

    /// Spawns a sink on B; returns its path.
    pub(crate) async fn sink(&mut self, command: String) -> String {
        self.call(&command, "path").await.remove(0)
    }

    pub(crate) async fn stats(&mut self, sink: &str) -> SinkStats {
        let n: Vec<u64> = self
            .call(&format!("stats {sink}"), "stats")
            .await
            .iter()
            .map(|w| w.parse().expect("a number from B"))
            .collect();
        SinkStats {
            handled: n[0],
            span: Duration::from_micros(n[1]),
            dead_letters: n[2],
            peak_kb: n[4],
        }
    }

    /// Dead letters on B so far.
    pub(crate) async fn dead_letters(&mut self) -> u64 {
        self.call("dead", "dead").await[0].parse().expect("a number from B")
    }
}

impl Drop for NodeB {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub(crate) struct SinkStats {
    pub(crate) handled: u64,
    pub(crate) span: Duration,
    pub(crate) dead_letters: u64,
    pub(crate) peak_kb: u64,
}
