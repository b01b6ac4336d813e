// Staged as weir-host.js by sdk/js/build for the map, filter, flat-map and
// aggregate worlds: they import only `weir:udf/host`.
import { log as hostLog, currentWatermark as hostWatermark } from 'weir:udf/host@0.1.0';
import { WeirError } from './json.js';

export function log(level, message) {
  hostLog(level, message);
}

export function currentWatermark() {
  return Number(hostWatermark());
}

function unavailable() {
  throw new WeirError('failed', 'named state and timers exist only in process functions (weir-world: process-function)');
}

export const state = {
  valueGet: unavailable,
  valueSet: unavailable,
  clear: unavailable,
  mapGet: unavailable,
  mapPut: unavailable,
  mapRemove: unavailable,
  mapEntries: unavailable,
  listGet: unavailable,
  listAppend: unavailable,
};

export const timers = { register: unavailable, delete: unavailable };

export const testing = undefined;
