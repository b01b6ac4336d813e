//! Checkpoints and recovery with the real binary: SIGKILL at random moments,
//! stop-with-savepoint and rescale, damaged checkpoints, a checkpoint
//! directory that fails. After every interruption the visible output holds
//! only lines of the final result, never one twice; at the end it holds
//! exactly the result.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use weir_tests::oracle;
use weir_tests::{sorted_lines, Scratch};

/// A q5 (count per 10 s) or q7 (max price per 60 s sliding by 10 s) pipeline
/// over `source`, checkpointing into `ckpt/` every `interval`.
fn manifest(query: &str, source: &str, parallelism: u32, interval: &str, extra: &str) -> String {
    let (window, aggregate) = match query {
        "q5" => ("{ tumbling: 10s }", "{ builtin: count, output: csv }"),
        "q7" => ("{ sliding: { size: 60s, slide: 10s } }", "{ builtin: max, field: /price, output: csv }"),
        other => panic!("no query {other}"),
    };
    format!(
        "name: {query}\nparallelism: {parallelism}\nsource:\n  {source}\n  event_time: {{ field: /ts }}\n  watermark: {{ max_out_of_orderness: 2s }}\n\
         steps:\n  - key_by: {{ field: /auction }}\n  - window: {window}\n    aggregate: {aggregate}\n\
         sink:\n  file: {{ dir: out }}\ncheckpoint:\n  dir: ckpt\n  interval: {interval}\n{extra}"
    )
}

fn expected(query: &str, bids: &[String]) -> Vec<String> {
    match query {
        "q5" => oracle::windowed(bids, 10_000, 10_000, false),
        _ => oracle::windowed(bids, 60_000, 10_000, true),
    }
}

/// A small deterministic generator for kill moments; the seed is printed.
struct Dice(u64);

