//! The worker's loop: serve the group, run the owned tasks, stop revoked ones.

use super::{build, is_finished, layout, Layout, Task, WorkerOptions, WorkerReport, FINISHED};
use crate::connector::kafka::{ensure_topic, partitions, Membership};
use crate::exec::Controls;
use crate::job::{JobError, Summary, UdfCatalog};
use crate::manifest::{Manifest, SourceKind};
use crate::wasm::WasmHost;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the loop waits for the group between looks at the tasks.
const POLL: Duration = Duration::from_millis(200);

/// After a task could not start (its directory still locked by a worker
/// that is stopping it), how long before the next try.
const RETRY: Duration = Duration::from_secs(1);

/// A task running on its own thread.
struct Running {
    controls: Arc<Controls>,
    handle: JoinHandle<Result<Summary, JobError>>,
}

/// The tasks this worker runs, shared with the revocation callback.
#[derive(Default)]
struct Tasks {
    running: BTreeMap<Task, Running>,
    /// Tasks whose run ended, with how (`Err`: the worker fails).
    ended: Vec<(Task, Result<Summary, JobError>)>,
}

impl Tasks {
    /// Stops `task` at a savepoint and waits for it.
    fn stop(&mut self, task: Task) {
        if let Some(r) = self.running.remove(&task) {
            tracing::info!("task {}: stopping at a savepoint", task.name());
            r.controls.stop.store(true, Ordering::SeqCst);
            let result = r.handle.join().unwrap_or_else(|_| Err(JobError::Failed("the task panicked".into())));
            self.ended.push((task, result));
        }
    }

    /// Moves the runs that ended on their own to `ended`.
    fn reap(&mut self) {
        let done: Vec<Task> = self.running.iter().filter(|(_, r)| r.handle.is_finished()).map(|(t, _)| *t).collect();
        for t in done {
            if let Some(r) = self.running.remove(&t) {
                let result = r.handle.join().unwrap_or_else(|_| Err(JobError::Failed("the task panicked".into())));
                self.ended.push((t, result));
            }
        }
    }
}

