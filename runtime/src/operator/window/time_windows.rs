//! Tumbling and sliding windows on a keyed stream.
//!
//! Accumulators live in the state backend, one namespace per window, so
//! firing a window reads exactly its keys and cleaning it up drops one
//! namespace. `active` remembers which windows hold state and whether they
//! fired. In event time, windows fire when the watermark reaches their last
//! millisecond and are cleaned up `allowed_lateness` later; a record that
//! updates a window that already fired makes it fire again for that key
//! (once per batch). In processing time, records go to the windows of the
//! current clock and windows fire when the clock passes them.

use super::aggregation::{Aggregation, Fired, Group};
use super::{restore_into, snapshot_with, TimeDomain, WindowContext, WindowMeta};
use crate::operator::{Operator, OperatorError, OperatorState, RestoreFrom};
use crate::state::{record_key, state_key, Namespace, StateBackend};
use crate::types::{key_group, Batch, BatchWriter, RecordRef, TimeWindow, Timestamp};
use crate::window::{fires, is_record_late, is_window_late, Assigner};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

/// The accumulator state of a window.
const ACC: u32 = 0;

/// A tumbling or sliding window step's subtask.
pub struct TimeWindows {
    assigner: Assigner,
    aggregation: Aggregation,
    pub(super) state: Box<dyn StateBackend>,
    cx: WindowContext,
    /// Windows holding state, by (last millisecond, start), and whether they fired.
    active: BTreeMap<(Timestamp, Timestamp), bool>,
    watermark: Timestamp,
    windows: Vec<TimeWindow>,
}

impl TimeWindows {
    /// A step assigning by `assigner` and aggregating with `aggregation`.
    pub fn new(assigner: Assigner, aggregation: Aggregation, state: Box<dyn StateBackend>, cx: WindowContext) -> Self {
        TimeWindows {
            assigner,
            aggregation,
            state,
            cx,
            active: BTreeMap::new(),
            watermark: Timestamp::MIN,
            windows: Vec::new(),
        }
    }

    fn ns(&self, w: TimeWindow) -> Namespace {
        Namespace::window(self.cx.operator, ACC, w)
    }

    /// The time records are assigned by, and the time windows are judged by.
    fn clock(&self) -> (Option<Timestamp>, Timestamp) {
        match &self.cx.domain {
            TimeDomain::Event => (None, self.watermark),
            TimeDomain::Processing(clock) => {
                let now = clock();
                (Some(now), Timestamp::MIN)
            }
        }
    }

    /// Emits the current result of each (window, key) in `refire`.
    fn refire(&mut self, refire: BTreeSet<(TimeWindow, Vec<u8>)>, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let mut fired = Vec::with_capacity(refire.len());
        for (w, key) in refire {
            if let Some(acc) = self.state.get(&self.ns(w), &key) {
                fired.push(Fired { acc: acc.into_owned(), state_key: key, window: w, timestamp: w.max_timestamp() });
            }
        }
        emit(&mut self.aggregation, &fired, out, &self.cx)
    }

    /// Fires every window whose last millisecond is at or before `time`, and
    /// drops windows past cleanup.
    fn advance(&mut self, time: Timestamp, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let lateness = match self.cx.domain {
            TimeDomain::Event => self.cx.allowed_lateness,
            TimeDomain::Processing(_) => 0,
        };
        let mut fired = Vec::new();
        let mut gone = Vec::new();
        let mut direct = BatchWriter::new();
        for (&(max_ts, start), done) in self.active.range_mut(..=(time, Timestamp::MAX)) {
            let w = TimeWindow { start, end: max_ts + 1 };
            let ns = Namespace::window(self.cx.operator, ACC, w);
            if !*done {
                *done = true;
                match &self.aggregation {
                    // Builtins format straight from state.
                    Aggregation::Builtin(b) => self.state.for_each(&ns, &mut |key, acc| {
                        let k = record_key(key);
                        direct.push_with(max_ts, Some(k), |v| b.format(k, Some(w), acc, v));
                    }),
                    Aggregation::Udf(_) => self.state.for_each(&ns, &mut |key, acc| {
                        fired.push(Fired { state_key: key.to_vec(), window: w, acc: acc.to_vec(), timestamp: max_ts })
                    }),
                }
            }
            if is_window_late(&w, lateness, time) {
                gone.push((max_ts, start));
            }
        }
        if !direct.is_empty() {
            out.push(direct.finish());
        }
        emit(&mut self.aggregation, &fired, out, &self.cx)?;
        for (max_ts, start) in gone {
            self.active.remove(&(max_ts, start));
            self.state.drop_namespace(&Namespace::window(self.cx.operator, ACC, TimeWindow { start, end: max_ts + 1 }));
        }
        Ok(())
    }
}

/// Finishes `fired` into one output batch.
fn emit(
    aggregation: &mut Aggregation,
    fired: &[Fired],
    out: &mut Vec<Batch>,
    cx: &WindowContext,
) -> Result<(), OperatorError> {
    if fired.is_empty() {
        return Ok(());
    }
    let mut batch = BatchWriter::with_capacity(fired.len() * 48);
    aggregation.finish(fired, true, &mut batch, &cx.step)?;
    if !batch.is_empty() {
        out.push(batch.finish());
    }
    Ok(())
}

