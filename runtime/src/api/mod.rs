//! The REST API of `weir serve` (axum): JSON in and out, errors as
//! `{"error": {"code": "...", "message": "..."}}`, bearer tokens.
//!
//! A request passes, in order: the accept loop's connection limits
//! ([`server`]), the in-flight cap ([`limits::shed`], `503`), the token
//! check ([`auth`], `401`, and `403` on admin-only routes), the body gate
//! ([`body`]: `413`, `408`) and then its handler, which runs the control
//! plane's (blocking) call on the blocking pool, so compiling a component
//! or waiting for a swap never stalls the reactor. Nothing reads a body
//! before its caller is known. `/healthz` and `/openapi.json` are public.

mod auth;
mod body;
mod limits;
mod metrics;
mod openapi;
pub mod server;

pub use limits::HttpLimits;

use crate::control::{Caller, ControlError, ErrorKind, OperationView, Platform, SwapRequest};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Largest component upload accepted by the server (tenant quotas are usually lower).
pub const MAX_UPLOAD: usize = 256 << 20;
/// Largest manifest or swap request.
pub const MAX_DOCUMENT: usize = 1 << 20;
/// Largest batch of posted records.
pub const MAX_RECORDS: usize = 16 << 20;

type Shared = Arc<Platform>;

/// An API error response.
struct ApiError(ControlError);

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = error_response(status, self.0.code, self.0.message);
        if let ErrorKind::RateLimited { retry_after_s } = self.0.kind {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        resp
    }
}

/// The one shape of every error response.
fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

type ApiResult = Result<Response, ApiError>;

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError(ControlError::new(ErrorKind::BadRequest, code, message))
}

fn too_large(limit: usize) -> ApiError {
    ApiError(ControlError::new(
        ErrorKind::TooLarge,
        "body_too_large",
        format!("the request body is larger than this endpoint's limit of {} KiB", limit >> 10),
    ))
}

/// A body, or a JSON error saying why not.
fn body(b: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            bad("bad_body", e.body_text())
        }
    })
}

/// The body limit of a path.
fn limit_of(path: &str) -> usize {
    if path.starts_with("/v1/udfs/") {
        MAX_UPLOAD
    } else if path.ends_with("/records") {
        MAX_RECORDS
    } else {
        MAX_DOCUMENT
    }
}

/// Runs a control-plane call for `caller` on the blocking pool.
async fn call<T: Send + 'static>(
    p: &Shared,
    caller: Caller,
    f: impl FnOnce(&Platform, &Caller) -> Result<T, ControlError> + Send + 'static,
) -> Result<T, ApiError> {
    let p = p.clone();
    // Every error a handler returns passes here: none names a server path.
    tokio::task::spawn_blocking(move || f(&p, &caller).map_err(|e| p.redact(e)))
        .await
        .map_err(|e| ApiError(ControlError::internal(format!("the request failed: {e}"))))?
        .map_err(ApiError)
}

fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

fn created(value: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// `202 Accepted` with the operation that goes on, and where to poll it.
fn accepted(op: OperationView) -> ApiResult {
    let location = HeaderValue::from_str(&format!("/v1/operations/{}", op.id))
        .map_err(|_| ApiError(ControlError::internal("an operation id that is not a header value")))?;
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(op)).into_response())
}

/// The caller, as [`auth::authenticate`] stored it.
type Who = Extension<Caller>;

/// The router over `platform`, with the request-level `limits`.
pub fn router(platform: Arc<Platform>, limits: &HttpLimits) -> Router {
    let gate = from_fn_with_state(limits.body_timeout, body::read_body);
    let tenants = Router::new()
        .route("/metrics", get(metrics_text))
        .route(
            "/v1/udfs/{name}/versions/{version}",
            post(upload_udf).delete(delete_udf).layer(DefaultBodyLimit::max(MAX_UPLOAD)),
        )
        .route("/v1/udfs", get(list_udfs))
        .route("/v1/udfs/{name}", get(get_udf))
        .route("/v1/pipelines", post(create_pipeline).get(list_pipelines))
        .route("/v1/pipelines/{id}", get(get_pipeline).delete(delete_pipeline))
        .route("/v1/pipelines/{id}/stop", post(stop_pipeline))
        .route("/v1/pipelines/{id}/resume", post(resume_pipeline))
        .route("/v1/pipelines/{id}/savepoints", post(savepoint))
        .route("/v1/pipelines/{id}/steps/{step}", put(swap))
        .route("/v1/pipelines/{id}/records", post(ingest).layer(DefaultBodyLimit::max(MAX_RECORDS)))
        .route("/v1/pipelines/{id}/output", get(output))
        .route("/v1/usage", get(usage))
        .route("/v1/operations", get(list_operations))
        .route("/v1/operations/{op}", get(get_operation))
        .route_layer(gate.clone());
    let admin = Router::new()
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/v1/tenants/{name}", patch(update_tenant))
        .route_layer(gate)
        .route_layer(from_fn(auth::require_admin));
    // Layers added later run first: shed, then authenticate, then the
    // tenant's share, then the routes' own.
    let guarded = tenants
        .merge(admin)
        .route_layer(from_fn_with_state(
            limits::TenantInFlight::new(limits.max_requests_in_flight_per_tenant),
            limits::shed_tenant,
        ))
        .route_layer(from_fn_with_state(platform.clone(), auth::authenticate))
        .route_layer(from_fn_with_state(
            Arc::new(tokio::sync::Semaphore::new(limits.max_requests_in_flight)),
            limits::shed,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .merge(guarded)
        .fallback(|| async { ApiError(ControlError::not_found("no such endpoint (see /openapi.json)")) })
        .layer(from_fn(method_not_allowed_as_json))
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT))
        .with_state(platform)
}

