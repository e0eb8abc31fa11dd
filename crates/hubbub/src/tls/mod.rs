//! TLS (rustls, with the `ring` provider) on the line listener
//! (`--tls-tcp-addr`) and the HTTP listener (`--https-addr`: the page,
//! Socket.IO polling and WebSocket), with the certificate and key of
//! `--tls-cert` / `--tls-key`.
//!
//! What lives here: loading and reloading the certificate ([`certs`]), the
//! handshake with its timeout, and the socket type that is either plain or
//! TLS ([`stream`]). The listeners' accept loops stay in their transports;
//! they take a connection slot *before* calling [`Tls::handshake`], so a
//! flood of half-open handshakes is bounded by the same caps as
//! everything else, and each one by `--tls-handshake-timeout-ms`.
//!
//! SIGHUP reloads the certificate from the same paths
//! ([`reload_on_sighup`]): new handshakes get the new one, connections
//! already open are not touched, and a file that does not load keeps the
//! old certificate (logged as an error). A client that resumes a session
//! begun before the reload is shown no certificate at all, as TLS
//! resumption goes; resumable sessions are kept in rustls's default
//! in-memory cache (256 of them, the oldest dropped first).

pub mod certs;
pub mod stream;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use certs::ReloadableCert;
pub use stream::MaybeTlsStream;

/// Whether an HTTP request came over TLS: put in every request's
/// extensions by the HTTP listener, next to axum's `ConnectInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encrypted(pub bool);

/// The TLS listeners, as named in metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsListener {
    /// The line protocol over TLS (`--tls-tcp-addr`).
    Line,
    /// HTTPS and WSS (`--https-addr`).
    Https,
}

impl TlsListener {
    /// The `listener` label of `hubbub_connections_accepted_total`.
    pub fn label(self) -> &'static str {
        match self {
            TlsListener::Line => "tls_line",
            TlsListener::Https => "https",
        }
    }
}

/// The server's TLS side: one certificate for both listeners, one
/// configuration each (HTTPS announces `http/1.1` by ALPN, the line
/// listener nothing).
#[derive(Debug)]
pub struct Tls {
    cert: Arc<ReloadableCert>,
    line: Arc<ServerConfig>,
    https: Arc<ServerConfig>,
    handshake_timeout: Duration,
}

impl Tls {
    /// Loads the certificate chain and key (PEM) and builds the listeners'
    /// configurations; a handshake gets `handshake_timeout`.
    ///
    /// # Errors
    /// A file that cannot be read or parsed, or a key that does not fit the
    /// certificate; the message names the flag and the file.
    pub fn load(cert: &Path, key: &Path, handshake_timeout: Duration) -> anyhow::Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = Arc::new(ReloadableCert::load(cert, key, provider.clone())?);
        let config = |alpn: &[&[u8]]| -> anyhow::Result<Arc<ServerConfig>> {
            let mut config = ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_cert_resolver(cert.clone());
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        Ok(Tls {
            line: config(&[])?,
            // HTTP/1.1 only: the WebSocket upgrade takes the connection
            // back from hyper's HTTP/1 server.
            https: config(&[b"http/1.1"])?,
            cert,
            handshake_timeout,
        })
    }

    /// Reads the certificate and key files again; the next handshakes use
    /// them. Connections already open keep their session.
    ///
    /// # Errors
    /// As [`Tls::load`]; the certificate in use is then kept.
    pub fn reload(&self) -> anyhow::Result<()> {
        self.cert.reload()
    }

    /// Runs the server side of a TLS handshake on `tcp` from `peer`, for
    /// at most the handshake timeout. A failure (a client that does not
    /// speak TLS, that rejects the certificate, or that is too slow) is
    /// counted in `hubbub_refusals_total` (kind `tls_handshake` or
    /// `tls_handshake_timeout`), logged at debug with its reason and at
    /// warn at most once per 10 s, and returns `None`; the socket is closed.
    pub async fn handshake(
        &self,
        listener: TlsListener,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<TcpStream>> {
        let acceptor = TlsAcceptor::from(match listener {
            TlsListener::Line => self.line.clone(),
            TlsListener::Https => self.https.clone(),
        });
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::debug!(%peer, listener = listener.label(), error = %e, "TLS handshake failed");
                crate::limits::warn_refusal("tls_handshake", &peer.to_string());
                None
            }
            Err(_) => {
                tracing::debug!(%peer, listener = listener.label(), timeout = ?self.handshake_timeout, "TLS handshake timed out");
                crate::limits::warn_refusal("tls_handshake_timeout", &peer.to_string());
                None
            }
        }
    }
}

/// Registers for SIGHUP now (so that a SIGHUP sent once the server logs
/// that it listens never meets the default action, which would end the
/// process) and returns the task that reloads `tls` on each one until
/// `shutdown`. Without TLS a SIGHUP is logged and ignored.
///
/// # Errors
/// When the signal handler cannot be registered.
#[cfg(unix)]
pub fn reload_on_sighup(
    tls: Option<Arc<Tls>>,
    shutdown: CancellationToken,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = hangups.recv() => if received.is_none() { return },
            }
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: no TLS certificate to reload");
                continue;
            };
            // File reads (and key parsing) stay off the runtime's threads.
            let reloading = tls.clone();
            match tokio::task::spawn_blocking(move || reloading.reload()).await {
                Ok(Ok(())) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Ok(Err(e)) => tracing::error!(
                    error = format!("{e:#}"),
                    "SIGHUP: TLS certificate not reloaded; the old one stays in use"
                ),
                Err(e) => tracing::error!(error = %e, "SIGHUP: the certificate reload failed"),
            }
        }
    })
}
