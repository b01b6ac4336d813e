//! Event time and windows end to end: the bench's q5 and q7 (builtins and a
//! WebAssembly aggregator) against the oracle; an out-of-order stream with
//! late records against Flink's semantics; keyed state and timers through
//! a `process` function; idleness.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;
use weir_tests::oracle::{self, sorted};
use weir_tests::{dead_letters, sorted_lines, Scratch};

fn bench_manifest(name: &str, parallelism: u32, window: &str, aggregate: &str) -> String {
    format!(
        "name: {name}\nparallelism: {parallelism}\nsource:\n  file: {{ path: bids.ndjson, format: json }}\n  event_time: {{ field: /ts }}\n  watermark: {{ max_out_of_orderness: 2s }}\nsteps:\n  - key_by: {{ field: /auction }}\n  - window: {window}\n    aggregate: {aggregate}\nsink:\n  file: {{ dir: out-{name} }}\n"
    )
}

#[test]
fn q5_q7_and_q5_wasm_match_the_oracle() -> anyhow::Result<()> {
    for (seed, n, parallelism) in [(42, 30_000, 2), (9, 12_345, 1), (77, 20_000, 3)] {
        let s = Scratch::new();
        let bids = oracle::bids(seed, n);
        s.write("bids.ndjson", bids.join("\n") + "\n");
        let q5 = oracle::windowed(&bids, 10_000, 10_000, false);
        let q7 = oracle::windowed(&bids, 60_000, 10_000, true);
        s.run(&bench_manifest("q5", parallelism, "{ tumbling: 10s }", "{ builtin: count, output: csv }")).ok()?;
        assert_eq!(sorted_lines(&s.join("out-q5"))?, q5, "q5 seed {seed} n {n} p {parallelism}");
        s.run(&bench_manifest(
            "q7",
            parallelism,
            "{ sliding: { size: 60s, slide: 10s } }",
            "{ builtin: max, field: /price, output: csv }",
        ))
        .ok()?;
        assert_eq!(sorted_lines(&s.join("out-q7"))?, q7, "q7 seed {seed} n {n} p {parallelism}");
        s.run(&bench_manifest("q5w", parallelism, "{ tumbling: 10s }", "{ udf: count@1, params: { output: csv } }"))
            .ok()?;
        assert_eq!(sorted_lines(&s.join("out-q5w"))?, q5, "q5-wasm seed {seed} n {n} p {parallelism}");
    }
    Ok(())
}

#[test]
fn late_records_go_to_the_late_output_and_nowhere_else() -> anyhow::Result<()> {
    // Random keys and values; timestamps trend upwards with jitter of up to
    // 8 s against a watermark delay of 1 s and an allowed lateness of 2 s:
    // some records are late, some re-fire their window.
    let mut seed = 12345u64;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let records: Vec<oracle::Keyed> = (0..3000)
        .map(|i| (format!("k{}", next(7)), 1_000_000 + i * 100 - next(8000) as i64, next(1000) as i64))
        .collect();
    let s = Scratch::new();
    let lines: Vec<String> =
        records.iter().map(|(k, ts, v)| format!("{{\"k\":\"{k}\",\"ts\":{ts},\"v\":{v}}}")).collect();
    s.write("in.ndjson", lines.join("\n"));
    s.run(
        "name: late\nbatch_size: 1\nsource:\n  file: { path: in.ndjson }\n  event_time: { field: /ts }\n  watermark: { max_out_of_orderness: 1s }\nsteps:\n  - key_by: { field: /k }\n  - window: { tumbling: 5s, allowed_lateness: 2s }\n    aggregate: { builtin: sum, field: /v, output: csv }\nsink:\n  file: { path: out.csv }\nlate:\n  file: { path: late.ndjson }\ndead_letter:\n  file: { path: dlq.ndjson }\n",
    )
    .ok()?;
    let (expected, expected_late) = oracle::tumbling_with_lateness(&records, 5_000, 1_000, 2_000);
    assert_eq!(sorted_lines(&s.join("out.csv"))?, expected);
    let late = dead_letters(&s.join("late.ndjson"))?;
    let mut got: Vec<String> = late.iter().map(|l| l["value"].as_str().unwrap_or_default().to_string()).collect();
    got.sort();
    let mut want: Vec<String> =
        expected_late.iter().map(|(k, ts, v)| format!("{{\"k\":\"{k}\",\"ts\":{ts},\"v\":{v}}}")).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(want.len() > 100, "the stream must have late records ({})", want.len());
    assert!(late.iter().all(|l| l["kind"] == "late"));
    assert!(
        expected.len()
            > sorted(expected.clone())
                .iter()
                .map(|l| l.rsplit_once(',').map(|x| x.0))
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        "some windows must fire more than once"
    );
    assert_eq!(std::fs::read_to_string(s.join("dlq.ndjson"))?, "", "late records are not dead letters");
    Ok(())
}

