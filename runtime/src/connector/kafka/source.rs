//! One partition of a Kafka topic, read by one source subtask.

use super::{client_config, Context, ID_HEADER, MARK_HEADER};
use crate::checkpoint::SourcePosition;
use crate::connector::{now_ms, Read, Source};
use crate::manifest::{KafkaSourceSpec, StartAt};
use crate::operator::decode::SharedOrigins;
use crate::time::{Mark, MarkedWatermarks, ProducerMarks, WatermarkUpdate};
use crate::types::BatchWriter;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::io;
use std::time::{Duration, Instant};

/// librdkafka's "the beginning of the partition" offset.
pub const BEGINNING: i64 = -2;

/// How long the first poll of a read waits for a record.
const POLL: Duration = Duration::from_millis(100);

/// Where a partition's reading resumes (from a checkpoint).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The next offset (`None`: where the spec starts).
    pub offset: Option<i64>,
    /// A bounded source that already reached the partition's end.
    pub done: bool,
    /// A repartition topic's producers' marks.
    pub marks: Option<ProducerMarks>,
}

/// Reads one partition from an offset; its position is the next offset.
pub struct KafkaSource {
    consumer: BaseConsumer<Context>,
    name: String,
    partition: i32,
    /// The offset of the next record (or [`BEGINNING`]).
    next: i64,
    bounded: bool,
    done: bool,
    origins: SharedOrigins,
    headers: Vec<u8>,
    /// Consumer errors since the last warning, and when that was.
    errors: (u64, Option<Instant>),
    /// The producers' progress, when the topic is a repartition topic.
    marks: Option<MarkedWatermarks>,
}

impl KafkaSource {
    /// Reads `partition` of the spec's topic from where `at` says, in
    /// consumer group `group`.
    pub fn open(
        spec: &KafkaSourceSpec,
        group: &str,
        partition: i32,
        at: Resume,
        origins: SharedOrigins,
    ) -> Result<KafkaSource, String> {
        let Resume { offset, done, marks } = at;
        // A repartition topic ends when its producers say so, not at its end.
        let eof = spec.bounded && !spec.marked;
        let name = format!("kafka {} {}[{partition}]", spec.brokers, spec.topic);
        let consumer: BaseConsumer<Context> = client_config(&spec.brokers, group, &spec.properties)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", if eof { "true" } else { "false" })
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100")
            .create_with_context(Context::new(name.clone()))
            .map_err(|e| format!("{name}: cannot create a consumer: {e}"))?;
        let next = match (offset, spec.start) {
            (Some(o), _) => o,
            (None, StartAt::Earliest) => BEGINNING,
            (None, StartAt::Latest) => {
                let (_, high) = consumer
                    .fetch_watermarks(&spec.topic, partition, super::METADATA_TIMEOUT)
                    .map_err(|e| format!("{name}: cannot read the end offset: {e}"))?;
                high
            }
        };
        let mut tpl = TopicPartitionList::new();
        let at = if next == BEGINNING { Offset::Beginning } else { Offset::Offset(next) };
        tpl.add_partition_offset(&spec.topic, partition, at).map_err(|e| format!("{name}: {e}"))?;
        consumer.assign(&tpl).map_err(|e| format!("{name}: cannot assign the partition: {e}"))?;
        Ok(KafkaSource {
            consumer,
            name,
            partition,
            next,
            bounded: spec.bounded,
            done,
            origins,
            headers: Vec::new(),
            errors: (0, None),
            marks: spec.marked.then(|| MarkedWatermarks::new(marks.unwrap_or_default())),
        })
    }

    /// A producer's progress mark: noted, not a record.
    fn mark(&mut self, value: &[u8], offset: i64) -> io::Result<()> {
        let bad = |e: String| io::Error::other(format!("{} at offset {offset}: {e}", self.name));
        let (producer, producers, mark) = Mark::decode(value).map_err(bad)?;
        if let Some(m) = &mut self.marks {
            m.observe(producer, producers, mark).map_err(bad)?;
            if self.bounded && m.ended() {
                tracing::info!("{}: every producer ended (offset {})", self.name, offset + 1);
                self.done = true;
            }
        }
        Ok(())
    }

    /// A consumer error: librdkafka retries by itself (a broker restart
    /// is a pause), so it is reported, at most every 10 s, not fatal.
    fn report(&mut self, e: &KafkaError) {
        self.errors.0 += 1;
        let due = self.errors.1.is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
        if due {
            tracing::warn!("{}: {e} ({} errors; retrying)", self.name, self.errors.0);
            self.errors = (0, Some(Instant::now()));
        }
    }
}

impl Source for KafkaSource {
    fn read(&mut self, max: usize) -> io::Result<Read> {
        if self.done {
            return Ok(Read::End);
        }
        let mut out = BatchWriter::with_capacity(max * 128);
        let mut offsets = Vec::with_capacity(max.min(4096));
        let mut wait = POLL;
        while out.len() < max {
            match self.consumer.poll(wait) {
                None => break,
                Some(Ok(m)) => {
                    self.headers.clear();
                    let marked = self.marks.is_some();
                    let mut mark = None;
                    if let Some(hs) = m.headers() {
                        for h in hs.iter() {
                            let value = h.value.unwrap_or(&[]);
                            if marked && h.key == MARK_HEADER {
                                mark = Some(value.to_vec());
                            } else if !(marked && h.key == ID_HEADER) {
                                weir_batch::write_header(&mut self.headers, h.key.as_bytes(), value);
                            }
                        }
                    }
                    if let Some(value) = mark {
                        let offset = m.offset();
                        self.mark(&value, offset)?;
                        self.next = offset + 1;
                        wait = Duration::ZERO;
                        if self.done {
                            break;
                        }
                        continue;
                    }
                    let ts = m.timestamp().to_millis().unwrap_or_else(now_ms);
                    out.push_with_headers(ts, m.key(), m.payload().unwrap_or(&[]), &self.headers);
                    offsets.push(m.offset());
                    self.next = m.offset() + 1;
                    wait = Duration::ZERO;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    if self.bounded {
                        tracing::info!("{}: read to the end (offset {})", self.name, self.next);
                        self.done = true;
                        break;
                    }
                }
                Some(Err(e)) => {
                    self.report(&e);
                    break;
                }
            }
        }
        if out.is_empty() {
            return Ok(if self.done { Read::End } else { Read::Idle });
        }
        // (A bounded repartition topic that ended with this batch ends at the next read.)
        let mut o = self.origins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        o.partition = self.partition;
        o.offsets = offsets;
        Ok(Read::Batch(out.finish()))
    }

    fn position(&self) -> Option<SourcePosition> {
        Some(SourcePosition::Kafka {
            partition: self.partition,
            offset: self.next,
            done: self.done,
            marks: self.marks.as_ref().map(|m| m.marks().clone()),
        })
    }

    fn watermark(&mut self) -> WatermarkUpdate {
        self.marks.as_mut().map_or(WatermarkUpdate::None, MarkedWatermarks::poll)
    }
}
