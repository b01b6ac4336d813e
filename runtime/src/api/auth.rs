//! Who is calling: the bearer token is checked from the request's head,
//! before anything reads its body.
//!
//! [`authenticate`] runs in front of every route except `/healthz` and
//! `/openapi.json`. It looks the token up (the admin token, or a tenant's
//! token in the metadata store, on the blocking pool) and stores the
//! [`Caller`] as a request extension, which handlers take with
//! `Extension<Caller>`. A request without a valid token is answered `401`
//! at once: its body stays unread in the socket, so an unauthenticated
//! client can make the server buffer nothing (before this, handlers took
//! the body as `Bytes` and authenticated afterwards, so anyone could park
//! up to 256 MiB per connection on the upload route). [`require_admin`]
//! does the same for the admin-only routes, answering `403`.
//!
//! What a tenant may see is decided further in, by the control plane:
//! a tenant's calls only ever name its own pipelines and functions, and
//! another tenant's objects are `404`, as if they did not exist.

use super::{ApiError, Shared};
use crate::control::{Caller, ControlError, ErrorKind};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Authenticates the request's bearer token; stores the [`Caller`] as an
/// extension, or answers `401` without reading the body.
pub(super) async fn authenticate(State(p): State<Shared>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let caller = tokio::task::spawn_blocking(move || p.authenticate(token.as_deref())).await;
    match caller {
        Ok(Ok(caller)) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Ok(Err(e)) => ApiError(e).into_response(),
        Err(e) => ApiError(ControlError::internal(format!("authentication failed: {e}"))).into_response(),
    }
}

/// Answers `403` to a tenant, before reading the body; runs after
/// [`authenticate`].
pub(super) async fn require_admin(req: Request, next: Next) -> Response {
    match req.extensions().get::<Caller>() {
        Some(Caller::Admin) => next.run(req).await,
        Some(Caller::Tenant(_)) => {
            ApiError(ControlError::new(ErrorKind::Forbidden, "forbidden", "this endpoint needs the admin token"))
                .into_response()
        }
        None => ApiError(ControlError::internal("the request was not authenticated")).into_response(),
    }
}
