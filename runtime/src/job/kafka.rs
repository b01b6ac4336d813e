//! Opening Kafka sources and sinks for a plan (and saying clearly when this
//! build has no Kafka support).

use super::JobError;
use crate::checkpoint::store::Restorable;
use crate::checkpoint::Committer;
use crate::connector::{Sink, Source};
use crate::manifest::{KafkaSinkSpec, KafkaSourceSpec, Manifest};
use crate::operator::decode::SharedOrigins;
use std::path::{Path, PathBuf};

/// The source's splits, and where each split's records come from.
pub(super) type Opened = (Vec<Box<dyn Source>>, Vec<SharedOrigins>);

/// Where an exactly-once Kafka sink stages its output: in the checkpoint directory.
pub(super) fn staging_dir(checkpoints: &Path) -> PathBuf {
    checkpoints.join("kafka-out")
}

/// The consumer group of `m`'s source.
#[cfg(feature = "kafka")]
fn group(m: &Manifest, spec: &KafkaSourceSpec) -> String {
    spec.group.clone().unwrap_or_else(|| format!("weir-{}", m.name))
}

/// One source per partition of the topic, each from its checkpointed offset
/// (partitions the checkpoint does not know start where the spec says).
#[cfg(feature = "kafka")]
pub(super) fn open_source(
    m: &Manifest,
    spec: &KafkaSourceSpec,
    restore: Option<&Restorable>,
) -> Result<Opened, JobError> {
    use crate::checkpoint::SourcePosition;
    use crate::connector::kafka::{partitions, KafkaSource, Resume};
    let partitions = partitions(&spec.brokers, &spec.topic, &spec.properties).map_err(JobError::Source)?;
    let mut saved = std::collections::HashMap::new();
    if let Some(r) = restore {
        for pos in &r.metadata.sources {
            match pos {
                SourcePosition::Kafka { partition, offset, done, marks } => {
                    saved.insert(*partition, (*offset, *done, marks.clone()));
                }
                _ => {
                    return Err(JobError::Restore(format!(
                        "{} recorded a {pos:?} source position; the manifest's source is Kafka",
                        r.dir.display()
                    )))
                }
            }
        }
        if let Some(gone) = saved.keys().find(|p| !partitions.contains(p)) {
            return Err(JobError::Restore(format!(
                "{} has an offset for partition {gone} of `{}`, which the topic no longer has",
                r.dir.display(),
                spec.topic
            )));
        }
    }
    let partitions = match &spec.partitions {
        None => partitions,
        Some(only) => {
            if let Some(missing) = only.iter().find(|p| !partitions.contains(p)) {
                return Err(JobError::Source(format!("topic `{}` has no partition {missing}", spec.topic)));
            }
            only.clone()
        }
    };
    let group = group(m, spec);
    let mut sources: Vec<Box<dyn Source>> = Vec::with_capacity(partitions.len());
    let mut origins = Vec::with_capacity(partitions.len());
    for p in partitions {
        let (offset, done, marks) = match saved.remove(&p) {
            Some((o, d, marks)) => (Some(o), d, marks),
            None => (None, false, None),
        };
        let o = SharedOrigins::default();
        let at = Resume { offset, done, marks };
        let source = KafkaSource::open(spec, &group, p, at, o.clone()).map_err(JobError::Source)?;
        sources.push(Box::new(source));
        origins.push(o);
    }
    Ok((sources, origins))
}

/// The sink subtasks: staged (exactly once) when `staging` is given.
#[cfg(feature = "kafka")]
pub(super) fn open_sinks(
    m: &Manifest,
    spec: &KafkaSinkSpec,
    staging: Option<&Path>,
) -> Result<Vec<Box<dyn Sink>>, JobError> {
    use crate::connector::kafka::{KafkaSink, StagedKafkaSink};
    use crate::manifest::Delivery;
    (0..m.parallelism)
        .map(|i| -> Result<Box<dyn Sink>, JobError> {
            match (spec.delivery, staging) {
                (Delivery::ExactlyOnce, Some(dir)) => {
                    let sink = StagedKafkaSink::create(dir, i, spec.repartition);
                    Ok(Box::new(sink.map_err(|e| JobError::Output(e.to_string()))?))
                }
                (Delivery::ExactlyOnce, None) => {
                    Err(JobError::Output("an exactly-once Kafka sink needs checkpoints".into()))
                }
                (Delivery::AtLeastOnce, _) => {
                    Ok(Box::new(KafkaSink::create(spec, &m.name, i).map_err(JobError::Output)?))
                }
            }
        })
        .collect()
}

/// What commits the sink's output when checkpoints complete.
#[cfg(feature = "kafka")]
pub(super) fn committer(
    m: &Manifest,
    spec: &KafkaSinkSpec,
    checkpoints: &Path,
) -> Result<Box<dyn Committer>, JobError> {
    use crate::connector::kafka::KafkaPublisher;
    use crate::manifest::Delivery;
    match spec.delivery {
        Delivery::ExactlyOnce => {
            Ok(Box::new(KafkaPublisher::open(&staging_dir(checkpoints), spec, &m.name).map_err(JobError::Output)?))
        }
        Delivery::AtLeastOnce => Ok(Box::new(crate::checkpoint::store::NothingToCommit)),
    }
}

#[cfg(not(feature = "kafka"))]
const NO_KAFKA: &str = "this weir was built without Kafka support (cargo feature `kafka`)";

#[cfg(not(feature = "kafka"))]
pub(super) fn open_source(_: &Manifest, _: &KafkaSourceSpec, _: Option<&Restorable>) -> Result<Opened, JobError> {
    Err(JobError::Source(NO_KAFKA.into()))
}

#[cfg(not(feature = "kafka"))]
pub(super) fn open_sinks(_: &Manifest, _: &KafkaSinkSpec, _: Option<&Path>) -> Result<Vec<Box<dyn Sink>>, JobError> {
    Err(JobError::Output(NO_KAFKA.into()))
}

#[cfg(not(feature = "kafka"))]
pub(super) fn committer(_: &Manifest, _: &KafkaSinkSpec, _: &Path) -> Result<Box<dyn Committer>, JobError> {
    Err(JobError::Output(NO_KAFKA.into()))
}
