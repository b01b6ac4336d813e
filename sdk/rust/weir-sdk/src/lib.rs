//! # Weir Rust SDK
//!
//! Write the functions of a Weir pipeline in Rust and build them as
//! WebAssembly components (`cargo build --release --target wasm32-wasip2`).
//! The host owns everything durable (state, windows, checkpoints); a function
//! only turns input records into output records, so it can be hot-swapped,
//! limited and replayed safely.
//!
//! A map function is a plain function:
//!
//! ```no_run
//! use weir_sdk::{Record, Result};
//!
//! #[weir_sdk::map]
//! fn shout(record: &Record) -> Result<String> {
//!     Ok(record.value_str()?.to_uppercase())
//! }
//! # fn main() {}
//! ```
//!
//! Returning an `Err` refuses that record only: the host sends it to the
//! pipeline's dead-letter output with the message, and the rest of the batch
//! goes on. A panic is contained by the host too (the instance is replaced),
//! but costs far more than an `Err`.
//!
//! To avoid allocating per record, write the value in place:
//!
//! ```no_run
//! use std::fmt::Write;
//! use weir_sdk::{Output, Record, Result};
//!
//! #[weir_sdk::map]
//! fn length(record: &Record, out: &mut Output) -> Result<()> {
//!     write!(out, "{}", record.value().len()).unwrap();
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! Functions with parameters (the step's `params` in the manifest) implement
//! a trait and put the attribute on the `impl`:
//!
//! ```no_run
//! use weir_sdk::{Filter, Params, Record, Result};
//!
//! struct LongerThan(usize);
//!
//! #[weir_sdk::filter]
//! impl Filter for LongerThan {
//!     fn init(params: &Params) -> Result<Self> {
//!         params.allow_only(&["min"])?;
//!         Ok(LongerThan(params.parse("min")?.unwrap_or(0)))
//!     }
//!     fn filter(&self, record: &Record) -> Result<bool> {
//!         Ok(record.value().len() > self.0)
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Shapes: [`Map`] (`#[weir_sdk::map]`), [`Filter`] (`#[weir_sdk::filter]`),
//! [`FlatMap`] (`#[weir_sdk::flat_map]`). One component exports one function.
//!
//! Records reach a function in batches (one call per batch, see the repository's
//! `wit/batch.md`); the SDK iterates them without copying and builds the
//! output batch in one buffer.

#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings;
mod codec;
mod error;
mod functions;
mod glue;
mod host;
mod keyed;
mod output;
mod params;
mod record;

pub use bindings::weir::udf::types::Level;
pub use codec::{from_bytes, to_bytes, Codec};
pub use error::{Error, ErrorKind, Result};
pub use functions::{Aggregate, Filter, FlatMap, Map, Process, Window};
pub use host::{current_watermark, debug, error, info, log, warn};
pub use keyed::Context;
pub use output::{Emitter, IntoValue, Output};
pub use params::Params;
pub use record::Record;
pub use weir_sdk_macros::{aggregate, filter, flat_map, map, process};

/// Zero-copy JSON reading (`Object::parse(record.value())?.u64("field")?`).
pub use weir_json as json;

/// Used by the code the attribute macros generate; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::glue::*;
    pub use wit_bindgen;
}
