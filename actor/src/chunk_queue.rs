//! A FIFO of fixed-size chunks.
//!
//! Growing never moves queued elements (a `VecDeque` doubling a large
//! buffer would copy it while senders wait on the mailbox lock), memory is
//! taken in small pieces the allocator can reuse, and emptied chunks are
//! recycled through a spare list. Only a lone chunk is ever left empty,
//! by [`ChunkQueue::pop_only`].

use std::collections::VecDeque;

/// Elements per chunk.
const CHUNK: usize = 64;
/// Emptied chunks kept for reuse, per side.
const MAX_SPARE: usize = 2;

pub(crate) struct ChunkQueue<T> {
    chunks: VecDeque<VecDeque<T>>,
    len: usize,
}

/// Emptied chunks, ready to be filled again.
pub(crate) type Spare<T> = Vec<VecDeque<T>>;

impl<T> ChunkQueue<T> {
    pub(crate) const fn new() -> Self {
        ChunkQueue {
            chunks: VecDeque::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push_back(&mut self, value: T, spare: &mut Spare<T>) {
        match self.chunks.back_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push_back(value),
            _ => {
                // A first chunk grows as needed: most mailboxes hold a
                // message or two. A further one is for a backlog: whole at
                // once, not grown by four reallocations under the lock.
                let mut chunk = spare.pop().unwrap_or_else(|| {
                    if self.chunks.is_empty() {
                        VecDeque::new()
                    } else {
                        VecDeque::with_capacity(CHUNK)
                    }
                });
                chunk.push_back(value);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    #[inline]
    pub(crate) fn pop_front(&mut self, spare: &mut Spare<T>) -> Option<T> {
        let front = self.chunks.front_mut()?;
        let value = front.pop_front();
        if front.is_empty() {
            let chunk = self.chunks.pop_front().expect("front exists");
            if spare.len() < MAX_SPARE && chunk.capacity() >= CHUNK {
                spare.push(chunk);
            }
        }
        self.len -= 1;
        value
    }

    /// Takes the only element, leaving its emptied chunk in place for the
    /// next push: request–reply traffic, one message at a time, then
    /// allocates nothing per message. (`pop_front` frees a chunk too small
    /// to recycle, so each lone message used to cost a malloc and a free.)
    #[inline]
    pub(crate) fn pop_only(&mut self) -> Option<T> {
        debug_assert!(self.len <= 1 && self.chunks.len() <= 1);
        let value = self.chunks.front_mut()?.pop_front()?;
        self.len = 0;
        Some(value)
    }

    /// Removes every element, front to back.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> {
        self.len = 0;
        std::mem::take(&mut self.chunks).into_iter().flatten()
    }
}

/// Moves spare chunks from `from` to `to`, keeping `to` within its bound.
pub(crate) fn share_spare<T>(from: &mut Spare<T>, to: &mut Spare<T>) {
    while to.len() < MAX_SPARE {
        match from.pop() {
            Some(chunk) => to.push(chunk),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_across_chunks_with_recycling() {
        let mut queue = ChunkQueue::new();
        let mut spare = Vec::new();
        for round in 0..3 {
            for i in 0..1_000 {
                queue.push_back(round * 1_000 + i, &mut spare);
            }
            assert_eq!(queue.len(), 1_000);
            for i in 0..1_000 {
                assert_eq!(queue.pop_front(&mut spare), Some(round * 1_000 + i));
            }
            assert!(queue.is_empty());
            assert_eq!(queue.pop_front(&mut spare), None);
            assert!(spare.len() <= MAX_SPARE);
        }
    }

    #[test]
    fn one_at_a_time_reuses_the_lone_chunk() {
        let mut queue = ChunkQueue::new();
        let mut spare = Vec::new();
        for i in 0..3 * CHUNK {
            queue.push_back(i, &mut spare);
            assert_eq!(queue.pop_only(), Some(i));
            assert_eq!(queue.pop_only(), None);
            assert!(queue.is_empty());
        }
        assert_eq!(queue.chunks.len(), 1, "the emptied chunk stays for the next push");
        queue.push_back(1, &mut spare);
        queue.push_back(2, &mut spare);
        assert_eq!(queue.chunks.len(), 1, "pushes fill the kept chunk");
        assert_eq!(queue.pop_front(&mut spare), Some(1));
        assert_eq!(queue.pop_front(&mut spare), Some(2));
        assert_eq!(queue.pop_front(&mut spare), None);
    }

    #[test]
    fn drain_yields_everything_in_order() {
        let mut queue = ChunkQueue::new();
        let mut spare = Vec::new();
        (0..200).for_each(|i| queue.push_back(i, &mut spare));
        assert!(queue.drain().eq(0..200));
        assert!(queue.is_empty());
    }
}
