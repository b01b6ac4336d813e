//! The compiled components kept in memory, at most a number of them, the
//! least recently used dropped first (issue 18, item 8: every compiled
//! component used to stay in memory for the life of the process, so a
//! tenant uploading version after version grew the server without bound).
//!
//! Dropping an entry only drops the cache's handle: running instances hold
//! their own, and the next load of the same bytes reads the compiled code
//! back from the on-disk cache (`WasmConfig::cache_dir`) instead of
//! compiling again.

use std::collections::HashMap;

/// At most `max` values by key, least recently used out first.
#[derive(Debug)]
pub(crate) struct Lru<V> {
    max: usize,
    tick: u64,
    entries: HashMap<String, (V, u64)>,
}

impl<V: Clone> Lru<V> {
    /// An empty cache of at most `max` (at least one) values.
    pub(crate) fn new(max: usize) -> Self {
        Lru { max: max.max(1), tick: 0, entries: HashMap::new() }
    }

    /// The value of `key`, now the most recently used.
    pub(crate) fn get(&mut self, key: &str) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(v, used)| {
            *used = tick;
            v.clone()
        })
    }

    /// Keeps `value` under `key`, dropping the least recently used beyond
    /// the maximum.
    pub(crate) fn insert(&mut self, key: &str, value: V) {
        self.tick += 1;
        self.entries.insert(key.to_string(), (value, self.tick));
        while self.entries.len() > self.max {
            let oldest = self.entries.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.entries.remove(&k),
                None => break,
            };
        }
    }

    /// How many values it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Lru;

    #[test]
    fn uploading_version_after_version_keeps_at_most_the_maximum() {
        let mut lru = Lru::new(3);
        for v in 0..1000 {
            lru.insert(&format!("hash-{v}"), v);
            assert!(lru.len() <= 3);
        }
        assert_eq!(lru.get("hash-999"), Some(999));
        assert_eq!(lru.get("hash-0"), None);
    }

    #[test]
    fn agrees_with_a_list_in_order_of_use_on_random_operations() {
        // Oracle: a vector of keys, most recently used last.
        let (mut lru, mut model): (Lru<u32>, Vec<(String, u32)>) = (Lru::new(4), Vec::new());
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for step in 0..20_000u32 {
            let key = format!("k{}", next(10));
            if next(2) == 0 {
                let want = model.iter().position(|(k, _)| *k == key).map(|i| {
                    let entry = model.remove(i);
                    let v = entry.1;
                    model.push(entry);
                    v
                });
                assert_eq!(lru.get(&key), want, "step {step}: get {key}");
            } else {
                model.retain(|(k, _)| *k != key);
                model.push((key.clone(), step));
                if model.len() > 4 {
                    model.remove(0);
                }
                lru.insert(&key, step);
            }
            assert_eq!(lru.len(), model.len());
        }
    }
}
