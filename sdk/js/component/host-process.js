// Staged as weir-host.js by sdk/js/build for the process world, which
// imports `weir:udf/host`, `weir:udf/state` and `weir:udf/timers`.
import { log as hostLog, currentWatermark as hostWatermark } from 'weir:udf/host@0.1.0';
import {
  valueGet,
  valueSet,
  clear,
  mapGet,
  mapPut,
  mapRemove,
  mapEntries,
  listGet,
  listAppend,
} from 'weir:udf/state@0.1.0';
import { register, delete as deleteTimer } from 'weir:udf/timers@0.1.0';

export function log(level, message) {
  hostLog(level, message);
}

export function currentWatermark() {
  return Number(hostWatermark());
}

export const state = { valueGet, valueSet, clear, mapGet, mapPut, mapRemove, mapEntries, listGet, listAppend };

export const timers = { register, delete: deleteTimer };

export const testing = undefined;
