//! Manifest → physical plan.
//!
//! The steps are cut into segments at each `key_by` (whose operator sets
//! the keys at the end of the segment before the cut, followed by a hash
//! shuffle). The first segment starts with decoding the source format. When
//! the source has one split per subtask, the first segment runs in the
//! source's threads (no channel at all); otherwise the source stage
//! rebalances raw lines to the first segment's subtasks.

use super::catalog::UdfCatalog;
use super::JobError;
use crate::connector::bids::BidSource;
use crate::connector::dead_letter::DeadLetterWriter;
use crate::connector::file_source::{open_splits, CsvHeader};
use crate::connector::lines::HeaderSlot;
use crate::connector::sink::{FileSink, SharedOutput, SharedSink};
use crate::connector::{stream_source, Sink, Source};
use crate::exec::{ChainOp, EdgeKind, Plan, StagePlan, SubtaskInput, SubtaskPlan};
use crate::manifest::{
    Format, KeyBySpec, Manifest, OutputSpec, SinkSpec, SourceKind, Splits, StepKind, StepSpec, UdfStepSpec,
};
use crate::operator::decode::{CsvColumns, Decode};
use crate::operator::key_by::{KeyByField, RequireKey};
use crate::operator::udf::UdfStep;
use crate::operator::{DeadLetters, Operator, StepContext, StepMetrics};
use crate::types::UdfRef;
use crate::wasm::{InstanceSpec, LoadedComponent, WasmHost, WasmUdf};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::{Arc, Mutex};

/// Batches buffered per channel.
const CHANNEL_CAPACITY: usize = 8;

type Metrics = Vec<(String, Arc<StepMetrics>)>;

pub(super) fn plan(m: &Manifest, host: &WasmHost, catalog: &dyn UdfCatalog) -> Result<(Plan, Metrics), JobError> {
    let p = m.parallelism;

    // 1. Every function, compiled and checked against its step.
    let mut loaded: HashMap<UdfRef, Arc<LoadedComponent>> = HashMap::new();
    for (step, u) in m.udf_steps() {
        let udf_err = |message: String| JobError::Udf { step: step.label(), message };
        if !loaded.contains_key(&u.udf) {
            let bytes = catalog.fetch(&u.udf).map_err(udf_err)?;
            let component = host.load(&u.udf, &bytes).map_err(|e| udf_err(e.to_string()))?;
            loaded.insert(u.udf.clone(), component);
        }
        loaded[&u.udf].check_kind(u.function).map_err(|e| udf_err(e.to_string()))?;
    }

    // 2. The source, split.
    let columns = CsvColumns::default();
    let sources = open_source(m, &columns)?;
    let splits = sources.len() as u32;

    // 3. One started instance per step and subtask (init has run).
    let mut instances: HashMap<usize, Vec<WasmUdf>> = HashMap::new();
    for (step, u) in m.udf_steps() {
        let mut per_subtask = Vec::with_capacity(p as usize);
        for subtask in 0..p {
            let spec = InstanceSpec { params: u.params.clone(), limits: u.limits, subtask, keyed: None };
            let udf = host
                .instantiate(&loaded[&u.udf], u.function, spec)
                .map_err(|message| JobError::Udf { step: step.label(), message })?;
            per_subtask.push(udf);
        }
        instances.insert(step.index, per_subtask);
    }

    // 4. Outputs, now that everything else worked.
    let dead_letters: Arc<dyn DeadLetters> =
        Arc::new(DeadLetterWriter::new(&m.name, open_side_output(&m.dead_letter)?));
    let mut sinks = open_sinks(&m.sink, p)?;

    // 5. Stages.
    let source_metrics = Arc::new(StepMetrics::default());
    let sink_metrics = Arc::new(StepMetrics::default());
    let mut metrics: Metrics = vec![(source_label(m), source_metrics.clone())];
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

    let mut builder = ChainBuilder { m, columns, dead_letters, step_metrics, source_metrics, instances };
    let mut stages = Vec::new();
    let mut edges = Vec::new();
    let fused = splits == p;
    let mut sources: Vec<Option<Box<dyn Source>>> = sources.into_iter().map(Some).collect();
    let source_stage =
        |chain_of: &mut dyn FnMut(u32) -> Vec<ChainOp>, sources: &mut Vec<Option<Box<dyn Source>>>| StagePlan {
            name: "source".into(),
            subtasks: sources
                .iter_mut()
                .enumerate()
                .map(|(i, s)| SubtaskPlan {
                    input: SubtaskInput::Source(s.take().expect("each source used once")),
                    chain: chain_of(i as u32),
                    sink: None,
                })
                .collect(),
        };
    for (si, seg) in segments.iter().enumerate() {
        let name = format!("stage{si}");
        if si == 0 && fused {
            stages.push(source_stage(&mut |i| builder.chain(seg, i, true), &mut sources));
        } else {
            if si == 0 {
                stages.push(source_stage(&mut |_| Vec::new(), &mut sources));
                edges.push(EdgeKind::Rebalance);
            } else {
                edges.push(EdgeKind::Hash { max_parallelism: m.max_parallelism });
            }
            let subtasks = (0..p)
                .map(|i| SubtaskPlan {
                    input: SubtaskInput::Upstream,
                    chain: builder.chain(seg, i, si == 0),
                    sink: None,
                })
                .collect();
            stages.push(StagePlan { name, subtasks });
        }
    }
    let last = stages.last_mut().expect("one stage at least");
    for (sub, sink) in last.subtasks.iter_mut().zip(sinks.drain(..)) {
        sub.sink = Some(sink);
    }
    let plan = Plan { stages, edges, batch_size: m.batch_size, channel_capacity: CHANNEL_CAPACITY, sink_metrics };
    Ok((plan, metrics))
}

