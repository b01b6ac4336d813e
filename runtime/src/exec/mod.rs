//! The executor: one thread per subtask, bounded channels between stages.
//!
//! A [`Plan`] is a list of stages of parallel subtasks; within a subtask the
//! operators are fused (a batch goes from one to the next by a function
//! call); between stages batches travel over bounded channels, one per pair
//! of sender and receiver subtasks, so a slow consumer slows its producers
//! (backpressure) and memory stays bounded. Watermarks and end of input are
//! broadcast; a receiving subtask's watermark is the minimum over its inputs.
//!
//! WebAssembly calls are synchronous on these threads; the executor has no
//! async runtime.
//!
//! Checkpoints: the calling thread runs the [`Coordinator`]; it sends
//! triggers to the source subtasks, which put a barrier between two batches
//! and snapshot; every other subtask aligns the barrier over its inputs
//! (holding back the inputs that delivered it until all have), snapshots,
//! and forwards it; sinks pre-commit. When every subtask acknowledged, the
//! [`Store`](crate::checkpoint::Store) completes the checkpoint and commits
//! the sinks.

mod output;
mod plan;
mod task;

pub use plan::{ChainOp, CheckpointPlan, EdgeKind, EventTimePlan, Plan, StagePlan, SubtaskInput, SubtaskPlan};

use crate::checkpoint::coordinator::Action;
use crate::checkpoint::store::Finish;
use crate::checkpoint::{Coordinator, Kind, TaskId, TaskSnapshot};
use crate::connector::now_ms;
use crate::operator::swap::StepSwitch;
use crate::operator::OperatorError;
use crate::types::Barrier;
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use output::Output;
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use task::{Ended, Task, TaskInput};

/// Why a subtask stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// An operator failed.
    Operator(OperatorError),
    /// Reading the source failed.
    Source(String),
    /// Writing the sink failed.
    Sink(String),
    /// The state storage failed.
    State(String),
    /// A neighbouring subtask stopped (a consequence of another error).
    Disconnected,
    /// A bug in the planner or executor.
    Internal(String),
    /// Stopped on request, without a savepoint.
    Aborted,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Operator(e) => write!(f, "{e}"),
            TaskError::Source(e) => write!(f, "source: {e}"),
            TaskError::Sink(e) => write!(f, "sink: {e}"),
            TaskError::State(e) => write!(f, "state: {e}"),
            TaskError::Disconnected => f.write_str("a neighbouring subtask stopped"),
            TaskError::Internal(e) => write!(f, "internal error: {e}"),
            TaskError::Aborted => f.write_str("stopped on request without a savepoint"),
        }
    }
}

/// What the executor tells a source subtask.
pub(crate) enum Control {
    /// Put this barrier into the stream.
    Trigger(Barrier),
}

/// What a subtask tells the executor.
pub(crate) enum TaskEvent {
    /// Snapshot taken for checkpoint `id`.
    Ack { task: TaskId, id: u64, snapshot: TaskSnapshot },
    /// Snapshot for checkpoint `id` failed.
    Decline { task: TaskId, id: u64, reason: String },
    /// A source subtask read its last record.
    SourceFinished(TaskId),
    /// The subtask's thread is done.
    Finished { result: Result<Ended, TaskError> },
}

/// Requests to a running job (from signals or the control plane), and what
/// it has done so far.
#[derive(Debug, Default)]
pub struct Controls {
    /// Stop reading and drain (or, when checkpointed, stop with a savepoint).
    pub stop: Arc<AtomicBool>,
    /// Take a savepoint and go on.
    pub savepoint: Arc<AtomicBool>,
    /// Stop at once, without a savepoint (a restart resumes from the last checkpoint).
    pub abort: Arc<AtomicBool>,
    /// Function swaps waiting for a checkpoint barrier.
    pub swaps: Mutex<Vec<Arc<StepSwitch>>>,
    /// Checkpoints so far.
    pub progress: Mutex<RunReport>,
}

