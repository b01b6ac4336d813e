//! `weir serve` against hostile clients: each test is named for the attack
//! it stops. The servers run with small limits (flags of `weir serve`) so
//! the attacks end in seconds; the tests assert outcomes (a status, a
//! closed connection, an exited process), never elapsed time. The timeouts
//! in here are guards against hanging, far above the configured limits.
//!
//! The last test walks every route as an anonymous client, as one tenant
//! on another tenant's objects, and as the admin.

use serde_json::{json, Value};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use weir_tests::server::{Server, ADMIN};
use weir_tests::{udf_dir, Scratch};

/// How long a test waits for something the server should do in about a second.
const GUARD: Duration = Duration::from_secs(30);

/// A raw client connection, for requests no polite client sends.
struct Raw {
    conn: TcpStream,
}

impl Raw {
    fn connect(server: &Server) -> Raw {
        let conn = TcpStream::connect(server.addr()).expect("connect");
        conn.set_nodelay(true).unwrap();
        Raw { conn }
    }

    /// Sends a request head (and `body`, possibly only a part of the announced length).
    fn send_head(&mut self, method: &str, path: &str, token: Option<&str>, length: usize, body: &[u8]) {
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: weir\r\n{auth}Content-Type: application/wasm\r\nContent-Length: {length}\r\n\r\n"
        );
        self.conn.write_all(head.as_bytes()).expect("send head");
        self.conn.write_all(body).expect("send body");
    }

    /// Whether the server has sent anything (or closed) on this connection
    /// yet, without waiting.
    fn answered(&mut self) -> bool {
        self.conn.set_nonblocking(true).unwrap();
        let got = !matches!(self.conn.peek(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
        self.conn.set_nonblocking(false).unwrap();
        got
    }

    /// Reads a response head, waiting at most [`GUARD`]; panics if none comes.
    fn status(&mut self) -> u16 {
        self.conn.set_read_timeout(Some(GUARD)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match self.conn.read(&mut buf) {
                Ok(0) => panic!("the connection closed before a response: {:?}", String::from_utf8_lossy(&got)),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("no response within {GUARD:?} ({e}): {:?}", String::from_utf8_lossy(&got)),
            }
        }
        let head = String::from_utf8_lossy(&got);
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {head}"))
    }

    /// Sends one byte every `every` (the slow-loris pace, sped up) until the
    /// server closes the connection; returns what it sent back meanwhile,
    /// or panics if the connection is still open after [`GUARD`].
    fn trickle_until_closed(&mut self, byte: u8, every: Duration) -> String {
        self.conn.set_read_timeout(Some(every)).unwrap();
        let deadline = Instant::now() + GUARD;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if self.conn.write_all(&[byte]).is_err() {
                return String::from_utf8_lossy(&got).into_owned();
            }
            match self.conn.read(&mut buf) {
                Ok(0) => return String::from_utf8_lossy(&got).into_owned(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return String::from_utf8_lossy(&got).into_owned(),
            }
        }
        panic!("the connection was still open after {GUARD:?}; got {:?}", String::from_utf8_lossy(&got))
    }

    /// Whether the server closes the connection (EOF or reset) within [`GUARD`], ignoring anything it sends.
    fn is_closed_by_server(&mut self) -> bool {
        self.conn.set_read_timeout(Some(GUARD)).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match self.conn.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
                Err(_) => return true,
            }
        }
    }
}

fn tag_one() -> std::path::PathBuf {
    udf_dir().join("test").join("tag-one@1.wasm")
}

#[test]
fn unauthenticated_upload_is_refused_before_its_body_is_read() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    // 200 MiB announced (under the 256 MiB upload limit), not one byte sent: only a
    // server that decides from the head can answer.
    for token in [None, Some("wt_forged")] {
        let mut raw = Raw::connect(&server);
        raw.send_head("POST", "/v1/udfs/big/versions/1", token, 200 << 20, b"");
        assert_eq!(raw.status(), 401, "token {token:?}");
    }
}

#[test]
fn a_tenant_is_refused_admin_routes_before_its_body_is_read() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let tenant = server.tenant("acme", json!({}));
    let mut raw = Raw::connect(&server);
    raw.send_head("POST", "/v1/tenants", Some(&tenant), 512 << 10, b"");
    assert_eq!(raw.status(), 403);
}

