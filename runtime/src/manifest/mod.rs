//! Pipeline manifests: YAML (or JSON) in, a validated [`Manifest`] out.
//!
//! Two stages, as in ripgrep's flags: [`raw`] is exactly what the user wrote
//! (serde, unknown fields refused), [`Manifest`] is what the executor runs,
//! built only after every field checked out. Every error names the place in
//! the document (`steps[1].map.udf: ...`) and what would be accepted there.
//! Relative paths are resolved against the manifest's directory.

mod bounds;
mod raw;
mod units;

pub use bounds::{windows_per_record, Bounds};
pub use units::{parse_duration, parse_size};

use crate::types::{UdfRef, DEFAULT_MAX_PARALLELISM};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use weir_json::Pointer;

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Pipeline name: 1–64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
    pub name: String,
    /// Parallel subtasks of every step after the source.
    pub parallelism: u32,
    /// Number of key groups (upper bound for rescaling).
    pub max_parallelism: u32,
    /// Records per batch read from a source.
    pub batch_size: usize,
    /// Where records come from.
    pub source: SourceSpec,
    /// What happens to them, in order.
    pub steps: Vec<StepSpec>,
    /// Where results go.
    pub sink: SinkSpec,
    /// Where records go that could not be processed, with the reason.
    pub dead_letter: OutputSpec,
    /// Where records go that arrived after their windows closed (`None`:
    /// to the dead-letter output, with kind `late`).
    pub late: Option<OutputSpec>,
    /// Checkpoints (`None`: none; a failure means starting over).
    pub checkpoint: Option<CheckpointSpec>,
    /// Where keyed state lives.
    pub state: StateSpec,
}

/// Periodic checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointSpec {
    /// Where checkpoints and savepoints go; a run resumes from the newest.
    pub dir: PathBuf,
    /// Between the starts of two checkpoints.
    pub interval: Duration,
    /// A checkpoint not complete after this long fails.
    pub timeout: Duration,
}

/// Default time between checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
/// Default time after which a checkpoint fails.
pub const DEFAULT_CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(600);

/// Keyed state storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateBackendKind {
    /// In memory: fastest; snapshots copy everything.
    Memory,
    /// RocksDB on local disk: state larger than memory, incremental snapshots.
    RocksDb,
}

/// Where keyed state lives.
#[derive(Debug, Clone)]
pub struct StateSpec {
    /// The backend (default: RocksDB when checkpointed, memory otherwise).
    pub backend: StateBackendKind,
    /// RocksDB's working directory (default: `state/` in the checkpoint
    /// directory, or the system's temporary directory).
    pub dir: Option<PathBuf>,
}

/// Where a pipeline reads.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The connector.
    pub kind: SourceKind,
    /// How lines become records.
    pub format: Format,
    /// Where a record's event time comes from, and its watermarks (`None`:
    /// records carry their ingestion time and there are no watermarks).
    pub event_time: Option<EventTimeSpec>,
}

/// Source connectors.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// A text file, one record per line.
    File {
        /// The file.
        path: PathBuf,
        /// How many parallel readers split the file (by byte ranges at line starts).
        splits: Splits,
    },
    /// Standard input, one record per line.
    Stdin,
    /// A TCP server to connect to, one record per line (like `nc -lk PORT`).
    Socket {
        /// `host:port`.
        address: String,
    },
    /// Records posted to `weir serve` (`POST /v1/pipelines/{id}/records`),
    /// read from the pipeline's ingest journal, where every accepted post
    /// was written durably before it was acknowledged.
    Http {
        /// The journal (set by `weir serve`; `None` elsewhere).
        journal: Option<PathBuf>,
    },
    /// A Kafka topic: one reader per partition, offsets in checkpoints.
    Kafka(KafkaSourceSpec),
    /// The deterministic bid generator of the bench (`gen_bids.py`).
    Bids {
        /// SplitMix64 seed.
        seed: u64,
        /// Number of events; `None` runs until stopped.
        count: Option<u64>,
        /// Events per second; `None` as fast as possible.
        rate: Option<u64>,
    },
}

