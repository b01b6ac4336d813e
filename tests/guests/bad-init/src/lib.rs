//! A filter whose `init` needs `threshold` to be an integer (keeps values
//! longer than it).

use weir_sdk::{Filter, Params, Record, Result};

struct Longer(usize);

#[weir_sdk::filter]
impl Filter for Longer {
    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&["threshold"])?;
        Ok(Longer(params.parse("threshold")?.unwrap_or(0)))
    }

    fn filter(&self, record: &Record) -> Result<bool> {
        Ok(record.value().len() > self.0)
    }
}