#[test]
fn slow_loris_headers_are_cut_off() {
    let s = Scratch::new();
    let server = Server::start_with(&s.join("data"), &["--header-timeout", "1s"]).expect("server");
    let mut raw = Raw::connect(&server);
    raw.conn.write_all(b"GET /v1/udfs HTTP/1.1\r\nHost: weir\r\nX-Slow: ").unwrap();
    // A byte of the header every 100 ms never completes the head: the server closes the connection.
    let got = raw.trickle_until_closed(b'a', Duration::from_millis(100));
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    // The server itself is fine.
    assert_eq!(server.call("GET", "/healthz", "", "", b"").0, 200);
}

#[test]
fn slow_body_gets_408() {
    let s = Scratch::new();
    let server = Server::start_with(&s.join("data"), &["--body-timeout", "1s"]).expect("server");
    let tenant = server.tenant("acme", json!({}));
    let mut raw = Raw::connect(&server);
    raw.send_head("POST", "/v1/udfs/slow/versions/1", Some(&tenant), 4096, b"\0asm");
    let got = raw.trickle_until_closed(0, Duration::from_millis(100));
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("body_timeout"), "{got}");
}

#[test]
fn an_idle_kept_alive_connection_is_closed() {
    let s = Scratch::new();
    let server = Server::start_with(&s.join("data"), &["--header-timeout", "1s"]).expect("server");
    let mut raw = Raw::connect(&server);
    raw.send_head("GET", "/healthz", None, 0, b"");
    assert_eq!(raw.status(), 200);
    // Kept alive, then silent: the wait for the next request head runs out.
    assert!(raw.is_closed_by_server(), "an idle connection stayed open");
}

