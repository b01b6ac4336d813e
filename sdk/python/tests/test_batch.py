"""Pure-Python tests of the Weir buffer layouts and the SDK loops.

Run from the repository root: python3 -m unittest discover sdk/python/tests
(no componentize-py needed).
"""

import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import weir  # noqa: E402
from weir import _glue, _host, _layout as L  # noqa: E402


def hdrs(*pairs):
    return weir._record.encode_headers(pairs)


RECORDS = [
    (1, b"k1", b"v1", b""),
    (-5, None, b"", hdrs(("trace", b"abc"), ("x", b""))),
    (2**63 - 1, b"", b"\x00\xff" * 100, b""),
    (-(2**63), b"key", "héllo".encode(), hdrs(("n", "é"))),
]


class BatchTest(unittest.TestCase):
    def test_round_trip(self):
        data = L.write_batch(RECORDS)
        self.assertEqual(struct.unpack_from("<I", data)[0], 4)
        recs = L.read_batch(data)
        self.assertEqual([(r.timestamp, r.key, r.value, r.raw_headers) for r in recs], RECORDS)
        self.assertEqual(recs[1].headers, [("trace", b"abc"), ("x", b"")])
        self.assertEqual(recs[1].header("trace"), b"abc")
        self.assertIsNone(recs[1].header("nope"))
        self.assertEqual(recs[3].text(), "héllo")
        self.assertEqual(L.write_batch(recs), data)

    def test_exact_bytes(self):
        data = L.write_batch([(7, None, b"ab", b"")])
        self.assertEqual(data, struct.pack("<IqIII", 1, 7, 0xFFFFFFFF, 2, 0) + b"ab")
        self.assertEqual(L.write_batch([]), b"\0\0\0\0")
        self.assertEqual(L.read_batch(b"\0\0\0\0"), [])

    def test_malformed(self):
        good = L.write_batch(RECORDS)
        for bad in (b"", b"\1\0", good[:-1], good + b"\0", struct.pack("<I", 10**6) + good[4:]):
            with self.assertRaises(L.LayoutError):
                L.read_batch(bad)
        # A key length running past the end.
        with self.assertRaises(L.LayoutError):
            L.read_batch(struct.pack("<IqIII", 1, 0, 50, 0, 0) + b"abc")

    def test_slice(self):
        inner = L.write_batch(RECORDS[:2])
        buf = b"xx" + inner + b"yy"
        recs = L.read_batch(buf, 2, 2 + len(inner))
        self.assertEqual([r.value for r in recs], [b"v1", b""])
        self.assertEqual(recs[1].header("trace"), b"abc")

    def test_writer_rollback(self):
        w = L.BatchWriter()
        w.push(1, b"a", b"1")
        m = w.mark()
        w.push(2, b"b", b"2")
        w.rollback(m)
        w.push(3, None, b"3", hdrs(("h", b"v")))
        self.assertEqual([(r.timestamp, r.key, r.value) for r in L.read_batch(w.finish())], [(1, b"a", b"1"), (3, None, b"3")])


