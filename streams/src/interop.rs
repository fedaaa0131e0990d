//! Actors in streams: the `ask` stage, an actor as a backpressured source
//! ([`Source::actor_ref_with_backpressure`]) and as a sink that
//! acknowledges ([`Sink::actor_ref_with_backpressure`]), after Akka Typed's
//! `ActorFlow.ask`, `ActorSource.actorRefWithBackpressure` and
//! `ActorSink.actorRefWithBackpressure`.
//!
//! Each keeps the backpressure across the actor: at most `parallelism` asks
//! are outstanding, a producer actor sends its next element only after the
//! stream acknowledged the last, and the sink sends the next element only
//! after the actor acknowledged the last. Messages to and from actors are
//! delivered at most once, as every actor message is.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use compaktor_actor::{ActorRef, AskError, ReplyTo};
use tokio::sync::mpsc;

use crate::error::{SourceClosed, StreamError};
use crate::graph::Completion;
use crate::ops::TryMapAsync;
use crate::sink::{tell_end, Sink};
use crate::source::Source;
use crate::stage::{pumping, BoxUpstream, Pull, Stage, Upstream};
use crate::stats::StageCell;

/// The stage of `ask`.
pub(crate) fn ask<In, M, R>(
    actor: ActorRef<M>,
    parallelism: usize,
    timeout: Duration,
    make: impl Fn(In, ReplyTo<R>) -> M + Send + Sync + 'static,
) -> impl Stage<In = In, Out = R>
where
    In: Send + 'static,
    M: Send + 'static,
    R: Send + 'static,
{
    const NAME: &str = "ask";
    let make = Arc::new(make);
    TryMapAsync::new(NAME, parallelism, move |element: In| {
        let make = Arc::clone(&make);
        let actor = actor.clone();
        async move {
            actor
                .ask(move |reply| make(element, reply), timeout)
                .await
                .map_err(|cause| StreamError::Ask { stage: NAME, cause })
        }
    })
}

// ------------------------------------------------------------------ the source

enum Signal<T> {
    Element(T),
    Complete,
    Fail(StreamError),
}

/// The handle a producer uses to feed a
/// [`Source::actor_ref_with_backpressure`]: its materialised value. Cheap
/// to clone; give it to the producing actor in a message.
///
/// The producer sends one element with [`tell`](ActorSourceRef::tell),
/// then waits for the acknowledgement message before it sends the next.
pub struct ActorSourceRef<T> {
    signals: mpsc::UnboundedSender<Signal<T>>,
}

impl<T> Clone for ActorSourceRef<T> {
    fn clone(&self) -> Self {
        ActorSourceRef {
            signals: self.signals.clone(),
        }
    }
}

impl<T> fmt::Debug for ActorSourceRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSourceRef")
            .field("closed", &self.signals.is_closed())
            .finish()
    }
}

impl<T: Send + 'static> ActorSourceRef<T> {
    /// Offers the next element; never waits. Send it only after the
    /// previous one was acknowledged, or the stream fails with
    /// [`StreamError::UnacknowledgedElement`].
    ///
    /// # Errors
    /// [`SourceClosed`], with the element, when the stream has stopped
    /// (completed, failed or cancelled downstream).
    pub fn tell(&self, element: T) -> Result<(), SourceClosed<T>> {
        self.signals
            .send(Signal::Element(element))
            .map_err(|refused| match refused.0 {
                Signal::Element(element) => SourceClosed(element),
                _ => unreachable!("an element was sent"),
            })
    }

    /// Completes the stream after the elements already sent.
    pub fn complete(&self) {
        let _ = self.signals.send(Signal::Complete);
    }

    /// Fails the stream with `error` after the elements already sent.
    pub fn fail(&self, error: StreamError) {
        let _ = self.signals.send(Signal::Fail(error));
    }

    /// Whether the stream has stopped: further elements are refused.
    pub fn is_closed(&self) -> bool {
        self.signals.is_closed()
    }
}

