"""Schemathesis hooks for the API fuzz test (scripts/api-fuzz).

Loaded by schemathesis through SCHEMATHESIS_HOOKS. They do three things:

- register serializers for the media types of /openapi.json that
  schemathesis has none for: `application/wasm` (component uploads) and
  `application/x-ndjson` (records);
- steer part of the generated cases onto objects that exist, named by the
  environment run.py sets (WEIR_FUZZ_*): the tenant, a function version, a
  running pipeline and its step. Random ids only ever reach the 404 paths;
  with these the fuzzer also stops, resumes, savepoints, swaps, feeds and
  deletes a real pipeline and uploads real (and damaged) components;
- in the tenant's run, before most cases on that pipeline, put it in the
  state where the case does something (running for stop, savepoints, swaps
  and records; stopped for resume).
"""

import json
import os
import random
import time
import urllib.error
import urllib.request

import schemathesis
from hypothesis import strategies as st


def _to_bytes(value):
    """A generated body as bytes: bytes as they are, anything else as its text."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    data = getattr(value, "data", None)  # schemathesis's Binary wrapper
    if isinstance(data, bytes):
        return data
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogatepass")
    return json.dumps(value).encode()


@schemathesis.serializer("application/wasm")
def wasm(ctx, value):
    return _to_bytes(value)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, list):
        return b"".join(json.dumps(v).encode() + b"\n" for v in value)
    return _to_bytes(value)


def _env(name):
    return os.environ.get(f"WEIR_FUZZ_{name}") or None


TENANT = _env("TENANT")
UDF = _env("UDF")
OTHER_UDF = _env("OTHER_UDF")
SPARE_UDF = _env("SPARE_UDF")
PIPELINE = _env("PIPELINE")
DOOMED_PIPELINE = _env("DOOMED_PIPELINE")
COMPONENT = None
if _env("COMPONENT"):
    with open(_env("COMPONENT"), "rb") as f:
        COMPONENT = f.read()


def _udf(ref):
    name, _, version = (ref or "@").partition("@")
    return {"name": name, "version": version}


def _known(method, path):
    """The path parameters naming real objects for an operation: DELETEs get
    objects of their own (`doomed`, `spare@1`), so the others keep theirs."""
    if path == "/v1/tenants/{name}":
        known = {"name": TENANT}
    elif path == "/v1/udfs/{name}":
        known = {"name": _udf(UDF)["name"]}
    elif path == "/v1/udfs/{name}/versions/{version}":
        known = _udf(SPARE_UDF if method == "delete" else UDF)
    elif path == "/v1/pipelines/{id}" and method == "delete":
        known = {"id": DOOMED_PIPELINE}
    elif path == "/v1/pipelines/{id}/steps/{step}":
        known = {"id": PIPELINE, "step": "0"}
    elif path == "/v1/operations/{op}":
        known = {"op": _LAST_OP[0]}
    elif path.startswith("/v1/pipelines/{id}"):
        known = {"id": PIPELINE}
    else:
        known = {}
    return {k: v for k, v in known.items() if v}


@schemathesis.hook
def flatmap_path_parameters(context, params):
    op = context.operation
    known = _known(op.method.lower(), op.path) if op else {}
    if not known or not isinstance(params, dict):
        return st.just(params)
    # Two cases in three on the real objects (some keeping the random value
    # of one of two parameters), the rest as generated.
    partial = st.sampled_from(sorted(known)).map(lambda k: {**params, k: known[k]})
    choices = [st.just(params), st.just({**params, **known}), partial]
    if op.path == "/v1/udfs/{name}/versions/{version}" and op.method.lower() == "post":
        # Versions nobody uploaded yet, so the components reach the checks
        # and the compiler (hypothesis's favourite small versions are soon
        # taken: 409).
        choices.append(st.uuids().map(lambda u: {**params, "name": "fuzzed", "version": u.hex[:16]}))
    return st.one_of(*choices)


def _damaged(component):
    """The component cut short, or with a few bytes changed."""
    cut = st.integers(min_value=0, max_value=len(component)).map(lambda n: component[:n])
    flips = st.lists(
        st.tuples(st.integers(0, len(component) - 1), st.integers(1, 255)), min_size=1, max_size=8
    )

    def flip(changes):
        b = bytearray(component)
        for at, x in changes:
            b[at] ^= x
        return bytes(b)

    return st.one_of(cut, flips.map(flip))


@schemathesis.hook
def flatmap_body(context, body):
    op = context.operation
    if op is None:
        return st.just(body)
    if op.path == "/v1/udfs/{name}/versions/{version}" and op.method.lower() == "post" and COMPONENT:
        return st.one_of(st.just(body), st.just(COMPONENT), _damaged(COMPONENT))
    if op.path == "/v1/pipelines/{id}/steps/{step}" and UDF:
        udfs = [UDF] + ([OTHER_UDF] if OTHER_UDF else [])
        swaps = st.fixed_dictionaries(
            {"udf": st.sampled_from(udfs)},
            optional={"probation_ms": st.integers(0, 300), "max_failures": st.integers(0, 3)},
        )
        return st.one_of(st.just(body), swaps)
    return st.just(body)


# The tenant's run (only it has URL and TOKEN) keeps moving the pipeline
# between running and stopped, so stop, savepoints, swaps and resume each
# meet it in the state where they do something, not only in the other one
# (schemathesis runs one operation's cases together: after the first stop,
# every other stop would be a 409).
URL = _env("URL")
TOKEN = _env("TOKEN")
WANTS_RUNNING = ("/stop", "/savepoints", "/steps/{step}", "/records")
_shuffle = random.Random(int(os.environ.get("WEIR_FUZZ_SEED") or 0) or None)


# The newest operation the keeper started: the real one GET /v1/operations/{op} asks for.
_LAST_OP = [None]


def _get(path):
    req = urllib.request.Request(f"{URL}{path}", method="GET")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(req, timeout=180) as resp:
        return json.loads(resp.read() or b"null")


def _keeper(method, suffix=""):
    req = urllib.request.Request(f"{URL}/v1/pipelines/{PIPELINE}{suffix}", method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.urlopen(req, timeout=180) as resp:
            reply = json.loads(resp.read() or b"null")
            if resp.status != 202:
                return reply
        # A stop is an operation: wait until it is over, so the pipeline
        # is stopped when the case runs.
        _LAST_OP[0] = reply["id"]
        deadline = time.monotonic() + 180
        while reply.get("state") == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
            reply = _get(f"/v1/operations/{reply['id']}")
        return reply.get("result")
    except urllib.error.HTTPError:
        return None  # what the fuzzer did meanwhile (a 409, a quota): its own checks judge it


@schemathesis.hook
def before_call(context, case, kwargs):
    if not (URL and TOKEN and PIPELINE) or (case.path_parameters or {}).get("id") != PIPELINE:
        return
    path = case.operation.path
    if path.endswith("/resume"):
        want = False
    elif path.endswith(WANTS_RUNNING):
        want = True
    else:
        return
    if _shuffle.random() < 0.25:
        return  # a quarter of the time as it is
    view = _keeper("GET") or {}
    running = view.get("status") in ("starting", "running")
    if want and not running:
        _keeper("POST", "/resume")
    elif not want and running:
        _keeper("POST", "/stop")
    # A swap to the version the step runs already is a 409: ask for the other one.
    body = case.body
    if path.endswith("/steps/{step}") and isinstance(body, dict) and body.get("udf") in (UDF, OTHER_UDF):
        now = next((s.get("udf") for s in view.get("steps", []) if s.get("index") == 0), None)
        if now == body["udf"] and OTHER_UDF:
            body["udf"] = OTHER_UDF if now == UDF else UDF
