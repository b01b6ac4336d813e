//! Folding records into accumulators and turning accumulators into results,
//! by a builtin or by a WebAssembly aggregator.
//!
//! Work is grouped: one `add` call per batch carries every (key, window)
//! group with its accumulator once. A call that fails is retried on halves
//! of the groups, then halves of a group's records (adding the first half,
//! then the second to the result), until the failing records are isolated
//! and dead-lettered; retries are safe because `add` is a pure function of
//! its arguments. Accumulators are only stored after a call succeeded.

use super::builtin::{Builtin, Num};
use crate::manifest::ErrorPolicy;
use crate::operator::udf::{check_rejections, UdfFailure, UdfInvoker};
use crate::operator::{OperatorError, StepContext, StepMetrics};
use crate::state::{record_key, StateValue};
use crate::types::{BatchWriter, RecordRef, TimeWindow, Timestamp};
use rustc_hash::FxHashSet;
use weir_batch::{AccumulatorIter, ListWriter};

/// Records of one key and window, and the accumulator they fold into.
#[derive(Debug, Clone)]
pub struct Group {
    /// The state key (key group and record key).
    pub state_key: Vec<u8>,
    /// The window.
    pub window: TimeWindow,
    /// The accumulator so far (`None`: new).
    pub acc: Option<Vec<u8>>,
    /// Indices of the group's records in the slice given to `add`.
    pub records: Vec<usize>,
}

/// A fired window of one key.
#[derive(Debug, Clone)]
pub struct Fired {
    /// The state key.
    pub state_key: Vec<u8>,
    /// The window (`TimeWindow::GLOBAL` for count and global windows).
    pub window: TimeWindow,
    /// The final accumulator.
    pub acc: Vec<u8>,
    /// Timestamp of the output records.
    pub timestamp: Timestamp,
}

/// A window aggregation.
pub enum Aggregation {
    /// Native builtin.
    Builtin(Builtin),
    /// A WebAssembly aggregator.
    Udf(UdfAggregate),
}

/// A WebAssembly aggregator instance.
pub struct UdfAggregate {
    invoker: Box<dyn UdfInvoker>,
    policy: ErrorPolicy,
    empty: Option<Vec<u8>>,
    /// Records of the current batch already dead-lettered: a record in
    /// several windows (sliding, count) is dead-lettered once.
    lettered: FxHashSet<usize>,
}

impl UdfAggregate {
    /// Calls `invoker` under `policy`.
    pub fn new(invoker: Box<dyn UdfInvoker>, policy: ErrorPolicy) -> Self {
        UdfAggregate { invoker, policy, empty: None, lettered: FxHashSet::default() }
    }
}

fn fail(ctx: &StepContext, name: &str, failure: &UdfFailure) -> OperatorError {
    StepMetrics::add(&ctx.metrics.failed_calls, 1);
    ctx.error(format!("{name} (subtask {}) {failure}", ctx.subtask))
}

impl Aggregation {
    /// Starts a batch (record indices given to `add` refer to it).
    pub fn begin_batch(&mut self) {
        if let Aggregation::Udf(u) = self {
            u.lettered.clear();
        }
    }

    /// Indices of the records of the current batch dead-lettered so far.
    pub fn lettered(&self) -> Vec<usize> {
        match self {
            Aggregation::Udf(u) => u.lettered.iter().copied().collect(),
            Aggregation::Builtin(_) => Vec::new(),
        }
    }

    /// Tells a WebAssembly aggregator the watermark (its `current-watermark`).
    pub fn set_watermark(&mut self, watermark: i64) {
        if let Aggregation::Udf(u) = self {
            u.invoker.set_watermark(watermark);
        }
    }

