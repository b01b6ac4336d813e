//! Opening a pipeline's sink subtasks and its side outputs (dead letters,
//! late records), and the sink's label in metrics.

use super::JobError;
use crate::connector::sink::{FileSink, SharedOutput, SharedSink, StagedFileSink};
use crate::connector::Sink;
use crate::manifest::{Manifest, OutputSpec, SinkSpec};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub(super) fn sink_label(s: &SinkSpec) -> String {
    match s {
        SinkSpec::File { path, .. } => format!("sink file {}", path.display()),
        SinkSpec::Dir { dir, .. } => format!("sink dir {}", dir.display()),
        SinkSpec::Stdout { .. } => "sink stdout".to_string(),
        SinkSpec::Kafka(k) => format!("sink kafka {}", k.topic),
    }
}

fn create(path: &std::path::Path, append: bool) -> Result<File, JobError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| JobError::Output(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.create(true).write(true);
    if append {
        open.append(true);
    } else {
        open.truncate(true);
    }
    open.open(path).map_err(|e| JobError::Output(format!("cannot create {}: {e}", path.display())))
}

pub(super) fn open_side_output(spec: &OutputSpec, append: bool) -> Result<Box<dyn Write + Send>, JobError> {
    Ok(match spec {
        OutputSpec::File(path) => Box::new(create(path, append)?),
        OutputSpec::Rotating { path, max_bytes, keep } => {
            // Created or truncated as a plain file is, then appended to.
            drop(create(path, append)?);
            Box::new(
                crate::connector::rotating::RotatingFile::open(path, *max_bytes, *keep)
                    .map_err(|e| JobError::Output(format!("cannot open {}: {e}", path.display())))?,
            )
        }
        OutputSpec::Stdout => Box::new(io::stdout()),
        OutputSpec::Stderr => Box::new(io::stderr()),
    })
}

/// The sink's subtasks; `checkpoints` is the checkpoint directory of a checkpointed run.
pub(super) fn open_sinks(m: &Manifest, checkpoints: Option<&Path>) -> Result<Vec<Box<dyn Sink>>, JobError> {
    let (spec, parallelism, staged) = (&m.sink, m.parallelism, checkpoints.is_some());
    let shared = |out: Box<dyn Write + Send>, format, flush_each| -> Vec<Box<dyn Sink>> {
        let out: SharedOutput = Arc::new(Mutex::new(out));
        (0..parallelism).map(|_| Box::new(SharedSink::new(out.clone(), format, flush_each)) as Box<dyn Sink>).collect()
    };
    Ok(match spec {
        SinkSpec::Dir { dir, format } => {
            std::fs::create_dir_all(dir)
                .map_err(|e| JobError::Output(format!("cannot create {}: {e}", dir.display())))?;
            let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
            for i in 0..parallelism {
                let sink: Box<dyn Sink> = if staged {
                    Box::new(StagedFileSink::create(dir, i, *format).map_err(|e| JobError::Output(e.to_string()))?)
                } else {
                    Box::new(
                        FileSink::create(&dir.join(format!("part-{i}.txt")), *format)
                            .map_err(|e| JobError::Output(e.to_string()))?,
                    )
                };
                sinks.push(sink);
            }
            sinks
        }
        SinkSpec::File { path, format } => {
            shared(Box::new(BufWriter::with_capacity(1 << 20, create(path, false)?)), *format, false)
        }
        SinkSpec::Stdout { format } => shared(Box::new(io::stdout()), *format, true),
        SinkSpec::Kafka(spec) => {
            let staging = checkpoints.map(super::kafka::staging_dir);
            super::kafka::open_sinks(m, spec, staging.as_deref())?
        }
    })
}
