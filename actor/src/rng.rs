//! A small, fast, non-cryptographic random source for routing and jitter.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    // RandomState is seeded from the OS once per thread; that is all we need.
    RandomState::new().hash_one(std::thread::current().id()) | 1
}

/// SplitMix64's finaliser: a bijection on `u64` that scrambles well.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniformly distributed `u64` (xorshift64*).
pub(crate) fn next_u64() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Uniform in `[0, 1)`.
pub(crate) fn next_f64() -> f64 {
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Uniform in `0..n`; `n` must be positive.
pub(crate) fn below(n: usize) -> usize {
    ((next_u64() as u128 * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut seen = [false; 5];
        for _ in 0..1_000 {
            let i = below(5);
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert!((0..1_000).map(|_| next_f64()).all(|f| (0.0..1.0).contains(&f)));
    }
}
