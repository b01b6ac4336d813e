//! The keyed state and timers a `process` function reaches through its
//! imports, with writes buffered until the call succeeds.
//!
//! Every write is charged to a [`StateBudget`] before it is copied: a guest
//! controls the bytes it passes, so without one a single call could make the
//! host allocate gigabytes that then become permanent state (issue 17). A
//! write over budget is refused (the guest sees the error) and the call fails
//! afterwards with `state_too_large` even if the guest ignored the error, so
//! nothing of it is applied. Lists grow in place in the call's pending
//! writes: appending n items costs O(n) bytes copied, not O(n²).

use crate::operator::keyed_access::KeyedAccess;
use crate::state::{state_key, Namespace, StateBackend};
use crate::types::key_group;
use rustc_hash::FxHashSet;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// State number of the per-key value passed with every call.
pub(super) const VALUE: u32 = 0;
/// State number of a key's registered timers.
pub(super) const TIMERS: u32 = 1;

/// How much keyed state one call may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateBudget {
    /// Bytes written by one call, all keys and names together.
    pub per_call: u64,
    /// Bytes one key's named state may hold after a write.
    pub per_value: u64,
}

impl StateBudget {
    /// The budget of a function's manifest limits.
    pub fn of(limits: &crate::manifest::Limits) -> StateBudget {
        StateBudget { per_call: limits.state_per_call, per_value: limits.state_value }
    }
}

/// What the operator and the function's imports share.
pub(super) struct Shared {
    pub(super) state: Box<dyn StateBackend>,
    /// Every registered timer: (time, state key).
    pub(super) timers: BTreeSet<(i64, Vec<u8>)>,
    operator: u32,
    max_parallelism: u32,
    /// State keys of the call in progress (by record key).
    allowed: FxHashSet<Vec<u8>>,
    /// Writes of the call in progress, applied on success: (namespace, state key) → value or deletion.
    pending: BTreeMap<(Namespace, Vec<u8>), Option<Vec<u8>>>,
    /// Timer changes of the call in progress: (time, state key) → register or delete.
    pending_timers: BTreeMap<(i64, Vec<u8>), bool>,
    budget: StateBudget,
    /// Bytes written by the call in progress.
    written: u64,
    /// The first write the call in progress was refused.
    exceeded: Option<String>,
}

/// The shared part, behind a lock (taken by one thread at a time: the subtask's).
pub struct ProcessAccess {
    shared: Mutex<Shared>,
}

