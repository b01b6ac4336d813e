//! The at-least-once Kafka sink, and producing one record (shared with the
//! exactly-once publisher).

use super::{client_config, Context};
use crate::connector::Sink;
use crate::manifest::KafkaSinkSpec;
use crate::types::{Batch, RecordRef};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use std::io;
use std::time::Duration;

/// A producer of Weir's settings: idempotent (no duplicates or reordering
/// from its own retries), Java's partitioner for keyed records (so keys land
/// where Java clients put them).
pub(super) fn producer(spec: &KafkaSinkSpec, client_id: &str) -> Result<ThreadedProducer<Context>, String> {
    let name = format!("kafka {} {}", spec.brokers, spec.topic);
    client_config(&spec.brokers, client_id, &spec.properties)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create_with_context(Context::new(name.clone()))
        .map_err(|e| format!("{name}: cannot create a producer: {e}"))
}

/// Produces `record` to `topic` (to `partition`, or where the partitioner
/// says), with `extra` in its headers (replacing a header of that name);
/// waits while librdkafka's queue is full.
pub(super) fn produce(
    producer: &ThreadedProducer<Context>,
    topic: &str,
    partition: Option<i32>,
    record: &RecordRef<'_>,
    extra: Option<(&str, &[u8])>,
) -> io::Result<()> {
    let mut headers: Option<OwnedHeaders> = None;
    for (name, value) in record.headers() {
        if extra.is_some_and(|(k, _)| k.as_bytes() == name) {
            continue;
        }
        let key = String::from_utf8_lossy(name);
        headers = Some(headers.unwrap_or_default().insert(Header { key: &key, value: Some(value) }));
    }
    if let Some((key, value)) = extra {
        headers = Some(headers.unwrap_or_default().insert(Header { key, value: Some(value) }));
    }
    let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(record.value).timestamp(record.timestamp);
    if let Some(k) = record.key {
        r = r.key(k);
    }
    if let Some(p) = partition {
        r = r.partition(p);
    }
    if let Some(h) = headers {
        r = r.headers(h);
    }
    loop {
        match producer.send(r) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                r = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(io::Error::other(format!("producing to {topic}: {e}"))),
        }
    }
}

/// Waits until everything sent was acknowledged, and fails if any record
/// was refused (librdkafka retries until `message.timeout.ms`, 5 minutes by
/// default, so a broker restart is a pause, not a failure).
pub(super) fn flush(producer: &ThreadedProducer<Context>, topic: &str) -> io::Result<super::Deliveries> {
    producer.flush(Timeout::Never).map_err(|e| io::Error::other(format!("flushing to {topic}: {e}")))?;
    let d = producer.context().take_deliveries();
    if d.failed > 0 {
        return Err(io::Error::other(format!(
            "{} records could not be written to {topic}: {}",
            d.failed,
            d.first_error.as_deref().unwrap_or("unknown error")
        )));
    }
    Ok(d)
}

/// A subtask's at-least-once output: produced as it comes, flushed at each
/// checkpoint (which fails if a record was refused).
pub struct KafkaSink {
    producer: ThreadedProducer<Context>,
    topic: String,
}

impl KafkaSink {
    /// Subtask `subtask` of pipeline `pipeline` writing per `spec`.
    pub fn create(spec: &KafkaSinkSpec, pipeline: &str, subtask: u32) -> Result<KafkaSink, String> {
        let producer = producer(spec, &format!("weir-{pipeline}-{subtask}"))?;
        Ok(KafkaSink { producer, topic: spec.topic.clone() })
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &Batch) -> io::Result<()> {
        batch.iter().try_for_each(|r| produce(&self.producer, &self.topic, None, &r, None))
    }

    fn pre_commit(&mut self, _id: u64) -> io::Result<()> {
        flush(&self.producer, &self.topic).map(|_| ())
    }

    fn finish(&mut self) -> io::Result<()> {
        flush(&self.producer, &self.topic).map(|_| ())
    }
}
