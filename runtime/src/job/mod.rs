//! A pipeline run: from a validated manifest to a running plan and a summary.
//!
//! [`Job::build`] does everything that can fail before anything runs: it
//! finds and compiles every function, opens the source, starts one instance
//! per subtask (calling `init` with the step's parameters), and only then
//! creates outputs. If any of that fails, nothing has been read or written.
//! [`Job::run`] then runs the plan to the end of the input (or until stopped).

mod catalog;
mod planner;

pub use catalog::{UdfCatalog, UdfDirs};

use crate::exec::{self, Plan, TaskError};
use crate::manifest::Manifest;
use crate::operator::StepMetrics;
use crate::wasm::WasmHost;
use std::fmt;
use std::sync::atomic::AtomicBool;
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
    /// The pipeline failed while running.
    Failed(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Udf { step, message } => write!(f, "{step}: {message}"),
            JobError::Source(m) => write!(f, "source: {m}"),
            JobError::Output(m) => write!(f, "output: {m}"),
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
    plan: Plan,
    metrics: Vec<(String, Arc<StepMetrics>)>,
    stop: Arc<AtomicBool>,
}

impl Job {
    /// Builds `manifest`, taking functions from `catalog` and running them on `host`.
    pub fn build(manifest: &Manifest, host: &WasmHost, catalog: &dyn UdfCatalog) -> Result<Job, JobError> {
        let (plan, metrics) = planner::plan(manifest, host, catalog)?;
        Ok(Job { name: manifest.name.clone(), plan, metrics, stop: Arc::new(AtomicBool::new(false)) })
    }

    /// Setting this flag makes the sources stop; the job then drains and ends.
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Runs to the end of the input, or until stopped.
    pub fn run(self) -> Result<Summary, JobError> {
        let start = Instant::now();
        let result = exec::run(self.plan, self.stop);
        let steps = self
            .metrics
            .iter()
            .map(|(label, m)| StepSummary {
                label: label.clone(),
                records_in: StepMetrics::get(&m.records_in),
                records_out: StepMetrics::get(&m.records_out),
                dead_lettered: StepMetrics::get(&m.dead_lettered),
                failed_calls: StepMetrics::get(&m.failed_calls),
            })
            .collect();
        let summary = Summary { pipeline: self.name, elapsed: start.elapsed(), steps };
        match result {
            Ok(()) => Ok(summary),
            Err(TaskError::Operator(e)) => Err(JobError::Failed(e.to_string())),
            Err(e) => Err(JobError::Failed(e.to_string())),
        }
    }
}
