// Weir guest SDK for JavaScript.
//
//   import * as weir from './weir.js';
//   export const { lifecycle, mapper } = weir.map({ init(params) {...}, map(record) {...} });
//
// `sdk/js/build` puts this module (and layout.js, json.js, unicode.js, weir-host.js) next
// to your app.js and builds a WebAssembly component for the world named in
// the app's `weir-world:` comment. See README.md.

import * as host from './weir-host.js';
import { JsonObject, WeirError } from './json.js';
import {
  BatchView,
  Record,
  originRecord,
  Writer,
  readAddGroups,
  readFinishGroups,
  readProcessGroups,
  readTimerGroups,
  strictText,
  text,
  toBytes,
  utf8,
} from './layout.js';

export { JsonObject, WeirError, Record, text, toBytes, utf8 };
export { LayoutError } from './layout.js';
/** Rust-compatible Unicode helpers (the engine in a component has no ICU): isAlphanumeric, toLowerCase, words. */
export * as unicode from './unicode.js';
/** The in-memory stand-ins of weir-host.js under plain Node; undefined in a component. */
export const testing = host.testing;

const I64_MIN = -9223372036854775808n;

// ---------------------------------------------------------------------------
// Logging and time

/** Writes a line to the pipeline's log: level 'trace' | 'debug' | 'info' | 'warn' | 'error'. */
export function log(level, message) {
  host.log(level, String(message));
}
export const trace = (message) => log('trace', message);
export const debug = (message) => log('debug', message);
export const info = (message) => log('info', message);
export const warn = (message) => log('warn', message);
export const error = (message) => log('error', message);

/** The calling subtask's event-time watermark, ms (-2^63 before the first one). */
export function watermark() {
  return host.currentWatermark();
}

/** The exact decimal text of an integral Number (also beyond 2^53, e.g. i64::MIN). */
export function intString(n) {
  return Number.isSafeInteger(n) || !Number.isInteger(n) ? String(n) : BigInt(n).toString();
}

// ---------------------------------------------------------------------------
// Errors

const KINDS = new Set(['invalid-params', 'invalid-input', 'failed']);
const ASYNC = 'a Weir function is synchronous: it returned a Promise (no async functions or await)';

/** The message for a dead letter or an error: WeirError → its message, Error → "TypeError: ...". */
export function reason(e) {
  try {
    if (e instanceof WeirError) return e.message;
    if (e instanceof Error) return e.name === 'Error' ? e.message : `${e.name}: ${e.message}`;
    if (e !== null && typeof e === 'object' && typeof e.tag === 'string' && 'val' in e) return String(e.val);
    return String(e);
  } catch (_) {
    return 'an exception that cannot be shown';
  }
}

function kindOf(e, otherwise) {
  let k;
  if (e instanceof WeirError) k = e.kind;
  else if (e !== null && typeof e === 'object' && !(e instanceof Error)) k = e.tag;
  return KINDS.has(k) ? k : otherwise;
}

const err = (kind, message) => ({ tag: 'err', val: { tag: kind, val: message } });
const callError = (e) => err(kindOf(e, 'failed'), reason(e));
const NOT_INIT = err('failed', 'called before init (the host must call lifecycle.init first)');
const badInput = (e) => err('invalid-input', `the host sent a malformed batch: ${e.message}`);
const badState = (e) => err('failed', `cannot decode the stored state: ${reason(e)}`);

// ---------------------------------------------------------------------------
// Parameters

const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$/i;
const INT = /^[+-]?\d+$/;
const UINT = /^\+?\d+$/;

/** The step's `params` from the manifest: name/value strings, in manifest order. */
export class Params {
  constructor(pairs) {
    this.pairs = pairs;
  }

  /** The value of `name` (the first if repeated), or undefined. */
  get(name) {
    for (const [n, v] of this.pairs) if (n === name) return v;
    return undefined;
  }

  has(name) {
    return this.get(name) !== undefined;
  }

  /** The value of `name`, or an invalid-params error saying it is missing. */
  require(name) {
    const v = this.get(name);
    if (v === undefined) throw new WeirError('invalid-params', `missing parameter \`${name}\``);
    return v;
  }

