//! Manifest → physical plan.
//!
//! The steps are cut into segments at each `key_by` (whose operator sets
//! the keys at the end of the segment before the cut, followed by a hash
//! shuffle). The first segment starts with decoding the source format and
//! assigning event time; the subtasks running it generate the watermarks.
//! When the source has one split per subtask, the first segment runs in the
//! source's threads (no channel at all); otherwise the source stage
//! rebalances raw lines to the first segment's subtasks.

use super::catalog::UdfCatalog;
use super::durability::Durability;
use super::sinks::{open_side_output, open_sinks, sink_label};
use super::sources::{open_source, source_label};
use super::JobError;
use crate::checkpoint::store::Restorable;
use crate::connector::dead_letter::DeadLetterWriter;
use crate::connector::{now_ms, Source};
use crate::exec::{ChainOp, CheckpointPlan, EdgeKind, EventTimePlan, Plan, StagePlan, SubtaskInput, SubtaskPlan};
use crate::manifest::{
    AggregateSpec, EventTimeSpec, KeyBySpec, Manifest, SourceKind, StateBackendKind, StepKind, StepSpec, TimeMode,
    TimestampSource, UdfStepSpec, WindowKind, WindowStepSpec,
};
use crate::operator::decode::{CsvColumns, Decode, SharedOrigins, TimestampCheck};
use crate::operator::key_by::{KeyByField, RequireKey};
use crate::operator::process::{Process, ProcessAccess, StateBudget};
use crate::operator::swap::{StepSwitch, Switchable};
use crate::operator::udf::{OutputLimits, UdfInvoker, UdfStep};
use crate::operator::window::aggregation::{Aggregation, UdfAggregate};
use crate::operator::window::builtin::Builtin;
use crate::operator::window::{
    CountWindows, GlobalWindows, SessionWindows, SlicedWindows, TimeDomain, TimeWindows, WindowContext,
};
use crate::operator::{DeadLetters, Operator, RestoreFrom, StepContext, StepMetrics};
use crate::state::{MemoryBackend, RestoreSource, StateBackend};
use crate::time::BoundedOutOfOrderness;
use crate::types::UdfRef;
use crate::wasm::{InstanceSpec, LoadedComponent, WasmHost, WasmUdf};
use crate::window::{Assigner, CountSpec};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Batches buffered per channel.
const CHANNEL_CAPACITY: usize = 8;

/// Index of the source's event-time function among the "steps" that own instances.
const TIMESTAMP_STEP: usize = usize::MAX;

type Metrics = Vec<(String, Arc<StepMetrics>)>;

/// A function step that can be swapped while the pipeline runs.
pub struct SwapTarget {
    /// Position in `steps`.
    pub index: usize,
    /// Its name in the manifest.
    pub name: Option<String>,
    /// Its label.
    pub label: String,
    /// The interface called.
    pub function: crate::manifest::FunctionKind,
    /// The function it started with.
    pub udf: UdfRef,
    /// How each subtask's instance was started (a new version gets the same).
    pub specs: Vec<InstanceSpec>,
    /// The swap state, shared with the subtasks.
    pub switch: Arc<StepSwitch>,
}

impl SwapTarget {
    /// One started instance of `component` per subtask (`init` called with
    /// the step's parameters); the first failure is returned.
    pub fn start(&self, host: &WasmHost, component: &Arc<LoadedComponent>) -> Result<Vec<Box<dyn UdfInvoker>>, String> {
        self.specs
            .iter()
            .map(|spec| {
                host.instantiate(component, self.function, spec.clone())
                    .map(|u| Box::new(u) as Box<dyn UdfInvoker>)
                    .map_err(|e| format!("subtask {}: {e}", spec.subtask))
            })
            .collect()
    }
}

