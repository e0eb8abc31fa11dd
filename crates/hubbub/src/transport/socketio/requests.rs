//! Client requests: payload checks, the hub call, and the `{ok}` /
//! `{error}` answer (in the acknowledgement the client asked for, or an
//! `error` event when it did not ask for one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::OwnedSemaphorePermit;

use super::account;
use super::events::stored_json;
use super::{packet, Connection, Socket, SocketIoTransport};
use crate::client::{Command, Reply};
use crate::hub::{names, Event, EventKind, HubError, MembersQuery, Submitted};
use crate::store::PageQuery;
use crate::transport::engineio;

/// Typing starts relayed at most this often per socket and room.
const TYPING_INTERVAL: Duration = Duration::from_secs(1);

/// One EVENT from the client: its name, first argument, and the
/// acknowledgement id it asked for.
#[derive(Debug)]
pub(crate) struct Request {
    pub name: String,
    pub data: Value,
    pub ack: Option<u64>,
}

/// A refused request, as sent to the client.
#[derive(Debug)]
pub(crate) struct RequestError {
    code: &'static str,
    message: String,
}

impl RequestError {
    pub(crate) fn new(code: &'static str, message: String) -> RequestError {
        RequestError { code, message }
    }

    fn bad_request(message: &str) -> RequestError {
        RequestError::new("bad_request", message.to_string())
    }
}

pub(crate) type Answer = Result<Value, RequestError>;

/// What a handler produced: an answer now, or a message on its way to
/// being committed, answered when it is (so a socket can have several in
/// flight, and group commit can batch them).
enum Outcome {
    Done(Answer),
    Committing(Submitted, OwnedSemaphorePermit),
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Outcome {
        Outcome::Done(answer)
    }
}

impl From<Result<Outcome, RequestError>> for Outcome {
    fn from(result: Result<Outcome, RequestError>) -> Outcome {
        result.unwrap_or_else(|e| Outcome::Done(Err(e)))
    }
}

/// Messages one socket may have waiting for their commit.
pub(crate) const MAX_IN_FLIGHT: usize = crate::client::MAX_IN_FLIGHT;

/// Runs one request and answers it.
pub(crate) async fn handle(
    transport: &SocketIoTransport,
    session: &Arc<engineio::Session<Socket>>,
    conn: Arc<Connection>,
    request: Request,
) {
    let Request { name, data, ack } = request;
    // Presence changes wait for the messages in flight in the client core
    // (`Connection::apply`), which every request that renames, logs in or
    // out, joins or leaves goes through.
    let outcome: Outcome = match name.as_str() {
        "set nickname" => set_nickname(conn, data).await.into(),
        "join" => join(conn, data).await.into(),
        "leave" => leave(conn, data).await.into(),
        "rooms" => rooms(conn, data).await.into(),
        "members" => members(conn, data).await.into(),
        "message" => message(conn, data).await.into(),
        "chat" => chat(conn, data).await.into(),
        "private" => private(conn, data).await.into(),
        "typing" => typing(conn, data).await.into(),
        "history" => history(conn, data).await.into(),
        "register" | "login" | "logout" | "password" | "unregister" | "whois" | "refresh" => {
            account::request(conn, &name, data).await.into()
        }
        other => match super::moderation::request(other, &data) {
            Some(Ok(request)) => super::moderation::act(conn, request).await.into(),
            Some(Err(e)) => Outcome::Done(Err(e)),
            None => Outcome::Done(Err(RequestError::new(
                "unknown_event",
                format!("unknown event {name:?}"),
            ))),
        },
    };
    match outcome {
        Outcome::Done(answer) => respond(transport, session, ack, answer),
        Outcome::Committing(submitted, permit) => {
            let transport = transport.clone();
            let session = session.clone();
            tokio::spawn(async move {
                let answer = submitted
                    .committed()
                    .await
                    .map(|p| json!({ "id": p.id, "room": p.room, "ts": p.ts }))
                    .map_err(RequestError::from);
                respond(&transport, &session, ack, answer);
                drop(permit);
            });
        }
    }
}

fn respond(
    transport: &SocketIoTransport,
    session: &engineio::Session<Socket>,
    ack: Option<u64>,
    answer: Answer,
) {
    match (answer, ack) {
        (Ok(value), Some(id)) => {
            let ack = packet::ack_message(id, &json!({ "ok": value }).to_string());
            // What a request returns costs flood budget too (a history
            // page, a long room list), not only the request itself.
            transport.charge(session, ack.len());
            transport.send(session, ack);
        }
        (Ok(_), None) => {}
        (Err(e), ack) => transport.refuse(session, ack, e.code, &e.message),
    }
}

