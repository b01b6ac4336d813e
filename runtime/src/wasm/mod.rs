//! The WebAssembly host: runs user functions as sandboxed components.
//!
//! * [`WasmHost`] owns the one `wasmtime::Engine` of the process (component
//!   model on, async concurrency off, epoch interruption on), the `Linker`
//!   with WASI (no files, no network, no environment) and the `weir:udf`
//!   imports, a cache of compiled code by content hash, and the thread that
//!   advances epochs for call deadlines.
//! * [`WasmHost::load`] recognises, compiles and checks a component against
//!   the `weir:udf` worlds, with an error that names what does not fit.
//! * [`WasmUdf`] is one instance per subtask with a memory cap (over all its
//!   memories), caps on its memories, tables and core instances
//!   ([`InstanceCaps`], also checked at load), and a deadline per call that
//!   also bounds waits inside WASI (`deadline`); it implements
//!   `operator::udf::UdfInvoker`, turning traps, timeouts, stack overflows
//!   and memory exhaustion into values and replacing a dead instance before
//!   the next call.
//!
//! Invariant: this is the only module that imports wasmtime.

mod bindings;
mod component;
mod deadline;
mod engine;
mod footprint;
mod guest_output;
mod host_state;
mod instance;
mod lru;

pub use component::{LoadError, LoadedComponent, WIT_PACKAGE, WIT_VERSION};
pub use engine::{WasmConfig, WasmHost};
pub use footprint::InstanceCaps;
pub use instance::{InstanceSpec, WasmUdf};
