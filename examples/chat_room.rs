//! A chat room on one node, members on three other node processes.
//!
//! The parent process runs the room node (`/user/room`). It starts three
//! member nodes as child processes (this same program, re-executed), with
//! certificates from one CA generated at start. Each member looks the room
//! up by path, joins with a ref to its own actor — refs cross the wire
//! inside messages — and chats. The room watches every member: when one
//! member's process is killed outright, the room learns it from the
//! missing heartbeats and tells everyone who left and why; the others then
//! leave politely and shut down.
//!
//! Run with `cargo run --release --example chat_room`.

#[path = "../src/bin/compaktor-node/protocol.rs"]
mod protocol;

#[allow(dead_code)] // the node binary's other actors are not used here.
#[path = "../src/bin/compaktor-node/actors.rs"]
mod actors;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use compaktor::remote::{CertificateAuthority, NodeIdentity, RemoteConfig, RemoteNode};
use compaktor::{Actor, ActorError, ActorRef, Context, Props};
use protocol::{ChatEvent, Room};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;

const MEMBERS: [&str; 3] = ["ada", "grace", "linus"];
const WAIT: Duration = Duration::from_secs(20);

fn config(name: &str, identity: NodeIdentity) -> RemoteConfig {
    let mut config = RemoteConfig::new(name, identity);
    // Brisk failure detection for a demo: a killed member is noticed in
    // about a second (the default is about four).
    config.heartbeat_interval = Duration::from_millis(250);
    config.acceptable_heartbeat_pause = Duration::from_millis(750);
    config
}

fn identity(dir: &Path, id: &str) -> Result<NodeIdentity, Error> {
    let read = |name: String| std::fs::read_to_string(dir.join(name));
    Ok(NodeIdentity::from_pem(
        &read("ca.pem".into())?,
        &read(format!("{id}.pem"))?,
        &read(format!("{id}.key"))?,
    )?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--member") => member(&args[2], &args[3], Path::new(&args[4])).await,
        _ => room().await,
    }
}

/// Prints what the room says to the parent's own observer.
struct Observer(mpsc::UnboundedSender<ChatEvent>);

impl Actor for Observer {
    type Msg = ChatEvent;

    async fn handle(&mut self, event: ChatEvent, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let _ = self.0.send(event);
        Ok(())
    }
}

async fn room() -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("compaktor-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca = CertificateAuthority::generate("chat")?;
    std::fs::write(dir.join("ca.pem"), ca.cert_pem())?;
    for id in MEMBERS.iter().chain(&["room"]) {
        let (_, cert, key) = ca.issue()?.to_pem();
        std::fs::write(dir.join(format!("{id}.pem")), cert)?;
        std::fs::write(dir.join(format!("{id}.key")), key)?;
    }

    let node = RemoteNode::start(config("chat", identity(&dir, "room")?), protocol::registry()).await?;
    let room = node.system().spawn("room", Props::<actors::RoomActor>::default())?;
    println!("room at {}", room.path());

    // The room node watches the room too, through an observer member.
    let (tx, mut events) = mpsc::unbounded_channel();
    let observer = node
        .system()
        .spawn("observer", Props::new(move || Observer(tx.clone())))?;
    room.tell(Room::Join {
        name: "observer".into(),
        member: observer,
    });

    let mut members = Vec::new();
    for name in MEMBERS {
        members.push(start_member(name, &room.path().to_string(), &dir).await?);
    }
    // Wait until every member has joined and the room relayed its hello.
    within("every member to join and say hello", async {
        let (mut joined, mut said) = (0, 0);
        while joined < MEMBERS.len() || said < MEMBERS.len() {
            match events.recv().await {
                Some(ChatEvent::Joined(name)) if name != "observer" => joined += 1,
                Some(ChatEvent::Said { .. }) => said += 1,
                _ => {}
            }
        }
    })
    .await?;
    let names = room.ask(Room::Members, WAIT).await?;
    println!("members: {names:?}");

    // Kill one member's process: no goodbye, no closed connection.
    let (victim, mut child) = members.pop().expect("three members");
    let killed = Instant::now();
    child.kill().await?;
    println!("killed {victim}'s node process");
    let left = within("the room to notice the killed member", async {
        loop {
            if let Some(ChatEvent::Left { name, reason }) = events.recv().await {
                return (name, reason);
            }
        }
    });
    let (name, reason) = left.await?;
    println!("room noticed after {:.2?}: {name} left ({reason})", killed.elapsed());

    // The others leave politely: closing their stdin asks them to.
    for (name, mut child) in members {
        drop(child.stdin.take());
        let status = tokio::time::timeout(WAIT, child.wait()).await??;
        println!("{name}'s node exited ({status})");
    }
    let names = room.ask(Room::Members, WAIT).await?;
    println!("members left: {names:?}");
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> Result<T, Error> {
    tokio::time::timeout(WAIT, fut)
        .await
        .map_err(|_| format!("timed out waiting for {what}").into())
}

/// Starts a member node process and relays its output, prefixed.
async fn start_member(name: &str, room: &str, dir: &Path) -> Result<(String, Child), Error> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--member", name, room])
        .arg(PathBuf::from(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let prefix = name.to_owned();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("  [{prefix}] {line}");
        }
    });
    Ok((name.to_owned(), child))
}

/// A member's actor: prints what the room relays.
struct Member;

impl Actor for Member {
    type Msg = ChatEvent;

    async fn handle(&mut self, event: ChatEvent, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match event {
            ChatEvent::Joined(name) => println!("{name} joined"),
            ChatEvent::Said { from, text } => println!("{from}: {text}"),
            ChatEvent::Left { name, reason } => println!("{name} left ({reason})"),
        }
        Ok(())
    }
}

/// A member node: joins, says hello, and leaves when stdin closes.
async fn member(name: &str, room_path: &str, dir: &Path) -> Result<(), Error> {
    let node = RemoteNode::start(config(name, identity(dir, name)?), protocol::registry()).await?;
    let room: ActorRef<Room> = node.lookup(room_path).await?;
    let me = node.system().spawn("member", Props::new(|| Member))?;
    room.tell(Room::Join {
        name: name.to_owned(),
        member: me,
    });
    room.tell(Room::Say {
        from: name.to_owned(),
        text: format!("hello from node {}", node.local_addr()),
    });
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    let _ = tokio::io::copy(&mut stdin, &mut sink).await;
    room.tell(Room::Leave { name: name.to_owned() });
    let _ = tokio::io::stdout().flush().await;
    node.shutdown().await;
    Ok(())
}