/// `{room, count, members, logged_in?, next?}`: a page of the members,
/// how many users the room has, `logged_in` (the page's members logged
/// in to their accounts) only when there are some, and `next` (the
/// `after` of the next page) only when more follow.
fn members_json(room: &crate::hub::RoomMembers) -> Value {
    let mut answer = json!({ "room": room.name, "count": room.count, "members": room.members });
    if !room.logged_in.is_empty() {
        answer["logged_in"] = json!(room.logged_in);
    }
    if let Some(next) = &room.next {
        answer["next"] = json!(next);
    }
    answer
}

/// A string payload, or the string field `key` of an object payload.
pub(crate) fn string_arg<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.as_str().or_else(|| data.get(key)?.as_str())
}

fn room_arg(data: &Value) -> Result<&str, RequestError> {
    string_arg(data, "room").ok_or_else(|| RequestError::bad_request("expected {room} or \"ROOM\""))
}

/// An optional `room` field; present but not a string is an error.
fn optional_room(data: &Value) -> Result<Option<&str>, RequestError> {
    match data.get("room") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(room)) => Ok(Some(room)),
        Some(_) => Err(RequestError::bad_request("room must be a string")),
    }
}

fn text_arg<'a>(conn: &Connection, data: &'a Value, key: &str) -> Result<&'a str, RequestError> {
    let text = data
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RequestError::bad_request(&format!("expected {{{key}: string}}")))?;
    names::validate_text(text, conn.settings.max_text_bytes)?;
    Ok(text)
}

async fn set_nickname(conn: Arc<Connection>, data: Value) -> Answer {
    let nick = string_arg(&data, "nick")
        .ok_or_else(|| RequestError::bad_request("expected \"NAME\" or {nick}"))?;
    // The seed's answer, an event with no arguments, ahead of the room's
    // `renamed` and of the acknowledgement.
    let ready = packet::event_message("nickname ready", "");
    let ready = Event::new(EventKind::Wire {
        bytes: ready.into(),
    });
    conn.apply(Command::Rename {
        nick,
        first: Some(ready),
    })
    .await?;
    Ok(json!({ "nick": nick }))
}

async fn join(conn: Arc<Connection>, data: Value) -> Answer {
    let since = match data.get("since") {
        None | Some(Value::Null) => None,
        Some(since) => Some(
            since
                .as_u64()
                .ok_or_else(|| RequestError::bad_request("since must be a message id"))?,
        ),
    };
    let command = Command::Join {
        room: room_arg(&data)?,
        since,
        alone: false,
    };
    let Reply::Joined { members, last_id } = conn.apply(command).await? else {
        return Err(RequestError::bad_request("join answered otherwise"));
    };
    let mut answer = members_json(&members);
    answer["last_id"] = json!(last_id);
    Ok(answer)
}

async fn leave(conn: Arc<Connection>, data: Value) -> Answer {
    let Reply::Parted(room) = conn
        .apply(Command::Part {
            room: room_arg(&data)?,
        })
        .await?
    else {
        return Err(RequestError::bad_request("leave answered otherwise"));
    };
    if let Ok(mut sent) = conn.typing_sent.lock() {
        sent.remove(names::fold(&room).as_str());
    }
    Ok(json!({ "room": room }))
}

async fn rooms(conn: Arc<Connection>, _: Value) -> Answer {
    let rooms: Vec<_> = conn
        .session
        .hub()
        .rooms()
        .rooms
        .into_iter()
        .map(|r| match &r.topic {
            Some(topic) => json!({ "name": r.name, "members": r.members, "topic": topic }),
            None => json!({ "name": r.name, "members": r.members }),
        })
        .collect();
    Ok(Value::Array(rooms))
}

