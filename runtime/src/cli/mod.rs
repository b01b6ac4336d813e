//! The `weir` command line. The only module that reads argv and the
//! environment.

mod client;
mod run;
mod serve;
mod serve_config;
mod udf;

use client::{Client, PipelineAction};

use crate::manifest::Bounds;
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
        /// Runs as one of several workers sharing the pipeline: the Kafka
        /// source's partitions are divided through the pipeline's consumer
        /// group, keyed steps repartition through the topic
        /// `weir-NAME-repartition`, and the checkpoint directory must be
        /// storage every worker reaches.
        #[arg(long, conflicts_with_all = ["parallelism", "from"])]
        worker: bool,
        /// How long the group waits for a silent worker before giving its
        /// partitions to the others (with --worker).
        #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
        session_timeout: std::time::Duration,
        /// Changes a bound on what a manifest may ask for, e.g. `--bound
        /// max_windows_per_record=5000` (repeatable). Bounds: max_parallelism
        /// (128), max_key_groups (32768), max_windows_per_record (1000),
        /// max_count_window (100000), max_session_gap (7d), max_batch_size
        /// (65536), min_checkpoint_interval (10ms; 100ms under `weir serve`).
        #[arg(long = "bound", value_name = "NAME=VALUE")]
        bounds: Vec<String>,
    },
    /// Runs the API server and the executor (pipelines survive restarts).
    Serve {
        /// The server's config file (YAML: listen, data_dir, bounds, http,
        /// tenant_defaults; see deploy/weir-serve.yaml). Flags win over it.
        #[arg(long, env = "WEIR_SERVE_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (port 0: any free port) [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<String>,
        /// Metadata (SQLite), components, state, checkpoints and output [default: weir-data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The admin token (default: DATA_DIR/admin-token, made on first start).
        #[arg(long, env = "WEIR_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Changes a bound on what a manifest may ask for, e.g. `--bound
        /// max_windows_per_record=5000` (repeatable). Bounds: max_parallelism
        /// (128), max_key_groups (32768), max_windows_per_record (1000),
        /// max_count_window (100000), max_session_gap (7d), max_batch_size
        /// (65536), min_checkpoint_interval (10ms; 100ms under `weir serve`).
        #[arg(long = "bound", value_name = "NAME=VALUE")]
        bounds: Vec<String>,
        #[command(flatten)]
        http: serve::HttpLimitArgs,
    },
    /// Works with function components (locally, or on a server).
    Udf {
        #[command(subcommand)]
        command: UdfCommand,
    },
    /// Manages pipelines on a server.
    Pipeline {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Manages tenants on a server (admin token).
    Tenant {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: TenantCommand,
    },
}

/// How to reach a server.
#[derive(clap::Args)]
struct ServerArgs {
    /// The server's URL.
    #[arg(long, env = "WEIR_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    server: String,
    /// API token (a tenant's; the admin's for `tenant`).
    #[arg(long, env = "WEIR_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl ServerArgs {
    fn client(self) -> Client {
        Client { server: self.server, token: self.token, json: self.json }
    }
}

