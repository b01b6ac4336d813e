// The Weir buffer layouts (wit/batch.md, layout 1): batches, group lists,
// accumulator lists, result lists and the filter bitmap.
// Plain JavaScript: no WIT imports, so unit tests load it with plain Node.

import { JsonObject, WeirError, fieldError, parseObject } from './json.js';

/** `u32` length of an absent `opt-bytes` and of a record without key. */
export const ABSENT = 0xffffffff;
const TWO32 = 4294967296;
const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;

const ENCODER = new TextEncoder();
const STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LOSSY = new TextDecoder('utf-8', { ignoreBOM: true });

/** Bytes that do not follow the layout. */
export class LayoutError extends Error {
  constructor(offset, what) {
    super(`malformed buffer at byte ${offset}: ${what}`);
    this.name = 'LayoutError';
    this.offset = offset;
    this.what = what;
  }
}

/** UTF-8 bytes of a string. */
export function utf8(s) {
  return ENCODER.encode(s);
}

/** Bytes as text; invalid UTF-8 becomes U+FFFD (never throws). */
export function text(bytes) {
  return bytes == null ? bytes : LOSSY.decode(bytes);
}

/** Bytes as text; throws an invalid-input WeirError on invalid UTF-8. */
export function strictText(bytes, what = 'value') {
  try {
    return STRICT.decode(bytes);
  } catch (e) {
    throw new WeirError('invalid-input', `${what} is not UTF-8`);
  }
}

