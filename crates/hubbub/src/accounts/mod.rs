//! Accounts: a registered nickname belongs to whoever knows its password.
//!
//! Accounts live in the history store (table `accounts`), so every node of
//! a cluster shares them; with `--store memory` they live in this process
//! and end with it. Passwords are hashed with Argon2id (OWASP's minimum
//! parameters by default: 19 MiB, 2 passes, 1 lane) on the blocking pool,
//! at most [`MAX_CONCURRENT_HASHES`] at a time, so hashing never stalls the
//! chat. Failed logins are limited per IP and per account ([`limits`]:
//! counted on every node of a cluster together; a successful login spends
//! nothing); an unknown account and a wrong password get the same
//! answer after the same work (a hash is verified either way). Passwords
//! are never logged, and are refused on a connection that is not
//! encrypted unless it comes from loopback or the operator says a proxy
//! encrypts it (`--allow-insecure-passwords`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

pub mod limits;

pub use limits::{LimitKey, LoginLimits};

use crate::hub::names;
use crate::session_tokens::{self, SessionTokens};
use crate::store::{HistoryStore, StoredAccount};

/// Hashes computed at once (each takes `memory_kib` of memory).
pub const MAX_CONCURRENT_HASHES: usize = 2;
/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes (what is hashed is bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id cost parameters (`--argon2-memory-kib`, `--argon2-passes`).
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub memory_kib: u32,
    pub passes: u32,
}

impl Default for HashCost {
    /// OWASP's minimum for Argon2id: 19 MiB, 2 passes, parallelism 1.
    fn default() -> Self {
        HashCost {
            memory_kib: 19 * 1024,
            passes: 2,
        }
    }
}

/// Why an account request was refused; `code` goes to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Unknown account or wrong password: deliberately the same.
    #[error("invalid nickname or password")]
    InvalidCredentials,
    #[error("too many login attempts; wait a minute")]
    RateLimited,
    #[error("the nickname {0} is registered already")]
    AlreadyRegistered(String),
    #[error("the nickname {0} is registered; log in to use it (/login {0} PASSWORD)")]
    NickRegistered(String),
    #[error("you are not logged in")]
    NotLoggedIn,
    #[error("{0} is not a registered nickname")]
    NotRegistered(String),
    #[error(
        "passwords are refused on this connection: it is not encrypted (ask the operator for TLS)"
    )]
    InsecureConnection,
    #[error("a password has {MIN_PASSWORD_CHARS} characters or more, and at most {MAX_PASSWORD_BYTES} bytes")]
    BadPassword,
    #[error("accounts are unavailable right now; try again")]
    Unavailable,
    #[error("{0}")]
    InvalidToken(#[from] crate::tokens::TokenError),
    #[error("this server takes no application tokens")]
    TokensDisabled,
    #[error("your session has expired or was ended; log in again")]
    InvalidSession,
}

impl AccountError {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::InvalidCredentials => "invalid_credentials",
            AccountError::RateLimited => "rate_limited",
            AccountError::AlreadyRegistered(_) => "already_registered",
            AccountError::NickRegistered(_) => "nick_registered",
            AccountError::NotLoggedIn => "not_logged_in",
            AccountError::NotRegistered(_) => "not_registered",
            AccountError::InsecureConnection => "insecure_connection",
            AccountError::BadPassword => "bad_password",
            AccountError::Unavailable => "accounts_unavailable",
            AccountError::InvalidToken(_) => "invalid_token",
            AccountError::TokensDisabled => "tokens_disabled",
            AccountError::InvalidSession => "invalid_session",
        }
    }
}

/// The answer to a whois ([`Accounts::whois`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Whois {
    pub nick: String,
    pub registered: bool,
    /// Connected, on any node of the cluster.
    pub here: bool,
    pub logged_in: bool,
    /// How many sessions (devices) hold the nickname: 0 when not here.
    pub sessions: usize,
}

/// Where a password comes from: the client's address (login rate limits,
/// loopback) and whether its connection is encrypted (TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub ip: IpAddr,
    pub encrypted: bool,
}

