//! Session windows: per key, records closer than `gap` belong to one session.
//!
//! A key's sessions are stored in its keyed state (`SESSIONS`); each
//! session's accumulator in the namespace of its window. For a batch, each
//! key's records are merged into its sessions first (pure bookkeeping);
//! then every session that received records gets one group in a single
//! `add` call, starting from the merge of the accumulators of the sessions
//! it absorbed. Sessions fire when the watermark reaches their last
//! millisecond (timers in `fire_at`) and are dropped `allowed_lateness`
//! later (`cleanup_at`).

use super::aggregation::{Aggregation, Fired, Group};
use super::{restore_into, snapshot_with, TimeDomain, WindowContext, WindowMeta};
use crate::operator::{Operator, OperatorError, OperatorState, RestoreFrom};
use crate::state::{state_key, Namespace, StateBackend};
use crate::types::{key_group, Batch, BatchWriter, RecordRef, TimeWindow, Timestamp};
use crate::window::{fires, is_window_late, Sessions};
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

const ACC: u32 = 0;
const SESSIONS: u32 = 1;

/// A session window step's subtask.
pub struct SessionWindows {
    gap: i64,
    aggregation: Aggregation,
    pub(super) state: Box<dyn StateBackend>,
    cx: WindowContext,
    /// Sessions not yet fired: (last millisecond, state key, start).
    fire_at: BTreeSet<(Timestamp, Vec<u8>, Timestamp)>,
    /// Sessions fired and waiting for cleanup: (cleanup time, state key, start, end).
    cleanup_at: BTreeSet<(Timestamp, Vec<u8>, Timestamp, Timestamp)>,
    watermark: Timestamp,
}

impl SessionWindows {
    /// Sessions separated by `gap` ms of inactivity.
    pub fn new(gap: i64, aggregation: Aggregation, state: Box<dyn StateBackend>, cx: WindowContext) -> Self {
        SessionWindows {
            gap,
            aggregation,
            state,
            cx,
            fire_at: BTreeSet::new(),
            cleanup_at: BTreeSet::new(),
            watermark: Timestamp::MIN,
        }
    }

    fn acc_ns(&self, w: TimeWindow) -> Namespace {
        Namespace::window(self.cx.operator, ACC, w)
    }

    fn sessions_ns(&self) -> Namespace {
        Namespace::keyed(self.cx.operator, SESSIONS)
    }

    fn lateness(&self) -> i64 {
        match self.cx.domain {
            TimeDomain::Event => self.cx.allowed_lateness,
            TimeDomain::Processing(_) => 0,
        }
    }

    fn forget_timers(&mut self, key: &[u8], w: TimeWindow) {
        self.fire_at.remove(&(w.max_timestamp(), key.to_vec(), w.start));
        self.cleanup_at.remove(&(w.max_timestamp().saturating_add(self.lateness()), key.to_vec(), w.start, w.end));
    }

    /// Fires due sessions and drops those past cleanup, at `time`.
    fn advance(&mut self, time: Timestamp, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let mut fired = Vec::new();
        while let Some(first) = self.fire_at.first().filter(|(t, _, _)| *t <= time).cloned() {
            self.fire_at.remove(&first);
            let (max_ts, key, start) = first;
            let w = TimeWindow { start, end: max_ts + 1 };
            if let Some(acc) = self.state.get(&self.acc_ns(w), &key) {
                fired.push(Fired { state_key: key.clone(), window: w, acc: acc.into_owned(), timestamp: max_ts });
            }
            self.cleanup_at.insert((max_ts.saturating_add(self.lateness()), key, start, w.end));
        }
        emit(&mut self.aggregation, &fired, out, &self.cx)?;
        while let Some(first) = self.cleanup_at.first().filter(|(t, ..)| *t <= time).cloned() {
            self.cleanup_at.remove(&first);
            let (_, key, start, end) = first;
            let w = TimeWindow { start, end };
            self.state.delete(&self.acc_ns(w), &key);
            self.forget_sessions(&key, &[w]);
        }
        Ok(())
    }

    /// Removes `windows` from the sessions of `key`.
    fn forget_sessions(&mut self, key: &[u8], windows: &[TimeWindow]) {
        let ns = self.sessions_ns();
        let mut sessions = self.state.get(&ns, key).map(|b| Sessions::decode(&b)).unwrap_or_default();
        for w in windows {
            sessions.remove(w);
        }
        if sessions.is_empty() {
            self.state.delete(&ns, key);
        } else {
            let mut bytes = Vec::new();
            sessions.encode(&mut bytes);
            self.state.put(&ns, key, &bytes);
        }
    }
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
    aggregation.finish(fired, true, &mut batch, &cx.step)?;
    if !batch.is_empty() {
        out.push(batch.finish());
    }
    Ok(())
}

impl Operator for SessionWindows {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let now = match &self.cx.domain {
            TimeDomain::Event => None,
            TimeDomain::Processing(clock) => Some(clock()),
        };
        let watermark = if now.is_some() { Timestamp::MIN } else { self.watermark };
        let lateness = self.lateness();
        self.aggregation.begin_batch();
        let records: Vec<RecordRef<'_>> = batch.iter().collect();

