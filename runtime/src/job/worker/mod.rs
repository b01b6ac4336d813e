//! Scale-out (`weir run --worker`): several processes run one pipeline.
//!
//! Every worker joins the pipeline's consumer group for the input topic and
//! the pipeline's repartition topic; the group coordinator decides which
//! worker owns which partitions, and each owned partition is a task (see
//! [`tasks`]) that the worker runs as a one-subtask job continuing from
//! the task's checkpoints on the shared checkpoint storage. A revoked
//! partition's task stops at a savepoint before the group hands it on; a
//! worker that dies loses its partitions when its group session times out,
//! and whoever gets them continues from their last complete checkpoint
//! (exactly-once output reads back what the dead worker published).

mod tasks;

pub use tasks::{layout, Layout, Task};

use super::{Job, JobError, UdfCatalog};
use crate::manifest::Manifest;
use crate::wasm::WasmHost;
use std::path::Path;
use std::time::Duration;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// How long the group waits for a silent worker before handing its
    /// partitions to the others.
    pub session: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions { session: Duration::from_secs(10) }
    }
}

/// What a worker did.
#[derive(Debug, Default, Clone)]
pub struct WorkerReport {
    /// Task runs this worker started.
    pub runs: u64,
    /// Records its task runs read.
    pub records_read: u64,
    /// Whether every task of the pipeline has finished (a bounded input).
    pub finished: bool,
}

/// The marker a task's directory gets when the task has finished.
const FINISHED: &str = "FINISHED";

fn is_finished(dir: &Path) -> bool {
    dir.join(FINISHED).exists()
}

#[cfg(feature = "kafka")]
mod supervisor;

#[cfg(feature = "kafka")]
pub use supervisor::run;

/// Runs `m` as a worker until every task finished (bounded input) or `stop` is set.
#[cfg(not(feature = "kafka"))]
pub fn run(
    _: &Manifest,
    _: &WasmHost,
    _: &dyn UdfCatalog,
    _: &WorkerOptions,
    _: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<WorkerReport, JobError> {
    Err(JobError::Source("this weir was built without Kafka support (cargo feature `kafka`); workers need it".into()))
}

/// Builds the job of `task` (the task's own manifest, from its checkpoints).
fn build(
    layout: &Layout,
    m: &Manifest,
    task: Task,
    host: &WasmHost,
    catalog: &dyn UdfCatalog,
) -> Result<Job, JobError> {
    let tm = layout.manifest(m, task);
    Job::build(&tm, host, catalog, None)
}
