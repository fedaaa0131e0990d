//! `buffer`: decouple upstream from a slower downstream, with a policy for overflow.

use std::collections::VecDeque;

use crate::error::StreamError;
use crate::stage::{Outlet, Stage};

/// What a [`buffer`](crate::Flow::buffer) does when it is full and
/// upstream offers another element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowStrategy {
    /// Stop pulling until downstream takes an element: nothing is lost.
    Backpressure,
    /// Drop the oldest buffered element to make room for the new one.
    DropHead,
    /// Drop the newest buffered element to make room for the new one.
    DropTail,
    /// Drop the arriving element.
    DropNew,
    /// Fail the stream with [`StreamError::BufferOverflow`].
    Fail,
}

pub(crate) struct Buffer<T> {
    queue: VecDeque<T>,
    capacity: usize,
    strategy: OverflowStrategy,
    upstream_done: bool,
}

impl<T> Buffer<T> {
    pub(crate) fn new(capacity: usize, strategy: OverflowStrategy) -> Self {
        let capacity = capacity.max(1);
        Buffer {
            queue: VecDeque::with_capacity(capacity),
            capacity,
            strategy,
            upstream_done: false,
        }
    }

    fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity
    }
}

impl<T: Send + 'static> Stage for Buffer<T> {
    type In = T;
    type Out = T;

    fn name(&self) -> &'static str {
        "buffer"
    }

    fn should_pull(&self, _downstream_waiting: bool) -> bool {
        // A buffer pulls ahead of demand; only backpressure stops it when full.
        !(self.strategy == OverflowStrategy::Backpressure && self.is_full())
    }

    fn on_push(&mut self, element: T, out: &mut Outlet<T>) {
        if self.is_full() {
            match self.strategy {
                OverflowStrategy::Backpressure => {} // not pulled when full
                OverflowStrategy::DropHead => {
                    self.queue.pop_front();
                }
                OverflowStrategy::DropTail => {
                    self.queue.pop_back();
                }
                OverflowStrategy::DropNew => return,
                OverflowStrategy::Fail => {
                    out.fail(StreamError::BufferOverflow {
                        capacity: self.capacity,
                    });
                    return;
                }
            }
        }
        self.queue.push_back(element);
    }

    fn on_upstream_finish(&mut self, _out: &mut Outlet<T>) {
        self.upstream_done = true;
    }

    fn on_poll(&mut self, _cx: &mut std::task::Context<'_>, out: &mut Outlet<T>) {
        if out.is_pulled() && out.is_empty() {
            if let Some(element) = self.queue.pop_front() {
                out.push(element);
            }
        }
        if self.upstream_done && self.queue.is_empty() {
            out.complete();
        }
    }

    fn buffered(&self) -> usize {
        self.queue.len()
    }
}
