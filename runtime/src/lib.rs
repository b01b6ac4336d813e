//! # Weir runtime
//!
//! A stream processor whose user functions are sandboxed WebAssembly
//! components. The runtime owns everything that must be correct and durable
//! (sources, batches, keys, time, dead letters, sinks); functions turn input
//! records into output records, one batch per call.
//!
//! Modules, in dependency order (a module imports only those before it):
//!
//! | module | owns |
//! |---|---|
//! | [`types`] | `Batch`, `Message`, time, key groups, `UdfRef` — the leaf |
//! | [`manifest`] | pipeline manifests: parsing and validation |
//! | [`checkpoint`] | checkpoint metadata, the coordinator (pure), the checkpoint directory |
//! | [`time`] | watermark bookkeeping (pure) |
//! | [`state`] | keyed state: the `StateBackend` trait, memory and RocksDB backends, snapshots |
//! | [`window`] | window assignment, firing, lateness, sessions (pure) |
//! | [`operator`] | the `Operator` trait, the `UdfInvoker` seam, decode, key_by, UDF steps, windows, process |
//! | [`wasm`] | wasmtime: loading, checking and running components (implements `UdfInvoker`) |
//! | [`connector`] | sources, sinks, dead-letter writers |
//! | [`exec`] | threads, channels, partitioning, the task loop |
//! | [`job`] | manifest → plan → run → summary |
//! | [`control`] | `weir serve`'s control plane: tenants, quotas, the function registry, pipelines, swaps (SQLite metadata) |
//! | [`api`] | the REST API over `control` (axum), `/metrics`, `/openapi.json` |
//! | [`cli`] | the `weir` command line (local runs, the server, the API client) |
//!
//! Only `wasm` imports wasmtime, only `state` RocksDB, only `control::db`
//! SQLite, only `api` HTTP (and `cli`'s client); only `cli` reads argv and
//! the environment.

#![deny(missing_docs)]

pub mod api;
pub mod checkpoint;
pub mod cli;
pub mod connector;
pub mod control;
pub mod exec;
pub mod job;
pub mod log_budget;
pub mod manifest;
pub mod operator;
pub mod state;
pub mod time;
pub mod types;
pub mod wasm;
pub mod window;

#[cfg(test)]
mod test_rng;
