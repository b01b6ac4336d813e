use super::*;
use wasmtime::{Config, Engine};

/// A component whose core module has `memories` memories and `tables`
/// tables, instantiated `instances` times.
fn component(memories: usize, tables: usize, instances: usize) -> Vec<u8> {
    let body = "(memory 1)".repeat(memories) + &"(table 1 funcref)".repeat(tables);
    let insts = "(core instance (instantiate $m))".repeat(instances);
    wat::parse_str(format!("(component (core module $m {body}) {insts})")).unwrap()
}

fn compile(bytes: &[u8]) -> Component {
    let mut c = Config::new();
    c.wasm_component_model(true);
    Component::new(&Engine::new(&c).unwrap(), bytes).unwrap()
}

fn check(bytes: &[u8]) -> Result<(), Refused> {
    check_footprint(&compile(bytes), bytes, &InstanceCaps::default())
}

#[test]
fn core_instances_are_counted_in_nested_components_and_bundles_are_not() {
    assert_eq!(core_instances(&component(1, 0, 3)).unwrap(), 3);
    let nested = wat::parse_str(
        r#"(component
            (core module $m (func (export "f")))
            (core instance $a (instantiate $m))
            (core instance (export "g" (func $a "f")))
            (component (core module $n) (core instance (instantiate $n)) (core instance (instantiate $n))))"#,
    )
    .unwrap();
    assert_eq!(core_instances(&nested).unwrap(), 3);
    assert!(core_instances(&nested[..nested.len() - 3]).is_err(), "a truncated binary is an error");
}

#[test]
fn a_component_within_the_caps_is_accepted() {
    assert_eq!(check(&component(1, 2, 4)), Ok(()));
    assert_eq!(check(&component(2, 8, 4)), Ok(()), "8 memories and 32 tables over 4 instances");
}

#[test]
fn many_memories_tables_or_instances_are_refused_with_the_count() {
    for (bytes, expect) in [
        (component(9, 0, 1), "declares 9 linear memories; an instance may have at most 8"),
        (component(3, 0, 3), "declares 9 linear memories"),
        (component(0, 33, 1), "declares 33 tables; an instance may have at most 32"),
        (component(0, 0, 65), "declares 65 core instances; an instance may have at most 64"),
    ] {
        match check(&bytes) {
            Err(Refused::TooLarge(m)) => assert!(m.contains(expect), "{m}"),
            other => panic!("expected a refusal containing {expect:?}, got {other:?}"),
        }
    }
}
