//! The Kafka broker of the tests: its address comes from
//! `WEIR_KAFKA_BROKERS` (set by `scripts/test`, which starts one with
//! `scripts/kafka`); topics, a plain producer and a plain consumer.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// The broker's address; a test that needs Kafka fails loudly without it.
pub fn brokers() -> String {
    std::env::var("WEIR_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!("WEIR_KAFKA_BROKERS is not set: run the tests with scripts/test (it starts a broker with scripts/kafka)")
    })
}

/// A topic name of its own for each test and run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Creates `topic` with `partitions` partitions on `brokers`.
pub fn create_topic_on(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = futures_executor::block_on(admin.create_topics([&new], &opts)).expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Creates `topic` on the test broker.
pub fn create_topic(topic: &str, partitions: i32) {
    create_topic_on(&brokers(), topic, partitions);
}

/// A record as a plain client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The partition.
    pub partition: i32,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: String,
    /// The headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Headers of the `i`th record.
pub type HeadersOf<'a> = &'a dyn Fn(usize) -> Vec<(String, String)>;

/// Produces `records` (key, value, partition) to `topic`, record `i` with
/// headers `headers(i)`; keyed records go where Java's partitioner puts
/// them, `partition` overrides.
pub fn produce_on(brokers: &str, topic: &str, records: &[(Option<&str>, &str, Option<i32>)], headers: HeadersOf<'_>) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for (i, (key, value, partition)) in records.iter().enumerate() {
        let mut r: BaseRecord<'_, str, str> = BaseRecord::to(topic).payload(*value);
        if let Some(k) = key {
            r = r.key(*k);
        }
        if let Some(part) = partition {
            r = r.partition(*part);
        }
        let hs = headers(i);
        if !hs.is_empty() {
            let mut h = OwnedHeaders::new();
            for (k, v) in &hs {
                h = h.insert(Header { key: k, value: Some(v) });
            }
            r = r.headers(h);
        }
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).expect("flush");
}

/// Produces to the test broker.
pub fn produce(topic: &str, records: &[(Option<&str>, &str, Option<i32>)]) {
    produce_on(&brokers(), topic, records, &|_| Vec::new());
}

/// Reads `topic` (every partition from the beginning) until `n` records
/// arrived or `timeout` passed, as a plain `read_uncommitted` consumer.
pub fn consume_on(brokers: &str, topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
    consume_then_wait_on(brokers, topic, n, timeout, Duration::ZERO)
}

/// Like [`consume_on`], then goes on reading until nothing came for `quiet`
/// (for slow brokers: wait long for what is expected, not for what is not).
pub fn consume_then_wait_on(brokers: &str, topic: &str, n: usize, timeout: Duration, quiet: Duration) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "weir-tests")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut last = Instant::now();
    let mut errors = 0usize;
    while (out.len() < n && Instant::now() < deadline) || (out.len() >= n && last.elapsed() < quiet) {
        let m = match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                // Shown with a failing test's output: why nothing came.
                if errors < 10 {
                    eprintln!("consuming {topic}: {e}");
                }
                errors += 1;
                continue;
            }
            None => continue,
        };
        {
            last = Instant::now();
            let headers = m
                .headers()
                .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.unwrap_or(&[]).to_vec())).collect())
                .unwrap_or_default();
            out.push(Record {
                partition: m.partition(),
                key: m.key().map(<[u8]>::to_vec),
                value: String::from_utf8_lossy(m.payload().unwrap_or(&[])).into_owned(),
                headers,
            });
        }
    }
    out
}

/// Reads from the test broker.
pub fn consume(topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
    consume_on(&brokers(), topic, n, timeout)
}
