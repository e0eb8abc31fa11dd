//! Socket.IO account requests (`register`, `login`, `logout`, `password`,
//! `unregister`, `whois`), answered by acknowledgement like every request;
//! the same rules as the line protocol's commands (`crate::accounts`).

use std::sync::Arc;

use serde_json::{json, Value};

use super::requests::{string_arg, Answer, RequestError};
use super::Connection;
use crate::accounts::AccountError;
use crate::hub::names;

impl From<AccountError> for RequestError {
    fn from(e: AccountError) -> Self {
        RequestError::new(e.code(), e.to_string())
    }
}

fn password_arg<'a>(data: &'a Value, key: &str) -> Result<&'a str, RequestError> {
    data.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RequestError::new("bad_request", format!("expected {{{key}: string}}")))
}

impl Connection {
    fn account(&self) -> Option<String> {
        self.account
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Logged in to account `key` (the hub session is marked already), by
    /// a token when `identity` is given.
    pub(super) fn logged_in_as(&self, key: String, identity: Option<&crate::tokens::Identity>) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) =
            identity.map(|id| (id.sub.clone(), id.exp));
        self.set_account(Some(key));
    }

    /// Records the account this connection is logged in to (the hub
    /// session's flag is set by the hub calls that change it).
    fn set_account(&self, key: Option<String>) {
        if key.is_none() {
            *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
            *self.session_token.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        *self.account.lock().unwrap_or_else(|e| e.into_inner()) = key;
    }

    /// A new session token for account `key`, kept to be ended at logout;
    /// `Value::Null` when none could be issued.
    async fn new_session_token(&self, key: &str) -> Value {
        let token = self.accounts.issue_session(key).await;
        (*self.session_token.lock().unwrap_or_else(|e| e.into_inner())).clone_from(&token);
        token.map_or(Value::Null, Value::String)
    }

    /// Ends the session token this connection holds, if any.
    async fn end_session_token(&self) {
        let token = self
            .session_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Some(token), Some(key)) = (token, self.account()) {
            self.accounts.end_session(&key, &token).await;
        }
    }

    /// Renames to `nick` unless it is registered to another account;
    /// renaming away from one's account logs out of it.
    pub(super) async fn rename_owned(
        &self,
        nick: &str,
        first: Option<Arc<crate::hub::Event>>,
    ) -> Result<(), RequestError> {
        self.accounts
            .may_take(nick, self.account().as_deref())
            .await?;
        let key = names::nick_key(nick);
        self.session.rename_with(nick, first).await?;
        if self.account().is_some_and(|a| a != key) {
            self.set_account(None);
        }
        Ok(())
    }
}

/// `register {password}`: registers the current nickname; answers
/// `{nick, session}` (a session token for the next connection's `auth`).
pub(super) async fn register(conn: Arc<Connection>, data: Value) -> Answer {
    let password = password_arg(&data, "password")?;
    let nick = conn.session.nick()?;
    if names::validate_nick(&nick).is_err() {
        return Err(RequestError::new(
            "invalid_nick",
            "choose a nickname first (set nickname), then register it".into(),
        ));
    }
    conn.accounts.register(conn.peer, &nick, password).await?;
    conn.session.set_logged_in();
    let key = names::nick_key(&nick);
    conn.set_account(Some(key.clone()));
    let session = conn.new_session_token(&key).await;
    Ok(json!({ "nick": nick, "session": session }))
}

/// `login {nick?, password}`: `nick` defaults to the current nickname;
/// answers `{nick, session}` (a session token for the next connection's
/// `auth`).
pub(super) async fn login(conn: Arc<Connection>, data: Value) -> Answer {
    let password = password_arg(&data, "password")?;
    let current = conn.session.nick()?;
    let nick = string_arg(&data, "nick").unwrap_or(&current).to_string();
    let account = conn.accounts.login(conn.peer, &nick, password).await?;
    conn.session.log_in_as(&account.name).await?;
    conn.end_session_token().await;
    conn.set_account(Some(account.key.clone()));
    let session = conn.new_session_token(&account.key).await;
    Ok(json!({ "nick": account.name, "session": session }))
}

