//! Checkpoints on disk: naming, completing atomically, pruning, and
//! finding the newest usable one.

use super::coordinator::{Kind, TaskId};
use super::metadata::{Metadata, OperatorSnapshot, SourcePosition, TaskSnapshot, FORMAT};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Completed periodic checkpoints kept (savepoints are never pruned).
const RETAINED: usize = 2;

/// Makes a sink's pre-committed output visible, or throws it away.
pub trait Committer: Send {
    /// Makes visible everything pre-committed for checkpoints up to `id`.
    fn commit(&self, id: u64) -> io::Result<()>;
    /// Makes visible the output written since the last checkpoint by
    /// subtasks that finished, as part of the final checkpoint `id`.
    fn commit_end(&self, id: u64) -> io::Result<()>;
    /// After a restore from checkpoint `id`: commits what it covers (its
    /// commit may have been cut short), discards everything later.
    fn recover(&self, id: u64) -> io::Result<()>;
}

/// A sink with nothing to commit (standard output, at-least-once Kafka).
pub struct NothingToCommit;

impl Committer for NothingToCommit {
    fn commit(&self, _id: u64) -> io::Result<()> {
        Ok(())
    }
    fn commit_end(&self, _id: u64) -> io::Result<()> {
        Ok(())
    }
    fn recover(&self, _id: u64) -> io::Result<()> {
        Ok(())
    }
}

/// What a pipeline's checkpoints must agree on to be restored.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The pipeline's name.
    pub pipeline: String,
    /// Parallelism of the keyed steps.
    pub parallelism: u32,
    /// Key groups.
    pub max_parallelism: u32,
    /// Signature of each stateful step.
    pub steps: Vec<(u32, String)>,
}

/// A pipeline's checkpoint directory.
pub struct Store {
    root: PathBuf,
    shape: Shape,
    committer: Box<dyn Committer>,
}

/// The directory name of checkpoint `id` once complete.
fn name_of(id: u64, kind: Kind) -> String {
    match kind {
        Kind::Checkpoint => format!("chk-{id:010}"),
        Kind::Savepoint | Kind::StopWithSavepoint => format!("savepoint-{id:010}"),
    }
}

/// The id in a directory name (`chk-0000000012`, `savepoint-...`, with or without `.inprogress`).
fn id_of(name: &str) -> Option<(u64, bool)> {
    let (rest, in_progress) = match name.strip_suffix(".inprogress") {
        Some(r) => (r, true),
        None => (name, false),
    };
    let digits = rest.strip_prefix("chk-").or_else(|| rest.strip_prefix("savepoint-"))?;
    Some((digits.parse().ok()?, in_progress))
}