#[derive(Subcommand)]
enum PipelineCommand {
    /// Creates and starts a pipeline from a manifest file (`-`: stdin).
    Create { manifest: String },
    /// Lists pipelines.
    List,
    /// Shows a pipeline: status, per-step counters, checkpoints, swaps.
    Get { id: String },
    /// Stops a pipeline at a savepoint.
    Stop { id: String },
    /// Starts a stopped pipeline from its newest checkpoint or savepoint.
    Resume { id: String },
    /// Stops a pipeline without a savepoint and deletes it with its state and output.
    Delete { id: String },
    /// Takes a savepoint.
    Savepoint { id: String },
    /// Swaps a step's function version at a checkpoint barrier.
    Swap {
        id: String,
        /// The step's index or name.
        step: String,
        /// NAME@VERSION (uploaded already).
        udf: String,
        /// How long the new version is watched before the swap is final, ms.
        #[arg(long)]
        probation_ms: Option<u64>,
        /// Failed calls tolerated during probation before rolling back.
        #[arg(long)]
        max_failures: Option<u64>,
    },
    /// Posts records (one per line of FILE, `-`: stdin) to a pipeline's http
    /// source, retrying what may not have arrived (a dropped connection, 429,
    /// 503, 5xx) under one Idempotency-Key, so the records are appended once.
    Send {
        id: String,
        file: String,
        /// The post's Idempotency-Key (default: a random one). Give a key of
        /// your own to make re-running the command safe too.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Attempts before giving up.
        #[arg(long, default_value_t = 5)]
        attempts: u32,
    },
    /// Prints the newest committed output lines.
    Output {
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Creates a tenant and prints its token (quotas not given take their defaults).
    Create {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// Changes the given quotas of a tenant (admin token); the others stay.
    Update {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
}

/// A tenant's quotas as flags.
#[derive(clap::Args)]
struct QuotaArgs {
    /// Pipelines it may have.
    #[arg(long)]
    max_pipelines: Option<u32>,
    /// Largest parallelism of a pipeline.
    #[arg(long)]
    max_parallelism: Option<u32>,
    /// Linear memory per function instance, MiB.
    #[arg(long)]
    memory_mib: Option<u64>,
    /// Deadline of one function call, ms.
    #[arg(long)]
    cpu_ms_per_call: Option<u64>,
    /// Largest component, MiB.
    #[arg(long)]
    max_component_mib: Option<u64>,
    /// Checkpoints and state of all its pipelines on disk, MiB.
    #[arg(long)]
    max_state_mib: Option<u64>,
    /// Records it may post to its http sources per second.
    #[arg(long)]
    ingest_records_per_s: Option<u64>,
    /// Bytes it may post to its http sources per second.
    #[arg(long)]
    ingest_bytes_per_s: Option<u64>,
    /// Function versions it may have registered.
    #[arg(long)]
    max_udf_versions: Option<u32>,
    /// Posted records its pipelines' ingest journals may hold unread on disk, MiB.
    #[arg(long)]
    max_ingest_mib: Option<u64>,
}

impl QuotaArgs {
    /// Only the quotas given, by their API names.
    fn given(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Option<u64>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v.into());
            }
        };
        put("max_pipelines", self.max_pipelines.map(u64::from));
        put("max_parallelism", self.max_parallelism.map(u64::from));
        put("memory_mib", self.memory_mib);
        put("cpu_ms_per_call", self.cpu_ms_per_call);
        put("max_component_mib", self.max_component_mib);
        put("max_state_mib", self.max_state_mib);
        put("ingest_records_per_s", self.ingest_records_per_s);
        put("ingest_bytes_per_s", self.ingest_bytes_per_s);
        put("max_udf_versions", self.max_udf_versions.map(u64::from));
        put("max_ingest_mib", self.max_ingest_mib);
        m
    }
}

