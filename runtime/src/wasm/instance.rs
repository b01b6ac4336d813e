//! One instance of a function for one subtask: a `Store` with limits, the
//! calls, and the conversion of traps, deadlines and memory exhaustion into
//! [`UdfFailure`] values. A trapped instance is dropped and a fresh one made
//! (from the `InstancePre`, then `init` again) before the next call. So is
//! an instance whose linear memory passed the recycle threshold after a
//! call: memory never shrinks, and some guest runtimes keep a little of
//! what every call allocates.

use super::bindings::exports::weir::udf::{aggregator, filter, flat_mapper, mapper, processor};
use super::bindings::weir::udf::types::UdfError;
use super::component::LoadedComponent;
use super::engine::WasmHost;
use super::guest_output::panic_message;
use super::host_state::HostState;
use crate::log_budget::SharedLogBudget;
use crate::manifest::{FunctionKind, Limits};
use crate::operator::keyed_access::KeyedAccess;
use crate::operator::udf::{Added, Filtered, Mapped, Processed, Rejection, UdfFailure, UdfInvoker};
use crate::types::Batch;
use std::sync::Arc;
use wasmtime::component::Instance;
use wasmtime::{Store, Trap};

/// What an instance is started with.
#[derive(Clone)]
pub struct InstanceSpec {
    /// Passed to `init`.
    pub params: Vec<(String, String)>,
    /// Memory cap and call deadline.
    pub limits: Limits,
    /// Subtask index, for messages and logs.
    pub subtask: u32,
    /// Keyed state and timers for the `state` and `timers` imports (`process` steps).
    pub keyed: Option<Arc<dyn KeyedAccess>>,
    /// The step's budget of log lines (shared by its subtasks and every
    /// instance they make, so a trap does not start a fresh one).
    pub log_budget: SharedLogBudget,
}

impl std::fmt::Debug for InstanceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceSpec")
            .field("params", &self.params)
            .field("limits", &self.limits)
            .field("subtask", &self.subtask)
            .field("keyed", &self.keyed.is_some())
            .finish()
    }
}

/// A live instance and the typed handles of its exports.
struct Live {
    store: Store<HostState>,
    mapper: Option<mapper::Guest>,
    filter: Option<filter::Guest>,
    flat_mapper: Option<flat_mapper::Guest>,
    aggregator: Option<aggregator::Guest>,
    processor: Option<processor::Guest>,
}

/// A function instance serving one subtask; implements [`UdfInvoker`].
pub struct WasmUdf {
    host: WasmHost,
    component: Arc<LoadedComponent>,
    kind: FunctionKind,
    spec: InstanceSpec,
    label: Arc<str>,
    name: String,
    live: Option<Live>,
    watermark: i64,
    replacements: u64,
    /// Instances replaced for their memory size, in all and not yet reported.
    recycles: u64,
    unreported_recycles: u64,
    /// The dropped instance was recycled (not failed): the next fresh one is no replacement.
    recycled: bool,
    /// Largest linear memory an instance had after a call, bytes.
    peak_memory: u64,
}

impl WasmHost {
    /// A running instance of `component` for one subtask of a `kind` step;
    /// `init` has been called with the step's parameters. (Here rather than
    /// in `engine`, so the engine does not know its instances: the two files
    /// used to import each other.)
    pub fn instantiate(
        &self,
        component: &Arc<LoadedComponent>,
        kind: FunctionKind,
        spec: InstanceSpec,
    ) -> Result<WasmUdf, String> {
        component.check_kind(kind).map_err(|e| e.to_string())?;
        WasmUdf::start(self.clone(), component.clone(), kind, spec)
    }
}

impl WasmUdf {
    /// Instantiates and initialises; fails with the reason if `init` refuses.
    pub(crate) fn start(
        host: WasmHost,
        component: Arc<LoadedComponent>,
        kind: FunctionKind,
        spec: InstanceSpec,
    ) -> Result<WasmUdf, String> {
        let name = component.udf.to_string();
        let label: Arc<str> = format!("{name} subtask {}", spec.subtask).into();
        let mut udf = WasmUdf {
            host,
            component,
            kind,
            spec,
            label,
            name,
            live: None,
            watermark: i64::MIN,
            replacements: 0,
            recycles: 0,
            unreported_recycles: 0,
            recycled: false,
            peak_memory: 0,
        };
        udf.live = Some(udf.fresh()?);
        Ok(udf)
    }

    /// How many times a failed instance was replaced.
    pub fn replacements(&self) -> u64 {
        self.replacements
    }

    /// How many times an instance was replaced for its memory size.
    pub fn recycles(&self) -> u64 {
        self.recycles
    }

