//! The manifest rules of `weir serve`: what a tenant's manifest may name,
//! where the server puts its files, and the tenant's quotas.

use super::super::{mib_bytes, ControlError, Tenant};
use super::retention::{Retention, DEAD_LETTER_FILES};
use crate::manifest::{Bounds, Limits, Manifest, SourceKind, StateBackendKind};
use crate::types::UdfRef;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The sources a tenant may declare under `weir serve`: an allow-list, not
/// a deny-list, so a source kind added to the engine later (or one that takes
/// an address or client properties, like `kafka`: an SSRF into the server's
/// network, and `plugin.library.paths` loads a library of the tenant's
/// choosing) stays unavailable until someone decides it is safe to host.
/// Neither of these reads anything of the server's: `http` reads the
/// pipeline's own ingest journal, `bids` generates its records.
pub const SERVE_SOURCES: [&str; 2] = ["http", "bids"];

/// The ingest journal of an `http` source, in the pipeline's directory.
pub(super) const JOURNAL: &str = "ingest.log";
/// The committed output of the pipeline's sink, in its directory.
pub(super) const OUTPUT: &str = "output";
/// The pipeline's checkpoints and savepoints, in its directory.
pub(super) const CHECKPOINTS: &str = "checkpoints";

/// Admits `source` only when it names exactly one allowed kind.
fn check_source(source: Option<&Value>) -> Result<(), String> {
    let allowed = SERVE_SOURCES.join(", ");
    let Some(Value::Mapping(source)) = source else {
        return Err(format!("source: expected a mapping naming one of: {allowed}"));
    };
    let kinds: Vec<&str> =
        source.keys().filter_map(Value::as_str).filter(|k| !matches!(*k, "event_time" | "watermark")).collect();
    for kind in &kinds {
        if !SERVE_SOURCES.contains(kind) {
            return Err(format!(
                "source.{kind}: not available under `weir serve` (a hosted pipeline may not reach the server's files, terminal or network); sources available here: {allowed}"
            ));
        }
    }
    Ok(())
}

/// Turns a submitted manifest into the one the server runs: only sources
/// that need no access to the server's files (`http`, `bids`); the sink,
/// dead letters, checkpoints and state in the pipeline's directory.
/// Dead letters rotate as `retention` says.
pub(super) fn serve_manifest(
    text: &str,
    dir: &Path,
    steps: &str,
    bounds: &Bounds,
    retention: &Retention,
) -> Result<Manifest, ControlError> {
    let bad = |m: String| ControlError::bad_request("invalid_manifest", m);
    let mut doc: Value = serde_norway::from_str(text).map_err(|e| bad(format!("not YAML or JSON: {e}")))?;
    let map = doc.as_mapping_mut().ok_or_else(|| bad("the manifest must be a mapping".into()))?;
    check_source(map.get("source")).map_err(bad)?;
    for key in ["dead_letter", "late"] {
        if map.contains_key(key) {
            return Err(bad(format!(
                "{key}: chosen by the server under `weir serve` (the pipeline's directory); remove it"
            )));
        }
    }
    let format = match map.remove("sink") {
        None => None,
        Some(Value::Mapping(s)) if s.len() == 1 && s.contains_key("output") => {
            s.get("output").and_then(Value::as_mapping).and_then(|o| o.get("format")).cloned()
        }
        Some(_) => {
            return Err(bad("sink: under `weir serve` the output is the pipeline's own (read it with GET /v1/pipelines/ID/output); omit `sink` or give `sink: { output: { format: ... } }`".into()))
        }
    };
    let mut file = Mapping::new();
    file.insert("dir".into(), dir.join(OUTPUT).display().to_string().into());
    if let Some(f) = format {
        file.insert("format".into(), f);
    }
    let mut sink = Mapping::new();
    sink.insert("file".into(), Value::Mapping(file));
    map.insert("sink".into(), Value::Mapping(sink));
    let mut dl = Mapping::new();
    let mut dl_file = Mapping::new();
    dl_file.insert("path".into(), dir.join("dead-letters.jsonl").display().to_string().into());
    dl_file.insert("rotate_mib".into(), retention.dead_letters_rotate_mib().into());
    dl_file.insert("keep".into(), (DEAD_LETTER_FILES - 1).into());
    dl.insert("file".into(), Value::Mapping(dl_file));
    map.insert("dead_letter".into(), Value::Mapping(dl));
    for (key, sub) in [("checkpoint", CHECKPOINTS), ("state", "state")] {
        let mut m = match map.remove(key) {
            None => Mapping::new(),
            Some(Value::Mapping(m)) => m,
            Some(_) => return Err(bad(format!("{key}: expected a mapping"))),
        };
        if m.contains_key("dir") {
            return Err(bad(format!("{key}.dir: chosen by the server under `weir serve`; remove it")));
        }
        m.insert("dir".into(), dir.join(sub).display().to_string().into());
        if key == "checkpoint" && !m.contains_key("interval") {
            m.insert("interval".into(), "2s".into());
        }
        map.insert(key.into(), Value::Mapping(m));
    }
    let rewritten = serde_norway::to_string(&doc).map_err(|e| ControlError::internal(e.to_string()))?;
    let mut m = Manifest::parse_within(&rewritten, dir, bounds).map_err(|e| bad(e.to_string()))?;
    // The same rule on the parsed manifest: whatever the document's shape,
    // only these kinds reach the engine.
    if !matches!(m.source.kind, SourceKind::Http { .. } | SourceKind::Bids { .. }) {
        return Err(bad(format!(
            "source: not available under `weir serve`; sources available here: {}",
            SERVE_SOURCES.join(", ")
        )));
    }
    // Keyed state by an allow-list too: RocksDB's memory is bounded by its
    // configuration and its files count against the tenant's state quota;
    // the memory backend grows in the server's heap between checkpoints,
    // where nothing bounds it. (A build without RocksDB has only memory: it
    // is for development, not for hosting strangers.)
    if cfg!(feature = "rocksdb") && m.state.backend == StateBackendKind::Memory {
        return Err(bad(
            "state.backend: `memory` would keep the pipeline's state in the server's memory, unbounded between checkpoints; under `weir serve` state is kept in `rocksdb` (omit `backend`)".into(),
        ));
    }
    if let SourceKind::Http { journal } = &mut m.source.kind {
        *journal = Some(dir.join(JOURNAL));
    }
    let overrides: BTreeMap<usize, String> = serde_json::from_str(steps).unwrap_or_default();
    for (index, udf) in overrides {
        let udf = UdfRef::parse(&udf).map_err(ControlError::internal)?;
        m.set_step_udf(index, udf).map_err(ControlError::internal)?;
    }
    Ok(m)
}