impl Dice {
    fn new() -> Dice {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        eprintln!("kill moments seeded with {seed}");
        Dice(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The newest complete checkpoint or savepoint id in `ckpt`.
fn newest_checkpoint(ckpt: &Path) -> Option<u64> {
    std::fs::read_dir(ckpt)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_prefix("chk-").or_else(|| name.strip_prefix("savepoint-"))?;
            id.parse().ok()
        })
        .max()
}

/// Waits until `ckpt` holds a checkpoint newer than `after` (true) or the
/// process has exited (false).
fn await_checkpoint(child: &mut Child, ckpt: &Path, after: Option<u64>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        if newest_checkpoint(ckpt) > after {
            return true;
        }
        assert!(Instant::now() < deadline, "no checkpoint within two minutes");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The visible output never holds a line that is not in the result, nor
/// one line more often than the result does.
fn assert_no_stray_lines(out: &Path, expected: &[String], when: &str) {
    let mut want: BTreeMap<&str, i64> = BTreeMap::new();
    for l in expected {
        *want.entry(l).or_default() += 1;
    }
    for l in sorted_lines(out).unwrap_or_default() {
        let n = want.get_mut(l.as_str()).map_or(-1, |n| {
            *n -= 1;
            *n
        });
        assert!(n >= 0, "{when}: visible line {l:?} is not in the result, or duplicated");
    }
}

fn stderr_of(s: &Scratch, name: &str) -> String {
    std::fs::read_to_string(s.join(name)).unwrap_or_default()
}

/// Runs `args` again and again, each time killed with SIGKILL at a random
/// moment after a new checkpoint completed, `kills` times; then to the end.
/// Returns how many runs continued from a checkpoint.
fn kill_repeatedly(s: &Scratch, args: &[&str], kills: usize, check: &dyn Fn(&str)) -> usize {
    let mut dice = Dice::new();
    let mut resumed = 0;
    for round in 0..=kills {
        let log = format!("run-{round}.err");
        let mut child = s.spawn(args, &log);
        if round < kills && await_checkpoint(&mut child, &s.join("ckpt"), newest_checkpoint(&s.join("ckpt"))) {
            std::thread::sleep(Duration::from_millis(dice.below(120)));
            child.kill().expect("SIGKILL");
            child.wait().expect("wait");
            check(&format!("after kill {round}"));
        } else {
            let status = child.wait().expect("wait");
            assert!(status.success(), "run {round} failed: {}", stderr_of(s, &log));
        }
        let err = stderr_of(s, &log);
        eprintln!("round {round}:\n{err}");
        if err.contains("weir: continuing from") {
            resumed += 1;
        }
        if round == kills || !err.is_empty() && err.contains("finished in") {
            break;
        }
    }
    resumed
}

#[test]
fn q5_over_a_file_survives_sigkill_at_random_moments() {
    let s = Scratch::new();
    let bids = oracle::bids(5, 1_000_000);
    s.write("bids.ndjson", bids.join("\n") + "\n");
    let want = expected("q5", &bids);
    let m = s.write("p.yaml", manifest("q5", "file: { path: bids.ndjson, format: json }", 2, "50ms", ""));
    let resumed = kill_repeatedly(&s, &["run", m.to_str().unwrap()], 4, &|when| {
        assert_no_stray_lines(&s.join("out"), &want, when)
    });
    assert!(resumed >= 2, "only {resumed} runs continued from a checkpoint");
    assert_eq!(sorted_lines(&s.join("out")).unwrap(), want);
    // The finished pipeline is not run again.
    let again = s.weir(&["run", m.to_str().unwrap()], None);
    assert_eq!(again.code(), Some(0), "{}", again.stderr());
    assert!(again.stderr().contains("had already finished"), "{}", again.stderr());
    assert_eq!(sorted_lines(&s.join("out")).unwrap(), want);
}

#[test]
fn q7_from_the_generator_survives_sigkill_with_rocksdb_and_memory_state() {
    for backend in ["rocksdb", "memory"] {
        let s = Scratch::new();
        let bids = oracle::bids(17, 400_000);
        let want = expected("q7", &bids);
        let state = format!("state: {{ backend: {backend} }}\n");
        let m = s.write("p.yaml", manifest("q7", "bids: { seed: 17, count: 400000 }", 2, "50ms", &state));
        let out = s.join("out");
        let resumed =
            kill_repeatedly(&s, &["run", m.to_str().unwrap()], 3, &|when| assert_no_stray_lines(&out, &want, when));
        assert!(resumed >= 1, "{backend}: no run continued from a checkpoint");
        assert_eq!(sorted_lines(&s.join("out")).unwrap(), want, "{backend}");
    }
}

/// Sends SIGINT (Ctrl-C) once a checkpoint exists; the run must stop at a savepoint.
fn stop_with_savepoint(s: &Scratch, args: &[&str], log: &str) {
    let mut child = s.spawn(args, log);
    assert!(
        await_checkpoint(&mut child, &s.join("ckpt"), newest_checkpoint(&s.join("ckpt"))),
        "finished before the stop: {}",
        stderr_of(s, log)
    );
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    let err = stderr_of(s, log);
    assert!(status.success(), "{err}");
    assert!(err.contains("stopped at") && err.contains("savepoint-"), "{err}");
}

#[test]
fn savepoints_restore_at_parallelism_one_two_one_and_into_another_backend() {
    // From the generator (one position per reader) and from a file (byte
    // ranges per reader: two ranges in flight become three readers' work).
    for from_file in [false, true] {
        let s = Scratch::new();
        let bids = oracle::bids(23, 1_500_000);
        let want = expected("q5", &bids);
        let source = if from_file {
            s.write("bids.ndjson", bids.join("\n") + "\n");
            "file: { path: bids.ndjson, format: json }"
        } else {
            "bids: { seed: 23, count: 1500000 }"
        };
        let m = s.write("p.yaml", manifest("q5", source, 1, "200ms", ""));
        let m = m.to_str().unwrap();
        stop_with_savepoint(&s, &["run", m], "p1.err");
        assert_no_stray_lines(&s.join("out"), &want, "at the first savepoint");
        stop_with_savepoint(&s, &["run", m, "--parallelism", "2"], "p2.err");
        assert!(stderr_of(&s, "p2.err").contains("continuing from"));
        assert_no_stray_lines(&s.join("out"), &want, "at the second savepoint");
        // The last leg also moves the state from RocksDB into memory.
        let memory = s.write("memory.yaml", manifest("q5", source, 1, "200ms", "state: { backend: memory }\n"));
        let last = s.weir(&["run", memory.to_str().unwrap(), "--parallelism", "1"], None).ok().unwrap();
        assert!(last.stderr().contains("continuing from") && last.stderr().contains("savepoint-"), "{}", last.stderr());
        assert_eq!(sorted_lines(&s.join("out")).unwrap(), want, "from a file: {from_file}");
    }
}

/// Runs until at least two checkpoints are complete, then kills the process.
fn run_and_kill_after_two_checkpoints(s: &Scratch, m: &str) -> Vec<u64> {
    let mut child = s.spawn(&["run", m], "first.err");
    let ckpt = s.join("ckpt");
    assert!(await_checkpoint(&mut child, &ckpt, None));
    let first = newest_checkpoint(&ckpt);
    assert!(await_checkpoint(&mut child, &ckpt, first), "{}", stderr_of(s, "first.err"));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut ids: Vec<u64> = std::fs::read_dir(&ckpt)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok()?.strip_prefix("chk-")?.parse().ok())
        .collect();
    ids.sort();
    assert!(ids.len() >= 2, "{ids:?}");
    ids
}

#[test]
fn damaged_checkpoints_are_skipped_with_a_reason() {
    // The newest checkpoint's metadata cut short; next, one of its state files
    // rewritten with a flipped byte; and a leftover unfinished checkpoint.
    for damage in ["truncated metadata", "corrupt state file", "missing metadata"] {
        let s = Scratch::new();
        let bids = oracle::bids(31, 600_000);
        let want = expected("q5", &bids);
        let m = s.write("p.yaml", manifest("q5", "bids: { seed: 31, count: 600000 }", 2, "50ms", ""));
        let m = m.to_str().unwrap();
        let ids = run_and_kill_after_two_checkpoints(&s, m);
        let newest = s.join(&format!("ckpt/chk-{:010}", ids[ids.len() - 1]));
        let older = s.join(&format!("ckpt/chk-{:010}", ids[ids.len() - 2]));
        let why = match damage {
            "truncated metadata" => {
                let meta = newest.join("_metadata");
                let bytes = std::fs::read(&meta).unwrap();
                std::fs::write(&meta, &bytes[..bytes.len() / 2]).unwrap();
                "_metadata"
            }
            "corrupt state file" => {
                // A file of a subtask's state, rewritten (not changed in place:
                // table files are hard links shared with older checkpoints).
                let sub =
                    std::fs::read_dir(&newest).unwrap().flatten().find(|e| e.path().is_dir()).expect("a state dir");
                let file = std::fs::read_dir(sub.path())
                    .unwrap()
                    .flatten()
                    .filter(|e| std::fs::metadata(e.path()).unwrap().len() > 0)
                    .max_by_key(|e| std::fs::metadata(e.path()).unwrap().len())
                    .unwrap()
                    .path();
                let mut bytes = std::fs::read(&file).unwrap();
                let at = bytes.len() / 2;
                bytes[at] ^= 0x5a;
                std::fs::remove_file(&file).unwrap();
                std::fs::write(&file, &bytes).unwrap();
                "checksum mismatch"
            }
            _ => {
                std::fs::remove_file(newest.join("_metadata")).unwrap();
                "_metadata"
            }
        };
        std::fs::create_dir_all(s.join("ckpt/chk-9999999999.inprogress/s1-t0-step2")).unwrap();
        let run = s.weir(&["run", m], None).ok().unwrap();
        let err = run.stderr();
        assert!(err.contains(&format!("skipping {}: ", newest.display())) && err.contains(why), "{damage}: {err}");
        assert!(err.contains(&format!("continuing from {}", older.display())), "{damage}: {err}");
        assert_eq!(sorted_lines(&s.join("out")).unwrap(), want, "{damage}");
    }
}

#[test]
fn a_checkpoint_directory_that_becomes_unusable_fails_checkpoints_not_the_data() {
    let s = Scratch::new();
    let bids = oracle::bids(41, 1_000_000);
    let want = expected("q5", &bids);
    let state_dir = s.join("state");
    let extra = format!("state: {{ backend: rocksdb, dir: {} }}\n", state_dir.display());
    let m = s.write("p.yaml", manifest("q5", "bids: { seed: 41, count: 1000000 }", 2, "20ms", &extra));
    let mut child = s.spawn(&["run", m.to_str().unwrap()], "run.err");
    assert!(await_checkpoint(&mut child, &s.join("ckpt"), None), "{}", stderr_of(&s, "run.err"));
    // The directory is taken away and a file put in its place.
    std::fs::rename(s.join("ckpt"), s.join("ckpt.moved")).unwrap();
    std::fs::write(s.join("ckpt"), b"in the way").unwrap();
    let status = child.wait().unwrap();
    let err = stderr_of(&s, "run.err");
    assert!(status.success(), "{err}");
    assert!(err.contains("cannot write the final checkpoint") && err.contains("output is complete"), "{err}");
    assert!(err.contains("failed"), "{err}");
    assert_eq!(sorted_lines(&s.join("out")).unwrap(), want);
}

#[test]
fn a_full_disk_fails_checkpoints_not_the_data() {
    // A 256 KiB tmpfs as the checkpoint directory, mounted in a user and
    // mount namespace of the run's own.
    if !Command::new("unshare").args(["-rm", "true"]).status().is_ok_and(|s| s.success()) {
        eprintln!(
            "SKIPPED: this machine cannot create a mount namespace (unshare -rm), so no small file system to fill"
        );
        return;
    }
    let s = Scratch::new();
    let bids = oracle::bids(43, 500_000);
    let want = expected("q7", &bids);
    std::fs::create_dir_all(s.join("ckpt")).unwrap();
    let extra = format!("state: {{ backend: rocksdb, dir: {} }}\n", s.join("state").display());
    let m = s.write("p.yaml", manifest("q7", "bids: { seed: 43, count: 500000 }", 2, "20ms", &extra));
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=256k tmpfs ckpt && exec \"$0\" run \"$1\""])
        .arg(weir_tests::weir_bin())
        .arg(&m)
        .current_dir(s.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert!(out.status.success(), "{err}");
    assert!(err.contains("No space left on device") || err.contains("failed"), "{err}");
    assert!(!err.contains(" 0 failed"), "no checkpoint failed: the disk never filled\n{err}");
    assert_eq!(sorted_lines(&s.join("out")).unwrap(), want);
}