#[test]
fn process_functions_keep_state_and_timers_atomically() -> anyhow::Result<()> {
    let s = Scratch::new();
    let mut lines = Vec::new();
    for (i, (k, v)) in [("a", "x"), ("b", "y"), ("a", "x"), ("a", "z"), ("a", "BOOM"), ("b", "y")].iter().enumerate() {
        lines.push(format!("{{\"k\":\"{k}\",\"v\":\"{v}\",\"ts\":{}}}", 1000 + i as i64));
    }
    s.write("in.ndjson", lines.join("\n"));
    // The value to process is the field `v`: project it first, keeping keys and timestamps.
    s.run(
        "name: tally\nsource:\n  file: { path: in.ndjson }\n  event_time: { field: /ts }\nsteps:\n  - key_by: { field: /k }\n  - map: { udf: project@1, params: { fields: v, format: csv } }\n  - process: { udf: tally@1 }\nsink:\n  file: { path: out.ndjson }\ndead_letter:\n  file: { path: dlq.ndjson }\n",
    )
    .ok()?;
    let out: Vec<serde_json::Value> =
        std::fs::read_to_string(s.join("out.ndjson"))?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let last = |key: &str| {
        out.iter().filter(|o| o["key"] == key).max_by_key(|o| o["timer"].as_i64()).cloned().unwrap_or_default()
    };
    let a = last("a");
    assert_eq!(a["count"], 3, "{a}");
    assert_eq!(a["first"], "x");
    assert_eq!(a["seen"], serde_json::json!(["x=2", "z=1"]), "the panicking call's writes are gone");
    assert_eq!(a["log"], serde_json::json!(["x", "x", "z"]));
    let b = last("b");
    assert_eq!((b["count"].as_i64(), b["log"].clone()), (Some(2), serde_json::json!(["y", "y"])));
    assert_eq!(out.iter().filter(|o| o["key"] == "a").count(), 3, "one timer per record of a");
    let dlq = dead_letters(&s.join("dlq.ndjson"))?;
    assert_eq!(dlq.len(), 1);
    assert_eq!((dlq[0]["kind"].as_str(), dlq[0]["value"].as_str()), (Some("trap"), Some("BOOM")));
    Ok(())
}

#[test]
fn an_idle_subtask_stops_holding_the_watermark_back() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let s = Scratch::new();
    // Two subtasks assign event time; the socket's batches alternate between
    // them, so after one record each, one of them hears nothing more.
    let manifest = s.write(
        "p.yaml",
        format!(
            "name: idle\nparallelism: 2\nsource:\n  socket: {{ port: {port}, format: json }}\n  event_time: {{ field: /ts }}\n  watermark: {{ idle_timeout: 300ms }}\nsteps:\n  - key_by: {{ field: /k }}\n  - window: {{ tumbling: 10s }}\n    aggregate: {{ builtin: count, output: csv }}\nsink:\n  stdout: {{}}\n"
        ),
    );
    let mut child = std::process::Command::new(weir_tests::weir_bin())
        .args(["run", manifest.to_str().unwrap_or_default(), "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let (mut conn, _) = listener.accept()?;
    conn.write_all(b"{\"k\":\"a\",\"ts\":1000}\n")?;
    std::thread::sleep(Duration::from_millis(400));
    conn.write_all(b"{\"k\":\"b\",\"ts\":50000}\n")?;
    // The window [0, 10000) of `a` fires while the connection is still open:
    // the subtask that only saw `a` went idle and no longer holds it back.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let _ = tx.send(line);
    });
    let first = rx.recv_timeout(Duration::from_secs(10));
    drop(conn);
    let _ = child.wait();
    assert_eq!(first.ok().as_deref(), Some("a,10000,1\n"));
    Ok(())
}

