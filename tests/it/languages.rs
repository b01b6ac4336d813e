//! The example functions in every guest language (Rust, C, Python,
//! JavaScript), built from source by `scripts/build-udfs`, run in the same
//! pipelines: q1 and q2 equal the from-scratch reference, and the flat map,
//! the window aggregator and the keyed processor give the same results in
//! every language. Also: instances past their memory threshold are recycled.

use serde_json::Value;
use std::collections::BTreeMap;
use weir_tests::oracle::{self, sorted, windows_of};
use weir_tests::{dead_letters, repo, sorted_lines, udf_dir, Scratch};

/// Each language and the suffix of its components' names (`currency-c@1`).
const LANGUAGES: [(&str, &str); 4] = [("Rust", ""), ("C", "-c"), ("Python", "-py"), ("JavaScript", "-js")];

/// Fails with the command that builds them when a language's components are missing.
fn check_built() {
    let dir = udf_dir();
    for (language, suffix) in LANGUAGES {
        for name in ["currency", "auction-filter", "word-split", "average", "anomaly"] {
            let file = dir.join(format!("{name}{suffix}@1.wasm"));
            assert!(file.exists(), "{} ({language}) is missing: run scripts/build-udfs", file.display());
        }
    }
}

/// Records every language must refuse, each for a reason it names.
const MALFORMED: [&str; 3] = [
    "not json at all",
    r#"{"auction":1000,"price":100,"channel":"Apple","url":"u","ts":17}"#,
    r#"{"auction":"x","bidder":1,"price":100,"channel":"Apple","url":"u","ts":17}"#,
];

fn pipeline(name: &str, parallelism: u32, source: &str, steps: &str) -> String {
    format!(
        "name: {name}\nparallelism: {parallelism}\nsource:\n  {source}\nsteps:\n{steps}\nsink:\n  file: {{ dir: out }}\ndead_letter:\n  file: {{ path: dlq.ndjson }}\n"
    )
}

#[test]
fn q1_and_q2_match_the_reference_in_every_language() -> anyhow::Result<()> {
    check_built();
    let bids = oracle::bids(42, 20_000);
    let mut lines = bids.clone();
    for (i, bad) in MALFORMED.iter().enumerate() {
        lines.insert(i * 5_000 + 17, bad.to_string());
    }
    let q1_want = sorted(bids.iter().map(|b| oracle::q1(b)).collect());
    let q2_want = sorted(bids.iter().filter_map(|b| oracle::q2(b)).collect());
    for (language, suffix) in LANGUAGES {
        let s = Scratch::new();
        s.write("bids.ndjson", lines.join("\n") + "\n");
        let source = "file: { path: bids.ndjson, format: lines }";
        s.run(&pipeline("q1", 2, source, &format!("  - map: {{ udf: currency{suffix}@1 }}"))).ok()?;
        assert_eq!(sorted_lines(&s.join("out"))?, q1_want, "q1 in {language}");
        let letters = dead_letters(&s.join("dlq.ndjson"))?;
        let refused: Vec<&str> = letters.iter().filter_map(|l| l["value"].as_str()).collect();
        assert_eq!(
            sorted(refused.iter().map(|v| v.to_string()).collect()),
            sorted(MALFORMED.map(String::from).to_vec())
        );
        for l in &letters {
            assert_eq!(l["kind"], "rejected", "{language}: {l}");
            let reason = l["reason"].as_str().unwrap_or_default();
            assert!(!reason.is_empty(), "{language} gives a reason: {l}");
            if l["value"] == MALFORMED[1] {
                assert!(reason.contains("bidder"), "{language} names the missing field: {reason}");
            }
        }

        // A misspelt parameter stops the pipeline before it starts, naming the function and the parameter.
        let run =
            s.run(&pipeline("q1", 1, source, &format!("  - map: {{ udf: currency{suffix}@1, params: {{ rat: 2 }} }}")));
        assert_ne!(run.code(), Some(0), "{language}");
        assert!(
            run.stderr().contains(&format!("currency{suffix}@1")) && run.stderr().contains("rat"),
            "{language}: {}",
            run.stderr()
        );

        let s = Scratch::new();
        s.write("bids.ndjson", lines.join("\n") + "\n");
        let steps = format!(
            "  - filter: {{ udf: auction-filter{suffix}@1 }}\n  - map: {{ udf: project@1, params: {{ fields: \"auction,price\", format: csv }} }}"
        );
        s.run(&pipeline("q2", 2, source, &steps)).ok()?;
        assert_eq!(sorted_lines(&s.join("out"))?, q2_want, "q2 in {language}");
        // The filter reads only `auction`: the bid without a bidder is not refused, just dropped.
        let refused: Vec<String> =
            dead_letters(&s.join("dlq.ndjson"))?.iter().filter_map(|l| l["value"].as_str().map(String::from)).collect();
        assert_eq!(
            sorted(refused),
            sorted(vec![MALFORMED[0].to_string(), MALFORMED[2].to_string()]),
            "q2 in {language}"
        );
    }
    Ok(())
}

