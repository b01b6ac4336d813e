// weir-world: aggregate-function
//
// The average of a numeric JSON field per key and window. Parameters:
// `field` (a top-level field name, required); `output`: `json` (default,
// {"key":..,"window_start":..,"window_end":..,"avg":..,"count":..}) or
// `csv` (`key,window_end,avg`). Records without the field are refused.

import * as weir from './weir.js';

export const { lifecycle, aggregator } = weir.aggregate({
  // [sum, count] as two f64s: exact for any double (the JSON default would
  // turn an infinite sum into null).
  codec: weir.codecs.float64,

  init(params) {
    params.allowOnly(['field', 'output']);
    const output = params.get('output') ?? 'json';
    if (output !== 'csv' && output !== 'json') {
      throw weir.WeirError.invalidParams(`\`output\` is ${JSON.stringify(output)}; expected csv or json`);
    }
    this.csv = output === 'csv';
    this.field = params.require('field');
  },

  create() {
    return [0, 0];
  },

  add(acc, record) {
    const v = record.number(this.field);
    acc[0] += v;
    acc[1] += 1;
  },

  merge(a, b) {
    return [a[0] + b[0], a[1] + b[1]];
  },

  finish(key, window, [sum, count]) {
    const k = weir.text(key);
    const avg = sum / count;
    if (this.csv) return `${k},${weir.intString(window.end)},${avg}`;
    return `{"key":${JSON.stringify(k)},"window_start":${weir.intString(window.start)},` +
      `"window_end":${weir.intString(window.end)},"avg":${avg},"count":${count}}`;
  },
});
