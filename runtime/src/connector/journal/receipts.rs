//! The receipts of an ingest journal (`ingest.receipts` beside
//! `ingest.log`): one JSON line per post, written and made durable *before*
//! the post's records are appended to the journal.
//!
//! A receipt does two jobs (issue 18, item 3):
//! - **A post is atomic across a crash.** A receipt names the byte range
//!   its post will occupy. At the journal's first opening, a journal that
//!   ends inside the last receipt's range was cut mid-post: it is truncated
//!   back to the range's start and the receipt dropped, so none of an
//!   unacknowledged post is read (a cut post used to leave its complete
//!   lines behind, which the client's retry then duplicated).
//! - **A retried post is acknowledged once.** A post with an
//!   `Idempotency-Key` stores the key and a digest of its body; a later post
//!   with that key is answered from the receipt without a second append
//!   (the same key with another body is refused). Keys are remembered for a
//!   window (24 h by default) and at most a number of them per journal, the
//!   oldest forgotten first, so the memory and the file stay bounded: the
//!   file is rewritten with only the live receipts when it holds many more
//!   lines than those.
//!
//! [`KeyIndex`] is the pure part (which keys are live); [`Receipts`] adds
//! the file.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};

/// One post: where its records are in the journal, and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The journal's length before the post.
    pub start: u64,
    /// The journal's length after it.
    pub end: u64,
    /// Its records.
    pub records: usize,
    /// The client's `Idempotency-Key`, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The SHA-256 of the post's body (hex), with a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When it was posted (ms since the Unix epoch).
    pub at_ms: u64,
}

/// How long, and how many, idempotency keys are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remember {
    /// A key older than this is forgotten (ms).
    pub window_ms: u64,
    /// At most this many keys per journal; the oldest are forgotten first.
    pub max_keys: usize,
}

impl Default for Remember {
    fn default() -> Self {
        Remember { window_ms: 24 * 3600 * 1000, max_keys: 10_000 }
    }
}

/// What the journal knows of a post's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Not remembered: append.
    New,
    /// Posted before with the same body: acknowledge this receipt again.
    Replay(Receipt),
    /// Posted before with another body.
    Reused,
}

/// The live keys, oldest first; no I/O.
#[derive(Debug, Default)]
pub struct KeyIndex {
    by_key: HashMap<String, Receipt>,
    /// Keys in the order they were remembered (a key forgotten and posted
    /// again appears twice; the older entry is skipped when it comes up).
    order: VecDeque<(u64, String)>,
}

impl KeyIndex {
    /// Remembers a keyed receipt (an unkeyed one is ignored).
    pub fn remember(&mut self, r: Receipt) {
        if let Some(key) = r.key.clone() {
            self.order.push_back((r.at_ms, key.clone()));
            self.by_key.insert(key, r);
        }
    }

    /// Forgets keys older than the window at `now_ms`, then the oldest
    /// beyond the cap.
    pub fn forget(&mut self, now_ms: u64, remember: Remember) {
        while let Some((at, key)) = self.order.front() {
            let expired = at.saturating_add(remember.window_ms) <= now_ms;
            let stale = self.by_key.get(key).is_none_or(|r| r.at_ms != *at);
            if !(expired || stale || self.by_key.len() > remember.max_keys) {
                break;
            }
            if !stale {
                self.by_key.remove(key);
            }
            self.order.pop_front();
        }
    }

    /// What `key` with a body of `digest` is, at `now_ms`.
    pub fn lookup(&self, key: &str, digest: &str, now_ms: u64, remember: Remember) -> Seen {
        match self.by_key.get(key) {
            Some(r) if r.at_ms.saturating_add(remember.window_ms) > now_ms => {
                if r.digest.as_deref() == Some(digest) {
                    Seen::Replay(r.clone())
                } else {
                    Seen::Reused
                }
            }
            _ => Seen::New,
        }
    }

    /// How many keys are live.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// The live receipts, oldest first.
    fn live(&self) -> impl Iterator<Item = &Receipt> {
        self.order.iter().filter_map(|(at, key)| self.by_key.get(key).filter(|r| r.at_ms == *at))
    }
}

