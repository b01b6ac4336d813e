//! Writes dead letters as JSON lines, one per refused record:
//!
//! ```json
//! {"pipeline":"q1","step":"steps[0] map currency@1","subtask":0,"kind":"rejected",
//!  "reason":"field `price` is missing","timestamp":1700000000000,"key":null,"value":"{...}"}
//! ```
//!
//! `key` and `value` are strings when they are UTF-8, else `{"base64": ...}`.
//! Each letter is flushed before `send` returns, so a letter that was
//! acknowledged is not lost with the process.

use super::sink::bytes_value;
use crate::operator::{DeadLetter, DeadLetters};
use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};

/// A dead-letter output.
pub struct DeadLetterWriter {
    pipeline: String,
    out: Mutex<Box<dyn Write + Send>>,
}

impl DeadLetterWriter {
    /// Dead letters of `pipeline`, written to `out`.
    pub fn new(pipeline: &str, out: Box<dyn Write + Send>) -> DeadLetterWriter {
        DeadLetterWriter { pipeline: pipeline.to_string(), out: Mutex::new(out) }
    }
}

impl DeadLetters for DeadLetterWriter {
    fn send(&self, letter: &DeadLetter<'_>) -> io::Result<()> {
        let r = letter.record;
        let mut line = serde_json::json!({
            "pipeline": self.pipeline,
            "step": letter.step,
            "subtask": letter.subtask,
            "kind": letter.kind,
            "reason": letter.reason,
            "timestamp": r.timestamp,
            "key": r.key.map_or(serde_json::Value::Null, bytes_value),
            "value": bytes_value(r.value),
        });
        if let Some(o) = letter.origin {
            line["partition"] = o.partition.into();
            line["offset"] = o.offset.into();
        }
        let mut text = line.to_string();
        text.push('\n');
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RecordRef;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn letters_are_json_lines_with_everything_needed_to_replay() {
        let buf = Shared::default();
        let w = DeadLetterWriter::new("q1", Box::new(buf.clone()));
        let record = RecordRef { timestamp: 7, key: None, value: b"{\"bad\"", raw_headers: &[] };
        w.send(&DeadLetter {
            step: "steps[0] map x@1",
            subtask: 1,
            kind: "rejected",
            reason: "nope",
            record: &record,
            origin: None,
        })
        .unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(v["value"], "{\"bad\"");
        assert_eq!((v["kind"].as_str(), v["subtask"].as_u64(), v["key"].is_null()), (Some("rejected"), Some(1), true));
        assert!(text.ends_with('\n'));
    }
}
