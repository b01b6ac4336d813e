//! A function that traps, loops forever or allocates past its cap is
//! contained: the offending records are dead-lettered with the reason, the
//! instance is replaced, everything else goes on; or, with `on_error: fail`,
//! the pipeline stops with an error naming the function and subtask.

use std::collections::BTreeMap;
use weir_tests::{dead_letters, sorted_lines, Scratch};

fn evil_manifest(on_error: &str) -> String {
    format!(
        "name: evil\nparallelism: 2\nbatch_size: 64\nsource:\n  file: {{ path: in.txt }}\nsteps:\n  - map: {{ udf: evil@1, on_error: {on_error}, limits: {{ memory: 32MiB, call_timeout: 100ms }} }}\nsink:\n  file: {{ dir: out }}\ndead_letter:\n  file: {{ path: dlq.ndjson }}\n"
    )
}

#[test]
fn traps_timeouts_and_memory_exhaustion_are_isolated_to_their_records() -> anyhow::Result<()> {
    let s = Scratch::new();
    let mut lines: Vec<String> = (0..600).map(|i| format!("v{i}")).collect();
    let triggers =
        [(17, "PANIC-1"), (140, "LOOP-1"), (300, "OOM-1"), (301, "REJECT-1"), (451, "PANIC-2"), (599, "OOM-2")];
    for (at, t) in triggers {
        lines[at] = t.to_string();
    }
    s.write("in.txt", lines.join("\n"));
    let run = s.run(&evil_manifest("dead_letter")).ok()?;

    let mut expected: Vec<String> = lines.iter().filter(|l| l.starts_with('v')).cloned().collect();
    expected.sort();
    assert_eq!(sorted_lines(&s.join("out"))?, expected, "every other record passes, once");

    let letters = dead_letters(&s.join("dlq.ndjson"))?;
    let by_value: BTreeMap<String, (String, String)> = letters
        .iter()
        .map(|l| {
            (
                l["value"].as_str().unwrap_or_default().to_string(),
                (
                    l["kind"].as_str().unwrap_or_default().to_string(),
                    l["reason"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(letters.len(), triggers.len(), "one letter per trigger: {letters:#?}");
    let (kind, reason) = &by_value["PANIC-1"];
    assert_eq!(kind, "trap");
    assert!(reason.contains("evil@1 (subtask") && reason.contains("PANIC requested by the record"), "{reason}");
    assert_eq!(by_value["LOOP-1"].0, "timeout");
    assert!(by_value["LOOP-1"].1.contains("deadline of 100ms"), "{}", by_value["LOOP-1"].1);
    assert_eq!(by_value["OOM-1"].0, "out_of_memory");
    assert!(by_value["OOM-1"].1.contains("cap of 32 MiB"), "{}", by_value["OOM-1"].1);
    assert_eq!(by_value["OOM-2"].0, "out_of_memory");
    assert_eq!(by_value["REJECT-1"], ("rejected".to_string(), "REJECT requested by the record".to_string()));
    assert_eq!(by_value["PANIC-2"].0, "trap");
    for l in &letters {
        assert_eq!(l["pipeline"], "evil");
        assert_eq!(l["step"], "steps[0] map evil@1");
    }
    assert!(run.stderr().contains("600 records read") && run.stderr().contains("6 dead-lettered"), "{}", run.stderr());
    Ok(())
}

#[test]
fn the_fail_policy_stops_the_pipeline_with_the_cause() {
    let s = Scratch::new();
    s.write("in.txt", "a\nb\nPANIC now\nc\n");
    let run = s.run(&evil_manifest("fail"));
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("pipeline failed: steps[0] map evil@1: evil@1 (subtask"), "{err}");
    assert!(err.contains("trapped: panicked at") && err.contains("PANIC requested by the record"), "{err}");
}

#[test]
fn a_failed_step_does_not_flush_open_windows_as_final() {
    // Open windows downstream of a failed step hold partial results: the
    // window step must fail with the pipeline rather than fire them at the
    // end of its (cut-off) input.
    let s = Scratch::new();
    s.write("in.txt", "{\"k\":\"a\"}\n{\"k\":\"a\"}\nPANIC now\n{\"k\":\"a\"}\n");
    let run = s.run("name: cut\nbatch_size: 1\nsource:\n  file: { path: in.txt, format: lines }\nsteps:\n  - map: { udf: evil@1, on_error: fail }\n  - key_by: { field: /k }\n  - window: { tumbling: 1h, time: processing }\n    aggregate: { builtin: count, output: csv }\nsink:\n  file: { path: out.csv }\n");
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    let out = std::fs::read_to_string(s.join("out.csv")).unwrap_or_default();
    assert_eq!(out, "", "no window result may be written after a failure");
}

#[test]
fn a_chatty_function_is_rate_limited_not_killed() -> anyhow::Result<()> {
    let s = Scratch::new();
    let lines: Vec<String> = (0..3000).map(|i| format!("line {i}")).collect();
    s.write("in.txt", lines.join("\n"));
    let run = s.run("name: noisy\nsource:\n  file: { path: in.txt }\nsteps:\n  - flat_map: { udf: noisy@1 }\nsink:\n  file: { path: out.txt }\n").ok()?;
    assert_eq!(sorted_lines(&s.join("out.txt"))?.len(), 6000);
    let logged = run.stderr().lines().filter(|l| l.contains("stdout line for a record")).count();
    assert!(logged > 0 && logged < 1000, "guest output should reach the log, rate-limited ({logged} lines)");
    Ok(())
}

#[test]
fn a_function_panicking_on_every_record_cannot_flood_the_log() -> anyhow::Result<()> {
    // Attack: every record traps; each trap used to bring a fresh instance
    // with a fresh log budget, and each dead letter its own warning, so the
    // server's log grew with every record.
    let s = Scratch::new();
    let lines: Vec<String> = (0..3000).map(|i| format!("PANIC {i}")).collect();
    s.write("in.txt", lines.join("\n"));
    let run = s.run("name: panicky\nbatch_size: 1\nsource:\n  file: { path: in.txt }\nsteps:\n  - map: { udf: evil@1 }\nsink:\n  file: { path: out.txt }\ndead_letter:\n  file: { path: dlq.ndjson }\n").ok()?;
    assert_eq!(dead_letters(&s.join("dlq.ndjson"))?.len(), 3000, "every record is dead-lettered");
    // Within any second of the log, the step's lines stay within its two
    // budgets (the guest's output, and the dead-letter warnings, 50 lines
    // per budget window each; a calendar second overlaps two windows),
    // whatever the machine's speed.
    let mut per_second: std::collections::BTreeMap<String, usize> = Default::default();
    for line in run.stderr().lines().filter(|l| l.contains("evil@1") || l.contains("PANIC requested")) {
        *per_second.entry(line.chars().take(19).collect()).or_default() += 1;
    }
    let worst = per_second.values().max().copied().unwrap_or(0);
    assert!(worst > 0 && worst <= 2 * 2 * 50 + 4, "{worst} lines in one second: {per_second:?}");
    Ok(())
}

#[test]
fn key_by_functions_must_set_a_key() -> anyhow::Result<()> {
    let s = Scratch::new();
    s.write("in.txt", "keep\nDROPKEY me\n");
    // evil@1 keeps the input's key, and input lines have none, so both lack a key.
    s.run("name: k\nsource:\n  file: { path: in.txt }\nsteps:\n  - key_by: { udf: evil@1 }\nsink:\n  file: { path: out.txt }\ndead_letter:\n  file: { path: dlq.ndjson }\n").ok()?;
    let letters = dead_letters(&s.join("dlq.ndjson"))?;
    assert_eq!(letters.len(), 2);
    assert!(letters.iter().all(|l| l["kind"] == "missing_key"));
    assert!(sorted_lines(&s.join("out.txt"))?.is_empty());
    Ok(())
}

#[test]
fn output_that_breaks_the_contract_is_caught() -> anyhow::Result<()> {
    let s = Scratch::new();
    s.write("in.txt", "fine\nGARBAGE\nok\nSHORT\nlast\n");
    s.run("name: liar\nbatch_size: 1\nsource:\n  file: { path: in.txt }\nsteps:\n  - map: { udf: liar@1 }\nsink:\n  file: { path: out.txt }\ndead_letter:\n  file: { path: dlq.ndjson }\n").ok()?;
    assert_eq!(sorted_lines(&s.join("out.txt"))?, ["fine", "last", "ok"]);
    let letters = dead_letters(&s.join("dlq.ndjson"))?;
    assert_eq!(letters.len(), 2);
    assert!(letters.iter().all(|l| l["kind"] == "bad_output"), "{letters:#?}");
    let reasons: Vec<&str> = letters.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("the output batch is malformed")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("map returned 0 records and refused 0 for 1 inputs")), "{reasons:?}");
    Ok(())
}
