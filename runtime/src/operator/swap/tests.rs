use super::*;
use crate::types::BatchWriter;

/// A map that appends its version to each value, failing when told to.
struct Tagger {
    name: String,
    fail: bool,
}

impl UdfInvoker for Tagger {
    fn name(&self) -> &str {
        &self.name
    }
    fn map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure> {
        if self.fail {
            return Err(UdfFailure::Trap { message: "boom".into() });
        }
        let mut out = BatchWriter::new();
        for r in input.iter() {
            let mut v = r.value.to_vec();
            v.extend_from_slice(self.name.as_bytes());
            out.push(r.timestamp, None, &v);
        }
        Ok(Mapped { output: out.finish(), rejected: Vec::new() })
    }
    fn filter(&mut self, _: &Batch) -> Result<Filtered, UdfFailure> {
        unreachable!()
    }
    fn flat_map(&mut self, _: &Batch) -> Result<Mapped, UdfFailure> {
        unreachable!()
    }
}

fn tagger(name: &str, fail: bool) -> Box<dyn UdfInvoker> {
    Box::new(Tagger { name: name.into(), fail })
}

fn one() -> Batch {
    let mut w = BatchWriter::new();
    w.push(0, None, b"x");
    w.finish()
}

fn tag(u: &mut Switchable) -> String {
    let out = u.map(&one()).expect("map").output;
    String::from_utf8(out.iter().next().unwrap().value[1..].to_vec()).unwrap()
}

fn pair(switch: &Arc<StepSwitch>) -> [Switchable; 2] {
    [0, 1].map(|i| Switchable::new(tagger("@1", false), switch.clone(), i))
}

#[test]
fn each_subtask_switches_after_the_barrier_and_not_before() {
    let switch = StepSwitch::new("step", 2);
    let [mut a, mut b] = pair(&switch);
    switch.begin("@2", vec![tagger("@2", false), tagger("@2", false)], Probation::default()).unwrap();
    assert_eq!(tag(&mut a), "@1", "not armed yet");
    switch.arm(7);
    switch.barrier_passed(0, 6);
    assert_eq!(tag(&mut a), "@1", "an earlier barrier does not switch");
    switch.barrier_passed(0, 7);
    assert_eq!(switch.phase(), SwapPhase::Switching { barrier: 7, switched: 1, subtasks: 2, failures: 0 });
    assert_eq!(tag(&mut a), "@2");
    assert_eq!(tag(&mut b), "@1", "subtask 1 has not seen the barrier");
    switch.barrier_passed(1, 7);
    assert_eq!(tag(&mut b), "@2");
    assert_eq!(switch.phase(), SwapPhase::Probation { barrier: 7, failures: 0 });
    assert_eq!(switch.settle(Instant::now() + Duration::from_secs(3)), SwapPhase::Swapped { barrier: 7 });
    assert_eq!((tag(&mut a), tag(&mut b)), ("@2".into(), "@2".into()));
    assert!(a.previous.is_none() && b.previous.is_none(), "old instances are dropped once settled");
    assert_eq!(switch.stats.calls.load(Ordering::Relaxed), 7, "every call is counted");
}

#[test]
fn a_failing_new_version_rolls_every_subtask_back_and_the_call_is_retried() {
    let switch = StepSwitch::new("step", 2);
    let [mut a, mut b] = pair(&switch);
    switch.begin("@2", vec![tagger("@2", true), tagger("@2", true)], Probation::default()).unwrap();
    switch.arm(1);
    switch.barrier_passed(0, 1);
    switch.barrier_passed(1, 1);
    assert_eq!(tag(&mut a), "@1", "the failing call is answered by the old version");
    let SwapPhase::RolledBack { reason } = switch.phase() else { panic!("{:?}", switch.phase()) };
    assert!(reason.contains("@2 failed 1 call(s)") && reason.contains("boom"), "{reason}");
    assert_eq!(tag(&mut b), "@1", "the other subtask went back too, before calling the new version");
    // A new swap may start after a rollback.
    switch.begin("@3", vec![tagger("@3", false), tagger("@3", false)], Probation::default()).unwrap();
}

#[test]
fn failures_within_the_budget_are_returned_and_do_not_roll_back() {
    let switch = StepSwitch::new("step", 1);
    let mut a = Switchable::new(tagger("@1", false), switch.clone(), 0);
    let probation = Probation { duration: Duration::from_secs(60), max_failures: 1 };
    switch.begin("@2", vec![tagger("@2", true)], probation).unwrap();
    switch.arm(1);
    switch.barrier_passed(0, 1);
    assert!(a.map(&one()).is_err(), "one failure is within the budget");
    assert_eq!(switch.phase(), SwapPhase::Probation { barrier: 1, failures: 1 });
    assert_eq!(tag(&mut a), "@1", "the second exhausts it");
    assert!(matches!(switch.phase(), SwapPhase::RolledBack { .. }));
}

#[test]
fn a_cancelled_swap_never_switches_and_a_second_swap_waits_for_the_first() {
    let switch = StepSwitch::new("step", 1);
    let mut a = Switchable::new(tagger("@1", false), switch.clone(), 0);
    switch.begin("@2", vec![tagger("@2", false)], Probation::default()).unwrap();
    let e = switch.begin("@3", vec![tagger("@3", false)], Probation::default()).unwrap_err();
    assert!(e.contains("already under way"), "{e}");
    switch.arm(4);
    switch.cancel("the pipeline stopped");
    switch.barrier_passed(0, 4);
    assert_eq!(tag(&mut a), "@1");
    assert_eq!(switch.phase(), SwapPhase::RolledBack { reason: "the pipeline stopped".into() });
}

/// The bug: failures were counted only once every subtask had switched, so
/// the new version's victims on the subtasks that switched first were
/// dead-lettered without a rollback.
#[test]
fn a_failure_while_other_subtasks_have_not_switched_rolls_back() {
    let switch = StepSwitch::new("step", 2);
    let [mut a, mut b] = pair(&switch);
    switch.begin("@2", vec![tagger("@2", true), tagger("@2", true)], Probation::default()).unwrap();
    switch.arm(3);
    switch.barrier_passed(0, 3);
    assert_eq!(tag(&mut a), "@1", "the failing call is retried on the old version");
    let SwapPhase::RolledBack { reason } = switch.phase() else { panic!("{:?}", switch.phase()) };
    assert!(reason.contains("while switching"), "{reason}");
    switch.barrier_passed(1, 3);
    assert_eq!(tag(&mut b), "@1", "the subtask that had not switched never does");
    assert_eq!(tag(&mut a), "@1");
}

#[test]
fn failures_while_switching_count_against_the_same_budget_as_probation() {
    let switch = StepSwitch::new("step", 2);
    let [mut a, mut b] = pair(&switch);
    let probation = Probation { duration: Duration::from_secs(1), max_failures: 1 };
    switch.begin("@2", vec![tagger("@2", true), tagger("@2", true)], probation).unwrap();
    switch.arm(3);
    switch.barrier_passed(0, 3);
    assert!(a.map(&one()).is_err(), "within the budget: the failure is the call's");
    assert_eq!(switch.phase(), SwapPhase::Switching { barrier: 3, switched: 1, subtasks: 2, failures: 1 });
    switch.barrier_passed(1, 3);
    assert_eq!(switch.phase(), SwapPhase::Probation { barrier: 3, failures: 1 });
    assert_eq!(tag(&mut b), "@1", "the second failure exhausts the budget");
    assert!(matches!(switch.phase(), SwapPhase::RolledBack { .. }));
}
