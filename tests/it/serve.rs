//! `weir serve` end to end: a real server on port 0, real components
//! uploaded over HTTP, records posted to http sources, output read from the
//! committed part files.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weir_tests::server::{Server, ADMIN};
use weir_tests::{udf_dir, Scratch};

const TAGGED: &str = "name: tagged\nparallelism: 2\nsource: { http: { format: json } }\nsteps:\n  - map: { udf: tag@1 }\ncheckpoint: { interval: 200ms }\n";

fn test_guest(name: &str) -> std::path::PathBuf {
    udf_dir().join("test").join(format!("{name}@1.wasm"))
}

/// A server with one tenant that has `tag@1`, `tag@2`, `tag@3` (init fails) and `evil@1`.
fn server_with_tags(s: &Scratch) -> (Server, String) {
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    for (udf, file) in [("tag@1", "tag-one"), ("tag@2", "tag-two"), ("tag@3", "tag-broken"), ("evil@1", "evil")] {
        server.upload(&token, udf, &test_guest(file));
    }
    (server, token)
}

fn ids_and_versions(lines: &[String]) -> Vec<(u64, String)> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            (v["id"].as_u64().expect("id"), v["by"].as_str().expect("by").to_string())
        })
        .collect()
}

/// Posts `{"id":i,...}` for `ids` in batches of `batch`, `pause` apart.
fn feed(
    server: &Server,
    token: &str,
    id: &str,
    ids: std::ops::Range<u64>,
    batch: usize,
    pause: Duration,
    extra: impl Fn(u64) -> String,
) {
    let all: Vec<u64> = ids.collect();
    for chunk in all.chunks(batch) {
        let lines: Vec<String> = chunk.iter().map(|&i| format!("{{\"id\":{i}{}}}", extra(i))).collect();
        server.send(token, id, &lines);
        std::thread::sleep(pause);
    }
}

