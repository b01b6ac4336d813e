//! Loading a component: recognise the bytes, compile once (cached by content
//! hash), check its imports and exports against the `weir:udf` worlds, and
//! keep an `InstancePre` to instantiate from.

use super::bindings::exports::weir::udf::{aggregator, filter, flat_mapper, lifecycle, mapper, processor};
use super::host_state::HostState;
use crate::manifest::FunctionKind;
use crate::types::UdfRef;
use std::fmt;
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::Engine;

/// The WIT package version this host implements.
pub const WIT_PACKAGE: &str = "weir:udf";
/// Its version.
pub const WIT_VERSION: &str = "0.1.0";

/// Why bytes cannot become a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// Not a WebAssembly binary at all.
    NotWasm(String),
    /// A core module where a component is needed.
    CoreModule,
    /// Fails validation or compilation.
    Invalid(String),
    /// Exports nothing of `weir:udf`, or the wrong version of it.
    WrongExports(String),
    /// Imports something the host does not provide.
    Imports(String),
    /// Lacks the interface a step needs.
    WrongKind(String),
    /// Declares more memories, tables or core instances than an instance
    /// may have (`InstanceCaps`).
    TooManyResources(String),
    /// The host itself failed (engine, cache directory).
    Host(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotWasm(m) => write!(f, "not a WebAssembly component: {m}"),
            LoadError::CoreModule => f.write_str(
                "this is a core WebAssembly module, not a component: build it for the wasm32-wasip2 target \
                 (or wrap a core module with `wasm-tools component new`)",
            ),
            LoadError::Invalid(m) => write!(f, "invalid component: {m}"),
            LoadError::WrongExports(m) | LoadError::WrongKind(m) => f.write_str(m),
            LoadError::Imports(m) => write!(f, "the component imports something weir does not provide: {m}"),
            LoadError::TooManyResources(m) => write!(f, "the component is too large to run: {m}"),
            LoadError::Host(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A compiled, checked component, ready to instantiate.
pub struct LoadedComponent {
    /// The function's name and version.
    pub udf: UdfRef,
    /// SHA-256 of the component bytes, hex.
    pub hash: String,
    /// Size of the component bytes.
    pub size: usize,
    /// Time spent compiling (zero when the compiled code came from the cache).
    pub compile_time: Duration,
    /// Its imports, as names.
    pub imports: Vec<String>,
    /// Its exports, as names.
    pub exports: Vec<String>,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) lifecycle: lifecycle::GuestIndices,
    pub(crate) mapper: Option<mapper::GuestIndices>,
    pub(crate) filter: Option<filter::GuestIndices>,
    pub(crate) flat_mapper: Option<flat_mapper::GuestIndices>,
    pub(crate) aggregator: Option<aggregator::GuestIndices>,
    pub(crate) processor: Option<processor::GuestIndices>,
}

impl fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("udf", &self.udf)
            .field("hash", &self.hash)
            .field("kinds", &self.kinds())
            .finish()
    }
}

fn interface(name: &str) -> String {
    format!("{WIT_PACKAGE}/{name}@{WIT_VERSION}")
}

/// The exported interface a step kind calls.
pub(crate) fn interface_of(kind: FunctionKind) -> String {
    interface(match kind {
        FunctionKind::Map => "mapper",
        FunctionKind::Filter => "filter",
        FunctionKind::FlatMap => "flat-mapper",
        FunctionKind::Aggregate => "aggregator",
        FunctionKind::Process => "processor",
    })
}

fn sdk_attribute(kind: FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Map => "#[weir_sdk::map]",
        FunctionKind::Filter => "#[weir_sdk::filter]",
        FunctionKind::FlatMap => "#[weir_sdk::flat_map]",
        FunctionKind::Aggregate => "#[weir_sdk::aggregate]",
        FunctionKind::Process => "#[weir_sdk::process]",
    }
}

impl LoadedComponent {
    /// Step kinds this component can serve.
    pub fn kinds(&self) -> Vec<FunctionKind> {
        let mut k = Vec::new();
        if self.mapper.is_some() {
            k.push(FunctionKind::Map);
        }
        if self.filter.is_some() {
            k.push(FunctionKind::Filter);
        }
        if self.flat_mapper.is_some() {
            k.push(FunctionKind::FlatMap);
        }
        if self.aggregator.is_some() {
            k.push(FunctionKind::Aggregate);
        }
        if self.processor.is_some() {
            k.push(FunctionKind::Process);
        }
        k
    }

