//! Socket.IO moderation requests (`topic`, `kick`, `ban`, `unban`, `mute`,
//! `unmute`, `bans`, `op`, `deop`, `voice`, `devoice`, `invite`, `mode`,
//! `modlog`, and the server operators' `kline`, `unkline`, `klines`,
//! `kill`, `wall`), answered by acknowledgement; the same rules as the
//! line protocol's commands (`crate::moderation`). Every payload is an
//! object; `room` defaults to the socket's current room.

use std::sync::Arc;

use serde_json::Value;

use super::requests::{Answer, RequestError};
use super::Connection;
use crate::moderation::{Request, MAX_LOG_READ};

/// The request named `name`, if it is a moderation request.
///
/// Arguments are typed: a key that is present but not a string (or, for
/// `limit` and `arg`, a number) is `bad_request`, never a default — a
/// `duration: 10` must not become a ban for good.
pub(super) fn request(name: &str, data: &Value) -> Option<Result<Request, RequestError>> {
    if !MODERATION_REQUESTS.contains(&name) {
        return None;
    }
    Some(parse(name, data))
}

/// The requests [`request`] knows.
const MODERATION_REQUESTS: &[&str] = &[
    "topic", "kick", "ban", "mute", "unban", "unmute", "bans", "op", "deop", "voice", "devoice",
    "invite", "mode", "modlog", "kline", "unkline", "klines", "kill", "wall",
];

fn parse(name: &str, data: &Value) -> Result<Request, RequestError> {
    if !(data.is_object() || data.is_null()) {
        return Err(RequestError::new(
            "bad_request",
            format!("{name} takes an object"),
        ));
    }
    let typed = |key: &str| -> Result<Option<String>, RequestError> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(RequestError::new(
                "bad_request",
                format!("{key} must be a string"),
            )),
        }
    };
    let number = |key: &str| -> Result<Option<u64>, RequestError> {
        match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| RequestError::new("bad_request", format!("{key} must be a number"))),
        }
    };
    let text = |key: &str| typed(key);
    let required = |key: &'static str| {
        typed(key)?
            .ok_or_else(|| RequestError::new("bad_request", format!("expected {{{key}: string}}")))
    };
    let room = typed("room")?;
    let role = |op: bool, grant: bool| {
        required("nick").map(|nick| Request::Role {
            room: room.clone(),
            nick,
            op,
            grant,
        })
    };
    Ok(match name {
        "topic" => Request::Topic {
            room,
            // `{topic: "…"}` sets, `{topic: null}` or `""` clears, no key shows.
            text: match data.get("topic") {
                None => None,
                Some(Value::Null) => Some(String::new()),
                Some(_) => text("topic")?,
            },
        },
        "kick" => Request::Kick {
            room,
            nick: required("nick")?,
            reason: text("reason")?,
        },
        "ban" | "mute" => Request::Ban {
            room,
            mask: required("mask")?,
            duration: text("duration")?,
            reason: text("reason")?,
            mute: name == "mute",
        },
        "unban" | "unmute" => Request::Unban {
            room,
            mask: required("mask")?,
            mute: name == "unmute",
        },
        "bans" => Request::Bans { room },
        "op" => role(true, true)?,
        "deop" => role(true, false)?,
        "voice" => role(false, true)?,
        "devoice" => role(false, false)?,
        "invite" => Request::Invite {
            room,
            nick: required("nick")?,
        },
        "mode" => Request::Mode {
            room,
            change: text("change")?,
            arg: match data.get("arg") {
                Some(Value::Number(_)) => number("arg")?.map(|n| n.to_string()),
                _ => text("arg")?,
            },
        },
        "modlog" => Request::Modlog {
            room,
            limit: number("limit")?.map_or(20, |n| n.clamp(1, u64::from(MAX_LOG_READ)) as u32),
        },
        "kline" => Request::ServerBan {
            mask: required("mask")?,
            duration: text("duration")?,
            reason: text("reason")?,
        },
        "unkline" => Request::ServerUnban {
            mask: required("mask")?,
        },
        "klines" => Request::ServerBans,
        "kill" => Request::Kill {
            nick: required("nick")?,
            reason: text("reason")?,
        },
        "wall" => Request::Wall {
            text: required("text")?,
        },
        _ => {
            return Err(RequestError::new(
                "bad_request",
                format!("unknown request {name}"),
            ))
        }
    })
}

/// Carries out a moderation request; the ack is its data.
pub(super) async fn act(conn: Arc<Connection>, request: Request) -> Answer {
    match conn
        .apply(crate::client::Command::Moderate(request))
        .await?
    {
        crate::client::Reply::Moderated(outcome) => Ok(outcome.data),
        _ => Ok(Value::Null),
    }
}