/** A string (UTF-8), Uint8Array, other typed array or ArrayBuffer as a Uint8Array. */
export function toBytes(v, what = 'a value') {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return ENCODER.encode(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  throw new TypeError(`${what} must be a string or a Uint8Array, not ${v === null ? 'null' : typeof v}`);
}

function dataView(bytes) {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The little-endian i64 at `p` as a Number (exact within ±2^53, and for i64::MIN). */
export function readI64(dv, p) {
  return dv.getInt32(p + 4, true) * TWO32 + dv.getUint32(p, true);
}

/** Writes `v` (Number, BigInt or Date) as a little-endian i64 at `p`; saturates out of range. */
export function writeI64(dv, p, v) {
  if (typeof v === 'number') {
    if (v >= -9007199254740991 && v <= 9007199254740991) {
      v = Math.trunc(v);
      const hi = Math.floor(v / TWO32);
      dv.setUint32(p, v - hi * TWO32, true);
      dv.setInt32(p + 4, hi, true);
      return;
    }
    if (v !== v) throw new TypeError('a timestamp must not be NaN');
    v = v > 0 ? (v >= 9223372036854775807 ? I64_MAX : BigInt(Math.trunc(v)))
      : (v <= -9223372036854775808 ? I64_MIN : BigInt(Math.trunc(v)));
  } else if (v instanceof Date) {
    writeI64(dv, p, v.getTime());
    return;
  } else if (typeof v !== 'bigint') {
    throw new TypeError(`a timestamp must be a number, a BigInt or a Date, not ${v === null ? 'null' : typeof v}`);
  }
  dv.setBigInt64(p, v > I64_MAX ? I64_MAX : v < I64_MIN ? I64_MIN : v, true);
}

// ---------------------------------------------------------------------------
// Records

function notUtf8() {
  return new WeirError('invalid-input', 'value is not UTF-8');
}

/**
 * One input record: a view into the buffer the host sent (nothing is copied
 * until asked for). `_v` is its BatchView, `_j` its row in the view's table.
 */
export class Record {
  constructor(v, j) {
    this._v = v;
    this._j = j;
    this._o = undefined; // the value parsed as a JSON object, once asked for
  }

  /** Event time (or ingestion time), ms since the Unix epoch, as a Number. */
  get timestamp() {
    const v = this._v;
    const p = v.T[this._j];
    return v.dv.getInt32(p + 4, true) * TWO32 + v.dv.getUint32(p, true);
  }

  /** The timestamp as a BigInt (exact for any i64). */
  get timestampBigInt() {
    return this._v.dv.getBigInt64(this._v.T[this._j], true);
  }

  /** The key bytes, or null when the record has no key. */
  get key() {
    const v = this._v;
    const j = this._j;
    const ko = v.T[j + 1];
    return ko < 0 ? null : v.bytes.subarray(ko, v.T[j + 2]);
  }

  /** The key as text (invalid UTF-8 replaced), or null. */
  get keyText() {
    const k = this.key;
    return k === null ? null : LOSSY.decode(k);
  }

  /** The value bytes (a view: copy it with .slice() to keep it past the call). */
  get value() {
    const v = this._v;
    const j = this._j;
    return v.bytes.subarray(v.T[j + 2], v.T[j + 3]);
  }

  /** The value as UTF-8 text; an invalid-input error if it is not UTF-8. */
  text() {
    const v = this._v;
    const j = this._j;
    try {
      return STRICT.decode(v.bytes.subarray(v.T[j + 2], v.T[j + 3]));
    } catch (e) {
      throw notUtf8();
    }
  }

  /** The value parsed as JSON (any JSON value). */
  json() {
    return JSON.parse(this.text());
  }

  /** The value as a JSON object with typed field getters (see JsonObject). */
  object() {
    let o = this._o;
    if (o === undefined) o = this._o = parseObject(this.text());
    return new JsonObject(o);
  }

  // Typed fields of the value as a JSON object (parsed on the first call):
  // the same as record.object().uint(name) etc., without the wrapper.

  /** Field `name` of the JSON object value, any JSON value (undefined when absent). */
  field(name) {
    let o = this._o;
    if (o === undefined) o = this._o = parseObject(this.text());
    return Object.prototype.hasOwnProperty.call(o, name) ? o[name] : undefined;
  }

  /** Field `name` of the JSON object value as a number. */
  number(name) {
    let o = this._o;
    if (o === undefined) o = this._o = parseObject(this.text());
    const v = o[name];
    if (typeof v === 'number') return v;
    throw fieldError(o, name, v, 'a number');
  }

  /** Field `name` of the JSON object value as a safe integer. */
  int(name) {
    let o = this._o;
    if (o === undefined) o = this._o = parseObject(this.text());
    const v = o[name];
    if (typeof v === 'number' && v % 1 === 0 && v <= 9007199254740991 && v >= -9007199254740991) return v;
    throw fieldError(o, name, v, 'an integer');
  }

  /** Field `name` of the JSON object value as an unsigned safe integer. */
  uint(name) {
    let o = this._o;
    if (o === undefined) o = this._o = parseObject(this.text());
    const v = o[name];
    if (typeof v === 'number' && v % 1 === 0 && v <= 9007199254740991 && v >= 0) return v;
    throw fieldError(o, name, v, 'an unsigned integer');
  }

  /** Field `name` of the JSON object value as a string. */
  string(name) {
    let o = this._o;
    if (o === undefined) o = this._o = parseObject(this.text());
    const v = o[name];
    if (typeof v === 'string') return v;
    throw fieldError(o, name, v, 'a string');
  }

  /** Field `name` of the JSON object value as a boolean. */
  bool(name) {
    let o = this._o;
    if (o === undefined) o = this._o = parseObject(this.text());
    const v = o[name];
    if (typeof v === 'boolean') return v;
    throw fieldError(o, name, v, 'a boolean');
  }

  /** The headers as [name (string), value (Uint8Array)] pairs, in order. */
  get headers() {
    const out = [];
    const v = this._v;
    const dv = v.dv;
    const b = v.bytes;
    let p = v.T[this._j + 3];
    const end = v.T[this._j + 4];
    while (p < end) {
      const nl = dv.getUint32(p, true);
      const name = LOSSY.decode(b.subarray(p + 4, p + 4 + nl));
      p += 4 + nl;
      const vl = dv.getUint32(p, true);
      out.push([name, b.subarray(p + 4, p + 4 + vl)]);
      p += 4 + vl;
    }
    return out;
  }

  /** The value of the first header called `name`, or undefined. */
  header(name) {
    const want = ENCODER.encode(name);
    const v = this._v;
    const dv = v.dv;
    const b = v.bytes;
    let p = v.T[this._j + 3];
    const end = v.T[this._j + 4];
    while (p < end) {
      const nl = dv.getUint32(p, true);
      let same = nl === want.length;
      for (let i = 0; same && i < nl; i++) same = b[p + 4 + i] === want[i];
      p += 4 + nl;
      const vl = dv.getUint32(p, true);
      if (same) return b.subarray(p + 4, p + 4 + vl);
      p += 4 + vl;
    }
    return undefined;
  }

  /** The raw header section (the layout's encoding). */
  get rawHeaders() {
    const v = this._v;
    return v.bytes.subarray(v.T[this._j + 3], v.T[this._j + 4]);
  }
}

/**
 * A validated batch (§2): `length` records, iterable as Records. `T` holds
 * per record [start, key offset (-1: no key), value offset, headers offset],
 * then the end of the last record.
 */
export class BatchView {
  constructor(bytes) {
    const n = bytes.length;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, n);
    if (n < 4) throw new LayoutError(0, 'u32');
    const count = dv.getUint32(0, true);
    if (count > (n - 4) / 20) throw new LayoutError(4, 'i64');
    const T = new Int32Array(4 * count + 1);
    let p = 4;
    for (let i = 0, j = 0; i < count; i++, j += 4) {
      if (p + 20 > n) throw new LayoutError(p, p + 8 > n ? 'i64' : 'u32');
      const kl = dv.getUint32(p + 8, true);
      const vl = dv.getUint32(p + 12, true);
      const hl = dv.getUint32(p + 16, true);
      T[j] = p;
      p += 20;
      if (kl === ABSENT) {
        T[j + 1] = -1;
      } else {
        if (p + kl > n) throw new LayoutError(p, 'key running past the end of the buffer');
        T[j + 1] = p;
        p += kl;
      }
      if (p + vl > n) throw new LayoutError(p, 'value running past the end of the buffer');
      T[j + 2] = p;
      p += vl;
      if (p + hl > n) throw new LayoutError(p, 'headers running past the end of the buffer');
      T[j + 3] = p;
      if (hl > 0) checkHeaders(dv, p, p + hl);
      p += hl;
    }
    if (p !== n) throw new LayoutError(p, 'end of buffer (bytes left over)');
    T[4 * count] = p;
    this.bytes = bytes;
    this.dv = dv;
    this.T = T;
    this.length = count;
  }

  /** Record `i` (0-based). */
  at(i) {
    return new Record(this, 4 * i);
  }

  *[Symbol.iterator]() {
    for (let i = 0; i < this.length; i++) yield new Record(this, 4 * i);
  }
}

function checkHeaders(dv, p, he) {
  while (p < he) {
    const at = p;
    if (p + 4 > he) throw new LayoutError(at, 'malformed header section');
    p += 4 + dv.getUint32(p, true);
    if (p + 4 > he) throw new LayoutError(at, 'malformed header section');
    p += 4 + dv.getUint32(p, true);
    if (p > he) throw new LayoutError(at, 'malformed header section');
  }
}

/** Validates `bytes` as a batch; throws a LayoutError if it is not one. */
export function readBatch(bytes) {
  return new BatchView(bytes);
}

/**
 * A record with `key` (Uint8Array or null) and timestamp `ts` (Number or
 * BigInt), an empty value and no headers: what emitted records default to
 * in onTimer and finish.
 */
export function originRecord(key, ts) {
  const kl = key === null ? 0 : key.length;
  const b = new Uint8Array(24 + kl);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 1, true);
  writeI64(dv, 4, ts);
  dv.setUint32(12, key === null ? ABSENT : kl, true);
  if (key !== null) b.set(key, 24);
  return new Record(new BatchView(b), 0);
}

