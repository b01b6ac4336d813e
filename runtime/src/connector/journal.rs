//! The ingest journal of an `http` source: records posted to `weir serve`
//! are appended here (and made durable) before the post is acknowledged;
//! the pipeline's source follows the file like `tail -f`. Its position is a
//! byte offset, so checkpoints replay it exactly.

use super::lines::{HeaderSlot, LineReader, MAX_LINE};
use super::{Read, Source};
use crate::checkpoint::SourcePosition;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a reader at the end of the journal waits before looking again.
const POLL: Duration = Duration::from_millis(5);

/// Reads a growing file; at its end it reports "nothing yet" instead of
/// the end, and a line is read only once its newline has been written.
struct Follow {
    file: File,
}

impl io::Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.file.read(buf)? {
            0 => {
                std::thread::sleep(POLL);
                Err(io::Error::new(io::ErrorKind::WouldBlock, "at the end of the journal"))
            }
            n => Ok(n),
        }
    }
}

/// The source reading a journal from a byte offset; it never ends by
/// itself (the pipeline is stopped).
pub struct JournalSource {
    reader: LineReader<Follow>,
}

impl JournalSource {
    /// Follows `path` from `offset` (the file is created if missing).
    pub fn open(path: &Path, offset: u64, skip_blank: bool, header: Option<HeaderSlot>) -> io::Result<JournalSource> {
        let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let mut file = OpenOptions::new().create(true).append(true).read(true).open(path).map_err(with_path)?;
        let len = file.metadata().map_err(with_path)?.len();
        if offset > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: the checkpoint is at byte {offset}, but the journal has only {len}", path.display()),
            ));
        }
        file.seek(SeekFrom::Start(offset)).map_err(with_path)?;
        Ok(JournalSource { reader: LineReader::new(Follow { file }, offset, u64::MAX, skip_blank, header) })
    }
}

impl Source for JournalSource {
    fn read(&mut self, max: usize) -> io::Result<Read> {
        self.reader.read(max)
    }

    fn position(&self) -> Option<SourcePosition> {
        let (offset, end) = self.reader.position();
        Some(SourcePosition::File { offset, end })
    }
}

/// The writing side: appends posted records, one line each.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`. A final line without its
    /// newline (a write cut by a crash, never acknowledged) is removed.
    pub fn open(path: &Path) -> io::Result<Journal> {
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        let whole = last_line_end(&mut file, len)?;
        if whole < len {
            tracing::warn!("{}: dropping {} bytes of an unacknowledged partial record", path.display(), len - whole);
            file.set_len(whole)?;
            file.sync_data()?;
        }
        Ok(Journal { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `records` (one per line; none may contain a newline) and
    /// makes them durable. Either all are appended or, on error, none is
    /// acknowledged (a partial line left by a crash is never read: the
    /// reader waits for its newline, and the next append starts a new line).
    pub fn append<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) -> io::Result<usize> {
        let mut buf = Vec::new();
        let mut n = 0;
        for r in records {
            if r.contains(&b'\n') {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("record {n} contains a newline")));
            }
            if r.len() > MAX_LINE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("record {n} is longer than {} MiB", MAX_LINE >> 20),
                ));
            }
            buf.extend_from_slice(r);
            buf.push(b'\n');
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&buf)?;
        file.sync_data()?;
        Ok(n)
    }
}

/// The length of `file` up to and including its last newline.
fn last_line_end(file: &mut File, len: u64) -> io::Result<u64> {
    use std::io::Read as _;
    let mut end = len;
    let mut chunk = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = memchr::memrchr(b'\n', part) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(source: &mut JournalSource) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match source.read(100).unwrap() {
                Read::Batch(b) => out.extend(b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap())),
                Read::Idle => return out,
                Read::End => panic!("a journal never ends"),
            }
        }
    }

    #[test]
    fn follows_appends_and_resumes_from_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let journal = Journal::open(&path).unwrap();
        let mut source = JournalSource::open(&path, 0, true, None).unwrap();
        assert!(drain(&mut source).is_empty());
        journal.append([&b"a"[..], b"b"]).unwrap();
        assert_eq!(drain(&mut source), ["a", "b"]);
        let Some(SourcePosition::File { offset, .. }) = source.position() else { panic!() };
        journal.append([&b"c"[..]]).unwrap();
        assert_eq!(drain(&mut source), ["c"]);
        let mut resumed = JournalSource::open(&path, offset, true, None).unwrap();
        assert_eq!(drain(&mut resumed), ["c"], "a restore reads from the checkpointed offset");
    }

    #[test]
    fn a_line_without_its_newline_is_not_read_yet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        std::fs::write(&path, b"whole\nhal").unwrap();
        let mut source = JournalSource::open(&path, 0, true, None).unwrap();
        assert_eq!(drain(&mut source), ["whole"]);
        OpenOptions::new().append(true).open(&path).unwrap().write_all(b"f\n").unwrap();
        assert_eq!(drain(&mut source), ["half"]);
    }

    #[test]
    fn reopening_drops_a_partial_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        std::fs::write(&path, b"one\ntw").unwrap();
        Journal::open(&path).unwrap().append([&b"three"[..]]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\nthree\n");
    }

    #[test]
    fn records_with_newlines_are_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j")).unwrap();
        let e = journal.append([&b"ok"[..], b"two\nlines"]).unwrap_err();
        assert!(e.to_string().contains("record 1 contains a newline"), "{e}");
        assert_eq!(std::fs::read(journal.path()).unwrap(), b"");
    }
}
