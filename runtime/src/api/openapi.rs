//! The OpenAPI 3.1 document served at `/openapi.json`. A unit test checks
//! that it lists exactly the router's routes; `scripts/api-fuzz` runs
//! schemathesis against it on a real server, which checks that every
//! response's status, content type and body are the ones described here.

use crate::control::MAX_QUOTA_MIB;
use serde_json::{json, Map, Value};

/// A JSON body of the schema named `schema`.
fn json_of(schema: &str) -> Value {
    json!({ "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } })
}

/// A text body (`text/plain` and whatever else `media` adds).
fn text_of(media: &[&str], description: &str) -> Value {
    let mut content = Map::new();
    for m in media {
        content.insert((*m).into(), json!({ "schema": { "type": "string", "description": description } }));
    }
    Value::Object(content)
}

/// An operation: its request body's content, its success response
/// (status, description, content: `None` for none) and its error statuses.
/// Every authenticated operation (one that can answer 401) can also be shed
/// with 503 (the server's in-flight cap) and 429 (a tenant's share of it),
/// and every one that takes a body can answer 400 (an unreadable body), 408
/// (too slow) and 413 (too large): those are added here.
fn op(summary: &str, body: Option<Value>, ok: (&str, &str, Option<Value>), errors: &[&str]) -> Value {
    let mut responses = Map::new();
    let mut success = json!({ "description": ok.1 });
    if let Some(content) = ok.2 {
        success["content"] = content;
    }
    responses.insert(ok.0.into(), success);
    let authenticated = errors.contains(&"401");
    let mut codes: Vec<&str> = errors.to_vec();
    if authenticated {
        codes.extend(["429", "503"]);
    }
    if body.is_some() {
        codes.extend(["400", "408", "413"]);
    }
    codes.sort_unstable();
    codes.dedup();
    for code in codes {
        responses.insert(code.into(), json!({ "$ref": "#/components/responses/Error" }));
    }
    let mut o = json!({ "summary": summary, "responses": responses });
    if let Some(content) = body {
        o["requestBody"] = json!({ "required": true, "content": content });
    }
    if !authenticated {
        o["security"] = json!([]);
    }
    o
}

/// The schema of path parameter `name` of `path`.
fn path_parameter(path: &str, name: &str) -> Value {
    let (description, schema) = match name {
        "name" if path.starts_with("/v1/tenants/") => (
            "A tenant's name: 1-64 of a-z, 0-9, `-` and `_`",
            json!({ "type": "string", "pattern": "^[a-z0-9_-]{1,64}$" }),
        ),
        "name" => (
            "A function's name: 1-64 letters, digits, `-`, `_` or `.`",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$" }),
        ),
        "version" => (
            "A function version: 1-64 letters, digits, `-`, `_` or `.`",
            json!({ "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$" }),
        ),
        "id" => (
            "A pipeline id, as `POST /v1/pipelines` returned it",
            json!({ "type": "string", "example": "p-0123456789ab" }),
        ),
        "step" => ("A function step: its index in `steps` or its name", json!({ "type": "string", "example": "0" })),
        "op" => (
            "An operation id, as the `202` that started it returned it",
            json!({ "type": "string", "example": "op-0123456789abcdef01234567" }),
        ),
        other => unreachable!("no schema for the path parameter `{other}`"),
    };
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

/// Declares every `{parameter}` of every path on each of its operations
/// (before the parameters the operation has already).
fn declare_path_parameters(paths: &mut Value) {
    let Some(paths) = paths.as_object_mut() else { return };
    for (path, ops) in paths.iter_mut() {
        let names: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        if names.is_empty() {
            continue;
        }
        for op in ops.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
            let mut params: Vec<Value> = names.iter().map(|n| path_parameter(path, n)).collect();
            params.extend(op["parameters"].as_array().cloned().unwrap_or_default());
            op["parameters"] = Value::Array(params);
        }
    }
}

/// The quotas a request may set: each optional, with its bounds.
fn quota_changes() -> Value {
    let mib = |default: u64| json!({ "type": "integer", "minimum": 1, "maximum": MAX_QUOTA_MIB, "default": default });
    json!({ "type": "object", "additionalProperties": false, "properties": {
        "max_pipelines": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 10 },
        "max_parallelism": { "type": "integer", "minimum": 1, "maximum": u32::MAX, "default": 4 },
        "memory_mib": mib(128),
        "cpu_ms_per_call": { "type": "integer", "minimum": 1, "maximum": u64::MAX, "default": 1000 },
        "max_component_mib": mib(64),
        "max_state_mib": mib(1024),
        "ingest_records_per_s": { "type": "integer", "minimum": 1, "maximum": u64::MAX, "default": 50_000 },
        "ingest_bytes_per_s": { "type": "integer", "minimum": 1, "maximum": u64::MAX, "default": 64u64 << 20 },
        "max_udf_versions": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "default": 100 },
        "max_ingest_mib": mib(1024) } })
}

