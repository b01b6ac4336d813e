//! A hosted pipeline's committed output, read back a page at a time
//! (issue 18, item 11: every call used to read every committed file whole,
//! and one value that was not UTF-8 failed the endpoint for good).
//!
//! The output directory holds committed part files, `part-S-C.txt` (subtask
//! S, committed at checkpoint C; `end` for the final commit), which never
//! change once they appear. They are ordered by (checkpoint, subtask), so a
//! position in the whole output is a file's place in that order and a byte
//! offset in it: the cursor. Without a cursor a page is the newest lines
//! (read from the newest files backwards); with one, the lines after it,
//! oldest first, read from the cursor's byte on. Either way the answer has
//! the cursor after its last line, so a client can follow the output.
//! Lines that are not UTF-8 come as `{"base64": ...}`, like dead letters.

use super::Pipelines;
use crate::connector::sink::bytes_value;
use crate::control::{tenant, Caller, ControlError, Platform};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The most bytes of lines one page holds (at least one line is returned).
const MAX_PAGE_BYTES: usize = 8 << 20;

/// A place in the output: before byte `offset` of the file at (`order`,
/// `subtask`), or, past that file's end, at the start of the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    order: u64,
    subtask: u32,
    offset: u64,
}

impl Cursor {
    /// Parses what [`Cursor`]'s `Display` wrote.
    pub fn parse(text: &str) -> Result<Cursor, ControlError> {
        let bad = || {
            ControlError::bad_request(
                "invalid_cursor",
                format!("`{text}` is not a cursor: pass the `next` of an earlier answer"),
            )
        };
        let mut parts = text.split('.');
        let mut num = || parts.next().and_then(|p| p.parse::<u64>().ok()).ok_or_else(bad);
        let (order, subtask, offset) = (num()?, num()?, num()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Cursor { order, subtask: u32::try_from(subtask).map_err(|_| bad())?, offset })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.order, self.subtask, self.offset)
    }
}

/// One page of output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputPage {
    /// The lines: strings, or `{"base64": ...}` for bytes that are not UTF-8.
    pub lines: Vec<serde_json::Value>,
    /// The cursor after the last line (pass it as `after` for what follows).
    pub next: String,
}

/// The committed part files of `dir`, in output order.
pub(super) fn part_files(dir: &Path) -> Vec<(u64, u32, PathBuf)> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("part-").and_then(|r| r.strip_suffix(".txt")) else { continue };
        let Some((sub, ckpt)) = rest.split_once('-') else { continue };
        let order = if ckpt == "end" { u64::MAX } else { ckpt.parse().unwrap_or(0) };
        let Ok(sub) = sub.parse() else { continue };
        files.push((order, sub, e.path()));
    }
    files.sort();
    files
}

fn read_error(path: &Path, e: std::io::Error) -> ControlError {
    ControlError::internal(format!("{}: {e}", path.display()))
}

/// Up to `limit` lines after `after`, oldest first.
fn page_after(files: &[(u64, u32, PathBuf)], after: Cursor, limit: usize) -> Result<OutputPage, ControlError> {
    let (mut lines, mut bytes, mut next) = (Vec::new(), 0, after);
    for (order, subtask, path) in files {
        if (*order, *subtask) < (after.order, after.subtask) {
            continue;
        }
        let start = if (*order, *subtask) == (after.order, after.subtask) { after.offset } else { 0 };
        let mut file = std::fs::File::open(path).map_err(|e| read_error(path, e))?;
        file.seek(SeekFrom::Start(start)).map_err(|e| read_error(path, e))?;
        let mut reader = BufReader::new(file);
        let mut at = start;
        next = Cursor { order: *order, subtask: *subtask, offset: at };
        let mut line = Vec::new();
        loop {
            if lines.len() == limit || (bytes >= MAX_PAGE_BYTES && !lines.is_empty()) {
                return Ok(OutputPage { lines, next: next.to_string() });
            }
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| read_error(path, e))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break; // The end (a committed file ends with a newline).
            }
            at += n as u64;
            bytes += n;
            lines.push(bytes_value(&line[..n - 1]));
            next = Cursor { order: *order, subtask: *subtask, offset: at };
        }
    }
    Ok(OutputPage { lines, next: next.to_string() })
}

