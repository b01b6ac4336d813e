// weir-world: filter-function
//
// Bench query q2's predicate: keeps the records whose integer JSON field
// `field` (default `auction`) is a multiple of `modulo` (default 123).

import * as weir from './weir.js';

export const { lifecycle, filter } = weir.filter({
  init(params) {
    params.allowOnly(['field', 'modulo']);
    this.modulo = params.uint('modulo', 123);
    if (this.modulo === 0) throw weir.WeirError.invalidParams('`modulo` must be at least 1');
    this.field = params.get('field') ?? 'auction';
  },

  filter(record) {
    return record.uint(this.field) % this.modulo === 0;
  },
});
