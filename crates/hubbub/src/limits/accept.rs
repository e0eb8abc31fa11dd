//! Accepting connections when file descriptors run out.
//!
//! `accept` fails with `EMFILE`/`ENFILE` while the process (or system) has
//! no descriptor to spare; the waiting connection stays in the kernel's
//! backlog and the listener stays readable, so a plain accept loop spins and
//! logs an error per attempt, and clients wait in the backlog for nothing.
//! [`Acceptor`] keeps one descriptor in reserve: when accepting fails for
//! lack of descriptors it gives the reserve up, accepts the waiting
//! connection, writes it a one-line refusal and closes it, takes the reserve
//! back, and waits [`BACKOFF`] before accepting again. Existing connections
//! are not touched. The log says so at most once per
//! [`refusals::INTERVAL`](super::refusals::INTERVAL).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::net::{TcpListener, TcpStream};

/// Pause after running out of descriptors, so that closing connections can
/// free some before the next attempt.
pub const BACKOFF: Duration = Duration::from_millis(100);

/// A listener that survives running out of file descriptors.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    /// Opened at start, given up to refuse a connection politely.
    reserve: Option<std::fs::File>,
    /// What a connection refused for lack of descriptors is told.
    refusal: &'static [u8],
}

impl Acceptor {
    /// Wraps `listener`; `refusal` is written (best effort, never waited
    /// for) to connections refused for lack of descriptors.
    pub fn new(listener: TcpListener, refusal: &'static [u8]) -> Acceptor {
        Acceptor {
            listener,
            reserve: open_reserve(),
            refusal,
        }
    }

    /// Where the listener is bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection. Never fails: errors of one connection (reset
    /// before it was accepted) are skipped, and running out of descriptors
    /// is handled as described above.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => return accepted,
                Err(e) if out_of_descriptors(&e) => {
                    super::warn_refusal(
                        "out_of_descriptors",
                        &self
                            .local_addr()
                            .map_or_else(|_| "?".into(), |a| a.to_string()),
                    );
                    self.reserve = None;
                    // The connection that could not be accepted is waiting.
                    if let Some(Ok((stream, _))) = self.listener.accept().now_or_never() {
                        let _ = stream.try_write(self.refusal);
                    }
                    self.reserve = open_reserve();
                    tokio::time::sleep(BACKOFF).await;
                }
                Err(e) => tracing::debug!(error = %e, "accept failed"),
            }
        }
    }
}

fn open_reserve() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}