    fn fresh(&self) -> Result<Live, String> {
        let c = &self.component;
        let mut store = Store::new(
            self.host.engine(),
            HostState::new(
                self.label.clone(),
                self.spec.limits.memory,
                self.host.caps(),
                self.spec.keyed.clone(),
                self.spec.log_budget.clone(),
            ),
        );
        store.limiter(|s| &mut s.limiter);
        store.data_mut().watermark = self.watermark;
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.host.ticks_for(self.spec.limits.call_timeout));
        store.data_mut().deadline.start(self.spec.limits.call_timeout);
        let instance: Instance =
            c.pre.instantiate(&mut store).map_err(|e| self.describe_error(&store, e).to_string())?;
        fn load<T>(r: wasmtime::Result<T>) -> Result<T, String> {
            r.map_err(|e| format!("cannot load the exports: {e:#}"))
        }
        let lifecycle = load(c.lifecycle.load(&mut store, &instance))?;
        let mapper = c.mapper.as_ref().map(|i| load(i.load(&mut store, &instance))).transpose()?;
        let filter = c.filter.as_ref().map(|i| load(i.load(&mut store, &instance))).transpose()?;
        let flat_mapper = c.flat_mapper.as_ref().map(|i| load(i.load(&mut store, &instance))).transpose()?;
        let aggregator = c.aggregator.as_ref().map(|i| load(i.load(&mut store, &instance))).transpose()?;
        let processor = c.processor.as_ref().map(|i| load(i.load(&mut store, &instance))).transpose()?;
        store.set_epoch_deadline(self.host.ticks_for(self.spec.limits.call_timeout));
        store.data_mut().deadline.start(self.spec.limits.call_timeout);
        match lifecycle.call_init(&mut store, &self.spec.params) {
            Ok(Ok(())) => Ok(Live { store, mapper, filter, flat_mapper, aggregator, processor }),
            Ok(Err(e)) => Err(format!("init refused the parameters: {}", describe_udf_error(&e))),
            Err(e) => Err(format!("init {}", self.describe_error(&store, e))),
        }
    }

    /// Runs `call` on the live instance (making one if the last trapped).
    fn call<R>(&mut self, call: impl FnOnce(&mut Live) -> wasmtime::Result<R>) -> Result<R, UdfFailure> {
        if self.live.is_none() {
            if !std::mem::take(&mut self.recycled) {
                self.replacements += 1;
            }
            let live = self.fresh().map_err(|message| UdfFailure::Unavailable { message })?;
            self.live = Some(live);
        }
        let ticks = self.host.ticks_for(self.spec.limits.call_timeout);
        let live = self.live.as_mut().expect("made above");
        live.store.set_epoch_deadline(ticks);
        live.store.data_mut().deadline.start(self.spec.limits.call_timeout);
        live.store.data_mut().watermark = self.watermark;
        match call(live) {
            Ok(r) => {
                let memory = live.store.data().limiter.total;
                self.peak_memory = self.peak_memory.max(memory);
                if memory > self.spec.limits.recycle_threshold() {
                    tracing::debug!(udf = &*self.label, memory, "recycling the instance (memory above the threshold)");
                    self.live = None;
                    self.recycled = true;
                    self.recycles += 1;
                    self.unreported_recycles += 1;
                }
                Ok(r)
            }
            Err(e) => {
                let dead = self.live.take().expect("live");
                Err(self.describe_error(&dead.store, e))
            }
        }
    }

    /// Turns a wasmtime error of a call into a failure value.
    fn describe_error(&self, store: &Store<HostState>, e: wasmtime::Error) -> UdfFailure {
        if store.data().limiter.exceeded {
            return UdfFailure::OutOfMemory { limit: self.spec.limits.memory };
        }
        // A deadline that passed while the guest waited in WASI is the same
        // failure as one that passed while it computed.
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) || store.data().deadline.passed() {
            return UdfFailure::Timeout { limit: self.spec.limits.call_timeout };
        }
        if e.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) {
            return UdfFailure::StackOverflow;
        }
        let trap = e.downcast_ref::<Trap>().map_or_else(|| format!("{e:#}"), |t| t.to_string());
        let message = match panic_message(&store.data().stderr.tail()) {
            Some(panic) => format!("{panic} ({trap})"),
            None => trap,
        };
        UdfFailure::Trap { message }
    }

    fn missing(&self) -> UdfFailure {
        UdfFailure::Unavailable {
            message: format!("{} does not export the {} interface", self.name, self.kind.step_name()),
        }
    }
}

fn describe_udf_error(e: &UdfError) -> String {
    match e {
        UdfError::InvalidParams(m) => format!("invalid-params: {m}"),
        UdfError::InvalidInput(m) => format!("invalid-input: {m}"),
        UdfError::Failed(m) => format!("failed: {m}"),
    }
}

