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
        let key = names::nick_key(nick);
        if self.account().as_deref() != Some(key.as_str()) {
            if let Some(account) = self.accounts.find(nick).await? {
                return Err(AccountError::NickRegistered(account.name).into());
            }
        }
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
    conn.accounts.register(conn.ip, &nick, password).await?;
    conn.set_account(Some(names::nick_key(&nick)));
    Ok(json!({ "nick": nick }))
}

/// `login {nick?, password}`: `nick` defaults to the current nickname.
pub(super) async fn login(conn: Arc<Connection>, data: Value) -> Answer {
    let password = password_arg(&data, "password")?;
    let current = conn.session.nick()?;
    let nick = string_arg(&data, "nick").unwrap_or(&current).to_string();
    let account = conn.accounts.login(conn.ip, &nick, password).await?;
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
        .change_password(conn.ip, &nick, old, new)
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
    conn.accounts.unregister(conn.ip, &nick, password).await?;
    conn.set_account(None);
    Ok(Value::Null)
}

/// `whois {nick}` or `"NICK"`: `{nick, registered, here, logged_in}`.
pub(super) async fn whois(conn: Arc<Connection>, data: Value) -> Answer {
    let nick = string_arg(&data, "nick")
        .ok_or_else(|| RequestError::new("bad_request", "expected {nick} or \"NICK\"".into()))?;
    let registered = conn.accounts.find(nick).await?;
    let here = conn.session.hub().whois(nick);
    let name = here
        .as_ref()
        .map(|(name, _)| name.to_string())
        .or_else(|| registered.as_ref().map(|a| a.name.clone()))
        .unwrap_or_else(|| nick.to_string());
    Ok(json!({
        "nick": name,
        "registered": registered.is_some(),
        "here": here.is_some(),
        "logged_in": here.is_some_and(|(_, logged_in)| logged_in),
    }))
}