#[derive(Subcommand)]
enum UdfCommand {
    /// Checks a component and shows what it imports, exports and can serve.
    Inspect {
        /// The component file.
        file: PathBuf,
    },
    /// Uploads a component to a server as NAME@VERSION.
    Upload {
        /// NAME@VERSION.
        udf: String,
        /// The component file (`-`: stdin).
        file: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Lists the functions on a server.
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Deletes a function version from a server.
    Delete {
        /// NAME@VERSION.
        udf: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// `base` with each `NAME=VALUE` of `--bound` applied; `None` (after saying
/// why) when one is not a bound or not a valid value.
fn bounds_from(flags: &[String], base: Bounds) -> Option<Bounds> {
    let mut bounds = base;
    for flag in flags {
        let applied = match flag.split_once('=') {
            Some((name, value)) => bounds.set(name.trim(), value),
            None => Err(format!("`{flag}`: expected NAME=VALUE")),
        };
        if let Err(e) = applied {
            eprintln!("weir: --bound {e}");
            return None;
        }
    }
    Some(bounds)
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { manifest, udf_dirs, quiet, parallelism, from, worker: false, bounds, .. } => {
            let Some(bounds) = bounds_from(&bounds, Bounds::default()) else { return ExitCode::from(EXIT_INVALID) };
            run::run(run::RunOptions { manifest, udf_dirs, quiet, parallelism, from, bounds }, wasm_config())
        }
        Command::Run { manifest, udf_dirs, quiet, worker: true, session_timeout, bounds, .. } => {
            let Some(bounds) = bounds_from(&bounds, Bounds::default()) else { return ExitCode::from(EXIT_INVALID) };
            run::worker(&manifest, udf_dirs, quiet, session_timeout, &bounds, wasm_config())
        }
        Command::Udf { command: UdfCommand::Inspect { file } } => udf::inspect(&file),
        Command::Udf { command: UdfCommand::Upload { udf, file, server } } => {
            client::udf_upload(&server.client(), &udf, &file)
        }
        Command::Udf { command: UdfCommand::List { server } } => client::udf_list(&server.client()),
        Command::Udf { command: UdfCommand::Delete { udf, server } } => client::udf_delete(&server.client(), &udf),
        Command::Serve { config, listen, data_dir, admin_token, bounds, http } => {
            let file = match config.as_deref().map(serve_config::ServeConfig::load).transpose() {
                Ok(c) => c.unwrap_or_default(),
                Err(e) => {
                    eprintln!("weir: {e}");
                    return ExitCode::from(EXIT_INVALID);
                }
            };
            let base = file.bounds(Bounds::hosted()).expect("checked when the file was loaded");
            let Some(bounds) = bounds_from(&bounds, base) else { return ExitCode::from(EXIT_INVALID) };
            let listen = listen.or(file.listen.clone()).unwrap_or_else(|| "127.0.0.1:8080".to_string());
            let data_dir = data_dir.or(file.data_dir.clone()).unwrap_or_else(|| PathBuf::from("weir-data"));
            let settings = serve::Settings {
                bounds,
                http: http.over(file.http().expect("checked when the file was loaded")),
                tenant_defaults: file.tenant_defaults(),
                idempotency: file.idempotency().expect("checked when the file was loaded"),
                retention: file.retention().expect("checked when the file was loaded"),
            };
            serve::serve(&listen, data_dir, admin_token, settings, wasm_config())
        }
        Command::Tenant { server, command: TenantCommand::Create { name, quotas } } => {
            // Quotas not given are the server's defaults (serde fills them in).
            client::tenant_create(&server.client(), &name, serde_json::Value::Object(quotas.given()))
        }
        Command::Tenant { server, command: TenantCommand::Update { name, quotas } } => {
            client::tenant_update(&server.client(), &name, quotas.given())
        }
        Command::Pipeline { server, command } => {
            use PipelineCommand as P;
            let action = match command {
                P::Create { manifest } => PipelineAction::Create(manifest),
                P::List => PipelineAction::List,
                P::Get { id } => PipelineAction::Get(id),
                P::Stop { id } => PipelineAction::Stop(id),
                P::Resume { id } => PipelineAction::Resume(id),
                P::Delete { id } => PipelineAction::Delete(id),
                P::Savepoint { id } => PipelineAction::Savepoint(id),
                P::Swap { id, step, udf, probation_ms, max_failures } => {
                    PipelineAction::Swap { id, step, udf, probation_ms, max_failures }
                }
                P::Send { id, file, idempotency_key, attempts } => {
                    PipelineAction::Send { id, file, key: idempotency_key, attempts }
                }
                P::Output { id, limit } => PipelineAction::Output { id, limit },
            };
            client::pipeline(&server.client(), action)
        }
    }
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::manifest::parse_duration(s).map_err(|e| e.to_string())
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
