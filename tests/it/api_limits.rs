//! `weir serve` against hostile clients: each test is named for the attack
//! it stops. The servers run with small limits (flags of `weir serve`) so
//! the attacks end in seconds; the tests assert outcomes (a status, a
//! closed connection, an exited process), never elapsed time. The timeouts
//! in here are guards against hanging, far above the configured limits.

use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use weir_tests::server::Server;
use weir_tests::Scratch;

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
    let mut slow = Raw::connect(&server);
    slow.send_head("POST", "/v1/udfs/slow/versions/1", Some(&tenant), 4096, b"\0asm");
    let deadline = Instant::now() + GUARD;
    let (status, reply) = loop {
        let (status, reply) = server.call("GET", "/v1/udfs", &tenant, "", b"");
        // 200 until the slow request has reached the server.
        if status != 200 || Instant::now() > deadline {
            break (status, reply);
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