impl Controls {
    /// Checkpoints so far.
    pub fn progress(&self) -> RunReport {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Swaps `switch` (already [`begun`](StepSwitch::begin)) in at the next checkpoint barrier.
    pub fn swap_at_next_barrier(&self, switch: Arc<StepSwitch>) {
        self.swaps.lock().unwrap_or_else(PoisonError::into_inner).push(switch);
    }
}

/// How a run went, besides its error.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    /// Checkpoints completed.
    pub completed: u64,
    /// Checkpoints that failed (the job went on).
    pub failed: u64,
    /// The newest complete checkpoint or savepoint.
    pub latest: Option<PathBuf>,
    /// Set when the job stopped at a savepoint (without draining).
    pub stopped_at: Option<PathBuf>,
    /// Longest time from trigger to completion, ms.
    pub slowest_ms: i64,
    /// Id of the newest complete checkpoint or savepoint.
    pub latest_id: u64,
    /// Time from trigger to completion of the newest, ms.
    pub last_ms: i64,
    /// When the newest completed, ms since the epoch.
    pub last_at_ms: i64,
    /// Savepoints taken by this run.
    pub savepoints: Vec<PathBuf>,
}

/// How often the coordinator looks at the clock.
const POLL: Duration = Duration::from_millis(20);

/// Runs `plan` to completion (or until stopped). Returns the first real
/// error if any subtask failed.
pub fn run(plan: Plan, controls: Arc<Controls>) -> (RunReport, Result<(), TaskError>) {
    if let Err(e) = plan.check() {
        return (RunReport::default(), Err(TaskError::Internal(e)));
    }
    let Plan { stages, edges, batch_size, channel_capacity, sink_metrics, checkpointing } = plan;

    // Channels of edge i: receivers[i][downstream][upstream], senders[i][upstream][downstream].
    let mut receivers: Vec<Vec<Vec<Receiver<crate::types::Message>>>> = Vec::new();
    let mut senders: Vec<Vec<Vec<Sender<crate::types::Message>>>> = Vec::new();
    for (i, _) in edges.iter().enumerate() {
        let (up, down) = (stages[i].subtasks.len(), stages[i + 1].subtasks.len());
        let mut rx = vec![Vec::with_capacity(up); down];
        let mut tx = vec![Vec::with_capacity(down); up];
        for u in tx.iter_mut() {
            for r in rx.iter_mut() {
                let (s, rcv) = bounded(channel_capacity);
                u.push(s);
                r.push(rcv);
            }
        }
        receivers.push(rx);
        senders.push(tx);
    }

    // Set when a subtask fails: sources stop without ending their output, so
    // no downstream subtask mistakes the cut-off input for a complete one.
    let failed = Arc::new(AtomicBool::new(false));
    // Drain on stop only without checkpoints; with them, stop means a savepoint.
    let drain = Arc::new(AtomicBool::new(false));
    let (events_tx, events) = unbounded::<TaskEvent>();
    let root = checkpointing.as_ref().map(|c| Arc::new(c.store.root().to_path_buf()));
    let mut triggers: Vec<Sender<Control>> = Vec::new();
    let (mut all, mut sources) = (BTreeSet::new(), BTreeSet::new());
    let mut handles = Vec::new();
    let last = stages.len() - 1;
    for (si, stage) in stages.into_iter().enumerate().rev() {
        let mut stage_rx = if si > 0 { receivers.pop().unwrap_or_default() } else { Vec::new() };
        let mut stage_tx = if si < last { senders.pop().unwrap_or_default() } else { Vec::new() };
        for (ti, sub) in stage.subtasks.into_iter().enumerate().rev() {
            let id: TaskId = (si as u32, ti as u32);
            all.insert(id);
            let inputs = stage_rx.pop().unwrap_or_default();
            let output = match sub.sink {
                Some(sink) => Output::Sink { sink, metrics: sink_metrics.clone() },
                None => {
                    let targets = stage_tx.pop().unwrap_or_default();
                    match edges[si] {
                        EdgeKind::Rebalance => Output::Rebalance { next: ti % targets.len().max(1), targets },
                        EdgeKind::Hash { max_parallelism } => {
                            let writers = targets.iter().map(|_| crate::types::BatchWriter::new()).collect();
                            Output::Hash { targets, max_parallelism, writers }
                        }
                    }
                }
            };
            let control = match (&sub.input, &checkpointing) {
                (SubtaskInput::Source(_), Some(_)) => {
                    sources.insert(id);
                    let (tx, rx) = unbounded();
                    triggers.push(tx);
                    Some(rx)
                }
                _ => None,
            };
            let ticks = sub.chain.iter().any(|c| c.op.wants_ticks());
            let task = Task {
                input: TaskInput::from_plan(sub.input, inputs),
                chain: sub.chain,
                output,
                batch_size,
                stop: drain.clone(),
                failed: failed.clone(),
                event_time: sub.event_time,
                ticks,
                last_tick: 0,
                idle: false,
                id,
                control,
                events: events_tx.clone(),
                checkpoints: root.clone(),
                key_groups: sub.key_groups,
            };
            let (task_failed, events) = (failed.clone(), events_tx.clone());
            let name = format!("weir-{}-{ti}", stage.name);
            let spawned = std::thread::Builder::new().name(name.clone()).spawn(move || {
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run())).unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                        Err(TaskError::Internal(format!("a subtask panicked: {}", what.unwrap_or_default())))
                    });
                if result.is_err() {
                    task_failed.store(true, Ordering::Relaxed);
                }
                let _ = events.send(TaskEvent::Finished { result });
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    let _ = events_tx.send(TaskEvent::Finished {
                        result: Err(TaskError::Internal(format!("cannot start thread {name}: {e}"))),
                    });
                }
            }
        }
    }
    drop(events_tx);

    let total = all.len();
    let mut driver = Driver {
        coordinator: checkpointing.as_ref().map(|c| Coordinator::new(c.timing, all, sources, c.first_id, now_ms())),
        store: checkpointing.map(|c| c.store),
        triggers,
        started: std::collections::BTreeMap::new(),
        report: RunReport::default(),
        arming: Vec::new(),
        controls: controls.clone(),
    };
    let mut first: Option<TaskError> = None;
    let mut finished = 0;
    let mut at_savepoint = 0;
    let mut stop_asked = false;
    while finished < total {
        let event = match events.recv_timeout(POLL) {
            Ok(e) => Some(e),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let now = now_ms();
        match event {
            Some(TaskEvent::Finished { result }) => {
                finished += 1;
                match result {
                    Ok(Ended::Finished) => {}
                    Ok(Ended::AtSavepoint) => at_savepoint += 1,
                    Err(e) => {
                        tracing::debug!("subtask stopped: {e}");
                        let better = match (&first, &e) {
                            (None, _) => true,
                            (Some(TaskError::Disconnected), other) => *other != TaskError::Disconnected,
                            _ => false,
                        };
                        if better {
                            first = Some(e);
                        }
                    }
                }
            }
            Some(TaskEvent::Ack { task, id, snapshot }) => {
                let action = driver.coordinator.as_mut().and_then(|c| c.ack(task, id, snapshot, now));
                driver.act(action, now);
            }
            Some(TaskEvent::Decline { task, id, reason }) => {
                let action = driver.coordinator.as_mut().and_then(|c| c.decline(task, id, &reason, now));
                driver.act(action, now);
            }
            Some(TaskEvent::SourceFinished(task)) => {
                let action = driver.coordinator.as_mut().and_then(|c| c.source_finished(task, now));
                driver.act(action, now);
            }
            None => {}
        }
        if controls.abort.load(Ordering::Relaxed) && !failed.swap(true, Ordering::Relaxed) {
            first = Some(TaskError::Aborted);
        }
        if failed.load(Ordering::Relaxed) {
            continue;
        }
        let swaps: Vec<Arc<StepSwitch>> =
            controls.swaps.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect();
        for switch in swaps {
            match driver.coordinator.as_mut().map(|c| c.request(Kind::Checkpoint)) {
                None => switch.cancel("the pipeline takes no checkpoints, and a swap happens at a checkpoint barrier"),
                Some(Err(e)) => switch.cancel(&format!("no checkpoint barrier can be placed: {e}")),
                Some(Ok(())) => driver.arming.push(switch),
            }
        }
        if controls.stop.load(Ordering::Relaxed) && !stop_asked {
            stop_asked = true;
            match driver.coordinator.as_mut() {
                None => drain.store(true, Ordering::Relaxed),
                Some(c) => match c.request(Kind::StopWithSavepoint) {
                    Ok(()) => tracing::info!("stopping with a savepoint"),
                    Err(e) => eprintln!("weir: cannot stop with a savepoint: {e}; it finishes on its own (Ctrl-C again to abort and resume later from the last checkpoint)"),
                },
            }
        }
        if controls.savepoint.swap(false, Ordering::Relaxed) {
            match driver.coordinator.as_mut().map(|c| c.request(Kind::Savepoint)) {
                None => eprintln!("weir: cannot take a savepoint: the pipeline has no checkpoint directory"),
                Some(Err(e)) => eprintln!("weir: cannot take a savepoint: {e}"),
                Some(Ok(())) => {}
            }
        }
        let action = driver.coordinator.as_mut().and_then(|c| c.poll(now));
        driver.act(action, now);
    }
    for h in handles {
        let _ = h.join();
    }
    for switch in driver.arming.drain(..) {
        switch.cancel("the pipeline stopped before the swap barrier");
    }
    if let Some(e) = first {
        return (driver.report, Err(e));
    }
    if at_savepoint > 0 {
        if driver.report.stopped_at.is_none() {
            let e = TaskError::Internal(
                "the job stopped, but its savepoint failed (see above); a restart resumes from the last checkpoint"
                    .into(),
            );
            return (driver.report, Err(e));
        }
        return (driver.report, Ok(()));
    }
    if let (Some(store), Some(c)) = (driver.store.as_mut(), driver.coordinator.as_ref()) {
        match store.finish(c.next_id(), now_ms()) {
            Ok(()) => {}
            Err(Finish::Checkpoint(e)) => {
                driver.report.failed += 1;
                eprintln!("weir: {e}; the output is complete and committed, but a rerun would start over from the last checkpoint written");
            }
            Err(Finish::Commit(e)) => return (driver.report, Err(TaskError::Sink(e))),
        }
    }
    (driver.report, Ok(()))
}

