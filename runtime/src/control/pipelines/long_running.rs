//! The operations on a pipeline that wait on checkpoints — stop at a
//! savepoint, savepoint, swap — as [operations](crate::control::operations):
//! the request checks what it can and starts the work; a thread of the
//! server waits for it and records the outcome.

use super::super::operations::{OperationKind, OperationView};
use super::super::redact::{checkpoint_name, redact};
use super::super::{lock, random_hex, tenant, Caller, ControlError, Platform, Tenant};
use super::{SwapRequest, SwapView, STOP_TIMEOUT, SWAP_TIMEOUT};
use crate::connector::now_ms;
use crate::control::db::Db;
use crate::job::UdfCatalog;
use crate::operator::swap::{Probation, SwapPhase};
use crate::types::UdfRef;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The waiting part of an operation, run by its own thread.
type Wait = Box<dyn FnOnce() -> Result<serde_json::Value, ControlError> + Send>;

impl Platform {
    /// Registers operation `kind` on pipeline `id`, runs `check` at once
    /// (its error is the request's, and leaves no operation behind) and the
    /// wait it returns in a thread of its own.
    fn operate(
        &self,
        t: &Tenant,
        id: &str,
        kind: OperationKind,
        check: impl FnOnce() -> Result<Wait, ControlError>,
    ) -> Result<OperationView, ControlError> {
        let op = format!("op-{}", random_hex(12)?);
        let view = lock(&self.operations).begin(op.clone(), &t.id, kind, id, now_ms())?;
        let wait = match check() {
            Ok(w) => w,
            Err(e) => {
                lock(&self.operations).abandon(&op);
                return Err(e);
            }
        };
        let ops = self.operations.clone();
        let base = self.config.data_dir.clone();
        let thread = std::thread::Builder::new().name(format!("weir-{}-{id}", kind.as_str())).spawn({
            let op = op.clone();
            move || {
                // No server path in what a caller reads, as for any error.
                let outcome = wait().map_err(|mut e| {
                    e.message = redact(&e.message, &base);
                    e
                });
                lock(&ops).finish(&op, outcome.as_ref().cloned(), now_ms());
            }
        });
        if let Err(e) = thread {
            let e = ControlError::internal(format!("cannot start a thread: {e}"));
            lock(&self.operations).finish(&op, Err(&e), now_ms());
            return Err(e);
        }
        Ok(view)
    }

    /// Operation `op` of the caller.
    pub fn operation(&self, caller: &Caller, op: &str) -> Result<OperationView, ControlError> {
        let t = tenant(caller)?;
        lock(&self.operations).get(&t.id, op).ok_or_else(|| ControlError::not_found(format!("no operation {op}")))
    }

    /// The caller's operations, newest first.
    pub fn operations(&self, caller: &Caller) -> Result<Vec<OperationView>, ControlError> {
        Ok(lock(&self.operations).list(&tenant(caller)?.id))
    }