#[test]
fn a_swap_under_steady_load_hands_over_at_a_barrier_exactly_once_and_keeps_window_state() {
    let s = Scratch::new();
    let (server, token) = server_with_tags(&s);
    let server = Arc::new(server);
    let id = server.pipeline(&token, TAGGED);
    // A keyed window counting per key over event time, fed through the swapped map.
    let counts = server.pipeline(
        &token,
        "name: counts\nparallelism: 2\nsource:\n  http: { format: json }\n  event_time: { field: /at }\n  watermark: { max_out_of_orderness: 0ms, idle_timeout: 500ms }\nsteps:\n  - map: { udf: tag@1 }\n  - key_by: { field: /k }\n  - window: { tumbling: 1h }\n    aggregate: { builtin: count }\ncheckpoint: { interval: 200ms }\n",
    );
    let n = 3000;
    let feeding = Arc::new(AtomicBool::new(true));
    let feeder = {
        let (server, token, id, counts, feeding) =
            (server.clone(), token.clone(), id.clone(), counts.clone(), feeding.clone());
        std::thread::spawn(move || {
            // 3,000 records at a steady ~1,500/s, to both pipelines; all of them in the first hour of event time.
            for start in (0..n).step_by(50) {
                feed(&server, &token, &id, start..start + 50, 50, Duration::ZERO, |_| String::new());
                feed(&server, &token, &counts, start..start + 50, 50, Duration::from_millis(30), |i| {
                    format!(",\"k\":\"k{}\",\"at\":{}", i % 3, i)
                });
            }
            feeding.store(false, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(600));
    let body = json!({ "udf": "tag@2", "probation_ms": 300 }).to_string();
    for p in [&id, &counts] {
        let (status, swap) = server.call_until_done(
            "PUT",
            &format!("/v1/pipelines/{p}/steps/0"),
            &token,
            "application/json",
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{swap}");
        assert_eq!(swap["outcome"], "swapped", "{swap}");
        assert!(swap["barrier"].as_u64().is_some(), "{swap}");
    }
    assert!(feeding.load(Ordering::SeqCst), "the swaps happened while records were flowing");
    feeder.join().expect("feeder");

    let lines = server.wait_output(&id, Duration::from_secs(60), |l| l.len() >= n as usize).expect("output");
    let mut seen: Vec<u64> = ids_and_versions(&lines).into_iter().map(|(i, _)| i).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..n).collect::<Vec<_>>(), "every record exactly once");
    // Each subtask's output: v1 up to its barrier, v2 after it; both present.
    let mut by_version = BTreeMap::new();
    for part in server.output_by_subtask(&id) {
        let versions: Vec<String> = ids_and_versions(&part).into_iter().map(|(_, v)| v).collect();
        let first_v2 = versions.iter().position(|v| v == "v2").unwrap_or(versions.len());
        assert!(versions[first_v2..].iter().all(|v| v == "v2"), "v1 after v2 in one subtask: {versions:?}");
        for v in versions {
            *by_version.entry(v).or_insert(0) += 1;
        }
    }
    assert!(
        by_version.get("v1").is_some_and(|&c| c > 0) && by_version.get("v2").is_some_and(|&c| c > 0),
        "{by_version:?}"
    );

    // A record far in the future closes the hour: the counts include records before and after the swap.
    server.send(&token, &counts, &["{\"id\":0,\"k\":\"flush\",\"at\":100000000}".to_string()]);
    let windows = server.wait_output(&counts, Duration::from_secs(60), |l| l.len() >= 3).expect("window output");
    let mut got: Vec<(String, u64)> = windows
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json");
            (v["key"].as_str().expect("key").to_string(), v["count"].as_u64().expect("count"))
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![("k0".to_string(), 1000), ("k1".to_string(), 1000), ("k2".to_string(), 1000)]);

    let view = server.get(&format!("/v1/pipelines/{id}"), &token);
    assert_eq!(view["steps"][1]["udf"], "tag@2");
    assert_eq!(view["swaps"][0]["outcome"], "swapped");

    // The window's watermark passed the hour, and /metrics says where each step's watermark is.
    let metrics = server.metrics(&counts);
    let window_watermark = metrics
        .lines()
        .find(|l| l.starts_with("weir_step_watermark_seconds") && l.contains("window tumbling count"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(window_watermark.is_some_and(|w| w >= 3600.0), "{metrics}");
    assert!(metrics.contains("weir_watermark_lag_seconds{"), "{metrics}");
}

#[test]
fn a_version_that_fails_init_or_its_error_budget_is_rolled_back() {
    let s = Scratch::new();
    let (server, token) = server_with_tags(&s);
    let id = server.pipeline(&token, &TAGGED.replace("format: json", "format: lines"));
    server.send(&token, &id, &["{\"id\":1}".to_string()]);

    // init fails: the old version never stops.
    let (status, swap) = server.call_until_done(
        "PUT",
        &format!("/v1/pipelines/{id}/steps/0"),
        &token,
        "application/json",
        br#"{"udf":"tag@3"}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(swap["outcome"], "rolled_back", "{swap}");
    assert!(swap["reason"].as_str().unwrap().contains("nobody gave it"), "{swap}");

    // evil@1 takes over, then panics on a record during probation: back to tag@1, which answers that record.
    // The swap is answered at once (202) and goes on as an operation.
    let swapping = server.call(
        "PUT",
        &format!("/v1/pipelines/{id}/steps/0"),
        &token,
        "application/json",
        br#"{"udf":"evil@1","probation_ms":20000}"#,
    );
    assert_eq!(swapping.0, 202, "{swapping:?}");
    // Wait until the new version runs (probation), then send the record it chokes on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        server.send(&token, &id, &["{\"id\":2}".to_string()]);
        let out = server.output_by_subtask(&id).concat();
        if out.iter().any(|l| l == "{\"id\":2}") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "evil@1 never took over: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.send(&token, &id, &["PANIC{\"id\":3}".to_string()]);
    let (status, swap) = server.until_done(&token, swapping);
    assert_eq!(status, 200, "{swap}");
    assert_eq!(swap["outcome"], "rolled_back", "{swap}");
    let reason = swap["reason"].as_str().unwrap();
    assert!(
        reason.contains("evil@1 failed 1 call(s) during probation") && reason.contains("PANIC requested"),
        "{reason}"
    );
    let out = server.wait_output(&id, Duration::from_secs(30), |l| l.iter().any(|l| l.starts_with("PANIC"))).unwrap();
    assert!(
        out.contains(&"PANIC{\"id\":3,\"by\":\"v1\"}".to_string()),
        "the failing record is answered by v1: {out:?}"
    );
    let view = server.get(&format!("/v1/pipelines/{id}"), &token);
    assert_eq!(view["steps"][1]["udf"], "tag@1");
    assert_eq!(view["steps"][1]["dead_lettered"], 0, "nothing was lost to the bad version");
    assert_eq!(view["swaps"].as_array().unwrap().len(), 2);
}

#[test]
fn a_killed_server_resumes_its_pipelines_from_their_checkpoints_without_loss_or_duplicates() {
    let s = Scratch::new();
    let (mut server, token) = server_with_tags(&s);
    let id = server.pipeline(&token, TAGGED);
    let mut next = 0u64;
    for round in 0..3 {
        let upto = next + 400;
        feed(&server, &token, &id, next..upto, 40, Duration::from_millis(20), |_| String::new());
        next = upto;
        if round == 1 {
            // Wait for some output, so the kill lands after checkpoints.
            server.wait_output(&id, Duration::from_secs(30), |l| !l.is_empty()).unwrap();
        }
        server.kill();
        // Nothing is visible twice after a kill.
        let lines = server.output_by_subtask(&id).concat();
        let mut ids: Vec<u64> = ids_and_versions(&lines).into_iter().map(|(i, _)| i).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "duplicates after kill {round}");
        server = Server::start(server.data_dir()).expect("restart");
        let view = server.get(&format!("/v1/pipelines/{id}"), &token);
        assert_eq!(view["status"], "running", "{view}");
    }
    let lines = server.wait_output(&id, Duration::from_secs(60), |l| l.len() >= next as usize).unwrap();
    let mut ids: Vec<u64> = ids_and_versions(&lines).into_iter().map(|(i, _)| i).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..next).collect::<Vec<_>>());

    // A clean stop (SIGTERM) stops at a savepoint; the next start resumes.
    server.terminate().unwrap();
    let server = Server::start(server.data_dir()).expect("restart");
    feed(&server, &token, &id, next..next + 10, 10, Duration::ZERO, |_| String::new());
    let lines = server.wait_output(&id, Duration::from_secs(30), |l| l.len() >= next as usize + 10).unwrap();
    assert_eq!(lines.len(), next as usize + 10);
    let view = server.get(&format!("/v1/pipelines/{id}"), &token);
    assert!(view["resumed_from"].as_str().unwrap().contains("savepoint-"), "{view}");
}

