//! The example pipelines of `deploy/pipelines`, run as the README runs
//! them, with their numbers checked against a from-scratch computation on
//! the same data files (`deploy/data`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use weir_tests::{oracle::windows_of, repo, Scratch};

/// Runs `deploy/pipelines/NAME.yaml` and returns its output file's lines.
fn run_example(name: &str, output: &str) -> anyhow::Result<Vec<String>> {
    let manifest = repo().join("deploy/pipelines").join(format!("{name}.yaml"));
    Scratch::new().weir(&["run", manifest.to_str().unwrap_or_default(), "-q"], None).ok()?;
    let text = std::fs::read_to_string(repo().join("weir-out").join(output))?;
    Ok(text.lines().map(str::to_string).collect())
}

fn data(name: &str) -> Vec<serde_json::Value> {
    let path: PathBuf = repo().join("deploy/data").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).expect("example data is JSON")).collect()
}

fn parse(lines: &[String]) -> Vec<serde_json::Value> {
    lines.iter().map(|l| serde_json::from_str(l).expect("JSON output")).collect()
}

fn words() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(repo().join("deploy/data/words.txt")).expect("words.txt").to_lowercase();
    let mut counts = BTreeMap::new();
    for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        *counts.entry(w.to_string()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn word_count() -> anyhow::Result<()> {
    let lines = run_example("word-count", "word-count.csv")?;
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for l in &lines {
        let (w, n) = l.rsplit_once(',').expect("word,count");
        let n: u64 = n.parse()?;
        let e = last.entry(w.to_string()).or_insert(0);
        *e = (*e).max(n);
    }
    let expected = words();
    assert_eq!(last, expected);
    assert_eq!(lines.len() as u64, expected.values().sum::<u64>(), "a running count per word occurrence");
    assert_eq!(expected["to"], 13);
    Ok(())
}

#[test]
fn word_count_over_a_socket_in_processing_time() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:9999").or_else(|_| TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    let manifest = std::fs::read_to_string(repo().join("deploy/pipelines/word-count-socket.yaml"))?
        .replace("port: 9999", &format!("port: {port}"));
    let s = Scratch::new();
    let path = s.write("p.yaml", manifest);
    let mut child = std::process::Command::new(weir_tests::weir_bin())
        .args(["run", path.to_str().unwrap_or_default(), "-q"])
        .env("WEIR_UDF_DIR", weir_tests::udf_dir())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let (mut conn, _) = listener.accept()?;
    conn.write_all(&std::fs::read(repo().join("deploy/data/words.txt"))?)?;
    drop(conn);
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out)?;
    assert!(child.wait()?.success());
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for l in out.lines() {
        let mut fields = l.split(',');
        let (w, _window_end, n) = (fields.next().unwrap_or_default(), fields.next(), fields.next().unwrap_or_default());
        *totals.entry(w.to_string()).or_insert(0) += n.parse::<u64>()?;
    }
    assert_eq!(totals, words(), "the 5 s windows together count every word once");
    Ok(())
}