/// Started function instances per step (by step index), one per subtask,
/// with the state and timers of `process` functions.
type Instances = HashMap<usize, Vec<(WasmUdf, Option<Arc<ProcessAccess>>)>>;

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// The key groups subtask `subtask` of `parallelism` owns: those whose
/// [`subtask_of_key_group`](crate::types::subtask_of_key_group) is `subtask`.
pub(crate) fn key_group_range(max_parallelism: u32, parallelism: u32, subtask: u32) -> Range<u32> {
    let bound = |s: u32| (u64::from(s) * u64::from(max_parallelism)).div_ceil(u64::from(parallelism)) as u32;
    bound(subtask)..bound(subtask + 1)
}

/// A new state backend for `step`'s subtask `subtask`.
fn backend(m: &Manifest, work_dir: &Path, step: usize, subtask: u32) -> Result<Box<dyn StateBackend>, JobError> {
    match m.state.backend {
        StateBackendKind::Memory => Ok(Box::new(MemoryBackend::new())),
        #[cfg(feature = "rocksdb")]
        StateBackendKind::RocksDb => {
            crate::state::RocksBackend::create(&work_dir.join(format!("step{step}-sub{subtask}")))
                .map(|b| Box::new(b) as Box<dyn StateBackend>)
                .map_err(JobError::State)
        }
        #[cfg(not(feature = "rocksdb"))]
        StateBackendKind::RocksDb => {
            let _ = (work_dir, step, subtask);
            Err(JobError::State("this weir was built without RocksDB (cargo feature `rocksdb`)".into()))
        }
    }
}

