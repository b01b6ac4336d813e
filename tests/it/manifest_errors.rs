//! A manifest that cannot run fails before anything starts: a clear message
//! naming the place, exit code 2, and no output created.

use weir_tests::Scratch;

const EXIT_INVALID: i32 = 2;

fn refused(manifest: &str, expected: &[&str]) {
    let s = Scratch::new();
    s.write("in.txt", "{\"a\":1}\n");
    let run = s.run(manifest);
    assert_eq!(run.code(), Some(EXIT_INVALID), "stderr: {}", run.stderr());
    let err = run.stderr();
    for e in expected {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
    assert!(!s.join("out").exists(), "an output was created for a pipeline that did not start");
    assert!(!s.join("dlq.ndjson").exists(), "a dead-letter file was created for a pipeline that did not start");
}

fn manifest(steps: &str) -> String {
    format!("name: t\nsource:\n  file: {{ path: in.txt }}\nsteps:\n{steps}\nsink:\n  file: {{ dir: out }}\ndead_letter:\n  file: {{ path: dlq.ndjson }}\n")
}

#[test]
fn unknown_step() {
    refused(
        &manifest("  - mapp: { udf: currency@1 }"),
        &["steps[0]: unknown step `mapp`", "expected one of: map, filter"],
    );
}

#[test]
fn bad_duration() {
    refused(
        &manifest("  - map: { udf: currency@1, limits: { call_timeout: 3 seconds } }"),
        &["steps[0].map.limits.call_timeout", "`3 seconds` is not a duration"],
    );
}

#[test]
fn missing_udf() {
    refused(
        &manifest("  - map: { udf: nosuch@3 }"),
        &["steps[0] map nosuch@3", "function nosuch@3 not found", "nosuch@3.wasm"],
    );
}

#[test]
fn component_of_the_wrong_kind() {
    refused(
        &manifest("  - map: { udf: auction-filter@1 }"),
        &["auction-filter@1 is a filter function", "a `map` step needs", "weir:udf/mapper@0.1.0"],
    );
}

#[test]
fn init_refusing_the_parameters() {
    refused(
        &manifest("  - filter: { udf: bad-init@1, params: { threshold: lots } }"),
        &["steps[0] filter bad-init@1", "init refused the parameters", "invalid-params", "threshold"],
    );
    refused(&manifest("  - map: { udf: currency@1, params: { rat: 2 } }"), &["unknown parameter `rat` (known: rate)"]);
}

#[test]
fn missing_input_file() {
    let s = Scratch::new();
    let run = s.run("name: t\nsource:\n  file: { path: nope.ndjson }\nsink:\n  file: { dir: out }\n");
    assert_eq!(run.code(), Some(EXIT_INVALID));
    assert!(run.stderr().contains("nope.ndjson: No such file"), "{}", run.stderr());
    assert!(!s.join("out").exists());
}

#[test]
fn unreadable_manifest() {
    let s = Scratch::new();
    let run = s.weir(&["run", "absent.yaml"], None);
    assert_eq!(run.code(), Some(EXIT_INVALID));
    assert!(run.stderr().contains("cannot read manifest absent.yaml"), "{}", run.stderr());
}

#[test]
fn junk_and_core_modules_are_named_as_such() {
    let s = Scratch::new();
    let junk = s.write("junk.wasm", "definitely not wasm");
    let core = s.write("core.wasm", b"\0asm\x01\0\0\0");
    let run = s.weir(&["udf", "inspect", junk.to_str().unwrap_or_default()], None);
    assert_eq!(run.code(), Some(EXIT_INVALID));
    assert!(run.stderr().contains("does not start with the WebAssembly magic bytes"), "{}", run.stderr());
    let run = s.weir(&["udf", "inspect", core.to_str().unwrap_or_default()], None);
    assert!(run.stderr().contains("core WebAssembly module, not a component"), "{}", run.stderr());
}

#[test]
fn a_window_that_puts_each_record_in_ten_trillion_windows_is_refused() {
    // Issue 17: this ran out of memory and aborted on three records.
    refused(
        &manifest("  - key_by: { field: /a }\n  - window: { sliding: { size: 100000d, slide: 1ms }, time: processing }\n    aggregate: { builtin: count }"),
        &["steps[1].window.sliding", "8640000000000 windows", "`max_windows_per_record`"],
    );
}

#[test]
fn the_operator_may_raise_a_bound_with_a_flag() {
    let s = Scratch::new();
    s.write("in.txt", "{\"a\":1}\n");
    let m = s.write(
        "p.yaml",
        manifest("  - key_by: { field: /a }\n  - window: { sliding: { size: 2s, slide: 1ms }, time: processing }\n    aggregate: { builtin: count }"),
    );
    let m = m.to_str().unwrap();
    let refused = s.weir(&["run", m], None);
    assert_eq!(refused.code(), Some(EXIT_INVALID), "{}", refused.stderr());
    assert!(refused.stderr().contains("2000 windows"), "{}", refused.stderr());
    let typo = s.weir(&["run", m, "--bound", "max_windowz=5"], None);
    assert_eq!(typo.code(), Some(EXIT_INVALID));
    assert!(typo.stderr().contains("unknown bound `max_windowz`"), "{}", typo.stderr());
    let allowed = s.weir(&["run", m, "--bound", "max_windows_per_record=2000"], None);
    assert_eq!(allowed.code(), Some(0), "{}", allowed.stderr());
}
