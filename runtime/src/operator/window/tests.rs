//! Oracle tests: random keyed streams with random out-of-orderness through
//! each window operator, against a from-scratch simulation of the same rules
//! (batches of records, then the watermark they allow; windows fire at
//! `end - 1 <= watermark`, re-fire once per batch on late updates within
//! the allowed lateness, and are gone at `end - 1 + lateness <= watermark`).

use super::aggregation::Aggregation;
use super::builtin::{Builtin, BuiltinKind, ResultFormat};
use super::*;
use crate::operator::{DeadLetter, DeadLetters, Operator, StepContext, StepMetrics};
use crate::state::MemoryBackend;
use crate::types::{Batch, BatchWriter, TimeWindow, Timestamp};
use crate::window::{Assigner, CountSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use weir_json::Pointer;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[derive(Default)]
struct Collected(Mutex<Vec<(String, String, i64)>>);

impl DeadLetters for Collected {
    fn send(&self, l: &DeadLetter<'_>) -> std::io::Result<()> {
        let key = String::from_utf8_lossy(l.record.key.unwrap_or_default()).into_owned();
        let value = String::from_utf8_lossy(l.record.value).into_owned();
        self.0.lock().unwrap().push((key, value, l.record.timestamp));
        Ok(())
    }
}

/// A record: key, timestamp, value.
type Rec = (String, i64, i64);

fn context(lateness: i64, late: Arc<Collected>, dead: Arc<Collected>) -> WindowContext {
    let step = StepContext {
        label: "steps[1] window".into(),
        subtask: 0,
        dead_letters: dead,
        metrics: Arc::new(StepMetrics::default()),
    };
    WindowContext {
        operator: 1,
        max_parallelism: 128,
        allowed_lateness: lateness,
        domain: TimeDomain::Event,
        step,
        late,
    }
}

fn sum() -> Aggregation {
    Aggregation::Builtin(Builtin::new(BuiltinKind::Sum, Some(Pointer::parse("/v").unwrap()), ResultFormat::Csv))
}

fn to_batch(records: &[Rec]) -> Batch {
    let mut w = BatchWriter::new();
    for (k, ts, v) in records {
        w.push(*ts, Some(k.as_bytes()), format!("{{\"v\":{v}}}").as_bytes());
    }
    w.finish()
}

/// Output lines `key,window_end,sum` (or `key,sum`) sorted.
fn lines(out: &[Batch]) -> Vec<String> {
    let mut v: Vec<String> =
        out.iter().flat_map(|b| b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap())).collect();
    v.sort();
    v
}

/// A random stream: timestamps trend upwards with jitter up to `disorder`.
fn stream(rng: &mut Rng, n: usize, keys: u64, disorder: i64) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let ts = (i as i64) * 10 - rng.below(disorder as u64 + 1) as i64;
            (format!("k{}", rng.below(keys)), ts, rng.below(100) as i64 - 20)
        })
        .collect()
}

/// Random batch sizes (1 to 6) covering `n` records.
fn batch_sizes(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = n;
    while left > 0 {
        let size = (1 + rng.below(6) as usize).min(left);
        sizes.push(size);
        left -= size;
    }
    sizes
}

/// Feeds `records` in batches of random size, with the watermark trailing
/// the largest timestamp by `delay` (+1) after each batch; returns the
/// outputs and the batch sizes used.
fn drive(op: &mut dyn Operator, records: &[Rec], delay: i64, rng: &mut Rng) -> (Vec<Batch>, Vec<usize>) {
    let sizes = batch_sizes(rng, records.len());
    (replay(op, records, &sizes, delay), sizes)
}

/// Feeds `records` in the batches `sizes` (as [`drive`] chose them).
fn replay(op: &mut dyn Operator, records: &[Rec], sizes: &[usize], delay: i64) -> Vec<Batch> {
    let (mut max_ts, mut wm) = (i64::MIN, i64::MIN);
    feed(&mut [op], &[ALL], records, sizes, delay, (&mut max_ts, &mut wm), true)
}

fn late_of(c: &Collected) -> Vec<(String, i64, i64)> {
    let mut v: Vec<(String, i64, i64)> =
        c.0.lock()
            .unwrap()
            .iter()
            .map(|(k, value, ts)| {
                let v: serde_json::Value = serde_json::from_str(value).unwrap();
                (k.clone(), *ts, v["v"].as_i64().unwrap())
            })
            .collect();
    v.sort();
    v
}

