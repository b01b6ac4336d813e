//! The accept loop of `weir serve`: HTTP/1.1 connections over the router,
//! within the connection-level [`HttpLimits`].
//!
//! This replaces `axum::serve`, which has no cap on connections, no header
//! timeout and no deadline on graceful shutdown (a client that keeps a
//! connection open keeps the server from exiting). Each connection is a
//! hyper `http1` connection in its own task:
//!
//! - a semaphore holds one permit per open connection; a connection over
//!   [`HttpLimits::max_connections`] is closed as soon as it is accepted;
//! - hyper's header read timeout closes a connection whose request head
//!   does not arrive within [`HttpLimits::header_timeout`] (also between
//!   requests, so it is the idle timeout too);
//! - past [`HttpLimits::max_connection_age`], or on shutdown, the
//!   connection shuts down gracefully (its current request is answered,
//!   then it closes) and is dropped outright if that takes longer than
//!   [`HttpLimits::shutdown_grace`].
//!
//! [`run`] returns when the shutdown future resolves and every connection
//! has closed, or the grace has run out; so `weir serve` exits within the
//! grace whatever its clients do. Handlers already running on the
//! blocking pool finish on their own; their responses are not sent.

use super::HttpLimits;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// Serves `app` on `listener` within `limits` until `shutdown` resolves,
/// then gives open connections [`HttpLimits::shutdown_grace`] to finish.
pub async fn run(listener: TcpListener, app: Router, limits: HttpLimits, shutdown: impl Future<Output = ()>) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    // Connections watch this; it turns true at shutdown.
    let (stopping_tx, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::debug!("connection refused: {} connections are open", limits.max_connections);
            drop(stream);
            continue;
        };
        let (app, stopping) = (app.clone(), stopping.clone());
        tokio::spawn(async move {
            serve_connection(stream, app, limits, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    // Every permit back means every connection closed; each one also gives up on its own at the grace.
    // HttpLimits::validated keeps the count far below u32::MAX.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let closed = tokio::time::timeout(limits.shutdown_grace, connections.acquire_many(all)).await;
    if closed.is_err() {
        let open = limits.max_connections - connections.available_permits();
        eprintln!("weir: closing {open} connections still open after the {:?} shutdown grace", limits.shutdown_grace);
    }
}

/// Serves one connection until it closes, its age or the shutdown ends it
/// gracefully, or the grace after that runs out.
async fn serve_connection(stream: TcpStream, app: Router, limits: HttpLimits, mut stopping: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let aged = tokio::time::sleep(limits.max_connection_age);
    tokio::pin!(aged);
    // Set when the graceful shutdown of this connection starts.
    let mut deadline: Option<Instant> = None;
    loop {
        let closing = deadline.is_some();
        let hard_stop = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            () = &mut aged, if !closing => {}
            // An error means the accept loop is gone: close as at shutdown.
            _ = stopping.wait_for(|s| *s), if !closing => {}
            () = hard_stop => return,
        }
        conn.as_mut().graceful_shutdown();
        deadline = Some(Instant::now() + limits.shutdown_grace);
    }
}
