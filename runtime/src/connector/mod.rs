//! Connectors: where records come from ([`Source`]) and where they go
//! ([`Sink`], dead letters).
//!
//! Sources produce batches of raw lines (or generated records); decoding the
//! format is an operator (`operator::decode`), so it runs in parallel after
//! the source. Sinks write values as lines.

pub mod bids;
pub mod dead_letter;
pub mod file_source;
pub mod journal;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod lines;
pub mod rotating;
pub mod sink;
pub mod stream_source;

use crate::checkpoint::SourcePosition;
use crate::time::WatermarkUpdate;
use crate::types::{Batch, Timestamp};
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a source read.
#[derive(Debug)]
pub enum Read {
    /// Some records.
    Batch(Batch),
    /// Nothing yet (the caller checks for cancellation and asks again).
    Idle,
    /// The input is exhausted.
    End,
}

/// One split of a source, read by one subtask.
pub trait Source: Send {
    /// Reads up to `max` records; blocks at most about 100 ms.
    fn read(&mut self, max: usize) -> io::Result<Read>;

    /// Where the split stands (between reads), for a checkpoint; `None`
    /// when the source cannot be replayed.
    fn position(&self) -> Option<SourcePosition> {
        None
    }

    /// A watermark the source read from its input (a stream that carries
    /// its producers' progress), asked after every read.
    fn watermark(&mut self) -> WatermarkUpdate {
        WatermarkUpdate::None
    }
}

/// One subtask's output.
pub trait Sink: Send {
    /// Writes the records of `batch`.
    fn write(&mut self, batch: &Batch) -> io::Result<()>;
    /// Flushes everything written; called once at the end.
    fn finish(&mut self) -> io::Result<()>;
    /// Checkpoint `id`: makes what was written so far durable, to become
    /// visible when the checkpoint completes (see [`Committer`](crate::checkpoint::Committer)).
    fn pre_commit(&mut self, _id: u64) -> io::Result<()> {
        Ok(())
    }
    /// The subtask's watermark advanced (for sinks that pass progress on).
    fn watermark(&mut self, _watermark: Timestamp) -> io::Result<()> {
        Ok(())
    }
    /// The subtask went idle.
    fn idle(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Processing time now, ms since the epoch (the timestamp of records read
/// without an event-time field).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
