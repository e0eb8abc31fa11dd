//! Socket.IO account requests (`register`, `login`, `logout`, `password`,
//! `unregister`, `whois`, `refresh`), answered by acknowledgement like
//! every request: parsed here into the client core's commands
//! (`crate::client`), which carry them out for every transport, and
//! rendered as JSON. Also the watch that ends a session when its
//! application token expires.

use std::sync::Arc;

use serde_json::{json, Value};

use super::requests::{string_arg, Answer, RequestError};
use super::Connection;
use crate::client::{Command, Refusal, Reply};

impl From<Refusal> for RequestError {
    fn from(e: Refusal) -> Self {
        RequestError::new(e.code, e.message)
    }
}

fn password_arg<'a>(data: &'a Value, key: &str) -> Result<&'a str, RequestError> {
    data.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RequestError::new("bad_request", format!("expected {{{key}: string}}")))
}

/// Carries out an account request; the answer is the ack's data.
pub(super) async fn request(conn: Arc<Connection>, name: &str, data: Value) -> Answer {
    let command = match name {
        "register" => Command::Register {
            password: password_arg(&data, "password")?,
        },
        "login" => Command::Login {
            nick: match data.get("nick") {
                None | Some(Value::Null) => None,
                Some(Value::String(nick)) => Some(nick.as_str()),
                Some(_) => {
                    return Err(RequestError::new(
                        "bad_request",
                        "nick must be a string".into(),
                    ))
                }
            },
            password: password_arg(&data, "password")?,
        },
        "logout" => Command::Logout,
        "password" => Command::Password {
            old: password_arg(&data, "old")?,
            new: password_arg(&data, "new")?,
        },
        "unregister" => Command::Unregister {
            password: password_arg(&data, "password")?,
        },
        "whois" => Command::Whois {
            nick: string_arg(&data, "nick").ok_or_else(|| {
                RequestError::new("bad_request", "expected {nick} or \"NICK\"".into())
            })?,
        },
        "refresh" => Command::Refresh {
            token: password_arg(&data, "token")?,
        },
        _ => {
            return Err(RequestError::new(
                "unknown_event",
                format!("unknown event {name:?}"),
            ))
        }
    };
    let reply = conn.apply(command).await?;
    Ok(match reply {
        Reply::Registered(done) | Reply::LoggedIn(done) => {
            json!({ "nick": done.nick, "session": done.session_token })
        }
        Reply::LoggedOut(_) => json!({ "nick": conn.session.nick()? }),
        Reply::PasswordChanged(session) => json!({ "session": session }),
        Reply::Unregistered(_) => Value::Null,
        Reply::Whois(whois) => serde_json::to_value(whois).unwrap_or_default(),
        Reply::Refreshed(exp) => json!({ "exp": exp }),
        _ => Value::Null,
    })
}

use crate::tokens::EXPIRY_WARNING as TOKEN_WARNING;

/// Closes the session when its token expires, unless refreshed meanwhile;
/// warns its client [`TOKEN_WARNING`] before.
pub(super) async fn expire_token(conn: Arc<Connection>) {
    let mut warned_for = 0;
    loop {
        let Some(exp) = conn.client.identity.token_exp() else {
            return;
        };
        if conn.is_finished() {
            // The client left the namespace; its Engine.IO session (and a
            // later CONNECT's session on it) is no longer this token's.
            return;
        }
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
