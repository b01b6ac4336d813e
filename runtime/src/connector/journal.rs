//! The ingest journal of an `http` source: records posted to `weir serve`
//! are appended here (and made durable) before the post is acknowledged;
//! the pipeline's source follows the file like `tail -f`. Its position is a
//! byte offset, so checkpoints replay it exactly.
//!
//! The writer and the reader share one [`Journal`] per file in the process
//! ([`Journal::shared`]), and the reader reads only up to the journal's
//! *committed* length: bytes the writer has written and made durable, and
//! acknowledged. Issue 18: a failed append (ENOSPC, an fsync error) used to
//! leave complete lines the reader had already taken — duplicates once the
//! client retried — and a partial line the next append completed, merging
//! two records; and after a crash the partial last line was cut only at the
//! first post, after a resumed pipeline had read past it. Now a failed
//! append is truncated back under the lock before anyone can read it, and
//! whoever opens the journal first, reader or writer, repairs it.

use super::lines::{HeaderSlot, LineReader, MAX_RECORD};
use super::{Read, Source};
use crate::checkpoint::SourcePosition;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

/// How long a reader at the end of the journal waits before looking again.
const POLL: Duration = Duration::from_millis(5);

/// Reads a growing journal up to its committed length; there it reports
/// "nothing yet" instead of the end, and a line is read only once its
/// newline has been committed.
struct Follow {
    file: File,
    at: u64,
    journal: Arc<Journal>,
}

impl io::Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let committed = self.journal.committed.load(Ordering::Acquire);
        let room = committed.saturating_sub(self.at).min(buf.len() as u64) as usize;
        if room == 0 {
            std::thread::sleep(POLL);
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "at the end of the journal"));
        }
        let n = self.file.read(&mut buf[..room])?;
        self.at += n as u64;
        Ok(n)
    }
}

/// The source reading a journal from a byte offset; it never ends by
/// itself (the pipeline is stopped).
pub struct JournalSource {
    reader: LineReader<Follow>,
}

impl JournalSource {
    /// Follows `path` from `offset` (the journal is created if missing, and
    /// repaired if this is its first opening in the process).
    pub fn open(path: &Path, offset: u64, skip_blank: bool, header: Option<HeaderSlot>) -> io::Result<JournalSource> {
        let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let journal = Journal::shared(path).map_err(with_path)?;
        let len = journal.committed.load(Ordering::Acquire);
        if offset > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: the checkpoint is at byte {offset}, but the journal has only {len}", path.display()),
            ));
        }
        let mut file = File::open(path).map_err(with_path)?;
        file.seek(SeekFrom::Start(offset)).map_err(with_path)?;
        let follow = Follow { file, at: offset, journal };
        Ok(JournalSource { reader: LineReader::new(follow, offset, u64::MAX, skip_blank, header) })
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
    /// The file, and whether a failed append could not be undone (then
    /// every later append fails: the bytes past `committed` are unknown).
    file: Mutex<(File, bool)>,
    /// Bytes written, durable and acknowledged: what readers may read.
    committed: AtomicU64,
    /// Test failpoint: the next `sync_data` fails after the write.
    #[cfg(test)]
    fail_next_sync: std::sync::atomic::AtomicBool,
}

/// The journals open in this process, by path (weak: a journal nobody
/// holds is closed, and opened — repaired — again when next needed).
fn open_journals() -> &'static Mutex<HashMap<PathBuf, Weak<Journal>>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Journal>>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

