//! Byte forms shared by the backends: namespaces as key prefixes (ordered
//! like `Namespace`), and the snapshot file of the memory backend.
//!
//! Snapshot file: the magic `WEIRST01`, then per entry
//! `u32 prefix_len | prefix | u32 key_len | key | u32 value_len | value`
//! (little-endian lengths; the prefix is the encoded namespace), then
//! `END!` and the entry count (`u64`). Integrity is checked against the
//! length and XXH3 recorded in the checkpoint's metadata.

use super::Namespace;
use crate::checkpoint::metadata::FileSum;
use crate::types::TimeWindow;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use xxhash_rust::xxh3::Xxh3;

const MAGIC: &[u8; 8] = b"WEIRST01";
const TRAILER: &[u8; 4] = b"END!";

/// Appends the prefix of `ns` to `out`: operator and state (big-endian),
/// then `0`, or `1` and the window's start and end (sign-flipped
/// big-endian, so byte order is numeric order).
pub fn encode_namespace(ns: &Namespace, out: &mut Vec<u8>) {
    out.extend_from_slice(&ns.operator.to_be_bytes());
    out.extend_from_slice(&ns.state.to_be_bytes());
    match ns.window {
        None => out.push(0),
        Some(w) => {
            out.push(1);
            out.extend_from_slice(&((w.start as u64) ^ (1 << 63)).to_be_bytes());
            out.extend_from_slice(&((w.end as u64) ^ (1 << 63)).to_be_bytes());
        }
    }
}

/// Parses a prefix written by [`encode_namespace`] at the start of `bytes`;
/// returns it and its length.
pub fn decode_namespace(bytes: &[u8]) -> Option<(Namespace, usize)> {
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
    let i64_at = |at: usize| {
        bytes.get(at..at + 8).map(|b| (u64::from_be_bytes(b.try_into().expect("8 bytes")) ^ (1 << 63)) as i64)
    };
    let (operator, state) = (u32_at(0)?, u32_at(4)?);
    match bytes.get(8)? {
        0 => Some((Namespace { operator, state, window: None }, 9)),
        1 => {
            let window = TimeWindow { start: i64_at(9)?, end: i64_at(17)? };
            Some((Namespace { operator, state, window: Some(window) }, 25))
        }
        _ => None,
    }
}

/// Writes a snapshot file, hashing as it goes.
pub struct EntryWriter {
    out: BufWriter<File>,
    hasher: Xxh3,
    len: u64,
    count: u64,
    prefix: Vec<u8>,
    name: String,
}

impl EntryWriter {
    /// Creates `dir/name`.
    pub fn create(dir: &Path, name: &str) -> io::Result<EntryWriter> {
        let file = File::create(dir.join(name))?;
        let mut w = EntryWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: Xxh3::new(),
            len: 0,
            count: 0,
            prefix: Vec::with_capacity(32),
            name: name.to_string(),
        };
        w.bytes(MAGIC)?;
        Ok(w)
    }

    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.hasher.update(b);
        self.len += b.len() as u64;
        self.out.write_all(b)
    }

    fn framed(&mut self, b: &[u8]) -> io::Result<()> {
        let n = u32::try_from(b.len()).map_err(|_| io::Error::other("a state entry over 4 GiB"))?;
        self.bytes(&n.to_le_bytes())?;
        self.bytes(b)
    }

    /// Appends one entry.
    pub fn entry(&mut self, ns: &Namespace, key: &[u8], value: &[u8]) -> io::Result<()> {
        let mut prefix = std::mem::take(&mut self.prefix);
        prefix.clear();
        encode_namespace(ns, &mut prefix);
        let r = self.framed(&prefix).and_then(|_| self.framed(key)).and_then(|_| self.framed(value));
        self.prefix = prefix;
        self.count += 1;
        r
    }

    /// Ends the file and makes it durable.
    pub fn finish(mut self) -> io::Result<FileSum> {
        self.bytes(TRAILER)?;
        let count = self.count.to_le_bytes();
        self.bytes(&count)?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(FileSum { name: self.name, len: self.len, xxh3: self.hasher.digest() })
    }
}

