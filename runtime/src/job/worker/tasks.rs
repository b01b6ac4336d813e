//! How a pipeline splits into tasks that workers can own (pure: no I/O).
//!
//! A pipeline reading a Kafka topic of `P` partitions becomes:
//! - source task `i` (input partition `i`): decode, event time, the steps
//!   up to and including the first `key_by`, then out to the pipeline's
//!   repartition topic `weir-NAME-repartition` (`P` partitions), each record
//!   to the partition owning its key group, exactly once, with progress marks;
//! - keyed task `j` (repartition partition `j`): the records of the key
//!   groups subtask `j` of `P` would own, the keyed steps, the pipeline's sink.
//!
//! A pipeline without `key_by` has only source tasks, which write the sink.
//! Each task is an ordinary one-subtask job with its own checkpoint
//! directory `CHECKPOINTS/tasks/TASK` on the shared checkpoint storage, so
//! any worker can continue it.

use crate::manifest::{
    CheckpointSpec, Delivery, Format, KafkaSinkSpec, KafkaSourceSpec, KeyBySpec, Manifest, OutputSpec, Repartition,
    SinkSpec, SourceKind, SourceSpec, StartAt, StepKind, StepSpec,
};
use std::path::{Path, PathBuf};

/// A unit of work a worker can own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Task {
    /// Reads input partition `i`.
    Source(i32),
    /// Runs the keyed steps of repartition partition `j`.
    Keyed(i32),
}

impl Task {
    /// The task's directory name: `source-3`, `keyed-0`.
    pub fn name(self) -> String {
        match self {
            Task::Source(i) => format!("source-{i}"),
            Task::Keyed(j) => format!("keyed-{j}"),
        }
    }
}

/// A pipeline's split into tasks.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The input topic.
    pub input: KafkaSourceSpec,
    /// Its partitions.
    pub partitions: Vec<i32>,
    /// Where the steps are cut: the index of the first `key_by` (`None`: no keyed steps).
    pub cut: Option<usize>,
    /// The repartition topic (when cut).
    pub repartition_topic: String,
    /// The consumer group the workers share.
    pub group: String,
    /// Where the tasks' checkpoints live.
    pub checkpoints: CheckpointSpec,
}

/// Why a manifest cannot run as workers.
pub fn layout(m: &Manifest, partitions: Vec<i32>) -> Result<Layout, String> {
    let SourceKind::Kafka(input) = &m.source.kind else {
        return Err("workers share a Kafka topic's partitions: the source must be `kafka`".into());
    };
    let Some(checkpoints) = m.checkpoint.clone() else {
        return Err(
            "workers hand tasks to each other through checkpoints: give `checkpoint.dir` on storage every worker reaches"
                .into(),
        );
    };
    if partitions.len() as u32 > m.max_parallelism {
        return Err(format!(
            "topic `{}` has {} partitions, more than the pipeline's {} key groups (raise max_parallelism)",
            input.topic,
            partitions.len(),
            m.max_parallelism
        ));
    }
    let cut = m.steps.iter().position(|s| matches!(s.kind, StepKind::KeyBy(_)));
    Ok(Layout {
        input: input.clone(),
        partitions,
        cut,
        repartition_topic: format!("weir-{}-repartition", m.name),
        group: input.group.clone().unwrap_or_else(|| format!("weir-{}", m.name)),
        checkpoints,
    })
}

impl Layout {
    /// Every task of the pipeline.
    pub fn tasks(&self) -> Vec<Task> {
        let mut all: Vec<Task> = self.partitions.iter().map(|&p| Task::Source(p)).collect();
        if self.cut.is_some() {
            all.extend(self.partitions.iter().map(|&p| Task::Keyed(p)));
        }
        all
    }

    /// The task that owns `partition` of `topic`, if it is one of the pipeline's.
    pub fn task_of(&self, topic: &str, partition: i32) -> Option<Task> {
        if topic == self.input.topic {
            Some(Task::Source(partition))
        } else if self.cut.is_some() && topic == self.repartition_topic {
            Some(Task::Keyed(partition))
        } else {
            None
        }
    }

    /// The topics the workers' group subscribes to.
    pub fn topics(&self) -> Vec<&str> {
        let mut t = vec![self.input.topic.as_str()];
        if self.cut.is_some() {
            t.push(&self.repartition_topic);
        }
        t
    }