    /// Stops a pipeline at a savepoint. The operation's result is the
    /// pipeline's status and the savepoint it stopped at.
    pub fn stop_pipeline(&self, caller: &Caller, id: &str) -> Result<OperationView, ControlError> {
        let t = tenant(caller)?;
        self.pipelines.row(&self.db, t, id)?;
        self.operate(t, id, OperationKind::Stop, || {
            let serial = self.pipelines.lifecycle(id);
            let _one_at_a_time = lock(&serial);
            let row = self.pipelines.row(&self.db, t, id)?;
            let r = self
                .pipelines
                .active(id)
                .ok_or_else(|| ControlError::conflict(format!("pipeline {id} is not running ({})", row.status)))?;
            *lock(&r.status) = ("stopping".into(), None);
            r.controls.stop.store(true, Ordering::SeqCst);
            let (db, tenant, id, serial) = (self.db.clone(), t.id.clone(), id.to_string(), serial.clone());
            Ok(Box::new(move || {
                // Resume, stop and delete are serialised: a delete that came
                // first has joined the job (and this finds no pipeline), one
                // that comes later waits until the job is over.
                let _one_at_a_time = lock(&serial);
                let thread = lock(&r.thread).take();
                if let Some(job) = thread {
                    let deadline = Instant::now() + STOP_TIMEOUT;
                    while !job.is_finished() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    if !job.is_finished() {
                        *lock(&r.thread) = Some(job);
                        return Err(ControlError::internal(format!(
                            "pipeline {id} did not stop within {} s",
                            STOP_TIMEOUT.as_secs()
                        )));
                    }
                    let _ = job.join();
                }
                if !db.pipelines(Some(&tenant))?.iter().any(|p| p.id == id) {
                    return Err(ControlError::conflict(format!("pipeline {id} was deleted while it stopped")));
                }
                let (status, error) = r.status();
                db.set_pipeline_state(&id, "stopped", &status, error.as_deref())?;
                let progress = r.controls.progress();
                let at = progress.stopped_at.or(progress.latest).map(|d| checkpoint_name(&d.display().to_string()));
                Ok(json!({ "pipeline": id, "status": status, "error": error, "savepoint": at }))
            }) as Wait)
        })
    }

