//! What a `process` function sees of its key: the key's state, named
//! state, timers.

use crate::bindings::weir::udf::{host, state, timers, types::UdfError};
use crate::codec::Codec;
use crate::error::{Error, Result};

/// How a key's state changed during a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Kept,
    Set,
    Cleared,
}

/// The key being processed and its state.
///
/// The state (`S`) travels with every call, once per key per batch: keep
/// what is touched for every record here. Named values, maps and lists
/// (`value`, `map_*`, `list_*`) are stored by the host and read on demand,
/// one host call each: for what is large or rarely needed. Writes through
/// them, like timer changes, take effect only if the whole call succeeds.
pub struct Context<'a, S> {
    key: &'a [u8],
    state: Option<S>,
    change: Change,
}

fn host_err(e: UdfError) -> Error {
    match e {
        UdfError::InvalidParams(m) | UdfError::InvalidInput(m) => Error::invalid_input(m),
        UdfError::Failed(m) => Error::failed(m),
    }
}

impl<'a, S: Codec> Context<'a, S> {
    pub(crate) fn new(key: &'a [u8], state: Option<S>) -> Self {
        Context { key, state, change: Change::Kept }
    }

    pub(crate) fn into_parts(self) -> (Option<S>, Change) {
        (self.state, self.change)
    }

    /// The key.
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// The key's state, if it has one.
    pub fn state(&self) -> Option<&S> {
        self.state.as_ref()
    }

    /// The key's state, to change in place.
    pub fn state_mut(&mut self) -> Option<&mut S> {
        if self.state.is_some() {
            self.change = Change::Set;
        }
        self.state.as_mut()
    }

    /// The key's state, created by `init` if it has none, to change in place.
    pub fn state_or_insert_with(&mut self, init: impl FnOnce() -> S) -> &mut S {
        self.change = Change::Set;
        self.state.get_or_insert_with(init)
    }

    /// Replaces the key's state.
    pub fn set_state(&mut self, state: S) {
        self.state = Some(state);
        self.change = Change::Set;
    }

    /// Removes the key's state.
    pub fn clear_state(&mut self) {
        self.state = None;
        self.change = Change::Cleared;
    }

    /// Calls `on_timer` for this key once the watermark reaches `at`.
    pub fn register_timer(&self, at: i64) -> Result<()> {
        timers::register(self.key, at).map_err(host_err)
    }

    /// Cancels the timer at `at`, if any.
    pub fn delete_timer(&self, at: i64) -> Result<()> {
        timers::delete(self.key, at).map_err(host_err)
    }

    /// The current event-time watermark.
    pub fn watermark(&self) -> i64 {
        host::current_watermark()
    }

    /// The named value `name` of this key.
    pub fn value(&self, name: &str) -> Result<Option<Vec<u8>>> {
        state::value_get(self.key, name).map_err(host_err)
    }

    /// Sets the named value `name` of this key.
    pub fn set_value(&self, name: &str, value: &[u8]) -> Result<()> {
        state::value_set(self.key, name, value).map_err(host_err)
    }

    /// Removes the named state `name` (value, map or list) of this key.
    pub fn clear(&self, name: &str) -> Result<()> {
        state::clear(self.key, name).map_err(host_err)
    }

    /// An entry of the map `name`.
    pub fn map_get(&self, name: &str, field: &[u8]) -> Result<Option<Vec<u8>>> {
        state::map_get(self.key, name, field).map_err(host_err)
    }

    /// Sets an entry of the map `name`.
    pub fn map_put(&self, name: &str, field: &[u8], value: &[u8]) -> Result<()> {
        state::map_put(self.key, name, field, value).map_err(host_err)
    }

    /// Removes an entry of the map `name`.
    pub fn map_remove(&self, name: &str, field: &[u8]) -> Result<()> {
        state::map_remove(self.key, name, field).map_err(host_err)
    }

    /// Every entry of the map `name`, ordered by field.
    pub fn map_entries(&self, name: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        state::map_entries(self.key, name).map_err(host_err)
    }

    /// The items of the list `name`, oldest first.
    pub fn list(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        state::list_get(self.key, name).map_err(host_err)
    }

    /// Appends to the list `name`.
    pub fn list_append(&self, name: &str, item: &[u8]) -> Result<()> {
        state::list_append(self.key, name, item).map_err(host_err)
    }
}
