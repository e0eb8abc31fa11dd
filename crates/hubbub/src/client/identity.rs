//! Who a connection is: its login state and every change to it —
//! `register`, `login`, `logout`, `token` (and its refresh), `password`,
//! `unregister`, `whois`, and the rename rule that protects registered
//! nicknames — once for every transport. A transport renders the outcome
//! (a notice for line clients, an acknowledgement for Socket.IO).
//!
//! The hub session carries the account's stable id ([`LoggedIn`]) for
//! the gate; this state keeps what only the connection needs: the
//! account's key and name, the application token's subject and expiry,
//! and the session token to end at logout.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::Refusal;
use crate::accounts::{AccountError, Accounts, Peer, Whois};
use crate::hub::{names, Event, HubError, LoggedIn, Session};
use crate::store::StoredAccount;
use crate::tokens::{Identity as TokenIdentity, TokenError};

/// How a transport names its guests, for a session that logs out while
/// its account's other devices keep the nickname.
#[derive(Debug, Clone)]
pub enum GuestNames {
    /// The Go chat's: the client's address, then with a suffix (`-2`…`-9`).
    Address(SocketAddr),
    /// `guest-N`, numbered by the transport.
    Numbered(Arc<AtomicU64>),
}

impl GuestNames {
    fn names(&self) -> Vec<String> {
        match self {
            GuestNames::Address(peer) => {
                let name = peer.to_string();
                std::iter::once(name.clone())
                    .chain((2..=9).map(|n| format!("{name}-{n}")))
                    .collect()
            }
            GuestNames::Numbered(next) => (0..100)
                .map(|_| {
                    format!(
                        "{}{}",
                        names::GUEST_PREFIX,
                        next.fetch_add(1, Ordering::Relaxed)
                    )
                })
                .collect(),
        }
    }
}

/// What a client presents to log in as it connects (Socket.IO's
/// handshake `auth`): all or nothing — a present but malformed field is a
/// refusal, never a guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An application's JWT (`{token}`).
    Token(String),
    /// A session token from an earlier login (`{session}`).
    Session(String),
    /// An account's nickname and password (`{nick, password}`).
    Password { nick: String, password: String },
}

impl Credentials {
    /// Reads `auth`: absent or `null` is a guest (`None`); an object may
    /// hold exactly one of `token`, `session`, or `nick` with `password`
    /// (all strings); other keys are the handshake's other settings (such
    /// as the vocabulary) or the application's, and are left alone.
    ///
    /// Errors: `bad_credentials`, with what is wrong.
    pub fn from_auth(auth: &Value) -> Result<Option<Credentials>, Refusal> {
        let bad = |why: &str| Refusal::new("bad_credentials", format!("auth: {why}"));
        let object = match auth {
            Value::Null => return Ok(None),
            Value::Object(object) => object,
            _ => return Err(bad("expected an object")),
        };
        let string = |key: &str| match object.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("{key} must be a string"))),
        };
        let (token, session) = (string("token")?, string("session")?);
        let (nick, password) = (string("nick")?, string("password")?);
        match (token, session, nick, password) {
            (None, None, None, None) => Ok(None),
            (Some(token), None, None, None) => Ok(Some(Credentials::Token(token))),
            (None, Some(session), None, None) => Ok(Some(Credentials::Session(session))),
            (None, None, Some(nick), Some(password)) => {
                Ok(Some(Credentials::Password { nick, password }))
            }
            (None, None, Some(_), None) => Err(bad("nick without password")),
            (None, None, None, Some(_)) => Err(bad("password without nick")),
            _ => Err(bad("give one of token, session, or nick with password")),
        }
    }
}

/// The account a connection is logged in to.
#[derive(Debug, Clone)]
struct Account {
    /// The nickname key (where the store finds it).
    key: String,
    /// The stable id (what rights refer to).
    id: String,
}

#[derive(Debug, Default)]
struct State {
    account: Option<Account>,
    /// The application token's subject and expiry (seconds since the
    /// epoch), when logged in by token.
    token: Option<(String, u64)>,
    /// The session token this connection logged in with or was given
    /// (`crate::session_tokens`): ended at logout.
    session_token: Option<String>,
}