/// The tenant's quotas, applied to a manifest: parallelism is checked;
/// function limits left at their defaults take the quota, larger ones are refused.
pub(super) fn apply_quotas(m: &mut Manifest, t: &Tenant) -> Result<(), ControlError> {
    let q = &t.quotas;
    if m.parallelism > q.max_parallelism {
        return Err(ControlError::quota(format!(
            "parallelism {} is above this tenant's limit of {}",
            m.parallelism, q.max_parallelism
        )));
    }
    let quota = Limits {
        memory: mib_bytes(q.memory_mib),
        call_timeout: Duration::from_millis(q.cpu_ms_per_call),
        ..Limits::default()
    };
    for u in m.udf_specs_mut() {
        if u.limits == Limits::default() {
            u.limits = Limits {
                memory: u.limits.memory.min(quota.memory),
                call_timeout: u.limits.call_timeout.min(quota.call_timeout),
                ..u.limits
            };
        }
        // Lower state limits are the tenant's choice; higher ones would let
        // one call grow the server's memory or disk past what it plans for.
        let most = Limits::default();
        if u.limits.state_per_call > most.state_per_call
            || u.limits.state_value > most.state_value
            || u.limits.outputs_per_record > most.outputs_per_record
            || u.limits.record_size > most.record_size
        {
            return Err(ControlError::quota(format!(
                "{}: limits.state_per_call, limits.state_value, limits.outputs_per_record and limits.record_size may be at most {} MiB, {} MiB, {} and {} MiB under `weir serve`",
                u.udf,
                most.state_per_call >> 20,
                most.state_value >> 20,
                most.outputs_per_record,
                most.record_size >> 20
            )));
        }
        if u.limits.memory > quota.memory || u.limits.call_timeout > quota.call_timeout {
            return Err(ControlError::quota(format!(
                "{}: limits of {} MiB and {} ms per call are above this tenant's quota of {} MiB and {} ms",
                u.udf,
                u.limits.memory >> 20,
                u.limits.call_timeout.as_millis(),
                q.memory_mib,
                q.cpu_ms_per_call
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_chooses_where_output_state_and_checkpoints_go() {
        let dir = Path::new("/data/pipelines/p-1");
        let m = serve_manifest(
            "name: a\nsource: { http: { format: lines } }\nsink: { output: { format: value } }\n",
            dir,
            "{}",
            &Bounds::hosted(),
            &Retention::default(),
        )
        .unwrap();
        assert!(matches!(&m.source.kind, SourceKind::Http { journal: Some(j) } if j == &dir.join("ingest.log")));
        assert_eq!(m.checkpoint.as_ref().unwrap().dir, dir.join("checkpoints"));
        assert!(matches!(&m.sink, crate::manifest::SinkSpec::Dir { dir: d, .. } if d == &dir.join("output")));
        // Dead letters do not grow without bound: 64 MiB files, three older kept.
        let rotating = crate::manifest::OutputSpec::Rotating {
            path: dir.join("dead-letters.jsonl"),
            max_bytes: 64 << 20,
            keep: 3,
        };
        assert_eq!(m.dead_letter, rotating);
        // The operator's retention: 40 MiB in four files of 10.
        let small = Retention { dead_letters_mib: 40, ..Retention::default() };
        let m = serve_manifest("name: a\nsource: { http: {} }\n", dir, "{}", &Bounds::hosted(), &small).unwrap();
        assert!(
            matches!(&m.dead_letter, crate::manifest::OutputSpec::Rotating { max_bytes, keep: 3, .. } if *max_bytes == 10 << 20),
            "{:?}",
            m.dead_letter
        );
    }

    #[test]
    fn kafka_with_a_tenant_chosen_library_or_broker_is_refused_under_serve() {
        // librdkafka dlopens `plugin.library.paths` when the client is made,
        // and `brokers` would make the server connect wherever the tenant says.
        let text = "name: a\nsource:\n  kafka:\n    brokers: 10.0.0.1:9092\n    topic: t\n    group: g\n    properties: { plugin.library.paths: /data/pipelines/p-1/output/part-0.txt }\n";
        let e = serve_manifest(text, Path::new("/d"), "{}", &Bounds::hosted(), &Retention::default()).unwrap_err();
        assert_eq!(e.kind, super::super::super::ErrorKind::BadRequest);
        assert!(e.message.starts_with("source.kafka: not available under `weir serve`"), "{e}");
        assert!(e.message.contains("sources available here: http, bids"), "{e}");
        for allowed in ["name: a\nsource: { http: {} }\n", "name: a\nsource: { bids: { count: 3 } }\n"] {
            serve_manifest(allowed, Path::new("/d"), "{}", &Bounds::hosted(), &Retention::default())
                .unwrap_or_else(|e| panic!("{allowed}: {e}"));
        }
    }

    #[test]
    fn server_files_and_paths_are_refused_with_the_reason() {
        let dir = Path::new("/d");
        for (text, expect) in [
            ("name: a\nsource: { file: { path: /etc/passwd } }\n", "source.file: not available under `weir serve`"),
            ("name: a\nsource: { stdin: {} }\n", "source.stdin: not available"),
            ("name: a\nsource: { socket: { port: 22 } }\n", "source.socket: not available"),
            ("name: a\nsource: { http: {}, future_kind: {} }\n", "source.future_kind: not available"),
            ("name: a\nsource: [http]\n", "source: expected a mapping naming one of: http, bids"),
            ("name: a\nsource: { http: {} }\nsink: { file: { dir: /tmp } }\n", "sink: under `weir serve`"),
            ("name: a\nsource: { http: {} }\ncheckpoint: { dir: /tmp }\n", "checkpoint.dir: chosen by the server"),
            ("name: a\nsource: { http: {} }\ndead_letter: { stderr: {} }\n", "dead_letter: chosen by the server"),
            ("[1, 2]", "must be a mapping"),
            ("name: a\nsource: { http: {} }\nsteps: [ { map: { udf: nope } } ]\n", "steps[0]"),
        ] {
            let e = serve_manifest(text, dir, "{}", &Bounds::hosted(), &Retention::default()).unwrap_err();
            assert_eq!(e.kind, super::super::super::ErrorKind::BadRequest);
            assert!(e.message.contains(expect), "{text}: {e}");
        }
    }

    #[test]
    #[cfg(feature = "rocksdb")]
    fn state_in_the_servers_heap_is_refused_under_serve() {
        let text = "name: a\nsource: { http: {} }\nstate: { backend: memory }\n";
        let e = serve_manifest(text, Path::new("/d"), "{}", &Bounds::hosted(), &Retention::default()).unwrap_err();
        assert!(e.message.starts_with("state.backend: `memory`"), "{e}");
        let m = serve_manifest(
            "name: a\nsource: { http: {} }\n",
            Path::new("/d"),
            "{}",
            &Bounds::hosted(),
            &Retention::default(),
        )
        .unwrap();
        assert_eq!(m.state.backend, StateBackendKind::RocksDb);
    }
}