pub(super) fn plan(
    m: &Manifest,
    host: &WasmHost,
    catalog: &dyn UdfCatalog,
    durability: Durability,
) -> Result<(Plan, Metrics, Vec<SwapTarget>), JobError> {
    let p = m.parallelism;
    let Durability { restore, work_dir, checkpointing } = durability;
    let ts_label = format!("{} event_time", source_label(m));
    let functions: Vec<(usize, String, &UdfStepSpec)> = m
        .timestamp_udf()
        .map(|u| (TIMESTAMP_STEP, ts_label.clone(), u))
        .into_iter()
        .chain(m.udf_steps().map(|(s, u)| (s.index, s.label(), u)))
        .collect();

    // 1. Every function, compiled and checked against its step.
    let mut loaded: HashMap<UdfRef, Arc<LoadedComponent>> = HashMap::new();
    for (_, label, u) in &functions {
        let udf_err = |message: String| JobError::Udf { step: label.clone(), message };
        if !loaded.contains_key(&u.udf) {
            let bytes = catalog.fetch(&u.udf).map_err(udf_err)?;
            let component = host.load(&u.udf, &bytes).map_err(|e| udf_err(e.to_string()))?;
            loaded.insert(u.udf.clone(), component);
        }
        loaded[&u.udf].check_kind(u.function).map_err(|e| udf_err(e.to_string()))?;
    }

    // 2. The source, split (or where a checkpoint left it).
    let columns = CsvColumns::default();
    let (sources, origins) = open_source(m, &columns, restore.as_ref())?;
    let splits = sources.len() as u32;
    // Partitioned sources decode and generate watermarks per split (per
    // Kafka partition), whatever the parallelism; the others do it in the
    // first stage's subtasks.
    let per_split = matches!(m.source.kind, SourceKind::Kafka(_));
    let decoders = if per_split { splits } else { p };

    // 3. One started instance per function and subtask (init has run);
    // process functions get their state and timers now, for their imports.
    let mut instances: Instances = HashMap::new();
    let mut targets = Vec::new();
    for (index, label, u) in &functions {
        let mut per_subtask = Vec::with_capacity(p as usize);
        let mut specs = Vec::with_capacity(p as usize);
        let count = if *index == TIMESTAMP_STEP { decoders } else { p };
        let log_budget = crate::log_budget::SharedLogBudget::default();
        for subtask in 0..count {
            let access = match u.function {
                crate::manifest::FunctionKind::Process => Some(Process::access(
                    backend(m, &work_dir, *index, subtask)?,
                    *index as u32,
                    m.max_parallelism,
                    StateBudget::of(&u.limits),
                )),
                _ => None,
            };
            let keyed = access.clone().map(|a| a as Arc<dyn crate::operator::keyed_access::KeyedAccess>);
            let spec = InstanceSpec {
                params: u.params.clone(),
                limits: u.limits,
                subtask,
                keyed,
                log_budget: log_budget.clone(),
            };
            specs.push(spec.clone());
            let udf = host
                .instantiate(&loaded[&u.udf], u.function, spec)
                .map_err(|message| JobError::Udf { step: label.clone(), message })?;
            per_subtask.push((udf, access));
        }
        instances.insert(*index, per_subtask);
        if *index != TIMESTAMP_STEP {
            let step = &m.steps[*index];
            targets.push(SwapTarget {
                index: *index,
                name: step.name.clone(),
                label: label.clone(),
                function: u.function,
                udf: u.udf.clone(),
                specs,
                switch: StepSwitch::new(label.clone(), p as usize),
            });
        }
    }
    let switches: HashMap<usize, Arc<StepSwitch>> = targets.iter().map(|t| (t.index, t.switch.clone())).collect();

    // 4. Outputs, now that everything else worked (appended to when continuing).
    let append = restore.is_some();
    let dead_letters: Arc<dyn DeadLetters> =
        Arc::new(DeadLetterWriter::new(&m.name, open_side_output(&m.dead_letter, append)?));
    let late: Arc<dyn DeadLetters> = match &m.late {
        Some(spec) => Arc::new(DeadLetterWriter::new(&m.name, open_side_output(spec, append)?)),
        None => dead_letters.clone(),
    };
    let mut sinks = open_sinks(m, checkpointing.as_ref().map(|(store, _)| store.root()))?;

    // 5. Stages.
    let source_metrics = Arc::new(StepMetrics::default());
    let sink_metrics = Arc::new(StepMetrics::default());
    let ts_metrics = Arc::new(StepMetrics::default());
    let mut metrics: Metrics = vec![(source_label(m), source_metrics.clone())];
    if m.timestamp_udf().is_some() {
        metrics.push((ts_label.clone(), ts_metrics.clone()));
    }
    let step_metrics: Vec<Arc<StepMetrics>> = m.steps.iter().map(|_| Arc::new(StepMetrics::default())).collect();
    metrics.extend(m.steps.iter().zip(&step_metrics).map(|(s, mt)| (s.label(), mt.clone())));
    metrics.push((sink_label(&m.sink), sink_metrics.clone()));

    let mut segments: Vec<Vec<&StepSpec>> = vec![Vec::new()];
    for s in &m.steps {
        segments.last_mut().expect("one segment at least").push(s);
        if matches!(s.kind, StepKind::KeyBy(_)) {
            segments.push(Vec::new());
        }
    }

    let resume_max_ts = restore.as_ref().and_then(|r| r.metadata.generators.iter().copied().min());
    let mut builder = ChainBuilder {
        m,
        columns,
        dead_letters,
        late,
        step_metrics,
        source_metrics,
        ts_metrics,
        ts_label,
        instances,
        switches,
        origins,
        restore: restore.as_ref(),
        resume_max_ts,
        work_dir: &work_dir,
    };
    let all_groups = 0..m.max_parallelism;
    let mut stages = Vec::new();
    let mut edges = Vec::new();
    let fused = splits == p;
    let mut sources: Vec<Option<Box<dyn Source>>> = sources.into_iter().map(Some).collect();
    type ChainOf<'c> = dyn FnMut(u32) -> Result<(Vec<ChainOp>, Option<EventTimePlan>), JobError> + 'c;
    let mut source_stage = |chain_of: &mut ChainOf<'_>| -> Result<StagePlan, JobError> {
        let mut subtasks = Vec::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            let (chain, event_time) = chain_of(i as u32)?;
            subtasks.push(SubtaskPlan {
                input: SubtaskInput::Source(s.take().expect("each source used once")),
                chain,
                sink: None,
                event_time,
                key_groups: all_groups.clone(),
            });
        }
        Ok(StagePlan { name: "source".into(), subtasks })
    };
    for (si, seg) in segments.iter().enumerate() {
        if si == 0 && fused {
            stages.push(source_stage(&mut |i| builder.first_chain(seg, i))?);
            continue;
        }
        if si == 0 && per_split {
            stages.push(source_stage(&mut |i| builder.source_chain(i))?);
            edges.push(EdgeKind::Rebalance);
        } else if si == 0 {
            stages.push(source_stage(&mut |_| Ok((Vec::new(), None)))?);
            edges.push(EdgeKind::Rebalance);
        } else {
            edges.push(EdgeKind::Hash { max_parallelism: m.max_parallelism });
        }
        let mut subtasks = Vec::with_capacity(p as usize);
        for i in 0..p {
            let (chain, event_time, key_groups) = if si == 0 && per_split {
                (builder.chain(seg, i)?, None, all_groups.clone())
            } else if si == 0 {
                let (chain, event_time) = builder.first_chain(seg, i)?;
                (chain, event_time, all_groups.clone())
            } else {
                (builder.chain(seg, i)?, None, key_group_range(m.max_parallelism, p, i))
            };
            subtasks.push(SubtaskPlan { input: SubtaskInput::Upstream, chain, sink: None, event_time, key_groups });
        }
        stages.push(StagePlan { name: format!("stage{si}"), subtasks });
    }
    let last = stages.last_mut().expect("one stage at least");
    for (sub, sink) in last.subtasks.iter_mut().zip(sinks.drain(..)) {
        sub.sink = Some(sink);
    }
    let after_restored = restore.as_ref().map_or(1, |r| r.metadata.id + 1);
    let checkpointing = checkpointing.map(|(store, timing)| {
        let first_id = store.next_id().max(after_restored);
        CheckpointPlan { store, timing, first_id }
    });
    let plan = Plan {
        stages,
        edges,
        batch_size: m.batch_size,
        channel_capacity: CHANNEL_CAPACITY,
        sink_metrics,
        checkpointing,
    };
    Ok((plan, metrics, targets))
}