/// Runs `steps` over a data file of `deploy/data` in one language and returns the sorted output lines.
fn run_on(data: &str, format: &str, parallelism: u32, steps: &str) -> anyhow::Result<Vec<String>> {
    let s = Scratch::new();
    let path = repo().join("deploy/data").join(data);
    let mut source = format!("file: {{ path: {}, format: {format} }}", path.display());
    if format == "json" {
        source.push_str("\n  event_time: { field: /ts }\n  watermark: { max_out_of_orderness: 1s }");
    }
    s.run(&pipeline("languages", parallelism, &source, steps)).ok()?;
    sorted_lines(&s.join("out"))
}

/// A JSON line with every number as a double: `3` and `3.0` are the same
/// value, printed differently by different languages.
fn values(lines: &[String]) -> Vec<Value> {
    fn doubles(v: Value) -> Value {
        match v {
            Value::Number(n) => n.as_f64().map_or(Value::Null, |f| serde_json::json!(f)),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, doubles(v))).collect()),
            other => other,
        }
    }
    let mut out: Vec<Value> = lines.iter().map(|l| doubles(serde_json::from_str(l).expect("JSON output"))).collect();
    out.sort_by_key(|v| v.to_string());
    out
}

#[test]
fn the_flat_map_aggregator_and_processor_agree_across_languages() -> anyhow::Result<()> {
    check_built();
    // Parallelism 1 where results depend on the order of a key's records
    // (a floating-point sum; a running mean): one input split keeps it fixed.
    let words = |sfx: &str| run_on("words.txt", "lines", 2, &format!("  - flat_map: {{ udf: word-split{sfx}@1 }}"));
    let average = |sfx: &str| {
        let steps = format!(
            "  - key_by: {{ field: /host }}\n  - window: {{ tumbling: 5m }}\n    aggregate: {{ udf: average{sfx}@1, params: {{ field: cpu }} }}"
        );
        run_on("metrics.ndjson", "json", 1, &steps)
    };
    let anomaly = |sfx: &str| {
        let steps = format!(
            "  - key_by: {{ field: /sensor }}\n  - process: {{ udf: anomaly{sfx}@1, params: {{ threshold: 4, warmup: 20, silence_ms: 30000 }} }}"
        );
        run_on("sensors.ndjson", "json", 1, &steps)
    };
    let (rust_words, rust_average, rust_anomaly) = (words("")?, average("")?, anomaly("")?);

    // The Rust results against a from-scratch computation.
    let text = std::fs::read_to_string(repo().join("deploy/data/words.txt"))?.to_lowercase();
    let want_words =
        sorted(text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(String::from).collect());
    assert_eq!(rust_words, want_words);
    let mut sums: BTreeMap<(String, i64), (f64, u64)> = BTreeMap::new();
    for l in std::fs::read_to_string(repo().join("deploy/data/metrics.ndjson"))?.lines() {
        let r: Value = serde_json::from_str(l)?;
        let (_, end) = windows_of(r["ts"].as_i64().unwrap_or_default(), 300_000, 300_000)[0];
        let e = sums.entry((r["host"].as_str().unwrap_or_default().to_string(), end)).or_default();
        e.0 += r["cpu"].as_f64().unwrap_or_default();
        e.1 += 1;
    }
    let got: BTreeMap<(String, i64), (f64, u64)> = values(&rust_average)
        .iter()
        .map(|v| {
            let key = (
                v["key"].as_str().unwrap_or_default().to_string(),
                v["window_end"].as_f64().unwrap_or_default() as i64,
            );
            (key, (v["avg"].as_f64().unwrap_or_default(), v["count"].as_f64().unwrap_or_default() as u64))
        })
        .collect();
    assert_eq!(got.len(), sums.len());
    for (k, (sum, n)) in &sums {
        assert_eq!(got[k].1, *n, "{k:?}");
        assert!((got[k].0 - sum / *n as f64).abs() < 1e-9, "{k:?}");
    }
    let alerts = values(&rust_anomaly);
    assert!(alerts.iter().filter(|a| a["alert"] == "anomaly").count() == 3, "the three injected spikes: {alerts:?}");

    for (language, suffix) in &LANGUAGES[1..] {
        assert_eq!(words(suffix)?, rust_words, "word-split in {language}");
        assert_eq!(values(&average(suffix)?), values(&rust_average), "average in {language}");
        assert_eq!(values(&anomaly(suffix)?), alerts, "anomaly in {language}");
    }
    Ok(())
}

