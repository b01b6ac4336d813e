//! Windows: which windows a record belongs to, when a window fires, when a
//! record or window is too late, how sessions merge. Pure functions over
//! timestamps, following Flink's semantics exactly:
//!
//! - Tumbling and sliding windows are aligned to the epoch plus `offset`;
//!   a record at `ts` belongs to every `[start, start + size)` containing it.
//! - A window fires when the watermark reaches its last millisecond
//!   (`end - 1`); its state is kept until the watermark reaches
//!   `end - 1 + allowed_lateness` (cleanup). A record that arrives for a
//!   window that already fired but is not yet cleaned up updates it and
//!   fires it again; a record whose every window is past cleanup is late
//!   and goes to the late output if its own `ts + allowed_lateness` is at or
//!   below the watermark.
//! - Session windows `[ts, ts + gap)` merge with every session they touch.

mod assigner;
mod session;

pub use assigner::{Assigner, CountSpec};
pub use session::Sessions;

use crate::types::{TimeWindow, Timestamp};

/// Whether `window` is past cleanup at `watermark` (nothing may enter it).
pub fn is_window_late(window: &TimeWindow, allowed_lateness: i64, watermark: Timestamp) -> bool {
    window.max_timestamp().saturating_add(allowed_lateness) <= watermark
}

/// Whether a record at `ts` is late at `watermark` (its windows are gone).
pub fn is_record_late(ts: Timestamp, allowed_lateness: i64, watermark: Timestamp) -> bool {
    ts.saturating_add(allowed_lateness) <= watermark
}

/// Whether `window` fires (again) at `watermark`.
pub fn fires(window: &TimeWindow, watermark: Timestamp) -> bool {
    window.max_timestamp() <= watermark
}

#[cfg(test)]
mod tests;
