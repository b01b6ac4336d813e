//! The session windows of one key, and how a new record merges them.

use crate::types::TimeWindow;

/// A key's sessions, ordered by start, pairwise disjoint and not touching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sessions {
    windows: Vec<TimeWindow>,
}

/// What adding a window did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The session the new window ended up in.
    pub result: TimeWindow,
    /// Sessions that were merged into `result` (their state must be merged too).
    pub absorbed: Vec<TimeWindow>,
}

/// Whether two windows overlap or touch (Flink's `TimeWindow.intersects`).
fn touch(a: &TimeWindow, b: &TimeWindow) -> bool {
    a.start <= b.end && b.start <= a.end
}

impl Sessions {
    /// Sessions from their windows (as stored).
    pub fn from_windows(mut windows: Vec<TimeWindow>) -> Self {
        windows.sort();
        Sessions { windows }
    }

    /// The windows.
    pub fn windows(&self) -> &[TimeWindow] {
        &self.windows
    }

    /// Whether `window` touches any session (so adding it merges into live state).
    pub fn touches(&self, window: &TimeWindow) -> bool {
        self.windows.iter().any(|w| touch(w, window))
    }

    /// Adds `window`, merging it with every session it touches.
    pub fn add(&mut self, window: TimeWindow) -> Merge {
        let mut result = window;
        let mut absorbed = Vec::new();
        self.windows.retain(|w| {
            if touch(w, &window) {
                result = TimeWindow { start: result.start.min(w.start), end: result.end.max(w.end) };
                absorbed.push(*w);
                false
            } else {
                true
            }
        });
        let at = self.windows.partition_point(|w| w.start < result.start);
        self.windows.insert(at, result);
        Merge { result, absorbed }
    }

    /// Removes a session (after it was cleaned up).
    pub fn remove(&mut self, window: &TimeWindow) {
        self.windows.retain(|w| w != window);
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Encodes the windows (16 bytes each, little-endian start and end).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        for w in &self.windows {
            out.extend_from_slice(&w.start.to_le_bytes());
            out.extend_from_slice(&w.end.to_le_bytes());
        }
    }

    /// Decodes what [`Sessions::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Sessions {
        let windows = bytes
            .chunks_exact(16)
            .map(|c| TimeWindow {
                start: i64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                end: i64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
            })
            .collect();
        Sessions { windows }
    }
}
