//! State in memory: a hash table per namespace.
//!
//! This is on the hot path of every window update, so: keys up to 23 bytes
//! (a key group and a short record key) live inline in the entry and are
//! compared without a `memcmp` call; values up
//! to 16 bytes (builtin accumulators) live inline too. Each namespace is a
//! compact hash index of positions over a dense vector of entries, so the
//! index stays in cache and an update touches one entry.

use super::entries::{read_entries, EntryWriter};
use super::{key_group_of, Namespace, RestoreSource, StateBackend, StateValue};
use crate::checkpoint::metadata::StateFiles;
use hashbrown::HashTable;
use rustc_hash::{FxHashMap, FxHasher};
use std::borrow::Cow;
use std::hash::Hasher;
use std::ops::Range;
use std::path::Path;

/// The snapshot file's name.
const SNAPSHOT: &str = "state";

/// A state key, inline when short.
#[derive(Debug, Clone)]
enum Key {
    Inline { len: u8, bytes: [u8; 23] },
    Heap(Box<[u8]>),
}

impl Key {
    fn new(k: &[u8]) -> Key {
        if k.len() <= 23 {
            let mut bytes = [0u8; 23];
            bytes[..k.len()].copy_from_slice(k);
            Key::Inline { len: k.len() as u8, bytes }
        } else {
            Key::Heap(k.into())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..*len as usize],
            Key::Heap(b) => b,
        }
    }

    fn matches(&self, k: &[u8]) -> bool {
        match self {
            Key::Inline { len, bytes } => {
                if *len as usize != k.len() {
                    return false;
                }
                let mut probe = [0u8; 23];
                probe[..k.len()].copy_from_slice(k);
                *bytes == probe
            }
            Key::Heap(b) => **b == *k,
        }
    }
}

#[derive(Debug)]
struct Entry {
    key: Key,
    value: StateValue,
}

fn hash(k: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(k);
    h.finish()
}

/// One namespace: a compact index (slot → position) over dense entries.
/// The index stays small enough to be cache-resident; an update then
/// touches one entry.
#[derive(Debug, Default)]
struct Space {
    index: HashTable<u32>,
    entries: Vec<Entry>,
}

impl Space {
    fn find(&self, h: u64, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index.find(h, |&i| entries[i as usize].key.matches(key)).map(|&i| i as usize)
    }

    fn insert(&mut self, h: u64, entry: Entry) {
        let at = u32::try_from(self.entries.len()).expect("fewer than 4 billion entries per namespace");
        self.entries.push(entry);
        let entries = &self.entries;
        self.index.insert_unique(h, at, |&i| hash(entries[i as usize].key.as_slice()));
    }

    /// Removes the entry at `at`, moving the last entry into its place.
    fn remove(&mut self, h: u64, at: usize) {
        if let Ok(slot) = self.index.find_entry(h, |&i| i as usize == at) {
            slot.remove();
        }
        let last = self.entries.len() - 1;
        if at != last {
            let moved = hash(self.entries[last].key.as_slice());
            if let Some(slot) = self.index.find_mut(moved, |&i| i as usize == last) {
                *slot = at as u32;
            }
        }
        self.entries.swap_remove(at);
    }
}

/// Keyed state kept in memory.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    spaces: FxHashMap<Namespace, Space>,
    len: usize,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        MemoryBackend::default()
    }
}

impl StateBackend for MemoryBackend {
    fn get(&self, ns: &Namespace, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let space = self.spaces.get(ns)?;
        let at = space.find(hash(key), key)?;
        Some(Cow::Borrowed(space.entries[at].value.as_slice()))
    }

    fn put(&mut self, ns: &Namespace, key: &[u8], value: &[u8]) {
        self.modify(ns, key, &mut |v, _| {
            v.clear();
            v.extend_from_slice(value);
        });
    }

    fn modify(&mut self, ns: &Namespace, key: &[u8], f: &mut dyn FnMut(&mut StateValue, bool)) {
        let h = hash(key);
        let space = self.spaces.entry(*ns).or_default();
        if let Some(at) = space.find(h, key) {
            f(&mut space.entries[at].value, true);
            return;
        }
        let mut value = StateValue::new();
        f(&mut value, false);
        space.insert(h, Entry { key: Key::new(key), value });
        self.len += 1;
    }

    fn delete(&mut self, ns: &Namespace, key: &[u8]) {
        let h = hash(key);
        let Some(space) = self.spaces.get_mut(ns) else { return };
        if let Some(at) = space.find(h, key) {
            space.remove(h, at);
            self.len -= 1;
        }
        if space.entries.is_empty() {
            self.spaces.remove(ns);
        }
    }

    fn for_each(&self, ns: &Namespace, f: &mut dyn FnMut(&[u8], &[u8])) {
        if let Some(space) = self.spaces.get(ns) {
            for e in &space.entries {
                f(e.key.as_slice(), &e.value);
            }
        }
    }

    fn drop_namespace(&mut self, ns: &Namespace) {
        if let Some(space) = self.spaces.remove(ns) {
            self.len -= space.entries.len();
        }
    }

    fn namespaces(&self) -> Vec<Namespace> {
        let mut v: Vec<Namespace> = self.spaces.keys().copied().collect();
        v.sort();
        v
    }

    fn len(&self) -> usize {
        self.len
    }

    fn snapshot(&mut self, dir: &Path) -> Result<StateFiles, String> {
        let write = || -> std::io::Result<StateFiles> {
            std::fs::create_dir(dir)?;
            let mut w = EntryWriter::create(dir, SNAPSHOT)?;
            for ns in self.namespaces() {
                for e in &self.spaces[&ns].entries {
                    w.entry(&ns, e.key.as_slice(), &e.value)?;
                }
            }
            let sum = w.finish()?;
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Ok(StateFiles { backend: "memory".into(), dir: name, files: vec![sum] })
        };
        write().map_err(|e| format!("cannot write a state snapshot in {}: {e}", dir.display()))
    }

    fn restore(&mut self, sources: &[RestoreSource], key_groups: Range<u32>) -> Result<(), String> {
        for s in sources {
            // A savepoint of RocksDB state restores into memory too (a change of backend).
            #[cfg(feature = "rocksdb")]
            if s.files.backend == "rocksdb" {
                super::rocks::read_snapshot(&s.dir, &key_groups, &mut |key, ns, n, value| {
                    self.put(&ns, &key[n..], value)
                })?;
                continue;
            }
            if s.files.backend != "memory" {
                return Err(format!("{}: a {} snapshot, not a memory one", s.dir.display(), s.files.backend));
            }
            for f in &s.files.files {
                read_entries(&s.dir.join(&f.name), &mut |ns, key, value| {
                    if key.len() >= 2 && key_groups.contains(&key_group_of(key)) {
                        self.put(ns, key, value);
                    }
                })?;
            }
        }
        Ok(())
    }
}
