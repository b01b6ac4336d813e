// The host services as seen from plain Node (unit tests of the SDK and of
// your own functions). `sdk/js/build` replaces this file in the component
// with component/host.js or component/host-process.js, which call the
// `weir:udf` imports instead.
//
// Here: log lines go to stderr; the watermark, named state and timers live
// in memory and can be inspected and reset through `testing`.

const I64_MIN = -9223372036854775808;

const mem = {
  watermark: I64_MIN,
  values: new Map(),
  maps: new Map(),
  lists: new Map(),
  timers: new Set(),
  logs: [],
  quiet: false,
};

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function id(key, name) {
  return `${hex(key)}/${name}`;
}

function unhex(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** What the stand-in recorded; `reset()` empties it. */
export const testing = {
  mem,
  setWatermark(ms) {
    mem.watermark = ms;
  },
  /** Registered timers as [keyText, at] pairs, sorted. */
  timers() {
    return [...mem.timers]
      .map((t) => {
        const [k, at] = t.split('@');
        return [new TextDecoder().decode(unhex(k)), Number(at)];
      })
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  },
  reset() {
    mem.watermark = I64_MIN;
    mem.values.clear();
    mem.maps.clear();
    mem.lists.clear();
    mem.timers.clear();
    mem.logs.length = 0;
  },
};

export function log(level, message) {
  mem.logs.push([level, message]);
  if (!mem.quiet) console.error(`[weir ${level}] ${message}`);
}

/** The watermark as a Number (i64::MIN before the first one). */
export function currentWatermark() {
  return mem.watermark;
}

const copy = (b) => Uint8Array.from(b);

export const state = {
  valueGet: (key, name) => mem.values.get(id(key, name)),
  valueSet: (key, name, value) => void mem.values.set(id(key, name), copy(value)),
  clear: (key, name) => {
    const k = id(key, name);
    mem.values.delete(k);
    mem.maps.delete(k);
    mem.lists.delete(k);
  },
  mapGet: (key, name, field) => mem.maps.get(id(key, name))?.get(hex(field)),
  mapPut: (key, name, field, value) => {
    const k = id(key, name);
    if (!mem.maps.has(k)) mem.maps.set(k, new Map());
    mem.maps.get(k).set(hex(field), copy(value));
  },
  mapRemove: (key, name, field) => void mem.maps.get(id(key, name))?.delete(hex(field)),
  mapEntries: (key, name) =>
    [...(mem.maps.get(id(key, name)) ?? new Map())].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([f, v]) => [unhex(f), v]),
  listGet: (key, name) => [...(mem.lists.get(id(key, name)) ?? [])],
  listAppend: (key, name, item) => {
    const k = id(key, name);
    if (!mem.lists.has(k)) mem.lists.set(k, []);
    mem.lists.get(k).push(copy(item));
  },
};

/** `at` arrives as a BigInt, as through the WIT import. */
export const timers = {
  register: (key, at) => void mem.timers.add(`${hex(key)}@${at}`),
  delete: (key, at) => void mem.timers.delete(`${hex(key)}@${at}`),
};
