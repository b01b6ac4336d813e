//! End-to-end tests: the real `weir` binary, real components, real files and
//! sockets. One binary, one module per concern.

mod api_limits;
mod bench_queries;
mod broker_restart;
mod containment;
mod disk;
mod durability;
mod escapes;
mod evil_guests;
mod input_errors;
mod kafka;
mod languages;
mod manifest_errors;
mod operations;
mod seed_examples;
mod serve;
mod sources_and_sinks;
mod windows;
mod workers;
