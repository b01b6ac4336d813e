//! Records into a hosted pipeline over HTTP: posts appended to the ingest
//! journal of its `http` source (under the tenant's ingest rate quota, and
//! once per `Idempotency-Key`).

use super::manifest::serve_manifest;
use super::{lock, Pipelines};
use crate::connector::journal::{AppendError, Appended, IdempotencyKey, Journal};
use crate::connector::now_ms;
use crate::control::ingest_rate::Rate;
use crate::control::{tenant, Caller, ControlError, ErrorKind, Platform};
use crate::manifest::SourceKind;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// The longest `Idempotency-Key`.
pub const MAX_KEY: usize = 255;

/// An acknowledged post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Records in the post.
    pub accepted: usize,
    /// Whether it was a retry of a post already appended (same key and body).
    pub replayed: bool,
}

/// Checks a client's `Idempotency-Key`: 1 to [`MAX_KEY`] visible ASCII
/// characters (it is stored, and echoed in errors).
fn check_key(key: &str) -> Result<(), ControlError> {
    if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ControlError::bad_request(
            "invalid_idempotency_key",
            format!("an Idempotency-Key is 1-{MAX_KEY} visible ASCII characters (a UUID is a good one)"),
        ));
    }
    Ok(())
}

impl Platform {
    /// Appends records (one per line of `body`) to a pipeline's `http`
    /// source. With `key`, a retry of the same post (same key and body,
    /// within the server's idempotency window) is acknowledged again
    /// without a second append.
    pub fn ingest(&self, caller: &Caller, id: &str, body: &[u8], key: Option<&str>) -> Result<Ingested, ControlError> {
        let t = tenant(caller)?;
        if let Some(k) = key {
            check_key(k)?;
        }
        let row = self.pipelines.row(&self.db, t, id)?;
        // A stopped pipeline's journal is durable and keeps taking records
        // (they are read when it resumes); a failed one's would never be
        // read unless someone resumes it, so the client hears it now.
        let (status, error) = self.pipelines.current_status(&row);
        if status == "failed" {
            let why = error.map(|e| format!(" ({e})")).unwrap_or_default();
            return Err(ControlError::conflict(format!(
                "pipeline {id} has failed{why}; records posted to it would not be read: resume it or delete it"
            )));
        }
        let journal = self.pipelines.journal(id, &row.manifest, &row.steps)?;
        let body = body.strip_suffix(b"\n").unwrap_or(body);
        let records = if body.is_empty() { 0 } else { 1 + memchr::memchr_iter(b'\n', body).count() };
        let rate = Rate { records_per_s: t.quotas.ingest_records_per_s, bytes_per_s: t.quotas.ingest_bytes_per_s };
        let admitted = lock(&self.ingest_rates).admit(&t.id, rate, records as u64, body.len() as u64, Instant::now());
        if let Err(wait) = admitted {
            let retry_after_s = wait.as_secs_f64().ceil().max(1.0) as u64;
            return Err(ControlError::new(
                ErrorKind::RateLimited { retry_after_s },
                "ingest_rate_exceeded",
                format!(
                    "this tenant posts more than its ingest quota of {} records and {} bytes per second \
                     (ingest_records_per_s, ingest_bytes_per_s): retry in {retry_after_s} s",
                    rate.records_per_s, rate.bytes_per_s
                ),
            ));
        }
        let key = key.map(|k| IdempotencyKey {
            key: k.to_string(),
            digest: Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect(),
            remember: self.config.idempotency,
        });
        let lines = body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let lines = lines.take(records);
        match journal.append(lines, key.as_ref(), u64::try_from(now_ms()).unwrap_or(0)) {
            Ok(Appended::New(n)) => Ok(Ingested { accepted: n, replayed: false }),
            Ok(Appended::Replayed(n)) => Ok(Ingested { accepted: n, replayed: true }),
            Err(e @ AppendError::Invalid(_)) => Err(ControlError::bad_request("invalid_records", e.to_string())),
            Err(e @ AppendError::KeyReused(_)) => {
                Err(ControlError::new(ErrorKind::Unprocessable, "idempotency_key_reused", e.to_string()))
            }
            Err(AppendError::Io(e)) => Err(ControlError::internal(format!("cannot write the ingest journal: {e}"))),
        }
    }
}

impl Pipelines {
    /// The ingest journal of pipeline `id` (whose stored manifest and steps
    /// are given), opened at its first post; a pipeline whose source is not
    /// `http` has none.
    fn journal(&self, id: &str, manifest: &str, steps: &str) -> Result<Arc<Journal>, ControlError> {
        let mut journals = lock(&self.journals);
        if let Some(j) = journals.get(id) {
            return Ok(j.clone());
        }
        // Checked once, when the journal is first opened (not per post).
        let dir = self.dir(id);
        let m = serve_manifest(manifest, &dir, steps, &self.bounds)?;
        if !matches!(m.source.kind, SourceKind::Http { .. }) {
            return Err(ControlError::conflict(format!(
                "pipeline {id} does not read from http (its source is not `http`)"
            )));
        }
        let j = Journal::shared(&dir.join("ingest.log")).map_err(|e| ControlError::internal(e.to_string()))?;
        journals.insert(id.to_string(), j.clone());
        Ok(j)
    }
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(check_key("3f2a-9c1e_retry.1").is_ok());
        assert!(check_key(&"k".repeat(255)).is_ok());
        for bad in ["", "with space", "new\nline", "ünï", &"k".repeat(256)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
