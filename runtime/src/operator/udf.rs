//! Steps that call a function: `map`, `filter`, `flat_map`.
//!
//! [`UdfInvoker`] is the seam to the function (the `wasm` module implements
//! it; tests may implement it in plain Rust). [`UdfStep`] applies the step's
//! [`ErrorPolicy`]: when a call fails for a whole batch, the step retries the
//! two halves of the batch (the invoker has replaced its instance), down to
//! single records, so that only the records that cause the failure are
//! dead-lettered and everything else goes on, in order.

use super::{Operator, OperatorError, StepContext, StepMetrics};
use crate::manifest::{ErrorPolicy, FunctionKind};
use crate::types::{Batch, BatchWriter};
use std::fmt;
use std::time::Duration;

/// A record a function refused, by index in the input batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index in the input batch.
    pub index: u32,
    /// The function's reason.
    pub reason: String,
}

/// Result of a `map` or `flat_map` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// Output records.
    pub output: Batch,
    /// Refused inputs.
    pub rejected: Vec<Rejection>,
}

/// Result of a `filter` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    /// Keep bitmap (bit `i % 8` of byte `i / 8`).
    pub keep: Vec<u8>,
    /// Refused inputs.
    pub rejected: Vec<Rejection>,
}

/// Result of an aggregator's `add` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// Accumulator list (one per group).
    pub accumulators: Vec<u8>,
    /// Refused records, by position among all records of the call.
    pub rejected: Vec<Rejection>,
}

/// Result of a processor's `process` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// Result list (one per group).
    pub results: Vec<u8>,
    /// Refused records, by position among all records of the call.
    pub rejected: Vec<Rejection>,
}

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdfFailure {
    /// The function returned an error value for the whole batch.
    Error {
        /// `invalid-params`, `invalid-input` or `failed`.
        kind: &'static str,
        /// Its message.
        message: String,
    },
    /// The function trapped (a panic, an unreachable, ...).
    Trap {
        /// The trap and, when the guest printed one, its panic message.
        message: String,
    },
    /// The call ran past its deadline and was interrupted.
    Timeout {
        /// The deadline.
        limit: Duration,
    },
    /// The function exhausted the WebAssembly call stack (unbounded recursion).
    StackOverflow,
    /// The instance tried to grow its memory past the cap.
    OutOfMemory {
        /// The cap, bytes.
        limit: u64,
    },
    /// The function returned bytes that break the contract.
    BadOutput {
        /// What is wrong with them.
        message: String,
    },
    /// The call returned more records per input than its limits allow.
    TooManyOutputs {
        /// Records returned.
        returned: usize,
        /// Inputs of the call.
        inputs: usize,
        /// The limit per input.
        limit: u64,
    },
    /// The call returned a record larger than its limits allow.
    OutputTooLarge {
        /// Its size, bytes.
        size: usize,
        /// The limit, bytes.
        limit: u64,
    },
    /// The call wrote more keyed state than its limits allow (nothing of it
    /// was applied).
    StateTooLarge {
        /// Which limit, and by how much.
        message: String,
    },
    /// No working instance could be made (its `init` fails or instantiation
    /// fails). Never retried: the step fails.
    Unavailable {
        /// Why.
        message: String,
    },
}

impl UdfFailure {
    /// The dead-letter `kind` of this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            UdfFailure::Error { .. } => "error",
            UdfFailure::Trap { .. } => "trap",
            UdfFailure::Timeout { .. } => "timeout",
            UdfFailure::StackOverflow => "stack_overflow",
            UdfFailure::OutOfMemory { .. } => "out_of_memory",
            UdfFailure::BadOutput { .. } => "bad_output",
            UdfFailure::StateTooLarge { .. } => "state_too_large",
            UdfFailure::TooManyOutputs { .. } => "too_many_outputs",
            UdfFailure::OutputTooLarge { .. } => "output_too_large",
            UdfFailure::Unavailable { .. } => "unavailable",
        }
    }
}

impl fmt::Display for UdfFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UdfFailure::Error { kind, message } => write!(f, "returned {kind}: {message}"),
            UdfFailure::Trap { message } => write!(f, "trapped: {message}"),
            UdfFailure::Timeout { limit } => {
                write!(f, "ran past its call deadline of {limit:?} and was stopped")
            }
            UdfFailure::StackOverflow => f.write_str("exhausted its call stack (unbounded recursion?) and was stopped"),
            UdfFailure::OutOfMemory { limit } => {
                write!(f, "tried to grow its memory past the cap of {} MiB and was stopped", limit >> 20)
            }
            UdfFailure::BadOutput { message } => {
                write!(f, "returned output that breaks the contract: {message}")
            }
            UdfFailure::StateTooLarge { message } => write!(f, "wrote too much state: {message}"),
            UdfFailure::TooManyOutputs { returned, inputs, limit } => write!(
                f,
                "returned {returned} records for {inputs} inputs, above the limit of {limit} per input (limits.outputs_per_record)"
            ),
            UdfFailure::OutputTooLarge { size, limit } => write!(
                f,
                "returned a record of {size} bytes, above the limit of {limit} (limits.record_size)"
            ),
            UdfFailure::Unavailable { message } => write!(f, "cannot be started: {message}"),
        }
    }
}

