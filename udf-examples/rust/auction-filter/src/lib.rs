//! Bench query q2's predicate: keeps the records whose integer JSON field
//! `field` (default `auction`) is a multiple of `modulo` (default 123).

use weir_sdk::json::Object;
use weir_sdk::{Error, Filter, Params, Record, Result};

struct Multiple {
    field: String,
    modulo: u64,
}

#[weir_sdk::filter]
impl Filter for Multiple {
    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&["field", "modulo"])?;
        let modulo = params.parse("modulo")?.unwrap_or(123);
        if modulo == 0 {
            return Err(Error::invalid_params("`modulo` must be at least 1"));
        }
        Ok(Multiple { field: params.get("field").unwrap_or("auction").to_string(), modulo })
    }

    fn filter(&self, record: &Record) -> Result<bool> {
        Ok(Object::parse(record.value())?.u64(&self.field)? % self.modulo == 0)
    }
}