// ---------------------------------------------------------------------------
// Group lists (§3), accumulator lists (§4), result lists (§5)

class Cursor {
  constructor(bytes) {
    this.b = bytes;
    this.dv = dataView(bytes);
    this.p = 0;
    this.n = bytes.length;
  }

  need(k, what) {
    if (this.p + k > this.n) throw new LayoutError(this.p, what);
  }

  u8() {
    this.need(1, 'u8');
    return this.b[this.p++];
  }

  u32() {
    this.need(4, 'u32');
    const v = this.dv.getUint32(this.p, true);
    this.p += 4;
    return v;
  }

  i64() {
    this.need(8, 'i64');
    const v = readI64(this.dv, this.p);
    this.p += 8;
    return v;
  }

  bytes() {
    const k = this.u32();
    this.need(k, 'bytes running past the end of the buffer');
    const v = this.b.subarray(this.p, this.p + k);
    this.p += k;
    return v;
  }

  optBytes() {
    const k = this.u32();
    if (k === ABSENT) return null;
    this.need(k, 'bytes running past the end of the buffer');
    const v = this.b.subarray(this.p, this.p + k);
    this.p += k;
    return v;
  }

  end() {
    if (this.p !== this.n) throw new LayoutError(this.p, 'end of buffer (bytes left over)');
  }
}

function readList(bytes, readOne) {
  const c = new Cursor(bytes);
  const count = c.u32();
  const out = new Array(count);
  for (let i = 0; i < count; i++) out[i] = readOne(c);
  c.end();
  return out;
}

