//! The config file of `weir serve` (`--config FILE`, YAML): where it
//! listens and keeps its data, the bounds on manifests, the HTTP limits and
//! the quotas of new tenants, in one document the operator can keep under
//! version control. `deploy/weir-serve.yaml` is the documented example.
//!
//! Every key is optional, and a flag given on the command line wins over
//! the file, which wins over the built-in default: the file holds the
//! server's settings, a flag changes one for one start. Unknown keys are
//! errors naming the key (a misspelt limit silently left at its default is
//! the mistake an operator does not notice). The admin token is not read
//! from here: a config file is the kind of file that gets committed, so
//! the token stays in `WEIR_ADMIN_TOKEN` or `DATA_DIR/admin-token`.

use crate::api::HttpLimits;
use crate::connector::journal::Remember;
use crate::control::{check_quotas, Quotas, Retention, DEAD_LETTER_FILES, MAX_QUOTA_MIB};
use crate::manifest::{parse_duration, Bounds};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file, as written (each value checked when it is applied).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServeConfig {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir` (relative to the file's directory).
    pub data_dir: Option<PathBuf>,
    /// `--bound NAME=VALUE`, by name.
    #[serde(default)]
    bounds: BTreeMap<String, Scalar>,
    /// The HTTP limits, by their flags' names with `_`.
    #[serde(default)]
    http: HttpSection,
    /// What a tenant created without a quota gets.
    #[serde(default)]
    tenant_defaults: Quotas,
    /// How posted records are taken in.
    #[serde(default)]
    ingest: IngestSection,
    /// What each pipeline keeps on disk.
    #[serde(default)]
    retention: RetentionSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionSection {
    output_mib: Option<u64>,
    dead_letters_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestSection {
    idempotency_window: Option<String>,
    idempotency_keys: Option<usize>,
}

/// A bound's value: a number, or text with a unit (`7d`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Number(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    max_connections: Option<usize>,
    max_requests_in_flight: Option<usize>,
    max_requests_in_flight_per_tenant: Option<usize>,
    header_timeout: Option<String>,
    body_timeout: Option<String>,
    max_connection_age: Option<String>,
    shutdown_grace: Option<String>,
}

impl ServeConfig {
    /// Reads and checks the file at `path`; the error names the file and
    /// what is wrong in it.
    pub(super) fn load(path: &Path) -> Result<ServeConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut config = ServeConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if let (Some(dir), Some(base)) = (&config.data_dir, path.parent()) {
            config.data_dir = Some(base.join(dir));
        }
        Ok(config)
    }

    /// Parses a document and checks every value in it.
    pub(super) fn parse(text: &str) -> Result<ServeConfig, String> {
        let config: ServeConfig = if text.trim().is_empty() {
            ServeConfig::default()
        } else {
            serde_norway::from_str(text).map_err(|e| e.to_string())?
        };
        config.bounds(Bounds::hosted())?;
        config.http()?.validated()?;
        check_quotas(&config.tenant_defaults).map_err(|e| format!("tenant_defaults: {}", e.message))?;
        config.idempotency()?;
        config.retention()?;
        Ok(config)
    }

    /// `base` with the file's bounds applied.
    pub(super) fn bounds(&self, base: Bounds) -> Result<Bounds, String> {
        let mut bounds = base;
        for (name, value) in &self.bounds {
            let text = match value {
                Scalar::Number(n) => n.to_string(),
                Scalar::Text(t) => t.clone(),
            };
            bounds.set(name, &text).map_err(|e| format!("bounds.{e}"))?;
        }
        Ok(bounds)
    }

    /// The built-in HTTP limits with the file's applied (not yet validated:
    /// flags may still change them).
    pub(super) fn http(&self) -> Result<HttpLimits, String> {
        let d = HttpLimits::default();
        let h = &self.http;
        let duration = |name: &str, v: &Option<String>, default: Duration| match v {
            Some(text) => parse_duration(text).map_err(|e| format!("http.{name}: {e}")),
            None => Ok(default),
        };
        Ok(HttpLimits {
            max_connections: h.max_connections.unwrap_or(d.max_connections),
            max_requests_in_flight: h.max_requests_in_flight.unwrap_or(d.max_requests_in_flight),
            max_requests_in_flight_per_tenant: h
                .max_requests_in_flight_per_tenant
                .unwrap_or(d.max_requests_in_flight_per_tenant),
            header_timeout: duration("header_timeout", &h.header_timeout, d.header_timeout)?,
            body_timeout: duration("body_timeout", &h.body_timeout, d.body_timeout)?,
            max_connection_age: duration("max_connection_age", &h.max_connection_age, d.max_connection_age)?,
            shutdown_grace: duration("shutdown_grace", &h.shutdown_grace, d.shutdown_grace)?,
        })
    }

    /// The quotas of a tenant created without any.
    pub(super) fn tenant_defaults(&self) -> Quotas {
        self.tenant_defaults
    }

    /// What each pipeline keeps of its output and dead letters.
    pub(super) fn retention(&self) -> Result<Retention, String> {
        let d = Retention::default();
        let output_bytes = match self.retention.output_mib {
            None => d.output_bytes,
            Some(mib) if (1..=MAX_QUOTA_MIB).contains(&mib) => mib << 20,
            Some(_) => return Err(format!("retention.output_mib: 1 to {MAX_QUOTA_MIB}")),
        };
        let dead_letters_mib = match self.retention.dead_letters_mib {
            None => d.dead_letters_mib,
            // Each file at most the largest rotation the manifest takes (1 TiB).
            Some(mib) if (DEAD_LETTER_FILES..=DEAD_LETTER_FILES << 20).contains(&mib) => mib,
            Some(_) => {
                return Err(format!(
                    "retention.dead_letters_mib: {DEAD_LETTER_FILES} to {} (kept in {DEAD_LETTER_FILES} files)",
                    DEAD_LETTER_FILES << 20
                ))
            }
        };
        Ok(Retention { output_bytes, dead_letters_mib })
    }

    /// How long and how many `Idempotency-Key`s each pipeline remembers.
    pub(super) fn idempotency(&self) -> Result<Remember, String> {
        let d = Remember::default();
        let window = match &self.ingest.idempotency_window {
            Some(text) => {
                let w = parse_duration(text).map_err(|e| format!("ingest.idempotency_window: {e}"))?;
                u64::try_from(w.as_millis()).map_err(|_| "ingest.idempotency_window: too long".to_string())?
            }
            None => d.window_ms,
        };
        let keys = self.ingest.idempotency_keys.unwrap_or(d.max_keys);
        if window == 0 || keys == 0 || keys > 10_000_000 {
            return Err("ingest: the idempotency window and keys must be positive (keys at most 10,000,000)".into());
        }
        Ok(Remember { window_ms: window, max_keys: keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_every_default() {
        let c = ServeConfig::parse("").unwrap();
        assert_eq!(c.bounds(Bounds::hosted()).unwrap(), Bounds::hosted());
        assert_eq!(c.http().unwrap(), HttpLimits::default());
        assert_eq!(c.tenant_defaults(), Quotas::default());
        assert_eq!(c.idempotency(), Ok(Remember::default()));
        assert_eq!((c.listen, c.data_dir), (None, None));
    }

    #[test]
    fn the_documented_example_is_every_default() {
        let c = ServeConfig::parse(include_str!("../../../deploy/weir-serve.yaml")).unwrap();
        assert_eq!(c.bounds(Bounds::hosted()).unwrap(), Bounds::hosted());
        assert_eq!(c.http().unwrap(), HttpLimits::default());
        assert_eq!(c.tenant_defaults(), Quotas::default());
        assert_eq!(c.idempotency(), Ok(Remember::default()));
        assert_eq!(c.retention(), Ok(Retention::default()));
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(c.data_dir, Some(PathBuf::from("weir-data")));
    }

    #[test]
    fn every_section_is_applied() {
        let c = ServeConfig::parse(
            "listen: 0.0.0.0:9000\ndata_dir: /srv/weir\n\
             bounds: { max_windows_per_record: 50, max_session_gap: 1h }\n\
             http: { max_connections: 10, max_requests_in_flight_per_tenant: 2, body_timeout: 5s }\n\
             tenant_defaults: { max_pipelines: 3, memory_mib: 64 }\n\
             ingest: { idempotency_window: 1h, idempotency_keys: 500 }\n\
             retention: { output_mib: 5, dead_letters_mib: 8 }\n",
        )
        .unwrap();
        assert_eq!(c.listen.as_deref(), Some("0.0.0.0:9000"));
        let b = c.bounds(Bounds::hosted()).unwrap();
        assert_eq!((b.max_windows_per_record, b.max_session_gap), (50, Duration::from_secs(3600)));
        assert_eq!(b.max_parallelism, Bounds::hosted().max_parallelism);
        let h = c.http().unwrap();
        assert_eq!((h.max_connections, h.max_requests_in_flight_per_tenant), (10, 2));
        assert_eq!(h.body_timeout, Duration::from_secs(5));
        assert_eq!(h.header_timeout, HttpLimits::default().header_timeout);
        let q = c.tenant_defaults();
        assert_eq!((q.max_pipelines, q.memory_mib, q.cpu_ms_per_call), (3, 64, Quotas::default().cpu_ms_per_call));
        assert_eq!(c.idempotency(), Ok(Remember { window_ms: 3_600_000, max_keys: 500 }));
        assert_eq!(c.retention(), Ok(Retention { output_bytes: 5 << 20, dead_letters_mib: 8 }));
    }

    #[test]
    fn a_misspelt_or_invalid_setting_is_an_error_naming_it() {
        for (text, names) in [
            ("bounds: { max_windows_per_recrod: 5 }", "max_windows_per_recrod"),
            ("bounds: { max_session_gap: forever }", "max_session_gap"),
            ("http: { max_conections: 5 }", "max_conections"),
            ("http: { body_timeout: 0s }", "body timeout"),
            ("http: { header_timeout: soon }", "http.header_timeout"),
            ("tenant_defaults: { memory_mb: 5 }", "memory_mb"),
            ("tenant_defaults: { memory_mib: 0 }", "tenant_defaults"),
            ("admin_token: secret", "admin_token"),
            ("ingest: { idempotency_window: 0s }", "idempotency"),
            ("ingest: { idempotency_keys: 0 }", "idempotency"),
            ("ingest: { idempotency_windw: 1h }", "idempotency_windw"),
            ("retention: { output_mib: 0 }", "retention.output_mib"),
            ("retention: { output_mb: 5 }", "output_mb"),
            ("retention: { dead_letters_mib: 3 }", "retention.dead_letters_mib"),
            ("retention: { dead_letters_mib: 4194305 }", "retention.dead_letters_mib"),
        ] {
            let e = ServeConfig::parse(text).unwrap_err();
            assert!(e.contains(names), "{text}: {e}");
        }
    }

    #[test]
    fn a_relative_data_dir_is_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.yaml");
        std::fs::write(&path, "data_dir: data\n").unwrap();
        assert_eq!(ServeConfig::load(&path).unwrap().data_dir, Some(dir.path().join("data")));
        let e = ServeConfig::load(&dir.path().join("missing.yaml")).unwrap_err();
        assert!(e.contains("missing.yaml"), "{e}");
    }
}
