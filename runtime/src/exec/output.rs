//! Where a subtask's results go: the next stage's channels (partitioned) or
//! its sink.
//!
//! Channels are bounded in messages, so a message must be bounded in bytes
//! for a channel to be bounded in memory: a `flat_map` call may return as
//! much as its instance's memory cap in one batch, and after a `key_by`
//! there are p² channels (issue 17). Every batch sent downstream is cut into
//! messages of at most [`MAX_MESSAGE_BYTES`] (a single larger record, itself
//! bounded by the guest's memory cap, travels alone), so what the channels
//! between two stages hold is at most p² × capacity × 1 MiB plus such records.

use super::TaskError;
use crate::connector::Sink;
use crate::operator::StepMetrics;
use crate::types::{key_group, subtask_of_key_group, Barrier, Batch, BatchWriter, Message, Timestamp};
use crossbeam_channel::Sender;
use std::sync::Arc;

/// A subtask's output.
pub(crate) enum Output {
    /// Round robin over the next stage's subtasks. (`End` implies the final
    /// watermark: no `Watermark(MAX)` is sent.)
    Rebalance { targets: Vec<Sender<Message>>, next: usize },
    /// By key group.
    Hash { targets: Vec<Sender<Message>>, max_parallelism: u32, writers: Vec<BatchWriter> },
    /// The pipeline's sink.
    Sink { sink: Box<dyn Sink>, metrics: Arc<StepMetrics> },
}

/// The most bytes of records one channel message carries.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// `batch` as consecutive batches of at most `limit` bytes each, in order
/// (a record larger than `limit` is a batch of its own).
pub(crate) fn pieces(batch: Batch, limit: usize) -> Vec<Batch> {
    if batch.byte_len() <= limit {
        return vec![batch];
    }
    let mut out = Vec::new();
    let mut w = BatchWriter::new();
    for r in batch.iter() {
        if !w.is_empty() && w.byte_len() + r.encoded_len() > limit {
            out.push(w.take());
        }
        w.push_record(&r);
    }
    if !w.is_empty() {
        out.push(w.finish());
    }
    out
}

fn send(target: &Sender<Message>, message: Message) -> Result<(), TaskError> {
    target.send(message).map_err(|_| TaskError::Disconnected)
}

impl Output {
    pub(crate) fn data(&mut self, batch: Batch) -> Result<(), TaskError> {
        match self {
            Output::Rebalance { targets, next } => {
                for piece in pieces(batch, MAX_MESSAGE_BYTES) {
                    let i = *next;
                    *next = (i + 1) % targets.len();
                    send(&targets[i], Message::Data(piece))?;
                }
                Ok(())
            }
            Output::Hash { targets, max_parallelism, writers } => {
                let parallelism = targets.len() as u32;
                for r in batch.iter() {
                    let Some(key) = r.key else {
                        return Err(TaskError::Internal("a record without key reached a key_by shuffle".into()));
                    };
                    let kg = key_group(key, *max_parallelism);
                    let to = subtask_of_key_group(kg, *max_parallelism, parallelism) as usize;
                    let w = &mut writers[to];
                    if !w.is_empty() && w.byte_len() + r.encoded_len() > MAX_MESSAGE_BYTES {
                        send(&targets[to], Message::Data(w.take()))?;
                    }
                    w.push_record(&r);
                }
                for (w, t) in writers.iter_mut().zip(targets.iter()) {
                    if !w.is_empty() {
                        send(t, Message::Data(w.take()))?;
                    }
                }
                Ok(())
            }
            Output::Sink { sink, metrics } => {
                StepMetrics::add(&metrics.records_in, batch.len());
                sink.write(&batch).map_err(|e| TaskError::Sink(e.to_string()))
            }
        }
    }

    fn broadcast(&mut self, message: impl Fn() -> Message) -> Result<(), TaskError> {
        match self {
            Output::Rebalance { targets, .. } | Output::Hash { targets, .. } => {
                targets.iter().try_for_each(|t| send(t, message()))
            }
            Output::Sink { .. } => Ok(()),
        }
    }

    pub(crate) fn watermark(&mut self, watermark: Timestamp) -> Result<(), TaskError> {
        if let Output::Sink { sink, .. } = self {
            return sink.watermark(watermark).map_err(|e| TaskError::Sink(e.to_string()));
        }
        self.broadcast(|| Message::Watermark(watermark))
    }

    /// A checkpoint barrier: forwarded downstream, or, at the sink, the
    /// output so far is pre-committed.
    pub(crate) fn barrier(&mut self, barrier: Barrier) -> Result<(), TaskError> {
        if let Output::Sink { sink, .. } = self {
            return sink.pre_commit(barrier.id).map_err(|e| TaskError::Sink(e.to_string()));
        }
        self.broadcast(|| Message::Barrier(barrier))
    }

    pub(crate) fn idle(&mut self) -> Result<(), TaskError> {
        if let Output::Sink { sink, .. } = self {
            return sink.idle().map_err(|e| TaskError::Sink(e.to_string()));
        }
        self.broadcast(|| Message::Idle)
    }

    pub(crate) fn end(&mut self) -> Result<(), TaskError> {
        if let Output::Sink { sink, .. } = self {
            return sink.finish().map_err(|e| TaskError::Sink(e.to_string()));
        }
        self.broadcast(|| Message::End)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random batches of random-sized records, cut at random limits,
    /// against the from-scratch rule: same records in the same order, every
    /// piece within the limit unless it is one record.
    #[test]
    fn a_flat_map_burst_travels_in_messages_of_bounded_size() {
        let mut rng = crate::test_rng::TestRng::new(0x2545_f491_4f6c_dd1d);
        let mut next = |n: u64| rng.below(n);
        for _ in 0..200 {
            let mut w = BatchWriter::new();
            let mut expected = Vec::new();
            for i in 0..next(300) {
                let value = vec![b'a' + (i % 26) as u8; next(5_000) as usize];
                let key = format!("k{i}");
                w.push(i as i64, Some(key.as_bytes()), &value);
                expected.push((i as i64, key.into_bytes(), value));
            }
            let limit = 64 + next(20_000) as usize;
            let parts = pieces(w.finish(), limit);
            let mut got = Vec::new();
            for p in &parts {
                assert!(
                    p.byte_len() <= limit || p.len() == 1,
                    "{} bytes in {} records over {limit}",
                    p.byte_len(),
                    p.len()
                );
                for r in p.iter() {
                    got.push((r.timestamp, r.key.unwrap_or_default().to_vec(), r.value.to_vec()));
                }
            }
            assert_eq!(got, expected);
        }
    }
}
