# weir-world: aggregate-function
"""The average of a numeric JSON field per key and window. Parameters:
`field` (a top-level field name, required); `output`: `json` (default,
{"key":..,"window_start":..,"window_end":..,"avg":..,"count":..}) or `csv`
(`key,window_end,avg`). Records without the field are refused."""

import math

import weir


def divide(a, b):
    """a / b with IEEE semantics (b == 0 gives inf or NaN, as in Rust)."""
    if b:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a)


class Average(weir.Aggregate):
    # The accumulator [sum, count] is stored as JSON (the default codec).

    def __init__(self, params):
        params.allow_only(["field", "output"])
        self.csv = params.choice("output", ["csv", "json"], "json") == "csv"
        self.field = params.require("field")

    def create(self):
        return (0.0, 0)

    def add(self, acc, record):
        v = record.object().f64(self.field)
        return (acc[0] + v, acc[1] + 1)

    def merge(self, a, b):
        return (a[0] + b[0], a[1] + b[1])

    def finish(self, key, window, acc):
        total, count = acc
        key = key.decode("utf-8", "replace")
        avg = divide(total, float(count))
        if self.csv:
            return f"{key},{window.end},{avg!r}"
        return (
            f'{{"key":{weir.dumps(key)},"window_start":{window.start},"window_end":{window.end},'
            f'"avg":{avg!r},"count":{count}}}'
        )


Lifecycle, Aggregator = weir.exports(Average)