fn lock(tasks: &Mutex<Tasks>) -> std::sync::MutexGuard<'_, Tasks> {
    tasks.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `m` as a worker until every task of the pipeline finished (a
/// bounded input) or `stop` is set (then its tasks stop at savepoints and
/// it leaves the group).
pub fn run(
    m: &Manifest,
    host: &WasmHost,
    catalog: &dyn UdfCatalog,
    options: &WorkerOptions,
    stop: Arc<AtomicBool>,
) -> Result<WorkerReport, JobError> {
    let SourceKind::Kafka(input) = &m.source.kind else {
        return Err(JobError::Source("workers share a Kafka topic's partitions: the source must be `kafka`".into()));
    };
    let parts = partitions(&input.brokers, &input.topic, &input.properties).map_err(JobError::Source)?;
    let layout = layout(m, parts).map_err(JobError::Source)?;
    if layout.cut.is_some() {
        ensure_topic(&input.brokers, &layout.repartition_topic, layout.partitions.len() as u32, &input.properties)
            .map_err(JobError::Output)?;
    }
    // Every task's job must build before the worker joins: a manifest
    // that cannot run fails here, not inside a rebalance.
    for task in layout.tasks() {
        std::fs::create_dir_all(layout.dir(task))
            .map_err(|e| JobError::Restore(format!("cannot create {}: {e}", layout.dir(task).display())))?;
    }
    let tasks = Arc::new(Mutex::new(Tasks::default()));
    let on_revoke = {
        let tasks = tasks.clone();
        let layout = layout.clone();
        Box::new(move |revoked: &[(String, i32)]| {
            let mut t = lock(&tasks);
            for (topic, p) in revoked {
                if let Some(task) = layout.task_of(topic, *p) {
                    t.stop(task);
                }
            }
        })
    };
    let membership = Membership::join(
        &input.brokers,
        &layout.group,
        &layout.topics(),
        &input.properties,
        options.session,
        on_revoke,
    )
    .map_err(JobError::Source)?;
    tracing::info!("worker of pipeline {} joined group {} ({} tasks)", m.name, layout.group, layout.tasks().len());
    let mut report = WorkerReport::default();
    let mut not_before: BTreeMap<Task, Instant> = BTreeMap::new();
    let result = (|| -> Result<(), JobError> {
        loop {
            let owned = membership.poll(POLL).map_err(JobError::Source)?;
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let mut t = lock(&tasks);
            t.reap();
            for (task, result) in std::mem::take(&mut t.ended) {
                match result {
                    Ok(summary) => {
                        report.records_read += summary.records_read();
                        if summary.checkpoints.stopped_at.is_none() {
                            mark_finished(&layout, task)?;
                        }
                    }
                    Err(e) => return Err(JobError::Failed(format!("task {}: {e}", task.name()))),
                }
            }
            for task in owned.iter().filter_map(|(topic, p)| layout.task_of(topic, *p)) {
                if t.running.contains_key(&task)
                    || is_finished(&layout.dir(task))
                    || not_before.get(&task).is_some_and(|at| Instant::now() < *at)
                {
                    continue;
                }
                match start(&layout, m, task, host, catalog) {
                    Ok(r) => {
                        report.runs += 1;
                        t.running.insert(task, r);
                    }
                    // Still locked by the worker that is handing it over (or by a
                    // dead one's file system lease): try again shortly.
                    Err(JobError::Restore(e)) if e.contains("another weir process") => {
                        tracing::info!("task {}: {e}; retrying", task.name());
                        not_before.insert(task, Instant::now() + RETRY);
                    }
                    Err(e) => return Err(JobError::Failed(format!("task {} cannot start: {e}", task.name()))),
                }
            }
            drop(t);
            if layout.input.bounded && layout.tasks().iter().all(|&task| is_finished(&layout.dir(task))) {
                report.finished = true;
                return Ok(());
            }
        }
    })();
    // Stop what still runs (at savepoints), then leave the group so the
    // others take over at once.
    let running: Vec<Task> = lock(&tasks).running.keys().copied().collect();
    for task in running {
        lock(&tasks).stop(task);
    }
    let ended = std::mem::take(&mut lock(&tasks).ended);
    for (task, r) in ended {
        match r {
            Ok(s) if s.checkpoints.stopped_at.is_none() => mark_finished(&layout, task)?,
            Ok(_) => {}
            Err(e) => tracing::warn!("task {}: {e}", task.name()),
        }
    }
    membership.leave();
    result.map(|()| report)
}

fn start(
    layout: &Layout,
    m: &Manifest,
    task: Task,
    host: &WasmHost,
    catalog: &dyn UdfCatalog,
) -> Result<Running, JobError> {
    let job = build(layout, m, task, host, catalog)?;
    match (job.resumed_from(), job.already_finished()) {
        (Some(from), _) => tracing::info!("task {}: continuing from {}", task.name(), from.display()),
        // Its last owner died between its final checkpoint and the FINISHED marker.
        (None, Some(at)) => {
            tracing::info!("task {}: continuing from {} (final: nothing left to do)", task.name(), at.display())
        }
        (None, None) => tracing::info!("task {}: starting", task.name()),
    }
    let controls = job.controls();
    let name = format!("weir-task-{}", task.name());
    let handle = std::thread::Builder::new()
        .name(name)
        .spawn(move || job.run())
        .map_err(|e| JobError::Failed(format!("cannot start a thread: {e}")))?;
    Ok(Running { controls, handle })
}

fn mark_finished(layout: &Layout, task: Task) -> Result<(), JobError> {
    tracing::info!("task {}: finished", task.name());
    crate::checkpoint::store::write_atomically(&layout.dir(task), FINISHED, b"")
        .map_err(|e| JobError::Restore(format!("cannot mark {} finished: {e}", layout.dir(task).display())))
}
