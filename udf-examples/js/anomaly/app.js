// weir-world: process-function
//
// A keyed anomaly detector. Per key (a sensor), it keeps the running mean
// and variance of a numeric field (Welford's method) as the key's state,
// and reports a reading that deviates from the mean by more than
// `threshold` standard deviations once at least `warmup` readings were
// seen. Each reading also (re)arms a timer `silence_ms` after it: if the
// sensor sends nothing before the watermark passes it, the timer reports
// the sensor as silent.
//
// Parameters: `field` (default `value`), `threshold` (default 3),
// `warmup` (default 5), `silence_ms` (default 60000). Outputs are JSON:
// {"sensor":..,"alert":"anomaly","value":..,"mean":..,"stddev":..,"ts":..}
// or {"sensor":..,"alert":"silent","since":..}.

import * as weir from './weir.js';

const I64_MIN = -9223372036854775808;
const U64_MAX = 18446744073709551615;

export const { lifecycle, processor } = weir.process({
  // State: [count, mean, sum of squared deviations, timestamp of the last
  // reading] as four f64s (exact: counts and timestamps stay below 2^53).
  codec: weir.codecs.float64,

  init(params) {
    params.allowOnly(['field', 'threshold', 'warmup', 'silence_ms']);
    this.field = params.get('field') ?? 'value';
    this.threshold = params.number('threshold', 3.0);
    this.warmup = params.uint('warmup', 5);
    this.silenceMs = params.int('silence_ms', 60000);
    weir.info(`watching \`${this.field}\`: anomalies after ${this.warmup} readings, silence after ${this.silenceMs} ms`);
  },

  process(ctx, record) {
    const value = record.number(this.field);
    const sensor = ctx.keyText;
    const ts = record.timestamp;
    const [n, mean, m2, last] = ctx.state ?? [0, 0.0, 0.0, I64_MIN];
    if (n >= this.warmup) {
      // (n - 1) as u64 wraps at n = 0 in the Rust original.
      const stddev = Math.sqrt(m2 / (n === 0 ? U64_MAX : n - 1));
      if (Math.abs(value - mean) > this.threshold * stddev) {
        ctx.emit(`{"sensor":${JSON.stringify(sensor)},"alert":"anomaly","value":${value},"mean":${mean},` +
          `"stddev":${stddev},"ts":${weir.intString(ts)}}`);
      }
    }
    // Welford's update.
    const n1 = n + 1;
    const delta = value - mean;
    const mean1 = mean + delta / n1;
    const m21 = m2 + delta * (value - mean1);
    const latest = Math.max(last, ts);
    ctx.state = [n1, mean1, m21, latest];
    // Re-arm the silence timer.
    if (last !== I64_MIN) ctx.deleteTimer(last + this.silenceMs);
    ctx.registerTimer(latest + this.silenceMs);
  },

  onTimer(ctx, _at) {
    const s = ctx.state;
    const since = s === undefined ? 0 : s[3];
    ctx.emit(`{"sensor":${JSON.stringify(ctx.keyText)},"alert":"silent","since":${weir.intString(since)}}`);
  },
});