/// Builds the operator chains of segments.
struct ChainBuilder<'a> {
    m: &'a Manifest,
    columns: CsvColumns,
    dead_letters: Arc<dyn DeadLetters>,
    step_metrics: Vec<Arc<StepMetrics>>,
    source_metrics: Arc<StepMetrics>,
    instances: HashMap<usize, Vec<WasmUdf>>,
}

impl ChainBuilder<'_> {
    fn ctx(&self, label: String, subtask: u32, metrics: &Arc<StepMetrics>) -> StepContext {
        StepContext { label: label.into(), subtask, dead_letters: self.dead_letters.clone(), metrics: metrics.clone() }
    }

    fn udf_step(&mut self, step: &StepSpec, u: &UdfStepSpec, subtask: u32) -> UdfStep {
        let invoker =
            self.instances.get_mut(&step.index).and_then(|v| if v.is_empty() { None } else { Some(v.remove(0)) });
        let invoker = invoker.expect("one instance per subtask was started");
        let ctx = self.ctx(step.label(), subtask, &self.step_metrics[step.index]);
        UdfStep::new(u.function, Box::new(invoker), u.on_error, ctx)
    }

    fn chain(&mut self, segment: &[&StepSpec], subtask: u32, first: bool) -> Vec<ChainOp> {
        let mut chain = Vec::new();
        if first {
            let source = &self.m.source;
            let ctx = self.ctx(source_label(self.m), subtask, &self.source_metrics);
            let decode = Decode::new(
                source.format.clone(),
                source.event_time.as_ref().map(|e| e.field.clone()),
                self.columns.clone(),
                ctx,
            );
            chain.push(ChainOp { op: Box::new(decode), metrics: self.source_metrics.clone() });
        }
        for step in segment {
            let metrics = self.step_metrics[step.index].clone();
            let op: Box<dyn Operator> = match &step.kind {
                StepKind::Udf(u) => Box::new(self.udf_step(step, u, subtask)),
                StepKind::KeyBy(KeyBySpec::Field(p)) => {
                    Box::new(KeyByField::new(p.clone(), self.ctx(step.label(), subtask, &metrics)))
                }
                StepKind::KeyBy(KeyBySpec::Udf(u)) => {
                    let call = self.udf_step(step, u, subtask);
                    chain.push(ChainOp { op: Box::new(call), metrics: metrics.clone() });
                    let unreported = Arc::new(StepMetrics::default());
                    Box::new(RequireKey::new(self.ctx(step.label(), subtask, &unreported)))
                }
            };
            chain.push(ChainOp { op, metrics });
        }
        chain
    }
}

