//! Line sinks: a file per subtask, one file shared by every subtask, or
//! standard output.
//!
//! A shared output takes its lock once per batch, so lines of a batch stay
//! together and subtasks do not contend per record.

use super::Sink;
use crate::manifest::OutputFormat;
use crate::types::{Batch, RecordRef};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Appends the line for `record` in `format` to `out`.
pub fn format_line(record: &RecordRef<'_>, format: OutputFormat, out: &mut Vec<u8>) {
    match format {
        OutputFormat::Value => out.extend_from_slice(record.value),
        OutputFormat::Record => {
            let mut obj = serde_json::Map::new();
            obj.insert("key".into(), record.key.map_or(serde_json::Value::Null, bytes_value));
            obj.insert("timestamp".into(), record.timestamp.into());
            obj.insert("value".into(), bytes_value(record.value));
            // Serializing a map of plain values cannot fail.
            let _ = serde_json::to_writer(&mut *out, &obj);
        }
    }
    out.push(b'\n');
}

/// Text as a JSON string; other bytes as `{"base64": ...}`.
pub fn bytes_value(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(_) => {
            use base64::Engine;
            serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) })
        }
    }
}

/// A sink writing to its own file (`part-N.txt`).
pub struct FileSink {
    out: BufWriter<File>,
    format: OutputFormat,
    line: Vec<u8>,
}

