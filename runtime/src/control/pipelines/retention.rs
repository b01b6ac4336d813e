//! What a hosted pipeline keeps on disk, and what it lets go (issue 18,
//! item 8: the ingest journal was never compacted, so a pipeline fed over
//! HTTP grew its directory by every byte ever posted).
//!
//! **The ingest journal** is read by byte offset, and checkpoints store
//! those offsets, so its bytes cannot move. What no retained checkpoint or
//! savepoint can replay any more — the bytes before the smallest journal
//! offset any of them holds — is given back to the filesystem by punching a
//! hole (`fallocate(PUNCH_HOLE | KEEP_SIZE)`): the file keeps its length
//! and every offset, its blocks before the floor are freed, and reading
//! them would give zeros (nothing does: a restore starts at a retained
//! checkpoint's offset, at or after the floor). Done by the pipeline's
//! watcher after each completed checkpoint; the floor only moves forward.
//!
//! A filesystem that cannot punch holes keeps the journal whole (one
//! warning in the log).
//!
//! **Savepoints** (a stop's, a server shutdown's, or asked for) are never
//! pruned by the engine, and each holds a journal offset: kept for ever,
//! every stop or server restart would pin its pipeline's journal (and its
//! state files) for good, growing the tenant's disk with every byte posted
//! since. Under `weir serve` a pipeline resumes from its *newest*
//! checkpoint or savepoint and nothing can name an older one, so a
//! savepoint older than every retained periodic checkpoint can never be
//! restored again: it is superseded and removed, before the floor is
//! computed.
//!
//! **Committed output** (`output/part-S-C.txt`, one file per subtask and
//! checkpoint) is kept up to the server's `retention.output_mib` per
//! pipeline: beyond it the oldest files go, never the newest. A reader's
//! cursor into a file that went continues at the oldest file kept.

use crate::checkpoint::{Metadata, SourcePosition};
use std::io;
use std::path::{Path, PathBuf};

/// What the server keeps of each pipeline's output and dead letters
/// (`retention` in its config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Committed output kept per pipeline, bytes.
    pub output_bytes: u64,
    /// Dead letters (and late records) kept per pipeline, MiB: the current
    /// file and [`DEAD_LETTER_FILES`]` - 1` rotated ones, a quarter each.
    pub dead_letters_mib: u64,
}

/// Files the dead letters of a pipeline are kept in (the current one and
/// the rotated ones).
pub const DEAD_LETTER_FILES: u64 = 4;

impl Retention {
    /// Where the dead-letter file rotates, MiB.
    pub(super) fn dead_letters_rotate_mib(&self) -> u64 {
        (self.dead_letters_mib / DEAD_LETTER_FILES).max(1)
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention { output_bytes: 256 << 20, dead_letters_mib: 256 }
    }
}

/// Deletes the oldest committed output files of `dir` while they hold more
/// than `keep` bytes, never the newest; returns how many went.
pub(super) fn trim_output(dir: &Path, keep: u64) -> usize {
    let files: Vec<(PathBuf, u64)> = super::output::part_files(dir)
        .into_iter()
        .map(|(_, _, path)| {
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            (path, len)
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len)| len).sum();
    let mut removed = 0;
    for (path, len) in files.iter().take(files.len().saturating_sub(1)) {
        if total <= keep {
            break;
        }
        if std::fs::remove_file(path).is_ok() {
            total -= len;
            removed += 1;
        }
    }
    removed
}

/// Holes are punched in whole blocks of this size.
const BLOCK: u64 = 4096;

/// The smallest journal offset held by any complete checkpoint or savepoint
/// under `checkpoints`: nothing before it can be replayed. `None` when there
/// is none, or one cannot be read (then nothing is given back this time).
pub(super) fn journal_floor(checkpoints: &Path) -> Option<u64> {
    let mut floor: Option<u64> = None;
    for e in std::fs::read_dir(checkpoints).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let complete = (name.starts_with("chk-") || name.starts_with("savepoint-")) && !name.ends_with(".inprogress");
        if !complete {
            continue;
        }
        // Pruned meanwhile, or unreadable: keep everything this round.
        let metadata = Metadata::decode(&std::fs::read(e.path().join("_metadata")).ok()?).ok()?;
        for p in &metadata.sources {
            if let SourcePosition::File { offset, .. } = p {
                floor = Some(floor.map_or(*offset, |f| f.min(*offset)));
            }
        }
    }
    floor
}

/// The id of a complete checkpoint (`chk-N`) or savepoint (`savepoint-N`)
/// directory name; checkpoints and savepoints share one counter.
fn complete_id(name: &str) -> Option<(u64, bool)> {
    if name.ends_with(".inprogress") {
        return None;
    }
    if let Some(n) = name.strip_prefix("chk-") {
        return Some((n.parse().ok()?, false));
    }
    Some((name.strip_prefix("savepoint-")?.parse().ok()?, true))
}

