//! A tenant's state quota (`max_state_mib`): the bytes on the server's disk
//! of the checkpoints and state of all its pipelines.
//!
//! Measured after each completed checkpoint of a pipeline, when what a
//! checkpoint added has landed, by walking the tenant's pipeline
//! directories (`checkpoints/`, `state/`). Per-call and per-key budgets
//! (`limits.state_per_call`, `limits.state_value`) stop one call from growing
//! state by much; this stops many small calls from growing it without end.
//! The pipeline whose checkpoint found the tenant over quota is stopped
//! without a savepoint (a savepoint would write more) and marked failed with
//! the reason, and not resumed at a restart; the tenant frees space by
//! deleting pipelines, or the operator raises the quota.

use std::path::{Path, PathBuf};

/// What a pipeline's watcher checks after each checkpoint.
#[derive(Debug, Clone)]
pub(super) struct StateQuota {
    /// The directories of every pipeline of the tenant.
    pub(super) pipelines: Vec<PathBuf>,
    /// The quota, bytes.
    pub(super) limit: u64,
}

impl StateQuota {
    /// Why the tenant is over its quota, if it is.
    pub(super) fn exceeded(&self) -> Option<String> {
        let used: u64 =
            self.pipelines.iter().flat_map(|p| [p.join("checkpoints"), p.join("state")]).map(|d| dir_bytes(&d)).sum();
        (used > self.limit).then(|| {
            format!(
                "the tenant's pipelines hold {} MiB of checkpoints and state, above its quota of {} MiB (max_state_mib); stopped without a savepoint",
                used >> 20,
                self.limit >> 20
            )
        })
    }
}

/// Bytes of the files under `dir` (symbolic links are not followed; a
/// missing or vanishing directory counts as empty: checkpoints are pruned
/// while we walk).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_filling_the_disk_through_many_pipelines_is_over_quota() {
        let root = tempfile::tempdir().unwrap();
        let mut pipelines = Vec::new();
        for (i, size) in [300_000usize, 400_000, 500_000].iter().enumerate() {
            let p = root.path().join(format!("p-{i}"));
            std::fs::create_dir_all(p.join("checkpoints/chk-1")).unwrap();
            std::fs::create_dir_all(p.join("state")).unwrap();
            std::fs::create_dir_all(p.join("output")).unwrap();
            std::fs::write(p.join("checkpoints/chk-1/data"), vec![0u8; *size]).unwrap();
            std::fs::write(p.join("state/sst"), vec![0u8; 100_000]).unwrap();
            // Output is not state: it does not count.
            std::fs::write(p.join("output/part-0.txt"), vec![0u8; 5_000_000]).unwrap();
            pipelines.push(p);
        }
        // 1.2 MB of checkpoints and 0.3 MB of state.
        let quota = |limit| StateQuota { pipelines: pipelines.clone(), limit };
        assert_eq!(quota(1_500_000).exceeded(), None);
        let reason = quota(1_499_999).exceeded().expect("over");
        assert!(reason.contains("max_state_mib"), "{reason}");
        assert_eq!(StateQuota { pipelines: vec![root.path().join("gone")], limit: 0 }.exceeded(), None);
    }
}
