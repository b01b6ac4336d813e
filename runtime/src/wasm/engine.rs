//! The process-wide host: one wasmtime `Engine`, one `Linker`, the compiled
//! code cache, and the epoch ticker that enforces call deadlines.

use super::bindings::Platform;
use super::component::{check, check_preamble, LoadError, LoadedComponent};
use super::deadline::bound_wasi_waits;
use super::footprint::{check_footprint, InstanceCaps, Refused};
use super::host_state::HostState;
use super::lru::Lru;
use crate::types::UdfRef;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel};

/// Host settings.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Granularity of call deadlines.
    pub epoch_tick: Duration,
    /// Where compiled components are kept between runs (`None`: memory only).
    pub cache_dir: Option<PathBuf>,
    /// Write `/tmp/perf-PID.map` so `perf` can name functions inside guests.
    pub perf_map: bool,
    /// How many memories, tables and core instances one instance may have;
    /// components declaring more are refused at load.
    pub caps: InstanceCaps,
    /// Compiled components kept in memory for reuse, the least recently
    /// used dropped first (default 128; with a `cache_dir` a dropped one is
    /// read back from disk, not compiled again).
    pub compiled_in_memory: usize,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
            perf_map: false,
            caps: InstanceCaps::default(),
            compiled_in_memory: 128,
        }
    }
}

/// The WebAssembly host. Cheap to clone; the ticker stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct WasmHost {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    compiled: Mutex<Lru<Component>>,
    config: WasmConfig,
    /// Held for its `Drop`, which stops the epoch thread.
    _ticker: Ticker,
}

struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl WasmHost {
    /// Starts the host.
    pub fn new(config: WasmConfig) -> Result<WasmHost, LoadError> {
        let mut c = Config::new();
        c.wasm_component_model(true)
            .concurrency_support(false)
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed);
        if config.perf_map {
            c.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine =
            Engine::new(&c).map_err(|e| LoadError::Host(format!("cannot start the WebAssembly engine: {e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| LoadError::Host(format!("WASI: {e:#}")))?;
        bound_wasi_waits(&mut linker).map_err(|e| LoadError::Host(format!("WASI waits: {e:#}")))?;
        Platform::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Host(format!("weir:udf imports: {e:#}")))?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| LoadError::Host(format!("cannot create the component cache {}: {e}", dir.display())))?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (engine, stop, tick) = (engine.clone(), stop.clone(), config.epoch_tick);
            std::thread::Builder::new()
                .name("weir-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| LoadError::Host(format!("cannot start the epoch thread: {e}")))?
        };
        let ticker = Ticker { stop, thread: Some(thread) };
        Ok(WasmHost {
            inner: Arc::new(Inner {
                engine,
                linker,
                compiled: Mutex::new(Lru::new(config.compiled_in_memory)),
                config,
                _ticker: ticker,
            }),
        })
    }

    /// Checks and compiles `bytes` as the function `udf` (compiled code is
    /// reused for identical bytes).
    pub fn load(&self, udf: &UdfRef, bytes: &[u8]) -> Result<Arc<LoadedComponent>, LoadError> {
        check_preamble(bytes)?;
        let hash = hex(&Sha256::digest(bytes));
        let start = Instant::now();
        let (component, compiled_now) = self.compile(&hash, bytes)?;
        let compile_time = if compiled_now { start.elapsed() } else { Duration::ZERO };
        check_footprint(&component, bytes, &self.inner.config.caps).map_err(|r| match r {
            Refused::TooLarge(m) => LoadError::TooManyResources(m),
            Refused::Unreadable(m) => LoadError::Invalid(m),
        })?;
        let loaded = check(&self.inner.engine, &self.inner.linker, udf, component, hash, bytes.len(), compile_time)?;
        Ok(Arc::new(loaded))
    }

    fn compile(&self, hash: &str, bytes: &[u8]) -> Result<(Component, bool), LoadError> {
        let inner = &self.inner;
        if let Some(c) = inner.compiled.lock().unwrap_or_else(PoisonError::into_inner).get(hash) {
            return Ok((c, false));
        }
        let cached = inner.config.cache_dir.as_ref().map(|d| d.join(format!("{hash}.cwasm")));
        if let Some(path) = cached.as_ref().filter(|p| p.exists()) {
            // SAFETY: only files this host wrote (below, named by the hash of
            // the source bytes, in its own cache directory) are deserialized;
            // wasmtime checks that they match this engine's configuration.
            match unsafe { Component::deserialize_file(&inner.engine, path) } {
                Ok(c) => {
                    inner.compiled.lock().unwrap_or_else(PoisonError::into_inner).insert(hash, c.clone());
                    return Ok((c, false));
                }
                Err(e) => tracing::warn!("ignoring the cached component {}: {e:#}", path.display()),
            }
        }
        let component = Component::new(&inner.engine, bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        if let Some(path) = cached {
            if let Err(e) = write_atomically(&path, &component) {
                tracing::warn!("cannot cache the compiled component at {}: {e}", path.display());
            }
        }
        inner.compiled.lock().unwrap_or_else(PoisonError::into_inner).insert(hash, component.clone());
        Ok((component, true))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn caps(&self) -> InstanceCaps {
        self.inner.config.caps
    }

    pub(crate) fn ticks_for(&self, timeout: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        (timeout.as_nanos().div_ceil(tick) as u64).max(1)
    }
}

fn write_atomically(path: &std::path::Path, component: &Component) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost").field("config", &self.inner.config).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_ticks() {
        let host = WasmHost::new(WasmConfig::default()).unwrap();
        assert_eq!(host.ticks_for(Duration::from_millis(1)), 1);
        assert_eq!(host.ticks_for(Duration::from_millis(25)), 3);
        assert_eq!(host.ticks_for(Duration::from_secs(1)), 100);
    }

    #[test]
    fn junk_and_core_modules_are_refused_with_a_reason() {
        let host = WasmHost::new(WasmConfig::default()).unwrap();
        let udf = UdfRef::parse("x@1").unwrap();
        let e = host.load(&udf, b"not wasm at all").unwrap_err();
        assert!(matches!(e, LoadError::NotWasm(_)), "{e}");
        let core = b"\0asm\x01\0\0\0";
        assert_eq!(host.load(&udf, core).unwrap_err(), LoadError::CoreModule);
        let truncated_component = b"\0asm\x0d\0\x01\0\x07";
        assert!(matches!(host.load(&udf, truncated_component).unwrap_err(), LoadError::Invalid(_)));
    }
}
