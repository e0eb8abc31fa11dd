//! State shared by every client task of a run, the message format, and the
//! per-receiver recorder.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Microseconds since a process-wide origin; senders and receivers live in
/// the same process, so one monotonic clock timestamps both ends.
pub fn now_us() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The instant `now_us()` would report as `us`.
pub fn instant_at(us: u64) -> tokio::time::Instant {
    let now = now_us();
    let now_instant = tokio::time::Instant::now();
    if us >= now {
        now_instant + Duration::from_micros(us - now)
    } else {
        now_instant
            .checked_sub(Duration::from_micros(now - us))
            .unwrap_or(now_instant)
    }
}

/// Marker that starts every benchmark message's text.
pub const MARKER: &[u8] = b"bench ";

/// A number that tells this run's messages from earlier runs' (which a
/// server with history may replay to clients that join a room).
pub fn new_run_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64 ^ d.as_secs());
    (nanos ^ (u64::from(std::process::id()) << 20)) % 1_000_000_000
}

/// The chat text of message `seq` of `sender` in run `run`, sent (or due)
/// at `at_us`: `bench RUN SENDER SEQ MICROS ` padded with `x` to `payload` bytes.
pub fn message_text(
    out: &mut String,
    run: u64,
    sender: usize,
    seq: usize,
    at_us: u64,
    payload: usize,
) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "bench {run} {sender} {seq} {at_us} ");
    while out.len() < payload {
        out.push('x');
    }
}

/// The send timestamp of a relayed benchmark message of run `run`, found
/// anywhere in `line` (after `NAME: ` on TCP, inside the `notice` JSON on
/// Socket.IO).
pub fn parse_timestamp(line: &[u8], run: u64) -> Option<u64> {
    let at = line.windows(MARKER.len()).position(|w| w == MARKER)?;
    let mut fields = line[at + MARKER.len()..].split(|&b| b == b' ');
    let line_run: u64 = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    if line_run != run {
        return None;
    }
    let _sender = fields.next()?;
    let _seq = fields.next()?;
    let micros = fields.next()?;
    std::str::from_utf8(micros).ok()?.parse().ok()
}

/// Longest wait for one step of a connection's setup (connect, greeting,
/// handshake, each room request).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// `fut`, or an error naming `what` if it takes longer than [`STEP_TIMEOUT`].
pub async fn step<T>(
    what: &str,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(STEP_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!("no answer within {STEP_TIMEOUT:?} to {what}"),
    }
}

/// Counters and signals for one run.
#[derive(Debug, Default)]
pub struct Shared {
    /// Tags this run's messages.
    pub run_id: u64,
    /// Stops every client task.
    pub cancel: CancellationToken,
    /// Cancelled when the load starts; senders wait for it.
    pub start: CancellationToken,
    /// `now_us()` at the start of the load.
    pub start_us: AtomicU64,
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    /// Bytes received by all clients (to see when the server is quiet).
    pub bytes: AtomicU64,
    /// Benchmark messages received by all clients.
    pub delivered: AtomicU64,
    pub sent: AtomicU64,
    /// `now_us()` of the first send; `u64::MAX` before.
    pub first_send_us: AtomicU64,
    pub senders_done: AtomicUsize,
    /// Connections the server closed (or that failed) while the run was on.
    pub closed_early: AtomicUsize,
    errors: Mutex<HashMap<String, u64>>,
}

impl Shared {
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            run_id: new_run_id(),
            first_send_us: AtomicU64::new(u64::MAX),
            ..Default::default()
        })
    }

    /// Counts an error by its message (distinct messages are kept, up to 50).
    pub fn error(&self, message: impl Into<String>) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        let message = message.into();
        if errors.len() < 50 || errors.contains_key(&message) {
            *errors.entry(message).or_default() += 1;
        }
    }

    pub fn errors(&self) -> Vec<(String, u64)> {
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<_> = errors.iter().map(|(k, v)| (k.clone(), *v)).collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list
    }

    pub fn note_send(&self, at_us: u64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.first_send_us.fetch_min(at_us, Ordering::Relaxed);
    }
}

/// Before the load starts (and throughout `--idle-only`), a client that has
/// read everything waiting for it pauses this long before reading again, so
/// that connect-time chatter (join announcements: O(N²) lines for N clients
/// in one room) costs the client few reads; the server's work is unchanged.
pub const LAZY_READ_PAUSE: Duration = Duration::from_millis(20);

impl Shared {
    /// Pauses a reader that has caught up, while the load has not started.
    pub async fn lazy_pause(&self) {
        if self.start.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(LAZY_READ_PAUSE) => {}
            _ = self.start.cancelled() => {}
            _ = self.cancel.cancelled() => {}
        }
    }
}

/// What one receiving client saw.
#[derive(Debug, Default)]
pub struct Recorder {
    pub run_id: u64,
    pub delivered: u64,
    /// Latency of every delivery, in microseconds.
    pub latencies: Vec<u32>,
    pub last_delivery_us: u64,
}

impl Recorder {
    /// Records `line` if it is a relayed benchmark message; returns whether it was.
    pub fn record(&mut self, line: &[u8]) -> bool {
        let Some(sent) = parse_timestamp(line, self.run_id) else {
            return false;
        };
        let now = now_us();
        self.delivered += 1;
        self.latencies
            .push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
        self.last_delivery_us = now;
        true
    }
}

/// How a sender paces itself.
#[derive(Debug, Clone, Copy)]
pub struct SendPlan {
    pub sender: usize,
    pub messages: usize,
    pub payload: usize,
    /// `None`: back to back. `Some((offset, interval))`: message `j` is due
    /// at start + offset + j × interval (µs), and carries that due time, so a
    /// sender held back by the server is charged for it.
    pub schedule: Option<(u64, u64)>,
}

impl SendPlan {
    /// Waits until message `seq` is due and returns its timestamp.
    pub async fn due(&self, shared: &Shared, seq: usize) -> u64 {
        match self.schedule {
            None => now_us(),
            Some((offset, interval)) => {
                let due = shared.start_us.load(Ordering::Relaxed) + offset + seq as u64 * interval;
                tokio::time::sleep_until(instant_at(due)).await;
                due
            }
        }
    }
}

/// Result of one client task.
#[derive(Debug, Default)]
pub struct ClientResult {
    pub connected: bool,
    pub recorder: Recorder,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let mut text = String::new();
        message_text(&mut text, 99, 3, 17, 123_456, 64);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("bench 99 3 17 123456 x"));
        let line = format!("127.0.0.1:5000: {text}");
        assert_eq!(parse_timestamp(line.as_bytes(), 99), Some(123_456));
        assert_eq!(parse_timestamp(line.as_bytes(), 98), None, "another run");
        let frame = format!(r#"42["notice",{{"message":"guest-1:{text}"}}]"#);
        assert_eq!(parse_timestamp(frame.as_bytes(), 99), Some(123_456));
        assert_eq!(parse_timestamp(b"127.0.0.1:5000 has joined us", 99), None);
        message_text(&mut text, 1, 1, 2, 3, 0);
        assert_eq!(text, "bench 1 1 2 3 ");
    }
}
