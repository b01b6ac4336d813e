//! Replacing a step's function while the pipeline runs (hot swap), and the
//! cost of its calls.
//!
//! Every function step's invoker is a [`Switchable`]: it calls the current
//! instance and keeps call statistics. A swap goes through the step's shared
//! [`StepSwitch`]:
//!
//! 1. [`begin`](StepSwitch::begin) hands over one started instance of the new
//!    version per subtask (`init` has already succeeded);
//! 2. the executor [`arm`](StepSwitch::arm)s the switch with the id of the
//!    next checkpoint barrier;
//! 3. each subtask, once that barrier has passed it (its snapshot taken),
//!    calls [`barrier_passed`](StepSwitch::barrier_passed): its next call
//!    goes to the new instance. Records before the barrier are v1's, after it
//!    v2's; state lives in the host, so nothing moves;
//! 4. during probation the old instance is kept: if the new one fails more
//!    often than the error budget allows, every subtask goes back to the old
//!    one (the failing call is retried on it) and the outcome says why.
//!
//! Nothing here knows wasmtime or threads beyond atomics and a mutex.

use super::udf::{Added, Filtered, Mapped, Processed, UdfFailure, UdfInvoker};
use crate::types::Batch;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the call-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 7] = [0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.1, 1.0];

/// Call statistics of one step, summed over its subtasks.
#[derive(Debug, Default)]
pub struct CallStats {
    /// Calls made.
    pub calls: AtomicU64,
    /// Wall time inside calls, ns.
    pub wall_ns: AtomicU64,
    /// CPU time of the calling threads inside calls, ns.
    pub cpu_ns: AtomicU64,
    /// Calls per latency bucket ([`LATENCY_BUCKETS`], then +Inf).
    pub buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Instances replaced for their memory size.
    pub recycles: AtomicU64,
    /// The largest memory one instance had after a call, bytes.
    pub peak_memory: AtomicU64,
}

impl CallStats {
    fn record(&self, wall: Duration, cpu_ns: u64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.wall_ns.fetch_add(wall.as_nanos() as u64, Ordering::Relaxed);
        self.cpu_ns.fetch_add(cpu_ns, Ordering::Relaxed);
        let secs = wall.as_secs_f64();
        let i = LATENCY_BUCKETS.iter().position(|&b| secs <= b).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// CPU time consumed by the calling thread, ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// How long a new version is watched, and how many failed calls it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probation {
    /// Watched this long after the last subtask switched.
    pub duration: Duration,
    /// Failed calls tolerated (more roll back).
    pub max_failures: u64,
}

impl Default for Probation {
    fn default() -> Self {
        Probation { duration: Duration::from_secs(2), max_failures: 0 }
    }
}

/// Where a swap stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapPhase {
    /// No swap since the pipeline started.
    Idle,
    /// New instances are ready; waiting for a checkpoint barrier to be chosen.
    Waiting,
    /// Switching at checkpoint `barrier`: `switched` of `subtasks` have.
    /// The subtasks that switched already run the new version: its failures
    /// count from here, not from probation.
    Switching {
        /// The checkpoint barrier.
        barrier: u64,
        /// Subtasks that switched.
        switched: usize,
        /// All subtasks.
        subtasks: usize,
        /// Failed calls of the new version so far.
        failures: u64,
    },
    /// Every subtask runs the new version, which is being watched.
    Probation {
        /// The checkpoint barrier.
        barrier: u64,
        /// Failed calls of the new version so far.
        failures: u64,
    },
    /// The new version took over for good at checkpoint `barrier`.
    Swapped {
        /// The checkpoint barrier.
        barrier: u64,
    },
    /// Every subtask went back to the old version.
    RolledBack {
        /// Why.
        reason: String,
    },
}

impl SwapPhase {
    /// Whether the swap is over (either way).
    pub fn is_final(&self) -> bool {
        matches!(self, SwapPhase::Idle | SwapPhase::Swapped { .. } | SwapPhase::RolledBack { .. })
    }
}

struct SwitchState {
    phase: SwapPhase,
    /// The version being swapped in.
    version: String,
    probation: Probation,
    /// New instances not yet taken, per subtask.
    pending: Vec<Option<Box<dyn UdfInvoker>>>,
    /// Which subtasks switched.
    switched: Vec<bool>,
    probation_until: Option<Instant>,
    failures: u64,
}

/// The swap state of one step, shared by its subtasks and the control plane.
pub struct StepSwitch {
    label: String,
    state: Mutex<SwitchState>,
    /// Per subtask: a new instance waits in `pending` and its barrier has passed.
    ready: Vec<AtomicBool>,
    /// Bumped when every subtask must go back to its old instance.
    rollbacks: AtomicU64,
    /// Set when probation is over: the old instances may go.
    settled: AtomicU64,
    /// Call statistics of the step.
    pub stats: CallStats,
}

impl std::fmt::Debug for StepSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepSwitch").field("label", &self.label).field("phase", &self.phase()).finish()
    }
}

