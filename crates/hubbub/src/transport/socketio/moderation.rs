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
pub(super) fn request(name: &str, data: &Value) -> Option<Result<Request, RequestError>> {
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
    let required = |key: &'static str| {
        text(key)
            .ok_or_else(|| RequestError::new("bad_request", format!("expected {{{key}: string}}")))
    };
    let room = text("room");
    let role = |op: bool, grant: bool| {
        required("nick").map(|nick| Request::Role {
            room: text("room"),
            nick,
            op,
            grant,
        })
    };
    Some(match name {
        "topic" => Ok(Request::Topic {
            room,
            // `{topic: "…"}` sets, `{topic: null}` or `""` clears, no key shows.
            text: match data.get("topic") {
                None => None,
                Some(Value::Null) => Some(String::new()),
                Some(_) => text("topic"),
            },
        }),
        "kick" => required("nick").map(|nick| Request::Kick {
            room,
            nick,
            reason: text("reason"),
        }),
        "ban" | "mute" => required("mask").map(|mask| Request::Ban {
            room,
            mask,
            duration: text("duration"),
            reason: text("reason"),
            mute: name == "mute",
        }),
        "unban" | "unmute" => required("mask").map(|mask| Request::Unban {
            room,
            mask,
            mute: name == "unmute",
        }),
        "bans" => Ok(Request::Bans { room }),
        "op" => role(true, true),
        "deop" => role(true, false),
        "voice" => role(false, true),
        "devoice" => role(false, false),
        "invite" => required("nick").map(|nick| Request::Invite { room, nick }),
        "mode" => Ok(Request::Mode {
            room,
            change: text("change"),
            arg: text("arg").or_else(|| {
                data.get("arg")
                    .and_then(Value::as_u64)
                    .map(|n| n.to_string())
            }),
        }),
        "modlog" => Ok(Request::Modlog {
            room,
            limit: data
                .get("limit")
                .and_then(Value::as_u64)
                .map_or(20, |n| n.clamp(1, u64::from(MAX_LOG_READ)) as u32),
        }),
        "kline" => required("mask").map(|mask| Request::ServerBan {
            mask,
            duration: text("duration"),
            reason: text("reason"),
        }),
        "unkline" => required("mask").map(|mask| Request::ServerUnban { mask }),
        "klines" => Ok(Request::ServerBans),
        "kill" => required("nick").map(|nick| Request::Kill {
            nick,
            reason: text("reason"),
        }),
        "wall" => required("text").map(|text| Request::Wall { text }),
        _ => return None,
    })
}

/// Carries out a moderation request; the ack is its data.
pub(super) async fn act(conn: Arc<Connection>, request: Request) -> Answer {
    let outcome = conn.moderation.act(&conn.session, request).await?;
    Ok(outcome.data)
}
