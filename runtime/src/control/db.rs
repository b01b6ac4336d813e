//! The metadata store of `weir serve`: an embedded SQLite database with
//! tenants (token hashes, quotas), function versions, pipelines and their
//! checkpoint index. Component bytes and state live in files next to it.

use super::{ControlError, Quotas};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    quotas TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS udf_versions (
    tenant TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    kinds TEXT NOT NULL,
    compile_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, name, version)
);
CREATE TABLE IF NOT EXISTS pipelines (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    manifest TEXT NOT NULL,
    steps TEXT NOT NULL,
    desired TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    pipeline TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    completed_ms INTEGER NOT NULL,
    PRIMARY KEY (pipeline, id)
);
";

/// A tenant row.
#[derive(Debug, Clone)]
pub struct TenantRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its quotas.
    pub quotas: Quotas,
}

/// A function version row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UdfRow {
    /// Function name.
    pub name: String,
    /// Version.
    pub version: String,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// Component size, bytes.
    pub size: u64,
    /// The step kinds it can serve.
    pub kinds: Vec<String>,
    /// Compile time at upload, ms.
    pub compile_ms: u64,
    /// Upload time, ms since the epoch.
    pub created_ms: i64,
}

/// A pipeline row.
#[derive(Debug, Clone)]
pub struct PipelineRow {
    /// Its id.
    pub id: String,
    /// Owner.
    pub tenant: String,
    /// Its manifest's name.
    pub name: String,
    /// The manifest as submitted.
    pub manifest: String,
    /// Function versions swapped in since (step index → `name@version`), JSON.
    pub steps: String,
    /// `running` or `stopped`: what a restart of the server does.
    pub desired: String,
    /// Last known status.
    pub status: String,
    /// Last error.
    pub error: Option<String>,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
}

/// A checkpoint index row: id, kind, directory, duration (ms), completion time (ms since the epoch).
pub type CheckpointRow = (u64, String, String, i64, i64);

/// Checkpoint index rows kept per pipeline, newest first.
pub const CHECKPOINT_ROWS: u32 = 100;

/// The database.
pub struct Db {
    conn: Mutex<Connection>,
}

fn internal(e: rusqlite::Error) -> ControlError {
    ControlError::internal(format!("metadata database: {e}"))
}

impl Db {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Db, ControlError> {
        let conn = Connection::open(path)
            .map_err(|e| ControlError::internal(format!("cannot open {}: {e}", path.display())))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(internal)?;
        conn.execute_batch(SCHEMA).map_err(internal)?;
        Ok(Db { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a tenant; refused if the name is taken.
    pub fn insert_tenant(&self, t: &TenantRow, token_hash: &str, now: i64) -> Result<(), ControlError> {
        let quotas = serde_json::to_string(&t.quotas).expect("quotas serialize");
        let r = self.conn().execute(
            "INSERT INTO tenants (id, name, token_hash, quotas, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.id, t.name, token_hash, quotas, now],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(ControlError::conflict(format!("a tenant named `{}` exists already", t.name)))
            }
            Err(e) => Err(internal(e)),
        }
    }

    fn tenant_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<TenantRow> {
        let quotas: String = row.get(2)?;
        Ok(TenantRow { id: row.get(0)?, name: row.get(1)?, quotas: serde_json::from_str(&quotas).unwrap_or_default() })
    }

    /// The tenant holding the token with this hash.
    pub fn tenant_by_token(&self, token_hash: &str) -> Result<Option<TenantRow>, ControlError> {
        self.conn()
            .query_row("SELECT id, name, quotas FROM tenants WHERE token_hash = ?1", [token_hash], Self::tenant_from)
            .optional()
            .map_err(internal)
    }

    /// Replaces the quotas of the tenant named `name`; `None` if there is none.
    pub fn set_tenant_quotas(&self, name: &str, quotas: &Quotas) -> Result<Option<TenantRow>, ControlError> {
        let text = serde_json::to_string(quotas).expect("quotas serialize");
        let n = self
            .conn()
            .execute("UPDATE tenants SET quotas = ?1 WHERE name = ?2", params![text, name])
            .map_err(internal)?;
        if n == 0 {
            return Ok(None);
        }
        Ok(self.tenants()?.into_iter().find(|t| t.name == name))
    }

    /// Every tenant.
    pub fn tenants(&self) -> Result<Vec<TenantRow>, ControlError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id, name, quotas FROM tenants ORDER BY created_ms").map_err(internal)?;
        let rows = st.query_map([], Self::tenant_from).map_err(internal)?;
        rows.collect::<Result<_, _>>().map_err(internal)
    }