/// Where a pipeline reads a Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSourceSpec {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// The consumer group offsets are committed to (default `weir-PIPELINE`).
    pub group: Option<String>,
    /// Where a pipeline without a checkpoint starts.
    pub start: StartAt,
    /// Stop at the end of every partition (as the first fetch that reaches
    /// it reports), instead of following the topic.
    pub bounded: bool,
    /// Extra librdkafka settings (security, timeouts), passed as they are.
    pub properties: Vec<(String, String)>,
    /// Only these partitions (`None`: all): a worker's task reads one.
    pub partitions: Option<Vec<i32>>,
    /// The topic is a pipeline's repartition topic: records with a
    /// `weir-mark` header carry their producers' progress (the watermark),
    /// and a bounded read ends when every producer ended, not at the
    /// partition's end.
    pub marked: bool,
}

/// Where a Kafka source without a checkpoint starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record each partition still has.
    Earliest,
    /// Only records produced after the pipeline started.
    Latest,
}

/// How many readers share a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splits {
    /// One reader per subtask for stateless pipelines; one reader otherwise.
    Auto,
    /// Exactly this many.
    Count(u32),
}

/// How input lines become record values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Each line as it is.
    Lines,
    /// Each line must be one JSON value (invalid lines are dead-lettered).
    Json,
    /// Each line is a CSV row, turned into a JSON object.
    Csv(CsvSpec),
}

/// CSV options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvSpec {
    /// Whether the first line names the columns.
    pub header: bool,
    /// Column names (required without a header; override the header's).
    pub columns: Option<Vec<String>>,
    /// Field separator.
    pub delimiter: u8,
}

/// Event time and watermarks of a source.
#[derive(Debug, Clone)]
pub struct EventTimeSpec {
    /// Where each record's timestamp comes from.
    pub assign: TimestampSource,
    /// How far watermarks trail the largest timestamp seen.
    pub max_out_of_orderness: Duration,
    /// After how long without records a source split stops holding the watermark back.
    pub idle_timeout: Option<Duration>,
}

/// Where event time comes from.
#[derive(Debug, Clone)]
pub enum TimestampSource {
    /// A JSON field: integer milliseconds since the epoch.
    Field(Pointer),
    /// A map function that sets each record's timestamp.
    Udf(UdfStepSpec),
}

/// One step of the pipeline.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// Position in `steps`.
    pub index: usize,
    /// Optional name given in the manifest.
    pub name: Option<String>,
    /// What the step does.
    pub kind: StepKind,
}

impl StepSpec {
    /// How messages and logs refer to the step: `steps[0] map currency@1`.
    pub fn label(&self) -> String {
        let what = match &self.kind {
            StepKind::Udf(u) | StepKind::Process(u) => format!("{} {}", u.function.step_name(), u.udf),
            StepKind::KeyBy(KeyBySpec::Field(p)) => format!("key_by {p}"),
            StepKind::KeyBy(KeyBySpec::Udf(u)) => format!("key_by {}", u.udf),
            StepKind::KeyBy(KeyBySpec::RecordKey) => "key_by record key".to_string(),
            StepKind::Window(w) => format!("window {} {}", w.kind.name(), w.aggregate.name()),
        };
        match &self.name {
            Some(n) => format!("steps[{}] ({n}) {what}", self.index),
            None => format!("steps[{}] {what}", self.index),
        }
    }
}

/// Step kinds.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// `map`, `filter` or `flat_map` through a WebAssembly function.
    Udf(UdfStepSpec),
    /// Partition by key.
    KeyBy(KeyBySpec),
    /// Windows and an aggregate on a keyed stream.
    Window(WindowStepSpec),
    /// A keyed function with state and timers.
    Process(UdfStepSpec),
}

/// A `window` step.
#[derive(Debug, Clone)]
pub struct WindowStepSpec {
    /// Which windows.
    pub kind: WindowKind,
    /// Event or processing time (time windows only).
    pub time: TimeMode,
    /// How long after firing a window still accepts records (event time).
    pub allowed_lateness: Duration,
    /// What is computed per key and window.
    pub aggregate: AggregateSpec,
}

/// Window kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping.
    Tumbling {
        /// Length.
        size: Duration,
        /// Shift from the epoch.
        offset: Duration,
    },
    /// Fixed, starting every `slide`.
    Sliding {
        /// Length.
        size: Duration,
        /// Distance between starts.
        slide: Duration,
        /// Shift from the epoch.
        offset: Duration,
    },
    /// Records closer than `gap` together.
    Session {
        /// Inactivity gap.
        gap: Duration,
    },
    /// Every `slide` records, the last `size`.
    Count {
        /// Records per window.
        size: u64,
        /// Records between firings.
        slide: u64,
    },
    /// Everything so far, every `every` records.
    Global {
        /// Records between firings.
        every: u64,
    },
}