#[test]
fn one_process_per_checkpoint_directory() {
    let s = Scratch::new();
    let m = s.write("p.yaml", manifest("q5", "bids: { seed: 3, count: 20000000 }", 1, "1s", ""));
    let mut first = s.spawn(&["run", m.to_str().unwrap()], "first.err");
    assert!(await_checkpoint(&mut first, &s.join("ckpt"), None));
    let second = s.weir(&["run", m.to_str().unwrap()], None);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_ne!(second.code(), Some(0));
    assert!(second.stderr().contains("another weir process is running"), "{}", second.stderr());
}

/// Sensor readings in timestamp order: `sensors` sensors, one reading per
/// millisecond in turn, noise around 50 with a spike now and then, and each
/// sensor silent once for 45 s (longer than the detector's 30 s).
fn sensor_readings(n: usize, sensors: usize) -> Vec<String> {
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut lines = Vec::with_capacity(n);
    let mut ts = 1_700_000_000_000i64;
    while lines.len() < n {
        ts += 1;
        let s = (ts as usize) % sensors;
        let silent_from = 1_700_000_000_000 + 60_000 + s as i64 * 7_000;
        if (silent_from..silent_from + 45_000).contains(&ts) {
            continue;
        }
        let spike = next() % 20_000 == 0;
        let value = if spike { 500.0 } else { 40.0 + (next() % 2000) as f64 / 100.0 };
        lines.push(format!("{{\"sensor\":\"s{s}\",\"value\":{value},\"ts\":{ts}}}"));
    }
    lines
}

