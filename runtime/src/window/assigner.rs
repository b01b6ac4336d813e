//! Window assignment for time windows.

use crate::types::{TimeWindow, Timestamp};

/// How records are assigned to time windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigner {
    /// Fixed-size, non-overlapping windows.
    Tumbling {
        /// Size, ms.
        size: i64,
        /// Shift of the window boundaries from the epoch, ms.
        offset: i64,
    },
    /// Fixed-size windows starting every `slide`.
    Sliding {
        /// Size, ms.
        size: i64,
        /// Distance between window starts, ms.
        slide: i64,
        /// Shift of the window boundaries from the epoch, ms.
        offset: i64,
    },
    /// `[ts, ts + gap)`, merged with every session it touches.
    Session {
        /// Inactivity gap, ms.
        gap: i64,
    },
}

/// Count windows: fire every `slide` records of a key over its last `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountSpec {
    /// Records per window.
    pub size: u64,
    /// Records between firings (`size` for tumbling count windows).
    pub slide: u64,
}

/// The start of the window of length `size` (aligned to `offset`) that contains `ts`.
fn window_start(ts: Timestamp, offset: i64, size: i64) -> Timestamp {
    ts - (ts - offset).rem_euclid(size)
}

impl Assigner {
    /// Appends the windows a record at `ts` belongs to, latest first.
    pub fn assign(&self, ts: Timestamp, out: &mut Vec<TimeWindow>) {
        match *self {
            Assigner::Tumbling { size, offset } => {
                let start = window_start(ts, offset, size);
                out.push(TimeWindow { start, end: start + size });
            }
            Assigner::Sliding { size, slide, offset } => {
                let mut start = window_start(ts, offset, slide);
                while start > ts - size {
                    out.push(TimeWindow { start, end: start + size });
                    start -= slide;
                }
            }
            Assigner::Session { gap } => out.push(TimeWindow { start: ts, end: ts.saturating_add(gap) }),
        }
    }
}
