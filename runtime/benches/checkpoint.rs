//! Checkpoint cost against state size: for 1 M and 10 M keys (16-byte
//! values, as a window's accumulators), the time and bytes of a first
//! snapshot, of a snapshot after 1 % of the keys changed, and of restoring
//! (at the same parallelism, and one half of the key groups as after a
//! rescale to 2). RocksDB and the in-memory backend.
//!
//! Not a criterion benchmark: one snapshot of 10 M keys takes seconds, and
//! what matters is the figure per size, not a confidence interval.
//!
//! `cargo bench -p weir-runtime --bench checkpoint [-- SIZES...]`
//! (default sizes: 1000000 10000000; WEIR_BENCH_DIR picks the directory;
//! WEIR_BENCH_BACKENDS=rocksdb or =memory measures one backend alone, e.g.
//! for its peak memory under `/usr/bin/time -v`).

use std::path::Path;
use std::time::Instant;
use weir::state::{state_key, MemoryBackend, Namespace, RestoreSource, StateBackend};

const KEY_GROUPS: u32 = 128;

fn fill(b: &mut dyn StateBackend, keys: u64, round: u64, every: u64) {
    let ns = Namespace::keyed(1, 0);
    let mut k = Vec::new();
    for i in (0..keys).step_by(every as usize) {
        let record = i.to_be_bytes();
        let group = (xxhash_rust::xxh3::xxh3_64(&record) % KEY_GROUPS as u64) as u32;
        state_key(group, &record, &mut k);
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&(i ^ round).to_le_bytes());
        v[8..].copy_from_slice(&round.to_le_bytes());
        b.put(&ns, &k, &v);
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().map(|e| e.metadata().map_or(0, |m| m.len())).sum())
}

/// Bytes in `dir` that are not hard links to files another checkpoint already holds.
fn new_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map_or(0, |d| d.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.nlink() <= 2).map(|m| m.len()).sum())
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn measure(name: &str, keys: u64, root: &Path, fresh: &dyn Fn(&str) -> Box<dyn StateBackend>) {
    let mut b = fresh("live");
    let t = Instant::now();
    fill(b.as_mut(), keys, 0, 1);
    let load = secs(t);

    let t = Instant::now();
    let first = b.snapshot(&root.join("chk-1")).expect("snapshot");
    let first_s = secs(t);
    let first_bytes = dir_bytes(&root.join("chk-1"));

    fill(b.as_mut(), keys, 1, 100);
    let t = Instant::now();
    b.snapshot(&root.join("chk-2")).expect("snapshot");
    let second_s = secs(t);
    let second_new = new_bytes(&root.join("chk-2"));
    drop(b);

    let source = RestoreSource { dir: root.join("chk-1"), files: first, key_groups: 0..KEY_GROUPS };
    let t = Instant::now();
    let mut whole = fresh("whole");
    whole.restore(std::slice::from_ref(&source), 0..KEY_GROUPS).expect("restore");
    let restore_s = secs(t);
    drop(whole);
    let t = Instant::now();
    let mut half = fresh("half");
    half.restore(std::slice::from_ref(&source), 0..KEY_GROUPS / 2).expect("restore");
    let half_s = secs(t);
    drop(half);

    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "| {name} | {keys} | {load:.2} | {first_s:.3} | {:.1} | {second_s:.3} | {:.1} | {restore_s:.3} | {half_s:.3} |",
        mb(first_bytes),
        mb(second_new)
    );
}

fn main() {
    let sizes: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000_000, 10_000_000] } else { sizes };
    let base = std::env::var_os("WEIR_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    println!("| backend | keys | fill s | snapshot s | size MB | snapshot after 1% changed s | new MB | restore s | restore half (rescale) s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let backends = std::env::var("WEIR_BENCH_BACKENDS").unwrap_or_else(|_| "rocksdb memory".into());
    for &keys in &sizes {
        #[cfg(feature = "rocksdb")]
        if backends.contains("rocksdb") {
            let tmp = tempfile::tempdir_in(&base).expect("temp dir");
            let root = tmp.path().to_path_buf();
            measure("rocksdb", keys, tmp.path(), &|name| {
                Box::new(weir::state::RocksBackend::create(&root.join(name)).expect("create"))
            });
        }
        if backends.contains("memory") {
            let tmp = tempfile::tempdir_in(&base).expect("temp dir");
            measure("memory", keys, tmp.path(), &|_| Box::new(MemoryBackend::new()));
        }
    }
}
