//! A WebAssembly aggregator's failures are isolated to the records that
//! cause them, against a plain-Rust function speaking the same layouts.

use super::*;
use crate::operator::udf::Added;
use crate::operator::{DeadLetter, DeadLetters, StepMetrics};
use crate::types::Batch;
use std::sync::{Arc, Mutex};
use weir_batch::{AddGroupIter, FinishGroupIter};

/// Counts records per group; traps when a group holds a record `BAD`.
struct Counter;

impl UdfInvoker for Counter {
    fn name(&self) -> &str {
        "counter@1"
    }
    fn map(&mut self, _: &Batch) -> Result<crate::operator::udf::Mapped, UdfFailure> {
        unreachable!("not a map")
    }
    fn filter(&mut self, _: &Batch) -> Result<crate::operator::udf::Filtered, UdfFailure> {
        unreachable!("not a filter")
    }
    fn flat_map(&mut self, _: &Batch) -> Result<crate::operator::udf::Mapped, UdfFailure> {
        unreachable!("not a flat map")
    }
    fn create(&mut self) -> Result<Vec<u8>, UdfFailure> {
        Ok(0u64.to_le_bytes().to_vec())
    }
    fn add(&mut self, groups: &[u8]) -> Result<Added, UdfFailure> {
        let mut accs = ListWriter::new();
        for g in AddGroupIter::parse(groups).expect("a group list") {
            if g.records.iter().any(|r| r.value == b"BAD") {
                return Err(UdfFailure::Trap { message: "BAD record".into() });
            }
            let n = u64::from_le_bytes(g.acc.try_into().expect("8 bytes")) + g.records.len() as u64;
            accs.accumulator(&n.to_le_bytes());
        }
        Ok(Added { accumulators: accs.finish(), rejected: vec![] })
    }
    fn finish(&mut self, fired: &[u8]) -> Result<Batch, UdfFailure> {
        let mut out = BatchWriter::new();
        for g in FinishGroupIter::parse(fired).expect("a group list") {
            let n = u64::from_le_bytes(g.acc.try_into().expect("8 bytes"));
            out.push(g.end - 1, Some(g.key), format!("{},{n}", String::from_utf8_lossy(g.key)).as_bytes());
        }
        Ok(out.finish())
    }
}

#[derive(Default)]
struct Collected(Mutex<Vec<(String, String)>>);

impl DeadLetters for Collected {
    fn send(&self, l: &DeadLetter<'_>) -> std::io::Result<()> {
        self.0.lock().unwrap().push((l.kind.to_string(), String::from_utf8_lossy(l.record.value).into_owned()));
        Ok(())
    }
}

#[test]
fn failing_records_are_isolated_and_the_rest_aggregated() {
    let dlq = Arc::new(Collected::default());
    let ctx = StepContext {
        label: "steps[1] window".into(),
        subtask: 0,
        dead_letters: dlq.clone(),
        metrics: Arc::new(StepMetrics::default()),
    };
    let mut agg = Aggregation::Udf(UdfAggregate::new(Box::new(Counter), ErrorPolicy::DeadLetter));
    let mut w = BatchWriter::new();
    let values = ["a", "b", "BAD", "c", "d", "e", "BAD", "f"];
    for v in values {
        w.push(0, Some(b"k"), v.as_bytes());
    }
    let batch = w.finish();
    let records: Vec<RecordRef<'_>> = batch.iter().collect();
    let window = TimeWindow { start: 0, end: 10 };
    let mut groups = vec![
        Group { state_key: b"\0\0k1".to_vec(), window, acc: None, records: vec![0, 1, 2, 3] },
        Group { state_key: b"\0\0k2".to_vec(), window, acc: Some(5u64.to_le_bytes().to_vec()), records: vec![4, 5] },
        Group { state_key: b"\0\0k3".to_vec(), window, acc: None, records: vec![6, 7] },
    ];
    agg.add(&records, &mut groups, &ctx).unwrap();
    let counts: Vec<u64> =
        groups.iter().map(|g| u64::from_le_bytes(g.acc.clone().unwrap().try_into().unwrap())).collect();
    assert_eq!(counts, [3, 7, 1], "everything but the BAD records is counted, on top of existing accumulators");
    assert_eq!(
        *dlq.0.lock().unwrap(),
        vec![("trap".to_string(), "BAD".to_string()), ("trap".to_string(), "BAD".to_string())]
    );
    let fired: Vec<Fired> = groups
        .iter()
        .map(|g| Fired { state_key: g.state_key.clone(), window, acc: g.acc.clone().unwrap(), timestamp: 9 })
        .collect();
    let mut out = BatchWriter::new();
    agg.finish(&fired, true, &mut out, &ctx).unwrap();
    let lines: Vec<String> = out.finish().iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()).collect();
    assert_eq!(lines, ["k1,3", "k2,7", "k3,1"]);
}