    /// Checks that this component can serve a step of `kind`.
    pub fn check_kind(&self, kind: FunctionKind) -> Result<(), LoadError> {
        if self.kinds().contains(&kind) {
            return Ok(());
        }
        let has: Vec<&str> = self.kinds().iter().map(|k| k.step_name()).collect();
        let has = if has.is_empty() {
            "no map, filter or flat_map function".to_string()
        } else {
            format!("a {} function", has.join(" and a "))
        };
        Err(LoadError::WrongKind(format!(
            "{} is {has}, but a `{}` step needs a component exporting {} (in Rust: {})",
            self.udf,
            kind.step_name(),
            interface_of(kind),
            sdk_attribute(kind)
        )))
    }
}

/// Recognises the binary kind from its preamble.
pub(crate) fn check_preamble(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(LoadError::NotWasm(format!(
            "it does not start with the WebAssembly magic bytes 00 61 73 6d (starts with {})",
            shown.join(" ")
        )));
    }
    match &bytes[4..8] {
        [1, 0, 0, 0] => Err(LoadError::CoreModule),
        [_, _, 1, 0] => Ok(()),
        other => Err(LoadError::NotWasm(format!("unknown WebAssembly version/layer {other:02x?}"))),
    }
}

/// Checks `component` against the worlds and prepares instantiation.
pub(crate) fn check(
    engine: &Engine,
    linker: &Linker<HostState>,
    udf: &UdfRef,
    component: Component,
    hash: String,
    size: usize,
    compile_time: Duration,
) -> Result<LoadedComponent, LoadError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();

    let ours: Vec<&String> = exports.iter().filter(|e| e.starts_with(&format!("{WIT_PACKAGE}/"))).collect();
    if ours.is_empty() {
        let found = if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") };
        return Err(LoadError::WrongExports(format!(
            "{udf} exports no {WIT_PACKAGE} interface (it exports {found}); build it against the weir:udf WIT package \
             (in Rust: the weir-sdk crate with #[weir_sdk::map], #[weir_sdk::filter] or #[weir_sdk::flat_map])"
        )));
    }
    if let Some(other) = ours.iter().find(|e| !e.ends_with(&format!("@{WIT_VERSION}"))) {
        return Err(LoadError::WrongExports(format!(
            "{udf} was built against another version of the contract ({other}); this weir implements {WIT_PACKAGE}@{WIT_VERSION}"
        )));
    }
    let pre = linker.instantiate_pre(&component).map_err(|e| LoadError::Imports(format!("{e:#}")))?;
    let mismatch = |name: &str, e: wasmtime::Error| {
        LoadError::WrongExports(format!(
            "{udf}: export {} does not match the weir:udf contract: {e:#}",
            interface(name)
        ))
    };
    let has = |name: &str| exports.iter().any(|e| *e == interface(name));
    if !has("lifecycle") {
        return Err(LoadError::WrongExports(format!(
            "{udf} does not export {} (its `init` function)",
            interface("lifecycle")
        )));
    }
    let lifecycle = lifecycle::GuestIndices::new(&pre).map_err(|e| mismatch("lifecycle", e))?;
    // Each exported function interface, if present, must match the contract.
    macro_rules! optional {
        ($module:ident, $name:literal) => {
            if has($name) {
                Some($module::GuestIndices::new(&pre).map_err(|e| mismatch($name, e))?)
            } else {
                None
            }
        };
    }
    let mapper = optional!(mapper, "mapper");
    let filter = optional!(filter, "filter");
    let flat_mapper = optional!(flat_mapper, "flat-mapper");
    let aggregator = optional!(aggregator, "aggregator");
    let processor = optional!(processor, "processor");
    Ok(LoadedComponent {
        udf: udf.clone(),
        hash,
        size,
        compile_time,
        imports,
        exports,
        pre,
        lifecycle,
        mapper,
        filter,
        flat_mapper,
        aggregator,
        processor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preambles() {
        assert_eq!(check_preamble(b"\0asm\x01\0\0\0"), Err(LoadError::CoreModule));
        assert!(check_preamble(b"\0asm\x0d\0\x01\0").is_ok());
        let e = check_preamble(b"hello world").unwrap_err().to_string();
        assert!(e.contains("starts with 68 65 6c 6c 6f 20 77 6f"), "{e}");
        assert!(check_preamble(b"\0as").is_err());
    }
}
