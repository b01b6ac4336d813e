"""A real `weir serve` for the benchmarks in this directory (bench/serve.py,
bench/noisy-neighbour.py): started on a free port with a temporary data
directory and the admin token `bench`, called with the standard library."""
import glob, json, os, subprocess, tempfile, threading, time, urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("WEIR_TARGET_DIR", os.path.expanduser("~/.cache/weir-target"))
ADMIN = "bench"


class Server:
    def __init__(self, weir=None, flags=(), data=None):
        """A new server; with `data`, one on that data directory (a restart)."""
        self.weir = weir or os.path.join(TARGET, "release/weir")
        self.flags = tuple(flags)
        self.data = data or tempfile.mkdtemp(prefix="weir-serve-bench-")
        self.proc = subprocess.Popen(
            [self.weir, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data, *flags],
            env={**os.environ, "WEIR_ADMIN_TOKEN": ADMIN, "WEIR_CACHE_DIR": ""},
            stderr=subprocess.PIPE, text=True)
        self.url = None
        for line in self.proc.stderr:
            if "serving on " in line:
                self.url = line.split("serving on ")[1].split()[0]
                break
        if self.url is None:
            raise SystemExit(f"weir serve exited ({self.proc.wait()}) before listening")
        # Keep draining the log so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def call(self, method, path, token, body=b"", ctype="application/json"):
        """The JSON answer; raises urllib.error.HTTPError on a 4xx/5xx."""
        req = urllib.request.Request(self.url + path, data=body if method != "GET" else None, method=method,
                                     headers={"Authorization": "Bearer " + token, "Content-Type": ctype})
        with urllib.request.urlopen(req, timeout=120) as r:
            text = r.read()
            return json.loads(text) if text.strip() else None

    def until_done(self, token, op):
        """Polls operation `op` (a 202's answer: stop, savepoint, swap) until it is over; its result."""
        while op["state"] == "running":
            time.sleep(0.02)
            op = self.call("GET", f"/v1/operations/{op['id']}", token)
        if op["state"] != "done":
            raise SystemExit(f"operation {op['id']} failed: {op['error']}")
        return op["result"]

    def tenant(self, name, quotas=None):
        return self.call("POST", "/v1/tenants", ADMIN, json.dumps({"name": name, "quotas": quotas or {}}).encode())["token"]

    def upload(self, token, name, version, path):
        with open(path, "rb") as f:
            self.call("POST", f"/v1/udfs/{name}/versions/{version}", token, f.read(), "application/wasm")

    def pipeline(self, token, manifest):
        return self.call("POST", "/v1/pipelines", token, manifest.encode(), "application/yaml")["id"]

    def committed(self, pid):
        """Lines of pipeline `pid`'s committed output."""
        n = 0
        for f in glob.glob(os.path.join(self.data, "pipelines", pid, "output", "part-*")):
            with open(f, "rb") as fh:
                n += fh.read().count(b"\n")
        return n

    def stop(self):
        self.proc.terminate()
        self.proc.wait()

    def kill(self):
        """SIGKILL, as a crash: no savepoints, nothing flushed."""
        self.proc.kill()
        self.proc.wait()

    def restarted(self):
        """A new server on this one's data directory (after stop or kill)."""
        return Server(self.weir, self.flags, self.data)
