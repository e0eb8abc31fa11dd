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