/** An `add` group list: [{key, start, end, acc, records: BatchView}]. */
export function readAddGroups(bytes) {
  return readList(bytes, (c) => ({
    key: c.bytes(),
    start: c.i64(),
    end: c.i64(),
    acc: c.bytes(),
    records: new BatchView(c.bytes()),
  }));
}

/** A `finish` group list: [{key, start, end, acc, endAt}] (endAt: offset of the raw `end`). */
export function readFinishGroups(bytes) {
  return readList(bytes, (c) => {
    const key = c.bytes();
    const start = c.i64();
    const endAt = c.p;
    const end = c.i64();
    return { key, start, end, acc: c.bytes(), endAt };
  });
}

/** A `process` group list: [{key, value (Uint8Array or null), records: BatchView}]. */
export function readProcessGroups(bytes) {
  return readList(bytes, (c) => ({ key: c.bytes(), value: c.optBytes(), records: new BatchView(c.bytes()) }));
}

/**
 * A `timer` group list: [{key, value, timers (Numbers), timersAt}] (timersAt:
 * offset of the first raw timestamp).
 */
export function readTimerGroups(bytes) {
  return readList(bytes, (c) => {
    const key = c.bytes();
    const value = c.optBytes();
    const n = c.u32();
    c.need(n * 8, 'timers');
    const timersAt = c.p;
    const timers = new Array(n);
    for (let i = 0; i < n; i++) timers[i] = readI64(c.dv, timersAt + 8 * i);
    c.p += n * 8;
    return { key, value, timers, timersAt };
  });
}

/** An accumulator list: [Uint8Array]. */
export function readAccumulators(bytes) {
  return readList(bytes, (c) => c.bytes());
}

/** State operations of a result list. */
export const KEEP = 0;
export const SET = 1;
export const CLEAR = 2;

/** A result list: [{op (KEEP|SET|CLEAR), value (SET only), output: BatchView}]. */
export function readResults(bytes) {
  return readList(bytes, (c) => {
    const at = c.p;
    const op = c.u8();
    if (op > 2) throw new LayoutError(at, 'state op 0, 1 or 2');
    const value = op === SET ? c.bytes() : null;
    return { op, value, output: new BatchView(c.bytes()) };
  });
}

// ---------------------------------------------------------------------------
// Writing

/**
 * A growing output buffer with the layout's primitives. One is reused across
 * calls; `view()` is valid until the next write.
 */
export class Writer {
  constructor(capacity = 65536) {
    this.buf = new Uint8Array(capacity);
    this.dv = new DataView(this.buf.buffer);
    this.len = 0;
    /** Records in the batch being written (see beginBatch). */
    this.count = 0;
    this._batchAt = -1;
  }

  reset() {
    this.len = 0;
    this.count = 0;
    this._batchAt = -1;
    return this;
  }