impl<T: Send + 'static> Source<T, ActorSourceRef<T>> {
    /// A source fed by an actor, one acknowledged element at a time
    /// (Akka Typed's `ActorSource.actorRefWithBackpressure`).
    ///
    /// Materialises an [`ActorSourceRef`]; the producer
    /// [`tell`](ActorSourceRef::tell)s it an element and waits: once
    /// downstream has taken the element, the stream tells `ack_to` the
    /// message `ack` makes, and the producer may send the next. So the producer goes
    /// at the pace of downstream demand, with one element in hand.
    /// [`complete`](ActorSourceRef::complete) and
    /// [`fail`](ActorSourceRef::fail) end the stream after the elements
    /// sent before them; dropping every handle completes it too. An element
    /// sent before the previous one was acknowledged fails the stream with
    /// [`StreamError::UnacknowledgedElement`]. Its statistics are under
    /// the name `actor_ref_source`.
    ///
    /// ```
    /// use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, SystemConfig};
    /// use compaktor_streams::{ActorSourceRef, Keep, Sink, Source};
    ///
    /// enum Msg {
    ///     Start(ActorSourceRef<u32>),
    ///     Ack,
    /// }
    ///
    /// /// Sends 1, 2, 3, each after the previous was acknowledged.
    /// #[derive(Default)]
    /// struct Producer {
    ///     out: Option<ActorSourceRef<u32>>,
    ///     next: u32,
    /// }
    ///
    /// impl Producer {
    ///     fn send_next(&mut self) {
    ///         let Some(out) = &self.out else { return };
    ///         self.next += 1;
    ///         if self.next > 3 {
    ///             out.complete();
    ///         } else {
    ///             let _ = out.tell(self.next);
    ///         }
    ///     }
    /// }
    ///
    /// impl Actor for Producer {
    ///     type Msg = Msg;
    ///     async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
    ///         if let Msg::Start(out) = msg {
    ///             self.out = Some(out);
    ///         }
    ///         self.send_next(); // on Start and on every Ack
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = ActorSystem::new(SystemConfig::new("source"))?;
    /// let producer = system.spawn("producer", Props::<Producer>::default())?;
    /// let (handle, all) = Source::actor_ref_with_backpressure(producer.clone(), || Msg::Ack)
    ///     .to_mat(Sink::collect(), Keep::both)
    ///     .run();
    /// producer.tell(Msg::Start(handle));
    /// assert_eq!(all.await?, vec![1, 2, 3]);
    /// system.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn actor_ref_with_backpressure<A, F>(ack_to: ActorRef<A>, ack: F) -> Self
    where
        A: Send + 'static,
        F: FnMut() -> A + Send + 'static,
    {
        Source::from_build(Box::new(move |m| {
            let (signals, receiver) = mpsc::unbounded_channel();
            let cell = m.source_cell("actor_ref_source");
            let source = AckingSource {
                receiver,
                ack_to,
                ack,
                end: None,
                cell,
            };
            (Box::new(source) as BoxUpstream<T>, ActorSourceRef { signals })
        }))
    }
}

struct AckingSource<T, A, F> {
    receiver: mpsc::UnboundedReceiver<Signal<T>>,
    ack_to: ActorRef<A>,
    ack: F,
    /// A terminal signal that came right behind the last element.
    end: Option<Result<(), StreamError>>,
    cell: Arc<StageCell>,
}

impl<T: Send, A: Send + 'static, F: FnMut() -> A + Send> Upstream<T> for AckingSource<T, A, F> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Pull<T> {
        self.cell.backpressure_off();
        if let Some(end) = self.end.take() {
            self.receiver.close();
            return Poll::Ready(self.cell.ended(end));
        }
        let signal = match self.receiver.poll_recv(cx) {
            Poll::Ready(signal) => signal,
            Poll::Pending => {
                self.cell.set_demand(1);
                return Poll::Pending;
            }
        };
        self.cell.set_demand(0);
        match signal {
            Some(Signal::Element(element)) => {
                // Whatever is queued behind it was sent before this ack.
                match self.receiver.try_recv() {
                    Ok(Signal::Element(_)) => {
                        self.receiver.close();
                        return Poll::Ready(self.cell.ended(Err(StreamError::UnacknowledgedElement)));
                    }
                    Ok(Signal::Complete) => self.end = Some(Ok(())),
                    Ok(Signal::Fail(error)) => self.end = Some(Err(error)),
                    Err(_) => {}
                }
                self.cell.add_out();
                if self.end.is_none() {
                    self.ack_to.tell((self.ack)());
                }
                Poll::Ready(Some(Ok(element)))
            }
            Some(Signal::Complete) | None => {
                self.receiver.close();
                Poll::Ready(self.cell.ended(Ok(())))
            }
            Some(Signal::Fail(error)) => {
                self.receiver.close();
                Poll::Ready(self.cell.ended(Err(error)))
            }
        }
    }

    fn poll_pump(&mut self, _cx: &mut Context<'_>) {
        if !self.receiver.is_empty() {
            self.cell.backpressure_on();
        }
    }
}