#[test]
fn a_connection_cannot_be_held_past_its_maximum_age() {
    let s = Scratch::new();
    let server = Server::start_with(&s.join("data"), &["--max-connection-age", "1s", "--header-timeout", "10m"])
        .expect("server");
    let mut raw = Raw::connect(&server);
    // One request after another keeps the connection busy; at its age it is closed after an answer.
    let deadline = Instant::now() + GUARD;
    loop {
        assert!(Instant::now() < deadline, "the connection outlived its maximum age");
        if raw.conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: weir\r\n\r\n").is_err() {
            break;
        }
        raw.conn.set_read_timeout(Some(GUARD)).unwrap();
        let mut buf = [0u8; 4096];
        match raw.conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf[..n])),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn connection_flood_is_capped() {
    let s = Scratch::new();
    let server =
        Server::start_with(&s.join("data"), &["--max-connections", "2", "--header-timeout", "120s"]).expect("server");
    // Two clients hold the two connections (each answered once, then kept alive).
    let mut held: Vec<Raw> = (0..2)
        .map(|_| {
            let mut raw = Raw::connect(&server);
            raw.send_head("GET", "/healthz", None, 0, b"");
            assert_eq!(raw.status(), 200);
            raw
        })
        .collect();
    // A third is closed without an answer.
    let mut third = Raw::connect(&server);
    third.send_head("GET", "/healthz", None, 0, b"");
    assert!(third.is_closed_by_server(), "a connection over the cap was served");
    // The held connections still work, and once one closes, a new client gets in.
    held[0].send_head("GET", "/healthz", None, 0, b"");
    assert_eq!(held[0].status(), 200);
    drop(held.remove(1));
    let deadline = Instant::now() + GUARD;
    loop {
        let mut next = Raw::connect(&server);
        next.send_head("GET", "/healthz", None, 0, b"");
        next.conn.set_read_timeout(Some(GUARD)).unwrap();
        let mut buf = [0u8; 64];
        match next.conn.read(&mut buf) {
            Ok(n) if n > 0 => {
                assert!(buf.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&buf[..n]));
                break;
            }
            // The server has not noticed the closed connection yet.
            _ => assert!(Instant::now() < deadline, "no connection was served after one closed"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn request_flood_is_shed_with_503() {
    let s = Scratch::new();
    let server = Server::start_with(&s.join("data"), &["--max-requests-in-flight", "1"]).expect("server");
    let tenant = server.tenant("acme", json!({}));
    // One request in flight: an upload whose body has not all arrived.
    let slow_upload = || {
        let mut conn = Raw::connect(&server);
        conn.send_head("POST", "/v1/udfs/slow/versions/1", Some(&tenant), 4096, b"\0asm");
        conn
    };
    let mut slow = slow_upload();
    let deadline = Instant::now() + GUARD;
    let (status, reply) = loop {
        let (status, reply) = server.call("GET", "/v1/udfs", &tenant, "", b"");
        // 200 until the slow request has reached the server.
        if status != 200 || Instant::now() > deadline {
            break (status, reply);
        }
        // Arriving while this probe held the one permit, it was shed itself.
        if slow.answered() {
            slow = slow_upload();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["error"]["code"], "overloaded", "{reply}");
    // The liveness probe is not counted.
    assert_eq!(server.call("GET", "/healthz", "", "", b"").0, 200);
    // Once the slow request is gone, requests are served again.
    drop(slow);
    let deadline = Instant::now() + GUARD;
    while server.call("GET", "/v1/udfs", &tenant, "", b"").0 != 200 {
        assert!(Instant::now() < deadline, "still shedding after the slow request went away");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_tenants_request_flood_does_not_take_the_others_share() {
    let s = Scratch::new();
    let server = Server::start_with(&s.join("data"), &["--max-requests-in-flight-per-tenant", "2"]).expect("server");
    let (greedy, quiet) = (server.tenant("greedy", json!({})), server.tenant("quiet", json!({})));
    // The greedy tenant holds its whole share with uploads that never finish.
    let slow_upload = |i: usize| {
        let mut conn = Raw::connect(&server);
        conn.send_head("POST", &format!("/v1/udfs/slow{i}/versions/1"), Some(&greedy), 4096, b"\0asm");
        conn
    };
    let mut slow: Vec<Raw> = (0..2).map(slow_upload).collect();
    let deadline = Instant::now() + GUARD;
    let (status, reply) = loop {
        let (status, reply) = server.call("GET", "/v1/udfs", &greedy, "", b"");
        // 200 until both slow requests have reached the server.
        if status != 200 || Instant::now() > deadline {
            break (status, reply);
        }
        // A slow upload that arrived while this probe held a permit was
        // itself refused (the share was full then): send it again.
        for (i, conn) in slow.iter_mut().enumerate() {
            if conn.answered() {
                *conn = slow_upload(i);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status, 429, "{reply}");
    assert_eq!(reply["error"]["code"], "tenant_overloaded", "{reply}");
    // The other tenant and the admin are served meanwhile.
    assert_eq!(server.call("GET", "/v1/udfs", &quiet, "", b"").0, 200);
    assert_eq!(server.call("GET", "/v1/tenants", ADMIN, "", b"").0, 200);
    drop(slow);
    let deadline = Instant::now() + GUARD;
    while server.call("GET", "/v1/udfs", &greedy, "", b"").0 != 200 {
        assert!(Instant::now() < deadline, "the tenant is still refused after its slow requests went away");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_config_file_sets_bounds_http_limits_and_new_tenants_quotas() {
    let s = Scratch::new();
    let config = s.write(
        "serve.yaml",
        "bounds: { max_windows_per_record: 10 }\nhttp: { max_requests_in_flight_per_tenant: 3 }\n\
         tenant_defaults: { max_pipelines: 1, memory_mib: 32 }\n",
    );
    let server = Server::start_with(&s.join("data"), &["--config", config.to_str().unwrap()]).expect("server");
    let tenant = server.tenant("acme", json!({}));
    let tenants = server.get("/v1/tenants", ADMIN);
    let quotas = &tenants["tenants"][0]["quotas"];
    assert_eq!((quotas["max_pipelines"].as_u64(), quotas["memory_mib"].as_u64()), (Some(1), Some(32)), "{tenants}");
    // A quota given at creation wins over the file's default.
    server.tenant("big", json!({ "max_pipelines": 7 }));
    let tenants = server.get("/v1/tenants", ADMIN);
    let big = tenants["tenants"].as_array().unwrap().iter().find(|t| t["name"] == "big").unwrap();
    assert_eq!(big["quotas"]["max_pipelines"], 7, "{tenants}");
    assert_eq!(big["quotas"]["memory_mib"], 32, "{tenants}");
    // The file's bound applies to manifests.
    let manifest = "name: w\nsource: { http: {} }\nsteps:\n  - key_by: { field: /k }\n  - window: { sliding: { size: 10s, slide: 500ms }, time: processing }\n    aggregate: { builtin: count }\n";
    let (status, reply) = server.call("POST", "/v1/pipelines", &tenant, "application/yaml", manifest.as_bytes());
    assert_eq!(status, 400, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("max_windows_per_record"), "{reply}");
}

#[test]
fn a_misspelt_config_file_stops_the_server_naming_the_key() {
    let s = Scratch::new();
    let config = s.write("serve.yaml", "http: { max_conections: 5 }\n");
    let out = std::process::Command::new(weir_tests::weir_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(s.join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("max_conections") && err.contains("serve.yaml"), "{err}");
}

#[test]
fn shutdown_completes_despite_an_open_connection() {
    let s = Scratch::new();
    let mut server = Server::start_with(
        &s.join("data"),
        &["--shutdown-grace", "1s", "--body-timeout", "10m", "--header-timeout", "10m"],
    )
    .expect("server");
    let tenant = server.tenant("acme", json!({}));
    // One client in the middle of a request that will not end, one idle.
    let mut busy = Raw::connect(&server);
    busy.send_head("POST", "/v1/udfs/slow/versions/1", Some(&tenant), 4096, b"\0asm");
    let mut idle = Raw::connect(&server);
    idle.send_head("GET", "/healthz", None, 0, b"");
    assert_eq!(idle.status(), 200);
    let status = server.terminate_within(GUARD).expect("exit after SIGTERM");
    assert!(status.success(), "{status}");
    assert!(busy.is_closed_by_server() && idle.is_closed_by_server());
}

const TAGGED: &str = "name: tagged\nsource: { http: { format: json } }\nsteps:\n  - map: { udf: tag@1 }\n";

#[test]
fn tenant_metrics_show_only_its_own_pipelines() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let (a, b) = (server.tenant("alpha", json!({})), server.tenant("bravo", json!({})));
    server.upload(&a, "tag@1", &tag_one());
    server.upload(&b, "tag@1", &tag_one());
    let (pa, pb) = (server.pipeline(&a, TAGGED), server.pipeline(&b, TAGGED));
    let metrics = |token: &str| {
        let (status, text) = server.call("GET", "/metrics", token, "", b"");
        assert_eq!(status, 200, "{text}");
        text.as_str().expect("text").to_string()
    };
    let of_a = metrics(&a);
    assert!(of_a.contains(&format!("pipeline=\"{pa}\"")) && of_a.contains("tenant=\"alpha\""), "{of_a}");
    assert!(!of_a.contains(&pb) && !of_a.contains("bravo"), "tenant A sees B's series:\n{of_a}");
    let of_b = metrics(&b);
    assert!(of_b.contains(&pb) && !of_b.contains(&pa) && !of_b.contains("alpha"), "{of_b}");
    let all = metrics(ADMIN);
    assert!(all.contains(&pa) && all.contains(&pb), "{all}");
}

#[test]
fn a_tenant_posting_faster_than_its_ingest_quota_gets_429_with_retry_after() {
    // Attack: one tenant floods its http sources, filling the server's disk
    // and its pipelines' share of the CPU.
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let flood = server.tenant("flood", json!({ "ingest_records_per_s": 2, "ingest_bytes_per_s": 1_000_000 }));
    let calm = server.tenant("calm", json!({ "ingest_records_per_s": 2 }));
    let records = |n: usize| -> Vec<String> { (0..n).map(|i| format!("{{\"id\":{i}}}")).collect() };
    let mut ids = Vec::new();
    for token in [&flood, &calm] {
        server.upload(token, "tag@1", &tag_one());
        ids.push(server.pipeline(token, TAGGED));
    }
    // A post larger than a second's worth goes through, into debt ...
    let got = server.post_records(&flood, &ids[0], None, &records(20));
    assert_eq!(got.status, 200, "{got:?}");
    // ... which the next post must wait off: 18 records at 2/s.
    let got = server.post_records(&flood, &ids[0], None, &records(1));
    assert_eq!(got.status, 429, "{got:?}");
    assert_eq!(got.reply["error"]["code"], "ingest_rate_exceeded", "{got:?}");
    assert!(got.retry_after.is_some_and(|s| (5..=9).contains(&s)), "Retry-After {:?}", got.retry_after);
    // Another tenant's quota is its own.
    assert_eq!(server.post_records(&calm, &ids[1], None, &records(1)).status, 200);
    // The bytes count too.
    let bytes = server.tenant("bytes", json!({ "ingest_bytes_per_s": 100 }));
    server.upload(&bytes, "tag@1", &tag_one());
    let id = server.pipeline(&bytes, TAGGED);
    assert_eq!(server.post_records(&bytes, &id, None, &[format!("{{\"pad\":\"{}\"}}", "x".repeat(1000))]).status, 200);
    let got = server.post_records(&bytes, &id, None, &records(1));
    assert_eq!(got.status, 429, "{got:?}");
    // Raising the quota lets the tenant post again at once.
    let (status, reply) = server.call(
        "PATCH",
        "/v1/tenants/flood",
        ADMIN,
        "application/json",
        br#"{"quotas":{"ingest_records_per_s":1000000}}"#,
    );
    assert_eq!(status, 200, "{reply}");
    let got = server.post_records(&flood, &ids[0], None, &records(1));
    assert_eq!(got.status, 200, "{got:?}");
}

#[test]
fn weir_pipeline_send_waits_out_the_rate_quota_and_appends_once() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({ "ingest_records_per_s": 4 }));
    server.upload(&token, "tag@1", &tag_one());
    let id = server.pipeline(&token, &TAGGED.replace("steps:", "checkpoint: { interval: 100ms }\nsteps:"));
    let file = |name: &str, ids: std::ops::Range<u32>| {
        s.write(name, ids.map(|i| format!("{{\"id\":{i}}}\n")).collect::<String>())
    };
    let send = |path: &std::path::Path, extra: &[&str]| {
        let out = std::process::Command::new(weir_tests::weir_bin())
            .args(["pipeline", "send", &id, path.to_str().unwrap(), "--server", &server.url, "--token", &token])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Eight records put the tenant a second into debt; the next send is
    // refused with 429 until then, and the command waits and retries.
    let (code, out, err) = send(&file("a.ndjson", 0..8), &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = send(&file("b.ndjson", 8..10), &["--idempotency-key", "batch-b"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("retrying in"), "the first attempt was refused: {err}");
    assert!(out.contains("accepted 2"), "{out}");
    // Running the same command again (same key) appends nothing.
    let (code, out, err) = send(&file("b.ndjson", 8..10), &["--idempotency-key", "batch-b", "--attempts", "10"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = send(&file("c.ndjson", 10..11), &["--idempotency-key", "batch-c", "--attempts", "10"]);
    assert_eq!(code, Some(0), "{err}");
    let lines = server.wait_output(&id, Duration::from_secs(60), |l| l.len() >= 11).unwrap();
    let mut ids: Vec<u64> =
        lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..11).collect::<Vec<_>>());
}

#[test]
fn concurrent_creates_never_exceed_max_pipelines() {
    // Attack: many creates at once all passed the count while they
    // compiled, and all were inserted.
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({ "max_pipelines": 2 }));
    server.upload(&token, "tag@1", &tag_one());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..6)
            .map(|i| {
                let (server, token) = (&server, &token);
                scope.spawn(move || {
                    let manifest = TAGGED.replace("tagged", &format!("racer-{i}"));
                    server.call("POST", "/v1/pipelines", token, "application/yaml", manifest.as_bytes()).0
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|&&s| s == 201).count(), 2, "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 201 || s == 429), "{statuses:?}");
    assert_eq!(server.get("/v1/pipelines", &token)["pipelines"].as_array().unwrap().len(), 2);
}

#[test]
fn concurrent_uploads_of_one_version_store_the_winners_bytes() {
    // Two uploads of `tag@1` with different bytes used to share one temp
    // file: the row of one could end up with the bytes of the other.
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    let bytes =
        [std::fs::read(tag_one()).unwrap(), std::fs::read(udf_dir().join("test").join("tag-two@1.wasm")).unwrap()];
    for round in 0..3 {
        let version = format!("{round}");
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4)
                .map(|i| {
                    let (server, token, body, version) = (&server, &token, &bytes[i % 2], &version);
                    scope.spawn(move || {
                        server
                            .call("POST", &format!("/v1/udfs/tag/versions/{version}"), token, "application/wasm", body)
                            .0
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let winners: Vec<usize> = (0..4).filter(|&i| statuses[i] == 201).collect();
        assert_eq!(winners.len(), 1, "round {round}: {statuses:?}");
        assert!(statuses.iter().all(|&s| s == 201 || s == 409), "{statuses:?}");
        let stored = std::fs::read_dir(s.join("data").join("udfs"))
            .unwrap()
            .flatten()
            .map(|tenant| tenant.path().join(format!("tag@{version}.wasm")))
            .find(|p| p.exists())
            .expect("the stored component");
        assert!(
            std::fs::read(&stored).unwrap() == bytes[winners[0] % 2],
            "round {round}: the loser's bytes were stored"
        );
        // No temp file is left behind.
        let dir = stored.parent().unwrap();
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[test]
fn uploading_version_after_version_stops_at_the_version_quota() {
    // Attack: a tenant registers versions without end (each one stored on
    // disk and compiled).
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({ "max_udf_versions": 2 }));
    let bytes = std::fs::read(tag_one()).unwrap();
    let upload =
        |v: &str| server.call("POST", &format!("/v1/udfs/tag/versions/{v}"), &token, "application/wasm", &bytes);
    assert_eq!(upload("1").0, 201);
    assert_eq!(upload("2").0, 201);
    let (status, reply) = upload("3");
    assert_eq!(status, 429, "{reply}");
    assert_eq!(reply["error"]["code"], "quota_exceeded", "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("max_udf_versions"), "{reply}");
    assert_eq!(server.call("DELETE", "/v1/udfs/tag/versions/1", &token, "", b"").0, 204);
    assert_eq!(upload("3").0, 201, "a deleted version frees its place");
}

#[test]
fn concurrent_resumes_start_the_pipeline_once() {
    // Found writing the API fuzz test: two resumes at once both started a job;
    // the second failed on the first's checkpoint lock with a 400 blaming
    // "another weir process". One must win, the others get 409.
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    server.upload(&token, "tag@1", &tag_one());
    let id = server.pipeline(&token, &TAGGED.replace("tagged", "twice"));
    for round in 0..3 {
        let (status, reply) = server.call_until_done("POST", &format!("/v1/pipelines/{id}/stop"), &token, "", b"");
        assert_eq!(status, 200, "round {round}: stop: {reply}");
        let replies: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let resumes: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| server.call("POST", &format!("/v1/pipelines/{id}/resume"), &token, "", b"")))
                .collect();
            resumes.into_iter().map(|r| r.join().expect("a resume")).collect()
        });
        let started = replies.iter().filter(|(status, _)| *status == 200).count();
        let refused = replies.iter().filter(|(status, reply)| *status == 409 && reply["error"]["code"] == "conflict");
        assert_eq!((started, refused.count()), (1, 7), "round {round}: {replies:?}");
        assert_eq!(server.get(&format!("/v1/pipelines/{id}"), &token)["status"], "running");
    }
}

#[test]
fn quotas_too_large_to_count_in_bytes_are_refused() {
    // Found writing the API fuzz test: 2^44 MiB is 2^64 bytes, which wrapped to a
    // cap of 0 bytes ("the component has 51732 bytes; this tenant's limit is
    // 17592186044416 MiB").
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    for quota in ["memory_mib", "max_component_mib", "max_state_mib"] {
        let body = json!({ "quotas": { quota: 1u64 << 44 } }).to_string();
        let (status, reply) = server.call("PATCH", "/v1/tenants/acme", ADMIN, "application/json", body.as_bytes());
        assert_eq!((status, &reply["error"]["code"]), (400, &json!("invalid_quotas")), "{quota}: {reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(quota), "{reply}");
        let body = json!({ "name": "big", "quotas": { quota: 1u64 << 44 } }).to_string();
        let (status, reply) = server.call("POST", "/v1/tenants", ADMIN, "application/json", body.as_bytes());
        assert_eq!(status, 400, "{quota}: {reply}");
    }
    // The largest allowed quota is usable.
    let body = json!({ "quotas": { "max_component_mib": 1u64 << 30, "memory_mib": 1u64 << 30 } }).to_string();
    let (status, reply) = server.call("PATCH", "/v1/tenants/acme", ADMIN, "application/json", body.as_bytes());
    assert_eq!(status, 200, "{reply}");
    server.upload(&token, "tag@1", &tag_one());
    server.pipeline(&token, TAGGED);
}

#[test]
fn errors_outside_the_handlers_are_json_too() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let token = server.tenant("acme", json!({}));
    // A method the path does not have: 405 with the error body (it had none).
    let (status, reply) = server.call("PUT", "/v1/pipelines/p-x/stop", &token, "application/json", b"{}");
    assert_eq!((status, &reply["error"]["code"]), (405, &json!("method_not_allowed")), "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("PUT"), "{reply}");
    // A component sent as something else: 415, before anything is compiled.
    let (status, reply) = server.call("POST", "/v1/udfs/tag/versions/1", &token, "text/plain", b"\0asm");
    assert_eq!((status, &reply["error"]["code"]), (415, &json!("unsupported_media_type")), "{reply}");
    let wasm = std::fs::read(tag_one()).unwrap();
    let (status, reply) = server.call("POST", "/v1/udfs/tag/versions/1", &token, "Application/Wasm; x=y", &wasm);
    assert_eq!(status, 201, "{reply}");
}

/// One request of the route table, and the status each caller should get.
struct Case {
    method: &'static str,
    route: &'static str,
    path: String,
    body: Vec<u8>,
    anonymous: u16,
    tenant_a: u16,
    admin: u16,
}

fn case(
    method: &'static str,
    route: &'static str,
    path: &str,
    body: &[u8],
    [anonymous, tenant_a, admin]: [u16; 3],
) -> Case {
    Case { method, route, path: path.to_string(), body: body.to_vec(), anonymous, tenant_a, admin }
}

impl Case {
    /// Sends the request with `token`; asserts the status; returns it and the reply.
    fn check(&self, who: &str, server: &Server, token: &str, want: u16) -> (u16, Value) {
        let content_type = if self.path.starts_with("/v1/udfs/") { "application/wasm" } else { "application/json" };
        let (status, reply) = server.call(self.method, &self.path, token, content_type, &self.body);
        assert_eq!(status, want, "{who}: {} {}: {reply}", self.method, self.path);
        (status, reply)
    }
}

#[test]
fn every_route_answers_only_to_who_may_see_it() {
    let s = Scratch::new();
    let server = Server::start(&s.join("data")).expect("server");
    let (a, b) = (server.tenant("alpha", json!({})), server.tenant("bravo", json!({})));
    // B's objects, with names that would show up in any leak.
    server.upload(&b, "bee-secret@1", &tag_one());
    let pb = server.pipeline(&b, &TAGGED.replace("tag@1", "bee-secret@1").replace("tagged", "bee-pipeline"));
    let manifest = TAGGED.replace("tag@1", "bee-secret@1");
    let (status, op) = server.call("POST", &format!("/v1/pipelines/{pb}/savepoints"), &b, "", b"");
    assert_eq!(status, 202, "{op}");
    let bop = format!("/v1/operations/{}", op["id"].as_str().unwrap());
    // Per route: a request, and the status each caller gets.
    let p = |suffix: &str| format!("/v1/pipelines/{pb}{suffix}");
    let table = [
        case("GET", "/healthz", "/healthz", b"", [200, 200, 200]),
        case("GET", "/openapi.json", "/openapi.json", b"", [200, 200, 200]),
        // A tenant's /metrics is its own (checked for leaks below); the admin's is everything.
        case("GET", "/metrics", "/metrics", b"", [401, 200, 200]),
        case("POST", "/v1/tenants", "/v1/tenants", br#"{"name":"charlie"}"#, [401, 403, 201]),
        case("GET", "/v1/tenants", "/v1/tenants", b"", [401, 403, 200]),
        case("PATCH", "/v1/tenants/{name}", "/v1/tenants/bravo", br#"{"quotas":{"max_pipelines":5}}"#, [401, 403, 200]),
        // Function names are per tenant: A uploading `bee-secret@1` makes its own (here a bad one).
        case("POST", "/v1/udfs/{name}/versions/{version}", "/v1/udfs/bee-secret/versions/1", b"junk", [401, 400, 403]),
        case("DELETE", "/v1/udfs/{name}/versions/{version}", "/v1/udfs/bee-secret/versions/1", b"", [401, 404, 403]),
        case("GET", "/v1/udfs", "/v1/udfs", b"", [401, 200, 403]),
        case("GET", "/v1/udfs/{name}", "/v1/udfs/bee-secret", b"", [401, 404, 403]),
        // A cannot build a pipeline on B's function.
        case("POST", "/v1/pipelines", "/v1/pipelines", manifest.as_bytes(), [401, 400, 403]),
        case("GET", "/v1/pipelines", "/v1/pipelines", b"", [401, 200, 403]),
        case("GET", "/v1/pipelines/{id}", &p(""), b"", [401, 404, 403]),
        case("POST", "/v1/pipelines/{id}/stop", &p("/stop"), b"", [401, 404, 403]),
        case("POST", "/v1/pipelines/{id}/resume", &p("/resume"), b"", [401, 404, 403]),
        case("POST", "/v1/pipelines/{id}/savepoints", &p("/savepoints"), b"", [401, 404, 403]),
        case("PUT", "/v1/pipelines/{id}/steps/{step}", &p("/steps/0"), br#"{"udf":"bee-secret@1"}"#, [401, 404, 403]),
        case("POST", "/v1/pipelines/{id}/records", &p("/records"), b"{\"id\":1}", [401, 404, 403]),
        case("GET", "/v1/pipelines/{id}/output", &p("/output"), b"", [401, 404, 403]),
        case("GET", "/v1/usage", "/v1/usage", b"", [401, 200, 403]),
        case("GET", "/v1/operations", "/v1/operations", b"", [401, 200, 403]),
        case("GET", "/v1/operations/{op}", &bop, b"", [401, 404, 403]),
        case("DELETE", "/v1/pipelines/{id}", &p(""), b"", [401, 404, 403]),
    ];
    // The table covers every route of the router, and nothing else.
    let mut covered: Vec<(String, String)> =
        table.iter().map(|c| (c.method.to_lowercase(), c.route.to_string())).collect();
    let mut routes: Vec<(String, String)> =
        weir::api::routes().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    covered.sort();
    routes.sort();
    assert_eq!(covered, routes, "a route is missing from the table");

    for c in &table {
        for token in ["", "wt_forged"] {
            c.check("anonymous", &server, token, c.anonymous);
        }
    }
    for c in &table {
        let (status, reply) = c.check("tenant A", &server, &a, c.tenant_a);
        // An error may echo the id A sent; nothing else of B's may appear.
        let text = reply.to_string();
        let leaks: &[&str] = if (200..300).contains(&status) {
            &[&pb, "bee-secret", "bee-pipeline", "bravo"]
        } else {
            &["bee-pipeline", "bravo"]
        };
        assert!(!leaks.iter().any(|l| text.contains(l)), "tenant A: {} {} shows B's data: {text}", c.method, c.path);
    }
    let listed = server.get("/v1/udfs", &a).to_string();
    assert!(!listed.contains("bee-secret"), "tenant A lists B's function: {listed}");
    for c in &table {
        c.check("admin", &server, ADMIN, c.admin);
    }
    // Nothing A or the admin did touched B's objects.
    let mine = server.get(&format!("/v1/pipelines/{pb}"), &b);
    assert_eq!(mine["id"], Value::String(pb.clone()), "{mine}");
    assert_eq!(server.get("/v1/udfs/bee-secret", &b)["name"], "bee-secret");
}