/// Carries out the coordinator's decisions.
struct Driver {
    coordinator: Option<Coordinator<TaskSnapshot>>,
    store: Option<crate::checkpoint::Store>,
    triggers: Vec<Sender<Control>>,
    started: std::collections::BTreeMap<u64, i64>,
    report: RunReport,
    /// Swaps to arm at the next barrier.
    arming: Vec<Arc<StepSwitch>>,
    controls: Arc<Controls>,
}

impl Driver {
    fn act(&mut self, action: Option<Action<TaskSnapshot>>, now: i64) {
        if action.is_some() {
            self.carry_out(action, now);
            *self.controls.progress.lock().unwrap_or_else(PoisonError::into_inner) = self.report.clone();
        }
    }

    fn carry_out(&mut self, action: Option<Action<TaskSnapshot>>, now: i64) {
        match action {
            None => {}
            Some(Action::Trigger { id, kind }) => {
                self.started.insert(id, now);
                for switch in self.arming.drain(..) {
                    switch.arm(id);
                }
                let barrier = Barrier { id, stop: kind == Kind::StopWithSavepoint };
                for t in &self.triggers {
                    // A source that has finished no longer listens; the coordinator hears about it.
                    let _ = t.send(Control::Trigger(barrier));
                }
            }
            Some(Action::Complete { id, kind, snapshots }) => {
                let took = now - self.started.remove(&id).unwrap_or(now);
                let Some(store) = self.store.as_mut() else { return };
                match store.complete(id, kind, snapshots, now) {
                    Ok(dir) => {
                        self.report.completed += 1;
                        self.report.slowest_ms = self.report.slowest_ms.max(took);
                        tracing::info!("checkpoint {id} complete in {took} ms: {}", dir.display());
                        if kind.is_savepoint() {
                            eprintln!("weir: savepoint {}", dir.display());
                        }
                        if kind == Kind::StopWithSavepoint {
                            self.report.stopped_at = Some(dir.clone());
                        }
                        if kind.is_savepoint() {
                            self.report.savepoints.push(dir.clone());
                        }
                        self.report.latest = Some(dir);
                        (self.report.latest_id, self.report.last_ms, self.report.last_at_ms) = (id, took, now);
                    }
                    Err(e) => {
                        self.report.failed += 1;
                        tracing::warn!("checkpoint {id} failed: {e}; the pipeline goes on");
                        if kind.is_savepoint() {
                            eprintln!("weir: savepoint {id} failed: {e}");
                        }
                    }
                }
            }
            Some(Action::Abort { id, kind, reason }) => {
                self.started.remove(&id);
                if let Some(store) = &self.store {
                    store.abort(id);
                }
                self.report.failed += 1;
                let what = if kind.is_savepoint() { "savepoint" } else { "checkpoint" };
                tracing::warn!("{what} {id} failed: {reason}; the pipeline goes on");
                if kind.is_savepoint() {
                    eprintln!("weir: {what} {id} failed: {reason}");
                }
            }
        }
    }
}
