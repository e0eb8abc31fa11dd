//! Login limits shared by every node of a cluster: failed logins counted
//! in Redis (`PREFIX:logins:KEY:MINUTE`, expiring after three minutes;
//! the current and the previous minute are read together), so a
//! guesser spreading attempts over N nodes gets no more than against one.
//! Implements the accounts service's [`LoginLimits`].
//!
//! While Redis cannot be reached, each node counts in its own memory
//! ([`LocalLimits`]) rather than let attempts through uncounted. (A
//! success whose attempt was counted in Redis but whose take-back could
//! not be written spends one attempt: the safe side.)

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::accounts::limits::LocalLimits;
use crate::accounts::{LimitKey, LoginLimits};

/// How long one Redis round trip may take before the node counts alone.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Failed logins counted in Redis.
#[derive(Debug)]
pub struct RedisLoginLimits {
    client: redis::Client,
    prefix: String,
    /// Connected on first use, and again after a failure.
    conn: Mutex<Option<MultiplexedConnection>>,
    fallback: LocalLimits,
}

impl RedisLoginLimits {
    /// Limits in the Redis at `redis_url`, under key prefix `prefix`.
    ///
    /// Errors: a URL that does not parse.
    pub fn new(redis_url: &str, prefix: &str) -> anyhow::Result<RedisLoginLimits> {
        Ok(RedisLoginLimits {
            client: redis::Client::open(redis_url)
                .map_err(|e| anyhow::anyhow!("--redis-url {redis_url}: {e}"))?,
            prefix: prefix.to_string(),
            conn: Mutex::new(None),
            fallback: LocalLimits::default(),
        })
    }

    fn key(&self, key: &LimitKey, minute: u64) -> String {
        format!("{}:logins:{}:{minute}", self.prefix, key.key)
    }

    async fn connection(&self) -> Option<MultiplexedConnection> {
        let mut conn = self.conn.lock().await;
        if conn.is_none() {
            let connected =
                tokio::time::timeout(TIMEOUT, self.client.get_multiplexed_async_connection()).await;
            *conn = match connected {
                Ok(Ok(c)) => Some(c),
                _ => None,
            };
        }
        conn.clone()
    }

    async fn forget_connection(&self) {
        *self.conn.lock().await = None;
    }
}

#[async_trait::async_trait]
impl LoginLimits for RedisLoginLimits {
    async fn attempt(&self, keys: &[LimitKey], now_s: u64) -> bool {
        let minute = now_s / 60;
        if let Some(mut conn) = self.connection().await {
            // INCR this minute's count, read the previous minute's: one
            // round trip, and attempts made at once each see the others.
            let mut pipe = redis::pipe();
            for k in keys {
                let name = self.key(k, minute);
                pipe.cmd("INCR").arg(&name);
                pipe.cmd("EXPIRE").arg(&name).arg(180).ignore();
                pipe.cmd("GET").arg(self.key(k, minute.saturating_sub(1)));
            }
            let counted = pipe.query_async::<Vec<Option<u32>>>(&mut conn);
            match tokio::time::timeout(TIMEOUT, counted).await {
                Ok(Ok(counts)) if counts.len() == 2 * keys.len() => {
                    return keys.iter().zip(counts.chunks(2)).all(|(k, pair)| {
                        let recent: u32 = pair.iter().map(|n| n.unwrap_or(0)).sum();
                        recent <= k.limit
                    });
                }
                _ => self.forget_connection().await,
            }
        }
        tracing::warn!("counting a login attempt on this node only: Redis did not answer");
        self.fallback.attempt(keys, now_s).await
    }

    async fn succeeded(&self, keys: &[LimitKey], now_s: u64) {
        let minute = now_s / 60;
        if let Some(mut conn) = self.connection().await {
            let mut pipe = redis::pipe();
            for k in keys {
                pipe.cmd("DECR").arg(self.key(k, minute)).ignore();
            }
            let written = pipe.query_async::<()>(&mut conn);
            if let Ok(Ok(())) = tokio::time::timeout(TIMEOUT, written).await {
                return;
            }
            self.forget_connection().await;
        }
        self.fallback.succeeded(keys, now_s).await;
    }
}
