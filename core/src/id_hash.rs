//! A hasher for integer ids the broker hands out itself (delivery tags, consumer keys): a
//! multiply spreads consecutive ids over the table. Not for keys a client chooses, which keep
//! the standard library's seeded hasher.

use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing of one `u64`.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only integer keys are expected; anything else still hashes, byte by byte.
        for &b in bytes {
            self.write_u64(u64::from(b) ^ self.0.rotate_left(8));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Builds [`IdHasher`]s.
pub type IdHashBuilder = BuildHasherDefault<IdHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn consecutive_ids_spread_over_the_high_bits() {
        let top = |n: u64| {
            let mut h = IdHasher::default();
            h.write_u64(n);
            h.finish() >> 57
        };
        let distinct: std::collections::HashSet<u64> = (0..128).map(top).collect();
        assert!(
            distinct.len() > 64,
            "{} distinct top-7-bit values",
            distinct.len()
        );
        let mut m: HashMap<u64, u64, IdHashBuilder> = HashMap::default();
        for i in 0..10_000 {
            m.insert(i, i * 2);
        }
        assert!((0..10_000).all(|i| m.get(&i) == Some(&(i * 2))));
    }
}