impl Journal {
    /// The journal at `path`, shared with every other holder in the
    /// process; opened (see [`Journal::open`]) if nobody holds it.
    pub fn shared(path: &Path) -> io::Result<Arc<Journal>> {
        let mut open = open_journals().lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, j| j.strong_count() > 0);
        if let Some(j) = open.get(path).and_then(Weak::upgrade) {
            return Ok(j);
        }
        let j = Arc::new(Journal::open(path)?);
        open.insert(path.to_path_buf(), Arc::downgrade(&j));
        Ok(j)
    }

    /// Opens (or creates) the journal at `path`. A final line without its
    /// newline (a write cut by a crash, never acknowledged) is removed.
    /// Use [`Journal::shared`]: two `Journal`s of one file do not see each
    /// other's commits.
    fn open(path: &Path) -> io::Result<Journal> {
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        let whole = last_line_end(&mut file, len)?;
        if whole < len {
            tracing::warn!("{}: dropping {} bytes of an unacknowledged partial record", path.display(), len - whole);
            file.set_len(whole)?;
            file.sync_data()?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new((file, false)),
            committed: AtomicU64::new(whole),
            #[cfg(test)]
            fail_next_sync: Default::default(),
        })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that `record` can be journaled: no newline, and no longer
    /// than a line reader takes ([`MAX_RECORD`], the one limit).
    pub fn check(n: usize, record: &[u8]) -> io::Result<()> {
        let invalid = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
        if record.contains(&b'\n') {
            return invalid(format!("record {n} contains a newline"));
        }
        if record.len() > MAX_RECORD {
            return invalid(format!(
                "record {n} is {} bytes, more than the largest record of {MAX_RECORD} bytes (16 MiB with its newline)",
                record.len()
            ));
        }
        Ok(())
    }

    /// Appends `records` (one per line; none may contain a newline) and
    /// makes them durable. Either all are appended and readable or, on
    /// error, none: a failed write or sync is truncated back before the
    /// lock is released, and readers never see past the committed length.
    pub fn append<'a>(&self, records: impl IntoIterator<Item = &'a [u8]>) -> io::Result<usize> {
        let mut buf = Vec::new();
        let mut n = 0;
        for r in records {
            Journal::check(n, r)?;
            buf.extend_from_slice(r);
            buf.push(b'\n');
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let mut guard = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let (file, broken) = &mut *guard;
        if *broken {
            return Err(io::Error::other(
                "an earlier failed write could not be undone; the pipeline must be stopped and resumed",
            ));
        }
        let committed = self.committed.load(Ordering::Acquire);
        match file.write_all(&buf).and_then(|()| self.sync(file)) {
            Ok(()) => {
                self.committed.store(committed + buf.len() as u64, Ordering::Release);
                Ok(n)
            }
            Err(e) => {
                if let Err(undo) = file.set_len(committed).and_then(|()| file.sync_data()) {
                    tracing::error!("{}: cannot undo a failed append ({e}): {undo}", self.path.display());
                    *broken = true;
                }
                Err(e)
            }
        }
    }

    fn sync(&self, file: &File) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_next_sync.swap(false, Ordering::AcqRel) {
            return Err(io::Error::other("injected: fsync failed"));
        }
        file.sync_data()
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
        let journal = Journal::shared(&path).unwrap();
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
    fn reopening_drops_a_partial_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        std::fs::write(&path, b"one\ntw").unwrap();
        Journal::shared(&path).unwrap().append([&b"three"[..]]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\nthree\n");
    }

    #[test]
    fn records_with_newlines_are_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::shared(&dir.path().join("j")).unwrap();
        let e = journal.append([&b"ok"[..], b"two\nlines"]).unwrap_err();
        assert!(e.to_string().contains("record 1 contains a newline"), "{e}");
        assert_eq!(std::fs::read(journal.path()).unwrap(), b"");
    }

    #[test]
    fn a_failed_append_is_undone_before_any_reader_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let journal = Journal::shared(&path).unwrap();
        let mut source = JournalSource::open(&path, 0, true, None).unwrap();
        journal.append([&b"a"[..]]).unwrap();
        journal.fail_next_sync.store(true, Ordering::Release);
        let e = journal.append([&b"b"[..], b"c"]).unwrap_err();
        assert!(e.to_string().contains("injected"), "{e}");
        assert_eq!(drain(&mut source), ["a"], "the unacknowledged records are not read");
        assert_eq!(std::fs::read(&path).unwrap(), b"a\n", "and not left in the file");
        // The client's retry is appended once, as whole lines.
        journal.append([&b"b"[..], b"c"]).unwrap();
        assert_eq!(drain(&mut source), ["b", "c"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"a\nb\nc\n");
    }

    #[test]
    fn a_resumed_reader_never_reads_a_partial_line_left_by_a_crash() {
        // A crash cut the last append; the pipeline resumes (its reader
        // opens the journal) before anything is posted again.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        std::fs::write(&path, b"one\ntw").unwrap();
        let mut source = JournalSource::open(&path, 0, true, None).unwrap();
        assert_eq!(drain(&mut source), ["one"]);
        Journal::shared(&path).unwrap().append([&b"three"[..]]).unwrap();
        assert_eq!(drain(&mut source), ["three"], "not `twthree`");
        assert_eq!(std::fs::read(&path).unwrap(), b"one\nthree\n");
    }

    #[test]
    fn the_largest_record_the_journal_takes_is_one_its_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let journal = Journal::shared(&path).unwrap();
        let mut source = JournalSource::open(&path, 0, true, None).unwrap();
        let largest = vec![b'x'; MAX_RECORD];
        journal.append([&largest[..]]).unwrap();
        let read = drain(&mut source);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].len(), MAX_RECORD);
        let over = vec![b'x'; MAX_RECORD + 1];
        let e = journal.append([&b"fine"[..], &over[..]]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("record 1 is 16777216 bytes"), "{e}");
        assert!(drain(&mut source).is_empty(), "none of a refused post is appended");
    }
}