/// The accounts service shared by every transport.
#[derive(Debug)]
pub struct Accounts {
    store: Option<Arc<dyn HistoryStore>>,
    /// Accounts when there is no store.
    memory: Mutex<HashMap<String, StoredAccount>>,
    hashing: Semaphore,
    cost: HashCost,
    /// Where failed logins are counted (this process, or the cluster).
    limits: Arc<dyn LoginLimits>,
    /// A hash of nothing anyone knows, verified for unknown accounts so
    /// they cost what a wrong password costs.
    decoy: tokio::sync::OnceCell<String>,
    insecure_ok: bool,
    tokens: Option<crate::tokens::Tokens>,
    /// What keeps a client logged in across reconnects.
    sessions: SessionTokens,
}

impl Accounts {
    /// Accounts in `store` (in memory without one). `insecure_ok` allows
    /// passwords on unencrypted connections from anywhere.
    pub fn new(
        store: Option<Arc<dyn HistoryStore>>,
        cost: HashCost,
        insecure_ok: bool,
    ) -> Accounts {
        let store_for_sessions = store.clone();
        Accounts {
            store,
            memory: Mutex::new(HashMap::new()),
            hashing: Semaphore::new(MAX_CONCURRENT_HASHES),
            cost,
            limits: Arc::new(limits::LocalLimits::default()),
            decoy: tokio::sync::OnceCell::new(),
            insecure_ok,
            tokens: None,
            sessions: SessionTokens::new(store_for_sessions, session_tokens::DEFAULT_TTL),
        }
    }

    /// Session tokens valid for `ttl` (`--session-token-hours`).
    pub fn with_session_ttl(mut self, ttl: std::time::Duration) -> Accounts {
        self.sessions = SessionTokens::new(self.store.clone(), ttl);
        self
    }

    /// A session token for account `key`, which logs in to it on a later
    /// connection ([`Accounts::login_with_session`]); `None` when none can
    /// be issued now (the client logs in with its password next time).
    pub async fn issue_session(&self, key: &str) -> Option<String> {
        match self.sessions.issue(key).await {
            Ok(token) => Some(token),
            Err(e) => {
                tracing::warn!(error = %e, "could not issue a session token");
                None
            }
        }
    }

    /// The account session token `token` logs in to.
    ///
    /// Errors: `invalid_session` for a token that is unknown, expired,
    /// ended, or of an account deleted since; `accounts_unavailable`.
    pub async fn login_with_session(&self, token: &str) -> Result<StoredAccount, AccountError> {
        let key = self
            .sessions
            .account(token)
            .await
            .map_err(unavailable)?
            .ok_or(AccountError::InvalidSession)?;
        self.find(&key).await?.ok_or(AccountError::InvalidSession)
    }

    /// Ends session token `token` of account `key` (logging out).
    pub async fn end_session(&self, key: &str, token: &str) {
        if let Err(e) = self.sessions.revoke(key, token).await {
            tracing::warn!(error = %e, "could not end a session token");
        }
    }

    /// Counts failed logins in `limits` (a cluster's, shared by its nodes).
    pub fn with_login_limits(mut self, limits: Arc<dyn LoginLimits>) -> Accounts {
        self.limits = limits;
        self
    }

    /// Also accepts application tokens checked by `tokens`.
    pub fn with_tokens(mut self, tokens: Option<crate::tokens::Tokens>) -> Accounts {
        self.tokens = tokens;
        self
    }

    /// Checks an application token, and makes its nickname the token
    /// user's, as an account: held for that `sub` (a row with no password,
    /// so no password logs in to it), refused to everyone else. A nickname
    /// already registered to someone else is refused to the token.
    pub async fn login_with_token(
        &self,
        token: &str,
    ) -> Result<(StoredAccount, crate::tokens::Identity), AccountError> {
        let tokens = self.tokens.as_ref().ok_or(AccountError::TokensDisabled)?;
        let identity = tokens.verify(token)?;
        let owner = format!("!token {}", identity.sub);
        let account = StoredAccount {
            key: names::nick_key(&identity.nick),
            name: identity.nick.clone(),
            password_hash: owner.clone(),
            created_ms: crate::hub::event::now_millis(),
            id: new_account_id()?,
            server_operator: false,
        };
        let existing = match self.find(&identity.nick).await? {
            Some(existing) => existing,
            None => {
                if self.create(&account).await? {
                    return Ok((account, identity));
                }
                self.find(&identity.nick)
                    .await?
                    .ok_or(AccountError::Unavailable)?
            }
        };
        if existing.password_hash == owner {
            Ok((existing, identity))
        } else {
            Err(AccountError::NickRegistered(existing.name))
        }
    }

