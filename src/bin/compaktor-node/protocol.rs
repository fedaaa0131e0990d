//! The messages a `compaktor-node` process understands, and the registry
//! that lets them cross the wire. Tests and examples that talk to node
//! processes include this file, so both sides agree on the manifests.

use compaktor::remote::Registry;
use compaktor::{ActorRef, ReplyTo};
use serde::{Deserialize, Serialize};

/// For `/user/echo`: answers pings, and stops itself on request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Echo {
    /// Answers `n` to `reply`.
    Ping(u64, ReplyTo<u64>),
    /// Sends `n` to `to`: a reply through a ref inside the message.
    PingTo(u64, ActorRef<u64>),
    /// Fails the handler: the echo actor is restarted by its supervisor.
    Crash,
}

/// For counters started remotely from the `counter` factory.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Count {
    /// Adds to the count.
    Add(u64),
    /// Answers the count.
    Get(ReplyTo<u64>),
}

/// For `/user/room`: a chat room members on any node join.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Room {
    /// `member` joins as `name`; the room watches it and lets everyone know.
    Join { name: String, member: ActorRef<ChatEvent> },
    /// A member says something to everyone.
    Say { from: String, text: String },
    /// A member leaves.
    Leave { name: String },
    /// Answers the members' names.
    Members(ReplyTo<Vec<String>>),
}

/// What a room tells its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ChatEvent {
    /// Someone joined.
    Joined(String),
    /// Someone left; the reason says how (left, stopped, node unreachable...).
    Left { name: String, reason: String },
    /// Someone said something.
    Said { from: String, text: String },
}

/// Every message type above under its manifest, plus the reply types.
pub(crate) fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register::<Echo>("compaktor.node.Echo")
        .register::<Count>("compaktor.node.Count")
        .register::<Room>("compaktor.chat.Room")
        .register::<ChatEvent>("compaktor.chat.Event")
        .register::<u64>("u64")
        .register::<Vec<String>>("compaktor.chat.Members");
    registry
}
