//! `process`: a keyed function with state and event-time timers.
//!
//! Per batch, records are grouped by key and sent in one `process` call
//! with each key's value (state crosses the boundary once per key per
//! batch). Timers that the watermark passes fire in one `on-timer` call.
//! Writes through the `state` and `timers` imports are buffered and applied
//! only when the call succeeds, so a failed call can be retried on halves
//! (the same isolation as other steps) without leaving partial effects.

mod access;

pub use access::{ProcessAccess, StateBudget};

use super::udf::{check_rejections, UdfFailure, UdfInvoker};
use super::{Operator, OperatorError, StepContext, StepMetrics};
use super::{OperatorState, RestoreFrom};
use crate::manifest::ErrorPolicy;
use crate::state::{record_key, state_key, Namespace, StateBackend};
use crate::types::{key_group, Batch, BatchWriter, RecordRef, Timestamp};
use access::{TIMERS, VALUE};
use rustc_hash::FxHashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use weir_batch::{ListWriter, ResultIter, StateOp};

/// A `process` step's subtask.
pub struct Process {
    invoker: Box<dyn UdfInvoker>,
    policy: ErrorPolicy,
    access: Arc<ProcessAccess>,
    operator: u32,
    max_parallelism: u32,
    ctx: StepContext,
    watermark: Timestamp,
}

/// One key's records of a call.
struct KeyGroup {
    state_key: Vec<u8>,
    records: Vec<usize>,
}

impl Process {
    /// The shared state and timers to give the function's instance (its imports)
    /// before the operator is made.
    pub fn access(
        state: Box<dyn StateBackend>,
        operator: u32,
        max_parallelism: u32,
        budget: StateBudget,
    ) -> Arc<ProcessAccess> {
        Arc::new(ProcessAccess::new(state, operator, max_parallelism, budget))
    }

    /// A step calling `invoker`, whose instance was given `access`.
    pub fn new(
        invoker: Box<dyn UdfInvoker>,
        policy: ErrorPolicy,
        access: Arc<ProcessAccess>,
        operator: u32,
        max_parallelism: u32,
        ctx: StepContext,
    ) -> Self {
        Process { invoker, policy, access, operator, max_parallelism, ctx, watermark: Timestamp::MIN }
    }

    fn value_ns(&self) -> Namespace {
        Namespace::keyed(self.operator, VALUE)
    }

    fn failure(&self, failure: &UdfFailure) -> OperatorError {
        StepMetrics::add(&self.ctx.metrics.failed_calls, 1);
        self.ctx.error(format!("{} (subtask {}) {failure}", self.invoker.name(), self.ctx.subtask))
    }

    /// Applies a result list to the groups' values and collects outputs.
    fn apply(&self, results: &[u8], keys: &[Vec<u8>], out: &mut BatchWriter) -> Result<(), UdfFailure> {
        let entries = ResultIter::parse(results)
            .map_err(|e| UdfFailure::BadOutput { message: format!("the result list is malformed: {e}") })?;
        if entries.len() != keys.len() {
            return Err(UdfFailure::BadOutput {
                message: format!("returned {} results for {} keys", entries.len(), keys.len()),
            });
        }
        let mut shared = self.access.lock();
        shared.commit();
        let ns = self.value_ns();
        for (entry, key) in entries.zip(keys) {
            match entry.state {
                StateOp::Keep => {}
                StateOp::Set(v) => shared.state.put(&ns, key, v),
                StateOp::Clear => shared.state.delete(&ns, key),
            }
            for r in entry.output.iter() {
                out.push_record(&r);
            }
        }
        Ok(())
    }

    /// Fails a call that wrote more state than its budget (see `access`),
    /// whatever it returned: a guest that passed the refusal on as its own
    /// error, or ignored it, fails the same way.
    fn within_budget<T>(&self, result: Result<T, UdfFailure>) -> Result<T, UdfFailure> {
        match self.access.lock().take_exceeded() {
            Some(message) if !matches!(result, Err(UdfFailure::Unavailable { .. })) => {
                Err(UdfFailure::StateTooLarge { message })
            }
            _ => result,
        }
    }