  _bad(name, v, why) {
    return new WeirError('invalid-params', `parameter \`${name}\` = ${JSON.stringify(v)}: ${why}`);
  }

  /** `name` as a number (Rust f64 syntax: 1, -2.5, 1e3, inf, nan), or `otherwise` when absent. */
  number(name, otherwise) {
    const v = this.get(name);
    if (v === undefined) return otherwise;
    if (!FLOAT.test(v)) throw this._bad(name, v, 'invalid float literal');
    const t = v.replace(/^[+-]/, '').toLowerCase();
    if (t === 'nan') return NaN;
    if (t === 'inf' || t === 'infinity') return v[0] === '-' ? -Infinity : Infinity;
    return Number(v);
  }

  _integer(name, otherwise, re, what) {
    const v = this.get(name);
    if (v === undefined) return otherwise;
    if (v === '') throw this._bad(name, v, 'cannot parse integer from empty string');
    if (!re.test(v)) throw this._bad(name, v, 'invalid digit found in string');
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw this._bad(name, v, `${what} too large for a JavaScript number (over 2^53 - 1)`);
    return n === 0 ? 0 : n;
  }

  /** `name` as an integer, or `otherwise` when absent. */
  int(name, otherwise) {
    return this._integer(name, otherwise, INT, 'integer');
  }

  /** `name` as an unsigned integer, or `otherwise` when absent. */
  uint(name, otherwise) {
    return this._integer(name, otherwise, UINT, 'integer');
  }

  /** `name` as `true` / `false`, or `otherwise` when absent. */
  bool(name, otherwise) {
    const v = this.get(name);
    if (v === undefined) return otherwise;
    if (v !== 'true' && v !== 'false') throw this._bad(name, v, 'provided string was not `true` or `false`');
    return v === 'true';
  }

  /**
   * Fails with an invalid-params error naming any parameter not in `known`,
   * so that a misspelt parameter is caught when the pipeline starts.
   */
  allowOnly(known) {
    for (const [n] of this.pairs) {
      if (known.includes(n)) continue;
      if (known.length === 0) {
        throw new WeirError('invalid-params', `unknown parameter \`${n}\`: this function takes no parameters`);
      }
      throw new WeirError('invalid-params', `unknown parameter \`${n}\` (known: ${known.join(', ')})`);
    }
  }

  /** [name, value] pairs in manifest order. */
  entries() {
    return this.pairs.slice();
  }

  get size() {
    return this.pairs.length;
  }
}

// ---------------------------------------------------------------------------
// Outputs

/** An output whose key, timestamp or headers differ from the defaults (see `out`). */
export class Out {
  constructor(value, key, timestamp, headers) {
    this.value = value;
    this.key = key;
    this.timestamp = timestamp;
    this.headers = headers;
  }
}

/**
 * An output record: `value` plus any of `key` (string, Uint8Array, or null
 * for no key), `timestamp` (ms: Number, BigInt or Date) and `headers`
 * ([name, value] pairs; replaces the input's headers). What is not given
 * comes from the input record (or the group's key and time).
 */
export function out(value, { key, timestamp, headers } = {}) {
  return new Out(value, key, timestamp, headers);
}

function emitInto(w, o, value, opts) {
  const len = w.len;
  try {
    if (opts !== undefined) {
      const key = opts.key;
      if (typeof key === 'string' && typeof value === 'string' && opts.timestamp === undefined && opts.headers === undefined) {
        w.recordKeyed(o, key, value);
      } else {
        w.record(o, value, key, opts.timestamp, opts.headers);
      }
    } else if (typeof value === 'string' || !(value instanceof Out)) w.recordFrom(o, value);
    else w.record(o, value.value, value.key, value.timestamp, value.headers);
  } catch (e) {
    w.len = len;
    throw e;
  }
}

/** Emits the records of one input record (flatMap). */
export class Emitter {
  constructor(w) {
    this._w = w;
    this._o = null;
  }

  /** Emits `value` (string, bytes, JSON-able value, or `weir.out(...)`); `opts`: {key, timestamp, headers}. */
  emit(value, opts) {
    emitInto(this._w, this._o, value, opts);
  }

  /** The timestamp emitted records get by default. */
  get timestamp() {
    return this._o.timestamp;
  }
}

