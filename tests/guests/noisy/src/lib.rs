//! A flat map that prints to stdout and stderr and logs for every record
//! (the host must rate-limit, never trap), and emits each record twice.

use weir_sdk::{Emitter, Record, Result};

#[weir_sdk::flat_map]
fn noisy(record: &Record, out: &mut Emitter) -> Result<()> {
    println!("stdout line for a record of {} bytes", record.value().len());
    eprintln!("stderr line");
    weir_sdk::info("a log line through the host");
    out.emit(record.value());
    out.emit(record.value());
    Ok(())
}