impl FileSink {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path, format: OutputFormat) -> io::Result<FileSink> {
        let file = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
        Ok(FileSink { out: BufWriter::with_capacity(1 << 20, file), format, line: Vec::with_capacity(1 << 16) })
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &Batch) -> io::Result<()> {
        if self.format == OutputFormat::Value {
            for r in batch.iter() {
                self.out.write_all(r.value)?;
                self.out.write_all(b"\n")?;
            }
            return Ok(());
        }
        self.line.clear();
        for r in batch.iter() {
            format_line(&r, self.format, &mut self.line);
        }
        self.out.write_all(&self.line)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A subtask's part of a directory sink in a checkpointed pipeline: lines
/// go to the hidden `.part-S.inprogress`; at each checkpoint that file is
/// made durable and renamed `.part-S-ID.pending`; when the checkpoint
/// completes, [`DirCommitter`] renames it `part-S-ID.txt`. A reader of the
/// directory's `*.txt` files therefore sees only committed output, each line
/// once, even across crashes and restores.
pub struct StagedFileSink {
    staging: Staging,
    subtask: u32,
    format: OutputFormat,
    line: Vec<u8>,
}

/// A subtask's hidden in-progress file in a directory, sealed under a new
/// name at each checkpoint (durable first) and started again; shared by the
/// staged sinks.
pub struct Staging {
    dir: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    written: bool,
}

impl Staging {
    /// Starts the in-progress file `name` in `dir`.
    pub fn create(dir: &Path, name: &str) -> io::Result<Staging> {
        let path = dir.join(name);
        let file = File::create(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
        Ok(Staging { dir: dir.to_path_buf(), path, out: BufWriter::with_capacity(1 << 20, file), written: false })
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.written |= !bytes.is_empty();
        self.out.write_all(bytes)
    }

    /// Makes what was written durable under `name` (nothing if nothing
    /// was written) and starts a new in-progress file.
    pub fn seal(&mut self, name: &str) -> io::Result<()> {
        self.out.flush()?;
        if !self.written {
            return Ok(());
        }
        self.out.get_ref().sync_all()?;
        std::fs::rename(&self.path, self.dir.join(name))?;
        File::open(&self.dir)?.sync_all()?;
        self.out = BufWriter::with_capacity(1 << 20, File::create(&self.path)?);
        self.written = false;
        Ok(())
    }

    /// Seals under `name` and removes the in-progress file (the end of the output).
    pub fn finish(&mut self, name: &str) -> io::Result<()> {
        self.seal(name)?;
        std::fs::remove_file(&self.path)
    }
}

impl StagedFileSink {
    /// Starts subtask `subtask`'s output in `dir`.
    pub fn create(dir: &Path, subtask: u32, format: OutputFormat) -> io::Result<StagedFileSink> {
        let staging = Staging::create(dir, &format!(".part-{subtask}.inprogress"))?;
        Ok(StagedFileSink { staging, subtask, format, line: Vec::with_capacity(1 << 16) })
    }
}

impl Sink for StagedFileSink {
    fn write(&mut self, batch: &Batch) -> io::Result<()> {
        self.line.clear();
        for r in batch.iter() {
            format_line(&r, self.format, &mut self.line);
        }
        self.staging.write(&self.line)
    }

    fn pre_commit(&mut self, id: u64) -> io::Result<()> {
        self.staging.seal(&format!(".part-{}-{id:010}.pending", self.subtask))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.staging.finish(&format!(".part-{}-end.pending", self.subtask))
    }
}

/// Commits the output of [`StagedFileSink`]s in a directory.
pub struct DirCommitter {
    dir: PathBuf,
}

/// A hidden sink file of `dir`: (subtask, checkpoint id or `None` for the
/// end of input, whether in progress rather than pending).
fn staged(name: &str) -> Option<(u32, Option<u64>, bool)> {
    let rest = name.strip_prefix(".part-")?;
    if let Some(s) = rest.strip_suffix(".inprogress") {
        return Some((s.parse().ok()?, None, true));
    }
    let (subtask, id) = rest.strip_suffix(".pending")?.split_once('-')?;
    let id = if id == "end" { None } else { Some(id.parse().ok()?) };
    Some((subtask.parse().ok()?, id, false))
}

/// The checkpoint id of a committed sink file `part-S-ID.txt`.
fn committed(name: &str) -> Option<u64> {
    let (subtask, id) = name.strip_prefix("part-")?.strip_suffix(".txt")?.split_once('-')?;
    subtask.parse::<u32>().ok()?;
    (id.len() == 10).then(|| id.parse().ok())?
}

/// Called with each staged file: its path, subtask, checkpoint id (`None`:
/// end of input) and whether it is still in progress.
type StagedVisitor<'a> = dyn FnMut(&Path, u32, Option<u64>, bool) -> io::Result<()> + 'a;

impl DirCommitter {
    /// Commits in `dir`.
    pub fn new(dir: &Path) -> DirCommitter {
        DirCommitter { dir: dir.to_path_buf() }
    }

    fn each(&self, f: &mut StagedVisitor<'_>) -> io::Result<()> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            if let Some((subtask, id, in_progress)) = staged(&name) {
                f(&self.dir.join(&name), subtask, id, in_progress)?;
            }
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl crate::checkpoint::Committer for DirCommitter {
    fn commit(&self, upto: u64) -> io::Result<()> {
        self.each(&mut |path, subtask, id, in_progress| match id {
            Some(id) if !in_progress && id <= upto => {
                std::fs::rename(path, self.dir.join(format!("part-{subtask}-{id:010}.txt")))
            }
            _ => Ok(()),
        })?;
        self.sync()
    }

    fn commit_end(&self, final_id: u64) -> io::Result<()> {
        self.each(&mut |path, subtask, id, in_progress| match id {
            None if !in_progress => std::fs::rename(path, self.dir.join(format!("part-{subtask}-{final_id:010}.txt"))),
            _ => Ok(()),
        })?;
        self.sync()
    }

    fn recover(&self, last: u64) -> io::Result<()> {
        self.commit(last)?;
        self.each(&mut |path, _, id, in_progress| match id {
            Some(id) if !in_progress && id <= last => Ok(()),
            _ => std::fs::remove_file(path),
        })?;
        // Output committed by checkpoints after `last` (which had to be
        // skipped, or a restore from an older savepoint) is withdrawn: the
        // restored pipeline produces it again.
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if committed(&e.file_name().to_string_lossy()).is_some_and(|id| id > last) {
                std::fs::remove_file(e.path())?;
            }
        }
        self.sync()
    }
}

/// An output shared by every subtask.
pub type SharedOutput = Arc<Mutex<Box<dyn Write + Send>>>;

/// A subtask's handle on a shared output.
pub struct SharedSink {
    out: SharedOutput,
    format: OutputFormat,
    flush_each: bool,
    buf: Vec<u8>,
}

impl SharedSink {
    /// A handle writing `format` lines to `out`; with `flush_each`, every
    /// batch is flushed (for interactive outputs such as a terminal).
    pub fn new(out: SharedOutput, format: OutputFormat, flush_each: bool) -> SharedSink {
        SharedSink { out, format, flush_each, buf: Vec::with_capacity(1 << 16) }
    }
}

impl Sink for SharedSink {
    fn write(&mut self, batch: &Batch) -> io::Result<()> {
        self.buf.clear();
        for r in batch.iter() {
            format_line(&r, self.format, &mut self.buf);
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(&self.buf)?;
        if self.flush_each {
            out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines_carry_key_time_and_value() {
        let r = RecordRef { timestamp: 5, key: Some(b"k"), value: b"\xff\x00", raw_headers: &[] };
        let mut out = Vec::new();
        format_line(&r, OutputFormat::Record, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"key\":\"k\",\"timestamp\":5,\"value\":{\"base64\":\"/wA=\"}}\n"
        );
        let mut out = Vec::new();
        format_line(&RecordRef::new(1, b"plain"), OutputFormat::Value, &mut out);
        assert_eq!(out, b"plain\n");
    }

    fn batch(lines: &[&str]) -> Batch {
        let mut w = crate::types::BatchWriter::with_capacity(64);
        for l in lines {
            w.push(0, None, l.as_bytes());
        }
        w.finish()
    }

    /// The visible files of `dir` and their contents, sorted.
    fn visible(dir: &Path) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| (e.file_name().into_string().unwrap(), std::fs::read_to_string(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn staged_output_becomes_visible_on_commit_and_is_withdrawn_after_the_restored_checkpoint() {
        use crate::checkpoint::Committer;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let c = DirCommitter::new(dir);
        let mut s = StagedFileSink::create(dir, 0, OutputFormat::Value).unwrap();
        s.write(&batch(&["a", "b"])).unwrap();
        s.pre_commit(1).unwrap();
        s.pre_commit(2).unwrap(); // nothing written: no file
        s.write(&batch(&["c"])).unwrap();
        assert!(visible(dir).iter().all(|(n, _)| n.starts_with('.')), "nothing visible before a commit");
        c.commit(2).unwrap();
        s.pre_commit(3).unwrap();
        s.write(&batch(&["d"])).unwrap();
        s.pre_commit(4).unwrap();
        c.commit(3).unwrap();
        s.write(&batch(&["e"])).unwrap();
        s.finish().unwrap();
        let names: Vec<String> = visible(dir).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [".part-0-0000000004.pending", ".part-0-end.pending", "part-0-0000000001.txt", "part-0-0000000003.txt"]
        );

        // A restore from checkpoint 1 (3 had to be skipped): 3's output is
        // withdrawn, everything pending thrown away.
        c.recover(1).unwrap();
        assert_eq!(visible(dir), [("part-0-0000000001.txt".to_string(), "a\nb\n".to_string())]);
        // A restore from a final checkpoint commits the end of the output.
        let mut s = StagedFileSink::create(dir, 1, OutputFormat::Value).unwrap();
        s.write(&batch(&["z"])).unwrap();
        s.finish().unwrap();
        c.commit_end(5).unwrap();
        c.recover(5).unwrap();
        assert_eq!(visible(dir).len(), 2);
        assert_eq!(visible(dir)[1], ("part-1-0000000005.txt".to_string(), "z\n".to_string()));
    }
}
