//! The API client: `weir udf upload|list|delete`, `weir pipeline ...`,
//! `weir tenant create` — thin wrappers over the REST API, printing tables
//! (or the JSON with `--json`).

use super::{EXIT_FAILED, EXIT_INVALID};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the server is and who is asking.
pub(super) struct Client {
    pub server: String,
    pub token: Option<String>,
    pub json: bool,
}

/// A request's outcome: status and JSON body.
type Reply = Result<(u16, Value), String>;

impl Client {
    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    fn finish(&self, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut resp = r.map_err(|e| format!("cannot reach {}: {e}", self.server))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|e| format!("reading the response: {e}"))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, body))
    }

    fn send(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let agent = Self::agent();
        let url = self.url(path);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}")).unwrap_or_default();
        let r = match method {
            "GET" => agent.get(&url).header("Authorization", &auth).call(),
            "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
            "PUT" => agent.put(&url).header("Authorization", &auth).content_type(content_type).send(&body[..]),
            "PATCH" => agent.patch(&url).header("Authorization", &auth).content_type(content_type).send(&body[..]),
            _ => agent.post(&url).header("Authorization", &auth).content_type(content_type).send(&body[..]),
        };
        self.finish(r)
    }

    /// Follows an operation a `202` started until it is over: its result
    /// as if the call had answered it (`200`), or its error with the status
    /// a synchronous call would have had. Other replies pass unchanged.
    fn until_done(&self, reply: Reply) -> Reply {
        let (status, op) = reply?;
        if status != 202 {
            return Ok((status, op));
        }
        let Some(id) = op["id"].as_str() else { return Err(format!("a 202 without an operation id: {op}")) };
        let mut wait = Duration::from_millis(50);
        loop {
            let (status, op) = self.send("GET", &format!("/v1/operations/{id}"), "", Vec::new())?;
            if status != 200 {
                return Ok((status, op));
            }
            match op["state"].as_str() {
                Some("done") => return Ok((200, op["result"].clone())),
                Some("failed") => {
                    let e = &op["error"];
                    return Ok((
                        e["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                        json!({ "error": { "code": e["code"], "message": e["message"] } }),
                    ));
                }
                _ => {}
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }

    /// Posts records under `key`, retrying (up to `attempts` in all) when
    /// the post may not have been taken: no answer, 429, 503 or another 5xx,
    /// waiting the server's `Retry-After` (else 1, 2, 4 ... s). The key makes
    /// a retry of a post that did arrive harmless.
    fn post_records(&self, id: &str, key: &str, body: &[u8], attempts: u32) -> Reply {
        let url = self.url(&format!("/v1/pipelines/{id}/records"));
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}")).unwrap_or_default();
        let mut attempt = 1;
        loop {
            let r = Self::agent()
                .post(&url)
                .header("Authorization", &auth)
                .header("Idempotency-Key", key)
                .content_type("text/plain")
                .send(body);
            let retry_after = match &r {
                Ok(resp) if matches!(resp.status().as_u16(), 429 | 500..=599) => Some(
                    resp.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .unwrap_or(1 << (attempt - 1).min(5)),
                ),
                Ok(_) => None,
                Err(_) => Some(1 << (attempt - 1).min(5)),
            };
            match retry_after {
                Some(wait) if attempt < attempts => {
                    eprintln!("weir: the post was not taken (attempt {attempt} of {attempts}); retrying in {wait} s");
                    std::thread::sleep(Duration::from_secs(wait.min(60)));
                    attempt += 1;
                }
                _ => return self.finish(r),
            }
        }
    }

    /// Prints the reply (a table via `table`, or JSON) and returns the exit code.
    fn show(&self, reply: Reply, table: impl FnOnce(&Value)) -> ExitCode {
        match reply {
            Err(e) => {
                eprintln!("weir: {e}");
                ExitCode::from(EXIT_FAILED)
            }
            Ok((status, body)) if status >= 400 => {
                if self.json {
                    println!("{body}");
                }
                let message = body["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| body.to_string());
                eprintln!("weir: {status}: {message}");
                ExitCode::from(if status < 500 { EXIT_INVALID } else { EXIT_FAILED })
            }
            Ok((_, body)) => {
                if self.json {
                    println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
                } else {
                    table(&body);
                }
                ExitCode::SUCCESS
            }
        }
    }
}

/// Shows elapsed time on a terminal while a slow request runs.
fn with_progress<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let done = Arc::new(AtomicBool::new(false));
    let ticker = std::io::stderr().is_terminal().then(|| {
        let (done, what) = (done.clone(), what.to_string());
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                eprint!("\r{what} ({:.0} s)", start.elapsed().as_secs_f64());
            }
            eprint!("\r\x1b[K");
        })
    });
    let out = f();
    done.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    out
}

