//! Keyed state in RocksDB, for state larger than memory and for cheap
//! snapshots (RocksDB checkpoints hard-link the immutable table files, so a
//! snapshot costs what changed, not what is stored).
//!
//! Keys are `namespace prefix | state key` (see `entries`), so firing a
//! window is one range scan and dropping it one range deletion; the key
//! group after the prefix lets a restore keep only its key groups.
//!
//! Writes go to a write-back cache (a [`MemoryBackend`] plus deletions)
//! that is authoritative for the keys it holds and is written to RocksDB in
//! one batch when it grows past its budget and before every snapshot; the
//! write-ahead log is off, since checkpoints are the durability. What was
//! written out stays readable in a clean cache (same budget), and while
//! nothing was ever evicted from it (state that fits the budget) memory
//! mirrors the whole database, so a key missing from memory is missing: a
//! checkpoint then costs no reads at all afterwards.

use super::entries::{decode_namespace, encode_namespace};
use super::{key_group_of, MemoryBackend, Namespace, RestoreSource, StateBackend, StateValue};
use crate::checkpoint::metadata::{FileSum, StateFiles};
use crate::checkpoint::store::hash_file;
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options, ReadOptions, WriteBatch, WriteOptions, DB};
use rustc_hash::{FxHashMap, FxHashSet};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Entries held in the write-back cache before it is written out.
const DEFAULT_CACHE_ENTRIES: usize = 256 * 1024;

/// State in a RocksDB database of its own.
pub struct RocksBackend {
    db: Option<DB>,
    path: PathBuf,
    write: WriteOptions,
    /// Writes since the last write-out (authoritative).
    cache: MemoryBackend,
    /// Encoded keys deleted since the cache was last written out.
    deleted: FxHashSet<Vec<u8>>,
    /// Values as the database holds them (never dirty).
    clean: MemoryBackend,
    /// Every key of the database is in `cache` or `clean`.
    mirrored: bool,
    cache_entries: usize,
    failure: RefCell<Option<String>>,
    /// Checksums of table files already hashed (they never change).
    sums: FxHashMap<String, FileSum>,
}

fn options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_max_background_jobs(2);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(64 << 20));
    table.set_bloom_filter(10.0, false);
    o.set_block_based_table_factory(&table);
    o
}

fn key_of(ns: &Namespace, key: &[u8], out: &mut Vec<u8>) {
    out.clear();
    encode_namespace(ns, out);
    out.extend_from_slice(key);
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

impl RocksBackend {
    /// Opens a new, empty database in `path` (which must not hold one).
    pub fn create(path: &Path) -> Result<RocksBackend, String> {
        Self::create_with_cache(path, DEFAULT_CACHE_ENTRIES)
    }

    /// Like [`create`](Self::create), holding at most `cache_entries` entries in memory.
    pub fn create_with_cache(path: &Path, cache_entries: usize) -> Result<RocksBackend, String> {
        if path.exists() {
            return Err(format!("{} already exists; state directories are never reused", path.display()));
        }
        let mut o = options();
        o.set_error_if_exists(true);
        let db = DB::open(&o, path).map_err(|e| format!("cannot create the state database {}: {e}", path.display()))?;
        let mut write = WriteOptions::default();
        write.disable_wal(true);
        Ok(RocksBackend {
            db: Some(db),
            path: path.to_path_buf(),
            write,
            cache: MemoryBackend::new(),
            deleted: FxHashSet::default(),
            clean: MemoryBackend::new(),
            mirrored: true,
            cache_entries: cache_entries.max(1),
            failure: RefCell::new(None),
            sums: FxHashMap::default(),
        })
    }

    fn db(&self) -> &DB {
        self.db.as_ref().expect("the database is open except inside restore")
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) {
        let mut f = self.failure.borrow_mut();
        if f.is_none() {
            *f = Some(format!("state database {}: {what}: {e}", self.path.display()));
        }
    }

    /// The value below the write cache: clean cache, then the database.
    fn db_get(&self, ns: &Namespace, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(v) = self.clean.get(ns, key) {
            return Some(v.into_owned());
        }
        if self.mirrored {
            return None;
        }
        let mut k = Vec::with_capacity(32 + key.len());
        key_of(ns, key, &mut k);
        if self.deleted.contains(&k) {
            return None;
        }
        match self.db().get_pinned(&k) {
            Ok(v) => v.map(|v| v.to_vec()),
            Err(e) => {
                self.fail("read", e);
                None
            }
        }
    }

    /// Writes the cache out and empties it.
    fn write_out(&mut self) -> Result<(), String> {
        if self.cache.is_empty() && self.deleted.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for k in self.deleted.drain() {
            batch.delete(k);
        }
        let mut k = Vec::new();
        for ns in self.cache.namespaces() {
            self.cache.for_each(&ns, &mut |key, value| {
                key_of(&ns, key, &mut k);
                batch.put(&k, value);
            });
        }
        let written = std::mem::take(&mut self.cache);
        let db = self.db.as_ref().expect("open");
        db.write_opt(batch, &self.write).map_err(|e| {
            self.fail("write", &e);
            format!("state database {}: write: {e}", self.path.display())
        })?;
        // Keep what was written readable, within the budget.
        if self.clean.len() + written.len() > self.cache_entries {
            self.clean = MemoryBackend::new();
            self.mirrored = false;
        }
        if written.len() <= self.cache_entries {
            for ns in written.namespaces() {
                written.for_each(&ns, &mut |key, value| self.clean.put(&ns, key, value));
            }
        }
        Ok(())
    }

    fn after_write(&mut self) {
        if self.cache.len() >= self.cache_entries {
            let _ = self.write_out();
        }
    }

    /// Calls `f` with every stored (encoded key, value) in `range` of the database.
    fn scan(&self, from: &[u8], to: &[u8], f: &mut dyn FnMut(&[u8], &[u8])) {
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(to.to_vec());
        let mut it = self.db().raw_iterator_opt(read);
        it.seek(from);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            f(k, v);
            it.next();
        }
        if let Err(e) = it.status() {
            self.fail("scan", e);
        }
    }

    fn hash_files(&mut self, dir: &Path) -> std::io::Result<Vec<FileSum>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let len = entry.metadata()?.len();
            let immutable = name.ends_with(".sst") || name.ends_with(".blob");
            if let Some(s) = self.sums.get(&name).filter(|s| immutable && s.len == len) {
                files.push(s.clone());
                continue;
            }
            let sum = FileSum { name: name.clone(), len, xxh3: hash_file(&entry.path())? };
            if immutable {
                self.sums.insert(name, sum.clone());
            }
            files.push(sum);
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }
}