/// `members {room?, after?, limit?}` (or `"ROOM"`): a page of a room's
/// members (default: the current room), `limit` of them (default 200,
/// at most 1000) sorted after nickname `after`, from [`members_json`].
async fn members(conn: Arc<Connection>, data: Value) -> Answer {
    let room = match string_arg(&data, "room") {
        Some(room) => Some(room),
        None if data.is_null() || data.get("room").is_none() => None,
        None => return Err(RequestError::bad_request("room must be a string")),
    };
    let after = match data.get("after") {
        None | Some(Value::Null) => None,
        Some(Value::String(after)) => Some(after.clone()),
        Some(_) => return Err(RequestError::bad_request("after must be a nickname")),
    };
    let limit = match data.get("limit") {
        None | Some(Value::Null) => 0,
        Some(limit) => match limit.as_u64() {
            Some(n @ 1..) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => return Err(RequestError::bad_request("limit must be a positive number")),
        },
    };
    let query = MembersQuery { after, limit };
    match conn.apply(Command::Members { room, query }).await? {
        Reply::Members(room) => Ok(members_json(&room)),
        _ => Err(RequestError::bad_request("members answered otherwise")),
    }
}

async fn message(conn: Arc<Connection>, data: Value) -> Result<Outcome, RequestError> {
    let text = text_arg(&conn, &data, "text")?;
    if text.trim().is_empty() {
        return Err(HubError::EmptyMessage.into());
    }
    let action = match data.get("action") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(action)) => *action,
        Some(_) => return Err(RequestError::bad_request("action must be a boolean")),
    };
    let room = optional_room(&data)?;
    submit(&conn, room, text, action).await
}

/// Hands a message to the hub once an in-flight slot is free.
async fn submit(
    conn: &Connection,
    room: Option<&str>,
    text: &str,
    action: bool,
) -> Result<Outcome, RequestError> {
    let permit = conn
        .in_flight
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| RequestError::from(HubError::SessionEnded))?;
    crate::telemetry::message_received(crate::telemetry::Transport::SocketIo);
    let submitted = conn.session.submit(room, text, action).await?;
    Ok(Outcome::Committing(submitted, permit))
}

/// The seed's `chat` {message}: to the current room.
async fn chat(conn: Arc<Connection>, data: Value) -> Result<Outcome, RequestError> {
    let text = text_arg(&conn, &data, "message")?;
    submit(&conn, None, text, false).await
}

async fn private(conn: Arc<Connection>, data: Value) -> Answer {
    let to = data
        .get("to")
        .and_then(Value::as_str)
        .ok_or_else(|| RequestError::bad_request("expected {to, text}"))?;
    let text = text_arg(&conn, &data, "text")?;
    crate::telemetry::message_received(crate::telemetry::Transport::SocketIo);
    let (to, ts) = conn.session.private(to, text).await?;
    Ok(json!({ "to": to, "ts": ts }))
}

/// Scroll-back: `{room?, before?, limit?}` → the newest `limit` (default
/// 50, at most 500) messages before id `before`, oldest first.
async fn history(conn: Arc<Connection>, data: Value) -> Answer {
    let number = |key: &str| match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| RequestError::bad_request(&format!("{key} must be a number"))),
    };
    let before = number("before")?;
    let limit = number("limit")?.unwrap_or(50).clamp(1, 500) as u32;
    let query = PageQuery {
        before,
        after: None,
        limit,
    };
    let command = Command::History {
        room: optional_room(&data)?,
        query,
    };
    let Reply::History {
        room,
        messages,
        complete,
    } = conn.apply(command).await?
    else {
        return Err(RequestError::bad_request("history answered otherwise"));
    };
    let messages: Vec<_> = messages.iter().map(stored_json).collect();
    Ok(json!({ "room": room, "messages": messages, "complete": complete }))
}

async fn typing(conn: Arc<Connection>, data: Value) -> Answer {
    let Some(typing) = data.get("typing").and_then(Value::as_bool) else {
        return Err(RequestError::bad_request("expected {typing: boolean}"));
    };
    let room = match optional_room(&data)? {
        Some(room) => room.to_string(),
        None => conn.session.room_name()?.to_string(),
    };
    // Keyed by the folded name; entries exist only for rooms the hub
    // accepted, so the map is bounded by the rooms the socket is in.
    let key: Arc<str> = names::fold(&names::validate_room(&room)?).into();
    let now = Instant::now();
    let mut sent = conn.typing_sent.lock().unwrap_or_else(|e| e.into_inner());
    if typing
        && sent
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL)
    {
        return Ok(Value::Null);
    }
    conn.session.typing(Some(&room), typing)?;
    if typing {
        sent.insert(key, now);
    } else {
        sent.remove(&key);
    }
    Ok(Value::Null)
}
