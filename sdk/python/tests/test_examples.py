"""The Python examples (udf-examples/python/*/app.py) on plain CPython,
through weir.testing: python3 -m unittest discover sdk/python/tests"""

import importlib.util
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
EXAMPLES = os.path.join(HERE, "..", "..", "..", "udf-examples", "python")

import weir  # noqa: E402
from weir.testing import Keyed, call_aggregate, call_filter, call_flat_map, call_map  # noqa: E402


def example(name):
    path = os.path.join(EXAMPLES, name, "app.py")
    spec = importlib.util.spec_from_file_location(f"weir_example_{name.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bid(auction, bidder, price, ts):
    return {"auction": auction, "bidder": bidder, "price": price, "ts": ts}


@unittest.skipUnless(os.path.isdir(EXAMPLES), "no udf-examples/python next to the SDK")
class ExamplesTest(unittest.TestCase):
    def test_currency(self):
        Currency = example("currency").Currency
        recs = [weir.Record.make(json.dumps(bid(6413, 92292, 335800, 1699999998158)), key=b"k", timestamp=7,
                                 headers=[("h", b"v")]), {"auction": 1}, "[1]", bid(1, 2, 5, 3)]
        outs, rej = call_map(Currency, recs)
        self.assertEqual([o.value for o in outs], [b"6413,92292,304906.400,1699999998158", b"1,2,4.540,3"])
        self.assertEqual((outs[0].key, outs[0].timestamp, outs[0].headers), (b"k", 7, [("h", b"v")]))
        self.assertEqual([i for i, _ in rej], [1, 2])
        self.assertEqual(rej[0][1], "field `bidder` is missing")
        # Half away from zero: 1 * 0.0005 * 1000 = 0.5 -> 1 milli.
        outs, _ = call_map(Currency, [bid(1, 2, 1, 3)], params={"rate": "0.0005"})
        self.assertEqual(outs[0].value, b"1,2,0.001,3")
        with self.assertRaises(weir.InvalidParams):
            call_map(Currency, [], params={"rat": "1"})

    def test_auction_filter(self):
        Multiple = example("auction-filter").Multiple
        passed, rej = call_filter(Multiple, [bid(246, 1, 1, 1), bid(245, 1, 1, 1), "x", {"n": 10}])
        self.assertEqual(passed, [True, False, False, False])
        self.assertEqual([i for i, _ in rej], [2, 3])
        passed, _ = call_filter(Multiple, [{"n": 10}, {"n": 11}], params={"field": "n", "modulo": "5"})
        self.assertEqual(passed, [True, False])
        for bad in ({"modulo": "0"}, {"modulo": "-3"}, {"x": "1"}):
            with self.assertRaises(weir.InvalidParams):
                call_filter(Multiple, [], params=bad)

    def test_word_split(self):
        split = example("word-split").split
        outs, rej = call_flat_map(split, [weir.Record.make("The cat's hat, THE_END 42"), weir.Record.make(b"\xff")])
        self.assertEqual([(o.key, o.value) for o in outs],
                         [(w.encode(), w.encode()) for w in ["the", "cat", "s", "hat", "the", "end", "42"]])
        self.assertEqual([i for i, _ in rej], [1])

    def test_average(self):
        Average = example("average").Average
        groups = [("h1", (0, 300), [{"cpu": 1.5}, {"cpu": 2}, {}]), ("h2", (300, 600), [{"cpu": 0.1}] * 3)]
        outs, rej, accs = call_aggregate(Average, groups, params={"field": "cpu"})
        self.assertEqual([json.loads(o.value) for o in outs], [
            {"key": "h1", "window_start": 0, "window_end": 300, "avg": 1.75, "count": 2},
            {"key": "h2", "window_start": 300, "window_end": 600, "avg": (0.1 + 0.1 + 0.1) / 3, "count": 3},
        ])
        self.assertEqual([(o.key, o.timestamp) for o in outs], [(b"h1", 299), (b"h2", 599)])
        self.assertEqual([i for i, _ in rej], [2])
        outs, _, _ = call_aggregate(Average, groups[:1], params={"field": "cpu", "output": "csv"})
        self.assertEqual(outs[0].value, b"h1,300,1.75")
        with self.assertRaises(weir.InvalidParams):
            call_aggregate(Average, [], params={})

    def test_anomaly(self):
        k = Keyed(example("anomaly").Detector, params={"warmup": "3", "threshold": "2", "silence_ms": "100"})
        outs, rej = k.process({"s1": [weir.Record.make(json.dumps({"value": v}), key="s1", timestamp=10 * i)
                                      for i, v in enumerate([10, 11, 9, 10, 50, "x"])]})
        self.assertEqual([i for i, _ in rej], [5])
        self.assertEqual([json.loads(o.value)["alert"] for o in outs], ["anomaly"])
        self.assertEqual(json.loads(outs[0].value)["value"], 50)
        self.assertEqual(k.decoded_state("s1")[0], 5)
        self.assertEqual(k.host.timers, {(b"s1", 140)})
        fired = k.fire(1000)
        self.assertEqual([(o.key, o.timestamp, json.loads(o.value)) for o in fired],
                         [(b"s1", 140, {"sensor": "s1", "alert": "silent", "since": 40})])


if __name__ == "__main__":
    unittest.main()
