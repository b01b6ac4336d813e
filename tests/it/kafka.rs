//! Kafka against a real broker (`WEIR_KAFKA_BROKERS`, started by
//! `scripts/test`): the bench's q5 from a partitioned topic to a topic,
//! exactly the reference for a plain consumer, also across SIGKILLs; the
//! exactly-once publisher's read-back; keys, headers, dead letters with
//! partition and offset; unreachable brokers and missing topics.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};
use weir::checkpoint::Committer;
use weir::connector::kafka::{KafkaPublisher, StagedKafkaSink};
use weir::connector::Sink;
use weir::manifest::{Delivery, KafkaSinkSpec};
use weir_tests::kafka::{self, brokers, consume, create_topic, produce, unique};
use weir_tests::{dead_letters, oracle, Scratch};

/// Loads `bids` into a new topic of 4 partitions, keyed by auction (each
/// partition in event-time order within the generator's jitter, the
/// partitions read at their own pace: out of order across partitions).
pub(crate) fn bids_topic(bids: &[String]) -> String {
    let topic = unique("bids");
    create_topic(&topic, 4);
    let keys: Vec<String> =
        bids.iter().map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["auction"].to_string()).collect();
    let records: Vec<(Option<&str>, &str, Option<i32>)> =
        bids.iter().zip(&keys).map(|(b, k)| (Some(k.as_str()), b.as_str(), None)).collect();
    produce(&topic, &records);
    topic
}

fn q5_manifest(input: &str, output: &str, interval: &str) -> String {
    format!(
        "name: q5\nparallelism: 2\nsource:\n  kafka: {{ brokers: \"{b}\", topic: {input}, bounded: true }}\n\
         \x20 event_time: {{ field: /ts }}\n  watermark: {{ max_out_of_orderness: 2s }}\n\
         steps:\n  - key_by: {{ field: /auction }}\n  - window: {{ tumbling: 10s }}\n    aggregate: {{ builtin: count, output: csv }}\n\
         sink:\n  kafka: {{ brokers: \"{b}\", topic: {output} }}\ncheckpoint: {{ dir: ckpt, interval: {interval} }}\n",
        b = brokers()
    )
}

pub(crate) fn values(records: &[kafka::Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(|r| r.value.clone()).collect();
    v.sort();
    v
}

#[test]
fn q5_from_a_partitioned_topic_to_a_topic_equals_the_reference() {
    let bids = oracle::bids(5, 200_000);
    let want = oracle::windowed(&bids, 10_000, 10_000, false);
    let input = bids_topic(&bids);
    let output = unique("q5");
    create_topic(&output, 3);
    let s = Scratch::new();
    s.run(&q5_manifest(&input, &output, "200ms")).ok().unwrap();
    let got = consume(&output, want.len() + 1, Duration::from_secs(15));
    assert_eq!(values(&got), want);
    // Keys are the auctions, and every record says which write it was.
    assert!(got.iter().all(|r| r.key.as_deref() == r.value.split(',').next().map(str::as_bytes)));
    assert!(got.iter().all(|r| r.headers.iter().any(|(k, _)| k == "weir-id")));
}

/// Every value visible now, waiting `quiet` for more.
fn visible(topic: &str, quiet: Duration) -> Vec<String> {
    values(&consume(topic, usize::MAX, quiet))
}

fn newest_checkpoint(ckpt: &Path) -> Option<u64> {
    std::fs::read_dir(ckpt)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok()?.strip_prefix("chk-")?.parse().ok())
        .max()
}

/// Waits for a moment to kill the run at: a checkpoint newer than `after`,
/// or, for a run that restored from a checkpoint (its `log` says so), a few
/// milliseconds of work after the restore. The second kind keeps the
/// number of restores independent of the machine's speed: on a loaded
/// machine a resumed run could otherwise finish before its first new
/// checkpoint completes, and never be killed. False if the run ended first.
fn await_kill_point(child: &mut Child, ckpt: &Path, after: Option<u64>, log: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut restored_at = None;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if newest_checkpoint(ckpt) > after {
            return true;
        }
        if restored_at.is_none() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("continuing from") && !text.contains("nothing left to do") {
                restored_at = Some(Instant::now());
            }
        }
        if restored_at.is_some_and(|at| at.elapsed() > Duration::from_millis(30)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no checkpoint within two minutes");
}

#[test]
fn q5_through_kafka_is_exactly_the_reference_after_sigkills() {
    let bids = oracle::bids(9, 300_000);
    let want = oracle::windowed(&bids, 10_000, 10_000, false);
    let input = bids_topic(&bids);
    let output = unique("q5k");
    create_topic(&output, 4);
    let s = Scratch::new();
    let m = s.write("p.yaml", q5_manifest(&input, &output, "50ms"));
    let mut resumed = 0;
    for round in 0..=4 {
        let log = format!("run-{round}.err");
        let mut child = s.spawn(&["run", m.to_str().unwrap()], &log);
        let err = || std::fs::read_to_string(s.join(&log)).unwrap_or_default();
        let after = newest_checkpoint(&s.join("ckpt"));
        if round < 4 && await_kill_point(&mut child, &s.join("ckpt"), after, &s.join(&log)) {
            std::thread::sleep(Duration::from_millis(20 * round as u64));
            child.kill().unwrap();
            child.wait().unwrap();
            // What a plain consumer sees now: only result lines, none twice.
            let seen = visible(&output, Duration::from_secs(2));
            let stray = oracle::unexpected(&want, &seen);
            assert!(stray.is_empty(), "after kill {round}: not in the result, or there twice: {stray:?}");
        } else {
            assert!(child.wait().unwrap().success(), "run {round}: {}", err());
        }
        if err().contains("continuing from") {
            resumed += 1;
        }
        if err().contains("finished in") {
            break;
        }
    }
    assert!(resumed >= 2, "only {resumed} runs continued from a checkpoint");
    let got = consume(&output, want.len() + 1, Duration::from_secs(15));
    assert_eq!(values(&got), want);
}

