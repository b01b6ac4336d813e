//! The loop of one subtask: read input, run the chain, emit; generate or
//! merge watermarks; tick processing time.

use super::output::Output;
use super::plan::{ChainOp, EventTimePlan, SubtaskInput};
use super::{Control, TaskError, TaskEvent};
use crate::checkpoint::store::in_progress_dir;
use crate::checkpoint::{OperatorSnapshot, SourcePosition, TaskId, TaskSnapshot};
use crate::connector::{now_ms, Read, Source};
use crate::operator::{Operator, OperatorError, StepMetrics};
use crate::time::{InputWatermarks, WatermarkUpdate};
use crate::types::{Barrier, Batch, Message, Timestamp};
use crossbeam_channel::{Receiver, Select, Sender};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often processing time ticks for operators that want it.
const TICK: i64 = 100;

/// A subtask ready to run on its own thread.
pub(crate) struct Task {
    pub(crate) input: TaskInput,
    pub(crate) chain: Vec<ChainOp>,
    pub(crate) output: Output,
    pub(crate) batch_size: usize,
    /// Set to stop reading sources and drain (Ctrl-C).
    pub(crate) stop: Arc<AtomicBool>,
    /// Set when another subtask failed: stop without ending the output.
    pub(crate) failed: Arc<AtomicBool>,
    /// Watermark generation, in the subtask that assigns event time.
    pub(crate) event_time: Option<EventTimePlan>,
    /// Whether an operator wants processing-time ticks.
    pub(crate) ticks: bool,
    pub(crate) last_tick: i64,
    /// Whether downstream was told this subtask is idle.
    pub(crate) idle: bool,
    /// Stage and subtask.
    pub(crate) id: TaskId,
    /// Checkpoint triggers (source tasks of checkpointed plans).
    pub(crate) control: Option<Receiver<Control>>,
    /// Acknowledgements and the like, to the executor.
    pub(crate) events: Sender<TaskEvent>,
    /// The checkpoint directory (checkpointed plans).
    pub(crate) checkpoints: Option<Arc<PathBuf>>,
    /// The key groups this subtask owns.
    pub(crate) key_groups: Range<u32>,
}

/// How a subtask's run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Its input ended (or it drained on stop): everything was emitted.
    Finished,
    /// It stopped at a savepoint barrier, without draining.
    AtSavepoint,
}

/// Fails with the first storage failure of the operators' state.
fn check_state(op: &dyn Operator) -> Result<(), TaskError> {
    match op.state_failure() {
        None => Ok(()),
        Some(e) => Err(TaskError::State(e)),
    }
}

pub(crate) enum TaskInput {
    Source(Box<dyn Source>),
    Channels(Vec<Receiver<Message>>),
}

impl TaskInput {
    pub(crate) fn from_plan(input: SubtaskInput, channels: Vec<Receiver<Message>>) -> TaskInput {
        match input {
            SubtaskInput::Source(s) => TaskInput::Source(s),
            SubtaskInput::Upstream => TaskInput::Channels(channels),
        }
    }
}

/// Runs `ops[from..]` on `batches`, then hands the results to `output`.
/// When `event_time` is given, its generator sees the timestamps of what
/// `ops[observe_after]` emits.
fn push(
    ops: &mut [ChainOp],
    from: usize,
    batches: Vec<Batch>,
    output: &mut Output,
    mut event_time: Option<&mut EventTimePlan>,
) -> Result<(), TaskError> {
    let mut current = batches;
    for (i, c) in ops.iter_mut().enumerate().skip(from) {
        let mut next = Vec::with_capacity(current.len());
        for b in current {
            StepMetrics::add(&c.metrics.records_in, b.len());
            c.op.process(b, &mut next).map_err(TaskError::Operator)?;
        }
        check_state(c.op.as_ref())?;
        for b in &next {
            StepMetrics::add(&c.metrics.records_out, b.len());
        }
        if let Some(plan) = event_time.as_deref_mut().filter(|p| p.observe_after == i) {
            let now = now_ms();
            for b in &next {
                plan.generator.observe(b.iter().map(|r| r.timestamp), now);
            }
        }
        current = next;
    }
    current.into_iter().try_for_each(|b| output.data(b))
}

/// Calls `hook` on each operator in order; what one emits runs through the
/// operators after it.
fn each_op(
    ops: &mut [ChainOp],
    output: &mut Output,
    mut hook: impl FnMut(&mut dyn Operator, &mut Vec<Batch>) -> Result<(), OperatorError>,
) -> Result<(), TaskError> {
    for i in 0..ops.len() {
        let mut emitted = Vec::new();
        hook(ops[i].op.as_mut(), &mut emitted).map_err(TaskError::Operator)?;
        check_state(ops[i].op.as_ref())?;
        for b in &emitted {
            StepMetrics::add(&ops[i].metrics.records_out, b.len());
        }
        if !emitted.is_empty() {
            push(ops, i + 1, emitted, output, None)?;
        }
    }
    Ok(())
}

