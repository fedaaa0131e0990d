//! [`MergeHub`]: producers attach to one running consumer.

use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::boundary::Sender;
use crate::error::StreamError;
use crate::graph::Completion;
use crate::handoff::{self, Receiver, ReceiverStats};
use crate::sink::Sink;
use crate::source::Source;
use crate::stage::{BoxUpstream, Pull, Upstream};
use crate::stats::StageCell;

/// The handle of a running merge hub: every stream run into one of its
/// [`sink`](MergeHub::sink)s becomes a producer of the hub's one consumer.
///
/// [`MergeHub::source`] is the consumer's side; its materialised value is
/// this handle. Each producer hands elements over through a buffer of its
/// own (`per_producer_buffer` elements), so a slow consumer backpressures
/// every producer, and the consumer takes from the producers in turn, so
/// none is starved. A producer that fails is detached (its sink's
/// completion has the error); the others go on. The consumer completes
/// when no handle or sink blueprint is left and every producer has
/// finished; when it is cancelled, so are the producers.
///
/// ```
/// use compaktor_streams::{Keep, MergeHub, Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let (hub, total) = MergeHub::source(16)
///     .to_mat(Sink::fold(0u64, |a, n| a + n), Keep::both)
///     .run();
/// // Producers attach while the consumer runs.
/// let one = Source::from_iter(1..=10u64).run_with(hub.sink());
/// let two = Source::from_iter(11..=20u64).run_with(hub.sink());
/// one.await?;
/// two.await?;
/// drop(hub); // no more producers: the consumer completes
/// assert_eq!(total.await?, 210);
/// # Ok(())
/// # }
/// ```
pub struct MergeHub<T> {
    opener: Arc<Opener<T>>,
}

impl<T> Clone for MergeHub<T> {
    fn clone(&self) -> Self {
        MergeHub {
            opener: Arc::clone(&self.opener),
        }
    }
}

impl<T> fmt::Debug for MergeHub<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergeHub").finish_non_exhaustive()
    }
}

/// Keeps the hub open while a handle or a sink blueprint exists.
struct Opener<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Drop for Opener<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.open = false;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Newcomers are waiting: lets the consumer skip the lock otherwise.
    fresh: AtomicBool,
    capacity: usize,
}

