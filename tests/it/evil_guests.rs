//! Guests written to attack the host, as an untrusted tenant of `weir serve`
//! might: sleeping inside WASI past the call deadline (where epoch
//! interruption cannot reach), recursing without bound, an `init` that
//! never returns, and components declaring more memories, tables or core
//! instances than an instance may have. Each is contained: a dead letter of
//! the right kind while the other records go on, a refusal at load (exit 2)
//! or upload (a 4xx), and a server whose pipelines can still be deleted and
//! which still shuts down. The last test puts every one of them on one
//! server beside a quiet tenant, whose output stays exact (its throughput
//! beside each is `bench/noisy-neighbour.py`'s).

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use weir_tests::server::Server;
use weir_tests::{dead_letters, sorted_lines, udf_dir, Scratch};

/// `weir run`'s exit code for a pipeline that cannot start.
const EXIT_INVALID: i32 = 2;

/// Well below the guest's 30 s sleep and far above its 1 s deadline: an
/// answer later than this means the server waited for the sleep.
const PATIENCE: Duration = Duration::from_secs(20);

fn test_guest(name: &str) -> PathBuf {
    udf_dir().join("test").join(format!("{name}@1.wasm"))
}

/// A component whose one core module has `memories` memories and `tables`
/// tables, instantiated `instances` times (it exports nothing: the
/// resource check comes first).
fn greedy_component(memories: usize, tables: usize, instances: usize) -> Vec<u8> {
    let body = "(memory 1)".repeat(memories) + &"(table 1 funcref)".repeat(tables);
    let insts = "(core instance (instantiate $m))".repeat(instances);
    wat::parse_str(format!("(component (core module $m {body}) {insts})")).expect("valid WAT")
}

/// The three ways to declare too much, each with the message naming it.
fn greedy_components() -> [(Vec<u8>, &'static str); 3] {
    [
        (greedy_component(9, 0, 1), "declares 9 linear memories; an instance may have at most 8"),
        (greedy_component(0, 33, 1), "declares 33 tables; an instance may have at most 32"),
        (greedy_component(0, 0, 65), "declares 65 core instances; an instance may have at most 64"),
    ]
}

/// One map step of evil@1 with a 1 s deadline over `lines`.
fn run_evil(s: &Scratch, lines: &[String]) -> weir_tests::Run {
    s.write("in.txt", lines.join("\n"));
    s.run("name: evil\nbatch_size: 8\nsource:\n  file: { path: in.txt }\nsteps:\n  - map: { udf: evil@1, limits: { call_timeout: 1s } }\nsink:\n  file: { path: out.txt }\ndead_letter:\n  file: { path: dlq.ndjson }\n")
}

/// The (value, kind) of every dead letter.
fn letters(s: &Scratch) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = dead_letters(&s.join("dlq.ndjson"))
        .expect("dead letters")
        .iter()
        .map(|l| (l["value"].as_str().unwrap_or_default().into(), l["kind"].as_str().unwrap_or_default().into()))
        .collect();
    l.sort();
    l
}

#[test]
fn a_guest_sleeping_in_wasi_times_out_at_its_deadline_and_the_other_records_go_on() -> anyhow::Result<()> {
    let s = Scratch::new();
    let mut lines: Vec<String> = (0..40).map(|i| format!("v{i:02}")).collect();
    lines[5] = "SLEEP-1".into();
    lines[30] = "SLEEP-2".into();
    let run = run_evil(&s, &lines).ok()?;
    let expected: Vec<String> = lines.iter().filter(|l| l.starts_with('v')).cloned().collect();
    assert_eq!(sorted_lines(&s.join("out.txt"))?, expected, "every other record passes, once");
    assert_eq!(
        letters(&s),
        [("SLEEP-1".to_string(), "timeout".to_string()), ("SLEEP-2".to_string(), "timeout".to_string())]
    );
    let reasons = std::fs::read_to_string(s.join("dlq.ndjson"))?;
    assert!(reasons.contains("deadline of 1s"), "{reasons}");
    assert!(run.stderr().contains("2 dead-lettered"), "{}", run.stderr());
    Ok(())
}

#[test]
fn unbounded_recursion_is_contained_as_a_stack_overflow() -> anyhow::Result<()> {
    let s = Scratch::new();
    let lines: Vec<String> = ["a", "STACK", "b", "PANIC", "c"].iter().map(|l| l.to_string()).collect();
    run_evil(&s, &lines).ok()?;
    assert_eq!(sorted_lines(&s.join("out.txt"))?, ["a", "b", "c"]);
    assert_eq!(
        letters(&s),
        [("PANIC".to_string(), "trap".to_string()), ("STACK".to_string(), "stack_overflow".to_string())],
        "a stack overflow is told apart from other traps"
    );
    Ok(())
}

