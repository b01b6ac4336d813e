//! What a `Store` holds for one instance, and the host side of the imports.

use super::bindings::weir::udf::{host, state, timers, types};
use super::deadline::{CallDeadline, Waits};
use super::footprint::InstanceCaps;
use super::guest_output::{GuestOutput, MAX_LINE_BYTES};
use crate::log_budget::{escape_controls, SharedLogBudget};
use crate::operator::keyed_access::KeyedAccess;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Per-instance host state.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) deadline: CallDeadline,
    pub(crate) stderr: GuestOutput,
    label: Arc<str>,
    pub(crate) watermark: i64,
    keyed: Option<Arc<dyn KeyedAccess>>,
    log_budget: SharedLogBudget,
}

impl HostState {
    /// A sandbox with no files, no network, no environment: stdout and
    /// stderr go to the log; clocks and randomness are the host's.
    pub(crate) fn new(
        label: Arc<str>,
        memory_cap: u64,
        counts: InstanceCaps,
        keyed: Option<Arc<dyn KeyedAccess>>,
        log_budget: SharedLogBudget,
    ) -> Self {
        let stdout = GuestOutput::new(label.clone(), "stdout", log_budget.clone());
        let stderr = GuestOutput::new(label.clone(), "stderr", log_budget.clone());
        let wasi = WasiCtxBuilder::new().stdout(stdout).stderr(stderr.clone()).build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { cap: memory_cap, exceeded: false, total: 0, counts },
            deadline: CallDeadline::default(),
            stderr,
            label,
            watermark: i64::MIN,
            keyed,
            log_budget,
        }
    }
}

impl Waits for HostState {
    fn table_and_deadline(&mut self) -> (&mut ResourceTable, &mut CallDeadline) {
        (&mut self.table, &mut self.deadline)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps what an instance holds: the bytes of all its linear memories
/// together (a per-memory cap would give a component with N memories N
/// times the cap), the number of memories, tables and core instances, and
/// each table's size. Growing past the memory cap traps the call, and the
/// flag tells the caller it was memory; too many memories, tables or
/// instances fail the instantiation.
pub(crate) struct Limiter {
    pub(crate) cap: u64,
    pub(crate) exceeded: bool,
    /// Bytes of linear memory of all the instance's memories (wasmtime
    /// reports a memory's creation as growth from 0).
    pub(crate) total: u64,
    counts: InstanceCaps,
}

/// Tables are capped at this many elements each.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let after = self.total.saturating_add(desired.saturating_sub(current) as u64);
        if after > self.cap {
            self.exceeded = true;
            return Err(wasmtime::format_err!(
                "memory cap of {} bytes exceeded (the instance's memories would hold {after})",
                self.cap
            ));
        }
        self.total = after;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        self.counts.instances as usize
    }

    fn tables(&self) -> usize {
        self.counts.tables as usize
    }

    fn memories(&self) -> usize {
        self.counts.memories as usize
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::Level, mut message: String) {
        let udf = &*self.label;
        if !self.log_budget.admit(udf, "log") {
            return;
        }
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        let message = escape_controls(&message);
        match level {
            types::Level::Trace => tracing::trace!(target: "weir::guest", udf, "{message}"),
            types::Level::Debug => tracing::debug!(target: "weir::guest", udf, "{message}"),
            types::Level::Info => tracing::info!(target: "weir::guest", udf, "{message}"),
            types::Level::Warn => tracing::warn!(target: "weir::guest", udf, "{message}"),
            types::Level::Error => tracing::error!(target: "weir::guest", udf, "{message}"),
        }
    }

    fn current_watermark(&mut self) -> i64 {
        self.watermark
    }
}

impl HostState {
    /// Runs `f` on the keyed access of a `process` instance.
    fn keyed<T>(&self, f: impl FnOnce(&dyn KeyedAccess) -> Result<T, String>) -> Result<T, types::UdfError> {
        match &self.keyed {
            Some(k) => f(k.as_ref()).map_err(types::UdfError::InvalidInput),
            None => Err(types::UdfError::Failed(
                "keyed state and timers are only available to `process` functions".to_string(),
            )),
        }
    }
}

impl state::Host for HostState {
    fn value_get(&mut self, key: Vec<u8>, name: String) -> Result<Option<Vec<u8>>, types::UdfError> {
        self.keyed(|k| k.value_get(&key, &name))
    }

    fn value_set(&mut self, key: Vec<u8>, name: String, value: Vec<u8>) -> Result<(), types::UdfError> {
        self.keyed(|k| k.value_set(&key, &name, &value))
    }

    fn clear(&mut self, key: Vec<u8>, name: String) -> Result<(), types::UdfError> {
        self.keyed(|k| k.clear(&key, &name))
    }

    fn map_get(&mut self, key: Vec<u8>, name: String, field: Vec<u8>) -> Result<Option<Vec<u8>>, types::UdfError> {
        self.keyed(|k| k.map_get(&key, &name, &field))
    }

    fn map_put(&mut self, key: Vec<u8>, name: String, field: Vec<u8>, value: Vec<u8>) -> Result<(), types::UdfError> {
        self.keyed(|k| k.map_put(&key, &name, &field, &value))
    }

    fn map_remove(&mut self, key: Vec<u8>, name: String, field: Vec<u8>) -> Result<(), types::UdfError> {
        self.keyed(|k| k.map_remove(&key, &name, &field))
    }

    fn map_entries(&mut self, key: Vec<u8>, name: String) -> Result<Vec<(Vec<u8>, Vec<u8>)>, types::UdfError> {
        self.keyed(|k| k.map_entries(&key, &name))
    }

    fn list_get(&mut self, key: Vec<u8>, name: String) -> Result<Vec<Vec<u8>>, types::UdfError> {
        self.keyed(|k| k.list_get(&key, &name))
    }

    fn list_append(&mut self, key: Vec<u8>, name: String, item: Vec<u8>) -> Result<(), types::UdfError> {
        self.keyed(|k| k.list_append(&key, &name, &item))
    }
}

impl timers::Host for HostState {
    fn register(&mut self, key: Vec<u8>, at: i64) -> Result<(), types::UdfError> {
        self.keyed(|k| k.register_timer(&key, at))
    }

    fn delete(&mut self, key: Vec<u8>, at: i64) -> Result<(), types::UdfError> {
        self.keyed(|k| k.delete_timer(&key, at))
    }
}

#[cfg(test)]
mod tests;