/// One connection's identity. Interior state, so that a transport can
/// share it between its request handling and its token-expiry watch.
#[derive(Debug)]
pub struct Identity {
    accounts: Arc<Accounts>,
    /// Where passwords come from: the address and whether encrypted.
    peer: Peer,
    guests: GuestNames,
    /// Whether the transport hands out session tokens (a page keeps one
    /// across reloads; a line client has nowhere to keep it).
    session_tokens: bool,
    state: Mutex<State>,
}

/// The result of a login of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDone {
    /// The account's nickname, now the session's.
    pub nick: String,
    /// A session token for the next connection, when the transport uses
    /// them and one could be issued.
    pub session_token: Option<String>,
}

/// The result of a `token` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDone {
    pub nick: String,
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: u64,
    /// The rooms the token asks to join (the transport joins them its way).
    pub rooms: Vec<String>,
    /// Only the expiry changed: the same subject refreshed its token.
    pub refreshed: bool,
}

fn logged_in(account: &StoredAccount) -> LoggedIn {
    LoggedIn {
        id: account.id.as_str().into(),
        server_operator: account.server_operator,
    }
}

impl Identity {
    pub fn new(
        accounts: Arc<Accounts>,
        peer: Peer,
        guests: GuestNames,
        session_tokens: bool,
    ) -> Identity {
        Identity {
            accounts,
            peer,
            guests,
            session_tokens,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the connection is logged in.
    pub fn is_logged_in(&self) -> bool {
        self.state().account.is_some()
    }

    /// The application token's expiry (seconds since the epoch), when
    /// logged in by token.
    pub fn token_exp(&self) -> Option<u64> {
        self.state().token.as_ref().map(|(_, exp)| *exp)
    }

    /// How long until the token logged in with expires, if any.
    pub fn token_left(&self) -> Option<std::time::Duration> {
        let exp = self.token_exp()?;
        let now = crate::hub::event::now_millis() / 1000;
        Some(std::time::Duration::from_secs(exp.saturating_sub(now)))
    }

    /// Checks handshake credentials and returns the account they log in
    /// to (and the token's claims, for a token), before the hub session
    /// exists; [`Identity::connected`] records it once it does.
    ///
    /// Errors: the account's refusal (`invalid_credentials`,
    /// `invalid_token`, `invalid_session`, `rate_limited`…).
    pub async fn authenticate(
        accounts: &Accounts,
        peer: Peer,
        credentials: &Credentials,
    ) -> Result<(StoredAccount, Option<TokenIdentity>), Refusal> {
        Ok(match credentials {
            Credentials::Token(token) => {
                let (account, identity) = accounts.login_with_token(token).await?;
                (account, Some(identity))
            }
            Credentials::Session(token) => (accounts.login_with_session(token).await?, None),
            Credentials::Password { nick, password } => {
                (accounts.login(peer, nick, password).await?, None)
            }
        })
    }

    /// The hub's view of `account`, to open a session logged in.
    pub fn hub_account(account: &StoredAccount) -> LoggedIn {
        logged_in(account)
    }

    /// Records a login made at connection (`authenticate`); `resumed`: the
    /// session token it came with.
    pub fn connected(
        &self,
        account: &StoredAccount,
        token: Option<&TokenIdentity>,
        resumed: Option<&str>,
    ) {
        let mut state = self.state();
        state.account = Some(Account {
            key: account.key.clone(),
            id: account.id.clone(),
        });
        state.token = token.map(|t| (t.sub.clone(), t.exp));
        state.session_token = resumed.map(str::to_string);
    }

    /// Renames to `nick` unless it is registered to another account;
    /// renaming away from one's account logs out of it. `first` is queued
    /// for the session once the name is its own (a protocol's direct
    /// answer). Returns whether the rename logged the connection out.
    ///
    /// Errors: `nick_registered`, the hub's (`nick_in_use`, `muted`…).
    pub async fn rename(
        &self,
        session: &Session,
        nick: &str,
        first: Option<Arc<Event>>,
    ) -> Result<bool, Refusal> {
        let own = self.state().account.as_ref().map(|a| a.key.clone());
        self.accounts.may_take(nick, own.as_deref()).await?;
        session.rename_with(nick, first).await?;
        let key = names::nick_key(nick);
        if own.is_some_and(|own| own != key) {
            self.forget().await;
            return Ok(true);
        }
        Ok(false)
    }

    /// Registers the session's nickname and logs in to it.
    ///
    /// Errors: `invalid_nick` (a guest name: choose one first),
    /// `already_registered`, `bad_password`, `insecure_connection`.
    pub async fn register(&self, session: &Session, password: &str) -> Result<LoginDone, Refusal> {
        let nick = session.nick()?;
        if names::validate_nick(&nick).is_err() {
            return Err(
                HubError::InvalidNick("choose a nickname first, then register it".into()).into(),
            );
        }
        let account = self.accounts.register(self.peer, &nick, password).await?;
        session.set_logged_in(logged_in(&account));
        self.logged_in_as(&account, None).await;
        Ok(LoginDone {
            nick: nick.to_string(),
            session_token: self.new_session_token(&account.key).await,
        })
    }

    /// Logs in to the account of `nick` (default: the session's nickname).
    ///
    /// Errors: `invalid_credentials`, `rate_limited`, `insecure_connection`,
    /// the hub's (`nick_in_use`, `banned`…).
    pub async fn login(
        &self,
        session: &Session,
        nick: Option<&str>,
        password: &str,
    ) -> Result<LoginDone, Refusal> {
        let current = session.nick()?;
        let account = self
            .accounts
            .login(self.peer, nick.unwrap_or(&current), password)
            .await?;
        self.switch_to(session, &account).await?;
        self.logged_in_as(&account, None).await;
        Ok(LoginDone {
            nick: account.name.clone(),
            session_token: self.new_session_token(&account.key).await,
        })
    }

    /// Logs in with an application token, or, logged in already, takes a
    /// new token of the same subject (a refresh: only the expiry changes).
    /// A token of anyone else on a logged-in connection is refused: one
    /// connection does not turn into another person.
    ///
    /// Errors: `invalid_token`, `tokens_disabled`, `nick_registered`,
    /// `already_logged_in`.
    pub async fn token(&self, session: &Session, token: &str) -> Result<TokenDone, Refusal> {
        let (account, identity) = self.accounts.login_with_token(token).await?;
        let (current_id, current_sub) = {
            let state = self.state();
            (
                state.account.as_ref().map(|a| a.id.clone()),
                state.token.as_ref().map(|(sub, _)| sub.clone()),
            )
        };
        if let Some(current_id) = current_id {
            if current_id != account.id || current_sub.as_deref() != Some(&identity.sub) {
                return Err(Refusal::new(
                    "already_logged_in",
                    "this connection is logged in as someone else: log out first".into(),
                ));
            }
            self.state().token = Some((identity.sub.clone(), identity.exp));
            return Ok(TokenDone {
                nick: account.name,
                exp: identity.exp,
                rooms: Vec::new(),
                refreshed: true,
            });
        }
        self.switch_to(session, &account).await?;
        self.logged_in_as(&account, Some(&identity)).await;
        Ok(TokenDone {
            nick: account.name,
            exp: identity.exp,
            rooms: identity.rooms,
            refreshed: false,
        })
    }

    /// A new token for the subject logged in by token (Socket.IO's
    /// `refresh`).
    ///
    /// Errors: `not_logged_in` (not by token), `invalid_token` (another
    /// user's, or invalid).
    pub async fn refresh(&self, token: &str) -> Result<u64, Refusal> {
        let Some((sub, _)) = self.state().token.clone() else {
            return Err(Refusal::new(
                "not_logged_in",
                "you did not log in with a token".into(),
            ));
        };
        let (_, identity) = self.accounts.login_with_token(token).await?;
        if identity.sub != sub {
            return Err(
                AccountError::InvalidToken(TokenError("it is another user's".into())).into(),
            );
        }
        self.state().token = Some((sub, identity.exp));
        Ok(identity.exp)
    }

    /// Logs out. Returns the guest name taken, when the account's other
    /// sessions keep its nickname (a guest cannot share it).
    ///
    /// Errors: `not_logged_in`; `nick_in_use` when every guest name is taken.
    pub async fn logout(&self, session: &Session) -> Result<Option<Arc<str>>, Refusal> {
        if !self.is_logged_in() {
            return Err(AccountError::NotLoggedIn.into());
        }
        let renamed = session.log_out(self.guests.names()).await?;
        self.forget().await;
        Ok(renamed)
    }

    /// Changes the password; every session token of the account ends.
    /// Returns a new session token for this client (when the transport
    /// uses them).
    ///
    /// Errors: `not_logged_in`, `invalid_credentials`, `bad_password`.
    pub async fn change_password(
        &self,
        session: &Session,
        old: &str,
        new: &str,
    ) -> Result<Option<String>, Refusal> {
        let key = self.own_key()?;
        let nick = session.nick()?;
        self.accounts
            .change_password(self.peer, &nick, old, new)
            .await?;
        Ok(self.new_session_token(&key).await)
    }

    /// Deletes the account one is logged in to (refused while other
    /// devices are logged in to it); the session becomes a guest.
    ///
    /// Errors: `not_logged_in`, `other_sessions`, `invalid_credentials`.
    pub async fn unregister(&self, session: &Session, password: &str) -> Result<String, Refusal> {
        self.own_key()?;
        let nick = session.nick()?.to_string();
        session.only_device()?;
        self.accounts.unregister(self.peer, &nick, password).await?;
        self.state().session_token = None;
        self.forget().await;
        session.log_out(self.guests.names()).await?;
        Ok(nick)
    }

    /// What is known of `nick`.
    ///
    /// Errors: `accounts_unavailable`.
    pub async fn whois(&self, session: &Session, nick: &str) -> Result<Whois, Refusal> {
        Ok(self.accounts.whois(session.hub(), nick).await?)
    }

    /// Takes the account's nickname and marks the session logged in to it.
    async fn switch_to(&self, session: &Session, account: &StoredAccount) -> Result<(), Refusal> {
        session.log_in_as(&account.name, logged_in(account)).await?;
        Ok(())
    }

    /// Records the login; ends the session token of an earlier login.
    async fn logged_in_as(&self, account: &StoredAccount, token: Option<&TokenIdentity>) {
        self.end_session_token().await;
        let mut state = self.state();
        state.account = Some(Account {
            key: account.key.clone(),
            id: account.id.clone(),
        });
        state.token = token.map(|t| (t.sub.clone(), t.exp));
    }

    /// Forgets the login (and ends its session token).
    async fn forget(&self) {
        self.end_session_token().await;
        let mut state = self.state();
        state.account = None;
        state.token = None;
    }

    fn own_key(&self) -> Result<String, Refusal> {
        self.state()
            .account
            .as_ref()
            .map(|a| a.key.clone())
            .ok_or_else(|| AccountError::NotLoggedIn.into())
    }

    /// A new session token for account `key`, kept to be ended at logout.
    async fn new_session_token(&self, key: &str) -> Option<String> {
        if !self.session_tokens {
            return None;
        }
        let token = self.accounts.issue_session(key).await;
        self.state().session_token.clone_from(&token);
        token
    }

    async fn end_session_token(&self) {
        let ended = {
            let mut state = self.state();
            let token = state.session_token.take();
            token.zip(state.account.as_ref().map(|a| a.key.clone()))
        };
        if let Some((token, key)) = ended {
            self.accounts.end_session(&key, &token).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn handshake_credentials_are_all_or_nothing() {
        let read = |v: Value| Credentials::from_auth(&v);
        assert_eq!(read(Value::Null), Ok(None));
        assert_eq!(read(json!({})), Ok(None));
        assert_eq!(read(json!({"vocabulary": "x"})), Ok(None));
        assert_eq!(
            read(json!({"nick": "a", "password": "b"})),
            Ok(Some(Credentials::Password {
                nick: "a".into(),
                password: "b".into()
            }))
        );
        assert_eq!(
            read(json!({"token": "t"})),
            Ok(Some(Credentials::Token("t".into())))
        );
        for bad in [
            json!(42),
            json!("token"),
            json!({"nick": "a"}),
            json!({"password": "b"}),
            json!({"token": 5}),
            json!({"session": {"a": 1}}),
            json!({"token": "t", "session": "s"}),
            json!({"nick": "a", "password": 7}),
        ] {
            let refused = read(bad.clone()).unwrap_err();
            assert_eq!(refused.code, "bad_credentials", "{bad}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_auth_never_panics(text in "\\PC{0,200}") {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let _ = Credentials::from_auth(&value);
            }
        }
    }
}
