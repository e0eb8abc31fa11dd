//! Login limits shared by every node of a cluster: failed logins counted
//! in Redis (`PREFIX:logins:KEY:MINUTE`, expiring after three minutes;
//! the current and the previous minute are read together), so a
//! guesser spreading attempts over N nodes gets no more than against one.
//! Implements the accounts service's [`LoginLimits`].
//!
//! While Redis cannot be reached, each node counts in its own memory
//! ([`LocalLimits`]) rather than let attempts through uncounted.

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
    async fn exhausted(&self, keys: &[LimitKey], now_s: u64) -> bool {
        if let Some(mut conn) = self.connection().await {
            let minute = now_s / 60;
            let names: Vec<String> = keys
                .iter()
                .flat_map(|k| [self.key(k, minute), self.key(k, minute.saturating_sub(1))])
                .collect();
            let mut mget = redis::cmd("MGET");
            mget.arg(&names);
            let read = mget.query_async(&mut conn);
            match tokio::time::timeout(TIMEOUT, read).await {
                Ok(Ok(counts)) => {
                    let counts: Vec<Option<u32>> = counts;
                    return keys.iter().zip(counts.chunks(2)).any(|(k, pair)| {
                        let recent: u32 = pair.iter().map(|n| n.unwrap_or(0)).sum();
                        recent >= k.limit
                    });
                }
                _ => self.forget_connection().await,
            }
        }
        self.fallback.exhausted(keys, now_s).await
    }

    async fn failed(&self, keys: &[LimitKey], now_s: u64) {
        if let Some(mut conn) = self.connection().await {
            let mut pipe = redis::pipe();
            for k in keys {
                let name = self.key(k, now_s / 60);
                pipe.cmd("INCR").arg(&name).ignore();
                pipe.cmd("EXPIRE").arg(&name).arg(180).ignore();
            }
            let written = pipe.query_async::<()>(&mut conn);
            if let Ok(Ok(())) = tokio::time::timeout(TIMEOUT, written).await {
                return;
            }
            self.forget_connection().await;
        }
        tracing::warn!("counting a failed login on this node only: Redis did not answer");
        self.fallback.failed(keys, now_s).await;
    }
}
