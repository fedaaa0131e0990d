//! The Reactive Streams interfaces, for plugging your own sources and sinks.
//!
//! These are the four-method contract of [reactive-streams.org] in Rust
//! form. Implement [`Publisher`] for something that produces elements (a
//! device socket, a file, a feed) and turn it into a stage with
//! [`Source::from_publisher`](crate::Source::from_publisher); implement
//! [`Subscriber`] for something that consumes them and attach it with
//! [`Sink::from_subscriber`](crate::Sink::from_subscriber). A running
//! stream can also be exposed as a `Publisher` with
//! [`Sink::publisher`](crate::Sink::publisher).
//!
//! # The rules, as this crate keeps them
//!
//! - A subscriber signals demand with [`Subscription::request`]; a
//!   publisher never sends more [`on_next`](Subscriber::on_next) than was
//!   requested (rule 1.1) and may send fewer, then complete (1.2).
//! - `on_subscribe` comes first, exactly once (1.9); `on_complete` and
//!   `on_error` come at most once, and nothing follows them (1.7).
//! - `request(0)` is a spec error that the publisher signals as `on_error`
//!   with [`StreamError::ZeroRequest`] (3.9). *Negative* demand cannot be
//!   expressed at all: `n` is a `u64`.
//! - Demand adds up and saturates at `u64::MAX`, which means "unbounded"
//!   (3.17); [`Demand`] does this accounting and can be reused by your own
//!   publishers.
//! - [`Subscription::cancel`] stops the flow and releases the subscriber
//!   (3.13); `request` and `cancel` after `cancel` do nothing (3.6, 3.7).
//! - Signals to one subscriber are serial (1.3) and the calls a subscriber
//!   makes on its subscription are serial (2.7): both traits take
//!   `&mut self`, so the compiler enforces it. Elements cannot be null
//!   (2.13): Rust has no null.
//! - A subscriber may call `request` from inside `on_next`; this crate's
//!   publishers only record the demand there, so recursion stays bounded
//!   (3.3).
//! - Across a wire, the same protocol is data: [`wire`] has the signals as
//!   serde types and the accounting of each end as plain values, and the
//!   receiving end checks rules 1.1 and 1.7 rather than trust its peer.
//!   [`Source::from_publisher`](crate::Source::from_publisher) checks rule
//!   1.1 the same way: a user's publisher that sends more than was
//!   requested fails the stream with
//!   [`StreamError::ProtocolViolation`]
//!   and is cancelled; the excess is dropped, never queued.
//!
//! [reactive-streams.org]: https://www.reactive-streams.org/
//!
//! ```
//! use compaktor_streams::protocol::{Subscriber, Subscription};
//! use compaktor_streams::{Sink, Source, StreamError};
//!
//! /// Prints each element, asking for one at a time.
//! struct Printer {
//!     subscription: Option<Box<dyn Subscription>>,
//! }
//!
//! impl Subscriber<u32> for Printer {
//!     fn on_subscribe(&mut self, mut subscription: Box<dyn Subscription>) {
//!         subscription.request(1);
//!         self.subscription = Some(subscription);
//!     }
//!     fn on_next(&mut self, element: u32) {
//!         println!("got {element}");
//!         if let Some(s) = self.subscription.as_mut() {
//!             s.request(1);
//!         }
//!     }
//!     fn on_error(&mut self, error: StreamError) {
//!         eprintln!("failed: {error}");
//!     }
//!     fn on_complete(&mut self) {
//!         println!("done");
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), StreamError> {
//! let done = Source::from_iter(1..=3u32).run_with(Sink::from_subscriber(Printer { subscription: None }));
//! done.await?;
//! # Ok(())
//! # }
//! ```

mod demand;
pub mod wire;

pub use demand::Demand;

use crate::error::StreamError;

/// A producer of a potentially unbounded number of elements, delivered
/// according to the demand of its [`Subscriber`]s.
pub trait Publisher<T> {
    /// Attaches a subscriber. The publisher must call
    /// [`on_subscribe`](Subscriber::on_subscribe) on it before any other
    /// signal (rule 1.9); it may then reject the subscriber with
    /// [`on_error`](Subscriber::on_error), for example when it supports one
    /// subscriber only.
    fn subscribe(&self, subscriber: Box<dyn Subscriber<T>>);
}

/// A consumer of elements that receives them only after signalling demand.
///
/// The publisher calls these methods one at a time (rule 1.3). They should
/// return quickly: they run on the publisher's task.
pub trait Subscriber<T>: Send {
    /// The first signal: the handle to request elements and to cancel. Call
    /// [`request`](Subscription::request) on it to receive anything. A second
    /// `on_subscribe` must be answered by cancelling the new subscription
    /// (rule 2.5).
    fn on_subscribe(&mut self, subscription: Box<dyn Subscription>);

    /// The next element; never more of them than were requested.
    fn on_next(&mut self, element: T);

    /// The terminal failure signal; nothing follows it.
    fn on_error(&mut self, error: StreamError);

    /// The terminal success signal; nothing follows it.
    fn on_complete(&mut self);
}

/// One subscriber's link to one publisher.
pub trait Subscription: Send {
    /// Asks for `n` more elements. Demand accumulates and saturates at
    /// `u64::MAX` (unbounded). `n == 0` is a spec violation that the
    /// publisher answers with `on_error(StreamError::ZeroRequest)`.
    fn request(&mut self, n: u64);

    /// Asks the publisher to stop sending and to drop the subscriber. Idempotent.
    fn cancel(&mut self);
}
