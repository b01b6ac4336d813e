//! Batches of records (§2 of `batch.md`).

use crate::cursor::{len_u32, Cursor, LayoutError, ABSENT_LEN};

/// `key_len` of a record without key.
pub const NO_KEY: u32 = ABSENT_LEN;

/// Bytes before a record's key: timestamp, key, value and headers lengths.
const RECORD_PREFIX: usize = 8 + 4 + 4 + 4;

/// One record, borrowed from a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Event time (or ingestion time), ms since the Unix epoch.
    pub timestamp: i64,
    /// The key, if the record has one.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// The encoded header section (see [`RecordRef::headers`]).
    pub raw_headers: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// A record without key and headers.
    pub fn new(timestamp: i64, value: &'a [u8]) -> Self {
        RecordRef { timestamp, key: None, value, raw_headers: &[] }
    }

    /// The headers as `(name, value)` pairs.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter { cursor: Cursor::new(self.raw_headers) }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Bytes this record takes in a batch.
    pub fn encoded_len(&self) -> usize {
        RECORD_PREFIX + self.key.map_or(0, <[u8]>::len) + self.value.len() + self.raw_headers.len()
    }
}

/// Iterator over the headers of a record (validated when the batch was).
#[derive(Debug, Clone)]
pub struct HeaderIter<'a> {
    cursor: Cursor<'a>,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.cursor.is_at_end() {
            return None;
        }
        let name = self.cursor.bytes().ok()?;
        let value = self.cursor.bytes().ok()?;
        Some((name, value))
    }
}

/// Appends one header to an encoded header section.
pub fn write_header(section: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    section.extend_from_slice(&len_u32(name.len()).to_le_bytes());
    section.extend_from_slice(name);
    section.extend_from_slice(&len_u32(value.len()).to_le_bytes());
    section.extend_from_slice(value);
}

/// A validated batch borrowed from a buffer.
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    buf: &'a [u8],
    len: u32,
}

impl<'a> BatchRef<'a> {
    /// Validates `buf` as a batch: every length in bounds, header sections
    /// well formed, no bytes left over.
    pub fn parse(buf: &'a [u8]) -> Result<Self, LayoutError> {
        let mut c = Cursor::new(buf);
        let count = c.u32()?;
        for _ in 0..count {
            c.i64()?;
            let key_len = c.u32()?;
            let value_len = c.u32()?;
            let headers_len = c.u32()?;
            if key_len != NO_KEY {
                c.take(key_len as usize, "key running past the end of the buffer")?;
            }
            c.take(value_len as usize, "value running past the end of the buffer")?;
            let headers = c.take(headers_len as usize, "headers running past the end of the buffer")?;
            let mut h = Cursor::new(headers);
            while !h.is_at_end() {
                let at = c.position() - headers.len() + h.position();
                h.bytes()
                    .and_then(|_| h.bytes())
                    .map_err(|_| LayoutError { offset: at, what: "malformed header section" })?;
            }
        }
        c.expect_end()?;
        Ok(BatchRef { buf, len: count })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the batch has no records.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records, in order.
    pub fn iter(&self) -> RecordIter<'a> {
        RecordIter { buf: self.buf, pos: 4, left: self.len }
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

impl<'a> IntoIterator for BatchRef<'a> {
    type Item = RecordRef<'a>;
    type IntoIter = RecordIter<'a>;

    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

/// Iterator over the records of a validated batch.
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = RecordRef<'a>;

    #[inline]
    fn next(&mut self) -> Option<RecordRef<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let b = self.buf;
        let p = self.pos;
        let timestamp = i64::from_le_bytes(b[p..p + 8].try_into().expect("8 bytes"));
        let key_len = u32::from_le_bytes(b[p + 8..p + 12].try_into().expect("4 bytes"));
        let value_len = u32::from_le_bytes(b[p + 12..p + 16].try_into().expect("4 bytes")) as usize;
        let headers_len = u32::from_le_bytes(b[p + 16..p + 20].try_into().expect("4 bytes")) as usize;
        let mut q = p + RECORD_PREFIX;
        let key = if key_len == NO_KEY {
            None
        } else {
            let k = &b[q..q + key_len as usize];
            q += key_len as usize;
            Some(k)
        };
        let value = &b[q..q + value_len];
        q += value_len;
        let raw_headers = &b[q..q + headers_len];
        self.pos = q + headers_len;
        Some(RecordRef { timestamp, key, value, raw_headers })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for RecordIter<'_> {}

/// An owned, validated batch: the host's unit of data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    buf: Vec<u8>,
    len: u32,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::empty()
    }
}

impl Batch {
    /// A batch without records.
    pub fn empty() -> Self {
        Batch { buf: 0u32.to_le_bytes().to_vec(), len: 0 }
    }

    /// Validates `buf` (see [`BatchRef::parse`]) and takes it over.
    pub fn from_vec(buf: Vec<u8>) -> Result<Self, LayoutError> {
        let len = BatchRef::parse(&buf)?.len;
        Ok(Batch { buf, len })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the batch has no records.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A borrowed view.
    pub fn view(&self) -> BatchRef<'_> {
        BatchRef { buf: &self.buf, len: self.len }
    }

