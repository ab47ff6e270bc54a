//! A hash map bounded by an estimate of the bytes its entries hold, for the caches: past the budget an
//! eighth of it (arbitrary entries, in table order) goes, so eviction stays cheap per insert.
//!
//! The table is sized once for the entry count a full map holds. Evicting leaves tombstones in a
//! hashbrown table; when they have used up its spare slots it rehashes, and it doubles instead when
//! more than half its capacity is in use. A full cache sits above that half, so each map doubled once,
//! minutes into a steady load, at whatever moment its tombstones ran out: the RSS of a server under a
//! constant load crept up through the first ten minutes (the soak of `sallyport-bench`). Here the map
//! is rebuilt with room for 2.25 times the count it held when it first overflowed (and again only at a
//! count an eighth higher), so every later rehash happens in place and memory stops moving once the
//! cache is full.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

pub struct BoundedMap<K, V, S = RandomState> {
    map: HashMap<K, (V, usize), S>,
    bytes: usize,
    budget: usize,
    /// The entries the map held when the table was last sized: it has room for 2.25 times as many, so
    /// up to an eighth more than that (counts at an overflow vary with entry sizes) stays under half.
    sized_for: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V, RandomState> {
    pub fn new(budget: usize) -> Self {
        Self::with_hasher(budget, RandomState::new())
    }
}

impl<K: Hash + Eq + Clone, V, S: BuildHasher + Clone> BoundedMap<K, V, S> {
    pub fn with_hasher(budget: usize, hasher: S) -> Self {
        BoundedMap {
            map: HashMap::with_hasher(hasher),
            bytes: 0,
            budget,
            sized_for: 0,
        }
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(k).map(|(v, _)| v)
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let (v, size) = self.map.remove(k)?;
        self.bytes -= size;
        Some(v)
    }

    /// Keeps `v` under `k`, counted as `size` bytes; over the budget, an eighth of the other entries
    /// goes (`k` stays).
    pub fn insert(&mut self, k: K, v: V, size: usize) {
        if let Some((_, old)) = self.map.insert(k.clone(), (v, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
        if self.bytes <= self.budget {
            return;
        }
        let held = self.map.len();
        if held > self.sized_for + self.sized_for / 8 {
            self.resize_for(held);
        }
        let n = (held / 8).max(1);
        let victims: Vec<K> = self.map.keys().filter(|x| **x != k).take(n).cloned().collect();
        for victim in victims {
            self.remove(&victim);
        }
    }

    /// A fresh table with room for 2.25 times `held` entries, the entries moved into it.
    fn resize_for(&mut self, held: usize) {
        let hasher = self.map.hasher().clone();
        let mut table = HashMap::with_capacity_and_hasher(held * 9 / 4 + 2, hasher);
        table.extend(self.map.drain());
        self.map = table;
        self.sized_for = held;
    }

    /// Drops every entry; the table keeps its size.
    pub fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Estimated bytes held: the sum of the entries' sizes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries the table holds without growing (for tests and diagnostics).
    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_budget_and_keeps_the_newest() {
        let mut m = BoundedMap::new(10_000);
        for i in 0..5_000u32 {
            m.insert(i, [0u8; 8], 100);
            assert!(m.bytes() <= 10_000, "{} bytes", m.bytes());
            assert_eq!(m.get(&i), Some(&[0u8; 8]), "the entry just put is kept");
        }
        assert!(m.bytes() > 5_000);
        assert_eq!(m.bytes(), 100 * m.len());
        assert_eq!(m.remove(&4_999), Some([0u8; 8]));
        assert_eq!(m.bytes(), 100 * m.len());
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.bytes(), 0);
    }

    #[test]
    fn a_replaced_entry_counts_once() {
        let mut m = BoundedMap::new(1_000);
        m.insert("a", 1, 300);
        m.insert("a", 2, 200);
        assert_eq!((m.get(&"a"), m.bytes(), m.len()), (Some(&2), 200, 1));
    }

    /// What this layout is for: entries of unequal sizes make the count at each overflow vary, and a
    /// count above the first fill's must not grow the table (under a steady load, memory would creep
    /// up each time a new peak crossed a power of two).
    #[test]
    fn the_table_does_not_grow_under_steady_churn() {
        // A fixed hasher: which entries an eviction takes, so the counts below, are the same every run.
        let fixed = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let mut m = BoundedMap::with_hasher(44_000, fixed);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut size = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            50 + (state % 101) as usize
        };
        let mut i = 0u64;
        while m.sized_for == 0 {
            m.insert(i, (), size());
            i += 1;
        }
        let (first, capacity) = (m.sized_for, m.capacity());
        let (mut fewest, mut most) = (usize::MAX, 0);
        for _ in 0..300_000 {
            let before = m.len();
            m.insert(i, (), size());
            i += 1;
            if m.len() < before {
                (fewest, most) = (fewest.min(before), most.max(before));
            }
            // `capacity()` is the table's size less its tombstones: only growth can take it this far.
            assert!(
                m.capacity() < capacity * 3 / 2,
                "the table grew: {} from {capacity}",
                m.capacity()
            );
        }
        assert!(
            most > first && fewest < first,
            "counts at overflow {fewest}..{most}, first {first}"
        );
        assert_eq!(m.sized_for, first);
    }
}
