//! Dynamic hubs: junctions whose producers ([`MergeHub`]) or consumers
//! ([`BroadcastHub`]) attach and leave while the stream runs.
//!
//! Both are backpressured, with a bounded buffer per attached stream, and
//! both live as long as someone can still attach: a hub's handle (the
//! materialised value, cheap to clone) and every blueprint made from it
//! keep it open, as senders keep a channel open. When the last is dropped,
//! a merge hub completes once its producers have finished, and a broadcast
//! hub stops (cancelling its producer) once its consumers have left.

mod broadcast;
mod merge;

pub use broadcast::BroadcastHub;
pub use merge::MergeHub;
