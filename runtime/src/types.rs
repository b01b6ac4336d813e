//! Leaf types every other module shares: records in batches, the messages
//! that flow between tasks, time, and key groups. Imports nothing of Weir.

use std::fmt;

pub use weir_batch::{Batch, BatchRef, BatchWriter, RecordRef};

/// Event time or processing time: milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// A time window `[start, end)` in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeWindow {
    /// First millisecond inside.
    pub start: Timestamp,
    /// First millisecond after.
    pub end: Timestamp,
}

impl TimeWindow {
    /// The last millisecond inside: a window fires when the watermark reaches it.
    pub fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }

    /// The window of everything (`[i64::MIN, i64::MAX)`).
    pub const GLOBAL: TimeWindow = TimeWindow { start: Timestamp::MIN, end: Timestamp::MAX };
}

/// The event times Weir accepts: ±2^53 ms (about ±285,000 years), which
/// JSON numbers carry exactly and window arithmetic never overflows.
pub const MAX_EVENT_TIME: Timestamp = 1 << 53;

/// Whether `ts` is an accepted event time.
pub fn event_time_in_range(ts: Timestamp) -> bool {
    (-MAX_EVENT_TIME..=MAX_EVENT_TIME).contains(&ts)
}

/// A checkpoint barrier: everything before it on a channel belongs to
/// checkpoint `id`, everything after to later ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Barrier {
    /// The checkpoint; increases by one per checkpoint.
    pub id: u64,
    /// A savepoint on stop: after it, tasks end without draining.
    pub stop: bool,
}

/// What flows on a channel between two tasks.
#[derive(Debug)]
pub enum Message {
    /// Records.
    Data(Batch),
    /// No record with a timestamp at or below this will follow on this channel.
    Watermark(Timestamp),
    /// The sender has no data for now: until its next watermark it must not
    /// hold the receiver's watermark back.
    Idle,
    /// Checkpoint barrier.
    Barrier(Barrier),
    /// The sender has finished; nothing follows.
    End,
}

/// Default number of key groups: the unit of keyed state and of rescaling.
pub const DEFAULT_MAX_PARALLELISM: u32 = 128;

/// The key group of a key: a stable hash (XXH3-64, seed 0) modulo
/// `max_parallelism`. Stable across processes and versions, because keyed
/// state in checkpoints is filed by key group.
pub fn key_group(key: &[u8], max_parallelism: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(key) % u64::from(max_parallelism)) as u32
}

/// The subtask owning a key group (Flink's contiguous ranges, so a rescale
/// moves whole ranges).
pub fn subtask_of_key_group(key_group: u32, max_parallelism: u32, parallelism: u32) -> u32 {
    (u64::from(key_group) * u64::from(parallelism) / u64::from(max_parallelism)) as u32
}

/// A `name@version` reference to an uploaded function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdfRef {
    /// The function's name.
    pub name: String,
    /// Its version.
    pub version: String,
}

impl UdfRef {
    /// Parses `name@version`; names and versions are 1–64 characters of
    /// letters, digits, `-`, `_` and `.`.
    pub fn parse(text: &str) -> Result<UdfRef, String> {
        let hint = "expected NAME@VERSION, for example currency@1";
        let (name, version) = text.split_once('@').ok_or_else(|| format!("`{text}` has no version: {hint}"))?;
        for (what, part) in [("name", name), ("version", version)] {
            let ok = !part.is_empty()
                && part.len() <= 64
                && part.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            if !ok {
                return Err(format!("`{text}`: the {what} must be 1-64 letters, digits, `-`, `_` or `.` ({hint})"));
            }
        }
        Ok(UdfRef { name: name.to_string(), version: version.to_string() })
    }
}

impl fmt::Display for UdfRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_groups_are_stable_and_spread() {
        // Pinned: checkpoints file state by key group, so this must never change.
        let pinned: Vec<u32> = [&b"a"[..], b"6413", b"", b"auction"].iter().map(|k| key_group(k, 128)).collect();
        assert_eq!(pinned, vec![31, 63, 66, 74], "xxh3-64 of the key, modulo max_parallelism");
        let mut counts = [0u32; 128];
        for i in 0..128_000u32 {
            counts[key_group(i.to_string().as_bytes(), 128) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }

    #[test]
    fn key_group_ranges_cover_every_subtask_contiguously() {
        for p in 1..=7 {
            let owners: Vec<u32> = (0..128).map(|kg| subtask_of_key_group(kg, 128, p)).collect();
            assert!(owners.windows(2).all(|w| w[0] <= w[1]));
            assert_eq!((owners[0], owners[127]), (0, p - 1));
        }
    }

    #[test]
    fn udf_refs() {
        assert_eq!(UdfRef::parse("currency@1").unwrap().to_string(), "currency@1");
        assert!(UdfRef::parse("currency").unwrap_err().contains("has no version"));
        assert!(UdfRef::parse("a b@1").unwrap_err().contains("the name must be"));
        assert!(UdfRef::parse("a@").unwrap_err().contains("the version must be"));
    }
}
