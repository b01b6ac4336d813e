//! The Weir buffer layouts of `wit/batch.md`: batches of records, group lists,
//! accumulator lists and result lists.
//!
//! This crate is the single Rust implementation of those bytes. The host
//! (`weir-runtime`) uses it as its in-memory batch representation, so handing
//! a batch to a WebAssembly function is one copy; the Rust guest SDK uses it
//! to read its input without copying and to build its output in place.
//!
//! Readers validate once ([`Batch::from_vec`], [`BatchRef::parse`]) and then
//! iterate without error paths. Writers ([`BatchWriter`]) write straight into
//! one growing buffer; [`BatchWriter::push_with`] lets the caller write a
//! value in place instead of building it in a temporary first.
//!
//! It has no dependencies and must keep none: every guest links it.

#![deny(missing_docs)]

mod batch;
mod cursor;
mod groups;

pub use batch::{write_header, Batch, BatchRef, BatchWriter, HeaderIter, Mark, RecordIter, RecordRef, NO_KEY};
pub use cursor::{Cursor, LayoutError, Writer};
pub use groups::{
    Accumulator, AccumulatorIter, AddGroup, AddGroupIter, FinishGroup, FinishGroupIter, ListWriter, ProcessGroup,
    ProcessGroupIter, ProcessResult, ResultIter, StateOp, TimerGroup, TimerGroupIter,
};

#[cfg(test)]
mod tests;
