//! Session tokens: what keeps a client logged in across reconnects and
//! page reloads without keeping its password.
//!
//! A client that logs in or registers over Socket.IO gets one in the
//! answer (`session`), and presents it in the CONNECT `auth` of its next
//! connection (`{session}`) instead of a password. A token is 32 random
//! bytes (base64url, 43 characters); the store keeps only its SHA-256, so a
//! leaked database logs no one in. It expires [`SessionTokens::ttl`] after
//! it was issued, and ends sooner when its client logs out, when the
//! account's password changes (every token of the account ends) or when
//! the account is deleted. In the history store, so every node of a
//! cluster accepts it and it survives a restart; in memory with
//! `--store memory`.
//!
//! Bounds: an account holds at most [`MAX_PER_ACCOUNT`] tokens (a new one
//! replaces the oldest); in memory at most [`MAX_IN_MEMORY`] in all, and
//! past that no token is issued (the client then logs in with its
//! password again) until some expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::hub::event::now_millis;
use crate::store::{HistoryStore, StoreError};

/// Most tokens one account holds at once (its devices and browsers).
pub const MAX_PER_ACCOUNT: usize = 16;
/// Most tokens held in memory without a store.
pub const MAX_IN_MEMORY: usize = 100_000;
/// How long a token is valid by default (`--session-token-hours`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest a token presented may be, in bytes; longer is refused unread.
const MAX_TOKEN_BYTES: usize = 128;

/// Why a session token could not be issued or checked.
#[derive(Debug, thiserror::Error)]
pub enum SessionTokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// [`MAX_IN_MEMORY`] tokens are live (no store).
    #[error("too many session tokens are live")]
    Full,
    #[error("no randomness for a token: {0}")]
    Random(String),
}

/// A token held in memory (no store).
#[derive(Debug)]
struct Held {
    account: String,
    /// Milliseconds since the Unix epoch.
    expires: u64,
    /// Issue order: which of an account's tokens is oldest.
    seq: u64,
}

/// Issues, checks and ends session tokens.
#[derive(Debug)]
pub struct SessionTokens {
    store: Option<Arc<dyn HistoryStore>>,
    /// Token hash → token, without a store.
    memory: Mutex<HashMap<String, Held>>,
    issued: std::sync::atomic::AtomicU64,
    ttl: Duration,
}

impl SessionTokens {
    /// Tokens kept in `store` (in memory without one), each valid for `ttl`.
    pub fn new(store: Option<Arc<dyn HistoryStore>>, ttl: Duration) -> SessionTokens {
        SessionTokens {
            store,
            memory: Mutex::new(HashMap::new()),
            issued: std::sync::atomic::AtomicU64::new(0),
            ttl,
        }
    }

    /// How long a token is valid after it is issued.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new token for account `key`.
    ///
    /// Errors: the store failed, or (in memory) [`MAX_IN_MEMORY`] tokens
    /// are live.
    pub async fn issue(&self, key: &str) -> Result<String, SessionTokenError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| SessionTokenError::Random(e.to_string()))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = now_millis();
        let expires = now.saturating_add(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX));
        let hash = hash(&token);
        match &self.store {
            Some(store) => {
                store
                    .create_session_token(&hash, key, expires, now, MAX_PER_ACCOUNT)
                    .await?
            }
            None => {
                let seq = self
                    .issued
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut memory = self.lock();
                memory.retain(|_, held| held.expires > now);
                let mut own: Vec<(u64, String)> = memory
                    .iter()
                    .filter(|(_, held)| held.account == key)
                    .map(|(h, held)| (held.seq, h.clone()))
                    .collect();
                if own.len() >= MAX_PER_ACCOUNT {
                    own.sort();
                    for (_, h) in own.iter().take(own.len() + 1 - MAX_PER_ACCOUNT) {
                        memory.remove(h);
                    }
                }
                if memory.len() >= MAX_IN_MEMORY {
                    return Err(SessionTokenError::Full);
                }
                memory.insert(
                    hash,
                    Held {
                        account: key.to_string(),
                        expires,
                        seq,
                    },
                );
            }
        }
        Ok(token)
    }

    /// The account key `token` logs in to, if it is a live token.
    pub async fn account(&self, token: &str) -> Result<Option<String>, StoreError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Ok(None);
        }
        let hash = hash(token);
        let now = now_millis();
        match &self.store {
            Some(store) => store.session_token(&hash, now).await,
            None => Ok(self
                .lock()
                .get(&hash)
                .filter(|held| held.expires > now)
                .map(|held| held.account.clone())),
        }
    }

    /// Ends `token` of account `key` (logging out).
    pub async fn revoke(&self, key: &str, token: &str) -> Result<(), StoreError> {
        let hash = hash(token);
        match &self.store {
            Some(store) => store.delete_session_tokens(key, Some(&hash)).await,
            None => {
                let mut memory = self.lock();
                if memory.get(&hash).is_some_and(|held| held.account == key) {
                    memory.remove(&hash);
                }
                Ok(())
            }
        }
    }

    /// Ends every token of account `key` (new password, account deleted).
    pub async fn revoke_all(&self, key: &str) -> Result<(), StoreError> {
        match &self.store {
            Some(store) => store.delete_session_tokens(key, None).await,
            None => {
                self.lock().retain(|_, held| held.account != key);
                Ok(())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the store keeps of a token: its SHA-256, hex.
fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_logs_in_until_revoked() {
        let tokens = SessionTokens::new(None, DEFAULT_TTL);
        let token = tokens.issue("ann").await.unwrap();
        assert_eq!(token.len(), 43);
        assert_eq!(
            tokens.account(&token).await.unwrap().as_deref(),
            Some("ann")
        );
        assert_eq!(tokens.account("not a token").await.unwrap(), None);
        // Someone else's key cannot end it.
        tokens.revoke("bob", &token).await.unwrap();
        assert!(tokens.account(&token).await.unwrap().is_some());
        tokens.revoke("ann", &token).await.unwrap();
        assert_eq!(tokens.account(&token).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_token_logs_no_one_in() {
        let tokens = SessionTokens::new(None, Duration::ZERO);
        let token = tokens.issue("ann").await.unwrap();
        assert_eq!(tokens.account(&token).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_account_holds_at_most_its_share_of_tokens() {
        let tokens = SessionTokens::new(None, DEFAULT_TTL);
        let first = tokens.issue("ann").await.unwrap();
        let mut last = String::new();
        for _ in 0..MAX_PER_ACCOUNT {
            last = tokens.issue("ann").await.unwrap();
        }
        assert_eq!(tokens.lock().len(), MAX_PER_ACCOUNT);
        assert_eq!(
            tokens.account(&first).await.unwrap(),
            None,
            "the oldest made room"
        );
        assert!(tokens.account(&last).await.unwrap().is_some());
        tokens.revoke_all("ann").await.unwrap();
        assert_eq!(tokens.account(&last).await.unwrap(), None);
    }
}
