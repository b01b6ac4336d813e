//! `weir serve`: the API server and the executor in one process.

use super::EXIT_FAILED;
use crate::api::HttpLimits;
use crate::connector::journal::Remember;
use crate::control::{Platform, PlatformConfig, Quotas, Retention};
use crate::manifest::Bounds;
use crate::wasm::{WasmConfig, WasmHost};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP server's limits ([`HttpLimits`]; each flag's default is the
/// config file's value, else `HttpLimits::default()`'s, so the defaults are
/// written down once).
#[derive(Debug, clap::Args)]
pub(super) struct HttpLimitArgs {
    /// Open connections at most; more are closed as soon as they are accepted [default: 256].
    #[arg(long)]
    max_connections: Option<usize>,
    /// Requests handled at once; more are answered 503 [default: 64].
    #[arg(long)]
    max_requests_in_flight: Option<usize>,
    /// Requests of one tenant handled at once; more are answered 429 [default: 16].
    #[arg(long)]
    max_requests_in_flight_per_tenant: Option<usize>,
    /// Time to send a request's head, and the idle timeout between requests [default: 10s].
    #[arg(long, value_parser = super::parse_duration_arg)]
    header_timeout: Option<Duration>,
    /// Time to send a request's body; a slower one is answered 408 [default: 60s].
    #[arg(long, value_parser = super::parse_duration_arg)]
    body_timeout: Option<Duration>,
    /// Age at which a connection is closed after its current request [default: 10m].
    #[arg(long, value_parser = super::parse_duration_arg)]
    max_connection_age: Option<Duration>,
    /// Time open connections get to finish at shutdown [default: 10s].
    #[arg(long, value_parser = super::parse_duration_arg)]
    shutdown_grace: Option<Duration>,
}

impl HttpLimitArgs {
    /// `d` with the flags given applied (checked when the server starts).
    pub(super) fn over(self, d: HttpLimits) -> HttpLimits {
        HttpLimits {
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_requests_in_flight: self.max_requests_in_flight.unwrap_or(d.max_requests_in_flight),
            max_requests_in_flight_per_tenant: self
                .max_requests_in_flight_per_tenant
                .unwrap_or(d.max_requests_in_flight_per_tenant),
            header_timeout: self.header_timeout.unwrap_or(d.header_timeout),
            body_timeout: self.body_timeout.unwrap_or(d.body_timeout),
            max_connection_age: self.max_connection_age.unwrap_or(d.max_connection_age),
            shutdown_grace: self.shutdown_grace.unwrap_or(d.shutdown_grace),
        }
    }
}

/// What the operator set: from flags over the config file over the defaults.
pub(super) struct Settings {
    /// What a tenant's manifest may ask for.
    pub bounds: Bounds,
    /// The HTTP server's limits (validated at start).
    pub http: HttpLimits,
    /// The quotas of a tenant created without them.
    pub tenant_defaults: Quotas,
    /// How long and how many `Idempotency-Key`s each pipeline remembers.
    pub idempotency: Remember,
    /// What each pipeline keeps of its output and dead letters.
    pub retention: Retention,
}

/// The admin token: `WEIR_ADMIN_TOKEN`, else `DATA_DIR/admin-token` (made on first start).
fn admin_token(given: Option<String>, data_dir: &Path) -> Result<String, String> {
    if let Some(t) = given.filter(|t| !t.is_empty()) {
        return Ok(t);
    }
    let path = data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let token = format!("wa_{}", crate::control::random_hex(24).map_err(|e| e.message)?);
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(&path)
        .and_then(|mut f| f.write_all(format!("{token}\n").as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(token)
}

/// Waits for `signal` (for ever when it could not be installed).
async fn received(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

pub(super) fn serve(
    listen: &str,
    data_dir: PathBuf,
    admin: Option<String>,
    settings: Settings,
    wasm: WasmConfig,
) -> ExitCode {
    let fail = |m: String| {
        eprintln!("weir: {m}");
        ExitCode::from(EXIT_FAILED)
    };
    let Settings { bounds, http, tenant_defaults, idempotency, retention } = settings;
    let limits = match http.validated() {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    if let Err(e) = std::fs::create_dir_all(&data_dir) {
        return fail(format!("cannot create the data directory {}: {e}", data_dir.display()));
    }
    // Pipelines' paths are absolute, whatever the server's working directory.
    let data_dir = match data_dir.canonicalize() {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot resolve {}: {e}", data_dir.display())),
    };
    let admin_token = match admin_token(admin, &data_dir) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let wasm = WasmConfig { cache_dir: Some(data_dir.join("components")), ..wasm };
    let host = match WasmHost::new(wasm) {
        Ok(h) => h,
        Err(e) => return fail(e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let listener = match runtime.block_on(tokio::net::TcpListener::bind(listen)) {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {listen}: {e}")),
    };
    let platform = match Platform::start(
        PlatformConfig { data_dir: data_dir.clone(), admin_token, bounds, tenant_defaults, idempotency, retention },
        host,
    ) {
        Ok(p) => Arc::new(p),
        Err(e) => return fail(e.to_string()),
    };
    // Registered before the server says it serves: a handler installed at
    // the shutdown future's first poll left a window (the accept loop need
    // not poll it at once) in which a SIGTERM killed the server outright,
    // with no savepoints (seen in a loaded test run).
    let (mut interrupt, mut term) = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    });
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| listen.to_string());
    eprintln!(
        "weir: serving on http://{addr} (data in {}; admin token in WEIR_ADMIN_TOKEN or {})",
        data_dir.display(),
        data_dir.join("admin-token").display()
    );
    let app = crate::api::router(platform.clone(), &limits);
    runtime.block_on(crate::api::server::run(listener, app, limits, async move {
        tokio::select! { _ = received(&mut interrupt) => {}, _ = received(&mut term) => {} }
        eprintln!("weir: shutting down: stopping every pipeline at a savepoint (they resume on the next start)");
    }));
    platform.shutdown();
    // Handlers still running on the blocking pool (past the grace) are not waited for.
    runtime.shutdown_background();
    ExitCode::SUCCESS
}
