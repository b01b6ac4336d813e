//! Operators: what one subtask of a step does with batches.
//!
//! An [`Operator`] is a plain synchronous object; the executor (`exec`)
//! feeds it batches, watermarks and the end of input, and forwards what it
//! emits. Operators never see channels, threads or sockets. Functions in
//! WebAssembly are reached through the [`udf::UdfInvoker`] seam, which the
//! `wasm` module implements: nothing here imports wasmtime.
//!
//! Records an operator cannot process go to its [`dead_letter::DeadLetters`]
//! with a reason; an operator fails (and with it the pipeline) only when
//! going on would lose data.

pub mod dead_letter;
pub mod decode;
pub mod key_by;
pub mod keyed_access;
pub mod process;
pub mod swap;
pub mod udf;
pub mod window;

use crate::checkpoint::metadata::StateFiles;
use crate::state::RestoreSource;
use crate::types::{Batch, Timestamp};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use dead_letter::{DeadLetter, DeadLetters};

/// A failure that stops the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorError {
    /// The step, as the manifest names it (`steps[0] map currency@1`).
    pub step: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for OperatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.message)
    }
}

impl std::error::Error for OperatorError {}

/// One subtask of a step.
///
/// Only [`process`](Operator::process) is required; the other hooks default
/// to doing nothing (the executor forwards watermarks and end of input itself).
pub trait Operator: Send {
    /// Processes a batch, pushing output batches onto `out`.
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError>;

    /// The subtask's watermark advanced to `watermark` (before it is forwarded).
    fn on_watermark(&mut self, _watermark: Timestamp, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Every input has ended: emit what is still held.
    fn on_end(&mut self, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Processing time advanced to `now` (called about every 100 ms when
    /// [`wants_ticks`](Operator::wants_ticks)).
    fn on_tick(&mut self, _now: Timestamp, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Whether the operator needs [`on_tick`](Operator::on_tick) (processing-time windows).
    fn wants_ticks(&self) -> bool {
        false
    }

    /// For a checkpoint: writes its keyed state into the new directory `dir`
    /// and returns it with its own bookkeeping. `None`: nothing to save.
    fn snapshot(&mut self, _dir: &Path) -> Result<Option<OperatorState>, String> {
        Ok(None)
    }

    /// Before any input: takes over what [`snapshot`](Operator::snapshot)
    /// saved, from every snapshot of this step holding some of `key_groups`
    /// (several after a change of parallelism).
    fn restore(&mut self, _from: &[RestoreFrom], _key_groups: Range<u32>) -> Result<(), String> {
        Ok(())
    }

    /// A failure of its state storage (sticky). The executor checks after
    /// every call and fails the task, so nothing computed from a failed read
    /// leaves it.
    fn state_failure(&self) -> Option<String> {
        None
    }
}

/// What an operator saved for a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct OperatorState {
    /// Its keyed state.
    pub state: Option<StateFiles>,
    /// Its bookkeeping (watermark, windows in use), in its own encoding.
    pub meta: Vec<u8>,
}

/// One saved [`OperatorState`] to restore from.
#[derive(Debug, Clone)]
pub struct RestoreFrom {
    /// Its keyed state, verified.
    pub state: Option<RestoreSource>,
    /// Its bookkeeping.
    pub meta: Vec<u8>,
}

/// Counters of one step, summed over its subtasks.
#[derive(Debug, Default)]
pub struct StepMetrics {
    /// Records that entered the step.
    pub records_in: AtomicU64,
    /// Records the step emitted.
    pub records_out: AtomicU64,
    /// Records sent to the dead-letter output.
    pub dead_lettered: AtomicU64,
    /// Function calls that failed (trap, timeout, out of memory, error value).
    pub failed_calls: AtomicU64,
    /// Records that arrived after their windows closed (sent to the late output).
    pub late: AtomicU64,
    /// The watermark of each subtask that has one.
    watermarks: std::sync::Mutex<std::collections::BTreeMap<u32, Timestamp>>,
    /// The step's budget of warnings about its dead-lettered records (a
    /// function failing on every record would otherwise write one per record).
    pub warnings: crate::log_budget::SharedLogBudget,
}

impl StepMetrics {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Subtask `subtask`'s watermark advanced to `watermark`.
    pub fn set_watermark(&self, subtask: u32, watermark: Timestamp) {
        self.watermarks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(subtask, watermark);
    }

    /// The step's watermark: the smallest of its subtasks'.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermarks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().copied().min()
    }
}

/// What an operator knows about where it runs.
#[derive(Clone)]
pub struct StepContext {
    /// The step's label (`steps[0] map currency@1`).
    pub label: Arc<str>,
    /// Subtask index.
    pub subtask: u32,
    /// Where refused records go.
    pub dead_letters: Arc<dyn DeadLetters>,
    /// The step's counters.
    pub metrics: Arc<StepMetrics>,
}

impl StepContext {
    /// An error of this step.
    pub fn error(&self, message: impl Into<String>) -> OperatorError {
        OperatorError { step: self.label.to_string(), message: message.into() }
    }

    /// Sends a record to the dead-letter output.
    pub fn dead_letter(
        &self,
        kind: &'static str,
        reason: &str,
        record: &crate::types::RecordRef<'_>,
    ) -> Result<(), OperatorError> {
        self.dead_letter_from(kind, reason, record, None)
    }

    /// Like [`dead_letter`](Self::dead_letter), saying where the source read the record.
    pub fn dead_letter_from(
        &self,
        kind: &'static str,
        reason: &str,
        record: &crate::types::RecordRef<'_>,
        origin: Option<dead_letter::Origin>,
    ) -> Result<(), OperatorError> {
        StepMetrics::add(&self.metrics.dead_lettered, 1);
        let letter = DeadLetter { step: &self.label, subtask: self.subtask, kind, reason, record, origin };
        self.dead_letters.send(&letter).map_err(|e| {
            self.error(format!("cannot write to the dead-letter output ({e}); stopping rather than losing the record"))
        })
    }
}
