//! A stream across a boundary that is only bytes: the upstream half runs
//! into a `Publisher`, the downstream half reads from one, and between them
//! every signal is postcard-encoded `protocol::wire` data on two channels,
//! as it would be on a connection between nodes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use compaktor_streams::protocol::wire::{DownstreamSignal, Received, UpstreamSignal, WirePublisher, WireSubscriber};
use compaktor_streams::protocol::{Demand, Publisher, Subscriber, Subscription};
use compaktor_streams::{Sink, Source, StreamError};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);
const CAPACITY: u64 = 16;

type Wire = UnboundedSender<Vec<u8>>;

/// The upstream node's end: a subscriber to the upstream half that sends
/// what it receives down the wire, and applies demand that comes up it.
struct WireOut {
    state: Arc<Mutex<WirePublisher>>,
    upstream: Arc<Mutex<UpstreamSlot>>,
    down: Wire,
}

/// The upstream half's subscription. A stream publisher hands it over
/// from its own task, so demand may come up the wire before it exists:
/// that demand waits here and is made when the subscription arrives.
#[derive(Default)]
struct UpstreamSlot {
    subscription: Option<Box<dyn Subscription>>,
    early: u64,
    cancelled: bool,
}

impl UpstreamSlot {
    fn apply(&mut self, signal: UpstreamSignal) {
        match (self.subscription.as_mut(), signal) {
            (Some(s), UpstreamSignal::Request(n)) if n > 0 => s.request(n),
            (Some(s), _) => s.cancel(),
            (None, UpstreamSignal::Request(n)) if n > 0 => self.early += n,
            (None, _) => self.cancelled = true,
        }
    }
}

impl WireOut {
    fn send(&self, signal: Option<DownstreamSignal<u64>>) {
        if let Some(signal) = signal {
            let _ = self.down.send(postcard::to_stdvec(&signal).unwrap());
        }
    }
}

impl Subscriber<u64> for WireOut {
    fn on_subscribe(&mut self, mut subscription: Box<dyn Subscription>) {
        let mut upstream = self.upstream.lock().unwrap();
        if upstream.cancelled {
            subscription.cancel();
        } else if upstream.early > 0 {
            subscription.request(std::mem::take(&mut upstream.early));
        }
        upstream.subscription = Some(subscription);
    }
    fn on_next(&mut self, element: u64) {
        let signal = self.state.lock().unwrap().next(element);
        self.send(Some(
            signal.expect("the upstream half sends only what the wire asked for"),
        ));
    }
    fn on_error(&mut self, error: StreamError) {
        let signal = self.state.lock().unwrap().fail(&error);
        self.send(signal);
    }
    fn on_complete(&mut self) {
        let signal = self.state.lock().unwrap().complete();
        self.send(signal);
    }
}

/// Runs the upstream node's end: `publisher` is the upstream half.
fn serve(publisher: impl Publisher<u64>, down: Wire, mut up: UnboundedReceiver<Vec<u8>>) {
    let state = Arc::new(Mutex::new(WirePublisher::new()));
    let upstream = Arc::new(Mutex::new(UpstreamSlot::default()));
    publisher.subscribe(Box::new(WireOut {
        state: state.clone(),
        upstream: upstream.clone(),
        down: down.clone(),
    }));
    tokio::spawn(async move {
        while let Some(bytes) = up.recv().await {
            let signal: UpstreamSignal = postcard::from_bytes(&bytes).expect("an upstream signal");
            let answer = state.lock().unwrap().receive::<u64>(signal);
            if let Some(answer) = answer {
                let _ = down.send(postcard::to_stdvec(&answer).unwrap());
            }
            // Outside the state's lock: a request may deliver at once.
            upstream.lock().unwrap().apply(signal);
        }
    });
}

/// The downstream node's end: a publisher that reads the wire.
struct WireIn {
    wire: Mutex<Option<(Wire, UnboundedReceiver<Vec<u8>>)>>,
    /// The most elements ever waiting at this end.
    peak: Arc<Mutex<u64>>,
}

enum Local {
    Request(u64),
    Cancel,
}

struct LocalSubscription(UnboundedSender<Local>);

impl Subscription for LocalSubscription {
    fn request(&mut self, n: u64) {
        let _ = self.0.send(Local::Request(n));
    }
    fn cancel(&mut self) {
        let _ = self.0.send(Local::Cancel);
    }
}

impl Publisher<u64> for WireIn {
    fn subscribe(&self, mut subscriber: Box<dyn Subscriber<u64>>) {
        let (up, mut down) = self.wire.lock().unwrap().take().expect("one subscriber");
        let peak = self.peak.clone();
        let (local_tx, mut local) = unbounded_channel();
        subscriber.on_subscribe(Box::new(LocalSubscription(local_tx)));
        tokio::spawn(async move {
            let send = |signal: UpstreamSignal| {
                let _ = up.send(postcard::to_stdvec(&signal).unwrap());
            };
            let mut end = WireSubscriber::new(CAPACITY);
            send(end.start().expect("a first request"));
            let (mut demand, mut buffer, mut ended) = (Demand::new(), VecDeque::new(), None);
            loop {
                tokio::select! {
                    Some(signal) = local.recv() => match signal {
                        Local::Request(n) => {
                            if let Err(error) = demand.request(n) {
                                end.cancel().into_iter().for_each(send);
                                return subscriber.on_error(error);
                            }
                        }
                        Local::Cancel => {
                            end.cancel().into_iter().for_each(send);
                            return;
                        }
                    },
                    Some(bytes) = down.recv(), if ended.is_none() => {
                        let signal: DownstreamSignal<u64> = postcard::from_bytes(&bytes).expect("a downstream signal");
                        match end.receive(signal) {
                            Ok(Received::Element(n)) => buffer.push_back(n),
                            Ok(Received::End(result)) => ended = Some(result),
                            Ok(Received::AfterCancel) => {}
                            Err(violation) => {
                                end.cancel().into_iter().for_each(send);
                                return subscriber.on_error(violation);
                            }
                        }
                        let mut peak = peak.lock().unwrap();
                        *peak = (*peak).max(end.buffered());
                    },
                    else => return,
                }
                let mut delivered = 0;
                while !buffer.is_empty() && demand.try_take() {
                    subscriber.on_next(buffer.pop_front().unwrap());
                    delivered += 1;
                }
                end.consumed(delivered).into_iter().for_each(send);
                if buffer.is_empty() {
                    match ended.take() {
                        Some(Ok(())) => return subscriber.on_complete(),
                        Some(Err(error)) => return subscriber.on_error(error),
                        None => {}
                    }
                }
            }
        });
    }
}

