//! Exactly-once output to Kafka without transactions.
//!
//! Each sink subtask stages its records in the checkpoint directory
//! (`kafka-out/`): a hidden in-progress file, sealed as
//! `kafka-S-ID.pending` when the subtask takes its snapshot for checkpoint
//! ID. When the checkpoint is complete, the [`KafkaPublisher`] produces the
//! staged records in order, each with the header `weir-id:
//! WRITER/S/ID/N` (`WRITER` is drawn once per checkpoint directory, `N` the
//! record's place in the file), waits for every acknowledgement, deletes
//! the file and records, per partition, where its writes ended
//! (`published.json`).
//!
//! A restart restores the last complete checkpoint; staged files it covers
//! were published partly or not at all. The publisher then reads every
//! partition from where the last complete publication ended to its end,
//! collects the ids it finds, and produces only the records whose id is
//! not there. Records are therefore visible once to every reader, as soon
//! as the checkpoint that staged them is complete. The same read-back
//! follows a publication that failed (a broker down for longer than
//! `message.timeout.ms`).
//!
//! For a pipeline's repartition topic ([`Repartition`]), each record goes
//! to the partition owning its key's key group, and the sink stages a
//! progress mark (`weir-mark`) before sealing each checkpoint's file (and
//! an end mark at the end) that is published to every partition.
//!
//! What it assumes: one publishing process per checkpoint directory (the
//! directory's lock), and no write of a killed process still in flight
//! once the restarted one reads back (the broker has closed its
//! connection).

use super::sink::{flush, produce, producer};
use super::{client_config, Context, ID_HEADER, MARK_HEADER};
use crate::checkpoint::Committer;
use crate::connector::now_ms;
use crate::connector::sink::Staging;
use crate::connector::Sink;
use crate::manifest::{KafkaSinkSpec, Repartition};
use crate::time::Mark;
use crate::types::{key_group, subtask_of_key_group, Batch, BatchWriter, RecordRef, Timestamp};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::producer::ThreadedProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a read-back may take before the recovery fails (and is retried
/// by the next start).
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a read-back waits for more records after every partition reported its end.
const READ_BACK_QUIET: Duration = Duration::from_millis(500);

/// A staged file's name: `kafka-S-ID.pending`, or `kafka-S-end.pending`
/// for the output after the last checkpoint of a finished run.
fn pending_name(subtask: u32, id: Option<u64>) -> String {
    match id {
        Some(id) => format!("kafka-{subtask}-{id:010}.pending"),
        None => format!("kafka-{subtask}-end.pending"),
    }
}

/// (subtask, checkpoint id or `None` for the end) of a staged file's name.
fn parse_pending(name: &str) -> Option<(u32, Option<u64>)> {
    let (subtask, id) = name.strip_prefix("kafka-")?.strip_suffix(".pending")?.split_once('-')?;
    let id = if id == "end" { None } else { Some(id.parse().ok()?) };
    Some((subtask.parse().ok()?, id))
}

/// The progress a repartitioning sink passes on: its latest mark, and the
/// last one it staged.
struct Progress {
    repartition: Repartition,
    current: Option<Mark>,
    staged: Option<Mark>,
}

/// A sink subtask's staged output (see the module's documentation).
pub struct StagedKafkaSink {
    staging: Staging,
    subtask: u32,
    progress: Option<Progress>,
}

impl StagedKafkaSink {
    /// Subtask `subtask`'s staging in `dir`; with `repartition`, it also
    /// stages its progress marks.
    pub fn create(dir: &Path, subtask: u32, repartition: Option<Repartition>) -> io::Result<StagedKafkaSink> {
        std::fs::create_dir_all(dir)?;
        Ok(StagedKafkaSink {
            staging: Staging::create(dir, &format!(".kafka-{subtask}.inprogress"))?,
            subtask,
            progress: repartition.map(|repartition| Progress { repartition, current: None, staged: None }),
        })
    }

    /// Stages `mark` as a record of its own.
    fn stage_mark(&mut self, mark: Mark) -> io::Result<()> {
        let Some(p) = &mut self.progress else { return Ok(()) };
        p.staged = Some(mark);
        let value = mark.encode(p.repartition.producer, p.repartition.producers);
        let mut headers = Vec::new();
        weir_batch::write_header(&mut headers, MARK_HEADER.as_bytes(), value.as_bytes());
        let mut w = BatchWriter::new();
        w.push_with_headers(now_ms(), None, b"", &headers);
        self.write(&w.finish())
    }
}

impl Sink for StagedKafkaSink {
    fn write(&mut self, batch: &Batch) -> io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let bytes = batch.as_bytes();
        let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("a batch over 4 GiB"))?;
        self.staging.write(&len.to_le_bytes())?;
        self.staging.write(bytes)
    }

    fn pre_commit(&mut self, id: u64) -> io::Result<()> {
        if let Some(mark) = self.progress.as_ref().and_then(|p| p.current.filter(|c| p.staged != Some(*c))) {
            self.stage_mark(mark)?;
        }
        self.staging.seal(&pending_name(self.subtask, Some(id)))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.stage_mark(Mark::End)?;
        self.staging.finish(&pending_name(self.subtask, None))
    }

    fn watermark(&mut self, watermark: Timestamp) -> io::Result<()> {
        if let Some(p) = &mut self.progress {
            p.current = Some(Mark::Watermark(watermark));
        }
        Ok(())
    }

    fn idle(&mut self) -> io::Result<()> {
        if let Some(p) = &mut self.progress {
            p.current = Some(Mark::Idle);
        }
        Ok(())
    }
}

