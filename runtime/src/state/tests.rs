use super::*;
use crate::types::TimeWindow;
use std::collections::BTreeMap;

type Model = BTreeMap<(Namespace, Vec<u8>), Vec<u8>>;

/// Oracle: random operations on a backend and on a plain BTreeMap agree;
/// returns the model.
fn matches_a_map(backend: &mut dyn StateBackend, seed: u64, ops: usize) -> Model {
    let mut seed = seed;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut model: BTreeMap<(Namespace, Vec<u8>), Vec<u8>> = BTreeMap::new();
    let spaces = [
        Namespace::keyed(0, 0),
        Namespace::keyed(0, 1),
        Namespace::window(1, 0, TimeWindow { start: 0, end: 10 }),
        Namespace::window(1, 0, TimeWindow { start: 10, end: 20 }),
    ];
    let mut key = Vec::new();
    let snapshots = tempfile::tempdir().unwrap();
    for op in 0..ops {
        let ns = spaces[next(4) as usize];
        // Short keys live inline, long ones on the heap: cover both and the boundary.
        let record = match next(4) {
            0 => "x".repeat(20 + next(3) as usize),
            1 => format!("a-much-longer-record-key-{}", next(5)),
            _ => format!("k{}", next(20)),
        };
        state_key(next(3) as u32, record.as_bytes(), &mut key);
        match next(6) {
            0 => {
                let v = vec![next(256) as u8; next(4) as usize];
                backend.put(&ns, &key, &v);
                model.insert((ns, key.clone()), v);
            }
            1 => {
                backend.delete(&ns, &key);
                model.remove(&(ns, key.clone()));
            }
            2 => {
                let existed = model.contains_key(&(ns, key.clone()));
                backend.modify(&ns, &key, &mut |v, found| {
                    assert_eq!(found, existed);
                    v.push(7);
                });
                model.entry((ns, key.clone())).or_default().push(7);
            }
            3 if next(20) == 0 => {
                backend.drop_namespace(&ns);
                model.retain(|(n, _), _| *n != ns);
            }
            // A snapshot now and then (a write-out, for RocksDB) changes nothing.
            4 if next(50) == 0 => {
                backend.snapshot(&snapshots.path().join(op.to_string())).unwrap();
            }
            _ => {
                assert_eq!(backend.get(&ns, &key).map(|v| v.into_owned()), model.get(&(ns, key.clone())).cloned());
            }
        }
        assert_eq!(backend.len(), model.len());
    }
    for ns in spaces {
        let mut got = Vec::new();
        backend.for_each(&ns, &mut |k, v| got.push((k.to_vec(), v.to_vec())));
        got.sort();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            model.iter().filter(|((n, _), _)| *n == ns).map(|((_, k), v)| (k.clone(), v.clone())).collect();
        assert_eq!(got, want);
    }
    let mut used: Vec<Namespace> = model.keys().map(|(n, _)| *n).collect();
    used.dedup();
    assert_eq!(backend.namespaces(), used);
    assert!(backend.failure().is_none());
    model
}

/// Everything a backend holds, through `for_each`.
fn contents(backend: &dyn StateBackend) -> Model {
    let mut all = Model::new();
    for ns in backend.namespaces() {
        backend.for_each(&ns, &mut |k, v| {
            all.insert((ns, k.to_vec()), v.to_vec());
        });
    }
    all
}

