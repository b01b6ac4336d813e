// The WIT exports weir.js builds, called the way the component calls them,
// with the plain-Node stand-in of the host (weir-host.js). Also runs the
// examples of udf-examples/js, staged next to the SDK like the build does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as weir from '../weir.js';
import {
  CLEAR,
  KEEP,
  SET,
  getBit,
  readAccumulators,
  readBatch,
  readResults,
  text,
  utf8,
  writeAddGroups,
  writeBatch,
  writeFinishGroups,
  writeProcessGroups,
  writeTimerGroups,
} from '../layout.js';

const SDK = dirname(dirname(fileURLToPath(import.meta.url)));
const EXAMPLES = join(SDK, '..', '..', 'udf-examples', 'js');
weir.testing.mem.quiet = true;

const stage = mkdtempSync(join(tmpdir(), 'weir-js-test-'));
process.on('exit', () => rmSync(stage, { recursive: true, force: true }));

async function example(name) {
  const dir = join(stage, name);
  cpSync(join(EXAMPLES, name), dir, { recursive: true });
  for (const f of readdirSync(SDK)) if (f.endsWith('.js')) cpSync(join(SDK, f), join(dir, f));
  const app = await import(pathToFileURL(join(dir, 'app.js')).href);
  const sdk = await import(pathToFileURL(join(dir, 'weir.js')).href);
  sdk.testing.mem.quiet = true;
  return { ...app, testing: sdk.testing };
}

const ok = (r) => {
  assert.ok(r === undefined || r.tag !== 'err', `expected ok, got ${JSON.stringify(r)}`);
  return r;
};

function records(batch) {
  return [...(batch instanceof Uint8Array ? readBatch(batch) : batch)].map((r) => ({
    timestamp: r.timestamp,
    key: r.key === null ? null : text(r.key),
    value: text(r.value),
    headers: r.headers.map(([n, v]) => [n, text(v)]),
  }));
}

const bid = (auction, bidder, price, ts) => JSON.stringify({ auction, bidder, price, ts });

test('currency: output, defaults kept, rejections, params', async () => {
  const { lifecycle, mapper } = await example('currency');
  ok(lifecycle.init([]));
  const input = writeBatch([
    { timestamp: 11, key: 'a', value: bid(1, 2, 1234, 99), headers: [['h', 'v']] },
    { timestamp: 12, key: null, value: '[1,2]' },
    { timestamp: 13, key: null, value: bid(7, 8, 5, 100) },
    { timestamp: 14, key: null, value: '{"auction":1,"bidder":2,"price":"3","ts":4}' },
    { timestamp: 15, key: null, value: 'not json' },
    { timestamp: 16, key: null, value: bid(0, 0, 0, 0) },
  ]);
  const { output, rejected } = ok(mapper.map(input));
  assert.deepEqual(records(output), [
    { timestamp: 11, key: 'a', value: '1,2,1120.472,99', headers: [['h', 'v']] },
    { timestamp: 13, key: null, value: '7,8,4.540,100', headers: [] },
    { timestamp: 16, key: null, value: '0,0,0.000,0', headers: [] },
  ]);
  assert.deepEqual(rejected.map((r) => r.index), [1, 3, 4]);
  assert.equal(rejected[0].reason, 'expected a JSON object, found an array');
  assert.equal(rejected[1].reason, 'field `price` is a string, expected an unsigned integer');
  assert.match(rejected[2].reason, /^SyntaxError: /);

  assert.deepEqual(lifecycle.init([['rte', '1']]), {
    tag: 'err',
    val: { tag: 'invalid-params', val: 'unknown parameter `rte` (known: rate)' },
  });
  assert.equal(lifecycle.init([['rate', 'x']]).val.tag, 'invalid-params');
  ok(lifecycle.init([['rate', '1.5']]));
  assert.equal(records(mapper.map(writeBatch([{ timestamp: 0, value: bid(1, 1, 3, 1) }])).output)[0].value, '1,1,4.500,1');
  ok(lifecycle.init([['rate', '1e14']]));
  assert.equal(records(mapper.map(writeBatch([{ timestamp: 0, value: bid(1, 1, 3, 1) }])).output)[0].value, '1,1,300000000000000.000,1');
  ok(lifecycle.init([['rate', 'inf']]));
  assert.equal(records(mapper.map(writeBatch([{ timestamp: 0, value: bid(1, 1, 3, 1) }])).output)[0].value, '1,1,18446744073709551.615,1');
  ok(lifecycle.init([['rate', 'NaN']]));
  assert.equal(records(mapper.map(writeBatch([{ timestamp: 0, value: bid(1, 1, 3, 1) }])).output)[0].value, '1,1,0.000,1');
  ok(lifecycle.init([['rate', '1e300']]));
  assert.equal(records(mapper.map(writeBatch([{ timestamp: 0, value: bid(1, 1, 3, 1) }])).output)[0].value, '1,1,18446744073709551.615,1');
  ok(lifecycle.init([['rate', '-1']]));
  assert.equal(records(mapper.map(writeBatch([{ timestamp: 0, value: bid(1, 1, 3, 1) }])).output)[0].value, '1,1,0.000,1');
});

