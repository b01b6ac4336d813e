#!/usr/bin/env python3
"""Writes the example inputs of deploy/pipelines, deterministically.

    python3 deploy/data/generate.py      # from anywhere; rewrites the files next to it

Randomness is SplitMix64 seeded per file, so the files (and the numbers the
tests expect from them) never change.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


class Rng:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n


def write(name, rows):
    with open(os.path.join(HERE, name), "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")


def traffic():
    """2,000 requests from 20 IPs over 10 minutes, up to 5 s out of order."""
    r = Rng(1)
    paths = ["/", "/index.html", "/api/items", "/api/cart", "/logo.png"]
    rows = []
    for i in range(2000):
        ts = T0 + i * 300 - r.below(5001)
        rows.append({"ip": f"10.0.0.{1 + r.below(20)}", "bytes": 100 + r.below(9900),
                     "path": paths[r.below(len(paths))], "ts": ts})
    write("traffic.ndjson", rows)


def metrics():
    """3 hosts, a sample every 10 s for 3 hours."""
    r = Rng(2)
    rows = []
    for i in range(3 * 360):
        for h, host in enumerate(["web-1", "web-2", "db-1"]):
            cpu = round(20 + 10 * h + r.below(4000) / 100, 2)
            mem = 1000 + 500 * h + r.below(2000)
            rows.append({"host": host, "cpu": cpu, "mem": mem, "ts": T0 + i * 10_000 + r.below(500)})
    write("metrics.ndjson", rows)


def visits():
    """1,500 page visits by 40 users over 60 s, in order; users pause between sessions."""
    r = Rng(3)
    pages = ["/home", "/search", "/product", "/cart", "/checkout"]
    rows = []
    for i in range(1500):
        rows.append({"page": pages[r.below(len(pages))], "user": f"u{r.below(40)}", "ts": T0 + i * 40})
    write("visits.ndjson", rows)


def sensors():
    """4 sensors, one reading a second for 10 minutes; a few spikes; s3 goes silent after 5 minutes."""
    r = Rng(4)
    rows = []
    for sec in range(600):
        for s in range(4):
            if s == 3 and sec >= 300:
                continue
            value = 50 + (r.below(1000) - 500) / 100
            if (sec, s) in ((120, 1), (400, 2), (450, 0)):
                value += 60
            rows.append({"sensor": f"s{s}", "value": value, "ts": T0 + sec * 1000 + s})
    write("sensors.ndjson", rows)


if __name__ == "__main__":
    traffic()
    metrics()
    visits()
    sensors()
