use super::*;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

const MIB: u64 = 1 << 20;

/// Instantiates a component whose one core module has `memories` memories
/// of `mib` MiB each (and `tables` tables), instantiated `instances` times,
/// under a [`Limiter`] of `cap` bytes and `counts`; returns the outcome, the
/// bytes of memory counted, and whether the memory cap was the cause.
fn instantiate(
    memories: usize,
    mib: u64,
    tables: usize,
    instances: usize,
    cap: u64,
    counts: InstanceCaps,
) -> (Result<(), String>, u64, bool) {
    let pages = mib * MIB / 65536;
    let body = format!("(memory {pages})").repeat(memories) + &"(table 1 funcref)".repeat(tables);
    let insts = "(core instance (instantiate $m))".repeat(instances);
    let bytes = wat::parse_str(format!("(component (core module $m {body}) {insts})")).unwrap();
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).unwrap();
    let component = Component::new(&engine, bytes).unwrap();
    let mut store = Store::new(&engine, HostState::new("test".into(), cap, counts, None, Default::default()));
    store.limiter(|s| &mut s.limiter);
    let r = Linker::new(&engine).instantiate(&mut store, &component).map(|_| ()).map_err(|e| format!("{e:#}"));
    let l = &store.data().limiter;
    (r, l.total, l.exceeded)
}

#[test]
fn one_memory_cap_covers_all_of_an_instance_s_memories() {
    let caps = InstanceCaps::default();
    let (r, total, exceeded) = instantiate(3, 10, 0, 1, 32 * MIB, caps);
    assert_eq!(r, Ok(()));
    assert_eq!((total, exceeded), (30 * MIB, false));
    // Each memory is under the cap; together they are over it.
    let (r, _, exceeded) = instantiate(4, 10, 0, 1, 32 * MIB, caps);
    assert!(exceeded, "{r:?}");
    assert!(r.unwrap_err().contains("memory cap of 33554432 bytes exceeded"));
}

#[test]
fn the_counts_of_memories_tables_and_instances_are_capped_at_instantiation_too() {
    let caps = InstanceCaps { memories: 2, tables: 3, instances: 2 };
    assert_eq!(instantiate(2, 1, 3, 1, 32 * MIB, caps).0, Ok(()));
    let (r, _, exceeded) = instantiate(3, 1, 0, 1, 32 * MIB, caps);
    assert!(!exceeded);
    assert!(r.unwrap_err().contains("memory count too high"));
    assert!(instantiate(1, 1, 4, 1, 32 * MIB, caps).0.unwrap_err().contains("table count too high"));
    assert_eq!(instantiate(0, 1, 0, 2, 32 * MIB, caps).0, Ok(()));
    assert!(instantiate(0, 1, 0, 3, 32 * MIB, caps).0.unwrap_err().contains("instance count too high"));
}
