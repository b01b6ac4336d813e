//! Reading a text file, optionally as several splits read in parallel.
//!
//! A file is cut into byte ranges at line starts, so each split reads whole
//! lines and every line is read by exactly one split.

use super::lines::{HeaderSlot, LineReader};
use super::{Read, Source};
use crate::checkpoint::SourcePosition;
use crate::operator::decode::{header_columns, CsvColumns};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

/// One split of a file.
pub struct FileSource {
    reader: LineReader<File>,
}

impl Source for FileSource {
    fn read(&mut self, max: usize) -> io::Result<Read> {
        self.reader.read(max)
    }

    fn position(&self) -> Option<SourcePosition> {
        let (offset, end) = self.reader.position();
        Some(SourcePosition::File { offset, end })
    }
}

/// A file's CSV header, read before the splits are planned.
pub struct CsvHeader {
    /// Receives the column names.
    pub columns: CsvColumns,
    /// The CSV delimiter.
    pub delimiter: u8,
}

/// Opens `path` as `splits` sources covering every line exactly once. With
/// `header`, the first non-blank line is the CSV header (read now).
pub fn open_splits(
    path: &Path,
    splits: u32,
    skip_blank: bool,
    header: Option<CsvHeader>,
) -> io::Result<Vec<FileSource>> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let file = File::open(path).map_err(with_path)?;
    let meta = file.metadata().map_err(with_path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file (for a pipe, use the stdin source)" };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is {what}", path.display())));
    }
    let len = meta.len();
    let mut reader = BufReader::new(file);
    let mut first = 0u64;
    if let Some(h) = header {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(with_path)?;
            if n == 0 {
                break;
            }
            first += n as u64;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if !text.iter().all(u8::is_ascii_whitespace) {
                let cols = header_columns(text, h.delimiter).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("{}: CSV header: {e}", path.display()))
                })?;
                let _ = h.columns.set(cols);
                break;
            }
        }
    }
    let mut starts = vec![first];
    for i in 1..u64::from(splits) {
        let at = (first + (len - first) * i / u64::from(splits)).max(*starts.last().unwrap_or(&0));
        starts.push(line_start_at_or_after(&mut reader, at, len).map_err(with_path)?);
    }
    starts.push(len);
    let ranges: Vec<(u64, u64)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    open_ranges(path, &ranges, skip_blank)
}

/// Opens one source per byte range `(offset, end)` of `path` (each
/// starting at a line start, as checkpoints record them).
pub fn open_ranges(path: &Path, ranges: &[(u64, u64)], skip_blank: bool) -> io::Result<Vec<FileSource>> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let mut sources = Vec::with_capacity(ranges.len());
    for &(offset, end) in ranges {
        let mut f = File::open(path).map_err(with_path)?;
        f.seek(SeekFrom::Start(offset)).map_err(with_path)?;
        sources.push(FileSource { reader: LineReader::new(f, offset, end, skip_blank, None::<HeaderSlot>) });
    }
    Ok(sources)
}

/// The offset of the first line starting at or after `at`.
fn line_start_at_or_after<R: BufRead + Seek>(r: &mut R, at: u64, len: u64) -> io::Result<u64> {
    if at == 0 || at >= len {
        return Ok(at.min(len));
    }
    r.seek(SeekFrom::Start(at - 1))?;
    let mut skipped = Vec::new();
    let n = r.read_until(b'\n', &mut skipped)?;
    Ok(at - 1 + n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(s: &mut FileSource) -> Vec<String> {
        let mut out = Vec::new();
        while let Read::Batch(b) = s.read(3).unwrap() {
            out.extend(b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()));
        }
        out
    }

    #[test]
    fn every_line_is_read_once_for_any_number_of_splits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let lines: Vec<String> = (0..257).map(|i| "x".repeat(i % 13) + &i.to_string()).collect();
        let mut f = File::create(&path).unwrap();
        write!(f, "{}", lines.join("\n")).unwrap();
        for splits in [1, 2, 3, 7, 64, 300] {
            let mut got: Vec<String> =
                open_splits(&path, splits, false, None).unwrap().iter_mut().flat_map(read_all).collect();
            got.sort();
            let mut want = lines.clone();
            want.sort();
            assert_eq!(got, want, "{splits} splits");
        }
    }

    #[test]
    fn csv_header_is_read_first_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "\nip,bytes\n1.1.1.1,5\n2.2.2.2,6\n").unwrap();
        let columns = CsvColumns::default();
        let mut s = open_splits(&path, 2, true, Some(CsvHeader { columns: columns.clone(), delimiter: b',' })).unwrap();
        assert_eq!(columns.get().unwrap(), &["ip", "bytes"]);
        let all: Vec<String> = s.iter_mut().flat_map(read_all).collect();
        assert_eq!(all, ["1.1.1.1,5", "2.2.2.2,6"]);
    }

    #[test]
    fn missing_files_name_the_path() {
        let e = open_splits(Path::new("/nonexistent/bids.ndjson"), 1, false, None).err().unwrap();
        assert!(e.to_string().starts_with("/nonexistent/bids.ndjson: "), "{e}");
    }
}