/// `logout`: answers `{nick}`, the nickname kept, or the guest name taken
/// when the account's other sessions keep its nickname.
pub(super) async fn logout(conn: Arc<Connection>, _: Value) -> Answer {
    if conn.account().is_none() {
        return Err(AccountError::NotLoggedIn.into());
    }
    conn.session.log_out(conn.guest_names()).await?;
    conn.end_session_token().await;
    conn.set_account(None);
    Ok(json!({ "nick": conn.session.nick()? }))
}

/// `password {old, new}`: every session token of the account ends;
/// answers `{session}`, a new one for this client.
pub(super) async fn password(conn: Arc<Connection>, data: Value) -> Answer {
    let (old, new) = (password_arg(&data, "old")?, password_arg(&data, "new")?);
    if conn.account().is_none() {
        return Err(AccountError::NotLoggedIn.into());
    }
    let nick = conn.session.nick()?;
    conn.accounts
        .change_password(conn.peer, &nick, old, new)
        .await?;
    let session = conn.new_session_token(&names::nick_key(&nick)).await;
    Ok(json!({ "session": session }))
}

/// `unregister {password}`: deletes the account one is logged in to.
pub(super) async fn unregister(conn: Arc<Connection>, data: Value) -> Answer {
    let password = password_arg(&data, "password")?;
    if conn.account().is_none() {
        return Err(AccountError::NotLoggedIn.into());
    }
    let nick = conn.session.nick()?;
    conn.session.only_device()?;
    conn.accounts.unregister(conn.peer, &nick, password).await?;
    conn.session.log_out(conn.guest_names()).await?;
    conn.set_account(None);
    Ok(Value::Null)
}

/// `whois {nick}` or `"NICK"`: `{nick, registered, here, logged_in}`.
pub(super) async fn whois(conn: Arc<Connection>, data: Value) -> Answer {
    let nick = string_arg(&data, "nick")
        .ok_or_else(|| RequestError::new("bad_request", "expected {nick} or \"NICK\"".into()))?;
    let whois = conn.accounts.whois(conn.session.hub(), nick).await?;
    Ok(serde_json::to_value(whois).unwrap_or_default())
}

/// `refresh {token}`: a new token for the same user, before the current
/// one expires.
pub(super) async fn refresh(conn: Arc<Connection>, data: Value) -> Answer {
    let token = password_arg(&data, "token")?;
    let current = conn.token.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some((sub, _)) = current else {
        return Err(RequestError::new(
            "not_logged_in",
            "you did not log in with a token".into(),
        ));
    };
    let (_, identity) = conn.accounts.login_with_token(token).await?;
    if identity.sub != sub {
        return Err(AccountError::InvalidToken(crate::tokens::TokenError(
            "it is another user's".into(),
        ))
        .into());
    }
    *conn.token.lock().unwrap_or_else(|e| e.into_inner()) = Some((sub, identity.exp));
    Ok(json!({ "exp": identity.exp }))
}

use crate::tokens::EXPIRY_WARNING as TOKEN_WARNING;

/// Closes the session when its token expires, unless refreshed meanwhile;
/// warns its client [`TOKEN_WARNING`] before.
pub(super) async fn expire_token(conn: Arc<Connection>) {
    let mut warned_for = 0;
    loop {
        let Some((_, exp)) = conn.token.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return;
        };
        let now = crate::hub::event::now_millis() / 1000;
        if now >= exp {
            conn.session
                .outbox()
                .close(crate::hub::CloseReason::TokenExpired);
            return;
        }
        let left = std::time::Duration::from_secs(exp - now);
        let wait = if left > TOKEN_WARNING {
            left - TOKEN_WARNING
        } else {
            if warned_for != exp {
                warned_for = exp;
                conn.session.error(
                    "token_expiring",
                    format!(
                        "your token expires in {} s; send refresh {{token}} with a new one",
                        left.as_secs()
                    ),
                );
            }
            left
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = conn.session.outbox().closed() => return,
        }
    }
}
