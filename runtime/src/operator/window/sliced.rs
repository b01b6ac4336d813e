//! Sliding windows with a builtin aggregate, computed from panes.
//!
//! A sliding window of `size` every `slide` (with `size` a multiple of
//! `slide`) is the union of `size / slide` panes of length `slide`. Builtin
//! aggregates merge, so each record updates the one pane it falls in,
//! instead of every window it belongs to (six for a minute sliding every 10
//! seconds); a window that fires merges its panes, reading each pane's
//! entries in order. The results are those of [`super::TimeWindows`]:
//! lateness is judged per window exactly as there (a record contributes to a
//! pane only if one of its windows is still open, and windows already cleaned
//! up never fire again), and a late update re-fires the open windows
//! containing it for that key.

use super::builtin::Builtin;
use super::{restore_into, snapshot_with, TimeDomain, WindowContext, WindowMeta};
use crate::operator::{Operator, OperatorError, OperatorState, RestoreFrom};
use crate::state::{record_key, state_key, Namespace, StateBackend, StateValue};
use crate::types::{key_group, Batch, BatchWriter, TimeWindow, Timestamp};
use crate::window::{fires, is_record_late, is_window_late};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

/// The accumulator state of a pane.
const PANE: u32 = 1;

/// A sliding window step's subtask, aggregating panes.
pub struct SlicedWindows {
    size: i64,
    slide: i64,
    offset: i64,
    builtin: Builtin,
    pub(super) state: Box<dyn StateBackend>,
    cx: WindowContext,
    /// Windows that may fire, by (last millisecond, start), and whether they fired.
    active: BTreeMap<(Timestamp, Timestamp), bool>,
    /// Starts of the panes holding state.
    panes: BTreeSet<Timestamp>,
    watermark: Timestamp,
}

impl SlicedWindows {
    /// Windows of `size` ms every `slide` ms (`size` a multiple of `slide`).
    pub fn new(
        size: i64,
        slide: i64,
        offset: i64,
        builtin: Builtin,
        state: Box<dyn StateBackend>,
        cx: WindowContext,
    ) -> Self {
        assert!(size % slide == 0, "panes need size to be a multiple of slide");
        SlicedWindows {
            size,
            slide,
            offset,
            builtin,
            state,
            cx,
            active: BTreeMap::new(),
            panes: BTreeSet::new(),
            watermark: Timestamp::MIN,
        }
    }

    fn pane_ns(&self, start: Timestamp) -> Namespace {
        Namespace::window(self.cx.operator, PANE, TimeWindow { start, end: start + self.slide })
    }

    fn lateness(&self) -> i64 {
        match self.cx.domain {
            TimeDomain::Event => self.cx.allowed_lateness,
            TimeDomain::Processing(_) => 0,
        }
    }

    /// The result of `key` in `window`: its panes merged.
    fn merged(&self, window: TimeWindow, key: &[u8]) -> Option<StateValue> {
        let mut acc: Option<StateValue> = None;
        for p in (window.start..window.end).step_by(self.slide as usize) {
            if let Some(v) = self.state.get(&self.pane_ns(p), key) {
                match &mut acc {
                    None => acc = Some(StateValue::from_slice(&v)),
                    Some(a) => self.builtin.merge_into(a, &v),
                }
            }
        }
        acc
    }