test('currency: rounding half away from zero like Rust', async () => {
  const { lifecycle, mapper } = await example('currency');
  // price * rate * 1000 lands on .5 exactly: rounds up (away from zero).
  ok(lifecycle.init([['rate', '0.0005']]));
  const out = records(mapper.map(writeBatch([1, 3, 5, 2001].map((p) => ({ timestamp: 0, value: bid(0, 0, p, 0) })))).output);
  assert.deepEqual(out.map((r) => r.value), ['0,0,0.001,0', '0,0,0.002,0', '0,0,0.003,0', '0,0,1.001,0']);
  // The largest double below 0.5 rounds down (Math.floor(x + 0.5) would not).
  ok(lifecycle.init([['rate', String(0.49999999999999994 / 1000)]]));
  assert.equal(records(mapper.map(writeBatch([{ timestamp: 0, value: bid(0, 0, 1, 0) }])).output)[0].value, `0,0,${1 * (0.49999999999999994 / 1000) * 1000 >= 0.5 ? '0.001' : '0.000'},0`);
});

test('auction-filter: bitmap, rejections, modulo 0', async () => {
  const { lifecycle, filter } = await example('auction-filter');
  assert.deepEqual(lifecycle.init([['modulo', '0']]), {
    tag: 'err',
    val: { tag: 'invalid-params', val: '`modulo` must be at least 1' },
  });
  assert.equal(filter.filter(writeBatch([])).val.tag, 'failed'); // not initialized
  ok(lifecycle.init([['modulo', '2']]));
  const values = [bid(2, 0, 0, 0), bid(3, 0, 0, 0), '{}', bid(4, 0, 0, 0), '{"auction":-2}', bid(0, 0, 0, 0), 'x', 'y', bid(10, 0, 0, 0)];
  const { keep, rejected } = ok(filter.filter(writeBatch(values.map((value) => ({ timestamp: 0, value })))));
  assert.equal(keep.length, 2);
  assert.deepEqual(values.map((_, i) => getBit(keep, i)), [true, false, false, true, false, true, false, false, true]);
  assert.deepEqual(rejected.map((r) => r.index), [2, 4, 6, 7]);
  assert.equal(rejected[0].reason, 'field `auction` is missing');
  ok(lifecycle.init([['field', 'bidder']]));
  assert.equal(getBit(filter.filter(writeBatch([{ timestamp: 0, value: bid(1, 246, 0, 0) }])).keep, 0), true);
});

test('word-split: one record per word, keyed by it', async () => {
  const { lifecycle, flatMapper } = await example('word-split');
  ok(lifecycle.init([]));
  assert.equal(lifecycle.init([['x', '1']]).val.val, 'unknown parameter `x`: this function takes no parameters');
  ok(lifecycle.init([]));
  const input = writeBatch([
    { timestamp: 5, key: 'line1', value: 'Hello, World! hello--again 42x', headers: [['h', '1']] },
    { timestamp: 6, key: null, value: '  ...  ' },
    { timestamp: 7, key: null, value: new Uint8Array([0x66, 0xff]) },
    { timestamp: 8, key: null, value: 'Ünïcode ΣΑΣ' },
  ]);
  const { output, rejected } = ok(flatMapper.flatMap(input));
  const out = records(output);
  assert.deepEqual(out.map((r) => [r.key, r.value, r.timestamp]), [
    ['hello', 'hello', 5],
    ['world', 'world', 5],
    ['hello', 'hello', 5],
    ['again', 'again', 5],
    ['42x', '42x', 5],
    ['ünïcode', 'ünïcode', 8],
    ['σας', 'σας', 8],
  ]);
  assert.deepEqual(out[0].headers, [['h', '1']]);
  assert.deepEqual(rejected, [{ index: 2, reason: 'value is not UTF-8' }]);
});