/// Where the publisher sends a record.
enum Target {
    /// Where the producer's partitioner puts it (by key).
    Partitioner,
    /// To this partition.
    One(i32),
    /// A progress mark: to every partition.
    All,
}

/// Reads the batches of a staged file.
fn read_staged(path: &Path, mut each: impl FnMut(Batch) -> io::Result<()>) -> io::Result<()> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut len = [0u8; 4];
    loop {
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
        r.read_exact(&mut buf)?;
        let batch = Batch::from_vec(buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e:?}", path.display())))?;
        each(batch)?;
    }
}

/// What the publisher keeps between calls.
struct State {
    /// Per partition, where the last complete publication's writes ended.
    published: BTreeMap<i32, i64>,
    /// A publication failed or was cut short: read back before the next.
    dirty: bool,
    writer: String,
}

/// Publishes staged output when checkpoints complete (the sink's
/// [`Committer`]).
pub struct KafkaPublisher {
    dir: PathBuf,
    spec: KafkaSinkSpec,
    partitions: Vec<i32>,
    producer: ThreadedProducer<Context>,
    state: Mutex<State>,
}

const PUBLISHED: &str = "published.json";
const WRITER: &str = "writer";

impl KafkaPublisher {
    /// The publisher of pipeline `pipeline`'s output staged in `dir`.
    /// Reaches the brokers once to check the topic and, the first time,
    /// to note where the partitions end.
    pub fn open(dir: &Path, spec: &KafkaSinkSpec, pipeline: &str) -> Result<KafkaPublisher, String> {
        let at = |e: io::Error| format!("{}: {e}", dir.display());
        std::fs::create_dir_all(dir).map_err(at)?;
        let partitions = super::partitions(&spec.brokers, &spec.topic, &spec.properties)?;
        let producer = producer(spec, &format!("weir-{pipeline}-publisher"))?;
        let writer = match std::fs::read_to_string(dir.join(WRITER)) {
            Ok(w) => w.trim().to_string(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => new_writer(dir).map_err(at)?,
            Err(e) => return Err(at(e)),
        };
        let published = match std::fs::read(dir.join(PUBLISHED)) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", dir.join(PUBLISHED).display()))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Where the partitions end now: everything this directory
                // will ever publish comes later. (A broker that reports an
                // end too small only makes a read-back longer.)
                let published = ends(spec, &partitions)?;
                save_published(dir, &published).map_err(at)?;
                published
            }
            Err(e) => return Err(at(e)),
        };
        let publisher = KafkaPublisher {
            dir: dir.to_path_buf(),
            spec: spec.clone(),
            partitions,
            producer,
            state: Mutex::new(State { published, dirty: false, writer }),
        };
        // Files staged by an earlier process may have been published in
        // part: whatever publishes them first reads the topic back.
        let leftovers = !publisher.staged().map_err(at)?.is_empty();
        publisher.state.lock().unwrap_or_else(PoisonError::into_inner).dirty = leftovers;
        Ok(publisher)
    }

    /// Where `record` goes.
    fn target(&self, record: &RecordRef<'_>) -> io::Result<Target> {
        let Some(r) = &self.spec.repartition else { return Ok(Target::Partitioner) };
        if record.header(MARK_HEADER.as_bytes()).is_some() {
            return Ok(Target::All);
        }
        let key = record.key.ok_or_else(|| io::Error::other("a record without a key reached the repartition topic"))?;
        let group = key_group(key, r.max_parallelism);
        let n = self.partitions.len() as u32;
        Ok(Target::One(self.partitions[subtask_of_key_group(group, r.max_parallelism, n) as usize]))
    }

    /// Staged files, sorted by checkpoint then subtask.
    fn staged(&self) -> io::Result<Vec<(Option<u64>, u32, PathBuf)>> {
        let mut files = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if let Some((subtask, id)) = parse_pending(&e.file_name().to_string_lossy()) {
                files.push((id, subtask, e.path()));
            }
        }
        files.sort_by_key(|(id, s, _)| (id.map_or(u64::MAX, |i| i), *s));
        Ok(files)
    }

    /// Produces `files` (whose records are numbered as checkpoint `label`
    /// when they are end files), skipping what a read-back finds when the
    /// last publication did not complete; then deletes them.
    fn publish(&self, files: &[(Option<u64>, u32, PathBuf)], final_id: u64) -> io::Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let present = if state.dirty { self.read_back(&state)? } else { HashSet::new() };
        let topic = &self.spec.topic;
        let result = (|| -> io::Result<super::Deliveries> {
            let mut id = String::new();
            for (ckpt, subtask, path) in files {
                let label = match ckpt {
                    Some(c) => c.to_string(),
                    None => format!("e{final_id}"),
                };
                let mut n = 0u64;
                read_staged(path, |batch| {
                    for r in batch.iter() {
                        id.clear();
                        use std::fmt::Write as _;
                        let _ = write!(id, "{}/{subtask}/{label}/{n}", state.writer);
                        n += 1;
                        match self.target(&r)? {
                            Target::All => {
                                let base = id.len();
                                for &p in &self.partitions {
                                    id.truncate(base);
                                    let _ = write!(id, "/p{p}");
                                    if !present.contains(id.as_bytes()) {
                                        produce(&self.producer, topic, Some(p), &r, Some((ID_HEADER, id.as_bytes())))?;
                                    }
                                }
                            }
                            target => {
                                let p = match target {
                                    Target::One(p) => Some(p),
                                    _ => None,
                                };
                                if !present.contains(id.as_bytes()) {
                                    produce(&self.producer, topic, p, &r, Some((ID_HEADER, id.as_bytes())))?;
                                }
                            }
                        }
                    }
                    Ok(())
                })?;
            }
            flush(&self.producer, topic)
        })();
        let delivered = match result {
            Ok(d) => d,
            Err(e) => {
                state.dirty = true;
                return Err(e);
            }
        };
        for (_, _, path) in files {
            std::fs::remove_file(path)?;
        }
        File::open(&self.dir)?.sync_all()?;
        for (p, next) in delivered.next_offsets {
            let e = state.published.entry(p).or_insert(0);
            *e = (*e).max(next);
        }
        save_published(&self.dir, &state.published)?;
        state.dirty = false;
        Ok(())
    }

    /// The ids of this writer found in the topic after the last complete
    /// publication.
    fn read_back(&self, state: &State) -> io::Result<HashSet<Vec<u8>>> {
        let spec = &self.spec;
        let started = Instant::now();
        let partitions = super::partitions(&spec.brokers, &spec.topic, &spec.properties).map_err(io::Error::other)?;
        let consumer: BaseConsumer<Context> = client_config(&spec.brokers, "weir-read-back", &spec.properties)
            .set("group.id", "weir-read-back")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_uncommitted")
            .set("auto.offset.reset", "earliest")
            .create_with_context(Context::new(format!("kafka {} {} read-back", spec.brokers, spec.topic)))
            .map_err(|e| io::Error::other(format!("cannot create a consumer: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            let at = state.published.get(p).map_or(Offset::Beginning, |&o| Offset::Offset(o));
            tpl.add_partition_offset(&spec.topic, *p, at).map_err(io::Error::other)?;
        }
        consumer.assign(&tpl).map_err(io::Error::other)?;
        let prefix = format!("{}/", state.writer);
        let mut present = HashSet::new();
        let mut at_end = BTreeSet::new();
        let mut read = 0u64;
        // Done when every partition reported its end and nothing more came
        // for a while (a broker may report an end offset that is too small).
        let mut last_news = Instant::now();
        while at_end.len() < partitions.len() || last_news.elapsed() < READ_BACK_QUIET {
            if started.elapsed() > READ_BACK_TIMEOUT {
                return Err(io::Error::other(format!(
                    "reading back {} to resume its exactly-once output timed out after {}s ({} of {} partitions read to the end)",
                    spec.topic,
                    READ_BACK_TIMEOUT.as_secs(),
                    at_end.len(),
                    partitions.len()
                )));
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Ok(m)) => {
                    last_news = Instant::now();
                    read += 1;
                    // (The last id: one carried from the input was replaced, but be sure.)
                    let id = m
                        .headers()
                        .and_then(|hs| hs.iter().filter(|h| h.key == ID_HEADER).last().and_then(|h| h.value));
                    if let Some(id) = id.filter(|id| id.starts_with(prefix.as_bytes())) {
                        present.insert(id.to_vec());
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) if at_end.insert(p) => last_news = Instant::now(),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => tracing::warn!("reading back {}: {e}", spec.topic),
            }
        }
        tracing::info!(
            "read back {} records of {} in {} ms: {} already published by this pipeline",
            read,
            spec.topic,
            started.elapsed().as_millis(),
            present.len()
        );
        Ok(present)
    }
}

/// A new writer id for `dir`, saved.
fn new_writer(dir: &Path) -> io::Result<String> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let seed = format!("{nanos}-{}-{}", std::process::id(), dir.display());
    let writer = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()));
    crate::checkpoint::store::write_atomically(dir, WRITER, writer.as_bytes())?;
    Ok(writer)
}

