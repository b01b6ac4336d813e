//! A keyed anomaly detector. Per key (a sensor), it keeps the running mean
//! and variance of a numeric field (Welford's method) as the key's state,
//! and reports a reading that deviates from the mean by more than
//! `threshold` standard deviations once at least `warmup` readings were
//! seen. Each reading also (re)arms a timer `silence_ms` after it: if the
//! sensor sends nothing before the watermark passes it, the timer reports
//! the sensor as silent.
//!
//! Parameters: `field` (default `value`), `threshold` (default 3),
//! `warmup` (default 5), `silence_ms` (default 60000). Outputs are JSON:
//! `{"sensor":..,"alert":"anomaly","value":..,"mean":..,"stddev":..,"ts":..}`
//! or `{"sensor":..,"alert":"silent","since":..}`.

use std::io::Write;
use weir_sdk::json::Object;
use weir_sdk::{Context, Emitter, Error, Params, Process, Record, Result};

struct Detector {
    field: String,
    threshold: f64,
    warmup: u64,
    silence_ms: i64,
}

/// Count, mean, sum of squared deviations, timestamp of the last reading.
type Stats = (u64, f64, f64, i64);

#[weir_sdk::process]
impl Process for Detector {
    type State = Stats;

    fn init(params: &Params) -> Result<Self> {
        params.allow_only(&["field", "threshold", "warmup", "silence_ms"])?;
        let detector = Detector {
            field: params.get("field").unwrap_or("value").to_string(),
            threshold: params.parse("threshold")?.unwrap_or(3.0),
            warmup: params.parse("warmup")?.unwrap_or(5),
            silence_ms: params.parse("silence_ms")?.unwrap_or(60_000),
        };
        weir_sdk::info(&format!(
            "watching `{}`: anomalies after {} readings, silence after {} ms",
            detector.field, detector.warmup, detector.silence_ms
        ));
        Ok(detector)
    }

    fn process(&self, ctx: &mut Context<'_, Stats>, record: &Record, out: &mut Emitter) -> Result<()> {
        let value = Object::parse(record.value())?.f64(&self.field)?;
        let sensor = String::from_utf8_lossy(ctx.key()).into_owned();
        let ts = record.timestamp();
        let (n, mean, m2, last) = ctx.state().copied().unwrap_or((0, 0.0, 0.0, i64::MIN));
        if n >= self.warmup {
            let stddev = (m2 / (n - 1) as f64).sqrt();
            if (value - mean).abs() > self.threshold * stddev {
                out.emit_with(|o| {
                    let _ = write!(o, "{{\"sensor\":{sensor:?},\"alert\":\"anomaly\",\"value\":{value},\"mean\":{mean},\"stddev\":{stddev},\"ts\":{ts}}}");
                });
            }
        }
        // Welford's update.
        let n1 = n + 1;
        let delta = value - mean;
        let mean1 = mean + delta / n1 as f64;
        let m2_1 = m2 + delta * (value - mean1);
        ctx.set_state((n1, mean1, m2_1, last.max(ts)));
        // Re-arm the silence timer.
        if last != i64::MIN {
            ctx.delete_timer(last + self.silence_ms)?;
        }
        ctx.register_timer(last.max(ts) + self.silence_ms).map_err(|e| Error::failed(e.to_string()))
    }

    fn on_timer(&self, ctx: &mut Context<'_, Stats>, _at: i64, out: &mut Emitter) -> Result<()> {
        let sensor = String::from_utf8_lossy(ctx.key()).into_owned();
        let since = ctx.state().map_or(0, |s| s.3);
        out.emit_with(|o| {
            let _ = write!(o, "{{\"sensor\":{sensor:?},\"alert\":\"silent\",\"since\":{since}}}");
        });
        Ok(())
    }
}
