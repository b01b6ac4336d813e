//! Call deadlines that also hold while a guest waits inside WASI.
//!
//! Epoch interruption stops a guest only while it runs WebAssembly: a guest
//! that calls `std::thread::sleep` (in WASI p2:
//! `wasi:clocks/monotonic-clock.subscribe-duration`, then
//! `wasi:io/poll.poll` or `[method]pollable.block`) sits in a host function
//! that no epoch reaches, holding its subtask's thread for as long as it
//! likes, so that stops, savepoints, `DELETE` and shutdown wait for it.
//! Refusing the clock imports is no answer: the Python and JavaScript
//! runtimes import them.
//!
//! So every instance's [`CallDeadline`] is set when a call (or `init`)
//! starts, and [`bound_wasi_waits`] shadows the two blocking functions of
//! `wasi:io/poll` in the linker with versions that wait at most until that
//! deadline. A wait that is still pending then traps the call, the deadline
//! is marked as passed, and the call is reported exactly as an epoch
//! interruption is: a `timeout` failure, the instance replaced. Pollables
//! that are ready return as before, also past the deadline (the guest then
//! runs into the epoch deadline if it keeps computing).
//!
//! The other blocking imports of WASI p2 wait on nothing in this sandbox:
//! stdout and stderr are never full, stdin is empty, and there are no
//! files, sockets or name lookups to wait on.

use std::future::Future;
use std::time::{Duration, Instant};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::runtime::in_tokio;

/// The `wasi:io/poll` interface as wasmtime-wasi 48 names it in the linker
/// (components importing any 0.2.x version are linked to it).
pub(crate) const WASI_IO_POLL: &str = "wasi:io/poll@0.2.12";

/// When the current call of an instance must end, and whether a wait inside
/// WASI ran into it.
#[derive(Debug)]
pub(crate) struct CallDeadline {
    at: Instant,
    passed: bool,
}

impl Default for CallDeadline {
    /// Already due: a wait before the first [`CallDeadline::start`] cannot block.
    fn default() -> Self {
        CallDeadline { at: Instant::now(), passed: false }
    }
}

impl CallDeadline {
    /// A call with `timeout` starts now.
    pub(crate) fn start(&mut self, timeout: Duration) {
        self.at = Instant::now() + timeout;
        self.passed = false;
    }

    /// A wait inside WASI was cut off at the deadline (the call trapped for it).
    pub(crate) fn passed(&self) -> bool {
        self.passed
    }

    /// Runs the wait `f` until it completes or the deadline comes.
    fn bound<T>(&mut self, f: impl Future<Output = wasmtime::Result<T>>) -> wasmtime::Result<T> {
        let at = tokio::time::Instant::from_std(self.at);
        match in_tokio(async { tokio::time::timeout_at(at, f).await }) {
            Ok(done) => done,
            Err(_elapsed) => {
                self.passed = true;
                Err(wasmtime::Error::new(DeadlinePassed))
            }
        }
    }
}

/// The error a wait cut off at the deadline traps with.
#[derive(Debug)]
struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call's deadline passed while the guest waited in wasi:io/poll")
    }
}

impl std::error::Error for DeadlinePassed {}

/// Replaces `poll` and `[method]pollable.block` of [`WASI_IO_POLL`], which
/// `wasmtime_wasi::p2::add_to_linker_sync` must have defined, with waits
/// bounded by the instance's [`CallDeadline`]. Fails if they were not
/// defined (a wasmtime-wasi that names the interface differently), rather
/// than leaving guest waits unbounded.
pub(crate) fn bound_wasi_waits<T: Waits>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(false);
    if linker.instance(WASI_IO_POLL)?.func_wrap("poll", poll::<T>).is_ok() {
        wasmtime::bail!("WASI defines no {WASI_IO_POLL}.poll to bound: guest waits would have no deadline");
    }
    linker.allow_shadowing(true);
    let mut poll_interface = linker.instance(WASI_IO_POLL)?;
    poll_interface.func_wrap("poll", poll::<T>)?;
    poll_interface.func_wrap("[method]pollable.block", block::<T>)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// What the bounded waits need of a store's data (the host state
/// implements it; this module does not depend on the host state).
pub(crate) trait Waits: 'static {
    /// The WASI resource table and the call's deadline, borrowed together.
    fn table_and_deadline(&mut self) -> (&mut ResourceTable, &mut CallDeadline);
}

fn poll<T: Waits>(
    mut store: StoreContextMut<'_, T>,
    (pollables,): (Vec<Resource<DynPollable>>,),
) -> wasmtime::Result<(Vec<u32>,)> {
    let (table, deadline) = store.data_mut().table_and_deadline();
    deadline.bound(table.poll(pollables)).map(|ready| (ready,))
}

fn block<T: Waits>(mut store: StoreContextMut<'_, T>, (pollable,): (Resource<DynPollable>,)) -> wasmtime::Result<()> {
    let (table, deadline) = store.data_mut().table_and_deadline();
    deadline.bound(table.block(pollable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_wait_ends_at_the_deadline_and_marks_it_passed() {
        let mut d = CallDeadline::default();
        d.start(Duration::from_millis(20));
        let r: wasmtime::Result<()> = d.bound(std::future::pending());
        assert!(r.unwrap_err().is::<DeadlinePassed>());
        assert!(d.passed());
        d.start(Duration::from_millis(20));
        assert!(!d.passed(), "a new call starts with a clean slate");
    }

    #[test]
    fn a_ready_wait_returns_even_past_the_deadline() {
        let mut d = CallDeadline::default();
        d.start(Duration::ZERO);
        assert_eq!(d.bound(async { Ok(7) }).unwrap(), 7);
        assert!(!d.passed());
    }
}
