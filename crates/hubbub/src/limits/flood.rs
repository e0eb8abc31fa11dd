//! Per-connection flood control: a token bucket, plus a disconnect for
//! clients that keep flooding after being told.
//!
//! Each line costs one token; tokens refill at `rate` per second up to
//! `burst`. A request that returns much (history, room lists) also costs
//! what it returned: one more token per full [`COST_UNIT_BYTES`], taken as debt
//! (at most one burst's worth) that later requests wait for. A line that finds no token is rejected (the client gets an error,
//! nobody else sees the line). A client whose lines are rejected more than
//! `kick_after` times within [`STRIKE_WINDOW`] is disconnected: it is not
//! listening to the errors.

use std::time::{Duration, Instant};

/// Bytes returned to a client that cost it one more token (per full unit:
/// answers shorter than this cost nothing more).
pub const COST_UNIT_BYTES: usize = 4096;

/// The window in which rejected lines are counted towards a disconnect.
pub const STRIKE_WINDOW: Duration = Duration::from_secs(10);

/// What to do with one incoming line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodVerdict {
    /// Within the limit: handle it.
    Accept,
    /// Over the limit: reject it with an error. `first` is true for the first
    /// rejection of a burst, so the error is sent once, not once per line.
    Reject { first: bool },
    /// Still flooding after the warnings: disconnect.
    Disconnect,
}

/// One connection's token bucket and strike count.
#[derive(Debug)]
pub struct FloodControl {
    rate: f64,
    burst: f64,
    kick_after: u32,
    tokens: f64,
    last_refill: Instant,
    strikes: u32,
    window_start: Instant,
    /// Whether the previous line was rejected (to send one error per burst).
    rejecting: bool,
}

impl FloodControl {
    /// `rate` lines per second with bursts of `burst`; `rate == 0.0` turns it off.
    pub fn new(rate: f64, burst: u32, kick_after: u32) -> FloodControl {
        let now = Instant::now();
        FloodControl {
            rate,
            burst: f64::from(burst.max(1)),
            kick_after,
            tokens: f64::from(burst.max(1)),
            last_refill: now,
            strikes: 0,
            window_start: now,
            rejecting: false,
        }
    }

    /// Charges what a request returned: `bytes` / [`COST_UNIT_BYTES`]
    /// tokens, going into debt down to minus one burst.
    pub fn charge(&mut self, bytes: usize) {
        if self.rate <= 0.0 {
            return;
        }
        // Whole units only: a short answer costs nothing more.
        let cost = (bytes / COST_UNIT_BYTES) as f64;
        self.tokens = (self.tokens - cost).max(-self.burst);
    }

    /// Charges one line arriving at `now`.
    pub fn check(&mut self, now: Instant) -> FloodVerdict {
        if self.rate <= 0.0 {
            return FloodVerdict::Accept;
        }
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last_refill = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.rejecting = false;
            return FloodVerdict::Accept;
        }
        if now.saturating_duration_since(self.window_start) > STRIKE_WINDOW {
            self.window_start = now;
            self.strikes = 0;
        }
        self.strikes += 1;
        if self.kick_after > 0 && self.strikes > self.kick_after {
            return FloodVerdict::Disconnect;
        }
        let first = !self.rejecting;
        self.rejecting = true;
        FloodVerdict::Reject { first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut flood = FloodControl::new(10.0, 3, 100);
        for _ in 0..3 {
            assert_eq!(flood.check(t0), FloodVerdict::Accept);
        }
        assert_eq!(flood.check(t0), FloodVerdict::Reject { first: true });
        assert_eq!(flood.check(t0), FloodVerdict::Reject { first: false });
        // 100 ms at 10 lines/s buys one more line.
        assert_eq!(
            flood.check(t0 + Duration::from_millis(100)),
            FloodVerdict::Accept
        );
    }

    #[test]
    fn persistent_flooding_disconnects() {
        let t0 = Instant::now();
        let mut flood = FloodControl::new(1.0, 1, 5);
        assert_eq!(flood.check(t0), FloodVerdict::Accept);
        for _ in 0..5 {
            assert!(matches!(flood.check(t0), FloodVerdict::Reject { .. }));
        }
        assert_eq!(flood.check(t0), FloodVerdict::Disconnect);
    }

    #[test]
    fn strikes_reset_after_the_window() {
        let t0 = Instant::now();
        let mut flood = FloodControl::new(0.001, 1, 2);
        flood.check(t0);
        flood.check(t0);
        flood.check(t0);
        let later = t0 + STRIKE_WINDOW + Duration::from_secs(1);
        assert!(matches!(flood.check(later), FloodVerdict::Reject { .. }));
    }

    #[test]
    fn what_a_request_returns_is_charged_as_debt() {
        let t0 = Instant::now();
        let mut flood = FloodControl::new(10.0, 5, 100);
        assert_eq!(flood.check(t0), FloodVerdict::Accept);
        // 40 KiB returned: 10 more tokens, 4 were left; at most one burst of debt.
        flood.charge(10 * COST_UNIT_BYTES);
        assert_eq!(flood.check(t0), FloodVerdict::Reject { first: true });
        // Paying back 5 tokens takes 0.5 s at 10/s, then one more for the line.
        assert!(matches!(
            flood.check(t0 + Duration::from_millis(500)),
            FloodVerdict::Reject { .. }
        ));
        assert_eq!(
            flood.check(t0 + Duration::from_millis(650)),
            FloodVerdict::Accept
        );
        flood.charge(usize::MAX);
        assert!(flood.tokens >= -5.0);
    }

    #[test]
    fn zero_rate_is_off() {
        let t0 = Instant::now();
        let mut flood = FloodControl::new(0.0, 1, 1);
        for _ in 0..1000 {
            assert_eq!(flood.check(t0), FloodVerdict::Accept);
        }
    }
}