/// Builds the operator chains of segments.
struct ChainBuilder<'a> {
    m: &'a Manifest,
    columns: CsvColumns,
    dead_letters: Arc<dyn DeadLetters>,
    late: Arc<dyn DeadLetters>,
    step_metrics: Vec<Arc<StepMetrics>>,
    source_metrics: Arc<StepMetrics>,
    ts_metrics: Arc<StepMetrics>,
    ts_label: String,
    instances: Instances,
    switches: HashMap<usize, Arc<StepSwitch>>,
    /// Per source split, where its records were read (for dead letters).
    origins: Vec<SharedOrigins>,
    restore: Option<&'a Restorable>,
    resume_max_ts: Option<i64>,
    work_dir: &'a Path,
}

impl ChainBuilder<'_> {
    fn key_groups(&self, subtask: u32) -> Range<u32> {
        key_group_range(self.m.max_parallelism, self.m.parallelism, subtask)
    }

    /// The saved state of `step` that subtask `subtask` takes over: every
    /// snapshot whose key groups overlap its own.
    fn restore_from(&self, step: u32, subtask: u32) -> Vec<RestoreFrom> {
        let Some(r) = self.restore else { return Vec::new() };
        let mine = self.key_groups(subtask);
        r.metadata
            .operators
            .iter()
            .filter(|o| o.step == step && o.key_groups.0 < mine.end && mine.start < o.key_groups.1)
            .map(|o| RestoreFrom {
                state: o.state.as_ref().map(|f| RestoreSource {
                    dir: r.dir.join(&f.dir),
                    files: f.clone(),
                    key_groups: o.key_groups.0..o.key_groups.1,
                }),
                meta: o.meta.clone(),
            })
            .collect()
    }
    fn ctx(&self, label: String, subtask: u32, metrics: &Arc<StepMetrics>) -> StepContext {
        StepContext { label: label.into(), subtask, dead_letters: self.dead_letters.clone(), metrics: metrics.clone() }
    }

    /// Subtask `subtask`'s instance of step `index`'s function, swappable
    /// (steps only; the source's event-time function is not).
    fn instance(&mut self, index: usize, subtask: u32) -> (Box<dyn UdfInvoker>, Option<Arc<ProcessAccess>>) {
        let v = self.instances.get_mut(&index).expect("instances were started for every function");
        let (udf, access) = v.remove(0);
        let invoker: Box<dyn UdfInvoker> = match self.switches.get(&index) {
            Some(switch) => Box::new(Switchable::new(Box::new(udf), switch.clone(), subtask)),
            None => Box::new(udf),
        };
        (invoker, access)
    }

    fn udf_step(&mut self, step: &StepSpec, u: &UdfStepSpec, subtask: u32) -> UdfStep {
        let (invoker, _) = self.instance(step.index, subtask);
        let ctx = self.ctx(step.label(), subtask, &self.step_metrics[step.index]);
        UdfStep::new(u.function, invoker, u.on_error, ctx).with_output_limits(OutputLimits::of(&u.limits))
    }

    /// The chain of the first segment: decode, event time, then the steps;
    /// with the watermark generation that goes with it.
    fn first_chain(
        &mut self,
        segment: &[&StepSpec],
        subtask: u32,
    ) -> Result<(Vec<ChainOp>, Option<EventTimePlan>), JobError> {
        let (mut chain, event_time) = self.source_chain(subtask)?;
        chain.extend(self.chain(segment, subtask)?);
        Ok((chain, event_time))
    }

    /// Decode and event time, with the watermark generation that goes with it.
    fn source_chain(&mut self, subtask: u32) -> Result<(Vec<ChainOp>, Option<EventTimePlan>), JobError> {
        let source = &self.m.source;
        let field = match &source.event_time {
            Some(EventTimeSpec { assign: TimestampSource::Field(p), .. }) => Some(p.clone()),
            _ => None,
        };
        let ctx = self.ctx(source_label(self.m), subtask, &self.source_metrics);
        let mut decode = Decode::new(source.format.clone(), field, self.columns.clone(), ctx);
        if let Some(o) = self.origins.get(subtask as usize) {
            decode = decode.with_origins(o.clone());
        }
        let mut chain =
            vec![ChainOp { op: Box::new(decode), metrics: self.source_metrics.clone(), step: None, switch: None }];
        if let Some(u) = self.m.timestamp_udf() {
            let (invoker, _) = self.instance(TIMESTAMP_STEP, subtask);
            let ctx = self.ctx(self.ts_label.clone(), subtask, &self.ts_metrics);
            chain.push(ChainOp {
                op: Box::new(UdfStep::new(u.function, invoker, u.on_error, ctx.clone())),
                metrics: self.ts_metrics.clone(),
                step: None,
                switch: None,
            });
            chain.push(ChainOp {
                op: Box::new(TimestampCheck::new(ctx)),
                metrics: Arc::new(StepMetrics::default()),
                step: None,
                switch: None,
            });
        }
        let event_time = source.event_time.as_ref().map(|e| {
            let mut generator = BoundedOutOfOrderness::new(e.max_out_of_orderness, e.idle_timeout);
            if let Some(max_ts) = self.resume_max_ts {
                generator.resume(max_ts);
            }
            EventTimePlan { generator, observe_after: chain.len() - 1 }
        });
        Ok((chain, event_time))
    }

    fn chain(&mut self, segment: &[&StepSpec], subtask: u32) -> Result<Vec<ChainOp>, JobError> {
        let mut chain = Vec::new();
        for step in segment {
            let metrics = self.step_metrics[step.index].clone();
            let switch = self.switches.get(&step.index).cloned();
            let op: Box<dyn Operator> = match &step.kind {
                StepKind::Udf(u) => Box::new(self.udf_step(step, u, subtask)),
                StepKind::KeyBy(KeyBySpec::Field(p)) => {
                    Box::new(KeyByField::new(p.clone(), self.ctx(step.label(), subtask, &metrics)))
                }
                StepKind::KeyBy(KeyBySpec::RecordKey) => {
                    Box::new(RequireKey::new(self.ctx(step.label(), subtask, &metrics)))
                }
                StepKind::KeyBy(KeyBySpec::Udf(u)) => {
                    let call = self.udf_step(step, u, subtask);
                    chain.push(ChainOp {
                        op: Box::new(call),
                        metrics: metrics.clone(),
                        step: None,
                        switch: switch.clone(),
                    });
                    let unreported = Arc::new(StepMetrics::default());
                    Box::new(RequireKey::new(self.ctx(step.label(), subtask, &unreported)))
                }
                StepKind::Window(w) => self.window(step, w, subtask)?,
                StepKind::Process(u) => {
                    let (invoker, access) = self.instance(step.index, subtask);
                    let access = access.expect("process functions get their state when started");
                    let ctx = self.ctx(step.label(), subtask, &metrics);
                    Box::new(Process::new(invoker, u.on_error, access, step.index as u32, self.m.max_parallelism, ctx))
                }
            };
            let stateful = matches!(step.kind, StepKind::Window(_) | StepKind::Process(_));
            let mut op = op;
            if stateful {
                let from = self.restore_from(step.index as u32, subtask);
                if !from.is_empty() {
                    op.restore(&from, self.key_groups(subtask))
                        .map_err(|message| JobError::Restore(format!("{}: {message}", step.label())))?;
                }
            }
            chain.push(ChainOp { op, metrics, step: stateful.then_some(step.index as u32), switch });
        }
        Ok(chain)
    }

    fn window(&mut self, step: &StepSpec, w: &WindowStepSpec, subtask: u32) -> Result<Box<dyn Operator>, JobError> {
        let aggregation = match &w.aggregate {
            AggregateSpec::Builtin { kind, field, output } => {
                Aggregation::Builtin(Builtin::new(*kind, field.clone(), *output))
            }
            AggregateSpec::Udf(u) => {
                Aggregation::Udf(UdfAggregate::new(self.instance(step.index, subtask).0, u.on_error))
            }
        };
        let domain = match w.time {
            TimeMode::Event => TimeDomain::Event,
            TimeMode::Processing => TimeDomain::Processing(Arc::new(now_ms)),
        };
        let cx = WindowContext {
            operator: step.index as u32,
            max_parallelism: self.m.max_parallelism,
            allowed_lateness: ms(w.allowed_lateness),
            domain,
            step: self.ctx(step.label(), subtask, &self.step_metrics[step.index]),
            late: self.late.clone(),
        };
        let state = backend(self.m, self.work_dir, step.index, subtask)?;
        Ok(match w.kind {
            WindowKind::Tumbling { size, offset } => Box::new(TimeWindows::new(
                Assigner::Tumbling { size: ms(size), offset: ms(offset) },
                aggregation,
                state,
                cx,
            )),
            // Builtins merge: a sliding window is computed from panes (one update per record).
            WindowKind::Sliding { size, slide, offset }
                if matches!(w.aggregate, AggregateSpec::Builtin { .. }) && ms(size) % ms(slide) == 0 =>
            {
                let Aggregation::Builtin(b) = aggregation else { unreachable!("checked above") };
                Box::new(SlicedWindows::new(ms(size), ms(slide), ms(offset), b, state, cx))
            }
            WindowKind::Sliding { size, slide, offset } => Box::new(TimeWindows::new(
                Assigner::Sliding { size: ms(size), slide: ms(slide), offset: ms(offset) },
                aggregation,
                state,
                cx,
            )),
            WindowKind::Session { gap } => Box::new(SessionWindows::new(ms(gap), aggregation, state, cx)),
            WindowKind::Count { size, slide } => {
                Box::new(CountWindows::new(CountSpec { size, slide }, aggregation, state, cx))
            }
            WindowKind::Global { every } => Box::new(GlobalWindows::new(every, aggregation, state, cx)),
        })
    }
}