    /// Folds each group's records (indices into `records`) into its accumulator.
    pub fn add(
        &mut self,
        records: &[RecordRef<'_>],
        groups: &mut [Group],
        ctx: &StepContext,
    ) -> Result<(), OperatorError> {
        match self {
            Aggregation::Builtin(b) => {
                for g in groups.iter_mut() {
                    let mut existed = g.acc.is_some();
                    let mut acc = StateValue::from_vec(g.acc.take().unwrap_or_default());
                    for &i in &g.records {
                        match b.value_of(records[i].value) {
                            Ok(v) => {
                                b.add(&mut acc, existed, v);
                                existed = true;
                            }
                            Err(reason) => ctx.dead_letter("invalid_input", &reason, &records[i])?,
                        }
                    }
                    g.acc = existed.then(|| acc.into_vec());
                }
                Ok(())
            }
            Aggregation::Udf(u) => u.add(records, groups, ctx),
        }
    }

    /// Merges two accumulators (session windows). A merge failure stops the
    /// step: dropping either side would lose records.
    pub fn merge(&mut self, a: &[u8], b: &[u8], ctx: &StepContext) -> Result<Vec<u8>, OperatorError> {
        match self {
            Aggregation::Builtin(builtin) => Ok(builtin.merge(a, b)),
            Aggregation::Udf(u) => u.invoker.merge(a, b).map_err(|f| fail(ctx, u.invoker.name(), &f)),
        }
    }

    /// Appends the output records of the fired windows to `out`.
    /// `time_windows`: whether results name their time window.
    pub fn finish(
        &mut self,
        fired: &[Fired],
        time_windows: bool,
        out: &mut BatchWriter,
        ctx: &StepContext,
    ) -> Result<(), OperatorError> {
        match self {
            Aggregation::Builtin(b) => {
                for f in fired {
                    let key = record_key(&f.state_key);
                    out.push_with(f.timestamp, Some(key), |v| {
                        b.format(key, time_windows.then_some(f.window), &f.acc, v)
                    });
                }
                Ok(())
            }
            Aggregation::Udf(u) => u.finish(fired, out, ctx),
        }
    }

    /// The number a builtin takes from a record, or why it cannot (always
    /// `Ok(None)` for a WebAssembly aggregator, which reads records itself).
    pub fn value_of(&self, record: &RecordRef<'_>) -> Result<Option<Num>, String> {
        match self {
            Aggregation::Builtin(b) => b.value_of(record.value),
            Aggregation::Udf(_) => Ok(None),
        }
    }
}

impl UdfAggregate {
    fn empty(&mut self, ctx: &StepContext) -> Result<Vec<u8>, OperatorError> {
        if let Some(e) = &self.empty {
            return Ok(e.clone());
        }
        let e = self.invoker.create().map_err(|f| fail(ctx, self.invoker.name(), &f))?;
        self.empty = Some(e.clone());
        Ok(e)
    }

    fn add(&mut self, records: &[RecordRef<'_>], groups: &mut [Group], ctx: &StepContext) -> Result<(), OperatorError> {
        if groups.is_empty() {
            return Ok(());
        }
        let empty = self.empty(ctx)?;
        let mut list = ListWriter::new();
        let mut batch = BatchWriter::new();
        let mut order: Vec<(usize, usize)> = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            batch.clear();
            for &i in &g.records {
                batch.push_record(&records[i]);
                order.push((gi, i));
            }
            let acc = g.acc.as_deref().unwrap_or(&empty);
            list.add_group(record_key(&g.state_key), g.window.start, g.window.end, acc, batch.take().as_bytes());
        }
        let result = self.invoker.add(&list.finish()).and_then(|added| {
            check_rejections(&added.rejected, order.len())?;
            let accs: Vec<Vec<u8>> = AccumulatorIter::parse(&added.accumulators)
                .map_err(|e| UdfFailure::BadOutput { message: format!("the accumulator list is malformed: {e}") })?
                .map(<[u8]>::to_vec)
                .collect();
            if accs.len() != groups.len() {
                return Err(UdfFailure::BadOutput {
                    message: format!("add returned {} accumulators for {} groups", accs.len(), groups.len()),
                });
            }
            Ok((accs, added.rejected))
        });
        match result {
            Ok((accs, rejected)) => {
                for (g, acc) in groups.iter_mut().zip(accs) {
                    g.acc = Some(acc);
                }
                for r in rejected {
                    let (_, i) = order[r.index as usize];
                    if self.lettered.insert(i) {
                        ctx.dead_letter("rejected", &r.reason, &records[i])?;
                    }
                }
                Ok(())
            }
            Err(failure) => {
                if matches!(failure, UdfFailure::Unavailable { .. }) || self.policy == ErrorPolicy::Fail {
                    return Err(fail(ctx, self.invoker.name(), &failure));
                }
                StepMetrics::add(&ctx.metrics.failed_calls, 1);
                self.isolate(records, groups, ctx, &failure)
            }
        }
    }