    /// Takes a savepoint of a running pipeline; the operation's result names it.
    pub fn savepoint(&self, caller: &Caller, id: &str) -> Result<OperationView, ControlError> {
        let t = tenant(caller)?;
        self.pipelines.row(&self.db, t, id)?;
        self.operate(t, id, OperationKind::Savepoint, || {
            let r = self
                .pipelines
                .active(id)
                .ok_or_else(|| ControlError::conflict(format!("pipeline {id} is not running")))?;
            let before = r.controls.progress();
            r.controls.savepoint.store(true, Ordering::SeqCst);
            let id = id.to_string();
            Ok(Box::new(move || {
                let deadline = Instant::now() + STOP_TIMEOUT;
                while Instant::now() < deadline {
                    let now = r.controls.progress();
                    if let Some(sp) = now.savepoints.get(before.savepoints.len()) {
                        return Ok(json!({ "savepoint": checkpoint_name(&sp.display().to_string()) }));
                    }
                    if now.failed > before.failed {
                        return Err(ControlError::internal("the savepoint failed (see the server's log)"));
                    }
                    if !r.is_active() {
                        return Err(ControlError::conflict(format!("pipeline {id} stopped before the savepoint")));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(ControlError::internal(format!("no savepoint within {} s", STOP_TIMEOUT.as_secs())))
            }) as Wait)
        })
    }

    /// Replaces a step's function at a checkpoint barrier; see
    /// [`crate::operator::swap`]. The operation's result is what the swap did.
    pub fn swap(
        &self,
        caller: &Caller,
        id: &str,
        step: &str,
        req: &SwapRequest,
    ) -> Result<OperationView, ControlError> {
        let started = Instant::now();
        let t = tenant(caller)?;
        self.pipelines.row(&self.db, t, id)?;
        self.operate(t, id, OperationKind::Swap, || {
            let r = self.pipelines.active(id).ok_or_else(|| {
                ControlError::conflict(format!("pipeline {id} is not running; a swap needs a running pipeline"))
            })?;
            let target = r
                .targets
                .iter()
                .find(|x| x.index.to_string() == step || x.name.as_deref() == Some(step))
                .cloned()
                .ok_or_else(|| {
                    ControlError::not_found(format!(
                        "pipeline {id} has no function step `{step}` (give its index or name)"
                    ))
                })?;
            let udf = UdfRef::parse(&req.udf).map_err(|e| ControlError::bad_request("invalid_udf", e))?;
            let probation = Probation {
                duration: Duration::from_millis(req.probation_ms.unwrap_or(2000).min(600_000)),
                max_failures: req.max_failures.unwrap_or(0),
            };
            let from = lock(&r.current).get(&target.index).cloned().unwrap_or_default();
            if from == udf.to_string() {
                return Err(ControlError::conflict(format!("step {} runs {udf} already", target.index)));
            }
            let bytes = self.catalog(&t.id).fetch(&udf).map_err(|e| ControlError::bad_request("unknown_udf", e))?;
            let component = self
                .host
                .load(&udf, &bytes)
                .map_err(|e| ControlError::bad_request("invalid_component", e.to_string()))?;
            component
                .check_kind(target.function)
                .map_err(|e| ControlError::bad_request("wrong_world", e.to_string()))?;
            let mut view = SwapView {
                step: target.index,
                from: from.clone(),
                to: udf.to_string(),
                outcome: "rolled_back".into(),
                barrier: None,
                reason: None,
                took_ms: 0,
                at_ms: 0,
            };
            let started_instances = target.start(&self.host, &component);
            let db = self.db.clone();
            let id = id.to_string();
            let finish = move |mut v: SwapView, r: &super::Running| {
                v.took_ms = started.elapsed().as_millis() as u64;
                v.at_ms = now_ms();
                lock(&r.swaps).push(v.clone());
                Ok(serde_json::to_value(v).expect("a swap view serializes"))
            };
            let invokers = match started_instances {
                Ok(i) => i,
                Err(e) => {
                    view.reason = Some(format!("the new version failed to start: {e}; the old version runs on"));
                    return Ok(Box::new(move || finish(view, &r)) as Wait);
                }
            };
            target.switch.begin(&udf.to_string(), invokers, probation).map_err(ControlError::conflict)?;
            r.controls.swap_at_next_barrier(target.switch.clone());
            Ok(Box::new(move || {
                let deadline = started + SWAP_TIMEOUT;
                loop {
                    let phase = target.switch.settle(Instant::now());
                    let latest = r.controls.progress().latest_id;
                    match next_step(&phase, latest, r.is_active(), Instant::now() > deadline, &from) {
                        SwapNext::Wait => {}
                        SwapNext::Cancel(reason) => target.switch.cancel(&reason),
                        SwapNext::RolledBack(reason) => {
                            view.reason = Some(reason);
                            break;
                        }
                        SwapNext::Swapped { barrier } => {
                            view.outcome = "swapped".into();
                            view.barrier = Some(barrier);
                            lock(&r.current).insert(target.index, udf.to_string());
                            record_step(&db, &id, target.index, &udf.to_string())?;
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                finish(view, &r)
            }) as Wait)
        })
    }
}

/// What the waiter of a swap does next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SwapNext {
    /// Not over: look again.
    Wait,
    /// Give the swap up: the old version goes on.
    Cancel(String),
    /// Over: the new version is the pipeline's from checkpoint `barrier` on.
    Swapped {
        /// The checkpoint that made it durable.
        barrier: u64,
    },
    /// Over: the old version runs on, for this reason.
    RolledBack(String),
}

/// The swap's next step, from where its switch stands (`phase`), the newest
/// complete checkpoint, whether the pipeline still runs and whether the
/// swap's time is up. A swap is the pipeline's only once the checkpoint of
/// its barrier is complete: until then a restart restores the one before,
/// with the old version (`from`).
fn next_step(phase: &SwapPhase, latest_complete: u64, active: bool, timed_out: bool, from: &str) -> SwapNext {
    match phase {
        SwapPhase::RolledBack { reason } => SwapNext::RolledBack(reason.clone()),
        SwapPhase::Swapped { barrier } if latest_complete >= *barrier => SwapNext::Swapped { barrier: *barrier },
        // Every subtask runs the new version and it cannot be cancelled; its
        // checkpoint will never complete now. (This waited forever, and
        // every later swap of the pipeline behind it.)
        SwapPhase::Swapped { barrier } if !active => SwapNext::RolledBack(format!(
            "the pipeline stopped before checkpoint {barrier}, which makes the swap durable, completed; \
             it resumes with {from}"
        )),
        // Checkpoints failing after the switch: wait for one to complete
        // (holding no request; a later swap is told this one is under way).
        SwapPhase::Swapped { .. } => SwapNext::Wait,
        SwapPhase::Idle => SwapNext::RolledBack("the swap was not started".into()),
        SwapPhase::Waiting | SwapPhase::Switching { .. } | SwapPhase::Probation { .. } if !active => {
            SwapNext::Cancel("the pipeline stopped during the swap".into())
        }
        SwapPhase::Waiting | SwapPhase::Switching { .. } | SwapPhase::Probation { .. } if timed_out => {
            SwapNext::Cancel(format!("not complete within {} s", SWAP_TIMEOUT.as_secs()))
        }
        SwapPhase::Waiting | SwapPhase::Switching { .. } | SwapPhase::Probation { .. } => SwapNext::Wait,
    }
}

/// Stores that step `index` of pipeline `id` now runs `udf` (what a resume builds).
fn record_step(db: &Db, id: &str, index: usize, udf: &str) -> Result<(), ControlError> {
    let row = db
        .pipelines(None)?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ControlError::conflict(format!("pipeline {id} was deleted during the swap")))?;
    let mut steps: BTreeMap<usize, String> = serde_json::from_str(&row.steps).unwrap_or_default();
    steps.insert(index, udf.to_string());
    db.set_pipeline_steps(id, &serde_json::to_string(&steps).expect("a map serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVE: bool = true;
    const STOPPED: bool = false;

    #[test]
    fn a_swap_is_the_pipelines_once_the_checkpoint_of_its_barrier_is_complete_and_not_before() {
        let swapped = SwapPhase::Swapped { barrier: 7 };
        assert_eq!(next_step(&swapped, 6, ACTIVE, false, "f@1"), SwapNext::Wait);
        assert_eq!(next_step(&swapped, 7, ACTIVE, false, "f@1"), SwapNext::Swapped { barrier: 7 });
        assert_eq!(next_step(&swapped, 9, STOPPED, true, "f@1"), SwapNext::Swapped { barrier: 7 }, "complete wins");
    }

    /// The bug: once every subtask ran the new version, a pipeline that
    /// stopped (or was deleted) before the barrier's checkpoint completed
    /// left the swap request waiting forever, and every later swap behind it.
    #[test]
    fn a_pipeline_stopped_after_the_switch_before_its_checkpoint_ends_the_swap_as_rolled_back() {
        let next = next_step(&SwapPhase::Swapped { barrier: 7 }, 6, STOPPED, false, "f@1");
        let SwapNext::RolledBack(reason) = next else { panic!("{next:?}") };
        assert!(reason.contains("before checkpoint 7") && reason.contains("resumes with f@1"), "{reason}");
    }

    #[test]
    fn checkpoints_failing_after_the_switch_keep_the_swap_waiting_past_its_deadline() {
        assert_eq!(next_step(&SwapPhase::Swapped { barrier: 7 }, 6, ACTIVE, true, "f@1"), SwapNext::Wait);
    }

    #[test]
    fn before_the_switch_a_stopped_pipeline_or_the_deadline_cancels() {
        let switching = SwapPhase::Switching { barrier: 3, switched: 1, subtasks: 2, failures: 0 };
        let probation = SwapPhase::Probation { barrier: 3, failures: 0 };
        for phase in [SwapPhase::Waiting, switching, probation] {
            assert_eq!(next_step(&phase, 0, ACTIVE, false, "f@1"), SwapNext::Wait, "{phase:?}");
            let stopped = next_step(&phase, 0, STOPPED, false, "f@1");
            assert_eq!(stopped, SwapNext::Cancel("the pipeline stopped during the swap".into()), "{phase:?}");
            let late = next_step(&phase, 0, ACTIVE, true, "f@1");
            assert_eq!(late, SwapNext::Cancel("not complete within 60 s".into()), "{phase:?}");
        }
        let rolled = SwapPhase::RolledBack { reason: "boom".into() };
        assert_eq!(next_step(&rolled, 0, ACTIVE, false, "f@1"), SwapNext::RolledBack("boom".into()));
    }
}
