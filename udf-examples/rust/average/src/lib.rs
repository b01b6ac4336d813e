//! The average of a numeric JSON field per key and window. Parameters:
//! `field` (a top-level field name, required); `output`: `json` (default,
//! `{"key":..,"window_start":..,"window_end":..,"avg":..,"count":..}`) or
//! `csv` (`key,window_end,avg`). Records without the field are refused.

use std::io::Write;
use weir_sdk::json::Object;
use weir_sdk::{Aggregate, Error, Output, Params, Record, Result, Window};

struct Average {
    field: String,
    csv: bool,
}

#[weir_sdk::aggregate]
impl Aggregate for Average {
    /// Sum and count.
    type Acc = (f64, u64);

    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&["field", "output"])?;
        let csv = match params.get("output").unwrap_or("json") {
            "csv" => true,
            "json" => false,
            other => return Err(Error::invalid_params(format!("`output` is {other:?}; expected csv or json"))),
        };
        Ok(Average { field: params.require("field")?.to_string(), csv })
    }

    fn create(&self) -> (f64, u64) {
        (0.0, 0)
    }

    fn add(&self, acc: &mut (f64, u64), record: &Record) -> Result<()> {
        let v = Object::parse(record.value())?.f64(&self.field)?;
        acc.0 += v;
        acc.1 += 1;
        Ok(())
    }

    fn merge(&self, a: (f64, u64), b: (f64, u64)) -> (f64, u64) {
        (a.0 + b.0, a.1 + b.1)
    }

    fn finish(&self, key: &[u8], window: Window, (sum, count): (f64, u64), out: &mut Output) -> Result<()> {
        let key = String::from_utf8_lossy(key);
        let avg = sum / count as f64;
        let written = if self.csv {
            write!(out, "{key},{},{avg}", window.end)
        } else {
            write!(out, "{{\"key\":{key:?},\"window_start\":{},\"window_end\":{},\"avg\":{avg},\"count\":{count}}}", window.start, window.end)
        };
        written.map_err(|e| Error::failed(e.to_string()))
    }
}
