//! The REST API of `weir serve` (axum): JSON in and out, errors as
//! `{"error": {"code": "...", "message": "..."}}`, bearer tokens. Every
//! handler authenticates, then runs the control plane's (blocking) call on
//! the blocking pool, so compiling a component or waiting for a swap never
//! stalls the reactor.

mod metrics;
mod openapi;

use crate::control::{Caller, ControlError, ErrorKind, Platform, Quotas, SwapRequest};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
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
        let status = match self.0.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Quota => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({ "error": { "code": self.0.code, "message": self.0.message } });
        (status, Json(body)).into_response()
    }
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

/// Refuses a request whose `Content-Length` is over its endpoint's limit
/// before reading any of the body (the extractors' limit catches bodies
/// without a length).
async fn refuse_oversized(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let limit = limit_of(req.uri().path());
    let length =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|l| l > limit as u64) {
        return too_large(limit).into_response();
    }
    next.run(req).await
}

/// Runs a control-plane call for the caller named by the request's token.
async fn call<T: Send + 'static>(
    p: &Shared,
    headers: &HeaderMap,
    f: impl FnOnce(&Platform, &Caller) -> Result<T, ControlError> + Send + 'static,
) -> Result<T, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let p = p.clone();
    tokio::task::spawn_blocking(move || {
        // Every error a handler returns passes here: none names a server path.
        p.authenticate(token.as_deref()).and_then(|caller| f(&p, &caller)).map_err(|e| p.redact(e))
    })
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

/// The router over `platform`.
pub fn router(platform: Arc<Platform>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/metrics", get(metrics_text))
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
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
        .fallback(|| async { ApiError(ControlError::not_found("no such endpoint (see /openapi.json)")) })
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .with_state(platform)
}

async fn metrics_text(State(p): State<Shared>, h: HeaderMap) -> ApiResult {
    let text = call(&p, &h, |p, caller| {
        if !matches!(caller, Caller::Admin) {
            return Err(ControlError::new(ErrorKind::Forbidden, "forbidden", "/metrics needs the admin token"));
        }
        Ok(metrics::render(&p.all_pipelines()))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenantBody {
    name: String,
    #[serde(default)]
    quotas: Option<Quotas>,
}

fn json_body<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(b)
        .map_err(|e| bad("invalid_json", format!("the request body is not the expected JSON: {e}")))
}

async fn create_tenant(State(p): State<Shared>, h: HeaderMap, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let req: NewTenantBody = json_body(&body(b, MAX_DOCUMENT)?)?;
    created(call(&p, &h, move |p, c| p.create_tenant(c, &req.name, req.quotas.unwrap_or_default())).await?)
}

async fn list_tenants(State(p): State<Shared>, h: HeaderMap) -> ApiResult {
    let tenants = call(&p, &h, |p, c| p.tenants(c)).await?;
    let list: Vec<_> = tenants.into_iter().map(|t| json!({ "id": t.id, "name": t.name, "quotas": t.quotas })).collect();
    ok(json!({ "tenants": list }))
}

async fn upload_udf(
    State(p): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    if let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        if !matches!(ct, "application/wasm" | "application/octet-stream") {
            return Err(ApiError(ControlError::new(
                ErrorKind::BadRequest,
                "unsupported_media_type",
                format!("send the component bytes as application/wasm, not {ct}"),
            )));
        }
    }
    let bytes = body(b, MAX_UPLOAD)?;
    created(call(&p, &h, move |p, c| p.upload_udf(c, &name, &version, &bytes)).await?)
}

async fn list_udfs(State(p): State<Shared>, h: HeaderMap) -> ApiResult {
    ok(json!({ "udfs": call(&p, &h, |p, c| p.udfs(c, None)).await? }))
}

async fn get_udf(State(p): State<Shared>, Path(name): Path<String>, h: HeaderMap) -> ApiResult {
    let versions = call(&p, &h, move |p, c| p.udfs(c, Some(&name))).await?;
    ok(json!({ "name": versions[0].name, "versions": versions }))
}

async fn delete_udf(State(p): State<Shared>, Path((name, version)): Path<(String, String)>, h: HeaderMap) -> ApiResult {
    call(&p, &h, move |p, c| p.delete_udf(c, &name, &version)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_pipeline(State(p): State<Shared>, h: HeaderMap, b: Result<Bytes, BytesRejection>) -> ApiResult {
    let bytes = body(b, MAX_DOCUMENT)?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| bad("invalid_manifest", "the manifest is not UTF-8"))?;
    created(call(&p, &h, move |p, c| p.create_pipeline(c, &text)).await?)
}

async fn list_pipelines(State(p): State<Shared>, h: HeaderMap) -> ApiResult {
    ok(json!({ "pipelines": call(&p, &h, |p, c| p.pipelines(c)).await? }))
}

async fn get_pipeline(State(p): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> ApiResult {
    ok(call(&p, &h, move |p, c| p.pipeline(c, &id)).await?)
}

async fn stop_pipeline(State(p): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> ApiResult {
    ok(call(&p, &h, move |p, c| p.stop_pipeline(c, &id)).await?)
}

async fn resume_pipeline(State(p): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> ApiResult {
    ok(call(&p, &h, move |p, c| p.resume_pipeline(c, &id)).await?)
}

async fn delete_pipeline(State(p): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> ApiResult {
    call(&p, &h, move |p, c| p.delete_pipeline(c, &id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn savepoint(State(p): State<Shared>, Path(id): Path<String>, h: HeaderMap) -> ApiResult {
    let dir = call(&p, &h, move |p, c| p.savepoint(c, &id)).await?;
    created(json!({ "savepoint": dir }))
}

async fn swap(
    State(p): State<Shared>,
    Path((id, step)): Path<(String, String)>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: SwapRequest = json_body(&body(b, MAX_DOCUMENT)?)?;
    ok(call(&p, &h, move |p, c| p.swap(c, &id, &step, &req)).await?)
}

async fn ingest(
    State(p): State<Shared>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let bytes = body(b, MAX_RECORDS)?;
    let n = call(&p, &h, move |p, c| p.ingest(c, &id, &bytes)).await?;
    ok(json!({ "accepted": n }))
}

#[derive(Deserialize)]
struct OutputQuery {
    limit: Option<usize>,
}

async fn output(
    State(p): State<Shared>,
    Path(id): Path<String>,
    q: Result<Query<OutputQuery>, axum::extract::rejection::QueryRejection>,
    h: HeaderMap,
) -> ApiResult {
    let Query(q) = q.map_err(|e| bad("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 100_000);
    ok(json!({ "lines": call(&p, &h, move |p, c| p.output(c, &id, limit)).await? }))
}

/// The routes of [`router`], as `(method, path)` — checked against the OpenAPI document.
pub fn routes() -> Vec<(&'static str, &'static str)> {
    vec![
        ("get", "/healthz"),
        ("get", "/openapi.json"),
        ("get", "/metrics"),
        ("post", "/v1/tenants"),
        ("get", "/v1/tenants"),
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