/// The oracle for tumbling and sliding windows.
fn time_oracle(
    records: &[Rec],
    sizes: &[usize],
    size: i64,
    slide: i64,
    delay: i64,
    lateness: i64,
) -> (Vec<String>, Vec<Rec>) {
    let mut acc: BTreeMap<(TimeWindow, String), i64> = BTreeMap::new();
    let mut fired: BTreeSet<TimeWindow> = BTreeSet::new();
    let (mut out, mut late) = (Vec::new(), Vec::new());
    let (mut wm, mut max_ts, mut at) = (i64::MIN, i64::MIN, 0);
    let emit = |out: &mut Vec<String>, w: &TimeWindow, k: &str, v: i64| out.push(format!("{k},{},{v}", w.end));
    let mut sizes = sizes.iter();
    let step = |wm: i64,
                acc: &mut BTreeMap<(TimeWindow, String), i64>,
                fired: &mut BTreeSet<TimeWindow>,
                out: &mut Vec<String>| {
        let due: Vec<(TimeWindow, String, i64)> = acc
            .iter()
            .filter(|((w, _), _)| w.end - 1 <= wm && !fired.contains(w))
            .map(|((w, k), v)| (*w, k.clone(), *v))
            .collect();
        for (w, k, v) in due {
            emit(out, &w, &k, v);
        }
        let windows: BTreeSet<TimeWindow> = acc.keys().map(|(w, _)| *w).filter(|w| w.end - 1 <= wm).collect();
        fired.extend(windows);
        acc.retain(|(w, _), _| w.end - 1 + lateness > wm);
        fired.retain(|w| w.end - 1 + lateness > wm);
    };
    while at < records.len() {
        let n = *sizes.next().unwrap();
        let mut refire = BTreeSet::new();
        for (k, ts, v) in &records[at..at + n] {
            let windows: Vec<TimeWindow> = (-20_000..20_000)
                .filter(|s: &i64| s.rem_euclid(slide) == 0 && *s <= *ts && *ts < s + size)
                .map(|s| TimeWindow { start: s, end: s + size })
                .filter(|w| w.end - 1 + lateness > wm)
                .collect();
            if windows.is_empty() {
                late.push((k.clone(), *ts, *v));
            }
            for w in windows {
                *acc.entry((w, k.clone())).or_default() += v;
                if w.end - 1 <= wm {
                    refire.insert((w, k.clone()));
                    fired.insert(w);
                }
            }
        }
        for (w, k) in refire {
            emit(&mut out, &w, &k, acc[&(w, k.clone())]);
        }
        max_ts = max_ts.max(records[at..at + n].iter().map(|r| r.1).max().unwrap());
        if max_ts - delay - 1 > wm {
            wm = max_ts - delay - 1;
            step(wm, &mut acc, &mut fired, &mut out);
        }
        at += n;
    }
    step(i64::MAX, &mut acc, &mut fired, &mut out);
    out.sort();
    late.sort();
    (out, late)
}