test('average: add, merge, finish (json and csv)', async () => {
  const { lifecycle, aggregator } = await example('average');
  assert.equal(lifecycle.init([]).val.val, 'missing parameter `field`');
  assert.equal(lifecycle.init([['field', 'cpu'], ['output', 'xml']]).val.val, '`output` is "xml"; expected csv or json');
  ok(lifecycle.init([['field', 'cpu']]));
  const empty = ok(aggregator.create()).slice();
  const groups = [
    {
      key: utf8('h1'),
      start: 0,
      end: 300000,
      acc: empty,
      records: [0.1, 0.2, 'bad', 0.3].map((cpu, i) => ({ timestamp: i, value: cpu === 'bad' ? '{}' : JSON.stringify({ cpu }) })),
    },
    { key: utf8('h2'), start: 0, end: 300000, acc: empty, records: [{ timestamp: 0, value: '{"cpu":5}' }] },
  ];
  const { accumulators, rejected } = ok(aggregator.add(writeAddGroups(groups)));
  assert.deepEqual(rejected, [{ index: 2, reason: 'field `cpu` is missing' }]);
  const accs = readAccumulators(accumulators).map((a) => a.slice());
  assert.equal(accs.length, 2);
  const merged = ok(aggregator.merge(accs[0], accs[1])).slice();
  const fin = ok(aggregator.finish(writeFinishGroups([
    { key: utf8('h1'), start: 0, end: 300000, acc: accs[0] },
    { key: utf8('m"x'), start: -9223372036854775808, end: 42, acc: merged },
  ])));
  const out = records(fin);
  const sum = 0.1 + 0.2 + 0.3;
  assert.deepEqual(out[0], {
    timestamp: 299999,
    key: 'h1',
    value: `{"key":"h1","window_start":0,"window_end":300000,"avg":${sum / 3},"count":3}`,
    headers: [],
  });
  assert.equal(out[1].timestamp, 41);
  assert.equal(out[1].value, `{"key":"m\\"x","window_start":-9223372036854775808,"window_end":42,"avg":${(sum + 5) / 4},"count":4}`);
  ok(lifecycle.init([['field', 'cpu'], ['output', 'csv']]));
  assert.equal(records(aggregator.finish(writeFinishGroups([{ key: utf8('h1'), start: 0, end: 10, acc: accs[0] }])))[0].value, `h1,10,${sum / 3}`);
  assert.match(aggregator.finish(writeFinishGroups([{ key: utf8('h'), start: 0, end: 1, acc: utf8('abc') }])).val.val, /^cannot decode the stored state/);
});

test('anomaly: Welford, alerts, timers, silence', async () => {
  const { lifecycle, processor, testing } = await example('anomaly');
  testing.reset();
  ok(lifecycle.init([['threshold', '2'], ['warmup', '3'], ['silence_ms', '1000']]));
  const readings = [10, 11, 9, 10, 30, 'oops', 10];
  const groups = [
    {
      key: utf8('s1'),
      value: null,
      records: readings.map((v, i) => ({ timestamp: 100 * i, key: 's1', value: v === 'oops' ? '{"value":"x"}' : JSON.stringify({ value: v }) })),
    },
    { key: utf8('s2'), value: null, records: [{ timestamp: 50, key: 's2', value: '{"value":1}' }] },
  ];
  const { results, rejected } = ok(processor.process(writeProcessGroups(groups)));
  assert.deepEqual(rejected, [{ index: 5, reason: 'field `value` is a string, expected a number' }]);
  const res = readResults(results);
  assert.deepEqual(res.map((r) => r.op), [SET, SET]);
  const out = records(res[0].output);
  assert.equal(out.length, 1);
  assert.equal(out[0].timestamp, 400);
  assert.equal(out[0].key, 's1');
  const alert = JSON.parse(out[0].value);
  assert.equal(alert.alert, 'anomaly');
  assert.equal(alert.value, 30);
  assert.equal(alert.ts, 400);
  assert.deepEqual(testing.timers(), [['s1', 1600], ['s2', 1050]]);

  // The state went back as bytes; a timer call sees it.
  const state = res[0].value.slice();
  const fired = ok(processor.onTimer(writeTimerGroups([
    { key: utf8('s1'), value: state, timers: [1600] },
    { key: utf8('gone'), value: null, timers: [5, 6] },
  ])));
  const tres = readResults(fired);
  assert.deepEqual(tres.map((r) => r.op), [KEEP, KEEP]); // read, unchanged: kept
  assert.deepEqual(records(tres[0].output), [{ timestamp: 1600, key: 's1', value: '{"sensor":"s1","alert":"silent","since":600}', headers: [] }]);
  assert.deepEqual(records(tres[1].output).map((r) => [r.timestamp, r.value]), [
    [5, '{"sensor":"gone","alert":"silent","since":0}'],
    [6, '{"sensor":"gone","alert":"silent","since":0}'],
  ]);
  assert.match(lifecycle.init([['warmup', '-1']]).val.val, /^parameter `warmup` = "-1": invalid digit/);
});

