"""The API fuzz test's runner (started by scripts/api-fuzz, against a server it started).

    run.py URL ADMIN_TOKEN COMPONENTS_DIR

Creates what the fuzzer should find existing (a tenant; function versions
tag@1, tag@2 and spare@1; a pipeline `keeper` on tag@1 that the other
operations poke at, and a pipeline `doomed` for DELETE), then runs
schemathesis against URL/openapi.json twice: with the tenant's token, then
with the admin token (whose PATCH may change the tenant's quotas). Each run
checks that no response is a 5xx, that every response's status, content
type and body are those the document describes, and that a method a path
lacks gets 405 with `Allow`. Exits 1 if either run failed, printing
schemathesis's report.

Environment: WEIR_FUZZ_EXAMPLES (cases per operation, default 300),
WEIR_FUZZ_SEED (to replay a run), WEIR_FUZZ_WORKERS (default 2),
WEIR_FUZZ_REPORT_DIR (JUnit XML and HAR reports of every request there). Runs
under the Python that has schemathesis (scripts/api-fuzz: its venv).
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "unsupported_method",
    ]
)
# A pipeline the fuzzer can feed, stop, resume, savepoint and swap: the http
# source, one function step, checkpoints often so swaps and savepoints finish fast.
PIPELINE = "name: {name}\nsource: {{ http: {{ format: json }} }}\nsteps:\n  - map: {{ udf: tag@1 }}\ncheckpoint: {{ interval: 200ms }}\n"


def call(url, method, path, token, body=b"", content_type="application/json"):
    req = urllib.request.Request(url + path, data=body or None, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if body:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"api-fuzz: setting up, {method} {path} answered {e.code}: {e.read().decode(errors='replace')}")


def setup(url, admin, components):
    """The objects the fuzzer should find; their names, as the hooks' environment."""
    tenant = call(url, "POST", "/v1/tenants", admin, json.dumps({"name": "fuzz"}).encode())
    token = tenant["token"]
    for udf, file in [("tag@1", "tag-one"), ("tag@2", "tag-two"), ("spare@1", "tag-one")]:
        name, version = udf.split("@")
        with open(os.path.join(components, f"{file}@1.wasm"), "rb") as f:
            call(url, "POST", f"/v1/udfs/{name}/versions/{version}", token, f.read(), "application/wasm")
    ids = {}
    for name in ["keeper", "doomed"]:
        manifest = PIPELINE.format(name=name).encode()
        ids[name] = call(url, "POST", "/v1/pipelines", token, manifest, "application/yaml")["id"]
    call(url, "POST", f"/v1/pipelines/{ids['keeper']}/records", token, b'{"id":1}\n{"id":2}\n', "text/plain")
    env = {
        "WEIR_FUZZ_TENANT": "fuzz",
        "WEIR_FUZZ_UDF": "tag@1",
        "WEIR_FUZZ_OTHER_UDF": "tag@2",
        "WEIR_FUZZ_SPARE_UDF": "spare@1",
        "WEIR_FUZZ_PIPELINE": ids["keeper"],
        "WEIR_FUZZ_DOOMED_PIPELINE": ids["doomed"],
        "WEIR_FUZZ_COMPONENT": os.path.join(components, "tag-one@1.wasm"),
    }
    return token, env


TOOL_BUG = "AST constructor recursion depth mismatch"


def run_echoed(cmd, env, cwd):
    """Runs `cmd`, its output passed through as it comes; its exit code and output."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        sys.stdout.write(line)
        seen.append(line)
    sys.stdout.flush()
    return proc.wait(), "".join(seen)


def fuzz(url, who, token, env, workdir):
    examples = os.environ.get("WEIR_FUZZ_EXAMPLES", "300")
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        examples,
        "--workers",
        os.environ.get("WEIR_FUZZ_WORKERS", "2"),
        "--generation-database",
        "none",
        "--request-timeout",
        "180",
        "--no-color",
        "--output-sanitize",
        "true",
    ]
    if os.environ.get("WEIR_FUZZ_REPORT_DIR"):
        report = os.path.join(os.path.abspath(os.environ["WEIR_FUZZ_REPORT_DIR"]), who)
        cmd += ["--report", "junit,har", "--report-dir", report]
    if os.environ.get("WEIR_FUZZ_SEED"):
        cmd += ["--seed", os.environ["WEIR_FUZZ_SEED"]]
    print(f"api-fuzz: as {who}: {examples} cases per operation", file=sys.stderr, flush=True)
    started = time.monotonic()
    # No __pycache__ of the hooks in the source tree.
    run_env = {
        **os.environ,
        **env,
        "SCHEMATHESIS_HOOKS": os.path.join(HERE, "hooks.py"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    code, output = run_echoed(cmd, run_env, workdir)
    if code != 0 and TOOL_BUG in output and "FAILURES" not in output:
        # Not a finding about the server: schemathesis's workers are threads, and
        # CPython 3.11's ast.parse is not thread-safe (python/cpython#106905), so
        # hypothesis describing a lambda can crash the run. One more pass.
        print(f"api-fuzz: as {who}: schemathesis hit CPython's `{TOOL_BUG}` (a thread-safety bug "
              "in the tool's Python, no check failed): running this pass again", file=sys.stderr, flush=True)
        code, output = run_echoed(cmd, run_env, workdir)
    took = time.monotonic() - started
    verdict = "passed" if code == 0 else f"FAILED (schemathesis exited {code})"
    print(f"api-fuzz: as {who}: {verdict} in {took:.0f} s", file=sys.stderr, flush=True)
    return code == 0, took


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    url, admin, components = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    token, env = setup(url, admin, components)
    results = []
    with tempfile.TemporaryDirectory(prefix="weir-api-fuzz-") as workdir:
        # The tenant first: the admin's run may change the tenant's quotas.
        as_tenant = {**env, "WEIR_FUZZ_URL": url, "WEIR_FUZZ_TOKEN": token}
        for who, t, e in [("tenant", token, as_tenant), ("admin", admin, env)]:
            results.append((who, *fuzz(url, who, t, e, workdir)))
    summary = ", ".join(f"as {who} {'passed' if ok else 'FAILED'} ({took:.0f} s)" for who, ok, took in results)
    print(f"api-fuzz: {summary}", file=sys.stderr)
    sys.exit(0 if all(ok for _, ok, _ in results) else 1)


if __name__ == "__main__":
    main()
