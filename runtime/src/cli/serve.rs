//! `weir serve`: the API server and the executor in one process.

use super::EXIT_FAILED;
use crate::control::{Platform, PlatformConfig};
use crate::manifest::Bounds;
use crate::wasm::{WasmConfig, WasmHost};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
    let token = format!("wa_{}", crate::control::random_hex(24));
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(&path)
        .and_then(|mut f| f.write_all(format!("{token}\n").as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(token)
}

pub(super) fn serve(
    listen: &str,
    data_dir: PathBuf,
    admin: Option<String>,
    bounds: Bounds,
    wasm: WasmConfig,
) -> ExitCode {
    let fail = |m: String| {
        eprintln!("weir: {m}");
        ExitCode::from(EXIT_FAILED)
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
    let platform = match Platform::start(PlatformConfig { data_dir: data_dir.clone(), admin_token, bounds }, host) {
        Ok(p) => Arc::new(p),
        Err(e) => return fail(e.to_string()),
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| listen.to_string());
    eprintln!(
        "weir: serving on http://{addr} (data in {}; admin token in WEIR_ADMIN_TOKEN or {})",
        data_dir.display(),
        data_dir.join("admin-token").display()
    );
    let app = crate::api::router(platform.clone());
    let served = runtime.block_on(async {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let ctrl_c = tokio::signal::ctrl_c();
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                let terminated = async {
                    match term.as_mut() {
                        Some(t) => {
                            t.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! { _ = ctrl_c => {}, _ = terminated => {} }
                eprintln!(
                    "weir: shutting down: stopping every pipeline at a savepoint (they resume on the next start)"
                );
            })
            .await
    });
    platform.shutdown();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("the server failed: {e}")),
    }
}
