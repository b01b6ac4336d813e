//! The code behind the exports the attribute macros generate. Not public API:
//! reached only through `weir_sdk::__private` from macro output.

use crate::bindings::weir::udf::types::{Mapped, Rejection, UdfError};
use crate::codec::{from_bytes, to_bytes, Codec};
use crate::error::Error;
use crate::functions::{Aggregate, Filter, FlatMap, Map, Process, Window};
use crate::keyed::{Change, Context};
use crate::output::{Defaults, Emitter, Output};
use crate::params::Params;
use crate::record::Record;
use std::cell::RefCell;
use std::thread::LocalKey;
use weir_batch::{
    AddGroupIter, BatchRef, BatchWriter, FinishGroupIter, ListWriter, ProcessGroupIter, StateOp, TimerGroupIter,
};

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
            let result = f.flat_map(&Record::new(r), &mut Emitter::new(Defaults::of(&r), &mut out, &mut scratch));
            if let Err(e) = result {
                out.rollback(mark);
                rejected.push(rejection(i, e));
            }
        }
        Ok(Mapped { output: out.into_vec(), rejected })
    })
}

/// `aggregator.create`.
pub fn aggregate_create<T: Aggregate>(slot: &'static Slot<T>) -> Result<Vec<u8>, UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        Ok(to_bytes(&f.create()))
    })
}

fn stored<S: Codec>(bytes: &[u8]) -> Result<S, UdfError> {
    from_bytes(bytes).map_err(|e| UdfError::Failed(format!("cannot decode the stored state: {e}")))
}

/// `aggregator.add`: the accumulator list and the refused records.
pub fn aggregate_add<T: Aggregate>(
    slot: &'static Slot<T>,
    groups: Vec<u8>,
) -> Result<(Vec<u8>, Vec<Rejection>), UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        let mut accs = ListWriter::new();
        let mut rejected = Vec::new();
        let mut index = 0;
        for g in AddGroupIter::parse(&groups).map_err(bad_batch)? {
            let mut acc: T::Acc = stored(g.acc)?;
            for r in g.records.iter() {
                if let Err(e) = f.add(&mut acc, &Record::new(r)) {
                    rejected.push(rejection(index, e));
                }
                index += 1;
            }
            accs.accumulator(&to_bytes(&acc));
        }
        Ok((accs.finish(), rejected))
    })
}

/// `aggregator.merge`.
pub fn aggregate_merge<T: Aggregate>(slot: &'static Slot<T>, a: Vec<u8>, b: Vec<u8>) -> Result<Vec<u8>, UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        Ok(to_bytes(&f.merge(stored(&a)?, stored(&b)?)))
    })
}

/// `aggregator.finish`: one output batch for all fired windows.
pub fn aggregate_finish<T: Aggregate>(slot: &'static Slot<T>, fired: Vec<u8>) -> Result<Vec<u8>, UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        let mut out = BatchWriter::new();
        let mut scratch = Output::new();
        for g in FinishGroupIter::parse(&fired).map_err(bad_batch)? {
            scratch.reset();
            let window = Window { start: g.start, end: g.end };
            f.finish(g.key, window, stored(g.acc)?, &mut scratch).map_err(UdfError::from)?;
            let defaults = Defaults { timestamp: g.end.saturating_sub(1), key: Some(g.key), headers: &[] };
            scratch.push_into(&defaults.record(), &mut out);
        }
        Ok(out.into_vec())
    })
}

fn result_entry<S: Codec>(results: &mut ListWriter, ctx: Context<'_, S>, output: &[u8]) {
    let (state, change) = ctx.into_parts();
    match (change, state) {
        (Change::Kept, _) => results.result(StateOp::Keep, output),
        (Change::Set, Some(s)) => results.result(StateOp::Set(&to_bytes(&s)), output),
        (Change::Set, None) | (Change::Cleared, _) => results.result(StateOp::Clear, output),
    }
}

/// `processor.process`: the result list and the refused records.
pub fn process<T: Process>(slot: &'static Slot<T>, groups: Vec<u8>) -> Result<(Vec<u8>, Vec<Rejection>), UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        let mut results = ListWriter::new();
        let mut rejected = Vec::new();
        let mut index = 0;
        let mut scratch = Output::new();
        for g in ProcessGroupIter::parse(&groups).map_err(bad_batch)? {
            let state = g.value.map(stored::<T::State>).transpose()?;
            let mut ctx = Context::new(g.key, state);
            let mut out = BatchWriter::new();
            for r in g.records.iter() {
                let mark = out.mark();
                let result =
                    f.process(&mut ctx, &Record::new(r), &mut Emitter::new(Defaults::of(&r), &mut out, &mut scratch));
                if let Err(e) = result {
                    out.rollback(mark);
                    rejected.push(rejection(index, e));
                }
                index += 1;
            }
            result_entry(&mut results, ctx, out.into_vec().as_slice());
        }
        Ok((results.finish(), rejected))
    })
}

/// `processor.on-timer`: the result list.
pub fn on_timer<T: Process>(slot: &'static Slot<T>, fired: Vec<u8>) -> Result<Vec<u8>, UdfError> {
    slot.with(|s| {
        let s = s.borrow();
        let f = s.as_ref().ok_or_else(not_initialized)?;
        let mut results = ListWriter::new();
        let mut scratch = Output::new();
        for g in TimerGroupIter::parse(&fired).map_err(bad_batch)? {
            let state = g.value.map(stored::<T::State>).transpose()?;
            let mut ctx = Context::new(g.key, state);
            let mut out = BatchWriter::new();
            for at in g.timers() {
                let defaults = Defaults { timestamp: at, key: Some(g.key), headers: &[] };
                f.on_timer(&mut ctx, at, &mut Emitter::new(defaults, &mut out, &mut scratch))
                    .map_err(UdfError::from)?;
            }
            result_entry(&mut results, ctx, out.into_vec().as_slice());
        }
        Ok(results.finish())
    })
}
