//! Where a job finds the bytes of `name@version`.

use crate::types::UdfRef;
use std::path::PathBuf;

/// A source of component bytes by function reference.
pub trait UdfCatalog {
    /// The component bytes of `udf`, or why there are none.
    fn fetch(&self, udf: &UdfRef) -> Result<Vec<u8>, String>;
}

/// Directories of `NAME@VERSION.wasm` files (for `weir run`).
#[derive(Debug, Clone, Default)]
pub struct UdfDirs {
    dirs: Vec<PathBuf>,
}

impl UdfDirs {
    /// Looks in `dirs`, in order.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        UdfDirs { dirs }
    }
}

impl UdfCatalog for UdfDirs {
    fn fetch(&self, udf: &UdfRef) -> Result<Vec<u8>, String> {
        let file = format!("{udf}.wasm");
        for d in &self.dirs {
            let path = d.join(&file);
            match std::fs::read(&path) {
                Ok(bytes) => return Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        if self.dirs.is_empty() {
            return Err(format!("function {udf} not found: no UDF directory given (use --udf-dir DIR or WEIR_UDF_DIR with a file {file})"));
        }
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        Err(format!("function {udf} not found: no file {file} in {}", dirs.join(", ")))
    }
}
