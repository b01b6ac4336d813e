//! Windows counted in records rather than time.
//!
//! - [`CountWindows`]: every `slide` records of a key, the aggregate of its
//!   last `size` records (Flink's `countWindow(size, slide)`; tumbling when
//!   `slide == size`). A key's last `size` records are kept in its state.
//! - [`GlobalWindows`]: one window per key that never closes; every `every`
//!   records it emits the aggregate of everything so far (Flink's
//!   `GlobalWindows` with a `CountTrigger`). `every: 1` is a rolling
//!   aggregate, as in the classic `keyBy(word).sum`.
//!
//! Results carry the timestamp of the record that triggered them. Count
//! windows ignore watermarks: nothing is ever late.

use super::aggregation::{Aggregation, Fired, Group};
use super::{restore_into, snapshot_with, WindowContext, WindowMeta};
use crate::operator::{Operator, OperatorError, OperatorState, RestoreFrom};
use crate::state::{record_key, state_key, Namespace, StateBackend};
use crate::types::{key_group, Batch, BatchRef, BatchWriter, RecordRef, TimeWindow, Timestamp};
use crate::window::CountSpec;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;

const ACC: u32 = 0;
const BUFFER: u32 = 1;
const COUNT: u32 = 2;

/// Records by state key, in order of first appearance.
type ByKey = Vec<(Vec<u8>, Vec<usize>)>;

/// Each key's records of a batch, in arrival order (records refused by the
/// aggregate's field extraction are dead-lettered here).
fn by_key(records: &[RecordRef<'_>], aggregation: &Aggregation, cx: &WindowContext) -> Result<ByKey, OperatorError> {
    let mut keys: ByKey = Vec::new();
    let mut index: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
    let mut skey = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let Some(k) = r.key else {
            cx.missing_key(r)?;
            continue;
        };
        if let Err(reason) = aggregation.value_of(r) {
            cx.step.dead_letter("invalid_input", &reason, r)?;
            continue;
        }
        state_key(key_group(k, cx.max_parallelism), k, &mut skey);
        let at = *index.entry(skey.clone()).or_insert_with(|| {
            keys.push((skey.clone(), Vec::new()));
            keys.len() - 1
        });
        keys[at].1.push(i);
    }
    Ok(keys)
}

/// How a count or global window that fired at `ts` is named to aggregators
/// (see `window` in `wit/types.wit`): no start, and `end - 1 = ts`.
fn fired_window(ts: i64) -> TimeWindow {
    TimeWindow { start: i64::MIN, end: ts.saturating_add(1) }
}

fn read_count(state: &dyn StateBackend, ns: &Namespace, key: &[u8]) -> u64 {
    state.get(ns, key).map_or(0, |b| u64::from_le_bytes(b[..8].try_into().expect("8 bytes")))
}

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
    aggregation.finish(fired, false, &mut batch, &cx.step)?;
    if !batch.is_empty() {
        out.push(batch.finish());
    }
    Ok(())
}

/// A count window step's subtask.
pub struct CountWindows {
    spec: CountSpec,
    aggregation: Aggregation,
    pub(super) state: Box<dyn StateBackend>,
    cx: WindowContext,
}

impl CountWindows {
    /// Windows of `spec.size` records firing every `spec.slide` records.
    pub fn new(spec: CountSpec, aggregation: Aggregation, state: Box<dyn StateBackend>, cx: WindowContext) -> Self {
        CountWindows { spec, aggregation, state, cx }
    }
}

impl Operator for CountWindows {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.aggregation.begin_batch();
        let records: Vec<RecordRef<'_>> = batch.iter().collect();
        let buffer_ns = Namespace::keyed(self.cx.operator, BUFFER);
        let count_ns = Namespace::keyed(self.cx.operator, COUNT);
        let keys = by_key(&records, &self.aggregation, &self.cx)?;
        // The buffered records of every key in the batch, keyed again (the
        // buffer stores values only).
        let mut pool = BatchWriter::new();
        let mut buffered = Vec::with_capacity(keys.len());
        for (key, _) in &keys {
            let before = pool.len();
            if let Some(b) = self.state.get(&buffer_ns, key) {
                if let Ok(b) = BatchRef::parse(&b) {
                    for r in b.iter() {
                        pool.push(r.timestamp, Some(record_key(key)), r.value);
                    }
                }
            }
            buffered.push(before..pool.len());
        }
        let pool = pool.finish();
        // Every record by one index: buffered ones first, then the batch's,
        // so a record in several firings is the same record to `add` (and is
        // dead-lettered once).
        let all: Vec<RecordRef<'_>> = pool.iter().chain(records.iter().cloned()).collect();
        let offset = pool.len();
        let mut groups = Vec::new();
        let mut stamps = Vec::new();
        let mut windows = Vec::with_capacity(keys.len());
        for ((key, idxs), buffered) in keys.iter().zip(buffered) {
            let mut window: VecDeque<usize> = buffered.collect();
            let mut count = read_count(self.state.as_ref(), &count_ns, key);
            for &i in idxs {
                window.push_back(offset + i);
                if window.len() as u64 > self.spec.size {
                    window.pop_front();
                }
                count += 1;
                if count.is_multiple_of(self.spec.slide) {
                    groups.push(Group {
                        state_key: key.clone(),
                        window: TimeWindow::GLOBAL,
                        acc: None,
                        records: window.iter().copied().collect(),
                    });
                    stamps.push(records[i].timestamp);
                    if self.spec.slide == self.spec.size {
                        window.clear();
                    }
                }
            }
            self.state.put(&count_ns, key, &count.to_le_bytes());
            windows.push(window);
        }
        // One `add` over every firing (each from an empty accumulator), then one `finish`.
        if !groups.is_empty() {
            self.aggregation.add(&all, &mut groups, &self.cx.step)?;
        }
        // Records the aggregator refused leave the buffer, so later firings
        // do not meet (and dead-letter) them again.
        let refused: FxHashSet<usize> = self.aggregation.lettered().into_iter().collect();
        for ((key, _), window) in keys.iter().zip(windows) {
            let mut w = BatchWriter::new();
            for i in window.into_iter().filter(|i| !refused.contains(i)) {
                w.push(all[i].timestamp, None, all[i].value);
            }
            self.state.put(&buffer_ns, key, &w.into_vec());
        }
        let fired: Vec<Fired> = groups
            .into_iter()
            .zip(stamps)
            .filter_map(|(g, ts)| {
                g.acc.map(|acc| Fired { state_key: g.state_key, window: fired_window(ts), acc, timestamp: ts })
            })
            .collect();
        drop(all);
        drop(records);
        emit(&mut self.aggregation, &fired, out, &self.cx)
    }

    fn on_watermark(&mut self, watermark: Timestamp, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.aggregation.set_watermark(watermark);
        Ok(())
    }

    fn snapshot(&mut self, dir: &Path) -> Result<Option<OperatorState>, String> {
        snapshot_with(self.state.as_mut(), dir, &WindowMeta::default())
    }

    fn restore(&mut self, from: &[RestoreFrom], key_groups: Range<u32>) -> Result<(), String> {
        restore_into(self.state.as_mut(), from, key_groups).map(|_| ())
    }

    fn state_failure(&self) -> Option<String> {
        self.state.failure()
    }
}