/// The receipts file of one journal.
#[derive(Debug)]
pub struct Receipts {
    path: PathBuf,
    file: File,
    /// The file's length, and where its last line starts.
    len: u64,
    last_at: u64,
    /// Lines in the file (to know when rewriting it is due).
    lines: usize,
    last: Option<Receipt>,
    keys: KeyIndex,
    /// A failed write could not be undone: the file's end is unknown.
    broken: bool,
}

impl Receipts {
    /// The receipts file beside `journal`.
    pub fn path_of(journal: &Path) -> PathBuf {
        journal.with_extension("receipts")
    }

    /// Opens (or creates) the file at `path`; a last line cut by a crash (its
    /// post never reached the journal) is removed.
    pub fn open(path: &Path) -> io::Result<Receipts> {
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < text.len() {
            file.set_len(whole as u64)?;
            file.sync_data()?;
        }
        let mut receipts = Receipts {
            path: path.to_path_buf(),
            file,
            len: whole as u64,
            last_at: 0,
            lines: 0,
            last: None,
            keys: KeyIndex::default(),
            broken: false,
        };
        let mut at = 0;
        for line in text[..whole].split_inclusive(|&b| b == b'\n') {
            let r: Receipt = serde_json::from_slice(line).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: line {}: {e}", path.display(), receipts.lines + 1),
                )
            })?;
            receipts.lines += 1;
            receipts.last_at = at;
            at += line.len() as u64;
            receipts.keys.remember(r.clone());
            receipts.last = Some(r);
        }
        Ok(receipts)
    }

    /// The last post's receipt.
    pub fn last(&self) -> Option<&Receipt> {
        self.last.as_ref()
    }

    /// Removes the last receipt (its post was cut by a crash and is gone
    /// from the journal); only at opening, before any key is looked up.
    pub fn drop_last(&mut self) -> io::Result<()> {
        self.file.set_len(self.last_at)?;
        self.file.sync_data()?;
        *self = Receipts::open(&self.path)?;
        Ok(())
    }

    /// What `key` is (see [`KeyIndex::lookup`]).
    pub fn lookup(&self, key: &str, digest: &str, now_ms: u64, remember: Remember) -> Seen {
        self.keys.lookup(key, digest, now_ms, remember)
    }

    /// Writes `r` and makes it durable; returns where its line starts: the
    /// length to [`Receipts::undo`] to if its post then fails, and to give
    /// [`Receipts::committed`] if it succeeds.
    pub fn write(&mut self, r: &Receipt) -> io::Result<u64> {
        let mut line = serde_json::to_vec(r).expect("a receipt serializes");
        line.push(b'\n');
        let before = self.len;
        let written = self.file.write_all(&line).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            if let Err(undo) = self.undo(before) {
                self.broken = true;
                return Err(io::Error::other(format!("{e}, and cutting it back failed: {undo}")));
            }
            return Err(e);
        }
        self.len += line.len() as u64;
        Ok(before)
    }

    /// Whether a failed write left the file's end unknown.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Cuts the file back to `to` (a written receipt whose post failed).
    pub fn undo(&mut self, to: u64) -> io::Result<()> {
        self.file.set_len(to)?;
        self.file.sync_data()?;
        self.len = to;
        Ok(())
    }

    /// Records that `r`'s post is in the journal; forgets expired keys and
    /// rewrites the file when it holds far more lines than live receipts.
    pub fn committed(&mut self, r: Receipt, line_start: u64, now_ms: u64, remember: Remember) -> io::Result<()> {
        self.last_at = line_start;
        self.lines += 1;
        self.keys.remember(r.clone());
        self.last = Some(r);
        self.keys.forget(now_ms, remember);
        if self.lines > 2 * self.keys.len() + 1024 {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Replaces the file with the live keyed receipts and the last one (the
    /// next opening checks the journal against it), atomically: a crash
    /// leaves the old file or the new one.
    fn rewrite(&mut self) -> io::Result<()> {
        let mut keep: Vec<&Receipt> = self.keys.live().collect();
        if let Some(last) = self.last.as_ref().filter(|l| l.key.is_none() || keep.last() != Some(l)) {
            keep.push(last);
        }
        let mut text = Vec::new();
        for r in &keep {
            serde_json::to_writer(&mut text, r).expect("a receipt serializes");
            text.push(b'\n');
        }
        let tmp = self.path.with_extension("receipts.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_data()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        *self = Receipts::open(&self.path)?;
        Ok(())
    }

    /// Lines in the file.
    #[cfg(test)]
    pub fn lines(&self) -> usize {
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(key: &str, digest: &str, at_ms: u64) -> Receipt {
        Receipt { start: 0, end: 2, records: 1, key: Some(key.into()), digest: Some(digest.into()), at_ms }
    }

    const HOUR: Remember = Remember { window_ms: 3_600_000, max_keys: 3 };

    #[test]
    fn a_key_is_replayed_with_its_body_refused_with_another_and_forgotten_after_the_window() {
        let mut idx = KeyIndex::default();
        idx.remember(keyed("k", "d1", 1000));
        assert_eq!(idx.lookup("k", "d1", 2000, HOUR), Seen::Replay(keyed("k", "d1", 1000)));
        assert_eq!(idx.lookup("k", "d2", 2000, HOUR), Seen::Reused);
        assert_eq!(idx.lookup("other", "d1", 2000, HOUR), Seen::New);
        assert_eq!(idx.lookup("k", "d1", 1000 + 3_600_000, HOUR), Seen::New, "the window is over");
    }

    #[test]
    fn the_oldest_keys_are_forgotten_beyond_the_cap_and_the_window() {
        let mut idx = KeyIndex::default();
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            idx.remember(keyed(k, "d", i as u64));
            idx.forget(i as u64, HOUR);
        }
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.lookup("a", "d", 4, HOUR), Seen::New, "the oldest went first");
        idx.forget(2 + 3_600_000, HOUR);
        assert_eq!(idx.live().map(|r| r.key.clone().unwrap()).collect::<Vec<_>>(), ["d"]);
    }

    #[test]
    fn a_key_forgotten_and_posted_again_is_remembered_from_its_new_post() {
        let mut idx = KeyIndex::default();
        idx.remember(keyed("k", "old", 0));
        idx.remember(keyed("x", "d", 10));
        // `k` expired, then was posted again with another body.
        idx.remember(keyed("k", "new", 3_600_000));
        idx.forget(3_600_005, HOUR);
        assert_eq!(idx.lookup("k", "new", 3_600_005, HOUR), Seen::Replay(keyed("k", "new", 3_600_000)));
        assert_eq!(idx.live().count(), 2, "the stale entry of `k` is not listed");
    }

    #[test]
    fn the_file_is_read_back_and_a_cut_last_line_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.receipts");
        let mut r = Receipts::open(&path).unwrap();
        let first = keyed("k", "d", 5);
        let at = r.write(&first).unwrap();
        r.committed(first.clone(), at, 5, HOUR).unwrap();
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"start\":2,\"en");
        std::fs::write(&path, &text).unwrap();
        let again = Receipts::open(&path).unwrap();
        assert_eq!(again.last(), Some(&first));
        assert_eq!(again.lookup("k", "d", 6, HOUR), Seen::Replay(first));
        assert_eq!(std::fs::read(&path).unwrap(), &text[..text.len() - 14]);
    }

    #[test]
    fn the_file_stays_bounded_however_many_posts_it_records() {
        // Attack: a client posting forever with a fresh key each time grows
        // the receipts file and the key index without end.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.receipts");
        let mut r = Receipts::open(&path).unwrap();
        let remember = Remember { window_ms: 1000, max_keys: 50 };
        let mut end = 0;
        for i in 0..5000u64 {
            let key = (i % 3 != 0).then(|| format!("key-{i}"));
            let rec = Receipt {
                start: end,
                end: end + 4,
                records: 1,
                digest: key.as_ref().map(|_| "d".to_string()),
                key,
                at_ms: i,
            };
            end += 4;
            let at = r.write(&rec).unwrap();
            r.committed(rec, at, i, remember).unwrap();
            assert!(r.lines() <= 2 * 50 + 1024 + 1, "{} lines after {i} posts", r.lines());
            assert!(r.keys.len() <= 50);
        }
        let reopened = Receipts::open(&path).unwrap();
        assert_eq!(reopened.last().map(|l| l.end), Some(end), "the last receipt survives every rewrite");
        assert_eq!(reopened.lookup("key-4999", "d", 5000, remember), Seen::Replay(reopened.last().unwrap().clone()));
        assert_eq!(
            reopened.lookup("key-4997", "d", 5000, remember),
            Seen::Replay(reopened.keys.by_key["key-4997"].clone())
        );
    }
}
