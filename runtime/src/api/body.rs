//! The body gate: a request body is read only after the caller is known,
//! only up to its endpoint's size limit, and only within
//! [`HttpLimits::body_timeout`](super::HttpLimits::body_timeout).
//!
//! The gate reads the whole body itself and hands the handler a request
//! whose body is already in memory, so the handlers' `Bytes` extractors
//! never wait on the network. Reading here rather than wrapping the body in
//! a timer keeps the three outcomes in one place with their own statuses:
//! a declared length over the limit is `413` before a byte is read, a body
//! that outgrows the limit is `413`, and a body that has not arrived in
//! time is `408` with `Connection: close` (the rest of it is never read,
//! so the connection cannot carry another request).

use super::{error_response, limit_of};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;

/// Reads the body under its endpoint's limit and the body timeout, then
/// passes the request on with the body in memory.
pub(super) async fn read_body(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let limit = limit_of(req.uri().path());
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|l| l > limit as u64) {
        return too_large(limit);
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => next.run(Request::from_parts(parts, Body::from(collected.to_bytes()))).await,
        Ok(Err(e)) if e.is::<LengthLimitError>() => too_large(limit),
        Ok(Err(e)) => error_response(StatusCode::BAD_REQUEST, "bad_body", format!("cannot read the request body: {e}")),
        Err(_) => {
            let mut resp = error_response(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {} s", timeout.as_secs_f64()),
            );
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}

fn too_large(limit: usize) -> Response {
    super::too_large(limit).into_response()
}
