//! Serving the ingest router on its public listener with the limits a port reachable from the
//! internet needs: a deadline for request headers (so connections held open by a slow or
//! silent sender are closed instead of piling up), a cap on header size, and a graceful stop
//! that lets requests in flight finish. It owns connections, not requests: body limits and
//! timeouts are the router's.

use std::future::Future;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// What a connection may cost before it has sent a request.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time from the start of a request (or of an idle kept-alive connection) to the end of its
    /// headers; a sender dribbling header bytes is cut off here.
    pub header_timeout: Duration,
    /// Largest request head (request line plus headers); larger ones get a 431. hyper checks it
    /// against its read buffer, so a head up to one read past it may still pass.
    pub max_header_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            // The platforms send headers in one packet; 10 s is generous for a slow tunnel.
            header_timeout: Duration::from_secs(10),
            // Real webhook heads are well under 8 KiB; 64 KiB leaves room for long cookies or
            // proxy headers a tunnel adds.
            max_header_bytes: 64 * 1024,
        }
    }
}

/// hyper refuses read buffers smaller than this.
const MIN_HEADER_BYTES: usize = 8192;

/// Serves `app` on `listener` until `stop` completes, then lets open connections finish their
/// requests for up to `grace`, and cuts off the rest: a stalled sender cannot hold a stop (nor,
/// through the store handle its request holds, the writer's exit).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning; open
                    // connections time out and free their descriptors.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period were cut off"
        );
    }
    connections.shutdown().await;
}
