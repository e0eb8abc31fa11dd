//! Login limits: failed logins counted per address and per account in
//! one-minute windows, so that guessing is slow while the right password,
//! which spends nothing, always gets in below the limit. An attempt is
//! counted before its password is checked and taken back when it
//! succeeds, so attempts made at once cannot all slip under the limit;
//! a key is exhausted when its attempts in the current and the previous
//! minute pass its limit, so a burst that straddles a minute's end is not
//! forgiven by it.
//!
//! The accounts service owns this interface ([`LoginLimits`]); this
//! process's counter ([`LocalLimits`]) is the default, and a cluster
//! plugs in one shared by every node (`cluster::logins`, over Redis), so
//! N nodes do not give N times the guesses.

use std::collections::HashMap;
use std::sync::Mutex;

/// Failed logins per minute from one address.
pub const FAILURES_PER_IP_PER_MINUTE: u32 = 10;
/// Failed logins per minute on one account, from anywhere.
pub const FAILURES_PER_ACCOUNT_PER_MINUTE: u32 = 5;
/// Keys the local counter keeps; past this, windows that ended are
/// dropped, and if all are current the oldest minute's counts go.
const LOCAL_KEYS: usize = 10_000;

/// One counted thing: `ip:ADDRESS` or `account:KEY`, and its limit per
/// minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitKey {
    pub key: String,
    pub limit: u32,
}

/// Where failed logins are counted.
#[async_trait::async_trait]
pub trait LoginLimits: Send + Sync + std::fmt::Debug {
    /// Counts an attempt against each of `keys` (at `now_s`, seconds since
    /// the Unix epoch) and says whether all of them are still within their
    /// limit over the current and the previous minute, this one included.
    async fn attempt(&self, keys: &[LimitKey], now_s: u64) -> bool;
    /// Takes back an attempt made at `now_s` that succeeded.
    async fn succeeded(&self, keys: &[LimitKey], now_s: u64);
}

/// A key's failures: in `minute`, and in the minute before it.
#[derive(Debug, Clone, Copy)]
struct Window {
    minute: u64,
    now: u32,
    before: u32,
}

impl Window {
    /// The failures of `minute` and the one before it.
    fn recent(&self, minute: u64) -> u32 {
        match minute.checked_sub(self.minute) {
            Some(0) => self.now.saturating_add(self.before),
            Some(1) => self.now,
            _ => 0,
        }
    }

    /// Moves the window to `minute`.
    fn advance(&mut self, minute: u64) {
        match minute.checked_sub(self.minute) {
            Some(0) | None => {}
            Some(1) => {
                self.before = self.now;
                self.now = 0;
            }
            Some(_) => {
                self.before = 0;
                self.now = 0;
            }
        }
        self.minute = self.minute.max(minute);
    }
}

/// This process's counter: key → its window.
#[derive(Debug, Default)]
pub struct LocalLimits {
    counts: Mutex<HashMap<String, Window>>,
}

impl LocalLimits {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl LoginLimits for LocalLimits {
    async fn attempt(&self, keys: &[LimitKey], now_s: u64) -> bool {
        let minute = now_s / 60;
        let mut counts = self.counts();
        if counts.len() >= LOCAL_KEYS {
            counts.retain(|_, w| w.recent(minute) > 0);
            if counts.len() >= LOCAL_KEYS {
                // A spray of keys within one minute: bounded memory wins
                // over remembering it all.
                counts.clear();
            }
        }
        let mut within = true;
        for k in keys {
            let window = counts.entry(k.key.clone()).or_insert(Window {
                minute,
                now: 0,
                before: 0,
            });
            window.advance(minute);
            window.now = window.now.saturating_add(1);
            within &= window.recent(minute) <= k.limit;
        }
        within
    }

    async fn succeeded(&self, keys: &[LimitKey], now_s: u64) {
        let minute = now_s / 60;
        let mut counts = self.counts();
        for k in keys {
            if let Some(window) = counts.get_mut(&k.key) {
                if window.minute == minute {
                    window.now = window.now.saturating_sub(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn attempts_count_per_minute_and_key_and_successes_are_taken_back() {
        let limits = LocalLimits::default();
        let keys = [LimitKey {
            key: "account:carol".into(),
            limit: 2,
        }];
        assert!(limits.attempt(&keys, 60).await);
        assert!(limits.attempt(&keys, 61).await);
        // A success is taken back: it spends nothing.
        limits.succeeded(&keys, 61).await;
        assert!(limits.attempt(&keys, 62).await);
        assert!(!limits.attempt(&keys, 63).await);
        // A minute's end forgives nothing: the previous minute counts.
        assert!(!limits.attempt(&keys, 120).await);
        // Two minutes on, the old attempts are forgotten.
        assert!(limits.attempt(&keys, 240).await);
        let other = [LimitKey {
            key: "account:dave".into(),
            limit: 2,
        }];
        assert!(limits.attempt(&other, 240).await);
    }

    #[tokio::test]
    async fn the_counter_stays_bounded() {
        let limits = LocalLimits::default();
        for i in 0..(LOCAL_KEYS as u32 + 10) {
            let key = [LimitKey {
                key: format!("ip:{i}"),
                limit: 1,
            }];
            limits.attempt(&key, 0).await;
        }
        assert!(limits.counts().len() <= LOCAL_KEYS);
    }
}
