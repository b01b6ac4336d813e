//! Keyed state: a [`StateBackend`] stores byte values under a [`Namespace`]
//! (operator, state name, window) and a state key, which is the record key
//! prefixed by its key group (big-endian `u16`), so a snapshot can be split
//! by key-group ranges when a pipeline is restored at another parallelism.
//!
//! The in-memory backend ([`MemoryBackend`]) keeps one hash map per
//! namespace, so firing a window reads exactly its entries and purging it is
//! one removal. Operators never hold references into the backend across
//! calls; they read, modify and write, which the disk-backed
//! [`RocksBackend`] serves as well (feature `rocksdb`).
//!
//! Reads and writes do not return errors: a storage failure is sticky
//! ([`StateBackend::failure`]) and the executor checks it after every call
//! into an operator, failing the task before anything computed from a
//! failed read leaves it. Snapshots and restores return their errors.

mod entries;
mod memory;
#[cfg(feature = "rocksdb")]
mod rocks;

pub use memory::MemoryBackend;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksBackend;

use crate::checkpoint::metadata::StateFiles;
use crate::types::TimeWindow;
use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A value being modified in place: small values (up to 16 bytes, such as
/// builtin accumulators) need no allocation.
pub type StateValue = smallvec::SmallVec<[u8; 16]>;

/// Where a value lives: an operator, one of its named states, and optionally a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    /// The operator (its position in the pipeline).
    pub operator: u32,
    /// The operator's state (operators number their states).
    pub state: u32,
    /// The window the value belongs to, for window state.
    pub window: Option<TimeWindow>,
}

impl Namespace {
    /// Plain keyed state `state` of `operator`.
    pub fn keyed(operator: u32, state: u32) -> Self {
        Namespace { operator, state, window: None }
    }

    /// State `state` of `operator` in `window`.
    pub fn window(operator: u32, state: u32, window: TimeWindow) -> Self {
        Namespace { operator, state, window: Some(window) }
    }
}

/// Writes the state key of `key` in `key_group` into `out` (cleared first).
pub fn state_key(key_group: u32, key: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(key_group as u16).to_be_bytes());
    out.extend_from_slice(key);
}

/// The record key of a state key.
pub fn record_key(state_key: &[u8]) -> &[u8] {
    &state_key[2..]
}

/// The key group of a state key.
pub fn key_group_of(state_key: &[u8]) -> u32 {
    u32::from(u16::from_be_bytes([state_key[0], state_key[1]]))
}

/// A verified snapshot to restore from.
#[derive(Debug, Clone)]
pub struct RestoreSource {
    /// The snapshot's directory.
    pub dir: PathBuf,
    /// Its files.
    pub files: StateFiles,
    /// The key groups it holds.
    pub key_groups: Range<u32>,
}

/// Storage of keyed state.
pub trait StateBackend: Send {
    /// The value of `key` in `ns`.
    fn get(&self, ns: &Namespace, key: &[u8]) -> Option<Cow<'_, [u8]>>;

    /// Sets the value of `key` in `ns`.
    fn put(&mut self, ns: &Namespace, key: &[u8], value: &[u8]);

    /// Read-modify-write in one step: `f` gets the value (empty and `false`
    /// when there is none) and changes it in place; the result is stored.
    fn modify(&mut self, ns: &Namespace, key: &[u8], f: &mut dyn FnMut(&mut StateValue, bool));

    /// Removes `key` from `ns`.
    fn delete(&mut self, ns: &Namespace, key: &[u8]);

    /// Calls `f` with every key and value of `ns` (in no particular order).
    fn for_each(&self, ns: &Namespace, f: &mut dyn FnMut(&[u8], &[u8]));

    /// Removes every value of `ns`.
    fn drop_namespace(&mut self, ns: &Namespace);

    /// Every namespace that holds values.
    fn namespaces(&self) -> Vec<Namespace>;

    /// Number of values stored.
    fn len(&self) -> usize;

    /// Whether nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first storage failure, if any (sticky; see the module docs).
    fn failure(&self) -> Option<String> {
        None
    }

    /// Writes a snapshot of everything stored into the new directory `dir`.
    fn snapshot(&mut self, dir: &Path) -> Result<StateFiles, String>;

    /// Loads the entries of `key_groups` from `sources` (verified snapshots,
    /// possibly of other key-group ranges) into this empty backend.
    fn restore(&mut self, sources: &[RestoreSource], key_groups: Range<u32>) -> Result<(), String>;
}

#[cfg(test)]
mod tests;
