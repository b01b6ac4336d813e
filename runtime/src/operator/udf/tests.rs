//! UdfStep's error policy, against a plain-Rust function with the same
//! contract as a WebAssembly one (the wasm path is tested end to end in
//! `tests/`).

use super::*;
use crate::operator::{DeadLetter, DeadLetters, StepMetrics};
use std::sync::{Arc, Mutex};

/// Upper-cases values; "traps" on values containing `BAD`, refuses values
/// containing `NO`. Counts calls. As a filter, breaks the contract for
/// values containing `BOTH` by keeping and refusing them at once.
struct Upper {
    calls: usize,
}

impl UdfInvoker for Upper {
    fn name(&self) -> &str {
        "upper@1"
    }

    fn map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure> {
        self.calls += 1;
        let mut out = BatchWriter::new();
        let mut rejected = Vec::new();
        for (i, r) in input.iter().enumerate() {
            if r.value.windows(3).any(|w| w == b"BAD") {
                return Err(UdfFailure::Trap { message: "boom".into() });
            }
            if r.value.windows(2).any(|w| w == b"NO") {
                rejected.push(Rejection { index: i as u32, reason: "no thanks".into() });
                continue;
            }
            out.push(r.timestamp, r.key, &r.value.to_ascii_uppercase());
        }
        Ok(Mapped { output: out.finish(), rejected })
    }

    fn filter(&mut self, input: &Batch) -> Result<Filtered, UdfFailure> {
        self.calls += 1;
        let mut keep = vec![0u8; input.len().div_ceil(8)];
        let mut rejected = Vec::new();
        for (i, r) in input.iter().enumerate() {
            if r.value.windows(3).any(|w| w == b"BAD") {
                return Err(UdfFailure::Timeout { limit: Duration::from_millis(5) });
            }
            if r.value.len() % 2 == 0 {
                keep[i / 8] |= 1 << (i % 8);
            }
            if r.value.windows(4).any(|w| w == b"BOTH") {
                keep[i / 8] |= 1 << (i % 8);
                rejected.push(Rejection { index: i as u32, reason: "both".into() });
            }
        }
        Ok(Filtered { keep, rejected })
    }

    fn flat_map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure> {
        self.map(input)
    }
}

#[derive(Default)]
struct Collected(Mutex<Vec<(String, String)>>);

impl DeadLetters for Collected {
    fn send(&self, letter: &DeadLetter<'_>) -> std::io::Result<()> {
        let value = String::from_utf8_lossy(letter.record.value).into_owned();
        self.0.lock().unwrap().push((letter.kind.to_string(), value));
        Ok(())
    }
}

fn step(function: FunctionKind, policy: ErrorPolicy) -> (UdfStep, Arc<Collected>) {
    let dlq = Arc::new(Collected::default());
    let ctx = StepContext {
        label: "steps[0] map upper@1".into(),
        subtask: 0,
        dead_letters: dlq.clone(),
        metrics: Arc::new(StepMetrics::default()),
    };
    (UdfStep::new(function, Box::new(Upper { calls: 0 }), policy, ctx), dlq)
}

fn batch(values: &[String]) -> Batch {
    let mut w = BatchWriter::new();
    for (i, v) in values.iter().enumerate() {
        w.push(i as i64, None, v.as_bytes());
    }
    w.finish()
}

fn values(out: &[Batch]) -> Vec<String> {
    out.iter().flat_map(|b| b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap())).collect()
}

/// Oracle: random batches with random poison and refused records. Every
/// input is either in the output (in order) or in the dead letters, exactly once.
#[test]
fn bisection_isolates_exactly_the_failing_records() {
    let mut seed = 17u64;
    let mut rand = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for _ in 0..200 {
        let n = 1 + rand() % 300;
        let inputs: Vec<String> = (0..n)
            .map(|i| match rand() % 50 {
                0 => format!("BAD{i}"),
                1 | 2 => format!("NO{i}"),
                _ => format!("v{i}"),
            })
            .collect();
        let (mut s, dlq) = step(FunctionKind::Map, ErrorPolicy::DeadLetter);
        let mut out = Vec::new();
        s.process(batch(&inputs), &mut out).unwrap();
        let expected: Vec<String> =
            inputs.iter().filter(|v| !v.contains("BAD") && !v.contains("NO")).map(|v| v.to_uppercase()).collect();
        assert_eq!(values(&out), expected);
        let mut dead = dlq.0.lock().unwrap().clone();
        dead.sort_by(|a, b| a.1.cmp(&b.1));
        let mut expected_dead: Vec<(String, String)> = inputs
            .iter()
            .filter_map(|v| match () {
                _ if v.contains("BAD") => Some(("trap".to_string(), v.clone())),
                _ if v.contains("NO") => Some(("rejected".to_string(), v.clone())),
                _ => None,
            })
            .collect();
        expected_dead.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(dead, expected_dead);
    }
}

#[test]
fn filter_keeps_by_bitmap_and_isolates_timeouts() {
    let (mut s, dlq) = step(FunctionKind::Filter, ErrorPolicy::DeadLetter);
    let inputs: Vec<String> = ["aa", "b", "BAD", "cccc", "dd"].iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    s.process(batch(&inputs), &mut out).unwrap();
    assert_eq!(values(&out), ["aa", "cccc", "dd"]);
    assert_eq!(*dlq.0.lock().unwrap(), vec![("timeout".to_string(), "BAD".to_string())]);
}

#[test]
fn fail_policy_stops_with_the_function_and_subtask_named() {
    let (mut s, _) = step(FunctionKind::Map, ErrorPolicy::Fail);
    let err = s.process(batch(&["x".into(), "BAD".into()]), &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "steps[0] map upper@1: upper@1 (subtask 0) trapped: boom");
}

#[test]
fn a_filter_that_keeps_and_refuses_a_record_is_caught() {
    let (mut s, dlq) = step(FunctionKind::Filter, ErrorPolicy::DeadLetter);
    let inputs: Vec<String> = ["aa", "BOTH", "b", "cc"].iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    s.process(batch(&inputs), &mut out).unwrap();
    assert_eq!(values(&out), ["aa", "cc"]);
    assert_eq!(*dlq.0.lock().unwrap(), vec![("bad_output".to_string(), "BOTH".to_string())]);
}

#[test]
fn contract_violations_are_caught() {
    let rejected =
        |idx: &[u32]| idx.iter().map(|&index| Rejection { index, reason: String::new() }).collect::<Vec<_>>();
    assert!(check_rejections(&rejected(&[0, 2, 5]), 6).is_ok());
    assert!(check_rejections(&rejected(&[6]), 6).is_err());
    assert!(check_rejections(&rejected(&[2, 2]), 6).is_err());
    assert!(check_rejections(&rejected(&[3, 1]), 6).is_err());
}