impl ProcessAccess {
    pub(super) fn new(state: Box<dyn StateBackend>, operator: u32, max_parallelism: u32, budget: StateBudget) -> Self {
        ProcessAccess {
            shared: Mutex::new(Shared {
                state,
                timers: BTreeSet::new(),
                operator,
                max_parallelism,
                allowed: FxHashSet::default(),
                pending: BTreeMap::new(),
                pending_timers: BTreeMap::new(),
                budget,
                written: 0,
                exceeded: None,
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Named state numbers: a stable hash of the name, above the reserved ones.
fn state_of(name: &str) -> u32 {
    16 + (xxhash_rust::xxh3::xxh3_64(name.as_bytes()) % (u64::from(u32::MAX) - 16)) as u32
}

impl Shared {
    /// Starts a call on the keys of `state_keys`.
    pub(super) fn begin(&mut self, state_keys: impl IntoIterator<Item = Vec<u8>>) {
        self.allowed = state_keys.into_iter().collect();
        self.pending.clear();
        self.pending_timers.clear();
        self.written = 0;
        self.exceeded = None;
    }

    /// Why the call in progress wrote more than its budget, if it did (the
    /// operator then fails the call, whatever the guest returned).
    pub(super) fn take_exceeded(&mut self) -> Option<String> {
        self.exceeded.take()
    }

    /// Charges a write of `bytes` that leaves state `name` of one key
    /// holding `holds` bytes; refuses it (and remembers why) when over budget.
    fn charge(&mut self, name: &str, bytes: usize, holds: usize) -> Result<(), String> {
        let refused = if holds as u64 > self.budget.per_value {
            Some(format!(
                "state `{name}` of one key would hold {holds} bytes, above the limit of {} (limits.state_value)",
                self.budget.per_value
            ))
        } else if self.written.saturating_add(bytes as u64) > self.budget.per_call {
            Some(format!("the call wrote more than {} bytes of state (limits.state_per_call)", self.budget.per_call))
        } else {
            None
        };
        match refused {
            Some(reason) => {
                self.exceeded.get_or_insert_with(|| reason.clone());
                Err(reason)
            }
            None => {
                self.written += bytes as u64;
                Ok(())
            }
        }
    }

    /// Applies the writes of a successful call.
    pub(super) fn commit(&mut self) {
        for ((ns, key), value) in std::mem::take(&mut self.pending) {
            match value {
                Some(v) => self.state.put(&ns, &key, &v),
                None => self.state.delete(&ns, &key),
            }
        }
        for ((at, key), register) in std::mem::take(&mut self.pending_timers) {
            if register {
                self.add_timer(at, &key);
            } else {
                self.remove_timer(at, &key);
            }
        }
        self.allowed.clear();
    }

    /// Forgets the writes of a failed call.
    pub(super) fn rollback(&mut self) {
        self.pending.clear();
        self.pending_timers.clear();
        self.allowed.clear();
    }

    fn add_timer(&mut self, at: i64, key: &[u8]) {
        if self.timers.insert((at, key.to_vec())) {
            let ns = Namespace::keyed(self.operator, TIMERS);
            self.state.modify(&ns, key, &mut |v, _| v.extend_from_slice(&at.to_le_bytes()));
        }
    }

    /// Removes a timer (when deleted or fired).
    pub(super) fn remove_timer(&mut self, at: i64, key: &[u8]) {
        if self.timers.remove(&(at, key.to_vec())) {
            let ns = Namespace::keyed(self.operator, TIMERS);
            let rest: Vec<u8> = self
                .state
                .get(&ns, key)
                .map(|b| b.chunks_exact(8).filter(|c| *c != at.to_le_bytes()).flatten().copied().collect())
                .unwrap_or_default();
            if rest.is_empty() {
                self.state.delete(&ns, key);
            } else {
                self.state.put(&ns, key, &rest);
            }
        }
    }

    fn key(&self, key: &[u8]) -> Result<Vec<u8>, String> {
        let mut sk = Vec::with_capacity(key.len() + 2);
        state_key(key_group(key, self.max_parallelism), key, &mut sk);
        if self.allowed.contains(&sk) {
            Ok(sk)
        } else {
            Err(format!("key {:?} is not one of the keys of this call", String::from_utf8_lossy(key)))
        }
    }

    fn read(&self, ns: Namespace, sk: &[u8]) -> Option<Vec<u8>> {
        match self.pending.get(&(ns, sk.to_vec())) {
            Some(v) => v.clone(),
            None => self.state.get(&ns, sk).map(|v| v.into_owned()),
        }
    }

    fn write(&mut self, ns: Namespace, sk: Vec<u8>, value: Option<Vec<u8>>) {
        self.pending.insert((ns, sk), value);
    }

    fn ns(&self, name: &str) -> Namespace {
        Namespace::keyed(self.operator, state_of(name))
    }
}

/// Maps and lists are stored as one value: a sequence of length-prefixed
/// byte strings (a map alternates field and value, ordered by field).
fn decode_items(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut c = weir_batch::Cursor::new(bytes);
    while !c.is_at_end() {
        match c.bytes() {
            Ok(b) => items.push(b.to_vec()),
            Err(_) => break,
        }
    }
    items
}

fn encode_items<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut w = weir_batch::Writer::new();
    for i in items {
        w.bytes(i);
    }
    w.into_inner()
}

fn decode_map(bytes: Option<Vec<u8>>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let items = bytes.map(|b| decode_items(&b)).unwrap_or_default();
    items.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone())).collect()
}

fn encode_map(map: &BTreeMap<Vec<u8>, Vec<u8>>) -> Option<Vec<u8>> {
    (!map.is_empty()).then(|| encode_items(map.iter().flat_map(|(k, v)| [k.as_slice(), v.as_slice()])))
}

impl KeyedAccess for ProcessAccess {
    fn value_get(&self, key: &[u8], name: &str) -> Result<Option<Vec<u8>>, String> {
        let s = self.lock();
        let sk = s.key(key)?;
        Ok(s.read(s.ns(name), &sk))
    }

    fn value_set(&self, key: &[u8], name: &str, value: &[u8]) -> Result<(), String> {
        let mut s = self.lock();
        let sk = s.key(key)?;
        let ns = s.ns(name);
        s.charge(name, value.len(), value.len())?;
        s.write(ns, sk, Some(value.to_vec()));
        Ok(())
    }

    fn clear(&self, key: &[u8], name: &str) -> Result<(), String> {
        let mut s = self.lock();
        let sk = s.key(key)?;
        let ns = s.ns(name);
        s.write(ns, sk, None);
        Ok(())
    }

    fn map_get(&self, key: &[u8], name: &str, field: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let s = self.lock();
        let sk = s.key(key)?;
        Ok(decode_map(s.read(s.ns(name), &sk)).remove(field))
    }

    fn map_put(&self, key: &[u8], name: &str, field: &[u8], value: &[u8]) -> Result<(), String> {
        let mut s = self.lock();
        let sk = s.key(key)?;
        let ns = s.ns(name);
        let current = s.read(ns, &sk);
        let holds = current.as_ref().map_or(0, Vec::len) + field.len() + value.len() + 8;
        s.charge(name, field.len() + value.len(), holds)?;
        let mut map = decode_map(current);
        map.insert(field.to_vec(), value.to_vec());
        s.write(ns, sk, encode_map(&map));
        Ok(())
    }

    fn map_remove(&self, key: &[u8], name: &str, field: &[u8]) -> Result<(), String> {
        let mut s = self.lock();
        let sk = s.key(key)?;
        let ns = s.ns(name);
        let mut map = decode_map(s.read(ns, &sk));
        map.remove(field);
        s.write(ns, sk, encode_map(&map));
        Ok(())
    }

    fn map_entries(&self, key: &[u8], name: &str) -> Result<crate::operator::keyed_access::MapEntries, String> {
        let s = self.lock();
        let sk = s.key(key)?;
        Ok(decode_map(s.read(s.ns(name), &sk)).into_iter().collect())
    }

    fn list_get(&self, key: &[u8], name: &str) -> Result<Vec<Vec<u8>>, String> {
        let s = self.lock();
        let sk = s.key(key)?;
        Ok(s.read(s.ns(name), &sk).map(|b| decode_items(&b)).unwrap_or_default())
    }

    fn list_append(&self, key: &[u8], name: &str, item: &[u8]) -> Result<(), String> {
        let mut s = self.lock();
        let sk = s.key(key)?;
        let ns = s.ns(name);
        let mut w = weir_batch::Writer::new();
        w.bytes(item);
        let encoded = w.into_inner();
        let slot = (ns, sk);
        if !s.pending.contains_key(&slot) {
            let current = s.state.get(&ns, &slot.1).map(|v| v.into_owned());
            s.pending.insert(slot.clone(), current);
        }
        let holds = s.pending.get(&slot).and_then(Option::as_ref).map_or(0, Vec::len) + encoded.len();
        s.charge(name, encoded.len(), holds)?;
        if let Some(value) = s.pending.get_mut(&slot) {
            value.get_or_insert_with(Vec::new).extend_from_slice(&encoded);
        }
        Ok(())
    }

    fn register_timer(&self, key: &[u8], at: i64) -> Result<(), String> {
        let mut s = self.lock();
        let sk = s.key(key)?;
        s.pending_timers.insert((at, sk), true);
        Ok(())
    }

    fn delete_timer(&self, key: &[u8], at: i64) -> Result<(), String> {
        let mut s = self.lock();
        let sk = s.key(key)?;
        s.pending_timers.insert((at, sk), false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemoryBackend;

    const UNLIMITED: StateBudget = StateBudget { per_call: u64::MAX, per_value: u64::MAX };

    fn one_key(budget: StateBudget) -> ProcessAccess {
        let access = ProcessAccess::new(Box::new(MemoryBackend::new()), 3, 128, budget);
        let mut sk = Vec::new();
        state_key(key_group(b"k", 128), b"k", &mut sk);
        access.lock().begin([sk]);
        access
    }

    #[test]
    fn a_state_bomb_is_refused_before_it_is_copied_and_fails_the_call() {
        let access = one_key(StateBudget { per_call: 1000, per_value: 600 });
        access.value_set(b"k", "v", &[1; 500]).unwrap();
        let e = access.value_set(b"k", "w", &[1; 700]).unwrap_err();
        assert!(e.contains("limits.state_value"), "{e}");
        // The guest may ignore the error; the call fails anyway, and nothing applies.
        access.value_set(b"k", "x", &[1; 400]).unwrap();
        let e = access.list_append(b"k", "l", &[1; 200]).unwrap_err();
        assert!(e.contains("limits.state_per_call"), "{e}");
        let reason = access.lock().take_exceeded().expect("the call is marked");
        assert!(reason.contains("limits.state_value"), "the first refusal is the reason: {reason}");
        access.lock().rollback();
        assert_eq!(access.lock().state.len(), 0);
    }

    #[test]
    fn a_list_grows_in_place_and_its_whole_size_is_bounded() {
        let access = one_key(StateBudget { per_call: u64::MAX, per_value: 10_000 });
        let mut appended = 0;
        while access.list_append(b"k", "l", &[7; 100]).is_ok() {
            appended += 1;
        }
        // Each item is its bytes and a length prefix; the list never passes the bound.
        assert!((90..100).contains(&appended), "{appended} items");
        let reason = access.lock().take_exceeded().unwrap();
        assert!(reason.contains("state `l` of one key would hold"), "{reason}");
        access.lock().rollback();
        let mut sk = Vec::new();
        state_key(key_group(b"k", 128), b"k", &mut sk);
        access.lock().begin([sk.clone()]);
        for _ in 0..3 {
            access.list_append(b"k", "l", b"ab").unwrap();
        }
        access.lock().commit();
        access.lock().begin([sk]);
        assert_eq!(access.list_get(b"k", "l").unwrap(), vec![b"ab".to_vec(); 3]);
    }

    #[test]
    fn writes_apply_on_commit_only_and_reads_see_them_first() {
        let access = ProcessAccess::new(Box::new(MemoryBackend::new()), 3, 128, UNLIMITED);
        let mut sk = Vec::new();
        state_key(key_group(b"k", 128), b"k", &mut sk);
        access.lock().begin([sk.clone()]);
        access.value_set(b"k", "seen", b"1").unwrap();
        access.map_put(b"k", "m", b"b", b"2").unwrap();
        access.map_put(b"k", "m", b"a", b"1").unwrap();
        access.list_append(b"k", "l", b"x").unwrap();
        access.list_append(b"k", "l", b"y").unwrap();
        access.register_timer(b"k", 50).unwrap();
        assert_eq!(access.value_get(b"k", "seen").unwrap(), Some(b"1".to_vec()), "reads see the call's writes");
        assert_eq!(
            access.map_entries(b"k", "m").unwrap(),
            vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]
        );
        assert!(access.value_get(b"other", "seen").unwrap_err().contains("not one of the keys of this call"));
        access.lock().rollback();
        access.lock().begin([sk.clone()]);
        assert_eq!(access.value_get(b"k", "seen").unwrap(), None, "a failed call leaves nothing");
        assert!(access.lock().timers.is_empty());
        access.list_append(b"k", "l", b"x").unwrap();
        access.register_timer(b"k", 50).unwrap();
        access.lock().commit();
        access.lock().begin([sk]);
        assert_eq!(access.list_get(b"k", "l").unwrap(), vec![b"x".to_vec()]);
        assert_eq!(access.lock().timers.len(), 1);
        access.delete_timer(b"k", 50).unwrap();
        access.lock().commit();
        assert!(access.lock().timers.is_empty());
        assert_eq!(access.lock().state.len(), 1, "only the list remains; the timer's state is gone");
    }
}
