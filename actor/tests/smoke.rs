//! A first end-to-end pass: tell, ask, a panic and restart, health, shutdown.

use compaktor_actor::*;
use std::time::Duration;

enum Msg {
    Add(u64),
    Get(ReplyTo<u64>),
    Boom,
}

#[derive(Default)]
struct Counter(u64);

impl Actor for Counter {
    type Msg = Msg;
    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        match msg {
            Msg::Add(n) => self.0 += n,
            Msg::Get(r) => {
                let _ = r.send(self.0);
            }
            Msg::Boom => panic!("boom"),
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let system = ActorSystem::new(SystemConfig::new("smoke")).unwrap();
    let c = system.spawn("c", Props::<Counter>::default()).unwrap();
    for _ in 0..1000 {
        c.tell(Msg::Add(1));
    }
    assert_eq!(c.ask(Msg::Get, Duration::from_secs(1)).await.unwrap(), 1000);
    c.tell(Msg::Boom);
    assert_eq!(c.ask(Msg::Get, Duration::from_secs(1)).await.unwrap(), 0);
    println!("{}", c.path());
    let h = system.health().await;
    println!("{}", serde_json::to_string(&h).unwrap());
    system.shutdown().await.unwrap();
    assert!(c.is_terminated());
}