/// Calls one function instance (one per subtask).
///
/// After a trap, timeout or out-of-memory the implementation must replace
/// its instance before the next call (a trapped component instance cannot
/// be entered again).
pub trait UdfInvoker: Send {
    /// `name@version` of the function, for messages.
    fn name(&self) -> &str;
    /// Calls `map`.
    fn map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure>;
    /// Calls `filter`.
    fn filter(&mut self, input: &Batch) -> Result<Filtered, UdfFailure>;
    /// Calls `flat-map`.
    fn flat_map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure>;
    /// Tells the instance the subtask's current watermark.
    fn set_watermark(&mut self, _watermark: i64) {}
    /// Instances replaced for their memory size since the last call of this.
    fn take_recycles(&mut self) -> u64 {
        0
    }
    /// The largest memory an instance of this invoker had after a call, bytes.
    fn peak_memory(&self) -> u64 {
        0
    }

    /// Calls the aggregator's `create`.
    fn create(&mut self) -> Result<Vec<u8>, UdfFailure> {
        Err(not_exported(self.name(), "aggregator"))
    }
    /// Calls the aggregator's `add` with an `add` group list.
    fn add(&mut self, _groups: &[u8]) -> Result<Added, UdfFailure> {
        Err(not_exported(self.name(), "aggregator"))
    }
    /// Calls the aggregator's `merge`.
    fn merge(&mut self, _a: &[u8], _b: &[u8]) -> Result<Vec<u8>, UdfFailure> {
        Err(not_exported(self.name(), "aggregator"))
    }
    /// Calls the aggregator's `finish` with a `finish` group list.
    fn finish(&mut self, _fired: &[u8]) -> Result<Batch, UdfFailure> {
        Err(not_exported(self.name(), "aggregator"))
    }
    /// Calls the processor's `process` with a `process` group list.
    fn process(&mut self, _groups: &[u8]) -> Result<Processed, UdfFailure> {
        Err(not_exported(self.name(), "processor"))
    }
    /// Calls the processor's `on-timer` with a `timer` group list.
    fn on_timer(&mut self, _fired: &[u8]) -> Result<Vec<u8>, UdfFailure> {
        Err(not_exported(self.name(), "processor"))
    }
}

fn not_exported(name: &str, interface: &str) -> UdfFailure {
    UdfFailure::Unavailable { message: format!("{name} does not export the {interface} interface") }
}

/// A `map`, `filter` or `flat_map` step's subtask.
pub struct UdfStep {
    function: FunctionKind,
    invoker: Box<dyn UdfInvoker>,
    policy: ErrorPolicy,
    ctx: StepContext,
    limits: OutputLimits,
}

/// What a call may return (from the function's manifest limits): checked
/// after the call, before anything it returned goes downstream, so a burst
/// or a giant record costs only the call that made it (bounded by the
/// instance's memory cap) and is dead-lettered with its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Records per input record, over the call's batch.
    pub per_record: u64,
    /// Bytes of one record.
    pub record_size: u64,
}

impl OutputLimits {
    /// The limits of a function's manifest limits.
    pub fn of(limits: &crate::manifest::Limits) -> OutputLimits {
        OutputLimits { per_record: limits.outputs_per_record, record_size: limits.record_size }
    }

    /// Checks a call's `output` for `inputs` records.
    pub fn check(&self, output: &Batch, inputs: usize) -> Result<(), UdfFailure> {
        if output.len() as u64 > self.per_record.saturating_mul(inputs as u64) {
            return Err(UdfFailure::TooManyOutputs { returned: output.len(), inputs, limit: self.per_record });
        }
        if let Some(r) = output.iter().find(|r| r.encoded_len() as u64 > self.record_size) {
            return Err(UdfFailure::OutputTooLarge { size: r.encoded_len(), limit: self.record_size });
        }
        Ok(())
    }
}

impl UdfStep {
    /// A step calling `invoker` as `function`.
    pub fn new(function: FunctionKind, invoker: Box<dyn UdfInvoker>, policy: ErrorPolicy, ctx: StepContext) -> Self {
        let limits = OutputLimits::of(&crate::manifest::Limits::default());
        UdfStep { function, invoker, policy, ctx, limits }
    }

