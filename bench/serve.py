#!/usr/bin/env python3
"""Benchmarks of `weir serve` (not a test): upload-to-running time, API
latency under concurrent requests, durable ingest, and the output pause of
a hot swap under steady load.

    bench/serve.py [WEIR_BINARY] [COMPONENT_DIR]

Defaults: $WEIR_TARGET_DIR/release/weir and udf-examples/dist/test (run
scripts/build-udfs first). Prints one line per figure."""
import json, os, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirserve import ROOT, Server

server = Server(sys.argv[1] if len(sys.argv) > 1 else None)
guests = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "udf-examples/dist/test")
call, committed = server.call, server.committed

try:
    # Rate quotas out of the way: the ingest figure measures the server, not the quota.
    token = server.tenant("bench", {"ingest_records_per_s": 10**9, "ingest_bytes_per_s": 10**12})
    manifest = "name: tagged\nsource: { http: { format: json } }\nsteps:\n  - map: { udf: tag@1 }\ncheckpoint: { interval: 100ms }\n"
    # 1. Upload to running: upload (validate + compile), create, first output committed.
    t0 = time.perf_counter()
    call("POST", "/v1/udfs/tag/versions/1", token, open(os.path.join(guests, "tag-one@1.wasm"), "rb").read(), "application/wasm")
    t1 = time.perf_counter()
    pid = call("POST", "/v1/pipelines", token, manifest.encode(), "application/yaml")["id"]
    t2 = time.perf_counter()
    call("POST", f"/v1/pipelines/{pid}/records", token, b'{"id":0}', "text/plain")
    while committed(pid) == 0:
        time.sleep(0.001)
    t3 = time.perf_counter()
    print(f"upload-to-running: upload+compile {1e3*(t1-t0):.0f} ms, create+start {1e3*(t2-t1):.0f} ms, "
          f"first record committed {1e3*(t3-t2):.0f} ms (checkpoint interval 100 ms); total {1e3*(t3-t0):.0f} ms")

    # 2. API latency: 8 clients x 250 GET /v1/pipelines/{id}.
    lat = []
    lock = threading.Lock()
    def client():
        mine = []
        for _ in range(250):
            s = time.perf_counter()
            call("GET", f"/v1/pipelines/{pid}", token)
            mine.append(time.perf_counter() - s)
        with lock:
            lat.extend(mine)
    s = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    wall = time.perf_counter() - s
    lat.sort()
    print(f"api latency (GET /v1/pipelines/ID, 8 concurrent clients, {len(lat)} requests): "
          f"p50 {1e3*lat[len(lat)//2]:.2f} ms, p99 {1e3*lat[int(len(lat)*0.99)]:.2f} ms, {len(lat)/wall:.0f} req/s")

    # 3. Ingest: each post is durable when answered (a receipt and the
    # records, each fsynced); 4 clients x 250 posts of 100 records, each
    # post under its own Idempotency-Key.
    import urllib.request
    lat = []
    def poster(c):
        mine = []
        for k in range(250):
            body = "\n".join('{"id":%d}' % j for j in range(100)).encode()
            req = urllib.request.Request(f"{server.url}/v1/pipelines/{pid}/records", data=body, method="POST", headers={
                "Authorization": "Bearer " + token, "Content-Type": "text/plain", "Idempotency-Key": f"ingest-{c}-{k}"})
            s = time.perf_counter()
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
            mine.append(time.perf_counter() - s)
        with lock:
            lat.extend(mine)
    s = time.perf_counter()
    threads = [threading.Thread(target=poster, args=(c,)) for c in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    wall = time.perf_counter() - s
    lat.sort()
    print(f"ingest (4 clients, {len(lat)} posts of 100 records with Idempotency-Keys, 2 fsyncs per post): "
          f"p50 {1e3*lat[len(lat)//2]:.2f} ms, p99 {1e3*lat[int(len(lat)*0.99)]:.2f} ms, "
          f"{len(lat)/wall:.0f} posts/s, {100*len(lat)/wall:,.0f} records/s")

    # 4. Swap pause: steady 10,000 records/s; the longest time the committed output does not grow.
    call("POST", "/v1/udfs/tag/versions/2", token, open(os.path.join(guests, "tag-two@1.wasm"), "rb").read(), "application/wasm")
    stop = threading.Event()
    def feeder():
        i = 1
        while not stop.is_set():
            body = "\n".join('{"id":%d}' % j for j in range(i, i + 100)).encode()
            call("POST", f"/v1/pipelines/{pid}/records", token, body, "text/plain")
            i += 100
            time.sleep(0.01)
    threading.Thread(target=feeder, daemon=True).start()
    def max_gap(seconds):
        end = time.perf_counter() + seconds
        last_n, last_t, gap = committed(pid), time.perf_counter(), 0.0
        while time.perf_counter() < end:
            n, t = committed(pid), time.perf_counter()
            if n != last_n:
                gap, last_n, last_t = max(gap, t - last_t), n, t
            time.sleep(0.002)
        return gap
    time.sleep(1)
    base = max_gap(3)
    result = {}
    def swap():
        op = call("PUT", f"/v1/pipelines/{pid}/steps/0", token, json.dumps({"udf": "tag@2", "probation_ms": 0}).encode())
        result["swap"] = server.until_done(token, op)
    t = threading.Thread(target=swap)
    s = time.perf_counter()
    t.start()
    during = max_gap(3)
    t.join()
    stop.set()
    sw = result["swap"]
    print(f"hot swap under 10,000 records/s: outcome {sw['outcome']} at checkpoint {sw['barrier']}, request-to-outcome {sw['took_ms']} ms; "
          f"longest output pause {1e3*during:.0f} ms with the swap vs {1e3*base:.0f} ms without (output is committed per 100 ms checkpoint)")
finally:
    server.stop()
