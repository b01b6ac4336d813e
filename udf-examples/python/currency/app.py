# weir-world: map-function
"""Bench query q1: every bid with its price converted to euros.

In: a bid as JSON ({"auction":..,"bidder":..,"price":..,"ts":..}, price in
cents). Out: `auction,bidder,price_eur,ts` where price_eur is price * rate
(a double) printed with exactly three decimals, rounding half away from
zero. Parameter `rate` (default 0.908). Same output as the Rust example.
"""

import math

import weir


def round_u64(x):
    """`f64::round` (half away from zero) then `as u64` (saturating, NaN -> 0)."""
    if not x > 0.0:
        return 0
    if x >= 18446744073709551615.0:
        return weir.U64_MAX
    f = math.floor(x)
    return f + 1 if x - f >= 0.5 else f


class Currency(weir.Map):
    def __init__(self, params):
        params.allow_only(["rate"])
        self.rate = params.float("rate", 0.908)

    def map(self, record):
        bid = record.object()
        auction, bidder, price, ts = bid.u64("auction"), bid.u64("bidder"), bid.u64("price"), bid.u64("ts")
        millis = round_u64(float(price) * self.rate * 1000.0)
        return f"{auction},{bidder},{millis // 1000}.{millis % 1000:03d},{ts}"


Lifecycle, Mapper = weir.exports(Currency)
