//! A client's socket, plain TCP or TLS over TCP, as one type: what the HTTP
//! listeners hand hyper, and what a WebSocket keeps after its upgrade.
//!
//! Besides `AsyncRead` / `AsyncWrite`, it offers the readiness-style calls
//! the WebSocket task is written with (`readable`, `try_read`, `writable`,
//! `try_write`), so that an idle WebSocket holds no buffer of its own on
//! either kind of socket. Over TLS they mean: readable when TLS holds
//! decrypted bytes not yet taken or the socket is readable; a `try_*` that
//! would wait fails with `WouldBlock`; and bytes a write handed to TLS may
//! still wait in it, encrypted ([`MaybeTlsStream::has_pending_output`]),
//! until [`MaybeTlsStream::try_flush`] gets them out.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A plain or TLS connection from a client.
#[derive(Debug)]
pub enum MaybeTlsStream {
    Plain(TcpStream),
    /// Boxed: a TLS session is a few hundred bytes of state.
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// Whether the connection is encrypted (TLS).
    pub fn is_encrypted(&self) -> bool {
        matches!(self, MaybeTlsStream::Tls(_))
    }

    /// Waits until [`MaybeTlsStream::try_read`] may have something.
    ///
    /// Cancel safe.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.readable().await,
            MaybeTlsStream::Tls(tls) => {
                let (tcp, session) = tls.get_ref();
                // Decrypted bytes already buffered (or a close to report)
                // need no more from the socket.
                if !session.wants_read() {
                    return Ok(());
                }
                tcp.readable().await
            }
        }
    }

    /// Waits until the socket can take bytes.
    ///
    /// Cancel safe.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.writable().await,
            MaybeTlsStream::Tls(tls) => tls.get_ref().0.writable().await,
        }
    }

    /// Reads what is there without waiting: `Ok(0)` at end of stream,
    /// `WouldBlock` when nothing is.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.try_read(buf),
            MaybeTlsStream::Tls(tls) => {
                let mut buf = ReadBuf::new(buf);
                match Pin::new(tls.as_mut()).poll_read(&mut no_wait(), &mut buf) {
                    Poll::Ready(Ok(())) => Ok(buf.filled().len()),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// Writes what the socket takes without waiting; `WouldBlock` when it
    /// takes nothing. Over TLS, some of what was taken may still wait in
    /// the session: see [`MaybeTlsStream::has_pending_output`].
    pub fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.try_write(buf),
            MaybeTlsStream::Tls(tls) => {
                match Pin::new(tls.as_mut()).poll_write(&mut no_wait(), buf) {
                    Poll::Ready(result) => result,
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// Whether written bytes still wait, encrypted, for the socket.
    pub fn has_pending_output(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(_) => false,
            MaybeTlsStream::Tls(tls) => tls.get_ref().1.wants_write(),
        }
    }

    /// Moves pending output to the socket without waiting; `WouldBlock`
    /// when some is left.
    pub fn try_flush(&mut self) -> io::Result<()> {
        match self {
            MaybeTlsStream::Plain(_) => Ok(()),
            MaybeTlsStream::Tls(tls) => match Pin::new(tls.as_mut()).poll_flush(&mut no_wait()) {
                Poll::Ready(result) => result,
                Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
            },
        }
    }
}

/// A context for a poll that must not wait: its waker does nothing, and
/// the caller waits with [`MaybeTlsStream::readable`] or
/// [`MaybeTlsStream::writable`], which register a real one.
fn no_wait() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            MaybeTlsStream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            MaybeTlsStream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            MaybeTlsStream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp.is_write_vectored(),
            MaybeTlsStream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            MaybeTlsStream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            MaybeTlsStream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, RootCertStore, ServerConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpSocket;
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;

    /// A TLS connection over loopback with small socket buffers: the
    /// server's end as a [`MaybeTlsStream`], and the client's.
    async fn pair() -> (MaybeTlsStream, tokio_rustls::client::TlsStream<TcpStream>) {
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = issued.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(issued.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

        let listening = TcpSocket::new_v4().unwrap();
        listening.set_send_buffer_size(4096).unwrap();
        listening.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listening.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let connecting = TcpSocket::new_v4().unwrap();
        connecting.set_recv_buffer_size(4096).unwrap();
        let client = async {
            let tcp = connecting.connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            TlsConnector::from(Arc::new(client_config))
                .connect(name, tcp)
                .await
                .unwrap()
        };
        let server = async {
            let (tcp, _) = listener.accept().await.unwrap();
            TlsAcceptor::from(Arc::new(server_config))
                .accept(tcp)
                .await
                .unwrap()
        };
        let (client, server) = tokio::join!(client, server);
        (MaybeTlsStream::Tls(Box::new(server)), client)
    }

    #[tokio::test]
    async fn bytes_a_blocked_write_left_in_tls_are_flushed() {
        let (mut server, mut client) = pair().await;
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        // Nobody reads: write until the socket and TLS take no more.
        let mut sent = 0;
        loop {
            match server.try_write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
            assert!(sent < data.len(), "the buffers took a whole megabyte");
        }
        // What was taken is not all on the socket: some waits, encrypted.
        assert!(server.has_pending_output());
        let expected = data[..sent].to_vec();
        let reading = tokio::spawn(async move {
            let mut got = vec![0u8; expected.len()];
            client.read_exact(&mut got).await.unwrap();
            assert!(got == expected, "the bytes arrive as written");
        });
        while server.has_pending_output() {
            server.writable().await.unwrap();
            match server.try_flush() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), reading)
            .await
            .expect("everything written arrives")
            .unwrap();
    }

    #[tokio::test]
    async fn readable_counts_what_tls_already_decrypted() {
        let (mut server, mut client) = pair().await;
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let sending = data.clone();
        tokio::spawn(async move {
            client.write_all(&sending).await.unwrap();
            client.flush().await.unwrap();
            // Keep the connection open: only the data may wake the reader.
            std::future::pending::<()>().await;
        });
        // Small reads leave most of each 16 KiB record in TLS, with nothing
        // more on the socket for the last ones.
        let mut got = Vec::new();
        let mut chunk = [0u8; 1000];
        while got.len() < data.len() {
            tokio::time::timeout(std::time::Duration::from_secs(10), server.readable())
                .await
                .expect("readable while TLS holds decrypted bytes")
                .unwrap();
            match server.try_read(&mut chunk) {
                Ok(0) => panic!("end of stream"),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(got == data);
    }
}