impl StepSwitch {
    /// The switch of a step with `subtasks` subtasks.
    pub fn new(label: impl Into<String>, subtasks: usize) -> Arc<StepSwitch> {
        Arc::new(StepSwitch {
            label: label.into(),
            state: Mutex::new(SwitchState {
                phase: SwapPhase::Idle,
                version: String::new(),
                probation: Probation::default(),
                pending: (0..subtasks).map(|_| None).collect(),
                switched: vec![false; subtasks],
                probation_until: None,
                failures: 0,
            }),
            ready: (0..subtasks).map(|_| AtomicBool::new(false)).collect(),
            rollbacks: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            stats: CallStats::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SwitchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of subtasks.
    pub fn subtasks(&self) -> usize {
        self.ready.len()
    }

    /// Where the current (or last) swap stands.
    pub fn phase(&self) -> SwapPhase {
        self.lock().phase.clone()
    }

    /// Starts a swap to `version` with one started instance per subtask.
    /// Refused while another swap is under way.
    pub fn begin(&self, version: &str, invokers: Vec<Box<dyn UdfInvoker>>, probation: Probation) -> Result<(), String> {
        let mut s = self.lock();
        if !s.phase.is_final() {
            return Err(format!("{}: a swap is already under way ({:?})", self.label, s.phase));
        }
        if invokers.len() != self.ready.len() {
            return Err(format!("{} instances for {} subtasks", invokers.len(), self.ready.len()));
        }
        s.phase = SwapPhase::Waiting;
        s.version = version.to_string();
        s.probation = probation;
        s.pending = invokers.into_iter().map(Some).collect();
        s.switched.fill(false);
        s.probation_until = None;
        s.failures = 0;
        Ok(())
    }

    /// Whether the swap waits for a barrier.
    pub fn waiting(&self) -> bool {
        self.lock().phase == SwapPhase::Waiting
    }

    /// The swap happens at checkpoint barrier `barrier`.
    pub fn arm(&self, barrier: u64) {
        let mut s = self.lock();
        if s.phase == SwapPhase::Waiting {
            s.phase = SwapPhase::Switching { barrier, switched: 0, subtasks: self.ready.len(), failures: 0 };
        }
    }

    /// Subtask `subtask` has snapshotted at barrier `id`: from its next call
    /// on it runs the new version (if the swap is armed at `id` or earlier).
    pub fn barrier_passed(&self, subtask: u32, id: u64) {
        let i = subtask as usize;
        let mut s = self.lock();
        let SwapPhase::Switching { barrier, .. } = s.phase else { return };
        if id < barrier || i >= s.switched.len() || s.switched[i] {
            return;
        }
        s.switched[i] = true;
        self.ready[i].store(true, Ordering::Release);
        let switched = s.switched.iter().filter(|&&b| b).count();
        s.phase = if switched == s.switched.len() {
            s.probation_until = Some(Instant::now() + s.probation.duration);
            SwapPhase::Probation { barrier, failures: s.failures }
        } else {
            SwapPhase::Switching { barrier, switched, subtasks: s.switched.len(), failures: s.failures }
        };
    }

    /// Ends probation when its time is up (called by whoever watches the swap).
    pub fn settle(&self, now: Instant) -> SwapPhase {
        let mut s = self.lock();
        if let (SwapPhase::Probation { barrier, .. }, Some(until)) = (&s.phase, s.probation_until) {
            if now >= until {
                s.phase = SwapPhase::Swapped { barrier: *barrier };
                self.settled.fetch_add(1, Ordering::Release);
            }
        }
        s.phase.clone()
    }

    /// Gives the swap up (the pipeline stopped, or it took too long): every
    /// subtask keeps or goes back to the old version.
    pub fn cancel(&self, reason: &str) {
        let mut s = self.lock();
        if !s.phase.is_final() {
            self.roll_back(&mut s, reason.to_string());
        }
    }

    fn roll_back(&self, s: &mut SwitchState, reason: String) {
        tracing::warn!(step = %self.label, "swap to {} rolled back: {reason}", s.version);
        s.phase = SwapPhase::RolledBack { reason };
        s.pending.iter_mut().for_each(|p| *p = None);
        self.ready.iter().for_each(|r| r.store(false, Ordering::Release));
        self.rollbacks.fetch_add(1, Ordering::Release);
    }

    /// The new version failed a call: whether that exhausts the error budget
    /// (then the swap is rolled back). Counted from the first subtask's
    /// switch on: while others have not switched yet, the ones that have
    /// already run the new version on real records.
    fn new_version_failed(&self, failure: &UdfFailure, name: &str) -> bool {
        let mut s = self.lock();
        if !matches!(s.phase, SwapPhase::Switching { .. } | SwapPhase::Probation { .. }) {
            return matches!(s.phase, SwapPhase::RolledBack { .. });
        }
        s.failures += 1;
        let failures = s.failures;
        if failures > s.probation.max_failures {
            let during =
                if matches!(s.phase, SwapPhase::Switching { .. }) { "while switching" } else { "during probation" };
            let reason =
                format!("{name} failed {failures} call(s) {during} (budget {}): {failure}", s.probation.max_failures);
            self.roll_back(&mut s, reason);
            return true;
        }
        match &mut s.phase {
            SwapPhase::Switching { failures: f, .. } | SwapPhase::Probation { failures: f, .. } => *f = failures,
            _ => {}
        }
        false
    }
}

/// A step's invoker for one subtask: calls the current instance, switches
/// at a swap barrier, rolls back when the switch says so, and times calls.
pub struct Switchable {
    current: Box<dyn UdfInvoker>,
    /// The old instance, kept during probation.
    previous: Option<Box<dyn UdfInvoker>>,
    switch: Arc<StepSwitch>,
    subtask: usize,
    rollbacks: u64,
    settled: u64,
    watermark: Option<i64>,
}

impl Switchable {
    /// Wraps subtask `subtask`'s instance.
    pub fn new(current: Box<dyn UdfInvoker>, switch: Arc<StepSwitch>, subtask: u32) -> Switchable {
        Switchable {
            current,
            previous: None,
            switch,
            subtask: subtask as usize,
            rollbacks: 0,
            settled: 0,
            watermark: None,
        }
    }

    /// Takes a new instance or goes back to the old one, as the switch says.
    fn follow(&mut self) {
        let rollbacks = self.switch.rollbacks.load(Ordering::Acquire);
        if rollbacks != self.rollbacks {
            self.rollbacks = rollbacks;
            if let Some(old) = self.previous.take() {
                self.current = old;
            }
        }
        if self.switch.ready[self.subtask].load(Ordering::Acquire) {
            let mut s = self.switch.lock();
            if self.switch.ready[self.subtask].swap(false, Ordering::AcqRel) {
                if let Some(mut new) = s.pending[self.subtask].take() {
                    drop(s);
                    if let Some(w) = self.watermark {
                        new.set_watermark(w);
                    }
                    self.previous = Some(std::mem::replace(&mut self.current, new));
                }
            }
        }
        let settled = self.switch.settled.load(Ordering::Acquire);
        if settled != self.settled {
            self.settled = settled;
            self.previous = None;
        }
    }

    /// Calls `f` on the current instance; during probation a failure may
    /// roll the swap back, and the call is retried on the old instance.
    fn call<T>(&mut self, mut f: impl FnMut(&mut dyn UdfInvoker) -> Result<T, UdfFailure>) -> Result<T, UdfFailure> {
        self.follow();
        let (start, cpu) = (Instant::now(), thread_cpu_ns());
        let mut result = f(self.current.as_mut());
        if let Err(failure) = &result {
            if self.previous.is_some() && self.switch.new_version_failed(failure, self.current.name()) {
                self.rollbacks = self.switch.rollbacks.load(Ordering::Acquire);
                if let Some(old) = self.previous.take() {
                    self.current = old;
                }
                result = f(self.current.as_mut());
            }
        }
        let stats = &self.switch.stats;
        stats.record(start.elapsed(), thread_cpu_ns().saturating_sub(cpu));
        stats.recycles.fetch_add(self.current.take_recycles(), Ordering::Relaxed);
        stats.peak_memory.fetch_max(self.current.peak_memory(), Ordering::Relaxed);
        result
    }
}

impl UdfInvoker for Switchable {
    fn name(&self) -> &str {
        self.current.name()
    }
    fn map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure> {
        self.call(|u| u.map(input))
    }
    fn filter(&mut self, input: &Batch) -> Result<Filtered, UdfFailure> {
        self.call(|u| u.filter(input))
    }
    fn flat_map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure> {
        self.call(|u| u.flat_map(input))
    }
    fn set_watermark(&mut self, watermark: i64) {
        self.watermark = Some(watermark);
        self.current.set_watermark(watermark);
        if let Some(p) = self.previous.as_mut() {
            p.set_watermark(watermark);
        }
    }
    fn create(&mut self) -> Result<Vec<u8>, UdfFailure> {
        self.call(|u| u.create())
    }
    fn add(&mut self, groups: &[u8]) -> Result<Added, UdfFailure> {
        self.call(|u| u.add(groups))
    }
    fn merge(&mut self, a: &[u8], b: &[u8]) -> Result<Vec<u8>, UdfFailure> {
        self.call(|u| u.merge(a, b))
    }
    fn finish(&mut self, fired: &[u8]) -> Result<Batch, UdfFailure> {
        self.call(|u| u.finish(fired))
    }
    fn process(&mut self, groups: &[u8]) -> Result<Processed, UdfFailure> {
        self.call(|u| u.process(groups))
    }
    fn on_timer(&mut self, fired: &[u8]) -> Result<Vec<u8>, UdfFailure> {
        self.call(|u| u.on_timer(fired))
    }
}

#[cfg(test)]
mod tests;