#[test]
fn tumbling_and_sliding_windows_match_the_oracle() {
    let mut rng = Rng(11);
    let (mut late_seen, mut refired) = (0, 0);
    for case in 0..150 {
        let slide = [10, 25, 40][rng.below(3) as usize];
        let size = slide * (1 + rng.below(3) as i64);
        let delay = rng.below(30) as i64;
        let lateness = [0, 0, 15, 60][rng.below(4) as usize];
        let (n, keys) = (1 + rng.below(120) as usize, 1 + rng.below(5));
        let records = stream(&mut rng, n, keys, 80);
        let (late, dead) = (Arc::new(Collected::default()), Arc::new(Collected::default()));
        let assigner = if size == slide {
            Assigner::Tumbling { size, offset: 0 }
        } else {
            Assigner::Sliding { size, slide, offset: 0 }
        };
        let mut op = TimeWindows::new(
            assigner,
            sum(),
            Box::new(MemoryBackend::new()),
            context(lateness, late.clone(), dead.clone()),
        );
        let (out, sizes) = drive(&mut op, &records, delay, &mut rng);
        let (want_out, want_late) = time_oracle(&records, &sizes, size, slide, delay, lateness);
        assert_eq!(lines(&out), want_out, "case {case}: size {size} slide {slide} delay {delay} lateness {lateness}");
        assert_eq!(late_of(&late), want_late, "case {case}: late records");
        assert!(dead.0.lock().unwrap().is_empty());
        assert!(op.state.is_empty(), "case {case}: every window is cleaned up at the end");
        // The same stream, batches and watermarks through the pane-based operator.
        let (late2, dead2) = (Arc::new(Collected::default()), Arc::new(Collected::default()));
        let Aggregation::Builtin(b) = sum() else { unreachable!() };
        let mut sliced = SlicedWindows::new(
            size,
            slide,
            0,
            b,
            Box::new(MemoryBackend::new()),
            context(lateness, late2.clone(), dead2.clone()),
        );
        let out2 = replay(&mut sliced, &records, &sizes, delay);
        assert_eq!(
            lines(&out2),
            want_out,
            "case {case} (panes): size {size} slide {slide} delay {delay} lateness {lateness}"
        );
        assert_eq!(late_of(&late2), want_late, "case {case} (panes): late records");
        assert!(sliced.state.is_empty(), "case {case} (panes): every pane is cleaned up at the end");
        late_seen += want_late.len();
        let distinct: BTreeSet<String> = want_out.iter().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect();
        refired += want_out.len() - distinct.len();
    }
    assert!(
        late_seen > 50 && refired > 20,
        "the random cases must exercise lateness: {late_seen} late, {refired} re-fired"
    );
}

/// The oracle for session windows.
fn session_oracle(records: &[Rec], sizes: &[usize], gap: i64, delay: i64, lateness: i64) -> (Vec<String>, Vec<Rec>) {
    #[derive(Clone)]
    struct S {
        w: TimeWindow,
        acc: i64,
        fired: bool,
    }
    let mut sessions: BTreeMap<String, Vec<S>> = BTreeMap::new();
    let (mut out, mut late) = (Vec::new(), Vec::new());
    let (mut wm, mut max_ts, mut at) = (i64::MIN, i64::MIN, 0);
    let advance = |wm: i64, sessions: &mut BTreeMap<String, Vec<S>>, out: &mut Vec<String>| {
        for (k, list) in sessions.iter_mut() {
            for s in list.iter_mut() {
                if s.w.end - 1 <= wm && !s.fired {
                    s.fired = true;
                    out.push(format!("{k},{},{}", s.w.end, s.acc));
                }
            }
            list.retain(|s| s.w.end - 1 + lateness > wm);
        }
    };
    for &n in sizes {
        let mut touched: BTreeSet<(String, TimeWindow)> = BTreeSet::new();
        for (k, ts, v) in &records[at..at + n] {
            let cand = TimeWindow { start: *ts, end: ts + gap };
            let list = sessions.entry(k.clone()).or_default();
            let (hit, rest): (Vec<S>, Vec<S>) =
                list.drain(..).partition(|s| s.w.start <= cand.end && cand.start <= s.w.end);
            *list = rest;
            if hit.is_empty() && cand.end - 1 + lateness <= wm {
                late.push((k.clone(), *ts, *v));
                continue;
            }
            let w = hit.iter().fold(cand, |a, s| TimeWindow { start: a.start.min(s.w.start), end: a.end.max(s.w.end) });
            for s in &hit {
                touched.remove(&(k.clone(), s.w));
            }
            list.push(S { w, acc: hit.iter().map(|s| s.acc).sum::<i64>() + v, fired: false });
            touched.insert((k.clone(), w));
        }
        for (k, w) in touched {
            if w.end - 1 <= wm {
                let s = sessions.get_mut(&k).unwrap().iter_mut().find(|s| s.w == w).unwrap();
                s.fired = true;
                out.push(format!("{k},{},{}", w.end, s.acc));
            }
        }
        max_ts = max_ts.max(records[at..at + n].iter().map(|r| r.1).max().unwrap());
        if max_ts - delay - 1 > wm {
            wm = max_ts - delay - 1;
            advance(wm, &mut sessions, &mut out);
        }
        at += n;
    }
    advance(i64::MAX, &mut sessions, &mut out);
    out.sort();
    late.sort();
    (out, late)
}

