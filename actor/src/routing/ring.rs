//! Consistent hashing: a ring of virtual nodes, and a hash that is the same
//! on every node and every run.

use std::hash::{Hash, Hasher};

/// FNV-1a over the bytes `Hash` feeds it, then SplitMix64's finaliser.
///
/// Unlike `std`'s `DefaultHasher` it has no random keys and does not change
/// between Rust releases, so every node of a cluster maps a key to the same
/// place. Integers hash in native byte order, so nodes must share endianness.
#[derive(Debug, Clone)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        crate::rng::splitmix64(self.0)
    }
}

/// Hashes `key` with [`StableHasher`].
///
/// ```
/// use compaktor_actor::stable_hash;
/// assert_eq!(stable_hash("order-17"), stable_hash("order-17"));
/// assert_ne!(stable_hash("order-17"), stable_hash("order-18"));
/// ```
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = StableHasher::default();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Each node owns the arcs that end at its virtual points. Adding a node
/// takes keys only from its new arcs; removing one hands only its keys on.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashRing {
    /// (point, node index), sorted by point.
    points: Vec<(u64, usize)>,
}

impl HashRing {
    /// A ring over nodes named by stable identities, `vnodes` points each.
    pub(crate) fn new<'a>(identities: impl IntoIterator<Item = &'a str>, vnodes: usize) -> Self {
        let mut points = Vec::new();
        for (index, identity) in identities.into_iter().enumerate() {
            for v in 0..vnodes.max(1) {
                points.push((stable_hash(&(identity, v as u32)), index));
            }
        }
        points.sort_unstable();
        HashRing { points }
    }

    /// The node owning `key`: the first point at or after it, wrapping round.
    pub(crate) fn node_for(&self, key: u64) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let i = self.points.partition_point(|(point, _)| *point < key);
        Some(self.points[i % self.points.len()].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(ring: &HashRing, names: &[&str]) -> Vec<String> {
        (0..10_000u64)
            .map(|k| names[ring.node_for(stable_hash(&k)).unwrap()].to_owned())
            .collect()
    }

    #[test]
    fn adding_a_node_moves_only_keys_to_it() {
        let before_names = ["a", "b", "c", "d"];
        let after_names = ["a", "b", "c", "d", "e"];
        let before = owners(&HashRing::new(before_names, 100), &before_names);
        let after = owners(&HashRing::new(after_names, 100), &after_names);
        let moved: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
        assert!(moved.iter().all(|(_, a)| *a == "e"), "a key moved between old nodes");
        // The new node takes roughly its fair share (1/5), not all or nothing.
        assert!((1_000..3_000).contains(&moved.len()), "moved {}", moved.len());
    }

    #[test]
    fn removing_a_node_moves_only_its_keys() {
        let before_names = ["a", "b", "c", "d"];
        let after_names = ["a", "b", "d"];
        let before = owners(&HashRing::new(before_names, 100), &before_names);
        let after = owners(&HashRing::new(after_names, 100), &after_names);
        for (b, a) in before.iter().zip(&after) {
            if b != "c" {
                assert_eq!(b, a, "a key not owned by the removed node moved");
            }
        }
    }

    #[test]
    fn empty_ring_has_no_owner() {
        assert_eq!(HashRing::new([], 10).node_for(5), None);
    }
}