class GroupsTest(unittest.TestCase):
    def test_add_groups(self):
        b1, b2 = L.write_batch(RECORDS[:1]), L.write_batch(RECORDS[1:])
        groups = [(b"k", 0, 10, b"acc", b1), (b"", -(2**63), 2**63 - 1, b"", b2)]
        got = L.read_add_groups(L.write_add_groups(groups))
        self.assertEqual([g[:4] for g in got], [g[:4] for g in groups])
        self.assertEqual([len(g[4]) for g in got], [1, 3])
        self.assertEqual(got[1][4][1].value, RECORDS[2][2])

    def test_finish_groups(self):
        groups = [(b"a", 1, 2, b"x"), (b"b", -3, 4, b"")]
        self.assertEqual(L.read_finish_groups(L.write_finish_groups(groups)), groups)

    def test_process_groups(self):
        groups = [(b"a", None, L.write_batch(RECORDS)), (b"b", b"", L.write_batch([])), (b"c", b"st", L.write_batch(RECORDS[:1]))]
        got = L.read_process_groups(L.write_process_groups(groups))
        self.assertEqual([(k, v, len(r)) for k, v, r in got], [(b"a", None, 4), (b"b", b"", 0), (b"c", b"st", 1)])

    def test_timer_groups(self):
        groups = [(b"a", None, [1, 2, 3]), (b"b", b"v", []), (b"c", b"", [-(2**63)])]
        self.assertEqual(L.read_timer_groups(L.write_timer_groups(groups)), groups)

    def test_truncated(self):
        cases = [
            (L.read_add_groups, L.write_add_groups([(b"a", 1, 2, b"x", L.write_batch(RECORDS))])),
            (L.read_finish_groups, L.write_finish_groups([(b"a", 1, 2, b"x")])),
            (L.read_process_groups, L.write_process_groups([(b"a", None, L.write_batch(RECORDS))])),
            (L.read_timer_groups, L.write_timer_groups([(b"a", None, [1, 2])])),
            (L.read_accumulators, L.write_accumulators([b"abc"])),
        ]
        for read, data in cases:
            read(data)
            with self.assertRaises(L.LayoutError):
                read(data[:-1])
            with self.assertRaises(L.LayoutError):
                read(data + b"\0")

    def test_accumulators(self):
        accs = [b"", b"abc", bytes(300)]
        data = L.write_accumulators(accs)
        self.assertEqual(data[:4], b"\3\0\0\0")
        self.assertEqual(L.read_accumulators(data), accs)

    def test_results(self):
        w = L.ResultWriter()
        w.add(L.KEEP_STATE, None, L.write_batch(RECORDS[:1]))
        w.add(L.SET_STATE, b"new", L.write_batch([]))
        w.add(L.CLEAR_STATE, None, L.write_batch(RECORDS))
        data = w.finish()
        got = L.read_results(data)
        self.assertEqual([(op, v, len(r)) for op, v, r in got], [(0, None, 1), (1, b"new", 0), (2, None, 4)])
        self.assertEqual(data[4], 0)
        with self.assertRaises(L.LayoutError):
            L.read_results(b"\1\0\0\0\3" + L.write_batch([]))

    def test_bitmap(self):
        for n in (0, 1, 7, 8, 9, 1024, 1025):
            bm = L.new_bitmap(n)
            self.assertEqual(len(bm), (n + 7) // 8)
            want = [i % 3 == 0 or i % 7 == 1 for i in range(n)]
            for i, b in enumerate(want):
                if b:
                    L.set_bit(bm, i)
            self.assertEqual(L.bitmap_bits(bm, n), want)
            self.assertEqual([L.get_bit(bm, i) for i in range(n)], want)
        bm = L.new_bitmap(9)
        L.set_bit(bm, 0)
        L.set_bit(bm, 8)
        self.assertEqual(bytes(bm), b"\x01\x01")


class Upper(weir.Map):
    def map(self, r):
        if r.value == b"bad":
            raise KeyError("price")
        if r.value == b"out":
            return weir.Out(b"O", key=None, timestamp=99, headers=[]).add_header("h", "1")
        return r.text().upper()


class Even(weir.Filter):
    def filter(self, r):
        return int(r.text()) % 2 == 0


@weir.flat_map
def chars(r):
    if r.value == b"boom":
        yield "partial"
        raise weir.Reject("no boom")
    for c in r.text():
        yield weir.Out(c, key=c)


class Count(weir.Aggregate):
    codec = weir.StructCodec("<q")

    def create(self):
        return 0

    def add(self, acc, r):
        if r.value == b"bad":
            raise weir.Reject("bad")
        return acc + 1

    def merge(self, a, b):
        return a + b

    def finish(self, key, window, acc):
        return f"{key.decode()}:{window.end}:{acc}"


class FakeServices(_host.Services):
    def __init__(self):
        self.timers = []

    def timer_register(self, key, at):
        self.timers.append(("reg", key, at))

    def timer_delete(self, key, at):
        self.timers.append(("del", key, at))


class Sum(weir.Process):
    def process(self, ctx, r, out):
        if r.value == b"bad":
            out.emit("dropped")
            raise ValueError("bad value")
        ctx.state = (ctx.state or 0) + int(r.value)
        ctx.register_timer(r.timestamp + 10)
        out.emit(str(ctx.state))

    def on_timer(self, ctx, at, out):
        out.emit(f"timer {at} {ctx.state}")
        ctx.clear_state()


class GlueTest(unittest.TestCase):
    def test_map(self):
        fn = _glue.init(Upper, [])
        data = L.write_batch([(1, b"k", b"abc", hdrs(("a", b"b"))), (2, None, b"bad", b""), (3, b"k", b"out", hdrs(("x", b"y")))])
        out, rej = _glue.run_map(fn, data)
        self.assertEqual(rej, [(1, "KeyError: 'price'")])
        got = L.read_batch(out)
        self.assertEqual([(r.timestamp, r.key, r.value, r.headers) for r in got],
                         [(1, b"k", b"ABC", [("a", b"b")]), (99, None, b"O", [("h", b"1")])])

    def test_malformed_input(self):
        good = L.write_batch(RECORDS)
        for run, fn in ((_glue.run_map, _glue.init(Upper, [])), (_glue.run_filter, _glue.init(Even, [])),
                        (_glue.run_flat_map, _glue.init(chars, []))):
            for bad in (good[:-1], good + b"\0", good[:30], b"\2\0\0"):
                with self.assertRaises(weir.Reject) as e:
                    run(fn, bad)
                self.assertIn("malformed batch", e.exception.message)

    def test_params(self):
        with self.assertRaises(weir.InvalidParams):
            _glue.init(Upper, [("x", "1")])
        p = weir.Params([("n", "12"), ("f", "1e3"), ("b", "true"), ("n", "13")])
        self.assertEqual((p.int("n"), p.float("f"), p.bool("b"), p.int("m", 5)), (12, 1000.0, True, 5))
        for bad in (lambda: p.int("f"), lambda: p.float("b"), lambda: p.require("zz"), lambda: p.int("n", min=20)):
            with self.assertRaises(weir.InvalidParams):
                bad()

    def test_filter(self):
        fn = _glue.init(Even, [])
        data = L.write_batch([(0, None, str(v).encode(), b"") for v in [0, 1, 2, "x", 4, 5, 6, 7, 8]])
        keep, rej = _glue.run_filter(fn, data)
        self.assertEqual(L.bitmap_bits(keep, 9), [True, False, True, False, True, False, True, False, True])
        self.assertEqual(len(keep), 2)
        self.assertEqual([i for i, _ in rej], [3])

    def test_flat_map(self):
        fn = _glue.init(chars, [])
        data = L.write_batch([(5, b"k", b"ab", b""), (6, None, b"boom", b""), (7, None, b"c", b"")])
        out, rej = _glue.run_flat_map(fn, data)
        self.assertEqual(rej, [(1, "no boom")])
        self.assertEqual([(r.timestamp, r.key, r.value) for r in L.read_batch(out)],
                         [(5, b"a", b"a"), (5, b"b", b"b"), (7, b"c", b"c")])

    def test_aggregate(self):
        fn = _glue.init(Count, [])
        zero = _glue.agg_create(fn)
        groups = L.write_add_groups([
            (b"a", 0, 10, zero, L.write_batch([(1, b"a", b"x", b""), (2, b"a", b"bad", b"")])),
            (b"b", 0, 10, fn.codec.encode(5), L.write_batch([(3, b"b", b"y", b"")])),
        ])
        accs, rej = _glue.agg_add(fn, groups)
        self.assertEqual([fn.codec.decode(a) for a in L.read_accumulators(accs)], [1, 6])
        self.assertEqual(rej, [(1, "bad")])
        self.assertEqual(fn.codec.decode(_glue.agg_merge(fn, fn.codec.encode(2), fn.codec.encode(3))), 5)
        out = _glue.agg_finish(fn, L.write_finish_groups([(b"a", 0, 10, fn.codec.encode(1))]))
        self.assertEqual([(r.timestamp, r.key, r.value) for r in L.read_batch(out)], [(9, b"a", b"a:10:1")])

    def test_process(self):
        fake = FakeServices()
        _host.install(fake)
        try:
            fn = _glue.init(Sum, [])
            groups = L.write_process_groups([
                (b"a", None, L.write_batch([(1, b"a", b"2", b""), (2, b"a", b"bad", b""), (3, b"a", b"3", b"")])),
                (b"b", weir.JSON.encode(10), L.write_batch([(4, b"b", b"1", b"")])),
                (b"c", weir.JSON.encode(7), L.write_batch([])),
            ])
            results, rej = _glue.run_process(fn, groups)
            self.assertEqual(rej, [(1, "ValueError: bad value")])
            got = L.read_results(results)
            self.assertEqual([(op, v) for op, v, _ in got], [(1, b"5"), (1, b"11"), (0, None)])
            self.assertEqual([[r.value for r in out] for _, _, out in got], [[b"2", b"5"], [b"11"], []])
            self.assertEqual(fake.timers, [("reg", b"a", 11), ("reg", b"a", 13), ("reg", b"b", 14)])
            fired = L.write_timer_groups([(b"a", b"5", [11, 13])])
            got = L.read_results(_glue.run_on_timer(fn, fired))
            self.assertEqual(got[0][0], L.CLEAR_STATE)
            self.assertEqual([(r.timestamp, r.key, r.value) for r in got[0][2]],
                             [(11, b"a", b"timer 11 5"), (13, b"a", b"timer 13 None")])
        finally:
            _host.install(None)

    def test_state_changes(self):
        class Tally(weir.Process):
            def process(self, ctx, r, out):
                if r.value == b"inc":
                    ctx.state["n"] += 1  # in place
                elif r.value == b"clear":
                    ctx.state = None

        fn = _glue.init(Tally, [])
        enc = weir.JSON.encode
        groups = L.write_process_groups([
            (b"a", enc({"n": 1}), L.write_batch([(0, b"a", b"inc", b"")])),
            (b"b", enc({"n": 1}), L.write_batch([(0, b"b", b"other", b"")])),
            (b"c", enc({"n": 1}), L.write_batch([(0, b"c", b"clear", b"")])),
            (b"d", enc([1]), L.write_batch([])),
        ])
        got = [(op, v) for op, v, _ in L.read_results(_glue.run_process(fn, groups)[0])]
        self.assertEqual(got, [(L.SET_STATE, b'{"n":2}'), (L.KEEP_STATE, None), (L.CLEAR_STATE, None), (L.KEEP_STATE, None)])

    def test_exports_local(self):
        Lifecycle, Mapper = weir.exports(Upper)
        with self.assertRaises(Exception) as e:
            Mapper().map(L.write_batch([]))
        self.assertIn("before init", e.exception.value.value)
        with self.assertRaises(Exception) as e:
            Lifecycle().init([("nope", "1")])
        self.assertEqual(type(e.exception.value).__name__, "UdfError_InvalidParams")
        Lifecycle().init([])
        res = Mapper().map(L.write_batch([(1, None, b"bad", b"")]))
        self.assertEqual((res.output, [tuple(r) for r in res.rejected]), (b"\0\0\0\0", [(0, "KeyError: 'price'")]))
        with self.assertRaises(Exception) as e:
            Mapper().map(b"\1\0\0\0")
        self.assertEqual(type(e.exception.value).__name__, "UdfError_InvalidInput")


if __name__ == "__main__":
    unittest.main()
