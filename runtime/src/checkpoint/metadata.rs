//! What a checkpoint records, and its file form: JSON followed by a line
//! with the XXH3-64 of the JSON, so a partial or corrupted write is
//! detected rather than half-restored.

use serde::{Deserialize, Serialize};

/// Version of the metadata layout.
pub const FORMAT: u32 = 1;

/// Where a source split stands: what is left to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourcePosition {
    /// A byte range of a file: the next line starts at `offset`; the split
    /// ends at `end`.
    File {
        /// Start of the next unread line.
        offset: u64,
        /// End of the split.
        end: u64,
    },
    /// A Kafka partition: the offset of the next record to read (`-2`: the
    /// partition's beginning, nothing read yet).
    Kafka {
        /// The partition.
        partition: i32,
        /// The next offset.
        offset: i64,
        /// Set when the partition was read to its end (a bounded source).
        #[serde(default)]
        done: bool,
        /// For a repartition topic: its producers' last progress marks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        marks: Option<crate::time::ProducerMarks>,
    },
    /// The bids generator: events `next`, `next + stride`, ... (up to its count).
    Bids {
        /// Index of the next event.
        next: u64,
        /// Distance between the split's events.
        stride: u64,
    },
}

/// One file of a state snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Name inside the snapshot's directory.
    pub name: String,
    /// Bytes.
    pub len: u64,
    /// XXH3-64 of the contents.
    pub xxh3: u64,
}

/// The state files of one operator subtask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFiles {
    /// `memory` or `rocksdb`.
    pub backend: String,
    /// Directory, relative to the checkpoint's directory.
    pub dir: String,
    /// Every file, with its length and checksum.
    pub files: Vec<FileSum>,
}

/// One stateful operator subtask in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSnapshot {
    /// The step (its index in the manifest).
    pub step: u32,
    /// The subtask.
    pub subtask: u32,
    /// The key groups it owned: `first..end`.
    pub key_groups: (u32, u32),
    /// Its keyed state.
    pub state: Option<StateFiles>,
    /// Its own bookkeeping (watermark, windows in use), opaque here.
    #[serde(with = "base64_bytes")]
    pub meta: Vec<u8>,
}

/// What one task contributes to a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSnapshot {
    /// A source task's position.
    pub source: Option<SourcePosition>,
    /// The largest timestamp its watermark generator saw.
    pub generator: Option<i64>,
    /// Its stateful operators.
    pub operators: Vec<OperatorSnapshot>,
}

/// A complete checkpoint or savepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// [`FORMAT`].
    pub format: u32,
    /// The checkpoint's id.
    pub id: u64,
    /// `checkpoint`, `savepoint`, or `final` (the job finished: nothing is left to do).
    pub kind: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// When it completed, ms since the epoch.
    pub created_ms: i64,
    /// Parallelism of the keyed steps.
    pub parallelism: u32,
    /// Key groups.
    pub max_parallelism: u32,
    /// What each stateful step is (restoring into a different one is refused).
    pub steps: Vec<(u32, String)>,
    /// Every source split, in order.
    pub sources: Vec<SourcePosition>,
    /// The largest timestamp of each watermark generator.
    pub generators: Vec<i64>,
    /// Every stateful operator subtask.
    pub operators: Vec<OperatorSnapshot>,
}

impl Metadata {
    /// The file form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("plain data serializes");
        let sum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(format!("\nxxh3 {sum:016x}\n").as_bytes());
        out
    }

    /// Parses and verifies the file form.
    pub fn decode(bytes: &[u8]) -> Result<Metadata, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 (corrupt)".to_string())?;
        let (json, trailer) = text
            .strip_suffix('\n')
            .and_then(|t| t.rsplit_once('\n'))
            .ok_or_else(|| "truncated: no checksum line".to_string())?;
        if !trailer.starts_with("xxh3 ") {
            return Err("truncated: no checksum line".into());
        }
        if trailer != format!("xxh3 {:016x}", xxhash_rust::xxh3::xxh3_64(json.as_bytes())) {
            return Err("checksum mismatch (partial or corrupted write)".into());
        }
        let meta: Metadata = serde_json::from_str(json).map_err(|e| format!("unreadable: {e}"))?;
        if meta.format != FORMAT {
            return Err(format!("layout version {} (this weir reads {FORMAT})", meta.format));
        }
        Ok(meta)
    }

    /// Whether the job had finished: restoring has nothing left to do.
    pub fn is_final(&self) -> bool {
        self.kind == "final"
    }
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        Metadata {
            format: FORMAT,
            id: 7,
            kind: "checkpoint".into(),
            pipeline: "q5".into(),
            created_ms: 1,
            parallelism: 2,
            max_parallelism: 128,
            steps: vec![(1, "window tumbling 10000 ms, builtin count".into())],
            sources: vec![
                SourcePosition::File { offset: 10, end: 99 },
                SourcePosition::Bids { next: 4, stride: 2 },
                SourcePosition::Kafka {
                    partition: 3,
                    offset: 1200,
                    done: false,
                    marks: Some(crate::time::ProducerMarks {
                        producers: 3,
                        last: [(0, crate::time::Mark::Watermark(-7)), (2, crate::time::Mark::End)].into(),
                    }),
                },
            ],
            generators: vec![123],
            operators: vec![OperatorSnapshot {
                step: 1,
                subtask: 0,
                key_groups: (0, 64),
                state: Some(StateFiles {
                    backend: "memory".into(),
                    dir: "s1-t0-step1".into(),
                    files: vec![FileSum { name: "state".into(), len: 5, xxh3: 9 }],
                }),
                meta: vec![0, 255, 7],
            }],
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(Metadata::decode(&m.encode()).unwrap(), m);
        assert!(!m.is_final());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Metadata::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[at] ^= 0x20;
            assert!(Metadata::decode(&b).is_err(), "flip at {at}");
        }
    }
}