/// `{"key","window_start","window_end",<name>}` lines as a map.
fn results(lines: &[String], name: &str) -> BTreeMap<(String, i64), f64> {
    parse(lines)
        .into_iter()
        .map(|o| {
            let key = o["key"].as_str().unwrap_or_default().to_string();
            ((key, o["window_end"].as_i64().unwrap_or_default()), o[name].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

#[test]
fn traffic_by_ip() -> anyhow::Result<()> {
    let got = results(&run_example("traffic-by-ip", "traffic-by-ip.ndjson")?, "sum");
    let mut want: BTreeMap<(String, i64), f64> = BTreeMap::new();
    for r in data("traffic.ndjson") {
        let (_, end) = windows_of(r["ts"].as_i64().unwrap_or_default(), 60_000, 60_000)[0];
        *want.entry((r["ip"].as_str().unwrap_or_default().to_string(), end)).or_default() +=
            r["bytes"].as_f64().unwrap_or_default();
    }
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn cpu_average() -> anyhow::Result<()> {
    let got = results(&run_example("cpu-average", "cpu-average.ndjson")?, "avg");
    let mut sums: BTreeMap<(String, i64), (f64, f64)> = BTreeMap::new();
    for r in data("metrics.ndjson") {
        let (_, end) = windows_of(r["ts"].as_i64().unwrap_or_default(), 300_000, 300_000)[0];
        let e = sums.entry((r["host"].as_str().unwrap_or_default().to_string(), end)).or_default();
        e.0 += r["cpu"].as_f64().unwrap_or_default();
        e.1 += 1.0;
    }
    assert_eq!(got.keys().collect::<Vec<_>>(), sums.keys().collect::<Vec<_>>());
    for (k, (sum, n)) in &sums {
        assert!((got[k] - sum / n).abs() < 1e-9, "{k:?}: {} vs {}", got[k], sum / n);
    }
    Ok(())
}

#[test]
fn memory_max() -> anyhow::Result<()> {
    let got = results(&run_example("memory-max", "memory-max.ndjson")?, "max");
    let mut want: BTreeMap<(String, i64), f64> = BTreeMap::new();
    for r in data("metrics.ndjson") {
        for (_, end) in windows_of(r["ts"].as_i64().unwrap_or_default(), 3_600_000, 60_000) {
            let e = want.entry((r["host"].as_str().unwrap_or_default().to_string(), end)).or_insert(f64::MIN);
            *e = e.max(r["mem"].as_f64().unwrap_or_default());
        }
    }
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn website_visits() -> anyhow::Result<()> {
    let got = results(&run_example("website-visits", "website-visits.ndjson")?, "count");
    let mut want: BTreeMap<(String, i64), f64> = BTreeMap::new();
    for r in data("visits.ndjson") {
        let (_, end) = windows_of(r["ts"].as_i64().unwrap_or_default(), 5_000, 5_000)[0];
        *want.entry((r["page"].as_str().unwrap_or_default().to_string(), end)).or_default() += 1.0;
    }
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn user_sessions() -> anyhow::Result<()> {
    let got = parse(&run_example("user-sessions", "user-sessions.ndjson")?);
    let mut by_user: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in data("visits.ndjson") {
        by_user
            .entry(r["user"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(r["ts"].as_i64().unwrap_or_default());
    }
    let mut want = Vec::new();
    for (user, mut ts) in by_user {
        ts.sort();
        let mut start = 0;
        for i in 1..=ts.len() {
            if i == ts.len() || ts[i] > ts[i - 1] + 2_000 {
                want.push((user.clone(), ts[i - 1] + 2_000, (i - start) as u64));
                start = i;
            }
        }
    }
    want.sort();
    let mut have: Vec<(String, i64, u64)> = got
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap_or_default().to_string(),
                o["window_end"].as_i64().unwrap_or_default(),
                o["count"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    have.sort();
    assert_eq!(have, want);
    assert!(want.iter().any(|(_, _, n)| *n > 2), "some sessions merge several visits");
    Ok(())
}

#[test]
fn anomaly_detector() -> anyhow::Result<()> {
    let alerts = parse(&run_example("anomaly-detector", "anomalies.ndjson")?);
    // Welford, per sensor, in timestamp order (the data is in order per sensor).
    let mut stats: BTreeMap<String, (u64, f64, f64, i64)> = BTreeMap::new();
    let mut want_anomalies = Vec::new();
    for r in data("sensors.ndjson") {
        let (sensor, v, ts) = (
            r["sensor"].as_str().unwrap_or_default().to_string(),
            r["value"].as_f64().unwrap_or_default(),
            r["ts"].as_i64().unwrap_or_default(),
        );
        let (n, mean, m2, _) = stats.get(&sensor).copied().unwrap_or((0, 0.0, 0.0, 0));
        if n >= 20 && (v - mean).abs() > 4.0 * (m2 / (n - 1) as f64).sqrt() {
            want_anomalies.push((sensor.clone(), ts));
        }
        let n1 = n + 1;
        let mean1 = mean + (v - mean) / n1 as f64;
        stats.insert(sensor, (n1, mean1, m2 + (v - mean) * (v - mean1), ts));
    }
    let mut got_anomalies: Vec<(String, i64)> = alerts
        .iter()
        .filter(|a| a["alert"] == "anomaly")
        .map(|a| (a["sensor"].as_str().unwrap_or_default().to_string(), a["ts"].as_i64().unwrap_or_default()))
        .collect();
    got_anomalies.sort();
    want_anomalies.sort();
    assert_eq!(got_anomalies, want_anomalies);
    assert_eq!(want_anomalies.len(), 3, "the three injected spikes");
    // s3 stops at 5 minutes: its silence timer fires mid-stream; the others' at the end of input.
    let silent: BTreeMap<String, i64> = alerts
        .iter()
        .filter(|a| a["alert"] == "silent")
        .map(|a| (a["sensor"].as_str().unwrap_or_default().to_string(), a["since"].as_i64().unwrap_or_default()))
        .collect();
    let want_silent: BTreeMap<String, i64> = stats.iter().map(|(s, st)| (s.clone(), st.3)).collect();
    assert_eq!(silent, want_silent);
    assert_eq!(silent["s3"], 1_700_000_299_003);
    Ok(())
}

#[test]
fn traffic_statistics_from_kafka_to_kafka() -> anyhow::Result<()> {
    use weir_tests::kafka::{brokers, consume, create_topic, unique};
    // The two example manifests, pointed at the test broker and topics of their own.
    let (events, stats) = (unique("traffic-events"), unique("traffic-statistics"));
    create_topic(&events, 4);
    create_topic(&stats, 4);
    let s = Scratch::new();
    let rewrite = |name: &str| -> anyhow::Result<std::path::PathBuf> {
        let text = std::fs::read_to_string(repo().join("deploy/pipelines").join(format!("{name}.yaml")))?
            .replace("topic: traffic-events", &format!("brokers: \"{}\", topic: {events}", brokers()))
            .replace("topic: traffic-statistics", &format!("brokers: \"{}\", topic: {stats}", brokers()))
            .replace("../data/", &format!("{}/", repo().join("deploy/data").display()))
            .replace("../../weir-out/traffic-statistics.checkpoints", "ckpt");
        Ok(s.write(&format!("{name}.yaml"), text))
    };
    for name in ["traffic-events", "traffic-statistics"] {
        s.weir(&["run", rewrite(name)?.to_str().unwrap_or_default(), "-q"], None).ok()?;
    }
    let mut want: BTreeMap<(String, i64), f64> = BTreeMap::new();
    for r in data("traffic.ndjson") {
        let (_, end) = windows_of(r["ts"].as_i64().unwrap_or_default(), 60_000, 60_000)[0];
        *want.entry((r["ip"].as_str().unwrap_or_default().to_string(), end)).or_default() +=
            r["bytes"].as_f64().unwrap_or_default();
    }
    let lines: Vec<String> =
        consume(&stats, want.len() + 1, std::time::Duration::from_secs(10)).into_iter().map(|r| r.value).collect();
    assert_eq!(lines.len(), want.len());
    assert_eq!(results(&lines, "sum"), want);
    Ok(())
}
