//! What a `process` function may do to keyed state and timers during a call,
//! through the `state` and `timers` imports. The process operator implements
//! it; the wasm host calls it. Writes are buffered and applied only if the
//! call succeeds, so a call that traps leaves no trace and can be retried.

/// The entries of a map state: field and value pairs.
pub type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// Keyed state and timers reachable from inside a call. Every method takes
/// the key it works on, which must be one of the keys of the call in progress.
pub trait KeyedAccess: Send + Sync {
    /// The value `name` of `key`.
    fn value_get(&self, key: &[u8], name: &str) -> Result<Option<Vec<u8>>, String>;
    /// Sets the value `name` of `key`.
    fn value_set(&self, key: &[u8], name: &str, value: &[u8]) -> Result<(), String>;
    /// Removes the state `name` of `key` (value, map or list).
    fn clear(&self, key: &[u8], name: &str) -> Result<(), String>;
    /// An entry of the map `name` of `key`.
    fn map_get(&self, key: &[u8], name: &str, field: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Sets an entry of the map `name` of `key`.
    fn map_put(&self, key: &[u8], name: &str, field: &[u8], value: &[u8]) -> Result<(), String>;
    /// Removes an entry of the map `name` of `key`.
    fn map_remove(&self, key: &[u8], name: &str, field: &[u8]) -> Result<(), String>;
    /// Every entry of the map `name` of `key`, ordered by field.
    fn map_entries(&self, key: &[u8], name: &str) -> Result<MapEntries, String>;
    /// The items of the list `name` of `key`, oldest first.
    fn list_get(&self, key: &[u8], name: &str) -> Result<Vec<Vec<u8>>, String>;
    /// Appends to the list `name` of `key`.
    fn list_append(&self, key: &[u8], name: &str, item: &[u8]) -> Result<(), String>;
    /// Registers an event-time timer.
    fn register_timer(&self, key: &[u8], at: i64) -> Result<(), String>;
    /// Deletes an event-time timer.
    fn delete_timer(&self, key: &[u8], at: i64) -> Result<(), String>;
}