impl Operator for TimeWindows {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.aggregation.begin_batch();
        let (now, watermark) = self.clock();
        let lateness = self.cx.allowed_lateness;
        let event_time = now.is_none();
        let records: Vec<RecordRef<'_>> = batch.iter().collect();
        let mut key = Vec::with_capacity(32);
        let mut refire = BTreeSet::new();
        // Groups of (window, key) for a WebAssembly aggregator; builtins fold in place.
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: FxHashMap<(TimeWindow, Vec<u8>), usize> = FxHashMap::default();
        // Groups of windows already due: they re-fire if their accumulator changes.
        let mut due_groups: Vec<usize> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let Some(k) = r.key else {
                self.cx.missing_key(r)?;
                continue;
            };
            if self.cx.out_of_range(r)? {
                continue;
            }
            let value = match self.aggregation.value_of(r) {
                Ok(v) => v,
                Err(reason) => {
                    self.cx.step.dead_letter("invalid_input", &reason, r)?;
                    continue;
                }
            };
            state_key(key_group(k, self.cx.max_parallelism), k, &mut key);
            let ts = now.unwrap_or(r.timestamp);
            self.windows.clear();
            self.assigner.assign(ts, &mut self.windows);
            let mut placed = false;
            for &w in &self.windows {
                if event_time && is_window_late(&w, lateness, watermark) {
                    continue;
                }
                placed = true;
                // A window that is already due (a late record within the allowed
                // lateness) fires right away, as Flink's EventTimeTrigger does.
                let due = event_time && fires(&w, watermark);
                self.active.entry((w.max_timestamp(), w.start)).or_insert(due);
                match &self.aggregation {
                    Aggregation::Builtin(b) => {
                        if due {
                            refire.insert((w, key.clone()));
                        }
                        let ns = Namespace::window(self.cx.operator, ACC, w);
                        self.state.modify(&ns, &key, &mut |acc, existed| b.add(acc, existed, value));
                    }
                    Aggregation::Udf(_) => {
                        let at = *group_of.entry((w, key.clone())).or_insert_with(|| {
                            groups.push(Group { state_key: key.clone(), window: w, acc: None, records: Vec::new() });
                            if due {
                                due_groups.push(groups.len() - 1);
                            }
                            groups.len() - 1
                        });
                        groups[at].records.push(i);
                    }
                }
            }
            if !placed && is_record_late(ts, lateness, watermark) {
                self.cx.late(r, watermark)?;
            }
        }
        if !groups.is_empty() {
            for g in &mut groups {
                g.acc = self.state.get(&self.ns(g.window), &g.state_key).map(|a| a.into_owned());
            }
            let before: Vec<Option<Vec<u8>>> = due_groups.iter().map(|&g| groups[g].acc.clone()).collect();
            self.aggregation.add(&records, &mut groups, &self.cx.step)?;
            for g in &groups {
                if let Some(acc) = &g.acc {
                    self.state.put(&self.ns(g.window), &g.state_key, acc);
                }
            }
            // A due window whose records were all refused has nothing new to say.
            for (&g, before) in due_groups.iter().zip(before) {
                if groups[g].acc != before {
                    refire.insert((groups[g].window, groups[g].state_key.clone()));
                }
            }
        }
        drop(records);
        self.refire(refire, out)
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.aggregation.set_watermark(watermark);
        match self.cx.event_time_advance(&mut self.watermark, watermark) {
            Some(t) => self.advance(t, out),
            None => Ok(()),
        }
    }

    fn on_tick(&mut self, now: Timestamp, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        match self.cx.processing_time_advance(now) {
            Some(t) => self.advance(t, out),
            None => Ok(()),
        }
    }

    fn on_end(&mut self, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        // Processing-time windows still open when the input ends fire now.
        self.on_tick(Timestamp::MAX, out)
    }

    fn wants_ticks(&self) -> bool {
        self.cx.wants_ticks()
    }

    fn snapshot(&mut self, dir: &Path) -> Result<Option<OperatorState>, String> {
        let active = self.active.iter().map(|(&(max_ts, start), &fired)| (max_ts, start, fired)).collect();
        let meta = WindowMeta { watermark: self.watermark, active, panes: Vec::new() };
        snapshot_with(self.state.as_mut(), dir, &meta)
    }

    fn restore(&mut self, from: &[RestoreFrom], key_groups: Range<u32>) -> Result<(), String> {
        for meta in restore_into(self.state.as_mut(), from, key_groups)? {
            self.watermark = self.watermark.max(meta.watermark);
            for (max_ts, start, fired) in meta.active {
                *self.active.entry((max_ts, start)).or_insert(fired) |= fired;
            }
        }
        Ok(())
    }

    fn state_failure(&self) -> Option<String> {
        self.state.failure()
    }
}