    /// One `process` call over `groups`, isolating failures by halves.
    fn run(
        &mut self,
        records: &[RecordRef<'_>],
        groups: &[KeyGroup],
        out: &mut BatchWriter,
    ) -> Result<(), OperatorError> {
        if groups.is_empty() {
            return Ok(());
        }
        let mut list = ListWriter::new();
        let mut order = Vec::new();
        {
            let mut shared = self.access.lock();
            let ns = self.value_ns();
            for g in groups {
                let mut batch = BatchWriter::new();
                for &i in &g.records {
                    batch.push_record(&records[i]);
                    order.push(i);
                }
                let value = shared.state.get(&ns, &g.state_key).map(|v| v.into_owned());
                list.process_group(record_key(&g.state_key), value.as_deref(), batch.finish().as_bytes());
            }
            shared.begin(groups.iter().map(|g| g.state_key.clone()));
        }
        let keys: Vec<Vec<u8>> = groups.iter().map(|g| g.state_key.clone()).collect();
        let mut produced = BatchWriter::new();
        let called = self.invoker.process(&list.finish());
        let result = self.within_budget(called).and_then(|p| {
            check_rejections(&p.rejected, order.len())?;
            self.apply(&p.results, &keys, &mut produced)?;
            Ok(p.rejected)
        });
        match result {
            Ok(rejected) => {
                for r in rejected {
                    self.ctx.dead_letter("rejected", &r.reason, &records[order[r.index as usize]])?;
                }
                for r in produced.finish().iter() {
                    out.push_record(&r);
                }
                Ok(())
            }
            Err(failure) => {
                self.access.lock().rollback();
                if matches!(failure, UdfFailure::Unavailable { .. }) || self.policy == ErrorPolicy::Fail {
                    return Err(self.failure(&failure));
                }
                StepMetrics::add(&self.ctx.metrics.failed_calls, 1);
                if groups.len() > 1 {
                    let (a, b) = groups.split_at(groups.len() / 2);
                    self.run(records, a, out)?;
                    return self.run(records, b, out);
                }
                let g = &groups[0];
                if g.records.len() > 1 {
                    let half = g.records.len() / 2;
                    let first = KeyGroup { state_key: g.state_key.clone(), records: g.records[..half].to_vec() };
                    let second = KeyGroup { state_key: g.state_key.clone(), records: g.records[half..].to_vec() };
                    self.run(records, std::slice::from_ref(&first), out)?;
                    return self.run(records, std::slice::from_ref(&second), out);
                }
                let reason = format!("{} (subtask {}) {failure}", self.invoker.name(), self.ctx.subtask);
                if self.ctx.metrics.warnings.admit(&self.ctx.label, "dead-letter warning") {
                    tracing::warn!(step = %self.ctx.label, "{}; the record goes to the dead-letter output", crate::log_budget::escape_controls(&reason));
                }
                self.ctx.dead_letter(failure.kind(), &reason, &records[g.records[0]])
            }
        }
    }

    /// One `on-timer` call for `fired` (key → timestamps), isolating failures by halves.
    fn fire(&mut self, fired: &[(Vec<u8>, Vec<Timestamp>)], out: &mut BatchWriter) -> Result<(), OperatorError> {
        if fired.is_empty() {
            return Ok(());
        }
        let mut list = ListWriter::new();
        {
            let mut shared = self.access.lock();
            let ns = self.value_ns();
            for (key, times) in fired {
                let value = shared.state.get(&ns, key).map(|v| v.into_owned());
                list.timer_group(record_key(key), value.as_deref(), times);
            }
            shared.begin(fired.iter().map(|(k, _)| k.clone()));
        }
        let keys: Vec<Vec<u8>> = fired.iter().map(|(k, _)| k.clone()).collect();
        let mut produced = BatchWriter::new();
        let called = self.invoker.on_timer(&list.finish());
        let result = self.within_budget(called).and_then(|results| self.apply(&results, &keys, &mut produced));
        match result {
            Ok(()) => {
                for r in produced.finish().iter() {
                    out.push_record(&r);
                }
                Ok(())
            }
            Err(failure) => {
                self.access.lock().rollback();
                if matches!(failure, UdfFailure::Unavailable { .. }) || self.policy == ErrorPolicy::Fail {
                    return Err(self.failure(&failure));
                }
                StepMetrics::add(&self.ctx.metrics.failed_calls, 1);
                if fired.len() > 1 {
                    let (a, b) = fired.split_at(fired.len() / 2);
                    self.fire(a, out)?;
                    return self.fire(b, out);
                }
                let (key, times) = &fired[0];
                let reason = format!(
                    "{} (subtask {}) {failure} in on-timer for the timers {times:?}; they are dropped",
                    self.invoker.name(),
                    self.ctx.subtask
                );
                let value = format!("timers {times:?}");
                let record = RecordRef {
                    timestamp: *times.last().unwrap_or(&0),
                    key: Some(record_key(key)),
                    value: value.as_bytes(),
                    raw_headers: &[],
                };
                self.ctx.dead_letter(failure.kind(), &reason, &record)
            }
        }
    }
}

impl Operator for Process {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let records: Vec<RecordRef<'_>> = batch.iter().collect();
        let mut groups: Vec<KeyGroup> = Vec::new();
        let mut index: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
        let mut sk = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let Some(k) = r.key else {
                self.ctx.dead_letter(
                    "missing_key",
                    "a keyed step received a record without a key (an earlier function dropped it?)",
                    r,
                )?;
                continue;
            };
            state_key(key_group(k, self.max_parallelism), k, &mut sk);
            let at = *index.entry(sk.clone()).or_insert_with(|| {
                groups.push(KeyGroup { state_key: sk.clone(), records: Vec::new() });
                groups.len() - 1
            });
            groups[at].records.push(i);
        }
        let mut produced = BatchWriter::new();
        self.run(&records, &groups, &mut produced)?;
        if !produced.is_empty() {
            out.push(produced.finish());
        }
        Ok(())
    }

    fn snapshot(&mut self, dir: &Path) -> Result<Option<OperatorState>, String> {
        self.save(dir)
    }

    fn restore(&mut self, from: &[RestoreFrom], key_groups: Range<u32>) -> Result<(), String> {
        self.load(from, key_groups)
    }

    fn state_failure(&self) -> Option<String> {
        self.access.lock().state.failure()
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        // After a restore, inputs may start below the saved watermark: it never goes back.
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        self.invoker.set_watermark(watermark);
        // Timers may register timers that are already due: fire until none is left.
        for _ in 0..1000 {
            if !self.fire_due(watermark, out)? {
                return Ok(());
            }
        }
        if watermark < Timestamp::MAX {
            tracing::warn!(step = %self.ctx.label, "timers kept registering due timers; the rest fire at the next watermark");
            return Ok(());
        }
        // The input ended and there is no next watermark: what is left is
        // reported rather than dropped silently.
        let left: Vec<(Timestamp, Vec<u8>)> = {
            let mut shared = self.access.lock();
            let left: Vec<_> = shared.timers.iter().cloned().collect();
            for (at, key) in &left {
                shared.remove_timer(*at, key);
            }
            left
        };
        let reason = format!(
            "on-timer kept registering due timers after 1000 rounds at the end of the input; {} timers were not fired",
            left.len()
        );
        tracing::warn!(step = %self.ctx.label, "{reason}");
        for (at, key) in &left {
            let value = format!("timer {at}");
            let record =
                RecordRef { timestamp: *at, key: Some(record_key(key)), value: value.as_bytes(), raw_headers: &[] };
            self.ctx.dead_letter("timer_loop", &reason, &record)?;
        }
        Ok(())
    }
}