fn read_input(file: &str) -> Result<Vec<u8>, String> {
    if file == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))
}

fn fail(e: String) -> ExitCode {
    eprintln!("weir: {e}");
    ExitCode::from(EXIT_INVALID)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pipeline_table(list: &[Value]) {
    println!(
        "{:<16} {:<24} {:<9} {:>12} {:>12} {:>10} {:>10}",
        "ID", "NAME", "STATUS", "IN", "OUT", "LAG", "CHECKPOINT"
    );
    for p in list {
        let steps = p["steps"].as_array().cloned().unwrap_or_default();
        let first = steps.first().map(|s| s["records_in"].as_u64().unwrap_or(0)).unwrap_or(0);
        let last = steps.last().map(|s| s["records_in"].as_u64().unwrap_or(0)).unwrap_or(0);
        let lag = p["watermark_lag_ms"].as_i64().map_or("-".to_string(), |l| format!("{:.1}s", l as f64 / 1e3));
        println!(
            "{:<16} {:<24} {:<9} {:>12} {:>12} {:>10} {:>10}",
            s(&p["id"]),
            s(&p["name"]),
            s(&p["status"]),
            first,
            last,
            lag,
            s(&p["checkpoints"]["latest_id"])
        );
    }
}

fn pipeline_detail(p: &Value) {
    pipeline_table(std::slice::from_ref(p));
    if let Some(e) = p["error"].as_str() {
        println!("error: {e}");
    }
    println!();
    println!("{:<48} {:>12} {:>12} {:>8} {:>8} {:>8}", "STEP", "IN", "OUT", "DEAD", "ERRORS", "µs/CALL");
    for st in p["steps"].as_array().into_iter().flatten() {
        let calls = st["calls"].as_u64().unwrap_or(0);
        let per_call = if calls > 0 {
            format!("{:.0}", st["call_wall_ns"].as_u64().unwrap_or(0) as f64 / calls as f64 / 1e3)
        } else {
            "-".into()
        };
        println!(
            "{:<48} {:>12} {:>12} {:>8} {:>8} {:>8}",
            s(&st["label"]),
            s(&st["records_in"]),
            s(&st["records_out"]),
            s(&st["dead_lettered"]),
            s(&st["failed_calls"]),
            per_call
        );
    }
    for sw in p["swaps"].as_array().into_iter().flatten() {
        swap_line(sw);
    }
}

fn swap_line(sw: &Value) {
    let at = sw["barrier"].as_u64().map_or(String::new(), |b| format!(" at checkpoint {b}"));
    let why = sw["reason"].as_str().map_or(String::new(), |r| format!(": {r}"));
    println!(
        "swap step {}: {} -> {}: {}{at} in {} ms{why}",
        s(&sw["step"]),
        s(&sw["from"]),
        s(&sw["to"]),
        s(&sw["outcome"]),
        s(&sw["took_ms"])
    );
}

/// `weir udf upload NAME@VERSION FILE`.
pub(super) fn udf_upload(c: &Client, udf: &str, file: &str) -> ExitCode {
    let Some((name, version)) = udf.split_once('@') else { return fail(format!("`{udf}`: expected NAME@VERSION")) };
    let bytes = match read_input(file) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let what = format!("weir: uploading and compiling {udf} ({} KiB)", bytes.len() >> 10);
    let reply = with_progress(&what, || {
        c.send("POST", &format!("/v1/udfs/{name}/versions/{version}"), "application/wasm", bytes)
    });
    c.show(reply, |b| {
        println!(
            "{}@{}: {} bytes, serves {}, compiled in {} ms",
            s(&b["name"]),
            s(&b["version"]),
            s(&b["size"]),
            s(&b["kinds"]),
            s(&b["compile_ms"])
        );
    })
}

/// `weir udf list`.
pub(super) fn udf_list(c: &Client) -> ExitCode {
    c.show(c.send("GET", "/v1/udfs", "", Vec::new()), |b| {
        println!("{:<32} {:<12} {:>10} {:<24} SHA256", "NAME", "VERSION", "BYTES", "KINDS");
        for u in b["udfs"].as_array().into_iter().flatten() {
            let sha = s(&u["sha256"]);
            println!(
                "{:<32} {:<12} {:>10} {:<24} {}",
                s(&u["name"]),
                s(&u["version"]),
                s(&u["size"]),
                s(&u["kinds"]),
                &sha[..sha.len().min(12)]
            );
        }
    })
}

/// `weir udf delete NAME@VERSION`.
pub(super) fn udf_delete(c: &Client, udf: &str) -> ExitCode {
    let Some((name, version)) = udf.split_once('@') else { return fail(format!("`{udf}`: expected NAME@VERSION")) };
    c.show(c.send("DELETE", &format!("/v1/udfs/{name}/versions/{version}"), "", Vec::new()), |_| {
        println!("deleted {udf}")
    })
}

/// `weir tenant create NAME`.
pub(super) fn tenant_create(c: &Client, name: &str, quotas: Value) -> ExitCode {
    let body = json!({ "name": name, "quotas": quotas }).to_string().into_bytes();
    c.show(c.send("POST", "/v1/tenants", "application/json", body), |b| {
        println!(
            "tenant {} ({})\ntoken: {}\n(the token is shown only now; export WEIR_TOKEN=...)",
            s(&b["name"]),
            s(&b["id"]),
            s(&b["token"])
        );
    })
}

/// `weir tenant update NAME --max-...`: changes only the quotas given.
pub(super) fn tenant_update(c: &Client, name: &str, quotas: serde_json::Map<String, Value>) -> ExitCode {
    let body = json!({ "quotas": quotas }).to_string().into_bytes();
    c.show(c.send("PATCH", &format!("/v1/tenants/{name}"), "application/json", body), |b| {
        println!("tenant {} ({}): {}", s(&b["name"]), s(&b["id"]), b["quotas"]);
    })
}

/// The `weir pipeline` subcommands.
pub(super) enum PipelineAction {
    Create(String),
    List,
    Get(String),
    Stop(String),
    Resume(String),
    Delete(String),
    Savepoint(String),
    Swap { id: String, step: String, udf: String, probation_ms: Option<u64>, max_failures: Option<u64> },
    Send { id: String, file: String, key: Option<String>, attempts: u32 },
    Output { id: String, limit: usize },
}

/// Runs a `weir pipeline` subcommand.
pub(super) fn pipeline(c: &Client, action: PipelineAction) -> ExitCode {
    use PipelineAction::*;
    match action {
        Create(file) => match read_input(&file) {
            Err(e) => fail(e),
            Ok(text) => c.show(c.send("POST", "/v1/pipelines", "application/yaml", text), pipeline_detail),
        },
        List => c.show(c.send("GET", "/v1/pipelines", "", Vec::new()), |b| {
            pipeline_table(b["pipelines"].as_array().map(Vec::as_slice).unwrap_or_default())
        }),
        Get(id) => c.show(c.send("GET", &format!("/v1/pipelines/{id}"), "", Vec::new()), pipeline_detail),
        Stop(id) => {
            let reply = with_progress("weir: stopping at a savepoint", || {
                c.until_done(c.send("POST", &format!("/v1/pipelines/{id}/stop"), "", Vec::new()))
            });
            c.show(reply, |b| {
                let at = b["savepoint"].as_str().map_or(String::new(), |sp| format!(" at {sp}"));
                println!("pipeline {}: {}{at}", s(&b["pipeline"]), s(&b["status"]));
            })
        }
        Resume(id) => c.show(c.send("POST", &format!("/v1/pipelines/{id}/resume"), "", Vec::new()), pipeline_detail),
        Delete(id) => {
            c.show(c.send("DELETE", &format!("/v1/pipelines/{id}"), "", Vec::new()), |_| println!("deleted {id}"))
        }
        Savepoint(id) => {
            let reply = with_progress("weir: taking a savepoint", || {
                c.until_done(c.send("POST", &format!("/v1/pipelines/{id}/savepoints"), "", Vec::new()))
            });
            c.show(reply, |b| println!("savepoint {}", s(&b["savepoint"])))
        }
        Swap { id, step, udf, probation_ms, max_failures } => {
            let body = json!({ "udf": udf, "probation_ms": probation_ms, "max_failures": max_failures })
                .to_string()
                .into_bytes();
            let reply = with_progress("weir: swapping at the next checkpoint barrier", || {
                c.until_done(c.send("PUT", &format!("/v1/pipelines/{id}/steps/{step}"), "application/json", body))
            });
            let rolled_back = matches!(&reply, Ok((200, b)) if b["outcome"] == "rolled_back");
            let code = c.show(reply, swap_line);
            if rolled_back {
                ExitCode::from(EXIT_FAILED)
            } else {
                code
            }
        }
        Send { id, file, key, attempts } => match read_input(&file) {
            Err(e) => fail(e),
            Ok(body) => {
                let key = match key.map_or_else(|| crate::control::random_hex(16).map_err(|e| e.message), Ok) {
                    Ok(k) => k,
                    Err(e) => return fail(e),
                };
                c.show(c.post_records(&id, &key, &body, attempts.max(1)), |b| {
                    println!("accepted {}", s(&b["accepted"]))
                })
            }
        },
        Output { id, limit } => {
            c.show(c.send("GET", &format!("/v1/pipelines/{id}/output?limit={limit}"), "", Vec::new()), |b| {
                for l in b["lines"].as_array().into_iter().flatten() {
                    println!("{}", s(l));
                }
            })
        }
    }
}