fn error_value(e: UdfError) -> UdfFailure {
    let (kind, message) = match e {
        UdfError::InvalidParams(m) => ("invalid-params", m),
        UdfError::InvalidInput(m) => ("invalid-input", m),
        UdfError::Failed(m) => ("failed", m),
    };
    UdfFailure::Error { kind, message }
}

fn batch(bytes: Vec<u8>) -> Result<Batch, UdfFailure> {
    Batch::from_vec(bytes).map_err(|e| UdfFailure::BadOutput { message: format!("the output batch is malformed: {e}") })
}

fn rejections(r: Vec<super::bindings::weir::udf::types::Rejection>) -> Vec<Rejection> {
    r.into_iter().map(|r| Rejection { index: r.index, reason: r.reason }).collect()
}

impl UdfInvoker for WasmUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure> {
        if self.component.mapper.is_none() {
            return Err(self.missing());
        }
        let bytes = input.as_vec();
        let out =
            self.call(|l| l.mapper.as_ref().expect("checked").call_map(&mut l.store, bytes))?.map_err(error_value)?;
        Ok(Mapped { output: batch(out.output)?, rejected: rejections(out.rejected) })
    }

    fn filter(&mut self, input: &Batch) -> Result<Filtered, UdfFailure> {
        if self.component.filter.is_none() {
            return Err(self.missing());
        }
        let bytes = input.as_vec();
        let out = self
            .call(|l| l.filter.as_ref().expect("checked").call_filter(&mut l.store, bytes))?
            .map_err(error_value)?;
        Ok(Filtered { keep: out.keep, rejected: rejections(out.rejected) })
    }

    fn flat_map(&mut self, input: &Batch) -> Result<Mapped, UdfFailure> {
        if self.component.flat_mapper.is_none() {
            return Err(self.missing());
        }
        let bytes = input.as_vec();
        let out = self
            .call(|l| l.flat_mapper.as_ref().expect("checked").call_flat_map(&mut l.store, bytes))?
            .map_err(error_value)?;
        Ok(Mapped { output: batch(out.output)?, rejected: rejections(out.rejected) })
    }

    fn set_watermark(&mut self, watermark: i64) {
        self.watermark = watermark;
    }

    fn take_recycles(&mut self) -> u64 {
        std::mem::take(&mut self.unreported_recycles)
    }

    fn peak_memory(&self) -> u64 {
        self.peak_memory
    }

    fn create(&mut self) -> Result<Vec<u8>, UdfFailure> {
        self.aggregator_call(|g, store| g.call_create(store))?.map_err(error_value)
    }

    fn add(&mut self, groups: &[u8]) -> Result<Added, UdfFailure> {
        let groups = groups.to_vec();
        let out = self.aggregator_call(|g, store| g.call_add(store, &groups))?.map_err(error_value)?;
        Ok(Added { accumulators: out.accumulators, rejected: rejections(out.rejected) })
    }

    fn merge(&mut self, a: &[u8], b: &[u8]) -> Result<Vec<u8>, UdfFailure> {
        let (a, b) = (a.to_vec(), b.to_vec());
        self.aggregator_call(|g, store| g.call_merge(store, &a, &b))?.map_err(error_value)
    }

    fn finish(&mut self, fired: &[u8]) -> Result<Batch, UdfFailure> {
        let fired = fired.to_vec();
        batch(self.aggregator_call(|g, store| g.call_finish(store, &fired))?.map_err(error_value)?)
    }

    fn process(&mut self, groups: &[u8]) -> Result<Processed, UdfFailure> {
        let groups = groups.to_vec();
        let out = self.processor_call(|g, store| g.call_process(store, &groups))?.map_err(error_value)?;
        Ok(Processed { results: out.results, rejected: rejections(out.rejected) })
    }

    fn on_timer(&mut self, fired: &[u8]) -> Result<Vec<u8>, UdfFailure> {
        let fired = fired.to_vec();
        self.processor_call(|g, store| g.call_on_timer(store, &fired))?.map_err(error_value)
    }
}

impl WasmUdf {
    fn aggregator_call<R>(
        &mut self,
        f: impl FnOnce(&aggregator::Guest, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, UdfFailure> {
        if self.component.aggregator.is_none() {
            return Err(self.missing());
        }
        self.call(|l| f(l.aggregator.as_ref().expect("checked"), &mut l.store))
    }

    fn processor_call<R>(
        &mut self,
        f: impl FnOnce(&processor::Guest, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, UdfFailure> {
        if self.component.processor.is_none() {
            return Err(self.missing());
        }
        self.call(|l| f(l.processor.as_ref().expect("checked"), &mut l.store))
    }
}
