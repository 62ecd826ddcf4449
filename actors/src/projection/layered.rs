//! A map built for the projection's two moments: a zone's whole state handed over at
//! once when it loads, then a trickle of single changes, with a frozen copy (a
//! snapshot) taken at any time for the price of two reference counts.
//!
//! A persistent tree alone (what the projection used before) makes the load the
//! expensive moment: a million reservations inserted one by one into an `imbl`
//! tree took a fifth of a big space's start-up, on the notifier's one thread. Here
//! the load is a sort into a shared slice, and only what changes afterwards goes
//! into a (small) persistent tree laid over it. When that tree grows to a quarter of
//! the slice the two are merged into a new slice, so a lookup or a walk never wades
//! through more than a bounded overlay, and each change pays O(1) amortised for it.

use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;

/// The overlay is merged into the base once it holds more than a quarter of the
/// base's entries, and never below this many (so a small zone does not merge on
/// every change).
const MIN_OVERLAY: usize = 256;

/// A value that carries its own key (a reservation its id).
pub trait Keyed: Clone {
    type Key: Ord + Clone;
    fn key(&self) -> Self::Key;
}

#[derive(Debug, Clone)]
pub struct Layered<V: Keyed> {
    /// As loaded (or last merged): sorted by key, one entry per key. A `Vec` behind
    /// the `Arc`, not a slice, so that a loaded list is moved in, not copied.
    base: Arc<Vec<V>>,
    /// Changes since: `Some` is the entry's current value (new, or replacing the
    /// base's), `None` removes the base's entry of that key.
    overlay: OrdMap<V::Key, Option<V>>,
}

impl<V: Keyed> Default for Layered<V> {
    fn default() -> Self {
        Self {
            base: Arc::default(),
            overlay: OrdMap::new(),
        }
    }
}

impl<V: Keyed> Layered<V> {
    /// The map of `entries`, sorted where they are (the costly part of a big load, so
    /// it runs wherever the caller builds the map); of two entries with the same key
    /// the later one is kept.
    pub fn from_entries(mut entries: Vec<V>) -> Self {
        // Stable, so that among equal keys the later entry stays last. Sorting pairs
        // of key and place and then moving each entry once costs far less than moving
        // the (large) entries themselves at every step of the sort.
        entries.sort_by_cached_key(V::key);
        entries.dedup_by(|later, earlier| {
            let same = later.key() == earlier.key();
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Self {
            base: Arc::new(entries),
            overlay: OrdMap::new(),
        }
    }

    pub fn insert(&mut self, value: V) {
        self.overlay.insert(value.key(), Some(value));
        self.merge_if_due();
    }

    pub fn remove(&mut self, key: &V::Key) {
        if self.in_base(key) {
            self.overlay.insert(key.clone(), None);
        } else {
            self.overlay.remove(key);
        }
        self.merge_if_due();
    }

    /// The entries after the key `after` (all of them for `None`), in key order.
    pub fn after(&self, after: Option<V::Key>) -> impl Iterator<Item = &V> + '_ {
        let start = match &after {
            Some(k) => self.base.partition_point(|v| v.key() <= *k),
            None => 0,
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Merge {
            base: self.base[start..].iter().peekable(),
            overlay: self.overlay.range((lower, Bound::Unbounded)).peekable(),
        }
    }

    fn in_base(&self, key: &V::Key) -> bool {
        self.base.binary_search_by(|v| v.key().cmp(key)).is_ok()
    }

    fn merge_if_due(&mut self) {
        if self.overlay.len() > MIN_OVERLAY.max(self.base.len() / 4) {
            self.base = Arc::new(self.after(None).cloned().collect());
            self.overlay = OrdMap::new();
        }
    }
}

/// The base's entries and the overlay's changes, merged in key order.
struct Merge<B: Iterator, O: Iterator> {
    base: std::iter::Peekable<B>,
    overlay: std::iter::Peekable<O>,
}

impl<'a, V: Keyed + 'a, B, O> Iterator for Merge<B, O>
where
    B: Iterator<Item = &'a V>,
    O: Iterator<Item = (&'a V::Key, &'a Option<V>)>,
{
    type Item = &'a V;

    fn next(&mut self) -> Option<Self::Item> {
        use std::cmp::Ordering::{Equal, Greater, Less};
        loop {
            let order = match (self.base.peek(), self.overlay.peek()) {
                (None, None) => return None,
                (Some(_), None) => Less,
                (None, Some(_)) => Greater,
                (Some(b), Some((o, _))) => b.key().cmp(o),
            };
            match order {
                Less => return self.base.next(),
                // The overlay's change replaces (or removes) the base's entry.
                Equal => drop(self.base.next()),
                Greater => {}
            }
            if let (_, Some(v)) = self.overlay.next()? {
                return Some(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    impl Keyed for (u64, u64) {
        type Key = u64;
        fn key(&self) -> u64 {
            self.0
        }
    }

    /// A small deterministic generator, so a failure can be replayed.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn it_stays_equal_to_a_plain_map_through_loads_changes_and_merges() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let loaded: Vec<(u64, u64)> = (0..2_000).map(|i| (next(&mut seed) % 5_000, i)).collect();
        let all = |m: &Layered<(u64, u64)>| m.after(None).copied().collect::<Vec<_>>();
        let mut model: BTreeMap<u64, u64> = loaded.iter().copied().collect();
        let mut map = Layered::from_entries(loaded);
        let mut snapshots = Vec::new();
        for step in 0..20_000u64 {
            let key = next(&mut seed) % 5_000;
            if next(&mut seed).is_multiple_of(3) {
                map.remove(&key);
                model.remove(&key);
            } else {
                map.insert((key, step));
                model.insert(key, step);
            }
            if step.is_multiple_of(1_000) {
                assert_eq!(all(&map), model.clone().into_iter().collect::<Vec<_>>());
                snapshots.push((map.clone(), model.clone()));
            }
        }
        assert_eq!(all(&map), model.clone().into_iter().collect::<Vec<_>>());
        // A frozen copy is not disturbed by later changes or merges.
        for (frozen, then) in &snapshots {
            assert_eq!(all(frozen), then.clone().into_iter().collect::<Vec<_>>());
        }
        // Walking from any key sees exactly the keys after it.
        for from in [0, 1, 2_500, 4_999, 5_000] {
            let tail: Vec<_> = map.after(Some(from)).map(|e| e.0).collect();
            let expected: Vec<_> = model
                .range((Bound::Excluded(from), Bound::Unbounded))
                .map(|(k, _)| *k)
                .collect();
            assert_eq!(tail, expected, "after {from}");
        }
    }

    #[test]
    fn a_duplicate_key_in_a_load_keeps_the_later_entry() {
        let map = Layered::from_entries(vec![(2, 20), (1, 10), (2, 30), (2, 40), (3, 50)]);
        assert_eq!(
            map.after(None).copied().collect::<Vec<_>>(),
            [(1, 10), (2, 40), (3, 50)]
        );
    }

    #[test]
    fn removing_a_loaded_entry_hides_it_and_the_overlay_stays_bounded() {
        let mut map = Layered::from_entries((0..1_000u64).map(|k| (k, k)).collect());
        for k in 0..1_000u64 {
            map.remove(&k);
            assert!(map.overlay.len() <= MIN_OVERLAY.max(map.base.len() / 4));
        }
        assert_eq!(map.after(None).count(), 0);
    }
}
