//! A tenant of `weir serve` reaching outside its box (issue 17): each test is
//! named for the attack and checks the outcome (a 4xx, nothing loaded,
//! nothing connected to, no server path in any response).

use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use weir_tests::server::Server;
use weir_tests::Scratch;

/// A shared library whose constructor creates `marker`: what librdkafka's
/// `plugin.library.paths` would `dlopen` in the server.
fn library_that_leaves_a_mark(s: &Scratch, marker: &Path) -> std::path::PathBuf {
    let source = s.join("mark.c");
    std::fs::write(
        &source,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void mark(void) {{ FILE *f = fopen(\"{}\", \"w\"); if (f) fclose(f); }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let lib = s.join("libmark.so");
    let status = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(&lib).arg(&source).status();
    assert!(status.is_ok_and(|s| s.success()), "cc could not build the test library (scripts/deps installs gcc)");
    lib
}

#[test]
fn a_tenant_cannot_make_the_server_load_its_library_or_connect_where_it_says() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("mallory", json!({}));
    let marker = s.join("constructor-ran");
    let lib = library_that_leaves_a_mark(&s, &marker);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let brokers = listener.local_addr().unwrap().to_string();
    for (what, manifest) in [
        (
            "kafka source",
            format!(
                "name: evil\nsource:\n  kafka:\n    brokers: {brokers}\n    topic: t\n    group: g\n    properties: {{ plugin.library.paths: {} }}\n",
                lib.display()
            ),
        ),
        ("socket source", format!("name: evil\nsource: {{ socket: {{ port: {} }} }}\n", &brokers[brokers.rfind(':').unwrap() + 1..])),
        (
            "kafka sink",
            format!("name: evil\nsource: {{ http: {{}} }}\nsink: {{ kafka: {{ brokers: {brokers}, topic: t }} }}\n"),
        ),
    ] {
        let (status, body) = server.call("POST", "/v1/pipelines", &token, "application/yaml", manifest.as_bytes());
        assert_eq!(status, 400, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("not available under `weir serve`") || message.starts_with("sink:"), "{what}: {body}");
    }
    // Nothing was created that could start later (at a restart, say).
    assert_eq!(server.get("/v1/pipelines", &token)["pipelines"].as_array().map(Vec::len), Some(0));
    assert!(!marker.exists(), "the server loaded the tenant's library");
    assert!(listener.accept().is_err(), "the server connected to the tenant's address");
}

fn wait_for(server: &Server, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = server.get(path, token);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn no_response_tells_a_tenant_where_the_server_keeps_its_files() {
    let s = Scratch::new();
    let data = s.join("data");
    let server = Server::start(&data).expect("server");
    let token = server.tenant("mallory", json!({}));
    let id = server.pipeline(&token, "name: p\nsource: { http: { format: lines } }\ncheckpoint: { interval: 100ms }\n");
    server.send(&token, &id, &["a".to_string(), "b".to_string()]);
    let path = format!("/v1/pipelines/{id}");
    let mut bodies: Vec<String> = Vec::new();
    let view = wait_for(&server, &path, &token, |v| v["checkpoints"]["latest_id"].as_u64().is_some_and(|n| n >= 2));
    let latest = view["checkpoints"]["latest"].as_str().unwrap().to_string();
    assert!(latest.starts_with("chk-"), "{view}");
    bodies.push(view.to_string());
    let (status, sp) = server.call_until_done("POST", &format!("{path}/savepoints"), &token, "", b"");
    assert_eq!(status, 200, "{sp}");
    assert!(sp["savepoint"].as_str().unwrap().starts_with("savepoint-"), "{sp}");
    bodies.push(sp.to_string());
    for action in ["stop", "resume"] {
        let (status, v) = server.call_until_done("POST", &format!("{path}/{action}"), &token, "", b"");
        assert_eq!(status, 200, "{action}: {v}");
        bodies.push(v.to_string());
    }
    let view = server.get(&path, &token);
    assert!(view["resumed_from"].as_str().unwrap().starts_with("savepoint-"), "{view}");
    bodies.push(view.to_string());
    bodies.push(server.get("/v1/pipelines", &token).to_string());
    // An error about one of the pipeline's files names it relative to the pipeline.
    let output = data.join("pipelines").join(&id).join("output");
    std::fs::create_dir_all(output.join("part-0-999999.txt")).unwrap();
    let (status, err) = server.call("GET", &format!("{path}/output"), &token, "", b"");
    assert_eq!(status, 500, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().starts_with("output/part-0-999999.txt:"), "{err}");
    bodies.push(err.to_string());
    let absolute = std::path::absolute(&data).unwrap().display().to_string();
    for body in &bodies {
        assert!(!body.contains(&absolute), "a response names the data directory: {body}");
    }
}

#[test]
fn a_window_explosion_is_refused_and_a_stored_one_beyond_a_tightened_bound_fails_alone() {
    let s = Scratch::new();
    let data = s.join("data");
    let server = Server::start(&data).expect("server");
    let token = server.tenant("mallory", json!({}));
    let window = |size: &str| {
        format!("name: w\nsource: {{ http: {{}} }}\nsteps:\n  - map: {{ udf: tag@1 }}\n  - key_by: {{ field: /k }}\n  - window: {{ sliding: {{ size: {size}, slide: 1ms }}, time: processing }}\n    aggregate: {{ builtin: count }}\n")
    };
    server.upload(&token, "tag@1", &weir_tests::udf_dir().join("test").join("tag-one@1.wasm"));
    let (status, body) = server.call("POST", "/v1/pipelines", &token, "application/yaml", window("100000d").as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`max_windows_per_record`"), "{body}");
    // Within today's bounds, then the operator tightens them: the stored
    // pipeline fails with the reason at the next start; the server and the
    // other pipeline run on (before, a replayed explosion crash-looped the server).
    let wide = server.pipeline(&token, &window("500ms"));
    let plain =
        server.pipeline(&token, "name: p\nsource: { http: { format: lines } }\ncheckpoint: { interval: 100ms }\n");
    drop(server);
    let server = Server::start_with(&data, &["--bound", "max_windows_per_record=10"]).expect("restart");
    let view = server.get(&format!("/v1/pipelines/{wide}"), &token);
    assert_eq!(view["status"], "failed", "{view}");
    assert!(view["error"].as_str().unwrap().contains("`max_windows_per_record`"), "{view}");
    // It still holds on to its function: deleting it is refused.
    let (status, body) = server.call("DELETE", "/v1/udfs/tag/versions/1", &token, "", b"");
    assert_eq!(status, 409, "{body}");
    server.send(&token, &plain, &["still here".to_string()]);
    let out = server.wait_output(&plain, Duration::from_secs(30), |l| !l.is_empty()).unwrap();
    assert_eq!(out, vec!["still here".to_string()]);
}

#[test]
fn a_tenant_filling_the_disk_with_state_is_stopped_at_its_quota() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("mallory", json!({ "max_state_mib": 1 }));
    server.upload(&token, "tally@1", &weir_tests::udf_dir().join("test").join("tally@1.wasm"));
    // tally@1 keeps every record's value in a list per key: ~3 MB of state.
    let id = server.pipeline(
        &token,
        "name: hoard\nsource:\n  http: { format: json }\n  event_time: { field: /ts }\nsteps:\n  - key_by: { field: /k }\n  - process: { udf: tally@1 }\ncheckpoint: { interval: 100ms }\n",
    );
    // Padding that does not compress (RocksDB would shrink a repeated byte to nothing).
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut pad = || {
        (0..64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            })
            .collect::<String>()
    };
    for chunk in 0..30 {
        let lines: Vec<String> = (0..100)
            .map(|i| format!("{{\"k\":\"k{}\",\"ts\":{},\"pad\":\"{}\"}}", i % 7, chunk * 100 + i, pad()))
            .collect();
        let (status, _) = server.call(
            "POST",
            &format!("/v1/pipelines/{id}/records"),
            &token,
            "text/plain",
            lines.join("\n").as_bytes(),
        );
        if status != 200 {
            break; // stopped already
        }
    }
    let view = wait_for(&server, &format!("/v1/pipelines/{id}"), &token, |v| v["status"] == "failed");
    assert!(view["error"].as_str().unwrap().contains("max_state_mib"), "{view}");
    assert_eq!(view["desired"], "stopped", "a restart must not resume it: {view}");
}

#[test]
fn the_operator_changes_a_tenants_quotas_and_a_tenant_cannot() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({ "max_pipelines": 1 }));
    let one = "name: p\nsource: { http: {} }\n";
    server.pipeline(&token, one);
    let (status, _) =
        server.call("POST", "/v1/pipelines", &token, "application/yaml", one.replace("p\n", "q\n").as_bytes());
    assert_eq!(status, 429);
    let patch =
        |who: &str, body: &str| server.call("PATCH", "/v1/tenants/acme", who, "application/json", body.as_bytes());
    // The tenant may not raise its own quotas.
    assert_eq!(patch(&token, r#"{"quotas":{"max_pipelines":5}}"#).0, 403);
    let (status, t) = patch(weir_tests::server::ADMIN, r#"{"quotas":{"max_pipelines":5}}"#);
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (t["quotas"]["max_pipelines"].as_u64(), t["quotas"]["memory_mib"].as_u64()),
        (Some(5), Some(128)),
        "{t}"
    );
    server.pipeline(&token, &one.replace("p\n", "q\n"));
    for (body, want) in [
        (r#"{"quotas":{"max_parallelizm":5}}"#, 400),
        (r#"{"quotas":{"memory_mib":0}}"#, 400),
        (r#"{"quotas":{"max_pipelines":-1}}"#, 400),
    ] {
        assert_eq!(patch(weir_tests::server::ADMIN, body).0, want, "{body}");
    }
    let (status, _) =
        server.call("PATCH", "/v1/tenants/nobody", weir_tests::server::ADMIN, "application/json", br#"{"quotas":{}}"#);
    assert_eq!(status, 404);
}

#[test]
fn the_cli_creates_and_updates_a_tenants_quotas() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let cli = |args: &[&str]| {
        let mut all = vec!["tenant"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--server", server.url.as_str(), "--token", weir_tests::server::ADMIN, "--json"]);
        s.weir(&all, None)
    };
    let created = cli(&["create", "acme", "--max-pipelines", "2"]);
    assert_eq!(created.code(), Some(0), "{}", created.stderr());
    let updated = cli(&["update", "acme", "--max-state-mib", "64"]);
    assert_eq!(updated.code(), Some(0), "{}", updated.stderr());
    let t: Value = serde_json::from_str(updated.stdout().trim()).expect("json");
    assert_eq!(
        (t["quotas"]["max_pipelines"].as_u64(), t["quotas"]["max_state_mib"].as_u64()),
        (Some(2), Some(64)),
        "{t}"
    );
    let missing = cli(&["update", "nobody", "--max-pipelines", "1"]);
    assert_eq!(missing.code(), Some(2), "{}", missing.stderr());
    assert!(missing.stderr().contains("404"), "{}", missing.stderr());
}