#[test]
fn session_windows_match_the_oracle() {
    let mut rng = Rng(23);
    let (mut late_seen, mut merged) = (0, 0);
    for case in 0..200 {
        let gap = 5 + rng.below(40) as i64;
        let delay = rng.below(30) as i64;
        let lateness = [0, 0, 20, 80][rng.below(4) as usize];
        let (n, keys) = (1 + rng.below(100) as usize, 1 + rng.below(4));
        let mut records = stream(&mut rng, n, keys, 60);
        // Pauses longer than the gap, so there are several sessions per key.
        for (i, r) in records.iter_mut().enumerate() {
            r.1 += (i as i64 / 15) * 300;
        }
        let (late, dead) = (Arc::new(Collected::default()), Arc::new(Collected::default()));
        let mut op = SessionWindows::new(
            gap,
            sum(),
            Box::new(MemoryBackend::new()),
            context(lateness, late.clone(), dead.clone()),
        );
        let (out, sizes) = drive(&mut op, &records, delay, &mut rng);
        let (want_out, want_late) = session_oracle(&records, &sizes, gap, delay, lateness);
        assert_eq!(lines(&out), want_out, "case {case}: gap {gap} delay {delay} lateness {lateness}");
        assert_eq!(late_of(&late), want_late, "case {case}: late records");
        assert!(op.state.is_empty(), "case {case}: every session is cleaned up at the end");
        late_seen += want_late.len();
        merged += want_out.iter().filter(|l| l.rsplit(',').next().is_some_and(|v| v.parse::<i64>().is_ok())).count();
    }
    assert!(late_seen > 20 && merged > 100, "the random cases must exercise lateness and merging: {late_seen} late");
}

#[test]
fn count_and_global_windows_match_the_oracle() {
    let mut rng = Rng(31);
    for case in 0..100 {
        let size = 1 + rng.below(6);
        let slide = 1 + rng.below(size);
        let (n, keys) = (rng.below(80) as usize, 1 + rng.below(4));
        let records = stream(&mut rng, n, keys, 50);
        let (late, dead) = (Arc::new(Collected::default()), Arc::new(Collected::default()));
        let mut count = CountWindows::new(
            CountSpec { size, slide },
            sum(),
            Box::new(MemoryBackend::new()),
            context(0, late.clone(), dead.clone()),
        );
        let (out, _) = drive(&mut count, &records, 0, &mut rng);
        let mut want = Vec::new();
        let mut per_key: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for (k, _, v) in &records {
            let buf = per_key.entry(k).or_default();
            buf.push(*v);
            let seen = buf.len() as u64;
            if seen.is_multiple_of(slide) {
                let from = buf.len().saturating_sub(size as usize);
                want.push(format!("{k},{}", buf[from..].iter().sum::<i64>()));
            }
        }
        want.sort();
        assert_eq!(lines(&out), want, "case {case}: count size {size} slide {slide}");

        let every = 1 + rng.below(4);
        let mut global =
            GlobalWindows::new(every, sum(), Box::new(MemoryBackend::new()), context(0, late.clone(), dead.clone()));
        let (out, _) = drive(&mut global, &records, 0, &mut rng);
        let mut want = Vec::new();
        let mut running: BTreeMap<&str, (u64, i64)> = BTreeMap::new();
        for (k, _, v) in &records {
            let (n, s) = running.entry(k).or_default();
            *n += 1;
            *s += v;
            if n.is_multiple_of(every) {
                want.push(format!("{k},{s}"));
            }
        }
        want.sort();
        assert_eq!(lines(&out), want, "case {case}: global every {every}");
        assert!(late.0.lock().unwrap().is_empty());
    }
}

