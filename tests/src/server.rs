//! A real `weir serve` process on a free port, and a small JSON client.

use crate::weir_bin;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many of the server's last log lines a failure report shows.
const LOG_TAIL: usize = 100;

/// The admin token the test servers use.
pub const ADMIN: &str = "test-admin-token";

/// The answer to [`Server::post_records`].
#[derive(Debug)]
pub struct Posted {
    /// Its status.
    pub status: u16,
    /// Its JSON body.
    pub reply: Value,
    /// `Idempotent-Replayed: true`: a retry, nothing appended again.
    pub replayed: bool,
    /// Its `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

/// A running server.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    data_dir: PathBuf,
    /// The server's last log lines, for failure reports.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    /// Starts `weir serve` on port 0 with `data_dir`; waits until it listens.
    pub fn start(data_dir: &Path) -> Result<Server> {
        Server::start_with(data_dir, &[])
    }

    /// Starts `weir serve` with more flags (`["--body-timeout", "1s"]`).
    pub fn start_with(data_dir: &Path, flags: &[&str]) -> Result<Server> {
        let mut child = Command::new(weir_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(flags)
            .env("WEIR_ADMIN_TOKEN", ADMIN)
            .env("WEIR_CACHE_DIR", "")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting weir serve")?;
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let url = loop {
            let Some(line) = lines.next() else {
                let status = child.wait()?;
                bail!("weir serve exited ({status}) before listening");
            };
            let line = line?;
            if let Some(rest) = line.split("serving on ").nth(1) {
                break rest.split_whitespace().next().context("address")?.to_string();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL)));
        let tail = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if std::env::var_os("WEIR_TEST_SERVER_LOG").is_some() {
                    eprintln!("[serve] {line}");
                }
                let mut tail = tail.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if tail.len() == LOG_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Ok(Server { child, url, data_dir: data_dir.to_path_buf(), log })
    }