function emitAll(em, values) {
  if (typeof values === 'string' || ArrayBuffer.isView(values) || values === null || typeof values[Symbol.iterator] !== 'function') {
    throw new TypeError('flatMap must return nothing, or an array (or other iterable) of values to emit');
  }
  if (Array.isArray(values)) {
    for (let i = 0; i < values.length; i++) em.emit(values[i]);
  } else {
    for (const v of values) em.emit(v);
  }
}

// ---------------------------------------------------------------------------
// Codecs (how accumulators and per-key state become bytes)

/** JSON (default): any JSON value; NaN and ±Infinity become null. */
const json = {
  encode(v) {
    const s = JSON.stringify(v);
    if (s === undefined) throw new TypeError(`cannot store ${typeof v} as JSON`);
    return utf8(s);
  },
  decode: (b) => JSON.parse(strictText(b, 'stored state')),
};

/** Raw bytes: a Uint8Array (strings are stored as UTF-8). */
const bytes = {
  encode: (v) => toBytes(v, 'the state'),
  decode: (b) => b.slice(),
};

/** A string, stored as UTF-8. */
const string = {
  encode: (v) => utf8(String(v)),
  decode: (b) => strictText(b, 'stored state'),
};

/** An array of Numbers stored as little-endian f64s: exact for every double (NaN, ±Infinity too). */
const float64 = {
  encode(a) {
    const n = a.length;
    const b = new Uint8Array(8 * n);
    const dv = new DataView(b.buffer);
    for (let i = 0; i < n; i++) dv.setFloat64(8 * i, a[i], true);
    return b;
  },
  decode(b) {
    if (b.length % 8 !== 0) throw new RangeError(`${b.length} bytes is not a whole number of f64s`);
    const n = b.length / 8;
    const out = new Array(n);
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
    return out;
  },
};

export const codecs = { json, bytes, string, float64 };

function encodeWith(codec, v) {
  if (v === undefined) throw new TypeError('cannot store undefined');
  return toBytes(codec.encode(v), 'an encoded value');
}

// ---------------------------------------------------------------------------
// Shared glue

const ENCODER = new TextEncoder();
const OUT = new Writer(1 << 16);
const AUX = new Writer(1 << 12);

function lifecycleOf(spec, st) {
  return {
    init(pairs) {
      try {
        const params = new Params(pairs);
        if (typeof spec.init === 'function') {
          const ret = spec.init(params);
          if (ret !== undefined && ret !== null && typeof ret.then === 'function') throw new TypeError(ASYNC);
        } else {
          params.allowOnly([]);
        }
        st.ready = true;
        return undefined;
      } catch (e) {
        return err(kindOf(e, 'invalid-params') === 'failed' ? 'failed' : 'invalid-params', reason(e));
      }
    },
  };
}

function specOf(spec, shape, fn) {
  if (typeof spec === 'function') spec = { [fn]: spec };
  if (spec === null || typeof spec !== 'object' || typeof spec[fn] !== 'function') {
    throw new TypeError(`weir.${shape}(...) needs an object with a ${fn}(...) method`);
  }
  return spec;
}

// ---------------------------------------------------------------------------
// map

/**
 * A `map` function (world map-function): `map(record)` returns the output
 * value (string, Uint8Array, any other JSON-able value, or `weir.out(...)`).
 * Throwing refuses the record.
 *
 *   export const { lifecycle, mapper } = weir.map({ init(params) {...}, map(record) {...} });
 */
