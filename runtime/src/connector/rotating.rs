//! A file of JSON lines that does not grow without bound: once it holds
//! `max_bytes`, it is renamed `NAME.1` (`NAME.1` to `NAME.2`, and so on; the
//! oldest beyond `keep` is deleted) and a new `NAME` is started. Dead
//! letters under `weir serve` are written this way (issue 18, item 8: they
//! were appended for ever).
//!
//! A file is rotated only when it is flushed, never in the middle of a
//! write: whoever writes a line and then flushes (the dead-letter writer
//! does, per letter) never has a line split across two files.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An append-only file rotated by size.
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: File,
    len: u64,
}

impl RotatingFile {
    /// Appends to `path` (created if missing), rotating it past `max_bytes`
    /// and keeping `keep` older files.
    pub fn open(path: &Path, max_bytes: u64, keep: u32) -> io::Result<RotatingFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(RotatingFile { path: path.to_path_buf(), max_bytes: max_bytes.max(1), keep, file, len })
    }

    /// The `n`th older file (`NAME.n`).
    fn older(&self, n: u32) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{n}"));
        self.path.with_file_name(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.keep == 0 {
            self.file.set_len(0)?;
            self.len = 0;
            return Ok(());
        }
        match std::fs::remove_file(self.older(self.keep)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..self.keep).rev() {
            match std::fs::rename(self.older(n), self.older(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, self.older(1))?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.len = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.len >= self.max_bytes {
            self.rotate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_in(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
    }

    #[test]
    fn past_its_size_the_file_rotates_keeping_whole_lines_and_the_newest_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead-letters.jsonl");
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..50 {
            // A line in two writes, then a flush: never split across files.
            write!(f, "{{\"letter\":").unwrap();
            writeln!(f, "{i:03}}}").unwrap();
            f.flush().unwrap();
        }
        let older2 = dir.path().join("dead-letters.jsonl.2");
        let older1 = dir.path().join("dead-letters.jsonl.1");
        assert!(!dir.path().join("dead-letters.jsonl.3").exists(), "at most `keep` older files");
        let all: Vec<String> = [older2, older1, path.clone()].iter().flat_map(|p| lines_in(p)).collect();
        assert!(all.iter().all(|l| l.starts_with("{\"letter\":") && l.ends_with('}')), "{all:?}");
        let numbers: Vec<u32> = all.iter().map(|l| l[10..13].parse().unwrap()).collect();
        assert_eq!(numbers.last(), Some(&49), "the newest letter is in the current file");
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "oldest first, no gap: {numbers:?}");
        assert!(numbers.len() < 50 && numbers[0] > 0, "the oldest were dropped");
        let total: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(total <= 3 * (100 + 20), "{total} bytes");
    }

    #[test]
    fn a_reopened_file_counts_what_it_already_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, vec![b'x'; 99]).unwrap();
        let mut f = RotatingFile::open(&path, 100, 1).unwrap();
        writeln!(f).unwrap();
        f.flush().unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("d.jsonl.1")).unwrap().len(), 100);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
