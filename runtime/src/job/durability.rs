//! Before a checkpointed run: take the checkpoint directory's lock, find
//! what to continue from, settle the sink's output of the previous run, and
//! prepare RocksDB's working directory.

use super::JobError;
use crate::checkpoint::store::{self, NothingToCommit, Restorable, Shape};
use crate::checkpoint::{Committer, Store, Timing};
use crate::connector::sink::DirCommitter;
use crate::manifest::{Manifest, SinkSpec};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// What a run continues from, and where its state lives.
pub(super) struct Durability {
    /// The checkpoint or savepoint to continue from.
    pub restore: Option<Restorable>,
    /// Working directory of RocksDB state.
    pub work_dir: PathBuf,
    /// Checkpoints: where, and when.
    pub checkpointing: Option<(Store, Timing)>,
}

/// Held for the whole run: one process per checkpoint directory.
pub(super) struct Lock {
    _file: File,
}

/// What [`prepare`] found.
pub(super) struct Prepared {
    pub durability: Durability,
    pub lock: Option<Lock>,
    /// The pipeline had already finished at this checkpoint: nothing to do.
    pub finished: Option<PathBuf>,
}

/// Prepares a run of `m`, continuing from `from` (a checkpoint or savepoint
/// directory) or else from the newest complete checkpoint.
pub(super) fn prepare(m: &Manifest, from: Option<&Path>) -> Result<Prepared, JobError> {
    let Some(spec) = &m.checkpoint else {
        if from.is_some() {
            return Err(JobError::Restore("the manifest has no `checkpoint` section to continue with".into()));
        }
        let work_dir = working_dir(m, None)?;
        return Ok(Prepared {
            durability: Durability { restore: None, work_dir, checkpointing: None },
            lock: None,
            finished: None,
        });
    };
    let root = &spec.dir;
    std::fs::create_dir_all(root)
        .map_err(|e| JobError::Restore(format!("cannot create the checkpoint directory {}: {e}", root.display())))?;
    let lock = lock(root)?;
    let committer: Box<dyn Committer> = match &m.sink {
        SinkSpec::Dir { dir, .. } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| JobError::Output(format!("cannot create {}: {e}", dir.display())))?;
            Box::new(DirCommitter::new(dir))
        }
        SinkSpec::Kafka(spec) => super::kafka::committer(m, spec, root)?,
        _ => Box::new(NothingToCommit),
    };
    let shape = Shape {
        pipeline: m.name.clone(),
        parallelism: m.parallelism,
        max_parallelism: m.max_parallelism,
        steps: m.state_signature(),
    };
    let store = Store::open(root, shape, committer).map_err(JobError::Restore)?;
    store.clear_unfinished().map_err(JobError::Restore)?;
    let restore = match from {
        Some(dir) => Some(store::load(dir).map_err(|e| JobError::Restore(format!("{}: {e}", dir.display())))?),
        None => {
            let mut skipped = Vec::new();
            let found = store::latest(root, &mut skipped);
            for s in skipped {
                eprintln!("weir: {s}");
            }
            found
        }
    };
    if let Some(r) = &restore {
        store.check_compatible(r).map_err(JobError::Restore)?;
        store.recover(r).map_err(JobError::Restore)?;
    } else {
        // Output of a run that never completed a checkpoint is thrown away.
        store.discard_all().map_err(JobError::Restore)?;
    }
    let finished = restore.as_ref().filter(|r| r.metadata.is_final()).map(|r: &Restorable| r.dir.clone());
    let work_dir = working_dir(m, Some(root))?;
    let timing = Timing {
        interval: spec.interval.as_millis() as i64,
        min_pause: (spec.interval.as_millis() as i64 / 10).max(10),
        timeout: spec.timeout.as_millis() as i64,
    };
    Ok(Prepared {
        durability: Durability { restore, work_dir, checkpointing: Some((store, timing)) },
        lock: Some(lock),
        finished,
    })
}

fn lock(root: &Path) -> Result<Lock, JobError> {
    let path = root.join(".lock");
    let file = File::create(&path).map_err(|e| JobError::Restore(format!("cannot create {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Lock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(JobError::Restore(format!(
            "another weir process is running with the checkpoint directory {} (it holds {})",
            root.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(JobError::Restore(format!("cannot lock {}: {e}", path.display()))),
    }
}

/// RocksDB's working directory, emptied: `state.dir`, else `state/` in the
/// checkpoint directory (same file system, so snapshots hard-link), else a
/// directory in the system's temporary directory.
fn working_dir(m: &Manifest, checkpoints: Option<&Path>) -> Result<PathBuf, JobError> {
    let dir = match (&m.state.dir, checkpoints) {
        (Some(d), _) => d.join(format!("weir-{}", m.name)),
        (None, Some(root)) => root.join("state"),
        (None, None) => std::env::temp_dir().join(format!("weir-state-{}-{}", m.name, std::process::id())),
    };
    if m.state.backend == crate::manifest::StateBackendKind::Memory {
        return Ok(dir);
    }
    let fail = |e: io::Error| JobError::State(format!("cannot prepare the state directory {}: {e}", dir.display()));
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    std::fs::create_dir_all(&dir).map_err(fail)?;
    Ok(dir)
}
