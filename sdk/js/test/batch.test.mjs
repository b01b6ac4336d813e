// Round trips of the buffer layouts (wit/batch.md). Plain Node: node --test sdk/js/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ABSENT,
  CLEAR,
  KEEP,
  LayoutError,
  SET,
  getBit,
  newBitmap,
  readAccumulators,
  readAddGroups,
  readBatch,
  readFinishGroups,
  readI64,
  readProcessGroups,
  readResults,
  readTimerGroups,
  setBit,
  text,
  utf8,
  writeAccumulators,
  writeAddGroups,
  writeBatch,
  writeFinishGroups,
  writeI64,
  writeProcessGroups,
  writeResults,
  writeTimerGroups,
  Writer,
} from '../layout.js';

const I64_MIN = -9223372036854775808;

function plain(batch) {
  return [...batch].map((r) => ({
    timestamp: r.timestamp,
    key: r.key === null ? null : text(r.key),
    value: text(r.value),
    headers: r.headers.map(([n, v]) => [n, text(v)]),
  }));
}

const RECORDS = [
  { timestamp: 1700000000123, key: 'k1', value: '{"a":1}', headers: [['trace', 'x'], ['h2', '']] },
  { timestamp: -5, key: null, value: '', headers: [] },
  { timestamp: I64_MIN, key: '', value: 'héllo wörld ✓', headers: [] },
  { timestamp: 2 ** 53 - 1, key: 'κλειδί', value: 'v', headers: [['ü', 'ß']] },
];

test('batch: exact bytes of one record', () => {
  const b = writeBatch([{ timestamp: 258, key: 'k', value: 'vv', headers: [['n', 'h']] }]);
  assert.deepEqual(
    [...b],
    [
      1, 0, 0, 0, // count
      2, 1, 0, 0, 0, 0, 0, 0, // timestamp 258
      1, 0, 0, 0, 2, 0, 0, 0, 10, 0, 0, 0, // key, value, headers lengths
      107, 118, 118, // "k" "vv"
      1, 0, 0, 0, 110, 1, 0, 0, 0, 104, // header n=h
    ],
  );
  const none = writeBatch([{ timestamp: 0, key: null, value: '' }]);
  assert.equal(new DataView(none.buffer).getUint32(12, true), ABSENT);
});

test('batch: write then read keeps every field', () => {
  const b = writeBatch(RECORDS);
  const batch = readBatch(b);
  assert.equal(batch.length, RECORDS.length);
  assert.deepEqual(plain(batch), RECORDS);
  const [first, second] = batch;
  assert.equal(text(first.header('trace')), 'x');
  assert.equal(first.header('nope'), undefined);
  assert.equal(first.keyText, 'k1');
  assert.deepEqual(first.json(), { a: 1 });
  assert.equal(first.object().uint('a'), 1);
  assert.equal(second.key, null);
  assert.equal(second.timestampBigInt, -5n);
  assert.equal([...readBatch(writeBatch([]))].length, 0);
});

test('batch: malformed buffers are refused', () => {
  const good = writeBatch(RECORDS);
  assert.throws(() => readBatch(good.subarray(0, good.length - 1)), LayoutError);
  const extra = new Uint8Array(good.length + 1);
  extra.set(good);
  assert.throws(() => readBatch(extra), /bytes left over/);
  assert.throws(() => readBatch(new Uint8Array([1, 0, 0])), LayoutError);
  // A header section whose pair runs past its own length.
  const bad = writeBatch([{ timestamp: 0, key: null, value: '', headers: [['a', 'b']] }]);
  new DataView(bad.buffer).setUint32(20, 7, true); // headers_len 10 -> 7
  assert.throws(() => readBatch(bad.subarray(0, bad.length - 3)), /malformed header section/);
  // A count larger than the records present.
  const more = writeBatch(RECORDS);
  new DataView(more.buffer).setUint32(0, 5, true);
  assert.throws(() => readBatch(more), LayoutError);
});

test('i64 read/write over the whole range', () => {
  const dv = new DataView(new ArrayBuffer(8));
  for (const v of [0, 1, -1, 4294967295, 4294967296, -4294967297, 2 ** 53 - 1, -(2 ** 53) + 1, I64_MIN]) {
    writeI64(dv, 0, v);
    assert.equal(dv.getBigInt64(0, true), BigInt(v));
    assert.equal(readI64(dv, 0), v);
  }
  writeI64(dv, 0, 9223372036854775807n);
  assert.equal(dv.getBigInt64(0, true), 9223372036854775807n);
  writeI64(dv, 0, 1e300); // saturates
  assert.equal(dv.getBigInt64(0, true), 9223372036854775807n);
  writeI64(dv, 0, 12.9);
  assert.equal(dv.getBigInt64(0, true), 12n);
});

