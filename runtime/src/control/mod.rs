//! The control plane of `weir serve`: tenants and their quotas, the
//! function registry, and the pipelines it runs. Plain Rust over the
//! metadata database and the job layer; it knows nothing of HTTP (the `api`
//! module maps [`ControlError`] kinds to status codes).

pub mod db;
mod ingest_rate;
mod operations;
mod pipelines;
mod redact;
mod registry;
mod usage;

pub use operations::{OperationKind, OperationState, OperationView};
pub use pipelines::{PipelineView, Retention, StepView, SwapRequest, SwapView, DEAD_LETTER_FILES};
pub use registry::Upload;
pub use usage::{DiskUsage, UsageView};

use crate::connector::journal::Remember;
use crate::connector::now_ms;
use crate::manifest::Bounds;
use crate::wasm::WasmHost;
use db::{Db, TenantRow};
use pipelines::Pipelines;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of failure a request met (the API turns it into a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or invalid (400).
    BadRequest,
    /// No or a wrong token (401).
    Unauthorized,
    /// Only the admin may (403).
    Forbidden,
    /// No such resource, or not the caller's (404).
    NotFound,
    /// It conflicts with the current state (409).
    Conflict,
    /// Too large (413).
    TooLarge,
    /// A quota is exhausted (429).
    Quota,
    /// A rate quota is exhausted for now: retry after this many seconds
    /// (429 with `Retry-After`).
    RateLimited {
        /// Seconds until a retry can succeed (at least 1).
        retry_after_s: u64,
    },
    /// The request is well-formed but contradicts an earlier one (422).
    Unprocessable,
    /// The server failed (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::Quota | ErrorKind::RateLimited { .. } => 429,
            ErrorKind::Unprocessable => 422,
            ErrorKind::Internal => 500,
        }
    }
}

/// A failed request: its kind, a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlError {
    /// Which kind.
    pub kind: ErrorKind,
    /// A stable, machine-readable code (`invalid_manifest`, `quota_exceeded`, ...).
    pub code: &'static str,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ControlError {}

impl ControlError {
    /// A new error.
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        ControlError { kind, code, message: message.into() }
    }
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", message)
    }
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, "conflict", message)
    }
    pub(crate) fn quota(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Quota, "quota_exceeded", message)
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal", message)
    }
}

/// Limits of one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    /// Pipelines it may have (running or stopped).
    pub max_pipelines: u32,
    /// Largest parallelism of a pipeline.
    pub max_parallelism: u32,
    /// Linear memory per function instance, MiB.
    pub memory_mib: u64,
    /// Wall-clock deadline of one function call, ms.
    pub cpu_ms_per_call: u64,
    /// Largest component upload, MiB.
    pub max_component_mib: u64,
    /// Checkpoints and state of all its pipelines on the server's disk, MiB.
    pub max_state_mib: u64,
    /// Records it may post to its `http` sources per second, over all its
    /// pipelines (more get 429 with `Retry-After`).
    pub ingest_records_per_s: u64,
    /// Bytes it may post to its `http` sources per second.
    pub ingest_bytes_per_s: u64,
    /// Function versions it may have registered, over all its functions.
    pub max_udf_versions: u32,
    /// Posted records its `http` sources' ingest journals may hold on the
    /// server's disk, MiB: what its pipelines have not read yet (or not
    /// past their oldest retained checkpoint). A stopped pipeline keeps
    /// taking records, so without this its journal grows with every post.
    pub max_ingest_mib: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            max_pipelines: 10,
            max_parallelism: 4,
            memory_mib: 128,
            cpu_ms_per_call: 1000,
            max_component_mib: 64,
            max_state_mib: 1024,
            ingest_records_per_s: 50_000,
            ingest_bytes_per_s: 64 << 20,
            max_udf_versions: 100,
            max_ingest_mib: 1024,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The admin token.
    Admin,
    /// A tenant's token.
    Tenant(Tenant),
}

/// A tenant, as a caller.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its quotas.
    pub quotas: Quotas,
}