test('sdk: outputs with overrides, flatMap arrays, rollback on error', () => {
  const { lifecycle, mapper } = weir.map((r) => {
    const v = r.json();
    if (v.skip) throw new Error('skip me');
    if (v.bad) throw { tag: 'invalid-input', val: 'raw variant' };
    return weir.out({ n: v.n * 2 }, { key: null, timestamp: 7, headers: [['a', 'b']] });
  });
  ok(lifecycle.init([]));
  const { output, rejected } = mapper.map(writeBatch([
    { timestamp: 1, key: 'k', value: '{"n":1}' },
    { timestamp: 2, key: 'k', value: '{"skip":true}' },
    { timestamp: 3, key: 'k', value: '{"bad":true}' },
  ]));
  assert.deepEqual(records(output), [{ timestamp: 7, key: null, value: '{"n":2}', headers: [['a', 'b']] }]);
  assert.deepEqual(rejected, [{ index: 1, reason: 'skip me' }, { index: 2, reason: 'raw variant' }]);

  const fm = weir.flatMap({
    flatMap(r) {
      const n = Number(r.text());
      if (n < 0) {
        throw new RangeError('negative');
      }
      return Array.from({ length: n }, (_, i) => (i === 1 ? weir.out(`${i}`, { key: 'one' }) : `${i}`));
    },
  });
  ok(fm.lifecycle.init([]));
  const res = fm.flatMapper.flatMap(writeBatch(['2', '-1', '0', '1'].map((value, i) => ({ timestamp: i, key: 'k', value }))));
  assert.deepEqual(records(res.output).map((r) => [r.timestamp, r.key, r.value]), [[0, 'k', '0'], [0, 'one', '1'], [3, 'k', '0']]);
  assert.deepEqual(res.rejected, [{ index: 1, reason: 'RangeError: negative' }]);

  // A record that emits and then throws drops what it emitted.
  const partial = weir.flatMap((r, out) => {
    out.emit('first');
    if (r.text() === 'boom') throw new Error('boom');
  });
  ok(partial.lifecycle.init([]));
  const pr = partial.flatMapper.flatMap(writeBatch(['a', 'boom', 'c'].map((value) => ({ timestamp: 0, value }))));
  assert.equal(readBatch(pr.output).length, 2);
  assert.deepEqual(pr.rejected.map((r) => r.index), [1]);

  // Undefined from map, malformed input, errors that would trap.
  const m2 = weir.map(() => undefined);
  ok(m2.lifecycle.init([]));
  assert.match(m2.mapper.map(writeBatch([{ timestamp: 0, value: '' }])).rejected[0].reason, /map returned undefined/);
  assert.deepEqual(m2.mapper.map(new Uint8Array([1, 0])).val.tag, 'invalid-input');
});