export function map(spec) {
  spec = specOf(spec, 'map', 'map');
  const st = { ready: false };
  const mapper = {
    map(input) {
      try {
        if (!st.ready) return NOT_INIT;
        let batch;
        try {
          batch = new BatchView(input);
        } catch (e) {
          return badInput(e);
        }
        const n = batch.length;
        const T = batch.T;
        const bytes = batch.bytes;
        const w = OUT.reset();
        w.beginBatch();
        // The string case is inlined (locals instead of writer fields): the
        // engine is an interpreter, every operation per record counts.
        let buf = w.buf;
        let dv = w.dv;
        let pos = w.len;
        let count = 0;
        const rejected = [];
        for (let i = 0, j = 0; i < n; i++, j += 4) {
          const r = new Record(batch, j);
          try {
            const v = spec.map(r);
            if (typeof v === 'string') {
              // Output = the input record's bytes with the value replaced.
              const p = T[j];
              const vo = T[j + 2];
              const ho = T[j + 3];
              const end = T[j + 4];
              const at = pos + (vo - p);
              if (at + v.length * 3 + (end - ho) > buf.length) {
                w.len = pos;
                w.ensure(at - pos + v.length * 3 + (end - ho));
                buf = w.buf;
                dv = w.dv;
              }
              buf.set(bytes.subarray(p, vo), pos);
              const vl = ENCODER.encodeInto(v, buf.subarray(at)).written;
              dv.setUint32(pos + 12, vl, true);
              if (end > ho) buf.set(bytes.subarray(ho, end), at + vl);
              pos = at + vl + (end - ho);
              count++;
            } else {
              if (v === undefined) {
                throw new WeirError('invalid-input', 'map returned undefined (return a value, or throw to refuse the record)');
              }
              w.len = pos;
              w.count = count;
              if (v instanceof Out) w.record(r, v.value, v.key, v.timestamp, v.headers);
              else w.recordFrom(r, v);
              pos = w.len;
              count = w.count;
              buf = w.buf;
              dv = w.dv;
            }
          } catch (e) {
            buf = w.buf; // a failed write may have grown the buffer; pos and count are unchanged
            dv = w.dv;
            rejected.push({ index: i, reason: reason(e) });
          }
        }
        w.len = pos;
        w.count = count;
        w.endBatch();
        return { output: w.view(), rejected };
      } catch (e) {
        return callError(e);
      }
    },
  };
  return { lifecycle: lifecycleOf(spec, st), mapper };
}

// ---------------------------------------------------------------------------
// filter

/**
 * A `filter` function (world filter-function): `filter(record)` returns
 * whether the record passes (truthy / falsy). Throwing refuses the record.
 *
 *   export const { lifecycle, filter } = weir.filter({ filter(record) {...} });
 */
export function filter(spec) {
  spec = specOf(spec, 'filter', 'filter');
  const st = { ready: false };
  const filterExport = {
    filter(input) {
      try {
        if (!st.ready) return NOT_INIT;
        let batch;
        try {
          batch = new BatchView(input);
        } catch (e) {
          return badInput(e);
        }
        const n = batch.length;
        const keep = new Uint8Array((n + 7) >>> 3);
        const rejected = [];
        for (let i = 0; i < n; i++) {
          const r = new Record(batch, 4 * i);
          try {
            const k = spec.filter(r);
            if (k) {
              if (k !== true && typeof k.then === 'function') throw new TypeError(ASYNC);
              keep[i >>> 3] |= 1 << (i & 7);
            }
          } catch (e) {
            rejected.push({ index: i, reason: reason(e) });
          }
        }
        return { keep, rejected };
      } catch (e) {
        return callError(e);
      }
    },
  };
  return { lifecycle: lifecycleOf(spec, st), filter: filterExport };
}

// ---------------------------------------------------------------------------
// flatMap

/**
 * A `flat_map` function (world flat-map-function): `flatMap(record, out)`
 * calls `out.emit(value, {key, timestamp, headers})` any number of times,
 * or returns an array of values. Throwing refuses the record and drops what
 * it emitted.
 *
 *   export const { lifecycle, flatMapper } = weir.flatMap({ flatMap(record, out) {...} });
 */
export function flatMap(spec) {
  spec = specOf(spec, 'flatMap', 'flatMap');
  const st = { ready: false };
  const flatMapper = {
    flatMap(input) {
      try {
        if (!st.ready) return NOT_INIT;
        let batch;
        try {
          batch = new BatchView(input);
        } catch (e) {
          return badInput(e);
        }
        const n = batch.length;
        const w = OUT.reset();
        w.beginBatch();
        const em = new Emitter(w);
        const rejected = [];
        for (let i = 0; i < n; i++) {
          const r = new Record(batch, 4 * i);
          em._o = r;
          const len = w.len;
          const count = w.count;
          try {
            const ret = spec.flatMap(r, em);
            if (ret !== undefined) emitAll(em, ret);
          } catch (e) {
            w.len = len;
            w.count = count;
            rejected.push({ index: i, reason: reason(e) });
          }
        }
        w.endBatch();
        return { output: w.view(), rejected };
      } catch (e) {
        return callError(e);
      }
    },
  };
  return { lifecycle: lifecycleOf(spec, st), flatMapper };
}