    /// Retries a failed `add` on halves until the failing records are found.
    fn isolate(
        &mut self,
        records: &[RecordRef<'_>],
        groups: &mut [Group],
        ctx: &StepContext,
        failure: &UdfFailure,
    ) -> Result<(), OperatorError> {
        if groups.len() > 1 {
            let half = groups.len() / 2;
            let (a, b) = groups.split_at_mut(half);
            self.add(records, a, ctx)?;
            return self.add(records, b, ctx);
        }
        let g = &mut groups[0];
        if g.records.len() == 1 {
            let reason = format!("{} (subtask {}) {failure}", self.invoker.name(), ctx.subtask);
            tracing::warn!(step = %ctx.label, "{reason}; the record goes to the dead-letter output");
            if !self.lettered.insert(g.records[0]) {
                return Ok(());
            }
            return ctx.dead_letter(failure.kind(), &reason, &records[g.records[0]]);
        }
        let half = g.records.len() / 2;
        let mut first = Group { records: g.records[..half].to_vec(), ..g.clone() };
        self.add(records, std::slice::from_mut(&mut first), ctx)?;
        let mut second = Group { records: g.records[half..].to_vec(), acc: first.acc, ..g.clone() };
        self.add(records, std::slice::from_mut(&mut second), ctx)?;
        g.acc = second.acc;
        Ok(())
    }

    fn finish(&mut self, fired: &[Fired], out: &mut BatchWriter, ctx: &StepContext) -> Result<(), OperatorError> {
        if fired.is_empty() {
            return Ok(());
        }
        let mut list = ListWriter::new();
        for f in fired {
            list.finish_group(record_key(&f.state_key), f.window.start, f.window.end, &f.acc);
        }
        match self.invoker.finish(&list.finish()) {
            Ok(batch) => {
                for r in batch.iter() {
                    out.push_record(&r);
                }
                Ok(())
            }
            Err(failure) => {
                if matches!(failure, UdfFailure::Unavailable { .. }) || self.policy == ErrorPolicy::Fail {
                    return Err(fail(ctx, self.invoker.name(), &failure));
                }
                StepMetrics::add(&ctx.metrics.failed_calls, 1);
                if fired.len() > 1 {
                    let (a, b) = fired.split_at(fired.len() / 2);
                    self.finish(a, out, ctx)?;
                    return self.finish(b, out, ctx);
                }
                // The records are folded into the accumulator: dead-letter the accumulator itself.
                let f = &fired[0];
                let reason = format!(
                    "{} (subtask {}) {failure} while finishing window [{}, {}); the value is the accumulator",
                    self.invoker.name(),
                    ctx.subtask,
                    f.window.start,
                    f.window.end
                );
                let record = RecordRef {
                    timestamp: f.timestamp,
                    key: Some(record_key(&f.state_key)),
                    value: &f.acc,
                    raw_headers: &[],
                };
                ctx.dead_letter(failure.kind(), &reason, &record)
            }
        }
    }
}

#[cfg(test)]
mod tests;