/// A new tenant and its token (shown once).
#[derive(Debug, Clone, Serialize)]
pub struct NewTenant {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The API token (only its hash is kept).
    pub token: String,
    /// Its quotas.
    pub quotas: Quotas,
}

/// Settings of the control plane.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Where everything lives: `meta.db`, `udfs/`, `pipelines/`, `components/`.
    pub data_dir: PathBuf,
    /// The admin token.
    pub admin_token: String,
    /// What a tenant's manifest may ask for.
    pub bounds: Bounds,
    /// The quotas of a new tenant where its creation names none.
    pub tenant_defaults: Quotas,
    /// How long and how many `Idempotency-Key`s of posted records each
    /// pipeline remembers.
    pub idempotency: Remember,
    /// What each pipeline keeps of its output and dead letters.
    pub retention: Retention,
}

/// The control plane: metadata, the registry, running pipelines.
pub struct Platform {
    db: std::sync::Arc<Db>,
    config: PlatformConfig,
    host: WasmHost,
    pipelines: Pipelines,
    /// The tenants' ingest rate buckets.
    ingest_rates: std::sync::Mutex<ingest_rate::IngestRates>,
    /// Held while an upload claims its version and stores its file.
    uploads: std::sync::Mutex<()>,
    /// Stops, savepoints and swaps, running and recent.
    operations: std::sync::Arc<std::sync::Mutex<operations::Operations>>,
}

/// Locks `m`, whether or not a holder panicked (every value kept under
/// these locks is valid between statements).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `n` random bytes from the system's generator, as hex: tokens and ids.
/// Fails when the generator cannot be read (there used to be a fallback to
/// the time and the process id, which made tokens guessable without a word).
pub fn random_hex(n: usize) -> Result<String, ControlError> {
    random_hex_from(Path::new("/dev/urandom"), n)
}

fn random_hex_from(source: &Path, n: usize) -> Result<String, ControlError> {
    use std::io::Read;
    let mut bytes = vec![0u8; n];
    std::fs::File::open(source)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ControlError::internal(format!("cannot read the system's random number generator: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `base` with the fields named in `changes` set (unknown names and values
/// of the wrong type are a 400 naming them), checked.
fn quotas_changed(base: Quotas, changes: serde_json::Map<String, serde_json::Value>) -> Result<Quotas, ControlError> {
    let mut merged = match serde_json::to_value(base) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err(ControlError::internal("quotas do not serialize as an object")),
    };
    merged.extend(changes);
    let quotas: Quotas = serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| ControlError::bad_request("invalid_quotas", e.to_string()))?;
    check_quotas(&quotas)?;
    Ok(quotas)
}

/// The largest quota in MiB (`memory_mib`, `max_component_mib`,
/// `max_state_mib`, `max_ingest_mib`): 1 PiB, far beyond any machine, and small enough that its
/// bytes fit in a `u64` (a larger value used to wrap around to a tiny cap).
pub const MAX_QUOTA_MIB: u64 = 1 << 30;

/// `mib` MiB in bytes (saturating, for quotas stored before [`MAX_QUOTA_MIB`]).
pub(crate) fn mib_bytes(mib: u64) -> u64 {
    mib.saturating_mul(1 << 20)
}

/// Quotas must be positive (a tenant may be allowed no pipelines) and the
/// ones in MiB at most [`MAX_QUOTA_MIB`].
pub fn check_quotas(q: &Quotas) -> Result<(), ControlError> {
    if q.max_parallelism == 0
        || q.memory_mib == 0
        || q.cpu_ms_per_call == 0
        || q.max_component_mib == 0
        || q.max_state_mib == 0
        || q.ingest_records_per_s == 0
        || q.ingest_bytes_per_s == 0
        || q.max_ingest_mib == 0
    {
        return Err(ControlError::bad_request(
            "invalid_quotas",
            "quotas must be positive (max_pipelines and max_udf_versions may be 0)",
        ));
    }
    for (name, value) in [
        ("memory_mib", q.memory_mib),
        ("max_component_mib", q.max_component_mib),
        ("max_state_mib", q.max_state_mib),
        ("max_ingest_mib", q.max_ingest_mib),
    ] {
        if value > MAX_QUOTA_MIB {
            return Err(ControlError::bad_request(
                "invalid_quotas",
                format!("{name}: {value} is above the largest quota in MiB, {MAX_QUOTA_MIB} (1 PiB)"),
            ));
        }
    }
    Ok(())
}

/// Names of tenants: like pipeline names.
fn check_name(what: &str, name: &str) -> Result<(), ControlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_');
    if ok {
        Ok(())
    } else {
        Err(ControlError::bad_request("invalid_name", format!("{what} `{name}`: use 1-64 of a-z, 0-9, `-` and `_`")))
    }
}

