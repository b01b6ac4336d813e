//! The manifest as written (serde), and its validation into [`Manifest`].

use super::units::{parse_duration, parse_size};
use super::*;
use serde::Deserialize;
use serde_norway::{Mapping, Value};
use window::{aggregate_spec, window};

mod kafka;
mod window;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    parallelism: Option<u32>,
    max_parallelism: Option<u32>,
    batch_size: Option<u32>,
    limits: Option<Value>,
    source: Mapping,
    #[serde(default)]
    steps: Vec<Value>,
    sink: Mapping,
    dead_letter: Option<Mapping>,
    late: Option<Mapping>,
    checkpoint: Option<Value>,
    state: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    dir: String,
    interval: Option<Scalar>,
    timeout: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    backend: Option<String>,
    dir: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<Scalar>,
    call_timeout: Option<Scalar>,
    recycle_above: Option<Scalar>,
    state_per_call: Option<Scalar>,
    state_value: Option<Scalar>,
    outputs_per_record: Option<u64>,
    record_size: Option<Scalar>,
}

/// A scalar written either as text or as a number (`64MiB` or `1048576`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Number(u64),
    Text(String),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Number(n) => n.to_string(),
            Scalar::Text(t) => t,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: String,
    format: Option<String>,
    splits: Option<Value>,
    csv: Option<RawCsv>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCsv {
    header: Option<bool>,
    columns: Option<Vec<String>>,
    delimiter: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStream {
    format: Option<String>,
    csv: Option<RawCsv>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSocket {
    host: Option<String>,
    port: u16,
    format: Option<String>,
    csv: Option<RawCsv>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBids {
    seed: Option<u64>,
    count: Option<u64>,
    rate: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEventTime {
    field: Option<String>,
    udf: Option<String>,
    #[serde(default)]
    params: Mapping,
    on_error: Option<String>,
    limits: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWatermark {
    max_out_of_orderness: Option<Scalar>,
    idle_timeout: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUdfStep {
    udf: String,
    #[serde(default)]
    params: Mapping,
    on_error: Option<String>,
    limits: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyBy {
    field: Option<String>,
    record_key: Option<bool>,
    udf: Option<String>,
    #[serde(default)]
    params: Mapping,
    on_error: Option<String>,
    limits: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileSink {
    path: Option<String>,
    dir: Option<String>,
    format: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStdout {
    format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutputFile {
    path: String,
    rotate_mib: Option<u64>,
    keep: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNothing {}

type Result<T> = std::result::Result<T, ManifestError>;

/// Deserializes `value` as `T`, prefixing errors with `at`.
fn typed<T: for<'de> Deserialize<'de>>(value: Value, at: &str) -> Result<T> {
    serde_norway::from_value(value).map_err(|e| ManifestError::new(at, e.to_string()))
}

/// Deserializes an optional section whose absence or `{}`/`null` means defaults.
fn typed_or_default<T: for<'de> Deserialize<'de> + Default>(value: Value, at: &str) -> Result<T> {
    match value {
        Value::Null => Ok(T::default()),
        v => typed(v, at),
    }
}

/// Splits `map` into the one key of `kinds` it must have and the rest.
/// A kind that [`one_kind`] admitted but no arm parses: the list of kinds
/// and the parser disagree. An error rather than a fallback arm, which used
/// to parse such a kind silently as bids, stdout, stderr or a window.
fn unlisted(at: &str, kind: &str) -> ManifestError {
    ManifestError::new(at, format!("`{kind}` is listed as a kind but this build cannot parse it"))
}

fn one_kind(map: &Mapping, kinds: &[&str], extra: &[&str], at: &str, what: &str) -> Result<(String, Value)> {
    let mut found = None;
    for (k, v) in map {
        let Some(k) = k.as_str() else {
            return Err(ManifestError::new(at, format!("keys must be strings, found {k:?}")));
        };
        if kinds.contains(&k) {
            if let Some((first, _)) = &found {
                return Err(ManifestError::new(
                    at,
                    format!("has both `{first}` and `{k}`: a {what} is exactly one of {}", kinds.join(", ")),
                ));
            }
            found = Some((k.to_string(), v.clone()));
        } else if !extra.contains(&k) {
            let mut known: Vec<&str> = kinds.to_vec();
            known.extend_from_slice(extra);
            return Err(ManifestError::new(
                at,
                format!("unknown {what} `{k}` (expected one of: {})", known.join(", ")),
            ));
        }
    }
    found.ok_or_else(|| ManifestError::new(at, format!("no {what} given: expected one of {}", kinds.join(", "))))
}

fn get<'a>(map: &'a Mapping, key: &str) -> Option<&'a Value> {
    map.get(Value::String(key.to_string()))
}

pub(super) fn parse(text: &str, base: &Path) -> Result<Manifest> {
    let raw: RawManifest =
        serde_norway::from_str(text).map_err(|e| ManifestError::new("", format!("invalid manifest: {e}")))?;

    let name = raw.name;
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
    if !name_ok {
        return Err(ManifestError::new(
            "name",
            format!("`{name}`: use 1-64 of a-z, 0-9, `-` and `_`, starting with a letter or digit"),
        ));
    }
    let max_parallelism = raw.max_parallelism.unwrap_or(DEFAULT_MAX_PARALLELISM_VALUE);
    if !(1..=MAX_PARALLELISM_LIMIT).contains(&max_parallelism) {
        return Err(ManifestError::new(
            "max_parallelism",
            format!("{max_parallelism} is out of range 1..={MAX_PARALLELISM_LIMIT}"),
        ));
    }
    let parallelism = raw.parallelism.unwrap_or(1);
    if parallelism == 0 || parallelism > max_parallelism {
        return Err(ManifestError::new(
            "parallelism",
            format!("{parallelism} is out of range 1..={max_parallelism} (max_parallelism)"),
        ));
    }
    let batch_size = raw.batch_size.map_or(DEFAULT_BATCH_SIZE, |b| b as usize);
    if !(1..=65_536).contains(&batch_size) {
        return Err(ManifestError::new("batch_size", format!("{batch_size} is out of range 1..=65536")));
    }
    let limits = match raw.limits {
        Some(v) => limits(v, Limits::default(), "limits")?,
        None => Limits::default(),
    };

    let source = source(&raw.source, base, limits)?;
    let mut steps = Vec::with_capacity(raw.steps.len());
    for (i, v) in raw.steps.into_iter().enumerate() {
        steps.push(step(i, v, limits, source.event_time.is_some())?);
    }
    check_keyed(&steps)?;
    let sink = sink(&raw.sink, base)?;
    let dead_letter = match raw.dead_letter {
        Some(m) => side_output(&m, base, "dead_letter")?,
        None => OutputSpec::Stderr,
    };
    let late = raw.late.map(|m| side_output(&m, base, "late")).transpose()?;
    let checkpoint = raw.checkpoint.map(|v| checkpoint(v, base, &source, &sink)).transpose()?;
    let mut sink = sink;
    if let (SinkSpec::Kafka(k), None) = (&mut sink, &checkpoint) {
        // Exactly-once output is staged with checkpoints; without them a
        // failure starts over anyway, so at-least-once is what remains.
        let explicit = get(&raw.sink, "kafka").and_then(|v| v.get("delivery")).is_some();
        if explicit && k.delivery == Delivery::ExactlyOnce {
            return Err(ManifestError::new(
                "sink.kafka.delivery",
                "exactly_once stages output with checkpoints: add `checkpoint: { dir: ... }` or choose at_least_once",
            ));
        }
        k.delivery = Delivery::AtLeastOnce;
    }
    let state = state(raw.state, base, checkpoint.is_some())?;
    Ok(Manifest {
        name,
        parallelism,
        max_parallelism,
        batch_size,
        source,
        steps,
        sink,
        dead_letter,
        late,
        checkpoint,
        state,
    })
}

fn checkpoint(v: Value, base: &Path, source: &SourceSpec, sink: &SinkSpec) -> Result<CheckpointSpec> {
    let at = "checkpoint";
    let raw: RawCheckpoint = typed(v, at)?;
    let dir = path(base, &raw.dir, "checkpoint.dir")?;
    let duration = |s: Option<Scalar>, default: Duration, what: &str| -> Result<Duration> {
        let Some(t) = s.map(Scalar::text) else { return Ok(default) };
        let d = parse_duration(&t).map_err(|e| ManifestError::new(format!("{at}.{what}"), e))?;
        if d < Duration::from_millis(10) {
            return Err(ManifestError::new(format!("{at}.{what}"), format!("`{t}` is below the minimum of 10ms")));
        }
        Ok(d)
    };
    let interval = duration(raw.interval, DEFAULT_CHECKPOINT_INTERVAL, "interval")?;
    let timeout = duration(raw.timeout, DEFAULT_CHECKPOINT_TIMEOUT, "timeout")?;
    if matches!(source.kind, SourceKind::Stdin | SourceKind::Socket { .. }) {
        return Err(ManifestError::new(
            at,
            "checkpoints need a source that can be read again from a position (file, kafka, http or bids); stdin and sockets cannot",
        ));
    }
    if let SinkSpec::File { .. } = sink {
        return Err(ManifestError::new(
            at,
            "a single-file sink cannot commit checkpoints atomically; use `sink: { file: { dir: ... } }` (one file per subtask and checkpoint)",
        ));
    }
    Ok(CheckpointSpec { dir, interval, timeout })
}

fn state(v: Option<Value>, base: &Path, checkpointed: bool) -> Result<StateSpec> {
    let raw: RawState = match v {
        Some(v) => typed(v, "state")?,
        None => RawState { backend: None, dir: None },
    };
    let backend = match raw.backend.as_deref() {
        None if checkpointed && cfg!(feature = "rocksdb") => StateBackendKind::RocksDb,
        None => StateBackendKind::Memory,
        Some("memory") => StateBackendKind::Memory,
        Some("rocksdb") if cfg!(feature = "rocksdb") => StateBackendKind::RocksDb,
        Some("rocksdb") => {
            return Err(ManifestError::new(
                "state.backend",
                "this weir was built without RocksDB (cargo feature `rocksdb`); use `memory`",
            ))
        }
        Some(other) => {
            return Err(ManifestError::new(
                "state.backend",
                format!("unknown backend `{other}` (expected memory or rocksdb)"),
            ))
        }
    };
    let dir = raw.dir.map(|d| path(base, &d, "state.dir")).transpose()?;
    Ok(StateSpec { backend, dir })
}

fn path(base: &Path, p: &str, at: &str) -> Result<PathBuf> {
    if p.is_empty() {
        return Err(ManifestError::new(at, "the path is empty"));
    }
    let p = Path::new(p);
    Ok(if p.is_absolute() { p.to_path_buf() } else { base.join(p) })
}

fn limits(v: Value, defaults: Limits, at: &str) -> Result<Limits> {
    let raw: RawLimits = typed(v, at)?;
    let mut l = defaults;
    if let Some(m) = raw.memory.map(Scalar::text) {
        l.memory = parse_size(&m).map_err(|e| ManifestError::new(format!("{at}.memory"), e))?;
        if l.memory < 1 << 20 {
            return Err(ManifestError::new(format!("{at}.memory"), format!("`{m}` is below the minimum of 1MiB")));
        }
    }
    if let Some(t) = raw.call_timeout.map(Scalar::text) {
        l.call_timeout = parse_duration(&t).map_err(|e| ManifestError::new(format!("{at}.call_timeout"), e))?;
        if l.call_timeout < Duration::from_millis(10) {
            return Err(ManifestError::new(
                format!("{at}.call_timeout"),
                format!("`{t}` is below the minimum of 10ms"),
            ));
        }
    }
    if let Some(r) = raw.recycle_above.map(Scalar::text) {
        let bytes = parse_size(&r).map_err(|e| ManifestError::new(format!("{at}.recycle_above"), e))?;
        if bytes > l.memory {
            return Err(ManifestError::new(
                format!("{at}.recycle_above"),
                format!("`{r}` is above the memory cap of {} MiB; instances would trap first", l.memory >> 20),
            ));
        }
        l.recycle_above = Some(bytes);
    }
    for (field, raw, slot) in [
        ("state_per_call", raw.state_per_call, &mut l.state_per_call),
        ("state_value", raw.state_value, &mut l.state_value),
        ("record_size", raw.record_size, &mut l.record_size),
    ] {
        if let Some(text) = raw.map(Scalar::text) {
            let bytes = parse_size(&text).map_err(|e| ManifestError::new(format!("{at}.{field}"), e))?;
            if bytes < 1 << 10 {
                return Err(ManifestError::new(
                    format!("{at}.{field}"),
                    format!("`{text}` is below the minimum of 1KiB"),
                ));
            }
            *slot = bytes;
        }
    }
    if let Some(n) = raw.outputs_per_record {
        if n == 0 {
            return Err(ManifestError::new(format!("{at}.outputs_per_record"), "must be at least 1"));
        }
        l.outputs_per_record = n;
    }
    Ok(l)
}

fn format(text: Option<&str>, csv: Option<RawCsv>, default: Format, at: &str) -> Result<Format> {
    let f = match text {
        None if csv.is_some() => "csv",
        None => return Ok(default),
        Some(f) => f,
    };
    match (f, csv) {
        ("lines", None) => Ok(Format::Lines),
        ("json", None) => Ok(Format::Json),
        ("csv", csv) => {
            let csv = csv.unwrap_or(RawCsv { header: None, columns: None, delimiter: None });
            let header = csv.header.unwrap_or(csv.columns.is_none());
            if !header && csv.columns.is_none() {
                return Err(ManifestError::new(
                    format!("{at}.csv"),
                    "without a header line, `columns` must name the columns",
                ));
            }
            let delimiter = match csv.delimiter.as_deref() {
                None => b',',
                Some(d) if d.len() == 1 && d != "\"" && d != "\n" => d.as_bytes()[0],
                Some("\\t") | Some("tab") => b'\t',
                Some(d) => {
                    return Err(ManifestError::new(
                        format!("{at}.csv.delimiter"),
                        format!("`{d}` must be a single ASCII character (or `tab`)"),
                    ))
                }
            };
            Ok(Format::Csv(CsvSpec { header, columns: csv.columns, delimiter }))
        }
        ("lines" | "json", Some(_)) => {
            Err(ManifestError::new(at, format!("`csv` options given but the format is {f}")))
        }
        (other, _) => Err(ManifestError::new(
            format!("{at}.format"),
            format!("unknown format `{other}` (expected lines, json or csv)"),
        )),
    }
}

fn source(map: &Mapping, base: &Path, limits: Limits) -> Result<SourceSpec> {
    let (kind, v) = one_kind(
        map,
        &["file", "stdin", "socket", "http", "kafka", "bids"],
        &["event_time", "watermark"],
        "source",
        "source",
    )?;
    let at = format!("source.{kind}");
    let (kind, format) = match kind.as_str() {
        "file" => {
            let f: RawFile = typed(v, &at)?;
            let path = path(base, &f.path, &format!("{at}.path"))?;
            let by_extension = match path.extension().and_then(|e| e.to_str()) {
                Some("json" | "ndjson" | "jsonl") => Format::Json,
                Some("csv") => Format::Csv(CsvSpec { header: true, columns: None, delimiter: b',' }),
                _ => Format::Lines,
            };
            let format = format(f.format.as_deref(), f.csv, by_extension, &at)?;
            let splits = match f.splits {
                None => Splits::Auto,
                Some(Value::String(s)) if s == "auto" => Splits::Auto,
                Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=1024).contains(&n)) => {
                    Splits::Count(n.as_u64().unwrap_or(1) as u32)
                }
                Some(other) => {
                    return Err(ManifestError::new(
                        format!("{at}.splits"),
                        format!("{other:?}: expected `auto` or a number from 1 to 1024"),
                    ));
                }
            };
            (SourceKind::File { path, splits }, format)
        }
        "stdin" => {
            let s: RawStream = typed_or_default(v, &at)?;
            (SourceKind::Stdin, format(s.format.as_deref(), s.csv, Format::Lines, &at)?)
        }
        "socket" => {
            let s: RawSocket = typed(v, &at)?;
            let host = s.host.unwrap_or_else(|| "127.0.0.1".to_string());
            (
                SourceKind::Socket { address: format!("{host}:{}", s.port) },
                format(s.format.as_deref(), s.csv, Format::Lines, &at)?,
            )
        }
        "kafka" => kafka::source(v, &at)?,
        "http" => {
            let s: RawStream = typed_or_default(v, &at)?;
            (SourceKind::Http { journal: None }, format(s.format.as_deref(), s.csv, Format::Json, &at)?)
        }
        "bids" => {
            let b: RawBids = typed_or_default(v, &at)?;
            if b.rate == Some(0) {
                return Err(ManifestError::new(
                    format!("{at}.rate"),
                    "0 events per second would never produce anything",
                ));
            }
            (SourceKind::Bids { seed: b.seed.unwrap_or(42), count: b.count, rate: b.rate }, Format::Json)
        }
        other => return Err(unlisted(&at, other)),
    };
    let event_time = match get(map, "event_time") {
        None => {
            if get(map, "watermark").is_some() {
                return Err(ManifestError::new("source.watermark", "watermarks need `event_time` (a field or a udf)"));
            }
            None
        }
        Some(v) => {
            let at = "source.event_time";
            let e: RawEventTime = typed(v.clone(), at)?;
            let assign = match (e.field, e.udf) {
                (Some(f), None) => {
                    if !e.params.is_empty() || e.on_error.is_some() || e.limits.is_some() {
                        return Err(ManifestError::new(at, "`params`, `on_error` and `limits` only apply to an event-time `udf`"));
                    }
                    if format == Format::Lines {
                        return Err(ManifestError::new(at, "event time from a field needs format json or csv (or use a `udf`)"));
                    }
                    TimestampSource::Field(Pointer::parse(&f).map_err(|e| ManifestError::new(format!("{at}.field"), e.to_string()))?)
                }
                (None, Some(u)) => TimestampSource::Udf(udf_step(FunctionKind::Map, &u, e.params, e.on_error.as_deref(), e.limits, limits, at)?),
                _ => return Err(ManifestError::new(at, "give exactly one of `field` (a JSON pointer to epoch milliseconds) or `udf` (a map function that sets timestamps)")),
            };
            let w: RawWatermark = match get(map, "watermark") {
                Some(v) => typed_or_default(v.clone(), "source.watermark")?,
                None => RawWatermark::default(),
            };
            let duration = |s: Option<Scalar>, at: &str| -> Result<Option<Duration>> {
                s.map(|s| parse_duration(&s.text()).map_err(|e| ManifestError::new(at, e))).transpose()
            };
            let max_out_of_orderness =
                duration(w.max_out_of_orderness, "source.watermark.max_out_of_orderness")?.unwrap_or(Duration::ZERO);
            let idle_timeout = duration(w.idle_timeout, "source.watermark.idle_timeout")?;
            if idle_timeout == Some(Duration::ZERO) {
                return Err(ManifestError::new("source.watermark.idle_timeout", "must be longer than 0s"));
            }
            Some(EventTimeSpec { assign, max_out_of_orderness, idle_timeout })
        }
    };
    Ok(SourceSpec { kind, format, event_time })
}

fn on_error(text: Option<&str>, at: &str) -> Result<ErrorPolicy> {
    match text {
        None | Some("dead_letter") => Ok(ErrorPolicy::DeadLetter),
        Some("fail") => Ok(ErrorPolicy::Fail),
        Some(other) => Err(ManifestError::new(
            format!("{at}.on_error"),
            format!("unknown policy `{other}` (expected dead_letter or fail)"),
        )),
    }
}

fn params(map: Mapping, at: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let Some(k) = k.as_str() else {
            return Err(ManifestError::new(format!("{at}.params"), format!("names must be strings, found {k:?}")));
        };
        let v = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(ManifestError::new(
                    format!("{at}.params.{k}"),
                    format!("must be a string, number or boolean, found {other:?}"),
                ));
            }
        };
        out.push((k.to_string(), v));
    }
    Ok(out)
}

fn udf_step(
    function: FunctionKind,
    udf: &str,
    raw_params: Mapping,
    raw_on_error: Option<&str>,
    raw_limits: Option<Value>,
    defaults: Limits,
    at: &str,
) -> Result<UdfStepSpec> {
    let udf = UdfRef::parse(udf).map_err(|e| ManifestError::new(format!("{at}.udf"), e))?;
    let limits = match raw_limits {
        Some(v) => limits(v, defaults, &format!("{at}.limits"))?,
        None => defaults,
    };
    Ok(UdfStepSpec { function, udf, params: params(raw_params, at)?, on_error: on_error(raw_on_error, at)?, limits })
}

const STEP_KINDS: &[&str] = &["map", "filter", "flat_map", "key_by", "window", "process"];

fn step(index: usize, v: Value, defaults: Limits, event_time: bool) -> Result<StepSpec> {
    let at = format!("steps[{index}]");
    let Value::Mapping(map) = v else {
        return Err(ManifestError::new(
            at,
            format!("a step is a mapping such as `map: {{ udf: NAME@VERSION }}`, found {v:?}"),
        ));
    };
    let (kind, body) = one_kind(&map, STEP_KINDS, &["name", "aggregate"], &at, "step")?;
    let name = match get(&map, "name") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => Some(s.clone()),
        Some(other) => {
            return Err(ManifestError::new(
                format!("{at}.name"),
                format!("{other:?}: expected a string of 1-64 characters"),
            ))
        }
    };
    let inner = format!("{at}.{kind}");
    let kind = match kind.as_str() {
        "map" | "filter" | "flat_map" => {
            let function = match kind.as_str() {
                "map" => FunctionKind::Map,
                "filter" => FunctionKind::Filter,
                "flat_map" => FunctionKind::FlatMap,
                other => return Err(unlisted(&inner, other)),
            };
            let r: RawUdfStep = typed(body, &inner)?;
            StepKind::Udf(udf_step(function, &r.udf, r.params, r.on_error.as_deref(), r.limits, defaults, &inner)?)
        }
        "key_by" => {
            let r: RawKeyBy = typed(body, &inner)?;
            match (r.field, r.udf) {
                (None, None) if r.record_key == Some(true) => {
                    if !r.params.is_empty() || r.on_error.is_some() || r.limits.is_some() {
                        return Err(ManifestError::new(&inner, "`params`, `on_error` and `limits` only apply to a key_by `udf`"));
                    }
                    StepKind::KeyBy(KeyBySpec::RecordKey)
                }
                _ if r.record_key.is_some() => {
                    return Err(ManifestError::new(&inner, "give exactly one of `field`, `udf` or `record_key: true`"));
                }
                (Some(f), None) => {
                    if !r.params.is_empty() || r.on_error.is_some() || r.limits.is_some() {
                        return Err(ManifestError::new(
                            &inner,
                            "`params`, `on_error` and `limits` only apply to a key_by `udf`",
                        ));
                    }
                    let p =
                        Pointer::parse(&f).map_err(|e| ManifestError::new(format!("{inner}.field"), e.to_string()))?;
                    StepKind::KeyBy(KeyBySpec::Field(p))
                }
                (None, Some(u)) => StepKind::KeyBy(KeyBySpec::Udf(udf_step(
                    FunctionKind::Map,
                    &u,
                    r.params,
                    r.on_error.as_deref(),
                    r.limits,
                    defaults,
                    &inner,
                )?)),
                _ => {
                    return Err(ManifestError::new(
                        &inner,
                        "give exactly one of `field` (a JSON pointer such as /user), `udf` (NAME@VERSION) or `record_key: true` (the key an earlier function set)",
                    ))
                }
            }
        }
        "process" => {
            let r: RawUdfStep = typed(body, &inner)?;
            StepKind::Process(udf_step(
                FunctionKind::Process,
                &r.udf,
                r.params,
                r.on_error.as_deref(),
                r.limits,
                defaults,
                &inner,
            )?)
        }
        "window" => {
            let Some(aggregate) = get(&map, "aggregate") else {
                return Err(ManifestError::new(
                    &at,
                    "a `window` step needs an `aggregate` (for example `aggregate: { builtin: count }`)",
                ));
            };
            let aggregate = aggregate_spec(aggregate.clone(), defaults, &format!("{at}.aggregate"))?;
            StepKind::Window(window(body, aggregate, event_time, &inner)?)
        }
        other => return Err(unlisted(&inner, other)),
    };
    if get(&map, "aggregate").is_some() && !matches!(kind, StepKind::Window(_)) {
        return Err(ManifestError::new(format!("{at}.aggregate"), "`aggregate` belongs to a `window` step"));
    }
    Ok(StepSpec { index, name, kind })
}

/// Windows and process steps need keys: a `key_by` before them.
fn check_keyed(steps: &[StepSpec]) -> Result<()> {
    let mut keyed = false;
    for s in steps {
        match &s.kind {
            StepKind::KeyBy(_) => keyed = true,
            StepKind::Window(_) | StepKind::Process(_) if !keyed => {
                let what = if matches!(s.kind, StepKind::Window(_)) { "window" } else { "process" };
                return Err(ManifestError::new(
                    format!("steps[{}]", s.index),
                    format!("a `{what}` step works on a keyed stream: add a `key_by` step before it"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn output_format(text: Option<&str>, at: &str) -> Result<OutputFormat> {
    match text {
        None | Some("value") => Ok(OutputFormat::Value),
        Some("record") => Ok(OutputFormat::Record),
        Some(other) => Err(ManifestError::new(
            format!("{at}.format"),
            format!("unknown format `{other}` (expected value or record)"),
        )),
    }
}

fn sink(map: &Mapping, base: &Path) -> Result<SinkSpec> {
    let (kind, v) = one_kind(map, &["file", "stdout", "kafka"], &[], "sink", "sink")?;
    let at = format!("sink.{kind}");
    match kind.as_str() {
        "file" => {
            let f: RawFileSink = typed(v, &at)?;
            let format = output_format(f.format.as_deref(), &at)?;
            match (f.path, f.dir) {
                (Some(p), None) => Ok(SinkSpec::File { path: path(base, &p, &format!("{at}.path"))?, format }),
                (None, Some(d)) => Ok(SinkSpec::Dir { dir: path(base, &d, &format!("{at}.dir"))?, format }),
                _ => Err(ManifestError::new(
                    at,
                    "give exactly one of `path` (one file) or `dir` (a part-N.txt file per subtask)",
                )),
            }
        }
        "kafka" => kafka::sink(v, &at),
        "stdout" => {
            let s: RawStdout = typed_or_default(v, &at)?;
            Ok(SinkSpec::Stdout { format: output_format(s.format.as_deref(), &at)? })
        }
        other => Err(unlisted(&at, other)),
    }
}

fn side_output(map: &Mapping, base: &Path, at: &str) -> Result<OutputSpec> {
    let (kind, v) = one_kind(map, &["file", "stdout", "stderr"], &[], at, "output")?;
    let inner = format!("{at}.{kind}");
    match kind.as_str() {
        "file" => {
            let f: RawOutputFile = typed(v, &inner)?;
            let p = path(base, &f.path, &format!("{inner}.path"))?;
            match (f.rotate_mib, f.keep) {
                (None, None) => Ok(OutputSpec::File(p)),
                (Some(mib), keep) if (1..=1 << 20).contains(&mib) && keep.is_none_or(|k| k <= 1000) => {
                    Ok(OutputSpec::Rotating { path: p, max_bytes: mib << 20, keep: keep.unwrap_or(3) })
                }
                (None, Some(_)) => Err(ManifestError::new(&inner, "`keep` needs `rotate_mib`")),
                _ => Err(ManifestError::new(&inner, "`rotate_mib`: 1 to 1048576, `keep`: at most 1000")),
            }
        }
        "stdout" => {
            typed_or_default::<RawNothing>(v, &inner)?;
            Ok(OutputSpec::Stdout)
        }
        "stderr" => {
            typed_or_default::<RawNothing>(v, &inner)?;
            Ok(OutputSpec::Stderr)
        }
        other => Err(unlisted(&inner, other)),
    }
}
