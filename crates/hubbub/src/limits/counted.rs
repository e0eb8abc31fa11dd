//! A connection counted against the caps for as long as its socket is open,
//! and closed when it has been idle too long.
//!
//! The HTTP listeners hand hyper a [`CountedStream`] (over plain TCP or
//! TLS, see [`MaybeTlsStream`]): it holds the connection's
//! [`ConnectionGuard`], so the slot is freed when the socket is closed,
//! whatever the connection became (an HTTP exchange, a long-poll, or
//! a WebSocket after an upgrade, which keeps the same stream). A read that
//! has waited [`CountedStream::idle`] since the last byte in either
//! direction fails with `TimedOut`, which ends the connection: nothing can
//! hold a socket without using it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::ConnectionGuard;
use crate::tls::MaybeTlsStream;

/// A client's socket with its connection slot and an idle deadline.
#[derive(Debug)]
pub struct CountedStream {
    inner: MaybeTlsStream,
    _guard: ConnectionGuard,
    /// How long the connection may go without a byte either way.
    idle: Duration,
    last_activity: Instant,
    /// Fires at `last_activity + idle` or later; re-armed lazily, so traffic
    /// costs a clock read, not a timer update.
    deadline: Pin<Box<Sleep>>,
}

impl CountedStream {
    pub fn new(inner: MaybeTlsStream, guard: ConnectionGuard, idle: Duration) -> CountedStream {
        let now = Instant::now();
        CountedStream {
            inner,
            _guard: guard,
            idle,
            last_activity: now,
            deadline: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// Whether the connection is encrypted (TLS).
    pub fn is_encrypted(&self) -> bool {
        self.inner.is_encrypted()
    }

    /// The socket and its slot, for a connection that leaves hyper (a
    /// WebSocket after the upgrade, which keeps its own liveness check).
    pub fn into_parts(self) -> (MaybeTlsStream, ConnectionGuard) {
        (self.inner, self._guard)
    }

    /// Counts a write that moved bytes as activity; passes `written` on.
    fn note_written(&mut self, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = written {
            if n > 0 {
                self.last_activity = Instant::now();
            }
        }
        written
    }

    /// Whether the connection has been idle past its limit (re-arming the
    /// deadline when it fired early because of activity since).
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_activity + self.idle;
            if Instant::now() >= due {
                return true;
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending if this.poll_idle(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note_written(written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note_written(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