fn source_label(m: &Manifest) -> String {
    let format = match &m.source.format {
        Format::Lines => "lines",
        Format::Json => "json",
        Format::Csv(_) => "csv",
    };
    match &m.source.kind {
        SourceKind::File { path, .. } => format!("source file {} ({format})", path.display()),
        SourceKind::Stdin => format!("source stdin ({format})"),
        SourceKind::Socket { address } => format!("source socket {address} ({format})"),
        SourceKind::Bids { seed, .. } => format!("source bids seed {seed}"),
    }
}

fn sink_label(s: &SinkSpec) -> String {
    match s {
        SinkSpec::File { path, .. } => format!("sink file {}", path.display()),
        SinkSpec::Dir { dir, .. } => format!("sink dir {}", dir.display()),
        SinkSpec::Stdout { .. } => "sink stdout".to_string(),
    }
}

fn open_source(m: &Manifest, columns: &CsvColumns) -> Result<Vec<Box<dyn Source>>, JobError> {
    let p = m.parallelism;
    let auto = if m.is_stateful() { 1 } else { p };
    let skip_blank = m.source.format != Format::Lines;
    let csv = match &m.source.format {
        Format::Csv(c) => {
            if let Some(cols) = &c.columns {
                let _ = columns.set(cols.clone());
            }
            Some(c)
        }
        _ => None,
    };
    let slot = || csv.filter(|c| c.header).map(|c| HeaderSlot { columns: columns.clone(), delimiter: c.delimiter });
    let source_err = |e: io::Error| JobError::Source(e.to_string());
    Ok(match &m.source.kind {
        SourceKind::File { path, splits } => {
            let n = match splits {
                Splits::Auto => auto,
                Splits::Count(n) => *n,
            };
            // With explicit columns the slot is already filled: the header line is skipped, its names ignored.
            let header =
                csv.filter(|c| c.header).map(|c| CsvHeader { columns: columns.clone(), delimiter: c.delimiter });
            open_splits(path, n, skip_blank, header)
                .map_err(source_err)?
                .into_iter()
                .map(|s| Box::new(s) as Box<dyn Source>)
                .collect()
        }
        SourceKind::Stdin => vec![Box::new(stream_source::stdin(skip_blank, slot()))],
        SourceKind::Socket { address } => {
            vec![Box::new(stream_source::socket(address, skip_blank, slot()).map_err(source_err)?)]
        }
        SourceKind::Bids { seed, count, rate } => {
            (0..auto).map(|i| Box::new(BidSource::new(*seed, *count, *rate, i, auto)) as Box<dyn Source>).collect()
        }
    })
}

fn create(path: &std::path::Path) -> Result<File, JobError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| JobError::Output(format!("cannot create {}: {e}", parent.display())))?;
    }
    File::create(path).map_err(|e| JobError::Output(format!("cannot create {}: {e}", path.display())))
}

fn open_side_output(spec: &OutputSpec) -> Result<Box<dyn Write + Send>, JobError> {
    Ok(match spec {
        OutputSpec::File(path) => Box::new(create(path)?),
        OutputSpec::Stdout => Box::new(io::stdout()),
        OutputSpec::Stderr => Box::new(io::stderr()),
    })
}

fn open_sinks(spec: &SinkSpec, parallelism: u32) -> Result<Vec<Box<dyn Sink>>, JobError> {
    let shared = |out: Box<dyn Write + Send>, format, flush_each| -> Vec<Box<dyn Sink>> {
        let out: SharedOutput = Arc::new(Mutex::new(out));
        (0..parallelism).map(|_| Box::new(SharedSink::new(out.clone(), format, flush_each)) as Box<dyn Sink>).collect()
    };
    Ok(match spec {
        SinkSpec::Dir { dir, format } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| JobError::Output(format!("cannot create {}: {e}", dir.display())))?;
            let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
            for i in 0..parallelism {
                let sink = FileSink::create(&dir.join(format!("part-{i}.txt")), *format)
                    .map_err(|e| JobError::Output(e.to_string()))?;
                sinks.push(Box::new(sink));
            }
            sinks
        }
        SinkSpec::File { path, format } => {
            shared(Box::new(BufWriter::with_capacity(1 << 20, create(path)?)), *format, false)
        }
        SinkSpec::Stdout { format } => shared(Box::new(io::stdout()), *format, true),
    })
}
