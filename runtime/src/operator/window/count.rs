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
use super::WindowContext;
use crate::operator::{Operator, OperatorError};
use crate::state::{state_key, Namespace, StateBackend};
use crate::types::{key_group, Batch, BatchRef, BatchWriter, RecordRef, TimeWindow};
use crate::window::CountSpec;
use rustc_hash::FxHashMap;

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
        let records: Vec<RecordRef<'_>> = batch.iter().collect();
        let buffer_ns = Namespace::keyed(self.cx.operator, BUFFER);
        let count_ns = Namespace::keyed(self.cx.operator, COUNT);
        // Every firing: its key, the records of its window (as a batch), the trigger's timestamp.
        let mut firings: Vec<(Vec<u8>, Vec<u8>, i64)> = Vec::new();
        for (key, idxs) in by_key(&records, &self.aggregation, &self.cx)? {
            let mut window: Vec<(i64, Vec<u8>)> = match self.state.get(&buffer_ns, &key) {
                Some(b) => BatchRef::parse(&b)
                    .map(|b| b.iter().map(|r| (r.timestamp, r.value.to_vec())).collect())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let mut count = read_count(self.state.as_ref(), &count_ns, &key);
            for i in idxs {
                let r = &records[i];
                window.push((r.timestamp, r.value.to_vec()));
                if window.len() as u64 > self.spec.size {
                    window.remove(0);
                }
                count += 1;
                if count.is_multiple_of(self.spec.slide) {
                    let mut w = BatchWriter::new();
                    for (ts, v) in &window {
                        w.push(*ts, r.key, v);
                    }
                    firings.push((key.clone(), w.into_vec(), r.timestamp));
                    if self.spec.slide == self.spec.size {
                        window.clear();
                    }
                }
            }
            let mut w = BatchWriter::new();
            for (ts, v) in &window {
                w.push(*ts, None, v);
            }
            self.state.put(&buffer_ns, &key, &w.into_vec());
            self.state.put(&count_ns, &key, &count.to_le_bytes());
        }
        if firings.is_empty() {
            return Ok(());
        }
        // One `add` over every firing (each from an empty accumulator), then one `finish`.
        let batches: Vec<BatchRef<'_>> =
            firings.iter().map(|(_, b, _)| BatchRef::parse(b).expect("written above")).collect();
        let window_records: Vec<RecordRef<'_>> = batches.iter().flat_map(|b| b.iter()).collect();
        let mut groups = Vec::with_capacity(firings.len());
        let mut next = 0;
        for ((key, _, _), b) in firings.iter().zip(&batches) {
            groups.push(Group {
                state_key: key.clone(),
                window: TimeWindow::GLOBAL,
                acc: None,
                records: (next..next + b.len()).collect(),
            });
            next += b.len();
        }
        self.aggregation.add(&window_records, &mut groups, &self.cx.step)?;
        let fired: Vec<Fired> = groups
            .into_iter()
            .zip(&firings)
            .filter_map(|(g, (_, _, ts))| {
                g.acc.map(|acc| Fired { state_key: g.state_key, window: fired_window(*ts), acc, timestamp: *ts })
            })
            .collect();
        emit(&mut self.aggregation, &fired, out, &self.cx)
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
}