impl Process {
    /// For [`Operator::snapshot`]: state and timers are in the backend; the watermark is the bookkeeping.
    fn save(&mut self, dir: &Path) -> Result<Option<OperatorState>, String> {
        let files = self.access.lock().state.snapshot(dir)?;
        Ok(Some(OperatorState { state: Some(files), meta: self.watermark.to_le_bytes().to_vec() }))
    }

    fn load(&mut self, from: &[RestoreFrom], key_groups: Range<u32>) -> Result<(), String> {
        let sources: Vec<_> = from.iter().filter_map(|f| f.state.clone()).collect();
        let mut shared = self.access.lock();
        shared.state.restore(&sources, key_groups)?;
        for f in from {
            let saved = f.meta.as_slice().try_into().map(i64::from_le_bytes).map_err(|_| "bad process bookkeeping")?;
            self.watermark = self.watermark.max(saved);
        }
        let mut timers = Vec::new();
        shared.state.for_each(&Namespace::keyed(self.operator, TIMERS), &mut |key, at| {
            for t in at.chunks_exact(8) {
                timers.push((i64::from_le_bytes(t.try_into().expect("8 bytes")), key.to_vec()));
            }
        });
        shared.timers.extend(timers);
        drop(shared);
        self.invoker.set_watermark(self.watermark);
        Ok(())
    }

    /// Fires the timers at or before `watermark`; whether there were any.
    fn fire_due(&mut self, watermark: Timestamp, out: &mut Vec<Batch>) -> Result<bool, OperatorError> {
        // Timers at or before the watermark, grouped by key, ascending.
        let mut due: Vec<(Vec<u8>, Vec<Timestamp>)> = Vec::new();
        {
            let mut shared = self.access.lock();
            let mut index: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
            while let Some((at, key)) = shared.timers.first().filter(|(at, _)| *at <= watermark).cloned() {
                shared.remove_timer(at, &key);
                let i = *index.entry(key.clone()).or_insert_with(|| {
                    due.push((key.clone(), Vec::new()));
                    due.len() - 1
                });
                due[i].1.push(at);
            }
        }
        if due.is_empty() {
            return Ok(false);
        }
        let mut produced = BatchWriter::new();
        self.fire(&due, &mut produced)?;
        if !produced.is_empty() {
            out.push(produced.finish());
        }
        Ok(true)
    }
}