    /// The same step with `limits` on what a call may return.
    #[must_use]
    pub fn with_output_limits(mut self, limits: OutputLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Calls the function on `batch` and checks the result against the
    /// contract; returns the output and the rejections.
    fn call(&mut self, batch: &Batch) -> Result<(Batch, Vec<Rejection>), UdfFailure> {
        match self.function {
            FunctionKind::Map | FunctionKind::FlatMap => {
                let m = if self.function == FunctionKind::Map {
                    self.invoker.map(batch)?
                } else {
                    self.invoker.flat_map(batch)?
                };
                check_rejections(&m.rejected, batch.len())?;
                self.limits.check(&m.output, batch.len())?;
                if self.function == FunctionKind::Map && m.output.len() + m.rejected.len() != batch.len() {
                    return Err(UdfFailure::BadOutput {
                        message: format!(
                            "map returned {} records and refused {} for {} inputs (it must return one per input it does not refuse)",
                            m.output.len(),
                            m.rejected.len(),
                            batch.len()
                        ),
                    });
                }
                Ok((m.output, m.rejected))
            }
            FunctionKind::Aggregate | FunctionKind::Process => Err(UdfFailure::Unavailable {
                message: format!("a {} function cannot serve a record-by-record step", self.function.step_name()),
            }),
            FunctionKind::Filter => {
                let f = self.invoker.filter(batch)?;
                check_rejections(&f.rejected, batch.len())?;
                if let Some(r) = f
                    .rejected
                    .iter()
                    .find(|r| f.keep.get(r.index as usize / 8).is_some_and(|b| b & (1 << (r.index % 8)) != 0))
                {
                    return Err(UdfFailure::BadOutput {
                        message: format!("filter both kept and refused record {}", r.index),
                    });
                }
                if f.keep.len() != batch.len().div_ceil(8) {
                    return Err(UdfFailure::BadOutput {
                        message: format!(
                            "filter returned a bitmap of {} bytes for {} records (expected {})",
                            f.keep.len(),
                            batch.len(),
                            batch.len().div_ceil(8)
                        ),
                    });
                }
                let mut out = BatchWriter::with_capacity(batch.byte_len());
                for (i, r) in batch.iter().enumerate() {
                    if f.keep[i / 8] & (1 << (i % 8)) != 0 {
                        out.push_record(&r);
                    }
                }
                Ok((out.finish(), f.rejected))
            }
        }
    }

    /// Runs `batch`, isolating failing records per the error policy.
    fn run(&mut self, batch: &Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        match self.call(batch) {
            Ok((output, rejected)) => {
                if !rejected.is_empty() {
                    let records: Vec<_> = batch.iter().collect();
                    for r in &rejected {
                        self.ctx.dead_letter("rejected", &r.reason, &records[r.index as usize])?;
                    }
                }
                if !output.is_empty() {
                    out.push(output);
                }
                Ok(())
            }
            Err(failure) => {
                StepMetrics::add(&self.ctx.metrics.failed_calls, 1);
                let described = format!("{} (subtask {}) {failure}", self.invoker.name(), self.ctx.subtask);
                if matches!(failure, UdfFailure::Unavailable { .. }) || self.policy == ErrorPolicy::Fail {
                    return Err(self.ctx.error(described));
                }
                if batch.len() == 1 {
                    if self.ctx.metrics.warnings.admit(&self.ctx.label, "dead-letter warning") {
                        tracing::warn!(step = %self.ctx.label, "{}; the record goes to the dead-letter output", crate::log_budget::escape_controls(&described));
                    }
                    let record = batch.iter().next().expect("one record");
                    return self.ctx.dead_letter(failure.kind(), &described, &record);
                }
                tracing::debug!(step = %self.ctx.label, records = batch.len(), "{described}; retrying the batch in halves");
                let half = batch.len() / 2;
                self.run(&batch.slice(0..half), out)?;
                self.run(&batch.slice(half..batch.len()), out)
            }
        }
    }
}

/// Rejections must name distinct records of the batch, in ascending order.
pub(crate) fn check_rejections(rejected: &[Rejection], len: usize) -> Result<(), UdfFailure> {
    let mut previous: Option<u32> = None;
    for r in rejected {
        if r.index as usize >= len || previous.is_some_and(|p| p >= r.index) {
            return Err(UdfFailure::BadOutput {
                message: format!(
                    "refused record {} of a batch of {len} (indices must be ascending, distinct and in range)",
                    r.index
                ),
            });
        }
        previous = Some(r.index);
    }
    Ok(())
}

impl Operator for UdfStep {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.run(&batch, out)
    }

    fn on_watermark(&mut self, watermark: i64, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.invoker.set_watermark(watermark);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
