//! The executor: one thread per subtask, bounded channels between stages.
//!
//! A [`Plan`] is a list of stages of parallel subtasks; within a subtask the
//! operators are fused (a batch goes from one to the next by a function
//! call); between stages batches travel over bounded channels, one per pair
//! of sender and receiver subtasks, so a slow consumer slows its producers
//! (backpressure) and memory stays bounded. Watermarks and end of input are
//! broadcast; a receiving subtask's watermark is the minimum over its inputs.
//!
//! WebAssembly calls are synchronous on these threads; the executor has no
//! async runtime.

mod output;
mod plan;
mod task;

pub use plan::{ChainOp, EdgeKind, EventTimePlan, Plan, StagePlan, SubtaskInput, SubtaskPlan};

use crate::operator::OperatorError;
use crossbeam_channel::{bounded, Receiver, Sender};
use output::Output;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use task::{Task, TaskInput};

/// Why a subtask stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// An operator failed.
    Operator(OperatorError),
    /// Reading the source failed.
    Source(String),
    /// Writing the sink failed.
    Sink(String),
    /// A neighbouring subtask stopped (a consequence of another error).
    Disconnected,
    /// A bug in the planner or executor.
    Internal(String),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Operator(e) => write!(f, "{e}"),
            TaskError::Source(e) => write!(f, "source: {e}"),
            TaskError::Sink(e) => write!(f, "sink: {e}"),
            TaskError::Disconnected => f.write_str("a neighbouring subtask stopped"),
            TaskError::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

/// Runs `plan` to completion (or until `stop` is set and the sources have
/// drained). Returns the first real error if any subtask failed.
pub fn run(plan: Plan, stop: Arc<AtomicBool>) -> Result<(), TaskError> {
    plan.check().map_err(TaskError::Internal)?;
    let Plan { stages, edges, batch_size, channel_capacity, sink_metrics } = plan;

    // Channels of edge i: receivers[i][downstream][upstream], senders[i][upstream][downstream].
    let mut receivers: Vec<Vec<Vec<Receiver<crate::types::Message>>>> = Vec::new();
    let mut senders: Vec<Vec<Vec<Sender<crate::types::Message>>>> = Vec::new();
    for (i, _) in edges.iter().enumerate() {
        let (up, down) = (stages[i].subtasks.len(), stages[i + 1].subtasks.len());
        let mut rx = vec![Vec::with_capacity(up); down];
        let mut tx = vec![Vec::with_capacity(down); up];
        for u in tx.iter_mut() {
            for r in rx.iter_mut() {
                let (s, rcv) = bounded(channel_capacity);
                u.push(s);
                r.push(rcv);
            }
        }
        receivers.push(rx);
        senders.push(tx);
    }

    // Set when a subtask fails: sources stop without ending their output, so
    // no downstream subtask mistakes the cut-off input for a complete one.
    let failed = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let last = stages.len() - 1;
    for (si, stage) in stages.into_iter().enumerate().rev() {
        let mut stage_rx = if si > 0 { receivers.pop().unwrap_or_default() } else { Vec::new() };
        let mut stage_tx = if si < last { senders.pop().unwrap_or_default() } else { Vec::new() };
        for (ti, sub) in stage.subtasks.into_iter().enumerate().rev() {
            let inputs = stage_rx.pop().unwrap_or_default();
            let output = match sub.sink {
                Some(sink) => Output::Sink { sink, metrics: sink_metrics.clone() },
                None => {
                    let targets = stage_tx.pop().unwrap_or_default();
                    match edges[si] {
                        EdgeKind::Rebalance => Output::Rebalance { next: ti % targets.len().max(1), targets },
                        EdgeKind::Hash { max_parallelism } => {
                            let writers = targets.iter().map(|_| crate::types::BatchWriter::new()).collect();
                            Output::Hash { targets, max_parallelism, writers }
                        }
                    }
                }
            };
            let ticks = sub.chain.iter().any(|c| c.op.wants_ticks());
            let task = Task {
                input: TaskInput::from_plan(sub.input, inputs),
                chain: sub.chain,
                output,
                batch_size,
                stop: stop.clone(),
                failed: failed.clone(),
                event_time: sub.event_time,
                ticks,
                last_tick: 0,
                idle: false,
            };
            let failed = failed.clone();
            let name = format!("weir-{}-{ti}", stage.name);
            let handle = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let result = task.run();
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    result
                })
                .map_err(|e| TaskError::Internal(format!("cannot start thread {name}: {e}")))?;
            handles.push(handle);
        }
    }

    let mut first: Option<TaskError> = None;
    for h in handles {
        let result = h.join().unwrap_or_else(|panic| {
            let what =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(TaskError::Internal(format!("a subtask panicked: {}", what.unwrap_or_default())))
        });
        if let Err(e) = result {
            tracing::debug!("subtask stopped: {e}");
            let better = match (&first, &e) {
                (None, _) => true,
                (Some(TaskError::Disconnected), other) => *other != TaskError::Disconnected,
                _ => false,
            };
            if better {
                first = Some(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}
