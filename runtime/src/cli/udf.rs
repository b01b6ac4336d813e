//! `weir udf inspect FILE`.

use super::{EXIT_FAILED, EXIT_INVALID};
use crate::types::UdfRef;
use crate::wasm::{WasmConfig, WasmHost};
use std::path::Path;
use std::process::ExitCode;

pub(super) fn inspect(file: &Path) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("weir: cannot read {}: {e}", file.display());
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let host = match WasmHost::new(WasmConfig::default()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("weir: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let name = UdfRef {
        name: file.file_stem().map_or("component".into(), |s| s.to_string_lossy().into_owned()),
        version: "local".into(),
    };
    match host.load(&name, &bytes) {
        Ok(c) => {
            println!("file:      {}", file.display());
            println!("size:      {} bytes", c.size);
            println!("sha256:    {}", c.hash);
            println!("compiled:  {:.0} ms", c.compile_time.as_secs_f64() * 1000.0);
            let kinds: Vec<&str> = c.kinds().iter().map(|k| k.step_name()).collect();
            println!("serves:    {}", if kinds.is_empty() { "nothing".to_string() } else { kinds.join(", ") });
            println!("exports:");
            for e in &c.exports {
                println!("  {e}");
            }
            println!("imports:");
            for i in &c.imports {
                println!("  {i}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir: {}: {e}", file.display());
            ExitCode::from(EXIT_INVALID)
        }
    }
}
