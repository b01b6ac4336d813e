//! Kafka: a source that reads one partition per source subtask (its offset
//! is the split's position in checkpoints), and a sink with a chosen
//! guarantee:
//!
//! - at least once ([`KafkaSink`]): records are produced as they arrive by
//!   an idempotent producer and flushed at each checkpoint;
//! - exactly once ([`StagedKafkaSink`] + [`KafkaPublisher`]): records are
//!   staged with the checkpoint and produced only once it is complete, each
//!   with a `weir-id` header naming its writer, checkpoint, subtask and
//!   place; a restart that finds staged output of a complete checkpoint
//!   reads the topic back from where the last publication ended and
//!   produces only the records that are not there. Any reader, including
//!   `read_uncommitted` ones, sees each record once. No transactions are
//!   needed (the brokers this is tested on lack them).

mod group;
mod publish;
mod sink;
mod source;

pub use group::{ensure_topic, Membership, OnRevoke};
pub use publish::{KafkaPublisher, StagedKafkaSink};
pub use sink::KafkaSink;
pub use source::{KafkaSource, Resume};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long metadata requests wait for the brokers.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The header carrying an exactly-once record's id.
pub const ID_HEADER: &str = "weir-id";

/// The header of a progress mark in a repartition topic (see [`crate::time::Mark`]).
pub const MARK_HEADER: &str = "weir-mark";

/// The client settings every Weir client starts from.
pub fn client_config(brokers: &str, client_id: &str, properties: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers).set("client.id", client_id);
    for (k, v) in properties {
        c.set(k, v);
    }
    c
}

/// What producers learned from their delivery reports.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Records the brokers refused (after librdkafka's retries).
    pub failed: u64,
    /// The first reason.
    pub first_error: Option<String>,
    /// Per partition, one past the largest offset written.
    pub next_offsets: BTreeMap<i32, i64>,
}

/// The context of Weir's Kafka clients: librdkafka's log and errors go to
/// `tracing` under the client's name; producers count their deliveries.
pub struct Context {
    name: String,
    deliveries: Arc<Mutex<Deliveries>>,
}

impl Context {
    /// A context for the client called `name` in messages.
    pub fn new(name: impl Into<String>) -> Context {
        Context { name: name.into(), deliveries: Arc::default() }
    }

    /// Takes the delivery reports gathered so far.
    pub fn take_deliveries(&self) -> Deliveries {
        std::mem::take(&mut *self.deliveries.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!("{}: {fac}: {message}", self.name)
            }
            RDKafkaLogLevel::Warning => tracing::warn!("{}: {fac}: {message}", self.name),
            _ => tracing::debug!("{}: {fac}: {message}", self.name),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The end of a partition is an event the reader handles, not an error.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        tracing::warn!("{}: {error}: {reason}", self.name);
    }
}

impl ConsumerContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut d = self.deliveries.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(m) => {
                let next = d.next_offsets.entry(m.partition()).or_insert(0);
                *next = (*next).max(m.offset() + 1);
            }
            Err((e, _)) => {
                d.failed += 1;
                if d.first_error.is_none() {
                    d.first_error = Some(e.to_string());
                }
            }
        }
    }
}

/// The partitions of `topic`, sorted; a clear error when the brokers cannot
/// be reached or the topic does not exist (Weir creates no topic but a
/// workers' repartition topic, in [`ensure_topic`]).
pub fn partitions(brokers: &str, topic: &str, properties: &[(String, String)]) -> Result<Vec<i32>, String> {
    let consumer: BaseConsumer<Context> = client_config(brokers, "weir-metadata", properties)
        .set("allow.auto.create.topics", "false")
        .create_with_context(Context::new(format!("kafka {brokers}")))
        .map_err(|e| format!("cannot create a Kafka client for {brokers}: {e}"))?;
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT).map_err(|e| match e {
        KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::BrokerTransportFailure)
        | KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown) => {
            format!("cannot reach the Kafka brokers {brokers} (no answer within {}s: {e})", METADATA_TIMEOUT.as_secs())
        }
        e => format!("cannot read the metadata of topic `{topic}` from {brokers}: {e}"),
    })?;
    let missing =
        || format!("topic `{topic}` does not exist on {brokers} (Weir does not create topics; create it first)");
    let t = metadata.topics().iter().find(|t| t.name() == topic).ok_or_else(missing)?;
    match t.error() {
        None => {}
        Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => return Err(missing()),
        Some(e) => return Err(format!("topic `{topic}` on {brokers}: {}", RDKafkaErrorCode::from(e))),
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    if ids.is_empty() {
        return Err(missing());
    }
    ids.sort_unstable();
    Ok(ids)
}
