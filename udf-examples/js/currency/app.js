// weir-world: map-function
//
// Bench query q1: every bid with its price converted to euros.
//
// In: a bid as JSON ({"auction":..,"bidder":..,"price":..,"ts":..}, price in
// cents). Out: `auction,bidder,price_eur,ts` where price_eur is price * rate
// (doubles) printed with exactly three decimals, rounding half away from
// zero. Parameter `rate` (default 0.908). Same output as the Rust example.

import * as weir from './weir.js';

const U64_MAX = 18446744073709551615n;

/** Thousandths as `units.ddd`; `millis` is a non-negative integer. */
function thousandths(millis) {
  if (millis > Number.MAX_SAFE_INTEGER) {
    // Exact integer arithmetic on the double's value, capped like Rust's `as u64`.
    let m = millis === Infinity ? U64_MAX : BigInt(millis);
    if (m > U64_MAX) m = U64_MAX;
    return `${m / 1000n}.${String(m % 1000n).padStart(3, '0')}`;
  }
  const frac = millis % 1000;
  return `${(millis - frac) / 1000}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

export const { lifecycle, mapper } = weir.map({
  init(params) {
    params.allowOnly(['rate']);
    this.rate = params.number('rate', 0.908);
  },

  // A record that is not a JSON object, or lacks one of the unsigned integer
  // fields, is refused with a reason like "field `price` is missing".
  map(record) {
    const auction = record.uint('auction');
    const bidder = record.uint('bidder');
    const price = record.uint('price');
    const ts = record.uint('ts');
    // Rust: (price as f64 * rate * 1000.0).round() as u64 -- half away from
    // zero, then saturating: NaN and negatives become 0.
    const x = price * this.rate * 1000.0;
    let millis = 0;
    if (x >= 0.5) {
      millis = Math.trunc(x);
      if (x - millis >= 0.5) millis += 1;
    }
    return `${auction},${bidder},${thousandths(millis)},${ts}`;
  },
});
