//! The HTTP listeners (plain, and HTTPS when TLS is configured): every
//! accepted socket is counted against the connection caps until it closes,
//! and bounded in time, before hyper sees it.
//!
//! axum's own `serve` has no way to set hyper's timeouts, and counts
//! nothing, so a socket that sends nothing (or half a request) would hold a
//! descriptor for good. Here each connection:
//! - takes a slot from the [`ConnectionLimiter`] at accept (refused with
//!   `503` and closed when the total or per-IP cap is reached; on HTTPS
//!   only closed, as no HTTP can be spoken before a handshake), held by its
//!   [`CountedStream`] until the socket closes, including after a
//!   WebSocket upgrade;
//! - on HTTPS, does its TLS handshake holding that slot, within the
//!   handshake timeout (see [`crate::tls`]);
//! - has [`HttpTimeouts::header`] to send a complete request head (hyper's
//!   header read timeout, also between keep-alive requests), and is closed
//!   after [`HttpTimeouts::idle`] without a byte either way (request bodies
//!   included; Engine.IO's pings keep a live Socket.IO connection busier
//!   than that).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::limits::{Acceptor, ConnectionLimiter, CountedStream, Refused};
use crate::tls::{Encrypted, MaybeTlsStream, Tls, TlsListener};

/// Which listener is served: its name in metrics, and its TLS if any.
#[derive(Debug, Clone)]
pub struct Listener {
    /// `http`, `https`, `admin`: the `listener` label of
    /// `hubbub_connections_accepted_total`.
    name: &'static str,
    tls: Option<Arc<Tls>>,
}

impl Listener {
    /// A plain-text listener named `name`.
    pub fn plain(name: &'static str) -> Listener {
        Listener { name, tls: None }
    }

    /// The HTTPS listener.
    pub fn https(tls: Arc<Tls>) -> Listener {
        Listener {
            name: TlsListener::Https.label(),
            tls: Some(tls),
        }
    }
}

/// How long HTTP connections may take (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// To send a request's head (request line and headers).
    pub header: Duration,
    /// Without a byte in either direction.
    pub idle: Duration,
}

/// What a connection refused for lack of file descriptors is told.
pub const OUT_OF_DESCRIPTORS: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 25\r\n\r\nserver busy, retry later\n";

/// Serves `app` on `acceptor` (as `listener`) until `shutdown`;
/// connections run in `tracker`'s tasks and are asked to finish gracefully
/// at shutdown.
pub async fn serve(
    listener: Listener,
    mut acceptor: Acceptor,
    app: Router,
    limiter: Arc<ConnectionLimiter>,
    timeouts: HttpTimeouts,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = acceptor.accept() => accepted,
        };
        crate::telemetry::connection_accepted(listener.name);
        match limiter.acquire(peer.ip()) {
            Ok(guard) => {
                let (app, tls, shutdown) = (app.clone(), listener.tls.clone(), shutdown.clone());
                tracker.spawn(async move {
                    let stream = match tls {
                        None => MaybeTlsStream::Plain(stream),
                        // The slot is already held: a crowd of unfinished
                        // handshakes meets the caps like everyone else.
                        Some(tls) => tokio::select! {
                            done = tls.handshake(TlsListener::Https, stream, peer) => match done {
                                Some(tls_stream) => MaybeTlsStream::Tls(Box::new(tls_stream)),
                                None => return,
                            },
                            _ = shutdown.cancelled() => return,
                        },
                    };
                    let stream = CountedStream::new(stream, guard, timeouts.idle);
                    connection(stream, peer, app, timeouts, shutdown).await;
                });
            }
            Err(refused) => {
                crate::limits::warn_refusal("connection_cap", &peer.to_string());
                if listener.tls.is_none() {
                    tracker.spawn(refuse(stream, refused));
                }
            }
        }
    }
}

async fn connection(
    stream: CountedStream,
    peer: SocketAddr,
    app: Router,
    timeouts: HttpTimeouts,
    shutdown: CancellationToken,
) {
    // Handlers (and the Engine.IO server) read the peer address as axum's
    // ConnectInfo, and whether the connection is encrypted as `Encrypted`.
    let encrypted = Encrypted(stream.is_encrypted());
    let service = app.map_request(move |request: axum::http::Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(encrypted);
        request
    });
    // HTTP/1.1 only (what browsers speak to a plain-text server, and what
    // HTTPS announces by ALPN), served
    // by hyper's own HTTP/1 connection so that an upgraded WebSocket can
    // take its socket back (see `transport::engineio`).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    let connection = builder
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
            return;
        }
        _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// Answers a connection over the caps with `503` and closes it; gives up
/// after a second rather than wait for a client that does not read.
async fn refuse(mut stream: TcpStream, refused: Refused) {
    let body = format!("{refused}\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