/// Oracle: a snapshot restored whole, or split by key-group ranges into
/// several backends (a rescale), gives back exactly the model.
fn snapshots_restore_by_key_group(backend: &mut dyn StateBackend, fresh: &dyn Fn() -> Box<dyn StateBackend>) {
    let model = matches_a_map(backend, 11, 3000);
    let dir = tempfile::tempdir().unwrap();
    let files = backend.snapshot(&dir.path().join("snap")).unwrap();
    assert!(backend.snapshot(&dir.path().join("snap")).is_err(), "a snapshot never overwrites another");
    let source = RestoreSource { dir: dir.path().join("snap"), files, key_groups: 0..128 };
    // Key-group ranges cut at these points: whole, two parts, three parts.
    for cuts in [&[][..], &[1], &[2, 3]] {
        let bounds: Vec<u32> = std::iter::once(0).chain(cuts.iter().copied()).chain(std::iter::once(128)).collect();
        let mut union = Model::new();
        for r in bounds.windows(2).map(|w| w[0]..w[1]) {
            let mut b = fresh();
            b.restore(std::slice::from_ref(&source), r.clone()).unwrap();
            let part = contents(b.as_ref());
            assert!(part.keys().all(|(_, k)| r.contains(&key_group_of(k))));
            union.extend(part);
        }
        assert_eq!(union, model);
    }
    // Writes after a snapshot do not change it.
    backend.put(&Namespace::keyed(0, 0), b"\0\0late", b"x");
    let mut b = fresh();
    b.restore(std::slice::from_ref(&source), 0..128).unwrap();
    assert_eq!(contents(b.as_ref()), model);
}

#[test]
fn memory_backend_matches_a_map() {
    matches_a_map(&mut MemoryBackend::new(), 5, 5000);
}

#[test]
fn memory_snapshots_restore_by_key_group() {
    snapshots_restore_by_key_group(&mut MemoryBackend::new(), &|| Box::new(MemoryBackend::new()));
}

#[test]
fn state_keys_lead_with_the_key_group() {
    let mut k = Vec::new();
    state_key(300, b"auction", &mut k);
    assert_eq!(&k[..2], &[1, 44]);
    assert_eq!(record_key(&k), b"auction");
}

#[cfg(feature = "rocksdb")]
mod rocks {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A new RocksDB backend under `dir`, holding at most `cache` entries in memory.
    fn rocks(dir: &Path, cache: usize) -> Box<dyn StateBackend> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = dir.join(format!("db{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        Box::new(RocksBackend::create_with_cache(&path, cache).unwrap())
    }

    #[test]
    fn rocksdb_backend_matches_a_map() {
        let dir = tempfile::tempdir().unwrap();
        // A tiny cache writes out all the time: reads go through the database.
        for (seed, cache) in [(5, 1), (6, 7), (7, 1 << 20)] {
            matches_a_map(rocks(dir.path(), cache).as_mut(), seed, 5000);
        }
    }

    #[test]
    fn rocksdb_snapshots_restore_by_key_group() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        // Small: written out and evicted all along. Large: memory mirrors the database.
        for cache in [16, 1 << 20] {
            snapshots_restore_by_key_group(rocks(&d, cache).as_mut(), &|| rocks(&d, cache));
        }
    }

    #[test]
    fn memory_snapshots_restore_into_rocksdb() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let mut memory = MemoryBackend::new();
        let model = matches_a_map(&mut memory, 3, 2000);
        let files = memory.snapshot(&d.join("snap")).unwrap();
        let source = RestoreSource { dir: d.join("snap"), files, key_groups: 0..128 };
        let mut b = rocks(&d, 16);
        b.restore(&[source], 0..128).unwrap();
        assert_eq!(contents(b.as_ref()), model);
    }

    #[test]
    fn rocksdb_snapshots_restore_into_memory_by_key_group() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        snapshots_restore_by_key_group(rocks(&d, 16).as_mut(), &|| Box::new(MemoryBackend::new()));
    }

    #[test]
    fn a_state_directory_is_never_reused_and_is_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let b = RocksBackend::create(&path).unwrap();
        assert!(RocksBackend::create(&path).err().expect("refused").contains("never reused"));
        drop(b);
        assert!(!path.exists());
    }

    #[test]
    fn a_missing_snapshot_file_is_an_error_not_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let mut b = rocks(&d, 4);
        matches_a_map(b.as_mut(), 9, 500);
        let files = b.snapshot(&d.join("snap")).unwrap();
        let sst = files.files.iter().find(|f| f.name.ends_with(".sst")).expect("a table file").name.clone();
        std::fs::remove_file(d.join("snap").join(sst)).unwrap();
        let source = RestoreSource { dir: d.join("snap"), files, key_groups: 0..64 };
        assert!(rocks(&d, 4).restore(&[source], 0..64).is_err());
    }
}
