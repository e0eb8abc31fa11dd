//! Hub events as Socket.IO events, and the per-socket writer that emits them.

use std::sync::Arc;

use serde::Serialize;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use tokio_util::sync::CancellationToken;

use super::FULL_BUFFER_RETRY;
use crate::hub::{CloseReason, Event, EventKind, Outbox};

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

/// A room message as the `message` event's payload.
pub(crate) fn message_json(event: &Event) -> Option<serde_json::Value> {
    match &event.kind {
        EventKind::Message {
            room,
            id,
            ts,
            from,
            text,
            action,
        } => Some(serde_json::json!({
            "id": id, "room": room, "from": from, "text": text, "ts": ts, "action": action,
        })),
        _ => None,
    }
}

/// The socket went away; stop writing.
struct Gone;

/// Emits, waiting while socketioxide's buffer for this socket is full.
async fn emit<T: Serialize + ?Sized>(
    socket: &SocketRef,
    event: &str,
    data: &T,
) -> Result<(), Gone> {
    loop {
        match socket.emit(event, data) {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
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
async fn emit_event(socket: &SocketRef, event: &Event) -> Result<Option<CloseReason>, Gone> {
    match &event.kind {
        EventKind::Welcome { nick, room } => {
            emit(
                socket,
                "welcome",
                &serde_json::json!({"nick": nick, "room": room}),
            )
            .await?
        }
        EventKind::Message {
            room,
            id,
            ts,
            from,
            text,
            action,
        } => {
            let message = Message {
                id: *id,
                room,
                from,
                text,
                ts: *ts,
                action: *action,
            };
            emit(socket, "message", &message).await?;
            let notice = if *action {
                format!("* {from} {text}")
            } else {
                format!("{from}:{text}")
            };
            emit(socket, "notice", &Notice { message: notice }).await?;
        }
        EventKind::History {
            room,
            messages,
            complete,
        } => {
            let messages: Vec<_> = messages.iter().filter_map(|m| message_json(m)).collect();
            emit(
                socket,
                "history",
                &serde_json::json!({"room": room, "messages": messages, "complete": complete}),
            )
            .await?
        }
        EventKind::Joined { room, nick } => {
            emit(
                socket,
                "joined",
                &serde_json::json!({"room": room, "nick": nick}),
            )
            .await?
        }
        EventKind::Left { room, nick, reason } => {
            emit(
                socket,
                "left",
                &serde_json::json!({"room": room, "nick": nick, "reason": reason}),
            )
            .await?
        }
        EventKind::Renamed { room, old, new } => {
            emit(
                socket,
                "renamed",
                &serde_json::json!({"room": room, "old": old, "new": new}),
            )
            .await?
        }
        EventKind::Typing { room, nick, typing } => {
            emit(
                socket,
                "typing",
                &serde_json::json!({"room": room, "nick": nick, "typing": typing}),
            )
            .await?
        }
        EventKind::Private { ts, from, to, text } => {
            emit(
                socket,
                "private",
                &serde_json::json!({"from": from, "to": to, "text": text, "ts": ts}),
            )
            .await?
        }
        // The sender already has the acknowledgement of its private message.
        EventKind::PrivateSent { .. } => {}
        EventKind::Notice { text } => {
            emit(socket, "info", &serde_json::json!({ "text": text })).await?
        }
        EventKind::Error { code, message } => {
            emit(socket, "error", &error_body(code, message)).await?
        }
        EventKind::Closing { reason } => {
            emit(
                socket,
                "closing",
                &serde_json::json!({ "reason": reason.describe() }),
            )
            .await?;
            return Ok(Some(reason.clone()));
        }
    }
    Ok(None)
}

/// Drains the session's outbox into the socket until either closes; on
/// server shutdown, closes the outbox so the client is told why.
pub(crate) async fn write_loop(
    socket: SocketRef,
    outbox: Arc<Outbox>,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<Arc<Event>> = Vec::new();
    let mut shutting_down = false;
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
            match emit_event(&socket, &event).await {
                Ok(None) => {}
                Ok(Some(reason)) => {
                    tracing::debug!(?reason, "closing socket.io client");
                    // Let the closing event reach the client before the
                    // disconnect packet (both go through the same buffer).
                    let _ = socket.clone().disconnect();
                    return;
                }
                Err(Gone) => return,
            }
        }
        if batch.capacity() > 16 {
            batch = Vec::new();
        }
    }
}
