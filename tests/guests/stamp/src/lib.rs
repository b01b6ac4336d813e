//! Sets each record's timestamp from the integer field `at` of its JSON
//! value (an event-time function); the value is unchanged.

use weir_sdk::json::Object;
use weir_sdk::{Output, Record, Result};

#[weir_sdk::map]
fn stamp(record: &Record, out: &mut Output) -> Result<()> {
    out.set_timestamp(Object::parse(record.value())?.i64("at")?);
    out.set_value(record.value());
    Ok(())
}