impl WindowKind {
    /// The manifest's name.
    pub fn name(&self) -> &'static str {
        match self {
            WindowKind::Tumbling { .. } => "tumbling",
            WindowKind::Sliding { .. } => "sliding",
            WindowKind::Session { .. } => "session",
            WindowKind::Count { .. } => "count",
            WindowKind::Global { .. } => "global",
        }
    }

    /// Whether windows are measured in time (not records).
    pub fn is_time(&self) -> bool {
        matches!(self, WindowKind::Tumbling { .. } | WindowKind::Sliding { .. } | WindowKind::Session { .. })
    }
}

/// Which clock time windows follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeMode {
    /// Record timestamps and watermarks.
    Event,
    /// The wall clock where the window runs.
    Processing,
}

/// What a window computes.
#[derive(Debug, Clone)]
pub enum AggregateSpec {
    /// A builtin over a JSON field.
    Builtin {
        /// Which.
        kind: BuiltinKind,
        /// The field (not needed by `count`).
        field: Option<Pointer>,
        /// How results are written.
        output: ResultFormat,
    },
    /// A WebAssembly aggregator.
    Udf(UdfStepSpec),
}

impl AggregateSpec {
    /// How messages name it.
    pub fn name(&self) -> String {
        match self {
            AggregateSpec::Builtin { kind, field: Some(f), .. } => format!("{}({f})", kind.name()),
            AggregateSpec::Builtin { kind, field: None, .. } => kind.name().to_string(),
            AggregateSpec::Udf(u) => u.udf.to_string(),
        }
    }
}

/// Builtin aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinKind {
    /// Number of records.
    Count,
    /// Sum of the field.
    Sum,
    /// Smallest value of the field.
    Min,
    /// Largest value of the field.
    Max,
    /// Mean of the field.
    Avg,
}

impl BuiltinKind {
    /// The name in manifests and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinKind::Count => "count",
            BuiltinKind::Sum => "sum",
            BuiltinKind::Min => "min",
            BuiltinKind::Max => "max",
            BuiltinKind::Avg => "avg",
        }
    }
}

/// How builtin results become output values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// `{"key":..,"window_start":..,"window_end":..,"<aggregate>":..}`.
    Json,
    /// `key,window_end,value` (`key,value` for count and global windows).
    Csv,
}

/// Which exported interface a UDF step calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// One output per input (`weir:udf/mapper`).
    Map,
    /// Keep or drop (`weir:udf/filter`).
    Filter,
    /// Any number of outputs per input (`weir:udf/flat-mapper`).
    FlatMap,
    /// Window aggregation (`weir:udf/aggregator`).
    Aggregate,
    /// Keyed processing with state and timers (`weir:udf/processor`).
    Process,
}

impl FunctionKind {
    /// The manifest's name of the step.
    pub fn step_name(self) -> &'static str {
        match self {
            FunctionKind::Map => "map",
            FunctionKind::Filter => "filter",
            FunctionKind::FlatMap => "flat_map",
            FunctionKind::Aggregate => "aggregate",
            FunctionKind::Process => "process",
        }
    }
}

/// A step that calls a WebAssembly function.
#[derive(Debug, Clone)]
pub struct UdfStepSpec {
    /// The interface called.
    pub function: FunctionKind,
    /// The function, by name and version.
    pub udf: UdfRef,
    /// Passed to the function's `init`.
    pub params: Vec<(String, String)>,
    /// What a failing call does.
    pub on_error: ErrorPolicy,
    /// Resource limits of each instance.
    pub limits: Limits,
}

/// What happens when a function traps, times out, runs out of memory or
/// returns an error for a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Find the records that cause it (by retrying halves of the batch on a
    /// fresh instance) and dead-letter only those; the pipeline goes on.
    DeadLetter,
    /// Stop the pipeline with the error.
    Fail,
}

