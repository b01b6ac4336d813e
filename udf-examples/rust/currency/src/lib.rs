//! Bench query q1: every bid with its price converted to euros.
//!
//! In: a bid as JSON (`{"auction":..,"bidder":..,"price":..,"ts":..}`, price in
//! cents). Out: `auction,bidder,price_eur,ts` where `price_eur` is
//! `price * rate` (f64) printed with exactly three decimals, rounding half
//! away from zero. Parameter `rate` (default 0.908).

use weir_sdk::json::Object;
use weir_sdk::{Map, Output, Params, Record, Result};

struct Currency {
    rate: f64,
}

#[weir_sdk::map]
impl Map for Currency {
    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&["rate"])?;
        Ok(Currency { rate: params.parse("rate")?.unwrap_or(0.908) })
    }

    fn map(&self, record: &Record, out: &mut Output) -> Result<()> {
        let bid = Object::parse(record.value())?;
        let (auction, bidder, price, ts) = (bid.u64("auction")?, bid.u64("bidder")?, bid.u64("price")?, bid.u64("ts")?);
        let millis = (price as f64 * self.rate * 1000.0).round() as u64;
        let v = out.value_mut();
        push_u64(v, auction);
        v.push(b',');
        push_u64(v, bidder);
        v.push(b',');
        push_u64(v, millis / 1000);
        let frac = millis % 1000;
        v.extend_from_slice(&[b'.', b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8, b',']);
        push_u64(v, ts);
        Ok(())
    }
}

/// Decimal digits of `n`, without going through `core::fmt`.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