#[test]
fn posts_retried_after_a_server_kill_are_appended_once() {
    // The issue's attack: after a kill -9 a client, not knowing which of its
    // posts were acknowledged, re-sends its last five (250 records).
    let s = Scratch::new();
    let (mut server, token) = server_with_tags(&s);
    let id = server.pipeline(&token, TAGGED);
    let batch = |b: u64| -> Vec<String> { (b * 50..b * 50 + 50).map(|i| format!("{{\"id\":{i}}}")).collect() };
    for b in 0..10 {
        let got = server.post_records(&token, &id, Some(&format!("post-{b}")), &batch(b));
        assert_eq!((got.status, got.replayed), (200, false), "{got:?}");
        assert_eq!(got.reply["accepted"], 50, "{got:?}");
    }
    server.kill();
    let server = Server::start(server.data_dir()).expect("restart");
    for b in 5..10 {
        let got = server.post_records(&token, &id, Some(&format!("post-{b}")), &batch(b));
        assert_eq!((got.status, got.replayed), (200, true), "post-{b} again: {got:?}");
        assert_eq!(got.reply["accepted"], 50, "the retry is answered as the first post was: {got:?}");
    }
    // The same key with other records is refused; a malformed key too.
    let got = server.post_records(&token, &id, Some("post-9"), &batch(11));
    assert_eq!(got.status, 422, "{got:?}");
    assert_eq!(got.reply["error"]["code"], "idempotency_key_reused", "{got:?}");
    let got = server.post_records(&token, &id, Some("two words"), &batch(11));
    assert_eq!(got.status, 400, "{got:?}");
    assert_eq!(got.reply["error"]["code"], "invalid_idempotency_key", "{got:?}");
    // A last post marks the end: every record once, none twice.
    let got = server.post_records(&token, &id, Some("post-10"), &batch(10));
    assert_eq!(got.status, 200, "{got:?}");
    let lines = server.wait_output(&id, Duration::from_secs(60), |l| l.len() >= 550).unwrap();
    let mut ids: Vec<u64> = ids_and_versions(&lines).into_iter().map(|(i, _)| i).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..550).collect::<Vec<_>>());
}

