//! The function shapes a component can implement.

use crate::error::Result;
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
    fn flat_map(&self, record: &Record<'_>, out: &mut Emitter<'_, '_>) -> Result<()>;
}