// ---------------------------------------------------------------------------
// aggregate

/** A window's bounds `[start, end)` in ms; count and global windows have start = -2^63. */
export class Window {
  constructor(start, end) {
    this.start = start;
    this.end = end;
  }

  /** Whether this is a time window (tumbling, sliding, session). */
  get isTime() {
    return this.start !== -9223372036854775808;
  }
}

/**
 * A window aggregate (world aggregate-function):
 *   create()                  → the empty accumulator
 *   add(acc, record)          → the new accumulator, or nothing after changing acc in place
 *                               (throwing refuses the record)
 *   merge(a, b)               → the merged accumulator (session windows)
 *   finish(key, window, acc)  → the output value (or weir.out(...)), nothing for no output;
 *                               the record gets the group's key and the timestamp window.end - 1
 * Accumulators are stored with `codec` (default weir.codecs.json).
 *
 *   export const { lifecycle, aggregator } = weir.aggregate({ create() {...}, add(acc, r) {...}, ... });
 */
export function aggregate(spec) {
  for (const fn of ['create', 'add', 'finish']) {
    if (spec === null || typeof spec !== 'object' || typeof spec[fn] !== 'function') {
      throw new TypeError(`weir.aggregate(...) needs an object with create, add, merge and finish methods (${fn} is missing)`);
    }
  }
  const codec = spec.codec ?? json;
  const st = { ready: false };
  const aggregator = {
    create() {
      try {
        if (!st.ready) return NOT_INIT;
        return encodeWith(codec, spec.create());
      } catch (e) {
        return callError(e);
      }
    },

    add(groups) {
      try {
        if (!st.ready) return NOT_INIT;
        let gs;
        try {
          gs = readAddGroups(groups);
        } catch (e) {
          return badInput(e);
        }
        const w = OUT.reset();
        w.u32(gs.length);
        const rejected = [];
        let index = 0;
        for (const g of gs) {
          let acc;
          try {
            acc = codec.decode(g.acc);
          } catch (e) {
            return badState(e);
          }
          const batch = g.records;
          for (let i = 0; i < batch.length; i++) {
            const r = new Record(batch, 4 * i);
            try {
              const next = spec.add(acc, r);
              if (next !== undefined) {
                if (next !== null && typeof next.then === 'function') throw new TypeError(ASYNC);
                acc = next;
              }
            } catch (e) {
              rejected.push({ index, reason: reason(e) });
            }
            index++;
          }
          w.bytes(encodeWith(codec, acc));
        }
        return { accumulators: w.view(), rejected };
      } catch (e) {
        return callError(e);
      }
    },

    merge(a, b) {
      try {
        if (!st.ready) return NOT_INIT;
        if (typeof spec.merge !== 'function') return err('failed', 'this aggregate has no merge (needed by session windows)');
        let x;
        let y;
        try {
          x = codec.decode(a);
          y = codec.decode(b);
        } catch (e) {
          return badState(e);
        }
        const m = spec.merge(x, y);
        return encodeWith(codec, m === undefined ? x : m);
      } catch (e) {
        return callError(e);
      }
    },

    finish(fired) {
      try {
        if (!st.ready) return NOT_INIT;
        let gs;
        try {
          gs = readFinishGroups(fired);
        } catch (e) {
          return badInput(e);
        }
        const fdv = new DataView(fired.buffer, fired.byteOffset, fired.byteLength);
        const w = OUT.reset();
        w.beginBatch();
        for (const g of gs) {
          let acc;
          try {
            acc = codec.decode(g.acc);
          } catch (e) {
            return badState(e);
          }
          const v = spec.finish(g.key, new Window(g.start, g.end), acc);
          if (v === undefined) continue;
          const end = fdv.getBigInt64(g.endAt, true);
          const o = originRecord(g.key, end === I64_MIN ? end : end - 1n);
          if (v instanceof Out) w.record(o, v.value, v.key, v.timestamp, v.headers);
          else w.recordFrom(o, v);
        }
        w.endBatch();
        return w.view();
      } catch (e) {
        return callError(e);
      }
    },
  };
  return { lifecycle: lifecycleOf(spec, st), aggregator };
}

