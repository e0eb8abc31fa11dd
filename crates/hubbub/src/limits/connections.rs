//! Connection caps, total and per client IP, shared by every transport.
//!
//! [`ConnectionLimiter::acquire`] hands out a [`ConnectionGuard`] that gives
//! its slot back when dropped, so a connection is counted exactly as long as
//! its task holds the guard.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("server full: {0} connections already")]
    Total(usize),
    #[error("too many connections from your address (at most {0})")]
    PerIp(usize),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections against the configured caps (`0` = no cap).
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            max_total,
            max_per_ip,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Takes a slot for a connection from `ip`, or says why not.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionGuard, Refused> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if self.max_total > 0 && counts.total >= self.max_total {
            return Err(Refused::Total(self.max_total));
        }
        let from_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip > 0 && from_ip >= self.max_per_ip {
            return Err(Refused::PerIp(self.max_per_ip));
        }
        counts.total += 1;
        counts.per_ip.insert(ip, from_ip + 1);
        Ok(ConnectionGuard {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections currently open.
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionGuard {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_release() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let g1 = limiter.acquire(a).unwrap();
        let _g2 = limiter.acquire(a).unwrap();
        assert_eq!(limiter.acquire(a).unwrap_err(), Refused::PerIp(2));
        let _g3 = limiter.acquire(b).unwrap();
        assert_eq!(limiter.acquire(b).unwrap_err(), Refused::Total(3));
        drop(g1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.acquire(a).is_ok());
    }
}
