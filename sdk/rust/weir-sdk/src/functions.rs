//! The function shapes a component can implement.

use crate::codec::Codec;
use crate::error::Result;
use crate::keyed::Context;
use crate::output::{Emitter, Output};
use crate::params::Params;
use crate::record::Record;

/// A one-to-one transformation: the `map` step.
///
/// `init` runs once per instance with the step's `params`; `map` runs for
/// every record. An `Err` from `map` refuses that record only (it is
/// dead-lettered with the message).
pub trait Map: Sized + 'static {
    /// Builds the function from the step's parameters.
    fn init(params: &Params) -> Result<Self>;
    /// Writes the output record of `record` into `out`.
    fn map(&self, record: &Record<'_>, out: &mut Output) -> Result<()>;
}

/// A predicate: the `filter` step.
pub trait Filter: Sized + 'static {
    /// Builds the function from the step's parameters.
    fn init(params: &Params) -> Result<Self>;
    /// Whether `record` passes.
    fn filter(&self, record: &Record<'_>) -> Result<bool>;
}

/// A one-to-many transformation: the `flat_map` step.
pub trait FlatMap: Sized + 'static {
    /// Builds the function from the step's parameters.
    fn init(params: &Params) -> Result<Self>;
    /// Emits any number of records for `record`.
    fn flat_map(&self, record: &Record<'_>, out: &mut Emitter<'_>) -> Result<()>;
}

/// A window's bounds: `[start, end)` in ms. Count and global windows have
/// `start == i64::MIN` and `end - 1` is the timestamp of the record that made
/// them fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First millisecond inside (`i64::MIN` for count and global windows).
    pub start: i64,
    /// First millisecond after.
    pub end: i64,
}

impl Window {
    /// Whether this is a time window (tumbling, sliding, session).
    pub fn is_time(&self) -> bool {
        self.start != i64::MIN
    }
}

/// A window aggregate: the `aggregate: { udf: ... }` of a `window` step.
///
/// The host keeps one accumulator per key and window (encoded with
/// [`Codec`]) and calls `add` with the records of a batch grouped by key and
/// window; `finish` turns a fired window's accumulator into an output record
/// (which starts with the group's key and the timestamp `window.end - 1`).
pub trait Aggregate: Sized + 'static {
    /// The accumulator.
    type Acc: Codec;
    /// Builds the function from the step's parameters.
    fn init(params: &Params) -> Result<Self>;
    /// The empty accumulator.
    fn create(&self) -> Self::Acc;
    /// Folds `record` into `acc`. An `Err` refuses the record only (it is
    /// dead-lettered; `acc` must be left as it was).
    fn add(&self, acc: &mut Self::Acc, record: &Record<'_>) -> Result<()>;
    /// Combines two accumulators (session windows that merge).
    fn merge(&self, a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// Writes the result of `key`'s window into `out`.
    fn finish(&self, key: &[u8], window: Window, acc: Self::Acc, out: &mut Output) -> Result<()>;
}

/// A keyed process function with state and timers: the `process` step.
///
/// Records of a key arrive in order with the key's state; change it through
/// the [`Context`]. Timers registered there call `on_timer` when the
/// watermark reaches them. Outputs start with the key and the record's
/// timestamp (the timer's in `on_timer`).
pub trait Process: Sized + 'static {
    /// A key's state.
    type State: Codec;
    /// Builds the function from the step's parameters.
    fn init(params: &Params) -> Result<Self>;
    /// Handles one record of the context's key. An `Err` refuses the record
    /// (it is dead-lettered); state changes already made stay.
    fn process(&self, ctx: &mut Context<'_, Self::State>, record: &Record<'_>, out: &mut Emitter<'_>) -> Result<()>;
    /// A timer of the context's key fired at `at`.
    fn on_timer(&self, ctx: &mut Context<'_, Self::State>, at: i64, out: &mut Emitter<'_>) -> Result<()> {
        let _ = (ctx, at, out);
        Ok(())
    }
}