impl StateBackend for RocksBackend {
    fn get(&self, ns: &Namespace, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        if let Some(v) = self.cache.get(ns, key) {
            return Some(v);
        }
        self.db_get(ns, key).map(Cow::Owned)
    }

    fn put(&mut self, ns: &Namespace, key: &[u8], value: &[u8]) {
        self.cache.put(ns, key, value);
        self.after_write();
    }

    fn modify(&mut self, ns: &Namespace, key: &[u8], f: &mut dyn FnMut(&mut StateValue, bool)) {
        if self.cache.get(ns, key).is_none() {
            if let Some(v) = self.db_get(ns, key) {
                self.cache.put(ns, key, &v);
            }
        }
        self.cache.modify(ns, key, f);
        self.after_write();
    }

    fn delete(&mut self, ns: &Namespace, key: &[u8]) {
        self.cache.delete(ns, key);
        self.clean.delete(ns, key);
        let mut k = Vec::new();
        key_of(ns, key, &mut k);
        self.deleted.insert(k);
        if self.deleted.len() >= self.cache_entries {
            let _ = self.write_out();
        }
    }

    fn for_each(&self, ns: &Namespace, f: &mut dyn FnMut(&[u8], &[u8])) {
        if self.mirrored {
            self.clean.for_each(ns, &mut |k, v| {
                if self.cache.get(ns, k).is_none() {
                    f(k, v);
                }
            });
            self.cache.for_each(ns, f);
            return;
        }
        let mut prefix = Vec::with_capacity(25);
        encode_namespace(ns, &mut prefix);
        let end = prefix_end(&prefix);
        let n = prefix.len();
        self.scan(&prefix, &end, &mut |k, v| {
            if self.cache.get(ns, &k[n..]).is_none() && !self.deleted.contains(k) {
                f(&k[n..], v);
            }
        });
        self.cache.for_each(ns, f);
    }

    fn drop_namespace(&mut self, ns: &Namespace) {
        self.cache.drop_namespace(ns);
        self.clean.drop_namespace(ns);
        let mut prefix = Vec::with_capacity(25);
        encode_namespace(ns, &mut prefix);
        self.deleted.retain(|k| !k.starts_with(&prefix));
        let mut batch = WriteBatch::default();
        batch.delete_range(prefix.clone(), prefix_end(&prefix));
        if let Err(e) = self.db().write_opt(batch, &self.write) {
            self.fail("delete range", e);
        }
    }

    fn namespaces(&self) -> Vec<Namespace> {
        let mut found: BTreeSet<Namespace> = self.cache.namespaces().into_iter().collect();
        if self.mirrored {
            found.extend(self.clean.namespaces());
            return found.into_iter().collect();
        }
        // Skip from one namespace to the next: one seek per namespace.
        let mut it = self.db().raw_iterator();
        it.seek_to_first();
        while let Some(k) = it.key() {
            let Some((ns, n)) = decode_namespace(k) else {
                self.fail("scan", format!("a key without a namespace: {k:?}"));
                break;
            };
            let mut any = false;
            self.for_each(&ns, &mut |_, _| any = true);
            if any {
                found.insert(ns);
            }
            it.seek(prefix_end(&k[..n]));
        }
        if let Err(e) = it.status() {
            self.fail("scan", e);
        }
        found.into_iter().collect()
    }

