//! q1 and q2 through the Rust components, against the oracle, for several
//! seeds, sizes, parallelisms and both the file and generator sources.

use weir_tests::oracle::{self, sorted};
use weir_tests::{sorted_lines, Scratch};

fn q1_manifest(source: &str, parallelism: u32, out: &str) -> String {
    format!("name: q1\nparallelism: {parallelism}\nsource:\n  {source}\nsteps:\n  - map: {{ udf: currency@1 }}\nsink:\n  file: {{ dir: {out} }}\n")
}

fn q2_manifest(source: &str, parallelism: u32, out: &str) -> String {
    format!(
        "name: q2\nparallelism: {parallelism}\nsource:\n  {source}\nsteps:\n  - filter: {{ udf: auction-filter@1 }}\n  - map: {{ udf: project@1, params: {{ fields: \"auction,price\", format: csv }} }}\nsink:\n  file: {{ dir: {out} }}\n"
    )
}

#[test]
fn q1_and_q2_match_the_oracle_over_files() -> anyhow::Result<()> {
    for (seed, n, parallelism) in [(42, 20_000, 2), (7, 5_003, 1), (1234, 12_345, 3)] {
        let s = Scratch::new();
        let bids = oracle::bids(seed, n);
        s.write("bids.ndjson", bids.join("\n") + "\n");
        let source = "file: { path: bids.ndjson, format: lines }";
        s.run(&q1_manifest(source, parallelism, "q1")).ok()?;
        assert_eq!(
            sorted_lines(&s.join("q1"))?,
            sorted(bids.iter().map(|b| oracle::q1(b)).collect()),
            "q1 seed {seed} n {n} p {parallelism}"
        );
        s.run(&q2_manifest("file: { path: bids.ndjson, format: json }", parallelism, "q2")).ok()?;
        let expected: Vec<String> = bids.iter().filter_map(|b| oracle::q2(b)).collect();
        assert!(!expected.is_empty());
        assert_eq!(sorted_lines(&s.join("q2"))?, sorted(expected), "q2 seed {seed} n {n} p {parallelism}");
    }
    Ok(())
}

#[test]
fn the_bids_source_generates_the_bench_input() -> anyhow::Result<()> {
    let s = Scratch::new();
    let bids = oracle::bids(99, 30_000);
    s.run(&q1_manifest("bids: { seed: 99, count: 30000 }", 2, "q1")).ok()?;
    assert_eq!(sorted_lines(&s.join("q1"))?, sorted(bids.iter().map(|b| oracle::q1(b)).collect()));
    Ok(())
}