impl Task {
    pub(crate) fn run(mut self) -> Result<Ended, TaskError> {
        match std::mem::replace(&mut self.input, TaskInput::Channels(Vec::new())) {
            TaskInput::Source(source) => self.run_source(source),
            TaskInput::Channels(inputs) => self.run_channels(inputs),
        }
    }

    fn data(&mut self, batch: Batch) -> Result<(), TaskError> {
        push(&mut self.chain, 0, vec![batch], &mut self.output, self.event_time.as_mut())?;
        // Activity counts from when the data was handed on: a send that
        // blocked on backpressure is not silence.
        if let Some(plan) = &mut self.event_time {
            plan.generator.delivered(now_ms());
        }
        Ok(())
    }

    /// After data or a quiet spell: the generated watermark, idleness, ticks.
    fn housekeeping(&mut self) -> Result<(), TaskError> {
        let now = now_ms();
        if let Some(plan) = &mut self.event_time {
            match plan.generator.poll(now) {
                WatermarkUpdate::Advance(w) => {
                    self.idle = false;
                    self.watermark(w)?;
                }
                WatermarkUpdate::Idle => {
                    self.idle = true;
                    self.output.idle()?;
                }
                WatermarkUpdate::None => {}
            }
        }
        if self.ticks && now - self.last_tick >= TICK {
            self.last_tick = now;
            each_op(&mut self.chain, &mut self.output, |op, out| op.on_tick(now, out))?;
        }
        Ok(())
    }

    fn run_source(&mut self, mut source: Box<dyn Source>) -> Result<Ended, TaskError> {
        while !self.stop.load(Ordering::Relaxed) {
            if self.failed.load(Ordering::Relaxed) {
                return Err(TaskError::Disconnected);
            }
            // Barriers go in between batches, where the position is exact.
            let triggers: Vec<Control> = self.control.as_ref().map(|c| c.try_iter().collect()).unwrap_or_default();
            for Control::Trigger(barrier) in triggers {
                self.checkpoint(barrier, source.position())?;
                if barrier.stop {
                    return Ok(Ended::AtSavepoint);
                }
            }
            match source.read(self.batch_size).map_err(|e| TaskError::Source(e.to_string()))? {
                Read::Batch(b) => self.data(b)?,
                Read::Idle => {}
                Read::End => break,
            }
            match source.watermark() {
                WatermarkUpdate::Advance(w) => {
                    self.idle = false;
                    self.watermark(w)?;
                }
                WatermarkUpdate::Idle if !self.idle => {
                    self.idle = true;
                    self.output.idle()?;
                }
                _ => {}
            }
            self.housekeeping()?;
        }
        let _ = self.events.send(TaskEvent::SourceFinished(self.id));
        self.end()
    }

    /// Checkpoint `barrier`: forwards it (or pre-commits the sink), then
    /// snapshots the operators and reports to the executor. A snapshot
    /// that fails declines the checkpoint; processing goes on.
    fn checkpoint(&mut self, barrier: Barrier, source: Option<SourcePosition>) -> Result<(), TaskError> {
        self.output.barrier(barrier)?;
        let event = match self.snapshot(barrier.id, source) {
            Ok(snapshot) => TaskEvent::Ack { task: self.id, id: barrier.id, snapshot },
            Err(reason) => TaskEvent::Decline { task: self.id, id: barrier.id, reason },
        };
        // A function swap armed at this barrier takes effect from the next record on.
        for c in self.chain.iter().filter_map(|c| c.switch.as_ref()) {
            c.barrier_passed(self.id.1, barrier.id);
        }
        let _ = self.events.send(event);
        Ok(())
    }

    fn snapshot(&mut self, id: u64, source: Option<SourcePosition>) -> Result<TaskSnapshot, String> {
        let generator = self.event_time.as_ref().map(|p| p.generator.max_timestamp());
        let mut operators = Vec::new();
        for c in &mut self.chain {
            let Some(step) = c.step else { continue };
            let root = self.checkpoints.as_ref().ok_or("the pipeline has no checkpoint directory")?;
            let dir = in_progress_dir(root, id);
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let name = format!("s{}-t{}-step{step}", self.id.0, self.id.1);
            if let Some(saved) = c.op.snapshot(&dir.join(name))? {
                operators.push(OperatorSnapshot {
                    step,
                    subtask: self.id.1,
                    key_groups: (self.key_groups.start, self.key_groups.end),
                    state: saved.state,
                    meta: saved.meta,
                });
            }
        }
        Ok(TaskSnapshot { source, generator, operators })
    }

