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
//!
//! Each post first writes a receipt ([`receipts`]): a crash in the middle
//! of a post loses the whole post, never leaves part of it, and a post
//! retried with its `Idempotency-Key` is acknowledged without a second
//! append.

mod receipts;

pub use receipts::Remember;
use receipts::{Receipt, Receipts, Seen};

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
    inner: Mutex<Inner>,
    /// Bytes written, durable and acknowledged: what readers may read.
    committed: AtomicU64,
    /// Test failpoint: the next `sync_data` fails after the write.
    #[cfg(test)]
    fail_next_sync: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Inner {
    file: File,
    receipts: Receipts,
    /// A failed append could not be undone: every later append fails (the
    /// bytes past `committed` are unknown).
    broken: bool,
}

/// A post's `Idempotency-Key`, with what identifies its body.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The client's key.
    pub key: String,
    /// The SHA-256 of the post's body, hex.
    pub digest: String,
    /// How long and how many keys are remembered.
    pub remember: Remember,
}

/// An acknowledged post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Appended now: this many records.
    New(usize),
    /// Its key was posted before with the same body: acknowledged again,
    /// nothing appended.
    Replayed(usize),
}

/// Why a post was not appended.
#[derive(Debug)]
pub enum AppendError {
    /// A record the journal cannot hold (the client's mistake).
    Invalid(String),
    /// The key was posted before with another body.
    KeyReused(String),
    /// The disk failed; nothing was appended.
    Io(io::Error),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::Invalid(m) => f.write_str(m),
            AppendError::KeyReused(key) => write!(
                f,
                "the Idempotency-Key `{key}` was used for a post with another body; use a new key for new records"
            ),
            AppendError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AppendError {}

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

