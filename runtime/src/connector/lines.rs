//! Turning a byte stream into batches of lines.
//!
//! [`LineReader`] reads into one buffer and copies each complete line once,
//! straight into the batch. It stops at a byte limit (the end of a file
//! split), treats a missing final newline as a line end, strips `\r\n`, and
//! hands the first line to a CSV header slot when asked to.

use super::{now_ms, Read};
use crate::operator::decode::{header_columns, CsvColumns};
use crate::types::BatchWriter;
use std::io::{self, ErrorKind};

/// Longest accepted line, its newline included.
pub const MAX_LINE: usize = 16 << 20;
/// The longest record a line carries (the line without its newline): the
/// one limit every writer of lines checks against (the ingest journal took
/// a record of exactly 16 MiB that its reader then refused for good).
pub const MAX_RECORD: usize = MAX_LINE - 1;
const READ_SIZE: usize = 1 << 20;

/// Where a CSV header line goes.
pub struct HeaderSlot {
    /// Filled with the column names of the first line.
    pub columns: CsvColumns,
    /// The CSV delimiter.
    pub delimiter: u8,
}

/// Reads lines from `R` into batches.
pub struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Offset (in the underlying input) of `buf[start]`.
    offset: u64,
    /// Lines starting at or after this offset are not read.
    limit: u64,
    skip_blank: bool,
    header: Option<HeaderSlot>,
}

impl<R: io::Read> LineReader<R> {
    /// Reads `reader`, whose first byte is at `offset` of the input, up to
    /// the line starting before `limit`. `skip_blank` drops empty and
    /// whitespace-only lines.
    pub fn new(reader: R, offset: u64, limit: u64, skip_blank: bool, header: Option<HeaderSlot>) -> Self {
        LineReader { reader, buf: vec![0; READ_SIZE], start: 0, end: 0, eof: false, offset, limit, skip_blank, header }
    }

    /// The offset of the next unread line, and the limit.
    pub fn position(&self) -> (u64, u64) {
        (self.offset, self.limit)
    }

    /// Refills the buffer; `Ok(false)` when nothing could be read right now.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_LINE {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    format!("a line at byte {} is longer than {} MiB", self.offset, MAX_LINE >> 20),
                ));
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(true);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads up to `max` lines.
    pub fn read(&mut self, max: usize) -> io::Result<Read> {
        let ts = now_ms();
        let mut out = BatchWriter::with_capacity(256 * max.min(4096));
        loop {
            while out.len() < max && self.offset < self.limit {
                let pending = &self.buf[self.start..self.end];
                let (line, consumed) = match memchr::memchr(b'\n', pending) {
                    Some(i) => (&pending[..i], i + 1),
                    None if self.eof && !pending.is_empty() => (pending, pending.len()),
                    None => break,
                };
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let blank = self.skip_blank && line.iter().all(u8::is_ascii_whitespace);
                if let Some(slot) = self.header.take_if(|_| !blank) {
                    let cols = header_columns(line, slot.delimiter)
                        .map_err(|e| io::Error::new(ErrorKind::InvalidData, format!("CSV header: {e}")))?;
                    let _ = slot.columns.set(cols);
                } else if !blank {
                    out.push(ts, None, line);
                }
                self.start += consumed;
                self.offset += consumed as u64;
            }
            let exhausted = self.offset >= self.limit || (self.eof && self.start == self.end);
            if out.len() >= max || exhausted {
                break;
            }
            if !self.fill()? {
                break;
            }
        }
        if !out.is_empty() {
            Ok(Read::Batch(out.finish()))
        } else if self.offset >= self.limit || (self.eof && self.start == self.end) {
            Ok(Read::End)
        } else {
            Ok(Read::Idle)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_lines(input: &[u8], offset: u64, limit: u64, max: usize, skip_blank: bool) -> Vec<String> {
        let mut r = LineReader::new(input, offset, limit, skip_blank, None);
        let mut lines = Vec::new();
        loop {
            match r.read(max).unwrap() {
                Read::Batch(b) => lines.extend(b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap())),
                Read::Idle => panic!("a slice never blocks"),
                Read::End => return lines,
            }
        }
    }

    #[test]
    fn splits_lines_with_any_ending() {
        assert_eq!(all_lines(b"a\nb\r\n\nc", 0, u64::MAX, 2, false), ["a", "b", "", "c"]);
        assert_eq!(all_lines(b"a\n  \nc\n", 0, u64::MAX, 100, true), ["a", "c"]);
        assert!(all_lines(b"", 0, u64::MAX, 10, false).is_empty());
    }

    #[test]
    fn stops_at_the_limit_after_the_line_that_crosses_it() {
        // Lines start at 0, 4, 8: a limit of 5 reads the lines starting at 0 and 4.
        assert_eq!(all_lines(b"aaa\nbbb\nccc\n", 0, 5, 10, false), ["aaa", "bbb"]);
    }

    #[test]
    fn lines_longer_than_the_buffer_grow_it() {
        let long = "x".repeat(3 * READ_SIZE);
        let input = format!("{long}\nshort\n");
        assert_eq!(all_lines(input.as_bytes(), 0, u64::MAX, 10, false), [long.as_str(), "short"]);
    }

    #[test]
    fn the_header_line_goes_to_the_slot() {
        let columns = CsvColumns::default();
        let slot = HeaderSlot { columns: columns.clone(), delimiter: b',' };
        let mut r = LineReader::new(&b"\na,b\n1,2\n"[..], 0, u64::MAX, true, Some(slot));
        let Read::Batch(b) = r.read(10).unwrap() else { panic!() };
        assert_eq!(b.iter().map(|r| r.value).collect::<Vec<_>>(), [b"1,2"]);
        assert_eq!(columns.get().unwrap(), &["a", "b"]);
    }
}
