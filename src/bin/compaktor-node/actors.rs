//! The actors a `compaktor-node` process hosts.

use std::collections::BTreeMap;

use compaktor::{Actor, ActorError, ActorRef, Context, Terminated};

use crate::protocol::{ChatEvent, Count, Echo, Room};

/// `/user/echo`: answers pings.
pub(crate) struct EchoActor;

impl Actor for EchoActor {
    type Msg = Echo;

    async fn handle(&mut self, msg: Echo, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Echo::Ping(n, reply) => {
                let _ = reply.send(n);
            }
            Echo::PingTo(n, to) => to.tell(n),
            Echo::Crash => return Err("asked to crash".into()),
        }
        Ok(())
    }
}

/// Started by other nodes through the `counter` factory.
pub(crate) struct Counter(pub(crate) u64);

impl Actor for Counter {
    type Msg = Count;

    async fn handle(&mut self, msg: Count, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Count::Add(n) => self.0 += n,
            Count::Get(reply) => {
                let _ = reply.send(self.0);
            }
        }
        Ok(())
    }
}

/// `/user/room`: members join from any node; the room watches each one,
/// so a member that stops, or whose node dies, leaves by itself.
#[derive(Default)]
pub(crate) struct RoomActor {
    members: BTreeMap<String, ActorRef<ChatEvent>>,
}

impl RoomActor {
    fn broadcast(&self, event: ChatEvent) {
        for member in self.members.values() {
            member.tell(event.clone());
        }
    }

    fn leave(&mut self, name: &str, reason: String) {
        if self.members.remove(name).is_some() {
            tracing::info!(name, %reason, "left the room");
            self.broadcast(ChatEvent::Left {
                name: name.to_owned(),
                reason,
            });
        }
    }
}

impl Actor for RoomActor {
    type Msg = Room;

    async fn handle(&mut self, msg: Room, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Room::Join { name, member } => {
                ctx.watch(&member);
                self.members.insert(name.clone(), member);
                tracing::info!(name, "joined the room");
                self.broadcast(ChatEvent::Joined(name));
            }
            Room::Say { from, text } => self.broadcast(ChatEvent::Said { from, text }),
            Room::Leave { name } => {
                if let Some(member) = self.members.get(&name) {
                    ctx.unwatch(member);
                }
                self.leave(&name, "left".to_owned());
            }
            Room::Members(reply) => {
                let _ = reply.send(self.members.keys().cloned().collect());
            }
        }
        Ok(())
    }

    async fn on_terminated(&mut self, terminated: Terminated, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let gone = self
            .members
            .iter()
            .find(|(_, member)| member.path() == terminated.actor())
            .map(|(name, _)| name.clone());
        if let Some(name) = gone {
            self.leave(&name, terminated.reason().to_string());
        }
        Ok(())
    }
}
