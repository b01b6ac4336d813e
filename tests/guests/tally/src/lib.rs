//! Exercises every kind of keyed state. Per key: the number of records as
//! the key's state; named state `first` (a value: the first record's
//! value), `seen` (a map: value -> times seen), `log` (a list of values).
//! A record `BOOM` panics after writing to named state (the writes must not
//! survive). At a timer 10 ms after each record's timestamp it emits
//! `{"key","count","first","seen","log","timer"}` built from all of it.

use std::io::Write;
use weir_sdk::{Context, Emitter, Params, Process, Record, Result};

struct Tally;

#[weir_sdk::process]
impl Process for Tally {
    type State = u64;

    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&[])?;
        Ok(Tally)
    }

    fn process(&self, ctx: &mut Context<'_, u64>, record: &Record, _out: &mut Emitter) -> Result<()> {
        let v = record.value();
        if ctx.value("first")?.is_none() {
            ctx.set_value("first", v)?;
        }
        let seen = ctx.map_get("seen", v)?.map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        ctx.map_put("seen", v, &(seen + 1).to_le_bytes())?;
        ctx.list_append("log", v)?;
        if v == b"BOOM" {
            panic!("BOOM after writing named state");
        }
        *ctx.state_or_insert_with(|| 0) += 1;
        ctx.register_timer(record.timestamp() + 10)
    }

    fn on_timer(&self, ctx: &mut Context<'_, u64>, at: i64, out: &mut Emitter) -> Result<()> {
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        let first = ctx.value("first")?.map(text).unwrap_or_default();
        let seen: Vec<String> = ctx
            .map_entries("seen")?
            .into_iter()
            .map(|(k, v)| format!("{}={}", text(k), u64::from_le_bytes(v.try_into().unwrap_or_default())))
            .collect();
        let log: Vec<String> = ctx.list("log")?.into_iter().map(text).collect();
        let key = text(ctx.key().to_vec());
        let count = ctx.state().copied().unwrap_or(0);
        out.emit_with(|o| {
            let _ = write!(o, "{{\"key\":{key:?},\"count\":{count},\"first\":{first:?},\"seen\":{seen:?},\"log\":{log:?},\"timer\":{at}}}");
        });
        Ok(())
    }
}