/// Called with each entry of a snapshot file: namespace, state key, value.
pub type EntryVisitor<'a> = dyn FnMut(&Namespace, &[u8], &[u8]) + 'a;

/// Calls `f` with every entry of the snapshot file at `path`.
pub fn read_entries(path: &Path, f: &mut EntryVisitor<'_>) -> Result<(), String> {
    let bad = |what: &str| format!("{}: {what}", path.display());
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut file| file.read_to_end(&mut bytes)).map_err(|e| bad(&e.to_string()))?;
    let body = bytes
        .strip_prefix(MAGIC)
        .and_then(|b| b.len().checked_sub(12).map(|n| b.split_at(n)))
        .filter(|(_, t)| t.starts_with(TRAILER))
        .ok_or_else(|| bad("not a Weir state snapshot (bad header or trailer)"))?;
    let (mut rest, trailer) = body;
    let expected = u64::from_le_bytes(trailer[4..12].try_into().expect("8 bytes"));
    let framed = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let v = rest.get(4..4 + n)?.to_vec();
        *rest = &rest[4 + n..];
        Some(v)
    };
    let mut count = 0u64;
    while !rest.is_empty() {
        let (prefix, key, value) = match (framed(&mut rest), framed(&mut rest), framed(&mut rest)) {
            (Some(p), Some(k), Some(v)) => (p, k, v),
            _ => return Err(bad("truncated entry")),
        };
        let (ns, _) = decode_namespace(&prefix).ok_or_else(|| bad("bad namespace"))?;
        f(&ns, &key, &value);
        count += 1;
    }
    if count != expected {
        return Err(bad(&format!("{count} entries, the trailer says {expected}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_order_like_their_bytes() {
        let w = |start, end| Some(TimeWindow { start, end });
        let mut spaces = vec![
            Namespace { operator: 2, state: 0, window: None },
            Namespace { operator: 1, state: 1, window: w(-5, 5) },
            Namespace { operator: 1, state: 1, window: w(i64::MIN, 0) },
            Namespace { operator: 1, state: 1, window: w(7, 9) },
            Namespace { operator: 1, state: 0, window: None },
        ];
        let mut by_bytes = spaces.clone();
        by_bytes.sort_by_key(|ns| {
            let mut b = Vec::new();
            encode_namespace(ns, &mut b);
            b
        });
        spaces.sort();
        assert_eq!(by_bytes, spaces);
        for ns in &spaces {
            let mut b = Vec::new();
            encode_namespace(ns, &mut b);
            b.extend_from_slice(b"key");
            assert_eq!(decode_namespace(&b), Some((*ns, b.len() - 3)));
        }
    }

    #[test]
    fn snapshot_files_round_trip_and_truncation_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let ns = Namespace::window(3, 0, TimeWindow { start: 0, end: 10 });
        let mut w = EntryWriter::create(dir.path(), "state").unwrap();
        w.entry(&ns, b"\x00\x01k", b"v").unwrap();
        w.entry(&Namespace::keyed(3, 1), b"\x00\x02kk", b"").unwrap();
        let sum = w.finish().unwrap();
        let path = dir.path().join("state");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((sum.len, sum.xxh3), (bytes.len() as u64, xxhash_rust::xxh3::xxh3_64(&bytes)));
        let mut seen = Vec::new();
        read_entries(&path, &mut |ns, k, v| seen.push((*ns, k.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(
            seen,
            vec![(ns, b"\x00\x01k".to_vec(), b"v".to_vec()), (Namespace::keyed(3, 1), b"\x00\x02kk".to_vec(), vec![])]
        );
        for cut in 0..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(read_entries(&path, &mut |_, _, _| {}).is_err(), "cut at {cut}");
        }
    }
}
