//! The first step of every pipeline: turns source lines into records of the
//! declared format, and takes their event time from a field.
//!
//! Invalid lines go to the dead-letter output with the parser's reason; a
//! batch without problems passes through without a copy (event times are
//! written into it in place).

mod csv;

use super::{Operator, OperatorError, StepContext};
use crate::manifest::Format;
use crate::types::{event_time_in_range, Batch, BatchWriter, RecordRef};
use std::sync::{Arc, OnceLock};
use weir_json::{Kind, Pointer};

/// Column names of a CSV source, known once the header line was read.
pub type CsvColumns = Arc<OnceLock<Vec<String>>>;

/// Where each record of the batch a source just returned was read (a Kafka
/// partition and its offsets), for the dead letters of the decoder that runs
/// next on the same thread.
#[derive(Debug, Default)]
pub struct BatchOrigins {
    /// The partition.
    pub partition: i32,
    /// The offset of each record, in order.
    pub offsets: Vec<i64>,
}

/// Shared by a source and the decoder after it.
pub type SharedOrigins = Arc<std::sync::Mutex<BatchOrigins>>;

/// Decodes one subtask's input.
pub struct Decode {
    format: Format,
    event_time: Option<Pointer>,
    columns: CsvColumns,
    ctx: StepContext,
    origins: Option<SharedOrigins>,
}

impl Decode {
    /// A decoder for `format`, with event time from `event_time` if given.
    /// For CSV, `columns` holds (or will hold, before the first record) the column names.
    pub fn new(format: Format, event_time: Option<Pointer>, columns: CsvColumns, ctx: StepContext) -> Self {
        Decode { format, event_time, columns, ctx, origins: None }
    }

    /// Dead letters say where the source read each record (see [`BatchOrigins`]).
    pub fn with_origins(mut self, origins: SharedOrigins) -> Self {
        self.origins = Some(origins);
        self
    }

    /// Sends record `i` of the batch to the dead letters.
    fn refuse(&self, i: usize, kind: &'static str, reason: &str, r: &RecordRef<'_>) -> Result<(), OperatorError> {
        let origin = self.origins.as_ref().and_then(|o| {
            let o = o.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let offset = *o.offsets.get(i)?;
            Some(super::dead_letter::Origin { partition: o.partition, offset })
        });
        self.ctx.dead_letter_from(kind, reason, r, origin)
    }

    /// The event time of a validated JSON value, or why there is none.
    fn event_time(&self, value: &[u8]) -> Result<i64, (&'static str, String)> {
        let pointer = self.event_time.as_ref().expect("called with an event-time field");
        let mut found = [None];
        weir_json::scan(value, std::slice::from_ref(pointer), &mut found)
            .map_err(|e| ("invalid_input", e.to_string()))?;
        match found[0] {
            None => Err(("invalid_input", format!("event-time field {pointer} is missing"))),
            Some(v) => match v.as_i64().filter(|&t| event_time_in_range(t)) {
                Some(t) => Ok(t),
                None => {
                    let what = if v.kind() == Kind::Number {
                        String::from_utf8_lossy(v.raw()).into_owned()
                    } else {
                        format!("a {}", v.kind().name())
                    };
                    Err(("invalid_input", format!("event-time field {pointer} is {what}, expected integer milliseconds since the epoch (within ±2^53)")))
                }
            },
        }
    }

