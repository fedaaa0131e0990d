use std::time::Instant;
use compaktor_actor::*;
use tokio::sync::{mpsc, oneshot};
const N: u64 = 5_000_000;
struct Sink { seen: u64, first: Option<Instant>, done: Option<oneshot::Sender<(Instant, Instant)>> }
impl Actor for Sink {
    type Msg = u64;
    async fn handle(&mut self, _n: u64, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        self.seen += 1;
        if self.first.is_none() { self.first = Some(Instant::now()); }
        if self.seen == N { let _ = self.done.take().unwrap().send((self.first.unwrap(), Instant::now())); }
        Ok(())
    }
}
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for _ in 0..3 {
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
        let (dtx, drx) = oneshot::channel();
        tokio::spawn(async move { let mut s = 0; let mut first = None; while rx.recv().await.is_some() { if first.is_none() { first = Some(Instant::now()); } s += 1; if s == N { break } } let _ = dtx.send((first.unwrap(), Instant::now())); });
        let start = Instant::now();
        let p = tokio::spawn(async move { for i in 0..N { tx.send(i).unwrap(); } Instant::now() });
        let pend = p.await.unwrap(); let cend = drx.await.unwrap();
        println!("floor: producer {:?} consumer first {:?} end {:?}", pend - start, cend.0 - start, cend.1 - start);
    });
    rt.block_on(async {
        let system = ActorSystem::new(SystemConfig::new("b")).unwrap();
        let (dtx, drx) = oneshot::channel();
        let dtx = std::sync::Mutex::new(Some(dtx));
        let sink = system.spawn("s", Props::new(move || Sink { seen: 0, first: None, done: dtx.lock().unwrap().take() })).unwrap();
        let start = Instant::now();
        let p = tokio::spawn(async move { for i in 0..N { sink.tell(i); } Instant::now() });
        let pend = p.await.unwrap(); let cend = drx.await.unwrap();
        println!("actor: producer {:?} consumer first {:?} end {:?}", pend - start, cend.0 - start, cend.1 - start);
        system.shutdown().await.unwrap();
    });
    }
}
