//! `key_by`: sets each record's key, before the shuffle that sends each key
//! group to one subtask (`exec` does the shuffle).

use super::{Operator, OperatorError, StepContext};
use crate::types::{Batch, BatchWriter};
use weir_json::Pointer;

/// Keys records by a field of their JSON value: a string field's text, any
/// other value's JSON text (so `6413` and `"6413"` are the same key).
pub struct KeyByField {
    pointer: Pointer,
    ctx: StepContext,
}

impl KeyByField {
    /// Keys by the value at `pointer`.
    pub fn new(pointer: Pointer, ctx: StepContext) -> Self {
        KeyByField { pointer, ctx }
    }
}

impl Operator for KeyByField {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        let mut keyed = BatchWriter::with_capacity(batch.byte_len() + batch.len() * 8);
        let pointers = std::slice::from_ref(&self.pointer);
        let mut found = [None];
        for r in batch.iter() {
            match weir_json::extract(r.value, pointers, &mut found) {
                Err(e) => self.ctx.dead_letter("invalid_input", &format!("cannot key by {}: {e}", self.pointer), &r)?,
                Ok(()) => match found[0] {
                    None => {
                        self.ctx.dead_letter("missing_key", &format!("key field {} is missing", self.pointer), &r)?
                    }
                    Some(v) => keyed.push_with_headers(r.timestamp, Some(&v.key_bytes()), r.value, r.raw_headers),
                },
            }
        }
        if !keyed.is_empty() {
            out.push(keyed.finish());
        }
        Ok(())
    }
}

/// After a `key_by` function: every record must now have a key.
pub struct RequireKey {
    ctx: StepContext,
}

impl RequireKey {
    /// Checks keys for the step of `ctx`.
    pub fn new(ctx: StepContext) -> Self {
        RequireKey { ctx }
    }
}

impl Operator for RequireKey {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) -> Result<(), OperatorError> {
        if batch.iter().all(|r| r.key.is_some()) {
            out.push(batch);
            return Ok(());
        }
        let mut keyed = BatchWriter::with_capacity(batch.byte_len());
        for r in batch.iter() {
            match r.key {
                Some(_) => keyed.push_record(&r),
                None => self.ctx.dead_letter("missing_key", "the record has no key to partition by", &r)?,
            }
        }
        if !keyed.is_empty() {
            out.push(keyed.finish());
        }
        Ok(())
    }
}
