//! Giving back the spare capacity of a collection that emptied out. A queue that held millions
//! of messages and drained keeps its ready list's buffer (48 bytes a slot) until told to let it
//! go; RSS then stays high after the backlog is gone, and an RSS-driven memory alarm would never
//! clear. Shrinking to twice the length once the length falls to a quarter of the capacity keeps
//! the cost amortised O(1) per removal.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Below this capacity nothing is given back: small buffers are cheaper kept than reallocated.
const KEEP: usize = 4096;

/// A collection that can give back capacity it no longer needs.
pub(crate) trait GiveBack {
    /// Shrinks to twice the length when the length is a quarter of the capacity or less.
    fn give_back(&mut self);
}

fn sparse(len: usize, capacity: usize) -> bool {
    capacity > KEEP && len <= capacity / 4
}

impl<T> GiveBack for VecDeque<T> {
    #[inline]
    fn give_back(&mut self) {
        if sparse(self.len(), self.capacity()) {
            self.shrink_to((self.len() * 2).max(KEEP));
        }
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> GiveBack for HashMap<K, V, S> {
    #[inline]
    fn give_back(&mut self) {
        if sparse(self.len(), self.capacity()) {
            self.shrink_to((self.len() * 2).max(KEEP));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_deque_gives_its_buffer_back_and_a_small_one_keeps_it() {
        let mut d: VecDeque<u64> = (0..1_000_000).collect();
        assert!(d.capacity() >= 1_000_000);
        while d.len() > 10 {
            d.pop_front();
            d.give_back();
        }
        assert!(d.capacity() <= 2 * KEEP, "capacity {}", d.capacity());
        let mut small: VecDeque<u64> = (0..1000).collect();
        let cap = small.capacity();
        small.clear();
        small.give_back();
        assert_eq!(small.capacity(), cap);
    }

    #[test]
    fn shrinking_is_amortised_and_keeps_the_contents() {
        let mut d: VecDeque<u64> = (0..100_000).collect();
        let mut shrinks = 0;
        let mut last = d.capacity();
        let mut expected = 0;
        while let Some(x) = d.pop_front() {
            assert_eq!(x, expected);
            expected += 1;
            d.give_back();
            if d.capacity() != last {
                shrinks += 1;
                last = d.capacity();
            }
        }
        // Each shrink at least halves the capacity.
        assert!(shrinks <= 6, "{shrinks} reallocations");
    }

    #[test]
    fn a_drained_map_gives_its_table_back() {
        let mut m: HashMap<u64, u64> = (0..100_000).map(|i| (i, i)).collect();
        for i in 0..99_990 {
            m.remove(&i);
            m.give_back();
        }
        assert!(m.capacity() <= 4 * KEEP, "capacity {}", m.capacity());
        assert_eq!(m.len(), 10);
        assert_eq!(m.get(&99_995), Some(&99_995));
    }
}
