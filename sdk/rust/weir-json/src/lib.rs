//! Zero-copy JSON scanning for Weir.
//!
//! Record values are opaque bytes to Weir, and JSON is the common case: the
//! host validates JSON input, finds keys and event times by JSON pointer, and
//! guests read fields of flat objects. All of that needs the same thing: a
//! strict, allocation-free pass over the bytes that yields the *spans* of
//! the values asked for, not a tree.
//!
//! * [`validate`] checks that bytes are exactly one JSON value (RFC 8259).
//! * [`scan`] validates and, in the same pass, finds the values at several
//!   [`Pointer`]s (RFC 6901).
//! * [`Object`] validates an object and gives access to its top-level fields.
//!
//! A [`Value`] is a typed span of the input; strings are unescaped only when
//! asked for ([`Value::as_str`]), and only if they contain escapes.
//!
//! No dependencies: guests link this crate too.

#![deny(missing_docs)]

mod object;
mod pointer;
mod scanner;
mod value;

pub use object::{FieldError, Object};
pub use pointer::{Pointer, PointerError};
pub use scanner::{extract, scan, validate, JsonError, MAX_DEPTH, MAX_POINTERS};
pub use value::{Kind, Value};

#[cfg(test)]
mod tests;