impl Platform {
    /// Opens the data directory and starts every pipeline that was running.
    pub fn start(mut config: PlatformConfig, host: WasmHost) -> Result<Platform, ControlError> {
        // Absolute, so every path handed to the engine has one form to redact.
        config.data_dir = std::path::absolute(&config.data_dir)
            .map_err(|e| ControlError::internal(format!("the data directory: {e}")))?;
        let dir = &config.data_dir;
        for sub in ["udfs", "pipelines"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| ControlError::internal(format!("cannot create {}: {e}", dir.join(sub).display())))?;
        }
        let db = std::sync::Arc::new(Db::open(&dir.join("meta.db"))?);
        let pipelines = Pipelines::new(dir.join("pipelines"), config.bounds, config.retention);
        let platform = Platform {
            db,
            config,
            host,
            pipelines,
            ingest_rates: Default::default(),
            uploads: Default::default(),
            operations: Default::default(),
        };
        platform.pipelines.resume_all(&platform)?;
        Ok(platform)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// `e` as a caller may see it: no server path in its message (see [`redact`]).
    pub fn redact(&self, mut e: ControlError) -> ControlError {
        e.message = redact::redact(&e.message, &self.config.data_dir);
        e
    }

    /// Who holds `token`.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Caller, ControlError> {
        let unauthorized = |m: &str| ControlError::new(ErrorKind::Unauthorized, "unauthorized", m);
        let token = token.ok_or_else(|| unauthorized("no token: send `Authorization: Bearer TOKEN`"))?;
        if constant_time_eq(token.as_bytes(), self.config.admin_token.as_bytes()) {
            return Ok(Caller::Admin);
        }
        match self.db.tenant_by_token(&token_hash(token))? {
            Some(t) => Ok(Caller::Tenant(Tenant { id: t.id, name: t.name, quotas: t.quotas })),
            None => Err(unauthorized("the token is not valid")),
        }
    }

    /// Creates a tenant (admin only); the quotas `given` are set, the others
    /// are the server's [`PlatformConfig::tenant_defaults`].
    pub fn create_tenant(
        &self,
        caller: &Caller,
        name: &str,
        given: serde_json::Map<String, serde_json::Value>,
    ) -> Result<NewTenant, ControlError> {
        require_admin(caller)?;
        check_name("tenant", name)?;
        let quotas = quotas_changed(self.config.tenant_defaults, given)?;
        let id = format!("t-{}", random_hex(6)?);
        let token = format!("wt_{}", random_hex(24)?);
        let row = TenantRow { id: id.clone(), name: name.to_string(), quotas };
        self.db.insert_tenant(&row, &token_hash(&token), now_ms())?;
        Ok(NewTenant { id, name: name.to_string(), token, quotas })
    }

    /// Changes some of a tenant's quotas (admin only): `changes` names the
    /// fields to set; the others keep their values. Running pipelines keep
    /// the limits they started with; the new quotas apply to what the tenant
    /// creates or resumes next, and to its state quota at once.
    pub fn update_tenant(
        &self,
        caller: &Caller,
        name: &str,
        changes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Tenant, ControlError> {
        require_admin(caller)?;
        let current = self
            .db
            .tenants()?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ControlError::not_found(format!("no tenant named `{name}`")))?;
        let quotas = quotas_changed(current.quotas, changes)?;
        let t = self
            .db
            .set_tenant_quotas(name, &quotas)?
            .ok_or_else(|| ControlError::not_found(format!("no tenant named `{name}`")))?;
        Ok(Tenant { id: t.id, name: t.name, quotas: t.quotas })
    }

    /// Every tenant (admin only).
    pub fn tenants(&self, caller: &Caller) -> Result<Vec<Tenant>, ControlError> {
        require_admin(caller)?;
        Ok(self.db.tenants()?.into_iter().map(|t| Tenant { id: t.id, name: t.name, quotas: t.quotas }).collect())
    }

    /// The pipelines `caller` may see in `/metrics`, labelled with their
    /// tenant's name: every tenant's for the admin, its own for a tenant.
    pub fn visible_pipelines(&self, caller: &Caller) -> Result<Vec<PipelineView>, ControlError> {
        match caller {
            Caller::Admin => Ok(self.all_pipelines()),
            Caller::Tenant(t) => Ok(self
                .db
                .pipelines(Some(&t.id))?
                .iter()
                .map(|row| PipelineView { tenant: t.name.clone(), ..self.pipelines.view(row, &self.db) })
                .collect()),
        }
    }

    /// Pipelines of every tenant, for `/metrics`.
    pub fn all_pipelines(&self) -> Vec<PipelineView> {
        let tenants: std::collections::HashMap<String, String> =
            self.db.tenants().unwrap_or_default().into_iter().map(|t| (t.id, t.name)).collect();
        let mut out = Vec::new();
        for row in self.db.pipelines(None).unwrap_or_default() {
            let mut v = self.pipelines.view(&row, &self.db);
            v.tenant = tenants.get(&row.tenant).cloned().unwrap_or(row.tenant);
            out.push(v);
        }
        out
    }

    /// Stops every pipeline at a savepoint (the server is shutting down);
    /// they resume when it starts again.
    pub fn shutdown(&self) {
        self.pipelines.shutdown(&self.db);
    }
}