#[test]
fn event_time_from_a_function() -> anyhow::Result<()> {
    let s = Scratch::new();
    // `at` is the event time; 5 s tumbling windows; one record is malformed.
    // Two timestamps are out of range (beyond ±2^53 ms) and go to the dead-letter output too.
    s.write("in.ndjson", "{\"k\":\"a\",\"at\":1000}\n{\"k\":\"a\",\"at\":4999}\n{\"k\":\"b\",\"at\":5000}\n{\"k\":\"a\",\"at\":\"soon\"}\n{\"k\":\"a\",\"at\":9223372036854775807}\n{\"k\":\"a\",\"at\":-9007199254740993}\n{\"k\":\"a\",\"at\":12000}\n");
    s.run("name: stamped\nsource:\n  file: { path: in.ndjson, format: lines }\n  event_time: { udf: stamp@1 }\nsteps:\n  - key_by: { field: /k }\n  - window: { tumbling: 5s }\n    aggregate: { builtin: count, output: csv }\nsink:\n  file: { path: out.csv }\ndead_letter:\n  file: { path: dlq.ndjson }\n").ok()?;
    assert_eq!(sorted_lines(&s.join("out.csv"))?, ["a,15000,1", "a,5000,2", "b,10000,1"]);
    let dlq = dead_letters(&s.join("dlq.ndjson"))?;
    assert_eq!(dlq.len(), 3, "{dlq:?}");
    assert!(dlq.iter().all(|d| d["step"].as_str().is_some_and(|x| x.ends_with("event_time"))), "{dlq:?}");
    assert_eq!(dlq.iter().filter(|d| d["reason"].as_str().is_some_and(|r| r.contains("out of range"))).count(), 2);
    Ok(())
}

#[test]
fn timestamps_beyond_the_event_time_range_are_dead_lettered() -> anyhow::Result<()> {
    let s = Scratch::new();
    s.write(
        "in.ndjson",
        "{\"k\":\"a\",\"ts\":1000}\n{\"k\":\"a\",\"ts\":9223372036854775807}\n{\"k\":\"a\",\"ts\":-9223372036854775808}\n{\"k\":\"a\",\"ts\":9007199254740993}\n{\"k\":\"a\",\"ts\":2000}\n{\"k\":\"a\",\"ts\":9007199254740992}\n",
    );
    s.run("name: extreme\nsource:\n  file: { path: in.ndjson }\n  event_time: { field: /ts }\nsteps:\n  - key_by: { field: /k }\n  - window: { session: { gap: 5s } }\n    aggregate: { builtin: count, output: csv }\nsink:\n  file: { path: out.csv }\nlate:\n  file: { path: late.ndjson }\ndead_letter:\n  file: { path: dlq.ndjson }\n").ok()?;
    // 2^53 itself is accepted; its session is a window of its own.
    assert_eq!(sorted_lines(&s.join("out.csv"))?, ["a,7000,2", "a,9007199254745992,1"]);
    let dlq = dead_letters(&s.join("dlq.ndjson"))?;
    assert_eq!(dlq.len(), 3, "{dlq:?}");
    assert!(dlq.iter().all(|d| d["reason"].as_str().is_some_and(|r| r.contains("within ±2^53"))), "{dlq:?}");
    Ok(())
}
