//! Where a subtask's results go: the next stage's channels (partitioned) or
//! its sink.

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

fn send(target: &Sender<Message>, message: Message) -> Result<(), TaskError> {
    target.send(message).map_err(|_| TaskError::Disconnected)
}

impl Output {
    pub(crate) fn data(&mut self, batch: Batch) -> Result<(), TaskError> {
        match self {
            Output::Rebalance { targets, next } => {
                let i = *next;
                *next = (i + 1) % targets.len();
                send(&targets[i], Message::Data(batch))
            }
            Output::Hash { targets, max_parallelism, writers } => {
                let parallelism = targets.len() as u32;
                for r in batch.iter() {
                    let Some(key) = r.key else {
                        return Err(TaskError::Internal("a record without key reached a key_by shuffle".into()));
                    };
                    let kg = key_group(key, *max_parallelism);
                    writers[subtask_of_key_group(kg, *max_parallelism, parallelism) as usize].push_record(&r);
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
