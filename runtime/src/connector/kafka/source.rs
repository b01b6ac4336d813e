//! One partition of a Kafka topic, read by one source subtask.

use super::{client_config, Context};
use crate::checkpoint::SourcePosition;
use crate::connector::{now_ms, Read, Source};
use crate::manifest::{KafkaSourceSpec, StartAt};
use crate::operator::decode::SharedOrigins;
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
}

impl KafkaSource {
    /// Reads `partition` of the spec's topic from `offset` (`None`: where
    /// the spec starts), committing to consumer group `group`. `done`: a
    /// bounded source that already reached the partition's end.
    pub fn open(
        spec: &KafkaSourceSpec,
        group: &str,
        partition: i32,
        offset: Option<i64>,
        done: bool,
        origins: SharedOrigins,
    ) -> Result<KafkaSource, String> {
        let name = format!("kafka {} {}[{partition}]", spec.brokers, spec.topic);
        let consumer: BaseConsumer<Context> = client_config(&spec.brokers, group, &spec.properties)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", if spec.bounded { "true" } else { "false" })
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
        })
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
                    if let Some(hs) = m.headers() {
                        for h in hs.iter() {
                            weir_batch::write_header(&mut self.headers, h.key.as_bytes(), h.value.unwrap_or(&[]));
                        }
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
        let mut o = self.origins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        o.partition = self.partition;
        o.offsets = offsets;
        Ok(Read::Batch(out.finish()))
    }

    fn position(&self) -> Option<SourcePosition> {
        Some(SourcePosition::Kafka { partition: self.partition, offset: self.next, done: self.done })
    }
}