    fn len(&self) -> usize {
        self.namespaces()
            .iter()
            .map(|ns| {
                let mut n = 0;
                self.for_each(ns, &mut |_, _| n += 1);
                n
            })
            .sum()
    }

    fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    fn snapshot(&mut self, dir: &Path) -> Result<StateFiles, String> {
        self.write_out()?;
        let path = self.path.clone();
        let cannot =
            |e: &dyn std::fmt::Display| format!("cannot snapshot {} into {}: {e}", path.display(), dir.display());
        {
            let checkpoint = Checkpoint::new(self.db()).map_err(|e| cannot(&e))?;
            // Flushes the memtable first, then hard-links the table files.
            checkpoint.create_checkpoint(dir).map_err(|e| cannot(&e))?;
        }
        let files = self.hash_files(dir).map_err(|e| cannot(&e))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(StateFiles { backend: "rocksdb".into(), dir: name, files })
    }

    fn restore(&mut self, sources: &[RestoreSource], key_groups: Range<u32>) -> Result<(), String> {
        // The database gets content that memory does not hold.
        self.mirrored = false;
        self.clean = MemoryBackend::new();
        if let [only] = sources {
            if only.files.backend == "rocksdb" && only.key_groups == key_groups {
                return self.adopt(only);
            }
        }
        for s in sources {
            match s.files.backend.as_str() {
                "rocksdb" => {
                    let mut batch = WriteBatch::default();
                    let mut failed = None;
                    read_snapshot(&s.dir, &key_groups, &mut |key, _, _, value| {
                        batch.put(key, value);
                        if batch.len() >= 64 * 1024 && failed.is_none() {
                            failed = self.db().write_opt(std::mem::take(&mut batch), &self.write).err();
                        }
                    })?;
                    if let Some(e) = failed {
                        return Err(e.to_string());
                    }
                    self.db().write_opt(batch, &self.write).map_err(|e| e.to_string())?;
                }
                "memory" => {
                    let mut m = MemoryBackend::new();
                    m.restore(std::slice::from_ref(s), key_groups.clone())?;
                    for ns in m.namespaces() {
                        m.for_each(&ns, &mut |k, v| self.cache.put(&ns, k, v));
                    }
                    self.write_out()?;
                }
                other => return Err(format!("{}: unknown state backend `{other}`", s.dir.display())),
            }
        }
        Ok(())
    }
}

/// Called with a snapshot entry: encoded key, namespace, namespace prefix length, value.
pub(super) type SnapshotVisitor<'a> = dyn FnMut(&[u8], Namespace, usize, &[u8]) + 'a;

/// Calls `f` with every entry of the RocksDB snapshot in `dir` whose key
/// group is in `key_groups`: its encoded key, namespace, the length of the
/// namespace prefix (the state key follows it) and value.
pub(super) fn read_snapshot(dir: &Path, key_groups: &Range<u32>, f: &mut SnapshotVisitor<'_>) -> Result<(), String> {
    let db = DB::open_for_read_only(&options(), dir, false)
        .map_err(|e| format!("cannot open the snapshot {}: {e}", dir.display()))?;
    let mut it = db.raw_iterator();
    it.seek_to_first();
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let (ns, n) = decode_namespace(k).ok_or_else(|| format!("{}: corrupt key", dir.display()))?;
        if k.len() >= n + 2 && key_groups.contains(&key_group_of(&k[n..])) {
            f(k, ns, n, v);
        }
        it.next();
    }
    it.status().map_err(|e| format!("{}: {e}", dir.display()))
}

impl RocksBackend {
    /// Restores a snapshot of exactly this backend's key groups by taking
    /// its files: table files are hard-linked (copied across file systems),
    /// the rest copied.
    fn adopt(&mut self, source: &RestoreSource) -> Result<(), String> {
        let path = self.path.clone();
        let cannot =
            |e: &dyn std::fmt::Display| format!("cannot restore {} into {}: {e}", source.dir.display(), path.display());
        drop(self.db.take());
        std::fs::remove_dir_all(&self.path).map_err(|e| cannot(&e))?;
        std::fs::create_dir_all(&self.path).map_err(|e| cannot(&e))?;
        for f in &source.files.files {
            let (from, to) = (source.dir.join(&f.name), self.path.join(&f.name));
            let linked = f.name.ends_with(".sst") && std::fs::hard_link(&from, &to).is_ok();
            if !linked {
                std::fs::copy(&from, &to).map_err(|e| cannot(&e))?;
            }
        }
        let db = DB::open(&options(), &self.path).map_err(|e| cannot(&e))?;
        self.db = Some(db);
        Ok(())
    }
}

impl Drop for RocksBackend {
    fn drop(&mut self) {
        drop(self.db.take());
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_bound_every_key_of_the_prefix() {
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0xff; 3]);
    }
}