test('add and finish group lists', () => {
  const groups = [
    { key: utf8('host-a'), start: 0, end: 300000, acc: utf8('[0,0]'), records: RECORDS },
    { key: utf8(''), start: I64_MIN, end: 17, acc: new Uint8Array(0), records: [] },
  ];
  const back = readAddGroups(writeAddGroups(groups));
  assert.equal(back.length, 2);
  assert.equal(text(back[0].key), 'host-a');
  assert.equal(back[0].start, 0);
  assert.equal(back[0].end, 300000);
  assert.equal(text(back[0].acc), '[0,0]');
  assert.deepEqual(plain(back[0].records), RECORDS);
  assert.equal(back[1].start, I64_MIN);
  assert.equal(back[1].records.length, 0);

  const fin = readFinishGroups(writeFinishGroups(groups));
  assert.deepEqual(
    fin.map((g) => [text(g.key), g.start, g.end, text(g.acc)]),
    [['host-a', 0, 300000, '[0,0]'], ['', I64_MIN, 17, '']],
  );
  assert.throws(() => readFinishGroups(writeFinishGroups(groups).subarray(0, 20)), LayoutError);
});

test('process and timer group lists', () => {
  const groups = [
    { key: utf8('s1'), value: utf8('state'), records: RECORDS.slice(0, 2) },
    { key: utf8('s2'), value: null, records: [] },
    { key: utf8('s3'), value: new Uint8Array(0), records: RECORDS.slice(3) },
  ];
  const back = readProcessGroups(writeProcessGroups(groups));
  assert.deepEqual(back.map((g) => [text(g.key), g.value === null ? null : text(g.value)]), [
    ['s1', 'state'],
    ['s2', null],
    ['s3', ''],
  ]);
  assert.deepEqual(plain(back[0].records), RECORDS.slice(0, 2));
  assert.deepEqual(plain(back[2].records), RECORDS.slice(3));

  const timers = [
    { key: utf8('s1'), value: null, timers: [10, 20, 2 ** 40] },
    { key: utf8('s2'), value: utf8('v'), timers: [] },
  ];
  const tb = writeTimerGroups(timers);
  const tback = readTimerGroups(tb);
  assert.deepEqual(tback.map((g) => [text(g.key), g.value && text(g.value), g.timers]), [
    ['s1', null, [10, 20, 2 ** 40]],
    ['s2', 'v', []],
  ]);
  const dv = new DataView(tb.buffer, tb.byteOffset, tb.byteLength);
  assert.equal(readI64(dv, tback[0].timersAt + 8), 20);
});

test('accumulator and result lists', () => {
  const accs = [utf8('a'), new Uint8Array(0), new Uint8Array([0, 255, 7])];
  assert.deepEqual(readAccumulators(writeAccumulators(accs)).map((a) => [...a]), accs.map((a) => [...a]));

  const results = [
    { op: KEEP, output: RECORDS.slice(0, 1) },
    { op: SET, value: utf8('new state'), output: [] },
    { op: CLEAR, output: RECORDS },
  ];
  const back = readResults(writeResults(results));
  assert.deepEqual(back.map((r) => [r.op, r.value && text(r.value)]), [[KEEP, null], [SET, 'new state'], [CLEAR, null]]);
  assert.deepEqual(plain(back[0].output), RECORDS.slice(0, 1));
  assert.equal(back[1].output.length, 0);
  assert.deepEqual(plain(back[2].output), RECORDS);
  const bad = writeResults([{ op: KEEP, output: [] }]);
  bad[4] = 3;
  assert.throws(() => readResults(bad), /state op/);
});

test('filter bitmap', () => {
  for (const n of [0, 1, 7, 8, 9, 1024, 1025]) {
    const bits = newBitmap(n);
    assert.equal(bits.length, Math.ceil(n / 8));
    for (let i = 0; i < n; i++) if (i % 3 === 0) setBit(bits, i);
    for (let i = 0; i < n; i++) assert.equal(getBit(bits, i), i % 3 === 0);
  }
  const bits = newBitmap(10);
  setBit(bits, 0);
  setBit(bits, 9);
  assert.deepEqual([...bits], [1, 2]);
});

test('writer grows and rolls back', () => {
  const w = new Writer(8);
  w.beginBatch();
  const long = 'x'.repeat(10000);
  const o = readBatch(writeBatch([{ timestamp: 5, key: 'k', value: 'v', headers: [['h', '1']] }]));
  const [r] = o;
  w.record(r, long, undefined, undefined, undefined);
  const len = w.len;
  assert.throws(() => w.record(r, undefined, undefined, undefined, undefined), /undefined/);
  w.len = len; // what the SDK does after a failed record
  w.record(r, utf8('b'), null, 7n, []);
  w.endBatch();
  assert.deepEqual(plain(readBatch(w.take())), [
    { timestamp: 5, key: 'k', value: long, headers: [['h', '1']] },
    { timestamp: 7, key: null, value: 'b', headers: [] },
  ]);
});
