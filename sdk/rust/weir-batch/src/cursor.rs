//! Primitive reading and writing (§1 of `batch.md`): little-endian integers,
//! `bytes` and `opt-bytes`.

use std::fmt;

/// Marks an absent `opt-bytes` and a record without key.
const ABSENT: u32 = u32::MAX;

/// Bytes that do not follow the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError {
    /// Byte offset in the buffer where reading failed.
    pub offset: usize,
    /// What was expected there.
    pub what: &'static str,
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed buffer at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for LayoutError {}

/// A checked reader over a buffer.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Starts reading `buf` at its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Current offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been read.
    pub fn is_at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Fails unless every byte has been read.
    pub fn expect_end(&self) -> Result<(), LayoutError> {
        if self.is_at_end() {
            Ok(())
        } else {
            Err(self.error("end of buffer (bytes left over)"))
        }
    }

    /// An error at the current offset.
    pub fn error(&self, what: &'static str) -> LayoutError {
        LayoutError { offset: self.pos, what }
    }

    /// The next `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], LayoutError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.error(what)),
        }
    }

    /// A `u8`.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, LayoutError> {
        Ok(self.take(1, "u8")?[0])
    }

    /// A little-endian `u32`.
    #[inline]
    pub fn u32(&mut self) -> Result<u32, LayoutError> {
        let b = self.take(4, "u32")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian `i64`.
    #[inline]
    pub fn i64(&mut self) -> Result<i64, LayoutError> {
        let b = self.take(8, "i64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// A `bytes` value.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], LayoutError> {
        let n = self.u32()?;
        self.take(n as usize, "bytes running past the end of the buffer")
    }

    /// An `opt-bytes` value.
    #[inline]
    pub fn opt_bytes(&mut self) -> Result<Option<&'a [u8]>, LayoutError> {
        let n = self.u32()?;
        if n == ABSENT {
            return Ok(None);
        }
        self.take(n as usize, "bytes running past the end of the buffer").map(Some)
    }
}

/// A growing buffer with the primitive writers.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    /// An empty writer with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        Writer { buf: Vec::with_capacity(bytes) }
    }

    /// Appends a `u8`.
    #[inline]
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a little-endian `u32`.
    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `i64`.
    #[inline]
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a `bytes` value.
    ///
    /// # Panics
    /// If `v` is 4 GiB or longer.
    #[inline]
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(len_u32(v.len()));
        self.buf.extend_from_slice(v);
    }

    /// Appends an `opt-bytes` value.
    #[inline]
    pub fn opt_bytes(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => self.bytes(v),
            None => self.u32(ABSENT),
        }
    }

    /// Appends a `bytes` value whose content `fill` writes in place.
    #[inline]
    pub fn bytes_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.u32(0);
        fill(&mut self.buf);
        let n = len_u32(self.buf.len() - at - 4);
        self.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
    }

    /// Appends raw bytes.
    #[inline]
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The underlying buffer, for writing in place.
    pub fn buffer_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Overwrites the `u32` at `offset` (written earlier as a placeholder).
    pub fn patch_u32(&mut self, offset: usize, v: u32) {
        self.buf[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// The bytes written.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// A length as the layout's `u32`.
///
/// # Panics
/// On 4 GiB or more: no single value, key or batch may be that large.
#[inline]
pub(crate) fn len_u32(n: usize) -> u32 {
    match u32::try_from(n) {
        Ok(n) if n != ABSENT => n,
        _ => panic!("weir-batch: {n} bytes is too large for one value (limit 4 GiB - 2)"),
    }
}

pub(crate) const ABSENT_LEN: u32 = ABSENT;
