//! What a tenant uses of the server, beside its quotas: `GET /v1/usage`
//! (issue 18, item 8). Disk figures are what the files take on disk
//! (allocated blocks, as `du` counts them), so an ingest journal whose
//! replayed bytes were given back counts only what it still holds.
//!
//! Every part is bounded: functions by `max_component_mib` ×
//! `max_udf_versions`, checkpoints and state by `max_state_mib`, ingest
//! journals by `max_ingest_mib`, output by the server's
//! `retention.output_mib` and dead letters by `retention.dead_letters_mib`
//! per pipeline, times `max_pipelines`.

use super::{tenant, Caller, ControlError, Platform, Quotas};
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes on disk, by what holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// Stored function versions.
    pub functions: u64,
    /// Checkpoints, savepoints and state (what `max_state_mib` bounds).
    pub checkpoints_and_state: u64,
    /// Ingest journals and their receipts.
    pub ingest: u64,
    /// Committed (and staged) output.
    pub output: u64,
    /// Dead letters and late records.
    pub dead_letters: u64,
    /// All of it.
    pub total: u64,
}

/// A tenant's usage and quotas.
#[derive(Debug, Clone, Serialize)]
pub struct UsageView {
    /// The tenant's name.
    pub tenant: String,
    /// Its quotas.
    pub quotas: Quotas,
    /// Pipelines (running or not), against `max_pipelines`.
    pub pipelines: u64,
    /// Function versions, against `max_udf_versions`.
    pub udf_versions: u64,
    /// Bytes on the server's disk.
    pub disk: DiskUsage,
}

/// Bytes `path` takes on disk: a file's allocated blocks, a directory's
/// files' (links not followed; what vanishes while walked counts nothing).
fn on_disk(path: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(path) else { return 0 };
    if m.is_file() {
        return m.blocks() * 512;
    }
    if !m.is_dir() {
        return 0;
    }
    std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| on_disk(&e.path())).sum()
}

/// Bytes the ingest journal of the pipeline in `dir` holds, with its
/// receipts: what `max_ingest_mib` bounds. Each file counts its length less
/// its leading hole (the replayed bytes given back), not its allocated
/// blocks: some filesystems (XFS) count speculative preallocation in those,
/// which would refuse posts at half the quota. On a filesystem that cannot
/// punch holes nothing is given back, and the whole journal counts (it does
/// take that space).
pub(super) fn ingest_held(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| is_ingest(&e.file_name().to_string_lossy()))
        .map(|e| held(&e.path()))
        .sum()
}

/// The length of the file at `path` after its leading hole (0 if it cannot be opened).
fn held(path: &Path) -> u64 {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(path) else { return 0 };
    let Ok(len) = f.metadata().map(|m| m.len()) else { return 0 };
    // SAFETY: `f` is an open descriptor for the whole call; SEEK_DATA only
    // moves this descriptor's offset.
    let start = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_DATA) };
    match u64::try_from(start) {
        Ok(start) => len.saturating_sub(start),
        // ENXIO: no data after offset 0, the file is all hole; otherwise
        // (SEEK_DATA unsupported) count it whole.
        Err(_) if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) => 0,
        Err(_) => len,
    }
}

/// Whether a file of a pipeline's directory is its ingest journal's.
fn is_ingest(name: &str) -> bool {
    name.starts_with("ingest.")
}

impl Platform {
    /// The caller's usage.
    pub fn usage(&self, caller: &Caller) -> Result<UsageView, ControlError> {
        let t = tenant(caller)?;
        let pipelines = self.db.pipelines(Some(&t.id))?;
        let udf_versions = self.db.udfs(&t.id, None)?.len() as u64;
        let mut disk =
            DiskUsage { functions: on_disk(&self.config.data_dir.join("udfs").join(&t.id)), ..Default::default() };
        for p in &pipelines {
            let dir = self.pipelines.dir(&p.id);
            let files: Vec<(String, u64)> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), on_disk(&e.path())))
                .collect();
            for (name, bytes) in files {
                match name.as_str() {
                    "checkpoints" | "state" => disk.checkpoints_and_state += bytes,
                    "output" => disk.output += bytes,
                    n if is_ingest(n) => disk.ingest += bytes,
                    n if n.starts_with("dead-letters") || n.starts_with("late") => disk.dead_letters += bytes,
                    // Anything else the engine keeps there (locks, markers) counts in the total.
                    _ => disk.total += bytes,
                }
            }
        }
        disk.total += disk.functions + disk.checkpoints_and_state + disk.ingest + disk.output + disk.dead_letters;
        Ok(UsageView {
            tenant: t.name.clone(),
            quotas: t.quotas,
            pipelines: pipelines.len() as u64,
            udf_versions,
            disk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The quota counts what a journal still holds: its replayed bytes,
    /// given back as a punched hole, do not count.
    #[test]
    fn a_journal_holds_its_length_less_the_hole_punched_before_its_floor() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("ingest.log");
        let mut f = std::fs::File::create(&journal).unwrap();
        f.write_all(&vec![b'x'; 40_000]).unwrap();
        f.sync_all().unwrap();
        std::fs::write(dir.path().join("ingest.receipts"), vec![b'r'; 100]).unwrap();
        std::fs::write(dir.path().join("output"), vec![b'o'; 5_000]).unwrap();
        assert_eq!(ingest_held(dir.path()), 40_100, "the journal and its receipts, nothing else");
        // SAFETY: `f` is open; the call changes only the file's allocation.
        let rc = unsafe {
            libc::fallocate(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                32_768,
            )
        };
        if rc == 0 {
            assert_eq!(ingest_held(dir.path()), 40_000 - 32_768 + 100);
            let all = unsafe {
                libc::fallocate(
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    0,
                    40_960,
                )
            };
            assert_eq!(all, 0);
            assert_eq!(ingest_held(dir.path()), 100, "all hole: nothing held");
        }
        assert_eq!(ingest_held(&dir.path().join("missing")), 0);
    }
}
