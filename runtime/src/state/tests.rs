use super::*;
use crate::types::TimeWindow;
use std::collections::BTreeMap;

/// Oracle: random operations on the backend and on a plain BTreeMap agree.
#[test]
fn memory_backend_matches_a_map() {
    let mut seed = 5u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut backend = MemoryBackend::new();
    let mut model: BTreeMap<(Namespace, Vec<u8>), Vec<u8>> = BTreeMap::new();
    let spaces = [
        Namespace::keyed(0, 0),
        Namespace::keyed(0, 1),
        Namespace::window(1, 0, TimeWindow { start: 0, end: 10 }),
        Namespace::window(1, 0, TimeWindow { start: 10, end: 20 }),
    ];
    let mut key = Vec::new();
    for _ in 0..5000 {
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
}

#[test]
fn state_keys_lead_with_the_key_group() {
    let mut k = Vec::new();
    state_key(300, b"auction", &mut k);
    assert_eq!(&k[..2], &[1, 44]);
    assert_eq!(record_key(&k), b"auction");
}
