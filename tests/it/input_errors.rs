//! Malformed input loses nothing: every input line is in the output or in
//! the dead-letter output, with the parser's reason.

use weir_tests::oracle::{self, sorted};
use weir_tests::{dead_letters, sorted_lines, Scratch};

const MALFORMED: &[&str] = &[
    r#"{"auction":1000,"bidder":1,"price":100,"channel":"Apple","url":"u","ts":17"#,
    r#"not json at all"#,
    r#"{"auction":"x","bidder":1,"price":100,"channel":"Apple","url":"u","ts":17}"#,
    r#"{"auction":1000,"price":100,"channel":"Apple","url":"u","ts":17}"#,
    r#"[1,2,3]"#,
    r#"{"auction":1000,"bidder":1,"price":1e3,"channel":"Apple","url":"u","ts":17}"#,
];

fn input(s: &Scratch) -> (Vec<String>, Vec<String>) {
    let good = oracle::bids(5, 400);
    let mut lines = good.clone();
    for (i, bad) in MALFORMED.iter().enumerate() {
        lines.insert(i * 60 + 3, bad.to_string());
    }
    let mut bytes = lines.join("\n").into_bytes();
    bytes.extend_from_slice(b"\n{\"auction\":\xff}\n");
    s.write("bids.ndjson", bytes);
    (good, lines)
}

fn manifest(format: &str) -> String {
    format!("name: bad\nparallelism: 2\nsource:\n  file: {{ path: bids.ndjson, format: {format} }}\nsteps:\n  - map: {{ udf: currency@1 }}\nsink:\n  file: {{ dir: out }}\ndead_letter:\n  file: {{ path: dlq.ndjson }}\n")
}

#[test]
fn the_function_refuses_what_it_cannot_parse() -> anyhow::Result<()> {
    let s = Scratch::new();
    let (good, _) = input(&s);
    s.run(&manifest("lines")).ok()?;
    assert_eq!(sorted_lines(&s.join("out"))?, sorted(good.iter().map(|b| oracle::q1(b)).collect()));
    let letters = dead_letters(&s.join("dlq.ndjson"))?;
    assert_eq!(letters.len(), MALFORMED.len() + 1);
    for l in &letters {
        assert_eq!(l["kind"], "rejected", "{l}");
        assert_eq!(l["step"], "steps[0] map currency@1");
    }
    let reasons: Vec<&str> = letters.iter().filter_map(|l| l["reason"].as_str()).collect();
    assert!(
        reasons.contains(&"field `auction` is \"x\", expected an unsigned integer")
            || reasons.iter().any(|r| r.contains("field `auction` is a string")),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"field `bidder` is missing"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("invalid JSON at byte")), "{reasons:?}");
    let values: Vec<String> =
        letters.iter().map(|l| l["value"].as_str().map_or_else(|| l["value"].to_string(), str::to_string)).collect();
    for bad in MALFORMED {
        assert!(values.iter().any(|v| v == bad), "{bad} missing from the dead letters");
    }
    assert!(letters.iter().any(|l| l["value"]["base64"].is_string()), "non-UTF-8 values are kept as base64");
    Ok(())
}

#[test]
fn a_json_source_refuses_invalid_json_before_any_step() -> anyhow::Result<()> {
    let s = Scratch::new();
    input(&s);
    s.run(&manifest("json")).ok()?;
    let letters = dead_letters(&s.join("dlq.ndjson"))?;
    let at_source: Vec<_> =
        letters.iter().filter(|l| l["step"].as_str().is_some_and(|x| x.starts_with("source file"))).collect();
    let at_map: Vec<_> = letters.iter().filter(|l| l["step"] == "steps[0] map currency@1").collect();
    assert_eq!(at_source.len(), 3, "truncated object, plain text and invalid UTF-8: {at_source:#?}");
    assert!(at_source
        .iter()
        .all(|l| l["kind"] == "invalid_input"
            && l["reason"].as_str().is_some_and(|r| r.starts_with("invalid JSON at byte"))));
    assert_eq!(at_map.len(), MALFORMED.len() + 1 - 3, "valid JSON that is not a bid reaches the function");
    Ok(())
}
