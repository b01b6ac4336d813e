// Errors reported as values, and typed access to the fields of a JSON object.
// Plain JavaScript: no WIT imports (unit tests load it with plain Node).

/**
 * A failure a function reports as a value. `kind` is the `udf-error` case:
 * 'invalid-params' (from init), 'invalid-input' (the record is unusable) or
 * 'failed' (anything else).
 *
 * Thrown from a per-record callback (map, filter, flatMap, add, process) it
 * refuses that record only, like any other exception; thrown from init,
 * create, merge, finish or onTimer it becomes that call's error.
 */
export class WeirError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'WeirError';
    this.kind = kind;
  }

  static invalidParams(message) {
    return new WeirError('invalid-params', message);
  }

  static invalidInput(message) {
    return new WeirError('invalid-input', message);
  }

  static failed(message) {
    return new WeirError('failed', message);
  }
}

function describe(v, raw) {
  if (v === null) return 'is null';
  switch (typeof v) {
    case 'number':
      return `is ${raw === undefined ? String(v) : raw}`;
    case 'string':
      return 'is a string';
    case 'boolean':
      return 'is a boolean';
    default:
      return Array.isArray(v) ? 'is an array' : 'is an object';
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

/** The error for field `name` of object `o` holding `v` where `expected` was wanted. */
export function fieldError(o, name, v, expected) {
  if (!hasOwn.call(o, name)) return new WeirError('invalid-input', `field \`${name}\` is missing`);
  return new WeirError('invalid-input', `field \`${name}\` ${describe(v)}, expected ${expected}`);
}

/** Parses `text` as JSON; throws unless it is exactly one JSON object. */
export function parseObject(text) {
  const v = JSON.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new WeirError('invalid-input', `expected a JSON object, found ${describe(v).slice(3)}`);
  }
  return v;
}

/**
 * A parsed JSON object with typed getters whose errors name the field, e.g.
 * "field `price` is a string, expected an unsigned integer". `value` is the
 * plain object.
 */
export class JsonObject {
  constructor(value) {
    this.value = value;
  }

  /** Parses `text`; throws unless it is exactly one JSON object. */
  static parse(text) {
    return new JsonObject(parseObject(text));
  }

  /** Whether the object has field `name`. */
  has(name) {
    return hasOwn.call(this.value, name);
  }

  /** Field `name` as it is (any JSON value), or undefined. */
  get(name) {
    return hasOwn.call(this.value, name) ? this.value[name] : undefined;
  }

  /** Field `name` as a number. */
  number(name) {
    const v = this.value[name];
    if (typeof v === 'number') return v;
    throw fieldError(this.value, name, v, 'a number');
  }

  /** Field `name` as an integer (a safe one: |n| <= 2^53 - 1). */
  int(name) {
    const v = this.value[name];
    if (typeof v === 'number' && v % 1 === 0 && v <= 9007199254740991 && v >= -9007199254740991) return v;
    throw fieldError(this.value, name, v, 'an integer');
  }

  /** Field `name` as an unsigned integer (0 <= n <= 2^53 - 1). */
  uint(name) {
    const v = this.value[name];
    if (typeof v === 'number' && v % 1 === 0 && v <= 9007199254740991 && v >= 0) return v;
    throw fieldError(this.value, name, v, 'an unsigned integer');
  }

  /** Field `name` as a string. */
  string(name) {
    const v = this.value[name];
    if (typeof v === 'string') return v;
    throw fieldError(this.value, name, v, 'a string');
  }

  /** Field `name` as a boolean. */
  bool(name) {
    const v = this.value[name];
    if (typeof v === 'boolean') return v;
    throw fieldError(this.value, name, v, 'a boolean');
  }
}
