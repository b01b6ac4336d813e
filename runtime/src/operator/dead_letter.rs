//! Dead letters: records a step could not process, with the reason.
//!
//! The trait is here so operators can send; the writers (files, standard
//! streams) live in `connector::dead_letter`.

use crate::types::RecordRef;
use std::io;

/// One refused record.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    /// The step that refused it.
    pub step: &'a str,
    /// Its subtask.
    pub subtask: u32,
    /// Short machine-readable cause: `invalid_input`, `rejected`, `trap`,
    /// `timeout`, `out_of_memory`, `error`, `bad_output`, `missing_key`.
    pub kind: &'static str,
    /// Human-readable reason.
    pub reason: &'a str,
    /// The record, exactly as it entered the step.
    pub record: &'a RecordRef<'a>,
    /// Where the source read it, when it knows (a Kafka partition and offset).
    pub origin: Option<Origin>,
}

/// A record's place in a partitioned source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
}

/// Where dead letters go. Shared by every subtask of a pipeline.
pub trait DeadLetters: Send + Sync {
    /// Writes one dead letter. An error means it was not stored: the caller
    /// must stop rather than lose the record.
    fn send(&self, letter: &DeadLetter<'_>) -> io::Result<()>;
}