    /// Whether a password may be sent by `peer`: over TLS, from loopback,
    /// or when the operator allows unencrypted connections
    /// (`--allow-insecure-passwords`).
    pub fn password_allowed(&self, peer: Peer) -> bool {
        self.insecure_ok
            || peer.encrypted
            || peer.ip.is_loopback()
            || peer.ip.to_canonical().is_loopback()
    }

    /// The account of nickname `nick`, if registered.
    pub async fn find(&self, nick: &str) -> Result<Option<StoredAccount>, AccountError> {
        let key = names::nick_key(nick);
        match &self.store {
            Some(store) => store.account(&key).await.map_err(unavailable),
            None => Ok(self.lock().get(&key).cloned()),
        }
    }

    /// Registers nickname `nick` with `password`; the new account (with
    /// its new id: a name registered again is someone new).
    pub async fn register(
        &self,
        peer: Peer,
        nick: &str,
        password: &str,
    ) -> Result<StoredAccount, AccountError> {
        self.check_password(peer, password)?;
        if self.find(nick).await?.is_some() {
            return Err(AccountError::AlreadyRegistered(nick.to_string()));
        }
        let account = StoredAccount {
            key: names::nick_key(nick),
            name: nick.to_string(),
            password_hash: self.hash(password).await?,
            created_ms: crate::hub::event::now_millis(),
            id: new_account_id()?,
            server_operator: false,
        };
        if self.create(&account).await? {
            Ok(account)
        } else {
            Err(AccountError::AlreadyRegistered(nick.to_string()))
        }
    }

    /// Checks `password` for nickname `nick`; the account on success.
    pub async fn login(
        &self,
        peer: Peer,
        nick: &str,
        password: &str,
    ) -> Result<StoredAccount, AccountError> {
        if !self.password_allowed(peer) {
            return Err(AccountError::InsecureConnection);
        }
        let key = names::nick_key(nick);
        let keys = [
            LimitKey {
                key: format!("ip:{}", peer.ip.to_canonical()),
                limit: limits::FAILURES_PER_IP_PER_MINUTE,
            },
            LimitKey {
                key: format!("account:{key}"),
                limit: limits::FAILURES_PER_ACCOUNT_PER_MINUTE,
            },
        ];
        let now_s = crate::hub::event::now_millis() / 1000;
        if !self.limits.attempt(&keys, now_s).await {
            crate::telemetry::login_failed("rate_limited");
            return Err(AccountError::RateLimited);
        }
        let account = match password.len() > MAX_PASSWORD_BYTES {
            true => None,
            false => {
                let account = self.find(nick).await?;
                let hash = match &account {
                    Some(account) => account.password_hash.clone(),
                    None => self.decoy().await?,
                };
                let matches = self.verify(password, hash).await?;
                account.filter(|_| matches)
            }
        };
        match account {
            Some(account) => {
                self.limits.succeeded(&keys, now_s).await;
                Ok(account)
            }
            None => {
                crate::telemetry::login_failed("invalid_credentials");
                Err(AccountError::InvalidCredentials)
            }
        }
    }

    /// Changes account `nick`'s password, given the current one.
    pub async fn change_password(
        &self,
        peer: Peer,
        nick: &str,
        old: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        self.check_password(peer, new)?;
        let account = self.login(peer, nick, old).await?;
        let hash = self.hash(new).await?;
        let changed = match &self.store {
            Some(store) => store
                .set_password_hash(&account.key, &hash)
                .await
                .map_err(unavailable)?,
            None => self
                .lock()
                .get_mut(&account.key)
                .map(|a| a.password_hash = hash)
                .is_some(),
        };
        if !changed {
            return Err(AccountError::InvalidCredentials);
        }
        // Whoever kept a session under the old password must log in again.
        self.sessions
            .revoke_all(&account.key)
            .await
            .map_err(unavailable)
    }

    /// Deletes account `nick`, given its password.
    pub async fn unregister(
        &self,
        peer: Peer,
        nick: &str,
        password: &str,
    ) -> Result<(), AccountError> {
        let account = self.login(peer, nick, password).await?;
        self.sessions
            .revoke_all(&account.key)
            .await
            .map_err(unavailable)?;
        match &self.store {
            Some(store) => {
                store
                    .delete_account(&account.key)
                    .await
                    .map_err(unavailable)?;
            }
            None => {
                self.lock().remove(&account.key);
            }
        }
        Ok(())
    }

