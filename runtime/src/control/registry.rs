//! The function registry: versions of components per tenant, checked
//! against the WIT worlds and compiled at upload, stored as
//! `udfs/TENANT/NAME@VERSION.wasm` (immutable; compiled code is cached by
//! content hash).

use super::db::UdfRow;
use super::{tenant, Caller, ControlError, ErrorKind, Platform};
use crate::connector::now_ms;
use crate::job::UdfCatalog;
use crate::types::UdfRef;
use serde::Serialize;
use std::path::PathBuf;

/// The result of an upload.
#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    /// The stored version.
    #[serde(flatten)]
    pub udf: UdfRow,
    /// Its imports.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
}

/// A tenant's functions, as a job's catalog.
pub(super) struct TenantCatalog {
    pub dir: PathBuf,
}

impl UdfCatalog for TenantCatalog {
    fn fetch(&self, udf: &UdfRef) -> Result<Vec<u8>, String> {
        let path = self.dir.join(format!("{udf}.wasm"));
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!(
                    "function {udf} is not registered (upload it: POST /v1/udfs/{}/versions/{})",
                    udf.name, udf.version
                )
            }
            _ => format!("cannot read {}: {e}", path.display()),
        })
    }
}

impl Platform {
    pub(super) fn catalog(&self, tenant: &str) -> TenantCatalog {
        TenantCatalog { dir: self.config.data_dir.join("udfs").join(tenant) }
    }

    /// Checks, compiles and stores a function version.
    pub fn upload_udf(&self, caller: &Caller, name: &str, version: &str, bytes: &[u8]) -> Result<Upload, ControlError> {
        let t = tenant(caller)?;
        let udf =
            UdfRef::parse(&format!("{name}@{version}")).map_err(|e| ControlError::bad_request("invalid_name", e))?;
        let cap = super::mib_bytes(t.quotas.max_component_mib);
        if bytes.len() as u64 > cap {
            return Err(ControlError::new(
                ErrorKind::TooLarge,
                "component_too_large",
                format!(
                    "the component has {} bytes; this tenant's limit is {} MiB",
                    bytes.len(),
                    t.quotas.max_component_mib
                ),
            ));
        }
        if self.db.udfs(&t.id, Some(name))?.iter().any(|u| u.version == version) {
            return Err(ControlError::conflict(format!(
                "{udf} exists already; versions are immutable (upload a new version)"
            )));
        }
        let loaded = self.host.load(&udf, bytes).map_err(|e| match e {
            crate::wasm::LoadError::Host(m) => ControlError::internal(m),
            e @ crate::wasm::LoadError::TooManyResources(_) => {
                ControlError::bad_request("component_exceeds_limits", e.to_string())
            }
            other => ControlError::bad_request("invalid_component", other.to_string()),
        })?;
        let kinds: Vec<String> = loaded.kinds().iter().map(|k| k.step_name().to_string()).collect();
        if kinds.is_empty() {
            return Err(ControlError::bad_request(
                "invalid_component",
                "the component exports none of the weir:udf worlds (mapper, filter, flat-mapper, aggregator, processor)",
            ));
        }
        let dir = self.catalog(&t.id).dir;
        std::fs::create_dir_all(&dir)
            .map_err(|e| ControlError::internal(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(format!("{udf}.wasm"));
        // A temp file of this upload's own (two uploads of one version used
        // to share one, and could store one's bytes under the other's hash),
        // durable before it is renamed into place.
        let tmp = dir.join(format!(".{udf}.{}.tmp", super::random_hex(8)?));
        let stored = std::fs::File::create(&tmp).and_then(|mut f| {
            use std::io::Write;
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = stored {
            let _ = std::fs::remove_file(&tmp);
            return Err(ControlError::internal(format!("cannot store {}: {e}", path.display())));
        }
        let row = UdfRow {
            name: name.to_string(),
            version: version.to_string(),
            sha256: loaded.hash.clone(),
            size: bytes.len() as u64,
            kinds,
            compile_ms: loaded.compile_time.as_millis() as u64,
            created_ms: now_ms(),
        };
        // One upload at a time from here: the version is claimed (no row
        // yet), the file renamed into place, then the row inserted. A crash
        // in between leaves a file without a row, which the next upload of
        // the version replaces; never a row without its file.
        let registered = {
            let _one = super::lock(&self.uploads);
            let all = self.db.udfs(&t.id, None)?;
            if all.iter().any(|u| u.name == name && u.version == version) {
                Err(ControlError::conflict(format!(
                    "{udf} exists already; versions are immutable (upload a new version)"
                )))
            } else if all.len() as u64 >= u64::from(t.quotas.max_udf_versions) {
                Err(ControlError::quota(format!(
                    "this tenant has {} function versions, its limit (max_udf_versions); delete unused ones first",
                    all.len()
                )))
            } else if let Err(e) = std::fs::rename(&tmp, &path) {
                Err(ControlError::internal(format!("cannot store {}: {e}", path.display())))
            } else {
                self.db.insert_udf(&t.id, &row).inspect_err(|_| {
                    let _ = std::fs::remove_file(&path);
                })
            }
        };
        if let Err(e) = registered {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        tracing::info!(tenant = %t.name, "registered {udf} ({} bytes, compiled in {} ms)", row.size, row.compile_ms);
        Ok(Upload { udf: row, imports: loaded.imports.clone(), exports: loaded.exports.clone() })
    }

    /// The caller's function versions (of `name`, or all).
    pub fn udfs(&self, caller: &Caller, name: Option<&str>) -> Result<Vec<UdfRow>, ControlError> {
        let t = tenant(caller)?;
        let rows = self.db.udfs(&t.id, name)?;
        if let (Some(n), true) = (name, rows.is_empty()) {
            return Err(ControlError::not_found(format!("no function named `{n}`")));
        }
        Ok(rows)
    }

    /// Deletes a version; refused while a pipeline uses it.
    pub fn delete_udf(&self, caller: &Caller, name: &str, version: &str) -> Result<(), ControlError> {
        let t = tenant(caller)?;
        let udf = format!("{name}@{version}");
        if !self.db.udfs(&t.id, Some(name))?.iter().any(|u| u.version == version) {
            return Err(ControlError::not_found(format!("no function {udf}")));
        }
        let users = self.pipelines.using(&self.db, &t.id, &udf)?;
        if !users.is_empty() {
            return Err(ControlError::conflict(format!(
                "{udf} is used by pipeline(s) {}; delete them (or swap the step to another version) first",
                users.join(", ")
            )));
        }
        self.db.delete_udf(&t.id, name, version)?;
        let _ = std::fs::remove_file(self.catalog(&t.id).dir.join(format!("{udf}.wasm")));
        Ok(())
    }
}
