//! The OpenAPI 3.1 document served at `/openapi.json` (a test checks that
//! it lists exactly the router's routes).

use serde_json::{json, Value};

/// An operation. Every authenticated operation (one that can answer 401)
/// can also be shed with 503, and every one that takes a body can time
/// out reading it with 408: those two are added here.
fn op(summary: &str, body: Option<(&str, &str)>, ok: (&str, &str), errors: &[&str]) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(ok.0.into(), json!({ "description": ok.1 }));
    let shed = errors.contains(&"401").then_some("503");
    let slow = body.is_some().then_some("408");
    for code in errors.iter().copied().chain(shed).chain(slow) {
        responses.insert(code.into(), json!({ "$ref": "#/components/responses/Error" }));
    }
    let mut o = json!({ "summary": summary, "responses": responses });
    if let Some((media, schema)) = body {
        o["requestBody"] = json!({ "required": true, "content": { media: { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    }
    o
}

/// The document.
pub fn document() -> Value {
    const AUTH: &[&str] = &["401", "404"];
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Weir", "version": env!("CARGO_PKG_VERSION"),
            "description": "Stream processing with user functions as WebAssembly components. Send `Authorization: Bearer TOKEN` (a tenant's token; the admin token for /v1/tenants). Errors are `{\"error\": {\"code\", \"message\"}}`. The token is checked before a body is read. Limits (flags of `weir serve`): requests over the in-flight cap get 503 with Retry-After; a body slower than the body timeout gets 408; connections over the cap, or slow to send a request head, are closed." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": { "Error": { "description": "An error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "Quotas": { "type": "object", "properties": {
                    "max_pipelines": { "type": "integer", "default": 10 }, "max_parallelism": { "type": "integer", "default": 4 },
                    "memory_mib": { "type": "integer", "default": 128 }, "cpu_ms_per_call": { "type": "integer", "default": 1000 },
                    "max_component_mib": { "type": "integer", "default": 64 },
                    "max_state_mib": { "type": "integer", "default": 1024 } } },
                "NewTenant": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" }, "quotas": { "$ref": "#/components/schemas/Quotas" } } },
                "TenantChanges": { "type": "object", "required": ["quotas"], "properties": { "quotas": { "type": "object", "description": "Only the quotas to change (the names of `Quotas`)" } } },
                "Component": { "type": "string", "format": "binary", "description": "A WebAssembly component (wasm32-wasip2) exporting a weir:udf world" },
                "Manifest": { "type": "string", "description": "A pipeline manifest, YAML or JSON. Sources: `http` or `bids`; the server chooses sink, dead letters, checkpoint and state directories" },
                "Swap": { "type": "object", "required": ["udf"], "properties": {
                    "udf": { "type": "string", "example": "currency@2" },
                    "probation_ms": { "type": "integer", "default": 2000 },
                    "max_failures": { "type": "integer", "default": 0 } } },
                "Records": { "type": "string", "description": "Records, one per line" }
            }
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/healthz": { "get": op("Liveness", None, ("200", "ok"), &[]) },
            "/openapi.json": { "get": op("This document", None, ("200", "The OpenAPI document"), &[]) },
            "/metrics": { "get": op("Prometheus metrics: of every pipeline for the admin token, of its own pipelines for a tenant's", None, ("200", "Prometheus text format"), &["401"]) },
            "/v1/tenants": {
                "post": op("Create a tenant and its API token (admin)", Some(("application/json", "NewTenant")), ("201", "The tenant and its token (shown once)"), &["400", "401", "403", "409"]),
                "get": op("List tenants (admin)", None, ("200", "Tenants"), &["401", "403"])
            },
            "/v1/tenants/{name}": {
                "patch": op("Change some of a tenant's quotas (admin): `{\"quotas\": {\"max_state_mib\": 2048}}`", Some(("application/json", "TenantChanges")), ("200", "The tenant with its quotas"), &["400", "401", "403", "404"])
            },
            "/v1/udfs/{name}/versions/{version}": {
                "post": op("Upload a function version: checked against the WIT worlds and compiled", Some(("application/wasm", "Component")), ("201", "The stored version"), &["400", "401", "409", "413"]),
                "delete": op("Delete a function version (refused while a pipeline uses it)", None, ("204", "Deleted"), &["401", "404", "409"])
            },
            "/v1/udfs": { "get": op("List the tenant's functions", None, ("200", "Function versions"), &["401"]) },
            "/v1/udfs/{name}": { "get": op("The versions of a function", None, ("200", "Versions"), AUTH) },
            "/v1/pipelines": {
                "post": op("Create and start a pipeline", Some(("application/yaml", "Manifest")), ("201", "The pipeline"), &["400", "401", "429"]),
                "get": op("List the tenant's pipelines", None, ("200", "Pipelines"), &["401"])
            },
            "/v1/pipelines/{id}": {
                "get": op("Status, per-step counters, watermark, checkpoints, swaps", None, ("200", "The pipeline"), AUTH),
                "delete": op("Stop without a savepoint and delete with state and output", None, ("204", "Deleted"), AUTH)
            },
            "/v1/pipelines/{id}/stop": { "post": op("Stop at a savepoint", None, ("200", "The stopped pipeline"), &["401", "404", "409"]) },
            "/v1/pipelines/{id}/resume": { "post": op("Start again from the newest checkpoint or savepoint", None, ("200", "The pipeline"), &["400", "401", "404", "409"]) },
            "/v1/pipelines/{id}/savepoints": { "post": op("Take a savepoint", None, ("201", "The savepoint's name, e.g. `{\"savepoint\": \"savepoint-3\"}`"), &["401", "404", "409"]) },
            "/v1/pipelines/{id}/steps/{step}": { "put": op("Swap a step's function version at a checkpoint barrier (rolled back if it fails init or its error budget)", Some(("application/json", "Swap")), ("200", "What happened: outcome swapped or rolled_back"), &["400", "401", "404", "409"]) },
            "/v1/pipelines/{id}/records": { "post": op("Append records to the pipeline's http source (durable when acknowledged)", Some(("text/plain", "Records")), ("200", "How many were accepted"), &["400", "401", "404", "409", "413"]) },
            "/v1/pipelines/{id}/output": { "get": op("The newest committed output lines (?limit=N, default 100)", None, ("200", "Lines"), AUTH) }
        }
    })
}