fn save_published(dir: &Path, published: &BTreeMap<i32, i64>) -> io::Result<()> {
    let bytes = serde_json::to_vec(published).map_err(io::Error::other)?;
    crate::checkpoint::store::write_atomically(dir, PUBLISHED, &bytes)
}

/// Where each partition ends now.
fn ends(spec: &KafkaSinkSpec, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, String> {
    let consumer: BaseConsumer<Context> = client_config(&spec.brokers, "weir-metadata", &spec.properties)
        .create_with_context(Context::new(format!("kafka {}", spec.brokers)))
        .map_err(|e| format!("cannot create a Kafka client for {}: {e}", spec.brokers))?;
    partitions
        .iter()
        .map(|&p| {
            let (_, high) = consumer
                .fetch_watermarks(&spec.topic, p, super::METADATA_TIMEOUT)
                .map_err(|e| format!("kafka {} {}[{p}]: cannot read the end offset: {e}", spec.brokers, spec.topic))?;
            Ok((p, high))
        })
        .collect()
}

impl Committer for KafkaPublisher {
    fn commit(&self, upto: u64) -> io::Result<()> {
        let files: Vec<_> = self.staged()?.into_iter().filter(|(id, _, _)| id.is_some_and(|id| id <= upto)).collect();
        self.publish(&files, upto)
    }

    fn commit_end(&self, final_id: u64) -> io::Result<()> {
        let files: Vec<_> = self.staged()?.into_iter().filter(|(id, _, _)| id.is_none()).collect();
        self.publish(&files, final_id)
    }

    fn recover(&self, last: u64) -> io::Result<()> {
        let mut keep = Vec::new();
        for (id, subtask, path) in self.staged()? {
            match id {
                Some(id) if id <= last => keep.push((Some(id), subtask, path)),
                // Staged after the restored checkpoint: produced again by the restored run.
                _ => std::fs::remove_file(path)?,
            }
        }
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().ends_with(".inprogress") {
                std::fs::remove_file(e.path())?;
            }
        }
        if last == 0 {
            // A fresh start: a new writer, so nothing an earlier run wrote can
            // be mistaken for this run's output.
            let writer = new_writer(&self.dir)?;
            self.state.lock().unwrap_or_else(PoisonError::into_inner).writer = writer;
        }
        if !keep.is_empty() {
            self.state.lock().unwrap_or_else(PoisonError::into_inner).dirty = true;
        }
        self.publish(&keep, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_names_round_trip() {
        assert_eq!(parse_pending(&pending_name(3, Some(12))), Some((3, Some(12))));
        assert_eq!(parse_pending(&pending_name(0, None)), Some((0, None)));
        assert_eq!(parse_pending(".kafka-0.inprogress"), None);
        assert_eq!(parse_pending("published.json"), None);
    }

    #[test]
    fn staged_batches_are_read_back_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = StagedKafkaSink::create(tmp.path(), 1, None).unwrap();
        let batch = |vals: &[&str]| {
            let mut w = crate::types::BatchWriter::new();
            for v in vals {
                w.push(7, Some(b"k"), v.as_bytes());
            }
            w.finish()
        };
        s.pre_commit(1).unwrap(); // nothing written: no file
        s.write(&batch(&["a", "b"])).unwrap();
        s.write(&batch(&["c"])).unwrap();
        s.pre_commit(2).unwrap();
        s.write(&batch(&["d"])).unwrap();
        s.finish().unwrap();
        let mut names: Vec<String> =
            std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["kafka-1-0000000002.pending", "kafka-1-end.pending"]);
        let mut values = Vec::new();
        read_staged(&tmp.path().join("kafka-1-0000000002.pending"), |b| {
            values.extend(b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()));
            Ok(())
        })
        .unwrap();
        assert_eq!(values, ["a", "b", "c"]);
    }
}