#[test]
fn processing_time_windows_follow_the_clock() {
    let now = Arc::new(Mutex::new(1_000i64));
    let clock_now = now.clone();
    let (late, dead) = (Arc::new(Collected::default()), Arc::new(Collected::default()));
    let mut cx = context(0, late.clone(), dead);
    cx.domain = TimeDomain::Processing(Arc::new(move || *clock_now.lock().unwrap()));
    let mut op =
        TimeWindows::new(Assigner::Tumbling { size: 100, offset: 0 }, sum(), Box::new(MemoryBackend::new()), cx);
    assert!(op.wants_ticks());
    let mut out = Vec::new();
    // Event timestamps are ignored: the clock says 1000.
    op.process(to_batch(&[("a".into(), 5, 1), ("a".into(), 999_999, 2)]), &mut out).unwrap();
    op.on_watermark(i64::MAX, &mut out).unwrap();
    assert!(out.is_empty(), "watermarks do not fire processing-time windows");
    op.on_tick(1_050, &mut out).unwrap();
    assert!(out.is_empty());
    *now.lock().unwrap() = 1_120;
    op.process(to_batch(&[("a".into(), 5, 4)]), &mut out).unwrap();
    op.on_tick(1_120, &mut out).unwrap();
    assert_eq!(lines(&out), ["a,1100,3"]);
    op.on_end(&mut out).unwrap();
    assert_eq!(lines(&out), ["a,1100,3", "a,1200,4"]);
    assert!(late.0.lock().unwrap().is_empty());
}

#[test]
fn timestamps_out_of_range_are_dead_lettered_by_every_time_window() {
    // A function upstream may set any timestamp; window arithmetic must not overflow.
    let extreme = [("a".to_string(), i64::MAX, 1), ("a".to_string(), i64::MIN, 1), ("a".to_string(), 1 << 60, 1)];
    let sliding = || Assigner::Sliding { size: 100, slide: 10, offset: 0 };
    type Make = Box<dyn Fn(WindowContext) -> Box<dyn Operator>>;
    let ops: Vec<(&str, Make)> = vec![
        (
            "tumbling",
            Box::new(|cx| {
                Box::new(TimeWindows::new(
                    Assigner::Tumbling { size: 100, offset: 0 },
                    sum(),
                    Box::new(MemoryBackend::new()),
                    cx,
                ))
            }),
        ),
        (
            "sliding",
            Box::new(move |cx| Box::new(TimeWindows::new(sliding(), sum(), Box::new(MemoryBackend::new()), cx))),
        ),
        (
            "sliced",
            Box::new(|cx| {
                let Aggregation::Builtin(b) = sum() else { unreachable!() };
                Box::new(SlicedWindows::new(100, 10, 0, b, Box::new(MemoryBackend::new()), cx))
            }),
        ),
        ("session", Box::new(|cx| Box::new(SessionWindows::new(10, sum(), Box::new(MemoryBackend::new()), cx)))),
    ];
    for (name, make) in ops {
        let (late, dead) = (Arc::new(Collected::default()), Arc::new(Collected::default()));
        let mut op = make(context(0, late.clone(), dead.clone()));
        let mut out = Vec::new();
        op.process(to_batch(&extreme), &mut out).unwrap();
        op.process(to_batch(&[("a".into(), 5, 2)]), &mut out).unwrap();
        op.on_watermark(i64::MAX, &mut out).unwrap();
        assert_eq!(dead.0.lock().unwrap().len(), 3, "{name}");
        assert!(late.0.lock().unwrap().is_empty(), "{name}");
        assert_eq!(lines(&out).len(), if name == "tumbling" || name == "session" { 1 } else { 10 }, "{name}");
    }
}

/// Feeds the batches `sizes` of `records` into `ops` (each owning the key
/// groups in `ranges`, records routed by key), each batch followed by the
/// watermark it allows (continuing from `max_ts` and `wm`); `end` also
/// sends the final watermark.
fn feed(
    ops: &mut [&mut dyn Operator],
    ranges: &[Range<u32>],
    records: &[Rec],
    sizes: &[usize],
    delay: i64,
    (max_ts, wm): (&mut i64, &mut i64),
    end: bool,
) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut at = 0;
    for &n in sizes {
        let chunk = &records[at..at + n];
        for (op, range) in ops.iter_mut().zip(ranges) {
            let mine: Vec<Rec> = chunk
                .iter()
                .filter(|r| range.contains(&crate::types::key_group(r.0.as_bytes(), 128)))
                .cloned()
                .collect();
            if !mine.is_empty() {
                op.process(to_batch(&mine), &mut out).unwrap();
            }
        }
        *max_ts = chunk.iter().map(|r| r.1).max().unwrap().max(*max_ts);
        if *max_ts - delay - 1 > *wm {
            *wm = *max_ts - delay - 1;
            for op in ops.iter_mut() {
                op.on_watermark(*wm, &mut out).unwrap();
            }
        }
        at += n;
    }
    if end {
        for op in ops.iter_mut() {
            op.on_watermark(Timestamp::MAX, &mut out).unwrap();
        }
    }
    out
}

