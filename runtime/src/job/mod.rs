//! A pipeline run: from a validated manifest to a running plan and a summary.
//!
//! [`Job::build`] does everything that can fail before anything runs: it
//! finds and compiles every function, opens the source, starts one instance
//! per subtask (calling `init` with the step's parameters), and only then
//! creates outputs. If any of that fails, nothing has been read or written.
//! [`Job::run`] then runs the plan to the end of the input (or until stopped).

mod catalog;
mod durability;
mod kafka;
mod planner;
mod sinks;
mod sources;
pub mod worker;

pub use catalog::{UdfCatalog, UdfDirs};
pub use planner::SwapTarget;

use crate::exec::{self, Controls, Plan, RunReport, TaskError};
use crate::manifest::Manifest;
use crate::operator::StepMetrics;
use crate::wasm::WasmHost;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a job could not be built or did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// A step's function could not be found, loaded or started.
    Udf {
        /// The step.
        step: String,
        /// Why.
        message: String,
    },
    /// The source could not be opened.
    Source(String),
    /// An output could not be created.
    Output(String),
    /// The state storage could not be prepared.
    State(String),
    /// The checkpoint to continue from is unusable or does not fit.
    Restore(String),
    /// The pipeline failed while running.
    Failed(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Udf { step, message } => write!(f, "{step}: {message}"),
            JobError::Source(m) => write!(f, "source: {m}"),
            JobError::Output(m) => write!(f, "output: {m}"),
            JobError::State(m) => write!(f, "state: {m}"),
            JobError::Restore(m) => write!(f, "checkpoint: {m}"),
            JobError::Failed(m) => write!(f, "pipeline failed: {m}"),
        }
    }
}

impl std::error::Error for JobError {}

impl JobError {
    /// Whether the job never started (a configuration problem, not a runtime failure).
    pub fn before_start(&self) -> bool {
        !matches!(self, JobError::Failed(_))
    }
}

/// Counters of one step after a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSummary {
    /// The step's label.
    pub label: String,
    /// Records in.
    pub records_in: u64,
    /// Records out.
    pub records_out: u64,
    /// Records dead-lettered.
    pub dead_lettered: u64,
    /// Failed function calls.
    pub failed_calls: u64,
    /// Function instances replaced for their memory size.
    pub recycles: u64,
    /// The largest linear memory one function instance had after a call, bytes.
    pub peak_memory: u64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Pipeline name.
    pub pipeline: String,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The source (decode) first, then every step, then the sink.
    pub steps: Vec<StepSummary>,
    /// Checkpoints taken.
    pub checkpoints: RunReport,
    /// The checkpoint the run continued from.
    pub resumed_from: Option<PathBuf>,
    /// Set when there was nothing to do: the pipeline had finished at this checkpoint.
    pub already_finished: Option<PathBuf>,
}

impl Summary {
    /// Records read from the source.
    pub fn records_read(&self) -> u64 {
        self.steps.first().map_or(0, |s| s.records_in)
    }

    /// Records written to the sink.
    pub fn records_written(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.records_in)
    }

    /// Records dead-lettered by all steps.
    pub fn dead_lettered(&self) -> u64 {
        self.steps.iter().map(|s| s.dead_lettered).sum()
    }
}

/// A built pipeline, ready to run.
pub struct Job {
    name: String,
    plan: Option<Plan>,
    metrics: Vec<(String, Arc<StepMetrics>)>,
    controls: Arc<Controls>,
    swap_targets: Vec<Arc<SwapTarget>>,
    resumed_from: Option<PathBuf>,
    already_finished: Option<PathBuf>,
    _lock: Option<durability::Lock>,
}

impl Job {
    /// Builds `manifest`, taking functions from `catalog` and running them
    /// on `host`. With checkpoints, it continues from `from` (a checkpoint
    /// or savepoint directory) or else from the newest complete checkpoint.
    pub fn build(
        manifest: &Manifest,
        host: &WasmHost,
        catalog: &dyn UdfCatalog,
        from: Option<&Path>,
    ) -> Result<Job, JobError> {
        let prepared = durability::prepare(manifest, from)?;
        let resumed_from = prepared.durability.restore.as_ref().map(|r| r.dir.clone());
        let (plan, metrics, targets) = match prepared.finished {
            Some(_) => (None, Vec::new(), Vec::new()),
            None => {
                let (plan, metrics, targets) = planner::plan(manifest, host, catalog, prepared.durability)?;
                (Some(plan), metrics, targets)
            }
        };
        Ok(Job {
            name: manifest.name.clone(),
            plan,
            metrics,
            controls: Arc::new(Controls::default()),
            swap_targets: targets.into_iter().map(Arc::new).collect(),
            resumed_from,
            already_finished: prepared.finished,
            _lock: prepared.lock,
        })
    }

    /// The checkpoint or savepoint this run continues from.
    pub fn resumed_from(&self) -> Option<&Path> {
        self.resumed_from.as_deref().filter(|_| self.already_finished.is_none())
    }

    /// The final checkpoint at which the pipeline had already finished
    /// (then the run does nothing).
    pub fn already_finished(&self) -> Option<&Path> {
        self.already_finished.as_deref()
    }

    /// Requests to the running job: stop (drain, or with checkpoints stop
    /// at a savepoint), take a savepoint.
    pub fn controls(&self) -> Arc<Controls> {
        self.controls.clone()
    }

    /// The steps whose function can be swapped while it runs.
    pub fn swap_targets(&self) -> Vec<Arc<SwapTarget>> {
        self.swap_targets.clone()
    }

    /// Each step's label and live counters: the source first, then every
    /// step, then the sink.
    pub fn metrics(&self) -> Vec<(String, Arc<StepMetrics>)> {
        self.metrics.clone()
    }

    /// Runs to the end of the input, or until stopped.
    pub fn run(self) -> Result<Summary, JobError> {
        let start = Instant::now();
        let (report, result) = match self.plan {
            Some(plan) => exec::run(plan, self.controls),
            None => (RunReport::default(), Ok(())),
        };
        let steps = self
            .metrics
            .iter()
            .map(|(label, m)| {
                let calls = self.swap_targets.iter().find(|t| &t.label == label).map(|t| &t.switch.stats);
                StepSummary {
                    label: label.clone(),
                    records_in: StepMetrics::get(&m.records_in),
                    records_out: StepMetrics::get(&m.records_out),
                    dead_lettered: StepMetrics::get(&m.dead_lettered),
                    failed_calls: StepMetrics::get(&m.failed_calls),
                    recycles: calls.map_or(0, |c| c.recycles.load(std::sync::atomic::Ordering::Relaxed)),
                    peak_memory: calls.map_or(0, |c| c.peak_memory.load(std::sync::atomic::Ordering::Relaxed)),
                }
            })
            .collect();
        let summary = Summary {
            pipeline: self.name,
            elapsed: start.elapsed(),
            steps,
            checkpoints: report,
            resumed_from: self.resumed_from,
            already_finished: self.already_finished,
        };
        match result {
            Ok(()) => Ok(summary),
            Err(TaskError::Operator(e)) => Err(JobError::Failed(e.to_string())),
            Err(e) => Err(JobError::Failed(e.to_string())),
        }
    }
}