/// Anomalies (sensor, ts) and silences (sensor, since), sorted.
type Alerts = (Vec<(String, i64)>, Vec<(String, i64)>);

/// The anomalies (sensor, ts) and silences (sensor, since) the detector must
/// report, from scratch (Welford's running variance, per sensor in order).
fn detector_oracle(lines: &[String]) -> Alerts {
    let mut stats: BTreeMap<String, (u64, f64, f64, i64)> = BTreeMap::new();
    let (mut anomalies, mut silences) = (Vec::new(), Vec::new());
    for l in lines {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        let (sensor, v, ts) =
            (r["sensor"].as_str().unwrap().to_string(), r["value"].as_f64().unwrap(), r["ts"].as_i64().unwrap());
        let (n, mean, m2, last) = stats.get(&sensor).copied().unwrap_or((0, 0.0, 0.0, i64::MIN));
        if n >= 20 && (v - mean).abs() > 4.0 * (m2 / (n - 1) as f64).sqrt() {
            anomalies.push((sensor.clone(), ts));
        }
        if last != i64::MIN && ts - last > 31_001 {
            silences.push((sensor.clone(), last));
        }
        let n1 = n + 1;
        let mean1 = mean + (v - mean) / n1 as f64;
        stats.insert(sensor, (n1, mean1, m2 + (v - mean) * (v - mean1), ts));
    }
    silences.extend(stats.into_iter().map(|(s, st)| (s, st.3)));
    anomalies.sort();
    silences.sort();
    (anomalies, silences)
}

