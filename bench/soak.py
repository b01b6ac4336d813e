#!/usr/bin/env python3
"""A soak of `weir serve` (a benchmark, not a test): many tenants post
records over HTTP with idempotency keys while the server is killed with
SIGKILL every ~30 s and started again on its data directory. At the end
every acknowledged record must be in its pipeline's output exactly once.

    bench/soak.py [MINUTES] [TENANTS] [PIPELINES_PER_TENANT] [KEYS]

Defaults: 10 minutes, 20 tenants, 5 pipelines each (100 pipelines of
`http -> map tag@1 -> output`, tests/guests/tag-one built by
scripts/build-udfs). Each tenant has one client thread that posts batches
of 50 records to its pipelines in turn, each batch under its own
`Idempotency-Key` and re-sent with that key until it is acknowledged
(connection refused or reset while the server is down, 5xx, 429). Kills
come at random 20-40 s apart. Each pipeline remembers its newest KEYS
idempotency keys (default 1000, the server's `ingest.idempotency_keys`;
its own default is 10,000): a receipt is ~170 bytes on disk, so the
receipts level off once a pipeline has seen that many posts, within the
run at 1000. Prints the kills, the throughput, the disk
by minute (to read: everything but the output should level off, the output
grows until `retention.output_mib`) and the verdict; exits 1 if a record
was lost or duplicated."""
import collections, http.client, os, random, re, sys, threading, time, urllib.error, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirserve import ROOT, Server

MINUTES = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
TENANTS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
PER_TENANT = int(sys.argv[3]) if len(sys.argv) > 3 else 5
KEYS = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
BATCH = 50
GUEST = os.path.join(ROOT, "udf-examples/dist/test/tag-one@1.wasm")
MANIFEST = "name: soak-{i}\nsource: {{ http: {{ format: lines }} }}\nsteps:\n  - map: {{ udf: tag@1 }}\n"


class Soak:
    def __init__(self):
        config = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"weir-soak-{os.getpid()}.yaml")
        with open(config, "w") as f:
            f.write(f"ingest: {{ idempotency_keys: {KEYS} }}\n")
        self.server = Server(flags=("--config", config))
        self.url = self.server.url
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acked = collections.Counter()  # pipeline id -> records acknowledged
        self.posts = self.replayed = self.retries = 0
        self.failures = []

    def post(self, token, pid, body, key):
        """Sends one batch until it is acknowledged; whether the ack was a replay."""
        while True:
            req = urllib.request.Request(f"{self.url}/v1/pipelines/{pid}/records", data=body, method="POST", headers={
                "Authorization": "Bearer " + token, "Content-Type": "text/plain", "Idempotency-Key": key})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    r.read()
                    return r.headers.get("Idempotent-Replayed") == "true"
            except urllib.error.HTTPError as e:
                try:
                    text = e.read().decode(errors="replace")
                except (OSError, http.client.HTTPException):
                    text = ""  # the answer was cut short by a kill
                if e.code == 429 or e.code >= 500:
                    wait = float(e.headers.get("Retry-After") or 0.2)
                elif e.code == 409 and "failed" in text:
                    raise SystemExit(f"pipeline {pid} failed: {text}")
                else:
                    raise SystemExit(f"POST records to {pid}: {e.code} {text}")
            except (urllib.error.URLError, http.client.HTTPException, OSError):
                wait = 0.2  # the server is down or restarting, or the answer was cut short
            with self.lock:
                self.retries += 1
            time.sleep(wait)

    def client(self, token, pids):
        """One tenant: batches to its pipelines in turn, each until acknowledged."""
        batch = 0
        try:
            while not self.stop.is_set():
                for pid in pids:
                    n = self.acked[pid]
                    body = "\n".join('{"n":%d}' % i for i in range(n, n + BATCH)).encode()
                    replayed = self.post(token, pid, body, f"{pid}-{batch}")
                    with self.lock:
                        self.acked[pid] += BATCH
                        self.posts += 1
                        self.replayed += replayed
                batch += 1
        except SystemExit as e:
            self.failures.append(str(e))
            self.stop.set()
        except Exception as e:  # a bug here must not pass for less load
            self.failures.append(repr(e))
            self.stop.set()


def disk(data):
    """Bytes on disk under `data` (allocated blocks), by what holds them."""
    by = collections.Counter()
    for root, _, files in os.walk(data):
        for f in files:
            try:
                size = os.lstat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                continue
            parts = os.path.relpath(os.path.join(root, f), data).split(os.sep)
            what = ("output" if "output" in parts else "ingest" if f.startswith("ingest.") else
                    "checkpoints+state" if "checkpoints" in parts or "state" in parts else
                    "dead letters" if f.startswith("dead-letters") else
                    "metadata" if f.startswith("meta.db") else "functions+other")
            by[what] += size
    return by