    /// The records, in order.
    pub fn iter(&self) -> RecordIter<'_> {
        self.view().iter()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded bytes as the vector they live in (for APIs that take `&Vec<u8>`).
    pub fn as_vec(&self) -> &Vec<u8> {
        &self.buf
    }

    /// The encoded bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Size of the encoded batch in bytes.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Sets the timestamp of record `i` to `timestamps[i]`, in place.
    ///
    /// # Panics
    /// If `timestamps` does not have one entry per record.
    pub fn rewrite_timestamps(&mut self, timestamps: &[i64]) {
        assert_eq!(timestamps.len(), self.len(), "one timestamp per record");
        let mut p = 4;
        for ts in timestamps {
            self.buf[p..p + 8].copy_from_slice(&ts.to_le_bytes());
            let len = |at: usize| u32::from_le_bytes(self.buf[at..at + 4].try_into().expect("4 bytes"));
            let key_len = match len(p + 8) {
                NO_KEY => 0,
                n => n as usize,
            };
            p += RECORD_PREFIX + key_len + len(p + 12) as usize + len(p + 16) as usize;
        }
    }

    /// The records `range` (by index) as a new batch.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Batch {
        let mut w = BatchWriter::new();
        for r in self.iter().skip(range.start).take(range.len()) {
            w.push_record(&r);
        }
        w.finish()
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = RecordRef<'a>;
    type IntoIter = RecordIter<'a>;

    fn into_iter(self) -> RecordIter<'a> {
        self.iter()
    }
}

/// A position in a [`BatchWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    bytes: usize,
    len: u32,
}

/// Builds a batch in one buffer.
#[derive(Debug, Clone)]
pub struct BatchWriter {
    buf: Vec<u8>,
    len: u32,
}

impl Default for BatchWriter {
    fn default() -> Self {
        BatchWriter::new()
    }
}

impl BatchWriter {
    /// An empty batch.
    pub fn new() -> Self {
        BatchWriter::with_capacity(0)
    }

    /// An empty batch with room for `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(4));
        buf.extend_from_slice(&0u32.to_le_bytes());
        BatchWriter { buf, len: 0 }
    }

    #[inline]
    fn prefix(&mut self, timestamp: i64, key: Option<&[u8]>, value_len: u32, headers_len: u32) {
        self.len = self.len.checked_add(1).expect("weir-batch: more than 4 billion records in one batch");
        let key_len = key.map_or(NO_KEY, |k| len_u32(k.len()));
        self.buf.extend_from_slice(&timestamp.to_le_bytes());
        self.buf.extend_from_slice(&key_len.to_le_bytes());
        self.buf.extend_from_slice(&value_len.to_le_bytes());
        self.buf.extend_from_slice(&headers_len.to_le_bytes());
        if let Some(k) = key {
            self.buf.extend_from_slice(k);
        }
    }

    /// Appends a record without headers.
    #[inline]
    pub fn push(&mut self, timestamp: i64, key: Option<&[u8]>, value: &[u8]) {
        self.prefix(timestamp, key, len_u32(value.len()), 0);
        self.buf.extend_from_slice(value);
    }

    /// Appends a record with an encoded header section (see [`write_header`]).
    #[inline]
    pub fn push_with_headers(&mut self, timestamp: i64, key: Option<&[u8]>, value: &[u8], raw_headers: &[u8]) {
        self.prefix(timestamp, key, len_u32(value.len()), len_u32(raw_headers.len()));
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(raw_headers);
    }

    /// Appends a copy of `record`, headers included.
    #[inline]
    pub fn push_record(&mut self, record: &RecordRef<'_>) {
        self.push_with_headers(record.timestamp, record.key, record.value, record.raw_headers);
    }

    /// Appends a record without headers whose value `fill` writes in place
    /// (it must only append to the vector it is given).
    #[inline]
    pub fn push_with<R>(&mut self, timestamp: i64, key: Option<&[u8]>, fill: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        self.prefix(timestamp, key, 0, 0);
        let start = self.buf.len();
        let r = fill(&mut self.buf);
        let value_len = len_u32(self.buf.len() - start);
        let at = start - key.map_or(0, <[u8]>::len) - 8;
        self.buf[at..at + 4].copy_from_slice(&value_len.to_le_bytes());
        r
    }

    /// Number of records written.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether no record was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes written so far.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// The current end, to [`rollback`](Self::rollback) to.
    pub fn mark(&self) -> Mark {
        Mark { bytes: self.buf.len(), len: self.len }
    }

    /// Drops every record written after `mark` was taken.
    pub fn rollback(&mut self, mark: Mark) {
        assert!(mark.bytes <= self.buf.len() && mark.len <= self.len, "mark of another writer");
        self.buf.truncate(mark.bytes);
        self.len = mark.len;
    }

    /// Drops every record, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.truncate(4);
        self.len = 0;
    }

    /// The finished batch.
    pub fn finish(mut self) -> Batch {
        self.buf[..4].copy_from_slice(&self.len.to_le_bytes());
        Batch { buf: self.buf, len: self.len }
    }

    /// The finished batch, leaving this writer empty with a buffer of the
    /// same capacity for the next one.
    pub fn take(&mut self) -> Batch {
        let cap = self.buf.capacity();
        std::mem::replace(self, BatchWriter::with_capacity(cap)).finish()
    }

    /// The finished batch's bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.finish().buf
    }
}
