use std::time::Instant;
use compaktor_actor::*;
const N: u64 = 5_000_000;
struct Stuck;
impl Actor for Stuck {
    type Msg = u64;
    async fn handle(&mut self, _n: u64, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
        std::future::pending::<()>().await; Ok(())
    }
}
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for _ in 0..3 {
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let start = Instant::now();
        let p = tokio::spawn(async move { for i in 0..N { tx.send(i).unwrap(); } Instant::now() });
        println!("floor producer alone {:?}", p.await.unwrap() - start); drop(rx);
        let system = ActorSystem::new(SystemConfig::new("b")).unwrap();
        let sink = system.spawn("s", Props::new(|| Stuck)).unwrap();
        sink.tell(0);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let start = Instant::now();
        let p = tokio::spawn(async move { for i in 0..N { sink.tell(i); } Instant::now() });
        println!("actor producer alone {:?}", p.await.unwrap() - start);
    });
    }
}
