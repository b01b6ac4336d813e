//! Cost of one function call on a batch, per record: the wasm boundary
//! (identity map), the bench's q1 map and q2 filter, against batch size;
//! and q1 and q2 in every guest language (Rust, C, Python, JavaScript) at
//! the default batch size, next to the same work done natively.
//!
//! Needs the example components: `scripts/build-udfs` first (the bench
//! reads `udf-examples/dist`, or `WEIR_UDF_DIR`).
//!
//!     cargo bench -p weir-runtime --bench udf_call [-- languages]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::PathBuf;
use weir::connector::bids::write_bid;
use weir::manifest::{FunctionKind, Limits};
use weir::operator::udf::UdfInvoker;
use weir::types::{Batch, BatchWriter, UdfRef};
use weir::wasm::{InstanceSpec, WasmConfig, WasmHost};

fn dist() -> PathBuf {
    std::env::var_os("WEIR_UDF_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../udf-examples/dist"), PathBuf::from)
}

fn bids(n: usize) -> Batch {
    let mut w = BatchWriter::new();
    for i in 0..n as u64 {
        w.push_with(0, None, |v| {
            write_bid(42, i, v);
        });
    }
    w.finish()
}

fn instance(host: &WasmHost, name: &str, kind: FunctionKind, params: &[(&str, &str)]) -> weir::wasm::WasmUdf {
    let file = dist().join(format!("{name}.wasm"));
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-udfs)", file.display()));
    let udf = UdfRef::parse(name.rsplit('/').next().unwrap_or(name)).unwrap();
    let component = host.load(&udf, &bytes).unwrap();
    let params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    host.instantiate(
        &component,
        kind,
        InstanceSpec { params, limits: Limits::default(), subtask: 0, keyed: None, log_budget: Default::default() },
    )
    .unwrap()
}

fn calls(c: &mut Criterion) {
    let perf_map = std::env::var_os("WEIR_PERF_MAP").is_some();
    let host = WasmHost::new(WasmConfig { perf_map, ..Default::default() }).unwrap();
    let mut group = c.benchmark_group("udf_call");
    for size in [1usize, 64, 1024, 4096] {
        let input = bids(size);
        group.throughput(Throughput::Elements(size as u64));
        let mut identity = instance(&host, "test/evil@1", FunctionKind::Map, &[]);
        group.bench_with_input(BenchmarkId::new("identity_map", size), &input, |b, i| {
            b.iter(|| identity.map(i).unwrap())
        });
        let mut q1 = instance(&host, "currency@1", FunctionKind::Map, &[]);
        group.bench_with_input(BenchmarkId::new("q1_currency_map", size), &input, |b, i| b.iter(|| q1.map(i).unwrap()));
        let mut q2 = instance(&host, "auction-filter@1", FunctionKind::Filter, &[]);
        group.bench_with_input(BenchmarkId::new("q2_filter", size), &input, |b, i| b.iter(|| q2.filter(i).unwrap()));
    }
    group.finish();
}

/// q1 natively: the Rust example's work without the wasm boundary.
fn native_q1(input: &Batch) -> Batch {
    let mut out = BatchWriter::with_capacity(input.byte_len());
    for r in input.iter() {
        let bid = weir_json::Object::parse(r.value).expect("a bid");
        let (auction, bidder, price, ts) = (
            bid.u64("auction").unwrap(),
            bid.u64("bidder").unwrap(),
            bid.u64("price").unwrap(),
            bid.u64("ts").unwrap(),
        );
        let millis = (price as f64 * 0.908 * 1000.0).round() as u64;
        out.push_with(r.timestamp, r.key, |v| {
            use std::io::Write;
            let _ = write!(v, "{auction},{bidder},{}.{:03},{ts}", millis / 1000, millis % 1000);
        });
    }
    out.finish()
}

/// q2's predicate natively, as a bitmap like the guests return.
fn native_q2(input: &Batch) -> Vec<u8> {
    let mut keep = vec![0u8; input.len().div_ceil(8)];
    for (i, r) in input.iter().enumerate() {
        if weir_json::Object::parse(r.value).expect("a bid").u64("auction").unwrap().is_multiple_of(123) {
            keep[i / 8] |= 1 << (i % 8);
        }
    }
    keep
}

fn languages(c: &mut Criterion) {
    let cache_dir = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/weir/components"));
    let host = WasmHost::new(WasmConfig { cache_dir, ..Default::default() }).unwrap();
    let size = 1024;
    let input = bids(size);
    let mut group = c.benchmark_group("languages");
    group.throughput(Throughput::Elements(size as u64));
    group.sample_size(20);
    group.bench_function("q1_map/native", |b| b.iter(|| native_q1(&input)));
    group.bench_function("q2_filter/native", |b| b.iter(|| native_q2(&input)));
    for (language, suffix) in [("rust", ""), ("c", "-c"), ("python", "-py"), ("javascript", "-js")] {
        let mut q1 = instance(&host, &format!("currency{suffix}@1"), FunctionKind::Map, &[]);
        group.bench_function(format!("q1_map/{language}"), |b| b.iter(|| q1.map(&input).unwrap()));
        let mut q2 = instance(&host, &format!("auction-filter{suffix}@1"), FunctionKind::Filter, &[]);
        group.bench_function(format!("q2_filter/{language}"), |b| b.iter(|| q2.filter(&input).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, calls, languages);
criterion_main!(benches);
