//! Warnings for what the server refuses or cuts off (a cap reached, a flood,
//! a forbidden origin), rate-limited per kind so that an attack cannot fill
//! the log: at most one line per kind every [`INTERVAL`], which counts the
//! refusals it stands for. Never the message text, only the peer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest time between two warnings of one kind.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Per kind: when its last line was logged, and refusals since then.
static LAST: Mutex<Option<HashMap<&'static str, (Instant, u64)>>> = Mutex::new(None);

/// Counts a `kind` of refusal (`connection_cap`, `origin`,
/// `out_of_descriptors`, `outbound_total`, `tls_handshake`,
/// `tls_handshake_timeout`: the `hubbub_refusals_total` label) that happened to
/// `peer` (an address, or what identifies the request), and logs it at
/// `warn` unless a line of that kind was logged less than [`INTERVAL`] ago;
/// then the next line says how many it stands for.
pub fn warn_refusal(kind: &'static str, peer: &str) {
    crate::telemetry::refused(kind);
    let now = Instant::now();
    let suppressed = {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        let entry = last
            .get_or_insert_with(HashMap::new)
            .entry(kind)
            .or_insert((now - INTERVAL, 0));
        if now.duration_since(entry.0) < INTERVAL {
            entry.1 += 1;
            return;
        }
        let suppressed = entry.1;
        *entry = (now, 0);
        suppressed
    };
    tracing::warn!(kind, peer, also_since_last = suppressed, "refused");
}
