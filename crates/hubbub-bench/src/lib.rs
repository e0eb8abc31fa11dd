//! hubbub-bench: a load generator for hubbub and the reference peer chats.
//!
//! It opens N connections (TCP line protocol or Socket.IO over WebSocket),
//! lets S of them send M timestamped messages each (back to back or at a
//! total rate), and measures at the receivers: deliveries per second,
//! latency percentiles, lost messages, and the server's RSS (idle, peak, per
//! connection) from `/proc/PID/status`. See docs/BENCHMARKS.md and
//! bench/compare.sh.
//!
//! - [`options`]: what a run does ([`Options`], also the CLI).
//! - [`run()`]: one run, returning a [`Report`].
//! - [`report`]: the report as text, JSON, markdown tables.
//! - [`tcp`], [`sio`]: the two clients.

pub mod options;
pub mod report;
pub mod run;
pub mod shared;
pub mod sio;
pub mod tcp;
pub mod ws;

pub use options::{Options, Proto};
pub use report::Report;
pub use run::run;

/// Raises the soft open-files limit to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft < hard {
        rlimit::Resource::NOFILE.set(hard, hard)?;
    }
    Ok(hard)
}
