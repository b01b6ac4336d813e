//! The `weir` command line. The only module that reads argv and the
//! environment.

mod run;
mod udf;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code of a pipeline that failed while running.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a manifest, function or input that is unusable (nothing ran).
pub const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(name = "weir", version, about = "Stream processing with user functions as sandboxed WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a pipeline locally until its input ends (or Ctrl-C).
    Run {
        /// The pipeline manifest (YAML or JSON).
        manifest: PathBuf,
        /// Directories holding NAME@VERSION.wasm components (repeatable).
        #[arg(long = "udf-dir", env = "WEIR_UDF_DIR", value_delimiter = ':')]
        udf_dirs: Vec<PathBuf>,
        /// Print no summary.
        #[arg(long, short)]
        quiet: bool,
        /// Overrides the manifest's parallelism (a checkpoint or savepoint
        /// can be continued at another one).
        #[arg(long, short)]
        parallelism: Option<u32>,
        /// Continues from this checkpoint or savepoint directory instead of
        /// the newest one in the checkpoint directory.
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Works with function components.
    Udf {
        #[command(subcommand)]
        command: UdfCommand,
    },
}

#[derive(Subcommand)]
enum UdfCommand {
    /// Checks a component and shows what it imports, exports and can serve.
    Inspect {
        /// The component file.
        file: PathBuf,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { manifest, udf_dirs, quiet, parallelism, from } => {
            run::run(run::RunOptions { manifest, udf_dirs, quiet, parallelism, from }, wasm_config())
        }
        Command::Udf { command: UdfCommand::Inspect { file } } => udf::inspect(&file),
    }
}

/// Host settings from the environment: `WEIR_CACHE_DIR` (default
/// `$XDG_CACHE_HOME/weir/components` or `~/.cache/weir/components`; empty
/// for none) keeps compiled components between runs; `WEIR_PERF_MAP=1`
/// writes a perf map so `perf report` names functions inside guests.
fn wasm_config() -> crate::wasm::WasmConfig {
    let perf_map = std::env::var("WEIR_PERF_MAP").is_ok_and(|v| v == "1");
    let cache_dir = match std::env::var_os("WEIR_CACHE_DIR") {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("weir/components")),
    };
    crate::wasm::WasmConfig { perf_map, cache_dir, ..Default::default() }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,weir=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
