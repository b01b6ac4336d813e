//! Records into a hosted pipeline over HTTP: posts appended to the ingest
//! journal of its `http` source (under the tenant's ingest rate and disk
//! quotas, and once per `Idempotency-Key`).
//!
//! The disk quota (`max_ingest_mib`) bounds what the tenant's journals hold
//! on disk: what its pipelines have not read past their oldest retained
//! checkpoint (the rest is given back, see `retention`). A running pipeline
//! that keeps up holds little; a stopped one (which keeps taking records, to
//! be read when it resumes) or one that falls behind grows its journal with
//! every post, and would fill the server's disk at the rate quota's pace.
//! Checked before each append against the bytes on disk now, so concurrent
//! posts can overshoot by at most what is in flight at once (bounded by the
//! tenant's requests in flight times the 16 MiB body limit).

use super::manifest::serve_manifest;
use super::{lock, Pipelines};
use crate::connector::journal::{AppendError, Appended, IdempotencyKey, Journal};
use crate::connector::now_ms;
use crate::control::ingest_rate::Rate;
use crate::control::usage::ingest_held;
use crate::control::{mib_bytes, tenant, Caller, ControlError, ErrorKind, Platform};
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

/// Why a post of `incoming` bytes would take the tenant's journals, which
/// hold `held` bytes on disk, past its quota of `limit_mib`, if it would.
fn over_ingest_quota(held: u64, incoming: u64, limit_mib: u64) -> Option<String> {
    let limit = mib_bytes(limit_mib);
    (held.saturating_add(incoming) > limit).then(|| {
        format!(
            "this tenant's ingest journals hold {} MiB of posted records its pipelines have not read yet; \
             this post would take them past its quota of {limit_mib} MiB (max_ingest_mib): \
             resume its stopped pipelines (or let them catch up), delete the ones nobody reads, or ask for a larger quota",
            held >> 20
        )
    })
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
        let key = key.map(|k| IdempotencyKey {
            key: k.to_string(),
            digest: Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect(),
            remember: self.config.idempotency,
        });
        let now = u64::try_from(now_ms()).unwrap_or(0);
        // A retry of a post already taken appends nothing: only new posts count.
        if journal.would_append(key.as_ref(), now) {
            let held: u64 = self.db.pipeline_ids(&t.id)?.iter().map(|p| ingest_held(&self.pipelines.dir(p))).sum();
            if let Some(why) = over_ingest_quota(held, body.len() as u64, t.quotas.max_ingest_mib) {
                return Err(ControlError::new(ErrorKind::Quota, "ingest_quota_exceeded", why));
            }
        }
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
        let lines = body.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let lines = lines.take(records);
        match journal.append(lines, key.as_ref(), now) {
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
        let m = serve_manifest(manifest, &dir, steps, &self.bounds, &self.retention)?;
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
    use super::{check_key, over_ingest_quota};

    #[test]
    fn a_stopped_pipeline_cannot_fill_the_disk_with_posts() {
        let mib = 1u64 << 20;
        // Up to the quota exactly is fine.
        assert_eq!(over_ingest_quota(0, 2 * mib, 2), None);
        assert_eq!(over_ingest_quota(mib, mib, 2), None);
        let why = over_ingest_quota(2 * mib, 1, 2).expect("one byte over");
        assert!(why.contains("max_ingest_mib") && why.contains("2 MiB"), "{why}");
        // No overflow at the largest values.
        assert!(over_ingest_quota(u64::MAX, u64::MAX, crate::control::MAX_QUOTA_MIB).is_some());
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(check_key("3f2a-9c1e_retry.1").is_ok());
        assert!(check_key(&"k".repeat(255)).is_ok());
        for bad in ["", "with space", "new\nline", "ünï", &"k".repeat(256)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