#[test]
fn an_instance_past_its_memory_threshold_is_recycled_between_calls() -> anyhow::Result<()> {
    let s = Scratch::new();
    let lines: Vec<String> = (0..30_000).map(|i| format!("line {i}")).collect();
    s.write("in.txt", lines.join("\n") + "\n");
    // A Rust identity map starts below 2 MiB and grows with its batches: with
    // the threshold at 1 MiB, every call's instance is replaced before the next.
    let run = s
        .run(&pipeline(
            "recycle",
            1,
            "file: { path: in.txt, format: lines }",
            "  - map: { udf: evil@1, limits: { memory: 16MiB, recycle_above: 1MiB } }",
        ))
        .ok()?;
    assert_eq!(sorted_lines(&s.join("out"))?, sorted(lines));
    let summary = run.stderr();
    let step = summary.lines().find(|l| l.contains("map evil@1")).unwrap_or_default();
    let recycled: u64 = step.split("recycled ").nth(1).and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    assert!(recycled >= 10, "about one recycle per batch of 1,024: {summary}");
    assert!(!step.contains("failed calls"), "{summary}");
    assert!(!s.join("dlq.ndjson").exists() || dead_letters(&s.join("dlq.ndjson"))?.is_empty());
    Ok(())
}

#[test]
fn a_python_function_stays_within_its_recycle_threshold_on_a_long_run() -> anyhow::Result<()> {
    check_built();
    // A componentize-py instance starts at ~14 MiB and keeps ~45 B of every
    // record it returns (~28 MiB after 300,000): at a threshold of 18 MiB it
    // is replaced every ~90 calls, and the output is still exactly q1's.
    let s = Scratch::new();
    let run = s
        .run(&pipeline(
            "python",
            1,
            "bids: { seed: 3, count: 300000 }",
            "  - map: { udf: currency-py@1, limits: { memory: 64MiB, recycle_above: 18MiB } }",
        ))
        .ok()?;
    let want = sorted(oracle::bids(3, 300_000).iter().map(|b| oracle::q1(b)).collect());
    assert_eq!(sorted_lines(&s.join("out"))?, want);
    let summary = run.stderr();
    let step = summary.lines().find(|l| l.contains("map currency-py@1")).unwrap_or_default();
    let number_after = |label: &str| -> u64 {
        step.split(label).nth(1).and_then(|t| t.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    assert!(number_after("recycled ") >= 2, "{summary}");
    let peak = number_after("instance memory peak ");
    assert!(peak > 0 && peak <= 20, "bounded by the threshold plus one call's growth: {summary}");
    assert!(!step.contains("failed calls"), "{summary}");
    Ok(())
}

#[test]
fn every_language_logs_with_the_function_name_version_and_subtask() -> anyhow::Result<()> {
    check_built();
    let path = repo().join("deploy/data/sensors.ndjson");
    for (language, suffix) in LANGUAGES {
        let s = Scratch::new();
        let source = format!("file: {{ path: {}, format: json }}", path.display());
        let steps = format!(
            "  - key_by: {{ field: /sensor }}\n  - process: {{ udf: anomaly{suffix}@1, params: {{ warmup: 20 }} }}"
        );
        let log = s.run(&pipeline("logs", 2, &source, &steps)).ok()?.stderr();
        for subtask in 0..2 {
            let line = log
                .lines()
                .find(|l| l.contains(&format!("\"anomaly{suffix}@1 subtask {subtask}\"")))
                .unwrap_or_else(|| panic!("{language}: no line of subtask {subtask}:\n{log}"));
            assert!(
                line.contains("watching `value`: anomalies after 20 readings, silence after 60000 ms"),
                "{language}: {line}"
            );
        }
    }
    Ok(())
}
