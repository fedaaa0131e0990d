//! [`BroadcastHub`]: consumers attach to one running producer.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;

use crate::fan_out::{Attachments, Driver, Router, Rule};
use crate::sink::Sink;
use crate::source::Source;
use crate::stage::BoxUpstream;

/// The handle of a running broadcast hub: every stream run from one of its
/// [`source`](BroadcastHub::source)s receives a copy of what the hub's one
/// producer sends from then on.
///
/// [`BroadcastHub::sink`] is the producer's side; its materialised value is
/// this handle. Each consumer has a buffer of its own
/// (`buffer_per_consumer` elements), and the producer goes at the pace of
/// the slowest consumer attached; with none attached it waits, so nothing
/// is dropped. A consumer that cancels is detached. When the producer
/// completes or fails, every consumer does too, after the elements queued
/// for it, and a consumer that attaches later ends at once the same way.
/// When no handle, no source blueprint and no consumer is left, the hub
/// cancels its producer.
///
/// ```
/// use compaktor_streams::{BroadcastHub, Keep, Sink, Source};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compaktor_streams::StreamError> {
/// let (feed, hub) = Source::<u32>::channel(4)
///     .to_mat(BroadcastHub::sink(8), Keep::both)
///     .run();
/// let first = hub.source().run_with(Sink::collect());
/// let second = hub.source().map(|n| n * 10).run_with(Sink::collect());
/// for n in 1..=3 {
///     feed.send(n).await.unwrap();
/// }
/// drop(feed); // the producer completes, and so do the consumers
/// assert_eq!(first.await?, vec![1, 2, 3]);
/// assert_eq!(second.await?, vec![10, 20, 30]);
/// # Ok(())
/// # }
/// ```
pub struct BroadcastHub<T> {
    opener: Arc<Opener<T>>,
}

impl<T> Clone for BroadcastHub<T> {
    fn clone(&self) -> Self {
        BroadcastHub {
            opener: Arc::clone(&self.opener),
        }
    }
}

impl<T> fmt::Debug for BroadcastHub<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastHub").finish_non_exhaustive()
    }
}

/// Keeps the hub open while a handle or a source blueprint exists.
struct Opener<T> {
    attachments: Arc<Attachments<T>>,
}

impl<T> Drop for Opener<T> {
    fn drop(&mut self) {
        self.attachments.close();
    }
}

impl<T: Clone + Send + 'static> BroadcastHub<T> {
    /// The producer's side: a sink that broadcasts to every consumer
    /// attached at the time, materialising the hub's handle. Each consumer
    /// may lag up to `buffer_per_consumer` elements (at least 1) behind the
    /// fastest.
    pub fn sink(buffer_per_consumer: usize) -> Sink<T, BroadcastHub<T>> {
        Sink::new(Box::new(move |upstream, m| {
            let (_, cell) = m.junction_cell("broadcast_hub", 0);
            let attachments = Arc::new(Attachments::new(buffer_per_consumer));
            let router = Router::new(Rule::Broadcast { clone: T::clone }, 0);
            let mut driver = Driver::new(
                upstream,
                router,
                Vec::new(),
                buffer_per_consumer,
                cell,
                Some(Arc::clone(&attachments)),
            );
            m.spawn(async move { poll_fn(|cx| driver.poll_run(cx)).await });
            BroadcastHub {
                opener: Arc::new(Opener { attachments }),
            }
        }))
    }

    /// A source that, each time it runs, attaches a new consumer to the hub.
    /// It receives what the producer sends after it attached.
    pub fn source(&self) -> Source<T> {
        let opener = Arc::clone(&self.opener);
        Source::from_build(Box::new(move |m| {
            let cell = m.source_cell("broadcast_hub_source");
            let receiver = opener.attachments.attach(cell);
            drop(opener);
            (Box::new(receiver) as BoxUpstream<T>, ())
        }))
    }
}