    /// Makes the account of nickname `nick` a server operator (`on`) or
    /// not: the administrator's act (`hubbub operator add NAME`), the only
    /// way an account becomes one. It takes effect at the account's next
    /// login.
    ///
    /// Errors: `not_registered`; `accounts_unavailable`.
    pub async fn set_server_operator(&self, nick: &str, on: bool) -> Result<(), AccountError> {
        let key = names::nick_key(nick);
        let changed = match &self.store {
            Some(store) => store
                .set_server_operator(&key, on)
                .await
                .map_err(unavailable)?,
            None => self
                .lock()
                .get_mut(&key)
                .map(|a| a.server_operator = on)
                .is_some(),
        };
        if changed {
            Ok(())
        } else {
            Err(AccountError::NotRegistered(nick.to_string()))
        }
    }

    /// Stores `account` unless its key is taken; `false` if it is.
    async fn create(&self, account: &StoredAccount) -> Result<bool, AccountError> {
        match &self.store {
            Some(store) => store.create_account(account).await.map_err(unavailable),
            None => {
                let mut memory = self.lock();
                if memory.contains_key(&account.key) {
                    return Ok(false);
                }
                memory.insert(account.key.clone(), account.clone());
                Ok(true)
            }
        }
    }

    /// Whether a session logged in to account `own` (a nickname key), or
    /// to none, may take nickname `nick`: not if it is registered to
    /// another account.
    pub async fn may_take(&self, nick: &str, own: Option<&str>) -> Result<(), AccountError> {
        if own == Some(names::nick_key(nick).as_str()) {
            return Ok(());
        }
        match self.find(nick).await? {
            Some(account) => Err(AccountError::NickRegistered(account.name)),
            None => Ok(()),
        }
    }

    /// What `/whois` and the `whois` request say about `nick`: its
    /// spelling (as in use, or as registered), whether it is registered,
    /// here (on any node), logged in, and through how many sessions.
    pub async fn whois(&self, hub: &crate::hub::Hub, nick: &str) -> Result<Whois, AccountError> {
        let registered = self.find(nick).await?;
        let here = hub.whois(nick);
        let name = here
            .as_ref()
            .map(|p| p.nick.to_string())
            .or_else(|| registered.as_ref().map(|a| a.name.clone()))
            .unwrap_or_else(|| nick.to_string());
        Ok(Whois {
            nick: name,
            registered: registered.is_some(),
            here: here.is_some(),
            logged_in: here.as_ref().is_some_and(|p| p.logged_in),
            sessions: here.map_or(0, |p| p.sessions),
        })
    }

