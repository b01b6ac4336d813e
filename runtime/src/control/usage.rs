//! What a tenant uses of the server, beside its quotas: `GET /v1/usage`
//! (issue 18, item 8). Disk figures are what the files take on disk
//! (allocated blocks, as `du` counts them), so an ingest journal whose
//! replayed bytes were given back counts only what it still holds.

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
                    n if n.starts_with("ingest.") => disk.ingest += bytes,
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