        // Each key's records, in arrival order.
        let mut keys: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
        let mut index: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
        let mut skey = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let Some(k) = r.key else {
                self.cx.missing_key(r)?;
                continue;
            };
            if self.cx.out_of_range(r)? {
                continue;
            }
            if let Err(reason) = self.aggregation.value_of(r) {
                self.cx.step.dead_letter("invalid_input", &reason, r)?;
                continue;
            }
            state_key(key_group(k, self.cx.max_parallelism), k, &mut skey);
            let at = *index.entry(skey.clone()).or_insert_with(|| {
                keys.push((skey.clone(), Vec::new()));
                keys.len() - 1
            });
            keys[at].1.push(i);
        }

        let mut groups = Vec::new();
        for (key, idxs) in keys {
            let ns = self.sessions_ns();
            let mut sessions = self.state.get(&ns, &key).map(|b| Sessions::decode(&b)).unwrap_or_default();
            let before: Vec<TimeWindow> = sessions.windows().to_vec();
            let mut placed: Vec<(usize, TimeWindow)> = Vec::new();
            for i in idxs {
                let ts = now.unwrap_or(records[i].timestamp);
                let w = TimeWindow { start: ts, end: ts.saturating_add(self.gap) };
                if now.is_none() && !sessions.touches(&w) && is_window_late(&w, lateness, watermark) {
                    self.cx.late(&records[i], watermark)?;
                    continue;
                }
                sessions.add(w);
                placed.push((i, w));
            }
            if placed.is_empty() {
                continue;
            }
            for &s in sessions.windows() {
                let members: Vec<TimeWindow> =
                    before.iter().copied().filter(|b| s.start <= b.start && b.end <= s.end).collect();
                let recs: Vec<usize> =
                    placed.iter().filter(|(_, w)| s.start <= w.start && w.end <= s.end).map(|(i, _)| *i).collect();
                if recs.is_empty() {
                    continue;
                }
                let mut acc: Option<Vec<u8>> = None;
                for m in &members {
                    let Some(a) = self.state.get(&self.acc_ns(*m), &key).map(|a| a.into_owned()) else {
                        continue;
                    };
                    acc = Some(match acc {
                        None => a,
                        Some(prev) => self.aggregation.merge(&prev, &a, &self.cx.step)?,
                    });
                    self.state.delete(&self.acc_ns(*m), &key);
                    self.forget_timers(&key, *m);
                }
                groups.push(Group { state_key: key.clone(), window: s, acc, records: recs });
            }
            let mut bytes = Vec::new();
            sessions.encode(&mut bytes);
            self.state.put(&ns, &key, &bytes);
        }

        self.aggregation.add(&records, &mut groups, &self.cx.step)?;
        let mut refire = Vec::new();
        let mut empty: FxHashMap<Vec<u8>, Vec<TimeWindow>> = FxHashMap::default();
        for g in groups {
            let Some(acc) = g.acc else {
                // Every record of a new session was refused: the session never existed.
                empty.entry(g.state_key).or_default().push(g.window);
                continue;
            };
            self.state.put(&self.acc_ns(g.window), &g.state_key, &acc);
            let due = now.is_none() && fires(&g.window, watermark);
            if due {
                self.cleanup_at.insert((
                    g.window.max_timestamp().saturating_add(lateness),
                    g.state_key.clone(),
                    g.window.start,
                    g.window.end,
                ));
                refire.push(Fired {
                    state_key: g.state_key,
                    window: g.window,
                    acc,
                    timestamp: g.window.max_timestamp(),
                });
            } else {
                self.fire_at.insert((g.window.max_timestamp(), g.state_key, g.window.start));
            }
        }
        for (key, windows) in empty {
            self.forget_sessions(&key, &windows);
        }
        drop(records);
        emit(&mut self.aggregation, &refire, out, &self.cx)
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
        let meta = WindowMeta { watermark: self.watermark, ..WindowMeta::default() };
        snapshot_with(self.state.as_mut(), dir, &meta)
    }

    /// Timers are not saved: each key's sessions are, and whether a session
    /// fired follows from the watermark.
    fn restore(&mut self, from: &[RestoreFrom], key_groups: Range<u32>) -> Result<(), String> {
        for meta in restore_into(self.state.as_mut(), from, key_groups)? {
            self.watermark = self.watermark.max(meta.watermark);
        }
        let event_time = matches!(self.cx.domain, TimeDomain::Event);
        let lateness = self.lateness();
        let mut timers = Vec::new();
        self.state.for_each(&self.sessions_ns(), &mut |key, bytes| {
            for w in Sessions::decode(bytes).windows() {
                timers.push((key.to_vec(), *w));
            }
        });
        for (key, w) in timers {
            if event_time && fires(&w, self.watermark) {
                self.cleanup_at.insert((w.max_timestamp().saturating_add(lateness), key, w.start, w.end));
            } else {
                self.fire_at.insert((w.max_timestamp(), key, w.start));
            }
        }
        Ok(())
    }

    fn state_failure(&self) -> Option<String> {
        self.state.failure()
    }
}
