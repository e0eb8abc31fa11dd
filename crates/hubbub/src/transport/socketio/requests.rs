//! Client requests: payload checks, flood control, the hub call, and the
//! `{ok}` / `{error}` answer (by acknowledgement, or an `error` event when
//! the client did not ask for one).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::events::{error_body, stored_json};
use super::{AckWanted, Connection};
use crate::hub::{names, CloseReason, HubError, Submitted};
use crate::limits::FloodVerdict;
use crate::store::PageQuery;

/// Typing starts relayed at most this often per socket and room.
const TYPING_INTERVAL: Duration = Duration::from_secs(1);

/// A refused request, as sent to the client.
#[derive(Debug)]
pub(crate) struct RequestError {
    code: &'static str,
    message: String,
}

impl RequestError {
    fn bad_request(message: &str) -> RequestError {
        RequestError {
            code: "bad_request",
            message: message.to_string(),
        }
    }
}

impl From<HubError> for RequestError {
    fn from(e: HubError) -> Self {
        RequestError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

type Answer = Result<Value, RequestError>;

/// What a handler produced: an answer now, or a message on its way to
/// being committed, answered when it is (so a socket can have several in
/// flight, and group commit can batch them).
pub(crate) enum Outcome {
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
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// Registers every request handler on `socket`.
pub(crate) fn register(socket: &SocketRef, conn: &Arc<Connection>) {
    on(socket, conn, "set nickname", set_nickname);
    on(socket, conn, "join", join);
    on(socket, conn, "leave", leave);
    on(socket, conn, "rooms", rooms);
    on(socket, conn, "members", members);
    on(socket, conn, "message", message);
    on(socket, conn, "chat", chat);
    on(socket, conn, "private", private);
    on(socket, conn, "typing", typing);
    on(socket, conn, "history", history);
    // Unknown events spend flood budget like any request: a client
    // spraying them gets `flood` errors, then is disconnected.
    let fallback = conn.clone();
    socket.on_fallback(
        move |socket: SocketRef,
              event: socketioxide::extract::Event,
              AckWanted(wanted): AckWanted,
              ack: AckSender| {
            let error = admit(&fallback).err().unwrap_or_else(|| RequestError {
                code: "unknown_event",
                message: format!("unknown event {:?}", event.0),
            });
            respond(&socket, ack, wanted, Err(error));
            async {}
        },
    );
}

/// Wires `handler` to `event`, with flood control and the answer around it.
fn on<F, Fut>(socket: &SocketRef, conn: &Arc<Connection>, event: &'static str, handler: F)
where
    F: Fn(Arc<Connection>, SocketRef, Value) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Into<Outcome>,
{
    let conn = conn.clone();
    socket.on(
        event,
        move |socket: SocketRef,
              TryData(data): TryData<Value>,
              AckWanted(wanted): AckWanted,
              ack: AckSender| {
            // socketioxide calls this synchronously in packet order, then
            // spawns the returned future; queueing the work here, for the
            // connection's one worker, keeps a socket's requests in order.
            let admitted = admit(&conn).and_then(|()| {
                reserve_slot(&conn.jobs).ok_or_else(|| RequestError {
                    code: "flood",
                    message: format!("more than {MAX_QUEUED_REQUESTS} requests waiting; slow down"),
                })
            });
            match admitted {
                Err(e) => respond(&socket, ack, wanted, Err(e)),
                Ok(slot) => {
                    let conn = conn.clone();
                    let handler = handler.clone();
                    slot.send(Box::pin(async move {
                        let data = data.unwrap_or(Value::Null);
                        match handler(conn, socket.clone(), data).await.into() {
                            Outcome::Done(answer) => respond(&socket, ack, wanted, answer),
                            Outcome::Committing(submitted, permit) => {
                                tokio::spawn(async move {
                                    let answer = submitted
                                        .committed()
                                        .await
                                        .map(|p| json!({ "id": p.id, "room": p.room, "ts": p.ts }))
                                        .map_err(RequestError::from);
                                    respond(&socket, ack, wanted, answer);
                                    drop(permit);
                                });
                            }
                        }
                    }));
                }
            }
            async {}
        },
    );
}

/// A place in the socket's request queue. When the queue is full, this
/// blocks the thread reading this socket (up to [`QUEUE_WAIT`]) instead of
/// refusing: socketioxide offers no other way to stop reading one socket,
/// and blocking is what makes a fast sender slow down (its WebSocket stops
/// being read, TCP pushes back) rather than lose messages. Only on the
/// multi-threaded runtime (the server's): tokio moves this worker's other
/// tasks elsewhere meanwhile. On a single-threaded runtime, or past the
/// wait, the request is refused with `flood`.
fn reserve_slot(jobs: &mpsc::Sender<Job>) -> Option<mpsc::Permit<'_, Job>> {
    if let Ok(slot) = jobs.try_reserve() {
        return Some(slot);
    }
    let handle = tokio::runtime::Handle::try_current().ok()?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return None;
    }
    tokio::task::block_in_place(|| {
        handle
            .block_on(tokio::time::timeout(QUEUE_WAIT, jobs.reserve()))
            .ok()?
            .ok()
    })
}

/// The longest a full request queue holds a socket's reading.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A queued request: the handler call and its answer.
pub(crate) type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Requests one socket may have waiting for its worker; each is at most one
/// `max_payload`. Past this, reading the socket waits for a free place (see
/// [`reserve_slot`]), and only after [`QUEUE_WAIT`] is a request refused
/// with a `flood` error.
pub(crate) const MAX_QUEUED_REQUESTS: usize = 256;

/// Runs a socket's requests one at a time, in arrival order.
pub(crate) async fn worker(mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.recv().await {
        job.await;
    }
}

fn respond(socket: &SocketRef, ack: AckSender, wanted: bool, answer: Answer) {
    let _ = match answer {
        Ok(value) => ack.send(&json!({ "ok": value })),
        Err(e) if wanted => ack.send(&json!({ "error": error_body(e.code, &e.message) })),
        Err(e) => socket.emit("error", &error_body(e.code, &e.message)),
    };
}

/// Flood control: one token per request, as for lines.
fn admit(conn: &Connection) -> Result<(), RequestError> {
    let verdict = conn
        .flood
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(Instant::now());
    let stats = conn.session.hub().stats();
    match verdict {
        FloodVerdict::Accept => return Ok(()),
        FloodVerdict::Reject { .. } => {
            stats.flood_rejected_lines.fetch_add(1, Ordering::Relaxed);
            crate::telemetry::flood_refused(crate::telemetry::Transport::SocketIo);
        }
        FloodVerdict::Disconnect => {
            stats.flood_disconnects.fetch_add(1, Ordering::Relaxed);
            conn.session.outbox().close(CloseReason::Flooding);
        }
    }
    Err(RequestError {
        code: "flood",
        message: "you are sending too fast; requests are dropped until you slow down".into(),
    })
}

/// A string payload, or the string field `key` of an object payload.
fn string_arg<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
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

async fn set_nickname(conn: Arc<Connection>, socket: SocketRef, data: Value) -> Answer {
    let nick = string_arg(&data, "nick")
        .ok_or_else(|| RequestError::bad_request("expected \"NAME\" or {nick}"))?;
    conn.session.rename(nick).await?;
    // An empty tuple: the event with no arguments, as the seed sends it.
    let _ = socket.emit("nickname ready", &[(); 0]);
    Ok(json!({ "nick": nick }))
}

async fn join(conn: Arc<Connection>, _: SocketRef, data: Value) -> Answer {
    let since = match data.get("since") {
        None | Some(Value::Null) => None,
        Some(since) => Some(
            since
                .as_u64()
                .ok_or_else(|| RequestError::bad_request("since must be a message id"))?,
        ),
    };
    let (room, last_id) = conn.session.enter(room_arg(&data)?, since)?;
    Ok(json!({ "room": room.name, "members": room.members, "last_id": last_id }))
}

async fn leave(conn: Arc<Connection>, _: SocketRef, data: Value) -> Answer {
    let room = conn.session.exit(room_arg(&data)?)?;
    if let Ok(mut sent) = conn.typing_sent.lock() {
        sent.remove(names::fold(&room).as_str());
    }
    Ok(json!({ "room": room }))
}

async fn rooms(conn: Arc<Connection>, _: SocketRef, _: Value) -> Answer {
    let rooms: Vec<_> = conn
        .session
        .hub()
        .rooms()
        .rooms
        .into_iter()
        .map(|r| json!({ "name": r.name, "members": r.members }))
        .collect();
    Ok(Value::Array(rooms))
}

async fn members(conn: Arc<Connection>, _: SocketRef, data: Value) -> Answer {
    let room = match string_arg(&data, "room") {
        Some(room) => conn.session.hub().members(room)?,
        None if data.is_null() || data.get("room").is_none() => conn.session.room()?,
        None => return Err(RequestError::bad_request("room must be a string")),
    };
    Ok(json!({ "room": room.name, "members": room.members }))
}

async fn message(
    conn: Arc<Connection>,
    _: SocketRef,
    data: Value,
) -> Result<Outcome, RequestError> {
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
async fn chat(conn: Arc<Connection>, _: SocketRef, data: Value) -> Result<Outcome, RequestError> {
    let text = text_arg(&conn, &data, "message")?;
    submit(&conn, None, text, false).await
}

async fn private(conn: Arc<Connection>, _: SocketRef, data: Value) -> Answer {
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
async fn history(conn: Arc<Connection>, _: SocketRef, data: Value) -> Answer {
    let number = |key: &str| match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| RequestError::bad_request(&format!("{key} must be a number"))),
    };
    let before = number("before")?;
    let limit = number("limit")?.unwrap_or(50).clamp(1, 500) as u32;
    let room = match optional_room(&data)? {
        Some(room) => room.to_string(),
        None => conn.session.room()?.name.to_string(),
    };
    let query = PageQuery {
        before,
        after: None,
        limit,
    };
    let (name, messages, complete) = conn.session.hub().history(&room, query).await?;
    let messages: Vec<_> = messages.iter().map(stored_json).collect();
    Ok(json!({ "room": name, "messages": messages, "complete": complete }))
}

async fn typing(conn: Arc<Connection>, _: SocketRef, data: Value) -> Answer {
    let Some(typing) = data.get("typing").and_then(Value::as_bool) else {
        return Err(RequestError::bad_request("expected {typing: boolean}"));
    };
    let room = match optional_room(&data)? {
        Some(room) => room.to_string(),
        None => conn.session.room()?.name.to_string(),
    };
    // Keyed by the folded name; entries exist only for rooms the hub
    // accepted, so the map is bounded by the rooms the socket is in.
    let key: Arc<str> = names::fold(names::validate_room(&room)?).into();
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
