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

    /// Logged in to account `key`, by a token when `identity` is given.
    pub(super) fn logged_in_as(&self, key: String, identity: Option<&crate::tokens::Identity>) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) =
            identity.map(|id| (id.sub.clone(), id.exp));
        self.set_account(Some(key));
    }

    fn set_account(&self, key: Option<String>) {
        self.session.set_logged_in(key.is_some());
        *self.account.lock().unwrap_or_else(|e| e.into_inner()) = key;
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

/// `register {password}`: registers the current nickname.
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
    conn.set_account(Some(names::nick_key(&nick)));
    Ok(json!({ "nick": nick }))
}

/// `login {nick?, password}`: `nick` defaults to the current nickname.
pub(super) async fn login(conn: Arc<Connection>, data: Value) -> Answer {
    let password = password_arg(&data, "password")?;
    let current = conn.session.nick()?;
    let nick = string_arg(&data, "nick").unwrap_or(&current).to_string();
    let account = conn.accounts.login(conn.peer, &nick, password).await?;
    if names::nick_key(&current) != account.key {
        conn.session.rename(&account.name).await?;
    }
    conn.set_account(Some(account.key));
    Ok(json!({ "nick": account.name }))
}

pub(super) async fn logout(conn: Arc<Connection>, _: Value) -> Answer {
    if conn.account().is_none() {
        return Err(AccountError::NotLoggedIn.into());
    }
    conn.set_account(None);
    Ok(Value::Null)
}

/// `password {old, new}`.
pub(super) async fn password(conn: Arc<Connection>, data: Value) -> Answer {
    let (old, new) = (password_arg(&data, "old")?, password_arg(&data, "new")?);
    if conn.account().is_none() {
        return Err(AccountError::NotLoggedIn.into());
    }
    let nick = conn.session.nick()?;
    conn.accounts
        .change_password(conn.peer, &nick, old, new)
        .await?;
    Ok(Value::Null)
}

/// `unregister {password}`: deletes the account one is logged in to.
pub(super) async fn unregister(conn: Arc<Connection>, data: Value) -> Answer {
    let password = password_arg(&data, "password")?;
    if conn.account().is_none() {
        return Err(AccountError::NotLoggedIn.into());
    }
    let nick = conn.session.nick()?;
    conn.accounts.unregister(conn.peer, &nick, password).await?;
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

/// How long before a token expires its holder is warned.
const TOKEN_WARNING: std::time::Duration = std::time::Duration::from_secs(30);

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
