#!/usr/bin/env python3
"""Noisy neighbours on `weir serve` (a benchmark, not a test): a quiet
tenant's records/s alone and beside each misbehaving guest of another
tenant, on one server.

    bench/noisy-neighbour.py [SECONDS]

The quiet tenant runs `bids (as fast as it can) -> map tag@1 -> output`;
its rate is the records its sink took over SECONDS (default 5) after 2 s
of warm-up. Each neighbour runs one pipeline fed its trigger records
continuously (tests/guests/evil and friends, built by scripts/build-udfs),
so it misbehaves for the whole measurement. "alone" is measured first and
last: the machine's own drift. Prints a Markdown table."""
import json, os, sys, threading, time, urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirserve import ROOT, Server

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
TEST = os.path.join(ROOT, "udf-examples/dist/test")
DIST = os.path.join(ROOT, "udf-examples/dist")

QUIET = "name: quiet\nsource: { bids: { seed: 7 } }\nsteps:\n  - map: { udf: tag@1 }\n"
EVIL = "name: NAME\nbatch_size: 4\nsource: { http: { format: lines } }\nsteps:\n  - map: { udf: evil@1, limits: { memory: 256MiB } }\n"

# name, what it does, manifest (None: no pipeline), the records fed to it.
NEIGHBOURS = [
    ("LOOP", "spins until its 1 s call deadline", EVIL, ["LOOP"]),
    ("SLEEP", "sleeps in WASI past its deadline", EVIL, ["SLEEP"]),
    ("OOM", "grows memory to its 256 MiB cap", EVIL, ["OOM"]),
    ("STACK", "overflows its stack", EVIL, ["STACK"]),
    ("BIG", "returns 64 MiB values", EVIL, ["BIG"]),
    ("PANIC", "traps on every record", EVIL, ["PANIC"] * 4),
    ("flood", "flat_map of 20,000 outputs per record",
     "name: NAME\nsource: { http: { format: lines } }\nsteps:\n  - flat_map: { udf: word-split@1 }\n",
     [" ".join(["w"] * 20_000)]),
    ("state bomb", "writes 2 MiB of state per record over a 1 MiB budget",
     "name: NAME\nsource:\n  http: {}\n  event_time: { field: /ts }\nsteps:\n  - key_by: { field: /k }\n"
     "  - process: { udf: tally@1, limits: { state_value: 1MiB } }\n",
     ['{"k":"a","ts":1,"pad":"%s"}' % ("x" * (2 << 20))]),
    ("init hang", "creates pipelines whose init sleeps past its deadline", None, None),
]


def sink_in(server, token, pid):
    return server.call("GET", f"/v1/pipelines/{pid}", token)["steps"][-1]["records_in"]


def measure(server, quiet):
    pid = server.pipeline(quiet, QUIET)
    time.sleep(2)
    n0, t0 = sink_in(server, quiet, pid), time.perf_counter()
    time.sleep(SECONDS)
    n1, t1 = sink_in(server, quiet, pid), time.perf_counter()
    server.call("DELETE", f"/v1/pipelines/{pid}", quiet)
    return (n1 - n0) / (t1 - t0)


def feed(server, token, name, manifest, records, stop):
    """Keeps the neighbour misbehaving until `stop` is set."""
    if manifest is None:
        stuck = b"name: stuck\nsource: { http: {} }\nsteps:\n  - filter: { udf: bad-init@1, params: { hang: sleep } }\n"
        while not stop.is_set():
            try:
                server.call("POST", "/v1/pipelines", token, stuck, "application/yaml")
            except urllib.error.HTTPError:
                pass  # 400: its init ran past the deadline, as intended
        return
    pid = server.pipeline(token, manifest.replace("NAME", name.replace(" ", "-").lower()))
    body = "\n".join(records).encode()
    while not stop.is_set():
        server.call("POST", f"/v1/pipelines/{pid}/records", token, body, "text/plain")
        stop.wait(0.2)
    server.call("DELETE", f"/v1/pipelines/{pid}", token)


def main():
    server = Server()
    try:
        quiet = server.tenant("quiet")
        mallory = server.tenant("mallory", {"memory_mib": 256})
        server.upload(quiet, "tag", 1, os.path.join(TEST, "tag-one@1.wasm"))
        for name, path in [("evil", os.path.join(TEST, "evil@1.wasm")), ("tally", os.path.join(TEST, "tally@1.wasm")),
                           ("bad-init", os.path.join(TEST, "bad-init@1.wasm")),
                           ("word-split", os.path.join(DIST, "word-split@1.wasm"))]:
            server.upload(mallory, name, 1, path)
        alone = measure(server, quiet)
        rows = [("alone", "—", alone)]
        for name, what, manifest, records in NEIGHBOURS:
            stop = threading.Event()
            t = threading.Thread(target=feed, args=(server, mallory, name, manifest, records, stop), daemon=True)
            t.start()
            time.sleep(1)
            rate = measure(server, quiet)
            stop.set()
            t.join(timeout=60)
            rows.append((name, what, rate))
        again = measure(server, quiet)
        rows.append(("alone, again", "—", again))
        base = (alone + again) / 2
        print(f"quiet tenant: bids -> map tag@1 -> output, records/s over {SECONDS:.0f} s (alone: mean of first and last)")
        print("| beside | the neighbour | quiet records/s | vs alone |")
        print("|---|---|---|---|")
        for name, what, rate in rows:
            print(f"| {name} | {what} | {rate:,.0f} | {100 * rate / base:.0f}% |")
    finally:
        server.stop()


main()