test('sdk: process state ops, named state and errors', () => {
  weir.testing.reset();
  const { lifecycle, processor } = weir.process({
    process(ctx, r) {
      const cmd = r.text();
      if (cmd === 'inc') ctx.state = (ctx.state ?? 0) + 1;
      else if (cmd === 'push') (ctx.state ?? (ctx.state = { items: [] })).items.push(ctx.timestamp);
      else if (cmd === 'peek') ctx.emit(JSON.stringify(ctx.state ?? null));
      else if (cmd === 'clear') ctx.clearState();
      else if (cmd === 'named') {
        ctx.setValue('v', 'x');
        ctx.mapPut('m', 'f', 'y');
        ctx.listAppend('l', 'z');
        ctx.emit([weir.text(ctx.value('v')), weir.text(ctx.mapGet('m', 'f')), ctx.list('l').map(weir.text)]);
      } else throw new Error(`unknown ${cmd}`);
    },
  });
  ok(lifecycle.init([]));
  const groups = [
    { key: utf8('a'), value: null, records: ['inc', 'inc', 'peek'] },
    { key: utf8('b'), value: utf8('{"items":[1]}'), records: ['push', 'bad', 'peek'] },
    { key: utf8('c'), value: utf8('5'), records: ['peek'] },
    { key: utf8('d'), value: utf8('5'), records: ['clear'] },
    { key: utf8('e'), value: utf8('{"items":[1]}'), records: ['peek', 'named'] },
  ].map((g) => ({ ...g, records: g.records.map((value, i) => ({ timestamp: 10 + i, value })) }));
  const { results, rejected } = ok(processor.process(writeProcessGroups(groups)));
  assert.deepEqual(rejected, [{ index: 4, reason: 'unknown bad' }]);
  const res = readResults(results);
  assert.deepEqual(res.map((r) => [r.op, r.value && text(r.value)]), [
    [SET, '2'],
    [SET, '{"items":[1,10]}'],
    [KEEP, null],
    [CLEAR, null],
    [KEEP, null], // read as an object, not changed
  ]);
  assert.deepEqual(records(res[0].output).map((r) => r.value), ['2']);
  assert.deepEqual(records(res[4].output).map((r) => r.value), ['{"items":[1]}', '["x","y",["z"]]']);
  // onTimer errors fail the call.
  const t = weir.process({ process() {}, onTimer() { throw weir.WeirError.invalidInput('nope'); } });
  ok(t.lifecycle.init([]));
  assert.deepEqual(t.processor.onTimer(writeTimerGroups([{ key: utf8('a'), value: null, timers: [1] }])), {
    tag: 'err',
    val: { tag: 'invalid-input', val: 'nope' },
  });
});

test('params helpers follow the Rust parsers', () => {
  const p = new weir.Params([['f', '1e3'], ['i', '-12'], ['u', '+7'], ['b', 'true'], ['n', 'NaN'], ['e', '']]);
  assert.equal(p.number('f'), 1000);
  assert.equal(p.number('missing', 2.5), 2.5);
  assert.ok(Number.isNaN(p.number('n')));
  assert.equal(p.int('i'), -12);
  assert.equal(p.uint('u'), 7);
  assert.equal(p.bool('b'), true);
  assert.throws(() => p.uint('i'), /invalid digit/);
  assert.throws(() => p.int('e'), /empty string/);
  assert.throws(() => p.number('e'), /invalid float literal/);
  assert.throws(() => new weir.Params([['x', ' 1']]).number('x'), /invalid float literal/);
});

test('unicode helpers match the Unicode regexes of Node (ICU)', () => {
  const { isAlphanumeric, toLowerCase, words } = weir.unicode;
  const alnum = /^[\p{Alphabetic}\p{N}]$/u;
  for (let c = 0; c < 0x30000; c += c < 0x3000 ? 1 : 7) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    assert.equal(isAlphanumeric(c), alnum.test(String.fromCodePoint(c)), `U+${c.toString(16)}`);
  }
  for (const s of ['ΣΑΣ', 'ΟΔΥΣΣΕΥΣ', 'Σ', 'aΣ.b', 'ΑΣ\u0301 x', 'İstanbul', 'ÀB—cd']) {
    assert.equal(toLowerCase(s), s.toLowerCase(), s);
  }
  assert.deepEqual(words('don\'t — stop42 ünï·code'), ['don', 't', 'stop42', 'ünï', 'code']);
  assert.deepEqual(words('  '), []);
});

test('unicode words and lower-casing agree with a reference on random text', () => {
  const { toLowerCase, words } = weir.unicode;
  const pieces = ['Hello', 'ΟΔΥΣΣΕΥΣ', 'ΣΑΣ', 'Σ', 'ΑΣ\u0301', 'İ', '東京', '١٢٣', 'x²', 'Ⅻ', "'", '—', ' ', '.', '😀', 'ß', 'ǅ', 'a\u0301', '\u00ad', '·', '_', '9'];
  let seed = 1;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
  for (let k = 0; k < 2000; k++) {
    let s = '';
    for (let i = rnd(8); i >= 0; i--) s += pieces[rnd(pieces.length)];
    assert.equal(toLowerCase(s), s.toLowerCase(), JSON.stringify(s));
    const ref = s.split(/[^\p{Alphabetic}\p{N}]/u).filter((w) => w !== '');
    assert.deepEqual(words(s), ref, JSON.stringify(s));
  }
});
