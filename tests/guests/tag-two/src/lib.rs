//! Version 2 of a map that marks each JSON object with the version that
//! processed it (`"by":"v2"`); the hot-swap tests swap `tag-one` for it.

use weir_sdk::{Error, Output, Record, Result};

#[weir_sdk::map]
fn tag(record: &Record, out: &mut Output) -> Result<()> {
    let v = record.value();
    let body = v.strip_suffix(b"}").ok_or_else(|| Error::invalid_input("not a JSON object"))?;
    out.value_mut().extend_from_slice(body);
    out.value_mut().extend_from_slice(br#","by":"v2"}"#);
    Ok(())
}
