//! The loop of one subtask: read input, run the chain, emit.

use super::output::Output;
use super::plan::{ChainOp, SubtaskInput};
use super::TaskError;
use crate::connector::{Read, Source};
use crate::operator::{Operator, OperatorError, StepMetrics};
use crate::time::InputWatermarks;
use crate::types::{Batch, Message, Timestamp};
use crossbeam_channel::{Receiver, Select};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A subtask ready to run on its own thread.
pub(crate) struct Task {
    pub(crate) input: TaskInput,
    pub(crate) chain: Vec<ChainOp>,
    pub(crate) output: Output,
    pub(crate) batch_size: usize,
    /// Set to stop reading sources (Ctrl-C, or another task failed).
    pub(crate) stop: Arc<AtomicBool>,
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
fn push(ops: &mut [ChainOp], from: usize, batches: Vec<Batch>, output: &mut Output) -> Result<(), TaskError> {
    let mut current = batches;
    for c in &mut ops[from..] {
        let mut next = Vec::with_capacity(current.len());
        for b in current {
            StepMetrics::add(&c.metrics.records_in, b.len());
            c.op.process(b, &mut next).map_err(TaskError::Operator)?;
        }
        for b in &next {
            StepMetrics::add(&c.metrics.records_out, b.len());
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
        for b in &emitted {
            StepMetrics::add(&ops[i].metrics.records_out, b.len());
        }
        if !emitted.is_empty() {
            push(ops, i + 1, emitted, output)?;
        }
    }
    Ok(())
}

impl Task {
    pub(crate) fn run(mut self) -> Result<(), TaskError> {
        match std::mem::replace(&mut self.input, TaskInput::Channels(Vec::new())) {
            TaskInput::Source(source) => self.run_source(source),
            TaskInput::Channels(inputs) => self.run_channels(inputs),
        }
    }

    fn run_source(&mut self, mut source: Box<dyn Source>) -> Result<(), TaskError> {
        while !self.stop.load(Ordering::Relaxed) {
            match source.read(self.batch_size).map_err(|e| TaskError::Source(e.to_string()))? {
                Read::Batch(b) => push(&mut self.chain, 0, vec![b], &mut self.output)?,
                Read::Idle => {}
                Read::End => break,
            }
        }
        self.watermark(Timestamp::MAX)?;
        self.end()
    }

    fn run_channels(&mut self, inputs: Vec<Receiver<Message>>) -> Result<(), TaskError> {
        let mut watermarks = InputWatermarks::new(inputs.len());
        let mut select = Select::new();
        for r in &inputs {
            select.recv(r);
        }
        let mut open = inputs.len();
        let mut forwarded_idle = false;
        while open > 0 {
            let op = select.select();
            let i = op.index();
            let message = op.recv(&inputs[i]).unwrap_or(Message::End);
            match message {
                Message::Data(b) => {
                    watermarks.data(i);
                    push(&mut self.chain, 0, vec![b], &mut self.output)?;
                }
                Message::Watermark(w) => {
                    if let Some(w) = watermarks.advance(i, w) {
                        self.watermark(w)?;
                    }
                }
                Message::Idle => {
                    if let Some(w) = watermarks.set_idle(i) {
                        self.watermark(w)?;
                    }
                }
                Message::Barrier(_) => {}
                Message::End => {
                    select.remove(i);
                    open -= 1;
                    if let Some(w) = watermarks.end(i) {
                        self.watermark(w)?;
                    }
                }
            }
            // Tell the next stage when this task goes idle or becomes active again.
            let idle = watermarks.is_idle();
            if idle != forwarded_idle {
                forwarded_idle = idle;
                if idle {
                    self.output.idle()?;
                } else {
                    self.output.watermark(watermarks.current())?;
                }
            }
        }
        self.end()
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<(), TaskError> {
        each_op(&mut self.chain, &mut self.output, |op, out| op.on_watermark(watermark, out))?;
        self.output.watermark(watermark)
    }

    fn end(&mut self) -> Result<(), TaskError> {
        each_op(&mut self.chain, &mut self.output, |op, out| op.on_end(out))?;
        self.output.end()
    }
}
