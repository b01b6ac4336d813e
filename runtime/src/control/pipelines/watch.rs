//! The thread that watches a running pipeline: it records each completed
//! checkpoint in the index, lets go what the pipeline no longer needs (see
//! [`retention`]), checks the tenant's state quota (see
//! [`super::state_quota`])
//! and, when the job ends, records how it ended.

use super::state_quota::StateQuota;
use super::{manifest, retention, Retention, Running};
use crate::control::db::Db;
use crate::control::lock;
use crate::job::{Job, JobError};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What a pipeline's watcher lets go after each checkpoint (see
/// [`retention`]): the journal it has given back so far, and output.
#[derive(Default)]
struct Retaining {
    upto: u64,
    warned: bool,
}

impl Retaining {
    /// After a completed checkpoint: removes superseded savepoints, frees
    /// the journal behind the oldest retained checkpoint, and output beyond
    /// the retention.
    fn after_checkpoint(&mut self, id: &str, dir: &Path, retention: Retention) {
        retention::trim_output(&dir.join(manifest::OUTPUT), retention.output_bytes);
        // Superseded savepoints hold state files and journal offsets nothing can restore.
        retention::remove_superseded_savepoints(&dir.join(manifest::CHECKPOINTS));
        let path = dir.join(manifest::JOURNAL);
        if !path.exists() {
            return; // not an http source
        }
        let Some(floor) = retention::journal_floor(&dir.join(manifest::CHECKPOINTS)) else { return };
        if floor <= self.upto {
            return;
        }
        match retention::release_before(&path, floor) {
            Ok(upto) => self.upto = self.upto.max(upto),
            Err(e) if !self.warned => {
                self.warned = true;
                tracing::warn!(
                    "pipeline {id}: cannot give back the ingest journal's replayed bytes (it is kept whole): {e}"
                );
            }
            Err(_) => {}
        }
    }
}

/// Runs `job` on this thread, recording checkpoints and the end state; after
/// each checkpoint, checks the tenant's state quota (see [`state_quota`]).
pub(super) fn watch(
    id: &str,
    dir: &Path,
    retention: Retention,
    job: Job,
    r: &Arc<Running>,
    db: &Arc<Db>,
    quota: &dyn Fn(&Db) -> StateQuota,
) {
    let runner = std::thread::Builder::new().name(format!("weir-job-{id}")).spawn(move || job.run());
    let handle = match runner {
        Ok(h) => h,
        Err(e) => {
            *lock(&r.status) = ("failed".into(), Some(format!("cannot start a thread: {e}")));
            return;
        }
    };
    let mut recorded = 0u64;
    let mut over_quota: Option<String> = None;
    let mut retaining = Retaining::default();
    let mut sync = || {
        let p = r.controls.progress();
        if p.latest_id > recorded {
            if let Some(path) = &p.latest {
                let kind = if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("savepoint")) {
                    "savepoint"
                } else {
                    "checkpoint"
                };
                let _ =
                    db.insert_checkpoint(id, p.latest_id, kind, &path.display().to_string(), p.last_ms, p.last_at_ms);
                recorded = p.latest_id;
                retaining.after_checkpoint(id, dir, retention);
                if over_quota.is_none() {
                    over_quota = quota(db).exceeded();
                    if over_quota.is_some() {
                        r.controls.abort.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
    };
    while !handle.is_finished() {
        sync();
        std::thread::sleep(Duration::from_millis(100));
    }
    sync();
    let (status, error) = match handle.join() {
        Ok(Ok(summary)) if summary.checkpoints.stopped_at.is_some() => ("stopped".to_string(), None),
        Ok(Ok(_)) => ("finished".to_string(), None),
        Ok(Err(JobError::Failed(m))) if m.contains("stopped on request") => ("stopped".to_string(), None),
        Ok(Err(e)) => ("failed".to_string(), Some(e.to_string())),
        Err(_) => ("failed".to_string(), Some("the pipeline's thread panicked".to_string())),
    };
    let (status, error, desired) = match over_quota {
        // Not resumed at a restart: it would fill the disk again.
        Some(reason) => ("failed".to_string(), Some(reason), "stopped"),
        None => {
            let desired = if status == "failed" { "running" } else { "stopped" };
            (status, error, desired)
        }
    };
    if let Some(e) = &error {
        tracing::warn!("pipeline {id} failed: {e}");
    }
    let _ = db.set_pipeline_state(id, desired, &status, error.as_deref());
    *lock(&r.status) = (status, error);
}