/// Gives axum's 405 (a method the path does not have), which has no body,
/// the JSON error body of every other error (axum adds `Allow` afterwards).
async fn method_not_allowed_as_json(req: axum::extract::Request, next: Next) -> Response {
    let method = req.method().clone();
    let resp = next.run(req).await;
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
        return resp;
    }
    let mut json = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "this endpoint does not answer {method}; its Allow header lists the methods it does (see /openapi.json)"
        ),
    );
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        json.headers_mut().insert(header::ALLOW, allow.clone());
    }
    json
}

/// `/metrics`: the admin sees every pipeline, a tenant only its own.
async fn metrics_text(State(p): State<Shared>, Extension(c): Who) -> ApiResult {
    let text = call(&p, c, |p, caller| Ok(metrics::render(&p.visible_pipelines(caller)?))).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenantBody {
    name: String,
    /// Only the quotas to set; the others are the server's defaults.
    #[serde(default)]
    quotas: serde_json::Map<String, serde_json::Value>,
}

fn json_body<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(b)
        .map_err(|e| bad("invalid_json", format!("the request body is not the expected JSON: {e}")))
}

async fn create_tenant(State(p): State<Shared>, Extension(c): Who, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let req: NewTenantBody = json_body(&body(b, MAX_DOCUMENT)?)?;
    created(call(&p, c, move |p, c| p.create_tenant(c, &req.name, req.quotas)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantChanges {
    quotas: serde_json::Map<String, serde_json::Value>,
}

async fn update_tenant(
    State(p): State<Shared>,
    Path(name): Path<String>,
    Extension(c): Who,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: TenantChanges = json_body(&body(b, MAX_DOCUMENT)?)?;
    let t = call(&p, c, move |p, c| p.update_tenant(c, &name, req.quotas)).await?;
    ok(json!({ "id": t.id, "name": t.name, "quotas": t.quotas }))
}

async fn list_tenants(State(p): State<Shared>, Extension(c): Who) -> ApiResult {
    let tenants = call(&p, c, |p, c| p.tenants(c)).await?;
    let list: Vec<_> = tenants.into_iter().map(|t| json!({ "id": t.id, "name": t.name, "quotas": t.quotas })).collect();
    ok(json!({ "tenants": list }))
}

async fn upload_udf(
    State(p): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    Extension(c): Who,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    if let Some(ct) = h.get(header::CONTENT_TYPE) {
        let text = String::from_utf8_lossy(ct.as_bytes());
        let media = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !matches!(media.as_str(), "application/wasm" | "application/octet-stream") {
            return Ok(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send the component bytes as application/wasm, not {text}"),
            ));
        }
    }
    let bytes = body(b, MAX_UPLOAD)?;
    created(call(&p, c, move |p, c| p.upload_udf(c, &name, &version, &bytes)).await?)
}

async fn list_udfs(State(p): State<Shared>, Extension(c): Who) -> ApiResult {
    ok(json!({ "udfs": call(&p, c, |p, c| p.udfs(c, None)).await? }))
}

async fn get_udf(State(p): State<Shared>, Path(name): Path<String>, Extension(c): Who) -> ApiResult {
    let versions = call(&p, c, move |p, c| p.udfs(c, Some(&name))).await?;
    ok(json!({ "name": versions[0].name, "versions": versions }))
}

async fn delete_udf(
    State(p): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    Extension(c): Who,
) -> ApiResult {
    call(&p, c, move |p, c| p.delete_udf(c, &name, &version)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_pipeline(State(p): State<Shared>, Extension(c): Who, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let bytes = body(b, MAX_DOCUMENT)?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| bad("invalid_manifest", "the manifest is not UTF-8"))?;
    created(call(&p, c, move |p, c| p.create_pipeline(c, &text)).await?)
}

async fn list_pipelines(State(p): State<Shared>, Extension(c): Who) -> ApiResult {
    ok(json!({ "pipelines": call(&p, c, |p, c| p.pipelines(c)).await? }))
}

async fn get_pipeline(State(p): State<Shared>, Path(id): Path<String>, Extension(c): Who) -> ApiResult {
    ok(call(&p, c, move |p, c| p.pipeline(c, &id)).await?)
}

async fn stop_pipeline(State(p): State<Shared>, Path(id): Path<String>, Extension(c): Who) -> ApiResult {
    accepted(call(&p, c, move |p, c| p.stop_pipeline(c, &id)).await?)
}

async fn resume_pipeline(State(p): State<Shared>, Path(id): Path<String>, Extension(c): Who) -> ApiResult {
    ok(call(&p, c, move |p, c| p.resume_pipeline(c, &id)).await?)
}

async fn delete_pipeline(State(p): State<Shared>, Path(id): Path<String>, Extension(c): Who) -> ApiResult {
    call(&p, c, move |p, c| p.delete_pipeline(c, &id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn savepoint(State(p): State<Shared>, Path(id): Path<String>, Extension(c): Who) -> ApiResult {
    accepted(call(&p, c, move |p, c| p.savepoint(c, &id)).await?)
}

async fn swap(
    State(p): State<Shared>,
    Path((id, step)): Path<(String, String)>,
    Extension(c): Who,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: SwapRequest = json_body(&body(b, MAX_DOCUMENT)?)?;
    accepted(call(&p, c, move |p, c| p.swap(c, &id, &step, &req)).await?)
}

async fn usage(State(p): State<Shared>, Extension(c): Who) -> ApiResult {
    ok(call(&p, c, |p, c| p.usage(c)).await?)
}

async fn list_operations(State(p): State<Shared>, Extension(c): Who) -> ApiResult {
    ok(json!({ "operations": call(&p, c, |p, c| p.operations(c)).await? }))
}

async fn get_operation(State(p): State<Shared>, Path(op): Path<String>, Extension(c): Who) -> ApiResult {
    ok(call(&p, c, move |p, c| p.operation(c, &op)).await?)
}

/// The header naming a post, so that its retry is appended once.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on the answer to a post that was a retry (nothing appended again).
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

async fn ingest(
    State(p): State<Shared>,
    Path(id): Path<String>,
    Extension(c): Who,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body(b, MAX_RECORDS)?;
    let key = match h.get(IDEMPOTENCY_KEY).map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) => Some(k.to_string()),
        Some(Err(_)) => return Err(bad("invalid_idempotency_key", "the Idempotency-Key header is not visible ASCII")),
    };
    let got = call(&p, c, move |p, c| p.ingest(c, &id, &bytes, key.as_deref())).await?;
    let mut resp = ok(json!({ "accepted": got.accepted }))?;
    if got.replayed {
        resp.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputQuery {
    limit: Option<usize>,
    after: Option<String>,
}

async fn output(
    State(p): State<Shared>,
    Path(id): Path<String>,
    q: Result<Query<OutputQuery>, axum::extract::rejection::QueryRejection>,
    Extension(c): Who,
) -> ApiResult {
    let Query(q) = q.map_err(|e| bad("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 100_000);
    let page = call(&p, c, move |p, c| p.output(c, &id, limit, q.after.as_deref())).await?;
    ok(json!({ "lines": page.lines, "next": page.next }))
}

/// The routes of [`router`], as `(method, path)` — checked against the OpenAPI document.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    vec![
        ("get", "/healthz"),
        ("get", "/openapi.json"),
        ("get", "/metrics"),
        ("post", "/v1/tenants"),
        ("get", "/v1/tenants"),
        ("patch", "/v1/tenants/{name}"),
        ("post", "/v1/udfs/{name}/versions/{version}"),
        ("delete", "/v1/udfs/{name}/versions/{version}"),
        ("get", "/v1/udfs"),
        ("get", "/v1/udfs/{name}"),
        ("post", "/v1/pipelines"),
        ("get", "/v1/pipelines"),
        ("get", "/v1/pipelines/{id}"),
        ("delete", "/v1/pipelines/{id}"),
        ("post", "/v1/pipelines/{id}/stop"),
        ("post", "/v1/pipelines/{id}/resume"),
        ("post", "/v1/pipelines/{id}/savepoints"),
        ("put", "/v1/pipelines/{id}/steps/{step}"),
        ("post", "/v1/pipelines/{id}/records"),
        ("get", "/v1/pipelines/{id}/output"),
        ("get", "/v1/usage"),
        ("get", "/v1/operations"),
        ("get", "/v1/operations/{op}"),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_openapi_document_describes_every_route_and_nothing_else() {
        let doc = super::openapi::document();
        let paths = doc["paths"].as_object().unwrap();
        let mut described = Vec::new();
        for (path, ops) in paths {
            for method in ops.as_object().unwrap().keys() {
                described.push((method.clone(), path.clone()));
            }
        }
        let mut routes: Vec<(String, String)> =
            super::routes().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        described.sort();
        routes.sort();
        assert_eq!(described, routes);
    }
}
