//! Line sinks: a file per subtask, one file shared by every subtask, or
//! standard output.
//!
//! A shared output takes its lock once per batch, so lines of a batch stay
//! together and subtasks do not contend per record.

use super::Sink;
use crate::manifest::OutputFormat;
use crate::types::{Batch, RecordRef};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

/// Appends the line for `record` in `format` to `out`.
pub fn format_line(record: &RecordRef<'_>, format: OutputFormat, out: &mut Vec<u8>) {
    match format {
        OutputFormat::Value => out.extend_from_slice(record.value),
        OutputFormat::Record => {
            let mut obj = serde_json::Map::new();
            obj.insert("key".into(), record.key.map_or(serde_json::Value::Null, bytes_value));
            obj.insert("timestamp".into(), record.timestamp.into());
            obj.insert("value".into(), bytes_value(record.value));
            // Serializing a map of plain values cannot fail.
            let _ = serde_json::to_writer(&mut *out, &obj);
        }
    }
    out.push(b'\n');
}

/// Text as a JSON string; other bytes as `{"base64": ...}`.
pub fn bytes_value(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.into(),
        Err(_) => {
            use base64::Engine;
            serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) })
        }
    }
}

/// A sink writing to its own file (`part-N.txt`).
pub struct FileSink {
    out: BufWriter<File>,
    format: OutputFormat,
    line: Vec<u8>,
}

impl FileSink {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path, format: OutputFormat) -> io::Result<FileSink> {
        let file = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
        Ok(FileSink { out: BufWriter::with_capacity(1 << 20, file), format, line: Vec::with_capacity(1 << 16) })
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &Batch) -> io::Result<()> {
        if self.format == OutputFormat::Value {
            for r in batch.iter() {
                self.out.write_all(r.value)?;
                self.out.write_all(b"\n")?;
            }
            return Ok(());
        }
        self.line.clear();
        for r in batch.iter() {
            format_line(&r, self.format, &mut self.line);
        }
        self.out.write_all(&self.line)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// An output shared by every subtask.
pub type SharedOutput = Arc<Mutex<Box<dyn Write + Send>>>;

/// A subtask's handle on a shared output.
pub struct SharedSink {
    out: SharedOutput,
    format: OutputFormat,
    flush_each: bool,
    buf: Vec<u8>,
}

impl SharedSink {
    /// A handle writing `format` lines to `out`; with `flush_each`, every
    /// batch is flushed (for interactive outputs such as a terminal).
    pub fn new(out: SharedOutput, format: OutputFormat, flush_each: bool) -> SharedSink {
        SharedSink { out, format, flush_each, buf: Vec::with_capacity(1 << 16) }
    }
}

impl Sink for SharedSink {
    fn write(&mut self, batch: &Batch) -> io::Result<()> {
        self.buf.clear();
        for r in batch.iter() {
            format_line(&r, self.format, &mut self.buf);
        }
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(&self.buf)?;
        if self.flush_each {
            out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines_carry_key_time_and_value() {
        let r = RecordRef { timestamp: 5, key: Some(b"k"), value: b"\xff\x00", raw_headers: &[] };
        let mut out = Vec::new();
        format_line(&r, OutputFormat::Record, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"key\":\"k\",\"timestamp\":5,\"value\":{\"base64\":\"/wA=\"}}\n"
        );
        let mut out = Vec::new();
        format_line(&RecordRef::new(1, b"plain"), OutputFormat::Value, &mut out);
        assert_eq!(out, b"plain\n");
    }
}
