//! A broker restart in the middle of a run: tansu storing in an S3-compatible
//! object store (`scripts/kafka start-persistent`, whose data survives the
//! broker's restart) is killed while q5 reads from it and writes to it
//! exactly once, and started again. The pipeline waits and retries, says so in its log, and
//! the output is exactly the reference.

use std::process::Command;
use std::time::{Duration, Instant};
use weir_tests::kafka::{consume_then_wait_on, create_topic_on, produce_on, unique};
use weir_tests::{oracle, repo, Scratch};

const PORT: &str = "19093";

fn kafka(args: &[&str]) {
    let out = Command::new(repo().join("scripts/kafka")).args(args).output().expect("scripts/kafka");
    assert!(out.status.success(), "scripts/kafka {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Stops the broker and its object store when the test ends, however it ends.
struct Broker;

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/kafka")).args(["stop-persistent", PORT]).output();
    }
}

#[test]
fn a_broker_restart_mid_run_is_waited_out_and_loses_nothing() {
    let s = Scratch::new();
    let store = s.join("broker");
    kafka(&["start-persistent", PORT, store.to_str().unwrap()]);
    let _broker = Broker;
    let brokers = format!("127.0.0.1:{PORT}");
    // Enough input that reading it takes many checkpoint intervals, however
    // fast the broker: the broker stops while the readers still read.
    let bids = oracle::bids(21, 400_000);
    let want = oracle::windowed(&bids, 100_000, 100_000, false);
    let (input, output) = (unique("restart-in"), unique("restart-out"));
    create_topic_on(&brokers, &input, 2);
    create_topic_on(&brokers, &output, 2);
    let keys: Vec<String> =
        bids.iter().map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["auction"].to_string()).collect();
    let records: Vec<(Option<&str>, &str, Option<i32>)> =
        bids.iter().zip(&keys).map(|(b, k)| (Some(k.as_str()), b.as_str(), None)).collect();
    produce_on(&brokers, &input, &records, &|_| Vec::new());

    let m = s.write(
        "p.yaml",
        format!(
            "name: restart\nparallelism: 2\nsource:\n  kafka: {{ brokers: \"{brokers}\", topic: {input}, bounded: true }}\n\
             \x20 event_time: {{ field: /ts }}\n  watermark: {{ max_out_of_orderness: 2s }}\n\
             steps:\n  - key_by: {{ field: /auction }}\n  - window: {{ tumbling: 100s }}\n    aggregate: {{ builtin: count, output: csv }}\n\
             sink:\n  kafka: {{ brokers: \"{brokers}\", topic: {output} }}\ncheckpoint: {{ dir: ckpt, interval: 200ms }}\n"
        ),
    );
    let mut child = s.spawn(&["run", m.to_str().unwrap()], "run.err");
    let log = || std::fs::read_to_string(s.join("run.err")).unwrap_or_default();
    // Kill the broker once the pipeline has completed a checkpoint, for 3 s.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log().contains("checkpoint 1 complete") {
        assert!(Instant::now() < deadline, "no checkpoint:\n{}", log());
        assert!(child.try_wait().unwrap().is_none(), "the run ended before the restart:\n{}", log());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Killed, not stopped: tansu stopped with SIGTERM goes on serving
    // fetches for seconds, and a crash is the harder case anyway.
    kafka(&["crash", PORT]);
    std::thread::sleep(Duration::from_secs(3));
    kafka(&["start-persistent", PORT, store.to_str().unwrap()]);

    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the run did not finish after the restart:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = log();
    assert!(status.success(), "{err}");
    assert!(err.contains("finished in"), "{err}");
    // The outage is reported (the readers' errors, and that they retry), not silent.
    assert!(err.contains("Broker transport failure") && err.contains("errors; retrying)"), "{err}");

    // Read until all arrived (a restarted broker may serve fetches slowly).
    let got = consume_then_wait_on(&brokers, &output, want.len(), Duration::from_secs(180), Duration::from_secs(5));
    let mut values: Vec<String> = got.into_iter().map(|r| r.value).collect();
    values.sort();
    if values != want {
        let extra: Vec<_> = oracle::unexpected(&want, &values).into_iter().take(10).collect();
        panic!("{} lines, expected {}; unexpected or twice: {extra:?}\n{err}", values.len(), want.len());
    }
}