/// Every key group.
const ALL: Range<u32> = 0..128;

/// Oracle for checkpoints: a run cut at a random batch, snapshotted, and
/// continued by fresh operators restored from the snapshot (one, or two
/// splitting the key groups as after a rescale) produces exactly the output
/// and late records of the uninterrupted run.
#[test]
fn every_window_operator_continues_from_a_snapshot_as_if_never_stopped() {
    let mut rng = Rng(47);
    let kinds = ["tumbling", "sliding", "panes", "session", "count", "global"];
    for case in 0..200 {
        let kind = kinds[case % kinds.len()];
        let lateness = [0, 0, 20][rng.below(3) as usize];
        let delay = rng.below(25) as i64;
        let (n, keys) = (2 + rng.below(120) as usize, 1 + rng.below(6));
        let mut records = stream(&mut rng, n, keys, 60);
        if kind == "session" {
            for (i, r) in records.iter_mut().enumerate() {
                r.1 += (i as i64 / 15) * 300;
            }
        }
        let make = |late: Arc<Collected>| -> Box<dyn Operator> {
            let ctx = context(
                if matches!(kind, "count" | "global") { 0 } else { lateness },
                late,
                Arc::new(Collected::default()),
            );
            let state = Box::new(MemoryBackend::new());
            match kind {
                "tumbling" => Box::new(TimeWindows::new(Assigner::Tumbling { size: 40, offset: 0 }, sum(), state, ctx)),
                "sliding" => {
                    Box::new(TimeWindows::new(Assigner::Sliding { size: 75, slide: 25, offset: 0 }, sum(), state, ctx))
                }
                "panes" => {
                    let builtin =
                        Builtin::new(BuiltinKind::Sum, Some(Pointer::parse("/v").unwrap()), ResultFormat::Csv);
                    Box::new(SlicedWindows::new(75, 25, 0, builtin, state, ctx))
                }
                "session" => Box::new(SessionWindows::new(30, sum(), state, ctx)),
                "count" => Box::new(CountWindows::new(CountSpec { size: 3, slide: 2 }, sum(), state, ctx)),
                _ => Box::new(GlobalWindows::new(2, sum(), state, ctx)),
            }
        };
        let sizes = batch_sizes(&mut rng, records.len());
        let late_whole = Arc::new(Collected::default());
        let want = replay(make(late_whole.clone()).as_mut(), &records, &sizes, delay);

        let cut = rng.below(sizes.len() as u64 + 1) as usize;
        let before: usize = sizes[..cut].iter().sum();
        let late = Arc::new(Collected::default());
        let mut first = make(late.clone());
        let (mut m, mut w) = (i64::MIN, i64::MIN);
        let mut got =
            feed(&mut [first.as_mut()], &[ALL], &records[..before], &sizes[..cut], delay, (&mut m, &mut w), false);
        let dir = tempfile::tempdir().unwrap();
        let saved = first.snapshot(&dir.path().join("op")).unwrap().expect("window operators save state");
        drop(first);
        let from = RestoreFrom {
            state: saved.state.map(|files| crate::state::RestoreSource {
                dir: dir.path().join("op"),
                files,
                key_groups: 0..128,
            }),
            meta: saved.meta,
        };
        let ranges: Vec<Range<u32>> = if rng.below(2) == 0 { vec![ALL] } else { vec![0..64, 64..128] };
        let mut rest: Vec<Box<dyn Operator>> = ranges
            .iter()
            .map(|r| {
                let mut op = make(late.clone());
                op.restore(std::slice::from_ref(&from), r.clone()).unwrap();
                op
            })
            .collect();
        let mut rest: Vec<&mut dyn Operator> = rest.iter_mut().map(|op| &mut **op as &mut dyn Operator).collect();
        got.extend(feed(&mut rest, &ranges, &records[before..], &sizes[cut..], delay, (&mut m, &mut w), true));
        let what =
            format!("case {case}: {kind}, cut after {cut} of {} batches, {} subtasks", sizes.len(), ranges.len());
        assert_eq!(lines(&got), lines(&want), "{what}");
        assert_eq!(late_of(&late), late_of(&late_whole), "{what}: late records");
    }
}