    fn json(&mut self, mut batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let mut timestamps = Vec::with_capacity(if self.event_time.is_some() { batch.len() } else { 0 });
        let mut refused: Vec<(usize, &'static str, String)> = Vec::new();
        for (i, r) in batch.iter().enumerate() {
            let checked = match self.event_time {
                Some(_) => self.event_time(r.value).map(|t| timestamps.push(t)),
                None => weir_json::validate(r.value).map_err(|e| ("invalid_input", e.to_string())),
            };
            if let Err((kind, reason)) = checked {
                refused.push((i, kind, reason));
                if self.event_time.is_some() {
                    timestamps.push(0);
                }
            }
        }
        if refused.is_empty() {
            if self.event_time.is_some() {
                batch.rewrite_timestamps(&timestamps);
            }
            out.push(batch);
            return Ok(());
        }
        let mut kept = BatchWriter::with_capacity(batch.byte_len());
        let mut next = refused.iter().peekable();
        for (i, r) in batch.iter().enumerate() {
            if next.peek().is_some_and(|(at, _, _)| *at == i) {
                let (_, kind, reason) = next.next().expect("peeked");
                self.refuse(i, kind, reason, &r)?;
                continue;
            }
            let ts = if self.event_time.is_some() { timestamps[i] } else { r.timestamp };
            kept.push_with_headers(ts, r.key, r.value, r.raw_headers);
        }
        if !kept.is_empty() {
            out.push(kept.finish());
        }
        Ok(())
    }

    fn csv(&mut self, batch: Batch, delimiter: u8, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let Some(columns) = self.columns.get() else {
            return Err(self.ctx.error("CSV records arrived before the header line was read"));
        };
        let mut converted = BatchWriter::with_capacity(batch.byte_len() * 2);
        let mut json = Vec::new();
        for (i, r) in batch.iter().enumerate() {
            json.clear();
            let result =
                csv::split_row(r.value, delimiter).and_then(|fields| csv::row_to_json(columns, &fields, &mut json));
            if let Err(reason) = result {
                self.refuse(i, "invalid_input", &reason, &r)?;
                continue;
            }
            let ts = match self.event_time {
                None => r.timestamp,
                Some(_) => match self.event_time(&json) {
                    Ok(t) => t,
                    Err((kind, reason)) => {
                        self.refuse(i, kind, &reason, &r)?;
                        continue;
                    }
                },
            };
            converted.push_with_headers(ts, r.key, &json, r.raw_headers);
        }
        if !converted.is_empty() {
            out.push(converted.finish());
        }
        Ok(())
    }
}

impl Operator for Decode {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        match &self.format {
            Format::Lines => {
                out.push(batch);
                Ok(())
            }
            Format::Json => self.json(batch, out),
            Format::Csv(spec) => {
                let delimiter = spec.delimiter;
                self.csv(batch, delimiter, out)
            }
        }
    }
}

/// Splits a CSV header line into column names.
pub fn header_columns(line: &[u8], delimiter: u8) -> Result<Vec<String>, String> {
    let fields = csv::split_row(line, delimiter)?;
    fields
        .into_iter()
        .map(|(f, _)| String::from_utf8(f).map_err(|_| "the header line is not UTF-8".to_string()))
        .collect()
}

/// A record's value as text for messages (lossy, shortened).
pub fn preview(record: &RecordRef<'_>) -> String {
    let v = String::from_utf8_lossy(&record.value[..record.value.len().min(80)]).into_owned();
    if record.value.len() > 80 {
        format!("{v}...")
    } else {
        v
    }
}

/// After an event-time function: records whose timestamp is out of range
/// (see [`crate::types::MAX_EVENT_TIME`]) are dead-lettered.
pub struct TimestampCheck {
    ctx: StepContext,
}

impl TimestampCheck {
    /// Checks for the step of `ctx`.
    pub fn new(ctx: StepContext) -> Self {
        TimestampCheck { ctx }
    }
}

impl Operator for TimestampCheck {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        if batch.iter().all(|r| event_time_in_range(r.timestamp)) {
            out.push(batch);
            return Ok(());
        }
        let mut kept = BatchWriter::with_capacity(batch.byte_len());
        for r in batch.iter() {
            if event_time_in_range(r.timestamp) {
                kept.push_record(&r);
            } else {
                let reason = format!("the event-time function set timestamp {}, out of range (±2^53 ms)", r.timestamp);
                self.ctx.dead_letter("invalid_input", &reason, &r)?;
            }
        }
        if !kept.is_empty() {
            out.push(kept.finish());
        }
        Ok(())
    }
}