    fn run_channels(&mut self, inputs: Vec<Receiver<Message>>) -> Result<Ended, TaskError> {
        let mut watermarks = InputWatermarks::new(inputs.len());
        let generates = self.event_time.is_some();
        // Inputs that ended, and inputs held back until every input delivered the barrier being aligned.
        let mut ended = vec![false; inputs.len()];
        let mut blocked = vec![false; inputs.len()];
        let mut aligning: Option<Barrier> = None;
        let mut open = inputs.len();
        let mut changed = true;
        let mut select = Select::new();
        let mut index: Vec<usize> = Vec::new();
        while open > 0 {
            if changed {
                (select, index) = (Select::new(), Vec::new());
                for (i, r) in inputs.iter().enumerate().filter(|(i, _)| !ended[*i] && !blocked[*i]) {
                    select.recv(r);
                    index.push(i);
                }
                changed = false;
            }
            let ready = if self.ticks || generates {
                select.select_timeout(Duration::from_millis(TICK as u64)).ok()
            } else {
                Some(select.select())
            };
            let Some(op) = ready else {
                self.housekeeping()?;
                continue;
            };
            let i = index[op.index()];
            // An input that disconnects without `End` failed: finishing as if
            // the input had ended would write partial results as final.
            let message = op.recv(&inputs[i]).map_err(|_| TaskError::Disconnected)?;
            match message {
                Message::Data(b) => {
                    watermarks.data(i);
                    self.data(b)?;
                }
                // A subtask that generates watermarks ignores its inputs' (it assigns event time itself).
                Message::Watermark(w) => {
                    if let Some(w) = watermarks.advance(i, w).filter(|_| !generates) {
                        self.watermark(w)?;
                    }
                }
                Message::Idle => {
                    if let Some(w) = watermarks.set_idle(i).filter(|_| !generates) {
                        self.watermark(w)?;
                    }
                }
                Message::Barrier(b) => {
                    match aligning {
                        Some(a) if a.id > b.id => continue, // a stale barrier
                        Some(a) if a.id < b.id => {
                            // Barrier `a` can no longer align (its checkpoint was given up): align `b` instead.
                            let reason = "a later checkpoint overtook it".to_string();
                            let _ = self.events.send(TaskEvent::Decline { task: self.id, id: a.id, reason });
                            blocked.fill(false);
                        }
                        _ => {}
                    }
                    aligning = Some(b);
                    blocked[i] = true;
                    changed = true;
                }
                Message::End => {
                    ended[i] = true;
                    open -= 1;
                    changed = true;
                    // The end of every input is handled by `end` (which implies the final watermark).
                    if let Some(w) = watermarks.end(i).filter(|&w| w != Timestamp::MAX && !generates) {
                        self.watermark(w)?;
                    }
                }
            }
            if let Some(b) = aligning.filter(|_| (0..inputs.len()).all(|i| ended[i] || blocked[i])) {
                aligning = None;
                blocked.fill(false);
                self.checkpoint(b, None)?;
                if b.stop {
                    return Ok(Ended::AtSavepoint);
                }
            }
            if !generates {
                // Tell the next stage when this subtask goes idle or becomes active again.
                let idle = watermarks.is_idle();
                if idle != self.idle {
                    self.idle = idle;
                    if idle {
                        self.output.idle()?;
                    } else {
                        self.output.watermark(watermarks.current())?;
                    }
                }
            }
            self.housekeeping()?;
        }
        self.end()
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<(), TaskError> {
        for c in &self.chain {
            c.metrics.set_watermark(self.id.1, watermark);
        }
        if let Output::Sink { metrics, .. } = &self.output {
            metrics.set_watermark(self.id.1, watermark);
        }
        each_op(&mut self.chain, &mut self.output, |op, out| op.on_watermark(watermark, out))?;
        self.output.watermark(watermark)
    }

    /// End of every input: operators flush what they hold (processing-time
    /// windows), then the final watermark fires everything event-time, then
    /// the next stage hears `End`, which implies that watermark. Nothing is
    /// emitted after the final watermark.
    fn end(&mut self) -> Result<Ended, TaskError> {
        each_op(&mut self.chain, &mut self.output, |op, out| op.on_end(out))?;
        each_op(&mut self.chain, &mut self.output, |op, out| op.on_watermark(Timestamp::MAX, out))?;
        self.output.end()?;
        Ok(Ended::Finished)
    }
}