// ---------------------------------------------------------------------------
// process

const KEPT = 0;
const CHANGED = 1;
const CLEARED = 2;
const READ = 3; // an object state was read: maybe changed in place

function hostError(e) {
  const p = e !== null && typeof e === 'object' ? e.payload : undefined;
  if (p !== undefined && p !== null && typeof p.tag === 'string') {
    return new WeirError(p.tag === 'failed' ? 'failed' : 'invalid-input', String(p.val));
  }
  return e;
}

/** Runs a host import call, turning its error value into a WeirError. */
function viaHost(call) {
  try {
    return call();
  } catch (e) {
    throw hostError(e);
  }
}

function toI64(at) {
  if (typeof at === 'bigint') return at;
  if (at instanceof Date) at = at.getTime();
  if (typeof at !== 'number' || !Number.isFinite(at)) throw new TypeError(`a timer time must be a finite number, not ${String(at)}`);
  return BigInt(Math.trunc(at));
}

/**
 * What a process function sees of its key: the key, the key's state (passed
 * in once per key per call), emitting, timers and named state.
 */
export class Context {
  constructor(key, state, stored, w) {
    /** The key (Uint8Array). */
    this.key = key;
    this._state = state;
    this._stored = stored;
    this._change = KEPT;
    this._w = w;
    this._o = null;
  }

  /** The key as text (invalid UTF-8 replaced). */
  get keyText() {
    return text(this.key);
  }

  /**
   * The key's state, or undefined. An object or array read here is encoded
   * again at the end of the call and saved if its bytes changed (so changing
   * it in place works).
   */
  get state() {
    const s = this._state;
    if (this._change === KEPT && s !== null && typeof s === 'object') this._change = READ;
    return s;
  }

  /** Replaces the key's state; undefined clears it. */
  set state(v) {
    this._state = v;
    this._change = v === undefined ? CLEARED : CHANGED;
  }

  setState(v) {
    this.state = v;
  }

  clearState() {
    this.state = undefined;
  }

  /**
   * Emits an output record: `value` (string, bytes, JSON-able value, or
   * weir.out(...)); `opts`: {key, timestamp, headers}. Defaults: the input
   * record's key, timestamp and headers (in onTimer: the key and the timer's time).
   */
  emit(value, opts) {
    emitInto(this._w, this._o, value, opts);
  }

  /** The timestamp emitted records get by default. */
  get timestamp() {
    return this._o.timestamp;
  }

  /** Calls onTimer for this key once the watermark reaches `at` (ms). */
  registerTimer(at) {
    viaHost(() => host.timers.register(this.key, toI64(at)));
  }

  /** Cancels the timer at `at`, if any. */
  deleteTimer(at) {
    viaHost(() => host.timers.delete(this.key, toI64(at)));
  }

  /** The current event-time watermark (ms). */
  get watermark() {
    return host.currentWatermark();
  }

  /** The named value `name` of this key (Uint8Array), or undefined. */
  value(name) {
    return viaHost(() => host.state.valueGet(this.key, name) ?? undefined);
  }

  /** Sets the named value `name` (string or bytes). */
  setValue(name, value) {
    viaHost(() => host.state.valueSet(this.key, name, toBytes(value)));
  }

  /** Removes the named state `name` (value, map or list). */
  clear(name) {
    viaHost(() => host.state.clear(this.key, name));
  }

  /** An entry of the map `name` (Uint8Array), or undefined. */
  mapGet(name, field) {
    return viaHost(() => host.state.mapGet(this.key, name, toBytes(field)) ?? undefined);
  }

  /** Sets an entry of the map `name`. */
  mapPut(name, field, value) {
    viaHost(() => host.state.mapPut(this.key, name, toBytes(field), toBytes(value)));
  }

  /** Removes an entry of the map `name`. */
  mapRemove(name, field) {
    viaHost(() => host.state.mapRemove(this.key, name, toBytes(field)));
  }

