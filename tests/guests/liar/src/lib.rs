//! A map that breaks the contract without the SDK's help: for a batch whose
//! first record is `GARBAGE` it returns bytes that are not a batch, for
//! `SHORT` one record too few, otherwise the input unchanged.

wit_bindgen::generate!({ path: "../../../wit", world: "weir:udf/map-function" });

use exports::weir::udf::{lifecycle, mapper};
use weir::udf::types::{Mapped, UdfError};

struct Liar;

impl lifecycle::Guest for Liar {
    fn init(_params: Vec<(String, String)>) -> Result<(), UdfError> {
        Ok(())
    }
}

impl mapper::Guest for Liar {
    fn map(input: Vec<u8>) -> Result<Mapped, UdfError> {
        // The first record's value starts after the count (4) and prefix (20) when it has no key.
        let first = input.get(24..).unwrap_or_default();
        if first.starts_with(b"GARBAGE") {
            return Ok(Mapped { output: b"\x05\0\0\0not a batch".to_vec(), rejected: vec![] });
        }
        if first.starts_with(b"SHORT") {
            return Ok(Mapped { output: 0u32.to_le_bytes().to_vec(), rejected: vec![] });
        }
        Ok(Mapped { output: input, rejected: vec![] })
    }
}

export!(Liar);
