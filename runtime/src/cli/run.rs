//! `weir run MANIFEST`.

use super::{EXIT_FAILED, EXIT_INVALID};
use crate::job::{Job, Summary, UdfDirs};
use crate::manifest::Manifest;
use crate::wasm::{WasmConfig, WasmHost};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(super) fn run(manifest: &Path, udf_dirs: Vec<PathBuf>, quiet: bool, wasm: WasmConfig) -> ExitCode {
    let m = match Manifest::load(manifest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("weir: {}: {e}", manifest.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let host = match WasmHost::new(wasm) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("weir: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let job = match Job::build(&m, &host, &UdfDirs::new(udf_dirs)) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("weir: pipeline {} not started: {e}", m.name);
            return ExitCode::from(EXIT_INVALID);
        }
    };
    install_ctrl_c(job.stop_handle());
    match job.run() {
        Ok(summary) => {
            if !quiet {
                print_summary(&summary);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// First Ctrl-C: stop reading and drain. Second: exit at once.
fn install_ctrl_c(stop: Arc<AtomicBool>) {
    let pressed = AtomicBool::new(false);
    let result = ctrlc::set_handler(move || {
        if pressed.swap(true, Ordering::SeqCst) {
            eprintln!("weir: interrupted again, exiting without draining");
            std::process::exit(130);
        }
        eprintln!("weir: stopping: draining what was read (Ctrl-C again to exit at once)");
        stop.store(true, Ordering::SeqCst);
    });
    if let Err(e) = result {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
}

fn print_summary(s: &Summary) {
    let secs = s.elapsed.as_secs_f64();
    let rate = if secs > 0.0 { s.records_read() as f64 / secs } else { 0.0 };
    eprintln!(
        "weir: pipeline {} finished in {secs:.2}s: {} records read ({rate:.0}/s), {} written, {} dead-lettered",
        s.pipeline,
        s.records_read(),
        s.records_written(),
        s.dead_lettered()
    );
    let last = s.steps.len().saturating_sub(1);
    for (i, step) in s.steps.iter().enumerate() {
        let mut line = if i == last {
            format!("  {:<48} written {:>12}", step.label, step.records_in)
        } else {
            format!("  {:<48} in {:>12}  out {:>12}", step.label, step.records_in, step.records_out)
        };
        if step.dead_lettered > 0 {
            line.push_str(&format!("  dead-lettered {}", step.dead_lettered));
        }
        if step.failed_calls > 0 {
            line.push_str(&format!("  failed calls {}", step.failed_calls));
        }
        eprintln!("{line}");
    }
}
