//! What a component may declare: how many linear memories, tables and core
//! instances one instance of it may have ([`InstanceCaps`]), and the check
//! at load time that refuses components declaring more.
//!
//! wasmtime's own defaults (10,000 of each) are meant for trusted code; on a
//! server facing tenants each of them is memory and setup time the host
//! pays, and with multi-memory a per-memory cap alone would let a component
//! multiply its share. So the caps are enforced twice:
//!
//! * at load (and so at upload), statically: memories and tables as
//!   `Component::resources_required` counts them, core instances by walking
//!   the component's core-instance sections. A refusal is a typed
//!   `LoadError::TooManyResources`, which `weir serve` answers with a 4xx
//!   and `weir run` with exit code 2;
//! * at instantiation, exactly, by the store's resource limiter
//!   (`host_state::Limiter`): the static instance count is a lower bound
//!   (a nested component instantiated N times counts once), so the limiter
//!   is the authority and the static check is the early, clear refusal.

use wasmtime::component::Component;

/// Caps on what one instance of a component may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceCaps {
    /// Linear memories (multi-memory is on), over all core instances.
    pub memories: u32,
    /// Tables, over all core instances.
    pub tables: u32,
    /// Core module instances.
    pub instances: u32,
}

impl Default for InstanceCaps {
    /// Room for what the language toolchains produce (Rust: 1 memory, a few
    /// tables and instances; Python and JavaScript runtimes: one memory and
    /// a dozen or so instances), and little more.
    fn default() -> Self {
        InstanceCaps { memories: 8, tables: 32, instances: 64 }
    }
}

/// Why a component was refused (the loader turns it into its `LoadError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// It declares more than the caps.
    TooLarge(String),
    /// Its binary could not be read.
    Unreadable(String),
}

/// Refuses `component` (compiled from `bytes`) if it declares more than `caps`.
pub(crate) fn check_footprint(component: &Component, bytes: &[u8], caps: &InstanceCaps) -> Result<(), Refused> {
    let Some(needs) = component.resources_required() else {
        return Err(Refused::TooLarge(
            "the component instantiates core modules it imports, whose memories and tables cannot be counted"
                .to_string(),
        ));
    };
    let instances =
        core_instances(bytes).map_err(|e| Refused::Unreadable(format!("cannot read the component: {e}")))?;
    for (what, declared, cap) in [
        ("linear memories", needs.num_memories, caps.memories),
        ("tables", needs.num_tables, caps.tables),
        ("core instances", instances, caps.instances),
    ] {
        if declared > cap {
            return Err(Refused::TooLarge(format!(
                "the component declares {declared} {what}; an instance may have at most {cap}"
            )));
        }
    }
    Ok(())
}

/// Counts the core module instantiations in a component binary, nested
/// components included (each once).
fn core_instances(bytes: &[u8]) -> Result<u32, String> {
    let mut r = Reader { bytes, at: 8 };
    if bytes.len() < 8 {
        return Err("truncated preamble".into());
    }
    let mut count: u32 = 0;
    while !r.done() {
        let id = r.byte()?;
        let size = r.u32()? as usize;
        let body = r.take(size)?;
        match id {
            // A nested component: a whole component binary.
            4 => count = count.saturating_add(core_instances(body)?),
            // Core instances: `0x00 module args` instantiates, `0x01 exports` only bundles.
            2 => {
                let mut s = Reader { bytes: body, at: 0 };
                for _ in 0..s.u32()? {
                    match s.byte()? {
                        0x00 => {
                            count = count.saturating_add(1);
                            s.u32()?;
                            for _ in 0..s.u32()? {
                                s.name()?;
                                s.byte()?;
                                s.u32()?;
                            }
                        }
                        0x01 => {
                            for _ in 0..s.u32()? {
                                s.name()?;
                                s.byte()?;
                                s.u32()?;
                            }
                        }
                        other => return Err(format!("unknown core instance form {other:#04x}")),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(count)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.at).ok_or("unexpected end")?;
        self.at += 1;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let mut value: u64 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| "LEB128 out of range".to_string());
            }
        }
        Err("LEB128 too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("section past the end")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn name(&mut self) -> Result<(), String> {
        let n = self.u32()? as usize;
        self.take(n).map(|_| ())
    }
}

#[cfg(test)]
mod tests;
