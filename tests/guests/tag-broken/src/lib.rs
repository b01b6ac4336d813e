//! A map whose `init` always fails: the hot-swap tests check that swapping
//! to it leaves the old version running.

use weir_sdk::{Error, Map, Output, Params, Record, Result};

struct Broken;

#[weir_sdk::map]
impl Map for Broken {
    fn init(_params: &Params) -> Result<Self> {
        Err(Error::invalid_params("this version cannot start: it needs a setting nobody gave it"))
    }

    fn map(&self, record: &Record, out: &mut Output) -> Result<()> {
        out.set_value(record.value());
        Ok(())
    }
}
