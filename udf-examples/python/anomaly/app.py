# weir-world: process-function
"""A keyed anomaly detector. Per key (a sensor), it keeps the running mean
and variance of a numeric field (Welford's method) as the key's state, and
reports a reading that deviates from the mean by more than `threshold`
standard deviations once at least `warmup` readings were seen. Each reading
also (re)arms a timer `silence_ms` after it: if the sensor sends nothing
before the watermark passes it, the timer reports the sensor as silent.

Parameters: `field` (default `value`), `threshold` (default 3), `warmup`
(default 5), `silence_ms` (default 60000). Outputs are JSON:
{"sensor":..,"alert":"anomaly","value":..,"mean":..,"stddev":..,"ts":..}
or {"sensor":..,"alert":"silent","since":..}.
"""

import math

import weir


def sqrt(x):
    return math.sqrt(x) if x >= 0.0 else math.nan


class Detector(weir.Process):
    # Count, mean, sum of squared deviations, timestamp of the last reading.
    codec = weir.StructCodec("<Qddq")

    def __init__(self, params):
        params.allow_only(["field", "threshold", "warmup", "silence_ms"])
        self.field = params.str("field", "value")
        self.threshold = params.float("threshold", 3.0)
        self.warmup = params.int("warmup", 5, min=0, max=weir.U64_MAX)
        self.silence_ms = params.int("silence_ms", 60_000, min=weir.I64_MIN, max=weir.I64_MAX)
        weir.info(f"watching `{self.field}`: anomalies after {self.warmup} readings, silence after {self.silence_ms} ms")

    def process(self, ctx, record, out):
        value = record.object().f64(self.field)
        sensor = ctx.key.decode("utf-8", "replace")
        ts = record.timestamp
        n, mean, m2, last = ctx.state or (0, 0.0, 0.0, weir.I64_MIN)
        if n >= self.warmup:
            stddev = sqrt(m2 / float((n - 1) & weir.U64_MAX))
            if abs(value - mean) > self.threshold * stddev:
                out.emit(
                    f'{{"sensor":{weir.dumps(sensor)},"alert":"anomaly","value":{value!r},'
                    f'"mean":{mean!r},"stddev":{stddev!r},"ts":{ts}}}'
                )
        # Welford's update.
        n1 = n + 1
        delta = value - mean
        mean1 = mean + delta / float(n1)
        m2_1 = m2 + delta * (value - mean1)
        ctx.state = (n1, mean1, m2_1, max(last, ts))
        # Re-arm the silence timer.
        if last != weir.I64_MIN:
            ctx.delete_timer(last + self.silence_ms)
        ctx.register_timer(max(last, ts) + self.silence_ms)

    def on_timer(self, ctx, at, out):
        sensor = ctx.key.decode("utf-8", "replace")
        since = ctx.state[3] if ctx.state else 0
        out.emit(f'{{"sensor":{weir.dumps(sensor)},"alert":"silent","since":{since}}}')


Lifecycle, Processor = weir.exports(Detector)