    /// The task's checkpoint directory.
    pub fn dir(&self, task: Task) -> PathBuf {
        self.checkpoints.dir.join("tasks").join(task.name())
    }

    /// `m` as the one-subtask job of `task`.
    pub fn manifest(&self, m: &Manifest, task: Task) -> Manifest {
        let mut t = m.clone();
        t.parallelism = 1;
        t.checkpoint = Some(CheckpointSpec { dir: self.dir(task), ..self.checkpoints.clone() });
        t.state.dir = m.state.dir.as_ref().map(|d| d.join(task.name()));
        t.dead_letter = per_task_output(&m.dead_letter, task);
        t.late = m.late.as_ref().map(|o| per_task_output(o, task));
        let repartition = KafkaSinkSpec {
            brokers: self.input.brokers.clone(),
            topic: self.repartition_topic.clone(),
            delivery: Delivery::ExactlyOnce,
            properties: self.input.properties.clone(),
            repartition: None,
        };
        match (task, self.cut) {
            (Task::Source(i), cut) => {
                let spec = KafkaSourceSpec { partitions: Some(vec![i]), ..self.input.clone() };
                t.source.kind = SourceKind::Kafka(spec);
                if let Some(k) = cut {
                    t.steps.truncate(k + 1);
                    t.sink = SinkSpec::Kafka(KafkaSinkSpec {
                        repartition: Some(Repartition {
                            producer: self.partitions.iter().position(|&p| p == i).unwrap_or(0) as u32,
                            producers: self.partitions.len() as u32,
                            max_parallelism: m.max_parallelism,
                        }),
                        ..repartition
                    });
                } else {
                    t.sink = per_task_sink(&m.sink, task);
                }
            }
            (Task::Keyed(j), cut) => {
                let k = cut.unwrap_or(0);
                t.source = SourceSpec {
                    kind: SourceKind::Kafka(KafkaSourceSpec {
                        brokers: self.input.brokers.clone(),
                        topic: self.repartition_topic.clone(),
                        group: Some(self.group.clone()),
                        start: StartAt::Earliest,
                        bounded: self.input.bounded,
                        properties: self.input.properties.clone(),
                        partitions: Some(vec![j]),
                        marked: true,
                    }),
                    // Values as the source tasks wrote them; timestamps are the records' event times.
                    format: Format::Lines,
                    event_time: None,
                };
                let key_by =
                    StepSpec { index: 0, name: m.steps[k].name.clone(), kind: StepKind::KeyBy(KeyBySpec::RecordKey) };
                t.steps = std::iter::once(key_by).chain(m.steps[k + 1..].iter().cloned()).collect();
                for (i, s) in t.steps.iter_mut().enumerate() {
                    s.index = i;
                }
                t.sink = per_task_sink(&m.sink, task);
            }
        }
        t
    }
}

/// `path` with `.TASK` before its extension: `dead.ndjson` → `dead.keyed-0.ndjson`.
fn per_task_path(path: &Path, task: Task) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{}.{}", task.name(), ext.to_string_lossy()),
        None => format!("{stem}.{}", task.name()),
    };
    path.with_file_name(name)
}

fn per_task_output(o: &OutputSpec, task: Task) -> OutputSpec {
    match o {
        OutputSpec::File(p) => OutputSpec::File(per_task_path(p, task)),
        OutputSpec::Rotating { path, max_bytes, keep } => {
            OutputSpec::Rotating { path: per_task_path(path, task), max_bytes: *max_bytes, keep: *keep }
        }
        other => other.clone(),
    }
}