  ensure(extra) {
    const need = this.len + extra;
    if (need > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < need) cap *= 2;
      const nb = new Uint8Array(cap);
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
      this.dv = new DataView(nb.buffer);
    }
  }

  u8(v) {
    this.ensure(1);
    this.buf[this.len++] = v;
  }

  u32(v) {
    this.ensure(4);
    this.dv.setUint32(this.len, v, true);
    this.len += 4;
  }

  i64(v) {
    this.ensure(8);
    writeI64(this.dv, this.len, v);
    this.len += 8;
  }

  /** Raw bytes (Uint8Array). */
  raw(bytes) {
    const n = bytes.length;
    this.ensure(n);
    this.buf.set(bytes, this.len);
    this.len += n;
  }

  patchU32(at, v) {
    this.dv.setUint32(at, v, true);
  }

  /** Appends the content of `v` with no length: returns the byte count. */
  content(v) {
    if (typeof v === 'string') {
      const at = this.len;
      this.ensure(v.length * 3);
      const n = ENCODER.encodeInto(v, this.buf.subarray(at)).written;
      this.len = at + n;
      return n;
    }
    if (v instanceof Uint8Array) {
      this.raw(v);
      return v.length;
    }
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
      const b = toBytes(v);
      this.raw(b);
      return b.length;
    }
    if (v === undefined) throw new TypeError('the value is undefined');
    if (v !== null && typeof v.then === 'function') {
      throw new TypeError('the value is a Promise: Weir functions are synchronous (no async/await)');
    }
    const json = JSON.stringify(v);
    if (json === undefined) throw new TypeError(`a ${typeof v} is not a value`);
    return this.content(json);
  }

  /** A `bytes` value: a string (UTF-8), Uint8Array or other view. */
  bytes(v) {
    const at = this.len;
    this.u32(0);
    const n = this.content(v);
    this.dv.setUint32(at, n, true);
  }

  /** An `opt-bytes` value (null or undefined: absent). */
  optBytes(v) {
    if (v == null) this.u32(ABSENT);
    else this.bytes(v);
  }

  /** Starts a batch (a count placeholder); records go in with `record`. */
  beginBatch() {
    this._batchAt = this.len;
    this.count = 0;
    this.u32(0);
  }

  /** Writes the count of the batch begun last. */
  endBatch() {
    this.dv.setUint32(this._batchAt, this.count, true);
  }

  /**
   * Appends a record that takes key, timestamp and headers from the input
   * record `r` and has the value `value` (the fast path of map and emit).
   */
  recordFrom(r, value) {
    const v = r._v;
    const j = r._j;
    const T = v.T;
    const p = T[j];
    const vo = T[j + 2];
    const ho = T[j + 3];
    const hl = T[j + 4] - ho;
    const at = this.len;
    if (typeof value === 'string') {
      const need = at + (vo - p) + value.length * 3 + hl;
      if (need > this.buf.length) this.ensure(need - at);
      const buf = this.buf;
      buf.set(v.bytes.subarray(p, vo), at); // timestamp, lengths, key
      const q = at + (vo - p);
      const vl = ENCODER.encodeInto(value, buf.subarray(q)).written;
      this.dv.setUint32(at + 12, vl, true);
      if (hl > 0) buf.set(v.bytes.subarray(ho, ho + hl), q + vl);
      this.len = q + vl + hl;
    } else if (value instanceof Uint8Array) {
      const vl = value.length;
      const need = at + (vo - p) + vl + hl;
      if (need > this.buf.length) this.ensure(need - at);
      const buf = this.buf;
      buf.set(v.bytes.subarray(p, vo), at);
      const q = at + (vo - p);
      buf.set(value, q);
      this.dv.setUint32(at + 12, vl, true);
      if (hl > 0) buf.set(v.bytes.subarray(ho, ho + hl), q + vl);
      this.len = q + vl + hl;
    } else {
      this.raw(v.bytes.subarray(p, vo));
      const vl = this.content(value);
      this.dv.setUint32(at + 12, vl, true);
      if (hl > 0) this.raw(v.bytes.subarray(ho, ho + hl));
    }
    this.count++;
  }

  /**
   * Appends a record with a string key and a string value that takes its
   * timestamp and headers from the input record `r` (the fast path of
   * emit(value, { key })).
   */
  recordKeyed(r, key, value) {
    const v = r._v;
    const j = r._j;
    const T = v.T;
    const p = T[j];
    const ho = T[j + 3];
    const hl = T[j + 4] - ho;
    const at = this.len;
    const need = at + 20 + (key.length + value.length) * 3 + hl;
    if (need > this.buf.length) this.ensure(need - at);
    const buf = this.buf;
    const dv = this.dv;
    buf.set(v.bytes.subarray(p, p + 8), at);
    const kl = ENCODER.encodeInto(key, buf.subarray(at + 20)).written;
    const vl = ENCODER.encodeInto(value, buf.subarray(at + 20 + kl)).written;
    dv.setUint32(at + 8, kl, true);
    dv.setUint32(at + 12, vl, true);
    dv.setUint32(at + 16, hl, true);
    if (hl > 0) buf.set(v.bytes.subarray(ho, ho + hl), at + 20 + kl + vl);
    this.len = at + 20 + kl + vl + hl;
    this.count++;
  }

  /**
   * Appends a record. `r` (a Record) gives the defaults; `key` (null: no
   * key), `ts` and `headers` (an iterable of [name, value] pairs) replace
   * them unless undefined. `value` is written by `content`.
   * On an exception the caller rolls back (restore `len` and `count`).
   */
  record(r, value, key, ts, headers) {
    if (key === undefined && ts === undefined && headers === undefined) {
      this.recordFrom(r, value);
      return;
    }
    const v = r._v;
    const j = r._j;
    const T = v.T;
    const b = v.bytes;
    const p = this.len;
    this.ensure(20);
    this.len = p + 20;
    if (ts === undefined) this.buf.set(b.subarray(T[j], T[j] + 8), p);
    else writeI64(this.dv, p, ts);
    let kl;
    if (key === undefined) {
      const ko = T[j + 1];
      if (ko < 0) {
        kl = ABSENT;
      } else {
        kl = T[j + 2] - ko;
        if (kl > 0) this.raw(b.subarray(ko, ko + kl));
      }
    } else if (key === null) {
      kl = ABSENT;
    } else if (typeof key === 'string' || key instanceof Uint8Array) {
      kl = this.content(key);
    } else {
      kl = this.content(toBytes(key, 'a key'));
    }
    this.dv.setUint32(p + 8, kl, true);
    const vl = this.content(value); // may grow the buffer: read this.dv after
    this.dv.setUint32(p + 12, vl, true);
    let hl;
    if (headers === undefined) {
      const ho = T[j + 3];
      hl = T[j + 4] - ho;
      if (hl > 0) this.raw(b.subarray(ho, ho + hl));
    } else {
      const at = this.len;
      for (const [name, hv] of headers) {
        this.bytes(toBytes(name, 'a header name'));
        this.bytes(toBytes(hv, 'a header value'));
      }
      hl = this.len - at;
    }
    this.dv.setUint32(p + 16, hl, true);
    this.count++;
  }

  /** The bytes written so far (a view into the reused buffer). */
  view() {
    return this.buf.subarray(0, this.len);
  }

  /** A copy of the bytes written so far. */
  take() {
    return this.buf.slice(0, this.len);
  }
}

