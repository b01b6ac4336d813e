//! A filter whose `init` needs `threshold` to be an integer (keeps values
//! longer than it), and whose `init` never returns when asked to:
//! `hang: loop` spins, `hang: sleep` sleeps for 30 s in WASI.

use weir_sdk::{Error, Filter, Params, Record, Result};

struct Longer(usize);

#[weir_sdk::filter]
impl Filter for Longer {
    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&["threshold", "hang"])?;
        match params.get("hang") {
            None => {}
            Some("loop") => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Some("sleep") => std::thread::sleep(std::time::Duration::from_secs(30)),
            Some(other) => return Err(Error::invalid_params(format!("hang: loop or sleep, not {other}"))),
        }
        Ok(Longer(params.parse("threshold")?.unwrap_or(0)))
    }

    fn filter(&self, record: &Record) -> Result<bool> {
        Ok(record.value().len() > self.0)
    }
}