fn require_admin(caller: &Caller) -> Result<(), ControlError> {
    match caller {
        Caller::Admin => Ok(()),
        Caller::Tenant(_) => {
            Err(ControlError::new(ErrorKind::Forbidden, "forbidden", "only the admin token may manage tenants"))
        }
    }
}

/// The tenant making a tenant-scoped request (the admin has no resources of its own).
fn tenant(caller: &Caller) -> Result<&Tenant, ControlError> {
    match caller {
        Caller::Tenant(t) => Ok(t),
        Caller::Admin => Err(ControlError::new(
            ErrorKind::Forbidden,
            "forbidden",
            "functions and pipelines belong to tenants: use a tenant's token (POST /v1/tenants creates one)",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{mib_bytes, quotas_changed, Quotas, MAX_QUOTA_MIB};
    use serde_json::json;

    fn changes(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn tokens_are_never_made_without_the_systems_random_generator() {
        let e = super::random_hex_from(std::path::Path::new("/nonexistent/urandom"), 24).unwrap_err();
        assert_eq!(e.kind, super::ErrorKind::Internal);
        assert!(e.message.contains("random number generator"), "{e}");
        let token = super::random_hex(24).unwrap();
        assert_eq!(token.len(), 48);
        assert_ne!(token, super::random_hex(24).unwrap());
    }

    #[test]
    fn quotas_in_mib_too_large_for_bytes_are_refused() {
        // 2^44 MiB is 2^64 bytes: it used to wrap to a cap of 0 bytes.
        for name in ["memory_mib", "max_component_mib", "max_state_mib", "max_ingest_mib"] {
            let e = quotas_changed(Quotas::default(), changes(json!({ name: 1u64 << 44 }))).unwrap_err();
            assert_eq!(e.code, "invalid_quotas", "{name}: {e}");
            assert!(e.message.contains(name), "{e}");
            let at_most = quotas_changed(Quotas::default(), changes(json!({ name: MAX_QUOTA_MIB }))).unwrap();
            assert_eq!(serde_json::to_value(at_most).unwrap()[name], json!(MAX_QUOTA_MIB));
        }
        assert_eq!(mib_bytes(MAX_QUOTA_MIB), 1 << 50);
        assert_eq!(mib_bytes(u64::MAX), u64::MAX);
    }
}