    /// Records a function version; refused if it exists.
    pub fn insert_udf(&self, tenant: &str, u: &UdfRow) -> Result<(), ControlError> {
        let r = self.conn().execute(
            "INSERT INTO udf_versions (tenant, name, version, sha256, size, kinds, compile_ms, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![tenant, u.name, u.version, u.sha256, u.size, u.kinds.join(","), u.compile_ms, u.created_ms],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(ControlError::conflict(format!(
                    "{}@{} exists already; versions are immutable (upload a new version)",
                    u.name, u.version
                )))
            }
            Err(e) => Err(internal(e)),
        }
    }

    /// A tenant's function versions (of `name`, or all).
    pub fn udfs(&self, tenant: &str, name: Option<&str>) -> Result<Vec<UdfRow>, ControlError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT name, version, sha256, size, kinds, compile_ms, created_ms FROM udf_versions
                 WHERE tenant = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name, created_ms",
            )
            .map_err(internal)?;
        let rows = st
            .query_map(params![tenant, name], |r| {
                let kinds: String = r.get(4)?;
                Ok(UdfRow {
                    name: r.get(0)?,
                    version: r.get(1)?,
                    sha256: r.get(2)?,
                    size: r.get(3)?,
                    kinds: kinds.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect(),
                    compile_ms: r.get(5)?,
                    created_ms: r.get(6)?,
                })
            })
            .map_err(internal)?;
        rows.collect::<Result<_, _>>().map_err(internal)
    }

    /// Removes a function version; whether it existed.
    pub fn delete_udf(&self, tenant: &str, name: &str, version: &str) -> Result<bool, ControlError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM udf_versions WHERE tenant = ?1 AND name = ?2 AND version = ?3",
                params![tenant, name, version],
            )
            .map_err(internal)?;
        Ok(n > 0)
    }

    /// Adds a pipeline.
    /// Inserts `p` if its tenant has fewer than `max` pipelines, counted
    /// in the same statement (so concurrent creates cannot all pass);
    /// false if it has that many already.
    pub fn insert_pipeline_within(&self, p: &PipelineRow, max: u32) -> Result<bool, ControlError> {
        let inserted = self
            .conn()
            .execute(
                "INSERT INTO pipelines (id, tenant, name, manifest, steps, desired, status, error, created_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
                 WHERE (SELECT COUNT(*) FROM pipelines WHERE tenant = ?2) < ?10",
                params![p.id, p.tenant, p.name, p.manifest, p.steps, p.desired, p.status, p.error, p.created_ms, max],
            )
            .map_err(internal)?;
        Ok(inserted == 1)
    }

    /// Every pipeline (of `tenant`, or of all).
    pub fn pipelines(&self, tenant: Option<&str>) -> Result<Vec<PipelineRow>, ControlError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT id, tenant, name, manifest, steps, desired, status, error, created_ms FROM pipelines
                 WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_ms, id",
            )
            .map_err(internal)?;
        let rows = st
            .query_map(params![tenant], |r| {
                Ok(PipelineRow {
                    id: r.get(0)?,
                    tenant: r.get(1)?,
                    name: r.get(2)?,
                    manifest: r.get(3)?,
                    steps: r.get(4)?,
                    desired: r.get(5)?,
                    status: r.get(6)?,
                    error: r.get(7)?,
                    created_ms: r.get(8)?,
                })
            })
            .map_err(internal)?;
        rows.collect::<Result<_, _>>().map_err(internal)
    }

    /// Updates what a restart does and the last status.
    pub fn set_pipeline_state(
        &self,
        id: &str,
        desired: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), ControlError> {
        self.conn()
            .execute(
                "UPDATE pipelines SET desired = ?2, status = ?3, error = ?4 WHERE id = ?1",
                params![id, desired, status, error],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// Updates the swapped-in function versions.
    pub fn set_pipeline_steps(&self, id: &str, steps: &str) -> Result<(), ControlError> {
        self.conn().execute("UPDATE pipelines SET steps = ?2 WHERE id = ?1", params![id, steps]).map_err(internal)?;
        Ok(())
    }

    /// Removes a pipeline and its checkpoint index.
    pub fn delete_pipeline(&self, id: &str) -> Result<(), ControlError> {
        self.conn().execute("DELETE FROM pipelines WHERE id = ?1", [id]).map_err(internal)?;
        Ok(())
    }

    /// Records a completed checkpoint or savepoint, and forgets the
    /// pipeline's rows beyond the newest [`CHECKPOINT_ROWS`] (a row every
    /// two seconds per pipeline, kept for ever, grew the database by tens
    /// of thousands of rows a day per pipeline).
    pub fn insert_checkpoint(
        &self,
        pipeline: &str,
        id: u64,
        kind: &str,
        path: &str,
        duration_ms: i64,
        completed_ms: i64,
    ) -> Result<(), ControlError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO checkpoints (pipeline, id, kind, path, duration_ms, completed_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![pipeline, id, kind, path, duration_ms, completed_ms],
            )
            .map_err(internal)?;
        self.conn()
            .execute(
                "DELETE FROM checkpoints WHERE pipeline = ?1 AND id NOT IN
                 (SELECT id FROM checkpoints WHERE pipeline = ?1 ORDER BY id DESC LIMIT ?2)",
                params![pipeline, CHECKPOINT_ROWS],
            )
            .map_err(internal)?;
        Ok(())
    }

    /// The ids of the pipelines of `tenant`.
    pub fn pipeline_ids(&self, tenant: &str) -> Result<Vec<String>, ControlError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT id FROM pipelines WHERE tenant = ?1").map_err(internal)?;
        let rows = st.query_map(params![tenant], |r| r.get(0)).map_err(internal)?;
        rows.collect::<Result<_, _>>().map_err(internal)
    }

    /// The newest checkpoints of a pipeline, newest first.
    pub fn checkpoints(&self, pipeline: &str, limit: u32) -> Result<Vec<CheckpointRow>, ControlError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT id, kind, path, duration_ms, completed_ms FROM checkpoints WHERE pipeline = ?1
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(internal)?;
        let rows = st
            .query_map(params![pipeline, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .map_err(internal)?;
        rows.collect::<Result<_, _>>().map_err(internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bug: a row per checkpoint, every two seconds, kept for ever.
    #[test]
    fn the_checkpoint_index_keeps_only_the_newest_rows_of_each_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("meta.db")).unwrap();
        let tenant = TenantRow { id: "t-1".into(), name: "acme".into(), quotas: Quotas::default() };
        db.insert_tenant(&tenant, "hash", 0).unwrap();
        for id in ["p-1", "p-2"] {
            let row = PipelineRow {
                id: id.into(),
                tenant: "t-1".into(),
                name: id.into(),
                manifest: String::new(),
                steps: "{}".into(),
                desired: "running".into(),
                status: "running".into(),
                error: None,
                created_ms: 0,
            };
            assert!(db.insert_pipeline_within(&row, 10).unwrap());
        }
        let total = u64::from(CHECKPOINT_ROWS) + 50;
        for id in 1..=total {
            db.insert_checkpoint("p-1", id, "checkpoint", "chk", 1, 1).unwrap();
        }
        db.insert_checkpoint("p-2", 1, "savepoint", "savepoint", 1, 1).unwrap();
        let kept = db.checkpoints("p-1", 1_000).unwrap();
        assert_eq!(kept.len(), CHECKPOINT_ROWS as usize);
        assert_eq!((kept[0].0, kept.last().unwrap().0), (total, total - u64::from(CHECKPOINT_ROWS) + 1));
        assert_eq!(db.checkpoints("p-2", 1_000).unwrap().len(), 1, "another pipeline's rows stay");
        let mut ids = db.pipeline_ids("t-1").unwrap();
        ids.sort();
        assert_eq!(ids, ["p-1", "p-2"]);
    }
}