/// Where tasks write their snapshots for checkpoint `id`.
pub fn in_progress_dir(root: &Path, id: u64) -> PathBuf {
    root.join(format!("chk-{id:010}.inprogress"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `dir/name` atomically (temporary file, fsync, rename, fsync of the directory).
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Why [`Store::finish`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The output is committed, but the final checkpoint was not written.
    Checkpoint(String),
    /// The output could not be committed.
    Commit(String),
}

/// A restorable checkpoint: its directory and metadata.
#[derive(Debug, Clone)]
pub struct Restorable {
    /// The checkpoint's directory.
    pub dir: PathBuf,
    /// Its metadata.
    pub metadata: Metadata,
}

impl Store {
    /// The checkpoints of `shape` under `root` (created if missing).
    pub fn open(root: &Path, shape: Shape, committer: Box<dyn Committer>) -> Result<Store, String> {
        fs::create_dir_all(root)
            .map_err(|e| format!("cannot create the checkpoint directory {}: {e}", root.display()))?;
        Ok(Store { root: root.to_path_buf(), shape, committer })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The id for the next checkpoint: after every id in the directory,
    /// complete, unfinished or damaged, so no number is ever used twice
    /// (sinks name their pending output by it).
    pub fn next_id(&self) -> u64 {
        let ids = fs::read_dir(&self.root).into_iter().flatten().flatten();
        ids.filter_map(|e| id_of(&e.file_name().to_string_lossy()).map(|(id, _)| id)).max().map_or(1, |id| id + 1)
    }

    /// Removes the unfinished checkpoints of earlier runs (the caller holds
    /// the directory's lock, so nobody is writing them).
    pub fn clear_unfinished(&self) -> Result<(), String> {
        let entries = fs::read_dir(&self.root).map_err(|e| format!("cannot read {}: {e}", self.root.display()))?;
        for e in entries.flatten() {
            if let Some((_, true)) = id_of(&e.file_name().to_string_lossy()) {
                fs::remove_dir_all(e.path()).map_err(|err| format!("cannot remove {}: {err}", e.path().display()))?;
            }
        }
        Ok(())
    }

    /// Checkpoint `id` failed: frees the space its snapshots took (late
    /// snapshots of it fail, which nobody waits for any more).
    pub fn abort(&self, id: u64) {
        let _ = fs::remove_dir_all(in_progress_dir(&self.root, id));
    }

    /// Completes checkpoint `id` from the tasks' snapshots: writes its
    /// metadata atomically, renames its directory, commits the sinks, prunes
    /// older checkpoints. Returns the complete directory.
    pub fn complete(
        &mut self,
        id: u64,
        kind: Kind,
        snapshots: BTreeMap<TaskId, TaskSnapshot>,
        now_ms: i64,
    ) -> Result<PathBuf, String> {
        let label = if kind.is_savepoint() { "savepoint" } else { "checkpoint" };
        let metadata = self.metadata(id, label, snapshots, now_ms);
        let dir = in_progress_dir(&self.root, id);
        let done = self.root.join(name_of(id, kind));
        let write = || -> io::Result<()> {
            fs::create_dir_all(&dir)?;
            write_atomically(&dir, "_metadata", &metadata.encode())?;
            fs::rename(&dir, &done)?;
            sync_dir(&self.root)
        };
        if let Err(e) = write() {
            self.abort(id);
            return Err(format!("cannot complete {}: {e}", done.display()));
        }
        self.committer
            .commit(id)
            .map_err(|e| format!("{} is complete, but committing the sink failed: {e}", done.display()))?;
        self.prune(id);
        Ok(done)
    }

    /// The job finished: records a final checkpoint `id` (restoring it has
    /// nothing to do) and commits every sink's remaining output.
    ///
    /// The output is committed even when the final checkpoint cannot be
    /// written (the data is complete; a failing checkpoint directory must
    /// not hold it back): the error then says so, and a later run restores
    /// the last checkpoint that was written, which discards the output
    /// committed after it before producing it again.
    pub fn finish(&mut self, id: u64, now_ms: i64) -> Result<(), Finish> {
        let metadata = self.metadata(id, "final", BTreeMap::new(), now_ms);
        let done = self.root.join(name_of(id, Kind::Checkpoint));
        let write = || -> io::Result<()> {
            let dir = in_progress_dir(&self.root, id);
            fs::create_dir_all(&dir)?;
            write_atomically(&dir, "_metadata", &metadata.encode())?;
            fs::rename(&dir, &done)?;
            sync_dir(&self.root)
        };
        let written = write().map_err(|e| format!("cannot write the final checkpoint {}: {e}", done.display()));
        self.committer
            .commit(id)
            .and_then(|_| self.committer.commit_end(id))
            .map_err(|e| Finish::Commit(format!("committing the sink's final output: {e}")))?;
        written.map_err(Finish::Checkpoint)?;
        self.prune(id);
        Ok(())
    }

    fn metadata(&self, id: u64, kind: &str, snapshots: BTreeMap<TaskId, TaskSnapshot>, now_ms: i64) -> Metadata {
        let mut sources: Vec<SourcePosition> = Vec::new();
        let mut generators = Vec::new();
        let mut operators: Vec<OperatorSnapshot> = Vec::new();
        for (_, s) in snapshots {
            sources.extend(s.source);
            generators.extend(s.generator);
            operators.extend(s.operators);
        }
        Metadata {
            format: FORMAT,
            id,
            kind: kind.into(),
            pipeline: self.shape.pipeline.clone(),
            created_ms: now_ms,
            parallelism: self.shape.parallelism,
            max_parallelism: self.shape.max_parallelism,
            steps: self.shape.steps.clone(),
            sources,
            generators,
            operators,
        }
    }

    /// Removes periodic checkpoints beyond the newest [`RETAINED`] and
    /// unfinished ones older than `completed`. Failures only leave garbage.
    fn prune(&self, completed: u64) {
        let Ok(entries) = fs::read_dir(&self.root) else { return };
        let mut periodic = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match id_of(&name) {
                Some((id, true)) if id < completed => {
                    let _ = fs::remove_dir_all(e.path());
                }
                Some((id, false)) if name.starts_with("chk-") => periodic.push((id, e.path())),
                _ => {}
            }
        }
        periodic.sort();
        let excess = periodic.len().saturating_sub(RETAINED);
        for (_, path) in periodic.into_iter().take(excess) {
            let _ = fs::remove_dir_all(path);
        }
    }

    /// Prepares a restore from `from`: its commit is finished and later
    /// sink output discarded.
    pub fn recover(&self, from: &Restorable) -> Result<(), String> {
        let id = from.metadata.id;
        // A final checkpoint also covers the output of the end of input.
        let end = if from.metadata.is_final() { self.committer.commit_end(id) } else { Ok(()) };
        let r = end.and_then(|_| self.committer.recover(id));
        r.map_err(|e| format!("recovering the sink's output for {}: {e}", from.dir.display()))
    }

    /// A fresh start: discards sink output of earlier runs that no
    /// checkpoint covers.
    pub fn discard_all(&self) -> Result<(), String> {
        self.committer.recover(0).map_err(|e| format!("discarding uncommitted sink output: {e}"))
    }

    /// Checks that `from` was taken from a pipeline this one can continue.
    pub fn check_compatible(&self, from: &Restorable) -> Result<(), String> {
        let m = &from.metadata;
        let at = from.dir.display();
        if m.max_parallelism != self.shape.max_parallelism {
            return Err(format!(
                "{at} has {} key groups (max_parallelism), this pipeline {}: keyed state cannot be mapped",
                m.max_parallelism, self.shape.max_parallelism
            ));
        }
        if !m.is_final() && m.steps != self.shape.steps {
            let show =
                |s: &[(u32, String)]| s.iter().map(|(i, d)| format!("steps[{i}] {d}")).collect::<Vec<_>>().join("; ");
            return Err(format!(
                "{at} was taken from a pipeline with other stateful steps ({}), this one has ({})",
                show(&m.steps),
                show(&self.shape.steps)
            ));
        }
        Ok(())
    }
}

/// The newest complete checkpoint or savepoint under `root` whose metadata
/// and files verify; those that do not are reported in `skipped`.
pub fn latest(root: &Path, skipped: &mut Vec<String>) -> Option<Restorable> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            match id_of(&name) {
                Some((id, false)) => Some((id, e.path())),
                _ => None,
            }
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, dir) in found {
        match load(&dir) {
            Ok(r) => return Some(r),
            Err(reason) => skipped.push(format!("skipping {}: {reason}", dir.display())),
        }
    }
    None
}

/// Reads and verifies the checkpoint in `dir` (metadata checksum, every
/// state file's length and checksum).
pub fn load(dir: &Path) -> Result<Restorable, String> {
    let mut bytes = Vec::new();
    File::open(dir.join("_metadata"))
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("_metadata: {e}"))?;
    let metadata = Metadata::decode(&bytes).map_err(|e| format!("_metadata: {e}"))?;
    for op in &metadata.operators {
        let Some(state) = &op.state else { continue };
        for f in &state.files {
            let path = dir.join(&state.dir).join(&f.name);
            let len = fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
            if len != f.len {
                return Err(format!("{}: {len} bytes, expected {}", path.display(), f.len));
            }
            let sum = hash_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if sum != f.xxh3 {
                return Err(format!("{}: checksum mismatch (corrupt)", path.display()));
            }
        }
    }
    Ok(Restorable { dir: dir.to_path_buf(), metadata })
}

/// XXH3-64 of a file's contents.
pub fn hash_file(path: &Path) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.digest());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests;