#[test]
fn a_delete_during_a_stop_leaves_no_directory_behind() {
    // The delete used to remove the directory while the stopping job still
    // wrote its savepoint into it, which recreated it.
    let s = Scratch::new();
    let (server, token) = server_with_tags(&s);
    for round in 0..3 {
        let id = server.pipeline(&token, &TAGGED.replace("tagged", &format!("doomed-{round}")));
        feed(&server, &token, &id, 0..200, 50, Duration::ZERO, |_| String::new());
        let (stop, delete) = std::thread::scope(|scope| {
            let stop =
                scope.spawn(|| server.call_until_done("POST", &format!("/v1/pipelines/{id}/stop"), &token, "", b""));
            let delete = scope.spawn(|| server.call("DELETE", &format!("/v1/pipelines/{id}"), &token, "", b""));
            (stop.join().unwrap(), delete.join().unwrap())
        });
        assert_eq!(delete.0, 204, "{delete:?}");
        assert!(
            [200, 404, 409].contains(&stop.0),
            "the stop finished first, found no pipeline, or found it deleted while it stopped: {stop:?}"
        );
        let dir = server.data_dir().join("pipelines").join(&id);
        assert!(!dir.exists(), "round {round}: {} is back", dir.display());
        assert_eq!(server.call("GET", &format!("/v1/pipelines/{id}"), &token, "", b"").0, 404);
    }
}