/// Per-instance resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap per instance, bytes.
    pub memory: u64,
    /// Wall-clock deadline of one call.
    pub call_timeout: Duration,
    /// An instance whose linear memory passed this many bytes after a call
    /// is replaced by a fresh one before the next call (`None`: three
    /// quarters of `memory`). Guests whose memory only grows (Python's and
    /// JavaScript's runtimes keep some of what every call allocates) then
    /// never reach the cap, whose trap would cost a retry.
    pub recycle_above: Option<u64>,
    /// Bytes of keyed state one `process` call may write (values, map
    /// entries, list items): a call past it fails with `state_too_large`.
    pub state_per_call: u64,
    /// The most bytes one key's named state may hold (a value, a whole map
    /// or list): a write past it fails the call with `state_too_large`.
    pub state_value: u64,
    /// Records a `flat_map` call may return per input record, on average
    /// over its batch: a call past it fails with `too_many_outputs`.
    pub outputs_per_record: u64,
    /// The largest record (key, value and headers) a function may return:
    /// a larger one fails the call with `output_too_large`.
    pub record_size: u64,
}

impl Limits {
    /// The memory size above which an instance is recycled.
    pub fn recycle_threshold(&self) -> u64 {
        self.recycle_above.unwrap_or(self.memory / 4 * 3)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 128 << 20,
            call_timeout: Duration::from_secs(1),
            recycle_above: None,
            state_per_call: 64 << 20,
            state_value: 16 << 20,
            outputs_per_record: 10_000,
            record_size: 16 << 20,
        }
    }
}

/// How `key_by` finds the key.
#[derive(Debug, Clone)]
pub enum KeyBySpec {
    /// A field of the JSON value.
    Field(Pointer),
    /// The key the record already has (set by an earlier function).
    RecordKey,
    /// A map function that sets each record's key.
    Udf(UdfStepSpec),
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    /// One file written by every subtask.
    File {
        /// The file (created or truncated).
        path: PathBuf,
        /// Line format.
        format: OutputFormat,
    },
    /// A directory with one `part-N.txt` per subtask.
    Dir {
        /// The directory (created if missing).
        dir: PathBuf,
        /// Line format.
        format: OutputFormat,
    },
    /// Standard output.
    Stdout {
        /// Line format.
        format: OutputFormat,
    },
    /// A Kafka topic: each record's key, value, headers and timestamp.
    Kafka(KafkaSinkSpec),
}

/// Where a pipeline writes a Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSinkSpec {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The topic (it must exist).
    pub topic: String,
    /// The guarantee.
    pub delivery: Delivery,
    /// Extra librdkafka settings, passed as they are.
    pub properties: Vec<(String, String)>,
    /// Set when the topic is a pipeline's repartition topic (see [`Repartition`]).
    pub repartition: Option<Repartition>,
}

/// How a worker's source task writes the repartition topic: each record to
/// the partition that owns its key's key group (partition `j` of `R` owns
/// the key groups subtask `j` of `R` would), and, at every checkpoint, its
/// progress (a `weir-mark` record) to every partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repartition {
    /// Which producer this is (the input partition it reads).
    pub producer: u32,
    /// How many producers write the topic (the input topic's partitions).
    pub producers: u32,
    /// The pipeline's number of key groups.
    pub max_parallelism: u32,
}

/// What a Kafka sink guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Records are produced as they come (idempotent producer) and flushed
    /// at each checkpoint: after a crash, what was produced since the last
    /// checkpoint is produced again.
    AtLeastOnce,
    /// Records are staged with the checkpoint and produced once it is
    /// complete, each with a `weir-id` header; a restart reads back the
    /// output to produce only what is missing. Readers see each record once.
    ExactlyOnce,
}

/// How a record becomes an output line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The value, then `\n`.
    Value,
    /// A JSON object with `key`, `timestamp` and `value`.
    Record,
}

/// Where a side output (dead letters) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// A file of JSON lines (created or truncated).
    File(PathBuf),
    /// A file of JSON lines appended to and rotated past `max_bytes`
    /// (`file: { path, rotate_mib, keep }`), `keep` older files kept.
    Rotating {
        /// The current file.
        path: PathBuf,
        /// Its size at which it is rotated.
        max_bytes: u64,
        /// Older files kept (`PATH.1` newest).
        keep: u32,
    },
    /// Standard output.
    Stdout,
    /// Standard error (the default for dead letters).
    Stderr,
}

/// A manifest that cannot run, and where in it the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// Where: `steps[1].map.udf`, or empty for the whole document.
    pub at: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

impl std::error::Error for ManifestError {}

impl ManifestError {
    pub(crate) fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        ManifestError { at: at.into(), message: message.into() }
    }
}