    /// Fires every window whose last millisecond is at or before `time`;
    /// drops windows and panes past cleanup.
    fn advance(&mut self, time: Timestamp, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let lateness = self.lateness();
        let mut batch = BatchWriter::new();
        let mut gone = Vec::new();
        let due: Vec<(Timestamp, Timestamp)> = self.active.range(..=(time, Timestamp::MAX)).map(|(w, _)| *w).collect();
        for (max_ts, start) in due {
            let w = TimeWindow { start, end: max_ts + 1 };
            if !self.active[&(max_ts, start)] {
                self.active.insert((max_ts, start), true);
                let mut result: FxHashMap<Vec<u8>, StateValue> = FxHashMap::default();
                for p in (w.start..w.end).step_by(self.slide as usize) {
                    let b = &self.builtin;
                    self.state.for_each(&self.pane_ns(p), &mut |key, acc| match result.get_mut(key) {
                        Some(r) => b.merge_into(r, acc),
                        None => {
                            result.insert(key.to_vec(), StateValue::from_slice(acc));
                        }
                    });
                }
                for (key, acc) in &result {
                    let k = record_key(key);
                    batch.push_with(max_ts, Some(k), |v| self.builtin.format(k, Some(w), acc, v));
                }
            }
            if is_window_late(&w, lateness, time) {
                gone.push((max_ts, start));
            }
        }
        for w in gone {
            self.active.remove(&w);
        }
        // A pane is needed until the last window containing it, [p, p + size), is cleaned up.
        while let Some(&p) = self
            .panes
            .first()
            .filter(|&&p| is_window_late(&TimeWindow { start: p, end: p + self.size }, lateness, time))
        {
            self.panes.remove(&p);
            self.state.drop_namespace(&self.pane_ns(p));
        }
        if !batch.is_empty() {
            out.push(batch.finish());
        }
        Ok(())
    }
}

impl Operator for SlicedWindows {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let now = match &self.cx.domain {
            TimeDomain::Event => None,
            TimeDomain::Processing(clock) => Some(clock()),
        };
        let watermark = if now.is_some() { Timestamp::MIN } else { self.watermark };
        let lateness = self.cx.allowed_lateness;
        let mut key = Vec::with_capacity(32);
        let mut refire: BTreeSet<(TimeWindow, Vec<u8>)> = BTreeSet::new();
        for r in batch.iter() {
            let Some(k) = r.key else {
                self.cx.missing_key(&r)?;
                continue;
            };
            if self.cx.out_of_range(&r)? {
                continue;
            }
            let value = match self.builtin.value_of(r.value) {
                Ok(v) => v,
                Err(reason) => {
                    self.cx.step.dead_letter("invalid_input", &reason, &r)?;
                    continue;
                }
            };
            state_key(key_group(k, self.cx.max_parallelism), k, &mut key);
            let ts = now.unwrap_or(r.timestamp);
            let pane = ts - (ts - self.offset).rem_euclid(self.slide);
            let mut placed = false;
            let mut start = pane;
            while start > pane - self.size {
                let w = TimeWindow { start, end: start + self.size };
                start -= self.slide;
                if now.is_none() && is_window_late(&w, lateness, watermark) {
                    continue;
                }
                placed = true;
                let due = now.is_none() && fires(&w, watermark);
                self.active.entry((w.max_timestamp(), w.start)).or_insert(due);
                if due {
                    refire.insert((w, key.clone()));
                }
            }
            if placed {
                let b = &self.builtin;
                self.state.modify(&self.pane_ns(pane), &key, &mut |acc, existed| b.add(acc, existed, value));
                self.panes.insert(pane);
            } else if is_record_late(ts, lateness, watermark) {
                self.cx.late(&r, watermark)?;
            }
        }
        if !refire.is_empty() {
            let mut batch = BatchWriter::new();
            for (w, key) in refire {
                if let Some(acc) = self.merged(w, &key) {
                    let k = record_key(&key);
                    batch.push_with(w.max_timestamp(), Some(k), |v| self.builtin.format(k, Some(w), &acc, v));
                }
            }
            out.push(batch.finish());
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Timestamp, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
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
        let meta = WindowMeta { watermark: self.watermark, active, panes: self.panes.iter().copied().collect() };
        snapshot_with(self.state.as_mut(), dir, &meta)
    }

    fn restore(&mut self, from: &[RestoreFrom], key_groups: Range<u32>) -> Result<(), String> {
        for meta in restore_into(self.state.as_mut(), from, key_groups)? {
            self.watermark = self.watermark.max(meta.watermark);
            for (max_ts, start, fired) in meta.active {
                *self.active.entry((max_ts, start)).or_insert(fired) |= fired;
            }
            self.panes.extend(meta.panes);
        }
        Ok(())
    }

    fn state_failure(&self) -> Option<String> {
        self.state.failure()
    }
}