#[test]
fn an_init_that_never_returns_is_stopped_at_its_deadline() {
    for hang in ["loop", "sleep"] {
        let s = Scratch::new();
        s.write("in.txt", "a\n");
        let run = s.run(&format!(
            "name: stuck\nsource:\n  file: {{ path: in.txt }}\nsteps:\n  - filter: {{ udf: bad-init@1, params: {{ hang: {hang} }}, limits: {{ call_timeout: 1s }} }}\nsink:\n  file: {{ path: out.txt }}\n"
        ));
        let err = run.stderr();
        assert_eq!(run.code(), Some(EXIT_INVALID), "hang: {hang}: {err}");
        assert!(err.contains("bad-init@1") && err.contains("init ran past its call deadline of 1s"), "{hang}: {err}");
    }
}

#[test]
fn components_declaring_too_many_memories_tables_or_instances_are_refused_at_load() {
    for (bytes, expect) in greedy_components() {
        let s = Scratch::new();
        std::fs::create_dir(s.join("udfs")).unwrap();
        std::fs::write(s.join("udfs/greedy@1.wasm"), bytes).unwrap();
        s.write("in.txt", "a\n");
        s.write(
            "pipeline.yaml",
            "name: greedy\nsource:\n  file: { path: in.txt }\nsteps:\n  - map: { udf: greedy@1 }\nsink:\n  file: { path: out.txt }\n",
        );
        let run = s.weir(&["run", "--udf-dir", s.join("udfs").to_str().unwrap(), "pipeline.yaml"], None);
        let err = run.stderr();
        assert_eq!(run.code(), Some(EXIT_INVALID), "{err}");
        assert!(err.contains("greedy@1") && err.contains(expect), "{expect}: {err}");
        assert!(!s.join("out.txt").exists());
    }
}

#[test]
fn uploads_declaring_too_many_memories_tables_or_instances_get_a_4xx() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    for (bytes, expect) in greedy_components() {
        let (status, reply) = server.call("POST", "/v1/udfs/greedy/versions/1", &token, "application/wasm", &bytes);
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["error"]["code"], "component_exceeds_limits", "{reply}");
        assert!(reply["error"]["message"].as_str().unwrap_or_default().contains(expect), "{expect}: {reply}");
    }
    let udfs = server.get("/v1/udfs", &token);
    assert!(!udfs.to_string().contains("greedy"), "nothing was stored: {udfs}");
}