impl Manifest {
    /// Parses and validates a manifest; relative paths are taken relative to `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Manifest, ManifestError> {
        Manifest::parse_within(text, base_dir, &Bounds::default())
    }

    /// As [`Manifest::parse`], checked against `bounds` instead of the defaults.
    pub fn parse_within(text: &str, base_dir: &Path, bounds: &Bounds) -> Result<Manifest, ManifestError> {
        let m = raw::parse(text, base_dir)?;
        bounds.check(&m)?;
        Ok(m)
    }

    /// Reads, parses and validates the manifest file at `path` (default bounds).
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        Manifest::load_within(path, &Bounds::default())
    }

    /// As [`Manifest::load`], checked against `bounds`.
    pub fn load_within(path: &Path, bounds: &Bounds) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError::new("", format!("cannot read manifest {}: {e}", path.display())))?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Manifest::parse_within(&text, base, bounds)
    }

    /// Makes step `index` call `udf` instead (a swapped-in version).
    pub fn set_step_udf(&mut self, index: usize, udf: UdfRef) -> Result<(), String> {
        let step = self.steps.get_mut(index).ok_or_else(|| format!("there is no step {index}"))?;
        let spec = match &mut step.kind {
            StepKind::Udf(u) | StepKind::Process(u) | StepKind::KeyBy(KeyBySpec::Udf(u)) => u,
            StepKind::Window(WindowStepSpec { aggregate: AggregateSpec::Udf(u), .. }) => u,
            _ => return Err(format!("step {index} calls no function")),
        };
        spec.udf = udf;
        Ok(())
    }

    /// Every function of the pipeline (the source's event-time function
    /// first, then the steps'), to adjust their limits.
    pub fn udf_specs_mut(&mut self) -> Vec<&mut UdfStepSpec> {
        let mut out = Vec::new();
        if let Some(EventTimeSpec { assign: TimestampSource::Udf(u), .. }) = &mut self.source.event_time {
            out.push(u);
        }
        for s in &mut self.steps {
            match &mut s.kind {
                StepKind::Udf(u) | StepKind::KeyBy(KeyBySpec::Udf(u)) | StepKind::Process(u) => out.push(u),
                StepKind::Window(WindowStepSpec { aggregate: AggregateSpec::Udf(u), .. }) => out.push(u),
                _ => {}
            }
        }
        out
    }

    /// Every function a step calls, in pipeline order.
    pub fn udf_steps(&self) -> impl Iterator<Item = (&StepSpec, &UdfStepSpec)> {
        self.steps.iter().filter_map(|s| match &s.kind {
            StepKind::Udf(u) | StepKind::KeyBy(KeyBySpec::Udf(u)) | StepKind::Process(u) => Some((s, u)),
            StepKind::Window(WindowStepSpec { aggregate: AggregateSpec::Udf(u), .. }) => Some((s, u)),
            StepKind::KeyBy(KeyBySpec::Field(_) | KeyBySpec::RecordKey) | StepKind::Window(_) => None,
        })
    }

    /// The event-time function of the source, if any.
    pub fn timestamp_udf(&self) -> Option<&UdfStepSpec> {
        match &self.source.event_time {
            Some(EventTimeSpec { assign: TimestampSource::Udf(u), .. }) => Some(u),
            _ => None,
        }
    }

    /// Whether any step keeps state across records (then a file is read by
    /// one reader, so event time advances evenly).
    pub fn is_stateful(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.kind, StepKind::Window(_) | StepKind::Process(_)))
    }

    /// What each stateful step keeps, in words: a checkpoint is restored
    /// only into steps with the same signature (function versions may
    /// change; what the state means may not).
    pub fn state_signature(&self) -> Vec<(u32, String)> {
        self.steps
            .iter()
            .filter_map(|s| {
                let text = match &s.kind {
                    StepKind::Window(w) => {
                        let aggregate = match &w.aggregate {
                            AggregateSpec::Builtin { .. } => w.aggregate.name(),
                            AggregateSpec::Udf(u) => format!("aggregator {}", u.udf.name),
                        };
                        format!("window {:?} ({:?} time) {aggregate}", w.kind, w.time)
                    }
                    StepKind::Process(u) => format!("process {}", u.udf.name),
                    _ => return None,
                };
                Some((s.index as u32, text))
            })
            .collect()
    }
}

pub(crate) const DEFAULT_BATCH_SIZE: usize = 1024;
pub(crate) const MAX_PARALLELISM_LIMIT: u32 = 32_768;
pub(crate) const DEFAULT_MAX_PARALLELISM_VALUE: u32 = DEFAULT_MAX_PARALLELISM;

#[cfg(test)]
mod tests;