struct State<T> {
    newcomers: Vec<Receiver<T>>,
    open: bool,
    consumer_gone: bool,
    waker: Option<Waker>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands a producer's receiving end to the consumer; gives it back if
    /// the consumer has gone.
    fn attach(&self, receiver: Receiver<T>) -> Result<(), Receiver<T>> {
        let waker = {
            let mut state = self.lock();
            if state.consumer_gone {
                return Err(receiver);
            }
            state.newcomers.push(receiver);
            self.fresh.store(true, Ordering::Release);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl<T: Send + 'static> MergeHub<T> {
    /// The consumer's side: a source of what every attached producer sends,
    /// materialising the hub's handle. Each producer may run up to
    /// `per_producer_buffer` elements (at least 1) ahead of the consumer.
    pub fn source(per_producer_buffer: usize) -> Source<T, MergeHub<T>> {
        Source::from_build(Box::new(move |m| {
            let cell = m.source_cell("merge_hub");
            let shared = Arc::new(Shared {
                state: Mutex::new(State {
                    newcomers: Vec::new(),
                    open: true,
                    consumer_gone: false,
                    waker: None,
                }),
                fresh: AtomicBool::new(false),
                capacity: per_producer_buffer.max(1),
            });
            let consumer = Consumer {
                inputs: Vec::new(),
                next: 0,
                shared: Arc::clone(&shared),
                cell,
                done: false,
            };
            let hub = MergeHub {
                opener: Arc::new(Opener { shared }),
            };
            (Box::new(consumer) as BoxUpstream<T>, hub)
        }))
    }

    /// A sink that, each time a stream runs into it, attaches that stream
    /// as a producer. Its completion is `Ok` once the stream completed and
    /// all its elements were handed to the hub, the stream's error if it
    /// failed, and [`StreamError::HubClosed`] if the consumer stopped first.
    pub fn sink(&self) -> Sink<T, Completion<()>> {
        let opener = Arc::clone(&self.opener);
        Sink::new(Box::new(move |upstream, m| {
            let cell = m.cell("merge_hub_sink");
            let (tx, completion) = Completion::new();
            let shared = Arc::clone(&opener.shared);
            let (handoff, receiver) = handoff::channel(shared.capacity, ReceiverStats::Silent);
            let attached = shared.attach(receiver);
            // Attached before the blueprint lets go, so the hub cannot complete in between.
            drop(opener);
            if let Err(receiver) = attached {
                drop((receiver, upstream));
                cell.cancelled();
                tx.send(Err(StreamError::HubClosed));
                return completion;
            }
            m.spawn(async move {
                let mut sender = Sender::new(handoff, upstream, shared.capacity, Some(Arc::clone(&cell)))
                    .with_backpressure(Arc::clone(&cell));
                let outcome = poll_fn(|cx| sender.poll_run(cx)).await;
                drop(sender);
                let result = match outcome {
                    Some(Ok(())) => {
                        cell.completed();
                        Ok(())
                    }
                    Some(Err(error)) => {
                        cell.failed();
                        Err(error)
                    }
                    None => {
                        cell.cancelled();
                        Err(StreamError::HubClosed)
                    }
                };
                tx.send(result);
            });
            completion
        }))
    }
}

/// The consumer: a merge over the producers attached so far.
struct Consumer<T> {
    inputs: Vec<Option<Receiver<T>>>,
    /// Where the next round of asking starts, for fairness.
    next: usize,
    shared: Arc<Shared<T>>,
    cell: Arc<StageCell>,
    done: bool,
}

impl<T> Consumer<T> {
    /// Moves new producers in; with `waker`, registers it for the next one.
    /// Returns whether the hub is open, and whether producers arrived.
    fn take_newcomers(&mut self, waker: Option<&Waker>) -> (bool, bool) {
        let mut state = self.shared.lock();
        self.shared.fresh.store(false, Ordering::Relaxed);
        let arrived = !state.newcomers.is_empty();
        self.inputs.extend(state.newcomers.drain(..).map(Some));
        if let Some(waker) = waker {
            state.waker = Some(waker.clone());
        }
        (state.open, arrived)
    }
}

impl<T: Send> Upstream<T> for Consumer<T> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        self.cell.backpressure_off();
        if self.done {
            return Poll::Ready(None);
        }
        if self.shared.fresh.load(Ordering::Acquire) {
            let _ = self.take_newcomers(None);
        }
        loop {
            let n = self.inputs.len();
            for k in 0..n {
                let i = (self.next + k) % n;
                let Some(input) = self.inputs[i].as_mut() else { continue };
                match input.poll_next(cx) {
                    Poll::Ready(Some(Ok(element))) => {
                        self.next = i + 1;
                        self.cell.add_out();
                        self.cell.set_demand(0);
                        return Poll::Ready(Some(Ok(element)));
                    }
                    // A producer finished or failed (its own sink reports how): detach it.
                    Poll::Ready(_) => self.inputs[i] = None,
                    Poll::Pending => {}
                }
            }
            self.inputs.retain(Option::is_some);
            let (open, arrived) = self.take_newcomers(Some(cx.waker()));
            if arrived {
                continue;
            }
            if !open && self.inputs.is_empty() {
                self.done = true;
                self.cell.completed();
                return Poll::Ready(None);
            }
            self.cell.set_demand(1);
            return Poll::Pending;
        }
    }

    fn poll_pump(&mut self, _cx: &mut Context<'_>) {
        if self.inputs.iter().flatten().any(Receiver::is_ready) {
            self.cell.backpressure_on();
        }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        let newcomers = {
            let mut state = self.shared.lock();
            state.consumer_gone = true;
            std::mem::take(&mut state.newcomers)
        };
        // Dropping the receiving ends cancels their producers.
        drop(newcomers);
        if !self.done {
            self.cell.cancelled();
        }
    }
}
