//! Scale-out (`weir run --worker`): two processes share one pipeline
//! through its consumer group, keyed steps repartition through the
//! pipeline's repartition topic, and killing one worker hands its tasks to
//! the other, which continues them from the shared checkpoints. Against
//! the real broker of `scripts/test`.

use super::kafka::{bids_topic, values};
use std::path::Path;
use std::time::{Duration, Instant};
use weir_tests::kafka::{consume, create_topic, unique};
use weir_tests::{oracle, Scratch};

fn q5_workers_manifest(name: &str, input: &str, output: &str) -> String {
    format!(
        "name: {name}\nsource:\n  kafka: {{ brokers: \"{b}\", topic: {input}, bounded: true }}\n\
         \x20 event_time: {{ field: /ts }}\n  watermark: {{ max_out_of_orderness: 2s }}\n\
         steps:\n  - key_by: {{ field: /auction }}\n  - window: {{ tumbling: 10s }}\n    aggregate: {{ builtin: count, output: csv }}\n\
         sink:\n  kafka: {{ brokers: \"{b}\", topic: {output} }}\ncheckpoint: {{ dir: shared-ckpt, interval: 100ms }}\n",
        b = weir_tests::kafka::brokers()
    )
}

/// The tasks a worker's log says it started.
fn started(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find("task ")? + 5..];
            let (task, what) = rest.split_once(": ")?;
            (what.starts_with("starting") || what.starts_with("continuing")).then(|| task.to_string())
        })
        .collect()
}

/// A task with a complete checkpoint that has not finished.
fn mid_run(task_dir: &Path) -> bool {
    let checkpointed = std::fs::read_dir(task_dir)
        .map(|d| {
            d.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("chk-") && !name.ends_with(".inprogress")
            })
        })
        .unwrap_or(false);
    checkpointed && !task_dir.join("FINISHED").exists()
}

/// The tasks a worker's log says it runs (started and not stopped since)
/// that are past a checkpoint and not finished.
fn owned_mid_run(log: &str, tasks: &Path) -> Vec<String> {
    let mut owned = started(log);
    owned.sort();
    owned.dedup();
    owned.retain(|t| {
        let last = log.lines().rfind(|l| l.contains(&format!("task {t}: ")));
        last.is_some_and(|l| !l.contains("stopping")) && mid_run(&tasks.join(t))
    });
    owned
}

#[test]
fn two_workers_share_q5_and_one_killed_mid_run_hands_its_tasks_over() {
    let bids = oracle::bids(13, 600_000);
    let want = oracle::windowed(&bids, 10_000, 10_000, false);
    let input = bids_topic(&bids);
    let output = unique("q5w-out");
    create_topic(&output, 4);
    let name = unique("q5w");
    let s = Scratch::new();
    let m = s.write("p.yaml", q5_workers_manifest(&name, &input, &output));
    let args = ["run", "--worker", "--session-timeout", "6s", m.to_str().unwrap()];
    let mut a = s.spawn(&args, "a.err");
    let mut b = s.spawn(&args, "b.err");
    let log = |f: &str| std::fs::read_to_string(s.join(f)).unwrap_or_default();

    // Kill worker A once both run tasks and one of A's is past a checkpoint but not finished.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "the workers did not share the pipeline:\nA:\n{}\nB:\n{}",
            log("a.err"),
            log("b.err")
        );
        assert!(a.try_wait().unwrap().is_none(), "worker A ended before the kill:\n{}", log("a.err"));
        if !started(&log("b.err")).is_empty() && !owned_mid_run(&log("a.err"), &s.join("shared-ckpt/tasks")).is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    a.kill().unwrap();
    a.wait().unwrap();
    let a_tasks = owned_mid_run(&log("a.err"), &s.join("shared-ckpt/tasks"));
    assert!(!a_tasks.is_empty());

    // What a plain consumer sees right after the kill: only result lines, none twice.
    let seen = values(&consume(&output, usize::MAX, Duration::from_secs(2)));
    let stray = oracle::unexpected(&want, &seen);
    assert!(stray.is_empty(), "after the kill: not in the result, or there twice: {stray:?}");

    // B takes A's tasks over (after A's group session times out) and finishes the pipeline.
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = b.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            b.kill().unwrap();
            panic!("worker B did not finish:\n{}", log("b.err"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let b_log = log("b.err");
    assert!(status.success(), "worker B failed:\n{b_log}");
    assert!(b_log.contains("every task of the pipeline finished"), "{b_log}");
    for t in &a_tasks {
        assert!(
            b_log.contains(&format!("task {t}: continuing from")),
            "B did not continue A's task {t} from its checkpoint:\n{b_log}"
        );
    }

    let got = values(&consume(&output, want.len() + 1, Duration::from_secs(15)));
    if got != want {
        let extra: Vec<_> = oracle::unexpected(&want, &got).into_iter().take(20).collect();
        let missing: Vec<_> = oracle::unexpected(&got, &want).into_iter().take(20).collect();
        panic!(
            "{} lines, expected {}; not expected (or twice): {extra:?}; missing: {missing:?}\nA:\n{}\nB:\n{b_log}",
            got.len(),
            want.len(),
            log("a.err")
        );
    }
}
