//! The physical plan: stages of parallel subtasks joined by edges.

use crate::checkpoint::{Store, Timing};
use crate::connector::{Sink, Source};
use crate::operator::swap::StepSwitch;
use crate::operator::{Operator, StepMetrics};
use crate::time::BoundedOutOfOrderness;
use std::ops::Range;
use std::sync::Arc;

/// An operator and the counters of the step it belongs to.
pub struct ChainOp {
    /// The operator.
    pub op: Box<dyn Operator>,
    /// Its step's counters (shared by the step's subtasks).
    pub metrics: Arc<StepMetrics>,
    /// The step, for operators whose state is checkpointed.
    pub step: Option<u32>,
    /// The function swap of its step, told when a barrier passes.
    pub switch: Option<Arc<StepSwitch>>,
}

/// Where a subtask's records come from.
pub enum SubtaskInput {
    /// A split of the pipeline's source.
    Source(Box<dyn Source>),
    /// The previous stage, over the edge between them.
    Upstream,
}

/// One subtask: its input, the operators it runs in order (fused, no
/// channel between them), and, in the last stage, its sink.
pub struct SubtaskPlan {
    /// Input.
    pub input: SubtaskInput,
    /// Operators in order.
    pub chain: Vec<ChainOp>,
    /// The sink (last stage only).
    pub sink: Option<Box<dyn Sink>>,
    /// Where this subtask generates watermarks (the subtask that assigns event time).
    pub event_time: Option<EventTimePlan>,
    /// The key groups it owns (keyed stages).
    pub key_groups: Range<u32>,
}

/// Watermark generation in a subtask.
pub struct EventTimePlan {
    /// The generator.
    pub generator: BoundedOutOfOrderness,
    /// The generator sees the timestamps of what `chain[observe_after]` emits
    /// (the operator that assigns event time).
    pub observe_after: usize,
}

/// A set of parallel subtasks running the same chain.
pub struct StagePlan {
    /// For thread names and messages.
    pub name: String,
    /// The subtasks.
    pub subtasks: Vec<SubtaskPlan>,
}

/// How records move between two stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// Round robin, batch by batch.
    Rebalance,
    /// By key group of each record's key.
    Hash {
        /// Number of key groups.
        max_parallelism: u32,
    },
}

/// A runnable pipeline.
pub struct Plan {
    /// Stages in order; the first reads sources, the last writes sinks.
    pub stages: Vec<StagePlan>,
    /// `edges[i]` joins `stages[i]` and `stages[i + 1]`.
    pub edges: Vec<EdgeKind>,
    /// Records per source read.
    pub batch_size: usize,
    /// Batches buffered per channel (backpressure beyond that).
    pub channel_capacity: usize,
    /// Counters of the sink (records written).
    pub sink_metrics: Arc<StepMetrics>,
    /// Checkpoints, when configured.
    pub checkpointing: Option<CheckpointPlan>,
}

/// How a plan is checkpointed.
pub struct CheckpointPlan {
    /// Where checkpoints go, and the sink's committer.
    pub store: Store,
    /// When.
    pub timing: Timing,
    /// The id of the first checkpoint (one past the one restored from).
    pub first_id: u64,
}

impl Plan {
    /// Checks the plan's shape; a violation is a bug of the planner.
    pub fn check(&self) -> Result<(), String> {
        if self.stages.is_empty() || self.edges.len() + 1 != self.stages.len() {
            return Err(format!(
                "{} stages need {} edges, found {}",
                self.stages.len(),
                self.stages.len().saturating_sub(1),
                self.edges.len()
            ));
        }
        let last = self.stages.len() - 1;
        for (i, stage) in self.stages.iter().enumerate() {
            if stage.subtasks.is_empty() {
                return Err(format!("stage {} has no subtask", stage.name));
            }
            for s in &stage.subtasks {
                if matches!(s.input, SubtaskInput::Source(_)) != (i == 0) {
                    return Err(format!("stage {}: only the first stage reads sources", stage.name));
                }
                if s.sink.is_some() != (i == last) {
                    return Err(format!("stage {}: only the last stage writes sinks", stage.name));
                }
            }
        }
        Ok(())
    }
}