/// A global window step's subtask (one window per key, fired every `every` records).
pub struct GlobalWindows {
    every: u64,
    aggregation: Aggregation,
    pub(super) state: Box<dyn StateBackend>,
    cx: WindowContext,
}

impl GlobalWindows {
    /// Fires each key's aggregate every `every` records.
    pub fn new(every: u64, aggregation: Aggregation, state: Box<dyn StateBackend>, cx: WindowContext) -> Self {
        GlobalWindows { every, aggregation, state, cx }
    }
}

impl Operator for GlobalWindows {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.aggregation.begin_batch();
        let records: Vec<RecordRef<'_>> = batch.iter().collect();
        let acc_ns = Namespace::window(self.cx.operator, ACC, TimeWindow::GLOBAL);
        let count_ns = Namespace::keyed(self.cx.operator, COUNT);
        // Per key, its records cut after every firing: segment i of a key
        // starts from the accumulator segment i-1 produced, so segments are
        // added in rounds (one `add` call per round, every key at once).
        struct KeyRun {
            key: Vec<u8>,
            acc: Option<Vec<u8>>,
            count: u64,
            segments: Vec<Vec<usize>>,
        }
        let mut runs = Vec::new();
        for (key, idxs) in by_key(&records, &self.aggregation, &self.cx)? {
            let count = read_count(self.state.as_ref(), &count_ns, &key);
            let mut segments = vec![Vec::new()];
            let mut c = count;
            for i in idxs {
                segments.last_mut().expect("one segment").push(i);
                c += 1;
                if c.is_multiple_of(self.every) {
                    segments.push(Vec::new());
                }
            }
            if segments.last().is_some_and(Vec::is_empty) {
                segments.pop();
            }
            let acc = self.state.get(&acc_ns, &key).map(|a| a.into_owned());
            runs.push(KeyRun { key, acc, count, segments });
        }
        let mut fired = Vec::new();
        let rounds = runs.iter().map(|r| r.segments.len()).max().unwrap_or(0);
        for round in 0..rounds {
            let members: Vec<usize> = (0..runs.len()).filter(|&i| round < runs[i].segments.len()).collect();
            let mut groups: Vec<Group> = members
                .iter()
                .map(|&i| Group {
                    state_key: runs[i].key.clone(),
                    window: TimeWindow::GLOBAL,
                    acc: runs[i].acc.take(),
                    records: runs[i].segments[round].clone(),
                })
                .collect();
            self.aggregation.add(&records, &mut groups, &self.cx.step)?;
            for (&i, g) in members.iter().zip(groups) {
                let run = &mut runs[i];
                run.acc = g.acc;
                run.count += g.records.len() as u64;
                if run.count.is_multiple_of(self.every) {
                    if let Some(acc) = &run.acc {
                        let ts = records[*g.records.last().expect("non-empty segment")].timestamp;
                        fired.push(Fired {
                            state_key: run.key.clone(),
                            window: fired_window(ts),
                            acc: acc.clone(),
                            timestamp: ts,
                        });
                    }
                }
            }
        }
        for run in &runs {
            if let Some(acc) = &run.acc {
                self.state.put(&acc_ns, &run.key, acc);
            }
            self.state.put(&count_ns, &run.key, &run.count.to_le_bytes());
        }
        drop(records);
        emit(&mut self.aggregation, &fired, out, &self.cx)
    }

    fn on_watermark(&mut self, watermark: Timestamp, _out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        self.aggregation.set_watermark(watermark);
        Ok(())
    }

    fn snapshot(&mut self, dir: &Path) -> Result<Option<OperatorState>, String> {
        snapshot_with(self.state.as_mut(), dir, &WindowMeta::default())
    }

    fn restore(&mut self, from: &[RestoreFrom], key_groups: Range<u32>) -> Result<(), String> {
        restore_into(self.state.as_mut(), from, key_groups).map(|_| ())
    }

    fn state_failure(&self) -> Option<String> {
        self.state.failure()
    }
}
