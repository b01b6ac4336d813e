//! `weir run MANIFEST`.

use super::{EXIT_FAILED, EXIT_INVALID};
use crate::exec::Controls;
use crate::job::{Job, Summary, UdfDirs};
use crate::manifest::{Bounds, Manifest};
use crate::wasm::{WasmConfig, WasmHost};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Options of `weir run`.
pub(super) struct RunOptions {
    pub manifest: PathBuf,
    pub udf_dirs: Vec<PathBuf>,
    pub quiet: bool,
    pub parallelism: Option<u32>,
    pub from: Option<PathBuf>,
    /// What the manifest may ask for.
    pub bounds: Bounds,
}

pub(super) fn run(o: RunOptions, wasm: WasmConfig) -> ExitCode {
    let manifest = o.manifest.as_path();
    let mut m = match Manifest::load_within(manifest, &o.bounds) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("weir: {}: {e}", manifest.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Some(p) = o.parallelism {
        if p == 0 || p > m.max_parallelism {
            eprintln!("weir: --parallelism {p} is out of range 1..={} (max_parallelism)", m.max_parallelism);
            return ExitCode::from(EXIT_INVALID);
        }
        m.parallelism = p;
    }
    let host = match WasmHost::new(wasm) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("weir: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let job = match Job::build(&m, &host, &UdfDirs::new(o.udf_dirs), o.from.as_deref()) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("weir: pipeline {} not started: {e}", m.name);
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Some(from) = job.resumed_from() {
        eprintln!("weir: continuing from {}", from.display());
    }
    let controls = job.controls();
    install_signals(&controls, m.checkpoint.is_some());
    match job.run() {
        Ok(summary) => {
            if let Some(at) = &summary.already_finished {
                eprintln!(
                    "weir: pipeline {} had already finished ({}); nothing to do. To run it again, remove its checkpoint directory and output",
                    summary.pipeline,
                    at.display()
                );
            } else if !o.quiet {
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

/// `weir run --worker MANIFEST`: one of the pipeline's workers (see
/// [`crate::job::worker`]); Ctrl-C stops its tasks at savepoints and leaves
/// the group, so the other workers take them over.
pub(super) fn worker(
    manifest: &std::path::Path,
    udf_dirs: Vec<PathBuf>,
    quiet: bool,
    session: std::time::Duration,
    bounds: &Bounds,
    wasm: WasmConfig,
) -> ExitCode {
    use crate::job::worker::{self, WorkerOptions};
    let m = match Manifest::load_within(manifest, bounds) {
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
    let controls = Controls::default();
    install_signals(&controls, true);
    match worker::run(&m, &host, &UdfDirs::new(udf_dirs), &WorkerOptions { session }, controls.stop.clone()) {
        Ok(r) => {
            if !quiet {
                let how = if r.finished { "every task of the pipeline finished" } else { "stopped" };
                eprintln!(
                    "weir: worker of pipeline {}: {how}; {} task runs here read {} records",
                    m.name, r.runs, r.records_read
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.before_start() => {
            eprintln!("weir: worker of pipeline {} not started: {e}", m.name);
            ExitCode::from(EXIT_INVALID)
        }
        Err(e) => {
            eprintln!("weir: worker of pipeline {}: {e}", m.name);
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// First Ctrl-C (or SIGTERM): stop reading and drain, or with checkpoints
/// stop at a savepoint. Second: exit at once. SIGUSR1: take a savepoint.
fn install_signals(controls: &Controls, checkpointed: bool) {
    let pressed = AtomicBool::new(false);
    let stop = controls.stop.clone();
    let result = ctrlc::set_handler(move || {
        if pressed.swap(true, Ordering::SeqCst) {
            eprintln!("weir: interrupted again, exiting at once");
            std::process::exit(130);
        }
        if checkpointed {
            eprintln!("weir: stopping at a savepoint (Ctrl-C again to exit at once)");
        } else {
            eprintln!("weir: stopping: draining what was read (Ctrl-C again to exit at once)");
        }
        stop.store(true, Ordering::SeqCst);
    });
    if let Err(e) = result {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGUSR1, controls.savepoint.clone()) {
        tracing::warn!("cannot install the SIGUSR1 (savepoint) handler: {e}");
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
        if step.peak_memory > 0 {
            line.push_str(&format!("  instance memory peak {} MiB", step.peak_memory.div_ceil(1 << 20)));
        }
        if step.recycles > 0 {
            line.push_str(&format!("  recycled {}", step.recycles));
        }
        eprintln!("{line}");
    }
    let c = &s.checkpoints;
    if c.completed + c.failed > 0 {
        let mut line = format!("  checkpoints: {} complete, {} failed", c.completed, c.failed);
        if c.completed > 0 {
            line.push_str(&format!(" (slowest {} ms)", c.slowest_ms));
        }
        if let Some(at) = &c.stopped_at {
            line.push_str(&format!("; stopped at {}: run the same command to continue", at.display()));
        }
        eprintln!("{line}");
    }
}
