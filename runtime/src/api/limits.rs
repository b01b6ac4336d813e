//! How much of the server one client may hold, and for how long: the
//! [`HttpLimits`] of `weir serve`, and the middleware that sheds requests
//! when too many are in flight.
//!
//! `weir serve` faces untrusted tenants and anyone who can reach its port,
//! so every resource a connection can pin (a socket, a task, a buffered
//! body, a blocking-pool thread) is bounded in count and in time. The
//! limits are enforced at three places: the accept loop
//! ([`super::server`]: connections, header timeout, connection age,
//! shutdown grace), this module's [`shed`] (requests in flight) and the body
//! gate ([`super::body`]: body timeout and size).

use super::error_response;
use crate::control::Caller;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The HTTP server's limits. The defaults suit a server for a few hundred
/// clients on a small machine; `weir serve` flags override each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open connections at most (default 256). A connection over the cap is
    /// accepted and closed at once, before anything is read from it: the
    /// client sees a closed connection and may retry, and the server spends
    /// no task, buffer or timer on it. Leaving it in the kernel's backlog
    /// instead would look like a hang to the client and let a flood fill
    /// the backlog for everyone.
    pub max_connections: usize,
    /// Requests being handled at once, over all connections (default 64).
    /// A request over the cap is answered `503 Service Unavailable` with
    /// `Retry-After: 1` before authentication and before its body is read:
    /// shedding keeps the latency of the admitted requests bounded, where a
    /// queue would hold every waiting request's connection and memory.
    /// `/healthz` and `/openapi.json` are not counted, so a busy server
    /// still answers its liveness probe.
    pub max_requests_in_flight: usize,
    /// Requests of one tenant being handled at once (default 16). A tenant's
    /// request over its share is answered `429 Too Many Requests` with
    /// `Retry-After: 1`, after authentication and before its body is read,
    /// so one tenant cannot take the whole [`HttpLimits::max_requests_in_flight`]
    /// pool (slow uploads, or many connections each with a request) and
    /// leave the others only 503s. The admin token is not counted here.
    pub max_requests_in_flight_per_tenant: usize,
    /// Time a client has to send a request's head (default 10 s). Hyper
    /// starts this clock whenever a connection waits for a request, so it
    /// is also the idle timeout of a kept-alive connection. A slow head
    /// closes the connection without a response.
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body, from the end of its
    /// head (default 60 s). A slow body is answered `408 Request Timeout`
    /// and the connection is closed. At the default, a 256 MiB component
    /// upload needs about 4.5 MB/s.
    pub body_timeout: Duration,
    /// Age after which a connection is closed once its current request is
    /// answered (default 10 min), so no client holds a connection forever by
    /// sending one request after another.
    pub max_connection_age: Duration,
    /// Time open connections get to finish their requests after SIGTERM or
    /// ctrl-c, and after [`HttpLimits::max_connection_age`] (default 10 s);
    /// then they are closed whatever they were doing.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 256,
            max_requests_in_flight: 64,
            max_requests_in_flight_per_tenant: 16,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connection_age: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl HttpLimits {
    /// The limits if they are usable: counts from one to [`MAX_COUNT`] and
    /// timeouts longer than zero.
    pub fn validated(self) -> Result<HttpLimits, String> {
        let counts = 1..=MAX_COUNT;
        if !counts.contains(&self.max_connections)
            || !counts.contains(&self.max_requests_in_flight)
            || !counts.contains(&self.max_requests_in_flight_per_tenant)
        {
            return Err(format!("the connection and request limits must be between 1 and {MAX_COUNT}"));
        }
        let timeouts = [
            ("header timeout", self.header_timeout),
            ("body timeout", self.body_timeout),
            ("maximum connection age", self.max_connection_age),
        ];
        if let Some((name, _)) = timeouts.iter().find(|(_, d)| d.is_zero()) {
            return Err(format!("the {name} must be longer than zero"));
        }
        Ok(self)
    }
}

/// The largest count limit (far above what one process can serve; it
/// keeps the semaphores' permit counts in range).
pub const MAX_COUNT: usize = 1 << 20;

/// The permits for requests in flight.
pub(super) type InFlight = Arc<Semaphore>;

/// Answers `503` when [`HttpLimits::max_requests_in_flight`] requests are
/// already being handled; otherwise holds a permit until the response is
/// ready (the body of a response is not counted: every response of this
/// API is buffered).
pub(super) async fn shed(State(in_flight): State<InFlight>, req: Request, next: Next) -> Response {
    let Ok(_permit) = in_flight.try_acquire_owned() else {
        let mut resp = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight: retry in a second",
        );
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    next.run(req).await
}

/// Each tenant's permits for requests in flight, made at its first request
/// (the map holds one entry per tenant that has authenticated, a number the
/// operator controls).
#[derive(Debug)]
pub(super) struct TenantInFlight {
    per_tenant: usize,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl TenantInFlight {
    pub(super) fn new(per_tenant: usize) -> Arc<TenantInFlight> {
        Arc::new(TenantInFlight { per_tenant, tenants: Mutex::new(HashMap::new()) })
    }

    fn permits(&self, tenant: &str) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants.entry(tenant.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant))).clone()
    }
}

/// Answers `429` when the calling tenant already has
/// [`HttpLimits::max_requests_in_flight_per_tenant`] requests being handled;
/// runs after [`super::auth::authenticate`], before the body is read.
pub(super) async fn shed_tenant(State(limits): State<Arc<TenantInFlight>>, req: Request, next: Next) -> Response {
    let tenant = match req.extensions().get::<Caller>() {
        Some(Caller::Tenant(t)) => t.id.clone(),
        _ => return next.run(req).await,
    };
    let Ok(_permit) = limits.permits(&tenant).try_acquire_owned() else {
        let mut resp = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "tenant_overloaded",
            format!(
                "this tenant already has {} requests in flight (max_requests_in_flight_per_tenant): retry in a second",
                limits.per_tenant
            ),
        );
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::HttpLimits;
    use std::time::Duration;

    #[test]
    fn limits_that_would_refuse_everything_or_nothing_are_rejected() {
        assert_eq!(HttpLimits::default().validated(), Ok(HttpLimits::default()));
        for bad in [
            HttpLimits { max_connections: 0, ..HttpLimits::default() },
            HttpLimits { max_requests_in_flight: 0, ..HttpLimits::default() },
            HttpLimits { max_requests_in_flight_per_tenant: 0, ..HttpLimits::default() },
            HttpLimits { max_connections: usize::MAX, ..HttpLimits::default() },
            HttpLimits { header_timeout: Duration::ZERO, ..HttpLimits::default() },
            HttpLimits { body_timeout: Duration::ZERO, ..HttpLimits::default() },
        ] {
            assert!(bad.validated().is_err(), "{bad:?}");
        }
        // A zero grace is allowed: shut down without waiting for anyone.
        let no_grace = HttpLimits { shutdown_grace: Duration::ZERO, ..HttpLimits::default() };
        assert!(no_grace.validated().is_ok());
    }
}
