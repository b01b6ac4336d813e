//! Version 1 of a map that marks each JSON object with the version that
//! processed it (`"by":"v1"`); the hot-swap tests swap it for `tag-two`.

use weir_sdk::{Error, Output, Record, Result};

#[weir_sdk::map]
fn tag(record: &Record, out: &mut Output) -> Result<()> {
    let v = record.value();
    let body = v.strip_suffix(b"}").ok_or_else(|| Error::invalid_input("not a JSON object"))?;
    out.value_mut().extend_from_slice(body);
    out.value_mut().extend_from_slice(br#","by":"v1"}"#);
    Ok(())
}
