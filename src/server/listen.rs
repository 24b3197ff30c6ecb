//! Accepting connections, with the limits a public endpoint needs: a client must send its
//! headers within `header_timeout` (a half-sent request no longer holds a connection
//! forever), at most `max_connections` are served at once (past that a new connection
//! gets a `503` and is closed at once, so a full server says so instead of hanging), and
//! on shutdown requests in flight get `shutdown_grace` to finish before the rest are cut.
//! The webhook body's own deadline is the ingest handler's (`body_timeout`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::config::Limits;

/// What a connection past the limit is told before it is closed.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 52\r\n\r\n{\"error\":\"too many open connections; retry shortly\"}";

/// Serves `app` on `listener` until `shutdown` completes, then drains (see module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut full_logged: Option<Instant> = None;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.to_std());
    // Connection tasks, so that those still open after the grace period can be cut: each
    // holds the server's state, and the store's writer ends only when all of it is gone.
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if full_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                tracing::warn!(
                    "{} connections open, the limit (`max_connections`): new ones are answered 503",
                    limits.max_connections
                );
                full_logged = Some(Instant::now());
            }
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    let grace = limits.shutdown_grace.to_std();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            let open = limits.max_connections - permits.available_permits();
            tracing::warn!("{open} connection(s) still open after {}s; closing them", grace.as_secs());
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(FULL)).await;
    let _ = stream.shutdown().await;
}
