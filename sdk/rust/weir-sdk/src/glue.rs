//! The code behind the exports the attribute macros generate. Not public API:
//! reached only through `weir_sdk::__private` from macro output.

use crate::bindings::weir::udf::types::{Mapped, Rejection, UdfError};
use crate::error::Error;
use crate::functions::{Filter, FlatMap, Map};
use crate::output::{Emitter, Output};
use crate::params::Params;
use crate::record::Record;
use std::cell::RefCell;
use std::thread::LocalKey;
use weir_batch::{BatchRef, BatchWriter};

/// Where a component keeps its function value between calls.
pub type Slot<T> = LocalKey<RefCell<Option<T>>>;

fn not_initialized() -> UdfError {
    UdfError::Failed("called before init (the host must call lifecycle.init first)".into())
}

fn bad_batch(e: weir_batch::LayoutError) -> UdfError {
    UdfError::InvalidInput(format!("the host sent a malformed batch: {e}"))
}

fn rejection(index: usize, e: Error) -> Rejection {
    Rejection { index: index as u32, reason: e.to_string() }
}

/// `lifecycle.init`: builds the function value from the parameters.
pub fn init<T>(
    slot: &'static Slot<T>,
    params: Vec<(String, String)>,
    make: fn(&Params) -> crate::Result<T>,
) -> Result<(), UdfError> {
    let value = make(&Params::new(params)).map_err(|e| match e.kind() {
        crate::ErrorKind::Failed => UdfError::Failed(e.message().to_string()),
        _ => UdfError::InvalidParams(e.message().to_string()),
    })?;
    slot.with(|s| *s.borrow_mut() = Some(value));
    Ok(())
}

/// `mapper.map`.
pub fn map<T: Map>(slot: &'static Slot<T>, input: Vec<u8>) -> Result<Mapped, UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        let batch = BatchRef::parse(&input).map_err(bad_batch)?;
        let mut out = BatchWriter::with_capacity(input.len());
        let mut rejected = Vec::new();
        let mut scratch = Output::new();
        for (i, r) in batch.iter().enumerate() {
            scratch.reset();
            match f.map(&Record::new(r), &mut scratch) {
                Ok(()) => scratch.push_into(&r, &mut out),
                Err(e) => rejected.push(rejection(i, e)),
            }
        }
        Ok(Mapped { output: out.into_vec(), rejected })
    })
}

/// `filter.filter`: the keep bitmap and the refused records.
pub fn filter<T: Filter>(slot: &'static Slot<T>, input: Vec<u8>) -> Result<(Vec<u8>, Vec<Rejection>), UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        let batch = BatchRef::parse(&input).map_err(bad_batch)?;
        let mut keep = vec![0u8; batch.len().div_ceil(8)];
        let mut rejected = Vec::new();
        for (i, r) in batch.iter().enumerate() {
            match f.filter(&Record::new(r)) {
                Ok(true) => keep[i / 8] |= 1 << (i % 8),
                Ok(false) => {}
                Err(e) => rejected.push(rejection(i, e)),
            }
        }
        Ok((keep, rejected))
    })
}

/// `flat-mapper.flat-map`.
pub fn flat_map<T: FlatMap>(slot: &'static Slot<T>, input: Vec<u8>) -> Result<Mapped, UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        let batch = BatchRef::parse(&input).map_err(bad_batch)?;
        let mut out = BatchWriter::with_capacity(input.len());
        let mut rejected = Vec::new();
        let mut scratch = Output::new();
        for (i, r) in batch.iter().enumerate() {
            let mark = out.mark();
            let result = f.flat_map(&Record::new(r), &mut Emitter::new(&r, &mut out, &mut scratch));
            if let Err(e) = result {
                out.rollback(mark);
                rejected.push(rejection(i, e));
            }
        }
        Ok(Mapped { output: out.into_vec(), rejected })
    })
}