fn wire_in(up: Wire, down: UnboundedReceiver<Vec<u8>>) -> (WireIn, Arc<Mutex<u64>>) {
    let peak = Arc::new(Mutex::new(0));
    let wire = WireIn {
        wire: Mutex::new(Some((up, down))),
        peak: peak.clone(),
    };
    (wire, peak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_crosses_a_wire_of_serialised_signals_in_order_and_bounded() {
    let (down_tx, down_rx) = unbounded_channel();
    let (up_tx, up_rx) = unbounded_channel();
    let upstream_half = Source::from_iter(0..20_000u64)
        .map(|n| n * 2)
        .run_with(Sink::publisher());
    serve(upstream_half, down_tx, up_rx);
    let (wire, peak) = wire_in(up_tx, down_rx);
    let downstream_half = Source::from_publisher(wire)
        .filter(|n| n % 4 == 0)
        .run_with(Sink::collect());
    let got = timeout(WAIT, downstream_half)
        .await
        .expect("the stream across the wire to complete")
        .unwrap();
    let expected: Vec<u64> = (0..20_000u64).map(|n| n * 2).filter(|n| n % 4 == 0).collect();
    assert_eq!(got, expected);
    let peak = *peak.lock().unwrap();
    assert!(
        (1..=CAPACITY).contains(&peak),
        "at most {CAPACITY} elements may wait at the far end, saw {peak}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_upstream_arrives_across_the_wire_after_the_elements_before_it() {
    let (down_tx, down_rx) = unbounded_channel();
    let (up_tx, up_rx) = unbounded_channel();
    let upstream_half = Source::from_iter(0..100u64)
        .concat(Source::failed(StreamError::aborted("sensor unplugged")))
        .run_with(Sink::publisher());
    serve(upstream_half, down_tx, up_rx);
    let (wire, _) = wire_in(up_tx, down_rx);
    let (seen_tx, mut seen) = unbounded_channel();
    let done = Source::from_publisher(wire).run_with(Sink::foreach(move |n| seen_tx.send(n).unwrap()));
    let result = timeout(WAIT, done).await.expect("the stream to end");
    assert!(
        matches!(&result, Err(StreamError::Remote(m)) if m.contains("sensor unplugged")),
        "{result:?}"
    );
    let mut got = Vec::new();
    while let Ok(n) = seen.try_recv() {
        got.push(n);
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

/// A subscriber that asks for nothing and reports how the stream ended.
struct Idle(UnboundedSender<Result<(), StreamError>>, Option<Box<dyn Subscription>>);

impl Subscriber<u64> for Idle {
    fn on_subscribe(&mut self, subscription: Box<dyn Subscription>) {
        self.1 = Some(subscription);
    }
    fn on_next(&mut self, element: u64) {
        panic!("element {element} delivered without a request");
    }
    fn on_error(&mut self, error: StreamError) {
        let _ = self.0.send(Err(error));
    }
    fn on_complete(&mut self) {
        let _ = self.0.send(Ok(()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_1_1_a_peer_sending_beyond_demand_fails_the_stream_and_is_cancelled() {
    let (down_tx, down_rx) = unbounded_channel();
    let (up_tx, mut up_rx) = unbounded_channel();
    let (wire, _) = wire_in(up_tx, down_rx);
    let (ended_tx, mut ended) = unbounded_channel();
    // Nothing is consumed, so the far end's demand stays at its buffer.
    wire.subscribe(Box::new(Idle(ended_tx, None)));
    let first = timeout(WAIT, up_rx.recv())
        .await
        .expect("the first request")
        .expect("the wire is open");
    let UpstreamSignal::Request(n) = postcard::from_bytes(&first).unwrap() else {
        panic!("the first signal should be a request");
    };
    assert_eq!(n, CAPACITY);
    // A peer that ignores demand: one element more than asked for.
    for element in 0..=n {
        down_tx
            .send(postcard::to_stdvec(&DownstreamSignal::Next(element)).unwrap())
            .unwrap();
    }
    let result = timeout(WAIT, ended.recv())
        .await
        .expect("the stream to fail")
        .expect("a terminal signal");
    assert!(
        matches!(result, Err(StreamError::ProtocolViolation { rule: "1.1", .. })),
        "{result:?}"
    );
    let cancel = up_rx.try_recv().expect("a cancel sent before the failure");
    assert_eq!(
        postcard::from_bytes::<UpstreamSignal>(&cancel).unwrap(),
        UpstreamSignal::Cancel
    );
    assert!(up_rx.try_recv().is_err(), "nothing after the cancel");
}