fn schemas() -> Value {
    let int = json!({ "type": "integer" });
    let opt_int = json!({ "type": ["integer", "null"] });
    let opt_str = json!({ "type": ["string", "null"] });
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    let udf_fields = json!({
        "name": { "type": "string" }, "version": { "type": "string" }, "sha256": { "type": "string" },
        "size": int, "kinds": strings, "compile_ms": int, "created_ms": int });
    let udf_required = json!(["name", "version", "sha256", "size", "kinds", "compile_ms", "created_ms"]);
    let mut upload_fields = udf_fields.clone();
    upload_fields["imports"] = strings.clone();
    upload_fields["exports"] = strings.clone();
    let mut upload_required = udf_required.clone();
    upload_required.as_array_mut().expect("an array").extend([json!("imports"), json!("exports")]);
    let pipeline_fields = json!({
        "id": { "type": "string" }, "name": { "type": "string" }, "tenant": { "type": "string" },
        "status": { "type": "string", "enum": ["starting", "running", "stopping", "stopped", "finished", "failed"] },
        "desired": { "type": "string", "enum": ["running", "stopped"] },
        "error": opt_str, "created_ms": int,
        "steps": { "type": "array", "items": { "$ref": "#/components/schemas/Step" } },
        "watermark": opt_int, "watermark_lag_ms": opt_int,
        "checkpoints": { "$ref": "#/components/schemas/Checkpoints" },
        "swaps": { "type": "array", "items": { "$ref": "#/components/schemas/SwapResult" } },
        "resumed_from": opt_str,
        "manifest": { "type": "string", "description": "The manifest as submitted (one pipeline's view only)" } });
    let pipeline_required = json!([
        "id",
        "name",
        "tenant",
        "status",
        "desired",
        "error",
        "created_ms",
        "steps",
        "watermark",
        "watermark_lag_ms",
        "checkpoints",
        "swaps",
        "resumed_from"
    ]);
    let mut schemas = json!({
        "Error": { "type": "object", "required": ["error"], "properties": { "error": {
            "type": "object", "required": ["code", "message"],
            "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
        "Quotas": { "type": "object",
            "required": ["max_pipelines", "max_parallelism", "memory_mib", "cpu_ms_per_call", "max_component_mib", "max_state_mib",
                "ingest_records_per_s", "ingest_bytes_per_s", "max_udf_versions", "max_ingest_mib"],
            "properties": {
                "max_pipelines": int, "max_parallelism": int, "memory_mib": int, "cpu_ms_per_call": int,
                "max_component_mib": int, "max_state_mib": int, "ingest_records_per_s": int, "ingest_bytes_per_s": int, "max_udf_versions": int,
                "max_ingest_mib": int } },
        "QuotaChanges": quota_changes(),
        "NewTenant": { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": { "type": "string", "pattern": "^[a-z0-9_-]{1,64}$" },
            "quotas": { "$ref": "#/components/schemas/QuotaChanges",
                "description": "Only the quotas to set; the others are the server's defaults" } } },
        "TenantChanges": { "type": "object", "required": ["quotas"], "additionalProperties": false, "properties": {
            "quotas": { "$ref": "#/components/schemas/QuotaChanges", "description": "Only the quotas to change" } } },
        "Tenant": { "type": "object", "required": ["id", "name", "quotas"], "properties": {
            "id": { "type": "string" }, "name": { "type": "string" }, "quotas": { "$ref": "#/components/schemas/Quotas" } } },
        "CreatedTenant": { "type": "object", "required": ["id", "name", "token", "quotas"], "properties": {
            "id": { "type": "string" }, "name": { "type": "string" },
            "token": { "type": "string", "description": "The tenant's API token: shown once, only its hash is kept" },
            "quotas": { "$ref": "#/components/schemas/Quotas" } } },
        "Tenants": { "type": "object", "required": ["tenants"], "properties": {
            "tenants": { "type": "array", "items": { "$ref": "#/components/schemas/Tenant" } } } },
        "Component": { "type": "string", "format": "binary",
            "description": "A WebAssembly component (wasm32-wasip2) exporting a weir:udf world" },
        "UdfVersion": { "type": "object", "required": udf_required, "properties": udf_fields },
        "Upload": { "type": "object", "required": upload_required, "properties": upload_fields },
        "Udfs": { "type": "object", "required": ["udfs"], "properties": {
            "udfs": { "type": "array", "items": { "$ref": "#/components/schemas/UdfVersion" } } } },
        "Udf": { "type": "object", "required": ["name", "versions"], "properties": {
            "name": { "type": "string" },
            "versions": { "type": "array", "items": { "$ref": "#/components/schemas/UdfVersion" } } } },
        "Manifest": { "type": "object", "required": ["name", "source"],
            "description": "A pipeline manifest, YAML or JSON. Sources: `http` or `bids`; the server chooses sink, dead letters, checkpoint and state directories",
            "properties": {
                "name": { "type": "string" }, "parallelism": { "type": "integer", "minimum": 1 },
                "source": { "type": "object" }, "steps": { "type": "array", "items": { "type": "object" } } },
            "example": { "name": "bids-demo", "source": { "bids": { "count": 100 } } } },
        "Step": { "type": "object", "required": ["index", "label", "udf", "records_in", "records_out", "dead_lettered",
                "failed_calls", "late", "watermark", "calls", "call_wall_ns", "call_cpu_ns", "recycles", "peak_memory"],
            "properties": {
                "index": opt_int, "label": { "type": "string" }, "udf": opt_str, "records_in": int, "records_out": int,
                "dead_lettered": int, "failed_calls": int, "late": int, "watermark": opt_int, "calls": int,
                "call_wall_ns": int, "call_cpu_ns": int, "recycles": int, "peak_memory": int } },
        "Checkpoints": { "type": "object", "required": ["completed", "failed", "latest", "latest_id",
                "last_duration_ms", "last_completed_ms"],
            "properties": {
                "completed": int, "failed": int, "latest": opt_str, "latest_id": opt_int,
                "last_duration_ms": opt_int, "last_completed_ms": opt_int } },
        "Pipeline": { "type": "object", "required": pipeline_required, "properties": pipeline_fields },
        "Pipelines": { "type": "object", "required": ["pipelines"], "properties": {
            "pipelines": { "type": "array", "items": { "$ref": "#/components/schemas/Pipeline" } } } },
        "Savepoint": { "type": "object", "required": ["savepoint"], "properties": {
            "savepoint": { "type": "string", "example": "savepoint-3" } } },
        "Swap": { "type": "object", "required": ["udf"], "additionalProperties": false, "properties": {
            "udf": { "type": "string", "example": "currency@2" },
            "probation_ms": { "type": "integer", "minimum": 0, "default": 2000 },
            "max_failures": { "type": "integer", "minimum": 0, "default": 0 } } },
        "SwapResult": { "type": "object", "required": ["step", "from", "to", "outcome", "barrier", "reason", "took_ms", "at_ms"],
            "properties": {
                "step": int, "from": { "type": "string" }, "to": { "type": "string" },
                "outcome": { "type": "string", "enum": ["swapped", "rolled_back"] },
                "barrier": opt_int, "reason": opt_str, "took_ms": int, "at_ms": int } },
        "Accepted": { "type": "object", "required": ["accepted"], "properties": { "accepted": int } },
        "Output": { "type": "object", "required": ["lines", "next"], "properties": {
            "lines": { "type": "array", "description": "Oldest first; a line that is not UTF-8 is `{\"base64\": ...}`",
                "items": { "oneOf": [{ "type": "string" }, { "type": "object", "required": ["base64"],
                    "properties": { "base64": { "type": "string" } } }] } },
            "next": { "type": "string", "description": "The cursor after the last line: pass it as `after` for the lines that follow" } } }
    });
    if let (Some(all), Value::Object(more)) = (schemas.as_object_mut(), operation_schemas()) {
        all.extend(more);
    }
    schemas
}

/// The schemas of operations (stop, savepoint, swap).
fn operation_schemas() -> Value {
    let int = json!({ "type": "integer" });
    let opt_int = json!({ "type": ["integer", "null"] });
    let opt_str = json!({ "type": ["string", "null"] });
    json!({
        "Stopped": { "type": "object", "required": ["pipeline", "status", "error", "savepoint"], "properties": {
            "pipeline": { "type": "string" }, "status": { "type": "string" }, "error": opt_str,
            "savepoint": { "type": ["string", "null"], "description": "The savepoint it stopped at (or its newest checkpoint)" } } },
        "Operation": { "type": "object",
            "description": "A stop, savepoint or swap: `running` until it is over, then `done` with `result` (for a stop a `Stopped`, \
                for a savepoint a `Savepoint`, for a swap a `SwapResult`) or `failed` with `error` (`status` is what a synchronous \
                call would have answered). The server keeps the newest 100 finished operations per tenant, in memory.",
            "required": ["id", "kind", "pipeline", "state", "started_ms", "finished_ms", "result", "error"],
            "properties": {
                "id": { "type": "string" },
                "kind": { "type": "string", "enum": ["stop", "savepoint", "swap"] },
                "pipeline": { "type": "string" },
                "state": { "type": "string", "enum": ["running", "done", "failed"] },
                "started_ms": int, "finished_ms": opt_int,
                "result": { "anyOf": [{ "type": "null" }, { "$ref": "#/components/schemas/Stopped" },
                    { "$ref": "#/components/schemas/Savepoint" }, { "$ref": "#/components/schemas/SwapResult" }] },
                "error": { "oneOf": [{ "type": "null" }, { "type": "object", "required": ["status", "code", "message"],
                    "properties": { "status": int, "code": { "type": "string" }, "message": { "type": "string" } } }] } } },
        "Usage": { "type": "object", "required": ["tenant", "quotas", "pipelines", "udf_versions", "disk"], "properties": {
            "tenant": { "type": "string" }, "quotas": { "$ref": "#/components/schemas/Quotas" },
            "pipelines": int, "udf_versions": int,
            "disk": { "type": "object", "description": "Bytes on the server's disk (allocated blocks, as `du` counts)",
                "required": ["functions", "checkpoints_and_state", "ingest", "output", "dead_letters", "total"],
                "properties": { "functions": int, "checkpoints_and_state": int, "ingest": int, "output": int,
                    "dead_letters": int, "total": int } } } },
        "Operations": { "type": "object", "required": ["operations"], "properties": {
            "operations": { "type": "array", "items": { "$ref": "#/components/schemas/Operation" } } } }
    })
}

/// The document.
pub fn document() -> Value {
    // Tenant-scoped operations answer the admin 403 (it has no functions or pipelines).
    const MINE: &[&str] = &["401", "403", "404"];
    let pipeline = || Some(json_of("Pipeline"));
    let manifest = {
        let schema = json!({ "$ref": "#/components/schemas/Manifest" });
        json!({ "application/yaml": { "schema": schema }, "application/json": { "schema": schema } })
    };
    let mut output = op(
        "A page of the committed output: the newest lines, or those after a cursor",
        None,
        ("200", "Lines", Some(json_of("Output"))),
        &["400", "401", "403", "404"],
    );
    output["parameters"] = json!([{ "name": "limit", "in": "query", "required": false,
        "description": "How many lines (at most 100000; and at most 8 MiB of them)", "schema": { "type": "integer", "minimum": 0, "default": 100 } },
        { "name": "after", "in": "query", "required": false,
        "description": "A cursor (`next` of an earlier answer): the lines after it, oldest first; without one, the newest lines",
        "schema": { "type": "string", "pattern": "^[0-9]+\\.[0-9]+\\.[0-9]+$" } }]);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "Weir", "version": env!("CARGO_PKG_VERSION"),
            "description": "Stream processing with user functions as WebAssembly components. Send `Authorization: Bearer TOKEN` (a tenant's token; the admin token for /v1/tenants). Errors are `{\"error\": {\"code\", \"message\"}}`. The token is checked before a body is read. Limits (flags of `weir serve`): requests over the in-flight cap get 503 with Retry-After, a tenant's requests over its share 429; a body slower than the body timeout gets 408; connections over the cap, or slow to send a request head, are closed." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": { "Error": { "description": "An error", "content": json_of("Error") } },
            "schemas": schemas()
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/healthz": { "get": op("Liveness", None, ("200", "ok", Some(text_of(&["text/plain"], "`ok`"))), &[]) },
            "/openapi.json": { "get": op("This document", None, ("200", "The OpenAPI document",
                Some(json!({ "application/json": { "schema": { "type": "object" } } }))), &[]) },
            "/metrics": { "get": op("Prometheus metrics: of every pipeline for the admin token, of its own pipelines for a tenant's", None,
                ("200", "Prometheus text format", Some(text_of(&["text/plain"], "Prometheus text format 0.0.4"))), &["401"]) },
            "/v1/tenants": {
                "post": op("Create a tenant and its API token (admin)", Some(json_of("NewTenant")),
                    ("201", "The tenant and its token (shown once)", Some(json_of("CreatedTenant"))), &["401", "403", "409"]),
                "get": op("List tenants (admin)", None, ("200", "Tenants", Some(json_of("Tenants"))), &["401", "403"])
            },
            "/v1/tenants/{name}": {
                "patch": op("Change some of a tenant's quotas (admin): `{\"quotas\": {\"max_state_mib\": 2048}}`",
                    Some(json_of("TenantChanges")), ("200", "The tenant with its quotas", Some(json_of("Tenant"))),
                    &["401", "403", "404"])
            },
            "/v1/udfs/{name}/versions/{version}": {
                "post": op("Upload a function version: checked against the WIT worlds and compiled",
                    Some(json!({
                        "application/wasm": { "schema": { "$ref": "#/components/schemas/Component" } },
                        "application/octet-stream": { "schema": { "$ref": "#/components/schemas/Component" } } })),
                    ("201", "The stored version", Some(json_of("Upload"))), &["401", "403", "409", "415"]),
                "delete": op("Delete a function version (refused while a pipeline uses it)", None, ("204", "Deleted", None),
                    &["401", "403", "404", "409"])
            },
            "/v1/udfs": { "get": op("List the tenant's functions", None, ("200", "Function versions", Some(json_of("Udfs"))), &["401", "403"]) },
            "/v1/udfs/{name}": { "get": op("The versions of a function", None, ("200", "Versions", Some(json_of("Udf"))), MINE) },
            "/v1/pipelines": {
                "post": op("Create and start a pipeline (429: the tenant's max_pipelines or max_parallelism)", Some(manifest),
                    ("201", "The pipeline", pipeline()), &["401", "403"]),
                "get": op("List the tenant's pipelines", None, ("200", "Pipelines", Some(json_of("Pipelines"))), &["401", "403"])
            },
            "/v1/pipelines/{id}": {
                "get": op("Status, per-step counters, watermark, checkpoints, swaps", None, ("200", "The pipeline", pipeline()), MINE),
                "delete": op("Stop without a savepoint and delete with state and output", None, ("204", "Deleted", None), MINE)
            },
            "/v1/pipelines/{id}/stop": { "post": op("Stop at a savepoint: answered at once, the stop goes on as an operation",
                None, ("202", "The operation (`Location`: where to poll it)", Some(json_of("Operation"))),
                &["401", "403", "404", "409"]) },
            "/v1/pipelines/{id}/resume": { "post": op("Start again from the newest checkpoint or savepoint", None,
                ("200", "The pipeline", pipeline()), &["400", "401", "403", "404", "409"]) },
            "/v1/pipelines/{id}/savepoints": { "post": op("Take a savepoint: answered at once, the savepoint is an operation",
                None, ("202", "The operation (`Location`: where to poll it)", Some(json_of("Operation"))),
                &["401", "403", "404", "409"]) },
            "/v1/pipelines/{id}/steps/{step}": { "put": op("Swap a step's function version at a checkpoint barrier (rolled back if it fails init or its error budget): answered at once, the swap is an operation",
                Some(json_of("Swap")), ("202", "The operation (`Location`: where to poll it)", Some(json_of("Operation"))),
                &["400", "401", "403", "404", "409"]) },
            "/v1/usage": { "get": op("What the tenant uses against its quotas: pipelines, function versions, bytes on disk", None,
                ("200", "Usage", Some(json_of("Usage"))), &["401", "403"]) },
            "/v1/operations": { "get": op("The tenant's operations (stops, savepoints, swaps), newest first", None,
                ("200", "Operations", Some(json_of("Operations"))), &["401", "403"]) },
            "/v1/operations/{op}": { "get": op("Where an operation stands, and once it is over what it did", None,
                ("200", "The operation", Some(json_of("Operation"))), MINE) },
            "/v1/pipelines/{id}/records": { "post": op("Append records, one per line, to the pipeline's http source (durable when acknowledged)",
                Some(text_of(&["text/plain", "application/x-ndjson"], "Records, one per line")),
                ("200", "How many were accepted (`Idempotent-Replayed: true` when the post was a retry and nothing was appended again)",
                    Some(json_of("Accepted"))), &["401", "403", "404", "409", "422"]) },
            "/v1/pipelines/{id}/output": { "get": output }
        }
    });
    doc["paths"]["/v1/pipelines/{id}/records"]["post"]["parameters"] = json!([{
        "name": "Idempotency-Key", "in": "header", "required": false,
        "description": "Names this post: a retry with the same key and body (within the server's idempotency window, \
            24 h by default) is acknowledged without appending again; the same key with another body is a 422",
        "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" } }]);
    declare_path_parameters(&mut doc["paths"]);
    doc
}

#[cfg(test)]
mod tests {
    use super::document;

    #[test]
    fn every_path_parameter_is_declared_on_every_operation() {
        let doc = document();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            let names: Vec<&str> =
                path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
            for (method, op) in ops.as_object().unwrap() {
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                assert_eq!(declared, names, "{method} {path}");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match v {
                serde_json::Value::Object(m) => {
                    out.extend(m.get("$ref").and_then(|r| r.as_str()));
                    m.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not local"));
            assert!(doc.pointer(pointer).is_some(), "{r} resolves to nothing");
        }
    }
}