    /// Opens (or creates) the journal at `path` and repairs what a crash
    /// left: a post cut short (the journal ends inside its receipt's range)
    /// is removed whole; a journal written before receipts existed loses
    /// only a final line without its newline. Use [`Journal::shared`]: two
    /// `Journal`s of one file do not see each other's commits.
    fn open(path: &Path) -> io::Result<Journal> {
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let mut receipts = Receipts::open(&Receipts::path_of(path))?;
        let len = file.metadata()?.len();
        let whole = match receipts.last() {
            Some(last) if len == last.end => len,
            Some(last) if len >= last.start && len < last.end => {
                let start = last.start;
                tracing::warn!(
                    "{}: dropping the {} bytes of an unacknowledged post cut short by a crash",
                    path.display(),
                    len - start
                );
                file.set_len(start)?;
                file.sync_data()?;
                receipts.drop_last()?;
                start
            }
            Some(last) if len < last.start => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the journal has {len} bytes, but its receipts acknowledge {}: it was truncated outside Weir",
                        last.end
                    ),
                ))
            }
            // No receipt covers the end (a journal from before receipts).
            _ => {
                let whole = last_line_end(&mut file, len)?;
                if whole < len {
                    tracing::warn!(
                        "{}: dropping {} bytes of an unacknowledged partial record",
                        path.display(),
                        len - whole
                    );
                    file.set_len(whole)?;
                    file.sync_data()?;
                }
                whole
            }
        };
        Ok(Journal {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner { file, receipts, broken: false }),
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

    /// Whether a post under `key` at `now_ms` would append anything: a
    /// retry of a post already taken (or a reused key) appends nothing, so
    /// a quota on what the journal holds does not apply to it.
    pub fn would_append(&self, key: Option<&IdempotencyKey>, now_ms: u64) -> bool {
        let Some(k) = key else { return true };
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(inner.receipts.lookup(&k.key, &k.digest, now_ms, k.remember), Seen::New)
    }

    /// Appends `records` (one per line; none may contain a newline) and
    /// makes them durable, at `now_ms`. Either all are appended and
    /// readable or, on error, none: the receipt is written first, and a
    /// failed write or sync is truncated back before the lock is released;
    /// readers never see past the committed length. With a `key` already
    /// posted (within its window) with the same body, nothing is appended.
    pub fn append<'a>(
        &self,
        records: impl IntoIterator<Item = &'a [u8]>,
        key: Option<&IdempotencyKey>,
        now_ms: u64,
    ) -> Result<Appended, AppendError> {
        let mut buf = Vec::new();
        let mut n = 0;
        for r in records {
            Journal::check(n, r).map_err(|e| AppendError::Invalid(e.to_string()))?;
            buf.extend_from_slice(r);
            buf.push(b'\n');
            n += 1;
        }
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *guard;
        if let Some(k) = key {
            match inner.receipts.lookup(&k.key, &k.digest, now_ms, k.remember) {
                Seen::New => {}
                Seen::Replay(r) => return Ok(Appended::Replayed(r.records)),
                Seen::Reused => return Err(AppendError::KeyReused(k.key.clone())),
            }
        }
        if n == 0 {
            return Ok(Appended::New(0));
        }
        if inner.broken || inner.receipts.broken() {
            return Err(AppendError::Io(io::Error::other(
                "an earlier failed write could not be undone; the pipeline must be stopped and resumed",
            )));
        }
        let committed = self.committed.load(Ordering::Acquire);
        let receipt = Receipt {
            start: committed,
            end: committed + buf.len() as u64,
            records: n,
            key: key.map(|k| k.key.clone()),
            digest: key.map(|k| k.digest.clone()),
            at_ms: now_ms,
        };
        let line_start = inner.receipts.write(&receipt).map_err(AppendError::Io)?;
        match inner.file.write_all(&buf).and_then(|()| self.sync(&inner.file)) {
            Ok(()) => {
                self.committed.store(receipt.end, Ordering::Release);
                let remember = key.map(|k| k.remember).unwrap_or_default();
                if let Err(e) = inner.receipts.committed(receipt, line_start, now_ms, remember) {
                    // The post is in the journal and its receipt on disk;
                    // only tidying the receipts failed.
                    tracing::warn!("{}: cannot rewrite the receipts: {e}", self.path.display());
                }
                Ok(Appended::New(n))
            }
            Err(e) => {
                let undo = inner.file.set_len(committed).and_then(|()| inner.file.sync_data());
                if let Err(undo) = undo.and_then(|()| inner.receipts.undo(line_start)) {
                    tracing::error!("{}: cannot undo a failed append ({e}): {undo}", self.path.display());
                    inner.broken = true;
                }
                Err(AppendError::Io(e))
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
        journal.append([&b"a"[..], b"b"], None, 0).unwrap();
        assert_eq!(drain(&mut source), ["a", "b"]);
        let Some(SourcePosition::File { offset, .. }) = source.position() else { panic!() };
        journal.append([&b"c"[..]], None, 0).unwrap();
        assert_eq!(drain(&mut source), ["c"]);
        let mut resumed = JournalSource::open(&path, offset, true, None).unwrap();
        assert_eq!(drain(&mut resumed), ["c"], "a restore reads from the checkpointed offset");
    }

    #[test]
    fn reopening_drops_a_partial_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        std::fs::write(&path, b"one\ntw").unwrap();
        Journal::shared(&path).unwrap().append([&b"three"[..]], None, 0).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\nthree\n");
    }

    #[test]
    fn records_with_newlines_are_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::shared(&dir.path().join("j")).unwrap();
        let e = journal.append([&b"ok"[..], b"two\nlines"], None, 0).unwrap_err();
        assert!(e.to_string().contains("record 1 contains a newline"), "{e}");
        assert_eq!(std::fs::read(journal.path()).unwrap(), b"");
    }

    #[test]
    fn a_failed_append_is_undone_before_any_reader_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let journal = Journal::shared(&path).unwrap();
        let mut source = JournalSource::open(&path, 0, true, None).unwrap();
        journal.append([&b"a"[..]], None, 0).unwrap();
        journal.fail_next_sync.store(true, Ordering::Release);
        let e = journal.append([&b"b"[..], b"c"], None, 0).unwrap_err();
        assert!(e.to_string().contains("injected"), "{e}");
        assert_eq!(drain(&mut source), ["a"], "the unacknowledged records are not read");
        assert_eq!(std::fs::read(&path).unwrap(), b"a\n", "and not left in the file");
        // The client's retry is appended once, as whole lines.
        journal.append([&b"b"[..], b"c"], None, 0).unwrap();
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
        Journal::shared(&path).unwrap().append([&b"three"[..]], None, 0).unwrap();
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
        journal.append([&largest[..]], None, 0).unwrap();
        let read = drain(&mut source);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].len(), MAX_RECORD);
        let over = vec![b'x'; MAX_RECORD + 1];
        let e = journal.append([&b"fine"[..], &over[..]], None, 0).unwrap_err();
        assert!(matches!(e, AppendError::Invalid(_)), "{e}");
        assert!(e.to_string().contains("record 1 is 16777216 bytes"), "{e}");
        assert!(drain(&mut source).is_empty(), "none of a refused post is appended");
    }

    fn key(k: &str, body: &str) -> IdempotencyKey {
        IdempotencyKey { key: k.into(), digest: format!("digest of {body}"), remember: Remember::default() }
    }

    #[test]
    fn a_post_cut_short_by_a_crash_is_removed_whole() {
        // Attack (by accident): the server dies after two of a post's three
        // lines reached the disk; the client never got its answer and will
        // retry, so the two lines must not be read.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let journal = Journal::shared(&path).unwrap();
        journal.append([&b"acked"[..]], None, 0).unwrap();
        drop(journal);
        let cut = Receipt { start: 6, end: 12, records: 3, key: None, digest: None, at_ms: 1 };
        let mut receipts = Receipts::open(&Receipts::path_of(&path)).unwrap();
        receipts.write(&cut).unwrap();
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"a\nb\n").unwrap();
        let mut source = JournalSource::open(&path, 0, true, None).unwrap();
        assert_eq!(drain(&mut source), ["acked"], "none of the cut post is read");
        assert_eq!(std::fs::read(&path).unwrap(), b"acked\n");
        let journal = Journal::shared(&path).unwrap();
        journal.append([&b"a"[..], b"b", b"c"], None, 2).unwrap();
        assert_eq!(drain(&mut source), ["a", "b", "c"], "the retry is read once");
    }

    #[test]
    fn a_retried_post_is_acknowledged_once_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let journal = Journal::shared(&path).unwrap();
        let first = key("k1", "a b");
        assert_eq!(journal.append([&b"a"[..], b"b"], Some(&first), 10).unwrap(), Appended::New(2));
        assert_eq!(journal.append([&b"a"[..], b"b"], Some(&first), 11).unwrap(), Appended::Replayed(2));
        drop(journal);
        // The server restarts: the key is remembered from the receipts.
        let journal = Journal::shared(&path).unwrap();
        assert_eq!(journal.append([&b"a"[..], b"b"], Some(&first), 12).unwrap(), Appended::Replayed(2));
        let e = journal.append([&b"other"[..]], Some(&key("k1", "other")), 13).unwrap_err();
        assert!(matches!(e, AppendError::KeyReused(_)), "{e}");
        journal.append([&b"c"[..]], Some(&key("k2", "c")), 14).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a\nb\nc\n");
        // After the window the key is new again.
        let late = 10 + Remember::default().window_ms;
        assert_eq!(journal.append([&b"a"[..], b"b"], Some(&first), late).unwrap(), Appended::New(2));
    }

    #[test]
    fn a_failed_append_forgets_its_key_so_the_retry_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let journal = Journal::shared(&path).unwrap();
        journal.fail_next_sync.store(true, Ordering::Release);
        let k = key("k", "x");
        assert!(matches!(journal.append([&b"x"[..]], Some(&k), 1), Err(AppendError::Io(_))));
        assert_eq!(journal.append([&b"x"[..]], Some(&k), 2).unwrap(), Appended::New(1));
        drop(journal);
        let journal = Journal::shared(&path).unwrap();
        assert_eq!(journal.append([&b"x"[..]], Some(&k), 3).unwrap(), Appended::Replayed(1));
        assert_eq!(std::fs::read(&path).unwrap(), b"x\n");
    }

    #[test]
    fn a_journal_shorter_than_its_receipts_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.log");
        let journal = Journal::shared(&path).unwrap();
        journal.append([&b"one"[..]], None, 0).unwrap();
        journal.append([&b"two"[..]], None, 0).unwrap();
        drop(journal);
        // Shorter than the last post's start: acknowledged records are gone.
        std::fs::write(&path, b"").unwrap();
        let e = Journal::shared(&path).unwrap_err();
        assert!(e.to_string().contains("truncated outside Weir"), "{e}");
    }
}