/// Every task writes its own files: a file sink per task, a directory sink
/// in a subdirectory per task. Kafka sinks are shared (each task publishes
/// under its own writer id).
fn per_task_sink(s: &SinkSpec, task: Task) -> SinkSpec {
    match s {
        SinkSpec::File { path, format } => SinkSpec::File { path: per_task_path(path, task), format: *format },
        SinkSpec::Dir { dir, format } => SinkSpec::Dir { dir: dir.join(task.name()), format: *format },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(steps: &str, sink: &str) -> Manifest {
        let text = format!(
            "name: clicks\nparallelism: 4\nsource:\n  kafka: {{topic: clicks, bounded: true}}\n  event_time: {{field: /ts}}\n  watermark: {{max_out_of_orderness: 2s}}\nsteps:\n{steps}\nsink:\n{sink}\ncheckpoint: {{dir: /shared/ckpt}}\ndead_letter:\n  file: {{path: /out/dead.ndjson}}\n"
        );
        Manifest::parse(&text, Path::new("/m")).unwrap()
    }

    #[test]
    fn keyed_pipelines_are_cut_at_the_first_key_by() {
        let m = manifest(
            "  - key_by: {field: /user}\n  - window: {tumbling: 1m}\n    aggregate: {builtin: count}",
            "  file: {dir: /out/counts}",
        );
        let l = layout(&m, vec![0, 1, 2]).unwrap();
        assert_eq!(l.cut, Some(0));
        assert_eq!(l.topics(), ["clicks", "weir-clicks-repartition"]);
        assert_eq!(l.tasks().len(), 6);
        assert_eq!(l.task_of("weir-clicks-repartition", 2), Some(Task::Keyed(2)));
        assert_eq!(l.task_of("other", 2), None);

        let s = l.manifest(&m, Task::Source(1));
        assert_eq!(s.parallelism, 1);
        assert_eq!(s.checkpoint.as_ref().unwrap().dir, Path::new("/shared/ckpt/tasks/source-1"));
        assert_eq!(s.steps.len(), 1);
        let SourceKind::Kafka(src) = &s.source.kind else { panic!() };
        assert_eq!(src.partitions, Some(vec![1]));
        assert!(s.source.event_time.is_some(), "source tasks assign event time");
        let SinkSpec::Kafka(out) = &s.sink else { panic!("{:?}", s.sink) };
        assert_eq!(out.topic, "weir-clicks-repartition");
        assert_eq!(
            out.repartition,
            Some(Repartition { producer: 1, producers: 3, max_parallelism: m.max_parallelism })
        );
        assert!(matches!(&s.dead_letter, OutputSpec::File(p) if p == Path::new("/out/dead.source-1.ndjson")));

        let k = l.manifest(&m, Task::Keyed(2));
        let SourceKind::Kafka(src) = &k.source.kind else { panic!() };
        assert_eq!(
            (src.topic.as_str(), src.partitions.clone(), src.marked),
            ("weir-clicks-repartition", Some(vec![2]), true)
        );
        assert!(k.source.event_time.is_none(), "event times come with the records");
        assert!(matches!(k.steps[0].kind, StepKind::KeyBy(KeyBySpec::RecordKey)));
        assert!(matches!(k.steps[1].kind, StepKind::Window(_)));
        assert_eq!(k.steps.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1]);
        assert!(matches!(&k.sink, SinkSpec::Dir { dir, .. } if dir == Path::new("/out/counts/keyed-2")));
    }

    #[test]
    fn stateless_pipelines_have_source_tasks_only() {
        let m = manifest("  - filter: {udf: keep@1}", "  kafka: {topic: kept}");
        let l = layout(&m, vec![0, 1]).unwrap();
        assert_eq!(l.cut, None);
        assert_eq!(l.tasks(), [Task::Source(0), Task::Source(1)]);
        assert_eq!(l.topics(), ["clicks"]);
        assert_eq!(l.task_of("weir-clicks-repartition", 0), None);
        let s = l.manifest(&m, Task::Source(0));
        assert!(matches!(&s.sink, SinkSpec::Kafka(k) if k.topic == "kept" && k.repartition.is_none()));
    }

    #[test]
    fn what_cannot_run_as_workers_is_refused() {
        let m = manifest("  - filter: {udf: keep@1}", "  stdout:");
        assert!(layout(&m, (0..200).collect()).unwrap_err().contains("more than the pipeline's"));
        let mut no_ckpt = m.clone();
        no_ckpt.checkpoint = None;
        assert!(layout(&no_ckpt, vec![0]).unwrap_err().contains("checkpoint.dir"));
        let mut file = m;
        file.source.kind = SourceKind::Stdin;
        assert!(layout(&file, vec![0]).unwrap_err().contains("must be `kafka`"));
    }
}
