//! Pipelines under `weir serve`: the manifest rules of the server, each
//! pipeline's directory (`pipelines/ID/`: ingest journal, checkpoints,
//! state, output, dead letters), its run thread, status, stop / resume /
//! delete / savepoint, function swaps, ingest and recent output.

use super::db::{Db, PipelineRow};
mod ingest;
mod long_running;
mod manifest;
mod output;
mod retention;
pub use retention::{Retention, DEAD_LETTER_FILES};
mod state_quota;
mod watch;

use super::redact::{checkpoint_name, redact};
use super::{lock, tenant, Caller, ControlError, Platform, Tenant};
use crate::connector::journal::Journal;
use crate::connector::now_ms;
use crate::exec::Controls;
use crate::job::{Job, JobError, SwapTarget};
use crate::manifest::Bounds;
use crate::operator::StepMetrics;
use manifest::{apply_quotas, serve_manifest};
use serde::{Deserialize, Serialize};
use state_quota::StateQuota;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use watch::watch;

/// How long a swap may take to reach its barrier and finish probation.
const SWAP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a savepoint or stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// A swap request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapRequest {
    /// `name@version`.
    pub udf: String,
    /// How long the new version is watched, ms (default 2000).
    pub probation_ms: Option<u64>,
    /// Failed calls tolerated during probation (default 0).
    pub max_failures: Option<u64>,
}

/// What a swap did.
#[derive(Debug, Clone, Serialize)]
pub struct SwapView {
    /// The step's index.
    pub step: usize,
    /// Version before.
    pub from: String,
    /// Version asked for.
    pub to: String,
    /// `swapped` or `rolled_back`.
    pub outcome: String,
    /// The checkpoint barrier it happened at.
    pub barrier: Option<u64>,
    /// Why it was rolled back.
    pub reason: Option<String>,
    /// From the request to the outcome, ms.
    pub took_ms: u64,
    /// When it finished, ms since the epoch.
    pub at_ms: i64,
}

/// A step's live counters.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Index in `steps` (`None` for the source and the sink).
    pub index: Option<usize>,
    /// Its label.
    pub label: String,
    /// The function it runs now.
    pub udf: Option<String>,
    /// Records in.
    pub records_in: u64,
    /// Records out.
    pub records_out: u64,
    /// Records dead-lettered.
    pub dead_lettered: u64,
    /// Failed function calls.
    pub failed_calls: u64,
    /// Late records.
    pub late: u64,
    /// Its watermark (smallest over subtasks), ms.
    pub watermark: Option<i64>,
    /// Function calls.
    pub calls: u64,
    /// Wall time in calls, ns.
    pub call_wall_ns: u64,
    /// CPU time in calls, ns.
    pub call_cpu_ns: u64,
    /// Calls per latency bucket (`LATENCY_BUCKETS`, then +Inf).
    #[serde(skip)]
    pub call_buckets: Vec<u64>,
    /// Instances replaced for their memory size.
    pub recycles: u64,
    /// The largest linear memory one instance had after a call, bytes.
    pub peak_memory: u64,
}

/// Checkpoint progress.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckpointView {
    /// Completed by this run.
    pub completed: u64,
    /// Failed in this run.
    pub failed: u64,
    /// The newest complete one.
    pub latest: Option<String>,
    /// Its id.
    pub latest_id: Option<u64>,
    /// How long it took, ms.
    pub last_duration_ms: Option<i64>,
    /// When it completed, ms since the epoch.
    pub last_completed_ms: Option<i64>,
}

/// A pipeline as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineView {
    /// Its id.
    pub id: String,
    /// The manifest's name.
    pub name: String,
    /// Owner (tenant name in `/metrics`, id otherwise).
    pub tenant: String,
    /// `starting`, `running`, `stopping`, `stopped`, `finished` or `failed`.
    pub status: String,
    /// What a server restart does: `running` or `stopped`.
    pub desired: String,
    /// The last error.
    pub error: Option<String>,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// The source, then every step, then the sink.
    pub steps: Vec<StepView>,
    /// The sink's watermark, ms.
    pub watermark: Option<i64>,
    /// Now minus the watermark, ms.
    pub watermark_lag_ms: Option<i64>,
    /// Checkpoints.
    pub checkpoints: CheckpointView,
    /// Swaps, oldest first.
    pub swaps: Vec<SwapView>,
    /// The checkpoint this run continued from.
    pub resumed_from: Option<String>,
    /// The manifest as submitted (only in `GET /v1/pipelines/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// A pipeline running in this process.