/// The newest `limit` lines, oldest first.
fn newest(files: &[(u64, u32, PathBuf)], limit: usize) -> Result<OutputPage, ControlError> {
    let next = match files.last() {
        Some((order, subtask, path)) => {
            let len = std::fs::metadata(path).map_err(|e| read_error(path, e))?.len();
            Cursor { order: *order, subtask: *subtask, offset: len }
        }
        None => Cursor { order: 0, subtask: 0, offset: 0 },
    };
    let mut lines: VecDeque<serde_json::Value> = VecDeque::new();
    let mut bytes = 0;
    'files: for (_, _, path) in files.iter().rev() {
        let text = std::fs::read(path).map_err(|e| read_error(path, e))?;
        if text.is_empty() {
            continue;
        }
        let body = text.strip_suffix(b"\n").unwrap_or(&text);
        for line in body.rsplit(|&b| b == b'\n') {
            if lines.len() == limit || (bytes >= MAX_PAGE_BYTES && !lines.is_empty()) {
                break 'files;
            }
            bytes += line.len() + 1;
            lines.push_front(bytes_value(line));
        }
    }
    Ok(OutputPage { lines: lines.into(), next: next.to_string() })
}

impl Platform {
    /// A page of a pipeline's committed output: the newest `limit` lines,
    /// or the `limit` lines after the cursor `after`.
    pub fn output(
        &self,
        caller: &Caller,
        id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<OutputPage, ControlError> {
        let t = tenant(caller)?;
        let after = after.map(Cursor::parse).transpose()?;
        self.pipelines.row(&self.db, t, id)?;
        let files = self.pipelines.output_files(id);
        match after {
            Some(cursor) => page_after(&files, cursor, limit),
            None => newest(&files, limit),
        }
    }
}

impl Pipelines {
    fn output_files(&self, id: &str) -> Vec<(u64, u32, PathBuf)> {
        part_files(&self.dir(id).join("output"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn output(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Vec<(u64, u32, PathBuf)>) {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        let parts = part_files(dir.path());
        (dir, parts)
    }

    /// Every line, read page by page from the start with `limit`.
    fn follow(files: &[(u64, u32, PathBuf)], limit: usize) -> Vec<serde_json::Value> {
        let (mut all, mut cursor) = (Vec::new(), Cursor::parse("0.0.0").unwrap());
        loop {
            let page = page_after(files, cursor, limit).unwrap();
            if page.lines.is_empty() {
                return all;
            }
            all.extend(page.lines);
            cursor = Cursor::parse(&page.next).unwrap();
        }
    }

    #[test]
    fn paging_from_the_start_reads_every_line_once_in_output_order() {
        // Oracle: the concatenation of the files in (checkpoint, subtask) order.
        let (_d, files) = output(&[
            ("part-1-2.txt", b"c\nd\n"),
            ("part-0-2.txt", b"a\nb\n"),
            ("part-0-10.txt", b"e\n"),
            ("part-1-end.txt", b"f\ng\nh\n"),
            ("part-0-1.txt", b""),
            ("notes.txt", b"not output\n"),
        ]);
        let want: Vec<_> = ["a", "b", "c", "d", "e", "f", "g", "h"].iter().map(|s| json!(s)).collect();
        for limit in 1..10 {
            assert_eq!(follow(&files, limit), want, "limit {limit}");
        }
    }

    #[test]
    fn the_newest_page_ends_where_following_begins() {
        let (dir, files) = output(&[("part-0-1.txt", b"a\nb\n"), ("part-1-1.txt", b"c\n")]);
        let page = newest(&files, 2).unwrap();
        assert_eq!(page.lines, [json!("b"), json!("c")]);
        // Output committed later is what the cursor leads to.
        std::fs::write(dir.path().join("part-0-2.txt"), b"d\n").unwrap();
        let files = part_files(dir.path());
        let later = page_after(&files, Cursor::parse(&page.next).unwrap(), 10).unwrap();
        assert_eq!(later.lines, [json!("d")]);
        assert_eq!(
            page_after(&files, Cursor::parse(&later.next).unwrap(), 10).unwrap().lines,
            Vec::<serde_json::Value>::new()
        );
    }

    #[test]
    fn a_value_that_is_not_utf8_comes_as_base64_and_the_rest_still_read() {
        let (_d, files) = output(&[("part-0-1.txt", b"ok\n\xff\xfe\nafter\n")]);
        let want = [json!("ok"), json!({ "base64": "//4=" }), json!("after")];
        assert_eq!(newest(&files, 10).unwrap().lines, want);
        assert_eq!(follow(&files, 2), want);
    }

    #[test]
    fn cursors_that_were_not_given_out_are_refused() {
        for bad in ["", "1.2", "1.2.3.4", "a.b.c", "1.99999999999.0", "../etc.0.0"] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Cursor::parse("7.1.42").unwrap().to_string(), "7.1.42");
    }
}