const NO_ORIGIN = originRecord(null, 0);

/**
 * Encodes records as a batch (§2). Each record: {timestamp, key, value,
 * headers}; key null or absent: no key; headers: [name, value] pairs.
 */
export function writeBatch(records) {
  const w = new Writer(1024);
  w.beginBatch();
  for (const r of records) {
    w.record(NO_ORIGIN, r.value ?? new Uint8Array(0), r.key ?? null, r.timestamp ?? 0, r.headers ?? []);
  }
  w.endBatch();
  return w.take();
}

function batchBytes(records) {
  return records instanceof Uint8Array ? records : writeBatch(records);
}

/** An `add` group list from [{key, start, end, acc, records}] (records: a batch or record objects). */
export function writeAddGroups(groups) {
  const w = new Writer(1024);
  w.u32(groups.length);
  for (const g of groups) {
    w.bytes(g.key);
    w.i64(g.start);
    w.i64(g.end);
    w.bytes(g.acc);
    w.bytes(batchBytes(g.records));
  }
  return w.take();
}

/** A `finish` group list from [{key, start, end, acc}]. */
export function writeFinishGroups(groups) {
  const w = new Writer(1024);
  w.u32(groups.length);
  for (const g of groups) {
    w.bytes(g.key);
    w.i64(g.start);
    w.i64(g.end);
    w.bytes(g.acc);
  }
  return w.take();
}

/** A `process` group list from [{key, value (null: none), records}]. */
export function writeProcessGroups(groups) {
  const w = new Writer(1024);
  w.u32(groups.length);
  for (const g of groups) {
    w.bytes(g.key);
    w.optBytes(g.value);
    w.bytes(batchBytes(g.records));
  }
  return w.take();
}

/** A `timer` group list from [{key, value, timers: [ts...]}]. */
export function writeTimerGroups(groups) {
  const w = new Writer(1024);
  w.u32(groups.length);
  for (const g of groups) {
    w.bytes(g.key);
    w.optBytes(g.value);
    w.u32(g.timers.length);
    for (const t of g.timers) w.i64(t);
  }
  return w.take();
}

/** An accumulator list from [bytes]. */
export function writeAccumulators(accs) {
  const w = new Writer(1024);
  w.u32(accs.length);
  for (const a of accs) w.bytes(a);
  return w.take();
}

/** A result list from [{op, value, output}] (output: a batch or record objects). */
export function writeResults(results) {
  const w = new Writer(1024);
  w.u32(results.length);
  for (const r of results) {
    w.u8(r.op);
    if (r.op === SET) w.bytes(r.value);
    w.bytes(batchBytes(r.output));
  }
  return w.take();
}

// ---------------------------------------------------------------------------
// Filter bitmap (§6)

/** An empty keep bitmap for `n` records: ceil(n / 8) bytes. */
export function newBitmap(n) {
  return new Uint8Array((n + 7) >>> 3);
}

/** Marks record `i` as kept. */
export function setBit(bits, i) {
  bits[i >>> 3] |= 1 << (i & 7);
}

/** Whether record `i` is kept. */
export function getBit(bits, i) {
  return (bits[i >>> 3] & (1 << (i & 7))) !== 0;
}