fn alerts_of(lines: &[String]) -> Alerts {
    let (mut anomalies, mut silences) = (Vec::new(), Vec::new());
    for l in lines {
        let a: serde_json::Value = serde_json::from_str(l).unwrap();
        let sensor = a["sensor"].as_str().unwrap().to_string();
        match a["alert"].as_str().unwrap() {
            "anomaly" => anomalies.push((sensor, a["ts"].as_i64().unwrap())),
            _ => silences.push((sensor, a["since"].as_i64().unwrap())),
        }
    }
    anomalies.sort();
    silences.sort();
    (anomalies, silences)
}

#[test]
fn a_process_function_keeps_its_state_and_timers_across_sigkill() {
    let s = Scratch::new();
    let readings = sensor_readings(600_000, 40);
    s.write("sensors.ndjson", readings.join("\n") + "\n");
    let (anomalies, silences) = detector_oracle(&readings);
    assert!(
        anomalies.len() >= 10 && silences.len() == 80,
        "{} anomalies, {} silences",
        anomalies.len(),
        silences.len()
    );
    // One reader and one subtask keep every sensor's readings in order.
    let m = s.write(
        "p.yaml",
        "name: detector\nparallelism: 1\nsource:\n  file: { path: sensors.ndjson, format: json }\n  \
         event_time: { field: /ts }\n  watermark: { max_out_of_orderness: 1s }\n\
         steps:\n  - key_by: { field: /sensor }\n  \
         - process: { udf: anomaly@1, params: { threshold: 4, warmup: 20, silence_ms: 30000 } }\n\
         sink:\n  file: { dir: out }\ncheckpoint:\n  dir: ckpt\n  interval: 20ms\n",
    );
    let out = s.join("out");
    let (all_anomalies, all_silences) = (anomalies.clone(), silences.clone());
    let resumed = kill_repeatedly(&s, &["run", m.to_str().unwrap()], 4, &|when| {
        // What is visible is part of the result, each alert once.
        let visible = sorted_lines(&out).unwrap_or_default();
        let mut unique = visible.clone();
        unique.dedup();
        assert_eq!(unique.len(), visible.len(), "{when}: an alert appears twice");
        let (a, s) = alerts_of(&visible);
        assert!(
            a.iter().all(|x| all_anomalies.contains(x)) && s.iter().all(|x| all_silences.contains(x)),
            "{when}: {a:?} {s:?}"
        );
    });
    assert!(resumed >= 2, "only {resumed} runs continued from a checkpoint");
    let got = sorted_lines(&s.join("out")).unwrap();
    assert_eq!(alerts_of(&got), (anomalies, silences));
    let mut unique = got.clone();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "an alert appears twice");
}

#[test]
fn a_savepoint_on_request_and_a_rerun_from_it() {
    let s = Scratch::new();
    let bids = oracle::bids(61, 3_000_000);
    let want = expected("q5", &bids);
    let m = s.write("p.yaml", manifest("q5", "bids: { seed: 61, count: 3000000 }", 2, "100ms", ""));
    let m = m.to_str().unwrap();
    let mut child = s.spawn(&["run", m], "run.err");
    assert!(await_checkpoint(&mut child, &s.join("ckpt"), None), "{}", stderr_of(&s, "run.err"));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-USR1", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    let err = stderr_of(&s, "run.err");
    assert!(status.success(), "{err}");
    let savepoint = err
        .lines()
        .find_map(|l| l.strip_prefix("weir: savepoint "))
        .unwrap_or_else(|| panic!("no savepoint taken: {err}"))
        .to_string();
    assert!(Path::new(&savepoint).join("_metadata").exists(), "{savepoint} was pruned");
    assert_eq!(sorted_lines(&s.join("out")).unwrap(), want);
    // Going back to the savepoint withdraws what was committed after it and
    // produces it again.
    let again = s.weir(&["run", m, "--from", &savepoint], None).ok().unwrap();
    assert!(again.stderr().contains(&format!("continuing from {savepoint}")), "{}", again.stderr());
    assert_eq!(sorted_lines(&s.join("out")).unwrap(), want);
}