#[test]
fn a_publication_cut_short_is_completed_without_duplicates() {
    // Checkpoint 1 staged 1,000 records; a crash left 400 of them in the
    // topic. Recovery reads the topic back and produces only the other 600.
    let topic = unique("readback");
    create_topic(&topic, 3);
    let spec = KafkaSinkSpec {
        brokers: brokers(),
        topic: topic.clone(),
        delivery: Delivery::ExactlyOnce,
        properties: Vec::new(),
        repartition: None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kafka-out");
    let publisher = KafkaPublisher::open(&dir, &spec, "readback").unwrap();
    publisher.recover(0).unwrap();
    let mut sink = StagedKafkaSink::create(&dir, 0, None).unwrap();
    let mut w = weir_batch::BatchWriter::new();
    for i in 0..1000 {
        w.push(i, Some(format!("k{}", i % 17).as_bytes()), format!("r{i}").as_bytes());
    }
    sink.write(&w.finish()).unwrap();
    sink.pre_commit(1).unwrap();
    // The first 400, as the crashed publisher would have written them.
    let writer = std::fs::read_to_string(dir.join("writer")).unwrap();
    let first: Vec<String> = (0..400).map(|i| format!("r{i}")).collect();
    let records: Vec<(Option<&str>, &str, Option<i32>)> = first.iter().map(|v| (Some("k"), v.as_str(), None)).collect();
    let id = |i: usize| vec![("weir-id".to_string(), format!("{}/0/1/{i}", writer.trim()))];
    kafka::produce_on(&brokers(), &topic, &records, &id);
    drop(publisher);
    let publisher = KafkaPublisher::open(&dir, &spec, "readback").unwrap();
    publisher.recover(1).unwrap();
    let got = consume(&topic, 1001, Duration::from_secs(10));
    let mut want: Vec<String> = (0..1000).map(|i| format!("r{i}")).collect();
    want.sort();
    assert_eq!(values(&got), want);
    // Nothing left to publish: a second recovery adds nothing.
    publisher.recover(1).unwrap();
    assert_eq!(consume(&topic, 1001, Duration::from_secs(3)).len(), 1000);
}

#[test]
fn keys_and_headers_pass_through_and_undecodable_records_are_dead_lettered_with_partition_and_offset() {
    let input = unique("mixed");
    let output = unique("mixed-out");
    create_topic(&input, 1);
    create_topic(&output, 1);
    let records = [(Some("a"), "{\"n\":1}", None), (Some("b"), "{oops", None), (None, "{\"n\":3}", None)];
    kafka::produce_on(&brokers(), &input, &records, &|_| vec![("trace".to_string(), "t-1".to_string())]);
    let s = Scratch::new();
    let manifest = format!(
        "name: mixed\nsource:\n  kafka: {{ brokers: \"{b}\", topic: {input}, bounded: true }}\n\
         sink:\n  kafka: {{ brokers: \"{b}\", topic: {output} }}\ndead_letter: {{ file: {{ path: dl.ndjson }} }}\n",
        b = brokers()
    );
    let run = s.run(&manifest);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let got = consume(&output, 3, Duration::from_secs(10));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].key.as_deref(), Some(&b"a"[..]));
    assert_eq!(got[0].value, "{\"n\":1}");
    assert_eq!(got[1].key, None);
    assert!(got.iter().all(|r| r.headers == [("trace".to_string(), b"t-1".to_vec())]), "{got:?}");
    let dl = dead_letters(&s.join("dl.ndjson")).unwrap();
    assert_eq!(dl.len(), 1);
    assert_eq!((dl[0]["partition"].as_i64(), dl[0]["offset"].as_i64()), (Some(0), Some(1)), "{dl:?}");
    assert_eq!(dl[0]["value"], "{oops");
}

#[test]
fn unreachable_brokers_and_missing_topics_are_clear_errors() {
    let s = Scratch::new();
    let run = s.run("name: x\nsource:\n  kafka: { brokers: \"127.0.0.1:1\", topic: t }\nsink: { stdout: {} }\n");
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    assert!(run.stderr().contains("cannot reach the Kafka brokers 127.0.0.1:1"), "{}", run.stderr());
    let missing = unique("missing");
    let run = s.run(&format!(
        "name: x\nsource:\n  kafka: {{ brokers: \"{}\", topic: {missing} }}\nsink: {{ stdout: {{}} }}\n",
        brokers()
    ));
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    assert!(run.stderr().contains(&format!("topic `{missing}` does not exist")), "{}", run.stderr());
    // An exactly-once sink without checkpoints is refused before anything runs.
    let run = s.run(&format!(
        "name: x\nsource: {{ bids: {{ count: 1 }} }}\nsink:\n  kafka: {{ brokers: \"{}\", topic: t, delivery: exactly_once }}\n",
        brokers()
    ));
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    assert!(run.stderr().contains("exactly_once stages output with checkpoints"), "{}", run.stderr());
}