#[test]
fn a_guest_sleeping_in_wasi_does_not_hold_up_delete_or_shutdown() {
    let s = Scratch::new();
    let mut server = Server::start(&s.join("data")).expect("server");
    // The default quota: a 1 s deadline per call.
    let token = server.tenant("acme", json!({ "cpu_ms_per_call": 1000 }));
    server.upload(&token, "evil@1", &test_guest("evil"));
    let manifest = "name: sleepy\nsource: { http: { format: lines } }\nsteps:\n  - map: { udf: evil@1 }\ncheckpoint: { interval: 200ms }\n";

    // The sleeper is dead-lettered as a timeout; the records around it go on.
    let id = server.pipeline(&token, manifest);
    server.send(&token, &id, &["ok 1".to_string(), "SLEEP".to_string(), "ok 2".to_string()]);
    let out = server.wait_output(&id, Duration::from_secs(60), |l| l.len() >= 2).unwrap();
    assert_eq!(out.len(), 2, "{out:?}");
    let dead = std::fs::read_to_string(server.data_dir().join(format!("pipelines/{id}/dead-letters.jsonl"))).unwrap();
    let kinds: Vec<(String, String)> = dead
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|l| (l["value"].as_str().unwrap_or_default().into(), l["kind"].as_str().unwrap_or_default().into()))
        .collect();
    assert_eq!(kinds, [("SLEEP".to_string(), "timeout".to_string())]);

    // DELETE while the guest sleeps answers, and the pipeline is gone.
    server.send(&token, &id, &["SLEEP".to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    let (status, reply) = server.call_within(PATIENCE, "DELETE", &format!("/v1/pipelines/{id}"), &token, "", b"");
    assert!((200..300).contains(&status), "{status}: {reply}");
    let (status, _) = server.call("GET", &format!("/v1/pipelines/{id}"), &token, "", b"");
    assert_eq!(status, 404);

    // So does shutdown.
    let id = server.pipeline(&token, manifest);
    server.send(&token, &id, &["SLEEP".to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    let status = server.terminate_within(PATIENCE);
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "the server did not shut down cleanly: {status:?}\n{}",
        server.log_tail()
    );
}

#[test]
fn a_state_bomb_is_refused_with_its_own_dead_letter_and_nothing_of_it_is_kept() {
    // tally@1 keeps each record's value as state; one record is larger than
    // the per-value budget, as a guest that writes gigabytes would be.
    let s = Scratch::new();
    let bomb = format!("{{\"k\":\"a\",\"ts\":2,\"pad\":\"{}\"}}", "x".repeat(3000));
    let lines = ["{\"k\":\"a\",\"ts\":1}".to_string(), bomb.clone(), "{\"k\":\"b\",\"ts\":3}".to_string()];
    s.write("in.ndjson", lines.join("\n"));
    s.run("name: bomb\nsource:\n  file: { path: in.ndjson }\n  event_time: { field: /ts }\nsteps:\n  - key_by: { field: /k }\n  - process: { udf: tally@1, limits: { state_value: 1KiB } }\nsink:\n  file: { path: out.ndjson }\ndead_letter:\n  file: { path: dlq.ndjson }\n")
        .ok()
        .expect("the pipeline runs to the end");
    let letters = dead_letters(&s.join("dlq.ndjson")).expect("dead letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["kind"], "state_too_large", "{letters:?}");
    assert!(letters[0]["reason"].as_str().unwrap_or_default().contains("limits.state_value"), "{letters:?}");
    // The other records' state and timers are whole; the bomb left nothing behind.
    let out = sorted_lines(&s.join("out.ndjson")).expect("output");
    let last_a: Value = out
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|o| o["key"] == "a")
        .max_by_key(|o| o["timer"].as_i64())
        .expect("key a fired");
    assert_eq!(last_a["count"], 1, "{last_a}");
    assert!(!out.iter().any(|l| l.contains("xxxxxxxx")), "the bomb's bytes reached state");
}

#[test]
fn a_tenant_cannot_raise_its_state_budget_above_the_servers() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("mallory", json!({}));
    server.upload(&token, "tally@1", &test_guest("tally"));
    let manifest = "name: bomb\nsource:\n  http: {}\n  event_time: { field: /ts }\nsteps:\n  - key_by: { field: /k }\n  - process: { udf: tally@1, limits: { state_value: 64GiB } }\n";
    let (status, body) = server.call("POST", "/v1/pipelines", &token, "application/yaml", manifest.as_bytes());
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("limits.state_value"), "{body}");
}

#[test]
fn a_64_mib_output_value_is_dead_lettered_as_output_too_large() {
    let s = Scratch::new();
    let lines: Vec<String> = ["a", "BIG", "b"].iter().map(|v| v.to_string()).collect();
    s.write("in.txt", lines.join("\n"));
    // Memory enough to build the value: the record size is what stops it.
    s.run("name: big\nsource:\n  file: { path: in.txt }\nsteps:\n  - map: { udf: evil@1, limits: { memory: 256MiB } }\nsink:\n  file: { path: out.txt }\ndead_letter:\n  file: { path: dlq.ndjson }\n")
        .ok()
        .expect("the pipeline runs to the end");
    assert_eq!(letters(&s), vec![("BIG".to_string(), "output_too_large".to_string())]);
    assert_eq!(sorted_lines(&s.join("out.txt")).unwrap(), vec!["a", "b"]);
}

#[test]
fn a_flat_map_flood_is_dead_lettered_as_too_many_outputs() {
    // word-split@1 returns one record per word: a line of a million words
    // is a million outputs for one input, against the default limit of
    // 10,000 per record.
    let s = Scratch::new();
    let flood = vec!["w"; 1_000_000].join(" ");
    s.write("in.txt", format!("one two\n{flood}\nthree\n"));
    s.run("name: flood\nbatch_size: 8\nsource:\n  file: { path: in.txt }\nsteps:\n  - flat_map: { udf: word-split@1 }\nsink:\n  file: { path: out.txt }\ndead_letter:\n  file: { path: dlq.ndjson }\n")
        .ok()
        .expect("the pipeline runs to the end");
    let letters = dead_letters(&s.join("dlq.ndjson")).expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["kind"], "too_many_outputs");
    assert_eq!(letters[0]["value"].as_str().map(str::len), Some(flood.len()), "the whole input is kept");
    assert_eq!(sorted_lines(&s.join("out.txt")).unwrap().len(), 3, "the other lines' words go on");
}

