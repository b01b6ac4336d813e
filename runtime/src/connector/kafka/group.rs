//! A worker's membership in its pipeline's consumer group, and the
//! repartition topic the workers share.
//!
//! The membership consumer reads nothing (its partitions are paused): it
//! only takes part in the group, so the brokers' group coordinator decides
//! which worker owns which partitions. Partitions are revoked through a
//! callback that runs before the group moves on, so a worker stops a task
//! (at a savepoint) before any other worker may start it.

use super::{client_config, Context, METADATA_TIMEOUT};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;
use std::time::Duration;

/// Called with the (topic, partition)s taken from this worker, before the
/// group hands them to another.
pub type OnRevoke = Box<dyn Fn(&[(String, i32)]) + Send + Sync>;

/// The context of the membership consumer: logs like every Weir client,
/// stops tasks on revocation, pauses what it is assigned.
pub struct GroupContext {
    log: Context,
    on_revoke: OnRevoke,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

fn pairs(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = pairs(tpl);
            if !revoked.is_empty() {
                tracing::info!("{}: partitions revoked: {revoked:?}", self.log.name);
                (self.on_revoke)(&revoked);
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!("{}: partitions assigned: {:?}", self.log.name, pairs(tpl));
                // The tasks read; this consumer only holds the assignment.
                if let Err(e) = consumer.pause(tpl) {
                    tracing::warn!("{}: cannot pause the assigned partitions: {e}", self.log.name);
                }
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!("{}: rebalance failed: {e}", self.log.name),
        }
    }
}

/// A worker's place in the group.
pub struct Membership {
    consumer: BaseConsumer<GroupContext>,
}

impl Membership {
    /// Joins `group` for `topics`. `session` is how long the group waits
    /// for a silent worker before handing its partitions to the others.
    pub fn join(
        brokers: &str,
        group: &str,
        topics: &[&str],
        properties: &[(String, String)],
        session: Duration,
        on_revoke: OnRevoke,
    ) -> Result<Membership, String> {
        let name = format!("kafka {brokers} group {group}");
        let heartbeat = (session / 6).max(Duration::from_millis(100));
        let consumer: BaseConsumer<GroupContext> = client_config(brokers, group, properties)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", session.as_millis().to_string())
            .set("heartbeat.interval.ms", heartbeat.as_millis().to_string())
            // Range assignment gives a worker the same partition numbers of
            // every topic: a source task and the keyed task it mostly feeds.
            .set("partition.assignment.strategy", "range")
            .create_with_context(GroupContext { log: Context::new(name.clone()), on_revoke })
            .map_err(|e| format!("{name}: cannot create the group consumer: {e}"))?;
        consumer.subscribe(topics).map_err(|e| format!("{name}: cannot subscribe to {topics:?}: {e}"))?;
        Ok(Membership { consumer })
    }

    /// Serves the group (rebalances, revocation callbacks) for up to
    /// `wait`; returns what this worker owns now.
    pub fn poll(&self, wait: Duration) -> Result<Vec<(String, i32)>, String> {
        // Paused partitions deliver nothing; what does arrive is dropped.
        if let Some(Err(e)) = self.consumer.poll(wait) {
            tracing::debug!("group consumer: {e}");
        }
        let tpl = self.consumer.assignment().map_err(|e| format!("cannot read the group assignment: {e}"))?;
        Ok(pairs(&tpl))
    }

    /// Leaves the group at once (revoking everything), instead of waiting
    /// for the session to time out.
    pub fn leave(self) {
        self.consumer.unsubscribe();
        // Serve the revocation.
        let _ = self.consumer.poll(Duration::from_millis(100));
    }
}

/// Creates `topic` with `partitions` partitions unless it exists (then
/// checks that it has that many). Records are kept until deleted: a
/// repartition topic's records carry event times that may be old.
pub fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: u32,
    properties: &[(String, String)],
) -> Result<(), String> {
    match super::partitions(brokers, topic, properties) {
        Ok(have) if have.len() == partitions as usize => return Ok(()),
        Ok(have) => {
            return Err(format!(
                "topic `{topic}` on {brokers} has {} partitions; this pipeline needs {partitions} (one per input partition): delete it to have it created again",
                have.len()
            ))
        }
        Err(e) if e.contains("does not exist") => {}
        Err(e) => return Err(e),
    }
    let admin: AdminClient<Context> = client_config(brokers, "weir-admin", properties)
        .create_with_context(Context::new(format!("kafka {brokers} admin")))
        .map_err(|e| format!("cannot create a Kafka admin client for {brokers}: {e}"))?;
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(-1)).set("retention.ms", "-1");
    let opts = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime for the admin client: {e}"))?;
    let results = runtime
        .block_on(admin.create_topics([&new], &opts))
        .map_err(|e| format!("cannot create topic `{topic}` on {brokers}: {e}"))?;
    for r in results {
        match r {
            Ok(_) => tracing::info!("created topic `{topic}` ({partitions} partitions) on {brokers}"),
            // Another worker created it first.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(format!("cannot create topic `{topic}` on {brokers}: {code}")),
        }
    }
    Ok(())
}
