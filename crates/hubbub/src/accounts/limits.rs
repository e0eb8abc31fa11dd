//! Login limits: failed logins counted per address and per account in
//! one-minute windows, so that guessing is slow while the right password,
//! which spends nothing, always gets in below the limit. A key is
//! exhausted when its failures in the current and the previous minute
//! reach its limit, so a burst that straddles a minute's end is not
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
    /// Whether any of `keys` has reached its limit in the current and the
    /// previous minute together (`now_s`: seconds since the Unix epoch).
    async fn exhausted(&self, keys: &[LimitKey], now_s: u64) -> bool;
    /// Counts one failure against each of `keys`.
    async fn failed(&self, keys: &[LimitKey], now_s: u64);
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
    async fn exhausted(&self, keys: &[LimitKey], now_s: u64) -> bool {
        let minute = now_s / 60;
        let counts = self.counts();
        keys.iter().any(|k| {
            counts
                .get(&k.key)
                .is_some_and(|w| w.recent(minute) >= k.limit)
        })
    }

    async fn failed(&self, keys: &[LimitKey], now_s: u64) {
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
        for k in keys {
            let window = counts.entry(k.key.clone()).or_insert(Window {
                minute,
                now: 0,
                before: 0,
            });
            window.advance(minute);
            window.now = window.now.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_count_per_minute_and_key() {
        let limits = LocalLimits::default();
        let keys = [LimitKey {
            key: "account:carol".into(),
            limit: 2,
        }];
        assert!(!limits.exhausted(&keys, 60).await);
        limits.failed(&keys, 60).await;
        assert!(!limits.exhausted(&keys, 61).await);
        // A minute's end forgives nothing: the previous minute counts.
        limits.failed(&keys, 120).await;
        assert!(limits.exhausted(&keys, 121).await);
        // Two minutes on, the first failure is forgotten.
        assert!(!limits.exhausted(&keys, 180).await);
        assert!(!limits.exhausted(&keys, 240).await);
        let other = [LimitKey {
            key: "account:dave".into(),
            limit: 2,
        }];
        assert!(!limits.exhausted(&other, 119).await);
    }

    #[tokio::test]
    async fn the_counter_stays_bounded() {
        let limits = LocalLimits::default();
        for i in 0..(LOCAL_KEYS as u32 + 10) {
            let key = [LimitKey {
                key: format!("ip:{i}"),
                limit: 1,
            }];
            limits.failed(&key, 0).await;
        }
        assert!(limits.counts().len() <= LOCAL_KEYS);
    }
}