def main():
    soak = Soak()
    server = soak.server
    tenants = []
    for t in range(TENANTS):
        token = server.tenant(f"soak-{t}", {"max_pipelines": PER_TENANT})
        server.upload(token, "tag", 1, GUEST)
        pids = [server.pipeline(token, MANIFEST.format(i=i)) for i in range(PER_TENANT)]
        tenants.append((token, pids))
        soak.acked.update({pid: 0 for pid in pids})
    print(f"{TENANTS} tenants x {PER_TENANT} pipelines, batches of {BATCH} records, {KEYS} idempotency keys "
          f"per pipeline, SIGKILL every 20-40 s for {MINUTES:g} min; data in {server.data}", flush=True)
    threads = [threading.Thread(target=soak.client, args=t, daemon=True) for t in tenants]
    start = time.monotonic()
    [t.start() for t in threads]
    samples = []  # (seconds, disk by kind, records acknowledged)

    def sample():
        samples.append((time.monotonic() - start, disk(server.data), sum(soak.acked.values())))

    sample()
    kills, restarts = 0, []
    end = start + MINUTES * 60
    next_sample = time.monotonic() + 10
    next_kill = time.monotonic() + random.uniform(20, 40)
    while time.monotonic() < end and not soak.stop.is_set():
        time.sleep(0.5)
        now = time.monotonic()
        if now >= next_sample:
            sample()
            next_sample += 10
        if now >= next_kill:
            server.kill()
            kills += 1
            t0 = time.perf_counter()
            server = soak.server = server.restarted()
            restarts.append(time.perf_counter() - t0)
            soak.url = server.url
            print(f"  {now - start:5.0f} s: kill {kills}, serving again after {restarts[-1]:.2f} s; "
                  f"{sum(soak.acked.values()):,} records acknowledged", flush=True)
            next_kill = now + random.uniform(20, 40)
    soak.stop.set()
    [t.join(timeout=300) for t in threads]
    posted_for = time.monotonic() - start
    sample()
    if soak.failures:
        print("FAILED:", *soak.failures, sep="\n  ")
        server.stop()
        sys.exit(1)

    # Every acknowledged record reaches the output (committed at a checkpoint).
    deadline = time.monotonic() + 300
    while any(server.committed(pid) < soak.acked[pid] for _, pids in tenants for pid in pids):
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    server.stop()
    lost = duplicated = extra = 0
    number = re.compile(rb'"n":(\d+)')
    for _, pids in tenants:
        for pid in pids:
            seen = collections.Counter()
            out = os.path.join(server.data, "pipelines", pid, "output")
            for f in os.listdir(out) if os.path.isdir(out) else []:
                if f.startswith("part-"):
                    with open(os.path.join(out, f), "rb") as fh:
                        seen.update(int(m.group(1)) for m in number.finditer(fh.read()))
            want = soak.acked[pid]
            lost += sum(1 for i in range(want) if seen[i] == 0)
            duplicated += sum(c - 1 for c in seen.values() if c > 1)
            extra += sum(c for i, c in seen.items() if i >= want)

    records = sum(soak.acked.values())
    print(f"\nposted for {posted_for:.0f} s: {soak.posts:,} posts acknowledged ({soak.replayed:,} of them replays "
          f"of a post the server had taken before a kill), {records:,} records, {records / posted_for:,.0f} records/s; "
          f"{soak.retries:,} re-sends")
    restarts.sort()
    if restarts:
        print(f"{kills} kills; back to serving in {restarts[len(restarts) // 2]:.2f} s median, {restarts[-1]:.2f} s at most")
    kinds = ["ingest", "checkpoints+state", "dead letters", "metadata", "functions+other", "output"]
    print("\n| minute | records acknowledged | " + " | ".join(kinds) + " | all but output | all |")
    print("|---" * (len(kinds) + 4) + "|")
    mib = lambda b: f"{b / (1 << 20):,.1f}"
    shown = set()
    for sec, by, acked in samples:
        minute = int(sec // 60)
        if minute in shown and sec != samples[-1][0]:
            continue
        shown.add(minute)
        total = sum(by.values())
        print(f"| {sec / 60:.1f} | {acked:,} | " + " | ".join(mib(by[k]) for k in kinds) +
              f" | {mib(total - by['output'])} | {mib(total)} |")
    ok = lost == duplicated == extra == 0
    print(f"\n{'PASS' if ok else 'FAIL'}: {records:,} acknowledged records; lost {lost}, duplicated {duplicated}, "
          f"never acknowledged but in the output {extra} (output sizes in MiB of 4 KiB blocks)")
    sys.exit(0 if ok else 1)


main()