impl<T, A, F> Drop for AckingSource<T, A, F> {
    fn drop(&mut self) {
        self.cell.cancelled();
    }
}

// -------------------------------------------------------------------- the sink

impl<T: Send + 'static> Sink<T, Completion<()>> {
    /// Delivers each element to an actor and waits for its
    /// acknowledgement before the next (Akka Typed's
    /// `ActorSink.actorRefWithBackpressure`): the actor sets the pace.
    ///
    /// `make` wraps the element and a [`ReplyTo<()>`](ReplyTo) into the
    /// actor's message; the actor acknowledges by sending `()` on it, when
    /// it is ready for the next element. When the stream ends the actor is
    /// told `on_complete`, or what `on_failure` makes of the error.
    ///
    /// # Errors
    /// The completion fails with [`StreamError::ActorStopped`] when the
    /// actor stops, and with [`StreamError::Ask`] when an acknowledgement
    /// does not come within `ack_timeout` (or the actor drops the reply
    /// handle, or its mailbox is full); upstream is then cancelled and the
    /// actor told `on_failure`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use compaktor_actor::{Actor, ActorError, ActorSystem, Context, Props, ReplyTo, SystemConfig};
    /// use compaktor_streams::{Sink, Source};
    ///
    /// enum Msg {
    ///     Element(u32, ReplyTo<()>),
    ///     Done,
    ///     Failed,
    /// }
    ///
    /// #[derive(Default)]
    /// struct Writer {
    ///     total: u32,
    /// }
    ///
    /// impl Actor for Writer {
    ///     type Msg = Msg;
    ///     async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
    ///         if let Msg::Element(n, ack) = msg {
    ///             self.total += n; // write it somewhere, then ask for more
    ///             let _ = ack.send(());
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = ActorSystem::new(SystemConfig::new("sink"))?;
    /// let writer = system.spawn("writer", Props::<Writer>::default())?;
    /// let sink = Sink::actor_ref_with_backpressure(writer, Duration::from_secs(5), Msg::Element, Msg::Done, |_| Msg::Failed);
    /// Source::from_iter(1..=3).run_with(sink).await?;
    /// system.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn actor_ref_with_backpressure<M: Send + 'static>(
        actor: ActorRef<M>,
        ack_timeout: Duration,
        mut make: impl FnMut(T, ReplyTo<()>) -> M + Send + 'static,
        on_complete: M,
        on_failure: impl FnOnce(StreamError) -> M + Send + 'static,
    ) -> Self {
        const NAME: &str = "actor_ref_with_backpressure";
        Sink::new(Box::new(move |mut upstream: BoxUpstream<T>, m| {
            let cell = m.cell(NAME);
            let (tx, completion) = Completion::new();
            m.spawn(async move {
                let result = loop {
                    cell.set_demand(1);
                    match poll_fn(|cx| upstream.poll_next(cx)).await {
                        Some(Ok(element)) => {
                            cell.set_demand(0);
                            let acked =
                                pumping(&mut upstream, actor.ask(|reply| make(element, reply), ack_timeout)).await;
                            match acked {
                                Ok(()) => cell.add_out(),
                                Err(AskError::Terminated) => break Err(StreamError::ActorStopped),
                                Err(cause) => break Err(StreamError::Ask { stage: NAME, cause }),
                            }
                        }
                        Some(Err(error)) => break Err(error),
                        None => break Ok(()),
                    }
                };
                drop(upstream);
                tell_end(&actor, &cell, &result, on_complete, on_failure);
                tx.send(result);
            });
            completion
        }))
    }
}