    /// The `/metrics` lines about pipeline `id` (for failure reports).
    pub fn metrics(&self, id: &str) -> String {
        let (status, text) = self.call("GET", "/metrics", ADMIN, "", b"");
        let text = text.as_str().map(str::to_string).unwrap_or_else(|| text.to_string());
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(id)).collect();
        format!("its metrics (GET /metrics: {status}):\n{}", lines.join("\n"))
    }

    /// The server's last log lines, one per line.
    pub fn log_tail(&self) -> String {
        let tail = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        format!("the server's last {} log lines:\n{}", tail.len(), Vec::from(tail.clone()).join("\n"))
    }

    /// Kills the server with SIGKILL (no shutdown).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGTERM and waits (pipelines stop at savepoints).
    pub fn terminate(&mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM and waits for the exit, at most `guard` (then kills
    /// the server and fails).
    pub fn terminate_within(&mut self, guard: Duration) -> Result<std::process::ExitStatus> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        let deadline = Instant::now() + guard;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill();
                bail!("weir serve was still running {guard:?} after SIGTERM\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, for raw sockets.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty).
    pub fn call(&self, method: &str, path: &str, token: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        self.call_within(Duration::from_secs(120), method, path, token, content_type, body)
    }

    /// [`Server::call`] that panics if no answer comes within `patience`.
    pub fn call_within(
        &self,
        patience: Duration,
        method: &str,
        path: &str,
        token: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(patience)).build().into();
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {token}");
        let r = match method {
            "GET" => agent.get(&url).header("Authorization", &auth).call(),
            "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
            "PUT" => agent.put(&url).header("Authorization", &auth).content_type(content_type).send(body),
            "PATCH" => agent.patch(&url).header("Authorization", &auth).content_type(content_type).send(body),
            _ => agent.post(&url).header("Authorization", &auth).content_type(content_type).send(body),
        };
        let mut resp = r.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let json = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// [`Server::call`] for a stop, savepoint or swap, then [`Server::until_done`].
    pub fn call_until_done(
        &self,
        method: &str,
        path: &str,
        token: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        self.until_done(token, self.call(method, path, token, content_type, body))
    }

    /// A `202` names a running operation: polls it until it is over and
    /// returns `(200, result)` or the failure's status with `{"error":
    /// ...}`, as the synchronous call used to. Other answers pass unchanged.
    pub fn until_done(&self, token: &str, (status, op): (u16, Value)) -> (u16, Value) {
        if status != 202 {
            return (status, op);
        }
        assert_eq!(op["state"], "running", "a 202 answers with the running operation: {op}");
        let id = op["id"].as_str().unwrap_or_else(|| panic!("202 without an operation: {op}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let op = self.get(&format!("/v1/operations/{id}"), token);
            match op["state"].as_str() {
                Some("done") => return (200, op["result"].clone()),
                Some("failed") => {
                    let e = &op["error"];
                    let status = e["status"].as_u64().expect("an error status") as u16;
                    return (status, serde_json::json!({ "error": { "code": e["code"], "message": e["message"] } }));
                }
                Some("running") => assert!(std::time::Instant::now() < deadline, "still running: {op}"),
                _ => panic!("an operation in no known state: {op}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET` expecting 200.
    pub fn get(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.call("GET", path, token, "", b"");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Creates a tenant; returns its token.
    pub fn tenant(&self, name: &str, quotas: Value) -> String {
        let body = serde_json::json!({ "name": name, "quotas": quotas }).to_string();
        let (status, reply) = self.call("POST", "/v1/tenants", ADMIN, "application/json", body.as_bytes());
        assert_eq!(status, 201, "{reply}");
        reply["token"].as_str().expect("token").to_string()
    }

    /// Uploads `file` as `udf` (`name@version`), expecting 201.
    pub fn upload(&self, token: &str, udf: &str, file: &Path) {
        let (name, version) = udf.split_once('@').expect("name@version");
        let bytes = std::fs::read(file).expect("component");
        let (status, reply) =
            self.call("POST", &format!("/v1/udfs/{name}/versions/{version}"), token, "application/wasm", &bytes);
        assert_eq!(status, 201, "upload {udf}: {reply}");
    }

    /// Creates a pipeline; returns its id.
    pub fn pipeline(&self, token: &str, manifest: &str) -> String {
        let (status, reply) = self.call("POST", "/v1/pipelines", token, "application/yaml", manifest.as_bytes());
        assert_eq!(status, 201, "create: {reply}");
        reply["id"].as_str().expect("id").to_string()
    }

    /// Posts records (one per line).
    pub fn send(&self, token: &str, id: &str, lines: &[String]) {
        let body = lines.join("\n");
        let (status, reply) =
            self.call("POST", &format!("/v1/pipelines/{id}/records"), token, "text/plain", body.as_bytes());
        assert_eq!(status, 200, "send: {reply}");
        assert_eq!(reply["accepted"].as_u64(), Some(lines.len() as u64));
    }

    /// Posts `lines` to pipeline `id`, with an `Idempotency-Key` if `key`
    /// is given; returns what came back, headers included.
    pub fn post_records(&self, token: &str, id: &str, key: Option<&str>, lines: &[String]) -> Posted {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let url = format!("{}/v1/pipelines/{id}/records", self.url);
        let mut req = agent.post(&url).header("Authorization", &format!("Bearer {token}"));
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let mut resp = req
            .content_type("text/plain")
            .send(lines.join("\n").as_bytes())
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let replayed = header("idempotent-replayed").is_some_and(|v| v == "true");
        let retry_after = header("retry-after").and_then(|v| v.parse().ok());
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let reply = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Posted { status, reply, replayed, retry_after }
    }

    /// The committed output of pipeline `id`, per part file (`part-S-…` → subtask S), in commit order.
    pub fn output_by_subtask(&self, id: &str) -> Vec<Vec<String>> {
        let dir = self.data_dir.join("pipelines").join(id).join("output");
        let mut files: Vec<(u32, u64, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(rest) = name.strip_prefix("part-").and_then(|r| r.strip_suffix(".txt")) else { continue };
            let (sub, ckpt) = rest.split_once('-').expect("part-S-ID");
            let order = if ckpt == "end" { u64::MAX } else { ckpt.parse().expect("checkpoint id") };
            files.push((sub.parse().expect("subtask"), order, e.path()));
        }
        files.sort();
        let mut out: Vec<Vec<String>> = Vec::new();
        for (sub, _, path) in files {
            while out.len() <= sub as usize {
                out.push(Vec::new());
            }
            let text = std::fs::read_to_string(&path).expect("output");
            out[sub as usize].extend(text.lines().map(str::to_string));
        }
        out
    }

    /// Waits until `done(output lines)` or the timeout; returns the lines.
    pub fn wait_output(&self, id: &str, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let all: Vec<String> = self.output_by_subtask(id).concat();
            if done(&all) {
                return Ok(all);
            }
            if Instant::now() > deadline {
                bail!(
                    "pipeline {id}: output incomplete after {timeout:?}: {} lines\n{}\n{}",
                    all.len(),
                    self.metrics(id),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
