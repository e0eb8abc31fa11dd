//! Hub events as Socket.IO events, and the per-socket writer that emits them.

use crate::telemetry::{Delivered, Transport};
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use tokio_util::sync::CancellationToken;

use super::{Connection, FULL_BUFFER_RETRY};
use crate::hub::{CloseReason, Event, EventKind, Outbox, WireFormat};
use crate::store::StoredMessage;

#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

pub(crate) fn error_body<'a>(code: &'a str, message: &'a str) -> ErrorBody<'a> {
    ErrorBody { code, message }
}

#[derive(Serialize)]
struct Message<'a> {
    id: u64,
    room: &'a str,
    from: &'a str,
    text: &'a str,
    ts: u64,
    action: bool,
}

/// The seed's `notice` event.
#[derive(Serialize)]
struct Notice {
    message: String,
}

/// The `message` payload of a room message event.
fn message_of(kind: &EventKind) -> Option<Message<'_>> {
    match kind {
        EventKind::Message {
            room,
            id,
            ts,
            from,
            text,
            action,
        } => Some(Message {
            id: *id,
            room,
            from,
            text,
            ts: *ts,
            action: *action,
        }),
        _ => None,
    }
}

/// A stored message as the `message` event's payload (scroll-back pages).
pub(crate) fn stored_json(m: &StoredMessage) -> serde_json::Value {
    serde_json::to_value(Message {
        id: m.id,
        room: &m.room,
        from: &m.from,
        text: &m.text,
        ts: m.ts,
        action: m.action,
    })
    .unwrap_or_default()
}

/// A room message as the `message` event's payload (in history pages).
pub(crate) fn message_json(event: &Event) -> Option<serde_json::Value> {
    serde_json::to_value(message_of(&event.kind)?).ok()
}

/// The `message` and seed `notice` payloads of a room message, as JSON.
type EncodedMessage = Option<(Box<RawValue>, Box<RawValue>)>;

fn encode_message(kind: &EventKind) -> EncodedMessage {
    let message = message_of(kind)?;
    let notice = Notice {
        message: if message.action {
            format!("* {} {}", message.from, message.text)
        } else {
            format!("{}:{}", message.from, message.text)
        },
    };
    Some((
        serde_json::value::to_raw_value(&message).ok()?,
        serde_json::value::to_raw_value(&notice).ok()?,
    ))
}

/// The socket went away; stop writing.
struct Gone;

/// Emits, waiting while socketioxide's buffer for this socket is full.
async fn emit<T: Serialize + ?Sized>(
    socket: &SocketRef,
    outbox: &Outbox,
    delivered: &Delivered,
    event: &str,
    data: &T,
) -> Result<(), Gone> {
    loop {
        match socket.emit(event, data) {
            Ok(()) => {
                delivered.add(1, 0);
                return Ok(());
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                // Waiting is the backpressure; but a session closed as a slow
                // consumer meanwhile has nothing more worth waiting for.
                if let Some(CloseReason::SlowConsumer { .. }) = outbox.closing() {
                    return Err(Gone);
                }
                tokio::time::sleep(FULL_BUFFER_RETRY).await;
            }
            Err(SendError::Serialize(e)) => {
                tracing::error!(error = %e, event, "could not encode a socket.io event");
                return Ok(());
            }
            Err(_) => return Err(Gone),
        }
    }
}

/// Emits one hub event. Returns the close reason for [`EventKind::Closing`].
async fn emit_event(
    socket: &SocketRef,
    outbox: &Outbox,
    delivered: &Delivered,
    event: &Event,
) -> Result<Option<CloseReason>, Gone> {
    if let EventKind::Message { .. } = &event.kind {
        // Serialized once per message, shared by every socket.
        if let Some((message, notice)) = event.encoded_as(WireFormat::SocketIo, encode_message) {
            emit(socket, outbox, delivered, "message", message.as_ref()).await?;
            emit(socket, outbox, delivered, "notice", notice.as_ref()).await?;
        }
        return Ok(None);
    }
    if let Some((name, payload)) = payload(&event.kind) {
        emit(socket, outbox, delivered, name, &payload).await?;
    }
    Ok(match &event.kind {
        EventKind::Closing { reason } => Some(reason.clone()),
        _ => None,
    })
}

/// The Socket.IO event name and payload of every event but room messages
/// (which [`encode_message`] caches); `None` for what sockets are not sent.
fn payload(kind: &EventKind) -> Option<(&'static str, serde_json::Value)> {
    use serde_json::json;
    Some(match kind {
        EventKind::Welcome { nick, room } => ("welcome", json!({"nick": nick, "room": room})),
        EventKind::History {
            room,
            messages,
            complete,
        } => {
            let messages: Vec<_> = messages.iter().filter_map(|m| message_json(m)).collect();
            (
                "history",
                json!({"room": room, "messages": messages, "complete": complete}),
            )
        }
        EventKind::Joined { room, nick } => ("joined", json!({"room": room, "nick": nick})),
        EventKind::Left { room, nick, reason } => (
            "left",
            json!({"room": room, "nick": nick, "reason": reason}),
        ),
        EventKind::Renamed { room, old, new } => {
            ("renamed", json!({"room": room, "old": old, "new": new}))
        }
        EventKind::Typing { room, nick, typing } => (
            "typing",
            json!({"room": room, "nick": nick, "typing": typing}),
        ),
        EventKind::Private { ts, from, to, text } => (
            "private",
            json!({"from": from, "to": to, "text": text, "ts": ts}),
        ),
        // The sender already has the acknowledgement of its private message.
        EventKind::PrivateSent { .. } => return None,
        EventKind::Notice { text } => ("info", json!({ "text": text })),
        EventKind::Error { code, message } => {
            ("error", json!({ "code": code, "message": message }))
        }
        EventKind::Closing { reason } => ("closing", json!({ "reason": reason.describe() })),
        EventKind::Message { .. } => return None,
    })
}

/// Drains the session's outbox into the socket until either closes; on
/// server shutdown, closes the outbox so the client is told why. When the
/// server closes the session (slow consumer, flooding, shutdown), the
/// session leaves the hub here, whether or not the client can still be told.
pub(crate) async fn write_loop(
    socket: SocketRef,
    conn: Arc<Connection>,
    shutdown: CancellationToken,
) {
    let outbox = conn.session.outbox().clone();
    write_events(&socket, &outbox, shutdown).await;
    if let Some(reason) = outbox.closing() {
        tracing::debug!(?reason, "closing socket.io client");
        conn.finish();
        // Fails while the socket's buffer is still full; the client is then
        // dropped by Engine.IO's ping timeout, already out of the hub.
        let _ = socket.disconnect();
    }
}

async fn write_events(socket: &SocketRef, outbox: &Outbox, shutdown: CancellationToken) {
    let mut batch: Vec<Arc<Event>> = Vec::new();
    let mut shutting_down = false;
    let delivered = Delivered::new(Transport::SocketIo);
    loop {
        let more = tokio::select! {
            more = outbox.next_batch(&mut batch) => more,
            _ = shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                outbox.close(CloseReason::Shutdown);
                continue;
            }
        };
        if !more {
            break;
        }
        for event in batch.drain(..) {
            match emit_event(socket, outbox, &delivered, &event).await {
                Ok(None) => {}
                // The closing event is queued ahead of the disconnect packet
                // in the same buffer, so the client reads why.
                Ok(Some(_)) | Err(Gone) => return,
            }
        }
        if batch.capacity() > 16 {
            batch = Vec::new();
        }
    }
}