    fn check_password(&self, peer: Peer, password: &str) -> Result<(), AccountError> {
        if !self.password_allowed(peer) {
            return Err(AccountError::InsecureConnection);
        }
        if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
            return Err(AccountError::BadPassword);
        }
        Ok(())
    }

    /// Argon2id of `password` with a fresh salt, as a PHC string.
    async fn hash(&self, password: &str) -> Result<String, AccountError> {
        let _slot = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AccountError::Unavailable)?;
        let password = password.to_string();
        let cost = self.cost;
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(|_| AccountError::Unavailable)?;
            let salt = SaltString::encode_b64(&salt).map_err(|_| AccountError::Unavailable)?;
            hasher(cost)?
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|_| AccountError::Unavailable)
        })
        .await
        .map_err(|_| AccountError::Unavailable)?
    }

    /// Whether `password` matches the PHC string `hash` (its own parameters).
    async fn verify(&self, password: &str, hash: String) -> Result<bool, AccountError> {
        let _slot = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AccountError::Unavailable)?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .map_err(|_| AccountError::Unavailable)
    }

    async fn decoy(&self) -> Result<String, AccountError> {
        self.decoy
            .get_or_try_init(|| async {
                let mut secret = [0u8; 24];
                getrandom::fill(&mut secret).map_err(|_| AccountError::Unavailable)?;
                let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
                self.hash(&secret).await
            })
            .await
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredAccount>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn hasher(cost: HashCost) -> Result<Argon2<'static>, AccountError> {
    let params = Params::new(cost.memory_kib, cost.passes, 1, None)
        .map_err(|_| AccountError::Unavailable)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn unavailable(e: crate::store::StoreError) -> AccountError {
    tracing::warn!(error = %e, "account store failed");
    AccountError::Unavailable
}

/// A new account id: `~` and 32 hex digits (128 random bits). No nickname
/// key starts with `~`, so new ids never meet the ids of accounts that
/// predate them (their nickname keys).
///
/// Errors: `accounts_unavailable` when the system has no randomness.
pub fn new_account_id() -> Result<String, AccountError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| AccountError::Unavailable)?;
    let mut id = String::with_capacity(33);
    id.push('~');
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        // Cheap parameters: these tests are about the rules, not the cost.
        Accounts::new(
            None,
            HashCost {
                memory_kib: 64,
                passes: 1,
            },
            false,
        )
    }

    const HOME: Peer = Peer {
        ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        encrypted: false,
    };

    #[tokio::test]
    async fn register_login_change_and_delete() {
        let accounts = accounts();
        accounts
            .register(HOME, "alice", "correct horse")
            .await
            .unwrap();
        assert_eq!(
            accounts.register(HOME, "ALICE", "another one").await,
            Err(AccountError::AlreadyRegistered("ALICE".into()))
        );
        let account = accounts
            .login(HOME, "Alice", "correct horse")
            .await
            .unwrap();
        assert_eq!(account.name, "alice");
        assert!(account.password_hash.starts_with("$argon2id$"));
        assert!(!account.password_hash.contains("correct horse"));
        // Unknown account and wrong password: one answer.
        assert_eq!(
            accounts.login(HOME, "alice", "wrong horse").await,
            Err(AccountError::InvalidCredentials)
        );
        assert_eq!(
            accounts.login(HOME, "nobody", "wrong horse").await,
            Err(AccountError::InvalidCredentials)
        );
        accounts
            .change_password(HOME, "alice", "correct horse", "battery staple")
            .await
            .unwrap();
        assert!(accounts
            .login(HOME, "alice", "battery staple")
            .await
            .is_ok());
        accounts
            .unregister(HOME, "alice", "battery staple")
            .await
            .unwrap();
        assert_eq!(accounts.find("alice").await, Ok(None));
    }

    #[tokio::test]
    async fn short_passwords_and_remote_plaintext_are_refused() {
        let accounts = accounts();
        assert_eq!(
            accounts.register(HOME, "bob", "short").await,
            Err(AccountError::BadPassword)
        );
        let remote = Peer {
            ip: "203.0.113.7".parse().unwrap(),
            encrypted: false,
        };
        assert_eq!(
            accounts.register(remote, "bob", "long enough").await,
            Err(AccountError::InsecureConnection)
        );
        assert!(Accounts::new(None, HashCost::default(), true).password_allowed(remote));
    }

    #[tokio::test]
    async fn passwords_over_tls_are_accepted_from_anywhere() {
        let accounts = accounts();
        let plain = Peer {
            ip: "203.0.113.7".parse().unwrap(),
            encrypted: false,
        };
        let tls = Peer {
            encrypted: true,
            ..plain
        };
        assert!(!accounts.password_allowed(plain));
        assert!(accounts.password_allowed(tls));
        accounts.register(tls, "dave", "long enough").await.unwrap();
        assert_eq!(
            accounts.login(plain, "dave", "long enough").await,
            Err(AccountError::InsecureConnection)
        );
        assert!(accounts.login(tls, "dave", "long enough").await.is_ok());
        // The same from IPv6, and from an IPv4-mapped IPv6 address.
        for ip in ["2001:db8::7", "::ffff:203.0.113.7"] {
            let ip = ip.parse().unwrap();
            assert!(!accounts.password_allowed(Peer {
                ip,
                encrypted: false
            }));
            assert!(accounts.password_allowed(Peer {
                ip,
                encrypted: true
            }));
        }
    }

    #[tokio::test]
    async fn login_attempts_are_rate_limited() {
        let accounts = accounts();
        accounts
            .register(HOME, "carol", "long enough")
            .await
            .unwrap();
        // The right password spends nothing.
        for _ in 0..2 * limits::FAILURES_PER_ACCOUNT_PER_MINUTE {
            assert!(accounts.login(HOME, "carol", "long enough").await.is_ok());
        }
        let mut limited = false;
        for _ in 0..limits::FAILURES_PER_ACCOUNT_PER_MINUTE + 1 {
            if accounts.login(HOME, "carol", "guess guess").await == Err(AccountError::RateLimited)
            {
                limited = true;
            }
        }
        assert!(limited);
        // The right password is refused too while limited.
        assert_eq!(
            accounts.login(HOME, "carol", "long enough").await,
            Err(AccountError::RateLimited)
        );
    }
}
