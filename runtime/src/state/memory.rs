//! State in memory: a hash map per namespace.

use super::{Namespace, StateBackend};
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// Keyed state kept in memory.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    spaces: FxHashMap<Namespace, FxHashMap<Box<[u8]>, Vec<u8>>>,
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
        self.spaces.get(ns)?.get(key).map(|v| Cow::Borrowed(v.as_slice()))
    }

    fn put(&mut self, ns: &Namespace, key: &[u8], value: &[u8]) {
        let space = self.spaces.entry(*ns).or_default();
        match space.get_mut(key) {
            Some(v) => {
                v.clear();
                v.extend_from_slice(value);
            }
            None => {
                space.insert(key.into(), value.to_vec());
                self.len += 1;
            }
        }
    }

    fn modify(&mut self, ns: &Namespace, key: &[u8], f: &mut dyn FnMut(&mut Vec<u8>, bool)) {
        let space = self.spaces.entry(*ns).or_default();
        match space.get_mut(key) {
            Some(v) => f(v, true),
            None => {
                let mut v = Vec::new();
                f(&mut v, false);
                space.insert(key.into(), v);
                self.len += 1;
            }
        }
    }

    fn delete(&mut self, ns: &Namespace, key: &[u8]) {
        if let Some(space) = self.spaces.get_mut(ns) {
            if space.remove(key).is_some() {
                self.len -= 1;
            }
            if space.is_empty() {
                self.spaces.remove(ns);
            }
        }
    }

    fn for_each(&self, ns: &Namespace, f: &mut dyn FnMut(&[u8], &[u8])) {
        if let Some(space) = self.spaces.get(ns) {
            for (k, v) in space {
                f(k, v);
            }
        }
    }

    fn drop_namespace(&mut self, ns: &Namespace) {
        if let Some(space) = self.spaces.remove(ns) {
            self.len -= space.len();
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
}