/// Removes the savepoints under `checkpoints` older than its oldest
/// complete periodic checkpoint, once there are two of them (the engine
/// retains two); returns how many went.
pub(super) fn remove_superseded_savepoints(checkpoints: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(checkpoints) else { return 0 };
    let found: Vec<(u64, bool, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let (id, savepoint) = complete_id(&e.file_name().to_string_lossy())?;
            Some((id, savepoint, e.path()))
        })
        .collect();
    let checkpoints: Vec<u64> = found.iter().filter(|(_, savepoint, _)| !savepoint).map(|(id, _, _)| *id).collect();
    // Both retained checkpoints, so one that proves unreadable leaves another.
    let Some(oldest_checkpoint) = checkpoints.iter().min().filter(|_| checkpoints.len() >= 2).copied() else {
        return 0;
    };
    found
        .iter()
        .filter(|(id, savepoint, _)| *savepoint && *id < oldest_checkpoint)
        .filter(|(_, _, path)| std::fs::remove_dir_all(path).is_ok())
        .count()
}

/// Frees the blocks of `journal` before `floor` (whole blocks only);
/// returns the offset freed up to.
pub(super) fn release_before(journal: &Path, floor: u64) -> io::Result<u64> {
    let upto = floor - floor % BLOCK;
    if upto == 0 {
        return Ok(0);
    }
    let f = std::fs::OpenOptions::new().write(true).open(journal)?;
    let len = libc::off_t::try_from(upto).map_err(|_| io::Error::other("offset out of range"))?;
    // SAFETY: `f` is an open file descriptor for the duration of the call;
    // the call only changes the file's allocation, never its length.
    let rc = unsafe {
        libc::fallocate(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            0,
            len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(upto)
}

/// Bytes a file takes on disk (its allocated blocks), not its length.
#[cfg(test)]
fn on_disk(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(path).unwrap()) * 512
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn released_blocks_leave_the_length_and_every_byte_after_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let line = "x".repeat(99) + "\n";
        let mut f = std::fs::File::create(&path).unwrap();
        for _ in 0..10_000 {
            f.write_all(line.as_bytes()).unwrap();
        }
        f.sync_all().unwrap();
        let before = std::fs::read(&path).unwrap();
        let floor = 700_050;
        assert_eq!(release_before(&path, floor).unwrap(), 700_050 - 700_050 % BLOCK);
        let after = std::fs::read(&path).unwrap();
        assert_eq!(after.len(), before.len(), "the length, and so every offset, stays");
        let freed = (floor - floor % BLOCK) as usize;
        assert_eq!(&after[freed..], &before[freed..], "nothing at or after the floor's block changes");
        assert!(after[..freed].iter().all(|&b| b == 0), "what was released reads as zeros");
        assert!(on_disk(&path) <= 1_000_000 - freed as u64 + BLOCK, "{} bytes on disk", on_disk(&path));
        assert_eq!(release_before(&path, 100).unwrap(), 0, "less than a block: nothing to do");
    }

    #[test]
    fn the_oldest_output_goes_first_down_to_the_budget_and_the_newest_always_stays() {
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in [("part-0-3.txt", 100), ("part-1-3.txt", 100), ("part-0-5.txt", 100), ("part-0-12.txt", 500)]
        {
            std::fs::write(dir.path().join(name), vec![b'x'; len]).unwrap();
        }
        std::fs::write(dir.path().join(".part-0.inprogress"), vec![b'x'; 1000]).unwrap();
        assert_eq!(trim_output(dir.path(), 700), 1, "800 bytes: the oldest one goes");
        assert!(!dir.path().join("part-0-3.txt").exists());
        assert!(dir.path().join("part-1-3.txt").exists(), "same checkpoint, next subtask: next in order");
        assert_eq!(trim_output(dir.path(), 0), 2, "never the newest");
        assert!(dir.path().join("part-0-12.txt").exists() && dir.path().join(".part-0.inprogress").exists());
        assert_eq!(trim_output(dir.path(), 0), 0);
    }

    /// The bug: every stop and every server shutdown left a savepoint that
    /// was never pruned, pinning the journal behind its offset for good.
    #[test]
    fn a_savepoint_older_than_every_retained_checkpoint_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "savepoint-0000000002",
            "chk-0000000005",
            "savepoint-0000000006",
            "chk-0000000007",
            "chk-0000000008.inprogress",
            "savepoint-0000000009",
        ];
        for name in names {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        assert_eq!(remove_superseded_savepoints(dir.path()), 1);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
        left.sort();
        let mut want: Vec<String> = names[1..].iter().map(|n| n.to_string()).collect();
        want.sort();
        assert_eq!(left, want, "newer ones stay");
        // Only savepoints (a stopped pipeline's resume point), or one
        // checkpoint after them (it may prove unreadable): nothing goes.
        let only = tempfile::tempdir().unwrap();
        std::fs::create_dir(only.path().join("savepoint-0000000003")).unwrap();
        assert_eq!(remove_superseded_savepoints(only.path()), 0);
        std::fs::create_dir(only.path().join("chk-0000000004")).unwrap();
        assert_eq!(remove_superseded_savepoints(only.path()), 0);
        std::fs::create_dir(only.path().join("chk-0000000005")).unwrap();
        assert_eq!(remove_superseded_savepoints(only.path()), 1);
        assert_eq!(remove_superseded_savepoints(&only.path().join("missing")), 0);
    }

    #[test]
    fn no_checkpoint_means_no_floor() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(journal_floor(dir.path()), None);
        assert_eq!(journal_floor(&dir.path().join("missing")), None);
        std::fs::create_dir(dir.path().join("chk-0000000003.inprogress")).unwrap();
        assert_eq!(journal_floor(dir.path()), None, "an unfinished checkpoint holds nothing yet");
    }
}
