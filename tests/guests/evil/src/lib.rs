//! The identity map, except on records whose value starts with a trigger:
//! `PANIC` panics, `LOOP` never returns, `OOM` allocates without bound,
//! `SLEEP` sleeps for 30 s (blocking in WASI, where epoch interruption cannot
//! reach), `STACK` recurses without bound, `BIG` returns a 64 MiB value,
//! `REJECT` refuses the record, `DROPKEY` returns the record without its key.

use weir_sdk::{Error, Output, Record, Result};

#[weir_sdk::map]
fn evil(record: &Record, out: &mut Output) -> Result<()> {
    let v = record.value();
    if v.starts_with(b"PANIC") {
        panic!("PANIC requested by the record");
    }
    if v.starts_with(b"LOOP") {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if v.starts_with(b"OOM") {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
    if v.starts_with(b"SLEEP") {
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
    if v.starts_with(b"STACK") {
        std::hint::black_box(deeper(0, v));
    }
    if v.starts_with(b"BIG") {
        out.value_mut().resize(64 << 20, b'B');
        return Ok(());
    }
    if v.starts_with(b"REJECT") {
        return Err(Error::invalid_input("REJECT requested by the record"));
    }
    if v.starts_with(b"DROPKEY") {
        out.set_key(None);
    }
    out.value_mut().extend_from_slice(v);
    Ok(())
}

/// Recurses until the WebAssembly stack runs out. Only wasm locals (no
/// address-taken ones), so it is the engine's stack that overflows, not the
/// shadow stack in linear memory; the result depends on every frame, so the
/// recursion cannot become a loop.
#[inline(never)]
fn deeper(depth: u64, v: &[u8]) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let below = deeper(depth + 1, v);
    below.rotate_left(5) ^ u64::from(v[depth as usize % v.len()]).wrapping_mul(depth | 1)
}