#[test]
fn output_is_read_a_page_at_a_time_and_bytes_that_are_not_utf8_come_as_base64() {
    // A value that was not UTF-8 used to fail GET …/output for good.
    let s = Scratch::new();
    let (server, token) = server_with_tags(&s);
    let id = server.pipeline(
        &token,
        "name: raw\nsource: { http: { format: lines } }\nsteps:\n  - map: { udf: evil@1 }\ncheckpoint: { interval: 100ms }\n",
    );
    let mut body = b"first\n".to_vec();
    body.extend_from_slice(b"\xff\xfe\n");
    for i in 0..20 {
        body.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    let (status, reply) = server.call("POST", &format!("/v1/pipelines/{id}/records"), &token, "text/plain", &body);
    assert_eq!(status, 200, "{reply}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let newest = loop {
        let page = server.get(&format!("/v1/pipelines/{id}/output?limit=1000"), &token);
        if page["lines"].as_array().unwrap().len() == 22 {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "the output never had 22 lines: {page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(newest["lines"].as_array().unwrap().contains(&json!({ "base64": "//4=" })), "{newest}");
    // Following from the start three lines at a time gives the same lines.
    let (mut all, mut after) = (Vec::new(), "0.0.0".to_string());
    loop {
        let page = server.get(&format!("/v1/pipelines/{id}/output?limit=3&after={after}"), &token);
        let lines = page["lines"].as_array().unwrap().clone();
        assert!(lines.len() <= 3, "{page}");
        if lines.is_empty() {
            break;
        }
        all.extend(lines);
        after = page["next"].as_str().unwrap().to_string();
    }
    assert_eq!(json!(all), newest["lines"]);
    let (status, reply) = server.call("GET", &format!("/v1/pipelines/{id}/output?after=../x"), &token, "", b"");
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_cursor", "{reply}");
}

#[test]
fn a_running_pipelines_event_time_function_cannot_be_deleted() {
    // Deleting it used to succeed (only the steps were checked for a
    // running pipeline), and the pipeline's next resume then failed.
    let s = Scratch::new();
    let (mut server, token) = server_with_tags(&s);
    server.upload(&token, "stamp@1", &test_guest("stamp"));
    let id = server.pipeline(
        &token,
        "name: stamped\nsource:\n  http: { format: lines }\n  event_time: { udf: stamp@1 }\nsteps:\n  - map: { udf: tag@1 }\n",
    );
    let (status, reply) = server.call("DELETE", "/v1/udfs/stamp/versions/1", &token, "", b"");
    assert_eq!(status, 409, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains(&id), "{reply}");
    // And the pipeline still resumes after a restart.
    server.terminate().unwrap();
    let server = Server::start(server.data_dir()).expect("restart");
    let view = server.get(&format!("/v1/pipelines/{id}"), &token);
    assert_eq!(view["status"], "running", "{view}");
}

#[test]
fn tenants_see_only_their_own_resources_and_quotas_are_enforced() {
    let s = Scratch::new();
    let (server, a) = server_with_tags(&s);
    let b = server.tenant("bravo", json!({ "max_pipelines": 1, "max_parallelism": 1, "max_component_mib": 1 }));
    let pa = server.pipeline(&a, TAGGED);

    // B sees nothing of A's, and cannot touch it: 404, as if it did not exist.
    assert_eq!(server.get("/v1/udfs", &b)["udfs"], json!([]));
    assert_eq!(server.get("/v1/pipelines", &b)["pipelines"], json!([]));
    for (method, path, body) in [
        ("GET", format!("/v1/pipelines/{pa}"), ""),
        ("GET", "/v1/udfs/tag".to_string(), ""),
        ("GET", format!("/v1/pipelines/{pa}/output"), ""),
        ("POST", format!("/v1/pipelines/{pa}/stop"), ""),
        ("POST", format!("/v1/pipelines/{pa}/records"), "{}"),
        ("PUT", format!("/v1/pipelines/{pa}/steps/0"), r#"{"udf":"tag@2"}"#),
        ("DELETE", format!("/v1/pipelines/{pa}"), ""),
        ("DELETE", "/v1/udfs/tag/versions/1".to_string(), ""),
    ] {
        let (status, reply) = server.call(method, &path, &b, "application/json", body.as_bytes());
        assert_eq!(status, 404, "{method} {path}: {reply}");
        assert_eq!(reply["error"]["code"], "not_found");
    }
    // Nor use A's functions in its own pipeline.
    let (status, reply) = server.call(
        "POST",
        "/v1/pipelines",
        &b,
        "application/yaml",
        TAGGED.replace("parallelism: 2", "parallelism: 1").as_bytes(),
    );
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("tag@1 is not registered"), "{reply}");

    // Bad tokens.
    for token in ["", "wt_nope"] {
        let (status, reply) = server.call("GET", "/v1/pipelines", token, "", b"");
        assert_eq!(status, 401, "{reply}");
    }
    let (status, _) = server.call("POST", "/v1/tenants", &a, "application/json", br#"{"name":"x"}"#);
    assert_eq!(status, 403, "only the admin creates tenants");
    // A tenant's /metrics holds only its own pipelines (tests/it/api_limits.rs checks what is in it).
    let (status, _) = server.call("GET", "/metrics", &b, "", b"");
    assert_eq!(status, 200);

    // Quotas: component size, parallelism, number of pipelines.
    let evil = std::fs::read(test_guest("evil")).unwrap();
    let big = [evil.clone(), vec![0u8; 1 << 20]].concat();
    let (status, reply) = server.call("POST", "/v1/udfs/big/versions/1", &b, "application/wasm", &big);
    assert_eq!(status, 413, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("limit is 1 MiB"), "{reply}");
    server.upload(&b, "tag@1", &test_guest("tag-one"));
    let (status, reply) = server.call("POST", "/v1/pipelines", &b, "application/yaml", TAGGED.as_bytes());
    assert_eq!(status, 429, "{reply}");
    assert!(
        reply["error"]["message"].as_str().unwrap().contains("parallelism 2 is above this tenant's limit of 1"),
        "{reply}"
    );
    let one = TAGGED.replace("parallelism: 2", "parallelism: 1");
    server.pipeline(&b, &one);
    let (status, reply) = server.call("POST", "/v1/pipelines", &b, "application/yaml", one.as_bytes());
    assert_eq!(status, 429, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("limit is 1"), "{reply}");

    // A's function in use cannot be deleted; unused, it can.
    let (status, reply) = server.call("DELETE", "/v1/udfs/tag/versions/1", &a, "", b"");
    assert_eq!(status, 409, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains(&pa), "{reply}");
    let (status, _) = server.call("DELETE", "/v1/udfs/tag/versions/2", &a, "", b"");
    assert_eq!(status, 204);

    // The admin sees both tenants' pipelines in /metrics, with call latencies once records flowed.
    server.send(&a, &pa, &["{\"id\":1}".to_string()]);
    server.wait_output(&pa, Duration::from_secs(30), |l| !l.is_empty()).unwrap();
    let (status, metrics) = server.call("GET", "/metrics", ADMIN, "", b"");
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap_or_default().to_string();
    assert!(text.contains("tenant=\"acme\"") && text.contains("tenant=\"bravo\""), "{text}");
    assert!(text.contains("weir_udf_call_latency_seconds_bucket"), "{text}");
}

#[test]
fn a_runaway_guest_only_affects_its_own_pipeline() {
    let s = Scratch::new();
    let (server, _) = server_with_tags(&s);
    let b = server.tenant("bravo", json!({}));
    server.upload(&b, "tag@1", &test_guest("tag-one"));
    // The deadline leaves a memory bomb time to reach its limit however
    // loaded the machine (at 100 ms one was once cut short as a timeout).
    let a_quota = server.tenant("tight", json!({ "memory_mib": 16, "cpu_ms_per_call": 500 }));
    server.upload(&a_quota, "evil@1", &test_guest("evil"));
    let evil = server
        .pipeline(&a_quota, "name: evil\nsource: { http: { format: lines } }\nsteps:\n  - map: { udf: evil@1 }\n");
    let good = server.pipeline(&b, TAGGED);
    // The evil pipeline gets loops and memory bombs, the good one ordinary records, interleaved.
    for round in 0..4u64 {
        server.send(&a_quota, &evil, &["LOOP".to_string(), "OOM".to_string(), format!("ok {round}")]);
        feed(&server, &b, &good, round * 250..(round + 1) * 250, 50, Duration::ZERO, |_| String::new());
    }
    let lines = server.wait_output(&good, Duration::from_secs(60), |l| l.len() >= 1000).unwrap();
    assert_eq!(lines.len(), 1000);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let view = loop {
        let view = server.get(&format!("/v1/pipelines/{evil}"), &a_quota);
        if view["steps"][1]["dead_lettered"].as_u64() == Some(8) || std::time::Instant::now() > deadline {
            break view;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(view["status"], "running", "{view}");
    assert_eq!(view["steps"][1]["dead_lettered"], 8, "each LOOP and OOM dead-lettered: {view}");
    let dead = std::fs::read_to_string(server.data_dir().join(format!("pipelines/{evil}/dead-letters.jsonl"))).unwrap();
    assert!(dead.contains("timeout") && dead.contains("out_of_memory"), "{dead}");
    let out = server.wait_output(&evil, Duration::from_secs(30), |l| l.len() >= 4).unwrap();
    assert_eq!(out.len(), 4, "the ordinary records still came through: {out:?}");
}

/// Sends only the headers of a POST announcing `length` bytes; returns the response.
fn raw_post(server: &Server, path: &str, token: &str, length: usize) -> String {
    use std::io::{Read, Write};
    let addr = server.url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/wasm\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&reply).contains("}}") {
            break;
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn bad_uploads_and_manifests_get_a_4xx_that_names_the_problem() {
    let s = Scratch::new();
    let (server, token) = server_with_tags(&s);
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let aggregator = std::fs::read(udf_dir().join("count@1.wasm")).unwrap();
    for (bytes, status, expect) in [
        (b"junk bytes".to_vec(), 400, "not a WebAssembly component"),
        (core_module, 400, "core WebAssembly module, not a component"),
    ] {
        let (got, reply) = server.call("POST", "/v1/udfs/x/versions/1", &token, "application/wasm", &bytes);
        assert_eq!(got, status, "{reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(expect), "{reply}");
    }
    // An upload larger than the server takes is refused from its Content-Length, before the body is read.
    let reply = raw_post(&server, "/v1/udfs/x/versions/1", &token, 300 << 20);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("larger than this endpoint's limit"), "{reply}");
    let (status, reply) = server.call("POST", "/v1/udfs/tag/versions/1", &token, "application/wasm", &aggregator);
    assert_eq!(status, 409, "versions are immutable: {reply}");
    let (status, reply) = server.call("POST", "/v1/udfs/x/versions/1", &token, "text/plain", b"hello");
    assert_eq!((status, &reply["error"]["code"]), (415, &json!("unsupported_media_type")), "{reply}");
    server.upload(&token, "counter@1", &udf_dir().join("count@1.wasm"));
    // A component for the wrong world.
    for (manifest, code, expect) in [
        ("name: a\nsource: { http: {} }\nsteps:\n  - map: { udf: counter@1 }\n", "wrong_world", "mapper"),
        (
            "name: a\nsource: { http: {} }\nsteps:\n  - map: { udf: nope@1 }\n",
            "unknown_udf",
            "nope@1 is not registered",
        ),
        ("name: a\nsource: { file: { path: /etc/passwd } }\n", "invalid_manifest", "source.file: not available"),
        ("name: A B\nsource: { http: {} }\n", "invalid_manifest", "name"),
        ("name: a\nsource: { http: {} }\nsteps:\n  - mop: {}\n", "invalid_manifest", "steps[0]"),
        ("{not yaml", "invalid_manifest", "not YAML or JSON"),
    ] {
        let (status, reply) = server.call("POST", "/v1/pipelines", &token, "application/yaml", manifest.as_bytes());
        assert_eq!(status, 400, "{manifest}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{manifest}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(expect), "{manifest}: {reply}");
    }
    let (status, reply) = server.call("PUT", "/v1/pipelines/p-x/steps/0", &token, "application/json", b"{\"udf\": 3}");
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_json");
    let id = server.pipeline(&token, TAGGED);
    let (status, reply) = server.call(
        "PUT",
        &format!("/v1/pipelines/{id}/steps/0"),
        &token,
        "application/json",
        br#"{"udf":"counter@1"}"#,
    );
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "wrong_world");
    let (status, reply) =
        server.call("PUT", &format!("/v1/pipelines/{id}/steps/7"), &token, "application/json", br#"{"udf":"tag@2"}"#);
    assert_eq!(status, 404, "{reply}");
    // Nothing of the refused pipelines was created.
    assert_eq!(server.get("/v1/pipelines", &token)["pipelines"].as_array().unwrap().len(), 1);
    let doc = server.get("/openapi.json", "");
    assert!(doc["paths"]["/v1/pipelines/{id}/steps/{step}"]["put"].is_object());
}

#[test]
fn a_post_to_a_failed_pipeline_is_refused_and_the_largest_record_is_read() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    server.upload(&token, "evil@1", &test_guest("evil"));

    // The largest record the API takes is one the pipeline reads (a record
    // of exactly 16 MiB used to be acknowledged, then fail the pipeline).
    let id =
        server.pipeline(&token, "name: big\nsource: { http: { format: lines } }\ncheckpoint: { interval: 200ms }\n");
    let largest = "x".repeat((16 << 20) - 1);
    server.send(&token, &id, std::slice::from_ref(&largest));
    let out = server.wait_output(&id, Duration::from_secs(60), |l| !l.is_empty()).unwrap();
    assert_eq!(out.iter().map(String::len).collect::<Vec<_>>(), [largest.len()]);
    let over = "x".repeat(16 << 20);
    let (status, reply) =
        server.call("POST", &format!("/v1/pipelines/{id}/records"), &token, "text/plain", over.as_bytes());
    assert!(status == 400 || status == 413, "{status}: {reply}");

    // A pipeline that failed says so to whoever posts to it.
    let id = server.pipeline(
        &token,
        "name: fragile\nsource: { http: { format: lines } }\nsteps:\n  - map: { udf: evil@1, on_error: fail }\n",
    );
    server.send(&token, &id, &["PANIC".to_string()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.get(&format!("/v1/pipelines/{id}"), &token)["status"] != "failed" {
        assert!(std::time::Instant::now() < deadline, "the pipeline did not fail");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, reply) = server.call("POST", &format!("/v1/pipelines/{id}/records"), &token, "text/plain", b"more");
    assert_eq!(status, 409, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("has failed") && message.contains("PANIC requested"), "{reply}");
}