/// Waits until pipeline `id`'s dead letters hold `n` lines; their (value
/// prefix, kind), sorted.
fn hosted_letters(server: &Server, id: &str, n: usize) -> Vec<(String, String)> {
    let path = server.data_dir().join(format!("pipelines/{id}/dead-letters.jsonl"));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= n || std::time::Instant::now() > deadline {
            let mut got: Vec<(String, String)> = text
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .map(|l| {
                    let value: String = l["value"].as_str().unwrap_or_default().chars().take(5).collect();
                    (value, l["kind"].as_str().unwrap_or_default().into())
                })
                .collect();
            got.sort();
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_quiet_tenant_gets_every_record_while_another_runs_every_evil_guest() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let quiet = server.tenant("quiet", json!({}));
    let mallory = server.tenant("mallory", json!({ "memory_mib": 256, "max_pipelines": 10 }));
    server.upload(&quiet, "tag@1", &test_guest("tag-one"));
    for (udf, file) in [
        ("evil@1", test_guest("evil")),
        ("tally@1", test_guest("tally")),
        ("bad-init@1", test_guest("bad-init")),
        ("word-split@1", udf_dir().join("word-split@1.wasm")),
    ] {
        server.upload(&mallory, udf, &file);
    }
    let quiet_id = server.pipeline(
        &quiet,
        "name: quiet\nsource: { http: {} }\nsteps:\n  - map: { udf: tag@1 }\ncheckpoint: { interval: 200ms }\n",
    );
    // Mallory's three pipelines: every evil map trigger, a flat_map flood, a
    // state bomb (the bomb's budget lowered so that one request carries it).
    let evil = server.pipeline(
        &mallory,
        "name: evil\nbatch_size: 4\nsource: { http: { format: lines } }\nsteps:\n  - map: { udf: evil@1, limits: { memory: 256MiB } }\ncheckpoint: { interval: 200ms }\n",
    );
    let flood = server.pipeline(
        &mallory,
        "name: flood\nsource: { http: { format: lines } }\nsteps:\n  - flat_map: { udf: word-split@1 }\ncheckpoint: { interval: 200ms }\n",
    );
    let bomb = server.pipeline(
        &mallory,
        "name: bomb\nsource:\n  http: {}\n  event_time: { field: /ts }\nsteps:\n  - key_by: { field: /k }\n  - process: { udf: tally@1, limits: { state_value: 1MiB } }\ncheckpoint: { interval: 200ms }\n",
    );
    // An init that never returns: refused at creation, once its deadline passed.
    let (status, reply) = server.call(
        "POST",
        "/v1/pipelines",
        &mallory,
        "application/yaml",
        b"name: stuck\nsource: { http: {} }\nsteps:\n  - filter: { udf: bad-init@1, params: { hang: sleep } }\n",
    );
    assert_eq!(status, 400, "{reply}");

    // The quiet tenant's records go in between the attacks.
    let mut want = Vec::new();
    let triggers = ["LOOP", "SLEEP", "OOM", "STACK", "BIG", "PANIC"];
    for (round, trigger) in triggers.iter().enumerate() {
        server.send(&mallory, &evil, &[format!("ok {round}"), trigger.to_string()]);
        let batch: Vec<String> = (0..200).map(|i| format!("{{\"id\":{}}}", round * 200 + i)).collect();
        want.extend(batch.iter().map(|r| format!("{}{}", r.strip_suffix('}').unwrap(), ",\"by\":\"v1\"}")));
        server.send(&quiet, &quiet_id, &batch);
    }
    server.send(&mallory, &flood, &[vec!["w"; 20_000].join(" ")]);
    let pad = "x".repeat(2 << 20);
    server.send(&mallory, &bomb, &[format!("{{\"k\":\"a\",\"ts\":1,\"pad\":\"{pad}\"}}")]);

    let mut got = server.wait_output(&quiet_id, Duration::from_secs(120), |l| l.len() >= want.len()).unwrap();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the quiet tenant's output is exactly its input, tagged");
    let kinds = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        v.sort();
        v
    };
    assert_eq!(
        hosted_letters(&server, &evil, triggers.len()),
        kinds(&[
            ("BIG", "output_too_large"),
            ("LOOP", "timeout"),
            ("OOM", "out_of_memory"),
            ("PANIC", "trap"),
            ("SLEEP", "timeout"),
            ("STACK", "stack_overflow"),
        ])
    );
    assert_eq!(hosted_letters(&server, &flood, 1), kinds(&[("w w w", "too_many_outputs")]));
    assert_eq!(hosted_letters(&server, &bomb, 1), kinds(&[("{\"k\":", "state_too_large")]));
    // Mallory's pipelines are still running: only the records were refused.
    for id in [&evil, &flood, &bomb] {
        let p = server.get(&format!("/v1/pipelines/{id}"), &mallory);
        assert_eq!(p["status"], "running", "{p}");
    }
}