struct Running {
    controls: Arc<Controls>,
    metrics: Vec<(String, Arc<StepMetrics>)>,
    targets: Vec<Arc<SwapTarget>>,
    /// Index in `metrics` of `steps[0]`.
    first_step: usize,
    /// Function now run by each function step.
    current: Mutex<BTreeMap<usize, String>>,
    status: Mutex<(String, Option<String>)>,
    swaps: Mutex<Vec<SwapView>>,
    resumed_from: Option<String>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Running {
    fn status(&self) -> (String, Option<String>) {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
    fn is_active(&self) -> bool {
        matches!(self.status().0.as_str(), "starting" | "running" | "stopping")
    }
}

/// The pipelines of this server.
pub(super) struct Pipelines {
    root: PathBuf,
    bounds: Bounds,
    /// What each pipeline keeps of its output and dead letters.
    retention: Retention,
    running: Mutex<HashMap<String, Arc<Running>>>,
    journals: Mutex<HashMap<String, Arc<Journal>>>,
    /// One lock per pipeline (made at its first resume, stop or delete), see [`Pipelines::lifecycle`].
    lifecycles: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Pipelines {
    pub(super) fn new(root: PathBuf, bounds: Bounds, retention: Retention) -> Pipelines {
        Pipelines {
            root,
            bounds,
            retention,
            running: Mutex::new(HashMap::new()),
            journals: Mutex::new(HashMap::new()),
            lifecycles: Mutex::new(HashMap::new()),
        }
    }

    /// The lock that serialises resume, stop and delete of pipeline `id`.
    /// Each looks at whether the pipeline runs and then changes that: two at
    /// once interleaved (two resumes both started a job, the second failing
    /// on the first's checkpoint lock with a 400 that blamed "another weir
    /// process"; a delete during a resume left a job running for a
    /// pipeline that no longer existed). Taken only for a pipeline that
    /// exists, so unknown ids make no entries.
    fn lifecycle(&self, id: &str) -> Arc<Mutex<()>> {
        lock(&self.lifecycles).entry(id.to_string()).or_default().clone()
    }

    /// `text` without the server's paths (see [`super::redact`]).
    fn redact(&self, text: &str) -> String {
        redact(text, self.root.parent().unwrap_or(&self.root))
    }

    pub(super) fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Starts every pipeline that should run (at server start).
    pub(super) fn resume_all(&self, p: &Platform) -> Result<(), ControlError> {
        let tenants: HashMap<String, Tenant> =
            p.db.tenants()?
                .into_iter()
                .map(|t| (t.id.clone(), Tenant { id: t.id, name: t.name, quotas: t.quotas }))
                .collect();
        for row in p.db.pipelines(None)? {
            if row.desired != "running" {
                continue;
            }
            let Some(t) = tenants.get(&row.tenant) else { continue };
            match self.start(p, t, &row) {
                Ok(()) => tracing::info!("pipeline {} ({}) resumed", row.id, row.name),
                Err(e) => {
                    tracing::warn!("pipeline {} ({}) cannot resume: {e}", row.id, row.name);
                    p.db.set_pipeline_state(&row.id, "running", "failed", Some(&e.message))?;
                }
            }
        }
        Ok(())
    }

    /// Builds and starts `row` (continuing from its newest checkpoint).
    fn start(&self, p: &Platform, t: &Tenant, row: &PipelineRow) -> Result<(), ControlError> {
        let dir = self.dir(&row.id);
        let mut m = serve_manifest(&row.manifest, &dir, &row.steps, &self.bounds, &self.retention)?;
        apply_quotas(&mut m, t)?;
        let job = Job::build(&m, &p.host, &p.catalog(&t.id), None).map_err(|e| match e {
            JobError::Failed(m) => ControlError::internal(m),
            other => ControlError::bad_request("cannot_start", other.to_string()),
        })?;
        let current: BTreeMap<usize, String> = m.udf_steps().map(|(s, u)| (s.index, u.udf.to_string())).collect();
        let running = Arc::new(Running {
            controls: job.controls(),
            metrics: job.metrics(),
            targets: job.swap_targets(),
            first_step: 1 + usize::from(m.timestamp_udf().is_some()),
            current: Mutex::new(current),
            status: Mutex::new(("running".into(), None)),
            swaps: Mutex::new(Vec::new()),
            resumed_from: job.resumed_from().map(|d| checkpoint_name(&d.display().to_string())),
            thread: Mutex::new(None),
        });
        p.db.set_pipeline_state(&row.id, "running", "running", None)?;
        let (id, db, r, retention) = (row.id.clone(), p.db.clone(), running.clone(), self.retention);
        let (root, tenant, limit) = (self.root.clone(), t.id.clone(), super::mib_bytes(t.quotas.max_state_mib));
        let quota = move |db: &Db| StateQuota {
            pipelines: db.pipelines(Some(&tenant)).unwrap_or_default().iter().map(|p| root.join(&p.id)).collect(),
            limit,
        };
        let thread = std::thread::Builder::new()
            .name(format!("weir-pipeline-{}", row.id))
            .spawn(move || watch(&id, &dir, retention, job, &r, &db, &quota))
            .map_err(|e| ControlError::internal(format!("cannot start a thread: {e}")))?;
        *lock(&running.thread) = Some(thread);
        lock(&self.running).insert(row.id.clone(), running);
        Ok(())
    }

    fn row(&self, db: &Db, t: &Tenant, id: &str) -> Result<PipelineRow, ControlError> {
        db.pipelines(Some(&t.id))?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| ControlError::not_found(format!("no pipeline {id}")))
    }

    fn active(&self, id: &str) -> Option<Arc<Running>> {
        lock(&self.running).get(id).filter(|r| r.is_active()).cloned()
    }

    /// The pipeline's status and error: its running entry's if it has one,
    /// else the stored ones.
    fn current_status(&self, row: &PipelineRow) -> (String, Option<String>) {
        match lock(&self.running).get(&row.id) {
            Some(r) => r.status(),
            None => (row.status.clone(), row.error.clone()),
        }
    }

    pub(super) fn view(&self, row: &PipelineRow, db: &Db) -> PipelineView {
        let running = lock(&self.running).get(&row.id).cloned();
        let mut v = PipelineView {
            id: row.id.clone(),
            name: row.name.clone(),
            tenant: row.tenant.clone(),
            status: row.status.clone(),
            desired: row.desired.clone(),
            error: row.error.as_deref().map(|e| self.redact(e)),
            created_ms: row.created_ms,
            steps: Vec::new(),
            watermark: None,
            watermark_lag_ms: None,
            checkpoints: CheckpointView::default(),
            swaps: Vec::new(),
            resumed_from: None,
            manifest: None,
        };
        if let Ok(list) = db.checkpoints(&row.id, 1) {
            if let Some((id, _, path, took, at)) = list.into_iter().next() {
                v.checkpoints = CheckpointView {
                    latest: Some(checkpoint_name(&path)),
                    latest_id: Some(id),
                    last_duration_ms: Some(took),
                    last_completed_ms: Some(at),
                    ..Default::default()
                };
            }
        }
        let Some(r) = running else { return v };
        (v.status, v.error) = r.status();
        v.error = v.error.map(|e| self.redact(&e));
        v.resumed_from = r.resumed_from.clone();
        let progress = r.controls.progress();
        (v.checkpoints.completed, v.checkpoints.failed) = (progress.completed, progress.failed);
        v.swaps = lock(&r.swaps).clone();
        let current = lock(&r.current).clone();
        let stats: HashMap<usize, &Arc<SwapTarget>> = r.targets.iter().map(|t| (t.index, t)).collect();
        let last = r.metrics.len().saturating_sub(1);
        for (i, (label, m)) in r.metrics.iter().enumerate() {
            let index = (i >= r.first_step && i < last).then(|| i - r.first_step);
            let mut s = StepView {
                index,
                label: self.redact(label),
                udf: index.and_then(|x| current.get(&x).cloned()),
                records_in: StepMetrics::get(&m.records_in),
                records_out: StepMetrics::get(&m.records_out),
                dead_lettered: StepMetrics::get(&m.dead_lettered),
                failed_calls: StepMetrics::get(&m.failed_calls),
                late: StepMetrics::get(&m.late),
                watermark: m.watermark(),
                calls: 0,
                call_wall_ns: 0,
                call_cpu_ns: 0,
                call_buckets: Vec::new(),
                recycles: 0,
                peak_memory: 0,
            };
            if let Some(t) = index.and_then(|x| stats.get(&x)) {
                let c = &t.switch.stats;
                s.calls = c.calls.load(Ordering::Relaxed);
                s.call_wall_ns = c.wall_ns.load(Ordering::Relaxed);
                s.call_cpu_ns = c.cpu_ns.load(Ordering::Relaxed);
                s.call_buckets = c.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
                s.recycles = c.recycles.load(Ordering::Relaxed);
                s.peak_memory = c.peak_memory.load(Ordering::Relaxed);
            }
            v.steps.push(s);
        }
        v.watermark = v.steps.last().and_then(|s| s.watermark).filter(|&w| w > i64::MIN && w < i64::MAX);
        v.watermark_lag_ms = v.watermark.map(|w| now_ms() - w);
        v
    }

    /// Names of the caller's pipelines that use `udf`.
    pub(super) fn using(&self, db: &Db, tenant: &str, udf: &str) -> Result<Vec<String>, ControlError> {
        let mut out = Vec::new();
        for row in db.pipelines(Some(tenant))? {
            // A running job's steps as they are now (a swap in probation
            // uses both versions), and in any case the stored manifest's
            // steps and event-time function (issue 18 item 9: the running
            // check used to miss the event-time function, so deleting it
            // succeeded and the next resume failed). Whatever today's
            // bounds: a pipeline beyond a tightened bound keeps its functions.
            let running = lock(&self.running).get(&row.id).is_some_and(|r| lock(&r.current).values().any(|u| u == udf));
            let dir = self.dir(&row.id);
            let stored = serve_manifest(&row.manifest, &dir, &row.steps, &Bounds::none(), &self.retention)
                .map(|m| {
                    m.udf_steps().any(|(_, u)| u.udf.to_string() == udf)
                        || m.timestamp_udf().is_some_and(|u| u.udf.to_string() == udf)
                })
                .unwrap_or(false);
            let in_use = running || stored;
            if in_use {
                out.push(row.id);
            }
        }
        Ok(out)
    }

    pub(super) fn shutdown(&self, db: &Db) {
        let all: Vec<(String, Arc<Running>)> =
            lock(&self.running).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (_, r) in &all {
            if r.is_active() {
                r.controls.stop.store(true, Ordering::SeqCst);
            }
        }
        for (id, r) in all {
            if let Some(t) = lock(&r.thread).take() {
                let _ = t.join();
            }
            // Still `running` as desired: the next start resumes it.
            let (status, error) = r.status();
            let _ = db.set_pipeline_state(&id, "running", &status, error.as_deref());
        }
    }
}

impl Platform {
    /// Creates and starts a pipeline from a manifest (YAML or JSON).
    pub fn create_pipeline(&self, caller: &Caller, text: &str) -> Result<PipelineView, ControlError> {
        let t = tenant(caller)?;
        let existing = self.db.pipelines(Some(&t.id))?;
        if existing.len() as u64 >= u64::from(t.quotas.max_pipelines) {
            return Err(ControlError::quota(format!(
                "this tenant has {} pipeline(s), its limit is {}; delete one first",
                existing.len(),
                t.quotas.max_pipelines
            )));
        }
        let id = format!("p-{}", super::random_hex(6)?);
        let dir = self.pipelines.dir(&id);
        // Everything is checked before anything is written.
        let mut m = serve_manifest(text, &dir, "{}", &self.pipelines.bounds, &self.pipelines.retention)?;
        apply_quotas(&mut m, t)?;
        let catalog = self.catalog(&t.id);
        for (label, u) in
            m.udf_steps().map(|(s, u)| (s.label(), u)).chain(m.timestamp_udf().map(|u| ("event_time".to_string(), u)))
        {
            use crate::job::UdfCatalog;
            let bytes =
                catalog.fetch(&u.udf).map_err(|e| ControlError::bad_request("unknown_udf", format!("{label}: {e}")))?;
            let loaded = self
                .host
                .load(&u.udf, &bytes)
                .map_err(|e| ControlError::bad_request("invalid_component", format!("{label}: {e}")))?;
            loaded
                .check_kind(u.function)
                .map_err(|e| ControlError::bad_request("wrong_world", format!("{label}: {e}")))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| ControlError::internal(format!("cannot create {}: {e}", dir.display())))?;
        let row = PipelineRow {
            id: id.clone(),
            tenant: t.id.clone(),
            name: m.name.clone(),
            manifest: text.to_string(),
            steps: "{}".into(),
            desired: "running".into(),
            status: "starting".into(),
            error: None,
            created_ms: now_ms(),
        };
        // Counted again in the insert itself: concurrent creates all passed
        // the check above while they compiled (issue 18 item 6).
        if !self.db.insert_pipeline_within(&row, t.quotas.max_pipelines)? {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ControlError::quota(format!(
                "this tenant has {} pipeline(s) already, its limit; delete one first",
                t.quotas.max_pipelines
            )));
        }
        if let Err(e) = self.pipelines.start(self, t, &row) {
            let _ = self.db.delete_pipeline(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.pipeline(caller, &id)
    }

    /// The caller's pipelines.
    pub fn pipelines(&self, caller: &Caller) -> Result<Vec<PipelineView>, ControlError> {
        let t = tenant(caller)?;
        Ok(self.db.pipelines(Some(&t.id))?.iter().map(|r| self.pipelines.view(r, &self.db)).collect())
    }

    /// One of the caller's pipelines, with its manifest.
    pub fn pipeline(&self, caller: &Caller, id: &str) -> Result<PipelineView, ControlError> {
        let t = tenant(caller)?;
        let row = self.pipelines.row(&self.db, t, id)?;
        let mut v = self.pipelines.view(&row, &self.db);
        v.manifest = Some(row.manifest);
        Ok(v)
    }

    /// Starts a stopped (or failed) pipeline again from its newest checkpoint or savepoint.
    pub fn resume_pipeline(&self, caller: &Caller, id: &str) -> Result<PipelineView, ControlError> {
        let t = tenant(caller)?;
        self.pipelines.row(&self.db, t, id)?;
        let serial = self.pipelines.lifecycle(id);
        let _one_at_a_time = lock(&serial);
        let row = self.pipelines.row(&self.db, t, id)?;
        if self.pipelines.active(id).is_some() {
            return Err(ControlError::conflict(format!("pipeline {id} is running already")));
        }
        self.pipelines.start(self, t, &row)?;
        self.pipeline(caller, id)
    }

    /// Stops a pipeline without a savepoint and removes it with its state and output.
    pub fn delete_pipeline(&self, caller: &Caller, id: &str) -> Result<(), ControlError> {
        let t = tenant(caller)?;
        self.pipelines.row(&self.db, t, id)?;
        let serial = self.pipelines.lifecycle(id);
        let _one_at_a_time = lock(&serial);
        self.pipelines.row(&self.db, t, id)?;
        if let Some(r) = lock(&self.pipelines.running).remove(id) {
            r.controls.abort.store(true, Ordering::SeqCst);
            if let Some(t) = lock(&r.thread).take() {
                let _ = t.join();
            }
        }
        lock(&self.pipelines.journals).remove(id);
        self.db.delete_pipeline(id)?;
        // Whoever waits on this lock finds no pipeline when it gets it.
        lock(&self.pipelines.lifecycles).remove(id);
        let dir = self.pipelines.dir(id);
        std::fs::remove_dir_all(&dir)
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .map_err(|e| ControlError::internal(format!("cannot remove {}: {e}", dir.display())))
    }
}
