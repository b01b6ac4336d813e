//! Counts the records of each key and window (bench query q5 through
//! WebAssembly). Parameter `output`: `csv` writes `key,window_end,count`
//! (`key,count` for count and global windows); `json` (the default)
//! `{"key":..,"window_end":..,"count":..}`.

use std::io::Write;
use weir_sdk::{Aggregate, Error, Output, Params, Record, Result, Window};

struct Count {
    csv: bool,
}

#[weir_sdk::aggregate]
impl Aggregate for Count {
    type Acc = u64;

    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&["output"])?;
        let csv = match params.get("output").unwrap_or("json") {
            "csv" => true,
            "json" => false,
            other => return Err(Error::invalid_params(format!("`output` is {other:?}; expected csv or json"))),
        };
        Ok(Count { csv })
    }

    fn create(&self) -> u64 {
        0
    }

    fn add(&self, acc: &mut u64, _record: &Record) -> Result<()> {
        *acc += 1;
        Ok(())
    }

    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }

    fn finish(&self, key: &[u8], window: Window, acc: u64, out: &mut Output) -> Result<()> {
        let key = String::from_utf8_lossy(key);
        let written = match (self.csv, window.is_time()) {
            (true, true) => write!(out, "{key},{},{acc}", window.end),
            (true, false) => write!(out, "{key},{acc}"),
            (false, true) => write!(out, "{{\"key\":{key:?},\"window_end\":{},\"count\":{acc}}}", window.end),
            (false, false) => write!(out, "{{\"key\":{key:?},\"count\":{acc}}}"),
        };
        written.map_err(|e| Error::failed(e.to_string()))
    }
}
