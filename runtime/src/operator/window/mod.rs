//! Window steps on keyed streams: time windows (tumbling, sliding),
//! sessions, count windows and global windows with a count trigger, each
//! aggregated by a builtin or a WebAssembly aggregator.
//!
//! The window rules themselves are pure functions in `crate::window`; these
//! operators apply them to batches, keep accumulators in a
//! [`StateBackend`](crate::state::StateBackend), and emit results.

pub mod aggregation;
pub mod builtin;
mod count;
mod sessions;
mod sliced;
mod time_windows;

pub use count::{CountWindows, GlobalWindows};
pub use sessions::SessionWindows;
pub use sliced::SlicedWindows;
pub use time_windows::TimeWindows;

use super::{DeadLetter, DeadLetters, OperatorError, OperatorState, RestoreFrom, StepContext, StepMetrics};
use crate::state::StateBackend;
use crate::types::{event_time_in_range, RecordRef, Timestamp};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// Processing time now, ms since the epoch.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Which time windows are judged by.
#[derive(Clone)]
pub enum TimeDomain {
    /// Record timestamps and watermarks.
    Event,
    /// The clock at the window operator.
    Processing(Clock),
}

/// What every window operator knows.
#[derive(Clone)]
pub struct WindowContext {
    /// The operator's number (namespaces its state).
    pub operator: u32,
    /// Key groups.
    pub max_parallelism: u32,
    /// How long after firing a window still accepts records (event time), ms.
    pub allowed_lateness: i64,
    /// Event or processing time.
    pub domain: TimeDomain,
    /// The step (dead letters, metrics, errors).
    pub step: StepContext,
    /// Where late records go.
    pub late: Arc<dyn DeadLetters>,
}

impl WindowContext {
    /// Dead-letters a record that reached a keyed step without a key.
    pub fn missing_key(&self, record: &RecordRef<'_>) -> Result<(), OperatorError> {
        self.step.dead_letter(
            "missing_key",
            "a keyed step received a record without a key (an earlier function dropped it?)",
            record,
        )
    }

    /// Dead-letters a record whose event time is outside the accepted range
    /// (a function upstream set it); returns whether it did.
    pub fn out_of_range(&self, record: &RecordRef<'_>) -> Result<bool, OperatorError> {
        if !matches!(self.domain, TimeDomain::Event) || event_time_in_range(record.timestamp) {
            return Ok(false);
        }
        let reason = format!("timestamp {} is outside the accepted event-time range (±2^53 ms)", record.timestamp);
        self.step.dead_letter("invalid_input", &reason, record)?;
        Ok(true)
    }

    /// The event-time watermark moved to `watermark`: the time to advance
    /// the windows to, if it moved forward from `current` (which it then
    /// becomes). After a restore, inputs may start below the saved
    /// watermark: it never goes back.
    pub fn event_time_advance(&self, current: &mut Timestamp, watermark: Timestamp) -> Option<Timestamp> {
        (matches!(self.domain, TimeDomain::Event) && watermark > *current).then(|| {
            *current = watermark;
            watermark
        })
    }

    /// The wall clock (or the end of input, `Timestamp::MAX`) reached
    /// `now`: the time to advance processing-time windows to.
    pub fn processing_time_advance(&self, now: Timestamp) -> Option<Timestamp> {
        matches!(self.domain, TimeDomain::Processing(_)).then_some(now)
    }

    /// Whether the operator runs on the wall clock (and needs ticks).
    pub fn wants_ticks(&self) -> bool {
        matches!(self.domain, TimeDomain::Processing(_))
    }

    /// Sends a record that arrived after its windows closed to the late output.
    pub fn late(&self, record: &RecordRef<'_>, watermark: Timestamp) -> Result<(), OperatorError> {
        StepMetrics::add(&self.step.metrics.late, 1);
        let reason = format!(
            "late: every window of the record (timestamp {}) was closed at watermark {watermark} (allowed lateness {} ms)",
            record.timestamp, self.allowed_lateness
        );
        let letter = DeadLetter {
            step: &self.step.label,
            subtask: self.step.subtask,
            kind: "late",
            reason: &reason,
            record,
            origin: None,
        };
        self.late.send(&letter).map_err(|e| {
            self.step.error(format!("cannot write to the late output ({e}); stopping rather than losing the record"))
        })
    }
}

/// What a window operator saves besides its keyed state.
#[derive(Debug, Serialize, Deserialize)]
struct WindowMeta {
    /// Its watermark.
    watermark: Timestamp,
    /// Time windows holding state: (last millisecond, start, fired).
    #[serde(default)]
    active: Vec<(Timestamp, Timestamp, bool)>,
    /// Panes holding state (sliced sliding windows), by start.
    #[serde(default)]
    panes: Vec<Timestamp>,
}

impl Default for WindowMeta {
    fn default() -> Self {
        WindowMeta { watermark: Timestamp::MIN, active: Vec::new(), panes: Vec::new() }
    }
}

/// Snapshots `state` into `dir`, with `meta`.
fn snapshot_with(state: &mut dyn StateBackend, dir: &Path, meta: &WindowMeta) -> Result<Option<OperatorState>, String> {
    let files = state.snapshot(dir)?;
    let meta = serde_json::to_vec(meta).map_err(|e| e.to_string())?;
    Ok(Some(OperatorState { state: Some(files), meta }))
}

/// Restores `state` from `from` (the key groups of `key_groups`); returns
/// the saved bookkeeping of each.
fn restore_into(
    state: &mut dyn StateBackend,
    from: &[RestoreFrom],
    key_groups: Range<u32>,
) -> Result<Vec<WindowMeta>, String> {
    let sources: Vec<_> = from.iter().filter_map(|f| f.state.clone()).collect();
    state.restore(&sources, key_groups)?;
    from.iter()
        .map(|f| {
            if f.meta.is_empty() {
                Ok(WindowMeta::default())
            } else {
                serde_json::from_slice(&f.meta).map_err(|e| format!("window bookkeeping unreadable: {e}"))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