  /** Every entry of the map `name` as [field, value] pairs of Uint8Arrays, ordered by field. */
  mapEntries(name) {
    return viaHost(() => host.state.mapEntries(this.key, name));
  }

  /** The items of the list `name` (Uint8Arrays), oldest first. */
  list(name) {
    return viaHost(() => host.state.listGet(this.key, name));
  }

  /** Appends to the list `name`. */
  listAppend(name, item) {
    viaHost(() => host.state.listAppend(this.key, name, toBytes(item)));
  }
}

function decodeState(codec, value) {
  return value === null ? undefined : codec.decode(value);
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function writeResult(w, ctx, codec, aux) {
  const change = ctx._change;
  if (change === KEPT) {
    w.u8(0);
  } else if (change === CLEARED || ctx._state === undefined) {
    w.u8(2);
  } else {
    const bytes = encodeWith(codec, ctx._state);
    if (change === READ && ctx._stored !== null && sameBytes(bytes, ctx._stored)) {
      w.u8(0);
    } else {
      w.u8(1);
      w.bytes(bytes);
    }
  }
  aux.endBatch();
  w.bytes(aux.view());
}

/**
 * A keyed processor (world process-function):
 *   process(ctx, record)  per record of a key, in order (throwing refuses the
 *                         record and drops what it emitted)
 *   onTimer(ctx, at)      when a timer of the key fires (optional)
 * `ctx.state` is the key's state, stored with `codec` (default weir.codecs.json).
 *
 *   export const { lifecycle, processor } = weir.process({ process(ctx, record) {...}, onTimer(ctx, at) {...} });
 */
export function process(spec) {
  spec = specOf(spec, 'process', 'process');
  const codec = spec.codec ?? json;
  const st = { ready: false };
  const processor = {
    process(groups) {
      try {
        if (!st.ready) return NOT_INIT;
        let gs;
        try {
          gs = readProcessGroups(groups);
        } catch (e) {
          return badInput(e);
        }
        const w = OUT.reset();
        w.u32(gs.length);
        const aux = AUX;
        const rejected = [];
        let index = 0;
        for (const g of gs) {
          let state;
          try {
            state = decodeState(codec, g.value);
          } catch (e) {
            return badState(e);
          }
          aux.reset();
          aux.beginBatch();
          const ctx = new Context(g.key, state, g.value, aux);
          const batch = g.records;
          for (let i = 0; i < batch.length; i++) {
            const r = new Record(batch, 4 * i);
            ctx._o = r;
            const len = aux.len;
            const count = aux.count;
            try {
              const ret = spec.process(ctx, r);
              if (ret !== undefined && ret !== null && typeof ret.then === 'function') throw new TypeError(ASYNC);
            } catch (e) {
              aux.len = len;
              aux.count = count;
              rejected.push({ index, reason: reason(e) });
            }
            index++;
          }
          writeResult(w, ctx, codec, aux);
        }
        return { results: w.view(), rejected };
      } catch (e) {
        return callError(e);
      }
    },

    onTimer(fired) {
      try {
        if (!st.ready) return NOT_INIT;
        let gs;
        try {
          gs = readTimerGroups(fired);
        } catch (e) {
          return badInput(e);
        }
        const fdv = new DataView(fired.buffer, fired.byteOffset, fired.byteLength);
        const w = OUT.reset();
        w.u32(gs.length);
        const aux = AUX;
        for (const g of gs) {
          let state;
          try {
            state = decodeState(codec, g.value);
          } catch (e) {
            return badState(e);
          }
          aux.reset();
          aux.beginBatch();
          const ctx = new Context(g.key, state, g.value, aux);
          if (typeof spec.onTimer === 'function') {
            for (let j = 0; j < g.timers.length; j++) {
              ctx._o = originRecord(g.key, fdv.getBigInt64(g.timersAt + 8 * j, true));
              const ret = spec.onTimer(ctx, g.timers[j]);
              if (ret !== undefined && ret !== null && typeof ret.then === 'function') throw new TypeError(ASYNC);
            }
          }
          writeResult(w, ctx, codec, aux);
        }
        return w.view();
      } catch (e) {
        return callError(e);
      }
    },
  };
  return { lifecycle: lifecycleOf(spec, st), processor };
}