mod in_windows {
    //! The window operators with a WebAssembly-style aggregator that refuses
    //! records: a refused record is dead-lettered once and leaves no trace.
    use super::{Collected, Counter};
    use crate::manifest::ErrorPolicy;
    use crate::operator::window::aggregation::{Aggregation, UdfAggregate};
    use crate::operator::window::{CountWindows, SessionWindows, TimeDomain, TimeWindows, WindowContext};
    use crate::operator::{Operator, StepContext, StepMetrics};
    use crate::state::{state_key, MemoryBackend, Namespace};
    use crate::types::{key_group, Batch, BatchWriter};
    use crate::window::{Assigner, CountSpec};
    use std::sync::Arc;

    fn context(lateness: i64, dlq: Arc<Collected>) -> WindowContext {
        let step = StepContext {
            label: "steps[1] window".into(),
            subtask: 0,
            dead_letters: dlq.clone(),
            metrics: Arc::new(StepMetrics::default()),
        };
        WindowContext {
            operator: 1,
            max_parallelism: 128,
            allowed_lateness: lateness,
            domain: TimeDomain::Event,
            step,
            late: dlq,
        }
    }

    fn counter() -> Aggregation {
        Aggregation::Udf(UdfAggregate::new(Box::new(Counter), ErrorPolicy::DeadLetter))
    }

    fn batch(records: &[(i64, &str)]) -> Batch {
        let mut w = BatchWriter::new();
        for (ts, v) in records {
            w.push(*ts, Some(b"k"), v.as_bytes());
        }
        w.finish()
    }

    fn values(out: &[Batch]) -> Vec<String> {
        out.iter().flat_map(|b| b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap())).collect()
    }

    #[test]
    fn a_sliding_count_window_refuses_a_record_once() {
        let dlq = Arc::new(Collected::default());
        let spec = CountSpec { size: 3, slide: 1 };
        let mut op = CountWindows::new(spec, counter(), Box::new(MemoryBackend::new()), context(0, dlq.clone()));
        let mut out = Vec::new();
        op.process(batch(&[(1, "a"), (2, "BAD")]), &mut out).unwrap();
        op.process(batch(&[(3, "b"), (4, "c")]), &mut out).unwrap();
        // The refused record left the buffer: later windows hold the last accepted records.
        assert_eq!(values(&out), ["k,1", "k,1", "k,2", "k,3"]);
        assert_eq!(*dlq.0.lock().unwrap(), [("trap".to_string(), "BAD".to_string())]);
    }

    #[test]
    fn a_session_of_refused_records_leaves_no_state() {
        let dlq = Arc::new(Collected::default());
        let mut op = SessionWindows::new(10, counter(), Box::new(MemoryBackend::new()), context(0, dlq.clone()));
        let mut out = Vec::new();
        op.process(batch(&[(0, "BAD")]), &mut out).unwrap();
        let mut key = Vec::new();
        state_key(key_group(b"k", 128), b"k", &mut key);
        assert!(op.state.get(&Namespace::keyed(1, 1), &key).is_none(), "no session is remembered");
        op.process(batch(&[(50, "a")]), &mut out).unwrap();
        op.on_watermark(i64::MAX, &mut out).unwrap();
        assert_eq!(values(&out), ["k,1"]);
        assert_eq!(dlq.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_fired_window_refires_only_when_its_result_changes() {
        let dlq = Arc::new(Collected::default());
        let tumbling = Assigner::Tumbling { size: 10, offset: 0 };
        let mut op = TimeWindows::new(tumbling, counter(), Box::new(MemoryBackend::new()), context(100, dlq.clone()));
        let mut out = Vec::new();
        op.process(batch(&[(1, "a")]), &mut out).unwrap();
        op.on_watermark(20, &mut out).unwrap();
        assert_eq!(values(&out), ["k,1"]);
        // Late but within the allowed lateness: refused, so nothing to re-fire.
        op.process(batch(&[(2, "BAD")]), &mut out).unwrap();
        assert_eq!(values(&out), ["k,1"]);
        op.process(batch(&[(3, "b")]), &mut out).unwrap();
        assert_eq!(values(&out), ["k,1", "k,2"]);
        assert_eq!(dlq.0.lock().unwrap().len(), 1);
    }
}
